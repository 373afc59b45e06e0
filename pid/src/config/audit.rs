//! The `[audit]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// The longest `audit.keep_days` that is not "forever": a hundred years.
pub const MAX_AUDIT_KEEP_DAYS: u32 = 36_500;

/// `[audit]`: what the audit trail keeps. A full disk fails every login, so the trail is
/// bounded by default, in age and in number of entries (a login adds ~200 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this many days are deleted (checked every minute); 0 keeps them
    /// whatever their age, as privacyIDEA does.
    pub keep_days: u32,
    /// The oldest entries beyond this many are deleted (checked every minute); 0: no limit.
    /// The default, a million, is ~200 MB.
    pub max_entries: u64,
    /// Entries one user (any account but root; `su` and `sudo` count for the account that
    /// started them) has recorded one by one per minute; the rest are counted in one summary
    /// entry per user and minute. Administrators' own entries are never summarised.
    pub user_entries_per_minute: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            keep_days: 365,
            max_entries: 1_000_000,
            user_entries_per_minute: 20,
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.keep_days > MAX_AUDIT_KEEP_DAYS {
            return Err(ConfigError::invalid(
                "audit.keep_days",
                format!("must be at most {MAX_AUDIT_KEEP_DAYS} (0 keeps the audit trail forever)"),
            ));
        }
        Ok(())
    }
}
