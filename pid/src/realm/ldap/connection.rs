//! The LDAP server as pid talks to it: a connection (TCP, then TLS or STARTTLS) bounded by the
//! timeout, and the TLS settings.

use super::error::LdapFailure;
use crate::config::Key;
use crate::error::PidError;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// LDAP result codes (RFC 4511 §4.1.9) the resolver acts on.
pub(super) const RC_SUCCESS: u32 = 0;
pub(super) const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
pub(super) const RC_NO_SUCH_OBJECT: u32 = 32;
pub(super) const RC_INVALID_CREDENTIALS: u32 = 49;

/// Where and how to connect.
pub(super) struct Server {
    pub(super) uri: String,
    pub(super) starttls: bool,
    /// Present when the connection uses TLS (`ldaps://` or STARTTLS).
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// Bounds every network step.
    pub(super) timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("uri", &self.uri)
            .field("starttls", &self.starttls)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Server {
    /// A new connection (TCP, then TLS or STARTTLS as configured), its driver running on the
    /// current runtime. Bounded by `timeout` as a whole.
    pub(super) async fn connect(&self) -> Result<ldap3::Ldap, LdapFailure> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.uri)
            .await
            .map_err(|e| match e {
                LdapError::LdapResult { result } if self.starttls => {
                    LdapFailure::StartTls { result }
                }
                e => self.failure(e),
            })?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// ldap3's `error` on a step bounded by this server's timeout.
    pub(super) fn failure(&self, error: LdapError) -> LdapFailure {
        LdapFailure::Request {
            error,
            timeout: self.timeout,
        }
    }
}

/// The rustls error inside an ldap3 error, if the failure was TLS.
pub(super) fn tls_error(e: &LdapError) -> Option<String> {
    match e {
        LdapError::Rustls { source } => Some(source.to_string()),
        LdapError::DNSName { source } => Some(format!("the uri's host is no TLS name: {source}")),
        LdapError::Io { source } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(|t| t.to_string()),
        _ => None,
    }
}

/// The connection itself is gone: its driver ended or the socket failed.
pub(super) fn is_broken(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::EndOfStream
    ) && tls_error(e).is_none()
}

/// RFC 4511 names of the result codes an operator is likely to see.
pub(super) fn rc_name(rc: u32) -> String {
    let name = match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => return format!("result code {rc}"),
    };
    format!("{name} ({rc})")
}

/// TLS client settings: the CA file's certificates when given, else the system trust store.
pub(super) fn tls_config(
    name: &str,
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, PidError> {
    Ok(crate::tls::client_config(
        ca_file,
        Key::resolver(name, Some("ca_file")),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let msg = crate::error::chain(&tls_config("dir", Some(&path)).unwrap_err()).to_string();
        assert!(
            msg.contains("resolvers.dir.ca_file") && msg.contains("PEM"),
            "{msg}"
        );
    }
}
