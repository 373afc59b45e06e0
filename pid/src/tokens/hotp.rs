//! HOTP (RFC 4226) with privacyIDEA semantics: look ahead `count_window` values from the stored
//! counter (end exclusive); on a match at c store c+1, so every value is usable once and older
//! values never again.

use super::{code_matches, find_consecutive, well_formed, CounterState, OtpAlgorithm};
use crate::crypto::ct_eq;
use crate::store::TokenRecord;
use hmac::{Hmac, Mac};
use protocol::HashAlgorithm;

/// How far an explicit resync searches (privacyIDEA `sync_window`).
pub const SYNC_WINDOW: u64 = 1000;

/// The HOTP value for `counter`: HMAC, dynamic truncation, mod 10^digits, zero-padded.
pub fn hotp(key: &[u8], counter: u64, digits: u8, hash: HashAlgorithm) -> String {
    truncated_hmac(key, &counter.to_be_bytes(), digits, hash)
}

/// HMAC of `msg`, dynamically truncated to `digits` decimal digits (RFC 4226 §5.3; OCRA uses it
/// with its own message).
pub fn truncated_hmac(key: &[u8], msg: &[u8], digits: u8, hash: HashAlgorithm) -> String {
    let mac: Vec<u8> = match hash {
        HashAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, msg),
        HashAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, msg),
        HashAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, msg),
    };
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    let modulus = 10u64.pow(digits as u32);
    format!("{:0width$}", bin as u64 % modulus, width = digits as usize)
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; the error arm cannot happen but must not panic either.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => vec![0; 64],
    }
}

/// Index of the first counter in `range` whose value equals `otp`, comparing every candidate in
/// constant time and without stopping early.
pub fn find_counter(
    key: &[u8],
    range: std::ops::Range<u64>,
    otp: &str,
    digits: u8,
    hash: HashAlgorithm,
) -> Option<u64> {
    let mut found = None;
    for c in range {
        if ct_eq(hotp(key, c, digits, hash).as_bytes(), otp.as_bytes()) && found.is_none() {
            found = Some(c);
        }
    }
    found
}

pub struct Hotp;

impl OtpAlgorithm for Hotp {
    fn serial_prefix(&self) -> &'static str {
        "OATH"
    }

    fn upcoming(&self, rec: &TokenRecord, _now: i64, count: u64) -> Option<std::ops::Range<u64>> {
        Some(rec.count..rec.count.saturating_add(count))
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> Option<CounterState> {
        if !well_formed(otp, rec.digits) {
            return None;
        }
        let end = rec.count.saturating_add(rec.count_window as u64);
        find_counter(key, rec.count..end, otp, rec.digits, rec.hash)
            .map(|c| CounterState::at(c + 1))
    }

    fn is_previous_otp(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> bool {
        rec.count > 0 && code_matches(rec, key, rec.count - 1, otp)
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
        _now: i64,
    ) -> Option<CounterState> {
        let end = rec.count.saturating_add(SYNC_WINDOW);
        find_consecutive(rec, key, rec.count..end, otp1, otp2).map(|c| CounterState::at(c + 2))
    }

    fn otpauth_type(&self) -> Option<&'static str> {
        Some("hotp")
    }

    fn otpauth_params(&self, rec: &TokenRecord) -> String {
        // Our counter starts where the app starts (privacyIDEA says counter=1 and lets the window
        // absorb the difference).
        format!("&counter={}", rec.count)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocol::TokenType;

    /// A row of `testdata/oath.tsv`: (kind, hash, key, counter_or_time, period, digits, otp).
    pub(crate) type Vector = (String, HashAlgorithm, Vec<u8>, u64, Option<u32>, u8, String);

    pub(crate) fn vectors() -> Vec<Vector> {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/oath.tsv"))
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let hash = match f[1] {
                    "sha1" => HashAlgorithm::Sha1,
                    "sha256" => HashAlgorithm::Sha256,
                    _ => HashAlgorithm::Sha512,
                };
                (
                    f[0].to_string(),
                    hash,
                    hex::decode(f[2]).unwrap(),
                    f[3].parse().unwrap(),
                    f[4].parse().ok(),
                    f[5].parse().unwrap(),
                    f[6].to_string(),
                )
            })
            .collect()
    }

    /// What enrollment hands a type: a 20-byte key, 6 digits, SHA-1.
    pub(crate) fn enroll_base() -> crate::tokens::EnrollBase {
        crate::tokens::EnrollBase {
            key: zeroize::Zeroizing::new(vec![1; 20]),
            digits: 6,
            hash: HashAlgorithm::Sha1,
        }
    }

    pub(crate) fn record(t: TokenType, digits: u8, hash: HashAlgorithm) -> TokenRecord {
        TokenRecord {
            schema: crate::store::records::TOKEN_SCHEMA,
            serial: "T1".into(),
            token_type: t,
            owner: None,
            otpkey: vec![],
            pin_hash: None,
            digits,
            hash,
            count: 0,
            count_window: 10,
            period: 30,
            time_window: 180,
            time_shift: 0,
            active: true,
            revoked: false,
            locked: false,
            maxfail: 10,
            fails: Vec::new(),
            count_auth: 0,
            count_auth_max: 0,
            count_auth_success: 0,
            count_auth_success_max: 0,
            validity_start: None,
            validity_end: None,
            description: String::new(),
            created: 0,
            last_auth: None,
            rollout: crate::store::Rollout::Enrolled,
            next_pin_change: None,
            pool_realm: None,
        }
    }

    #[test]
    fn published_hotp_vectors_verify() {
        let rows: Vec<_> = vectors().into_iter().filter(|v| v.0 == "hotp").collect();
        assert_eq!(rows.len(), 30);
        for (_, hash, key, counter, _, digits, otp) in rows {
            assert_eq!(
                hotp(&key, counter, digits, hash),
                otp,
                "counter {counter} {hash:?}"
            );
        }
    }

    #[test]
    fn match_in_window_stores_matched_plus_one() {
        let key = b"12345678901234567890";
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        rec.count = 3;
        // counter 3 → 969429, counter 12 is the last in window [3, 13)
        assert_eq!(Hotp.check(&rec, key, "969429", 0).unwrap().count, 4);
        let c12 = hotp(key, 12, 6, HashAlgorithm::Sha1);
        assert_eq!(Hotp.check(&rec, key, &c12, 0).unwrap().count, 13);
        let c13 = hotp(key, 13, 6, HashAlgorithm::Sha1);
        assert!(
            Hotp.check(&rec, key, &c13, 0).is_none(),
            "window end is exclusive"
        );
        assert!(
            Hotp.check(&rec, key, "359152", 0).is_none(),
            "counter 2 is spent"
        );
    }

    #[test]
    fn otp_of_wrong_shape_never_matches() {
        let key = b"12345678901234567890";
        let rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        for bad in ["75522", "7552240", "75522a", " 755224", ""] {
            assert!(Hotp.check(&rec, key, bad, 0).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn previous_otp_is_recognised() {
        let key = b"12345678901234567890";
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        rec.count = 1;
        assert!(Hotp.is_previous_otp(&rec, key, "755224", 0));
        assert!(!Hotp.is_previous_otp(&rec, key, "287082", 0));
    }

    #[test]
    fn resync_finds_two_consecutive_values_far_ahead() {
        let key = b"12345678901234567890";
        let rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        let a = hotp(key, 500, 6, HashAlgorithm::Sha1);
        let b = hotp(key, 501, 6, HashAlgorithm::Sha1);
        assert_eq!(Hotp.resync(&rec, key, &a, &b, 0).unwrap().count, 502);
        assert!(Hotp.resync(&rec, key, &b, &a, 0).is_none());
    }
}
