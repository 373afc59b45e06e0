//! email (privacyIDEA's emailtoken): the PIN alone sends the next code to the user's address
//! through the `[smtp]` server of pid.toml; the answer is that code. See `sent_code`.

use super::sent_code::SentCode;
use super::Channel;

pub const EMAIL: SentCode = SentCode {
    channel: Channel::Email,
    serial_prefix: "PIEM",
    destination: |spec| spec.email.as_deref(),
    missing: "an email token needs --email ADDRESS (where the codes go)",
    validate: |to| {
        if to.contains('@') && !to.contains(char::is_whitespace) && to.len() <= 254 {
            Ok(())
        } else {
            Err("--email must be an address such as alice@example.org")
        }
    },
    mask: masked_address,
};

/// `a***@example.org`: enough for the user to recognise the address, not to learn it.
fn masked_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}
