//! What e-mail and SMS tokens share (privacyIDEA's emailtoken and smstoken are HOTP tokens
//! with a server-held key): the PIN alone triggers a challenge that sends the next HOTP value to
//! the user's address or phone; the answer is checked like an HOTP code (look-ahead window,
//! each value once), and so is PIN+code in one answer (a code sent earlier by autosend). The
//! material sealed in the record is `key NUL destination`. One implementation serves both;
//! `email.rs` and `sms.rs` say only what differs: where the destination comes from, what a valid
//! one looks like, and how the prompt shows it.

use super::hotp::{hotp, Hotp};
use super::{
    ChallengeData, ChallengeError, Channel, CounterState, Delivery, EnrollBase, EnrollError,
    Material, OtpAlgorithm,
};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

/// A token type that sends its codes through one channel.
pub struct SentCode {
    pub channel: Channel,
    pub serial_prefix: &'static str,
    /// The destination given at enrollment.
    pub destination: fn(&EnrollRequest) -> Option<&str>,
    /// What to say when it is missing.
    pub missing: &'static str,
    /// `Err` says what a valid destination looks like.
    pub validate: fn(&str) -> Result<(), &'static str>,
    /// The destination as the prompt shows it.
    pub mask: fn(&str) -> String,
}

/// (key, destination) of the sealed material.
pub fn parts(material: &[u8]) -> Option<(&[u8], &str)> {
    let at = material.iter().rposition(|&b| b == 0)?;
    Some((
        &material[..at],
        std::str::from_utf8(&material[at + 1..]).ok()?,
    ))
}

impl OtpAlgorithm for SentCode {
    fn serial_prefix(&self) -> &'static str {
        self.serial_prefix
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        let to = (self.destination)(spec).ok_or(self.missing)?.trim();
        (self.validate)(to)?;
        let mut secret = Zeroizing::new(Vec::with_capacity(base.key.len() + 1 + to.len()));
        secret.extend_from_slice(&base.key);
        secret.push(0);
        secret.extend_from_slice(to.as_bytes());
        Ok(Material {
            secret,
            digits: base.digits,
            count_window: None,
            codes: Vec::new(),
        })
    }

    fn challenges_on_pin(&self) -> bool {
        true
    }

    /// Send HOTP(count), the next value the answer check expects.
    fn challenge(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        _now: i64,
    ) -> Result<ChallengeData, ChallengeError> {
        let (key, to) = parts(material).ok_or(ChallengeError::Unreadable(
            "the token's destination cannot be read",
        ))?;
        Ok(ChallengeData {
            message: Some(format!("Enter the code sent to {}: ", (self.mask)(to))),
            data: Zeroizing::new(Vec::new()),
            delivery: Some(Delivery {
                channel: self.channel,
                serial: rec.serial.clone(),
                to: to.to_owned(),
                otp: Zeroizing::new(hotp(key, rec.count, rec.digits, rec.hash)),
            }),
        })
    }

    /// PIN and a code received earlier (autosend) in one answer, as privacyIDEA allows.
    fn check(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        otp: &str,
        now: i64,
    ) -> Option<CounterState> {
        let (key, _) = parts(material)?;
        Hotp.check(rec, key, otp, now)
    }
}
