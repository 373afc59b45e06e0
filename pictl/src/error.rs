//! The one error type of `pictl`, its exit codes and the advice each failure carries.
//!
//! Invariant: every message tells the operator what to do next, and it is printed exactly once
//! (by `crate::run`), on stderr, or as the single JSON document on stdout with `--json`.

use protocol::{ClientError, ErrorCode, Response};
use std::process::ExitCode;

/// The process exit status, as documented in `pictl --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok,
    /// The daemon refused or the operation failed (including a rejected authentication).
    Failed,
    /// Bad arguments or bad input on stdin.
    Usage,
    /// The daemon is unreachable, did not answer in time, or speaks another protocol.
    Unreachable,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or stdin is wrong; the text names what and how to fix it.
    #[error("{0}")]
    Usage(String),
    #[error("{}", client_message(.0))]
    Client(#[from] ClientError),
    /// `Response::Error` from the daemon.
    #[error("{}", daemon_message(*.code, .message))]
    Daemon { code: ErrorCode, message: String },
    /// The daemon answered, but not with what the request calls for.
    #[error(
        "the daemon answered a {request} request with {got}; pictl and pid probably come from \
         different releases: install matching versions (`pictl --version`, `pid --version`)"
    )]
    Unexpected {
        request: &'static str,
        got: &'static str,
    },
    /// The operation failed on this side for a reason the text explains.
    #[error("{0}")]
    Failed(String),
    #[error(
        "cannot read standard input: {0}; pipe the answers in, one line each, or run on a terminal"
    )]
    Input(std::io::Error),
    #[error("cannot write the output: {0} (was the reading end of a pipe closed?)")]
    Output(std::io::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Client(_) | Error::Unexpected { .. } => Exit::Unreachable,
            Error::Daemon { code, .. } => exit_for_code(*code),
            Error::Failed(_) | Error::Input(_) | Error::Output(_) => Exit::Failed,
        }
    }

    /// A short stable name for `--json` output: the daemon's `ErrorCode` names, plus pictl's own.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Client(ClientError::Unreachable { .. }) => "unreachable",
            Error::Client(ClientError::Timeout) => "timeout",
            Error::Client(ClientError::UntrustedDaemon { .. }) => "untrusted_daemon",
            Error::Client(ClientError::Protocol(_)) | Error::Unexpected { .. } => "protocol",
            Error::Daemon { code, .. } => code.as_str(),
            Error::Failed(_) => "failed",
            Error::Input(_) => "input",
            Error::Output(_) => "output",
        }
    }

    /// Shorthand for an answer that does not fit the request.
    pub fn unexpected(request: &'static str, got: &Response) -> Error {
        Error::Unexpected {
            request,
            got: response_kind(got),
        }
    }
}

/// A protocol that cannot be spoken is as bad as no daemon at all: exit 3, like a missing socket.
pub fn exit_for_code(code: ErrorCode) -> Exit {
    match code {
        ErrorCode::VersionMismatch | ErrorCode::Malformed => Exit::Unreachable,
        ErrorCode::PermissionDenied
        | ErrorCode::NotFound
        | ErrorCode::AlreadyExists
        | ErrorCode::InvalidArgument
        | ErrorCode::RateLimited
        | ErrorCode::SessionExpired
        | ErrorCode::TokenState
        | ErrorCode::Internal
        | ErrorCode::Unsupported
        | ErrorCode::ProofRequired => Exit::Failed,
    }
}

/// What the operator should do about each daemon error code.
pub fn hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::VersionMismatch => {
            "pictl and pid speak different protocol versions: install matching versions of both"
        }
        ErrorCode::Malformed => {
            "the daemon could not decode the request: pictl and pid probably come from different \
             releases, install matching versions"
        }
        ErrorCode::PermissionDenied => {
            "the message above says who may: run pictl as root (sudo), or ask an administrator \
             (pid.toml `admin_group`, `[[policy]]`, `[ssh] keys_users`)"
        }
        ErrorCode::NotFound => {
            "nothing by the name the message above gives exists: correct it and run the command \
             again"
        }
        ErrorCode::AlreadyExists => {
            "it exists already: choose another name (for a token, another --serial, or leave it \
             out), or remove the existing one first"
        }
        ErrorCode::InvalidArgument => {
            "correct the parameter named above (see `pictl help <command>` for the accepted values)"
        }
        ErrorCode::RateLimited => "too many requests: wait a minute, then try again",
        ErrorCode::SessionExpired => {
            "the authentication session expired or is unknown: run the command again and answer \
             promptly"
        }
        ErrorCode::TokenState => {
            "the token's state does not allow this: inspect it with `pictl token show SERIAL` \
             (`pictl token enable` re-enables, `pictl token reset` clears the fail counter)"
        }
        ErrorCode::Internal => {
            "the daemon failed internally: its log has the details (`journalctl -u pid`)"
        }
        ErrorCode::Unsupported => {
            "this pid does not provide that operation: check `pictl status` and upgrade pid"
        }
        ErrorCode::ProofRequired => {
            "log in first with a code of one of your tokens or your recovery code; the pictl \
             command named above asks for it itself"
        }
    }
}

/// The daemon's message on the first line, the advice below it: the advice refers to the
/// message ("the message above says who may").
fn daemon_message(code: ErrorCode, message: &str) -> String {
    let message = crate::output::sanitize(message.trim());
    if message.is_empty() {
        format!("pid refused the request ({code})\n{}", hint(code))
    } else {
        format!("{message} ({code})\n{}", hint(code))
    }
}

fn client_message(e: &ClientError) -> String {
    match e {
        // Connecting to a directory says "Connection refused", as if pid were down.
        ClientError::Unreachable { path, .. } if std::path::Path::new(path).is_dir() => format!(
            "{} is a directory, not pid's socket: name the socket itself with --socket PATH or \
             PI_SOCKET (pid.toml `socket`; the default is {})",
            crate::output::sanitize(path),
            protocol::paths::DEFAULT_SOCKET
        ),
        ClientError::Unreachable { .. } => format!(
            "{e}; if pid listens on another socket, name it with --socket PATH or PI_SOCKET"
        ),
        ClientError::Timeout => format!(
            "{e}: it may be overloaded or hung; check `systemctl status pid` and its log \
             (`journalctl -u pid`)"
        ),
        ClientError::Protocol(_) => format!(
            "{e}; pictl and pid probably come from different releases: install matching versions"
        ),
        ClientError::UntrustedDaemon { found, .. } => {
            let uid = found.map_or_else(|| "N".to_string(), |u| u.to_string());
            format!(
                "{e}. If pid runs as uid {uid} on purpose, pass --daemon-uid {uid} or set \
                 {}={uid}",
                protocol::paths::DAEMON_UID_ENV
            )
        }
    }
}

/// The variant name of a response, for messages about answers that do not fit.
pub fn response_kind(response: &Response) -> &'static str {
    use protocol::AdminResponse as A;
    match response {
        Response::Error { .. } => "an error",
        Response::AuthStep { .. } => "an authentication prompt",
        Response::AuthDone(_) => "an authentication verdict",
        Response::Status(_) => "a status",
        Response::Admin(A::Done { .. }) => "a confirmation",
        Response::Admin(A::Enrolled(_)) => "an enrollment",
        Response::Admin(A::Token(_)) => "a token",
        Response::Admin(A::Tokens { .. }) => "a token list",
        Response::Admin(A::Audit { .. }) => "an audit page",
        Response::Admin(A::PolicyCheck(_)) => "a policy report",
        Response::Admin(A::Machines(_)) => "a machine assignment list",
        Response::Admin(A::LuksResponses(_)) => "LUKS responses",
        Response::Admin(A::Imported(_)) => "import results",
        Response::Admin(A::Offline(_)) => "offline values",
        Response::Admin(A::Upstreams(_)) => "upstream servers",
        Response::Admin(A::Otps { .. }) => "upcoming codes",
        Response::Admin(A::EnrolledUnverified(_)) => "an enrollment to verify",
        Response::Admin(A::Verified { .. }) => "a verification",
        Response::SshKeys { .. } => "SSH keys",
        Response::PinChanged { .. } => "a PIN change",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::FrameError;

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        assert_eq!(Exit::Ok.code(), 0);
        assert_eq!(Exit::Failed.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Unreachable.code(), 3);
    }

    #[test]
    fn every_error_code_maps_to_an_exit_code() {
        for code in ErrorCode::ALL {
            let err = Error::Daemon {
                code,
                message: "x".into(),
            };
            let expected = match code {
                ErrorCode::VersionMismatch | ErrorCode::Malformed => Exit::Unreachable,
                _ => Exit::Failed,
            };
            assert_eq!(err.exit(), expected, "{code:?}");
            assert_eq!(err.code(), code.as_str());
        }
    }

    #[test]
    fn every_error_code_message_carries_advice() {
        for code in ErrorCode::ALL {
            let text = Error::Daemon {
                code,
                message: "daemon says no".into(),
            }
            .to_string();
            assert!(text.starts_with("daemon says no"), "{text}");
            assert!(text.contains(hint(code)), "{text}");
            assert!(hint(code).len() > 20, "{code:?} hint too thin");
        }
    }

    #[test]
    fn the_advice_stands_on_its_own_line_below_the_message() {
        for code in ErrorCode::ALL {
            let text = Error::Daemon {
                code,
                message: "daemon says no".into(),
            }
            .to_string();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(
                lines,
                [format!("daemon says no ({code})").as_str(), hint(code)],
                "{code:?}"
            );
        }
        let not_found = hint(ErrorCode::NotFound);
        assert!(!not_found.contains("serial"), "{not_found}");
    }

    #[test]
    fn permission_denied_names_the_admin_group() {
        let text = Error::Daemon {
            code: ErrorCode::PermissionDenied,
            message: String::new(),
        }
        .to_string();
        assert!(text.contains("admin_group"), "{text}");
        assert!(text.contains("root"), "{text}");
    }

    #[test]
    fn client_errors_exit_with_unreachable() {
        let unreachable = Error::Client(ClientError::Unreachable {
            path: "/nowhere/pid.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(unreachable.exit(), Exit::Unreachable);
        assert_eq!(unreachable.code(), "unreachable");
        let text = unreachable.to_string();
        assert!(text.contains("/nowhere/pid.sock"), "{text}");
        assert!(text.contains("--socket"), "{text}");

        let timeout = Error::Client(ClientError::Timeout);
        assert_eq!(timeout.exit(), Exit::Unreachable);
        assert_eq!(timeout.code(), "timeout");
        assert!(timeout.to_string().contains("systemctl status pid"));

        let impostor = Error::Client(ClientError::UntrustedDaemon {
            path: "/run/pi/pid.sock".into(),
            found: Some(65534),
            expected: 0,
        });
        assert_eq!(impostor.exit(), Exit::Unreachable);
        assert_eq!(impostor.code(), "untrusted_daemon");
        let text = impostor.to_string();
        for needle in ["uid 65534", "--daemon-uid 65534", "PI_DAEMON_UID=65534"] {
            assert!(text.contains(needle), "{needle}: {text}");
        }

        let protocol = Error::Client(ClientError::Protocol(FrameError::Closed));
        assert_eq!(protocol.exit(), Exit::Unreachable);
        assert_eq!(protocol.code(), "protocol");
        assert!(protocol.to_string().contains("matching versions"));
    }

    #[test]
    fn a_directory_named_as_the_socket_is_called_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let e = Error::Client(ClientError::Unreachable {
            path: path.clone(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        });
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{path} is a directory")),
            "{text}"
        );
        assert!(
            text.contains("/run/pi/pid.sock") && text.contains("`socket`"),
            "{text}"
        );
        assert!(!text.contains("refused"), "{text}");
        assert_eq!(e.exit(), Exit::Unreachable);
    }

    #[test]
    fn local_failures_map_to_their_exit_codes() {
        assert_eq!(Error::Usage("u".into()).exit(), Exit::Usage);
        assert_eq!(Error::Failed("f".into()).exit(), Exit::Failed);
        let io = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(Error::Input(io()).exit(), Exit::Failed);
        assert_eq!(Error::Output(io()).exit(), Exit::Failed);
        let unexpected =
            Error::unexpected("status", &Response::AuthDone(protocol::Outcome::NoToken));
        assert_eq!(unexpected.exit(), Exit::Unreachable);
        assert!(unexpected.to_string().contains("an authentication verdict"));
    }

    #[test]
    fn daemon_message_cannot_smuggle_terminal_escapes() {
        let text = Error::Daemon {
            code: ErrorCode::NotFound,
            message: "no \u{1b}[2Jtoken".into(),
        }
        .to_string();
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
