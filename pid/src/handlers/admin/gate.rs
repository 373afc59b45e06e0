//! What every administration request is checked against: `Gate`, the caller's authority with
//! the configuration of this request, and the users and tokens a request names, read only once
//! the caller may act on them (`get`), changed by compare-and-swap (`modify`).

use crate::auth::session::Proof;
use crate::authority::Authority;
use crate::error::PidError;
use crate::policy::Action;
use crate::store::{Owner, Swap, TokenRecord, Versioned};
use crate::users::{self, ResolvedUser};
use crate::State;
use protocol::{AdminResponse, AuditEntry, TokenType, UserRef};
use std::sync::{Mutex, PoisonError};

pub(super) const MAX_SERIAL_LEN: usize = 64;

/// The caller's authority with the configuration snapshot of this request.
pub(super) struct Gate<'a> {
    pub(super) authority: &'a Authority,
    pub(super) live: &'a crate::Live,
    /// When the request arrived (Unix seconds).
    pub(super) now: i64,
    /// The account the request is charged to (`Caller::account`): the source of wrong codes.
    pub(super) caller_account: u32,
    /// The login the connection made just before this request, if any (`Proof`); taken by the
    /// change it allows.
    pub(super) proof: Mutex<Option<Proof>>,
}

impl Gate<'_> {
    /// Whether the caller may do `action` to a token of `target` (of `token_type`).
    pub(super) fn check(
        &self,
        action: Action,
        target: Option<&Owner>,
        token_type: Option<TokenType>,
    ) -> Result<(), PidError> {
        self.authority
            .check(self.live, action, target, token_type, self.now)
    }

    /// A user's change to their own tokens (`what`: "delete your token X") goes ahead only
    /// right after a login with one of their codes on this connection: the proof is used up
    /// here. Administrators need none.
    pub(super) fn use_proof(&self, what: &str) -> Result<(), PidError> {
        let Some(own) = self.authority.own() else {
            return Ok(());
        };
        let proof = self
            .proof
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if proof.is_some_and(|p| p.proves(&own.owner)) {
            return Ok(());
        }
        Err(PidError::ProofRequired(format!(
            "to {what}, first log in on the same connection with a code of one of your tokens \
             or your recovery code (pictl asks for it)"
        )))
    }

    /// The owner whose records a listing shows (`None`: everyone's, for administrators),
    /// once the caller may do `action` to them.
    pub(super) async fn listed_owner(
        &self,
        state: &State,
        user: Option<&UserRef>,
        action: Action,
        entry: &mut AuditEntry,
    ) -> Result<Option<Owner>, PidError> {
        let owner = self.target(state, user, entry).await?.map(|u| u.owner);
        self.check(action, owner.as_ref(), None)?;
        Ok(owner)
    }

    /// The user a request names: for self-service always the caller's own account (naming
    /// anyone else is refused).
    pub(super) async fn target(
        &self,
        state: &State,
        user: Option<&UserRef>,
        entry: &mut AuditEntry,
    ) -> Result<Option<ResolvedUser>, PidError> {
        match (self.authority.own(), user) {
            (Some(own), None) => Ok(Some(own.clone())),
            (Some(own), Some(u)) => {
                let user = existing_user(state, u, entry).await?;
                if user.owner != own.owner {
                    return Err(PidError::PermissionDenied(
                        "users may only manage their own tokens".into(),
                    ));
                }
                Ok(Some(user))
            }
            (None, Some(u)) => Ok(Some(existing_user(state, u, entry).await?)),
            (None, None) => Ok(None),
        }
    }
}

/// An existing user; `NotFound` with a hint otherwise.
pub(super) async fn existing_user(
    state: &State,
    user: &UserRef,
    entry: &mut AuditEntry,
) -> Result<ResolvedUser, PidError> {
    let live = state.live();
    let (login, realm) = live.realms.split(&user.login, user.realm.as_deref());
    entry.user = Some(login.to_owned());
    entry.realm = Some(realm.to_owned());
    users::validate_login(login)?;
    match state.lookup_user(login, realm).await? {
        Some(u) => Ok(u),
        None if !live.realms.exists(realm) => Err(PidError::NotFound(format!(
            "there is no realm {realm:?}; realms are declared in pid.toml"
        ))),
        None => Err(PidError::NotFound(format!(
            "user {login}@{realm} was not found by the realm's resolvers (for host accounts: \
             getent passwd {login})"
        ))),
    }
}

pub(super) fn done(message: String) -> AdminResponse {
    AdminResponse::Done { message }
}

pub(super) fn busy() -> PidError {
    PidError::Internal("the token changed while it was being modified; try again".into())
}

pub(super) fn not_found(serial: &str) -> PidError {
    PidError::NotFound(format!(
        "no token with serial {serial:?}; `pictl token list` shows them"
    ))
}

/// Read a token the caller may do `action` to.
pub(super) fn get(
    state: &State,
    gate: &Gate<'_>,
    action: Action,
    serial: &str,
    entry: &mut AuditEntry,
) -> Result<Versioned, PidError> {
    entry.serial = Some(serial.to_owned());
    if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
        return Err(not_found(serial));
    }
    let v = state
        .store
        .get_token(serial)?
        .ok_or_else(|| not_found(serial))?;
    entry.token_type = Some(v.rec.token_type.as_str().to_owned());
    if let Some(o) = &v.rec.owner {
        entry.user = Some(o.login.clone());
        entry.realm = Some(o.realm.clone());
    }
    gate.check(action, v.rec.owner.as_ref(), Some(v.rec.token_type))?;
    Ok(v)
}

/// Read, change, compare-and-swap. A revoked token refuses every change (privacyIDEA's
/// `check_token_locked`): it can only be shown or deleted.
pub(super) fn modify(
    state: &State,
    gate: &Gate<'_>,
    action: Action,
    serial: &str,
    entry: &mut AuditEntry,
    change: impl Fn(&mut TokenRecord) -> Result<String, PidError>,
) -> Result<AdminResponse, PidError> {
    for _ in 0..8 {
        let v = get(state, gate, action, serial, entry)?;
        if v.rec.revoked {
            return Err(PidError::TokenState(format!(
                "token {serial} is revoked; it can only be deleted"
            )));
        }
        let mut rec = v.rec.clone();
        let message = change(&mut rec)?;
        if let Some(o) = &rec.owner {
            entry.user = Some(o.login.clone());
            entry.realm = Some(o.realm.clone());
        }
        if state.store.swap_tokens(&[(&v, Some(&rec))])? == Swap::Done {
            entry.message = message.clone();
            return Ok(done(message));
        }
    }
    Err(busy())
}
