//! daplug (privacyIDEA's daplugtoken): an HOTP token whose dongle types each digit as two
//! characters — the ASCII code of the digit in hex, written with the letters b…k for 0…9
//! (`1` = 0x31 → `ec`). The typed OTP is decoded to digits and checked as HOTP (look-ahead window,
//! each value once). The record's OTP length is the typed length, twice the digits.

use super::hotp::Hotp;
use super::{CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Daplug;

const LETTERS: &[u8; 10] = b"bcdefghijk";

/// `ecedee…` → `123…`; `None` if a pair is not a digit's code.
pub fn decode(typed: &str) -> Option<Zeroizing<String>> {
    let b = typed.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| LETTERS.iter().position(|&l| l == c.to_ascii_lowercase());
    let mut out = Zeroizing::new(String::with_capacity(b.len() / 2));
    for pair in b.chunks(2) {
        let code = nibble(pair[0])? * 16 + nibble(pair[1])?;
        let c = char::from_u32(code as u32).filter(char::is_ascii_digit)?;
        out.push(c);
    }
    Some(out)
}

/// `123…` → `ecedee…`, as the dongle types it.
pub fn encode(digits: &str) -> String {
    digits
        .bytes()
        .flat_map(|b| {
            [
                LETTERS[(b >> 4) as usize % 10],
                LETTERS[(b & 15) as usize % 10],
            ]
        })
        .map(char::from)
        .collect()
}

impl OtpAlgorithm for Daplug {
    fn serial_prefix(&self) -> &'static str {
        "DPLG"
    }

    fn standard_digits(&self) -> bool {
        false
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        if !matches!(base.digits, 6 | 8) {
            return Err("a daplug token has 6 or 8 digits".into());
        }
        if spec.otpkey.is_none() {
            return Err("a daplug dongle comes with its key: give it with --otpkey".into());
        }
        Ok(Material {
            digits: base.digits * 2,
            ..Material::key(base)
        })
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> Option<CounterState> {
        let digits = decode(otp)?;
        let as_hotp = as_hotp(rec);
        Hotp.check(&as_hotp, key, &digits, now)
    }

    fn is_previous_otp(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> bool {
        let as_hotp = as_hotp(rec);
        decode(otp).is_some_and(|d| Hotp.is_previous_otp(&as_hotp, key, &d, now))
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
        let as_hotp = as_hotp(rec);
        Hotp.resync(&as_hotp, key, &decode(otp1)?, &decode(otp2)?, now)
    }
}

/// The record as HOTP sees it: a daplug code has two characters per HOTP digit.
fn as_hotp(rec: &TokenRecord) -> TokenRecord {
    TokenRecord {
        digits: rec.digits / 2,
        ..rec.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    #[test]
    fn typed_pairs_decode_to_rfc_4226_codes() {
        assert_eq!(encode("123456"), "ecedeeefegeh");
        assert_eq!(decode("ecedeeefegeh").unwrap().as_str(), "123456");
        assert!(decode("ecedeeefegel").is_none(), "l is no digit letter");
        assert!(decode("ebec").is_some_and(|d| d.as_str() == "01"));
        let key = b"12345678901234567890";
        let mut rec = record(TokenType::Daplug, 12, HashAlgorithm::Sha1);
        // RFC 4226 counter 0: 755224.
        let cs = Daplug.check(&rec, key, &encode("755224"), 0).unwrap();
        assert_eq!(cs.count, 1);
        rec.count = 1;
        assert!(
            Daplug.check(&rec, key, &encode("755224"), 0).is_none(),
            "replay"
        );
        assert!(
            Daplug.check(&rec, key, "755224", 0).is_none(),
            "plain digits are not typed"
        );
    }
}
