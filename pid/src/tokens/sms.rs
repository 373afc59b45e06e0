//! sms (privacyIDEA's smstoken): the PIN alone sends the next code to the user's phone through
//! the `[sms]` gateway of pid.toml; the answer is that code. See `sent_code`.

use super::sent_code::SentCode;
use super::Channel;

pub const SMS: SentCode = SentCode {
    channel: Channel::Sms,
    serial_prefix: "PISM",
    destination: |spec| spec.phone.as_deref(),
    missing: "an sms token needs --phone NUMBER (where the codes go)",
    validate: |to| {
        let plausible = (3..=32).contains(&to.len())
            && to
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-'));
        if plausible {
            Ok(())
        } else {
            Err("--phone must be a number such as +49 170 1234567")
        }
    },
    mask: masked_phone,
};

/// `***1234`: the last four digits of a phone number.
fn masked_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***{tail}")
}
