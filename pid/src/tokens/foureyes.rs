//! 4eyes (privacyIDEA's foureyestoken): the two-man rule. The token of, say, `root` on a bastion
//! says how many distinct tokens of which realms must take part (`admins:2,security:1`); a login
//! as that user is the codes (PIN+OTP) of those tokens, typed together with a separator (a space
//! by default). The 4eyes token's own PIN is not asked in this single-shot form (privacyIDEA).
//!
//! The 4eyes token's PIN alone starts the challenge form instead: one admin's code per prompt
//! until the rule is met. The codes are checked in `auth::check` against the tokens of the named
//! realms (found through the store's user index); each counts once, and the ones used are spent
//! like any login's.

use super::{ChallengeData, ChallengeError, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct FourEyes;

/// The requirement sealed in the record: realms with counts, and the separator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub realms: Vec<(String, usize)>,
    pub separator: char,
}

/// `admins:2,security:1`.
fn parse_realms(text: &str) -> Result<Vec<(String, usize)>, EnrollError> {
    let bad = || {
        EnrollError::refused(format!(
            "--4eyes {text:?}: write REALM:COUNT[,REALM:COUNT], e.g. admins:2"
        ))
    };
    let mut out: Vec<(String, usize)> = Vec::new();
    for part in text.split(',') {
        let (realm, n) = part.trim().split_once(':').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        crate::users::validate_name("realm", realm.trim()).map_err(|_| bad())?;
        if !(1..=10).contains(&n) || out.iter().any(|(r, _)| r == realm.trim()) {
            return Err(bad());
        }
        out.push((realm.trim().to_owned(), n));
    }
    Ok(out)
}

/// The prompt for the next code of the challenge form.
pub fn prompt(realm: &str, missing: usize) -> String {
    format!("Code (PIN and OTP) of a token of realm {realm} ({missing} still needed): ")
}

pub fn requirement(material: &[u8]) -> Option<Requirement> {
    let text = std::str::from_utf8(material).ok()?;
    let (realms, sep) = text.split_once('\0')?;
    Some(Requirement {
        realms: parse_realms(realms).ok()?,
        separator: sep.chars().next()?,
    })
}

impl OtpAlgorithm for FourEyes {
    fn serial_prefix(&self) -> &'static str {
        "PI4E"
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        let realms = spec
            .foureyes
            .as_deref()
            .ok_or("a 4eyes token needs --4eyes REALM:COUNT[,REALM:COUNT]")?;
        parse_realms(realms)?;
        let sep = spec.separator.as_deref().unwrap_or(" ");
        let mut chars = sep.chars();
        let separator = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_ascii_alphanumeric() => c,
            _ => return Err("--separator is one character that is no letter or digit".into()),
        };
        if spec.otpkey.is_some() || spec.digits.is_some() || spec.hash.is_some() {
            return Err("a 4eyes token has no key: leave out --otpkey, --digits and --hash".into());
        }
        let text = format!("{realms}\0{separator}");
        Ok(Material::without_otp(Zeroizing::new(text.into_bytes())))
    }

    fn challenges_on_pin(&self) -> bool {
        true
    }

    /// The 4eyes token's PIN alone asks for the admins' codes one after another.
    fn challenge(
        &self,
        _rec: &TokenRecord,
        material: &[u8],
        _now: i64,
    ) -> Result<ChallengeData, ChallengeError> {
        let req = requirement(material).ok_or(ChallengeError::Unreadable(
            "the 4eyes requirement cannot be read",
        ))?;
        let (realm, n) = req
            .realms
            .first()
            .ok_or(ChallengeError::Unreadable("the 4eyes requirement is empty"))?;
        Ok(ChallengeData {
            message: Some(prompt(realm, *n)),
            data: Zeroizing::new(Vec::new()),
            delivery: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_and_bad_ones_are_refused() {
        let base = || EnrollBase {
            key: Zeroizing::new(vec![1; 20]),
            digits: 6,
            hash: protocol::HashAlgorithm::Sha1,
        };
        let spec = EnrollRequest {
            foureyes: Some("admins:2, security:1".into()),
            ..Default::default()
        };
        let m = FourEyes.enroll(&spec, base()).unwrap();
        let r = requirement(&m.secret).unwrap();
        assert_eq!(r.realms, [("admins".into(), 2), ("security".into(), 1)]);
        assert_eq!(r.separator, ' ');
        for bad in ["admins", "admins:0", "admins:2,admins:1", "a b:1", ""] {
            let spec = EnrollRequest {
                foureyes: Some(bad.into()),
                ..Default::default()
            };
            assert!(FourEyes.enroll(&spec, base()).is_err(), "{bad}");
        }
    }
}
