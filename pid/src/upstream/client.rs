//! HTTP(S) to one privacyIDEA server: its URLs tried in order within one deadline, kept-alive
//! connections, certificates always verified, every answer bounded.
//!
//! Threats: a server (or a machine in between) that never answers, answers slowly, sends a
//! huge or malformed answer, or redirects elsewhere. Each exchange ends within `timeout_secs`
//! whatever the server does (the deadline covers every URL tried); an answer is read up to
//! [`MAX_ANSWER_BYTES`] and must be JSON; redirects are not followed (a PIN and OTP go only to
//! the URLs the operator wrote); proxies from the environment are not used. The service
//! account's password and its JWT are never logged.

use super::answer::{self, BadAnswer};
use super::config::UpstreamConfig;
use crate::config::ConfigError;
use protocol::text::sanitize;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The largest answer read from a server. privacyIDEA's largest (100 offline values of a
/// token) is about 15 KiB.
pub const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// Idle connections kept open to each server, so that logins do not pay a TLS handshake.
const IDLE_CONNECTIONS: usize = 8;
/// How long a JWT without an expiry is reused, in seconds.
const JWT_DEFAULT_LIFETIME: i64 = 60;
/// A JWT is renewed this many seconds before it expires.
const JWT_MARGIN: i64 = 10;

/// Why an exchange with the server failed. Every variant says which server.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {name}: cannot reach {tried}")]
    Unreachable {
        name: String,
        /// The URLs tried, in order.
        tried: String,
        #[source]
        source: Box<ureq::Transport>,
    },
    #[error("upstream {name}: reading the answer of {url} failed")]
    Read {
        name: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {name}: no answer within {} s (timeout_secs)", .timeout.as_secs())]
    Timeout { name: String, timeout: Duration },
    #[error("upstream {name}: {url} answered HTTP {status}{}", excerpt(.body))]
    Status {
        name: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("upstream {name}: {url} answered {content_type:?}, not JSON")]
    NotJson {
        name: String,
        url: String,
        content_type: String,
    },
    #[error("upstream {name}: {url} answered more than {MAX_ANSWER_BYTES} bytes")]
    TooLarge { name: String, url: String },
    #[error("upstream {name}: {url}: the answer is refused")]
    Answer {
        name: String,
        url: String,
        #[source]
        source: BadAnswer,
    },
    #[error("upstream {name}: no service account (service_user) to fetch {what} with")]
    NoServiceAccount { name: String, what: &'static str },
    #[error(
        "upstream {name}: the service account {user:?} was refused ({message}); check \
         service_user and the password in service_password_file"
    )]
    ServiceAccount {
        name: String,
        user: String,
        message: String,
    },
    #[error("upstream {name}: the server refused the request ({message})")]
    Refused { name: String, message: String },
}

fn excerpt(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl UpstreamError {
    /// The server could not be asked at all (as opposed to an answer that was wrong): the
    /// caller may fall back to what it cached.
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            UpstreamError::Unreachable { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Read { .. }
        )
    }
}

/// What the status of the server is, for `pictl status`.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// The last exchange got an answer.
    pub reachable: Option<bool>,
    /// The server's `version` field ("privacyIDEA 3.14").
    pub version: Option<String>,
    /// The service account's last login worked.
    pub service_account_ok: Option<bool>,
    pub last_error: Option<String>,
}

/// An answer read in full: where it came from, its status, its body.
struct Reply {
    url: String,
    status: u16,
    body: Vec<u8>,
}

struct ServiceAccount {
    user: String,
    password: Zeroizing<String>,
}

struct Jwt {
    token: Zeroizing<String>,
    /// Unix seconds.
    until: i64,
}

/// Parses an answer that may be the server's refusal.
type Parse<T> = fn(&[u8]) -> Result<Result<T, answer::Refusal>, BadAnswer>;

/// One `[upstream.NAME]` server.
pub struct Client {
    name: String,
    urls: Vec<String>,
    agent: ureq::Agent,
    timeout: Duration,
    tls: bool,
    realm: Option<String>,
    service: Option<ServiceAccount>,
    jwt: Mutex<Option<Jwt>>,
    health: Mutex<Health>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// The fields of `/validate/check` beyond user and pass.
pub struct CheckFields<'a> {
    pub transaction_id: Option<&'a str>,
    /// The PAM service and remote host, which privacyIDEA's audit and policies can use.
    pub service: &'a str,
    pub rhost: Option<&'a str>,
}

impl Client {
    /// The client of upstream `name`; reads its CA file and service password file.
    pub fn new(name: &str, cfg: &UpstreamConfig) -> Result<Client, ConfigError> {
        let tls_config = crate::tls::client_config(
            cfg.ca_file.as_deref(),
            crate::config::Key::upstream(name, Some("ca_file")),
        )?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls_config)
            .timeout_connect(cfg.connect_timeout())
            .redirects(0)
            .try_proxy_from_env(false)
            .max_idle_connections_per_host(IDLE_CONNECTIONS)
            .user_agent(concat!("pi-pid/", env!("CARGO_PKG_VERSION")))
            .build();
        let service = match (&cfg.service_user, &cfg.service_password_file) {
            (Some(user), Some(file)) => Some(ServiceAccount {
                user: user.clone(),
                password: crate::secret_file::read_password(
                    file,
                    crate::config::Key::upstream(name, Some("service_password_file")),
                )?,
            }),
            _ => None,
        };
        Ok(Client {
            name: name.to_owned(),
            urls: cfg
                .urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            agent,
            timeout: cfg.timeout(),
            tls: cfg.urls.iter().all(|u| u.starts_with("https://")),
            realm: cfg.realm.clone(),
            service,
            jwt: Mutex::new(None),
            health: Mutex::new(Health::default()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn has_service_account(&self) -> bool {
        self.service.is_some()
    }

    /// Every URL is https (certificates verified).
    pub fn tls(&self) -> bool {
        self.tls
    }

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn note(&self, f: impl FnOnce(&mut Health)) {
        if let Ok(mut h) = self.health.lock() {
            f(&mut h);
        }
    }

    /// `POST /validate/check`: `pass` (PIN and OTP, or the answer to a challenge) of `user`.
    pub fn validate_check(
        &self,
        user: &str,
        pass: &str,
        fields: &CheckFields<'_>,
    ) -> Result<answer::Check, UpstreamError> {
        let mut form: Vec<(&str, &str)> = vec![("user", user), ("pass", pass)];
        if let Some(realm) = &self.realm {
            form.push(("realm", realm));
        }
        if let Some(id) = fields.transaction_id {
            form.push(("transaction_id", id));
        }
        // privacyIDEA's client fields: its audit shows them, and its policies can match them.
        form.push(("client_service", fields.service));
        if let Some(rhost) = fields.rhost {
            form.push(("client_host", rhost));
        }
        let reply = self.exchange(Method::Post(&form), "/validate/check", None)?;
        self.parse(&reply, answer::check)
    }

    /// `POST /validate/offlinerefill`: new values for `serial`, after an offline login with
    /// `pass`.
    pub fn offline_refill(
        &self,
        serial: &str,
        pass: &str,
        refill_token: &str,
    ) -> Result<Result<answer::OfflineItem, answer::Refusal>, UpstreamError> {
        let form = [
            ("serial", serial),
            ("pass", pass),
            ("refilltoken", refill_token),
        ];
        let reply = self.exchange(Method::Post(&form), "/validate/offlinerefill", None)?;
        self.parse(&reply, answer::refill)
    }

    /// `GET /machine/authitem/ssh`: the keys the server attaches to `hostname` for `user`.
    /// `now` (unix seconds) decides whether the service account's JWT is still good.
    pub fn ssh_keys(
        &self,
        hostname: &str,
        user: &str,
        service_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<answer::SshKeyItem>, UpstreamError> {
        let mut query = vec![("hostname", hostname), ("user", user)];
        if let Some(id) = service_id {
            query.push(("service_id", id));
        }
        self.admin_get(
            "/machine/authitem/ssh",
            &query,
            "SSH keys",
            answer::ssh_keys,
            now,
        )
    }

    /// `GET /machine/authitem/luks`: the response of each LUKS token attached to `hostname`
    /// to `challenge_hex`.
    pub fn luks(
        &self,
        hostname: &str,
        challenge_hex: &str,
        now: i64,
    ) -> Result<Vec<answer::LuksItem>, UpstreamError> {
        let query = [("hostname", hostname), ("challenge", challenge_hex)];
        self.admin_get(
            "/machine/authitem/luks",
            &query,
            "LUKS responses",
            answer::luks,
            now,
        )
    }

    /// An admin endpoint, with the service account's JWT (renewed once if the server no longer
    /// takes it).
    fn admin_get<T>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &'static str,
        parse: Parse<T>,
        now: i64,
    ) -> Result<T, UpstreamError> {
        for fresh in [false, true] {
            let jwt = self.jwt(what, fresh, now)?;
            let reply = self.exchange(Method::Get(query), path, Some(&jwt))?;
            if reply.status == 401 && !fresh {
                continue;
            }
            return match self.parse(&reply, parse)? {
                Ok(items) => Ok(items),
                Err(refusal) => Err(UpstreamError::Refused {
                    name: self.name.clone(),
                    message: refusal.message,
                }),
            };
        }
        Err(UpstreamError::Refused {
            name: self.name.clone(),
            message: "the service account's token was refused".into(),
        })
    }

    /// The service account's JWT: the cached one while it is valid, else a new one from
    /// `/auth`.
    fn jwt(
        &self,
        what: &'static str,
        fresh: bool,
        now: i64,
    ) -> Result<Zeroizing<String>, UpstreamError> {
        let Some(account) = &self.service else {
            return Err(UpstreamError::NoServiceAccount {
                name: self.name.clone(),
                what,
            });
        };
        if let Ok(mut cached) = self.jwt.lock() {
            if fresh {
                *cached = None;
            }
            if let Some(jwt) = cached.as_ref().filter(|j| now < j.until) {
                return Ok(jwt.token.clone());
            }
        }
        let form = [
            ("username", account.user.as_str()),
            ("password", account.password.as_str()),
        ];
        let reply = self.exchange(Method::Post(&form), "/auth", None)?;
        match self.parse(&reply, answer::jwt)? {
            Ok(token) => {
                let until = now + jwt_lifetime(&token, now);
                self.note(|h| h.service_account_ok = Some(true));
                if let Ok(mut cached) = self.jwt.lock() {
                    *cached = Some(Jwt {
                        token: token.clone(),
                        until,
                    });
                }
                Ok(token)
            }
            Err(refusal) => {
                let err = UpstreamError::ServiceAccount {
                    name: self.name.clone(),
                    user: account.user.clone(),
                    message: refusal.message,
                };
                self.note(|h| {
                    h.service_account_ok = Some(false);
                    h.last_error = Some(crate::error::chain(&err).to_string());
                });
                Err(err)
            }
        }
    }

    /// One request, to each URL in turn until one answers, all within `timeout`.
    fn exchange(
        &self,
        method: Method<'_>,
        path: &str,
        jwt: Option<&str>,
    ) -> Result<Reply, UpstreamError> {
        let deadline = Instant::now() + self.timeout;
        let mut tried: Vec<&str> = Vec::new();
        let mut last: Option<ureq::Transport> = None;
        for base in &self.urls {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            tried.push(base);
            let url = format!("{base}{path}");
            let mut req = self.agent.request(method.name(), &url).timeout(left);
            if let Some(jwt) = jwt {
                req = req.set("Authorization", jwt);
            }
            let sent = match method {
                Method::Post(form) => req.send_form(form),
                Method::Get(query) => {
                    for (k, v) in query {
                        req = req.query(k, v);
                    }
                    req.call()
                }
            };
            let response = match sent {
                Ok(r) | Err(ureq::Error::Status(_, r)) => r,
                Err(ureq::Error::Transport(t)) => {
                    last = Some(t);
                    continue;
                }
            };
            return self.read(url, response);
        }
        let err = match last {
            Some(source) if Instant::now() < deadline => UpstreamError::Unreachable {
                name: self.name.clone(),
                tried: tried.join(", "),
                source: Box::new(source),
            },
            _ => UpstreamError::Timeout {
                name: self.name.clone(),
                timeout: self.timeout,
            },
        };
        self.note(|h| {
            h.reachable = Some(false);
            h.last_error = Some(crate::error::chain(&err).to_string());
        });
        Err(err)
    }

    /// Read an answer: bounded, JSON for the statuses privacyIDEA answers with JSON.
    fn read(&self, url: String, response: ureq::Response) -> Result<Reply, UpstreamError> {
        let status = response.status();
        let content_type: String = sanitize(response.content_type())
            .chars()
            .take(100)
            .collect();
        let mut body = Vec::new();
        let read = response
            .into_reader()
            .take(MAX_ANSWER_BYTES + 1)
            .read_to_end(&mut body);
        self.note(|h| h.reachable = Some(true));
        let name = self.name.clone();
        let fail = |err: UpstreamError| {
            self.note(|h| h.last_error = Some(crate::error::chain(&err).to_string()));
            Err(err)
        };
        if let Err(source) = read {
            return fail(UpstreamError::Read { name, url, source });
        }
        if body.len() as u64 > MAX_ANSWER_BYTES {
            return fail(UpstreamError::TooLarge { name, url });
        }
        // privacyIDEA answers 200, and 400/401/403/404 with a JSON error; anything else
        // (a redirect, a proxy's 502) is not an answer of the server.
        if !matches!(status, 200 | 400 | 401 | 403 | 404) {
            let shown: String = sanitize(&String::from_utf8_lossy(&body))
                .chars()
                .take(200)
                .collect();
            return fail(UpstreamError::Status {
                name,
                url,
                status,
                body: shown,
            });
        }
        if content_type != "application/json" {
            return fail(UpstreamError::NotJson {
                name,
                url,
                content_type,
            });
        }
        Ok(Reply { url, status, body })
    }

    /// Parse a reply with `parse`, noting the server's version.
    fn parse<T>(
        &self,
        reply: &Reply,
        parse: fn(&[u8]) -> Result<T, BadAnswer>,
    ) -> Result<T, UpstreamError> {
        #[derive(serde::Deserialize)]
        struct Version {
            version: Option<String>,
        }
        if let Ok(Version { version: Some(v) }) = serde_json::from_slice(&reply.body) {
            let v: String = sanitize(&v).chars().take(64).collect();
            self.note(|h| h.version = Some(v));
        }
        parse(&reply.body).map_err(|source| {
            let err = UpstreamError::Answer {
                name: self.name.clone(),
                url: reply.url.clone(),
                source,
            };
            self.note(|h| h.last_error = Some(crate::error::chain(&err).to_string()));
            err
        })
    }
}

#[derive(Clone, Copy)]
enum Method<'a> {
    Post(&'a [(&'a str, &'a str)]),
    Get(&'a [(&'a str, &'a str)]),
}

impl Method<'_> {
    fn name(self) -> &'static str {
        match self {
            Method::Post(_) => "POST",
            Method::Get(_) => "GET",
        }
    }
}

/// How long a JWT may be reused at `now`, in seconds: until its `exp` claim (read, not
/// verified: the server verifies it) less a margin, or briefly if it has none.
fn jwt_lifetime(token: &str, now: i64) -> i64 {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<i64>,
    }
    let exp = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            data_encoding::BASE64URL_NOPAD
                .decode(p.trim_end_matches('=').as_bytes())
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<Claims>(&json).ok())
        .and_then(|c| c.exp);
    match exp {
        Some(exp) => (exp - now - JWT_MARGIN).max(0),
        None => JWT_DEFAULT_LIFETIME,
    }
}

/// The configured servers, by name; built with the configuration and replaced on reload.
#[derive(Debug, Default)]
pub struct Upstreams {
    clients: std::collections::BTreeMap<String, Arc<Client>>,
    /// Servers whose client could not be set up when the daemon started (an unreadable CA or
    /// password file), with why: their realms fail closed while the others serve.
    broken: std::collections::BTreeMap<String, String>,
}

impl Upstreams {
    /// Every server's client, or the first error (a reload keeps the running configuration).
    pub fn new(
        configs: &std::collections::BTreeMap<String, UpstreamConfig>,
    ) -> Result<Upstreams, ConfigError> {
        let mut clients = std::collections::BTreeMap::new();
        for (name, cfg) in configs {
            clients.insert(name.clone(), Arc::new(Client::new(name, cfg)?));
        }
        Ok(Upstreams {
            clients,
            broken: Default::default(),
        })
    }

    /// `new` for a daemon that is starting: a server whose client cannot be set up fails only
    /// its realms, and is returned as a problem for the log and `pictl status`.
    pub fn serving(
        configs: &std::collections::BTreeMap<String, UpstreamConfig>,
    ) -> (Upstreams, Vec<String>) {
        let mut upstreams = Upstreams::default();
        let mut problems = Vec::new();
        for (name, cfg) in configs {
            match Client::new(name, cfg) {
                Ok(client) => {
                    upstreams.clients.insert(name.clone(), Arc::new(client));
                }
                Err(e) => {
                    let why = format!(
                        "upstream {name} could not be set up, so logins of its realms fail \
                         until it is fixed and pid reloaded (systemctl reload pid): {}",
                        crate::error::chain(&e)
                    );
                    problems.push(why.clone());
                    upstreams.broken.insert(name.clone(), why);
                }
            }
        }
        (upstreams, problems)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Client>> {
        self.clients.get(name)
    }

    /// Why server `name` has no client, if it could not be set up at start.
    pub fn broken(&self, name: &str) -> Option<&str> {
        self.broken.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.values()
    }
}

#[cfg(test)]
mod tests;
