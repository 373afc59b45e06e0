//! spass (privacyIDEA's simple pass): the whole answer is the PIN — the token PIN, or with
//! `otppin = userstore` the user's password. There is no one-time part (the token has 0
//! digits), so the OTP check only insists that nothing follows the PIN; the key generated at
//! enrollment is never used, and the token never triggers a challenge.
//!
//! Deliberate deviation (security): with `otppin = none` privacyIDEA accepts an empty answer for
//! a spass token, a "second factor" that asks for nothing. Here the PIN check refuses it (see
//! `auth::check`).

use super::{CounterState, OtpAlgorithm};
use crate::store::TokenRecord;

pub struct Spass;

impl OtpAlgorithm for Spass {
    fn serial_prefix(&self) -> &'static str {
        "PISP"
    }

    fn check(&self, rec: &TokenRecord, _key: &[u8], otp: &str, _now: i64) -> Option<CounterState> {
        otp.is_empty().then_some(CounterState {
            count: rec.count,
            time_shift: rec.time_shift,
        })
    }

    fn needs_pin(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    #[test]
    fn only_an_empty_one_time_part_passes() {
        let rec = record(TokenType::Spass, 0, HashAlgorithm::Sha1);
        assert!(Spass.check(&rec, b"k", "", 0).is_some());
        assert!(Spass.check(&rec, b"k", "1", 0).is_none());
        assert!(Spass.resync(&rec, b"k", "", "", 0).is_none());
    }
}
