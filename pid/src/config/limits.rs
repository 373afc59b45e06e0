//! The `[limits]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// What one peer can make the daemon hold. "Users" here are every account but root, including
/// the `su` and `sudo` prompts an account starts (they run as root, but for that account): no
/// local account can take the share of the daemon that root's logins (sshd, login, su and sudo
/// as root) need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Connections served at once; further peers wait in the kernel backlog.
    pub max_connections: u32,
    /// A connection silent this long is closed; also the lifetime of an unanswered prompt.
    /// A `Status` request does not count as activity.
    pub idle_timeout_secs: u64,
    pub sessions_per_connection: u32,
    /// Authentications a user (a screen locker, `su` started by a user) may start per minute.
    pub user_auth_per_minute: u32,
    /// Connections all users together may hold; the rest of `max_connections` is root's.
    pub user_connections: u32,
    /// Connections one user may hold (a screen locker and a `pictl` need one each).
    pub user_connections_per_uid: u32,
    /// `idle_timeout_secs` for users' connections.
    pub user_idle_timeout_secs: u64,
    /// `sessions_per_connection` for users' connections (one login needs one).
    pub user_sessions_per_connection: u32,
    /// Tokens a user may hold once they enroll one themselves: what a user's own enrollments
    /// can make the daemon store, whatever `max_token_per_user` allows.
    pub user_tokens: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 512,
            idle_timeout_secs: 300,
            sessions_per_connection: 64,
            user_auth_per_minute: 30,
            user_connections: 64,
            user_connections_per_uid: 8,
            user_idle_timeout_secs: 60,
            user_sessions_per_connection: 4,
            user_tokens: 20,
        }
    }
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, n) in [
            ("max_connections", self.max_connections),
            ("sessions_per_connection", self.sessions_per_connection),
            ("user_connections", self.user_connections),
            ("user_connections_per_uid", self.user_connections_per_uid),
            (
                "user_sessions_per_connection",
                self.user_sessions_per_connection,
            ),
            ("user_tokens", self.user_tokens),
        ] {
            if n == 0 {
                return Err(ConfigError::invalid(
                    format!("limits.{key}"),
                    "must be at least 1",
                ));
            }
        }
        for (key, secs) in [
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("user_idle_timeout_secs", self.user_idle_timeout_secs),
        ] {
            if !(1..=86_400).contains(&secs) {
                return Err(ConfigError::invalid(
                    format!("limits.{key}"),
                    "must be between 1 and 86400",
                ));
            }
        }
        if self.user_connections >= self.max_connections {
            return Err(ConfigError::invalid(
                "limits.user_connections",
                format!(
                    "{} must be below limits.max_connections ({}): the rest is kept for root's \
                     logins (sshd, login), which no other account can take",
                    self.user_connections, self.max_connections
                ),
            ));
        }
        if self.user_connections_per_uid > self.user_connections {
            return Err(ConfigError::invalid(
                "limits.user_connections_per_uid",
                "must be at most limits.user_connections",
            ));
        }
        Ok(())
    }
}
