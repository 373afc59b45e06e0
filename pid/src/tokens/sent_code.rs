//! What e-mail and SMS tokens share (privacyIDEA's emailtoken and smstoken are HOTP tokens
//! with a server-held key): the PIN alone triggers a challenge that sends the next HOTP value to
//! the user's address or phone; the answer is checked like an HOTP code (look-ahead window,
//! each value once). The material sealed in the record is `key NUL destination`.

use super::hotp::{hotp, Hotp};
use super::OtpAlgorithm as _;
use super::{ChallengeData, Channel, CounterState, Delivery, EnrollBase, Material};
use crate::store::TokenRecord;
use zeroize::Zeroizing;

/// (key, destination) of the sealed material.
pub fn parts(material: &[u8]) -> Option<(&[u8], &str)> {
    let at = material.iter().rposition(|&b| b == 0)?;
    Some((
        &material[..at],
        std::str::from_utf8(&material[at + 1..]).ok()?,
    ))
}

/// The material for a new token sending to `to`.
pub fn enroll(base: EnrollBase, to: &str) -> Result<Material, String> {
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

/// The challenge: send HOTP(count), the next value the answer check expects.
pub fn challenge(
    rec: &TokenRecord,
    material: &[u8],
    channel: Channel,
    shown: String,
) -> Result<ChallengeData, String> {
    let (key, to) = parts(material).ok_or("the token's destination cannot be read")?;
    Ok(ChallengeData {
        message: Some(format!("Enter the code sent to {shown}: ")),
        data: Zeroizing::new(Vec::new()),
        delivery: Some(Delivery {
            channel,
            serial: rec.serial.clone(),
            to: to.to_owned(),
            otp: Zeroizing::new(hotp(key, rec.count, rec.digits, rec.hash)),
        }),
    })
}

/// The answer is an HOTP value in the look-ahead window.
pub fn check(rec: &TokenRecord, material: &[u8], otp: &str, now: i64) -> Option<CounterState> {
    let (key, _) = parts(material)?;
    Hotp.check(rec, key, otp, now)
}

/// `a***@example.org`: enough for the user to recognise the address, not to learn it.
pub fn masked_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `***1234`: the last four digits of a phone number.
pub fn masked_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***{tail}")
}
