//! `pictl policy check`: which policies apply to a login, and what they decide.

use super::gate::Gate;
use crate::error::PidError;
use crate::handlers::validate_text;
use crate::policy::{Action, Context};
use crate::users;
use crate::State;
use protocol::{AdminResponse, AuditEntry, PolicyDecision, PolicyReport, UserRef};

/// `pictl policy check`: the policies a login of `user` through `service` from `rhost` meets.
pub(super) async fn check(
    state: &State,
    gate: &Gate<'_>,
    user: UserRef,
    service: String,
    rhost: Option<String>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    gate.check(Action::PolicyCheck, None, None)?;
    validate_text("the service", &service)?;
    if let Some(r) = &rhost {
        validate_text("the remote host", r)?;
    }
    let live = state.live();
    let (login, realm) = live.realms.split(&user.login, user.realm.as_deref());
    users::validate_login(login)?;
    entry.user = Some(login.to_owned());
    entry.realm = Some(realm.to_owned());
    entry.service = Some(service.clone());
    entry.rhost = rhost.clone();
    let resolved = state.lookup_user(login, realm).await?;
    let ctx = Context {
        realm,
        resolver: resolved.as_ref().map(|u| u.resolver.as_str()),
        login,
        service: &service,
        rhost: rhost.as_deref(),
        now: Some(state.clock.now()),
        admin_groups: &[],
    };
    let (matching, decisions) = live.policies.report(&ctx);
    Ok(AdminResponse::PolicyCheck(Box::new(PolicyReport {
        login: login.to_owned(),
        realm: realm.to_owned(),
        resolver: resolved.map(|u| u.resolver),
        matching,
        effective: decisions
            .into_iter()
            .map(|(action, value, policy)| PolicyDecision {
                action: action.name().to_owned(),
                value,
                policy,
            })
            .collect(),
    })))
}
