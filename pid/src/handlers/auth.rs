//! The authentication conversation (DESIGN §4): AuthBegin → AuthStep{prompt} → AuthContinue →
//! AuthDone. The daemon decides the prompts; the module only renders them.
//!
//! Authorisation: an administrator (root: sshd, sudo, login) may authenticate any user; any
//! other uid (a screen locker) only the account whose uid it runs as, and only so often.

use crate::audit;
use crate::auth::check::Input;
use crate::auth::lockout::Source;
use crate::auth::session::ConnState;
use crate::auth::session::{Challenge, Expect, Session};
use crate::auth::Verifier;
use crate::caller::Caller;
use crate::error::PidError;
use crate::handlers::{error_response, validate_text};
use crate::policy::{self, Action, AuthLimit, MangleKey};
use crate::store::HistoryKeep;
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
    // Users (su and sudo count for the account that started them) are rate limited; root's
    // logins (sshd, login) are bounded by the fail counters.
    if !caller.is_root_account() && !state.rate.allow(caller.account, now, per_minute) {
        entry.message = "rate limit for users reached (limits.user_auth_per_minute)".into();
        audit::record(state, entry);
        return Err(PidError::RateLimited(
            "too many authentication attempts from this uid; wait a minute".into(),
        ));
    }
    let (login, realm) = mangled_user(&live, &req, now);
    let (login, realm) = (login.as_str(), realm.as_str());
    entry.user = Some(login.to_owned());
    entry.realm = Some(realm.to_owned());
    if let Err(e) = users::validate_login(login) {
        entry.message = format!("refused user name: {e}");
        audit::record(state, entry);
        return Ok(Response::AuthDone(Outcome::UnknownUser));
    }
    // A user store that cannot answer (LDAP down, a realm whose file did not load) fails the
    // login closed, as unavailable, never as an unknown user (that could pass by policy).
    let resolved = match state.lookup_user(login, realm).await {
        Ok(resolved) => resolved,
        Err(e) => return Ok(unavailable(state, entry, &e)),
    };
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
        now: Some(now),
        admin_groups: &[],
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
    let tokens = crate::auth::login_tokens(state, &user.owner)?;
    let login = Login {
        user,
        service: &req.service,
        rhost: req.rhost.as_deref(),
        now,
    };
    if tokens.is_empty() {
        entry.message = "The user has no tokens assigned".into();
        if let Some(p) = live.policies.flag(Action::PassOnNoToken, &ctx) {
            return Ok(pass_by_policy(state, entry, "user has no token", p).await);
        }
        // privacyIDEA's passthru: only for a user without tokens, after passOnNoToken.
        if let Some(p) = live.policies.flag(Action::Passthru, &ctx) {
            let policy = p.to_owned();
            return match req.authtok {
                Some(password) => Ok(passthru(state, caller, login, password, &policy).await),
                None => open_session(
                    state,
                    caller,
                    conn,
                    &login,
                    Expect::StorePassword { policy },
                    "Password: ",
                ),
            };
        }
        audit::record(state, entry);
        return Ok(Response::AuthDone(hidden(hide, Outcome::NoToken)));
    }
    // The login may name someone else now (a reused name, a recreated account or entry): the
    // tokens belong to the person they were enrolled for.
    if !state.tokens_belong_to(login.user)? {
        entry.message = format!(
            "{}@{} now names another account ({}) than the one its tokens were enrolled for; \
             tokens refused",
            login.user.owner.login, login.user.owner.realm, login.user.user_id
        );
        tracing::warn!("{}", entry.message);
        audit::record(state, entry);
        return Ok(Response::AuthDone(Outcome::Reject {
            message: "This account changed since its tokens were enrolled; ask an administrator."
                .into(),
        }));
    }
    if let Some(authtok) = req.authtok {
        let authtok = mangled_pass(&live, &login, authtok);
        let input = Input::Pass(&authtok);
        return Ok(finish(state, caller, conn, login, input, Some(tokens), None).await);
    }
    let any_pin = tokens.iter().any(|t| t.rec.pin_hash.is_some());
    let text = if live.policies.otppin(&ctx) == policy::OtpPin::UserStore {
        "Password and one-time password: "
    } else if any_pin {
        "PIN and one-time password: "
    } else {
        "One-time password: "
    };
    open_session(state, caller, conn, &login, Expect::Pass, text)
}

pub async fn proceed(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    session: u64,
    answer: Secret,
) -> Response {
    let Some(s) = conn.sessions.take(session, state.session_ttl(caller)) else {
        return error_response(&PidError::SessionExpired(
            "the authentication session is unknown or expired; start again".into(),
        ));
    };
    let login = Login {
        user: &s.user,
        service: &s.service,
        rhost: s.rhost.as_deref(),
        now: state.clock.now(),
    };
    if answer.len() > MAX_ANSWER_LEN {
        let mut entry = login.audit_entry(state, caller);
        entry.message = format!("answer of {} bytes refused", answer.len());
        audit::record(state, entry);
        return Response::AuthDone(Outcome::Reject {
            message: format!("Input too long: at most {MAX_ANSWER_LEN} characters."),
        });
    }
    let answer = mangled_pass(&state.live(), &login, answer);
    let (input, challenge) = match &s.expect {
        Expect::Pass => (Input::Pass(&answer), None),
        Expect::ChallengeAnswer(ch) if ch.expired() => {
            let mut entry = login.audit_entry(state, caller);
            entry.message = "the challenge has expired".into();
            audit::record(state, entry);
            return Response::AuthDone(Outcome::Reject {
                message: "The challenge has expired; start again.".into(),
            });
        }
        Expect::ChallengeAnswer(ch) => (
            Input::Answer {
                otp: &answer,
                challenged: &ch.tokens,
            },
            Some(ch),
        ),
        Expect::StorePassword { policy } => {
            return passthru(state, caller, login, answer, policy).await;
        }
    };
    finish(state, caller, conn, login, input, None, challenge).await
}

/// Ask the next question of this conversation in a new session of the connection; `expect` says
/// what the answer is.
fn open_session(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    login: &Login<'_>,
    expect: Expect,
    prompt: &str,
) -> Result<Response, PidError> {
    let session = Session {
        user: login.user.clone(),
        service: login.service.to_owned(),
        rhost: login.rhost.map(str::to_owned),
        started: std::time::Instant::now(),
        expect,
    };
    let max = state.sessions_per_connection(caller);
    match conn
        .sessions
        .insert(session, max, state.session_ttl(caller))
    {
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
    /// When the request arrived (unix seconds): policies' `time`, limits, audit.
    now: i64,
}

impl Login<'_> {
    /// The audit entry for this login, to be completed with the verdict.
    fn audit_entry(&self, state: &State, caller: &Caller) -> audit::Draft {
        let mut entry = audit::entry(caller, "auth", state.clock.now());
        entry.user = Some(self.user.owner.login.clone());
        entry.realm = Some(self.user.owner.realm.clone());
        entry.service = Some(self.service.to_owned());
        entry.rhost = self.rhost.map(str::to_owned);
        entry
    }

    /// What policies are matched against for this login.
    fn context(&self) -> policy::Context<'_> {
        policy::Context {
            realm: &self.user.owner.realm,
            resolver: Some(&self.user.resolver),
            login: &self.user.owner.login,
            service: self.service,
            rhost: self.rhost,
            now: Some(self.now),
            admin_groups: &[],
        }
    }
}

/// privacyIDEA's `mangle` of `pass`: rewrites of what the user typed (e.g. strip a prefix a
/// client adds), chosen for this login.
fn mangled_pass(live: &crate::Live, login: &Login<'_>, pass: Secret) -> Secret {
    let mangles = live.policies.mangles(&login.context());
    if !mangles.iter().any(|m| m.key == MangleKey::Pass) {
        return pass;
    }
    let rewritten = mangles
        .iter()
        .fold(zeroize::Zeroizing::new(pass.expose().to_owned()), |p, m| {
            zeroize::Zeroizing::new(m.apply(MangleKey::Pass, &p))
        });
    Secret::new(rewritten.as_str())
}

/// privacyIDEA's `auth_max_fail` / `auth_max_success`: the user's logins in the period have
/// reached a limit, so this one is refused without looking at tokens or passwords. The message.
fn over_limit(
    state: &State,
    live: &crate::Live,
    login: &Login<'_>,
) -> Result<Option<String>, PidError> {
    let now = login.now;
    let ctx = login.context();
    let limits = [
        (false, live.policies.limit(Action::AuthMaxFail, &ctx)),
        (true, live.policies.limit(Action::AuthMaxSuccess, &ctx)),
    ];
    if limits.iter().all(|(_, l)| l.is_none()) {
        return Ok(None);
    }
    let history = state.store.auth_history(&login.user.owner)?;
    for (success, limit) in limits {
        let Some(AuthLimit {
            count,
            secs,
            period,
            ..
        }) = limit
        else {
            continue;
        };
        if history.count_since(success, now - secs) >= count as usize {
            let kind = if success { "successful" } else { "failed" };
            return Ok(Some(format!(
                "Only {count} {kind} authentications per {period} allowed."
            )));
        }
    }
    Ok(None)
}

/// The login goes on (its audit entry handed back) unless a limit policy refuses it; then the
/// refusal is audited and is the answer.
fn refuse_over_limit(
    state: &State,
    live: &crate::Live,
    login: &Login<'_>,
    mut entry: audit::Draft,
) -> Result<audit::Draft, Response> {
    match over_limit(state, live, login) {
        Ok(None) => Ok(entry),
        Ok(Some(msg)) => {
            entry.message = msg.clone();
            audit::record(state, entry);
            Err(Response::AuthDone(Outcome::Reject { message: msg }))
        }
        Err(e) => Err(unavailable(state, entry, &e)),
    }
}

/// Remember this login's outcome when a limit policy applies to the user.
fn record_outcome(state: &State, live: &crate::Live, login: &Login<'_>, now: i64, success: bool) {
    let ctx = login.context();
    let keep = [Action::AuthMaxFail, Action::AuthMaxSuccess]
        .into_iter()
        .filter_map(|a| live.policies.limit(a, &ctx))
        .fold(None, |acc: Option<HistoryKeep>, l| {
            let (count, secs) = (l.count as usize, l.secs);
            Some(match acc {
                None => HistoryKeep { count, secs },
                Some(k) => HistoryKeep {
                    count: k.count.max(count),
                    secs: k.secs.max(secs),
                },
            })
        });
    if let Some(keep) = keep {
        if let Err(e) = state
            .store
            .record_auth(&login.user.owner, now, success, keep)
        {
            // Fail closed on the next login instead: its history read fails the same way.
            tracing::error!(error = %e, "could not record the login for auth_max_* policies");
        }
    }
}

/// `passthru`: a user without tokens logs in with the password of the user store that found
/// them.
async fn passthru(
    state: &State,
    caller: &Caller,
    login: Login<'_>,
    password: Secret,
    policy: &str,
) -> Response {
    let entry = login.audit_entry(state, caller);
    let live = state.live();
    let now = login.now;
    let mut entry = match refuse_over_limit(state, &live, &login, entry) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let accepted = match state.check_user_password(login.user, password).await {
        Ok(ok) => ok,
        Err(e) => return unavailable(state, entry, &e),
    };
    record_outcome(state, &live, &login, now, accepted);
    entry.success = accepted;
    entry.message = if accepted {
        format!("against userstore due to '{policy}'")
    } else {
        format!("wrong user store password (passthru due to '{policy}')")
    };
    audit::record(state, entry);
    if let Err(e) = state.store.durable().await {
        tracing::error!(error = %e, "could not make the authentication durable");
        return Response::AuthDone(Outcome::Unavailable);
    }
    Response::AuthDone(if accepted {
        Outcome::Accept {
            message: String::new(),
        }
    } else {
        Outcome::Reject {
            message: crate::auth::check::GENERIC_REJECT.into(),
        }
    })
}

/// Send a challenge's code with the texts the policies choose (privacyIDEA's defaults: the code
/// alone, subject "Your OTP").
async fn deliver(
    live: &crate::Live,
    ctx: &policy::Context<'_>,
    user: &ResolvedUser,
    d: &crate::tokens::Delivery,
) -> Result<(), PidError> {
    let tags = [
        ("otp", d.otp.as_str()),
        ("serial", d.serial.as_str()),
        ("user", user.owner.login.as_str()),
        ("realm", user.owner.realm.as_str()),
    ];
    let (text_action, default) = match d.channel {
        crate::tokens::Channel::Email => (Action::EmailText, "<otp>"),
        crate::tokens::Channel::Sms => (Action::SmsText, "<otp>"),
    };
    let body = zeroize::Zeroizing::new(
        live.policies
            .text(text_action, ctx, &tags)
            .unwrap_or_else(|| policy::fill_tags(default, &tags)),
    );
    let subject = live
        .policies
        .text(Action::EmailSubject, ctx, &tags)
        .unwrap_or_else(|| "Your OTP".to_owned());
    crate::delivery::send(&live.config, d, &subject, body).await
}

/// `emailautosend` / `smsautosend`: after a login with an e-mail or SMS token, send its next code
/// right away, so the next login can be PIN and code in one answer. A failure is logged; the
/// login it follows stands.
async fn autosend(
    state: &State,
    live: &crate::Live,
    ctx: &policy::Context<'_>,
    user: &ResolvedUser,
    serials: &[String],
) {
    // The common case costs two policy look-ups, no store read.
    let email = live.policies.flag(Action::EmailAutoSend, ctx).is_some();
    let sms = live.policies.flag(Action::SmsAutoSend, ctx).is_some();
    if !email && !sms {
        return;
    }
    for serial in serials {
        let Ok(Some(v)) = state.store.get_token(serial) else {
            continue;
        };
        let wanted = match v.rec.token_type {
            protocol::TokenType::Email => email,
            protocol::TokenType::Sms => sms,
            _ => false,
        };
        if !wanted {
            continue;
        }
        let sent = async {
            let key = state.cipher.open(&v.rec.serial, "otpkey", &v.rec.otpkey)?;
            let c = crate::tokens::algorithm(v.rec.token_type)
                .challenge(&v.rec, &key, state.clock.now())
                .map_err(PidError::Delivery)?;
            match c.delivery {
                Some(d) => deliver(live, ctx, user, &d).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = sent {
            tracing::error!(error = %e, serial = %serial, "autosend: the next code was not sent");
        }
    }
}

/// A store (user store, token store) could not answer: the login fails closed, the audit says
/// why, the operator's log has the cause.
fn unavailable(state: &State, mut entry: audit::Draft, e: &PidError) -> Response {
    tracing::error!(error = %e, user = ?entry.user, "authentication check failed");
    entry.message = match e {
        PidError::UserStore(m) => format!("check failed: {m}"),
        _ => "check failed: internal error (see the daemon log)".into(),
    };
    audit::record(state, entry);
    Response::AuthDone(Outcome::Unavailable)
}

/// The login and realm after privacyIDEA's `mangle`: the rewrites chosen for the name as typed
/// apply to the name (then split again into login and realm) and to the realm.
fn mangled_user(live: &crate::Live, req: &AuthBegin, now: i64) -> (String, String) {
    let (login, realm) = live.realms.split(&req.user, None);
    let ctx = policy::Context {
        realm,
        resolver: None,
        login,
        service: &req.service,
        rhost: req.rhost.as_deref(),
        now: Some(now),
        admin_groups: &[],
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
    mut entry: audit::Draft,
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
    answering: Option<&Challenge>,
) -> Response {
    let entry = login.audit_entry(state, caller);
    let live = state.live();
    let ctx = login.context();
    let now = login.now;
    let mut entry = match refuse_over_limit(state, &live, &login, entry) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let user = login.user;
    let rules = crate::auth::check::Rules {
        reset_all_user_tokens: live
            .policies
            .flag(Action::ResetAllUserTokens, &ctx)
            .is_some(),
        last_auth: live.policies.last_auth(&ctx),
        source: Source::of(caller.account, login.rhost),
        lockout: live.config.tokens.lockout(),
        service: login.service.to_owned(),
        // An answer to a challenge is the OTP alone; it never triggers another challenge.
        challenge_types: match input {
            Input::Pass(_) => live.policies.challenge_types(&ctx),
            Input::Answer { .. } => Vec::new(),
        },
    };
    let otppin = live.policies.otppin(&ctx);
    let verdict =
        match crate::auth::check_user_pass(state, user, input, prefetched, &rules, otppin).await {
            Ok(v) => v,
            Err(e) => return unavailable(state, entry, &e),
        };
    entry.success = verdict.accepted;
    entry.message = verdict.detail.clone();
    entry.serial = (!verdict.serials.is_empty()).then(|| verdict.serials.join(","));
    entry.token_type = verdict.token_type.clone();
    audit::record(state, entry);
    if !verdict.challenge.is_empty() {
        // A challenge is not a login attempt: auth_max_* do not count it (privacyIDEA).
        // One prompt shows every token's question (privacyIDEA joins unique messages with ", ").
        let mut messages: Vec<String> = Vec::new();
        for c in &verdict.challenge {
            let text = c.message.clone().unwrap_or_else(|| {
                live.policies
                    .text(
                        Action::ChallengeText,
                        &ctx,
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
        let text = messages.join(", ");
        for d in &verdict.deliveries {
            if let Err(e) = deliver(&live, &ctx, user, d).await {
                tracing::error!(error = %e, user = %user.owner.login, "no code sent");
                let mut entry = login.audit_entry(state, caller);
                entry.message = e.to_string();
                audit::record(state, entry);
                return Response::AuthDone(Outcome::Reject {
                    message: "The code could not be sent; try again later or ask an \
                              administrator."
                        .into(),
                });
            }
        }
        let expect = Expect::ChallengeAnswer(Challenge::new(verdict.challenge, text.clone()));
        return open_session(state, caller, conn, &login, expect, &text)
            .unwrap_or_else(|e| error_response(&e));
    }
    record_outcome(state, &live, &login, now, verdict.accepted);
    // Durable before success: a spent OTP must stay spent if we crash right after answering.
    // Before a retry too: the wrong answer's fail-counter charge must not be lost.
    if let Err(e) = state.store.durable().await {
        tracing::error!(error = %e, "could not make the authentication durable");
        return Response::AuthDone(Outcome::Unavailable);
    }
    if let Some(again) = answering
        .filter(|_| verdict.may_retry)
        .and_then(Challenge::retry)
    {
        let prompt = format!("Wrong code, try again. {}", again.prompt);
        return open_session(
            state,
            caller,
            conn,
            &login,
            Expect::ChallengeAnswer(again),
            &prompt,
        )
        .unwrap_or_else(|e| error_response(&e));
    }
    let (who, service, accepted, detail) = (
        user.owner.login.clone(),
        login.service.to_owned(),
        verdict.accepted,
        verdict.detail.clone(),
    );
    conn.log_after_answer(
        move || tracing::info!(user = %who, service, accepted, detail = %detail, "authentication"),
    );
    if verdict.accepted {
        autosend(state, &live, &ctx, user, &verdict.serials).await;
    }
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
