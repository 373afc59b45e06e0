//! The `[tokens]` section of pid.toml: what new tokens get unless an enrollment policy says
//! otherwise, and how failures lock them.

use super::ConfigError;
use protocol::HashAlgorithm;
use serde::{Deserialize, Serialize};

/// The longest lock in minutes a configuration may ask for: a year.
pub const MAX_LOCKOUT_MINS: u32 = 366 * 1440;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenDefaults {
    /// HOTP look-ahead (privacyIDEA `DefaultCountWindow`).
    pub hotp_window: u32,
    /// TOTP time step for new tokens (30 or 60).
    pub totp_period: u32,
    /// TOTP window either side of now, seconds (privacyIDEA `totp.timeWindow`).
    pub totp_window_secs: u32,
    /// OTP length for new tokens (6 or 8).
    pub digits: u8,
    pub hash: HashAlgorithm,
    /// Failed attempts from one source before the token is locked for that source
    /// (privacyIDEA `DefaultMaxFailCount`; sources: see `auth::lockout`).
    pub maxfail: u32,
    /// How long the first lock lasts, in minutes; each further lock of the same source lasts
    /// twice as long as the one before. 0 = until `pictl token reset` (privacyIDEA's
    /// `failcounter_clear_timeout = 0`).
    pub failcounter_clear_timeout_mins: u32,
    /// No lock lasts longer than this many minutes (unless the first already does).
    pub lockout_max_mins: u32,
    /// The name authenticator apps file new tokens under (the otpauth URL's issuer). Unset: this
    /// host's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl TokenDefaults {
    /// The lock durations in force.
    pub fn lockout(&self) -> crate::auth::lockout::LockoutRules {
        crate::auth::lockout::LockoutRules {
            first_secs: i64::from(self.failcounter_clear_timeout_mins) * 60,
            max_secs: i64::from(self.lockout_max_mins) * 60,
        }
    }
}

impl Default for TokenDefaults {
    fn default() -> Self {
        TokenDefaults {
            hotp_window: 10,
            totp_period: 30,
            totp_window_secs: 180,
            digits: 6,
            hash: HashAlgorithm::Sha1,
            maxfail: 10,
            failcounter_clear_timeout_mins: 1,
            lockout_max_mins: 1440,
            issuer: None,
        }
    }
}

impl TokenDefaults {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.digits, 6 | 8) {
            return Err(ConfigError::invalid(
                "tokens.digits",
                format!("{} — use 6 or 8", self.digits),
            ));
        }
        if !matches!(self.totp_period, 30 | 60) {
            return Err(ConfigError::invalid(
                "tokens.totp_period",
                format!("{} — use 30 or 60", self.totp_period),
            ));
        }
        if !(1..=1000).contains(&self.hotp_window) {
            return Err(ConfigError::invalid(
                "tokens.hotp_window",
                "must be between 1 and 1000",
            ));
        }
        if self.totp_window_secs > 3600 {
            return Err(ConfigError::invalid(
                "tokens.totp_window_secs",
                "must be at most 3600",
            ));
        }
        if !(1..=1000).contains(&self.maxfail) {
            return Err(ConfigError::invalid(
                "tokens.maxfail",
                "must be between 1 and 1000",
            ));
        }
        if self.failcounter_clear_timeout_mins > MAX_LOCKOUT_MINS {
            return Err(ConfigError::invalid(
                "tokens.failcounter_clear_timeout_mins",
                format!(
                    "must be at most {MAX_LOCKOUT_MINS} (0: until an administrator resets the \
                     token)"
                ),
            ));
        }
        if !(1..=MAX_LOCKOUT_MINS).contains(&self.lockout_max_mins) {
            return Err(ConfigError::invalid(
                "tokens.lockout_max_mins",
                format!("must be between 1 and {MAX_LOCKOUT_MINS}"),
            ));
        }
        if let Some(issuer) = &self.issuer {
            validate_issuer(issuer)?;
        }
        Ok(())
    }
}

/// Longest `tokens.issuer`, in characters: apps show the issuer on one line beside the code.
pub const MAX_ISSUER_CHARS: usize = 64;

/// An issuer an authenticator app can show: it heads the account's entry, and the otpauth label
/// is `ISSUER:ACCOUNT`, so a colon would split it in the wrong place.
fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    let refuse = |why: String| Err(ConfigError::invalid("tokens.issuer", why));
    if issuer.trim().is_empty() {
        return refuse(
            "is empty: name the organisation or host, e.g. issuer = \"ACME ssh\", or remove the \
             key to use the host name"
                .into(),
        );
    }
    if issuer.chars().count() > MAX_ISSUER_CHARS {
        return refuse(format!(
            "has {} characters: use at most {MAX_ISSUER_CHARS}, apps show it on one line",
            issuer.chars().count()
        ));
    }
    if let Some(c) = issuer.chars().find(|c| c.is_control() || *c == ':') {
        return refuse(format!(
            "contains {c:?}: use letters, digits, spaces and punctuation other than ':'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_checked_and_unset_by_default() {
        assert_eq!(TokenDefaults::default().issuer, None);
        let with = |issuer: &str| {
            TokenDefaults {
                issuer: Some(issuer.into()),
                ..TokenDefaults::default()
            }
            .validate()
        };
        with("ACME Corp ssh").unwrap();
        for (bad, says) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("a\u{7}b", "contains"),
            ("ACME:ssh", "':'"),
            (&"x".repeat(MAX_ISSUER_CHARS + 1), "at most 64"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(
                err.contains("tokens.issuer") && err.contains(says),
                "{bad}: {err}"
            );
        }
        with(&"é".repeat(MAX_ISSUER_CHARS)).unwrap();
    }
}
