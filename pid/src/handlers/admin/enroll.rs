//! Enrollment: a new token checked against the caller's rights and the enrollment policies
//! (OTP length, hash, period, PIN rules, tokens per user), its key made or taken, sealed and
//! stored; the answer shows the key and otpauth URL this once.

use super::gate::{busy, get};
use super::gate::{Gate, MAX_SERIAL_LEN};
use super::token::{info, validate_pin};
use crate::auth::lockout::Source;
use crate::auth::pin_change::{due_after_admin_pin, due_after_own_pin};
use crate::error::PidError;
use crate::handlers::validate_text;
use crate::percent::percent_encode;
use crate::policy::{Action, Context};
use crate::store::{Owner, Rollout, Swap, TokenRecord};
use crate::tokens::{algorithm, CounterState};
use crate::users::ResolvedUser;
use crate::State;
use protocol::{
    AdminResponse, AuditEntry, EnrollRequest, Enrolled, HashAlgorithm, Secret, TokenType,
};
use zeroize::Zeroizing;

const MAX_KEY_BYTES: usize = 128;
/// The longest daypassword period: a week.
const MAX_DAYPASSWORD_PERIOD: u32 = 7 * 86_400;

pub(super) async fn enroll(
    state: &State,
    gate: &Gate<'_>,
    spec: EnrollRequest,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    enroll_new(state, gate, spec, None, entry).await
}

/// Enroll, for `spec.user` or (`pool`) into that realm's pool, which the caller checked.
pub(super) async fn enroll_new(
    state: &State,
    gate: &Gate<'_>,
    spec: EnrollRequest,
    pool: Option<String>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let token_type = spec.token_type.ok_or_else(|| {
        PidError::InvalidArgument("say which token type to enroll: hotp or totp".into())
    })?;
    entry.token_type = Some(token_type.as_str().to_owned());
    if pool.is_some() {
        super::pool::poolable(token_type)?;
    }
    let user = gate.target(state, spec.user.as_ref(), entry).await?;
    gate.check(
        Action::Enroll,
        user.as_ref().map(|u| &u.owner),
        Some(token_type),
    )?;
    let mut new = new_token(state, gate, token_type, spec, user).await?;
    if let Some(own) = gate.authority.own() {
        own_enrollment_allowed(state, gate, &own.owner)?;
    }
    let verify = waits_for_verification(gate, &new.rec);
    if verify {
        new.rec.active = false;
        new.rec.rollout = Rollout::Verify;
    }
    new.rec.pool_realm = pool;
    entry.serial = Some(new.rec.serial.clone());
    store_new_token(state, &new)?;
    let (rec, key, material) = (new.rec, new.key, new.material);
    let serial = &rec.serial;
    entry.message = if verify {
        format!(
            "{} token {serial} enrolled, inactive until two consecutive codes verify it",
            token_type.as_str()
        )
    } else {
        format!("{} token {serial} enrolled", token_type.as_str())
    };
    // A token with nothing for an authenticator app (spass) shows neither key nor URL: the key
    // is never used, and an otpauth URL would only confuse.
    let (otpkey_base32, otpauth_url) = match algorithm(token_type).otpauth_type() {
        Some(kind) => {
            let b32 = Secret::new(data_encoding::BASE32_NOPAD.encode(&key));
            let url = Secret::new(otpauth_url(state, &rec, kind, b32.expose()));
            (b32, url)
        }
        None => (Secret::new(""), Secret::new("")),
    };
    let enrolled = Box::new(Enrolled {
        token: info(state, &rec),
        otpauth_url,
        otpkey_base32,
        codes: material
            .codes
            .iter()
            .map(|c| Secret::new(c.as_str()))
            .collect(),
    });
    Ok(if verify {
        AdminResponse::EnrolledUnverified(enrolled)
    } else {
        AdminResponse::Enrolled(enrolled)
    })
}

/// A user enrolling for themselves: a user who has no token may enroll one only where no
/// `first_token_by_admin` policy says an administrator issues the first (so a stolen password
/// never becomes the way to a second factor where a user has none yet). What a user's own
/// enrollment proves is a session as that user; deleting or resetting a token takes one of its
/// owner's codes as well (`Gate::use_proof`).
///
/// However the policies read, a user's own enrollments stop at `limits.user_tokens`: what a
/// local account can make the daemon store stays bounded.
fn own_enrollment_allowed(state: &State, gate: &Gate<'_>, owner: &Owner) -> Result<(), PidError> {
    let tokens = state.store.tokens_of(owner)?;
    let held = tokens.len();
    let limit = gate.live.config.limits.user_tokens;
    if held >= limit as usize {
        return Err(PidError::PermissionDenied(format!(
            "you hold {held} tokens, the most a user may reach by enrolling tokens themselves \
             (pid.toml limits.user_tokens = {limit}): delete one first, or ask an administrator"
        )));
    }
    let has_token = tokens.iter().any(|v| {
        algorithm(v.rec.token_type).for_login()
            && v.rec.rollout == Rollout::Enrolled
            && !v.rec.revoked
    });
    let ctx = Context::of_owner(Some(owner), gate.now);
    match gate.live.policies.flag(Action::FirstTokenByAdmin, &ctx) {
        Some(policy) if !has_token => Err(PidError::PermissionDenied(format!(
            "you have no token yet, and policy {policy:?} (first_token_by_admin) says your first \
             one comes from an administrator: ask one"
        ))),
        _ => Ok(()),
    }
}

/// Whether a new token waits for two consecutive codes before it may log in: a user's own hotp
/// or totp token always (a token its user never saw working is never a way in), and any token
/// of a type the `verify_enrollment` policy lists for its owner.
fn waits_for_verification(gate: &Gate<'_>, rec: &TokenRecord) -> bool {
    crate::tokens::shows_code_sequence(rec.token_type)
        && rec.owner.is_some()
        && (gate.authority.is_self_service()
            || gate
                .live
                .policies
                .verify_types(&Context::of_owner(rec.owner.as_ref(), gate.now))
                .contains(&rec.token_type))
}

/// `token verify`: two consecutive codes of a token that waits for them. They are found the way
/// a resynchronisation finds them (so a phone whose clock is off still verifies, and the drift is
/// learnt) and both are spent; the token becomes active. A user who has no recovery code gets
/// one now, shown this once: it lets them in (once) if the phone is lost.
pub(super) async fn verify(
    state: &State,
    gate: &Gate<'_>,
    serial: &str,
    otp1: &Secret,
    otp2: &Secret,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    // Users verify their own tokens whatever they may enroll: an administrator may have
    // enrolled this one for them under a `verify_enrollment` policy.
    let action = if gate.authority.is_self_service() {
        Action::TokenList
    } else {
        Action::Enroll
    };
    let v = get(state, gate, action, serial, entry)?;
    if v.rec.rollout != Rollout::Verify {
        return Err(PidError::TokenState(format!(
            "token {serial} does not wait for verification; it is in use as it is"
        )));
    }
    for otp in [otp1, otp2] {
        if otp.is_empty() || otp.len() > 16 || !otp.expose().bytes().all(|b| b.is_ascii_digit()) {
            return Err(PidError::InvalidArgument(
                "a code is the 6 or 8 digits the token shows".into(),
            ));
        }
    }
    let source = Source::of(gate.caller_account, None);
    if v.rec.locked_for(&source, gate.now) {
        return Err(PidError::TokenState(format!(
            "token {serial} is locked after too many wrong codes; an administrator can clear it \
             (`pictl token reset {serial}`), or delete it and enroll a new one"
        )));
    }
    let key = state.cipher.open(&v.rec.serial, "otpkey", &v.rec.otpkey)?;
    let found =
        algorithm(v.rec.token_type).resync(&v.rec, &key, otp1.expose(), otp2.expose(), gate.now);
    drop(key);
    let lockout = gate.live.config.tokens.lockout();
    let mut rec = v.rec.clone();
    let message = match found {
        Some(CounterState { count, time_shift }) => {
            rec.count = count;
            rec.time_shift = time_shift;
            rec.active = true;
            rec.rollout = Rollout::Enrolled;
            rec.clear_source(&source);
            None
        }
        // Wrong codes count like wrong codes at a login, so guessing them is bounded too.
        None => {
            rec.charge(&source, gate.now, &lockout);
            Some(format!(
                "the two codes are not consecutive codes of token {serial}: type the code the \
                 app shows now and, once it changes, the next one"
            ))
        }
    };
    if state.store.swap_tokens(&[(&v, Some(&rec))])? != Swap::Done {
        return Err(busy());
    }
    if let Some(wrong) = message {
        // The fail counter must be durable before the refusal goes out, as at a login.
        state.store.durable().await?;
        return Err(PidError::InvalidArgument(wrong));
    }
    let mut message = format!("token {serial} verified and active");
    let recovery_code = match (&rec.owner, gate.authority.own()) {
        (Some(owner), Some(user)) if owner == &user.owner => {
            match recovery_code(state, gate, user).await {
                Ok(Some((reg_serial, code))) => {
                    message.push_str(&format!("; recovery code {reg_serial} made"));
                    Some(code)
                }
                Ok(None) => None,
                Err(e) => {
                    message.push_str(&format!("; no recovery code made: {}", e.public_message()));
                    None
                }
            }
        }
        _ => None,
    };
    entry.message = message;
    Ok(AdminResponse::Verified {
        token: Box::new(info(state, &rec)),
        recovery_code,
    })
}

/// A recovery code (a registration token) for a user who has none. It is made by the daemon as
/// part of the user's verified enrollment, not on the user's own rights: no `user` policy has to
/// allow registration tokens. The enrollment policies still apply (max_token_per_user,
/// otp_pin_required).
async fn recovery_code(
    state: &State,
    gate: &Gate<'_>,
    user: &ResolvedUser,
) -> Result<Option<(String, Secret)>, PidError> {
    let has_one = state
        .store
        .tokens_of(&user.owner)?
        .iter()
        .any(|v| v.rec.token_type == TokenType::Registration);
    if has_one {
        return Ok(None);
    }
    let spec = EnrollRequest {
        token_type: Some(TokenType::Registration),
        description: Some("recovery code".into()),
        ..EnrollRequest::default()
    };
    let new = new_token(
        state,
        gate,
        TokenType::Registration,
        spec,
        Some(user.clone()),
    )
    .await?;
    store_new_token(state, &new)?;
    let code = new
        .material
        .codes
        .first()
        .map(|c| Secret::new(c.as_str()))
        .ok_or_else(|| PidError::Internal("a registration token without its code".into()))?;
    Ok(Some((new.rec.serial, code)))
}

/// A token about to be enrolled: checked against the enrollment policies, its key and PIN hash
/// made, not yet stored. Whether the caller may enroll it at all is the caller's check
/// (`Gate::check` with `Action::Enroll`), made before.
pub(super) struct NewToken {
    pub(super) rec: TokenRecord,
    user: Option<ResolvedUser>,
    key: Zeroizing<Vec<u8>>,
    material: crate::tokens::Material,
}

pub(super) async fn new_token(
    state: &State,
    gate: &Gate<'_>,
    token_type: TokenType,
    spec: EnrollRequest,
    user: Option<ResolvedUser>,
) -> Result<NewToken, PidError> {
    let live = gate.live;
    let defaults = &live.config.tokens;
    let owner = user.as_ref().map(|u| u.owner.clone());
    let ctx = Context::of_owner(owner.as_ref(), gate.now);
    let (len_action, hash_action) = match token_type {
        TokenType::Hotp | TokenType::Paper | TokenType::Tan | TokenType::Daplug => {
            (Action::HotpOtpLen, Action::HotpHashlib)
        }
        _ => (Action::TotpOtpLen, Action::TotpHashlib),
    };
    let digits = if token_type == TokenType::Spass {
        // A simple pass has no one-time part: the whole answer is the PIN.
        if spec.digits.is_some() || spec.otpkey.is_some() || spec.hash.is_some() {
            return Err(PidError::InvalidArgument(
                "a spass token is its PIN alone: leave out --digits, --otpkey and --hash".into(),
            ));
        }
        0
    } else {
        enrollment_value(
            gate,
            spec.digits,
            live.policies.number(len_action, &ctx).map(|n| n as u8),
            defaults.digits,
            "the OTP length",
        )?
    };
    let alg = algorithm(token_type);
    if alg.standard_digits() && !matches!((token_type, digits), (TokenType::Spass, 0) | (_, 6 | 8))
    {
        return Err(PidError::InvalidArgument(format!(
            "{digits} digits is not supported; use 6 or 8"
        )));
    }
    let hash = enrollment_value(
        gate,
        spec.hash,
        live.policies.hash(hash_action, &ctx),
        defaults.hash,
        "the hash algorithm",
    )?;
    let period = match token_type {
        TokenType::Totp => {
            let p = enrollment_value(
                gate,
                spec.period,
                live.policies.number(Action::TotpTimestep, &ctx),
                defaults.totp_period,
                "the TOTP period",
            )?;
            if !matches!(p, 30 | 60) {
                return Err(PidError::InvalidArgument(format!(
                    "a TOTP period of {p} s is not supported; use 30 or 60"
                )));
            }
            p
        }
        TokenType::Daypassword => {
            let p = spec
                .period
                .unwrap_or(crate::tokens::daypassword::DEFAULT_PERIOD);
            if !(60..=MAX_DAYPASSWORD_PERIOD).contains(&p) {
                return Err(PidError::InvalidArgument(format!(
                    "a daypassword period of {p} s is not supported; use 60 to \
                     {MAX_DAYPASSWORD_PERIOD} s (86400, a day, is the default)"
                )));
            }
            p
        }
        _ if spec.period.is_some() => {
            return Err(PidError::InvalidArgument(
                "--period applies to totp and daypassword tokens only".into(),
            ))
        }
        _ => defaults.totp_period,
    };
    if let Some(d) = &spec.description {
        validate_text("the description", d)?;
    }
    if let Some(pin) = &spec.pin {
        validate_pin(pin)?;
    }
    live.policies
        .pin_rules(&ctx)
        .check(spec.pin.as_ref().map(Secret::expose))?;
    if let (Some(o), Some(max)) = (&owner, live.policies.number(Action::MaxTokenPerUser, &ctx)) {
        let has = state.store.serials_of(o)?.len();
        if has >= max as usize {
            return Err(PidError::PermissionDenied(format!(
                "{}@{} already has {has} tokens; the enrollment policy allows at most {max} \
                 (max_token_per_user): delete one first",
                o.login, o.realm
            )));
        }
    }
    let serial = match &spec.serial {
        Some(s) => {
            validate_serial(s)?;
            s.clone()
        }
        None => generate_serial(state, alg.serial_prefix())?,
    };
    let key = match &spec.otpkey {
        Some(k) => parse_key(k, alg.min_key_bytes())?,
        None => crate::crypto::random_bytes(key_len_for(hash)),
    };
    let base = crate::tokens::EnrollBase {
        key: key.clone(),
        digits,
        hash,
    };
    let material = alg.enroll(&spec, base)?;
    let pin_hash = match spec.pin {
        Some(pin) if !pin.is_empty() => Some(state.hash_pin(pin).await?),
        _ => None,
    };
    // A PIN given at enrollment is someone's choice for the owner: `change_pin_on_first_use`
    // and `change_pin_every` say when the owner must choose their own.
    let next_pin_change = match (&pin_hash, gate.authority.is_self_service()) {
        (None, _) => None,
        (Some(_), false) => due_after_admin_pin(&live.policies, owner.as_ref(), gate.now),
        (Some(_), true) => due_after_own_pin(&live.policies, owner.as_ref(), gate.now),
    };
    let rec = TokenRecord {
        schema: crate::store::records::TOKEN_SCHEMA,
        serial: serial.clone(),
        token_type,
        owner,
        otpkey: state.cipher.seal(&serial, "otpkey", &material.secret)?,
        pin_hash,
        digits: material.digits,
        hash,
        count: 0,
        count_window: material.count_window.unwrap_or(defaults.hotp_window),
        period,
        time_window: defaults.totp_window_secs,
        time_shift: 0,
        active: true,
        revoked: false,
        locked: false,
        maxfail: defaults.maxfail,
        fails: Vec::new(),
        count_auth: 0,
        count_auth_max: 0,
        count_auth_success: 0,
        count_auth_success_max: 0,
        validity_start: None,
        validity_end: None,
        description: spec.description.unwrap_or_default(),
        created: state.clock.now(),
        last_auth: None,
        rollout: crate::store::Rollout::Enrolled,
        next_pin_change,
        pool_realm: None,
    };
    Ok(NewToken {
        rec,
        user,
        key,
        material,
    })
}

pub(super) fn store_new_token(state: &State, new: &NewToken) -> Result<(), PidError> {
    if let Some(u) = &new.user {
        state.bind_tokens_to(u)?;
    }
    state.store.create_token(&new.rec)
}

fn generate_serial(state: &State, prefix: &str) -> Result<String, PidError> {
    for _ in 0..16 {
        let candidate = format!(
            "{prefix}{}",
            hex::encode_upper(&crate::crypto::random_bytes(4)[..])
        );
        if !state.store.token_exists(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(PidError::Internal("could not find a free serial".into()))
}

/// `otpauth://TYPE/ISSUER:LABEL?secret=…&issuer=…&algorithm=…&digits=…` + type parameters.
/// The issuer is pid.toml `[tokens] issuer`, else this host's name, so a person with tokens on
/// several hosts can tell the entries apart. The label is the login, with `@realm` for a realm
/// other than the default one: `alice` of two realms would otherwise show as two equal entries.
fn otpauth_url(state: &State, rec: &TokenRecord, kind: &str, secret_b32: &str) -> String {
    let live = state.live();
    let label = match &rec.owner {
        Some(o) if o.realm != live.config.default_realm => format!("{}@{}", o.login, o.realm),
        Some(o) => o.login.clone(),
        None => rec.serial.clone(),
    };
    let issuer = live
        .config
        .tokens
        .issuer
        .as_deref()
        .unwrap_or(&state.hostname);
    format!(
        "otpauth://{}/{}:{}?secret={}&issuer={}&algorithm={}&digits={}{}",
        kind,
        percent_encode(issuer),
        percent_encode(&label),
        secret_b32,
        percent_encode(issuer),
        rec.hash.as_str().to_uppercase(),
        rec.digits,
        algorithm(rec.token_type).otpauth_params(rec),
    )
}

/// An enrollment parameter: what the request asks, else the enrollment policy, else the
/// daemon's default. Users enrolling for themselves get the policy's value or nothing.
fn enrollment_value<T: PartialEq + std::fmt::Debug + Copy>(
    gate: &Gate<'_>,
    asked: Option<T>,
    policy: Option<T>,
    default: T,
    what: &str,
) -> Result<T, PidError> {
    match (asked, policy) {
        (Some(a), Some(p)) if gate.authority.is_self_service() && a != p => {
            Err(PidError::PermissionDenied(format!(
                "the enrollment policy sets {what} to {p:?} for your tokens; leave the option out"
            )))
        }
        (Some(a), _) => Ok(a),
        (None, Some(p)) => Ok(p),
        (None, None) => Ok(default),
    }
}

fn validate_serial(serial: &str) -> Result<(), PidError> {
    if serial.is_empty()
        || serial.len() > MAX_SERIAL_LEN
        || !serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(PidError::InvalidArgument(format!(
            "serial {serial:?} is not valid: use 1 to {MAX_SERIAL_LEN} letters, digits, '-', '_' \
             or '.'"
        )));
    }
    Ok(())
}

/// Decode an operator-supplied hex key; refuse keys too short to be safe.
pub(super) fn parse_key(
    hex_key: &Secret,
    min_bytes: usize,
) -> Result<Zeroizing<Vec<u8>>, PidError> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        hex_key
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    let key = hex::decode(cleaned.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| {
            PidError::InvalidArgument(
                "--otpkey must be hexadecimal (0-9, a-f) with an even number of digits".into(),
            )
        })?;
    if key.len() < min_bytes || key.len() > MAX_KEY_BYTES {
        return Err(PidError::InvalidArgument(format!(
            "the key has {} bytes; use {min_bytes} to {MAX_KEY_BYTES} bytes (20 for sha1, \
             32 for sha256, 64 for sha512 are usual)",
            key.len()
        )));
    }
    Ok(key)
}

fn key_len_for(hash: HashAlgorithm) -> usize {
    match hash {
        HashAlgorithm::Sha1 => 20,
        HashAlgorithm::Sha256 => 32,
        HashAlgorithm::Sha512 => 64,
    }
}
