//! `pid.toml`: declarative, every key has a default (an empty file works), unknown keys are an
//! error that names the key and its line, like `sshd -t` would.

use crate::error::PidError;
use crate::realm::{RealmConfig, RealmsConfig, ResolverConfig, IMPLICIT_PASSWD};
use protocol::paths;
use protocol::HashAlgorithm;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Format version of this file; only 1 exists.
    pub version: u32,
    /// The Unix socket pam_pi and pictl connect to (mode 0666; every request is authorised by
    /// the peer's uid).
    pub socket: PathBuf,
    /// The store lives in `state_dir/db.redb`, its journal in `state_dir/db.journal`.
    pub state_dir: PathBuf,
    /// 32-byte AES-256-GCM key for secrets at rest; created (0400) on first start.
    pub enckey_file: PathBuf,
    /// Members of this group administer tokens, as root does. Empty: root only.
    pub admin_group: String,
    /// The realm users belong to until realms are configured.
    pub default_realm: String,
    /// `error`, `warn`, `info`, `debug`, `trace`, or directives naming them
    /// (`info,pid::realm=debug`); RUST_LOG overrides.
    pub log_level: String,
    /// Where the log goes: `auto` (the journal under systemd, or when stderr is a terminal or
    /// nothing and journald listens; otherwise stderr), `journal` or `stderr`.
    pub log_target: LogTarget,
    /// journald's native socket.
    pub journal_socket: PathBuf,
    pub argon2: Argon2Config,
    pub limits: LimitsConfig,
    pub tokens: TokenDefaults,
    pub store: StoreConfig,
    /// How long the audit trail is kept.
    pub audit: AuditConfig,
    /// The mail server e-mail tokens send their codes through.
    pub smtp: SmtpConfig,
    /// The gateway SMS tokens send their codes through.
    pub sms: SmsConfig,
    /// The validation servers yubico tokens are checked against.
    pub yubico: YubicoConfig,
    /// Who may ask for SSH keys (sshd's AuthorizedKeysCommandUser).
    pub ssh: SshConfig,
    /// User stores by name (`[resolvers.NAME]`). Without any, the host's accounts.
    pub resolvers: BTreeMap<String, ResolverConfig>,
    /// Realms by name (`[realms.NAME]`): ordered resolver lists. Without any, `default_realm`
    /// holds the host's accounts.
    pub realms: BTreeMap<String, RealmConfig>,
    /// Policies (`[[policy]]`), see `policy/`.
    #[serde(rename = "policy", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<crate::policy::PolicyConfig>,
}

/// Where journald listens for native log records.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// `log_target` (see `logging`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    Auto,
    Journal,
    Stderr,
}

/// The longest `argon2.verified_pin_cache_secs`: an hour. Longer widens what a memory dump
/// reveals for no gain a login would notice.
pub const MAX_VERIFIED_PIN_CACHE_SECS: u32 = 3600;

/// The highest argon2 cost the configuration accepts, and so the highest a stored PIN hash can
/// have been made with: a stored hash asking for more is damage, not a PIN (crypto.rs refuses
/// it rather than allocate what it asks for).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;
pub const MAX_ARGON2_ITERATIONS: u32 = 64;
pub const MAX_ARGON2_PARALLELISM: u32 = 16;

/// argon2id cost for token PINs. OWASP's minimum by default; privacyIDEA uses
/// memory_kib = 65536, iterations = 9, parallelism = 4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Accept a PIN argon2 accepted for the same token within this many seconds without running
    /// argon2 again (0: off). Trades CPU for what a memory dump of pid reveals: see
    /// `pin_cache`.
    pub verified_pin_cache_secs: u32,
}

/// `[smtp]`: where e-mail tokens' codes are sent. Unset `host`: e-mail tokens cannot challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or `none` (only for a
    /// relay on this host).
    pub tls: SmtpTls,
    /// The sender address, e.g. `pi@example.org`.
    pub sender: String,
    /// Log in as this user (with `password_file`); absent: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A root-only file holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) of the server; the system's trust store if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 25,
            tls: SmtpTls::Starttls,
            sender: String::new(),
            username: None,
            password_file: None,
            ca_file: None,
            timeout_secs: 10,
        }
    }
}

/// `[sms]`: where SMS tokens' codes are sent — an HTTP gateway (`url`) or a program (`command`,
/// which gets the phone number as its last argument and the message on stdin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// HTTP gateway, e.g. `https://sms.example.org/send`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// `POST` (default) or `GET`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Extra request headers, e.g. `{ Authorization = "Bearer …" }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body (POST) or query string (GET), with `{phone}` and `{message}`
    /// (URL-encoded in a query, JSON-escaped when the body starts with `{`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Success needs a 2xx status and, if set, this text in the response.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub success_contains: String,
    /// A program instead of HTTP: argv, to which the phone number is appended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: String::new(),
            method: String::new(),
            headers: BTreeMap::new(),
            body: String::new(),
            success_contains: String::new(),
            command: Vec::new(),
            timeout_secs: 10,
        }
    }
}

impl SmtpConfig {
    fn validate(&self) -> Result<(), String> {
        if self.host.is_empty() {
            return Ok(());
        }
        if !self.sender.contains('@') {
            return Err("smtp.sender must be an address such as \"pi@example.org\"".into());
        }
        if self.username.is_some() != self.password_file.is_some() {
            return Err("smtp.username and smtp.password_file come together".into());
        }
        for (key, path) in [
            ("password_file", &self.password_file),
            ("ca_file", &self.ca_file),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(format!("smtp.{key} must be an absolute path"));
            }
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("smtp.timeout_secs must be between 1 and 120".into());
        }
        Ok(())
    }
}

impl SmsConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.url.is_empty() && !self.command.is_empty() {
            return Err(
                "sms: set either url (an HTTP gateway) or command (a program), not both".into(),
            );
        }
        let http = self.url.starts_with("https://") || self.url.starts_with("http://");
        if !self.url.is_empty() && !http {
            return Err("sms.url must start with https:// (or http:// for a local gateway)".into());
        }
        if !matches!(self.method.as_str(), "" | "GET" | "POST") {
            return Err("sms.method is GET or POST".into());
        }
        if self
            .command
            .first()
            .is_some_and(|p| !Path::new(p).is_absolute())
        {
            return Err("sms.command must start with an absolute path to the program".into());
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("sms.timeout_secs must be between 1 and 120".into());
        }
        Ok(())
    }
}

/// `[yubico]`: Yubico validation protocol 2.0 servers (YubiCloud, or a server of your own),
/// tried in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YubicoConfig {
    pub urls: Vec<String>,
    /// The API client id.
    pub client_id: String,
    /// A root-only file with the base64 API key: requests are signed and answers must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

impl Default for YubicoConfig {
    fn default() -> Self {
        YubicoConfig {
            urls: vec!["https://api.yubico.com/wsapi/2.0/verify".into()],
            client_id: String::new(),
            api_key_file: None,
            timeout_secs: 10,
        }
    }
}

impl YubicoConfig {
    fn validate(&self) -> Result<(), String> {
        if self
            .urls
            .iter()
            .any(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err("yubico.urls must be http(s):// URLs".into());
        }
        if self.api_key_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            return Err("yubico.api_key_file must be an absolute path".into());
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("yubico.timeout_secs must be between 1 and 120".into());
        }
        Ok(())
    }
}

/// `[ssh]`: `pictl ssh keys` for sshd's AuthorizedKeysCommand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Accounts (besides root) that may ask for the authorized keys of any login: the
    /// `AuthorizedKeysCommandUser` of sshd_config. Public keys are not secret, but which key
    /// opens which account is nobody else's business.
    pub keys_users: Vec<String>,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            keys_users: vec!["nobody".into()],
        }
    }
}

impl SshConfig {
    fn validate(&self) -> Result<(), String> {
        if let Some(bad) = self
            .keys_users
            .iter()
            .find(|u| u.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(format!("ssh.keys_users: {bad:?} is not an account name"));
        }
        Ok(())
    }
}

/// `[audit]`: what the audit trail keeps. A full disk fails every login, so the trail is
/// bounded by default, in age and in number of entries (a login adds ~200 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this many days are deleted (checked every minute); 0 keeps them
    /// whatever their age, as privacyIDEA does.
    pub keep_days: u32,
    /// The oldest entries beyond this many are deleted (checked every minute); 0: no limit.
    /// The default, a million, is ~200 MB.
    pub max_entries: u64,
    /// Entries one user (any account but root; `su` and `sudo` count for the account that
    /// started them) has recorded one by one per minute; the rest are counted in one summary
    /// entry per user and minute. Administrators' own entries are never summarised.
    pub user_entries_per_minute: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            keep_days: 365,
            max_entries: 1_000_000,
            user_entries_per_minute: 20,
        }
    }
}

/// The longest lock in minutes a configuration may ask for: a year.
pub const MAX_LOCKOUT_MINS: u32 = 366 * 1440;

/// The longest `audit.keep_days` that is not "forever": a hundred years.
pub const MAX_AUDIT_KEEP_DAYS: u32 = 36_500;

/// The token store (redb).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The store's page cache in MiB. The daemon's memory is about this plus the user index of
    /// flatfile realms (~30 bytes per user) and the writes of the last checkpoint interval. The
    /// default, 8, holds a 10,000-token store whole; at a million tokens, whose reads land all
    /// over a ~700 MB file, 16 gave 1.5% more logins/s (within noise) for 5–17 MiB more RSS
    /// under load and 20 MiB more at an import's peak: the cached pages churn, and malloc keeps
    /// the churn's holes (docs/performance.md).
    pub cache_mib: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { cache_mib: 8 }
    }
}

/// What one peer can make the daemon hold. "Users" here are every account but root, including
/// the `su` and `sudo` prompts an account starts (they run as root, but for that account): no
/// local account can take the share of the daemon that root's logins (sshd, login, su and sudo
/// as root) need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Connections served at once; further peers wait in the kernel backlog.
    pub max_connections: u32,
    /// A connection silent this long is closed; also the lifetime of an unanswered prompt.
    /// A `Status` request does not count as activity.
    pub idle_timeout_secs: u64,
    pub sessions_per_connection: u32,
    /// Authentications a user (a screen locker, `su` started by a user) may start per minute.
    pub user_auth_per_minute: u32,
    /// Connections all users together may hold; the rest of `max_connections` is root's.
    pub user_connections: u32,
    /// Connections one user may hold (a screen locker and a `pictl` need one each).
    pub user_connections_per_uid: u32,
    /// `idle_timeout_secs` for users' connections.
    pub user_idle_timeout_secs: u64,
    /// `sessions_per_connection` for users' connections (one login needs one).
    pub user_sessions_per_connection: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenDefaults {
    /// HOTP look-ahead (privacyIDEA `DefaultCountWindow`).
    pub hotp_window: u32,
    /// TOTP time step for new tokens (30 or 60).
    pub totp_period: u32,
    /// TOTP window either side of now, seconds (privacyIDEA `totp.timeWindow`).
    pub totp_window_secs: u32,
    /// OTP length for new tokens (6 or 8).
    pub digits: u8,
    pub hash: HashAlgorithm,
    /// Failed attempts from one source before the token is locked for that source
    /// (privacyIDEA `DefaultMaxFailCount`; sources: see `auth::lockout`).
    pub maxfail: u32,
    /// How long the first lock lasts, in minutes; each further lock of the same source lasts
    /// twice as long as the one before. 0 = until `pictl token reset` (privacyIDEA's
    /// `failcounter_clear_timeout = 0`).
    pub failcounter_clear_timeout_mins: u32,
    /// No lock lasts longer than this many minutes (unless the first already does).
    pub lockout_max_mins: u32,
    /// The name authenticator apps file new tokens under (the otpauth URL's issuer). Unset: this
    /// host's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl TokenDefaults {
    /// The lock durations in force.
    pub fn lockout(&self) -> crate::auth::lockout::LockoutRules {
        crate::auth::lockout::LockoutRules {
            first_secs: i64::from(self.failcounter_clear_timeout_mins) * 60,
            max_secs: i64::from(self.lockout_max_mins) * 60,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 1,
            socket: PathBuf::from(paths::DEFAULT_SOCKET),
            state_dir: PathBuf::from(paths::DEFAULT_STATE_DIR),
            enckey_file: PathBuf::from(paths::DEFAULT_ENCKEY_FILE),
            admin_group: "pi-admin".into(),
            default_realm: "default".into(),
            log_level: "info".into(),
            log_target: LogTarget::Auto,
            journal_socket: PathBuf::from(JOURNAL_SOCKET),
            argon2: Argon2Config::default(),
            limits: LimitsConfig::default(),
            tokens: TokenDefaults::default(),
            smtp: SmtpConfig::default(),
            sms: SmsConfig::default(),
            yubico: YubicoConfig::default(),
            ssh: SshConfig::default(),
            store: StoreConfig::default(),
            audit: AuditConfig::default(),
            resolvers: BTreeMap::new(),
            realms: BTreeMap::new(),
            policies: Vec::new(),
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            verified_pin_cache_secs: 0,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 512,
            idle_timeout_secs: 300,
            sessions_per_connection: 64,
            user_auth_per_minute: 30,
            user_connections: 64,
            user_connections_per_uid: 8,
            user_idle_timeout_secs: 60,
            user_sessions_per_connection: 4,
        }
    }
}

impl Default for TokenDefaults {
    fn default() -> Self {
        TokenDefaults {
            hotp_window: 10,
            totp_period: 30,
            totp_window_secs: 180,
            digits: 6,
            hash: HashAlgorithm::Sha1,
            maxfail: 10,
            failcounter_clear_timeout_mins: 1,
            lockout_max_mins: 1440,
            issuer: None,
        }
    }
}

/// The line a validation message is about, found from what the message names: a policy
/// (`policy "NAME"`, then the action or condition it mentions), a resolver or realm table
/// (`resolvers.NAME.KEY`), or a top-level key or section. `None` if nothing matches.
fn locate(text: &str, msg: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |line: &str| -> Option<String> {
        let (k, _) = line.split_once('=')?;
        let k = k.trim().trim_start_matches('{').trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| k.to_owned())
    };
    let words: Vec<&str> = msg
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    // Within lines[start..end], the line setting a key the message names (also inside
    // inline tables such as `actions = { a = 1, b = 2 }`).
    let key_line = |start: usize, end: usize| -> Option<usize> {
        (start..end).find(|&i| {
            lines[i].split([',', '{']).filter_map(key_of).any(|k| {
                k != "name" && k != "scope" && k != "actions" && words.contains(&k.as_str())
            })
        })
    };
    let block_end = |start: usize| {
        (start + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with('['))
            .unwrap_or(lines.len())
    };
    if let Some(rest) = msg
        .strip_prefix("policy \"")
        .or_else(|| msg.strip_prefix("policies \""))
    {
        let name = rest.split('"').next()?;
        let start = lines.iter().position(|l| {
            key_of(l).as_deref() == Some("name")
                && l.split_once('=').map(|(_, v)| v.trim().trim_matches('"')) == Some(name)
        })?;
        let begin = (0..=start)
            .rev()
            .find(|&i| lines[i].trim_start().starts_with("[[policy]]"))
            .unwrap_or(start);
        return key_line(begin, block_end(begin))
            .or(Some(start))
            .map(|i| i + 1);
    }
    for table in ["resolvers", "realms"] {
        if let Some(rest) = msg.strip_prefix(&format!("{table}.")) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let name = name.split('.').next().unwrap_or_default();
            let header = format!("[{table}.{name}]");
            let start = lines.iter().position(|l| l.trim() == header)?;
            return key_line(start + 1, block_end(start))
                .or(Some(start))
                .map(|i| i + 1);
        }
    }
    let first = words.first()?;
    lines
        .iter()
        .position(|l| key_of(l).as_deref() == Some(*first) || l.trim() == format!("[{first}]"))
        .map(|i| i + 1)
}

impl Config {
    /// Read and validate a config file; the error names the file, line and key.
    pub fn load(path: &Path) -> Result<Config, PidError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PidError::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, PidError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(", line {line}")
                })
                .unwrap_or_default();
            PidError::Config(format!("{origin}{place}: {}", e.message()))
        })?;
        config.validate().map_err(|m| {
            let place = locate(text, &m)
                .map(|line| format!(", line {line}"))
                .unwrap_or_default();
            PidError::Config(format!("{origin}{place}: {m}"))
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.smtp.validate()?;
        self.sms.validate()?;
        self.yubico.validate()?;
        self.ssh.validate()?;
        if self.version != 1 {
            return Err(format!(
                "version = {} is not supported; use version = 1",
                self.version
            ));
        }
        for (key, p) in [
            ("socket", &self.socket),
            ("state_dir", &self.state_dir),
            ("enckey_file", &self.enckey_file),
            ("journal_socket", &self.journal_socket),
        ] {
            if !p.is_absolute() {
                return Err(format!(
                    "{key} must be an absolute path, not {:?}",
                    p.display()
                ));
            }
        }
        let a = &self.argon2;
        if !(1..=MAX_ARGON2_PARALLELISM).contains(&a.parallelism) {
            return Err(format!(
                "argon2.parallelism must be between 1 and {MAX_ARGON2_PARALLELISM}"
            ));
        }
        if a.memory_kib < 8 * a.parallelism || a.memory_kib > MAX_ARGON2_MEMORY_KIB {
            return Err(format!(
                "argon2.memory_kib must be at least 8 × parallelism and at most \
                 {MAX_ARGON2_MEMORY_KIB}"
            ));
        }
        if !(1..=MAX_ARGON2_ITERATIONS).contains(&a.iterations) {
            return Err(format!(
                "argon2.iterations must be between 1 and {MAX_ARGON2_ITERATIONS}"
            ));
        }
        if a.verified_pin_cache_secs > MAX_VERIFIED_PIN_CACHE_SECS {
            return Err(format!(
                "argon2.verified_pin_cache_secs must be at most {MAX_VERIFIED_PIN_CACHE_SECS} \
                 (0 switches the cache off)"
            ));
        }
        if self.audit.keep_days > MAX_AUDIT_KEEP_DAYS {
            return Err(format!(
                "audit.keep_days must be at most {MAX_AUDIT_KEEP_DAYS} (0 keeps the audit trail \
                 forever)"
            ));
        }
        if !(1..=65_536).contains(&self.store.cache_mib) {
            return Err("store.cache_mib must be between 1 and 65536".into());
        }
        let l = &self.limits;
        if [
            l.max_connections,
            l.sessions_per_connection,
            l.user_connections,
            l.user_connections_per_uid,
            l.user_sessions_per_connection,
        ]
        .contains(&0)
        {
            return Err("limits.* must be at least 1".into());
        }
        for (key, secs) in [
            ("idle_timeout_secs", l.idle_timeout_secs),
            ("user_idle_timeout_secs", l.user_idle_timeout_secs),
        ] {
            if !(1..=86_400).contains(&secs) {
                return Err(format!("limits.{key} must be between 1 and 86400"));
            }
        }
        if l.user_connections >= l.max_connections {
            return Err(format!(
                "limits.user_connections ({}) must be below limits.max_connections ({}): the \
                 rest is kept for root's logins (sshd, login), which no other account can take",
                l.user_connections, l.max_connections
            ));
        }
        if l.user_connections_per_uid > l.user_connections {
            return Err(
                "limits.user_connections_per_uid must be at most limits.user_connections".into(),
            );
        }
        let t = &self.tokens;
        if !matches!(t.digits, 6 | 8) {
            return Err(format!("tokens.digits = {} — use 6 or 8", t.digits));
        }
        if !matches!(t.totp_period, 30 | 60) {
            return Err(format!(
                "tokens.totp_period = {} — use 30 or 60",
                t.totp_period
            ));
        }
        if !(1..=1000).contains(&t.hotp_window) {
            return Err("tokens.hotp_window must be between 1 and 1000".into());
        }
        if t.totp_window_secs > 3600 {
            return Err("tokens.totp_window_secs must be at most 3600".into());
        }
        if !(1..=1000).contains(&t.maxfail) {
            return Err("tokens.maxfail must be between 1 and 1000".into());
        }
        if t.failcounter_clear_timeout_mins > MAX_LOCKOUT_MINS
            || !(1..=MAX_LOCKOUT_MINS).contains(&t.lockout_max_mins)
        {
            return Err(format!(
                "tokens.failcounter_clear_timeout_mins must be at most {MAX_LOCKOUT_MINS} (0: \
                 until an administrator resets the token) and tokens.lockout_max_mins between 1 \
                 and {MAX_LOCKOUT_MINS}"
            ));
        }
        if let Some(issuer) = &t.issuer {
            validate_issuer(issuer).map_err(|e| format!("tokens.issuer {e}"))?;
        }
        crate::users::validate_name("realm", &self.default_realm)
            .map_err(|e| format!("default_realm: {e}"))?;
        for (name, r) in &self.resolvers {
            crate::users::validate_name("resolver", name).map_err(|e| format!("resolvers: {e}"))?;
            r.validate(name)?;
        }
        for (name, realm) in &self.realms {
            crate::users::validate_name("realm", name).map_err(|e| format!("realms: {e}"))?;
            if realm.resolvers.is_empty() {
                return Err(format!("realms.{name}: list at least one resolver"));
            }
            for r in &realm.resolvers {
                if !self.resolvers.contains_key(r) {
                    return Err(format!(
                        "realms.{name}: unknown resolver {r:?}; declare it as [resolvers.{r}]"
                    ));
                }
            }
        }
        if !self.realms.is_empty() && !self.realms.contains_key(&self.default_realm) {
            return Err(format!(
                "default_realm {:?} is not among the declared realms",
                self.default_realm
            ));
        }
        self.load_policies()?;
        validate_log_level(&self.log_level)?;
        Ok(())
    }

    /// What this host lacks for the file to work as written, for the operator: checked by
    /// `pid --check-config`, at start and at every reload.
    pub fn host_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.admin_group.is_empty() {
            let missing = match nix::unistd::Group::from_name(&self.admin_group) {
                Ok(Some(_)) => None,
                Ok(None) => Some("names no group on this host".to_string()),
                Err(e) => Some(format!("cannot be looked up ({e})")),
            };
            if let Some(why) = missing {
                warnings.push(format!(
                    "admin_group = {:?} {why}, so only root administers; create it with \
                     `groupadd {}` or set admin_group = \"\"",
                    self.admin_group, self.admin_group
                ));
            }
        }
        warnings
    }

    /// What a valid file sets that has no effect here (e.g. `u2f_facets`), for the operator.
    pub fn warnings(&self) -> Vec<String> {
        self.load_policies()
            .map(|p| p.warnings().to_vec())
            .unwrap_or_default()
    }

    /// The validated policy set, checked against the realms and resolvers this file declares.
    pub fn load_policies(&self) -> Result<crate::policy::Policies, String> {
        let realms: Vec<&str> = if self.realms.is_empty() {
            vec![self.default_realm.as_str()]
        } else {
            self.realms.keys().map(String::as_str).collect()
        };
        let mut resolvers: Vec<&str> = self.resolvers.keys().map(String::as_str).collect();
        if self.resolvers.is_empty() {
            resolvers.push(IMPLICIT_PASSWD);
        }
        crate::policy::Policies::load(&self.policies, &realms, &resolvers)
    }

    /// The resolvers, realms and default realm, for `Realms::load`.
    pub fn realms_config(&self) -> RealmsConfig<'_> {
        RealmsConfig {
            resolvers: &self.resolvers,
            realms: &self.realms,
            default_realm: &self.default_realm,
        }
    }

    /// The effective configuration as TOML, for `pid --check-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("db")
    }
}

/// Longest `tokens.issuer`, in characters: apps show the issuer on one line beside the code.
pub const MAX_ISSUER_CHARS: usize = 64;

/// An issuer an authenticator app can show: it heads the account's entry, and the otpauth label
/// is `ISSUER:ACCOUNT`, so a colon would split it in the wrong place.
fn validate_issuer(issuer: &str) -> Result<(), String> {
    if issuer.trim().is_empty() {
        return Err(
            "is empty: name the organisation or host, e.g. issuer = \"ACME ssh\", or \
                    remove the key to use the host name"
                .into(),
        );
    }
    if issuer.chars().count() > MAX_ISSUER_CHARS {
        return Err(format!(
            "has {} characters: use at most {MAX_ISSUER_CHARS}, apps show it on one line",
            issuer.chars().count()
        ));
    }
    if let Some(c) = issuer.chars().find(|c| c.is_control() || *c == ':') {
        return Err(format!(
            "contains {c:?}: use letters, digits, spaces and punctuation other than ':'"
        ));
    }
    Ok(())
}

/// The levels `log_level` accepts, alone or after `TARGET=`.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// `log_level` is a level, or comma-separated directives each naming one (`info,pid::realm=debug`).
///
/// Why this is stricter than tracing's own parser: that one reads a word it does not know as a
/// target name, so `"verbose"` or `"warning"` would pass and switch every log line off.
fn validate_log_level(value: &str) -> Result<(), String> {
    let refuse = || {
        format!(
            "log_level = {value:?} is not a level: use one of {} (or directives such as \
             \"info,pid::realm=debug\")",
            LOG_LEVELS.join(", ")
        )
    };
    for directive in value.split(',') {
        let level = match directive.trim().split_once('=') {
            Some((target, level)) => {
                let target_ok = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                if !target_ok {
                    return Err(refuse());
                }
                level
            }
            None => directive.trim(),
        };
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(refuse());
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(drop)
        .map_err(|_| refuse())
}

/// Keys whose new value a reload cannot apply (they shape what was opened or sized at start)
/// and that differ between `started`, the configuration the daemon started with, and `new`.
pub fn restart_only_changes(started: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |key, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    check("socket", started.socket != new.socket);
    check("state_dir", started.state_dir != new.state_dir);
    check("enckey_file", started.enckey_file != new.enckey_file);
    check("log_level", started.log_level != new.log_level);
    check("log_target", started.log_target != new.log_target);
    check(
        "journal_socket",
        started.journal_socket != new.journal_socket,
    );
    check("argon2", started.argon2 != new.argon2);
    check("store", started.store != new.store);
    check(
        "limits.max_connections",
        started.limits.max_connections != new.limits.max_connections,
    );
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(Config::parse("", "t").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_line() {
        let err = Config::parse("version = 1\nsockett = \"/x\"\n", "pid.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sockett"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("pid.toml"), "{msg}");
    }

    #[test]
    fn unknown_key_in_a_section_is_an_error() {
        let msg = Config::parse("[tokens]\nmaxfails = 3\n", "f")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("maxfails"), "{msg}");
    }

    #[test]
    fn wrong_value_type_is_an_error() {
        let msg = Config::parse("[tokens]\nmaxfail = \"ten\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [
            "[tokens]\ndigits = 7",
            "[tokens]\ntotp_period = 45",
            "[tokens]\nmaxfail = 0",
            "[argon2]\nparallelism = 0",
            "[argon2]\nverified_pin_cache_secs = 3601",
            "[audit]\nkeep_days = 36501",
            "socket = \"relative.sock\"",
            "version = 2",
            "log_level = \"loud[\"",
        ] {
            assert!(Config::parse(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_issuer_is_checked_and_unset_by_default() {
        assert_eq!(Config::default().tokens.issuer, None);
        let c = Config::parse("[tokens]\nissuer = \"ACME Corp ssh\"\n", "f").unwrap();
        assert_eq!(c.tokens.issuer.as_deref(), Some("ACME Corp ssh"));
        assert_eq!(Config::parse(&c.to_toml(), "f").unwrap(), c);
        for (bad, says) in [
            ("\"\"", "is empty"),
            ("\"  \"", "is empty"),
            ("\"a\\u0007b\"", "contains"),
            ("\"ACME:ssh\"", "':'"),
            (
                &format!("\"{}\"", "x".repeat(MAX_ISSUER_CHARS + 1)),
                "at most 64",
            ),
        ] {
            let err = Config::parse(&format!("[tokens]\nissuer = {bad}\n"), "f")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("tokens.issuer") && err.contains(says),
                "{bad}: {err}"
            );
        }
        let longest = format!("[tokens]\nissuer = \"{}\"\n", "é".repeat(MAX_ISSUER_CHARS));
        assert!(Config::parse(&longest, "f").is_ok());
    }

    #[test]
    fn a_log_level_that_names_no_level_is_refused_with_the_valid_ones() {
        for bad in [
            "verbose",
            "warning",
            "",
            "info,",
            "pid=verbose",
            "=debug",
            "pid realm=debug",
        ] {
            let msg = Config::parse(&format!("log_level = {bad:?}"), "f")
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("error, warn, info, debug, trace"),
                "{bad}: {msg}"
            );
        }
        for good in [
            "error",
            "warn",
            "info",
            "debug",
            "trace",
            "INFO",
            "info,pid::realm=debug",
        ] {
            let parsed = Config::parse(&format!("log_level = {good:?}"), "f");
            assert!(parsed.is_ok(), "{good}: {parsed:?}");
        }
    }

    #[test]
    fn an_admin_group_the_host_lacks_is_a_warning_that_says_what_to_do() {
        let config = |group: &str| Config {
            admin_group: group.into(),
            ..Config::default()
        };
        let warnings = config("pi-test-no-such-group").host_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("groupadd pi-test-no-such-group")
                && warnings[0].contains("admin_group = \"\""),
            "{warnings:?}"
        );
        assert!(config("root").host_warnings().is_empty());
        assert!(config("").host_warnings().is_empty());
    }

    #[test]
    fn semantic_errors_name_the_line() {
        let text = "version = 1\n\n[resolvers.f]\ntype = \"flatfile\"\nfile = \"relative\"\n\n\
                    [[policy]]\nname = \"a\"\nscope = \"authentication\"\nactions = { passOnNoToken = true }\n\n\
                    [[policy]]\nname = \"b\"\nscope = \"authentication\"\n\
                    actions = { passOnNoUser = true, mangle = \"user/(//\" }\n";
        let err = Config::parse(text, "pid.toml").unwrap_err().to_string();
        assert!(err.contains("pid.toml, line 5:"), "{err}");
        let text = text.replace("relative", "/abs");
        let err = Config::parse(&text, "pid.toml").unwrap_err().to_string();
        assert!(
            err.contains("pid.toml, line 15:") && err.contains("mangle"),
            "{err}"
        );
        let err = Config::parse("[tokens]\ndigits = 7\n", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x, line 1:"), "{err}");
    }

    #[test]
    fn realms_must_name_declared_resolvers_and_include_the_default() {
        let ok =
            "[resolvers.local]\ntype = \"passwd\"\n[realms.default]\nresolvers = [\"local\"]\n";
        Config::parse(ok, "f").unwrap();
        for bad in [
            "[realms.default]\nresolvers = [\"nope\"]",
            "[resolvers.local]\ntype = \"passwd\"\n[realms.other]\nresolvers = [\"local\"]",
            "[resolvers.f]\ntype = \"flatfile\"",
            "[resolvers.f]\ntype = \"ldapish\"",
            "[resolvers.f]\ntype = \"passwd\"\nfile = \"/x\"",
            "[realms.default]\nresolvers = []",
        ] {
            assert!(Config::parse(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn reload_names_the_keys_that_need_a_restart() {
        let old = Config::default();
        let mut new = Config::default();
        new.tokens.maxfail = 3;
        new.default_realm = "other".into();
        assert!(
            restart_only_changes(&old, &new).is_empty(),
            "reloadable keys"
        );
        new.socket = PathBuf::from("/run/other.sock");
        new.argon2.iterations = 3;
        assert_eq!(restart_only_changes(&old, &new), ["socket", "argon2"]);
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::default();
        assert_eq!(Config::parse(&c.to_toml(), "f").unwrap(), c);
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pid.toml");
        Config::load(Path::new(path)).unwrap();
        // The commented resolver, realm and policy examples are valid too: uncomment every
        // line of them that is TOML.
        let text = std::fs::read_to_string(path).unwrap();
        let examples = text.find("# User stores").unwrap();
        let text = &text[examples..];
        let key = regex::Regex::new(r"^# (\[|[a-z_]+ = )").unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| if key.is_match(l) { &l[2..] } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse(&uncommented, "examples/pid.toml (uncommented)").unwrap();
        assert!(c.policies.len() >= 6 && c.resolvers.contains_key("corp"));
    }
}
