//! The `[sms]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `[sms]`: where SMS tokens' codes are sent — an HTTP gateway (`url`) or a program (`command`,
/// which gets the phone number as its last argument and the message on stdin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// HTTP gateway, e.g. `https://sms.example.org/send`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// `POST` (default) or `GET`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Extra request headers, e.g. `{ Authorization = "Bearer …" }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body (POST) or query string (GET), with `{phone}` and `{message}`
    /// (URL-encoded in a query, JSON-escaped when the body starts with `{`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Success needs a 2xx status and, if set, this text in the response.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub success_contains: String,
    /// A program instead of HTTP: argv, to which the phone number is appended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: String::new(),
            method: String::new(),
            headers: BTreeMap::new(),
            body: String::new(),
            success_contains: String::new(),
            command: Vec::new(),
            timeout_secs: 10,
        }
    }
}

impl SmsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.is_empty() && !self.command.is_empty() {
            return Err(ConfigError::invalid(
                "sms",
                "set either url (an HTTP gateway) or command (a program), not both",
            ));
        }
        let http = self.url.starts_with("https://") || self.url.starts_with("http://");
        if !self.url.is_empty() && !http {
            return Err(ConfigError::invalid(
                "sms.url",
                "must start with https:// (or http:// for a local gateway)",
            ));
        }
        if !matches!(self.method.as_str(), "" | "GET" | "POST") {
            return Err(ConfigError::invalid("sms.method", "is GET or POST"));
        }
        if self
            .command
            .first()
            .is_some_and(|p| !Path::new(p).is_absolute())
        {
            return Err(ConfigError::invalid(
                "sms.command",
                "must start with an absolute path to the program",
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(ConfigError::invalid(
                "sms.timeout_secs",
                "must be between 1 and 120",
            ));
        }
        Ok(())
    }
}
