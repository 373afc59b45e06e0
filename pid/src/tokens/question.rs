//! question (privacyIDEA's questionnaire): the user's own questions and answers; the PIN alone
//! triggers a challenge with one question picked at random, and the answer is compared exactly
//! (case-sensitive, constant time). At least five questions, as privacyIDEA's
//! `question.num_answers` default. The answers are sealed like a key; the question asked lives
//! only in the conversation.

use super::{
    ChallengeData, ChallengeError, CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm,
};
use crate::store::TokenRecord;
use protocol::frame::{decode_value, encode_value};
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Question;

/// privacyIDEA's `question.num_answers` default.
const MIN_QUESTIONS: usize = 5;
const MAX_QUESTIONS: usize = 50;

fn decode(material: &[u8]) -> Option<Zeroizing<Vec<(String, String)>>> {
    decode_value::<Vec<(String, String)>>(material)
        .ok()
        .map(Zeroizing::new)
}

impl OtpAlgorithm for Question {
    fn serial_prefix(&self) -> &'static str {
        "QUST"
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        if spec.otpkey.is_some() || spec.digits.is_some() || spec.hash.is_some() {
            return Err(
                "a question token is its questions: give --question, not --otpkey, \
                        --digits or --hash"
                    .into(),
            );
        }
        let n = spec.questions.len();
        if !(MIN_QUESTIONS..=MAX_QUESTIONS).contains(&n) {
            return Err(EnrollError::refused(format!(
                "a question token needs {MIN_QUESTIONS} to {MAX_QUESTIONS} questions (--question \
                 'QUESTION=ANSWER', repeated); {n} given"
            )));
        }
        let mut pairs: Zeroizing<Vec<(String, String)>> = Zeroizing::new(Vec::with_capacity(n));
        for (q, a) in &spec.questions {
            let bad =
                |s: &str| s.trim().is_empty() || s.len() > 256 || s.chars().any(char::is_control);
            if bad(q) || bad(a.expose()) {
                return Err(
                    "questions and answers have 1 to 256 characters, no control \
                            characters"
                        .into(),
                );
            }
            if pairs.iter().any(|(p, _)| p == q) {
                return Err(EnrollError::refused(format!(
                    "the question {q:?} is given twice"
                )));
            }
            pairs.push((q.clone(), a.expose().to_owned()));
        }
        let secret = Zeroizing::new(encode_value(&*pairs)?);
        Ok(Material::without_otp(secret))
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
        let pairs =
            decode(material).ok_or(ChallengeError::Unreadable("the questions cannot be read"))?;
        if pairs.is_empty() {
            return Err(ChallengeError::Unreadable("the token has no questions"));
        }
        let i = crate::crypto::random_u64() as usize % pairs.len();
        Ok(ChallengeData {
            message: Some(format!("{} ", pairs[i].0.trim_end())),
            data: Zeroizing::new((i as u32).to_be_bytes().to_vec()),
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
        let i = u32::from_be_bytes(data.try_into().ok()?) as usize;
        let pairs = decode(material)?;
        let (_, expected) = pairs.get(i)?;
        crate::crypto::ct_eq(expected.as_bytes(), answer.as_bytes())
            .then_some(CounterState::at(rec.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::{enroll_base as base, record};
    use protocol::{HashAlgorithm, Secret, TokenType};

    fn spec(n: usize) -> EnrollRequest {
        EnrollRequest {
            questions: (0..n)
                .map(|i| (format!("Question {i}?"), Secret::new(format!("Answer {i}"))))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_answer_to_the_asked_question_passes_exactly() {
        let m = Question.enroll(&spec(5), base()).unwrap();
        let rec = record(TokenType::Question, 0, HashAlgorithm::Sha1);
        for _ in 0..20 {
            let c = Question.challenge(&rec, &m.secret, 0).unwrap();
            let msg = c.message.unwrap();
            let i: usize = msg
                .trim_start_matches("Question ")
                .trim_end_matches("? ")
                .parse()
                .unwrap();
            let right = format!("Answer {i}");
            assert!(Question
                .check_answer(&rec, &m.secret, &c.data, &right, 0)
                .is_some());
            assert!(Question
                .check_answer(&rec, &m.secret, &c.data, &right.to_lowercase(), 0)
                .is_none());
        }
        assert!(Question.enroll(&spec(4), base()).is_err(), "at least five");
    }
}
