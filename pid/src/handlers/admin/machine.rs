//! MachineToken assignments (`pictl machine …`) and the LUKS passphrase material (`pictl luks
//! assign`). The SSH keys of those assignments are served by `handlers::ssh_keys`.

use super::gate::{done, get, Gate};
use crate::authority::Authority;
use crate::error::PidError;
use crate::machines::{self, luks};
use crate::policy::Action;
use crate::store::machines::{MachineRecord, MACHINE_SCHEMA};
use crate::State;
use protocol::{
    AdminResponse, AuditEntry, LuksResponse, MachineApp, MachineAttach, MachineTokenInfo, Secret,
};

/// The host a request names, or this one.
fn host_or_here(state: &State, host: Option<String>) -> Result<String, PidError> {
    let host = host.unwrap_or_else(|| state.hostname.clone());
    machines::check_host(&host)?;
    Ok(host)
}

pub(super) fn attach(
    state: &State,
    gate: &Gate<'_>,
    spec: MachineAttach,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let v = get(
        state,
        gate,
        Action::ManageMachineTokens,
        &spec.serial,
        entry,
    )?;
    let host = host_or_here(state, spec.host)?;
    if v.rec.revoked {
        return Err(PidError::TokenState(format!(
            "token {} is revoked; it can only be deleted",
            spec.serial
        )));
    }
    let options = machines::validate(spec.app, &v.rec, &spec.options)?;
    let rec = MachineRecord {
        schema: MACHINE_SCHEMA,
        options,
        created: state.clock.now(),
    };
    state.store.attach(spec.app, &host, &spec.serial, &rec)?;
    let detail = match spec.app {
        MachineApp::Ssh => format!(
            " for login {}",
            rec.options.user.as_deref().unwrap_or_default()
        ),
        MachineApp::Luks => rec
            .options
            .slot
            .map(|s| format!(" for key slot {s}"))
            .unwrap_or_default(),
        MachineApp::Offline => String::new(),
    };
    entry.message = format!(
        "token {} attached to {host} for {}{detail}",
        spec.serial,
        spec.app.as_str()
    );
    Ok(done(entry.message.clone()))
}

pub(super) fn detach(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    app: MachineApp,
    host: Option<String>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    get(state, gate, Action::ManageMachineTokens, serial, entry)?;
    let host = host_or_here(state, host)?;
    if !state.store.detach(app, &host, serial)? {
        return Err(PidError::NotFound(format!(
            "token {serial} is not attached to {host} for {}; `pictl machine list --serial \
             {serial}` shows its assignments",
            app.as_str()
        )));
    }
    entry.message = format!("token {serial} detached from {host} for {}", app.as_str());
    Ok(done(entry.message.clone()))
}

pub(super) fn list(
    state: &State,
    gate: &Gate<'_>,
    serial: Option<String>,
    app: Option<MachineApp>,
    host: Option<String>,
) -> Result<AdminResponse, PidError> {
    gate.check(Action::ManageMachineTokens, None, None)?;
    let mut out = Vec::new();
    for a in state.store.attachments(app, host.as_deref())? {
        if serial.as_ref().is_some_and(|s| *s != a.serial) {
            continue;
        }
        // An assignment outlives its token only for the moment between a delete and its
        // clean-up; it is not shown.
        let Some(token) = state.store.get_token(&a.serial)? else {
            continue;
        };
        out.push(MachineTokenInfo {
            serial: a.serial,
            token_type: token.rec.token_type,
            app: a.app,
            host: a.host,
            options: a.rec.options,
            created: a.rec.created,
        });
    }
    Ok(AdminResponse::Machines(out))
}

/// The Yubikey's answer to `password` for every luks assignment of the host. Root only: the
/// answer is a disk passphrase. The secret itself never leaves the daemon.
/// The responses upstream servers with a service account give for `host`'s LUKS tokens to
/// `password` (privacyIDEA's `luks` application: the challenge is the password in hex). A
/// server that cannot be asked is an error: the operator is assigning key slots and must know.
async fn upstream_luks(
    state: &State,
    host: &str,
    password: &Secret,
) -> Result<Vec<LuksResponse>, PidError> {
    let live = state.live();
    let challenge = hex::encode(password.expose().as_bytes());
    let mut out = Vec::new();
    for client in live.upstreams.iter().filter(|c| c.has_service_account()) {
        let (client, host, challenge) = (client.clone(), host.to_owned(), challenge.clone());
        let now = state.clock.now();
        let items = tokio::task::spawn_blocking(move || {
            client
                .luks(&host, &challenge, now)
                .map(|items| (client.name().to_owned(), items))
        })
        .await
        .map_err(|e| PidError::task("upstream LUKS responses", e))?;
        let (server, items) = items?;
        for item in items {
            out.push(LuksResponse {
                serial: format!("upstream {server}"),
                slot: item.slot,
                device: item.partition,
                concatenate: false,
                response: Secret::new(item.response.as_str()),
            });
        }
    }
    Ok(out)
}

pub(super) async fn luks_responses(
    state: &State,
    gate: &Gate<'_>,
    password: &Secret,
    host: Option<String>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    if !matches!(gate.authority, Authority::Root) {
        return Err(PidError::PermissionDenied(
            "only root may ask for LUKS passphrases (run pictl luks assign as root)".into(),
        ));
    }
    let host = host_or_here(state, host)?;
    let mut out = Vec::new();
    for a in state
        .store
        .attachments(Some(MachineApp::Luks), Some(&host))?
    {
        let Some(token) = state.store.get_token(&a.serial)? else {
            continue;
        };
        let rec = &token.rec;
        if !luks::is_challenge_response_token(rec) || !rec.active || rec.revoked {
            continue;
        }
        let secret = state.cipher.open(&rec.serial, "otpkey", &rec.otpkey)?;
        let response = luks::response(&secret, password.expose().as_bytes())?;
        out.push(LuksResponse {
            serial: a.serial,
            slot: a.rec.options.slot,
            device: a.rec.options.device,
            concatenate: a.rec.options.concatenate,
            response: Secret::new(response.as_str()),
        });
    }
    let local = out.len();
    out.extend(upstream_luks(state, &host, password).await?);
    entry.message = format!(
        "LUKS responses for {} assignment(s) on {host} handed out ({} from upstream servers)",
        out.len(),
        out.len() - local
    );
    Ok(AdminResponse::LuksResponses(out))
}
