//! email (privacyIDEA's emailtoken): the PIN alone sends the next code to the user's address
//! through the gateway configured in pid.toml; the answer is that code. See `sent_code`.

use super::sent_code;
use super::{ChallengeData, Channel, CounterState, EnrollBase, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;

pub struct Email;

impl OtpAlgorithm for Email {
    fn serial_prefix(&self) -> &'static str {
        "PIEM"
    }

    fn enroll(&self, spec: &EnrollRequest, base: EnrollBase) -> Result<Material, String> {
        let to = spec
            .email
            .as_deref()
            .ok_or("an email token needs --email ADDRESS (where the codes go)")?
            .trim();
        if !(to.contains('@') && !to.contains(char::is_whitespace) && to.len() <= 254) {
            return Err("--email must be an address such as alice@example.org".into());
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
        let shown = sent_code::masked_address(to);
        sent_code::challenge(rec, material, Channel::Email, shown)
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
