//! pw (privacyIDEA's password token): a fixed password is the "one-time" part, typed after the
//! PIN; the record's key is the password itself (sealed like every key) and the OTP length is
//! its length, so PIN+password split as PIN+OTP do. Generated when not given: 12 letters and
//! digits. No counter and no replay protection: it is a password.

use super::{
    random_code, secret_matches, CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm,
};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Pw;

/// privacyIDEA's generated length for pw.
const GENERATED_LEN: usize = 12;

/// A token whose one-time part is a fixed secret: the given one (1 to 255 bytes without control
/// characters; its length is the OTP length, a u8), or `generated_len` random letters and digits
/// shown once. `what` names it in messages.
pub fn fixed_secret(
    given: Option<&protocol::Secret>,
    generated_len: usize,
    what: &str,
) -> Result<Material, EnrollError> {
    let (secret, codes) = match given {
        Some(p) => {
            let p = p.expose();
            if p.is_empty() || p.len() > 255 || p.chars().any(char::is_control) {
                return Err(EnrollError::refused(format!(
                    "the {what} must have 1 to 255 bytes without control characters"
                )));
            }
            (Zeroizing::new(p.as_bytes().to_vec()), Vec::new())
        }
        None => {
            let code = random_code(generated_len);
            (Zeroizing::new(code.as_bytes().to_vec()), vec![code])
        }
    };
    Ok(Material {
        digits: secret.len() as u8,
        secret,
        count_window: None,
        codes,
    })
}

impl OtpAlgorithm for Pw {
    fn serial_prefix(&self) -> &'static str {
        "PW"
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        if spec.otpkey.is_some() || spec.digits.is_some() || spec.hash.is_some() {
            return Err(
                "a pw token is a fixed password: give --password (or let pi generate \
                        one), not --otpkey, --digits or --hash"
                    .into(),
            );
        }
        fixed_secret(spec.password.as_ref(), GENERATED_LEN, "password")
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> Option<CounterState> {
        secret_matches(key, otp).then_some(CounterState::at(rec.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::{enroll_base as base, record};
    use protocol::{HashAlgorithm, Secret, TokenType};

    #[test]
    fn the_password_is_the_one_time_part_and_stays_valid() {
        let spec = EnrollRequest {
            password: Some(Secret::new("tr0ub4dor")),
            ..Default::default()
        };
        let m = Pw.enroll(&spec, base()).unwrap();
        assert_eq!((m.digits, m.codes.len()), (9, 0));
        let rec = record(TokenType::Pw, m.digits, HashAlgorithm::Sha1);
        assert!(Pw.check(&rec, &m.secret, "tr0ub4dor", 0).is_some());
        assert!(
            Pw.check(&rec, &m.secret, "tr0ub4dor", 0).is_some(),
            "reusable"
        );
        assert!(Pw.check(&rec, &m.secret, "tr0ub4dox", 0).is_none());
        assert!(
            Pw.check(&rec, b"", "", 0).is_none(),
            "an empty secret never matches"
        );
    }

    #[test]
    fn a_generated_password_is_shown_once_and_bad_parameters_are_refused() {
        let m = Pw.enroll(&EnrollRequest::default(), base()).unwrap();
        assert_eq!(m.codes.len(), 1);
        assert_eq!(m.codes[0].len(), GENERATED_LEN);
        assert_eq!(m.codes[0].as_bytes(), &m.secret[..]);
        for spec in [
            EnrollRequest {
                password: Some(Secret::new("")),
                ..Default::default()
            },
            EnrollRequest {
                password: Some(Secret::new("a\nb")),
                ..Default::default()
            },
            EnrollRequest {
                digits: Some(6),
                ..Default::default()
            },
        ] {
            assert!(Pw.enroll(&spec, base()).is_err());
        }
    }
}
