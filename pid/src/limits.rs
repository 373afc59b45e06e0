//! Small in-memory limiters: per-user serialisation of checks, per-uid rate limits, and the
//! connections users (every account but root) hold.

use crate::store::Owner;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 256;

/// A fixed set of async locks; a user maps to one by hash. Bounded memory whatever the number
/// of users.
pub struct UserLocks {
    shards: Vec<tokio::sync::Mutex<()>>,
}

impl Default for UserLocks {
    fn default() -> Self {
        UserLocks {
            shards: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl UserLocks {
    pub async fn lock(&self, owner: &Owner) -> tokio::sync::MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        owner.hash(&mut h);
        self.shards[(h.finish() as usize) % SHARDS].lock().await
    }
}

/// Threat: a local user brute-forcing OTPs through a screen locker. Non-root callers may start
/// `limits.user_auth_per_minute` authentications per minute; the fail counter does the rest.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<u32, (i64, u32)>>,
}

impl RateLimiter {
    /// Count one attempt by `uid` at `now`; false when over `per_minute` (the configured limit,
    /// passed in so a reload takes effect at once).
    pub fn allow(&self, uid: u32, now: i64, per_minute: u32) -> bool {
        let Ok(mut map) = self.windows.lock() else {
            return false;
        };
        let minute = now.div_euclid(60);
        if map.len() > 10_000 {
            map.retain(|_, (m, _)| *m == minute);
        }
        let slot = map.entry(uid).or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
        slot.1 <= per_minute
    }
}

/// Connections held by users (every account but root, see `Caller::account`). Threat: one
/// local account opening connections until the daemon serves no more, which fails every login
/// on the host. Users together hold at most `limits.user_connections`, one user at most
/// `limits.user_connections_per_uid`; root's connections are not counted here, so the rest of
/// `max_connections` is always root's.
#[derive(Default)]
pub struct UserConnections {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: u32,
    by_uid: HashMap<u32, u32>,
}

/// Why a user's connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectionRefused {
    /// This uid holds its share already.
    Uid { held: u32 },
    /// Users together hold theirs.
    AllUsers { held: u32 },
}

/// One connection counted in `UserConnections`, released on drop.
pub struct UserConnection {
    connections: Arc<UserConnections>,
    uid: u32,
}

impl UserConnections {
    /// Count a connection of `uid`, unless that would exceed either limit (passed in so a
    /// reload takes effect at once).
    pub fn admit(
        self: &Arc<Self>,
        uid: u32,
        per_uid: u32,
        all_users: u32,
    ) -> Result<UserConnection, ConnectionRefused> {
        let mut held = self.lock();
        let mine = held.by_uid.get(&uid).copied().unwrap_or(0);
        if mine >= per_uid {
            return Err(ConnectionRefused::Uid { held: mine });
        }
        if held.total >= all_users {
            return Err(ConnectionRefused::AllUsers { held: held.total });
        }
        held.total += 1;
        *held.by_uid.entry(uid).or_insert(0) += 1;
        Ok(UserConnection {
            connections: self.clone(),
            uid,
        })
    }

    /// Connections users hold now, and how many of them the uid holding most has.
    pub fn held(&self) -> (u32, Option<(u32, u32)>) {
        let held = self.lock();
        let top = held
            .by_uid
            .iter()
            .max_by_key(|(_, &n)| n)
            .map(|(&uid, &n)| (uid, n));
        (held.total, top)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // Counters only: a panic elsewhere cannot leave them half-updated.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for UserConnection {
    fn drop(&mut self) {
        let mut held = self.connections.lock();
        held.total = held.total.saturating_sub(1);
        if let std::collections::hash_map::Entry::Occupied(mut e) = held.by_uid.entry(self.uid) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_its_share_and_users_together_theirs() {
        let c = Arc::new(UserConnections::default());
        let a1 = c.admit(1000, 2, 3).unwrap();
        let _a2 = c.admit(1000, 2, 3).unwrap();
        assert_eq!(
            c.admit(1000, 2, 3).err(),
            Some(ConnectionRefused::Uid { held: 2 })
        );
        let _b1 = c.admit(1001, 2, 3).unwrap();
        assert_eq!(
            c.admit(1002, 2, 3).err(),
            Some(ConnectionRefused::AllUsers { held: 3 })
        );
        assert_eq!(c.held(), (3, Some((1000, 2))));
        drop(a1);
        let _c1 = c
            .admit(1002, 2, 3)
            .expect("a closed connection frees its place");
        assert_eq!(c.held().0, 3, "three held again");
    }

    #[test]
    fn rate_limit_counts_per_uid_and_resets_each_minute() {
        let r = RateLimiter::default();
        assert!(r.allow(1000, 60, 2));
        assert!(r.allow(1000, 61, 2));
        assert!(!r.allow(1000, 62, 2));
        assert!(r.allow(1001, 62, 2), "other uid unaffected");
        assert!(r.allow(1000, 120, 2), "next minute");
    }
}
