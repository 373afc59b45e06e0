//! The daemon's one error enum. Operator-facing messages say what to do; internal causes (the store,
//! I/O, crypto) are logged and never sent on the wire.

use protocol::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    #[error("configuration error: {0}")]
    Config(String),
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
                self.to_string()
            }
            ErrorCode::Internal => {
                "internal error in the pi daemon; its log (journalctl -u pid) has the cause".into()
            }
            _ => self.to_string(),
        }
    }
}

impl From<protocol::FrameError> for PidError {
    fn from(e: protocol::FrameError) -> Self {
        PidError::Corrupt(e.to_string())
    }
}

pub type Result<T, E = PidError> = std::result::Result<T, E>;
