//! applspec (privacyIDEA's application-specific password): a fixed password that is valid only
//! through one PAM service — e.g. a mail client's password for `dovecot` that cannot open an
//! ssh session. Stored sealed as `service NUL password`; through any other service the token is
//! skipped (not charged), like privacyIDEA's `use_for_authentication`.

use super::pw::fixed_secret;
use super::{secret_matches, CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Applspec;

/// privacyIDEA's generated length for applspec.
const GENERATED_LEN: usize = 23;

/// (service, password) of the sealed material.
fn parts(material: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = material.iter().position(|&b| b == 0)?;
    Some((&material[..at], &material[at + 1..]))
}

impl OtpAlgorithm for Applspec {
    fn serial_prefix(&self) -> &'static str {
        "APPL"
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        let service = spec
            .service
            .as_deref()
            .ok_or("an applspec token is for one PAM service: give --service (e.g. dovecot)")?;
        crate::users::validate_name("PAM service", service)?;
        if spec.otpkey.is_some() || spec.digits.is_some() || spec.hash.is_some() {
            return Err(
                "an applspec token is a password: leave out --otpkey, --digits, --hash".into(),
            );
        }
        let m = fixed_secret(spec.password.as_ref(), GENERATED_LEN, "password")?;
        let mut secret = Zeroizing::new(Vec::with_capacity(service.len() + 1 + m.secret.len()));
        secret.extend_from_slice(service.as_bytes());
        secret.push(0);
        secret.extend_from_slice(&m.secret);
        Ok(Material { secret, ..m })
    }

    fn bound_to_service(&self) -> bool {
        true
    }

    fn serves(&self, material: &[u8], service: &str) -> bool {
        parts(material).is_some_and(|(s, _)| s == service.as_bytes())
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> Option<CounterState> {
        let (_, password) = parts(key)?;
        secret_matches(password, otp).then_some(CounterState::at(rec.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::{enroll_base as base, record};
    use protocol::{HashAlgorithm, Secret, TokenType};

    #[test]
    fn the_password_serves_only_its_service() {
        let spec = EnrollRequest {
            service: Some("dovecot".into()),
            password: Some(Secret::new("mailpass")),
            ..Default::default()
        };
        let m = Applspec.enroll(&spec, base()).unwrap();
        assert_eq!(m.digits, 8);
        assert!(Applspec.serves(&m.secret, "dovecot"));
        assert!(!Applspec.serves(&m.secret, "sshd"));
        let rec = record(TokenType::Applspec, m.digits, HashAlgorithm::Sha1);
        assert!(Applspec.check(&rec, &m.secret, "mailpass", 0).is_some());
        assert!(Applspec.check(&rec, &m.secret, "mailpasx", 0).is_none());
        assert!(
            Applspec.enroll(&EnrollRequest::default(), base()).is_err(),
            "no service"
        );
        let generated = EnrollRequest {
            service: Some("imap".into()),
            ..Default::default()
        };
        assert_eq!(
            Applspec.enroll(&generated, base()).unwrap().codes[0].len(),
            23
        );
    }
}
