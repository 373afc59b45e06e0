//! `ldap` resolver: users are entries of an LDAP directory, found by a search under `base` and
//! authenticated by a simple bind as the entry's DN.
//!
//! Threats and invariants:
//! - Filter injection: the login is escaped per RFC 4515 before it enters the filter, so `*`,
//!   `(`, `)`, `\` and NUL in a login are literal characters, never filter syntax.
//! - Unauthenticated bind: a simple bind with an empty password succeeds on most servers without
//!   checking anything (RFC 4513 §5.1.2). An empty password never reaches a bind, neither the
//!   user's nor the service account's.
//! - Ambiguity: a login that matches several entries is an error, never "pick the first"; a login
//!   the directory matches only loosely (another case, other spaces) is not found, because tokens
//!   are keyed by the exact login and an alias spelling must not be a user without tokens.
//! - The shared search connection is bound as the service account only. Users are checked on a
//!   separate short-lived connection, so a user's bind can never leave the search connection
//!   running with that user's rights (or anonymous after a failed bind).
//! - Fail closed: an unreachable or misbehaving server is `PidError::UserStore`, never "unknown
//!   user" and never "password ok". Every network step is bounded by `timeout_secs`.
//! - The service account's password is read from a root-only file, kept zeroised, and never
//!   printed (`Debug` shows `***`).
//!
//! `config` is the resolver's table in pid.toml, `connection` the server and its TLS settings,
//! `search` finds a login's entry, `bind` binds as the service account or as a user.

mod bind;
mod config;
mod connection;
mod error;
mod search;

use crate::config::{ConfigError, Key};
use crate::error::PidError;
use crate::realm::RealmError;
use bind::ServiceBind;
pub use config::{
    DnProblem, FilterProblem, LdapConfig, UriProblem, Written, DEFAULT_FILTER,
    DEFAULT_LOGIN_ATTRIBUTE, DEFAULT_TIMEOUT_SECS, DEFAULT_UID_ATTRIBUTE, MAX_TIMEOUT_SECS,
};
use connection::{tls_config, Server};
pub use error::LdapFailure;
use protocol::Secret;
use search::{Search, UserEntry};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug)]
pub struct LdapResolver {
    name: String,
    server: Server,
    search: Search,
}

impl LdapResolver {
    /// Read the bind password and CA files and build the TLS settings. Does not connect: a
    /// directory that is down at load or reload must not stop the daemon or its other realms.
    pub fn new(name: &str, r: &LdapConfig) -> Result<LdapResolver, PidError> {
        let ldaps = r.validate(name)?;
        let (Some(uri), Some(base)) = (r.uri.clone(), r.base.clone()) else {
            return Err(ConfigError::invalid(
                Key::resolver(name, None),
                "an ldap resolver needs `uri` and `base`",
            )
            .into());
        };
        let service = match (&r.bind_dn, &r.bind_password_file) {
            (Some(dn), Some(file)) => Some(ServiceBind::read(name, dn, file)?),
            _ => None,
        };
        let starttls = r.starttls.unwrap_or(false);
        let tls = if ldaps || starttls {
            Some(tls_config(name, r.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(LdapResolver {
            name: name.to_owned(),
            server: Server {
                uri,
                starttls,
                tls,
                timeout: Duration::from_secs(r.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)),
            },
            search: Search {
                base,
                filter: r
                    .filter
                    .clone()
                    .unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
                login_attribute: r
                    .login_attribute
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOGIN_ATTRIBUTE.to_owned()),
                uid_attribute: r
                    .uid_attribute
                    .clone()
                    .unwrap_or_else(|| DEFAULT_UID_ATTRIBUTE.to_owned()),
                service,
                conn: Mutex::new(None),
            },
        })
    }

    /// The stable id (`uid_attribute`) of the one entry for `login`, if the directory has one.
    /// Blocking: call off the executor.
    pub fn find(&self, login: &str) -> Result<Option<String>, PidError> {
        Ok(self.block_on(self.search_user(login))??.map(|e| e.id))
    }

    /// Whether `password` binds as the login's entry. `Ok(false)` for a wrong or empty password
    /// and for an unknown login. Blocking: call off the executor.
    pub fn check_password(&self, login: &str, password: &Secret) -> Result<bool, PidError> {
        if password.is_empty() {
            return Ok(false);
        }
        self.block_on(async {
            let Some(entry) = self.search_user(login).await? else {
                return Ok(false);
            };
            bind::bind_as_user(&self.server, &entry.dn, password)
                .await
                .map_err(|e| self.error(e))
        })?
    }

    /// Run LDAP I/O to completion from blocking code. Inside the daemon this is a
    /// `spawn_blocking` thread of its runtime: the connection's driver task runs on that runtime,
    /// so the cached search connection outlives the call. Outside any runtime (tests, tools) a
    /// private runtime serves the call and nothing is cached past it.
    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, PidError> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => Ok(handle.block_on(fut)),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(PidError::LdapRuntime)?;
                let out = rt.block_on(fut);
                self.search.forget();
                Ok(out)
            }
        }
    }

    fn error(&self, source: LdapFailure) -> PidError {
        RealmError::Ldap {
            resolver: self.name.clone(),
            uri: self.server.uri.clone(),
            source,
        }
        .into()
    }

    /// The login's entry, if exactly one entry has exactly this login.
    async fn search_user(&self, login: &str) -> Result<Option<UserEntry>, PidError> {
        self.search
            .user(&self.server, &self.name, login)
            .await
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    /// A directory at `uri` under `dc=pi,dc=test`.
    fn at(uri: &str) -> LdapConfig {
        LdapConfig {
            uri: Some(uri.into()),
            base: Some("ou=people,dc=pi,dc=test".into()),
            ..LdapConfig::default()
        }
    }

    #[test]
    fn debug_never_shows_the_bind_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bind.pw");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"s3cret-bind-pw\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut config = at("ldap://127.0.0.1:3389");
        config.bind_dn = Some("cn=pi,dc=pi,dc=test".into());
        config.bind_password_file = Some(path);
        let r = LdapResolver::new("dir", &config).unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("s3cret-bind-pw"), "{shown}");
        assert!(shown.contains("cn=pi,dc=pi,dc=test"), "{shown}");
    }

    #[test]
    fn new_does_not_connect_and_an_unreachable_server_fails_closed() {
        // Port 1 on loopback: nothing listens there; new() must still succeed.
        let r = LdapResolver::new(
            "dir",
            &LdapConfig {
                timeout_secs: Some(2),
                ..at("ldap://127.0.0.1:1")
            },
        )
        .unwrap();
        let err = r.find("alice").unwrap_err();
        assert!(matches!(err, PidError::UserStore(_)), "{err}");
        let msg = crate::error::chain(&err).to_string();
        assert!(
            msg.starts_with("user store unavailable: resolver dir (ldap://127.0.0.1:1): ")
                && msg.contains("check"),
            "{msg}"
        );
        let err = r.check_password("alice", &Secret::new("pw")).unwrap_err();
        assert!(matches!(err, PidError::UserStore(_)), "{err}");
    }

    #[test]
    fn an_empty_password_is_refused_without_asking_the_server() {
        // Nothing listens on port 1: any server round trip would be an error, not Ok(false).
        let r = LdapResolver::new("dir", &at("ldap://127.0.0.1:1")).unwrap();
        assert!(!r.check_password("alice", &Secret::new("")).unwrap());
    }
}
