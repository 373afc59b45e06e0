//! Conversation sessions. They live per connection, so a session id is useless on any other
//! socket; they are bounded in number and in age.

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
    /// The OTP alone, answering a challenge sent for these serials.
    ChallengeAnswer(Vec<String>),
    /// The user's password in the user store: `passthru` for a user without tokens, allowed by
    /// this policy.
    StorePassword { policy: String },
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
