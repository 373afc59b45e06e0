//! Tokens as administrators see and change them: list, show, delete, enable, disable, revoke,
//! reset, resynchronise, assign, unassign and set. Every change goes through `gate::modify`:
//! checked against the caller's authority, refused for a revoked token, compare-and-swap.

use super::gate::{busy, done, existing_user, get, modify, Gate};
use crate::auth::pin_change::{due_after_admin_pin, due_after_own_pin};
use crate::error::PidError;
use crate::handlers::validate_text;
use crate::policy::{Action, Context};
use crate::store::{Owner, Rollout, Swap, TokenRecord};
use crate::tokens::{algorithm, CounterState};
use crate::State;
use protocol::admin::MAX_PAGE;
use protocol::{AdminResponse, AuditEntry, Secret, TokenSettings, TokenType, UpcomingOtp, UserRef};

const MAX_PIN_LEN: usize = 256;

/// `token list`: the caller's tokens, or for an administrator every token or a user's.
pub(super) async fn list(
    state: &State,
    gate: &Gate<'_>,
    user: Option<UserRef>,
    after: Option<String>,
    limit: u32,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let owner = gate
        .listed_owner(state, user.as_ref(), Action::TokenList, entry)
        .await?;
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let (recs, next) = state
        .store
        .list_tokens(owner.as_ref(), after.as_deref(), limit)?;
    Ok(AdminResponse::Tokens {
        tokens: recs.iter().map(|r| info(state, r)).collect(),
        next,
    })
}

pub(super) fn show(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let v = get(state, gate, Action::TokenList, serial, entry)?;
    Ok(AdminResponse::Token(Box::new(info(state, &v.rec))))
}

/// The token and its machine assignments.
pub(super) fn delete(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let v = get(state, gate, Action::Delete, serial, entry)?;
    if let Some(own) = gate.authority.own() {
        keeps_a_token(state, gate, &own.owner, serial)?;
    }
    gate.use_proof(&format!("delete your token {serial}"))?;
    match state.store.swap_tokens(&[(&v, None)])? {
        Swap::Done => {
            let attached = state.store.detach_all(serial)?;
            let message = match attached {
                0 => format!("token {serial} deleted"),
                n => format!("token {serial} deleted with its {n} machine assignment(s)"),
            };
            entry.message = message.clone();
            Ok(done(message))
        }
        Swap::Conflict => Err(busy()),
    }
}

/// Under a `keep_one_token` policy a user may not delete their last token: after deleting
/// `serial` they must still have one that logs in (a recovery code and a token that waits for
/// verification do not count).
fn keeps_a_token(
    state: &State,
    gate: &Gate<'_>,
    owner: &Owner,
    serial: &str,
) -> Result<(), PidError> {
    let ctx = Context::of_owner(Some(owner), gate.now);
    let Some(policy) = gate.live.policies.flag(Action::KeepOneToken, &ctx) else {
        return Ok(());
    };
    let left = crate::auth::login_tokens(state, owner)?
        .into_iter()
        .filter(|v| {
            v.rec.serial != serial
                && v.rec.rollout == Rollout::Enrolled
                && v.rec.token_type != TokenType::Registration
        })
        .count();
    if left == 0 {
        return Err(PidError::PermissionDenied(format!(
            "token {serial} is your last token, and policy {policy:?} (keep_one_token) says you \
             keep one: enroll and verify another first (`pictl enroll totp`), then delete this one"
        )));
    }
    Ok(())
}

/// `token enable` (`active`) or `token disable`: whether the token may be used to log in.
pub(super) fn set_active(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    active: bool,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let (action, now) = if active {
        (Action::Enable, "enabled")
    } else {
        (Action::Disable, "disabled")
    };
    modify(state, gate, action, serial, entry, |r| {
        if active && r.rollout == Rollout::Verify {
            return Err(PidError::TokenState(format!(
                "token {} waits for two consecutive codes; `pictl token verify {} CODE \
                 NEXT-CODE` activates it",
                r.serial, r.serial
            )));
        }
        r.active = active;
        Ok(format!("token {} {now}", r.serial))
    })
}

/// Disabled and locked for good: a revoked token can only be shown or deleted.
pub(super) fn revoke(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    modify(state, gate, Action::Revoke, serial, entry, |r| {
        r.revoked = true;
        r.locked = true;
        r.active = false;
        Ok(format!(
            "token {} revoked; it can never be used again, only deleted",
            r.serial
        ))
    })
}

/// Clear the fail counters of every source, and the locks they caused.
pub(super) fn reset(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    // The caller may reset it (and it exists) before the proof is spent on it.
    get(state, gate, Action::Reset, serial, entry)?;
    gate.use_proof(&format!("reset your token {serial}"))?;
    modify(state, gate, Action::Reset, serial, entry, |r| {
        r.clear_all_sources();
        Ok(format!("fail counter of token {} reset", r.serial))
    })
}

/// Find two consecutive OTPs and set the counter or clock drift from them.
pub(super) fn resync(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    otp1: &Secret,
    otp2: &Secret,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let v = get(state, gate, Action::Resync, serial, entry)?;
    if !algorithm(v.rec.token_type).can_resync() {
        return Err(PidError::InvalidArgument(format!(
            "a {} token has no counter or clock drift to resynchronise",
            v.rec.token_type.as_str()
        )));
    }
    let key = state.cipher.open(&v.rec.serial, "otpkey", &v.rec.otpkey)?;
    let now = state.clock.now();
    let found = algorithm(v.rec.token_type)
        .resync(&v.rec, &key, otp1.expose(), otp2.expose(), now)
        .ok_or_else(|| {
            PidError::InvalidArgument(format!(
                "the two OTPs are not consecutive values of token {serial} within the \
                 sync window; take two fresh consecutive codes and try again"
            ))
        })?;
    modify(state, gate, Action::Resync, serial, entry, |r| {
        let CounterState { count, time_shift } = found;
        r.count = count;
        r.time_shift = time_shift;
        Ok(format!("token {} resynchronised", r.serial))
    })
}

/// The next `count` codes of an HOTP or TOTP token, as it will accept them, without using any
/// (`pictl token otps`; only where an admin policy allows `getmultiotp`). The audit trail says
/// who saw how many codes of which token, never a code.
pub(super) fn otps(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    count: u32,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    if count == 0 || count > protocol::admin::MAX_UPCOMING_OTPS {
        return Err(PidError::InvalidArgument(format!(
            "--count {count}: from 1 to {} codes",
            protocol::admin::MAX_UPCOMING_OTPS
        )));
    }
    let v = get(state, gate, Action::GetMultiOtp, serial, entry)?;
    let rec = &v.rec;
    let Some(counters) = algorithm(rec.token_type).upcoming(rec, gate.now, u64::from(count)) else {
        return Err(PidError::InvalidArgument(format!(
            "a {} token has no sequence of codes to show; only HOTP and TOTP tokens have",
            rec.token_type.as_str()
        )));
    };
    let key = state.cipher.open(&rec.serial, "otpkey", &rec.otpkey)?;
    let totp = rec.token_type == TokenType::Totp;
    let otps = counters
        .map(|counter| UpcomingOtp {
            counter,
            valid_from: totp.then(|| {
                (counter as i64)
                    .saturating_mul(i64::from(rec.period))
                    .saturating_sub(rec.time_shift)
            }),
            otp: Secret::new(crate::tokens::hotp::hotp(
                &key, counter, rec.digits, rec.hash,
            )),
        })
        .collect();
    entry.message = format!("{count} upcoming codes shown");
    Ok(AdminResponse::Otps {
        serial: rec.serial.clone(),
        otps,
    })
}

/// Give an unassigned token to a user.
pub(super) async fn assign(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    user: &UserRef,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let user = existing_user(state, user, entry).await?;
    // Both ends: the admin must be allowed to assign to this user, and to touch the token.
    gate.check(Action::Assign, Some(&user.owner), None)?;
    state.bind_tokens_to(&user)?;
    let owner = user.owner;
    modify(state, gate, Action::Assign, serial, entry, move |r| {
        if let Some(o) = &r.owner {
            return Err(PidError::TokenState(format!(
                "token {} is already assigned to {}@{}; unassign it first",
                r.serial, o.login, o.realm
            )));
        }
        r.owner = Some(owner.clone());
        // An assigned token is in no pool.
        r.pool_realm = None;
        Ok(format!("token {} assigned", r.serial))
    })
}

pub(super) fn unassign(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    modify(state, gate, Action::Unassign, serial, entry, |r| {
        if r.owner.is_none() {
            return Err(PidError::TokenState(format!(
                "token {} is not assigned",
                r.serial
            )));
        }
        // privacyIDEA unassign: the PIN belonged to the old owner; the counter stays.
        r.owner = None;
        r.pin_hash = None;
        r.clear_all_sources();
        Ok(format!("token {} unassigned", r.serial))
    })
}

/// A token as administrators see it, with what only its type has (an SSH key's fingerprint).
pub(super) fn info(state: &State, rec: &TokenRecord) -> protocol::TokenInfo {
    let mut info = rec.info(state.clock.now());
    let alg = algorithm(rec.token_type);
    if alg.has_details() {
        let of_type = match state.cipher.open(&rec.serial, "otpkey", &rec.otpkey) {
            Ok(material) => alg.details(&material),
            Err(_) => vec![(
                "integrity".into(),
                "FAILED: the stored key does not belong to this serial".into(),
            )],
        };
        // The type's own details first, then the fail counters per source.
        info.details = of_type.into_iter().chain(info.details).collect();
    }
    if let Some(due) = rec.next_pin_change {
        info.details.push(("PIN change due".into(), utc(due)));
    }
    info
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || format!("{t} (unix seconds)"),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

pub(crate) fn validate_pin(pin: &Secret) -> Result<(), PidError> {
    if pin.len() > MAX_PIN_LEN || pin.expose().chars().any(|c| c.is_control()) {
        return Err(PidError::InvalidArgument(format!(
            "the PIN must be at most {MAX_PIN_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

pub(super) async fn set(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    s: TokenSettings,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let other_fields = TokenSettings {
        pin: None,
        ..s.clone()
    } != TokenSettings::default();
    if other_fields && gate.authority.is_self_service() {
        return Err(PidError::PermissionDenied(
            "users may change only the PIN of their tokens (pictl token set --pin)".into(),
        ));
    }
    // The PIN needs `setpin`, everything else `set`; the PIN rules of the owner apply.
    let action = if other_fields {
        Action::Set
    } else {
        Action::SetPin
    };
    let current = get(state, gate, action, serial, entry)?;
    if let Some(pin) = &s.pin {
        gate.check(
            Action::SetPin,
            current.rec.owner.as_ref(),
            Some(current.rec.token_type),
        )?;
        let ctx = Context::of_owner(current.rec.owner.as_ref(), gate.now);
        gate.live
            .policies
            .pin_rules(&ctx)
            .check(Some(pin.expose()))?;
    }
    if let Some(d) = &s.description {
        validate_text("the description", d)?;
    }
    if let Some(m) = s.maxfail {
        if !(1..=1000).contains(&m) {
            return Err(PidError::InvalidArgument(
                "--maxfail must be between 1 and 1000".into(),
            ));
        }
    }
    if let Some(w) = s.count_window {
        if !(1..=1000).contains(&w) {
            return Err(PidError::InvalidArgument(
                "--hotp-window must be between 1 and 1000".into(),
            ));
        }
    }
    if let Some(w) = s.time_window {
        if w > 3600 {
            return Err(PidError::InvalidArgument(
                "--totp-window must be at most 3600 s".into(),
            ));
        }
    }
    if let (Some(Some(a)), Some(Some(b))) = (s.validity_start, s.validity_end) {
        if a > b {
            return Err(PidError::InvalidArgument(
                "the validity period ends before it starts".into(),
            ));
        }
    }
    // Hash a new PIN before touching the record (argon2 is slow and off the executor).
    let new_pin = match &s.pin {
        Some(pin) => {
            validate_pin(pin)?;
            Some(if pin.is_empty() {
                None
            } else {
                Some(state.hash_pin(pin.clone()).await?)
            })
        }
        None => None,
    };
    let policies = &gate.live.policies;
    let self_service = gate.authority.is_self_service();
    modify(state, gate, action, serial, entry, |r| {
        let mut changed = Vec::new();
        if let Some(p) = &new_pin {
            r.pin_hash = p.clone();
            // A PIN the owner chose lasts `change_pin_every`; one an administrator chose must
            // be changed as `change_pin_on_first_use` / `change_pin_every` say.
            let owner = r.owner.as_ref();
            r.next_pin_change = match (p, self_service) {
                (None, _) => None,
                (Some(_), true) => due_after_own_pin(policies, owner, gate.now),
                (Some(_), false) => due_after_admin_pin(policies, owner, gate.now),
            };
            changed.push("pin");
        }
        if let Some(m) = s.maxfail {
            r.maxfail = m;
            changed.push("maxfail");
        }
        if let Some(d) = &s.description {
            r.description = d.clone();
            changed.push("description");
        }
        if let Some(n) = s.count_auth_max {
            r.count_auth_max = n;
            changed.push("count_auth_max");
        }
        if let Some(n) = s.count_auth_success_max {
            r.count_auth_success_max = n;
            changed.push("count_auth_success_max");
        }
        if let Some(v) = s.validity_start {
            r.validity_start = v;
            changed.push("validity_start");
        }
        if let Some(v) = s.validity_end {
            r.validity_end = v;
            changed.push("validity_end");
        }
        if let Some(w) = s.count_window {
            r.count_window = w;
            changed.push("hotp_window");
        }
        if let Some(w) = s.time_window {
            r.time_window = w;
            changed.push("totp_window");
        }
        if let (Some(a), Some(b)) = (r.validity_start, r.validity_end) {
            if a > b {
                return Err(PidError::InvalidArgument(
                    "the validity period would end before it starts".into(),
                ));
            }
        }
        if changed.is_empty() {
            return Err(PidError::InvalidArgument(
                "nothing to set; see `pictl token set --help`".into(),
            ));
        }
        Ok(format!(
            "token {} updated: {}",
            r.serial,
            changed.join(", ")
        ))
    })
}
