//! Logins of users in a realm an upstream privacyIDEA server serves (`[realms.NAME] upstream`).
//!
//! What the user typed (at the first prompt or answering a challenge) is tried against the
//! offline values first, as privacyIDEA's own clients do: the server counts handed-out values
//! as spent, so only this host can check them. Then
//! the server decides (`/validate/check`): accept (with new offline values to keep), reject, a
//! challenge to ask, or an unknown user. A server that cannot be reached, with no offline
//! value matching, is `ServerUnreachable`, never a hang: the client ends every exchange within
//! `timeout_secs`. Offline failures are counted only then, when nothing but this host decided.
//!
//! One user's attempts run one at a time (`UserLocks`), so two logins never both spend one
//! offline value.

use super::conversation::no_such_user;
use super::{limits, mangle, unavailable, Concluded, Decision, Login, Turn};
use crate::auth::check::GENERIC_REJECT;
use crate::auth::session::{Expect, UpstreamChallenge};
use crate::error::{chain, PidError};
use crate::policy;
use crate::store::Owner;
use crate::upstream::answer::Check;
use crate::upstream::cache::{Attempt, Cache};
use crate::upstream::{CheckFields, Client};
use protocol::{Outcome, Secret};
use std::sync::Arc;

/// The first prompt for a user of an upstream realm.
pub const FIRST_PROMPT: &str = "PIN and one-time password: ";
/// What the user is told when the server cannot be reached and nothing offline decided.
pub const UNREACHABLE: &str = "The authentication server cannot be reached; try again later.";
const LOCKED: &str = "The authentication server cannot be reached, and offline logins are \
                      locked after too many wrong codes until the next login with the server.";
/// privacyIDEA's error code for a user no resolver of the realm knows.
const ERR_UNKNOWN_USER: i64 = 904;

/// The user is in an upstream realm: check what the module already has, or ask.
pub(super) async fn start(
    turn: &Turn<'_>,
    login: Login,
    server: String,
    authtok: Option<Secret>,
) -> Decision {
    match authtok {
        Some(pass) => {
            let pass = mangle::pass(&turn.live, &login, pass);
            check(turn, login, &server, pass, None).await
        }
        None => Decision::ask(
            login,
            Expect::Upstream {
                server,
                challenge: None,
            },
            FIRST_PROMPT,
        ),
    }
}

/// Check what the user typed: PIN and OTP, or the answer to `challenge`.
pub(super) async fn check(
    turn: &Turn<'_>,
    login: Login,
    server: &str,
    typed: Secret,
    challenge: Option<UpstreamChallenge>,
) -> Decision {
    let entry = login.audit_entry(turn);
    let mut entry = match limits::refuse_over_limit(turn, &login, entry) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let (state, live) = (turn.state, &turn.live);
    let (Some(client), Some(cfg)) = (live.upstreams.get(server), live.config.upstream.get(server))
    else {
        let why = live.upstreams.broken(server).map_or_else(
            || format!("upstream {server} is not configured"),
            str::to_owned,
        );
        return unavailable(entry, &PidError::Startup(why));
    };
    let owner = login.user.owner.clone();
    let _one_at_a_time = state.user_locks.lock(&owner).await;

    // Every answer is tried offline, a challenge's too: after a challenge-response login the
    // server hands out values of the OTP alone, and the code the user's token shows next is one
    // of them, which the server already counts as spent.
    let max_age = cfg.offline_max_age_secs();
    let offline = match try_offline(turn, server, &owner, &typed, login.now, max_age).await {
        Ok(attempt) => attempt,
        Err(e) => return unavailable(entry, &e),
    };
    if let Attempt::Accepted { serial, counter } = &offline {
        limits::record_outcome(turn, &login, true);
        entry.success = true;
        entry.serial = Some(serial.clone());
        entry.message = format!("upstream {server}: offline value {counter} of {serial} accepted");
        refill_later(turn, client, &owner);
        // The value is spent here alone: on disk before the answer.
        return accepted(login, entry).once_durable();
    }

    let asked = {
        let (client, user) = (client.clone(), owner.login.clone());
        let tid = challenge.as_ref().map(|c| c.transaction_id.clone());
        let (service, rhost) = (login.service.clone(), login.rhost.clone());
        tokio::task::spawn_blocking(move || {
            let fields = CheckFields {
                transaction_id: tid.as_deref(),
                service: &service,
                rhost: rhost.as_deref(),
            };
            client.validate_check(&user, typed.expose(), &fields)
        })
        .await
    };
    let answer = match asked {
        Ok(answer) => answer,
        Err(e) => return unavailable(entry, &PidError::task("upstream check", e)),
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) if e.unreachable() => {
            return server_unreachable(turn, &owner, server, entry, &e, offline);
        }
        Err(e) => {
            tracing::error!(error = %chain(&e), user = %owner.login, "upstream check failed");
            entry.message = chain(&e).to_string();
            return Decision::done(Outcome::Unavailable).audited(entry);
        }
    };
    match answer {
        Check::Accept { serial, offline } => {
            let kept = keep_offline(turn, server, &owner, cfg.offline_max_fails(), &offline);
            if let Err(e) = kept {
                // The login stands: the values are only a convenience for later.
                tracing::error!(error = %chain(&e), user = %owner.login, "offline values not kept");
            }
            limits::record_outcome(turn, &login, true);
            entry.success = true;
            entry.serial = serial.clone();
            entry.message = match offline.len() {
                0 => format!("upstream {server}: accepted"),
                n => format!("upstream {server}: accepted; offline values of {n} token(s) kept"),
            };
            refill_later(turn, client, &owner);
            accepted(login, entry)
        }
        Check::Challenge(c) => {
            let mut prompt = c.messages.join(", ");
            if !prompt.ends_with(' ') {
                prompt.push(' ');
            }
            entry.message = format!("upstream {server}: challenge triggered");
            let expect = Expect::Upstream {
                server: server.to_owned(),
                challenge: Some(UpstreamChallenge::new(c.transaction_id, prompt.clone())),
            };
            Decision::ask(login, expect, prompt).audited(entry)
        }
        Check::Reject { message } => {
            entry.message = format!("upstream {server}: {message}");
            if let Some(again) = challenge.as_ref().and_then(UpstreamChallenge::retry) {
                let prompt = format!("Wrong code, try again. {}", again.prompt);
                let expect = Expect::Upstream {
                    server: server.to_owned(),
                    challenge: Some(again),
                };
                return Decision::ask(login, expect, prompt).audited(entry);
            }
            limits::record_outcome(turn, &login, false);
            rejected(login, entry, GENERIC_REJECT)
        }
        Check::Refused(r) if r.code == Some(ERR_UNKNOWN_USER) => {
            entry.message = format!("upstream {server}: {}", r.message);
            let ctx = login.context();
            no_such_user(
                live,
                entry,
                &policy::Context {
                    resolver: None,
                    ..ctx
                },
            )
        }
        Check::Refused(r) => {
            entry.message = format!("upstream {server} refused the request: {}", r.message);
            tracing::warn!(user = %owner.login, "{}", entry.message);
            rejected(login, entry, GENERIC_REJECT)
        }
    }
}

/// The offline values `server` handed out, in this daemon's store.
fn cache<'a>(turn: &'a Turn<'_>, server: &'a str) -> Cache<'a> {
    Cache {
        store: &turn.state.store,
        cipher: &turn.state.cipher,
        upstream: server,
    }
}

/// The user's offline values, tried off the executor (PBKDF2) in a turn of the host's hashing.
async fn try_offline(
    turn: &Turn<'_>,
    server: &str,
    owner: &Owner,
    typed: &Secret,
    now: i64,
    max_age_secs: Option<i64>,
) -> Result<Attempt, PidError> {
    // Most upstream users hold no offline values: they take no turn at the hashing the host's
    // PIN checks share, and no trip to the blocking pool.
    if !cache(turn, server).holds_values(owner)? {
        return Ok(Attempt::NoValues);
    }
    let state = turn.state;
    let _slot = state.hashing_slot().await?;
    let (store, cipher) = (state.store.clone(), state.cipher.clone());
    let (server, owner, typed) = (server.to_owned(), owner.clone(), typed.clone());
    tokio::task::spawn_blocking(move || {
        let cache = Cache {
            store: &store,
            cipher: &cipher,
            upstream: &server,
        };
        cache.try_typed(&owner, typed.expose(), now, max_age_secs)
    })
    .await
    .map_err(|e| PidError::task("offline check", e))?
}

/// Keep what the server handed out, and forgive earlier offline failures.
fn keep_offline(
    turn: &Turn<'_>,
    server: &str,
    owner: &Owner,
    max_fails: u32,
    items: &[crate::upstream::answer::OfflineItem],
) -> Result<(), PidError> {
    let cache = cache(turn, server);
    for item in items {
        cache.keep(owner, item, max_fails, turn.state.clock.now())?;
    }
    cache.forgive(owner)
}

/// The server could not be asked: nothing offline matched (counted), the values are locked or
/// too old, or the user has none.
fn server_unreachable(
    turn: &Turn<'_>,
    owner: &Owner,
    server: &str,
    mut entry: crate::audit::Draft,
    e: &crate::upstream::UpstreamError,
    offline: Attempt,
) -> Decision {
    tracing::warn!(error = %chain(e), user = %owner.login, "upstream server unreachable");
    let (offline_said, message) = match offline {
        Attempt::NoValues => ("no offline values", UNREACHABLE),
        Attempt::NoMatch => ("no offline value matched (counted)", UNREACHABLE),
        Attempt::Unusable { locked: true } => ("offline values locked by wrong codes", LOCKED),
        Attempt::Unusable { locked: false } => ("offline values too old", UNREACHABLE),
        Attempt::Accepted { .. } => ("accepted offline", UNREACHABLE),
    };
    entry.message = format!("{}; {offline_said}", chain(e));
    let decision = Decision::done(Outcome::ServerUnreachable {
        message: message.into(),
    });
    if offline != Attempt::NoMatch {
        return decision.audited(entry);
    }
    if let Err(e) = cache(turn, server).charge_failure(owner) {
        return unavailable(entry, &e);
    }
    // The failure counts before the answer: a lost count would give an extra guess.
    decision.audited(entry).once_durable()
}

/// An accepted login. The tokens are the server's: nothing local is sent after it (autosend).
/// An online accept spent nothing here (the server keeps its counters), so it is answered
/// without waiting for the store: its audit entry and any offline hand-out go to disk with the
/// next commit, and a crash before it loses nothing a later online login does not hand out
/// again.
fn accepted(login: Login, entry: crate::audit::Draft) -> Decision {
    let detail = entry.message.clone();
    Decision::done(Outcome::Accept {
        message: String::new(),
    })
    .audited(entry)
    .concluded(Concluded {
        login,
        accepted: true,
        detail,
        serials: Vec::new(),
    })
}

/// A refused login: the server charged its own fail counter, nothing here waits for the store.
fn rejected(login: Login, entry: crate::audit::Draft, message: &str) -> Decision {
    let detail = entry.message.clone();
    Decision::done(Outcome::Reject {
        message: message.into(),
    })
    .audited(entry)
    .concluded(Concluded {
        login,
        accepted: false,
        detail,
        serials: Vec::new(),
    })
}

/// Ask the server for the user's due refills after this answer, without delaying it.
fn refill_later(turn: &Turn<'_>, client: &Arc<Client>, owner: &Owner) {
    tokio::spawn(turn.state.refiller(client).run(Some(owner.clone())));
}
