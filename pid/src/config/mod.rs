//! `pid.toml`: declarative, every key has a default (an empty file works), unknown keys are an
//! error that names the key and its line, like `sshd -t` would.
//!
//! One file per section (`[argon2]`, `[limits]`, `[tokens]`, …), each with its defaults and
//! its checks; the resolvers' tables are defined and checked by `realm`, the policies by
//! `policy`. This file holds them together, checks what spans sections (realms name declared
//! resolvers) and says which line an error is about (`locate`). `reference` documents every key
//! for the manual page, tied to the parser by its tests.

mod argon2;
mod audit;
mod error;
mod limits;
mod locate;
mod logging;
pub mod reference;
mod sms;
mod smtp;
mod ssh;
mod store;
mod tokens;
mod yubico;

pub use argon2::{
    Argon2Config, MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM,
    MAX_VERIFIED_PIN_CACHE_SECS,
};
pub use audit::{AuditConfig, MAX_AUDIT_KEEP_DAYS};
pub use error::{ConfigError, Key, Reason, Table};
pub use limits::LimitsConfig;
pub use logging::{LogTarget, JOURNAL_SOCKET, LOG_LEVELS};
pub use sms::SmsConfig;
pub use smtp::{SmtpConfig, SmtpTls};
pub use ssh::SshConfig;
pub use store::StoreConfig;
pub use tokens::{TokenDefaults, MAX_ISSUER_CHARS, MAX_LOCKOUT_MINS};
pub use yubico::YubicoConfig;

use crate::policy::{Policies, PolicyConfig};
use crate::realm::{RealmConfig, RealmsConfig, ResolverConfig, IMPLICIT_PASSWD};
use crate::upstream::UpstreamConfig;
use protocol::paths;
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
    /// The same key as a systemd credential of this name, read from
    /// `$CREDENTIALS_DIRECTORY/NAME` instead of `enckey_file` (the unit decrypts it with
    /// `LoadCredentialEncrypted=NAME`, so the key is not on disk in the clear). Never created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enckey_credential: Option<String>,
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
    /// Realms by name (`[realms.NAME]`): ordered resolver lists, or an upstream server. Without
    /// any, `default_realm` holds the host's accounts.
    pub realms: BTreeMap<String, RealmConfig>,
    /// privacyIDEA servers by name (`[upstream.NAME]`), for the realms they serve.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub upstream: BTreeMap<String, UpstreamConfig>,
    /// Policies (`[[policy]]`), see `policy/`.
    #[serde(rename = "policy", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 1,
            socket: PathBuf::from(paths::DEFAULT_SOCKET),
            state_dir: PathBuf::from(paths::DEFAULT_STATE_DIR),
            enckey_file: PathBuf::from(paths::DEFAULT_ENCKEY_FILE),
            enckey_credential: None,
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
            upstream: BTreeMap::new(),
            policies: Vec::new(),
        }
    }
}

impl Config {
    /// Read and validate a config file; the error names the file, line and key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable("", path, e))?;
        Config::parse(&text, &path.display().to_string())
    }

    /// `text` as the configuration; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ConfigError {
                line,
                ..ConfigError::new(None, Reason::Syntax(Box::new(e)))
            }
            .found_in(origin, text)
        })?;
        config.validate().map_err(|e| e.found_in(origin, text))?;
        if config.enckey_credential.is_some() && sets_top_level_key(text, "enckey_file") {
            return Err(ConfigError::invalid(
                "enckey_credential",
                "set enckey_credential or enckey_file, not both: with a credential pid reads \
                 the key from systemd and never from a file; remove one of the two lines",
            )
            .found_in(origin, text));
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.smtp.validate()?;
        self.sms.validate()?;
        self.yubico.validate()?;
        self.ssh.validate()?;
        if self.version != 1 {
            return Err(ConfigError::invalid(
                "version",
                format!("{} is not supported; use version = 1", self.version),
            ));
        }
        for (key, p) in [
            ("socket", &self.socket),
            ("state_dir", &self.state_dir),
            ("enckey_file", &self.enckey_file),
            ("journal_socket", &self.journal_socket),
        ] {
            if !p.is_absolute() {
                return Err(ConfigError::invalid(
                    key,
                    format!("must be an absolute path, not {:?}", p.display()),
                ));
            }
        }
        if let Some(name) = &self.enckey_credential {
            validate_credential_name(name)?;
        }
        self.argon2.validate()?;
        self.audit.validate()?;
        self.store.validate()?;
        self.limits.validate()?;
        self.tokens.validate()?;
        let name = |what, name, key: &str| {
            crate::users::validate_name(what, name)
                .map_err(|e| ConfigError::new(Some(key.into()), e.into()))
        };
        name("realm", &self.default_realm, "default_realm")?;
        for (resolver, r) in &self.resolvers {
            name("resolver", resolver, "resolvers")?;
            r.validate(resolver)?;
        }
        for (upstream, u) in &self.upstream {
            name("upstream", upstream, "upstream")?;
            u.validate(upstream)?;
        }
        for (realm_name, realm) in &self.realms {
            name("realm", realm_name, "realms")?;
            match (&realm.upstream, realm.resolvers.is_empty()) {
                (None, true) => {
                    return Err(ConfigError::invalid(
                        Key::realm(realm_name, None),
                        "list at least one resolver, or name the upstream server that serves \
                         the realm (upstream = \"NAME\")",
                    ))
                }
                (Some(_), false) => {
                    return Err(ConfigError::invalid(
                        Key::realm(realm_name, Some("upstream")),
                        "a realm is served by its resolvers or by an upstream server, not both",
                    ))
                }
                (Some(u), true) if !self.upstream.contains_key(u) => {
                    return Err(ConfigError::invalid(
                        Key::realm(realm_name, Some("upstream")),
                        format!("unknown upstream {u:?}; declare it as [upstream.{u}]"),
                    ))
                }
                _ => {}
            }
            for r in &realm.resolvers {
                if !self.resolvers.contains_key(r) {
                    return Err(ConfigError::invalid(
                        Key::realm(realm_name, Some("resolvers")),
                        format!("unknown resolver {r:?}; declare it as [resolvers.{r}]"),
                    ));
                }
            }
        }
        if !self.realms.is_empty() && !self.realms.contains_key(&self.default_realm) {
            return Err(ConfigError::invalid(
                "default_realm",
                format!("{:?} is not among the declared realms", self.default_realm),
            ));
        }
        self.load_policies()?;
        logging::validate_log_level(&self.log_level)?;
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
    pub fn load_policies(&self) -> Result<Policies, ConfigError> {
        let realms: Vec<&str> = if self.realms.is_empty() {
            vec![self.default_realm.as_str()]
        } else {
            self.realms.keys().map(String::as_str).collect()
        };
        let mut resolvers: Vec<&str> = self.resolvers.keys().map(String::as_str).collect();
        if self.resolvers.is_empty() {
            resolvers.push(IMPLICIT_PASSWD);
        }
        Policies::load(&self.policies, &realms, &resolvers)
    }

    /// The resolvers, realms and default realm, for `Realms::load`.
    pub fn realms_config(&self) -> RealmsConfig<'_> {
        RealmsConfig {
            resolvers: &self.resolvers,
            realms: &self.realms,
            default_realm: &self.default_realm,
        }
    }

    /// The effective configuration as TOML, for `pid --check-config`. With `enckey_credential`
    /// set, `enckey_file` is left out: it is not used, and a file naming both is refused.
    pub fn to_toml(&self) -> String {
        let text =
            toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        if self.enckey_credential.is_none() {
            return text;
        }
        let mut top_level = true;
        text.lines()
            .filter(|line| {
                top_level &= !line.starts_with('[');
                !(top_level && line.starts_with("enckey_file ="))
            })
            .flat_map(|line| [line, "\n"])
            .collect()
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("db")
    }
}

/// A systemd credential's name: a plain file name in `$CREDENTIALS_DIRECTORY`, nothing that
/// could lead out of it.
fn validate_credential_name(name: &str) -> Result<(), ConfigError> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0']);
    if plain {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "enckey_credential",
            format!(
                "{name:?} is no credential name: use a plain file name such as \"pid-enckey\", \
                 the NAME of LoadCredentialEncrypted=NAME in the unit"
            ),
        ))
    }
}

/// Whether the TOML `text` sets `key` at its top level (not inside a table), as opposed to
/// leaving it at its default.
fn sets_top_level_key(text: &str, key: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| table.contains_key(key))
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
    check(
        "enckey_credential",
        started.enckey_credential != new.enckey_credential,
    );
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
    fn a_key_credential_is_a_plain_file_name() {
        let c = Config::parse("enckey_credential = \"pid-enckey\"", "f").unwrap();
        assert_eq!(c.enckey_credential.as_deref(), Some("pid-enckey"));
        for bad in ["", ".", "..", "../enckey", "/etc/pi/enckey", "a/b"] {
            let text = format!("version = 1\nenckey_credential = {bad:?}\n");
            let msg = Config::parse(&text, "f").unwrap_err().to_string();
            assert!(
                msg.contains("enckey_credential") && msg.contains("line 2"),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn a_key_credential_and_an_explicit_key_file_are_refused_together() {
        let text = "enckey_file = \"/etc/pi/enckey\"\nenckey_credential = \"pid-enckey\"\n";
        let msg = Config::parse(text, "pid.toml").unwrap_err().to_string();
        assert!(msg.contains("not both") && msg.contains("line 2"), "{msg}");
        // The default key file is no conflict.
        Config::parse("enckey_credential = \"k\"", "f").unwrap();
    }

    #[test]
    fn the_effective_configuration_with_a_key_credential_parses_again() {
        let c = Config::parse("enckey_credential = \"pid-enckey\"", "f").unwrap();
        let shown = c.to_toml();
        assert!(!shown.contains("enckey_file"), "{shown}");
        assert_eq!(Config::parse(&shown, "shown").unwrap(), c);
        assert!(Config::default().to_toml().contains("enckey_file ="));
    }

    #[test]
    fn changing_the_key_credential_takes_a_restart() {
        let started = Config::default();
        let new = Config {
            enckey_credential: Some("pid-enckey".into()),
            ..Config::default()
        };
        assert_eq!(restart_only_changes(&started, &new), ["enckey_credential"]);
    }

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
    fn a_realm_is_served_by_its_resolvers_or_by_one_declared_upstream() {
        let upstream = "[upstream.pi]\nurls = [\"https://pi.example.org\"]\n";
        let local =
            "[resolvers.local]\ntype = \"passwd\"\n[realms.default]\nresolvers = [\"local\"]\n";
        let c = Config::parse(
            &format!("{upstream}{local}[realms.corp]\nupstream = \"pi\"\n"),
            "f",
        )
        .unwrap();
        assert_eq!(c.realms["corp"].upstream.as_deref(), Some("pi"));
        assert_eq!(Config::parse(&c.to_toml(), "f").unwrap(), c);
        for (bad, says) in [
            (
                format!("{local}[realms.corp]\nupstream = \"pi\"\n"),
                "f, line 6: realms.corp.upstream: unknown upstream \"pi\"; declare it as [upstream.pi]",
            ),
            (
                format!("{upstream}{local}[realms.corp]\nupstream = \"pi\"\nresolvers = [\"local\"]\n"),
                "realms.corp.upstream: a realm is served by its resolvers or by an upstream server, not both",
            ),
            (
                format!("{upstream}{local}[realms.corp]\n"),
                "realms.corp: list at least one resolver, or name the upstream server",
            ),
            (
                "[upstream.pi]\nurls = [\"http://pi.example.org\"]\n".to_owned(),
                "f, line 2: upstream.pi.urls: \"http://pi.example.org\": PINs and OTPs must not cross",
            ),
            (
                "[upstream.pi]\nurls = [\"https://pi.example.org\"]\ntls_verify = false\n".to_owned(),
                "unknown field `tls_verify`",
            ),
        ] {
            let e = Config::parse(&bad, "f").unwrap_err().to_string();
            assert!(e.contains(says), "{bad}\n{e}");
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
        let c = Config::parse(
            "[tokens]\nissuer = \"ACME Corp ssh\"\n\
             [resolvers.local]\ntype = \"passwd\"\npam_service = \"login\"\n\
             [resolvers.dir]\ntype = \"ldap\"\nuri = \"ldap://h\"\nbase = \"dc=x\"\ntimeout_secs = 3\n\
             [realms.default]\nresolvers = [\"local\", \"dir\"]\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.tokens.issuer.as_deref(), Some("ACME Corp ssh"));
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
        assert_eq!(c.realms["fleet"].upstream.as_deref(), Some("pi"));
        assert!(c.upstream["pi"].validate("pi").is_ok());
    }
}
