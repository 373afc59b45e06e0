//! `PinChange`: the new PIN of a login that was accepted with a PIN change due, sent by the
//! module from `pam_sm_chauthtok` with the login's ticket (`auth::pin_change`).
//!
//! The same rules as `pictl token set --pin` apply (the owner's enrollment PIN rules, argon2id,
//! compare-and-swap), and the answer waits until the PIN is on disk. A PIN the rules refuse
//! leaves the ticket for another try (`pin_change::ATTEMPTS` in all), so the module can ask
//! again within the same `chauthtok`; a PIN that is set spends it. The audit trail records
//! every attempt, never a PIN.

use crate::audit;
use crate::auth::pin_change::{due_after_own_pin, Grant};
use crate::caller::Caller;
use crate::error::{chain, PidError};
use crate::handlers::admin::validate_pin;
use crate::handlers::error_response;
use crate::store::Swap;
use crate::State;
use protocol::{Response, Secret};

/// How often the PIN is written again when the token changed under it (a login on another
/// connection advanced its counter) before giving up.
const MAX_RETRIES: usize = 8;

pub async fn change(state: &State, caller: &Caller, ticket: Secret, pin: Secret) -> Response {
    let now = state.clock.now();
    let mut entry = audit::entry(caller, "pin change", now);
    let Some(grant) = state.pin_changes.grant(&ticket, caller.uid) else {
        entry.message = "refused: the ticket is unknown, expired, spent or another uid's".into();
        audit::record(state, entry);
        return error_response(&PidError::SessionExpired(
            "the PIN change is unknown or expired; log in again to change the PIN".into(),
        ));
    };
    entry.user = Some(grant.owner.login.clone());
    entry.realm = Some(grant.owner.realm.clone());
    entry.serial = Some(grant.serial.clone());
    if let Err(e) = acceptable(state, &grant, &pin, now) {
        let left = state.pin_changes.charge(&ticket);
        entry.message = format!("new PIN refused: {}", chain(&e));
        audit::record(state, entry);
        let again = match left {
            0 => " No tries are left; log in again to change the PIN.".to_owned(),
            n => format!(" {n} more tries."),
        };
        return error_response(&PidError::InvalidArgument(format!("{e}.{again}")));
    }
    match set_pin(state, &grant, pin, now).await {
        Ok(()) => {}
        Err(e) => {
            entry.message = format!("PIN not changed: {}", chain(&e));
            audit::record(state, entry);
            return error_response(&e);
        }
    }
    state.pin_changes.spend(&ticket);
    entry.success = true;
    entry.message = "PIN changed through PAM".into();
    audit::record(state, entry);
    if let Err(e) = state.store.durable().await {
        tracing::error!(error = %chain(&e), "could not make the PIN change durable");
        return error_response(&PidError::Internal(
            "the new PIN could not be written to disk".into(),
        ));
    }
    Response::PinChanged {
        message: "The PIN has been changed.".into(),
    }
}

/// The owner's enrollment PIN rules, as for `pictl token set --pin`. An empty PIN is refused:
/// a change that removes the PIN would turn a due change into no PIN at all.
fn acceptable(state: &State, grant: &Grant, pin: &Secret, now: i64) -> Result<(), PidError> {
    validate_pin(pin)?;
    if pin.is_empty() {
        return Err(PidError::InvalidArgument("the new PIN is empty".into()));
    }
    let ctx = crate::policy::Context::of_owner(Some(&grant.owner), now);
    state
        .live()
        .policies
        .pin_rules(&ctx)
        .check(Some(pin.expose()))?;
    Ok(())
}

/// Hash the PIN and write it, with when it must change next, by compare-and-swap. The token
/// must still be the owner's and usable for a PIN (not revoked).
async fn set_pin(state: &State, grant: &Grant, pin: Secret, now: i64) -> Result<(), PidError> {
    let hash = state.hash_pin(pin).await?;
    let next = due_after_own_pin(&state.live().policies, Some(&grant.owner), now);
    for _ in 0..MAX_RETRIES {
        let current = state
            .store
            .get_token(&grant.serial)?
            .filter(|v| v.rec.owner.as_ref() == Some(&grant.owner))
            .ok_or_else(|| {
                PidError::TokenState(format!(
                    "token {} is no longer assigned to this user",
                    grant.serial
                ))
            })?;
        if current.rec.revoked {
            return Err(PidError::TokenState(format!(
                "token {} is revoked",
                grant.serial
            )));
        }
        let mut new = current.rec.clone();
        new.pin_hash = Some(hash.clone());
        new.next_pin_change = next;
        if let Swap::Done = state.store.swap_tokens(&[(&current, Some(&new))])? {
            return Ok(());
        }
    }
    Err(PidError::Internal(
        "the token kept changing while its PIN was set".into(),
    ))
}
