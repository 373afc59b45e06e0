//! indexedsecret (privacyIDEA): a shared secret text; the PIN alone triggers a challenge that
//! asks for the characters at two random positions (1-based), and the answer is those characters
//! in order. The whole secret is never typed, so one observed login does not reveal it.
//! The secret is sealed like a key; the positions asked live only in the conversation.

use super::pw::fixed_secret;
use super::{
    ChallengeData, ChallengeError, CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm,
};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Indexedsecret;

/// privacyIDEA's `indexedsecret_count` default.
const POSITIONS: usize = 2;
const GENERATED_LEN: usize = 24;

/// `POSITIONS` distinct positions in 1..=len, in ascending order.
fn random_positions(len: usize) -> Vec<usize> {
    let mut picked: Vec<usize> = Vec::with_capacity(POSITIONS);
    while picked.len() < POSITIONS.min(len) {
        let r = crate::crypto::random_u64() as usize % len + 1;
        if !picked.contains(&r) {
            picked.push(r);
        }
    }
    picked.sort_unstable();
    picked
}

impl OtpAlgorithm for Indexedsecret {
    fn serial_prefix(&self) -> &'static str {
        "PIIX"
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        if spec.otpkey.is_some() || spec.digits.is_some() || spec.hash.is_some() {
            return Err(
                "an indexedsecret token is a secret text: give it with --password (or \
                        let pi generate one), not --otpkey, --digits or --hash"
                    .into(),
            );
        }
        let m = fixed_secret(spec.password.as_ref(), GENERATED_LEN, "secret")?;
        if std::str::from_utf8(&m.secret).map_or(true, |s| s.chars().count() < POSITIONS) {
            return Err(EnrollError::refused(format!(
                "the secret needs at least {POSITIONS} characters"
            )));
        }
        // Nothing follows the PIN: the answer comes with the challenge.
        Ok(Material { digits: 0, ..m })
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
        let secret = std::str::from_utf8(material)
            .map_err(|_| ChallengeError::Unreadable("the secret is not UTF-8"))?;
        let positions = random_positions(secret.chars().count());
        let list: Vec<String> = positions.iter().map(usize::to_string).collect();
        Ok(ChallengeData {
            message: Some(format!(
                "Please enter the positions {} of your secret: ",
                list.join(", ")
            )),
            data: Zeroizing::new(positions.iter().map(|&p| p as u8).collect()),
            delivery: None,
        })
    }

    fn check_answer(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        data: &[u8],
        answer: &str,
        _now: i64,
    ) -> Option<CounterState> {
        let secret: Vec<char> = std::str::from_utf8(material).ok()?.chars().collect();
        let expected: Zeroizing<String> = Zeroizing::new(
            data.iter()
                .map(|&p| secret.get((p as usize).checked_sub(1)?).copied())
                .collect::<Option<String>>()?,
        );
        (!expected.is_empty() && crate::crypto::ct_eq(expected.as_bytes(), answer.as_bytes()))
            .then_some(CounterState::at(rec.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, Secret, TokenType};

    #[test]
    fn the_answer_is_the_characters_at_the_asked_positions() {
        let spec = EnrollRequest {
            password: Some(Secret::new("abcdefgh")),
            ..Default::default()
        };
        let base = EnrollBase {
            key: Zeroizing::new(vec![1; 20]),
            digits: 6,
            hash: HashAlgorithm::Sha1,
        };
        let m = Indexedsecret.enroll(&spec, base).unwrap();
        let rec = record(TokenType::Indexedsecret, 0, HashAlgorithm::Sha1);
        for _ in 0..20 {
            let c = Indexedsecret.challenge(&rec, &m.secret, 0).unwrap();
            let (a, b) = (c.data[0] as usize, c.data[1] as usize);
            assert!(a < b && b <= 8);
            let msg = c.message.unwrap();
            assert!(msg.contains(&format!("{a}, {b}")), "{msg}");
            let right: String = [b"abcdefgh"[a - 1] as char, b"abcdefgh"[b - 1] as char]
                .iter()
                .collect();
            assert!(Indexedsecret
                .check_answer(&rec, &m.secret, &c.data, &right, 0)
                .is_some());
            assert!(Indexedsecret
                .check_answer(&rec, &m.secret, &c.data, "zz", 0)
                .is_none());
            assert!(Indexedsecret.check(&rec, &m.secret, &right, 0).is_none());
        }
    }
}
