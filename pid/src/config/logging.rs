//! `log_level`, `log_target` and `journal_socket`: what the daemon logs, and where.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// Where journald listens for native log records.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// `log_target` (see `logging`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    Auto,
    Journal,
    Stderr,
}

/// The levels `log_level` accepts, alone or after `TARGET=`.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// `log_level` is a level, or comma-separated directives each naming one (`info,pid::realm=debug`).
///
/// Why this is stricter than tracing's own parser: that one reads a word it does not know as a
/// target name, so `"verbose"` or `"warning"` would pass and switch every log line off.
pub(super) fn validate_log_level(value: &str) -> Result<(), ConfigError> {
    let refuse = || {
        ConfigError::invalid(
            "log_level",
            format!(
                "{value:?} is not a level: use one of {} (or directives such as \
                 \"info,pid::realm=debug\")",
                LOG_LEVELS.join(", ")
            ),
        )
    };
    for directive in value.split(',') {
        let level = match directive.trim().split_once('=') {
            Some((target, level)) => {
                let target_ok = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                if !target_ok {
                    return Err(refuse());
                }
                level
            }
            None => directive.trim(),
        };
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(refuse());
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(drop)
        .map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_level_that_names_no_level_is_refused_with_the_valid_ones() {
        for bad in [
            "verbose",
            "warning",
            "",
            "info,",
            "pid=verbose",
            "=debug",
            "pid realm=debug",
        ] {
            let msg = validate_log_level(bad).unwrap_err().to_string();
            assert!(
                msg.contains("error, warn, info, debug, trace"),
                "{bad}: {msg}"
            );
        }
        for good in [
            "error",
            "warn",
            "info",
            "debug",
            "trace",
            "INFO",
            "info,pid::realm=debug",
        ] {
            let checked = validate_log_level(good);
            assert!(checked.is_ok(), "{good}: {checked:?}");
        }
    }
}
