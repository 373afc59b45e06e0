//! The SSH keys sshd asks for (`pictl ssh keys`, its AuthorizedKeysCommand): the keys of
//! sshkey tokens attached to this host (or a service id) for a login, and those that upstream
//! servers with a service account attach (`upstream::ssh`). Reached straight from dispatch once
//! the caller was found to be root or an `ssh.keys_users` account.

use crate::audit;
use crate::caller::Caller;
use crate::error::PidError;
use crate::handlers::error_response;
use crate::machines::ssh;
use crate::State;
use protocol::{MachineApp, Response};

/// The authorized keys of `login`: keys attached to this host for it, or with `service_id` the
/// keys attached for that service on any host. Every request is audited (sshd asks on every
/// connection attempt: the trail shows who tried which account).
pub async fn ssh_keys(
    state: &State,
    caller: &Caller,
    login: String,
    service_id: Option<String>,
) -> Response {
    let now = state.clock.now();
    let mut entry = audit::entry(caller, "ssh keys", now);
    entry.user = Some(login.clone());
    let mut result = authorized_keys(state, &login, service_id.as_deref(), now);
    let mut from_servers = Vec::new();
    if let Ok(keys) = &mut result {
        for (server, mut more, source) in
            upstream_keys(state, &login, service_id.as_deref(), now).await
        {
            from_servers.push(format!(
                "{} from upstream {server} ({source:?})",
                more.len()
            ));
            more.retain(|k| !keys.contains(k));
            keys.extend(more);
        }
    }
    match &result {
        Ok(keys) => {
            entry.success = true;
            entry.message = format!("{} key(s) for {login}", keys.len());
            if !from_servers.is_empty() {
                entry
                    .message
                    .push_str(&format!(": {}", from_servers.join(", ")));
            }
        }
        Err(e) => entry.message = e.public_message(),
    }
    audit::record(state, entry);
    match result {
        Ok(keys) => Response::SshKeys { keys },
        Err(e) => error_response(&e),
    }
}

/// The keys each upstream server with a service account attaches for `login`: (server, keys,
/// where they came from). The servers are asked one after the other, off the executor, each
/// within its `timeout_secs`.
async fn upstream_keys(
    state: &State,
    login: &str,
    service_id: Option<&str>,
    now: i64,
) -> Vec<(String, Vec<String>, crate::upstream::ssh::Source)> {
    let live = state.live();
    let mut out = Vec::new();
    for client in live.upstreams.iter().filter(|c| c.has_service_account()) {
        let Some(cfg) = live.config.upstream.get(client.name()) else {
            continue;
        };
        let max_age = i64::try_from(cfg.ssh_cache().as_secs()).unwrap_or(i64::MAX);
        let (client, store) = (client.clone(), state.store.clone());
        let (host, login, service_id) = (
            state.hostname.clone(),
            login.to_owned(),
            service_id.map(str::to_owned),
        );
        let asked = tokio::task::spawn_blocking(move || {
            let (keys, source) = crate::upstream::ssh::keys(
                &store,
                &client,
                &host,
                &login,
                service_id.as_deref(),
                now,
                max_age,
            );
            (client.name().to_owned(), keys, source)
        })
        .await;
        match asked {
            Ok(found) => out.push(found),
            Err(e) => {
                let e = PidError::task("upstream SSH keys", e);
                tracing::error!(error = %crate::error::chain(&e), "SSH keys not fetched");
            }
        }
    }
    out
}

fn authorized_keys(
    state: &State,
    login: &str,
    service_id: Option<&str>,
    now: i64,
) -> Result<Vec<String>, PidError> {
    crate::users::validate_login(login)?;
    let attachments = match service_id {
        Some(id) => {
            crate::handlers::validate_text("the service id", id)?;
            state
                .store
                .attachments(Some(MachineApp::Ssh), None)?
                .into_iter()
                .filter(|a| a.rec.options.service_id.as_deref() == Some(id))
                .collect()
        }
        None => state
            .store
            .attachments(Some(MachineApp::Ssh), Some(&state.hostname))?,
    };
    let mut keys = Vec::new();
    for a in attachments {
        let Some(token) = state.store.get_token(&a.serial)? else {
            continue;
        };
        if !ssh::grants(&a, &token.rec, login, now) {
            continue;
        }
        // The line was validated and re-encoded at enrollment and is sealed to the serial: a
        // key that fails to open (its integrity check) is skipped and logged, the others still
        // let their owners in, as privacyIDEA does.
        let line = state
            .cipher
            .open(&a.serial, "otpkey", &token.rec.otpkey)
            .map_err(|e| crate::error::chain(&e).to_string())
            .and_then(|m| String::from_utf8(m.to_vec()).map_err(|e| e.to_string()))
            .and_then(|l| {
                if l.contains(['\n', '\r']) {
                    Err("the stored key spans several lines".to_owned())
                } else {
                    Ok(l)
                }
            });
        match line {
            Ok(l) if !keys.contains(&l) => keys.push(l),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(serial = %a.serial, error = %e, "SSH key failed its integrity check; skipped")
            }
        }
    }
    Ok(keys)
}
