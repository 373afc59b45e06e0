//! OCRA (RFC 6287, privacyIDEA's ocra token): challenge-response. The PIN alone triggers a
//! challenge — a random question of the suite's kind (numeric, alphanumeric or hex) — and the
//! answer is OCRA(key, suite, question[, counter][, time]) as the user's device computes it.
//! The suite is fixed at enrollment (privacyIDEA's default `OCRA-1:HOTP-SHA1-8:QH40`) and
//! sealed with the key. Suites that need a PIN hash (`P`) or session data (`S`) are refused:
//! nothing in a PAM login could supply them.

use super::hotp::truncated_hmac;
use super::{
    ChallengeData, ChallengeError, CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm,
};
use crate::store::TokenRecord;
use protocol::{EnrollRequest, HashAlgorithm};
use std::borrow::Cow;
use zeroize::Zeroizing;

pub struct Ocra;

/// privacyIDEA's default suite.
pub const DEFAULT_SUITE: &str = "OCRA-1:HOTP-SHA1-8:QH40";

/// A parsed `OCRA-1:HOTP-H-d:DataInput`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    text: String,
    hash: HashAlgorithm,
    digits: u8,
    counter: bool,
    /// 'N', 'A' or 'H', and the question's length.
    question: (char, usize),
    pin: Option<HashAlgorithm>,
    session: Option<usize>,
    /// Time step in seconds.
    time_step: Option<u64>,
}

fn hash_of(name: &str) -> Option<HashAlgorithm> {
    match name {
        "SHA1" => Some(HashAlgorithm::Sha1),
        "SHA256" => Some(HashAlgorithm::Sha256),
        "SHA512" => Some(HashAlgorithm::Sha512),
        _ => None,
    }
}

/// A suite text that is not an OCRA suite pi can use: the text, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("OCRA suite {suite:?}: {why}; e.g. {DEFAULT_SUITE}")]
pub struct SuiteError {
    suite: String,
    why: Cow<'static, str>,
}

impl SuiteError {
    fn new(suite: &str, why: impl Into<Cow<'static, str>>) -> SuiteError {
        SuiteError {
            suite: suite.to_owned(),
            why: why.into(),
        }
    }
}

impl Suite {
    pub fn parse(text: &str) -> Result<Suite, SuiteError> {
        let bad = |why: &'static str| SuiteError::new(text, why);
        let mut parts = text.split(':');
        if parts.next() != Some("OCRA-1") {
            return Err(bad("it must start with OCRA-1"));
        }
        let crypto = parts.next().ok_or_else(|| bad("no HOTP-H-d part"))?;
        let data = parts.next().ok_or_else(|| bad("no data input part"))?;
        if parts.next().is_some() {
            return Err(bad("too many parts"));
        }
        let mut c = crypto.split('-');
        if c.next() != Some("HOTP") {
            return Err(bad("the crypto function must be HOTP-SHA1/256/512-d"));
        }
        let hash = c
            .next()
            .and_then(hash_of)
            .ok_or_else(|| bad("unknown hash"))?;
        let digits: u8 = c
            .next()
            .and_then(|d| d.parse().ok())
            .filter(|d| (4..=10).contains(d))
            .ok_or_else(|| bad("the response has 4 to 10 digits"))?;
        let mut suite = Suite {
            text: text.to_owned(),
            hash,
            digits,
            counter: false,
            question: ('N', 0),
            pin: None,
            session: None,
            time_step: None,
        };
        for item in data.split('-') {
            let (head, rest) = item.split_at(1.min(item.len()));
            match head {
                "C" if rest.is_empty() => suite.counter = true,
                "Q" => {
                    let kind = rest.chars().next().ok_or_else(|| bad("Q needs a kind"))?;
                    let len: usize = rest[1..].parse().map_err(|_| bad("Q needs a length"))?;
                    if !matches!(kind, 'N' | 'A' | 'H') || !(4..=64).contains(&len) {
                        return Err(bad("Q is QNnn, QAnn or QHnn with nn from 04 to 64"));
                    }
                    suite.question = (kind, len);
                }
                "P" => suite.pin = Some(hash_of(rest).ok_or_else(|| bad("P needs a hash"))?),
                "S" => suite.session = Some(rest.parse().map_err(|_| bad("S needs a length"))?),
                "T" => {
                    let (n, unit) = rest.split_at(rest.len().saturating_sub(1));
                    let n: u64 = n
                        .parse()
                        .map_err(|_| bad("T needs a step like 30S or 1M"))?;
                    let secs = match unit {
                        "S" => 1,
                        "M" => 60,
                        "H" => 3600,
                        _ => return Err(bad("T steps are in S, M or H")),
                    };
                    suite.time_step = Some(n * secs);
                }
                _ => {
                    return Err(SuiteError::new(
                        text,
                        format!("unknown data input {item:?}"),
                    ))
                }
            }
        }
        if suite.question.1 == 0 {
            return Err(bad("a challenge-response suite needs a question (Q)"));
        }
        Ok(suite)
    }

    /// The response to `question` (RFC 6287 §5: suite, 0x00, counter, question padded to 128
    /// bytes, PIN hash, session, time steps; then HOTP's truncation).
    pub fn respond(
        &self,
        key: &[u8],
        question: &str,
        counter: u64,
        pin_hash: &[u8],
        session: &[u8],
        time_steps: u64,
    ) -> Option<String> {
        let mut msg = Vec::with_capacity(self.text.len() + 1 + 8 + 128 + 64 + 512 + 8);
        msg.extend_from_slice(self.text.as_bytes());
        msg.push(0);
        if self.counter {
            msg.extend_from_slice(&counter.to_be_bytes());
        }
        let mut q = match self.question.0 {
            'N' => decimal_to_hex(question)?,
            'A' => hex::encode(question.as_bytes()),
            _ => question.to_owned(),
        };
        if q.len() > 256 {
            return None;
        }
        while q.len() < 256 {
            q.push('0');
        }
        msg.extend_from_slice(&hex::decode(&q).ok()?);
        if self.pin.is_some() {
            msg.extend_from_slice(pin_hash);
        }
        if let Some(len) = self.session {
            let mut s = session.to_vec();
            s.resize(len, 0);
            msg.extend_from_slice(&s);
        }
        if self.time_step.is_some() {
            msg.extend_from_slice(&time_steps.to_be_bytes());
        }
        Some(truncated_hmac(key, &msg, self.digits, self.hash))
    }

    fn random_question(&self) -> String {
        let (kind, len) = self.question;
        let alphabet: &[u8] = match kind {
            'N' => b"0123456789",
            'A' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            _ => b"0123456789ABCDEF",
        };
        let mut out = String::with_capacity(len);
        while out.len() < len {
            for b in crate::crypto::random_bytes(len).iter() {
                let limit = 256 - 256 % alphabet.len();
                if (*b as usize) < limit && out.len() < len {
                    out.push(alphabet[*b as usize % alphabet.len()] as char);
                }
            }
        }
        out
    }
}

/// A decimal question as the hex digits of its value (RFC 6287's BigInteger conversion).
fn decimal_to_hex(dec: &str) -> Option<String> {
    if dec.is_empty() || !dec.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Base-10 to base-16 on a digit vector: questions have at most 64 digits.
    let mut digits: Vec<u32> = dec.bytes().map(|b| (b - b'0') as u32).collect();
    let mut hex_digits = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut rem = 0;
        for d in digits.iter_mut() {
            let cur = rem * 10 + *d;
            *d = cur / 16;
            rem = cur % 16;
        }
        hex_digits.push(std::char::from_digit(rem, 16)?.to_ascii_uppercase());
    }
    if hex_digits.is_empty() {
        return Some("0".into());
    }
    Some(hex_digits.iter().rev().collect())
}

/// The sealed material: suite text, NUL, key.
fn parts(material: &[u8]) -> Option<(Suite, &[u8])> {
    let at = material.iter().position(|&b| b == 0)?;
    let suite = Suite::parse(std::str::from_utf8(&material[..at]).ok()?).ok()?;
    Some((suite, &material[at + 1..]))
}

impl OtpAlgorithm for Ocra {
    fn serial_prefix(&self) -> &'static str {
        "OCRA"
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        let suite = Suite::parse(spec.ocrasuite.as_deref().unwrap_or(DEFAULT_SUITE))?;
        if suite.pin.is_some() || suite.session.is_some() {
            return Err(EnrollError::refused(format!(
                "OCRA suite {}: a PIN hash (P) or session data (S) cannot be supplied by a PAM \
                 login; choose a suite without them, e.g. {DEFAULT_SUITE}",
                suite.text
            )));
        }
        if spec.digits.is_some() || spec.hash.is_some() {
            return Err(
                "the OCRA suite sets the hash and the response length: leave out \
                        --digits and --hash"
                    .into(),
            );
        }
        let key = if spec.otpkey.is_some() {
            base.key
        } else {
            let len = match suite.hash {
                HashAlgorithm::Sha1 => 20,
                HashAlgorithm::Sha256 => 32,
                HashAlgorithm::Sha512 => 64,
            };
            crate::crypto::random_bytes(len)
        };
        let mut secret = Zeroizing::new(Vec::with_capacity(suite.text.len() + 1 + key.len()));
        secret.extend_from_slice(suite.text.as_bytes());
        secret.push(0);
        secret.extend_from_slice(&key);
        let codes = if spec.otpkey.is_none() {
            vec![Zeroizing::new(hex::encode(&key[..]))]
        } else {
            Vec::new()
        };
        Ok(Material {
            secret,
            digits: 0,
            count_window: None,
            codes,
        })
    }

    fn challenges_on_pin(&self) -> bool {
        true
    }

    fn challenge(
        &self,
        _rec: &TokenRecord,
        material: &[u8],
        _now: i64,
    ) -> Result<ChallengeData, ChallengeError> {
        let (suite, _) =
            parts(material).ok_or(ChallengeError::Unreadable("the OCRA suite cannot be read"))?;
        let q = suite.random_question();
        Ok(ChallengeData {
            message: Some(format!("Enter the response to challenge {q}: ")),
            data: Zeroizing::new(q.into_bytes()),
            delivery: None,
        })
    }

    fn check_answer(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        data: &[u8],
        answer: &str,
        now: i64,
    ) -> Option<CounterState> {
        let (suite, key) = parts(material)?;
        let question = std::str::from_utf8(data).ok()?;
        if answer.len() != suite.digits as usize {
            return None;
        }
        let steps: Vec<u64> = match suite.time_step {
            Some(step) => {
                let t = now.max(0) as u64 / step;
                vec![t.saturating_sub(1), t, t + 1]
            }
            None => vec![0],
        };
        let counters: Vec<u64> = if suite.counter {
            (rec.count..rec.count + rec.count_window.max(1) as u64).collect()
        } else {
            vec![rec.count]
        };
        // Every candidate is computed and compared; the first match decides.
        let mut found = None;
        for &c in &counters {
            for &t in &steps {
                let expected = Zeroizing::new(suite.respond(key, question, c, &[], &[], t)?);
                let ok = crate::crypto::ct_eq(expected.as_bytes(), answer.as_bytes());
                if ok && found.is_none() {
                    found = Some(c);
                }
            }
        }
        found.map(|c| CounterState::at(if suite.counter { c + 1 } else { rec.count }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Digest;

    /// testdata/ocra.tsv: (suite, key hex, question, counter, pin, response).
    fn vectors() -> Vec<Vec<String>> {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ocra.tsv"))
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn rfc_6287_vectors() {
        let rows = vectors();
        assert!(rows.len() >= 16);
        for r in rows {
            let suite = Suite::parse(&r[0]).unwrap();
            let key = hex::decode(&r[1]).unwrap();
            let counter = r[3].parse().unwrap_or(0);
            let pin_hash: Vec<u8> = if r[4] == "-" {
                Vec::new()
            } else {
                sha1::Sha1::digest(r[4].as_bytes()).to_vec()
            };
            let got = suite
                .respond(&key, &r[2], counter, &pin_hash, &[], 0)
                .unwrap();
            assert_eq!(got, r[5], "{r:?}");
        }
    }

    #[test]
    fn bad_suites_are_refused_with_a_reason() {
        for bad in [
            "OCRA-2:HOTP-SHA1-6:QN08",
            "OCRA-1:HOTP-MD5-6:QN08",
            "OCRA-1:HOTP-SHA1-3:QN08",
            "OCRA-1:HOTP-SHA1-6:C",
            "OCRA-1:HOTP-SHA1-6:QX08",
            "OCRA-1:HOTP-SHA1-6:QN08-T5X",
        ] {
            assert!(Suite::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Suite::parse("OCRA-1:HOTP-SHA1-6:QN08-X")
                .unwrap_err()
                .to_string(),
            "OCRA suite \"OCRA-1:HOTP-SHA1-6:QN08-X\": unknown data input \"X\"; e.g. \
             OCRA-1:HOTP-SHA1-8:QH40"
        );
        assert_eq!(decimal_to_hex("11111111").unwrap(), "A98AC7");
    }
}
