//! Stable error codes. The numeric value of every code is part of the wire contract, its name
//! part of `pictl --json` output: append new codes at the end, never reorder or reuse.

use crate::named::named_enum;
use serde::{Deserialize, Serialize};
use std::fmt;

named_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ErrorCode {
        /// The peer speaks another protocol version; the connection is closed after this answer.
        VersionMismatch => "version_mismatch",
        /// The frame or its body could not be decoded.
        Malformed => "malformed",
        /// The caller's uid may not do this.
        PermissionDenied => "permission_denied",
        /// No such token, user, session or entry.
        NotFound => "not_found",
        /// A token with that serial already exists.
        AlreadyExists => "already_exists",
        /// A parameter is out of range or badly formed; the message names it.
        InvalidArgument => "invalid_argument",
        /// Too many requests, sessions or connections; try again later.
        RateLimited => "rate_limited",
        /// The authentication session is unknown or expired; start again.
        SessionExpired => "session_expired",
        /// The operation is not possible in the token's state (revoked, locked ...).
        TokenState => "token_state",
        /// The daemon failed internally (store, crypto). Details are in its log, never on the
        /// wire.
        Internal => "internal",
        /// The request is valid but this daemon does not provide it (yet).
        Unsupported => "unsupported",
        /// A user changes their own token only right after proving who they are: a login on the
        /// same connection with a code of one of their tokens (or their recovery code).
        ProofRequired => "proof_required",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong while framing, sending or receiving.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of length 0 refused")]
    Empty,
    #[error("frame of {0} bytes refused (limit {max})", max = crate::paths::MAX_FRAME)]
    TooLarge(usize),
    #[error("frame too short to hold a protocol version")]
    Truncated,
    #[error("peer speaks protocol version {0}, this side speaks {ours}", ours = crate::paths::PROTOCOL_VERSION)]
    Version(u16),
    #[error("could not decode message: {0}")]
    Decode(String),
    #[error("could not encode message: {0}")]
    Encode(String),
    #[error("connection closed by peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// What the blocking client reports. `Unreachable` and `Timeout` mean "the daemon is not there":
/// PAM maps them to `PAM_AUTHINFO_UNAVAIL`, `pictl` to exit code 3.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the pi daemon at {path}: {source} (is pid running? `systemctl status pid`)"
    )]
    Unreachable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the pi daemon did not answer in time")]
    Timeout,
    /// The process listening on the socket is not the daemon's user: it may be an impostor,
    /// so nothing was sent to it.
    #[error(
        "refusing the process on {path}: it runs as {}, but the pi daemon runs as uid \
         {expected}; nothing was sent to it. Check who created the socket (`ls -ld {path}` and \
         its directory) and start pid as it should run",
        found.map_or_else(|| "an unknown uid".to_string(), |uid| format!("uid {uid}"))
    )]
    UntrustedDaemon {
        path: String,
        found: Option<u32>,
        expected: u32,
    },
    #[error("protocol error talking to the pi daemon: {0}")]
    Protocol(FrameError),
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                ClientError::Timeout
            }
            other => ClientError::Protocol(other),
        }
    }
}
