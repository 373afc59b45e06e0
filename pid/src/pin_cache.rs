//! Remembered PIN verifications (`argon2.verified_pin_cache_secs`, off by default).
//!
//! At privacyIDEA's argon2 cost a PIN check is half a second of a core, so a host where the same
//! people log in over and over (a bastion, sudo in a loop) spends its cores on argon2. With the
//! cache on, a PIN that argon2 accepted for a token is remembered for a while, and the same PIN
//! for the same stored hash is accepted again without argon2.
//!
//! What is kept: for each stored PIN hash (the PHC string, unique per token and PIN because of
//! its salt), an HMAC-SHA256 tag of that hash and the PIN under a key drawn at start-up that
//! never leaves this process's memory, and an expiry. Only PINs argon2 accepted are kept.
//!
//! Threats and why this is opt-in:
//! - The store on disk is unchanged: a stolen disk or backup still faces argon2.
//! - Online guessing is unchanged: a PIN that was never accepted is never in the cache, so every
//!   wrong PIN still costs argon2 and raises the fail counter; a hit answers only what the login
//!   answers anyway (this PIN is right), so its speed leaks nothing. Tags are compared in
//!   constant time.
//! - A memory dump of the running daemon is the cost: with the key and a tag, the PINs used in
//!   the last `verified_pin_cache_secs` can be brute-forced at HMAC speed instead of argon2
//!   speed. Whoever can dump this process's memory already holds the seed key and can read PINs
//!   as they arrive, but the window is real, so the default is off.
//! - A PIN change writes a new hash with a new salt, so the old entry can no longer match; a
//!   deleted or disabled token is refused before its PIN is looked at.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// At most this many remembered PINs (~200 bytes each); when full, expired entries are dropped
/// and, if none has expired, nothing new is remembered until one does.
const CAPACITY: usize = 16_384;

type Tag = [u8; 32];

pub struct VerifiedPins {
    ttl: Duration,
    key: Zeroizing<[u8; 32]>,
    /// PHC string → (tag, expiry).
    entries: Mutex<HashMap<String, (Tag, Instant)>>,
}

impl VerifiedPins {
    /// `ttl` zero: nothing is ever remembered.
    pub fn new(ttl: Duration) -> VerifiedPins {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, key.as_mut());
        VerifiedPins {
            ttl,
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// None only if HMAC refused the key, which it does for no length: then nothing is cached.
    fn tag(&self, phc: &str, pin: &str) -> Option<Tag> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()).ok()?;
        // Length-prefixed so that no (hash, PIN) pair can pose as another.
        mac.update(&(phc.len() as u64).to_be_bytes());
        mac.update(phc.as_bytes());
        mac.update(pin.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Tag, Instant)>> {
        // Entries are written whole under the lock; a panic cannot leave one half-written.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Did argon2 accept exactly this PIN for this stored hash, less than `ttl` before `now`?
    pub fn accepts(&self, phc: &str, pin: &str, now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let Some(tag) = self.tag(phc, pin) else {
            return false;
        };
        match self.lock().get(phc) {
            Some((kept, expires)) => now < *expires && bool::from(kept.ct_eq(&tag)),
            None => false,
        }
    }

    /// argon2 has just accepted `pin` for `phc` at `now`.
    pub fn remember(&self, phc: &str, pin: &str, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let Some(tag) = self.tag(phc, pin) else {
            return;
        };
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(phc) {
            entries.retain(|_, (_, expires)| now < *expires);
            if entries.len() >= CAPACITY {
                return;
            }
        }
        entries.insert(phc.to_owned(), (tag, now + self.ttl));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    const OTHER_PHC: &str = "$argon2id$v=19$m=64,t=1,p=1$b3RoZXJzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

    #[test]
    fn a_remembered_pin_is_accepted_until_it_expires() {
        let pins = VerifiedPins::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(
            !pins.accepts(PHC, "1234", t0),
            "nothing before argon2 said yes"
        );
        pins.remember(PHC, "1234", t0);
        assert!(pins.accepts(PHC, "1234", t0 + Duration::from_secs(59)));
        assert!(!pins.accepts(PHC, "1234", t0 + Duration::from_secs(60)));
    }

    #[test]
    fn another_pin_or_another_hash_is_not_accepted() {
        let pins = VerifiedPins::new(Duration::from_secs(60));
        let t0 = Instant::now();
        pins.remember(PHC, "1234", t0);
        assert!(!pins.accepts(PHC, "1235", t0));
        assert!(!pins.accepts(PHC, "", t0));
        assert!(!pins.accepts(PHC, "12341", t0));
        assert!(
            !pins.accepts(OTHER_PHC, "1234", t0),
            "a new PIN hash (PIN changed) starts from argon2 again"
        );
    }

    #[test]
    fn switched_off_it_remembers_nothing() {
        let pins = VerifiedPins::new(Duration::ZERO);
        let t0 = Instant::now();
        pins.remember(PHC, "1234", t0);
        assert!(!pins.accepts(PHC, "1234", t0));
        assert_eq!(pins.len(), 0);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_and_never_grows_past_its_bound() {
        let pins = VerifiedPins::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..CAPACITY {
            pins.remember(&format!("{PHC}{i}"), "1234", t0);
        }
        pins.remember("late", "1234", t0 + Duration::from_secs(1));
        assert_eq!(pins.len(), CAPACITY);
        assert!(
            !pins.accepts("late", "1234", t0 + Duration::from_secs(1)),
            "full of live entries: the new one waits for argon2 next time"
        );
        let later = t0 + Duration::from_secs(11);
        pins.remember("late", "1234", later);
        assert_eq!(pins.len(), 1, "the expired ones made room");
        assert!(pins.accepts("late", "1234", later));
    }
}
