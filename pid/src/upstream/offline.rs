//! Offline OTP values: what a privacyIDEA server hands out so that a laptop can log its user in
//! while the server cannot be reached.
//!
//! After an accepted online login with a token the server has attached `offline`, its answer
//! carries the next `count` HOTP values of that token, each as a passlib `pbkdf2_sha512` hash of
//! what the user will type (PIN and OTP, or the OTP alone after a challenge-response login):
//! `$pbkdf2-sha512$<rounds>$<salt>$<checksum>`, salt and checksum in passlib's "ab64" (base64
//! with `.` for `+`, no padding), checksum = PBKDF2-HMAC-SHA512(typed, salt, rounds, 64 bytes).
//! The server counts those values as spent: they are only good here.
//!
//! Threats and what this module does about them:
//! - A stolen laptop: the values are only hashes, each guess costs `rounds` iterations, and the
//!   store seals them with the host's key. A server that asks for fewer than [`MIN_ROUNDS`] is
//!   refused, so a misconfigured server cannot make the cache cheap to search.
//! - A hostile or broken server: every value is parsed and bounded before anything is kept
//!   (rounds at most [`MAX_ROUNDS`], so a login never spends seconds hashing; at most
//!   [`MAX_VALUES`] values), and one bad value refuses the whole answer.
//! - Replay: a value that logged the user in, and every value below it, is removed before the
//!   login is accepted (the caller makes that durable first).
//! - Guessing offline: only the [`WINDOW`] lowest counters are tried, as privacyIDEA's own
//!   clients do, and every one of them is computed on each try, so a wrong code costs the same
//!   as a right one and the time does not tell which value matched.

use serde::{Deserialize, Serialize};
use sha2::Sha512;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// How many of the lowest counters a typed code is checked against.
pub const WINDOW: usize = 10;
/// The fewest PBKDF2 rounds accepted from a server (privacyIDEA's default is 6549).
pub const MIN_ROUNDS: u32 = 1000;
/// The most PBKDF2 rounds accepted from a server: ten values at this cost stay well under a
/// second on a laptop.
pub const MAX_ROUNDS: u32 = 100_000;
/// The most values one token may hold here (privacyIDEA hands out 100 by default).
pub const MAX_VALUES: usize = 1000;

const SCHEME: &str = "pbkdf2-sha512";
const CHECKSUM_LEN: usize = 64;
const MIN_SALT_LEN: usize = 8;
const MAX_SALT_LEN: usize = 64;

/// Why a server's offline value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    #[error("an offline value is not a $pbkdf2-sha512$ROUNDS$SALT$CHECKSUM hash")]
    Format,
    #[error(
        "an offline value asks for {0} PBKDF2 rounds; pi accepts {MIN_ROUNDS} to {MAX_ROUNDS}"
    )]
    Rounds(u64),
    #[error("an offline value's salt is not {MIN_SALT_LEN} to {MAX_SALT_LEN} bytes of ab64")]
    Salt,
    #[error("an offline value's checksum is not {CHECKSUM_LEN} bytes of ab64")]
    Checksum,
    #[error("the offline counter {0:?} is not a number")]
    Counter(String),
    #[error("the server sent more than {MAX_VALUES} offline values for one token")]
    TooMany,
}

/// One offline value: the PBKDF2 parameters and the expected checksum.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineHash {
    rounds: u32,
    salt: Vec<u8>,
    checksum: Vec<u8>,
}

impl std::fmt::Debug for OfflineHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The checksum is what an attacker would search against: it stays out of logs.
        write!(f, "OfflineHash(rounds {})", self.rounds)
    }
}

/// passlib's ab64: the standard base64 alphabet with `.` in place of `+`, without padding.
fn ab64_decode(text: &str) -> Option<Vec<u8>> {
    if text.contains('+') {
        return None;
    }
    data_encoding::BASE64_NOPAD
        .decode(text.replace('.', "+").as_bytes())
        .ok()
}

impl OfflineHash {
    /// Parse and bound a value exactly as the server sent it.
    pub fn parse(text: &str) -> Result<OfflineHash, BadValue> {
        let mut parts = text.split('$');
        let (Some(""), Some(SCHEME), Some(rounds), Some(salt), Some(checksum), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(BadValue::Format);
        };
        if rounds.is_empty() || rounds.len() > 10 || !rounds.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadValue::Format);
        }
        let n: u64 = rounds.parse().map_err(|_| BadValue::Format)?;
        let rounds = u32::try_from(n)
            .ok()
            .filter(|r| (MIN_ROUNDS..=MAX_ROUNDS).contains(r))
            .ok_or(BadValue::Rounds(n))?;
        let salt = ab64_decode(salt)
            .filter(|s| (MIN_SALT_LEN..=MAX_SALT_LEN).contains(&s.len()))
            .ok_or(BadValue::Salt)?;
        let checksum = ab64_decode(checksum)
            .filter(|c| c.len() == CHECKSUM_LEN)
            .ok_or(BadValue::Checksum)?;
        Ok(OfflineHash {
            rounds,
            salt,
            checksum,
        })
    }

    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Whether `typed` is the value, compared in constant time.
    pub fn matches(&self, typed: &[u8]) -> bool {
        let mut out = zeroize::Zeroizing::new([0u8; CHECKSUM_LEN]);
        pbkdf2::pbkdf2_hmac::<Sha512>(typed, &self.salt, self.rounds, &mut out[..]);
        out.ct_eq(&self.checksum[..]).into()
    }
}

/// The offline values of one token, by HOTP counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values(BTreeMap<u64, OfflineHash>);

impl Values {
    /// The values of an answer's `response` object: counter (decimal text) → hash. One bad
    /// entry refuses them all: nothing from a bad answer is kept.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Values, BadValue> {
        let mut values = BTreeMap::new();
        for (counter, hash) in entries {
            if values.len() == MAX_VALUES {
                return Err(BadValue::TooMany);
            }
            let n = (!counter.is_empty()
                && counter.len() <= 20
                && counter.bytes().all(|b| b.is_ascii_digit()))
            .then(|| counter.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| BadValue::Counter(counter.chars().take(24).collect()))?;
            values.insert(n, OfflineHash::parse(hash)?);
        }
        Ok(Values(values))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lowest and highest counter held.
    pub fn range(&self) -> Option<(u64, u64)> {
        Some((*self.0.keys().next()?, *self.0.keys().next_back()?))
    }

    /// The counter whose value `typed` is, among the [`WINDOW`] lowest. All of them are
    /// computed whatever matches, so the time taken does not depend on `typed`.
    pub fn find(&self, typed: &[u8]) -> Option<u64> {
        let mut found = None;
        for (&counter, hash) in self.0.iter().take(WINDOW) {
            if hash.matches(typed) && found.is_none() {
                found = Some(counter);
            }
        }
        found
    }

    /// Remove the value at `counter` and every value below it: they can never be used again.
    pub fn spend_through(&mut self, counter: u64) {
        self.0 = self.0.split_off(&counter.saturating_add(1));
        if counter == u64::MAX {
            self.0.clear();
        }
    }

    /// Add a refill's values, keeping at most [`MAX_VALUES`] (the lowest: they come first).
    pub fn extend(&mut self, more: Values) {
        self.0.extend(more.0);
        while self.0.len() > MAX_VALUES {
            self.0.pop_last();
        }
    }
}

/// What one offline try decides, before anything is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offline {
    /// The typed code is the value at this counter.
    Match(u64),
    /// No value in the window is what was typed.
    NoMatch,
    /// Too many wrong codes since the last online login: offline logins wait for the server.
    Locked,
    /// The values are older than `offline_max_age_days`: they wait for the server.
    Expired,
}

/// The limits that hold for one token's cache.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wrong offline codes allowed before offline logins are refused.
    pub max_fails: u32,
    /// Seconds a hand-out stays usable (`None`: no limit).
    pub max_age_secs: Option<i64>,
}

/// Try `typed` against one token's values: the lockout and the age are checked first, without
/// computing anything.
pub fn try_offline(
    values: &Values,
    typed: &[u8],
    fails: u32,
    received_at: i64,
    now: i64,
    limits: Limits,
) -> Offline {
    if fails >= limits.max_fails {
        return Offline::Locked;
    }
    if limits
        .max_age_secs
        .is_some_and(|max| now - received_at > max)
    {
        return Offline::Expired;
    }
    match values.find(typed) {
        Some(counter) => Offline::Match(counter),
        None => Offline::NoMatch,
    }
}

/// Values for `counters`, each the hash of `typed(counter)` at the cheapest accepted cost.
#[cfg(test)]
pub(crate) fn test_values(counters: std::ops::Range<u64>, typed: impl Fn(u64) -> String) -> Values {
    let ab64 = |b: &[u8]| data_encoding::BASE64_NOPAD.encode(b).replace('+', ".");
    let salt = b"saltsalt";
    Values(
        counters
            .map(|c| {
                let mut out = [0u8; CHECKSUM_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(typed(c).as_bytes(), salt, MIN_ROUNDS, &mut out);
                let text = format!("$pbkdf2-sha512${MIN_ROUNDS}${}${}", ab64(salt), ab64(&out));
                (c, OfflineHash::parse(&text).expect("a valid test value"))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../../testdata/offline_pbkdf2.tsv");

    /// (typed, rounds, salt, hash) of each published vector.
    fn vectors() -> Vec<(&'static str, u32, Vec<u8>, &'static str)> {
        VECTORS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[0],
                    f[1].parse().unwrap(),
                    hex::decode(f[2]).unwrap(),
                    f[3],
                )
            })
            .collect()
    }

    #[test]
    fn published_offline_hashes_match_what_was_typed_and_nothing_else() {
        let vs = vectors();
        assert_eq!(vs.len(), 3);
        for (typed, rounds, salt, text) in vs {
            let h = OfflineHash::parse(text).unwrap();
            assert_eq!(h.rounds(), rounds);
            assert_eq!(h.salt, salt);
            assert!(h.matches(typed.as_bytes()), "{typed}");
            let mut wrong = typed.as_bytes().to_vec();
            let last = wrong.len() - 1;
            wrong[last] ^= 1;
            assert!(!h.matches(&wrong), "{typed}");
            assert!(!h.matches(b""));
        }
    }

    #[test]
    fn a_malformed_value_is_refused_with_its_reason() {
        let good = vectors()[0].3;
        let (head, checksum) = good.rsplit_once('$').unwrap();
        let cases: Vec<(String, BadValue)> = vec![
            (String::new(), BadValue::Format),
            (
                good.replace("pbkdf2-sha512", "pbkdf2-sha256"),
                BadValue::Format,
            ),
            (format!("{good}$"), BadValue::Format),
            (good.replacen("$1000$", "$$", 1), BadValue::Format),
            (good.replacen("$1000$", "$-1$", 1), BadValue::Format),
            (good.replacen("$1000$", "$999$", 1), BadValue::Rounds(999)),
            (
                good.replacen("$1000$", "$100001$", 1),
                BadValue::Rounds(100_001),
            ),
            (
                good.replacen("$1000$", "$4294967296$", 1),
                BadValue::Rounds(4_294_967_296),
            ),
            (good.replacen("MDEyMzQ1Njc4OQ", "MDEy", 1), BadValue::Salt),
            (
                good.replacen("MDEyMzQ1Njc4OQ", "MDEy+zQ1Njc4OQ", 1),
                BadValue::Salt,
            ),
            (format!("{head}${}", &checksum[..80]), BadValue::Checksum),
            (format!("{head}${checksum}AAAA"), BadValue::Checksum),
        ];
        for (text, want) in cases {
            assert_eq!(OfflineHash::parse(&text), Err(want), "{text}");
        }
    }

    fn values(counters: std::ops::Range<u64>) -> Values {
        test_values(counters, |c| format!("pin{c}"))
    }

    #[test]
    fn only_the_ten_lowest_counters_are_tried_and_a_match_spends_everything_below_it() {
        let mut v = values(5..25);
        assert_eq!(v.find(b"pin14"), Some(14));
        assert_eq!(v.find(b"pin15"), None, "beyond the window of ten");
        v.spend_through(14);
        assert_eq!(v.range(), Some((15, 24)));
        assert_eq!(v.find(b"pin14"), None, "spent");
        assert_eq!(v.find(b"pin9"), None, "skipped values are spent too");
        assert_eq!(v.find(b"pin24"), Some(24));
        v.spend_through(u64::MAX);
        assert!(v.is_empty());
    }

    #[test]
    fn the_lockout_and_the_age_are_checked_before_any_value_is_computed() {
        let v = values(0..3);
        let limits = Limits {
            max_fails: 3,
            max_age_secs: Some(100),
        };
        assert_eq!(
            try_offline(&v, b"pin1", 0, 1000, 1100, limits),
            Offline::Match(1)
        );
        assert_eq!(
            try_offline(&v, b"pin7", 2, 1000, 1100, limits),
            Offline::NoMatch
        );
        assert_eq!(
            try_offline(&v, b"pin1", 3, 1000, 1000, limits),
            Offline::Locked
        );
        assert_eq!(
            try_offline(&v, b"pin1", 0, 1000, 1101, limits),
            Offline::Expired
        );
        let no_age = Limits {
            max_age_secs: None,
            ..limits
        };
        assert_eq!(
            try_offline(&v, b"pin1", 0, 0, i64::MAX, no_age),
            Offline::Match(1)
        );
    }

    #[test]
    fn an_answer_with_one_bad_entry_or_too_many_values_is_refused_whole() {
        let good = vectors()[0].3;
        assert_eq!(Values::parse([("1", good), ("2", good)]).unwrap().len(), 2);
        assert_eq!(
            Values::parse([("1", good), ("x", good)]),
            Err(BadValue::Counter("x".into()))
        );
        assert_eq!(
            Values::parse([("1", good), ("2", "$pbkdf2-sha512$1$a$b")]),
            Err(BadValue::Rounds(1))
        );
        let counters: Vec<String> = (0..=MAX_VALUES).map(|c| c.to_string()).collect();
        assert_eq!(
            Values::parse(counters.iter().map(|c| (c.as_str(), good))),
            Err(BadValue::TooMany)
        );
    }

    #[test]
    fn a_refill_adds_values_and_never_grows_the_cache_past_its_bound() {
        let mut v = values(0..2);
        v.extend(values(2..4));
        assert_eq!(v.range(), Some((0, 3)));
        let many: Values = Values(
            (0..MAX_VALUES as u64 + 5)
                .map(|c| (c, v.0[&0].clone()))
                .collect(),
        );
        v.extend(many);
        assert_eq!(v.len(), MAX_VALUES);
        assert_eq!(v.range(), Some((0, MAX_VALUES as u64 - 1)));
    }

    #[test]
    fn a_hash_is_never_shown_in_debug_output() {
        let h = OfflineHash::parse(vectors()[0].3).unwrap();
        assert_eq!(format!("{h:?}"), "OfflineHash(rounds 1000)");
    }
}
