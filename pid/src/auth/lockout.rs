//! Fail counters and lockout, per source of the attempts.
//!
//! privacyIDEA counts a token's wrong answers and, at `maxfail`, refuses it until an
//! administrator resets it (or `failcounter_clear_timeout` passes). That makes a one-line denial
//! of service: ten wrong answers through `su`, or through sshd from anywhere, lock a token —
//! root's included — for as long as nobody notices. Here:
//!
//! - Failures are counted **per source**: a local account's attempts (screen locker, `su`,
//!   `sudo`: whatever that account runs, see `Caller::account`) count against that account;
//!   root's own attempts with a remote host (sshd) against that host; root's attempts without
//!   one (the console, `login`) against the console. A remote host's failures never lock the
//!   console, and one local account's never lock root's or another account's logins.
//! - At `maxfail` failures a source is **locked for a while**: `failcounter_clear_timeout_mins`
//!   (default 1 minute), doubling with each further lock of that source, up to
//!   `lockout_max_mins` (default a day). After a lock ends, a single further failure locks the
//!   source again, for twice as long. A success from the source, or `pictl token reset`, clears
//!   it. `failcounter_clear_timeout_mins = 0` keeps privacyIDEA's behaviour: locked until an
//!   administrator resets the token.
//! - The sources one token tracks are bounded: the console, four local accounts and four remote
//!   hosts by name; further local accounts share one entry, further remote hosts another. So an
//!   attacker with many addresses gains at most that many fail counters, not one per address.
//!   docs/security.md gives the guesses per day this allows.

use crate::store::TokenRecord;
use serde::{Deserialize, Serialize};

/// Where login attempts come from, for counting their failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A local account (uid 0: the console, `login`, root's own programs).
    Local(u32),
    /// sshd (or another root program) on behalf of this remote host (`PAM_RHOST`).
    Remote(String),
    /// Local accounts beyond those tracked by name.
    OtherLocal,
    /// Remote hosts beyond those tracked by name.
    OtherRemote,
    /// Failures counted before they were counted per source: they hold for every source.
    Any,
}

/// Local accounts other than root tracked by name per token.
const LOCAL_TRACKED: usize = 4;
/// Remote hosts tracked by name per token.
const REMOTE_TRACKED: usize = 4;
/// A remote host's name is kept to this many bytes (it only needs to tell hosts apart).
const REMOTE_NAME_BYTES: usize = 64;

impl Source {
    /// The source of an attempt by `account` (see `Caller::account`), on behalf of `rhost`.
    /// `PAM_RHOST` counts only from root: a program a user runs may claim any remote host.
    pub fn of(account: u32, rhost: Option<&str>) -> Source {
        match rhost.filter(|h| !h.is_empty()) {
            Some(host) if account == 0 => {
                let mut end = host.len().min(REMOTE_NAME_BYTES);
                while !host.is_char_boundary(end) {
                    end -= 1;
                }
                Source::Remote(host[..end].to_owned())
            }
            _ => Source::Local(account),
        }
    }

    /// What administrators read: `uid 1004`, `console`, `host 192.0.2.7`.
    pub fn describe(&self) -> String {
        match self {
            Source::Local(0) => "console (root, no remote host)".into(),
            Source::Local(uid) => format!("uid {uid}"),
            Source::Remote(host) => format!("host {host}"),
            Source::OtherLocal => "other local accounts".into(),
            Source::OtherRemote => "other remote hosts".into(),
            Source::Any => "every source".into(),
        }
    }
}

/// One source's failures on one token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFails {
    pub source: Source,
    /// Wrong answers since the source's last success; stays at `maxfail` once reached.
    pub count: u32,
    /// How often the source was locked since its last success: the next lock lasts
    /// `first × 2^locks`.
    pub locks: u32,
    /// When the source's current lock began and when it ends (Unix seconds; `None`: only an
    /// administrator's reset ends it).
    pub locked: Option<(i64, Option<i64>)>,
}

impl SourceFails {
    fn locked_at(&self, now: i64) -> bool {
        match self.locked {
            Some((_, None)) => true,
            Some((_, Some(until))) => now < until,
            None => false,
        }
    }
}

/// How long locks last (`[tokens] failcounter_clear_timeout_mins`, `lockout_max_mins`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutRules {
    /// The first lock, seconds; 0: until an administrator resets the token.
    pub first_secs: i64,
    /// No lock lasts longer.
    pub max_secs: i64,
}

impl LockoutRules {
    /// How long the `nth` lock (1, 2, …) lasts; `None`: until reset.
    fn duration(&self, nth: u32) -> Option<i64> {
        if self.first_secs <= 0 {
            return None;
        }
        let doubled = self
            .first_secs
            .checked_mul(1i64 << nth.saturating_sub(1).min(40))
            .unwrap_or(i64::MAX);
        Some(doubled.min(self.max_secs.max(self.first_secs)))
    }
}

impl TokenRecord {
    /// The entry `source` is counted in: its own, or the shared one of its kind when this token
    /// already tracks as many sources of that kind as it may.
    fn counted_as(&self, source: &Source) -> Source {
        if self.fails.iter().any(|f| f.source == *source) {
            return source.clone();
        }
        let tracked = |local: bool| {
            self.fails
                .iter()
                .filter(|f| match &f.source {
                    Source::Local(uid) => local && *uid != 0,
                    Source::Remote(_) => !local,
                    _ => false,
                })
                .count()
        };
        match source {
            Source::Local(uid) if *uid != 0 && tracked(true) >= LOCAL_TRACKED => Source::OtherLocal,
            Source::Remote(_) if tracked(false) >= REMOTE_TRACKED => Source::OtherRemote,
            other => other.clone(),
        }
    }

    /// Whether attempts from `source` are refused at `now`, even with the right answer.
    pub fn locked_for(&self, source: &Source, now: i64) -> bool {
        let counted = self.counted_as(source);
        self.fails
            .iter()
            .any(|f| (f.source == counted || f.source == Source::Any) && f.locked_at(now))
    }

    /// One wrong answer from `source` at `now`: at `maxfail`, the source is locked.
    pub fn charge(&mut self, source: &Source, now: i64, rules: &LockoutRules) {
        let counted = self.counted_as(source);
        let maxfail = self.maxfail;
        let at = match self.fails.iter().position(|f| f.source == counted) {
            Some(at) => at,
            None => {
                self.fails.push(SourceFails {
                    source: counted,
                    count: 0,
                    locks: 0,
                    locked: None,
                });
                self.fails.len() - 1
            }
        };
        let f = &mut self.fails[at];
        f.count = (f.count + 1).min(maxfail);
        if f.count >= maxfail && !f.locked_at(now) {
            f.locks = f.locks.saturating_add(1);
            f.locked = Some((now, rules.duration(f.locks).map(|d| now.saturating_add(d))));
        }
    }

    /// A success from `source`: its failures (and what was counted before sources were) are
    /// forgiven. Other sources' stay: a success from the console does not unlock an attacker's
    /// host.
    pub fn clear_source(&mut self, source: &Source) {
        let counted = self.counted_as(source);
        self.fails
            .retain(|f| f.source != counted && f.source != Source::Any);
    }

    /// `pictl token reset`: every source's failures go.
    pub fn clear_all_sources(&mut self) {
        self.fails.clear();
    }

    /// The highest fail count of any source (what privacyIDEA shows as the token's
    /// `failcount`).
    pub fn failcount(&self) -> u32 {
        self.fails.iter().map(|f| f.count).max().unwrap_or(0)
    }

    /// Whether some source is locked at `now`, and since when the latest lock holds.
    pub fn locked_since(&self, now: i64) -> Option<i64> {
        self.fails
            .iter()
            .filter(|f| f.locked_at(now))
            .filter_map(|f| f.locked.map(|(since, _)| since))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    const RULES: LockoutRules = LockoutRules {
        first_secs: 60,
        max_secs: 86_400,
    };

    fn token(maxfail: u32) -> TokenRecord {
        let mut r = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        r.maxfail = maxfail;
        r
    }

    #[test]
    fn maxfail_failures_lock_a_source_for_a_time_that_doubles_with_each_lock() {
        let mut t = token(3);
        let attacker = Source::Remote("192.0.2.7".into());
        let mut now = 1_000;
        for _ in 0..3 {
            assert!(!t.locked_for(&attacker, now));
            t.charge(&attacker, now, &RULES);
        }
        assert!(t.locked_for(&attacker, now));
        assert!(t.locked_for(&attacker, now + 59));
        // Each lock ends, one more failure locks again, for twice as long, up to a day.
        let mut expected = 60;
        for _ in 0..15 {
            now += expected;
            assert!(!t.locked_for(&attacker, now), "a lock of {expected} s ends");
            t.charge(&attacker, now, &RULES);
            expected = (expected * 2).min(86_400);
            assert!(t.locked_for(&attacker, now + expected - 1), "{expected} s");
            assert!(!t.locked_for(&attacker, now + expected));
        }
        assert_eq!(expected, 86_400, "capped at a day");
        assert_eq!(t.failcount(), 3);
    }

    #[test]
    fn one_sources_failures_lock_neither_the_console_nor_another_account() {
        let mut t = token(3);
        let ssh = Source::Remote("198.51.100.1".into());
        for _ in 0..3 {
            t.charge(&ssh, 0, &RULES);
            t.charge(&Source::Local(1004), 0, &RULES);
        }
        assert!(t.locked_for(&ssh, 0));
        assert!(t.locked_for(&Source::Local(1004), 0));
        assert!(!t.locked_for(&Source::Local(0), 0), "the console");
        assert!(!t.locked_for(&Source::Local(1000), 0), "another account");
        assert!(!t.locked_for(&Source::Remote("203.0.113.9".into()), 0));
        t.clear_source(&Source::Local(0));
        assert!(
            t.locked_for(&ssh, 0),
            "a success elsewhere unlocks nobody else"
        );
        t.clear_source(&ssh);
        assert!(!t.locked_for(&ssh, 0), "a success from the host clears it");
        t.clear_all_sources();
        assert!(
            !t.locked_for(&Source::Local(1004), 0),
            "an admin reset clears all"
        );
    }

    #[test]
    fn the_sources_a_token_tracks_are_bounded_and_the_rest_share_one_count() {
        let mut t = token(2);
        for i in 0..50 {
            t.charge(&Source::Remote(format!("10.0.0.{i}")), 0, &RULES);
            t.charge(&Source::Local(2000 + i), 0, &RULES);
        }
        t.charge(&Source::Local(0), 0, &RULES);
        assert_eq!(t.fails.len(), 1 + LOCAL_TRACKED + REMOTE_TRACKED + 2);
        assert!(
            t.locked_for(&Source::Remote("10.0.0.99".into()), 0),
            "an untracked host shares the locked count of other hosts"
        );
        assert!(t.locked_for(&Source::Local(9999), 0));
        assert!(
            !t.locked_for(&Source::Local(0), 0),
            "the console has its own, once"
        );
    }

    #[test]
    fn with_no_clear_timeout_a_lock_holds_until_reset() {
        let mut t = token(1);
        let rules = LockoutRules {
            first_secs: 0,
            max_secs: 86_400,
        };
        t.charge(&Source::Local(0), 0, &rules);
        assert!(t.locked_for(&Source::Local(0), i64::MAX - 1));
        t.clear_all_sources();
        assert!(!t.locked_for(&Source::Local(0), 0));
    }

    #[test]
    fn failures_from_before_sources_hold_for_every_source_until_a_success() {
        let mut t = token(3);
        t.fails.push(SourceFails {
            source: Source::Any,
            count: 3,
            locks: 1,
            locked: Some((0, None)),
        });
        assert!(t.locked_for(&Source::Local(0), 10));
        assert!(t.locked_for(&Source::Remote("h".into()), 10));
        t.clear_all_sources();
        assert!(!t.locked_for(&Source::Local(0), 10));
    }

    #[test]
    fn a_remote_host_counts_only_when_root_asks() {
        assert_eq!(
            Source::of(0, Some("192.0.2.1")),
            Source::Remote("192.0.2.1".into())
        );
        assert_eq!(Source::of(0, None), Source::Local(0));
        assert_eq!(Source::of(0, Some("")), Source::Local(0));
        assert_eq!(
            Source::of(1004, Some("192.0.2.1")),
            Source::Local(1004),
            "a user's program may claim any host"
        );
        let long = "é".repeat(100);
        match Source::of(0, Some(&long)) {
            Source::Remote(h) => assert!(h.len() <= REMOTE_NAME_BYTES && long.starts_with(&h)),
            other => panic!("{other:?}"),
        }
    }
}
