//! SSH keys an upstream server attaches to this host (privacyIDEA's `ssh` application), for
//! sshd's AuthorizedKeysCommand (`pictl ssh keys`).
//!
//! Every request asks the server, so a key disabled there disappears at the next answer. The
//! last answer for each login is kept in memory: while the server cannot be reached (no answer,
//! or an HTTP 5xx), sshd gets it for `ssh_cache_secs` after it arrived, so logins keep working
//! through an outage. An answer the server gave but that is wrong (a refused service account, a
//! malformed answer) gives no keys: fail closed. Every key is parsed like a local sshkey token's
//! and written out again in canonical form; one that does not parse is skipped and logged.

use super::client::{Client, UpstreamError};
use crate::error::chain;
use crate::tokens::sshkey::ValidKey;
use std::collections::HashMap;
use std::sync::Mutex;

/// Logins whose keys are kept at most: sshd only asks for logins that try to connect, but an
/// attacker chooses those names.
const MAX_CACHED: usize = 4096;

/// Where the keys came from, for the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Server,
    /// The server could not be asked; the keys of its last answer.
    Cache,
    /// The server could not be asked and nothing recent was kept, or its answer was refused.
    Nothing,
}

/// (server, login, service id): whose keys.
type Whose = (String, String, Option<String>);

#[derive(Default)]
pub struct SshKeyCache {
    entries: Mutex<HashMap<Whose, Cached>>,
}

struct Cached {
    keys: Vec<String>,
    /// Unix seconds.
    fetched: i64,
}

impl SshKeyCache {
    /// The keys `client`'s server attaches to `hostname` for `login` (or for `service_id`), at
    /// `now`. Blocking: call off the executor.
    pub fn keys(
        &self,
        client: &Client,
        hostname: &str,
        login: &str,
        service_id: Option<&str>,
        now: i64,
        max_age_secs: i64,
    ) -> (Vec<String>, Source) {
        let key = (
            client.name().to_owned(),
            login.to_owned(),
            service_id.map(str::to_owned),
        );
        match client.ssh_keys(hostname, login, service_id, now) {
            Ok(items) => {
                let keys = valid_keys(
                    client.name(),
                    items
                        .into_iter()
                        .filter(|i| i.user.as_deref().is_none_or(|u| u == login))
                        .map(|i| i.key),
                );
                if let Ok(mut cache) = self.entries.lock() {
                    if cache.len() >= MAX_CACHED && !cache.contains_key(&key) {
                        // Make room: the oldest answer goes.
                        if let Some(oldest) = cache
                            .iter()
                            .min_by_key(|(_, c)| c.fetched)
                            .map(|(k, _)| k.clone())
                        {
                            cache.remove(&oldest);
                        }
                    }
                    cache.insert(
                        key,
                        Cached {
                            keys: keys.clone(),
                            fetched: now,
                        },
                    );
                }
                (keys, Source::Server)
            }
            Err(e) if outage(&e) => {
                tracing::warn!(error = %chain(&e), login, "SSH keys: upstream server unreachable");
                let cached = self.entries.lock().ok().and_then(|cache| {
                    cache
                        .get(&key)
                        .filter(|c| now - c.fetched <= max_age_secs)
                        .map(|c| c.keys.clone())
                });
                match cached {
                    Some(keys) => (keys, Source::Cache),
                    None => (Vec::new(), Source::Nothing),
                }
            }
            Err(e) => {
                tracing::error!(error = %chain(&e), login, "SSH keys: the upstream answer is refused");
                (Vec::new(), Source::Nothing)
            }
        }
    }
}

/// The server could not give an answer (as opposed to giving a wrong one).
fn outage(e: &UpstreamError) -> bool {
    e.unreachable() || matches!(e, UpstreamError::Status { status, .. } if *status >= 500)
}

/// Each line that is one OpenSSH public key, in canonical form, once.
fn valid_keys(server: &str, lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for line in lines {
        match ValidKey::parse(&line).and_then(|k| k.line()) {
            Ok(k) if !keys.contains(&k) => keys.push(k),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                upstream = server,
                error = %chain(&e),
                "an SSH key from the server does not parse; skipped"
            ),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWcbPbAj7gdsVBXSbCql1o6eOXSFPo+4tj8Elt3hY8L alice@laptop";

    #[test]
    fn keys_from_the_server_are_parsed_and_written_out_once() {
        let lines = vec![
            ED25519.to_owned(),
            format!("{ED25519}  "),
            "ssh-ed25519 not-base64".to_owned(),
            "command=\"/bin/sh\" ssh-ed25519 AAAA".to_owned(),
        ];
        let keys = valid_keys("corp", lines.into_iter());
        assert_eq!(keys, vec![ED25519.to_owned()]);
    }
}
