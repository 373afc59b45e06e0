//! The `[store]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// The token store (redb).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The store's page cache in MiB. The daemon's memory is about this plus the user index of
    /// flatfile realms (~30 bytes per user) and the writes of the last checkpoint interval. The
    /// default, 8, holds a 10,000-token store whole; at a million tokens, whose reads land all
    /// over a ~700 MB file, 16 gave 1.5% more logins/s (within noise) for 5–17 MiB more RSS
    /// under load and 20 MiB more at an import's peak: the cached pages churn, and malloc keeps
    /// the churn's holes (docs/performance.md).
    pub cache_mib: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { cache_mib: 8 }
    }
}

impl StoreConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=65_536).contains(&self.cache_mib) {
            return Err(ConfigError::invalid(
                "store.cache_mib",
                "must be between 1 and 65536",
            ));
        }
        Ok(())
    }
}
