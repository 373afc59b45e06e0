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

use crate::config::ResolverConfig;
use crate::error::PidError;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use protocol::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::fmt;
use std::future::Future;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

/// Search filter ANDed with the login when the config sets none.
pub const DEFAULT_FILTER: &str = "(objectClass=posixAccount)";
pub const DEFAULT_LOGIN_ATTRIBUTE: &str = "uid";
pub const DEFAULT_UID_ATTRIBUTE: &str = "entryUUID";
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
pub const MAX_TIMEOUT_SECS: u64 = 60;

/// LDAP result codes (RFC 4511 §4.1.9) the resolver acts on.
const RC_SUCCESS: u32 = 0;
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
const RC_NO_SUCH_OBJECT: u32 = 32;
const RC_INVALID_CREDENTIALS: u32 = 49;

/// The service account that binds the search connection.
struct ServiceBind {
    dn: String,
    password: Zeroizing<String>,
    file: PathBuf,
}

impl fmt::Debug for ServiceBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBind")
            .field("dn", &self.dn)
            .field("password", &"***")
            .field("file", &self.file)
            .finish()
    }
}

pub struct LdapResolver {
    name: String,
    uri: String,
    base: String,
    filter: String,
    login_attribute: String,
    uid_attribute: String,
    bind: Option<ServiceBind>,
    starttls: bool,
    /// Present when the connection uses TLS (`ldaps://` or STARTTLS).
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    /// The service-bound search connection, reused across lookups. Only ever bound as the
    /// service account (or anonymous); dropped on any error so the next lookup starts afresh.
    search_conn: Mutex<Option<ldap3::Ldap>>,
}

impl fmt::Debug for LdapResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapResolver")
            .field("name", &self.name)
            .field("uri", &self.uri)
            .field("base", &self.base)
            .field("filter", &self.filter)
            .field("login_attribute", &self.login_attribute)
            .field("uid_attribute", &self.uid_attribute)
            .field("bind", &self.bind)
            .field("starttls", &self.starttls)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Check an `[resolvers.NAME]` table of type `ldap` (keys of other types are refused by the
/// caller).
pub fn validate_config(name: &str, r: &ResolverConfig) -> Result<(), String> {
    let key = |k: &str| format!("resolvers.{name}.{k}");
    let uri = r.uri.as_deref().ok_or_else(|| {
        format!(
            "resolvers.{name}: an ldap resolver needs `uri`, e.g. \
             uri = \"ldaps://ldap.example.org\""
        )
    })?;
    let tls_scheme = validate_uri(uri).map_err(|e| format!("{} = {uri:?}: {e}", key("uri")))?;
    match r.base.as_deref() {
        None => {
            return Err(format!(
                "resolvers.{name}: an ldap resolver needs `base`, the DN users are searched \
                 under, e.g. base = \"ou=people,dc=example,dc=org\""
            ))
        }
        Some(base) => validate_dn(base).map_err(|e| format!("{} = {base:?}: {e}", key("base")))?,
    }
    if r.starttls == Some(true) && tls_scheme {
        return Err(format!(
            "{} = true does not go with an ldaps:// uri, which is TLS already: remove starttls \
             or write the uri as ldap://",
            key("starttls")
        ));
    }
    match (&r.bind_dn, &r.bind_password_file) {
        (Some(dn), Some(file)) => {
            validate_dn(dn).map_err(|e| format!("{} = {dn:?}: {e}", key("bind_dn")))?;
            if !file.is_absolute() {
                return Err(format!(
                    "{} must be an absolute path, e.g. \"/etc/pi/ldap-bind.password\"",
                    key("bind_password_file")
                ));
            }
        }
        (None, None) => {}
        _ => {
            return Err(format!(
                "resolvers.{name}: bind_dn and bind_password_file come together: set both (a \
                 service account searches) or neither (anonymous search)"
            ))
        }
    }
    if let Some(ca) = &r.ca_file {
        if !ca.is_absolute() {
            return Err(format!(
                "{} must be an absolute path, e.g. \"/etc/pi/ldap-ca.pem\"",
                key("ca_file")
            ));
        }
        if !tls_scheme && r.starttls != Some(true) {
            return Err(format!(
                "{} has no effect without TLS: use an ldaps:// uri or set starttls = true",
                key("ca_file")
            ));
        }
    }
    if let Some(t) = r.timeout_secs {
        if !(1..=MAX_TIMEOUT_SECS).contains(&t) {
            return Err(format!(
                "{} = {t}: write a number of seconds from 1 to {MAX_TIMEOUT_SECS}",
                key("timeout_secs")
            ));
        }
    }
    for (k, value, example) in [
        (
            "login_attribute",
            &r.login_attribute,
            DEFAULT_LOGIN_ATTRIBUTE,
        ),
        ("uid_attribute", &r.uid_attribute, DEFAULT_UID_ATTRIBUTE),
    ] {
        if let Some(v) = value {
            if !is_attribute_name(v) {
                return Err(format!(
                    "{} = {v:?} is not an LDAP attribute name: write letters, digits and '-', \
                     starting with a letter, e.g. {example:?}",
                    key(k)
                ));
            }
        }
    }
    if let Some(f) = &r.filter {
        validate_filter(f).map_err(|e| {
            format!(
                "{} = {f:?}: {e}; write one parenthesised LDAP filter, e.g. \
                 \"(objectClass=posixAccount)\" or \
                 \"(&(objectClass=person)(!(pwdAccountLockedTime=*)))\"",
                key("filter")
            )
        })?;
    }
    Ok(())
}

/// `ldap://host[:port][/]` or `ldaps://…`; true for ldaps.
fn validate_uri(uri: &str) -> Result<bool, String> {
    let (tls, rest) = if let Some(rest) = uri.strip_prefix("ldaps://") {
        (true, rest)
    } else if let Some(rest) = uri.strip_prefix("ldap://") {
        (false, rest)
    } else {
        return Err("write ldap://HOST[:PORT] or ldaps://HOST[:PORT]".into());
    };
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains('/') || hostport.contains('?') {
        return Err(
            "write only ldap[s]://HOST[:PORT]; the search base goes in `base` and the filter in \
             `filter`"
                .into(),
        );
    }
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return Err("an IPv6 address needs its closing ']'".into()),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err("name the server's host, e.g. ldaps://ldap.example.org".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err("the host name contains a character no host name has".into());
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("port {p:?} is not a port number from 1 to 65535"));
        }
    }
    Ok(tls)
}

/// A DN as an operator writes it: not empty, `attr=value` components, no control characters.
fn validate_dn(dn: &str) -> Result<(), String> {
    if dn.trim().is_empty() {
        return Err("write a DN such as \"ou=people,dc=example,dc=org\"".into());
    }
    if !dn.contains('=') || dn.chars().any(char::is_control) {
        return Err(
            "this is not a DN: write attr=value components, e.g. \"dc=example,dc=org\"".into(),
        );
    }
    Ok(())
}

/// RFC 4512 `descr`: a letter, then letters, digits and '-'.
fn is_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        && s.len() <= 64
}

/// One parenthesised filter that parses once a login is ANDed to it.
fn validate_filter(f: &str) -> Result<(), String> {
    if !f.starts_with('(') || !f.ends_with(')') {
        return Err("it is not parenthesised".into());
    }
    // The parenthesis opened first must close last: "(a=1)(b=2)" is two filters. A literal
    // parenthesis in a value is escaped (\28, \29), so every parenthesis here is structure.
    let mut depth = 0usize;
    let mut first_closed_at = None;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "a ')' closes nothing".to_string())?;
                if depth == 0 && first_closed_at.is_none() {
                    first_closed_at = Some(i);
                }
            }
            c if c.is_control() => return Err("it contains a control character".into()),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a '(' is never closed".into());
    }
    if first_closed_at != Some(f.len() - 1) {
        return Err("it is several filters side by side, not one".into());
    }
    ldap3::parse_filter(user_filter(f, DEFAULT_LOGIN_ATTRIBUTE, "x"))
        .map(|_| ())
        .map_err(|()| "it does not parse as an LDAP filter (RFC 4515)".into())
}

/// The search filter for `login`: the configured filter ANDed with an equality match on the login
/// attribute. The login is escaped (RFC 4515 §3), so it is always one literal value.
pub(crate) fn user_filter(filter: &str, login_attribute: &str, login: &str) -> String {
    format!(
        "(&{filter}({login_attribute}={}))",
        ldap3::ldap_escape(login)
    )
}

/// How an LDAP step failed.
enum Failure {
    /// The cached connection is gone (EOF, reset, driver ended): one reconnect is worth it.
    Broken(LdapError),
    /// Anything else, already phrased for the operator: "what happened; what to check".
    Other(String),
}

/// The one entry a login names.
struct UserEntry {
    dn: String,
    /// The `uid_attribute` value.
    id: String,
}

impl LdapResolver {
    /// Read the bind password and CA files and build the TLS settings. Does not connect: a
    /// directory that is down at load or reload must not stop the daemon or its other realms.
    pub fn new(name: &str, r: &ResolverConfig) -> Result<LdapResolver, PidError> {
        validate_config(name, r).map_err(PidError::Config)?;
        let (Some(uri), Some(base)) = (r.uri.clone(), r.base.clone()) else {
            return Err(PidError::Config(format!(
                "resolvers.{name}: an ldap resolver needs `uri` and `base`"
            )));
        };
        let bind = match (&r.bind_dn, &r.bind_password_file) {
            (Some(dn), Some(file)) => Some(ServiceBind {
                dn: dn.clone(),
                password: read_bind_password(name, file)?,
                file: file.clone(),
            }),
            _ => None,
        };
        let starttls = r.starttls.unwrap_or(false);
        let tls = if uri.starts_with("ldaps://") || starttls {
            Some(tls_config(name, r.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(LdapResolver {
            name: name.to_owned(),
            uri,
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
            bind,
            starttls,
            tls,
            timeout: Duration::from_secs(r.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)),
            search_conn: Mutex::new(None),
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
            self.bind_as_user(&entry.dn, password).await
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
                    .map_err(|e| {
                        PidError::Internal(format!("cannot start a runtime for LDAP: {e}"))
                    })?;
                let out = rt.block_on(fut);
                self.forget_search_conn();
                Ok(out)
            }
        }
    }

    fn error(&self, what: impl fmt::Display) -> PidError {
        PidError::UserStore(format!("resolver {} ({}): {what}", self.name, self.uri))
    }

    /// The DN of the login's entry, if exactly one entry has exactly this login.
    async fn search_user(&self, login: &str) -> Result<Option<UserEntry>, PidError> {
        let filter = user_filter(&self.filter, &self.login_attribute, login);
        let cached = self
            .search_conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let outcome = match cached {
            Some(mut conn) => match self.search_on(&mut conn, &filter, login).await {
                Err(Failure::Broken(e)) => {
                    // The server restarted or a middlebox cut an idle connection: reconnect once.
                    tracing::debug!(
                        resolver = %self.name,
                        error = %e,
                        "LDAP search connection broke; reconnecting"
                    );
                    self.forget_search_conn();
                    self.search_fresh(&filter, login).await
                }
                other => other,
            },
            None => self.search_fresh(&filter, login).await,
        };
        outcome.map_err(|f| {
            self.forget_search_conn();
            match f {
                Failure::Broken(e) => self.error(format!(
                    "the connection broke during the search: {e}; check the server's log"
                )),
                Failure::Other(msg) => self.error(msg),
            }
        })
    }

    async fn search_fresh(&self, filter: &str, login: &str) -> Result<Option<UserEntry>, Failure> {
        let mut conn = self.connect().await.map_err(Failure::Other)?;
        if let Some(bind) = &self.bind {
            let res = conn
                .with_timeout(self.timeout)
                .simple_bind(&bind.dn, &bind.password)
                .await
                .map_err(|e| Failure::Other(self.describe(&e)))?;
            match res.rc {
                RC_SUCCESS => {}
                RC_INVALID_CREDENTIALS => {
                    return Err(Failure::Other(format!(
                        "the service account {:?} was refused (invalidCredentials); check bind_dn \
                         and the password in {}",
                        bind.dn,
                        bind.file.display()
                    )))
                }
                rc => {
                    return Err(Failure::Other(format!(
                        "the service account {:?} could not bind: {} {:?}; check bind_dn and \
                         the server's log",
                        bind.dn,
                        rc_name(rc),
                        res.text
                    )))
                }
            }
        }
        let found = self.search_on(&mut conn, filter, login).await?;
        let mut slot = self.search_conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(conn);
        }
        Ok(found)
    }

    async fn search_on(
        &self,
        conn: &mut ldap3::Ldap,
        filter: &str,
        login: &str,
    ) -> Result<Option<UserEntry>, Failure> {
        let time_limit = i32::try_from(self.timeout.as_secs()).unwrap_or(i32::MAX);
        let result = conn
            .with_timeout(self.timeout)
            .with_search_options(SearchOptions::new().sizelimit(2).timelimit(time_limit))
            .search(
                &self.base,
                Scope::Subtree,
                filter,
                vec![self.login_attribute.as_str(), self.uid_attribute.as_str()],
            )
            .await
            .map_err(|e| {
                if is_broken(&e) {
                    Failure::Broken(e)
                } else {
                    Failure::Other(self.describe(&e))
                }
            })?;
        let ldap3::SearchResult(entries, res) = result;
        match res.rc {
            RC_SUCCESS | RC_SIZE_LIMIT_EXCEEDED => {}
            RC_NO_SUCH_OBJECT => {
                return Err(Failure::Other(format!(
                    "the search base {:?} does not exist (noSuchObject); check `base`",
                    self.base
                )))
            }
            rc => {
                return Err(Failure::Other(format!(
                    "the search failed: {} {:?}; check base, filter and what the {} may read",
                    rc_name(rc),
                    res.text,
                    if self.bind.is_some() {
                        "service account"
                    } else {
                        "anonymous user (set bind_dn?)"
                    }
                )))
            }
        }
        if entries.len() > 1 {
            return Err(Failure::Other(format!(
                "login {login:?} matches several entries under {:?}; make login_attribute \
                 unique or narrow `filter` (pi never picks one of them)",
                self.base
            )));
        }
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(entry);
        let values = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.login_attribute))
            .map(|(_, v)| v);
        let Some(values) = values else {
            return Err(Failure::Other(format!(
                "entry {:?} matched but its {} was not returned; let the service account read \
                 that attribute",
                entry.dn, self.login_attribute
            )));
        };
        if entry.dn.is_empty() {
            // An empty DN would make the user's bind anonymous.
            return Err(Failure::Other(
                "the server returned an entry with an empty DN; check the server".into(),
            ));
        }
        if !values.iter().any(|v| v == login) {
            tracing::debug!(
                resolver = %self.name,
                dn = %entry.dn,
                "the directory matched the login only loosely (case or spacing): not found"
            );
            return Ok(None);
        }
        // The stable id tokens are bound to: text, or hex for a binary attribute (objectGUID).
        let id = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.uid_attribute))
            .and_then(|(_, v)| v.first().cloned())
            .or_else(|| {
                entry
                    .bin_attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&self.uid_attribute))
                    .and_then(|(_, v)| v.first())
                    .map(hex::encode)
            })
            .filter(|v| !v.is_empty());
        let Some(id) = id else {
            return Err(Failure::Other(format!(
                "entry {:?} has no {} (uid_attribute), the stable id pi binds tokens to; set \
                 uid_attribute to an attribute every user entry has (entryUUID for OpenLDAP, \
                 objectGUID for Active Directory) and that the service account may read",
                entry.dn, self.uid_attribute
            )));
        };
        Ok(Some(UserEntry { dn: entry.dn, id }))
    }

    /// Bind as `dn` on a connection of its own, then drop that connection.
    async fn bind_as_user(&self, dn: &str, password: &Secret) -> Result<bool, PidError> {
        if password.is_empty() {
            return Ok(false);
        }
        let mut conn = self.connect().await.map_err(|e| self.error(e))?;
        let res = conn
            .with_timeout(self.timeout)
            .simple_bind(dn, password.expose())
            .await
            .map_err(|e| self.error(self.describe(&e)));
        let _ = conn.with_timeout(self.timeout).unbind().await;
        let res = res?;
        match res.rc {
            RC_SUCCESS => Ok(true),
            RC_INVALID_CREDENTIALS => Ok(false),
            rc => Err(self.error(format!(
                "binding as {dn:?} failed: {} {:?}; check the server's log (a locked or expired \
                 account answers this way on some servers)",
                rc_name(rc),
                res.text
            ))),
        }
    }

    /// A new connection (TCP, then TLS or STARTTLS as configured), its driver running on the
    /// current runtime. Bounded by `timeout` as a whole.
    async fn connect(&self) -> Result<ldap3::Ldap, String> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.uri)
            .await
            .map_err(|e| match e {
                LdapError::LdapResult { result } if self.starttls => format!(
                    "the server refused STARTTLS: {} {:?}; enable TLS on the server or use \
                     ldaps://",
                    rc_name(result.rc),
                    result.text
                ),
                e => self.describe(&e),
            })?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    fn forget_search_conn(&self) {
        self.search_conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// An ldap3 error as "what happened; what to check".
    fn describe(&self, e: &LdapError) -> String {
        if let Some(tls) = tls_error(e) {
            return format!(
                "TLS failed: {tls}; check that ca_file holds the CA that signed the server's \
                 certificate and that the certificate names the uri's host"
            );
        }
        match e {
            LdapError::Timeout { .. } => format!(
                "no answer within {} s; check that the server is up and reachable, or raise \
                 timeout_secs",
                self.timeout.as_secs()
            ),
            LdapError::Io { source } => format!(
                "cannot talk to the server: {source}; check that it is running and listening at \
                 the uri"
            ),
            LdapError::LdapResult { result } => format!(
                "the server answered {} {:?}; check the server's log",
                rc_name(result.rc),
                result.text
            ),
            e if is_broken(e) => {
                format!("the connection broke: {e}; check the server's log")
            }
            e => format!("{e}; check the server's log"),
        }
    }
}

/// The rustls error inside an ldap3 error, if the failure was TLS.
fn tls_error(e: &LdapError) -> Option<String> {
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
fn is_broken(e: &LdapError) -> bool {
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
fn rc_name(rc: u32) -> String {
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

/// The service account's password: a file only the daemon's user can read, like the key file.
fn read_bind_password(name: &str, path: &Path) -> Result<Zeroizing<String>, PidError> {
    let shown = path.display();
    let key = format!("resolvers.{name}.bind_password_file");
    let meta = std::fs::metadata(path)
        .map_err(|e| PidError::Config(format!("{key}: cannot read {shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PidError::Config(format!(
            "{key}: {shown} has mode {mode:o}: it must not be readable by group or others; run \
             `chmod 0600 {shown}` (and consider changing the service account's password)"
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(PidError::Config(format!(
            "{key}: {shown} is owned by uid {}, not by the daemon's uid {euid}; run `chown {euid} \
             {shown}`",
            meta.uid()
        )));
    }
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| PidError::Config(format!("{key}: cannot read {shown}: {e}")))?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        PidError::Config(format!(
            "{key}: {shown} is not UTF-8 text; write the password as text on one line"
        ))
    })?;
    let line = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if line.is_empty() {
        // An empty password would make the service bind an unauthenticated (anonymous) bind.
        return Err(PidError::Config(format!(
            "{key}: {shown} is empty; write the service account's password in it, or remove \
             bind_dn and bind_password_file for anonymous search"
        )));
    }
    if line.contains('\n') {
        return Err(PidError::Config(format!(
            "{key}: {shown} has more than one line; write only the password"
        )));
    }
    Ok(Zeroizing::new(line.to_owned()))
}

/// TLS client settings: the CA file's certificates when given, else the system trust store.
fn tls_config(name: &str, ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, PidError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let key = format!("resolvers.{name}.ca_file");
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    PidError::Config(format!(
                        "{key}: cannot read PEM certificates from {shown}: {e}; it must hold the \
                         CA certificate(s) in PEM (-----BEGIN CERTIFICATE-----)"
                    ))
                })?;
            if certs.is_empty() {
                return Err(PidError::Config(format!(
                    "{key}: {shown} holds no PEM certificate; it must hold the CA certificate(s) \
                     in PEM (-----BEGIN CERTIFICATE-----)"
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    PidError::Config(format!(
                        "{key}: a certificate in {shown} does not parse: {e}; replace it with \
                         the CA certificate in PEM"
                    ))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(PidError::Config(format!(
                    "resolvers.{name}: the system trust store has no CA certificates \
                     (apt-get install ca-certificates); or set ca_file to the CA that signed the \
                     server's certificate"
                )));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PidError::Internal(format!("TLS settings for resolver {name}: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ResolverType;
    use std::io::Write;

    fn ldap_config(extra: &[(&str, &str)]) -> ResolverConfig {
        let mut text = String::from("type = \"ldap\"\n");
        let has = |k: &str| extra.iter().any(|(key, _)| *key == k);
        if !has("uri") {
            text.push_str("uri = \"ldap://127.0.0.1:3389\"\n");
        }
        if !has("base") {
            text.push_str("base = \"ou=people,dc=pi,dc=test\"\n");
        }
        for (k, v) in extra {
            if !v.is_empty() {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        let r: ResolverConfig = toml::from_str(&text).unwrap();
        assert_eq!(r.kind, ResolverType::Ldap);
        r
    }

    fn refused(extra: &[(&str, &str)]) -> String {
        validate_config("dir", &ldap_config(extra)).unwrap_err()
    }

    #[test]
    fn a_minimal_ldap_resolver_validates() {
        validate_config("dir", &ldap_config(&[])).unwrap();
        validate_config(
            "dir",
            &ldap_config(&[
                ("uri", "\"ldaps://ldap.example.org:636/\""),
                ("bind_dn", "\"cn=pi,dc=pi,dc=test\""),
                ("bind_password_file", "\"/etc/pi/ldap.pw\""),
                ("ca_file", "\"/etc/pi/ca.pem\""),
                ("filter", "\"(&(objectClass=person)(!(x=1)))\""),
                ("login_attribute", "\"sAMAccountName\""),
                ("uid_attribute", "\"object-guid2\""),
                ("timeout_secs", "60"),
            ]),
        )
        .unwrap();
        validate_config(
            "dir",
            &ldap_config(&[("uri", "\"ldap://[::1]:389\""), ("starttls", "true")]),
        )
        .unwrap();
    }

    #[test]
    fn uri_must_be_ldap_or_ldaps_with_a_host() {
        let cfg: ResolverConfig =
            toml::from_str("type = \"ldap\"\nbase = \"dc=pi,dc=test\"\n").unwrap();
        let msg = validate_config("dir", &cfg).unwrap_err();
        assert!(
            msg.contains("resolvers.dir") && msg.contains("uri"),
            "{msg}"
        );
        for bad in [
            "\"http://ldap.example.org\"",
            "\"ldapi:///run/slapd.sock\"",
            "\"ldap://\"",
            "\"ldap://host:0\"",
            "\"ldap://host:99999\"",
            "\"ldap://host/dc=x??sub\"",
            "\"LDAP://host\"",
        ] {
            let msg = refused(&[("uri", bad)]);
            assert!(msg.contains("resolvers.dir.uri"), "{bad}: {msg}");
        }
    }

    #[test]
    fn base_is_required_and_must_be_a_dn() {
        let cfg: ResolverConfig = toml::from_str("type = \"ldap\"\nuri = \"ldap://h\"\n").unwrap();
        let msg = validate_config("dir", &cfg).unwrap_err();
        assert!(msg.contains("base"), "{msg}");
        let msg = refused(&[("base", "\"people\"")]);
        assert!(msg.contains("resolvers.dir.base"), "{msg}");
    }

    #[test]
    fn starttls_over_ldaps_is_refused() {
        let msg = refused(&[("uri", "\"ldaps://h\""), ("starttls", "true")]);
        assert!(msg.contains("resolvers.dir.starttls"), "{msg}");
        validate_config(
            "dir",
            &ldap_config(&[("uri", "\"ldaps://h\""), ("starttls", "false")]),
        )
        .unwrap();
    }

    #[test]
    fn bind_dn_and_password_file_come_together_and_paths_are_absolute() {
        let msg = refused(&[("bind_dn", "\"cn=pi,dc=pi,dc=test\"")]);
        assert!(msg.contains("bind_dn and bind_password_file"), "{msg}");
        let msg = refused(&[("bind_password_file", "\"/etc/pi/pw\"")]);
        assert!(msg.contains("bind_dn and bind_password_file"), "{msg}");
        let msg = refused(&[
            ("bind_dn", "\"cn=pi,dc=pi,dc=test\""),
            ("bind_password_file", "\"pw\""),
        ]);
        assert!(msg.contains("resolvers.dir.bind_password_file"), "{msg}");
        let msg = refused(&[("uri", "\"ldaps://h\""), ("ca_file", "\"ca.pem\"")]);
        assert!(msg.contains("resolvers.dir.ca_file"), "{msg}");
    }

    #[test]
    fn ca_file_without_tls_is_refused() {
        let msg = refused(&[("ca_file", "\"/etc/pi/ca.pem\"")]);
        assert!(
            msg.contains("resolvers.dir.ca_file") && msg.contains("starttls"),
            "{msg}"
        );
    }

    #[test]
    fn timeout_is_one_to_sixty_seconds() {
        for bad in ["0", "61"] {
            let msg = refused(&[("timeout_secs", bad)]);
            assert!(msg.contains("resolvers.dir.timeout_secs"), "{msg}");
        }
        validate_config("dir", &ldap_config(&[("timeout_secs", "1")])).unwrap();
    }

    #[test]
    fn attribute_names_are_ldap_descriptors() {
        for bad in ["\"\"", "\"uid)(x\"", "\"1uid\"", "\"u_id\"", "\"uid=*\""] {
            let msg = refused(&[("login_attribute", bad)]);
            assert!(
                msg.contains("resolvers.dir.login_attribute"),
                "{bad}: {msg}"
            );
            let msg = refused(&[("uid_attribute", bad)]);
            assert!(msg.contains("resolvers.dir.uid_attribute"), "{bad}: {msg}");
        }
    }

    #[test]
    fn filter_must_be_one_parenthesised_filter() {
        for bad in [
            "\"objectClass=person\"",
            "\"(objectClass=person)(uid=*)\"",
            "\"(objectClass=person))\"",
            "\"((objectClass=person)\"",
            "\"(&(objectClass=person)\"",
            "\"()\"",
        ] {
            let msg = refused(&[("filter", bad)]);
            assert!(
                msg.contains("resolvers.dir.filter") && msg.contains("parenthesised"),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn the_login_is_escaped_into_one_literal_value() {
        assert_eq!(
            user_filter(DEFAULT_FILTER, "uid", "alice"),
            "(&(objectClass=posixAccount)(uid=alice))"
        );
        assert_eq!(user_filter("(o=x)", "uid", "*"), "(&(o=x)(uid=\\2a))");
        assert_eq!(
            user_filter("(o=x)", "uid", "a*)(uid=*"),
            "(&(o=x)(uid=a\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(user_filter("(o=x)", "cn", "a\\b"), "(&(o=x)(cn=a\\5cb))");
        assert_eq!(user_filter("(o=x)", "uid", "a\0b"), "(&(o=x)(uid=a\\00b))");
        // Whatever the login, the filter parses as the configured filter AND one equality match.
        for login in [
            "*",
            "a*)(uid=*",
            ")(|(uid=*",
            "\\",
            "\0",
            "x)(objectClass=*",
        ] {
            let f = user_filter(DEFAULT_FILTER, "uid", login);
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
            assert_eq!(f.matches('(').count(), 3, "{f}");
            assert_eq!(f.matches(')').count(), 3, "{f}");
        }
    }

    fn password_file(mode: u32, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bind.pw");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(content.as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    fn with_bind(path: &Path) -> ResolverConfig {
        let mut r = ldap_config(&[]);
        r.bind_dn = Some("cn=pi,dc=pi,dc=test".into());
        r.bind_password_file = Some(path.to_path_buf());
        r
    }

    #[test]
    fn a_group_or_world_readable_bind_password_file_is_refused_with_the_chmod_that_fixes_it() {
        let (_d, path) = password_file(0o644, "s3cret\n");
        let msg = LdapResolver::new("dir", &with_bind(&path))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("chmod 0600 {}", path.display())),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    #[test]
    fn an_empty_bind_password_file_is_refused() {
        let (_d, path) = password_file(0o600, "\n");
        let msg = LdapResolver::new("dir", &with_bind(&path))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is empty"), "{msg}");
    }

    #[test]
    fn debug_never_shows_the_bind_password() {
        let (_d, path) = password_file(0o600, "s3cret-bind-pw\n");
        let r = LdapResolver::new("dir", &with_bind(&path)).unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("s3cret-bind-pw"), "{shown}");
        assert!(shown.contains("cn=pi,dc=pi,dc=test"), "{shown}");
        assert_eq!(
            r.bind.as_ref().map(|b| b.password.as_str()),
            Some("s3cret-bind-pw"),
            "one trailing newline is not part of the password"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let (_d, path) = password_file(0o644, "not a certificate\n");
        let mut r = ldap_config(&[("uri", "\"ldaps://h\"")]);
        r.ca_file = Some(path.clone());
        let msg = LdapResolver::new("dir", &r).unwrap_err().to_string();
        assert!(
            msg.contains("resolvers.dir.ca_file") && msg.contains("PEM"),
            "{msg}"
        );
    }

    #[test]
    fn new_does_not_connect_and_an_unreachable_server_fails_closed() {
        // Port 1 on loopback: nothing listens there; new() must still succeed.
        let r = LdapResolver::new(
            "dir",
            &ldap_config(&[("uri", "\"ldap://127.0.0.1:1\""), ("timeout_secs", "2")]),
        )
        .unwrap();
        let err = r.find("alice").unwrap_err();
        assert!(matches!(err, PidError::UserStore(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("resolver dir (ldap://127.0.0.1:1)") && msg.contains("check"),
            "{msg}"
        );
        let err = r.check_password("alice", &Secret::new("pw")).unwrap_err();
        assert!(matches!(err, PidError::UserStore(_)), "{err}");
    }

    #[test]
    fn an_empty_password_is_refused_without_asking_the_server() {
        // Nothing listens on port 1: any server round trip would be an error, not Ok(false).
        let r =
            LdapResolver::new("dir", &ldap_config(&[("uri", "\"ldap://127.0.0.1:1\"")])).unwrap();
        assert!(!r.check_password("alice", &Secret::new("")).unwrap());
    }
}
