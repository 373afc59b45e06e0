//! `pictl import`: tokens from another system's files (pam_oath's usersfile,
//! google-authenticator's files), in batches.
//!
//! Each token stands alone: a refused one (unknown user, short key, a policy) does not stop the
//! others, and none is half-made, because a token is stored in one write after every check.
//! A token the user already has (same type and key, or one of the same TANs) is reported as
//! present and left alone, so an import can be run again after fixing the refused lines without
//! creating duplicates. Replay state comes along: an HOTP token continues at the old system's
//! counter, and a TOTP token accepts no code of a time step the old system may have accepted.
//!
//! Into a pool (`TokenImportPool`), hotp and totp tokens are enrolled for nobody, in the
//! realm's pool; one with the same type and key as a token already in that pool is reported
//! present.

use super::enroll::{new_token, parse_key, store_new_token};
use super::gate::{existing_user, Gate};
use super::pool::pool_of;
use crate::audit;
use crate::error::PidError;
use crate::policy::Action;
use crate::store::{Owner, Versioned};
use crate::tokens::tan;
use crate::State;
use protocol::admin::MAX_IMPORT_BATCH;
use protocol::{
    AdminResponse, AuditEntry, EnrollRequest, ErrorCode, ImportOutcome, ImportRequest,
    ImportResult, ImportedToken, TokenType,
};
use zeroize::Zeroizing;

/// How far ahead of the daemon's clock an imported TOTP's last used step may lie: a clock that
/// ran ahead on the old system, not a step that would lock the token for hours.
const MAX_TOTP_STEPS_AHEAD: u64 = 20;

/// Import `batch` for the users it names, or with `pool` for nobody into that realm's pool.
pub(super) async fn import(
    state: &State,
    gate: &Gate<'_>,
    batch: ImportRequest,
    pool: Option<String>,
    entry: &mut audit::Draft,
) -> Result<AdminResponse, PidError> {
    if gate.authority.is_self_service() {
        return Err(PidError::PermissionDenied(
            "importing tokens needs root or the admin group".into(),
        ));
    }
    if batch.tokens.len() > MAX_IMPORT_BATCH {
        return Err(PidError::InvalidArgument(format!(
            "{} tokens in one import request; send at most {MAX_IMPORT_BATCH}",
            batch.tokens.len()
        )));
    }
    let mut pool = match pool {
        Some(realm) => {
            pool_of(gate, &realm, entry)?;
            Some(PoolKeys::read(state, realm)?)
        }
        None => None,
    };
    state.store.bulk_writes();
    let mut results = Vec::with_capacity(batch.tokens.len());
    let (mut enrolled, mut present, mut refused) = (0usize, 0usize, 0usize);
    for token in batch.tokens {
        let source = token.source.clone();
        let mut item = entry.clone();
        item.message = format!("from {source}");
        let outcome = match import_one(state, gate, token, pool.as_mut(), &mut item).await {
            Ok(outcome) => outcome,
            // The store or a user store failing is not this token's fault: stop the batch.
            // Tokens stored before stay stored; running the import again finds them present.
            Err(e) if aborts_batch(&e) => return Err(e),
            Err(e) => ImportOutcome::Refused {
                message: e.public_message(),
            },
        };
        match &outcome {
            ImportOutcome::Enrolled { serial } => {
                enrolled += 1;
                item.success = true;
                item.message = format!("token {serial} imported from {source}");
            }
            ImportOutcome::Present { serial } => {
                present += 1;
                item.success = true;
                item.message = format!("{source}: already present as {serial}, left alone");
            }
            ImportOutcome::Refused { message } => {
                refused += 1;
                item.success = false;
                item.message = format!("{source}: {message}");
            }
        }
        audit::record(state, item);
        results.push(ImportResult { source, outcome });
    }
    entry.message = format!("{enrolled} imported, {present} already present, {refused} refused");
    Ok(AdminResponse::Imported(results))
}

/// A failure of the daemon or a user store (what operators see as an internal error), not of
/// this token: the batch stops.
fn aborts_batch(e: &PidError) -> bool {
    e.code() == ErrorCode::Internal
}

async fn import_one(
    state: &State,
    gate: &Gate<'_>,
    token: ImportedToken,
    mut pool: Option<&mut PoolKeys>,
    entry: &mut AuditEntry,
) -> Result<ImportOutcome, PidError> {
    crate::handlers::validate_text("the source", &token.source)?;
    let kind = token.token_type;
    entry.token_type = Some(kind.as_str().to_owned());
    if !matches!(kind, TokenType::Hotp | TokenType::Totp | TokenType::Tan) {
        return Err(PidError::InvalidArgument(format!(
            "{} tokens cannot be imported: hotp, totp and tan can",
            kind.as_str()
        )));
    }
    let user = match &pool {
        None => Some(existing_user(state, &token.user, entry).await?),
        Some(_) if kind == TokenType::Tan => {
            return Err(PidError::InvalidArgument(
                "a TAN list cannot go into a pool: only hotp and totp tokens can be claimed".into(),
            ))
        }
        Some(p) => {
            entry.realm = Some(p.realm.clone());
            None
        }
    };
    gate.check(Action::Enroll, user.as_ref().map(|u| &u.owner), Some(kind))?;
    let present = match (&user, &pool) {
        (Some(user), _) => already_present(state, &user.owner, &token)?,
        (None, Some(pool)) => pool.present(&token),
        (None, None) => None,
    };
    if let Some(serial) = present {
        entry.serial = Some(serial.clone());
        return Ok(ImportOutcome::Present { serial });
    }
    let is_tan = kind == TokenType::Tan;
    if is_tan && token.tans.is_empty() {
        return Err(PidError::InvalidArgument("a TAN list without TANs".into()));
    }
    let spec = EnrollRequest {
        token_type: Some(kind),
        otpkey: (!is_tan).then(|| token.otpkey.clone()),
        digits: Some(token.digits),
        hash: Some(token.hash),
        period: token.period,
        pin: token.pin,
        description: Some(token.description),
        count: is_tan.then_some(token.tans.len() as u32),
        ..EnrollRequest::default()
    };
    let mut new = new_token(state, gate, kind, spec, user).await?;
    let serial = new.rec.serial.clone();
    entry.serial = Some(serial.clone());
    match kind {
        TokenType::Hotp => new.rec.count = token.counter,
        TokenType::Totp => new.rec.count = totp_last_step(token.counter, new.rec.period, gate.now)?,
        _ => {
            // The list enrollment made from a fresh key is replaced by the TANs brought over.
            if let Some(bad) = token
                .tans
                .iter()
                .find(|t| !well_formed_tan(t.expose(), new.rec.digits))
            {
                return Err(PidError::InvalidArgument(format!(
                    "a TAN of {} characters where the list has {}-digit TANs",
                    bad.len(),
                    new.rec.digits
                )));
            }
            let list = tan::sealed_list(token.tans.iter().map(|t| t.expose()))?;
            new.rec.otpkey = state.cipher.seal(&serial, "otpkey", &list)?;
        }
    }
    if let Some(pool) = pool.as_deref_mut() {
        new.rec.pool_realm = Some(pool.realm.clone());
    }
    store_new_token(state, &new)?;
    if let (Some(pool), Ok(key)) = (pool, parse_key(&token.otpkey, 1)) {
        pool.keys.push((serial.clone(), kind, key));
    }
    Ok(ImportOutcome::Enrolled { serial })
}

/// The keys of a realm's pool, opened once per import request, and those it adds: a token
/// already in the pool is found without opening every pool token's key for each imported one.
struct PoolKeys {
    realm: String,
    keys: Vec<(String, TokenType, Zeroizing<Vec<u8>>)>,
}

impl PoolKeys {
    fn read(state: &State, realm: String) -> Result<PoolKeys, PidError> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = state.store.pool_tokens(&realm, after.as_deref(), 1000)?;
            for Versioned { rec, .. } in page {
                let key = state.cipher.open(&rec.serial, "otpkey", &rec.otpkey)?;
                keys.push((rec.serial, rec.token_type, key));
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(PoolKeys { realm, keys }),
            }
        }
    }

    /// The serial of a pool token with this type and key (compared in constant time).
    fn present(&self, token: &ImportedToken) -> Option<String> {
        let key = parse_key(&token.otpkey, 1).ok()?;
        self.keys
            .iter()
            .find(|(_, kind, k)| *kind == token.token_type && crate::crypto::ct_eq(k, &key))
            .map(|(serial, ..)| serial.clone())
    }
}

fn well_formed_tan(tan: &str, digits: u8) -> bool {
    tan.len() == digits as usize && tan.bytes().all(|b| b.is_ascii_digit())
}

/// The last time step a TOTP must not accept again: what the old system recorded, but never
/// before the current step, so a code seen on a screen before the import is spent after it.
fn totp_last_step(last: u64, period: u32, now: i64) -> Result<u64, PidError> {
    let current = (now.max(0) as u64) / u64::from(period.max(1));
    if last > current + MAX_TOTP_STEPS_AHEAD {
        return Err(PidError::InvalidArgument(format!(
            "the last used time step {last} lies {} steps ahead of this host's clock; check the \
             clocks of both systems",
            last - current
        )));
    }
    Ok(last.max(current))
}

/// The serial of a token `owner` already has with this type and key (for a TAN list: one
/// imported from the same source, or holding one of these TANs). Keys are compared in
/// constant time.
fn already_present(
    state: &State,
    owner: &Owner,
    token: &ImportedToken,
) -> Result<Option<String>, PidError> {
    let wanted_key = match token.token_type {
        TokenType::Tan => None,
        // A key that does not parse cannot be present; the enrollment says what is wrong.
        _ => match parse_key(&token.otpkey, 1) {
            Ok(key) => Some(key),
            Err(_) => return Ok(None),
        },
    };
    for serial in state.store.serials_of(owner)? {
        let Some(v) = state.store.get_token(&serial)? else {
            continue;
        };
        if v.rec.token_type != token.token_type {
            continue;
        }
        let material = state.cipher.open(&serial, "otpkey", &v.rec.otpkey)?;
        let same = match &wanted_key {
            Some(key) => crate::crypto::ct_eq(&material, key),
            // Used TANs leave the list, so a list imported before is also known by where
            // it came from: importing the same file again must not bring spent codes back.
            None => {
                v.rec.description == token.description
                    || token
                        .tans
                        .iter()
                        .any(|t| tan::on_list(&material, t.expose()))
            }
        };
        if same {
            return Ok(Some(serial));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_totp_never_accepts_a_step_before_the_import() {
        let now = 59 * 30 + 7;
        assert_eq!(totp_last_step(0, 30, now).unwrap(), 59);
        assert_eq!(totp_last_step(12, 30, now).unwrap(), 59);
        assert_eq!(totp_last_step(61, 30, now).unwrap(), 61);
        assert!(totp_last_step(59 + MAX_TOTP_STEPS_AHEAD + 1, 30, now).is_err());
    }

    #[test]
    fn tans_must_have_the_lists_length_and_be_digits() {
        assert!(well_formed_tan("12345678", 8));
        assert!(!well_formed_tan("1234567", 8));
        assert!(!well_formed_tan("1234567a", 8));
    }
}
