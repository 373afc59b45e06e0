//! mOTP (privacyIDEA's motp): code = the first `digits` hex characters of
//! md5(decimal(unix_time / 10) + secret_text + motppin). The secret is used as its hex *text*
//! (as mOTP apps do), and the mOTP PIN is part of every code: both are sealed together in the
//! record's key. Slots of 10 s, a window of 2 × count_window slots either side (±200 s by
//! default); a slot at or before the last accepted one is refused, so a code works once.
//!
//! md5 is what the mOTP algorithm is; it is only used here, never as a password hash.

use super::{CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use md5::{Digest, Md5};
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Motp;

const SLOT_SECS: i64 = 10;
/// privacyIDEA generates 16 random bytes.
const GENERATED_SECRET_BYTES: usize = 16;

/// Split the sealed material into (secret text, mOTP PIN).
fn parts(material: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = material.iter().position(|&b| b == 0)?;
    Some((&material[..at], &material[at + 1..]))
}

/// The code for `slot`, lower-case hex.
pub fn code(secret_text: &[u8], pin: &[u8], slot: i64, digits: u8) -> Zeroizing<String> {
    let mut h = Md5::new();
    h.update(slot.to_string().as_bytes());
    h.update(secret_text);
    h.update(pin);
    let full = Zeroizing::new(hex::encode(h.finalize()));
    Zeroizing::new(full[..(digits as usize).min(full.len())].to_owned())
}

impl OtpAlgorithm for Motp {
    fn serial_prefix(&self) -> &'static str {
        "PIMO"
    }

    fn min_key_bytes(&self) -> usize {
        // mOTP apps make 16-hex-digit secrets.
        8
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        let pin = spec
            .motppin
            .as_ref()
            .filter(|p| !p.is_empty())
            .ok_or("an mOTP token needs --motppin, the PIN typed into the mOTP app")?;
        if pin.len() > 64 || pin.expose().chars().any(char::is_control) {
            return Err("--motppin has at most 64 characters, no control characters".into());
        }
        if spec.hash.is_some() {
            return Err("mOTP always uses md5: leave out --hash".into());
        }
        let key = if spec.otpkey.is_some() {
            &base.key[..]
        } else {
            &base.key[..GENERATED_SECRET_BYTES.min(base.key.len())]
        };
        let text = Zeroizing::new(hex::encode(key));
        let mut secret = Zeroizing::new(Vec::with_capacity(text.len() + 1 + pin.len()));
        secret.extend_from_slice(text.as_bytes());
        secret.push(0);
        secret.extend_from_slice(pin.expose().as_bytes());
        Ok(Material {
            secret,
            digits: base.digits,
            count_window: None,
            // The mOTP app needs the secret text; shown this once.
            codes: if spec.otpkey.is_some() {
                Vec::new()
            } else {
                vec![Zeroizing::new(text.to_string())]
            },
        })
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> Option<CounterState> {
        let (text, pin) = parts(key)?;
        if otp.len() != rec.digits as usize || !otp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let typed = Zeroizing::new(otp.to_ascii_lowercase());
        let slot = now.div_euclid(SLOT_SECS);
        let w = 2 * rec.count_window.max(1) as i64;
        let lo = (slot - w).max(rec.count as i64 + 1);
        // Every slot is compared, with no early exit.
        let mut found = None;
        for s in lo..slot + w {
            let ok =
                crate::crypto::ct_eq(code(text, pin, s, rec.digits).as_bytes(), typed.as_bytes());
            if ok && found.is_none() {
                found = Some(s);
            }
        }
        found.map(|s| CounterState::at(s as u64))
    }

    fn is_previous_otp(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> bool {
        parts(key).is_some_and(|(text, pin)| {
            rec.count > 0
                && crate::crypto::ct_eq(
                    code(text, pin, rec.count as i64, rec.digits).as_bytes(),
                    otp.to_ascii_lowercase().as_bytes(),
                )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    /// testdata/motp.tsv: (secret_text, pin, unix_time, digits, otp).
    fn vectors() -> Vec<(String, String, i64, u8, String)> {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/motp.tsv"))
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[0].to_owned(),
                    f[1].to_owned(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[4].to_owned(),
                )
            })
            .collect()
    }

    fn material(text: &str, pin: &str) -> Vec<u8> {
        [text.as_bytes(), &[0], pin.as_bytes()].concat()
    }

    #[test]
    fn published_vectors_verify_once() {
        let rows = vectors();
        assert!(rows.len() >= 4);
        for (text, pin, t, digits, otp) in rows {
            assert_eq!(
                code(text.as_bytes(), pin.as_bytes(), t / 10, digits).as_str(),
                otp
            );
            let mut rec = record(TokenType::Motp, digits, HashAlgorithm::Sha1);
            let key = material(&text, &pin);
            let cs = Motp.check(&rec, &key, &otp, t).unwrap();
            assert_eq!(cs.count, (t / 10) as u64);
            assert!(Motp
                .check(&rec, &key, &otp.to_uppercase(), t + 100)
                .is_some());
            rec.count = cs.count;
            assert!(Motp.check(&rec, &key, &otp, t).is_none(), "replay");
            assert!(Motp.is_previous_otp(&rec, &key, &otp, t));
            let rec = record(TokenType::Motp, digits, HashAlgorithm::Sha1);
            assert!(
                Motp.check(&rec, &key, &otp, t + 10 * 200).is_none(),
                "outside the window"
            );
            assert!(
                Motp.check(&rec, &material(&text, "9"), &otp, t).is_none(),
                "other PIN"
            );
        }
    }

    #[test]
    fn enrollment_needs_the_motp_pin() {
        let base = || EnrollBase {
            key: Zeroizing::new(vec![0xab; 20]),
            digits: 6,
            hash: HashAlgorithm::Sha1,
        };
        assert!(Motp.enroll(&EnrollRequest::default(), base()).is_err());
        let spec = EnrollRequest {
            motppin: Some(protocol::Secret::new("1234")),
            ..Default::default()
        };
        let m = Motp.enroll(&spec, base()).unwrap();
        assert_eq!(m.codes[0].as_str(), "ab".repeat(16));
        assert_eq!(parts(&m.secret).unwrap().1, b"1234");
    }
}
