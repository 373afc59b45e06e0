//! The daemon's one error enum. Operator-facing messages say what to do; internal causes (the store,
//! I/O, crypto) are logged and never sent on the wire.
//!
//! An error says what failed and what to do once; what caused it is its source, and the source's
//! source, and so on. Wherever an error is shown (the log, an audit message, an answer to a
//! peer) it is shown with that chain of causes: [`chain`].

use crate::config::ConfigError;
use protocol::ErrorCode;
use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    /// pid.toml, or a file it names, is wrong: where, and what to write instead. Boxed: it is
    /// rare, and the rest stay small enough to return everywhere.
    #[error("configuration error")]
    Config(#[source] Box<ConfigError>),
    /// The daemon cannot start as it finds things; the text says what to do.
    #[error("{0}")]
    Startup(String),
    /// A file or directory the daemon needs could not be used: what was done to which one.
    #[error("cannot {action} {}", path.display())]
    File {
        action: Cow<'static, str>,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The store's journal files could not be used. The store goes on with what it holds in
    /// memory; the journal's existing files keep what was committed.
    #[error("internal error: cannot {action} {}", path.display())]
    JournalFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A journal file found at start is damaged: pid does not start rather than lose or
    /// replay one-time passwords.
    #[error(transparent)]
    Journal(#[from] crate::store::Damaged),
    /// Directories pid would open files in that others could tamper with, each with its fix.
    #[error("{}", crate::trust::lines(.0))]
    Untrusted(Vec<crate::trust::Untrusted>),
    /// A thread the daemon needs could not be started.
    #[error("cannot start the {0} thread")]
    Thread(&'static str, #[source] std::io::Error),
    /// The store's database file could not be opened.
    #[error("cannot {action} the store {}", path.display())]
    StoreOpen {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// The store's database failed. Boxed: redb's errors are large.
    #[error("store error")]
    Store(#[source] Box<redb::Error>),
    /// An earlier pi's sled store could not be brought over to redb.
    #[error(transparent)]
    Migrate(Box<crate::store::MigrateError>),
    /// What the store holds could not be made durable: the flusher's error, shared by every
    /// caller that waited for the same commit.
    #[error("internal error: flush failed")]
    Flush(#[source] Arc<PidError>),
    /// A stored record does not decode.
    #[error("store record could not be decoded")]
    Frame(#[from] protocol::FrameError),
    /// A stored record is damaged: which, and how.
    #[error("store record could not be decoded: {0}")]
    Corrupt(String),
    /// A secret does not seal or open: which, and why.
    #[error("crypto error: {0}")]
    Crypto(String),
    /// argon2 could not hash a PIN.
    #[error("crypto error: cannot hash PIN")]
    PinHash(#[source] argon2::password_hash::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// What an administrator asked for a new token is refused: what to give instead, with the
    /// causes (an SSH key's parse error).
    #[error(transparent)]
    Enroll(#[from] crate::tokens::EnrollError),
    /// A machine request is refused (an assignment's options, a host name, a LUKS password):
    /// what to give instead.
    #[error(transparent)]
    Machine(#[from] crate::machines::MachineError),
    #[error("{0}")]
    PermissionDenied(String),
    /// A user's change to their own token that needs a login with one of their codes first.
    #[error("{0}")]
    ProofRequired(String),
    /// A PIN about to be set breaks the enrollment policy's PIN rules.
    #[error(transparent)]
    PinRefused(#[from] crate::policy::PinRefused),
    #[error("{0}")]
    TokenState(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    SessionExpired(String),
    /// A user store (LDAP server, PAM service) could not answer. Not a secret: the operator
    /// needs to know which store failed and why.
    #[error("user store unavailable")]
    UserStore(#[source] Box<crate::realm::RealmError>),
    /// The runtime LDAP requests run on outside the daemon could not be started.
    #[error("internal error: cannot start a runtime for LDAP")]
    LdapRuntime(#[source] std::io::Error),
    /// A code could not be sent (mail server, SMS gateway): the operator needs to know why.
    #[error("could not send the code: {0}")]
    Delivery(String),
    /// An upstream privacyIDEA server could not give a usable answer: which, and why. Not a
    /// secret: the operator needs it.
    #[error(transparent)]
    Upstream(Box<crate::upstream::UpstreamError>),
    /// A validation server (Yubico) could not give an answer.
    #[error("validation server unavailable: {0}")]
    Remote(String),
    /// A task the daemon ran off the executor panicked or was cancelled.
    #[error("internal error: {task} task failed")]
    Task {
        task: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl PidError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PidError::NotFound(_) => ErrorCode::NotFound,
            PidError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            PidError::InvalidArgument(_)
            | PidError::Enroll(_)
            | PidError::Machine(_)
            | PidError::PinRefused(_) => ErrorCode::InvalidArgument,
            PidError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            PidError::ProofRequired(_) => ErrorCode::ProofRequired,
            PidError::TokenState(_) => ErrorCode::TokenState,
            PidError::RateLimited(_) => ErrorCode::RateLimited,
            PidError::SessionExpired(_) => ErrorCode::SessionExpired,
            PidError::Config(_)
            | PidError::Startup(_)
            | PidError::Untrusted(_)
            | PidError::File { .. }
            | PidError::JournalFile { .. }
            | PidError::Journal(_)
            | PidError::Thread(..)
            | PidError::StoreOpen { .. }
            | PidError::Store(_)
            | PidError::Migrate(_)
            | PidError::Flush(_)
            | PidError::Frame(_)
            | PidError::Corrupt(_)
            | PidError::Crypto(_)
            | PidError::PinHash(_)
            | PidError::UserStore(_)
            | PidError::Delivery(_)
            | PidError::Remote(_)
            | PidError::Upstream(_)
            | PidError::LdapRuntime(_)
            | PidError::Task { .. }
            | PidError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the peer is told: a refusal with its causes. Internal causes stay in the log.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal
                if matches!(
                    self,
                    PidError::UserStore(_)
                        | PidError::Delivery(_)
                        | PidError::Remote(_)
                        | PidError::Upstream(_)
                ) =>
            {
                chain(self).to_string()
            }
            ErrorCode::Internal => {
                "internal error in the pi daemon; its log (journalctl -u pid) has the cause".into()
            }
            _ => chain(self).to_string(),
        }
    }
}

impl From<crate::upstream::UpstreamError> for PidError {
    fn from(e: crate::upstream::UpstreamError) -> Self {
        PidError::Upstream(Box::new(e))
    }
}

impl From<ConfigError> for PidError {
    fn from(e: ConfigError) -> Self {
        PidError::Config(Box::new(e))
    }
}

impl From<crate::realm::RealmError> for PidError {
    fn from(e: crate::realm::RealmError) -> Self {
        PidError::UserStore(Box::new(e))
    }
}

impl From<redb::Error> for PidError {
    fn from(e: redb::Error) -> Self {
        PidError::Store(Box::new(e))
    }
}

impl From<crate::store::MigrateError> for PidError {
    fn from(e: crate::store::MigrateError) -> Self {
        PidError::Migrate(Box::new(e))
    }
}

impl PidError {
    /// The `task` run off the executor failed.
    pub fn task(task: &'static str, source: tokio::task::JoinError) -> PidError {
        PidError::Task { task, source }
    }

    /// `action` on `path` failed (`action` says what and on what kind of file: "create key
    /// file").
    pub fn file(
        action: impl Into<Cow<'static, str>>,
        path: &Path,
        source: std::io::Error,
    ) -> PidError {
        PidError::File {
            action: action.into(),
            path: path.to_path_buf(),
            source,
        }
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
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            // Some libraries (ldap3, lettre, ureq) end their own message with their source's
            // and also return it as the source: it is shown once.
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
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

    #[derive(Debug, thiserror::Error)]
    #[error("the lock jammed: {0}")]
    struct Lock(#[source] std::io::Error);

    #[test]
    fn a_refused_enrollment_tells_the_peer_its_cause() {
        let e = PidError::from(crate::tokens::EnrollError::SshKey(
            ssh_key::Error::AlgorithmUnknown,
        ));
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        let told = e.public_message();
        assert!(
            told.starts_with("not an OpenSSH public key; ")
                && told.ends_with(": unknown algorithm"),
            "{told}"
        );
    }

    #[test]
    fn an_error_is_shown_with_each_cause_once() {
        let e = Door(std::io::Error::other("the key broke"));
        assert_eq!(e.to_string(), "cannot open the door");
        assert_eq!(chain(&e).to_string(), "cannot open the door: the key broke");
        // A library error that shows its source in its own message.
        let e = Lock(std::io::Error::other("rust"));
        assert_eq!(chain(&e).to_string(), "the lock jammed: rust");
    }
}
