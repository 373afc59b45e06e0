//! TOTP (RFC 6238) with privacyIDEA semantics: search [T-w, T+w) around the (drift-corrected)
//! current step, w = time_window / period; refuse a step at or before the last accepted one, so
//! a code works once and never after a newer one; store the matched step.
//!
//! Deliberate deviation (security): privacyIDEA re-centres its window on every accepted future
//! code, so a run of early codes can walk the window arbitrarily far. Here the learned drift moves
//! by at most one step per success and never beyond the window itself.

use super::hotp::find_counter;
use super::{code_matches, find_consecutive, well_formed, CounterState, OtpAlgorithm};
use crate::store::TokenRecord;

/// How far an explicit resync searches either side of now: one day.
pub const RESYNC_SECS: i64 = 86_400;

pub struct Totp;

fn step_of(t: i64, period: u32) -> i64 {
    t.div_euclid(period.max(1) as i64)
}

/// The next drift after accepting step `matched` at real step `real`: one step closer to the
/// observed offset at most, and within ±window.
fn next_shift(rec: &TokenRecord, matched: i64, real: i64) -> i64 {
    let period = rec.period.max(1) as i64;
    let observed = (matched - real) * period;
    let moved = observed.clamp(rec.time_shift - period, rec.time_shift + period);
    // An administrator's resync may have set a larger drift on purpose; logins never grow it.
    let bound = (rec.time_window as i64).max(rec.time_shift.abs());
    moved.clamp(-bound, bound)
}

impl OtpAlgorithm for Totp {
    fn serial_prefix(&self) -> &'static str {
        "TOTP"
    }

    /// From the current step on the token's clock (with its drift), never a step at or before
    /// the last one accepted.
    fn upcoming(&self, rec: &TokenRecord, now: i64, count: u64) -> Option<std::ops::Range<u64>> {
        let current = step_of(now.saturating_add(rec.time_shift), rec.period).max(0) as u64;
        let first = if rec.count > 0 {
            current.max(rec.count + 1)
        } else {
            current
        };
        Some(first..first.saturating_add(count))
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> Option<CounterState> {
        if !well_formed(otp, rec.digits) {
            return None;
        }
        let t = step_of(now.saturating_add(rec.time_shift), rec.period);
        let w = (rec.time_window / rec.period.max(1)) as i64;
        let lo = (t - w).max(0);
        let hi = (t + w).max(t + 1);
        // Replay: only steps after the last accepted one are candidates (count 0 = none yet).
        let lo = if rec.count > 0 {
            lo.max(rec.count as i64 + 1)
        } else {
            lo
        };
        if lo >= hi {
            return None;
        }
        let c = find_counter(key, lo as u64..hi as u64, otp, rec.digits, rec.hash)?;
        let real = step_of(now, rec.period);
        Some(CounterState {
            count: c,
            time_shift: next_shift(rec, c as i64, real),
        })
    }

    fn is_previous_otp(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> bool {
        rec.count > 0 && code_matches(rec, key, rec.count, otp)
    }

    fn can_resync(&self) -> bool {
        true
    }

    fn resync(
        &self,
        rec: &TokenRecord,
        key: &[u8],
        otp1: &str,
        otp2: &str,
        now: i64,
    ) -> Option<CounterState> {
        let real = step_of(now, rec.period);
        let span = RESYNC_SECS / rec.period.max(1) as i64;
        let lo = (real - span).max(rec.count as i64 + 1).max(0);
        let hi = (real + span).max(lo);
        find_consecutive(rec, key, lo as u64..hi as u64, otp1, otp2).map(|c| CounterState {
            count: c + 1,
            time_shift: (c as i64 + 1 - real) * rec.period as i64,
        })
    }

    fn otpauth_type(&self) -> Option<&'static str> {
        Some("totp")
    }

    fn otpauth_params(&self, rec: &TokenRecord) -> String {
        format!("&period={}", rec.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::hotp;
    use crate::tokens::hotp::tests::{record, vectors};
    use protocol::{HashAlgorithm, TokenType};

    #[test]
    fn published_totp_vectors_verify_at_their_time() {
        let rows: Vec<_> = vectors().into_iter().filter(|v| v.0 == "totp").collect();
        assert_eq!(rows.len(), 18);
        for (_, hash, key, time, period, digits, otp) in rows {
            let mut rec = record(TokenType::Totp, digits, hash);
            rec.period = period.unwrap();
            let m = Totp.check(&rec, &key, &otp, time as i64);
            assert_eq!(m.map(|m| m.count), Some(time / 30), "t={time} {hash:?}");
        }
    }

    fn key() -> Vec<u8> {
        b"12345678901234567890".to_vec()
    }

    fn code_at(step: u64) -> String {
        hotp(&key(), step, 6, HashAlgorithm::Sha1)
    }

    #[test]
    fn window_is_minus_w_to_plus_w_exclusive() {
        let rec = record(TokenType::Totp, 6, HashAlgorithm::Sha1);
        let now = 1_000_000 * 30 + 5;
        let t = 1_000_000u64;
        assert!(Totp.check(&rec, &key(), &code_at(t - 6), now).is_some());
        assert!(Totp.check(&rec, &key(), &code_at(t + 5), now).is_some());
        assert!(Totp.check(&rec, &key(), &code_at(t - 7), now).is_none());
        assert!(Totp.check(&rec, &key(), &code_at(t + 6), now).is_none());
    }

    #[test]
    fn reused_or_older_step_is_refused() {
        let mut rec = record(TokenType::Totp, 6, HashAlgorithm::Sha1);
        let now = 1_000_000 * 30;
        let m = Totp.check(&rec, &key(), &code_at(1_000_000), now).unwrap();
        rec.count = m.count;
        assert!(
            Totp.check(&rec, &key(), &code_at(1_000_000), now).is_none(),
            "replay"
        );
        assert!(
            Totp.check(&rec, &key(), &code_at(999_999), now).is_none(),
            "older step"
        );
        assert!(Totp
            .check(&rec, &key(), &code_at(1_000_001), now + 30)
            .is_some());
        assert!(Totp.is_previous_otp(&rec, &key(), &code_at(1_000_000), now));
    }

    #[test]
    fn drift_moves_one_step_per_success_and_stays_bounded() {
        let mut rec = record(TokenType::Totp, 6, HashAlgorithm::Sha1);
        let mut now = 1_000_000 * 30;
        // The phone runs 5 steps ahead: every success moves the drift by one step only.
        for expected in [30, 60, 90, 120, 150] {
            let t = (now / 30) as u64;
            let m = Totp.check(&rec, &key(), &code_at(t + 5), now).unwrap();
            rec.count = m.count;
            rec.time_shift = m.time_shift;
            assert_eq!(rec.time_shift, expected);
            now += 300;
        }
        // Never beyond the window (180 s).
        rec.time_shift = 180;
        assert_eq!(next_shift(&rec, 1000, 900), 180);
    }

    #[test]
    fn sixty_second_steps_work() {
        let mut rec = record(TokenType::Totp, 8, HashAlgorithm::Sha256);
        rec.period = 60;
        let key32 = b"12345678901234567890123456789012".to_vec();
        let now = 1_234_567_890;
        let code = hotp(&key32, (now / 60) as u64, 8, HashAlgorithm::Sha256);
        assert!(Totp.check(&rec, &key32, &code, now).is_some());
    }

    #[test]
    fn resync_sets_drift_from_two_consecutive_codes() {
        let rec = record(TokenType::Totp, 6, HashAlgorithm::Sha1);
        let now = 1_000_000 * 30;
        let m = Totp
            .resync(&rec, &key(), &code_at(1_000_100), &code_at(1_000_101), now)
            .unwrap();
        assert_eq!(m.count, 1_000_101);
        assert_eq!(m.time_shift, 101 * 30);
    }
}
