//! The authentication conversation: AuthBegin → AuthStep{prompt} → AuthContinue → AuthDone.
//! The daemon decides the prompts; the module only renders them.
//!
//! Authorisation: an administrator (root: sshd, sudo, login) may authenticate any user; any
//! other uid (a screen locker) only the account whose uid it runs as, and only so often.
//!
//! Every request ends in one `Decision` of the steps in `conversation`: the answer, the audit
//! entries that record it, and whether the answer reports a check. `settle` alone makes a
//! decision take effect, in one order: record the audit entries, then wait until they and the
//! check's store changes are on disk if the answer reports a check, then answer. So:
//!
//! - durable before success: a spent OTP stays spent if the daemon dies right after answering;
//! - durable before a retry prompt: the wrong answer's fail-counter charge is not lost;
//! - everything else is answered without waiting: a refusal before a check, or of a check that
//!   could not run (rate limit, unknown user, a limit policy, a store that did not answer),
//!   changed no token, a challenge charges no fail counter, and a flood of refusals must not
//!   queue for group commits. What they recorded goes to disk with the next commit, before any
//!   later success is answered.
//!
//! The parts: `conversation` (begin, proceed and their steps), `autoassign` (a user without a
//! token claims one of the realm's pool), `limits` (users' rate limit,
//! `auth_max_fail` / `auth_max_success`), `delivery` (codes sent for a challenge, autosend),
//! `mangle` (privacyIDEA's rewrites of the user name and of what the user typed), `pin_change`
//! (the new PIN of a login that found a PIN change due).

mod autoassign;
mod conversation;
mod delivery;
mod limits;
mod mangle;
mod pin_change;
mod upstream;

use crate::audit;
use crate::auth::session::{ConnState, Expect, Session};
use crate::caller::Caller;
use crate::error::{chain, PidError};
use crate::handlers::error_response;
use crate::policy;
use crate::users::ResolvedUser;
use crate::{Live, State};
use protocol::{AuthBegin, Outcome, Prompt, Response, Secret};
use std::sync::Arc;

pub use pin_change::change as change_pin;

/// Start a conversation (`AuthBegin`).
pub async fn begin(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    req: AuthBegin,
) -> Response {
    let turn = Turn::new(state, caller);
    let decision = conversation::begin(&turn, req).await;
    settle(&turn, conn, decision).await
}

/// Answer the prompt of `session` (`AuthContinue`). Only a session of this connection can be
/// answered: sessions live in its `ConnState`.
pub async fn proceed(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    session: u64,
    answer: Secret,
) -> Response {
    let turn = Turn::new(state, caller);
    let decision = match conn.sessions.take(session, state.session_ttl(caller)) {
        Some(session) => conversation::proceed(&turn, session, answer).await,
        None => Decision::refused(PidError::SessionExpired(
            "the authentication session is unknown or expired; start again".into(),
        )),
    };
    settle(&turn, conn, decision).await
}

/// One request of the conversation: who sent it, and the configuration it is served with (one
/// snapshot for the whole request, see `Live`).
struct Turn<'a> {
    state: &'a State,
    caller: &'a Caller,
    live: Arc<Live>,
}

impl<'a> Turn<'a> {
    fn new(state: &'a State, caller: &'a Caller) -> Turn<'a> {
        Turn {
            state,
            caller,
            live: state.live(),
        }
    }
}

/// Who is logging in, through what, from where.
struct Login {
    user: ResolvedUser,
    service: String,
    rhost: Option<String>,
    /// When the request arrived (unix seconds): policies' `time`, limits, audit.
    now: i64,
}

impl Login {
    /// The audit entry for this login, to be completed with the verdict.
    fn audit_entry(&self, turn: &Turn<'_>) -> audit::Draft {
        let mut entry = audit::entry(turn.caller, "auth", turn.state.clock.now());
        entry.user = Some(self.user.owner.login.clone());
        entry.realm = Some(self.user.owner.realm.clone());
        entry.service = Some(self.service.clone());
        entry.rhost = self.rhost.clone();
        entry
    }

    /// What policies are matched against for this login.
    fn context(&self) -> policy::Context<'_> {
        policy::Context {
            realm: &self.user.owner.realm,
            resolver: Some(&self.user.resolver),
            login: &self.user.owner.login,
            service: &self.service,
            rhost: self.rhost.as_deref(),
            now: Some(self.now),
            admin_groups: &[],
        }
    }
}

/// What one request of the conversation decided, before any of it takes effect (see `settle`).
struct Decision {
    answer: Answer,
    /// The audit trail's entries about it, in order.
    audit: Vec<audit::Draft>,
    /// The answer reports a check: it waits until the check's store changes and the audit
    /// entries are on disk.
    durable: bool,
    /// The login was checked and is over.
    concluded: Option<Box<Concluded>>,
}

enum Answer {
    /// The conversation ends with this outcome.
    Done(Outcome),
    /// The conversation goes on with this question, in a new session of the connection.
    Ask(Box<Question>),
    /// The request is refused with an error, not answered with an outcome.
    Refused(PidError),
}

/// The next question of a conversation.
struct Question {
    login: Login,
    /// What the answer is.
    expect: Expect,
    prompt: String,
}

/// A login that was checked and is over: what the operator's log says about it, and on success
/// the tokens that let it in (autosend sends their next codes).
struct Concluded {
    login: Login,
    accepted: bool,
    /// The verdict's detail, as the audit entry has it.
    detail: String,
    serials: Vec<String>,
}

impl Decision {
    fn new(answer: Answer) -> Decision {
        Decision {
            answer,
            audit: Vec::new(),
            durable: false,
            concluded: None,
        }
    }

    /// The conversation ends with `outcome`.
    fn done(outcome: Outcome) -> Decision {
        Decision::new(Answer::Done(outcome))
    }

    /// The request is refused with `e`.
    fn refused(e: PidError) -> Decision {
        Decision::new(Answer::Refused(e))
    }

    /// Ask `prompt` next; `expect` says what the answer is.
    fn ask(login: Login, expect: Expect, prompt: impl Into<String>) -> Decision {
        Decision::new(Answer::Ask(Box::new(Question {
            login,
            expect,
            prompt: prompt.into(),
        })))
    }

    /// Recorded with `entry` in the audit trail (after the entries before it).
    fn audited(mut self, entry: audit::Draft) -> Decision {
        self.audit.push(entry);
        self
    }

    /// Answered only once the check's changes and the audit entries are on disk.
    fn once_durable(mut self) -> Decision {
        self.durable = true;
        self
    }

    /// The login ends here: once durable, its log line is kept for after the answer and, on
    /// success, autosend sends the next codes.
    fn concluded(mut self, concluded: Concluded) -> Decision {
        self.concluded = Some(Box::new(concluded));
        self
    }
}

/// A store (user store, token store) could not answer: the login fails closed, the audit says
/// why, the operator's log has the cause.
fn unavailable(mut entry: audit::Draft, e: &PidError) -> Decision {
    tracing::error!(error = %chain(e), user = ?entry.user, "authentication check failed");
    entry.message = match e {
        PidError::UserStore(why) => format!("check failed: {}", chain(&**why)),
        _ => "check failed: internal error (see the daemon log)".into(),
    };
    Decision::done(Outcome::Unavailable).audited(entry)
}

/// The one place a decision takes effect: record its audit entries; if it reports a check, wait
/// until they and the check's changes are on disk (a store that cannot make them durable makes
/// the answer `Unavailable`); keep the operator's log line for after the answer and send
/// autosend's codes; answer.
async fn settle(turn: &Turn<'_>, conn: &mut ConnState, decision: Decision) -> Response {
    let state = turn.state;
    for entry in decision.audit {
        audit::record(state, entry);
    }
    if decision.durable {
        if let Err(e) = state.store.durable().await {
            tracing::error!(error = %chain(&e), "could not make the authentication durable");
            return Response::AuthDone(Outcome::Unavailable);
        }
    }
    if let Some(concluded) = decision.concluded {
        let Concluded {
            login,
            accepted,
            detail,
            serials,
        } = *concluded;
        let (who, service) = (login.user.owner.login.clone(), login.service.clone());
        conn.log_after_answer(move || {
            tracing::info!(user = %who, service, accepted, detail = %detail, "authentication")
        });
        // Only a login by one of the user's own tokens proves anything about the user; one let
        // through without a token (passOnNoToken, passthru) does not.
        conn.proof = (accepted && !serials.is_empty()).then(|| crate::auth::session::Proof {
            owner: login.user.owner.clone(),
            at: std::time::Instant::now(),
        });
        if accepted {
            delivery::autosend(turn, &login, &serials).await;
        }
    }
    match decision.answer {
        Answer::Done(outcome) => Response::AuthDone(outcome),
        Answer::Ask(question) => {
            open_session(turn, conn, *question).unwrap_or_else(|e| error_response(&e))
        }
        Answer::Refused(e) => error_response(&e),
    }
}

/// Ask the next question of the conversation in a new session of the connection.
fn open_session(
    turn: &Turn<'_>,
    conn: &mut ConnState,
    question: Question,
) -> Result<Response, PidError> {
    let Question {
        login,
        expect,
        prompt,
    } = question;
    let session = Session {
        user: login.user,
        service: login.service,
        rhost: login.rhost,
        started: std::time::Instant::now(),
        expect,
    };
    let (state, caller) = (turn.state, turn.caller);
    let max = state.sessions_per_connection(caller);
    match conn
        .sessions
        .insert(session, max, state.session_ttl(caller))
    {
        Some(id) => Ok(Response::AuthStep {
            session: id,
            prompt: Prompt::Secret { text: prompt },
        }),
        None => Err(PidError::RateLimited(
            "too many open authentication sessions on this connection".into(),
        )),
    }
}
