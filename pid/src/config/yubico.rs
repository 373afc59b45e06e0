//! The `[yubico]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[yubico]`: Yubico validation protocol 2.0 servers (YubiCloud, or a server of your own),
/// tried in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YubicoConfig {
    pub urls: Vec<String>,
    /// The API client id.
    pub client_id: String,
    /// A root-only file with the base64 API key: requests are signed and answers must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

impl Default for YubicoConfig {
    fn default() -> Self {
        YubicoConfig {
            urls: vec!["https://api.yubico.com/wsapi/2.0/verify".into()],
            client_id: String::new(),
            api_key_file: None,
            timeout_secs: 10,
        }
    }
}

impl YubicoConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .urls
            .iter()
            .any(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err(ConfigError::invalid(
                "yubico.urls",
                "must be http(s):// URLs",
            ));
        }
        if self.api_key_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            return Err(ConfigError::invalid(
                "yubico.api_key_file",
                "must be an absolute path",
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(ConfigError::invalid(
                "yubico.timeout_secs",
                "must be between 1 and 120",
            ));
        }
        Ok(())
    }
}
