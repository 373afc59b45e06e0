//! daypassword (privacyIDEA): a TOTP with a long time step (a day by default) whose code is valid
//! for the whole current step and may be used again within it — a password that changes every
//! period, for people who log in many times a day from the same sheet or app. Only the current
//! step counts (no window, no drift); the matched step is stored as the count.
//!
//! Threat note: within its step the code is reusable by design, like a password; the fail
//! counter and `maxfail` still bound guessing.

use super::{code_matches, well_formed, CounterState, OtpAlgorithm};
use crate::store::TokenRecord;

pub struct Daypassword;

/// privacyIDEA's `daypassword.timeStep` default: one day.
pub const DEFAULT_PERIOD: u32 = 86_400;

fn step_of(t: i64, period: u32) -> u64 {
    t.div_euclid(period.max(1) as i64).max(0) as u64
}

impl OtpAlgorithm for Daypassword {
    fn serial_prefix(&self) -> &'static str {
        "DAYP"
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> Option<CounterState> {
        if !well_formed(otp, rec.digits) {
            return None;
        }
        let step = step_of(now, rec.period);
        code_matches(rec, key, step, otp).then_some(CounterState::at(step))
    }

    fn otpauth_type(&self) -> Option<&'static str> {
        // Authenticator apps know it as a TOTP with a long period.
        Some("totp")
    }

    fn otpauth_params(&self, rec: &TokenRecord) -> String {
        format!("&period={}", rec.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::{record, vectors};
    use protocol::{HashAlgorithm, TokenType};

    /// RFC 4226's key and codes (testdata/oath.tsv): with a day-long step, day N's
    /// code is HOTP(N).
    #[test]
    fn the_code_of_the_day_works_all_day_and_again() {
        let rows: Vec<_> = vectors()
            .into_iter()
            .filter(|r| r.0 == "hotp" && r.1 == HashAlgorithm::Sha1 && r.5 == 6)
            .collect();
        let key = rows[0].2.clone();
        let code = |n: u64| rows.iter().find(|r| r.3 == n).map(|r| r.6.clone()).unwrap();
        let codes = [code(0), code(1), code(2), code(3), code(4)];
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        let mut rec = record(TokenType::Daypassword, 6, HashAlgorithm::Sha1);
        rec.period = DEFAULT_PERIOD;
        let day3 = 3 * 86_400;
        for t in [day3, day3 + 43_200, day3 + 86_399] {
            let cs = Daypassword.check(&rec, &key, codes[3], t).unwrap();
            assert_eq!(cs.count, 3);
        }
        rec.count = 3;
        assert!(
            Daypassword.check(&rec, &key, codes[3], day3 + 10).is_some(),
            "reusable"
        );
        assert!(
            Daypassword.check(&rec, &key, codes[2], day3).is_none(),
            "yesterday"
        );
        assert!(
            Daypassword.check(&rec, &key, codes[4], day3).is_none(),
            "tomorrow"
        );
        assert!(Daypassword.check(&rec, &key, "12345", day3).is_none());
    }
}
