//! Users as the daemon sees them once a resolver found them (see `realm/`), and the rules for
//! names that come from outside.

use crate::error::PidError;
use crate::store::Owner;
use protocol::paths::MAX_USER_LEN;

/// A user a resolver found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub owner: Owner,
    /// The host uid, only when a `passwd` resolver found the user: only then can it be matched
    /// against a caller's SO_PEERCRED uid.
    pub host_uid: Option<u32>,
    /// Name of the resolver that found the user.
    pub resolver: String,
    /// The person behind the login, as the resolver identifies them: the uid of a host account
    /// or flatfile line, the `uid_attribute` (entryUUID …) of an LDAP entry. Tokens are bound to
    /// it, so a login name handed to someone else does not hand over the previous owner's tokens.
    pub user_id: String,
}

/// Parse, don't validate: a login name that is safe to key the store by and to log. Refuses NUL,
/// control characters, `/`, whitespace, and over-long names, with a message naming the problem.
pub fn validate_login(login: &str) -> Result<(), PidError> {
    if login.is_empty() {
        return Err(PidError::InvalidArgument("the user name is empty".into()));
    }
    if login.len() > MAX_USER_LEN {
        return Err(PidError::InvalidArgument(format!(
            "the user name is {} bytes long; at most {MAX_USER_LEN} are accepted",
            login.len()
        )));
    }
    if let Some(c) = login
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '/')
    {
        return Err(PidError::InvalidArgument(format!(
            "the user name contains the character {c:?}, which no account name may contain"
        )));
    }
    Ok(())
}

/// Why a name (of a realm, a resolver, a PAM service) cannot be one.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("a {what} name has 1 to 64 characters")]
    Length { what: &'static str },
    #[error("{what} {name:?} may contain only letters, digits, '-', '_' and '.'")]
    Characters { what: &'static str, name: String },
}

/// A name of `what` (a realm, a resolver, a PAM service): 1 to 64 letters, digits, `-`, `_`
/// and `.`, so it is safe in a file name, a key of the store and a log line.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 64 {
        return Err(NameError::Length { what });
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(NameError::Characters {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_user_names_are_refused() {
        for bad in [
            "",
            "a\0b",
            "a\nb",
            "a b",
            "../etc",
            &"x".repeat(MAX_USER_LEN + 1),
        ] {
            assert!(validate_login(bad).is_err(), "{bad:?}");
        }
        validate_login("alice.smith-1@corp").unwrap();
    }
}
