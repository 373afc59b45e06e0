//! `pictl audit show`: the audit trail, newest first, a page at a time.

use super::gate::Gate;
use crate::error::PidError;
use crate::policy::Action;
use crate::State;
use protocol::admin::MAX_PAGE;
use protocol::{AdminResponse, UserRef};

/// A page of entries before `before` (all users', or about `user`).
pub(super) fn show(
    state: &State,
    gate: &Gate<'_>,
    user: Option<UserRef>,
    before: Option<u64>,
    limit: u32,
) -> Result<AdminResponse, PidError> {
    gate.check(Action::AuditLog, None, None)?;
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let live = state.live();
    let filter = user.map(|u| {
        let (login, realm) = live.realms.split(&u.login, u.realm.as_deref());
        (login.to_owned(), realm.to_owned())
    });
    let (entries, next) = state.store.audit_page(before, limit, |e| match &filter {
        None => true,
        Some((login, realm)) => {
            e.user.as_deref() == Some(login.as_str())
                && e.realm.as_deref().is_none_or(|r| r == realm)
        }
    })?;
    Ok(AdminResponse::Audit { entries, next })
}
