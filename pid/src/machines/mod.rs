//! MachineToken applications (privacyIDEA's `lib/applications`): what each application accepts
//! as a token and as options, and what it hands out. Storage is `store::machines`; requests are
//! handled in `handlers::admin::machine` and `handlers::ssh_keys`.

pub mod luks;
pub mod ssh;

use crate::store::TokenRecord;
use protocol::{MachineApp, MachineOptions, TokenType};

/// privacyIDEA's default login for an ssh assignment without a `user` option.
pub const DEFAULT_SSH_USER: &str = "root";
/// privacyIDEA's defaults for offline assignments.
pub const DEFAULT_OFFLINE_COUNT: u32 = 100;
pub const DEFAULT_OFFLINE_ROUNDS: u32 = 6549;
const MAX_OFFLINE_COUNT: u32 = 1000;
/// Below this an offline value's PBKDF2 hash is cheap to brute-force from a stolen laptop.
const MIN_OFFLINE_ROUNDS: u32 = 1000;
const MAX_OFFLINE_ROUNDS: u32 = 10_000_000;
/// LUKS2 has 32 key slots; slot 0 holds the passphrase the volume was made with and is never
/// touched.
pub const MAX_LUKS_SLOT: u8 = 31;
const MAX_OPTION_LEN: usize = 256;

/// A machine request pi refuses: an assignment's options, a host name, the password a LUKS
/// response is made from. It reaches pictl as an invalid argument, with its causes.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// What is wrong and what to give instead, in words.
    #[error("{0}")]
    Refused(String),
    /// The password does not fit a Yubikey's challenge.
    #[error(
        "the password must be 1 to {} bytes (the Yubikey's challenge limit)",
        luks::MAX_PASSWORD
    )]
    Password,
    /// A LUKS token's secret cannot key HMAC-SHA1.
    #[error("the token's secret is unusable")]
    UnusableSecret(#[source] hmac::digest::InvalidLength),
}

/// Check that `token` may be attached for `app`, and return the options as stored: the ones the
/// application takes, with privacyIDEA's defaults filled in. `Err` says what to change.
pub fn validate(
    app: MachineApp,
    token: &TokenRecord,
    options: &MachineOptions,
) -> Result<MachineOptions, MachineError> {
    let o = options;
    let given = |set: bool, flag: &str| set.then(|| flag.to_owned());
    let foreign: Vec<String> = match app {
        MachineApp::Ssh => [
            given(o.slot.is_some(), "--slot"),
            given(o.device.is_some(), "--device"),
            given(o.concatenate, "--concatenate"),
            given(o.count.is_some(), "--count"),
            given(o.rounds.is_some(), "--rounds"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        MachineApp::Luks => [
            given(o.user.is_some(), "--user"),
            given(o.service_id.is_some(), "--service-id"),
            given(o.count.is_some(), "--count"),
            given(o.rounds.is_some(), "--rounds"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        MachineApp::Offline => [
            given(o.user.is_some(), "--user"),
            given(o.service_id.is_some(), "--service-id"),
            given(o.slot.is_some(), "--slot"),
            given(o.device.is_some(), "--device"),
            given(o.concatenate, "--concatenate"),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    if !foreign.is_empty() {
        let verb = if foreign.len() == 1 { "does" } else { "do" };
        return Err(MachineError::Refused(format!(
            "{} {verb} not apply to the {} application",
            foreign.join(", "),
            app.as_str()
        )));
    }
    match app {
        MachineApp::Ssh => {
            if token.token_type != TokenType::Sshkey {
                return Err(MachineError::Refused(format!(
                    "token {} is a {} token; the ssh application takes sshkey tokens \
                     (pictl token enroll sshkey)",
                    token.serial,
                    token.token_type.as_str()
                )));
            }
            let user = o.user.as_deref().unwrap_or(DEFAULT_SSH_USER);
            check_word("--user", user)?;
            if let Some(id) = &o.service_id {
                check_word("--service-id", id)?;
            }
            Ok(MachineOptions {
                user: Some(user.to_owned()),
                service_id: o.service_id.clone(),
                ..Default::default()
            })
        }
        MachineApp::Luks => {
            if !luks::is_challenge_response_token(token) {
                return Err(MachineError::Refused(format!(
                    "token {} is not a Yubikey challenge-response secret: the luks application \
                     takes a totp token with hash sha1 whose serial starts with UBOM (enroll the \
                     slot's secret with pictl token enroll totp --serial UBOM<serial>_2 \
                     --otpkey HEX)",
                    token.serial
                )));
            }
            if let Some(slot) = o.slot {
                check_slot(slot)?;
            }
            if let Some(dev) = &o.device {
                if !dev.starts_with('/') {
                    return Err(MachineError::Refused(format!(
                        "--device {dev:?} must be an absolute path"
                    )));
                }
                check_text("--device", dev)?;
            }
            Ok(MachineOptions {
                slot: o.slot,
                device: o.device.clone(),
                concatenate: o.concatenate,
                ..Default::default()
            })
        }
        MachineApp::Offline => {
            if token.token_type != TokenType::Hotp {
                return Err(MachineError::Refused(format!(
                    "token {} is a {} token; the offline application takes hotp tokens",
                    token.serial,
                    token.token_type.as_str()
                )));
            }
            let count = o.count.unwrap_or(DEFAULT_OFFLINE_COUNT);
            if !(1..=MAX_OFFLINE_COUNT).contains(&count) {
                return Err(MachineError::Refused(format!(
                    "--count {count} is out of range: hand out 1 to {MAX_OFFLINE_COUNT} values"
                )));
            }
            let rounds = o.rounds.unwrap_or(DEFAULT_OFFLINE_ROUNDS);
            if !(MIN_OFFLINE_ROUNDS..=MAX_OFFLINE_ROUNDS).contains(&rounds) {
                return Err(MachineError::Refused(format!(
                    "--rounds {rounds} is out of range: use {MIN_OFFLINE_ROUNDS} to \
                     {MAX_OFFLINE_ROUNDS} PBKDF2 rounds (privacyIDEA's default is \
                     {DEFAULT_OFFLINE_ROUNDS})"
                )));
            }
            Ok(MachineOptions {
                count: Some(count),
                rounds: Some(rounds),
                ..Default::default()
            })
        }
    }
}

/// A LUKS key slot pi may write: never 0 (the volume's own passphrase), at most 31.
pub fn check_slot(slot: u8) -> Result<(), MachineError> {
    if slot == 0 {
        return Err(MachineError::Refused(
            "slot 0 holds the volume's original passphrase and is never touched: use a slot \
             from 1 to 31"
                .into(),
        ));
    }
    if slot > MAX_LUKS_SLOT {
        return Err(MachineError::Refused(format!(
            "slot {slot} does not exist: LUKS has slots 0 to {MAX_LUKS_SLOT}"
        )));
    }
    Ok(())
}

/// A host name: what `hostname` prints, or an FQDN.
pub fn check_host(host: &str) -> Result<(), MachineError> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(MachineError::Refused(format!(
            "{host:?} is not a host name: use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// A login name or service id: printed into sshd's answer, so no spaces or control characters.
fn check_word(flag: &str, value: &str) -> Result<(), MachineError> {
    if value.is_empty()
        || value.len() > MAX_OPTION_LEN
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(MachineError::Refused(format!(
            "{flag} {value:?} must be 1 to {MAX_OPTION_LEN} characters without spaces"
        )));
    }
    Ok(())
}

fn check_text(flag: &str, value: &str) -> Result<(), MachineError> {
    if value.len() > MAX_OPTION_LEN || value.chars().any(char::is_control) {
        return Err(MachineError::Refused(format!(
            "{flag} must be at most {MAX_OPTION_LEN} characters without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::HashAlgorithm;

    fn token(t: TokenType, serial: &str) -> TokenRecord {
        let mut r = record(t, 6, HashAlgorithm::Sha1);
        r.serial = serial.into();
        r
    }

    #[test]
    fn ssh_takes_sshkey_tokens_and_defaults_the_login_to_root() {
        let o = validate(
            MachineApp::Ssh,
            &token(TokenType::Sshkey, "SSHK1"),
            &MachineOptions::default(),
        )
        .unwrap();
        assert_eq!(o.user.as_deref(), Some("root"));
        let err = validate(
            MachineApp::Ssh,
            &token(TokenType::Totp, "T1"),
            &MachineOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sshkey"), "{err}");
    }

    #[test]
    fn options_of_another_application_are_refused_by_flag_name() {
        let o = MachineOptions {
            slot: Some(1),
            ..Default::default()
        };
        let err = validate(MachineApp::Ssh, &token(TokenType::Sshkey, "S"), &o)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--slot"), "{err}");
    }

    #[test]
    fn luks_takes_ubom_totp_tokens_and_never_slot_0() {
        let ubom = token(TokenType::Totp, "UBOM123_2");
        let slot = |s| MachineOptions {
            slot: Some(s),
            ..Default::default()
        };
        assert!(validate(MachineApp::Luks, &ubom, &slot(1)).is_ok());
        assert!(validate(MachineApp::Luks, &ubom, &slot(0)).is_err());
        assert!(validate(MachineApp::Luks, &ubom, &slot(32)).is_err());
        assert!(validate(MachineApp::Luks, &token(TokenType::Totp, "TOTP1"), &slot(1)).is_err());
        assert!(validate(MachineApp::Luks, &token(TokenType::Hotp, "UBOM1"), &slot(1)).is_err());
        let relative = MachineOptions {
            device: Some("disk.img".into()),
            ..Default::default()
        };
        assert!(validate(MachineApp::Luks, &ubom, &relative).is_err());
    }

    #[test]
    fn offline_takes_hotp_with_privacyideas_defaults_and_bounded_rounds() {
        let hotp = token(TokenType::Hotp, "OATH1");
        let o = validate(MachineApp::Offline, &hotp, &MachineOptions::default()).unwrap();
        assert_eq!((o.count, o.rounds), (Some(100), Some(6549)));
        let weak = MachineOptions {
            rounds: Some(10),
            ..Default::default()
        };
        assert!(validate(MachineApp::Offline, &hotp, &weak).is_err());
    }

    #[test]
    fn host_names_are_plain() {
        assert!(check_host("web-1.example.org").is_ok());
        for bad in ["", "a b", "a\0b", "x/y"] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
    }
}
