//! `pictl offline status` (the offline values this host holds, never a value or a refill token)
//! and the upstream servers' state for `pictl status`.

use super::gate::Gate;
use crate::error::PidError;
use crate::policy::Action;
use crate::State;
use protocol::{AdminResponse, AuditEntry, OfflineInfo, UpstreamInfo, UserRef};

/// The offline records of `user` (administrators: of everyone when `None`).
pub(super) async fn offline_status(
    state: &State,
    gate: &Gate<'_>,
    user: Option<UserRef>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let owner = gate
        .listed_owner(state, user.as_ref(), Action::TokenList, entry)
        .await?;
    let records = state.store.offline_records(owner.as_ref())?;
    Ok(AdminResponse::Offline(
        records
            .into_iter()
            .map(|e| OfflineInfo {
                login: e.owner.login,
                realm: e.owner.realm,
                serial: e.serial,
                upstream: e.rec.upstream,
                remaining: e.rec.count,
                first_counter: e.rec.first_counter,
                last_counter: e.rec.last_counter,
                fails: e.rec.fails,
                max_fails: e.rec.max_fails,
                received_at: e.rec.received_at,
                refilled_at: e.rec.refilled_at,
                refill_due: e.rec.refill_due,
            })
            .collect(),
    ))
}

/// Each configured server, as its last exchanges left it. Administrators only.
pub(super) fn status(gate: &Gate<'_>) -> Result<AdminResponse, PidError> {
    if gate.authority.own().is_some() {
        return Err(PidError::PermissionDenied(
            "the upstream servers' state is for administrators (root or the admin group)".into(),
        ));
    }
    gate.check(Action::TokenList, None, None)?;
    let live = gate.live;
    Ok(AdminResponse::Upstreams(
        live.upstreams
            .iter()
            .map(|client| {
                let health = client.health();
                UpstreamInfo {
                    name: client.name().to_owned(),
                    urls: client.urls().to_vec(),
                    realms: live
                        .config
                        .realms
                        .iter()
                        .filter(|(_, r)| r.upstream.as_deref() == Some(client.name()))
                        .map(|(name, _)| name.clone())
                        .collect(),
                    tls: client.tls(),
                    reachable: health.reachable,
                    version: health.version,
                    service_account: client.has_service_account(),
                    service_account_ok: health.service_account_ok,
                    last_error: health.last_error,
                }
            })
            .collect(),
    ))
}
