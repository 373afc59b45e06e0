//! Who a user is. For now the host's accounts (NSS: `getpwnam`, so LDAP/SSSD users visible to
//! the system count too) in one default realm; everything is keyed by (realm, login) already so
//! resolvers and realms slot in without a store migration.

use crate::error::PidError;
use crate::store::Owner;
use protocol::paths::MAX_USER_LEN;

/// A user the daemon resolved: the host account exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub owner: Owner,
    pub uid: u32,
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

pub fn validate_realm(realm: &str) -> Result<(), String> {
    if realm.is_empty() || realm.len() > 64 {
        return Err("a realm name has 1 to 64 characters".into());
    }
    if !realm
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "realm {realm:?} may contain only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Split `login@realm` the way privacyIDEA does: only when the part after the last `@` names a
/// known realm; otherwise the whole string is the login (e-mail-style logins stay intact).
pub fn split_realm<'a>(
    user: &'a str,
    realm: Option<&'a str>,
    default_realm: &'a str,
) -> (&'a str, &'a str) {
    if let Some(r) = realm {
        return (user, r);
    }
    if let Some((login, r)) = user.rsplit_once('@') {
        if r == default_realm && !login.is_empty() {
            return (login, r);
        }
    }
    (user, default_realm)
}

/// Look the account up in NSS. Blocking (NSS may talk to LDAP): call from `spawn_blocking`.
pub fn lookup(
    login: &str,
    realm: &str,
    default_realm: &str,
) -> Result<Option<ResolvedUser>, PidError> {
    validate_login(login)?;
    if realm != default_realm {
        return Ok(None);
    }
    match nix::unistd::User::from_name(login) {
        Ok(Some(u)) => Ok(Some(ResolvedUser {
            owner: Owner {
                realm: realm.to_owned(),
                login: login.to_owned(),
            },
            uid: u.uid.as_raw(),
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(PidError::Internal(format!(
            "user lookup for {login:?} failed: {e}"
        ))),
    }
}

/// The login name of a uid, for audit and admin checks.
pub fn name_of_uid(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_at_known_realm_is_split_and_unknown_realm_is_kept() {
        assert_eq!(
            split_realm("alice@default", None, "default"),
            ("alice", "default")
        );
        assert_eq!(
            split_realm("alice@example.org", None, "default"),
            ("alice@example.org", "default")
        );
        assert_eq!(
            split_realm("alice", Some("other"), "default"),
            ("alice", "other")
        );
    }

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

    #[test]
    fn root_resolves_and_a_missing_user_does_not() {
        let root = lookup("root", "default", "default").unwrap().unwrap();
        assert_eq!(root.uid, 0);
        assert!(lookup("no-such-user-pi-test", "default", "default")
            .unwrap()
            .is_none());
        assert!(lookup("root", "elsewhere", "default").unwrap().is_none());
    }
}
