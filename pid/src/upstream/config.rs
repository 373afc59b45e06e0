//! The `[upstream.NAME]` tables of pid.toml: a privacyIDEA server this host asks for the users of
//! the realms it serves (`[realms.NAME] upstream = "NAME"`).

use crate::config::{ConfigError, Key};
use protocol::paths::DEFAULT_IO_TIMEOUT;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2000;
pub const MAX_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// A login through the server must be answered before pam_pi stops waiting (its `timeout=`,
/// 10 s unless the PAM line says otherwise), with time left for the rest of the login.
pub const MAX_TIMEOUT_SECS: u64 = DEFAULT_IO_TIMEOUT.as_secs() - 2;
pub const DEFAULT_SSH_CACHE_SECS: u64 = 3600;
pub const MAX_SSH_CACHE_SECS: u64 = 30 * 86_400;
pub const DEFAULT_OFFLINE_MAX_FAILS: u32 = 10;
pub const MAX_URLS: usize = 8;

/// An `[upstream.NAME]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The server's base URLs, tried in order when one cannot be reached:
    /// `https://pi.example.org` (or with a path prefix, `https://example.org/pi`).
    #[serde(default)]
    pub urls: Vec<String>,
    /// CA certificate(s) in PEM that sign the server's certificate; the system's trust store
    /// when absent. The certificate is always verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Time to connect to one URL, in milliseconds; default 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Time for a whole exchange with the server (every URL tried), in seconds; default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// The realm name sent to the server; the server's default realm when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// The server's admin account that fetches SSH keys and LUKS responses for this host
    /// (needs the `fetch_authentication_items` admin right).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_user: Option<String>,
    /// A root-only file holding `service_user`'s password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_password_file: Option<PathBuf>,
    /// How long SSH keys fetched from the server are served when it cannot be reached, in
    /// seconds; default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_cache_secs: Option<u64>,
    /// Wrong offline codes before offline logins of a token wait for the next online login;
    /// default 10, or the token's `maxfail` where the server sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_max_fails: Option<u32>,
    /// Days an offline hand-out stays usable; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_max_age_days: Option<u32>,
}

impl UpstreamConfig {
    /// Check the table of upstream `name` as written (files it names are read when the daemon
    /// builds its client).
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let refuse = |key: Option<&'static str>, why: String| {
            Err(ConfigError::invalid(Key::upstream(name, key), why))
        };
        if self.urls.is_empty() {
            return refuse(
                None,
                "an upstream needs `urls`, e.g. urls = [\"https://pi.example.org\"]".into(),
            );
        }
        if self.urls.len() > MAX_URLS {
            return refuse(Some("urls"), format!("at most {MAX_URLS} URLs"));
        }
        for url in &self.urls {
            if let Err(why) = check_url(url) {
                return refuse(Some("urls"), format!("{url:?}: {why}"));
            }
        }
        let ms = self.connect_timeout();
        if ms.is_zero() || ms > Duration::from_millis(MAX_CONNECT_TIMEOUT_MS) {
            return refuse(
                Some("connect_timeout_ms"),
                format!("use 1 to {MAX_CONNECT_TIMEOUT_MS}"),
            );
        }
        let secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
            return refuse(
                Some("timeout_secs"),
                format!(
                    "{secs}: use 1 to {MAX_TIMEOUT_SECS}; a login through the server must end \
                     before pam_pi stops waiting for the daemon ({} s)",
                    DEFAULT_IO_TIMEOUT.as_secs()
                ),
            );
        }
        if ms > self.timeout() {
            return refuse(
                Some("connect_timeout_ms"),
                "is longer than timeout_secs, the time for the whole exchange".into(),
            );
        }
        if let Some(realm) = &self.realm {
            if realm.is_empty() || realm.len() > 256 || realm.chars().any(char::is_control) {
                return refuse(Some("realm"), "use the server's realm name".into());
            }
        }
        match (&self.service_user, &self.service_password_file) {
            (Some(user), Some(_)) if user.is_empty() || user.chars().any(char::is_control) => {
                return refuse(Some("service_user"), "use the admin account's name".into())
            }
            (Some(_), None) => {
                return refuse(
                    Some("service_password_file"),
                    "service_user needs service_password_file, a root-only file with its \
                     password"
                        .into(),
                )
            }
            (None, Some(_)) => {
                return refuse(
                    Some("service_user"),
                    "service_password_file needs service_user, the admin account's name".into(),
                )
            }
            _ => {}
        }
        let cache = self.ssh_cache_secs.unwrap_or(DEFAULT_SSH_CACHE_SECS);
        if cache > MAX_SSH_CACHE_SECS {
            return refuse(
                Some("ssh_cache_secs"),
                format!("use 0 to {MAX_SSH_CACHE_SECS} (30 days)"),
            );
        }
        if self.offline_max_fails == Some(0) {
            return refuse(
                Some("offline_max_fails"),
                "use at least 1 (remove the key for the default of 10)".into(),
            );
        }
        if self.offline_max_age_days == Some(0) {
            return refuse(
                Some("offline_max_age_days"),
                "use at least 1, or remove the key: offline values then do not expire".into(),
            );
        }
        Ok(())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(
            self.connect_timeout_ms
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        )
    }

    /// The time for a whole exchange, every URL tried.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS))
    }

    /// Wrong offline codes allowed for a token whose `maxfail` the server did not send.
    pub fn offline_max_fails(&self) -> u32 {
        self.offline_max_fails.unwrap_or(DEFAULT_OFFLINE_MAX_FAILS)
    }

    /// Seconds an offline hand-out stays usable (`None`: no limit).
    pub fn offline_max_age_secs(&self) -> Option<i64> {
        self.offline_max_age_days.map(|d| i64::from(d) * 86_400)
    }

    pub fn ssh_cache(&self) -> Duration {
        Duration::from_secs(self.ssh_cache_secs.unwrap_or(DEFAULT_SSH_CACHE_SECS))
    }
}

/// A base URL the daemon may send PINs and OTPs to: `https://HOST[:PORT][/PATH]`, or `http://`
/// to this host itself only (nothing crosses a network in clear text).
fn check_url(url: &str) -> Result<(), &'static str> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("use https://HOST[:PORT][/PATH]");
    };
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("not a URL");
    }
    if url.contains(['?', '#', '@']) {
        return Err("no query, fragment or user name: the base URL only");
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() {
        return Err("no host");
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        return Err(
            "PINs and OTPs must not cross a network in clear text: use https:// \
                    (http:// only to 127.0.0.1, ::1 or localhost)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_urls(urls: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            ..UpstreamConfig::default()
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_this_host() {
        for ok in [
            "https://pi.example.org",
            "https://pi.example.org:8443/pi",
            "https://[2001:db8::1]:443",
            "http://127.0.0.1:5001",
            "http://localhost:5001/",
            "http://[::1]:5001",
        ] {
            assert_eq!(
                with_urls(&[ok]).validate("corp").map_err(|e| e.to_string()),
                Ok(()),
                "{ok}"
            );
        }
        for (bad, says) in [
            ("http://pi.example.org", "clear text"),
            ("http://10.0.0.1:5001", "clear text"),
            ("ftp://pi.example.org", "https://"),
            ("pi.example.org", "https://"),
            ("https://", "no host"),
            ("https://admin@pi.example.org", "user name"),
            ("https://pi.example.org/?x=1", "query"),
            ("https://pi example.org", "not a URL"),
        ] {
            let e = with_urls(&[bad]).validate("corp").unwrap_err().to_string();
            assert!(
                e.contains("upstream.corp.urls") && e.contains(says),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_exchange_must_end_before_pam_pi_stops_waiting() {
        let mut c = with_urls(&["https://pi.example.org"]);
        c.timeout_secs = Some(MAX_TIMEOUT_SECS + 1);
        let e = c.validate("corp").unwrap_err().to_string();
        assert!(
            e.contains("upstream.corp.timeout_secs") && e.contains("pam_pi"),
            "{e}"
        );
        c.timeout_secs = Some(2);
        c.connect_timeout_ms = Some(3000);
        let e = c.validate("corp").unwrap_err().to_string();
        assert!(e.contains("connect_timeout_ms"), "{e}");
        c.connect_timeout_ms = Some(500);
        assert!(c.validate("corp").is_ok());
    }

    #[test]
    fn a_service_account_needs_both_its_name_and_its_password_file() {
        let mut c = with_urls(&["https://pi.example.org"]);
        c.service_user = Some("pi-host".into());
        let e = c.validate("corp").unwrap_err().to_string();
        assert!(e.contains("service_password_file"), "{e}");
        c.service_user = None;
        c.service_password_file = Some("/etc/pi/corp.secret".into());
        let e = c.validate("corp").unwrap_err().to_string();
        assert!(e.contains("service_user"), "{e}");
        c.service_user = Some("pi-host".into());
        assert!(c.validate("corp").is_ok());
    }

    #[test]
    fn an_upstream_without_urls_says_what_to_write() {
        let e = UpstreamConfig::default()
            .validate("corp")
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream.corp") && e.contains("urls = ["), "{e}");
    }
}
