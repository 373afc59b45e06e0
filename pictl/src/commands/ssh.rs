//! `pictl ssh keys LOGIN`: sshd's AuthorizedKeysCommand.
//!
//! sshd waits for this program on every connection attempt, so it must never hang and never
//! make sshd fail: short timeouts, and when the daemon cannot be reached, no keys (exit 0, a
//! line on stderr for sshd's log) — sshd then goes on with its other methods.

use super::Ctx;
use crate::cli::ssh::SshKeysArgs;
use crate::error::{Error, Exit};
use protocol::{Request, Response};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

pub fn keys(ctx: &mut Ctx<'_, '_>, args: &SshKeysArgs) -> Result<Exit, Error> {
    let request = Request::SshKeys {
        user: args.user.clone(),
        service_id: args.service_id.clone(),
    };
    let answer = ctx
        .connect_with(CONNECT_TIMEOUT, ANSWER_TIMEOUT)
        .and_then(|()| ctx.call(&request));
    let keys = match answer {
        Ok(Response::SshKeys { keys }) => keys,
        Ok(other) => return Err(Error::unexpected("ssh keys", &other)),
        Err(e) if e.exit() == Exit::Unreachable => {
            ctx.note(&format!(
                "pictl ssh keys: no keys, the daemon did not answer: {e}"
            ))?;
            return Ok(Exit::Ok);
        }
        Err(e) => return Err(e),
    };
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "keys": keys }))?;
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    for k in &keys {
        // The daemon sends re-encoded single-line keys; a line break here could only come
        // from a damaged answer, and would let it add a line of its own to sshd's list.
        if k.contains(['\n', '\r']) {
            continue;
        }
        out.push_str(k);
        out.push('\n');
    }
    ctx.print(&out)?;
    Ok(Exit::Ok)
}
