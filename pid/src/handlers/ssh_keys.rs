//! The SSH keys sshd asks for (`pictl ssh keys`, its AuthorizedKeysCommand): the keys of
//! sshkey tokens attached to this host (or a service id) for a login. Reached straight from
//! dispatch once the caller was found to be root or an `ssh.keys_users` account.

use crate::audit;
use crate::caller::Caller;
use crate::error::PidError;
use crate::handlers::error_response;
use crate::machines::ssh;
use crate::State;
use protocol::{MachineApp, Response};

/// The authorized keys of `login`: keys attached to this host for it, or with `service_id` the
/// keys attached for that service on any host. Every request is audited (sshd asks on every
/// connection attempt: the trail shows who tried which account).
pub fn ssh_keys(
    state: &State,
    caller: &Caller,
    login: String,
    service_id: Option<String>,
) -> Response {
    let now = state.clock.now();
    let mut entry = audit::entry(caller, "ssh keys", now);
    entry.user = Some(login.clone());
    let result = authorized_keys(state, &login, service_id.as_deref(), now);
    match &result {
        Ok(keys) => {
            entry.success = true;
            entry.message = format!("{} key(s) for {login}", keys.len());
        }
        Err(e) => entry.message = e.public_message(),
    }
    audit::record(state, entry);
    match result {
        Ok(keys) => Response::SshKeys { keys },
        Err(e) => error_response(&e),
    }
}

fn authorized_keys(
    state: &State,
    login: &str,
    service_id: Option<&str>,
    now: i64,
) -> Result<Vec<String>, PidError> {
    crate::users::validate_login(login)?;
    let attachments = match service_id {
        Some(id) => {
            crate::handlers::validate_text("the service id", id)?;
            state
                .store
                .attachments(Some(MachineApp::Ssh), None)?
                .into_iter()
                .filter(|a| a.rec.options.service_id.as_deref() == Some(id))
                .collect()
        }
        None => state
            .store
            .attachments(Some(MachineApp::Ssh), Some(&state.hostname))?,
    };
    let mut keys = Vec::new();
    for a in attachments {
        let Some(token) = state.store.get_token(&a.serial)? else {
            continue;
        };
        if !ssh::grants(&a, &token.rec, login, now) {
            continue;
        }
        // The line was validated and re-encoded at enrollment and is sealed to the serial: a
        // key that fails to open (its integrity check) is skipped and logged, the others still
        // let their owners in, as privacyIDEA does.
        let line = state
            .cipher
            .open(&a.serial, "otpkey", &token.rec.otpkey)
            .map_err(|e| crate::error::chain(&e).to_string())
            .and_then(|m| String::from_utf8(m.to_vec()).map_err(|e| e.to_string()))
            .and_then(|l| {
                if l.contains(['\n', '\r']) {
                    Err("the stored key spans several lines".to_owned())
                } else {
                    Ok(l)
                }
            });
        match line {
            Ok(l) if !keys.contains(&l) => keys.push(l),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(serial = %a.serial, error = %e, "SSH key failed its integrity check; skipped")
            }
        }
    }
    Ok(keys)
}
