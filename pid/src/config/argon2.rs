//! The `[argon2]` section of pid.toml.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// The longest `argon2.verified_pin_cache_secs`: an hour. Longer widens what a memory dump
/// reveals for no gain a login would notice.
pub const MAX_VERIFIED_PIN_CACHE_SECS: u32 = 3600;

/// The highest argon2 cost the configuration accepts, and so the highest a stored PIN hash can
/// have been made with: a stored hash asking for more is damage, not a PIN (crypto.rs refuses
/// it rather than allocate what it asks for).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;
pub const MAX_ARGON2_ITERATIONS: u32 = 64;
pub const MAX_ARGON2_PARALLELISM: u32 = 16;

/// argon2id cost for token PINs. OWASP's minimum by default; privacyIDEA uses
/// memory_kib = 65536, iterations = 9, parallelism = 4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Accept a PIN argon2 accepted for the same token within this many seconds without running
    /// argon2 again (0: off). Trades CPU for what a memory dump of pid reveals: see
    /// `pin_cache`.
    pub verified_pin_cache_secs: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            verified_pin_cache_secs: 0,
        }
    }
}

impl Argon2Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_ARGON2_PARALLELISM).contains(&self.parallelism) {
            return Err(ConfigError::invalid(
                "argon2.parallelism",
                format!("must be between 1 and {MAX_ARGON2_PARALLELISM}"),
            ));
        }
        if self.memory_kib < 8 * self.parallelism || self.memory_kib > MAX_ARGON2_MEMORY_KIB {
            return Err(ConfigError::invalid(
                "argon2.memory_kib",
                format!("must be at least 8 × parallelism and at most {MAX_ARGON2_MEMORY_KIB}"),
            ));
        }
        if !(1..=MAX_ARGON2_ITERATIONS).contains(&self.iterations) {
            return Err(ConfigError::invalid(
                "argon2.iterations",
                format!("must be between 1 and {MAX_ARGON2_ITERATIONS}"),
            ));
        }
        if self.verified_pin_cache_secs > MAX_VERIFIED_PIN_CACHE_SECS {
            return Err(ConfigError::invalid(
                "argon2.verified_pin_cache_secs",
                format!("must be at most {MAX_VERIFIED_PIN_CACHE_SECS} (0 switches the cache off)"),
            ));
        }
        Ok(())
    }
}
