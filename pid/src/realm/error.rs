//! Why a user store could not answer (`RealmError`): which store, and what happened there, the
//! library's error (NSS, I/O, PAM, LDAP) kept with it. Never a secret: the operator needs to
//! know which store failed and why, so it is shown to pictl and in the audit as well as logged.

use super::flatfile::FlatfileFailure;
use super::ldap::LdapFailure;
use super::pam_service::PamFailure;
use crate::error::PidError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RealmError {
    /// NSS could not say whether the host has the account.
    #[error("NSS lookup of {login:?} failed")]
    Nss {
        login: String,
        #[source]
        source: nix::errno::Errno,
    },
    /// A resolver that could not be set up when the daemon started.
    #[error(transparent)]
    NotLoaded(Arc<NotLoaded>),
    /// The resolver that found the user is gone from the configuration.
    #[error("resolver {resolver:?} of realm {realm:?} is no longer configured")]
    Gone { resolver: String, realm: String },
    #[error(transparent)]
    Flatfile(#[from] FlatfileFailure),
    #[error(transparent)]
    Pam(#[from] PamFailure),
    /// Users of a realm an upstream server serves are checked by the server, never here.
    #[error(
        "realm {realm:?} is served by upstream {server}: its users' passwords are checked there"
    )]
    Upstream { realm: String, server: String },
    /// The directory of an `ldap` resolver, named with its uri.
    #[error("resolver {resolver} ({uri})")]
    Ldap {
        resolver: String,
        uri: String,
        #[source]
        source: LdapFailure,
    },
}

/// A resolver that did not load at start: its realms fail closed until a reload.
#[derive(Debug, thiserror::Error)]
#[error(
    "resolver {resolver} did not load, so logins in realm {} fail until it is fixed and pid \
     reloaded (systemctl reload pid)",
    realms.join(", ")
)]
pub struct NotLoaded {
    pub resolver: String,
    pub realms: Vec<String>,
    #[source]
    pub source: PidError,
}

impl From<FlatfileFailure> for PidError {
    fn from(e: FlatfileFailure) -> Self {
        RealmError::Flatfile(e).into()
    }
}

impl From<PamFailure> for PidError {
    fn from(e: PamFailure) -> Self {
        RealmError::Pam(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::chain;

    #[test]
    fn a_user_store_failure_names_the_store_then_what_happened_there() {
        let e = PidError::from(RealmError::Ldap {
            resolver: "dir".into(),
            uri: "ldap://127.0.0.1".into(),
            source: LdapFailure::EmptyDn,
        });
        assert_eq!(
            chain(&e).to_string(),
            "user store unavailable: resolver dir (ldap://127.0.0.1): the server returned an \
             entry with an empty DN; check the server"
        );
        let e = PidError::from(RealmError::NotLoaded(Arc::new(NotLoaded {
            resolver: "people".into(),
            realms: vec!["ext".into(), "staff".into()],
            source: PidError::Internal("x".into()),
        })));
        assert_eq!(
            chain(&e).to_string(),
            "user store unavailable: resolver people did not load, so logins in realm ext, staff \
             fail until it is fixed and pid reloaded (systemctl reload pid): internal error: x"
        );
    }
}
