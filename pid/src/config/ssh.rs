//! The `[ssh]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// `[ssh]`: `pictl ssh keys` for sshd's AuthorizedKeysCommand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Accounts (besides root) that may ask for the authorized keys of any login: the
    /// `AuthorizedKeysCommandUser` of sshd_config. Public keys are not secret, but which key
    /// opens which account is nobody else's business.
    pub keys_users: Vec<String>,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            keys_users: vec!["nobody".into()],
        }
    }
}

impl SshConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bad) = self
            .keys_users
            .iter()
            .find(|u| u.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(ConfigError::invalid(
                "ssh.keys_users",
                format!("{bad:?} is not an account name"),
            ));
        }
        Ok(())
    }
}
