//! The `[smtp]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[smtp]`: where e-mail tokens' codes are sent. Unset `host`: e-mail tokens cannot challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or `none` (only for a
    /// relay on this host).
    pub tls: SmtpTls,
    /// The sender address, e.g. `pi@example.org`.
    pub sender: String,
    /// Log in as this user (with `password_file`); absent: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A root-only file holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) of the server; the system's trust store if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 25,
            tls: SmtpTls::Starttls,
            sender: String::new(),
            username: None,
            password_file: None,
            ca_file: None,
            timeout_secs: 10,
        }
    }
}

impl SmtpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_empty() {
            return Ok(());
        }
        if !self.sender.contains('@') {
            return Err(ConfigError::invalid(
                "smtp.sender",
                "must be an address such as \"pi@example.org\"",
            ));
        }
        match (&self.username, &self.password_file) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "smtp.username",
                    "comes together with smtp.password_file",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "smtp.password_file",
                    "comes together with smtp.username",
                ))
            }
            _ => {}
        }
        for (key, path) in [
            ("password_file", &self.password_file),
            ("ca_file", &self.ca_file),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(ConfigError::invalid(
                    format!("smtp.{key}"),
                    "must be an absolute path",
                ));
            }
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(ConfigError::invalid(
                "smtp.timeout_secs",
                "must be between 1 and 120",
            ));
        }
        Ok(())
    }
}
