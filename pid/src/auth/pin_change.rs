//! PIN changes through PAM (privacyIDEA's `change_pin_on_first_use` / `change_pin_every` and
//! its token's `next_pin_change`): when a PIN change falls due, and the tickets that let the
//! login that found it due set the new PIN.
//!
//! A login accepted with a token whose PIN change is due is answered with a ticket (128 random
//! bits) instead of a plain accept. The module keeps it in the PAM handle and sends it back with
//! the new PIN from `pam_sm_chauthtok`. Threats:
//! - a ticket that outlives its login, or is used twice → tickets expire after `TICKET_TTL`,
//!   and one is spent by the PIN it sets;
//! - another local account using a ticket it read or guessed → a ticket is bound to the uid
//!   that logged in (sshd, login and su run as root; a screen locker as its user), and is only
//!   ever looked up by the SHA-256 of what the caller sent, compared in constant time;
//! - guessing PINs against the PIN rules with one ticket → `ATTEMPTS` tries, then it is gone;
//! - a local account making the daemon hold unbounded memory → at most `PER_OWNER` tickets per
//!   token owner (the oldest makes room) and `TOTAL` in all (the oldest makes room; only a
//!   successful login makes a ticket, so filling the table takes that many second factors).

use crate::policy::{Action, Context, Decision, Policies, Scope, Value};
use crate::store::Owner;
use protocol::Secret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a ticket may be used after the login that made it.
pub const TICKET_TTL: Duration = Duration::from_secs(300);
/// New PINs a ticket may try against the PIN rules before it is gone.
pub const ATTEMPTS: u8 = 3;
/// Tickets held for one token owner at most.
pub const PER_OWNER: usize = 4;
/// Tickets held in all at most.
pub const TOTAL: usize = 1024;
/// Random bytes in a ticket.
const TICKET_BYTES: usize = 16;

/// When the PIN an administrator just set (at enrollment or with `pictl token set --pin`) must
/// change: now with `change_pin_on_first_use`, else after `change_pin_every`, else never.
pub fn due_after_admin_pin(policies: &Policies, owner: Option<&Owner>, now: i64) -> Option<i64> {
    let ctx = Context::of_owner(owner, now);
    if policies.flag(Action::ChangePinOnFirstUse, &ctx).is_some() {
        return Some(now);
    }
    due_after_own_pin(policies, owner, now)
}

/// When the PIN the owner just set (self-service `setpin`, or through PAM) must change: after
/// `change_pin_every`, else never.
pub fn due_after_own_pin(policies: &Policies, owner: Option<&Owner>, now: i64) -> Option<i64> {
    let ctx = Context::of_owner(owner, now);
    match policies.decide_in(Scope::Enrollment, Action::ChangePinEvery, &ctx) {
        Some(Decision {
            value: Value::Period(_, secs),
            ..
        }) => Some(now.saturating_add(*secs)),
        _ => None,
    }
}

/// What a ticket lets its holder do: set the PIN of this token of this owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub owner: Owner,
    pub serial: String,
}

struct Held {
    /// The SHA-256 of the ticket, compared in constant time once the map found it.
    digest: [u8; 32],
    uid: u32,
    grant: Grant,
    issued: Instant,
    attempts_left: u8,
}

/// The tickets of logins that found a PIN change due. In memory only: a restarted daemon
/// forgets them, and the next login finds the change due again.
#[derive(Default)]
pub struct Tickets {
    held: Mutex<HashMap<[u8; 32], Held>>,
}

fn digest(ticket: &[u8]) -> [u8; 32] {
    Sha256::digest(ticket).into()
}

impl Tickets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Held>> {
        // Every change under the lock is one insert or remove: a panic cannot leave it torn.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new ticket for `uid` to set the PIN of `grant`.
    pub fn issue(&self, uid: u32, grant: Grant) -> Secret {
        let ticket = Secret::new(hex::encode(&crate::crypto::random_bytes(TICKET_BYTES)[..]));
        let key = digest(ticket.expose().as_bytes());
        let mut held = self.lock();
        held.retain(|_, h| h.issued.elapsed() < TICKET_TTL);
        let oldest = |held: &HashMap<[u8; 32], Held>, mine: bool| {
            held.iter()
                .filter(|(_, h)| !mine || h.grant.owner == grant.owner)
                .min_by_key(|(_, h)| h.issued)
                .map(|(k, _)| *k)
        };
        if held
            .values()
            .filter(|h| h.grant.owner == grant.owner)
            .count()
            >= PER_OWNER
        {
            if let Some(k) = oldest(&held, true) {
                held.remove(&k);
            }
        }
        if held.len() >= TOTAL {
            if let Some(k) = oldest(&held, false) {
                held.remove(&k);
            }
        }
        held.insert(
            key,
            Held {
                digest: key,
                uid,
                grant,
                issued: Instant::now(),
                attempts_left: ATTEMPTS,
            },
        );
        ticket
    }

    /// What `ticket` grants to `uid`: `None` for a ticket that is unknown, expired, spent, or
    /// another uid's (the caller cannot tell which).
    pub fn grant(&self, ticket: &Secret, uid: u32) -> Option<Grant> {
        let key = digest(ticket.expose().as_bytes());
        let mut held = self.lock();
        let h = held.get(&key)?;
        if !crate::crypto::ct_eq(&h.digest, &key) || h.uid != uid {
            return None;
        }
        if h.issued.elapsed() >= TICKET_TTL {
            held.remove(&key);
            return None;
        }
        Some(h.grant.clone())
    }

    /// A new PIN was refused: one attempt fewer. The attempts left (0: the ticket is gone).
    pub fn charge(&self, ticket: &Secret) -> u8 {
        let key = digest(ticket.expose().as_bytes());
        let mut held = self.lock();
        let left = match held.get_mut(&key) {
            Some(h) => {
                h.attempts_left = h.attempts_left.saturating_sub(1);
                h.attempts_left
            }
            None => 0,
        };
        if left == 0 {
            held.remove(&key);
        }
        left
    }

    /// The PIN is set: the ticket is gone.
    pub fn spend(&self, ticket: &Secret) {
        self.lock().remove(&digest(ticket.expose().as_bytes()));
    }

    /// Tickets held now (expired ones included until the next issue).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(login: &str) -> Grant {
        Grant {
            owner: Owner {
                realm: "r".into(),
                login: login.into(),
            },
            serial: format!("S-{login}"),
        }
    }

    #[test]
    fn a_ticket_grants_its_token_to_its_uid_only() {
        let tickets = Tickets::default();
        let t = tickets.issue(0, grant("alice"));
        assert_eq!(t.len(), 2 * TICKET_BYTES);
        assert_eq!(tickets.grant(&t, 0), Some(grant("alice")));
        assert_eq!(tickets.grant(&t, 1000), None, "another uid");
        assert_eq!(tickets.grant(&Secret::new("00"), 0), None, "forged");
        tickets.spend(&t);
        assert_eq!(tickets.grant(&t, 0), None, "spent");
    }

    #[test]
    fn refused_pins_use_up_a_ticket() {
        let tickets = Tickets::default();
        let t = tickets.issue(0, grant("alice"));
        assert_eq!(tickets.charge(&t), ATTEMPTS - 1);
        assert_eq!(tickets.charge(&t), ATTEMPTS - 2);
        assert_eq!(tickets.charge(&t), 0);
        assert_eq!(tickets.grant(&t, 0), None);
    }

    #[test]
    fn tickets_are_bounded_per_owner_and_in_all() {
        let tickets = Tickets::default();
        let first = tickets.issue(0, grant("alice"));
        for _ in 0..PER_OWNER * 3 {
            tickets.issue(0, grant("alice"));
        }
        assert_eq!(tickets.len(), PER_OWNER);
        assert_eq!(tickets.grant(&first, 0), None, "the oldest made room");
        for i in 0..TOTAL * 2 {
            tickets.issue(0, grant(&format!("u{i}")));
        }
        assert_eq!(tickets.len(), TOTAL);
    }
}
