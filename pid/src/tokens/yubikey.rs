//! yubikey (privacyIDEA's Yubikey in Yubico OTP / AES mode): the key types its public id
//! followed by 32 modhex characters, an AES-128 block holding the private id, counters, a
//! timestamp, random bytes and a CRC. The user just touches the key at the prompt (after the
//! PIN, if the token has one).
//!
//! Checks, in privacyIDEA's order: modhex decode, AES-128-ECB decrypt with the token's key,
//! CRC-16 (ISO 13239) residual 0xf0b8; the private id and the public id are learned on first use
//! and must match afterwards; counter = usage counter × 256 + session counter must be at least
//! the stored count, which becomes counter + 1 — so every OTP works once, in order. The sealed
//! material is the AES key followed by what was learned.

use super::{CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use aes::cipher::{BlockDecrypt, KeyInit};
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Yubikey;

const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";
/// privacyIDEA's default OTP length: a 12-character public id and the 32-character block.
const DEFAULT_LEN: u8 = 44;
const BLOCK_CHARS: usize = 32;
const KEY: usize = 16;
const UID: usize = 6;

fn modhex_decode(s: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| MODHEX.iter().position(|&m| m == c).map(|p| p as u8);
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// CRC-16/ISO 13239 (reflected 0x8408, init 0xffff) over the block; a valid block leaves 0xf0b8.
fn crc_ok(block: &[u8]) -> bool {
    let mut crc: u16 = 0xffff;
    for &b in block {
        crc ^= b as u16;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc == 0xf0b8
}

/// What one OTP says, once decrypted and checked.
struct Decoded {
    prefix: String,
    uid: [u8; UID],
    counter: u64,
}

/// The learned part of the material: (private id, public id), if the token was used before.
fn learned(material: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = material.get(KEY..)?;
    (rest.len() >= UID).then(|| (&rest[..UID], &rest[UID..]))
}

fn decode(material: &[u8], otp: &str) -> Option<Decoded> {
    let otp = otp.to_ascii_lowercase();
    if otp.len() < BLOCK_CHARS || !otp.is_char_boundary(otp.len() - BLOCK_CHARS) {
        return None;
    }
    let (prefix, block) = otp.split_at(otp.len() - BLOCK_CHARS);
    let cipher = aes::Aes128::new_from_slice(material.get(..KEY)?).ok()?;
    let mut data = Zeroizing::new(modhex_decode(block)?);
    let block_ref = aes::Block::from_mut_slice(&mut data[..]);
    cipher.decrypt_block(block_ref);
    if !crc_ok(&data) {
        return None;
    }
    let mut uid = [0u8; UID];
    uid.copy_from_slice(&data[..UID]);
    let usage = u16::from_le_bytes([data[6], data[7]]) as u64;
    let session = data[11] as u64;
    Some(Decoded {
        prefix: prefix.to_owned(),
        uid,
        counter: usage * 256 + session,
    })
}

impl OtpAlgorithm for Yubikey {
    fn serial_prefix(&self) -> &'static str {
        "UBAM"
    }

    fn min_key_bytes(&self) -> usize {
        KEY
    }

    fn standard_digits(&self) -> bool {
        false
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        if spec.otpkey.is_some() && base.key.len() != KEY {
            return Err("a Yubikey's AES key has 16 bytes: 32 hex digits".into());
        }
        if spec.hash.is_some() {
            return Err("a Yubikey uses AES-128: leave out --hash".into());
        }
        let digits = spec.digits.unwrap_or(DEFAULT_LEN);
        if !(BLOCK_CHARS as u8..=64).contains(&digits) {
            return Err(EnrollError::refused(format!(
                "--digits {digits}: a Yubikey OTP has 32 to 64 characters (the public id and \
                 the 32-character block; usually 44)"
            )));
        }
        let secret = Zeroizing::new(base.key[..KEY.min(base.key.len())].to_vec());
        // A generated key must be written to the Yubikey (ykpersonalize -a): shown this once.
        let codes = if spec.otpkey.is_none() {
            vec![Zeroizing::new(hex::encode(&secret[..]))]
        } else {
            Vec::new()
        };
        Ok(Material {
            secret,
            digits,
            count_window: None,
            codes,
        })
    }

    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> Option<CounterState> {
        if otp.len() != rec.digits as usize {
            return None;
        }
        let d = decode(key, otp)?;
        if let Some((uid, prefix)) = learned(key) {
            let same_uid = crate::crypto::ct_eq(uid, &d.uid);
            if !same_uid || prefix != d.prefix.as_bytes() {
                return None;
            }
        }
        (d.counter >= rec.count).then_some(CounterState::at(d.counter + 1))
    }

    fn after_use(&self, material: &[u8], otp: &str) -> Option<Zeroizing<Vec<u8>>> {
        if learned(material).is_some() {
            return None;
        }
        // First use: bind the token to this key's private and public ids.
        let d = decode(material, otp)?;
        let mut m = Zeroizing::new(material[..KEY].to_vec());
        m.extend_from_slice(&d.uid);
        m.extend_from_slice(d.prefix.as_bytes());
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    /// testdata/yubico_otp.tsv: (otp, private uid hex, privacyIDEA counter), in the order the
    /// device emitted them.
    fn vectors() -> (Vec<u8>, Vec<(String, String, u64)>) {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/yubico_otp.tsv"
        ));
        let key_line = text.lines().find(|l| l.contains("aes_key_hex=")).unwrap();
        let key_hex = key_line
            .split("aes_key_hex=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let rows = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_owned(), f[1].to_owned(), f[5].parse().unwrap())
            })
            .collect();
        (hex::decode(key_hex).unwrap(), rows)
    }

    #[test]
    fn the_nine_device_otps_verify_in_order_and_only_once() {
        let (key, rows) = vectors();
        assert_eq!(rows.len(), 9);
        let mut rec = record(TokenType::Yubikey, 48, HashAlgorithm::Sha1);
        let mut material = Zeroizing::new(key.clone());
        for (otp, uid, counter) in &rows {
            let d = decode(&material, otp).unwrap();
            assert_eq!(hex::encode(d.uid), *uid);
            assert_eq!(d.counter, *counter);
            let cs = Yubikey.check(&rec, &material, otp, 0).unwrap();
            assert_eq!(cs.count, counter + 1);
            if let Some(m) = Yubikey.after_use(&material, otp) {
                material = m;
            }
            rec.count = cs.count;
            assert!(Yubikey.check(&rec, &material, otp, 0).is_none(), "replay");
        }
        // Out of order: an earlier OTP after a later one.
        let mut rec = record(TokenType::Yubikey, 48, HashAlgorithm::Sha1);
        rec.count = rows[5].2 + 1;
        assert!(Yubikey.check(&rec, &material, &rows[2].0, 0).is_none());
        assert!(Yubikey.check(&rec, &material, &rows[6].0, 0).is_some());
    }

    #[test]
    fn a_tampered_otp_another_key_or_another_device_is_refused() {
        let (key, rows) = vectors();
        let rec = record(TokenType::Yubikey, 48, HashAlgorithm::Sha1);
        let otp = &rows[0].0;
        let mut bad = otp.clone();
        bad.replace_range(47..48, if otp.ends_with('c') { "b" } else { "c" });
        assert!(Yubikey.check(&rec, &key, &bad, 0).is_none(), "CRC");
        let mut other = key.clone();
        other[0] ^= 1;
        assert!(
            Yubikey.check(&rec, &other, otp, 0).is_none(),
            "other AES key"
        );
        // Once bound to a device, another public id with the same key is refused.
        let bound = Yubikey.after_use(&key, otp).unwrap();
        let foreign = format!("cccccccccccccccc{}", &otp[16..]);
        assert!(Yubikey.check(&rec, &bound, &foreign, 0).is_none());
        assert!(Yubikey.check(&rec, &bound, otp, 0).is_some());
    }
}
