//! paper (privacyIDEA): an HOTP token whose codes are printed at enrollment — `count` of them
//! (100 by default), shown this once — and used in order. Verified like HOTP with a look-ahead
//! of the whole list, so a skipped code does not lock the rest of the sheet out.

use super::hotp::{hotp, Hotp};
use super::{CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Paper;

/// privacyIDEA's `papertoken_count` default.
const DEFAULT_COUNT: u32 = 100;
const MAX_COUNT: u32 = 1000;

impl OtpAlgorithm for Paper {
    fn serial_prefix(&self) -> &'static str {
        "PPR"
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        let count = spec.count.unwrap_or(DEFAULT_COUNT);
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(EnrollError::refused(format!(
                "--count {count}: a paper list has 1 to {MAX_COUNT} codes"
            )));
        }
        let codes = (0..count as u64)
            .map(|c| Zeroizing::new(hotp(&base.key, c, base.digits, base.hash)))
            .collect();
        Ok(Material {
            digits: base.digits,
            secret: base.key,
            count_window: Some(count),
            codes,
        })
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> Option<CounterState> {
        Hotp.check(rec, key, otp, now)
    }

    fn is_previous_otp(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> bool {
        Hotp.is_previous_otp(rec, key, otp, now)
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
        Hotp.resync(rec, key, otp1, otp2, now)
    }

    fn otpauth_type(&self) -> Option<&'static str> {
        // The list is the token: no app, no key to show.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    #[test]
    fn the_printed_list_is_rfc_4226_and_used_in_order() {
        let base = EnrollBase {
            key: Zeroizing::new(b"12345678901234567890".to_vec()),
            digits: 6,
            hash: HashAlgorithm::Sha1,
        };
        let spec = EnrollRequest {
            count: Some(5),
            ..Default::default()
        };
        let m = Paper.enroll(&spec, base).unwrap();
        let codes: Vec<&str> = m.codes.iter().map(|c| c.as_str()).collect();
        // RFC 4226 Appendix D.
        assert_eq!(codes, ["755224", "287082", "359152", "969429", "338314"]);
        let mut rec = record(TokenType::Paper, 6, HashAlgorithm::Sha1);
        rec.count_window = 5;
        let cs = Paper.check(&rec, &m.secret, "969429", 0).unwrap();
        assert_eq!(cs.count, 4, "skipping codes is fine");
        rec.count = cs.count;
        assert!(
            Paper.check(&rec, &m.secret, "287082", 0).is_none(),
            "an earlier code"
        );
        let bad = EnrollRequest {
            count: Some(0),
            ..Default::default()
        };
        let base = EnrollBase {
            key: Zeroizing::new(vec![1; 20]),
            digits: 6,
            hash: HashAlgorithm::Sha1,
        };
        assert!(Paper.enroll(&bad, base).is_err());
    }
}
