//! `pictl auth test`: the PAM module's conversation, on this terminal.
//!
//! Like `pam_pi`, pictl only renders what the daemon asks and reports the verdict; it decides
//! nothing. The number of prompts is bounded so a confused daemon cannot keep it asking forever.

use super::Ctx;
use crate::cli::auth::AuthTestArgs;
use crate::error::{Error, Exit};
use crate::{input, output};
use protocol::{
    AdminRequest, AdminResponse, AuthBegin, ErrorCode, Outcome, Prompt, Request, Response, Secret,
};
use serde_json::json;

/// Most prompts pictl answers in one conversation.
pub const MAX_STEPS: usize = 16;

pub fn test(ctx: &mut Ctx<'_, '_>, args: &AuthTestArgs) -> Result<Exit, Error> {
    let begin = AuthBegin {
        user: args.user.clone(),
        service: args.service.clone(),
        ..AuthBegin::default()
    };
    let intro = format!(
        "pictl auth test: this is a real login for {}: a code accepted now is spent, a wrong \
         one counts towards the token's lockout",
        output::sanitize(&args.user)
    );
    let outcome = converse(ctx, begin, &intro)?;
    verdict(ctx, &args.user, outcome)
}

/// Run a login conversation on this connection, showing `intro` before the first prompt, and
/// return the daemon's verdict.
pub fn converse(ctx: &mut Ctx<'_, '_>, begin: AuthBegin, intro: &str) -> Result<Outcome, Error> {
    let mut response = ctx.call(&Request::AuthBegin(begin))?;
    let mut steps = 0;
    loop {
        match response {
            Response::AuthDone(outcome) => return Ok(outcome),
            Response::AuthStep { session, prompt } => {
                steps += 1;
                if steps > MAX_STEPS {
                    return Err(Error::Failed(format!(
                        "the daemon asked more than {MAX_STEPS} questions without a verdict, so \
                         pictl gave up; check pid's log (`journalctl -u pid`) and its policies"
                    )));
                }
                if steps == 1 {
                    ctx.note(intro)?;
                }
                let answer = answer(ctx, &prompt)?;
                response = ctx.call(&Request::AuthContinue { session, answer })?;
            }
            other => return Err(Error::unexpected("authentication", &other)),
        }
    }
}

/// Send an administration request. When the daemon wants the caller to prove who they are
/// first (a user deleting or resetting their own token), log in as oneself on the same
/// connection (the daemon accepts the proof from this connection only, for the next request),
/// then send the request again.
pub fn admin_with_proof(
    ctx: &mut Ctx<'_, '_>,
    request: AdminRequest,
    what: &'static str,
) -> Result<AdminResponse, Error> {
    match ctx.admin(request.clone(), what) {
        Err(Error::Daemon {
            code: ErrorCode::ProofRequired,
            ..
        }) => {}
        other => return other,
    }
    let begin = AuthBegin {
        user: own_login()?,
        service: "pictl".into(),
        ..AuthBegin::default()
    };
    let intro = format!(
        "pictl {what}: confirm it is you with a code of one of your tokens (or your recovery \
         code)"
    );
    match converse(ctx, begin, &intro)? {
        Outcome::Accept { .. } | Outcome::AcceptPinChangeDue { .. } => ctx.admin(request, what),
        Outcome::Reject { message } if !message.trim().is_empty() => Err(Error::Failed(format!(
            "the code was not accepted ({}), so nothing changed",
            output::sanitize_text(message.trim())
        ))),
        _ => Err(Error::Failed(
            "the code was not accepted, so nothing changed".into(),
        )),
    }
}

/// The login name of the account pictl runs as.
pub fn own_login() -> Result<String, Error> {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        _ => Err(Error::Failed(format!(
            "uid {uid} has no account name (`getent passwd {uid}` finds none), so pictl cannot \
             say who is asking"
        ))),
    }
}

/// Show one prompt on stderr and collect the answer from stdin.
fn answer(ctx: &mut Ctx<'_, '_>, prompt: &Prompt) -> Result<Secret, Error> {
    let (text, hidden) = match prompt {
        Prompt::Secret { text } => (text, true),
        Prompt::Echo { text } => (text, false),
        Prompt::Info { text } | Prompt::Error { text } => {
            writeln!(ctx.io.stderr, "{}", output::sanitize_text(text)).map_err(Error::Output)?;
            return Ok(Secret::new(""));
        }
    };
    let shown = output::sanitize_text(text);
    // PAM prompts usually end in ": "; make sure the answer does not run into the text.
    let shown = if shown.ends_with(char::is_whitespace) {
        shown
    } else {
        format!("{shown} ")
    };
    input::ask(ctx.io, &shown, hidden)?.ok_or_else(|| {
        Error::Usage(format!(
            "standard input ended before the answer to `{}`: give one line per prompt",
            shown.trim_end()
        ))
    })
}

fn verdict(ctx: &mut Ctx<'_, '_>, user: &str, outcome: Outcome) -> Result<Exit, Error> {
    let user = output::sanitize(user).into_owned();
    let (result, exit, message) = match outcome {
        Outcome::Accept { message } => ("accept", Exit::Ok, message),
        // The ticket is for a PAM module's chauthtok; pictl only reports the verdict.
        Outcome::AcceptPinChangeDue { message, .. } => ("accept", Exit::Ok, message),
        Outcome::Reject { message } => ("reject", Exit::Failed, message),
        Outcome::NoToken => (
            "no_token",
            Exit::Failed,
            format!("{user} has no token; enroll one with `pictl token enroll totp --user {user}`"),
        ),
        Outcome::UnknownUser => (
            "unknown_user",
            Exit::Failed,
            format!(
                "pid does not know {user}; check the login name (`getent passwd {user}`) and \
                 the realm"
            ),
        ),
        Outcome::ServerUnreachable { message } => {
            ("server_unreachable", Exit::Unreachable, message)
        }
        Outcome::Unavailable => (
            "unavailable",
            Exit::Unreachable,
            "the daemon cannot decide now (store or upstream failure); check its log with \
             `journalctl -u pid`"
                .to_owned(),
        ),
    };
    if ctx.json {
        ctx.print_json(&json!({ "result": result, "message": message }))?;
        return Ok(exit);
    }
    let label = match result {
        "accept" => "accepted",
        "reject" => "rejected",
        "no_token" => "no token",
        "unknown_user" => "unknown user",
        "server_unreachable" => "authentication server unreachable",
        _ => "unavailable",
    };
    let message = output::sanitize_text(message.trim());
    let line = if message.is_empty() {
        format!("{label}\n")
    } else {
        format!("{label}: {message}\n")
    };
    if exit == Exit::Ok {
        ctx.print(&line)?;
    } else {
        write!(ctx.io.stderr, "{line}").map_err(Error::Output)?;
    }
    Ok(exit)
}
