//! The steps of a conversation, each ending in a `Decision`: `begin` finds the user and either
//! checks what the module already has or asks for it; `proceed` takes an answer; `finish`
//! checks PIN and OTP, `passthru` the user store's password; `autoassign` claims a pool token
//! for a user without one.

use super::{delivery, limits, mangle, unavailable, Decision, Login, Turn};
use crate::audit;
use crate::auth::check::{Challenged, Input, GENERIC_REJECT};
use crate::auth::lockout::Source;
use crate::auth::pin_change::Grant;
use crate::auth::session::{Challenge, Expect, Session};
use crate::auth::Verifier;
use crate::error::{chain, PidError};
use crate::handlers::validate_text;
use crate::policy::{self, Action, Autoassign};
use crate::store::Versioned;
use crate::users::{self, ResolvedUser};
use crate::Live;
use protocol::paths::MAX_ANSWER_LEN;
use protocol::{AuthBegin, Outcome, Secret};

/// `AuthBegin`: who logs in, and what the module already has (`authtok`, from an earlier module
/// of the stack) or must ask.
pub(super) async fn begin(turn: &Turn<'_>, req: AuthBegin) -> Decision {
    begin_with(turn, req)
        .await
        .unwrap_or_else(Decision::refused)
}

async fn begin_with(turn: &Turn<'_>, req: AuthBegin) -> Result<Decision, PidError> {
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
    let (state, caller, live) = (turn.state, turn.caller, &turn.live);
    let now = state.clock.now();
    let mut entry = audit::entry(caller, "auth", now);
    entry.service = Some(req.service.clone());
    entry.rhost = req.rhost.clone();
    if limits::over_user_rate(turn, now) {
        entry.message = "rate limit for users reached (limits.user_auth_per_minute)".into();
        return Ok(Decision::refused(PidError::RateLimited(
            "too many authentication attempts from this uid; wait a minute".into(),
        ))
        .audited(entry));
    }
    let (login, realm) = mangle::user(live, &req, now);
    entry.user = Some(login.clone());
    entry.realm = Some(realm.clone());
    if let Err(e) = users::validate_login(&login) {
        entry.message = format!("refused user name: {e}");
        return Ok(Decision::done(Outcome::UnknownUser).audited(entry));
    }
    // A user store that cannot answer (LDAP down, a realm whose file did not load) fails the
    // login closed, as unavailable, never as an unknown user (that could pass by policy).
    let resolved = match state.lookup_user(&login, &realm).await {
        Ok(resolved) => resolved,
        Err(e) => return Ok(unavailable(entry, &e)),
    };
    // A non-admin caller learns nothing about accounts other than its own.
    if !caller.is_admin && resolved.as_ref().and_then(|u| u.host_uid) != Some(caller.uid) {
        entry.message = format!("uid {} may only authenticate its own account", caller.uid);
        return Ok(Decision::refused(PidError::PermissionDenied(
            "this uid may only authenticate its own account".into(),
        ))
        .audited(entry));
    }
    let Some(user) = resolved else {
        let ctx = policy::Context {
            realm: &realm,
            resolver: None,
            login: &login,
            service: &req.service,
            rhost: req.rhost.as_deref(),
            now: Some(now),
            admin_groups: &[],
        };
        entry.message = format!("User {login}@{realm} does not exist");
        return Ok(no_such_user(live, entry, &ctx));
    };
    let upstream = live
        .realms
        .upstream_of(&user.owner.realm)
        .map(str::to_owned);
    let login = Login {
        user,
        service: req.service,
        rhost: req.rhost,
        now,
    };
    if let Some(server) = upstream {
        return Ok(super::upstream::start(turn, login, server, req.authtok).await);
    }
    start(turn, login, entry, req.authtok).await
}

/// Nobody of that name is in the realm: `passOnNoUser` may let the login pass; otherwise it is
/// an unknown user (or, with `hide_specific_error_message`, a plain refusal).
pub(super) fn no_such_user(
    live: &Live,
    entry: audit::Draft,
    ctx: &policy::Context<'_>,
) -> Decision {
    if let Some(p) = live.policies.flag(Action::PassOnNoUser, ctx) {
        return pass_by_policy(entry, "user does not exist", p);
    }
    let hide = live
        .policies
        .flag(Action::HideSpecificErrorMessage, ctx)
        .is_some();
    Decision::done(hidden(hide, Outcome::UnknownUser)).audited(entry)
}

/// The user is known: pass by policy, `passthru`, check what the module already has, or ask.
async fn start(
    turn: &Turn<'_>,
    login: Login,
    mut entry: audit::Draft,
    authtok: Option<Secret>,
) -> Result<Decision, PidError> {
    let (state, live) = (turn.state, &turn.live);
    let ctx = login.context();
    let tokens = crate::auth::login_tokens(state, &login.user.owner)?;
    if tokens.is_empty() {
        // privacyIDEA: a user without a token whom autoassignment applies to logs in with a
        // code of the realm's pool; passOnNoToken and passthru then do not apply.
        if let Some((mode, policy)) = live.policies.autoassign(&ctx) {
            let policy = policy.to_owned();
            return Ok(match authtok {
                Some(pass) => {
                    let pass = mangle::pass(live, &login, pass);
                    super::autoassign::claim(turn, login, pass, mode, &policy).await
                }
                None => {
                    let prompt = match mode {
                        Autoassign::UserStore => "Password and one-time password: ",
                        Autoassign::AnyPin => "PIN and one-time password: ",
                    };
                    Decision::ask(login, Expect::Autoassign { mode, policy }, prompt)
                }
            });
        }
        entry.message = "The user has no tokens assigned".into();
        if let Some(p) = live.policies.flag(Action::PassOnNoToken, &ctx) {
            return Ok(pass_by_policy(entry, "user has no token", p));
        }
        // privacyIDEA's passthru: only for a user without tokens, after passOnNoToken.
        if let Some(p) = live.policies.flag(Action::Passthru, &ctx) {
            let policy = p.to_owned();
            return Ok(match authtok {
                Some(password) => passthru(turn, login, password, &policy).await,
                None => Decision::ask(login, Expect::StorePassword { policy }, "Password: "),
            });
        }
        let hide = live
            .policies
            .flag(Action::HideSpecificErrorMessage, &ctx)
            .is_some();
        return Ok(Decision::done(hidden(hide, Outcome::NoToken)).audited(entry));
    }
    // The login may name someone else now (a reused name, a recreated account or entry): the
    // tokens belong to the person they were enrolled for.
    let user = &login.user;
    if !state.tokens_belong_to(user)? {
        entry.message = format!(
            "{}@{} now names another account ({}) than the one its tokens were enrolled for; \
             tokens refused",
            user.owner.login, user.owner.realm, user.user_id
        );
        tracing::warn!("{}", entry.message);
        return Ok(Decision::done(Outcome::Reject {
            message: "This account changed since its tokens were enrolled; ask an administrator."
                .into(),
        })
        .audited(entry));
    }
    Ok(match authtok {
        Some(authtok) => {
            let authtok = mangle::pass(live, &login, authtok);
            finish(turn, login, Input::Pass(&authtok), Some(tokens), None).await
        }
        None => {
            let prompt = first_prompt(live, &ctx, &tokens);
            Decision::ask(login, Expect::Pass, prompt)
        }
    })
}

/// What the first prompt asks for.
fn first_prompt(live: &Live, ctx: &policy::Context<'_>, tokens: &[Versioned]) -> &'static str {
    if live.policies.otppin(ctx) == policy::OtpPin::UserStore {
        "Password and one-time password: "
    } else if tokens.iter().any(|t| t.rec.pin_hash.is_some()) {
        "PIN and one-time password: "
    } else {
        "One-time password: "
    }
}

/// `AuthContinue`: the answer to the question `session` asked.
pub(super) async fn proceed(turn: &Turn<'_>, session: Session, answer: Secret) -> Decision {
    let Session {
        user,
        service,
        rhost,
        expect,
        ..
    } = session;
    let login = Login {
        user,
        service,
        rhost,
        now: turn.state.clock.now(),
    };
    if answer.len() > MAX_ANSWER_LEN {
        let mut entry = login.audit_entry(turn);
        entry.message = format!("answer of {} bytes refused", answer.len());
        return Decision::done(Outcome::Reject {
            message: format!("Input too long: at most {MAX_ANSWER_LEN} characters."),
        })
        .audited(entry);
    }
    let answer = mangle::pass(&turn.live, &login, answer);
    match &expect {
        Expect::Pass => finish(turn, login, Input::Pass(&answer), None, None).await,
        Expect::ChallengeAnswer(ch) if ch.expired() => {
            let mut entry = login.audit_entry(turn);
            entry.message = "the challenge has expired".into();
            Decision::done(Outcome::Reject {
                message: "The challenge has expired; start again.".into(),
            })
            .audited(entry)
        }
        Expect::ChallengeAnswer(ch) => {
            let input = Input::Answer {
                otp: &answer,
                challenged: &ch.tokens,
            };
            finish(turn, login, input, None, Some(ch)).await
        }
        Expect::StorePassword { policy } => passthru(turn, login, answer, policy).await,
        Expect::Autoassign { mode, policy } => {
            super::autoassign::claim(turn, login, answer, *mode, policy).await
        }
        Expect::Upstream { server, challenge } => {
            super::upstream::check(turn, login, server, answer, challenge.clone()).await
        }
    }
}

/// `passthru`: a user without tokens logs in with the password of the user store that found
/// them.
async fn passthru(turn: &Turn<'_>, login: Login, password: Secret, policy: &str) -> Decision {
    let entry = login.audit_entry(turn);
    let mut entry = match limits::refuse_over_limit(turn, &login, entry) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let accepted = match turn.state.check_user_password(&login.user, password).await {
        Ok(ok) => ok,
        Err(e) => return unavailable(entry, &e),
    };
    limits::record_outcome(turn, &login, accepted);
    entry.success = accepted;
    entry.message = if accepted {
        format!("against userstore due to '{policy}'")
    } else {
        format!("wrong user store password (passthru due to '{policy}')")
    };
    Decision::done(if accepted {
        Outcome::Accept {
            message: String::new(),
        }
    } else {
        Outcome::Reject {
            message: GENERIC_REJECT.into(),
        }
    })
    .audited(entry)
    .once_durable()
}

/// privacyIDEA's `passOnNoUser` / `passOnNoToken`: accepted without a second factor, audited as
/// such, and durable like any other accept.
fn pass_by_policy(mut entry: audit::Draft, why: &str, policy: &str) -> Decision {
    entry.success = true;
    entry.message = format!("{why}, accepted due to '{policy}'");
    Decision::done(Outcome::Accept {
        message: String::new(),
    })
    .audited(entry)
    .once_durable()
}

/// `hide_specific_error_message`: the caller learns only that authentication failed, not whether
/// the account exists or has a token (this also turns off `nullok`/`ignore_unknown_user`).
fn hidden(hide: bool, outcome: Outcome) -> Outcome {
    if hide {
        Outcome::Reject {
            message: GENERIC_REJECT.into(),
        }
    } else {
        outcome
    }
}

/// Check what the user typed against their tokens (for an answer: the challenged ones). The
/// verdict is audited; a challenge is asked next (after its codes were sent), a wrong answer to
/// a challenge may be asked again, anything else ends the conversation.
async fn finish(
    turn: &Turn<'_>,
    login: Login,
    input: Input<'_>,
    prefetched: Option<Vec<Versioned>>,
    answering: Option<&Challenge>,
) -> Decision {
    let live = &turn.live;
    let entry = login.audit_entry(turn);
    let mut entry = match limits::refuse_over_limit(turn, &login, entry) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let ctx = login.context();
    let rules = crate::auth::check::Rules {
        reset_all_user_tokens: live
            .policies
            .flag(Action::ResetAllUserTokens, &ctx)
            .is_some(),
        last_auth: live.policies.last_auth(&ctx),
        source: Source::of(turn.caller.account, login.rhost.as_deref()),
        lockout: live.config.tokens.lockout(),
        service: login.service.clone(),
        // An answer to a challenge is the OTP alone; it never triggers another challenge.
        challenge_types: match input {
            Input::Pass(_) => live.policies.challenge_types(&ctx),
            Input::Answer { .. } => Vec::new(),
        },
    };
    let otppin = live.policies.otppin(&ctx);
    let checked =
        crate::auth::check_user_pass(turn.state, &login.user, input, prefetched, &rules, otppin);
    let verdict = match checked.await {
        Ok(v) => v,
        Err(e) => return unavailable(entry, &e),
    };
    entry.success = verdict.accepted;
    entry.message = verdict.detail.clone();
    entry.serial = (!verdict.serials.is_empty()).then(|| verdict.serials.join(","));
    entry.token_type = verdict.token_type.clone();
    if !verdict.challenge.is_empty() {
        // A challenge is not a login attempt: auth_max_* do not count it (privacyIDEA).
        let text = challenge_prompt(live, &ctx, &login.user, &verdict.challenge);
        for d in &verdict.deliveries {
            if let Err(e) = delivery::deliver(live, &ctx, &login.user, d).await {
                tracing::error!(error = %chain(&e), user = %login.user.owner.login, "no code sent");
                let mut failed = login.audit_entry(turn);
                failed.message = chain(&e).to_string();
                return Decision::done(Outcome::Reject {
                    message: "The code could not be sent; try again later or ask an \
                              administrator."
                        .into(),
                })
                .audited(entry)
                .audited(failed);
            }
        }
        let expect = Expect::ChallengeAnswer(Challenge::new(verdict.challenge, text.clone()));
        return Decision::ask(login, expect, text).audited(entry);
    }
    limits::record_outcome(turn, &login, verdict.accepted);
    if let Some(again) = answering
        .filter(|_| verdict.may_retry)
        .and_then(Challenge::retry)
    {
        let prompt = format!("Wrong code, try again. {}", again.prompt);
        return Decision::ask(login, Expect::ChallengeAnswer(again), prompt)
            .audited(entry)
            .once_durable();
    }
    let accepted = verdict.accepted;
    let mut noted = None;
    let outcome = if let Some(serial) = verdict.pin_change_due {
        // The login is accepted; the module asks for a new PIN in chauthtok with this ticket.
        let grant = Grant {
            owner: login.user.owner.clone(),
            serial: serial.clone(),
        };
        let ticket = turn.state.pin_changes.issue(turn.caller.uid, grant);
        let mut note = login.audit_entry(turn);
        note.success = true;
        note.serial = Some(serial.clone());
        note.message = format!("PIN change due for token {serial}");
        noted = Some(note);
        Outcome::AcceptPinChangeDue {
            message: join_messages(
                &verdict.user_message,
                "The PIN of your token has expired and must be changed now.",
            ),
            ticket,
        }
    } else if accepted {
        Outcome::Accept {
            message: verdict.user_message,
        }
    } else {
        Outcome::Reject {
            message: verdict.user_message,
        }
    };
    // The verdict's entry first, then the note that a PIN change is due.
    let mut decision = Decision::done(outcome).audited(entry);
    if let Some(note) = noted {
        decision = decision.audited(note);
    }
    decision.once_durable().concluded(super::Concluded {
        login,
        accepted,
        detail: verdict.detail,
        serials: verdict.serials,
    })
}

fn join_messages(first: &str, second: &str) -> String {
    if first.is_empty() {
        second.to_owned()
    } else {
        format!("{first} {second}")
    }
}

/// One prompt shows every challenged token's question (privacyIDEA joins unique messages with
/// ", "); a token without its own asks the policy's `challenge_text` or privacyIDEA's default.
fn challenge_prompt(
    live: &Live,
    ctx: &policy::Context<'_>,
    user: &ResolvedUser,
    challenged: &[Challenged],
) -> String {
    let mut messages: Vec<String> = Vec::new();
    for c in challenged {
        let text = c.message.clone().unwrap_or_else(|| {
            live.policies
                .text(
                    Action::ChallengeText,
                    ctx,
                    &[
                        ("user", &user.owner.login),
                        ("realm", &user.owner.realm),
                        ("serial", &c.serial),
                    ],
                )
                .unwrap_or_else(|| "please enter otp: ".to_owned())
        });
        if !messages.contains(&text) {
            messages.push(text);
        }
    }
    messages.join(", ")
}
