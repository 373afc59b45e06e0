//! Why a token type refuses what it is given (`EnrollError`), and why a token cannot ask its
//! challenge (`ChallengeError`).

use std::borrow::Cow;

/// A refusal of what the administrator asked for a new token: what is wrong and what to give
/// instead. It reaches pictl as an invalid argument, with its causes.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// A parameter is missing, out of range or does not belong to the type; the text says which
    /// and what to give.
    #[error("{0}")]
    Refused(Cow<'static, str>),
    /// The OCRA suite does not parse.
    #[error(transparent)]
    Suite(#[from] super::ocra::SuiteError),
    /// The line is not an OpenSSH public key (ssh-key's reason is the source).
    #[error(
        "not an OpenSSH public key; give a line like `ssh-ed25519 AAAA… comment` \
         (authorized_keys options such as command= are not supported)"
    )]
    SshKey(#[source] ssh_key::Error),
    /// The parsed SSH key does not encode again.
    #[error("cannot encode the SSH key")]
    SshKeyEncoding(#[source] ssh_key::Error),
    /// A name the token is bound to (an applspec token's PAM service) is not one.
    #[error(transparent)]
    Name(#[from] crate::users::NameError),
    /// What the token type seals does not encode.
    #[error(transparent)]
    Encoding(#[from] protocol::FrameError),
    /// A TAN list given holds one TAN twice.
    #[error("the TAN list repeats a TAN")]
    RepeatedTan,
    /// Two HOTP values of the new key that a TAN list is made from are equal: it happens by
    /// chance, and another key will do.
    #[error(
        "the TAN list repeats a TAN (two HOTP values of the new key were equal); enroll again"
    )]
    GeneratedTanRepeated,
}

impl EnrollError {
    /// A refusal in words: what is wrong and what to give instead.
    pub fn refused(why: impl Into<Cow<'static, str>>) -> EnrollError {
        EnrollError::Refused(why.into())
    }
}

/// A refusal written out in full, so `ok_or("…")?` reads as the rule it states.
impl From<&'static str> for EnrollError {
    fn from(why: &'static str) -> EnrollError {
        EnrollError::Refused(Cow::Borrowed(why))
    }
}

/// Why a token cannot ask its challenge now. The login goes on with the other tokens; the
/// reason is logged.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// The opened material does not hold what the type needs (a question list, a destination):
    /// which part cannot be read.
    #[error("{0}")]
    Unreadable(&'static str),
}
