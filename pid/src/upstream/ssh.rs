//! SSH keys an upstream server attaches to this host (privacyIDEA's `ssh` application), for
//! sshd's AuthorizedKeysCommand (`pictl ssh keys`).
//!
//! Every request asks the server, so a key disabled there disappears at the next answer. The
//! last non-empty answer for each login is kept in the store: while the server cannot be reached
//! (no answer, or an HTTP 5xx), sshd gets it for `ssh_cache_secs` after it arrived, so logins
//! keep working through an outage, also across a restart of pid. An answer the server gave but
//! that is wrong (a refused service account, a malformed answer) gives no keys: fail closed.
//! Every key is parsed like a local sshkey token's and written out again in canonical form; one
//! that does not parse is skipped and logged.

use super::client::{Client, UpstreamError};
use crate::error::chain;
use crate::store::offline::UpstreamSshKeys;
use crate::store::Store;
use crate::tokens::sshkey::ValidKey;

/// Where the keys came from, for the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Server,
    /// The server could not be asked; the keys of its last answer.
    Cache,
    /// The server could not be asked and nothing recent was kept, or its answer was refused.
    Nothing,
}

/// The keys `client`'s server attaches to `hostname` for `login` (or for `service_id`), at
/// `now`. Blocking: call off the executor.
pub fn keys(
    store: &Store,
    client: &Client,
    hostname: &str,
    login: &str,
    service_id: Option<&str>,
    now: i64,
    max_age_secs: i64,
) -> (Vec<String>, Source) {
    let server = client.name();
    match client.ssh_keys(hostname, login, service_id, now) {
        Ok(items) => {
            let keys = valid_keys(
                server,
                items
                    .into_iter()
                    .filter(|i| i.user.as_deref().is_none_or(|u| u == login))
                    .map(|i| i.key),
            );
            let kept = UpstreamSshKeys {
                keys: keys.clone(),
                fetched: now,
            };
            if let Err(e) = store.set_upstream_ssh_keys(server, login, service_id, &kept) {
                tracing::error!(error = %chain(&e), login, "SSH keys of the server not kept");
            }
            (keys, Source::Server)
        }
        Err(e) if outage(&e) => {
            tracing::warn!(error = %chain(&e), login, "SSH keys: upstream server unreachable");
            match store.upstream_ssh_keys(server, login, service_id) {
                Ok(Some(kept)) if now - kept.fetched <= max_age_secs => (kept.keys, Source::Cache),
                Ok(_) => (Vec::new(), Source::Nothing),
                Err(e) => {
                    tracing::error!(error = %chain(&e), login, "kept SSH keys unreadable");
                    (Vec::new(), Source::Nothing)
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %chain(&e), login, "SSH keys: the upstream answer is refused");
            (Vec::new(), Source::Nothing)
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
