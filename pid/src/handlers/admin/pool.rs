//! Token pools (privacyIDEA's token realms): unassigned tokens set aside for the users of one
//! realm, who claim them by logging in with them where the `autoassignment` policy allows
//! (see `handlers::auth::autoassign`). Putting a token into a pool, taking it out and listing
//! a pool need the admin action `tokenrealms`; admin policies with a realm condition match the
//! pool's realm.
//!
//! Invariant: only an unassigned token is in a pool. Assigning a token takes it out; a claim
//! takes it out in the same swap that gives it its owner.

use super::enroll::enroll_new;
use super::gate::{modify, Gate};
use super::token::info;
use crate::error::PidError;
use crate::policy::Action;
use crate::store::Owner;
use crate::State;
use protocol::admin::MAX_PAGE;
use protocol::{AdminResponse, AuditEntry, EnrollRequest};

/// The pool of `realm`, once the caller may manage it: administrators only, a realm that
/// exists and whose users this host checks itself (an upstream realm's logins go to its
/// server, so its users could never claim a token here).
pub(super) fn pool_of(
    gate: &Gate<'_>,
    realm: &str,
    entry: &mut AuditEntry,
) -> Result<Owner, PidError> {
    entry.realm = Some(realm.to_owned());
    if gate.authority.is_self_service() {
        return Err(PidError::PermissionDenied(
            "only administrators manage token pools".into(),
        ));
    }
    if !gate.live.realms.exists(realm) {
        return Err(PidError::NotFound(format!(
            "there is no realm {realm:?}; realms are declared in pid.toml"
        )));
    }
    if gate.live.realms.upstream_of(realm).is_some() {
        return Err(PidError::InvalidArgument(format!(
            "realm {realm:?} is served by an upstream server, whose logins never reach a pool \
             here; pool its tokens on that server"
        )));
    }
    // No user: admin policies match on the realm alone.
    let pool = Owner {
        realm: realm.to_owned(),
        login: String::new(),
    };
    gate.check(Action::TokenRealms, Some(&pool), None)?;
    Ok(pool)
}

/// `token pool SERIAL REALM` / `--none`: put an unassigned token into a realm's pool or take
/// it out of any.
pub(super) fn set(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    realm: Option<String>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    if let Some(realm) = &realm {
        pool_of(gate, realm, entry)?;
    } else if gate.authority.is_self_service() {
        return Err(PidError::PermissionDenied(
            "only administrators manage token pools".into(),
        ));
    }
    let result = modify(state, gate, Action::TokenRealms, serial, entry, |r| {
        if let Some(o) = &r.owner {
            return Err(PidError::TokenState(format!(
                "token {} is assigned to {}@{}; only unassigned tokens go into a pool \
                 (`pictl token unassign {}` first)",
                r.serial, o.login, o.realm, r.serial
            )));
        }
        let before = r.pool_realm.take();
        r.pool_realm = realm.clone();
        Ok(match (&realm, before) {
            (Some(new), _) => format!("token {} is in the pool of realm {new}", r.serial),
            (None, Some(old)) => format!("token {} taken out of the pool of realm {old}", r.serial),
            (None, None) => format!("token {} was in no pool", r.serial),
        })
    })?;
    // The pool's realm, not an owner's, is what the entry is about.
    entry.realm = realm.or(entry.realm.take());
    Ok(result)
}

/// `token list --pool REALM`: the pool's unassigned tokens, a page at a time.
pub(super) fn list(
    state: &State,
    gate: &Gate<'_>,
    realm: &str,
    after: Option<String>,
    limit: u32,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    pool_of(gate, realm, entry)?;
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let (tokens, next) = state.store.pool_tokens(realm, after.as_deref(), limit)?;
    Ok(AdminResponse::Tokens {
        tokens: tokens.iter().map(|v| info(state, &v.rec)).collect(),
        next,
    })
}

/// `token enroll --pool REALM`: a token for nobody, in the realm's pool from the start (one
/// write: it is never an unassigned token outside the pool).
pub(super) async fn enroll(
    state: &State,
    gate: &Gate<'_>,
    realm: String,
    spec: EnrollRequest,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    if spec.user.is_some() {
        return Err(PidError::InvalidArgument(
            "a pool token belongs to no user: give --pool or --user, not both".into(),
        ));
    }
    pool_of(gate, &realm, entry)?;
    enroll_new(state, gate, spec, Some(realm), entry).await
}
