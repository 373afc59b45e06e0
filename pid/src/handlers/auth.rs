//! The authentication conversation (DESIGN §4): AuthBegin → AuthStep{prompt} → AuthContinue →
//! AuthDone. The daemon decides the prompts; the module only renders them.
//!
//! Authorisation: an administrator (root: sshd, sudo, login) may authenticate any user; any
//! other uid (a screen locker) only the account whose uid it runs as, and only so often.

use crate::audit;
use crate::auth::check::Input;
use crate::auth::session::Session;
use crate::caller::Caller;
use crate::connection::ConnState;
use crate::error::PidError;
use crate::handlers::{error_response, validate_text};
use crate::policy::{self, Action, MangleKey};
use crate::users::{self, ResolvedUser};
use crate::State;
use protocol::paths::MAX_ANSWER_LEN;
use protocol::{AuthBegin, Outcome, Prompt, Response, Secret};

pub async fn begin(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    req: AuthBegin,
) -> Response {
    match begin_inner(state, caller, conn, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn begin_inner(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    req: AuthBegin,
) -> Result<Response, PidError> {
    validate_text("service", &req.service)?;
    for (name, v) in [
        ("rhost", &req.rhost),
        ("tty", &req.tty),
        ("ruser", &req.ruser),
    ] {
        if let Some(v) = v {
            validate_text(name, v)?;
        }
    }
    let now = state.clock.now();
    let mut entry = audit::entry(caller, "auth", now);
    entry.service = Some(req.service.clone());
    entry.rhost = req.rhost.clone();
    let live = state.live();
    let per_minute = live.config.limits.user_auth_per_minute;
    if !caller.is_admin && !state.rate.allow(caller.uid, now, per_minute) {
        entry.message = "rate limit for non-root callers reached".into();
        audit::record(state, entry);
        return Err(PidError::RateLimited(
            "too many authentication attempts from this uid; wait a minute".into(),
        ));
    }
    let (login, realm) = mangled_user(&live, &req);
    let (login, realm) = (login.as_str(), realm.as_str());
    entry.user = Some(login.to_owned());
    entry.realm = Some(realm.to_owned());
    if let Err(e) = users::validate_login(login) {
        entry.message = format!("refused user name: {e}");
        audit::record(state, entry);
        return Ok(Response::AuthDone(Outcome::UnknownUser));
    }
    let resolved = state.lookup_user(login, realm).await?;
    // A non-admin caller learns nothing about accounts other than its own.
    if !caller.is_admin && resolved.as_ref().and_then(|u| u.host_uid) != Some(caller.uid) {
        entry.message = format!("uid {} may only authenticate its own account", caller.uid);
        audit::record(state, entry);
        return Err(PidError::PermissionDenied(
            "this uid may only authenticate its own account".into(),
        ));
    }
    let ctx = policy::Context {
        realm,
        resolver: resolved.as_ref().map(|u| u.resolver.as_str()),
        login,
        service: &req.service,
        rhost: req.rhost.as_deref(),
    };
    let hide = live
        .policies
        .flag(Action::HideSpecificErrorMessage, &ctx)
        .is_some();
    let Some(user) = resolved.as_ref() else {
        entry.message = format!("User {login}@{realm} does not exist");
        if let Some(p) = live.policies.flag(Action::PassOnNoUser, &ctx) {
            return Ok(pass_by_policy(state, entry, "user does not exist", p).await);
        }
        audit::record(state, entry);
        return Ok(Response::AuthDone(hidden(hide, Outcome::UnknownUser)));
    };
    let tokens = state.store.tokens_of(&user.owner)?;
    if tokens.is_empty() {
        entry.message = "The user has no tokens assigned".into();
        if let Some(p) = live.policies.flag(Action::PassOnNoToken, &ctx) {
            return Ok(pass_by_policy(state, entry, "user has no token", p).await);
        }
        audit::record(state, entry);
        return Ok(Response::AuthDone(hidden(hide, Outcome::NoToken)));
    }
    let user = user.clone();
    if let Some(authtok) = req.authtok {
        let login = Login {
            user: &user,
            service: &req.service,
            rhost: req.rhost.as_deref(),
        };
        let input = Input::Pass(&authtok);
        return Ok(finish(state, caller, conn, login, input, Some(tokens)).await);
    }
    let any_pin = tokens.iter().any(|t| t.rec.pin_hash.is_some());
    let text = if any_pin {
        "PIN and one-time password: "
    } else {
        "One-time password: "
    };
    let login = Login {
        user: &user,
        service: &req.service,
        rhost: req.rhost.as_deref(),
    };
    open_session(state, conn, &login, Vec::new(), text)
}

pub async fn proceed(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    session: u64,
    answer: Secret,
) -> Response {
    let Some(s) = conn.sessions.take(session, state.session_ttl()) else {
        return error_response(&PidError::SessionExpired(
            "the authentication session is unknown or expired; start again".into(),
        ));
    };
    let login = Login {
        user: &s.user,
        service: &s.service,
        rhost: s.rhost.as_deref(),
    };
    if answer.len() > MAX_ANSWER_LEN {
        let mut entry = login.audit_entry(state, caller);
        entry.message = format!("answer of {} bytes refused", answer.len());
        audit::record(state, entry);
        return Response::AuthDone(Outcome::Reject {
            message: format!("Input too long: at most {MAX_ANSWER_LEN} characters."),
        });
    }
    let input = if s.challenge.is_empty() {
        Input::Pass(&answer)
    } else {
        Input::Answer {
            otp: &answer,
            serials: &s.challenge,
        }
    };
    finish(state, caller, conn, login, input, None).await
}

/// Ask the next question of this conversation in a new session of the connection. With
/// `challenge` serials, the answer is their OTP alone.
fn open_session(
    state: &State,
    conn: &mut ConnState,
    login: &Login<'_>,
    challenge: Vec<String>,
    prompt: &str,
) -> Result<Response, PidError> {
    let session = Session {
        user: login.user.clone(),
        service: login.service.to_owned(),
        rhost: login.rhost.map(str::to_owned),
        started: std::time::Instant::now(),
        challenge,
    };
    let max = state.live().config.limits.sessions_per_connection as usize;
    match conn.sessions.insert(session, max, state.session_ttl()) {
        Some(id) => Ok(Response::AuthStep {
            session: id,
            prompt: Prompt::Secret {
                text: prompt.into(),
            },
        }),
        None => Err(PidError::RateLimited(
            "too many open authentication sessions on this connection".into(),
        )),
    }
}

/// Who is logging in, through what, from where.
struct Login<'a> {
    user: &'a ResolvedUser,
    service: &'a str,
    rhost: Option<&'a str>,
}

impl Login<'_> {
    /// The audit entry for this login, to be completed with the verdict.
    fn audit_entry(&self, state: &State, caller: &Caller) -> protocol::AuditEntry {
        let mut entry = audit::entry(caller, "auth", state.clock.now());
        entry.user = Some(self.user.owner.login.clone());
        entry.realm = Some(self.user.owner.realm.clone());
        entry.service = Some(self.service.to_owned());
        entry.rhost = self.rhost.map(str::to_owned);
        entry
    }
}

/// The login and realm after privacyIDEA's `mangle`: the rewrites chosen for the name as typed
/// apply to the name (then split again into login and realm) and to the realm.
fn mangled_user(live: &crate::Live, req: &AuthBegin) -> (String, String) {
    let (login, realm) = live.realms.split(&req.user, None);
    let ctx = policy::Context {
        realm,
        resolver: None,
        login,
        service: &req.service,
        rhost: req.rhost.as_deref(),
    };
    let mangles = live.policies.mangles(&ctx);
    if mangles.is_empty() {
        return (login.to_owned(), realm.to_owned());
    }
    let user = mangles
        .iter()
        .fold(req.user.clone(), |u, m| m.apply(MangleKey::User, &u));
    let (login, realm) = live.realms.split(&user, None);
    let realm = mangles
        .iter()
        .fold(realm.to_owned(), |r, m| m.apply(MangleKey::Realm, &r));
    (login.to_owned(), realm)
}

/// privacyIDEA's `passOnNoUser` / `passOnNoToken`: accepted without a second factor, audited as
/// such, and durable like any other accept.
async fn pass_by_policy(
    state: &State,
    mut entry: protocol::AuditEntry,
    why: &str,
    policy: &str,
) -> Response {
    entry.success = true;
    entry.message = format!("{why}, accepted due to '{policy}'");
    audit::record(state, entry);
    if let Err(e) = state.store.durable().await {
        tracing::error!(error = %e, "could not make the authentication durable");
        return Response::AuthDone(Outcome::Unavailable);
    }
    Response::AuthDone(Outcome::Accept {
        message: String::new(),
    })
}

/// `hide_specific_error_message`: the caller learns only that authentication failed, not whether
/// the account exists or has a token (this also turns off `nullok`/`ignore_unknown_user`).
fn hidden(hide: bool, outcome: Outcome) -> Outcome {
    if hide {
        Outcome::Reject {
            message: crate::auth::check::GENERIC_REJECT.into(),
        }
    } else {
        outcome
    }
}

/// Check the answer, audit, wait until the result is on disk, and only then answer.
async fn finish(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    login: Login<'_>,
    input: Input<'_>,
    prefetched: Option<Vec<crate::store::Versioned>>,
) -> Response {
    let mut entry = login.audit_entry(state, caller);
    let Login {
        user,
        service,
        rhost,
    } = login;
    let live = state.live();
    let ctx = policy::Context {
        realm: &user.owner.realm,
        resolver: Some(&user.resolver),
        login: &user.owner.login,
        service,
        rhost,
    };
    let rules = crate::auth::check::Rules {
        otppin: live.policies.otppin(&ctx),
        reset_all_user_tokens: live
            .policies
            .flag(Action::ResetAllUserTokens, &ctx)
            .is_some(),
        last_auth: live.policies.last_auth(&ctx),
        failcounter_clear_secs: live.config.tokens.failcounter_clear_timeout_mins as i64 * 60,
        // An answer to a challenge is the OTP alone; it never triggers another challenge.
        challenge_types: match input {
            Input::Pass(_) => live.policies.challenge_types(&ctx),
            Input::Answer { .. } => Vec::new(),
        },
    };
    let verdict = match crate::auth::check_user_pass(state, &user.owner, input, prefetched, &rules)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, user = %user.owner.login, "authentication check failed");
            entry.message = "check failed: internal error (see the daemon log)".into();
            audit::record(state, entry);
            return Response::AuthDone(Outcome::Unavailable);
        }
    };
    entry.success = verdict.accepted;
    entry.message = verdict.detail.clone();
    entry.serial = (!verdict.serials.is_empty()).then(|| verdict.serials.join(","));
    entry.token_type = verdict.token_type.clone();
    audit::record(state, entry);
    if !verdict.challenge.is_empty() {
        // privacyIDEA's default challenge text.
        return open_session(state, conn, &login, verdict.challenge, "please enter otp: ")
            .unwrap_or_else(|e| error_response(&e));
    }
    // Durable before success: a spent OTP must stay spent if we crash right after answering.
    if let Err(e) = state.store.durable().await {
        tracing::error!(error = %e, "could not make the authentication durable");
        return Response::AuthDone(Outcome::Unavailable);
    }
    tracing::info!(
        user = %user.owner.login, service, accepted = verdict.accepted, detail = %verdict.detail,
        "authentication"
    );
    Response::AuthDone(if verdict.accepted {
        Outcome::Accept {
            message: verdict.user_message,
        }
    } else {
        Outcome::Reject {
            message: verdict.user_message,
        }
    })
}
