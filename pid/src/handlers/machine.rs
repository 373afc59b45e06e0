//! MachineToken assignments (`pictl machine …`), the SSH keys sshd asks for (`pictl ssh keys`)
//! and the LUKS passphrase material (`pictl luks assign`). Reached through `admin::run` (after
//! the caller's authority was decided) or, for SSH keys, straight from dispatch after the
//! caller was found to be root or an `ssh.keys_users` account.

use super::admin::{done, get, Gate};
use crate::audit;
use crate::authority::Authority;
use crate::caller::Caller;
use crate::error::PidError;
use crate::handlers::error_response;
use crate::machines::{self, luks, ssh};
use crate::policy::Action;
use crate::store::machines::{MachineRecord, MACHINE_SCHEMA};
use crate::State;
use protocol::{
    AdminResponse, AuditEntry, LuksResponse, MachineApp, MachineAttach, MachineTokenInfo, Response,
    Secret,
};

/// The host a request names, or this one.
fn host_or_here(state: &State, host: Option<String>) -> Result<String, PidError> {
    let host = host.unwrap_or_else(|| state.hostname.clone());
    machines::check_host(&host).map_err(PidError::InvalidArgument)?;
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
    let options =
        machines::validate(spec.app, &v.rec, &spec.options).map_err(PidError::InvalidArgument)?;
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
pub(super) fn luks_responses(
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
        let response = luks::response(&secret, password.expose().as_bytes())
            .map_err(PidError::InvalidArgument)?;
        out.push(LuksResponse {
            serial: a.serial,
            slot: a.rec.options.slot,
            device: a.rec.options.device,
            concatenate: a.rec.options.concatenate,
            response: Secret::new(response.as_str()),
        });
    }
    entry.message = format!(
        "LUKS responses for {} assignment(s) on {host} handed out",
        out.len()
    );
    Ok(AdminResponse::LuksResponses(out))
}

/// The authorized keys of `login`: keys attached to this host for it, or with `service_id` the
/// keys attached for that service on any host. Every request is audited (sshd asks on every
/// connection attempt: the trail shows who tried which account).
pub fn ssh_keys(
    state: &State,
    caller: &Caller,
    login: String,
    service_id: Option<String>,
) -> Response {
    let now = state.clock.now();
    let mut entry = audit::entry(caller, "ssh keys", now);
    entry.user = Some(login.clone());
    let result = authorized_keys(state, &login, service_id.as_deref(), now);
    match &result {
        Ok(keys) => {
            entry.success = true;
            entry.message = format!("{} key(s) for {login}", keys.len());
        }
        Err(e) => entry.message = e.public_message(),
    }
    audit::record(state, entry);
    match result {
        Ok(keys) => Response::SshKeys { keys },
        Err(e) => error_response(&e),
    }
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
            .map_err(|e| e.to_string())
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
