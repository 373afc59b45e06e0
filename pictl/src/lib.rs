//! `pictl`: the administrator's command line for the pi daemon.
//!
//! Everything goes through the daemon's socket with the blocking `protocol::Client`; pictl never
//! opens the store. `run_args` is the whole program with its streams passed in, so tests drive
//! it exactly as `main` does.

pub mod cli;
pub mod commands;
pub mod error;
pub mod import;
pub mod input;
pub mod luks;
pub mod output;
pub mod piv;
pub mod qr;
pub mod secret_file;

pub use cli::Cli;
pub use error::{Error, Exit};

use clap::Parser;
use std::ffi::OsString;
use std::io::{BufRead, Write};

/// The process's streams, and whether they are terminals (which decides echo-off prompts and
/// whether a QR code is drawn).
pub struct Io<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub stdin_is_terminal: bool,
    pub stdout_is_terminal: bool,
}

/// The clap command pictl parses: what the manual pages and shell completions are generated
/// from (`pi-docgen`), so they describe exactly the arguments pictl accepts.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parse `args` (program name first) and run the command.
pub fn run_args<I, T>(args: I, io: &mut Io<'_>) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => run(cli, io),
        Err(e) => report_usage(&e, wants_json(&args), io),
    }
}

/// Run a parsed command line; the result is printed, any error exactly once.
pub fn run(cli: Cli, io: &mut Io<'_>) -> Exit {
    let json = cli.json;
    match commands::dispatch(cli, io) {
        Ok(exit) => exit,
        Err(e) => {
            report(&e, json, io);
            e.exit()
        }
    }
}

fn report(e: &Error, json: bool, io: &mut Io<'_>) {
    // `pictl token list | head` closes the pipe on purpose: nothing to report.
    if matches!(e, Error::Output(io_err) if io_err.kind() == std::io::ErrorKind::BrokenPipe) {
        return;
    }
    let message = e.to_string();
    // A failed stdout cannot carry the JSON error either: fall back to stderr.
    if json && !matches!(e, Error::Output(_)) {
        let doc = output::error_json(e.code(), &message);
        if output::write_json(io.stdout, &doc).is_ok() {
            return;
        }
    }
    let _ = write!(io.stderr, "{}", human_error(&message));
}

/// `pictl: ` before the first line of an error; the lines after it (advice, one problem each)
/// indented below it.
fn human_error(message: &str) -> String {
    let mut lines = message.lines();
    let mut out = format!("pictl: {}\n", lines.next().unwrap_or_default());
    for line in lines {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// Whether `--json` appears before a `--` separator: a usage error must honour it too.
fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

fn report_usage(e: &clap::Error, json: bool, io: &mut Io<'_>) -> Exit {
    use clap::error::ErrorKind;
    let mut text = e.render().to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = write!(io.stdout, "{text}");
        return Exit::Ok;
    }
    if json && e.kind() != ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let first = text.lines().next().unwrap_or_default();
        let message = format!(
            "{}; see `pictl --help`",
            first.strip_prefix("error: ").unwrap_or(first)
        );
        if output::write_json(io.stdout, &output::error_json("usage", &message)).is_ok() {
            return Exit::Usage;
        }
    }
    let _ = write!(io.stderr, "{text}");
    Exit::Usage
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` with empty stdin and captured stdout and stderr, which are returned with its result.
    fn captured<T>(f: impl FnOnce(&mut Io<'_>) -> T) -> (T, String, String) {
        let mut stdin: &[u8] = b"";
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut io = Io {
            stdin: &mut stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdin_is_terminal: false,
            stdout_is_terminal: false,
        };
        let result = f(&mut io);
        (
            result,
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    }

    fn run_with(args: &[&str]) -> (Exit, String, String) {
        let argv = std::iter::once("pictl").chain(args.iter().copied());
        captured(|io| run_args(argv, io))
    }

    // The socket does not exist: a usage error must be found before pictl tries to connect.
    const NOWHERE: &str = "/nonexistent/pictl-test/pid.sock";

    #[test]
    fn help_goes_to_stdout_with_exit_0() {
        let (exit, out, err) = run_with(&["--help"]);
        assert_eq!(exit, Exit::Ok);
        assert!(out.contains("Exit status"), "{out}");
        assert!(err.is_empty());
        let (exit, out, _) = run_with(&["token", "enroll", "--help"]);
        assert_eq!(exit, Exit::Ok);
        assert!(
            out.contains("--otpkey <HEX>") && out.contains("Examples"),
            "{out}"
        );
    }

    #[test]
    fn version_is_one_line_on_stdout() {
        let (exit, out, _) = run_with(&["--version"]);
        assert_eq!(exit, Exit::Ok);
        assert_eq!(out, format!("pictl {}\n", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn no_command_prints_help_on_stderr_with_exit_2() {
        let (exit, out, err) = run_with(&[]);
        assert_eq!(exit, Exit::Usage);
        assert!(out.is_empty());
        assert!(err.contains("Usage: pictl"), "{err}");
    }

    #[test]
    fn bad_hex_key_is_a_usage_error_that_does_not_echo_the_key() {
        let (exit, out, err) = run_with(&[
            "--socket", NOWHERE, "token", "enroll", "totp", "--user", "a", "--otpkey", "12zz34",
        ]);
        assert_eq!(exit, Exit::Usage);
        assert!(out.is_empty());
        assert!(err.contains("--otpkey must be hex"), "{err}");
        assert!(!err.contains("12zz34"), "{err}");
        assert_eq!(err.lines().count(), 1, "printed once: {err}");
    }

    #[test]
    fn odd_length_hex_key_is_a_usage_error() {
        let (exit, _, err) = run_with(&[
            "--socket", NOWHERE, "token", "enroll", "hotp", "--user", "a", "--otpkey", "123",
        ]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.contains("odd number"), "{err}");
    }

    #[test]
    fn bad_digits_are_a_usage_error() {
        let (exit, _, err) = run_with(&["token", "enroll", "totp", "--user", "a", "--digits", "7"]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.contains("6 or 8"), "{err}");
    }

    #[test]
    fn conflicting_key_flags_are_a_usage_error() {
        let (exit, _, err) = run_with(&[
            "token", "enroll", "totp", "--user", "a", "--otpkey", "00", "--genkey",
        ]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.contains("cannot be used with"), "{err}");
    }

    #[test]
    fn period_on_a_hotp_token_is_a_usage_error() {
        let (exit, _, err) = run_with(&[
            "--socket", NOWHERE, "token", "enroll", "hotp", "--user", "a", "--period", "60",
        ]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.contains("totp"), "{err}");
    }

    #[test]
    fn set_without_any_setting_is_a_usage_error() {
        let (exit, _, err) = run_with(&["--socket", NOWHERE, "token", "set", "S1"]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.contains("--maxfail"), "{err}");
    }

    #[test]
    fn non_digit_otp_for_resync_is_a_usage_error() {
        let (exit, _, err) = run_with(&[
            "--socket", NOWHERE, "token", "resync", "S1", "12a456", "123456",
        ]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.contains("OTP1"), "{err}");
    }

    #[test]
    fn usage_errors_are_json_with_json() {
        let (exit, out, err) = run_with(&["--json", "token", "enroll", "totp", "--digits", "9"]);
        assert_eq!(exit, Exit::Usage);
        assert!(err.is_empty(), "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["code"], "usage");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("--help"),
            "{v}"
        );
    }

    #[test]
    fn json_usage_error_after_parsing_is_one_document() {
        let (exit, out, _) = run_with(&["--json", "--socket", NOWHERE, "token", "set", "S1"]);
        assert_eq!(exit, Exit::Usage);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["code"], "usage");
    }

    #[test]
    fn a_daemon_refusal_prints_the_message_then_the_advice_below_it() {
        let e = Error::Daemon {
            code: protocol::ErrorCode::PermissionDenied,
            message: "only administrators may read the audit trail".into(),
        };
        let ((), _, err) = captured(|io| report(&e, false, io));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert_eq!(
            lines[0],
            "pictl: only administrators may read the audit trail (permission_denied)"
        );
        assert!(
            lines[1].starts_with("  the message above says who may"),
            "{err}"
        );
    }

    #[test]
    fn missing_daemon_is_exit_3_naming_the_socket() {
        let (exit, out, err) = run_with(&["--socket", NOWHERE, "status"]);
        assert_eq!(exit, Exit::Unreachable);
        assert!(out.is_empty());
        assert!(err.contains(NOWHERE), "{err}");
        assert!(err.contains("PI_SOCKET"), "{err}");
    }
}
