//! The daemon's one error enum. Operator-facing messages say what to do; internal causes (the store,
//! I/O, crypto) are logged and never sent on the wire.
//!
//! An error says what failed and what to do once; what caused it is its source, and the source's
//! source, and so on. Wherever an error is shown (the log, an audit message, an answer to a
//! peer) it is shown with that chain of causes: [`chain`].

use crate::config::ConfigError;
use protocol::ErrorCode;
use std::error::Error;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    /// pid.toml, or a file it names, is wrong: where, and what to write instead. Boxed: it is
    /// rare, and the rest stay small enough to return everywhere.
    #[error("configuration error")]
    Config(#[source] Box<ConfigError>),
    #[error("{0}")]
    Startup(String),
    #[error("store error: {0}")]
    Store(String),
    #[error("store record could not be decoded: {0}")]
    Corrupt(String),
    #[error("crypto error: {0}")]
    Crypto(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    TokenState(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    SessionExpired(String),
    /// A user store (LDAP server, PAM service) could not answer. Not a secret: the operator
    /// needs to know which store failed and why.
    #[error("user store unavailable: {0}")]
    UserStore(String),
    /// A code could not be sent (mail server, SMS gateway): the operator needs to know why.
    #[error("could not send the code: {0}")]
    Delivery(String),
    /// A validation server (Yubico) could not give an answer.
    #[error("validation server unavailable: {0}")]
    Remote(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PidError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PidError::NotFound(_) => ErrorCode::NotFound,
            PidError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            PidError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            PidError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            PidError::TokenState(_) => ErrorCode::TokenState,
            PidError::RateLimited(_) => ErrorCode::RateLimited,
            PidError::SessionExpired(_) => ErrorCode::SessionExpired,
            PidError::Config(_)
            | PidError::Startup(_)
            | PidError::Store(_)
            | PidError::Corrupt(_)
            | PidError::Crypto(_)
            | PidError::UserStore(_)
            | PidError::Delivery(_)
            | PidError::Remote(_)
            | PidError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the peer is told. Internal causes stay in the log.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal
                if matches!(
                    self,
                    PidError::UserStore(_) | PidError::Delivery(_) | PidError::Remote(_)
                ) =>
            {
                chain(self).to_string()
            }
            ErrorCode::Internal => {
                "internal error in the pi daemon; its log (journalctl -u pid) has the cause".into()
            }
            _ => self.to_string(),
        }
    }
}

impl From<ConfigError> for PidError {
    fn from(e: ConfigError) -> Self {
        PidError::Config(Box::new(e))
    }
}

impl From<protocol::FrameError> for PidError {
    fn from(e: protocol::FrameError) -> Self {
        PidError::Corrupt(e.to_string())
    }
}

pub type Result<T, E = PidError> = std::result::Result<T, E>;

/// `error` and every cause below it, outermost first: `what failed: why: why …`.
pub fn chain<'a>(error: &'a (dyn Error + 'static)) -> Chain<'a> {
    Chain(error)
}

/// Shows an error with its causes (see [`chain`]).
pub struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the door")]
    struct Door(#[source] std::io::Error);

    #[test]
    fn an_error_is_shown_with_each_cause_once() {
        let e = Door(std::io::Error::other("the key broke"));
        assert_eq!(e.to_string(), "cannot open the door");
        assert_eq!(chain(&e).to_string(), "cannot open the door: the key broke");
    }
}
