//! sms (privacyIDEA's smstoken): the PIN alone sends the next code to the user's phone
//! through the gateway configured in pid.toml; the answer is that code. See `sent_code`.

use super::sent_code;
use super::{ChallengeData, Channel, CounterState, EnrollBase, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;

pub struct Sms;

impl OtpAlgorithm for Sms {
    fn serial_prefix(&self) -> &'static str {
        "PISM"
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, String> {
        let to = spec
            .phone
            .as_deref()
            .ok_or("an sms token needs --phone NUMBER (where the codes go)")?
            .trim();
        if !(to.len() >= 3
            && to.len() <= 32
            && to
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-')))
        {
            return Err("--phone must be a number such as +49 170 1234567".into());
        }
        sent_code::enroll(base, to)
    }

    fn challenges_on_pin(&self) -> bool {
        true
    }

    fn challenge(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        _now: i64,
    ) -> Result<ChallengeData, String> {
        let (_, to) = sent_code::parts(material).ok_or("the destination cannot be read")?;
        let shown = sent_code::masked_phone(to);
        sent_code::challenge(rec, material, Channel::Sms, shown)
    }

    /// PIN and a code received earlier (autosend) in one answer, as privacyIDEA allows.
    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, now: i64) -> Option<CounterState> {
        sent_code::check(rec, key, otp, now)
    }

    fn check_answer(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        _data: &[u8],
        answer: &str,
        now: i64,
    ) -> Option<CounterState> {
        sent_code::check(rec, material, answer, now)
    }
}
