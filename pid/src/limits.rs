//! Small in-memory limiters: per-user serialisation of checks and per-uid rate limits.

use crate::store::Owner;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

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

#[cfg(test)]
mod tests {
    use super::*;

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
