//! pid's command line: the clap definition `main.rs` parses, and what the manual page and the
//! shell completions are generated from (`pi-docgen`), so the three cannot disagree.

use clap::{CommandFactory, Parser};
use std::path::PathBuf;

/// pid stopped after SIGTERM or SIGINT, or `--check-config` / `--key-fingerprint` succeeded.
pub const EXIT_OK: u8 = 0;
/// pid started but failed while running, or could not start (socket, store, key, directories).
pub const EXIT_FAILED: u8 = 1;
/// The configuration cannot be read or is invalid (`--check-config`: or pid would refuse to start
/// with it), or the key file given to `--key-fingerprint` cannot be read.
pub const EXIT_INVALID: u8 = 2;

/// Every exit status pid gives, with its meaning, for the manual page.
pub const EXIT_STATUS: [(u8, &str); 3] = [
    (
        EXIT_OK,
        "pid stopped after SIGTERM or SIGINT, or --check-config found the configuration valid, \
         or --key-fingerprint printed the fingerprint.",
    ),
    (
        EXIT_FAILED,
        "pid could not start (the socket, the store, the key, or a directory it refuses) or \
         failed while running; the reason is on stderr and in the log.",
    ),
    (
        EXIT_INVALID,
        "The configuration cannot be read or is invalid (with --check-config also when pid \
         would refuse to start with it), or the key file given to --key-fingerprint cannot be \
         read.",
    ),
];

/// pi daemon: owns the token store and answers pam_pi and pictl on a Unix socket.
#[derive(Parser)]
#[command(
    name = "pid",
    version,
    after_help = "Examples:\n  pid --config /etc/pi/pid.toml\n  pid --check-config /etc/pi/pid.toml"
)]
pub struct Args {
    /// Run in the foreground with this configuration (an empty file means all defaults).
    #[arg(long, value_name = "FILE", default_value = protocol::paths::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Validate FILE, print the effective configuration, and exit (0 = valid, 2 = invalid).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<PathBuf>,
    /// Print the fingerprint of a key file (e.g. a backup of enckey_file) and exit. pid names
    /// the fingerprint of the key a store needs when that key is missing or wrong.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "check_config"])]
    pub key_fingerprint: Option<PathBuf>,
}

/// The clap command `pid` parses.
pub fn command() -> clap::Command {
    Args::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn help_names_every_option_with_the_default_config_and_examples() {
        let help = command().render_help().to_string();
        for expected in [
            "Usage: pid [OPTIONS]",
            "--config <FILE>",
            "[default: /etc/pi/pid.toml]",
            "--check-config <FILE>",
            "--key-fingerprint <FILE>",
            "pid --check-config /etc/pi/pid.toml",
        ] {
            assert!(help.contains(expected), "{expected}:\n{help}");
        }
    }

    #[test]
    fn the_config_defaults_to_the_installed_path() {
        let args = Args::try_parse_from(["pid"]).unwrap();
        assert_eq!(args.config, PathBuf::from(protocol::paths::DEFAULT_CONFIG));
        assert!(args.check_config.is_none() && args.key_fingerprint.is_none());
    }
}
