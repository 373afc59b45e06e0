//! Token pools (privacyIDEA's token realms): unassigned tokens set aside for the users of one
//! realm, who claim them by logging in with them where the `autoassignment` policy allows
//! (see `handlers::auth::autoassign`). Putting a token into a pool, taking it out and listing
//! a pool need the admin action `tokenrealms`; admin policies with a realm condition match the
//! pool's realm.
//!
//! Invariant: only an unassigned token is in a pool. Assigning a token takes it out; a claim
//! takes it out in the same swap that gives it its owner.

use super::enroll::enroll_new;
use super::gate::{busy, done, not_found, Gate, MAX_SERIAL_LEN};
use super::token::info;
use crate::error::PidError;
use crate::policy::Action;
use crate::store::{Owner, Swap};
use crate::State;
use protocol::admin::MAX_PAGE;
use protocol::{AdminResponse, AuditEntry, EnrollRequest, TokenType};

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
    may_manage(gate, realm)
}

/// Whether the caller may manage `realm`'s pool (for a realm that may since have left the
/// configuration: its tokens can still be taken out).
fn may_manage(gate: &Gate<'_>, realm: &str) -> Result<Owner, PidError> {
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
    if gate.authority.is_self_service() {
        return Err(PidError::PermissionDenied(
            "only administrators manage token pools".into(),
        ));
    }
    if let Some(realm) = &realm {
        pool_of(gate, realm, entry)?;
    }
    entry.serial = Some(serial.to_owned());
    if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
        return Err(not_found(serial));
    }
    for _ in 0..8 {
        let v = state
            .store
            .get_token(serial)?
            .ok_or_else(|| not_found(serial))?;
        let rec = &v.rec;
        entry.token_type = Some(rec.token_type.as_str().to_owned());
        if let Some(o) = &rec.owner {
            // Said only to whom may see the owner's tokens.
            gate.check(Action::TokenRealms, Some(o), Some(rec.token_type))?;
            return Err(PidError::TokenState(format!(
                "token {serial} is assigned to {}@{}; only unassigned tokens go into a pool \
                 (`pictl token unassign {serial}` first)",
                o.login, o.realm
            )));
        }
        // Taking a token out of a pool needs the right to manage that pool; a token in none
        // needs the action where no realm applies.
        match &rec.pool_realm {
            Some(old) => {
                may_manage(gate, old)?;
            }
            None => gate.check(Action::TokenRealms, None, Some(rec.token_type))?,
        }
        if rec.revoked {
            return Err(PidError::TokenState(format!(
                "token {serial} is revoked; it can only be deleted"
            )));
        }
        if realm.is_some() {
            poolable(rec.token_type)?;
        }
        let mut new = rec.clone();
        new.pool_realm = realm.clone();
        let message = match (&realm, &rec.pool_realm) {
            (Some(r), _) => format!("token {serial} is in the pool of realm {r}"),
            (None, Some(old)) => format!("token {serial} taken out of the pool of realm {old}"),
            (None, None) => format!("token {serial} was in no pool"),
        };
        if state.store.swap_tokens(&[(&v, Some(&new))])? == Swap::Done {
            // The pool's realm is what the entry is about.
            entry.realm = realm.clone().or_else(|| rec.pool_realm.clone());
            entry.message = message.clone();
            return Ok(done(message));
        }
    }
    Err(busy())
}

/// Only tokens a user can claim by typing a code go into a pool.
pub(super) fn poolable(token_type: TokenType) -> Result<(), PidError> {
    if crate::tokens::shows_code_sequence(token_type) {
        return Ok(());
    }
    Err(PidError::InvalidArgument(format!(
        "only hotp and totp tokens can be claimed from a pool, not {}",
        token_type.as_str()
    )))
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
