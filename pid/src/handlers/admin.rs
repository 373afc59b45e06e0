//! Token administration, by administrators and (self-service) by users for their own tokens.
//! Dispatch decides the caller's `Authority` first; every request checks it against its target
//! before anything is read out or written. Every action is audited; every bad parameter is
//! refused before anything is written.

use crate::audit;
use crate::authority::Authority;
use crate::caller::Caller;
use crate::error::PidError;
use crate::handlers::{error_response, import, machine, validate_text};
use crate::percent::percent_encode;
use crate::policy::{Action, Context};
use crate::store::{Owner, Swap, TokenRecord, Versioned};
use crate::tokens::{algorithm, CounterState};
use crate::users::{self, ResolvedUser};
use crate::State;
use protocol::admin::MAX_PAGE;
use protocol::{
    AdminRequest, AdminResponse, AuditEntry, EnrollRequest, Enrolled, HashAlgorithm,
    PolicyDecision, PolicyReport, Response, Secret, TokenSettings, TokenType, UserRef,
};
use zeroize::Zeroizing;

const MAX_SERIAL_LEN: usize = 64;
const MAX_KEY_BYTES: usize = 128;
const MAX_PIN_LEN: usize = 256;
/// The longest daypassword period: a week.
const MAX_DAYPASSWORD_PERIOD: u32 = 7 * 86_400;

pub async fn handle(
    state: &State,
    caller: &Caller,
    authority: &Authority,
    req: AdminRequest,
) -> Response {
    let action = req.name();
    let now = state.clock.now();
    let mut entry = audit::entry(caller, action, now);
    let live = state.live();
    let gate = Gate {
        authority,
        live: &live,
        now,
    };
    let result = run(state, &gate, req, &mut entry).await;
    entry.success = result.is_ok();
    if let Err(e) = &result {
        entry.message = e.public_message();
    }
    // Reading the audit trail is not itself audited, but a refusal to read it is.
    if action != "audit show" || result.is_err() {
        audit::record(state, entry);
        if let Err(e) = state.store.durable().await {
            return error_response(&e);
        }
    }
    match result {
        Ok(r) => Response::Admin(r),
        Err(e) => error_response(&e),
    }
}

/// The caller's authority with the configuration snapshot of this request.
pub(super) struct Gate<'a> {
    pub(super) authority: &'a Authority,
    live: &'a crate::Live,
    now: i64,
}

impl Gate<'_> {
    pub(super) fn now(&self) -> i64 {
        self.now
    }

    pub(super) fn check(
        &self,
        action: Action,
        target: Option<&Owner>,
        token_type: Option<TokenType>,
    ) -> Result<(), PidError> {
        self.authority
            .check(self.live, action, target, token_type, self.now)
    }

    /// The user a request names: for self-service always the caller's own account (naming
    /// anyone else is refused).
    async fn target(
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

async fn run(
    state: &State,
    gate: &Gate<'_>,
    req: AdminRequest,
    entry: &mut audit::Draft,
) -> Result<AdminResponse, PidError> {
    match req {
        AdminRequest::TokenEnroll(spec) => enroll(state, gate, *spec, entry).await,
        AdminRequest::TokenList { user, after, limit } => {
            let owner = gate
                .target(state, user.as_ref(), entry)
                .await?
                .map(|u| u.owner);
            gate.check(Action::TokenList, owner.as_ref(), None)?;
            let limit = limit.clamp(1, MAX_PAGE) as usize;
            let (recs, next) = state
                .store
                .list_tokens(owner.as_ref(), after.as_deref(), limit)?;
            Ok(AdminResponse::Tokens {
                tokens: recs.iter().map(|r| info(state, r)).collect(),
                next,
            })
        }
        AdminRequest::TokenShow { serial } => {
            let v = get(state, gate, Action::TokenList, &serial, entry)?;
            Ok(AdminResponse::Token(Box::new(info(state, &v.rec))))
        }
        AdminRequest::TokenDelete { serial } => {
            let v = get(state, gate, Action::Delete, &serial, entry)?;
            match state.store.swap_tokens(&[(&v, None)])? {
                Swap::Done => {
                    let attached = state.store.detach_all(&serial)?;
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
        AdminRequest::TokenEnable { serial } => {
            modify(state, gate, Action::Enable, &serial, entry, |r| {
                r.active = true;
                Ok(format!("token {} enabled", r.serial))
            })
        }
        AdminRequest::TokenDisable { serial } => {
            modify(state, gate, Action::Disable, &serial, entry, |r| {
                r.active = false;
                Ok(format!("token {} disabled", r.serial))
            })
        }
        AdminRequest::TokenRevoke { serial } => {
            modify(state, gate, Action::Revoke, &serial, entry, |r| {
                r.revoked = true;
                r.locked = true;
                r.active = false;
                Ok(format!(
                    "token {} revoked; it can never be used again, only deleted",
                    r.serial
                ))
            })
        }
        AdminRequest::TokenReset { serial } => {
            modify(state, gate, Action::Reset, &serial, entry, |r| {
                r.clear_all_sources();
                Ok(format!("fail counter of token {} reset", r.serial))
            })
        }
        AdminRequest::TokenSet { serial, settings } => {
            set(state, gate, &serial, *settings, entry).await
        }
        AdminRequest::TokenResync { serial, otp1, otp2 } => {
            let v = get(state, gate, Action::Resync, &serial, entry)?;
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
            modify(state, gate, Action::Resync, &serial, entry, |r| {
                let CounterState { count, time_shift } = found;
                r.count = count;
                r.time_shift = time_shift;
                Ok(format!("token {} resynchronised", r.serial))
            })
        }
        AdminRequest::TokenAssign { serial, user } => {
            let user = existing_user(state, &user, entry).await?;
            // Both ends: the admin must be allowed to assign to this user, and to touch the token.
            gate.check(Action::Assign, Some(&user.owner), None)?;
            state.bind_tokens_to(&user)?;
            let owner = user.owner;
            modify(state, gate, Action::Assign, &serial, entry, move |r| {
                if let Some(o) = &r.owner {
                    return Err(PidError::TokenState(format!(
                        "token {} is already assigned to {}@{}; unassign it first",
                        r.serial, o.login, o.realm
                    )));
                }
                r.owner = Some(owner.clone());
                Ok(format!("token {} assigned", r.serial))
            })
        }
        AdminRequest::TokenUnassign { serial } => {
            modify(state, gate, Action::Unassign, &serial, entry, |r| {
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
        AdminRequest::PolicyCheck {
            user,
            service,
            rhost,
        } => {
            gate.check(Action::PolicyCheck, None, None)?;
            policy_check(state, user, service, rhost, entry).await
        }
        AdminRequest::MachineAttach(spec) => machine::attach(state, gate, *spec, entry),
        AdminRequest::MachineDetach { serial, app, host } => {
            machine::detach(state, gate, &serial, app, host, entry)
        }
        AdminRequest::MachineList { serial, app, host } => {
            machine::list(state, gate, serial, app, host)
        }
        AdminRequest::LuksResponses { password, host } => {
            machine::luks_responses(state, gate, &password, host, entry)
        }
        AdminRequest::TokenImport(batch) => import::import(state, gate, *batch, entry).await,
        AdminRequest::AuditShow {
            user,
            before,
            limit,
        } => {
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
    }
}

/// `pictl policy check`: the policies a login of `user` through `service` from `rhost` meets.
async fn policy_check(
    state: &State,
    user: UserRef,
    service: String,
    rhost: Option<String>,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
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
    let ctx = crate::policy::Context {
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

/// A token as administrators see it, with what only its type has (an SSH key's fingerprint).
fn info(state: &State, rec: &TokenRecord) -> protocol::TokenInfo {
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
    info
}

pub(super) fn done(message: String) -> AdminResponse {
    AdminResponse::Done { message }
}

fn busy() -> PidError {
    PidError::Internal("the token changed while it was being modified; try again".into())
}

fn not_found(serial: &str) -> PidError {
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
fn modify(
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

fn validate_pin(pin: &Secret) -> Result<(), PidError> {
    if pin.len() > MAX_PIN_LEN || pin.expose().chars().any(|c| c.is_control()) {
        return Err(PidError::InvalidArgument(format!(
            "the PIN must be at most {MAX_PIN_LEN} bytes without control characters"
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

/// Enrollment policies match the new token's owner.
fn owner_context<'a>(owner: Option<&'a Owner>, now: i64) -> Context<'a> {
    Context {
        realm: owner.map_or("", |o| o.realm.as_str()),
        login: owner.map_or("", |o| o.login.as_str()),
        now: Some(now),
        ..Context::default()
    }
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

async fn enroll(
    state: &State,
    gate: &Gate<'_>,
    spec: EnrollRequest,
    entry: &mut AuditEntry,
) -> Result<AdminResponse, PidError> {
    let token_type = spec.token_type.ok_or_else(|| {
        PidError::InvalidArgument("say which token type to enroll: hotp or totp".into())
    })?;
    entry.token_type = Some(token_type.as_str().to_owned());
    let user = gate.target(state, spec.user.as_ref(), entry).await?;
    let new = new_token(state, gate, token_type, spec, user).await?;
    entry.serial = Some(new.rec.serial.clone());
    store_new_token(state, &new)?;
    let (rec, key, material) = (new.rec, new.key, new.material);
    let serial = &rec.serial;
    entry.message = format!("{} token {serial} enrolled", token_type.as_str());
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
    Ok(AdminResponse::Enrolled(Box::new(Enrolled {
        token: info(state, &rec),
        otpauth_url,
        otpkey_base32,
        codes: material
            .codes
            .iter()
            .map(|c| Secret::new(c.as_str()))
            .collect(),
    })))
}

/// A token about to be enrolled: checked against the caller's rights and the enrollment
/// policies, its key and PIN hash made, not yet stored.
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
    gate.check(Action::Enroll, owner.as_ref(), Some(token_type))?;
    let ctx = owner_context(owner.as_ref(), gate.now);
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
        .check(spec.pin.as_ref().map(Secret::expose))
        .map_err(PidError::InvalidArgument)?;
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
    let material = alg.enroll(&spec, base).map_err(PidError::InvalidArgument)?;
    let pin_hash = match spec.pin {
        Some(pin) if !pin.is_empty() => Some(state.hash_pin(pin).await?),
        _ => None,
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

async fn set(
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
        let ctx = owner_context(current.rec.owner.as_ref(), gate.now);
        gate.live
            .policies
            .pin_rules(&ctx)
            .check(Some(pin.expose()))
            .map_err(PidError::InvalidArgument)?;
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
    modify(state, gate, action, serial, entry, |r| {
        let mut changed = Vec::new();
        if let Some(p) = &new_pin {
            r.pin_hash = p.clone();
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
