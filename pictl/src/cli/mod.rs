//! The command line grammar. The doc comments below ARE the help text: each says what a flag
//! does and what happens when it is left out. One file per command group (`token`, `auth`,
//! `audit`, `policy`, `machine`, `ssh`, `luks`, `import`, `offline`); `values` parses and checks the values
//! flags take.

pub mod audit;
pub mod auth;
pub mod enroll;
pub mod import;
pub mod luks;
pub mod machine;
pub mod offline;
pub mod policy;
pub mod ssh;
pub mod token;
pub mod values;

use clap::{Parser, Subcommand};
use protocol::paths::{DAEMON_UID_ENV, DEFAULT_SOCKET, SOCKET_ENV};
use std::path::PathBuf;

const MAIN_AFTER_HELP: &str = "\
Examples:
  pictl status                               is the daemon up, am I an administrator?
  sudo pictl token enroll totp --user alice  give alice an authenticator-app token
  pictl enroll totp                          enroll a token for yourself (where policy allows)
  sudo pictl token list --user alice         her tokens, their state and fail counters
  pictl auth test --user alice               a real login the way PAM does it (spends the code)
  sudo pictl audit show --limit 20           the 20 newest audit entries
  sudo pictl import oath /etc/users.oath     bring pam_oath's tokens over (also google-authenticator)

The socket is --socket PATH, else $PI_SOCKET, else /run/pi/pid.sock. Whoever listens there must
run as root (or as --daemon-uid / $PI_DAEMON_UID), or pictl sends it nothing.
Token administration and the audit trail need root or membership of the admin group
(pid.toml `admin_group`, default \"pi-admin\").

Exit status:
  0  success
  1  refused or failed (the daemon said no, or an authentication was rejected)
  2  usage error (bad arguments or bad input on stdin)
  3  daemon unreachable, too slow, or speaking another protocol version";

/// pictl: manage pi two-factor tokens and test logins against the pid daemon.
#[derive(Debug, Parser)]
#[command(
    name = "pictl",
    version,
    after_help = MAIN_AFTER_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Unix socket of the pid daemon.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = SOCKET_ENV,
        hide_env_values = true,
        default_value = DEFAULT_SOCKET,
        help_heading = "Global options"
    )]
    pub socket: PathBuf,

    /// The uid pid runs as. pictl refuses to talk to a process of any other uid on the socket
    /// (it could be an impostor collecting PINs and keys).
    #[arg(
        long,
        global = true,
        value_name = "UID",
        env = DAEMON_UID_ENV,
        default_value_t = 0,
        help_heading = "Global options"
    )]
    pub daemon_uid: u32,

    /// Print exactly one JSON document on stdout, errors included (`{"error": {"code", "message"}}`).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll, list, change and remove tokens (root or the admin group).
    #[command(subcommand, after_help = token::TOKEN_AFTER_HELP)]
    Token(token::TokenCommand),
    /// Enroll a token for yourself: scan the QR code, confirm two codes, keep the recovery code.
    #[command(after_help = enroll::ENROLL_AFTER_HELP)]
    Enroll(enroll::SelfEnrollArgs),
    /// Log in the way the PAM module does (a real login: an accepted code is spent).
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Show the daemon's version, store, token count, uptime and whether you are an administrator.
    Status,
    /// Read the audit trail (root or the admin group).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// See which policies apply to a login and what they decide (root or the admin group).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Attach tokens to hosts for SSH, LUKS or offline use (root or the admin group).
    #[command(subcommand, after_help = machine::MACHINE_AFTER_HELP)]
    Machine(machine::MachineCommand),
    /// SSH keys for sshd's AuthorizedKeysCommand.
    #[command(subcommand)]
    Ssh(ssh::SshCommand),
    /// Put a Yubikey's response into a LUKS key slot, or unlock a volume with it (root).
    #[command(subcommand, after_help = luks::LUKS_AFTER_HELP)]
    Luks(luks::LuksCommand),
    /// Bring tokens over from pam_oath or google-authenticator (root or the admin group).
    #[command(subcommand, after_help = import::IMPORT_AFTER_HELP)]
    Import(import::ImportCommand),
    /// Offline values a privacyIDEA server upstream handed out for this host.
    #[command(subcommand)]
    Offline(offline::OfflineCommand),
}

#[cfg(test)]
mod tests {
    use super::token::{TokenCommand, TokenTypeArg};
    use super::values::PinArg;
    use super::*;
    use clap::CommandFactory;
    use protocol::{HashAlgorithm, TokenType};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pictl").chain(args.iter().copied()))
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_parses() {
        let lines: &[&[&str]] = &[
            &["status"],
            &["--json", "status"],
            &["--socket", "/tmp/x.sock", "status"],
            &["token", "enroll", "totp", "--user", "alice"],
            &[
                "token",
                "enroll",
                "hotp",
                "--user",
                "bob",
                "--realm",
                "r",
                "--serial",
                "S1",
                "--otpkey",
                "3132",
                "--digits",
                "8",
                "--hash",
                "sha256",
                "--pin",
                "-",
                "--description",
                "d",
                "--no-qr",
            ],
            &[
                "token", "enroll", "totp", "--user", "a", "--genkey", "--period", "60", "--qr",
            ],
            &["token", "list"],
            &["token", "list", "--user", "alice", "--realm", "r"],
            &["token", "show", "S1"],
            &["token", "delete", "S1"],
            &["token", "enable", "S1"],
            &["token", "disable", "S1"],
            &["token", "revoke", "S1"],
            &[
                "token",
                "set",
                "S1",
                "--pin",
                "p",
                "--maxfail",
                "3",
                "--description",
                "d",
                "--count-auth-max",
                "9",
                "--count-auth-success-max",
                "4",
                "--validity-start",
                "2025-01-01",
                "--validity-end",
                "none",
                "--hotp-window",
                "20",
                "--totp-window",
                "90",
            ],
            &["token", "reset", "S1"],
            &["token", "resync", "S1", "123456", "654321"],
            &["token", "verify", "S1", "123456", "654321"],
            &["token", "verify", "S1", "--recovery-file", "/tmp/r"],
            &["enroll", "totp"],
            &[
                "enroll",
                "hotp",
                "--pin",
                "-",
                "--description",
                "d",
                "--recovery-file",
                "r",
            ],
            &["token", "assign", "S1", "--user", "alice", "--realm", "r"],
            &["token", "unassign", "S1"],
            &["auth", "test", "--user", "alice"],
            &["auth", "test", "--user", "alice", "--service", "sshd"],
            &["audit", "show"],
            &[
                "audit", "show", "--user", "a", "--realm", "r", "--limit", "5",
            ],
            &["token", "list", "--json"],
        ];
        for line in lines {
            if let Err(e) = parse(line) {
                panic!("{line:?} did not parse: {e}");
            }
        }
    }

    #[test]
    fn enroll_fields_reach_the_parsed_arguments() {
        let cli = parse(&[
            "token", "enroll", "hotp", "--user", "bob", "--digits", "8", "--hash", "sha512",
            "--pin", "-",
        ])
        .unwrap();
        let Command::Token(TokenCommand::Enroll(args)) = cli.command else {
            panic!("not an enroll: {cli:?}");
        };
        assert_eq!(args.token_type, TokenTypeArg::Hotp);
        assert_eq!(TokenType::from(args.token_type), TokenType::Hotp);
        assert_eq!(args.digits, Some(8));
        assert_eq!(
            args.hash.map(HashAlgorithm::from),
            Some(HashAlgorithm::Sha512)
        );
        assert_eq!(args.pin, Some(PinArg::Stdin));
        assert!(!args.genkey && args.otpkey.is_none());
    }

    #[test]
    fn later_qr_flag_wins() {
        let cli = parse(&["token", "enroll", "totp", "--user", "a", "--qr", "--no-qr"]).unwrap();
        let Command::Token(TokenCommand::Enroll(args)) = cli.command else {
            panic!("not an enroll");
        };
        assert!(args.no_qr && !args.qr);
    }

    #[test]
    fn conflicting_key_options_are_a_usage_error() {
        let err = parse(&[
            "token", "enroll", "totp", "--user", "a", "--otpkey", "00", "--genkey",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn bad_digits_and_period_are_usage_errors() {
        for bad in ["7", "10", "six", ""] {
            let err =
                parse(&["token", "enroll", "totp", "--user", "a", "--digits", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        for bad in ["10", "604801", "1d"] {
            let err =
                parse(&["token", "enroll", "totp", "--user", "a", "--period", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("30 or 60 for totp"), "{err}");
        }
    }

    #[test]
    fn unknown_token_type_and_missing_user_are_usage_errors() {
        assert_eq!(
            parse(&["token", "enroll", "tiqr", "--user", "a"])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            parse(&["token", "enroll", "totp"]).unwrap_err().exit_code(),
            2
        );
        assert_eq!(
            parse(&["token", "resync", "S1", "123456"])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            parse(&["audit", "show", "--limit", "0"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn a_malformed_validity_time_is_a_usage_error() {
        let err = parse(&["token", "set", "S", "--validity-end", "soon"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn set_without_settings_is_detected() {
        let cli = parse(&["token", "set", "S1"]).unwrap();
        let Command::Token(TokenCommand::Set(args)) = cli.command else {
            panic!("not a set");
        };
        assert!(args.is_empty());
        let cli = parse(&["token", "set", "S1", "--totp-window", "60"]).unwrap();
        let Command::Token(TokenCommand::Set(args)) = cli.command else {
            panic!("not a set");
        };
        assert!(!args.is_empty());
    }

    #[test]
    fn parsed_secrets_do_not_show_in_debug_output() {
        let cli = parse(&[
            "token", "enroll", "totp", "--user", "a", "--otpkey", "c0ffee", "--pin", "s3cret",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("c0ffee") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
