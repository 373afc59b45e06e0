//! Conversation sessions. They live per connection (`ConnState`), so a session id is useless
//! on any other socket; they are bounded in number and in age.

use crate::store::Owner;
use crate::users::ResolvedUser;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Session {
    pub user: ResolvedUser,
    pub service: String,
    pub rhost: Option<String>,
    pub started: Instant,
    /// What the next answer is.
    pub expect: Expect,
}

/// What the prompt of a session asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// PIN+OTP (or, with `challenge_response`, the PIN alone).
    Pass,
    /// The OTP alone, answering a challenge.
    ChallengeAnswer(Challenge),
    /// The user's password in the user store: `passthru` for a user without tokens, allowed by
    /// this policy.
    StorePassword { policy: String },
    /// What a user of a realm served by the upstream server `server` types: PIN and OTP, or
    /// (with `challenge`) the answer to the server's challenge.
    Upstream {
        server: String,
        challenge: Option<UpstreamChallenge>,
    },
    /// Password (or new PIN) and the code of a token of the realm's pool: `autoassignment`
    /// for a user without tokens, set by this policy.
    Autoassign {
        mode: crate::policy::Autoassign,
        policy: String,
    },
}

/// A challenge the upstream server asked: answered with its transaction id while the server
/// keeps it open and this conversation has answers left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamChallenge {
    pub transaction_id: String,
    pub prompt: String,
    pub issued: Instant,
    /// Answers still accepted after the next one.
    pub retries_left: u8,
}

impl UpstreamChallenge {
    pub fn new(transaction_id: String, prompt: String) -> UpstreamChallenge {
        UpstreamChallenge {
            transaction_id,
            prompt,
            issued: Instant::now(),
            retries_left: CHALLENGE_ANSWERS - 1,
        }
    }

    /// The same challenge for one more answer, if it has answers and time left.
    pub fn retry(&self) -> Option<UpstreamChallenge> {
        (self.retries_left > 0 && self.issued.elapsed() < CHALLENGE_VALIDITY).then(|| {
            UpstreamChallenge {
                retries_left: self.retries_left - 1,
                ..self.clone()
            }
        })
    }
}

/// What lives as long as the connection: its conversations' sessions (they cannot be addressed
/// from elsewhere), and the log line of the request being answered. The connection owns it and
/// hands it to each request.
#[derive(Default)]
pub struct ConnState {
    pub sessions: Sessions,
    /// The last login this connection made with one of the user's tokens, if it is the last
    /// thing that happened on it: what a user's change to their own token requires.
    pub proof: Option<Proof>,
    /// A log line about the request being answered, written once the answer is sent: a write
    /// to the log (journald's socket, a file) is nothing a login should wait for.
    after_answer: Option<Box<dyn FnOnce() + Send>>,
}

impl ConnState {
    /// Log `line` after the answer to the current request has been sent (or failed to send).
    pub fn log_after_answer(&mut self, line: impl FnOnce() + Send + 'static) {
        self.after_answer = Some(Box::new(line));
    }

    /// The answer to the current request was sent, or could not be: write the line kept for
    /// then.
    pub fn answered(&mut self) {
        if let Some(line) = self.after_answer.take() {
            line();
        }
    }
}

/// How long a login stays good as proof for a change to the user's own token.
pub const PROOF_VALIDITY: Duration = Duration::from_secs(120);

/// A login accepted on this connection by a code of one of `owner`'s tokens (a recovery code
/// included; never a login let through without a token). A user deletes or resets their own
/// token only with one, so a shell left open as the user is not enough: the change also takes
/// something only the token's owner has. Used once; it lives only on this connection, so no
/// other process can use it.
#[derive(Clone, Debug)]
pub struct Proof {
    pub owner: Owner,
    pub at: Instant,
}

impl Proof {
    /// Whether this proof still stands for a change to `owner`'s tokens.
    pub fn proves(&self, owner: &Owner) -> bool {
        &self.owner == owner && self.at.elapsed() <= PROOF_VALIDITY
    }
}

#[derive(Default)]
pub struct Sessions {
    map: HashMap<u64, Session>,
}

impl Sessions {
    /// Add a session; the oldest expired ones are dropped first. `None` when the connection
    /// already holds `max` live sessions.
    pub fn insert(&mut self, session: Session, max: usize, ttl: Duration) -> Option<u64> {
        self.map.retain(|_, s| s.started.elapsed() < ttl);
        if self.map.len() >= max {
            return None;
        }
        let mut id = crate::crypto::random_u64();
        while id == 0 || self.map.contains_key(&id) {
            id = crate::crypto::random_u64();
        }
        self.map.insert(id, session);
        Some(id)
    }

    /// Take a live session out (it is re-inserted by the caller if the conversation goes on).
    pub fn take(&mut self, id: u64, ttl: Duration) -> Option<Session> {
        let s = self.map.remove(&id)?;
        (s.started.elapsed() < ttl).then_some(s)
    }

    pub fn put_back(&mut self, id: u64, session: Session) {
        self.map.insert(id, session);
    }
}

/// A challenge sent in this conversation (privacyIDEA: one transaction for every triggered
/// token). It may be answered until it expires or its answers run out; each wrong answer charges
/// the challenged tokens' fail counters, so `maxfail` ends it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Each challenged token with what its answer is checked against.
    pub tokens: Vec<crate::auth::check::Challenged>,
    /// What the user was asked, repeated after a wrong answer.
    pub prompt: String,
    pub issued: Instant,
    /// Answers still accepted after the next one.
    pub retries_left: u8,
}

/// privacyIDEA's `DefaultChallengeValidityTime`.
pub const CHALLENGE_VALIDITY: Duration = Duration::from_secs(120);
/// Answers one challenge accepts in one conversation (the first and two retries).
pub const CHALLENGE_ANSWERS: u8 = 3;

impl Challenge {
    pub fn new(tokens: Vec<crate::auth::check::Challenged>, prompt: String) -> Challenge {
        Challenge {
            tokens,
            prompt,
            issued: Instant::now(),
            retries_left: CHALLENGE_ANSWERS - 1,
        }
    }

    pub fn expired(&self) -> bool {
        self.issued.elapsed() >= CHALLENGE_VALIDITY
    }

    /// The same challenge for one more answer after a wrong one, if it has answers and time left.
    pub fn retry(&self) -> Option<Challenge> {
        (self.retries_left > 0 && !self.expired()).then(|| Challenge {
            retries_left: self.retries_left - 1,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_line_kept_for_after_the_answer_is_logged_once_and_not_before() {
        let logged = Arc::new(AtomicUsize::new(0));
        let mut conn = ConnState::default();
        conn.answered();
        let counter = logged.clone();
        conn.log_after_answer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(logged.load(Ordering::SeqCst), 0, "not before the answer");
        conn.answered();
        conn.answered();
        assert_eq!(logged.load(Ordering::SeqCst), 1, "once, for its own answer");
    }

    #[test]
    fn a_proof_stands_only_for_its_own_user_and_only_for_a_while() {
        let alice = Owner {
            realm: "default".into(),
            login: "alice".into(),
        };
        let bob = Owner {
            realm: "default".into(),
            login: "bob".into(),
        };
        let fresh = Proof {
            owner: alice.clone(),
            at: Instant::now(),
        };
        assert!(fresh.proves(&alice));
        assert!(
            !fresh.proves(&bob),
            "alice's login proves nothing about bob"
        );
        let Some(then) = Instant::now().checked_sub(PROOF_VALIDITY + Duration::from_secs(1)) else {
            return; // a clock this young cannot hold an old proof
        };
        let stale = Proof {
            owner: alice.clone(),
            at: then,
        };
        assert!(!stale.proves(&alice), "an old login proves nothing");
    }
}
