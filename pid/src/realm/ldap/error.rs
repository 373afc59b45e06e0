//! Why the directory could not answer (`LdapFailure`), phrased for the operator: what happened,
//! then what to check. ldap3's error and the server's result are kept; where the message shows
//! them before what to check, they are part of the sentence rather than its source, so that a
//! chain of causes does not repeat them after it.

use super::connection::{is_broken, rc_name, tls_error};
use ldap3::{LdapError, LdapResult};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LdapFailure {
    /// ldap3 failed: TLS, a timeout, I/O, an answer it did not expect. `timeout` is the one the
    /// step was bounded by.
    #[error("{}", Described { error, timeout: *timeout })]
    Request { error: LdapError, timeout: Duration },
    #[error(
        "the server refused STARTTLS: {} {:?}; enable TLS on the server or use ldaps://",
        rc_name(result.rc),
        result.text
    )]
    StartTls { result: LdapResult },
    #[error(
        "the service account {dn:?} was refused (invalidCredentials); check bind_dn and the \
         password in {}",
        file.display()
    )]
    ServiceRefused { dn: String, file: PathBuf },
    #[error(
        "the service account {dn:?} could not bind: {} {:?}; check bind_dn and the server's log",
        rc_name(result.rc),
        result.text
    )]
    ServiceBind { dn: String, result: LdapResult },
    #[error(
        "binding as {dn:?} failed: {} {:?}; check the server's log (a locked or expired account \
         answers this way on some servers)",
        rc_name(result.rc),
        result.text
    )]
    UserBind { dn: String, result: LdapResult },
    /// The search connection broke, and so did the one made afresh.
    #[error("the connection broke during the search: {error}; check the server's log")]
    Broken { error: LdapError },
    #[error("the search base {base:?} does not exist (noSuchObject); check `base`")]
    NoBase { base: String },
    #[error(
        "the search failed: {} {:?}; check base, filter and what the {} may read",
        rc_name(result.rc),
        result.text,
        if *anonymous { "anonymous user (set bind_dn?)" } else { "service account" }
    )]
    Search { result: LdapResult, anonymous: bool },
    /// Several entries have the login: pi never picks one.
    #[error(
        "login {login:?} matches several entries under {base:?}; make login_attribute unique or \
         narrow `filter` (pi never picks one of them)"
    )]
    Ambiguous { login: String, base: String },
    #[error(
        "entry {dn:?} matched but its {attribute} was not returned; let the service account read \
         that attribute"
    )]
    NoLogin { dn: String, attribute: String },
    /// An empty DN would make the user's bind anonymous.
    #[error("the server returned an entry with an empty DN; check the server")]
    EmptyDn,
    #[error(
        "entry {dn:?} has no {attribute} (uid_attribute), the stable id pi binds tokens to; set \
         uid_attribute to an attribute every user entry has (entryUUID for OpenLDAP, objectGUID \
         for Active Directory) and that the service account may read"
    )]
    NoId { dn: String, attribute: String },
}

/// An ldap3 error as "what happened; what to check".
struct Described<'a> {
    error: &'a LdapError,
    timeout: Duration,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tls) = tls_error(self.error) {
            return write!(
                f,
                "TLS failed: {tls}; check that ca_file holds the CA that signed the server's \
                 certificate and that the certificate names the uri's host"
            );
        }
        match self.error {
            LdapError::Timeout { .. } => write!(
                f,
                "no answer within {} s; check that the server is up and reachable, or raise \
                 timeout_secs",
                self.timeout.as_secs()
            ),
            LdapError::Io { source } => write!(
                f,
                "cannot talk to the server: {source}; check that it is running and listening at \
                 the uri"
            ),
            LdapError::LdapResult { result } => write!(
                f,
                "the server answered {} {:?}; check the server's log",
                rc_name(result.rc),
                result.text
            ),
            e if is_broken(e) => write!(f, "the connection broke: {e}; check the server's log"),
            e => write!(f, "{e}; check the server's log"),
        }
    }
}
