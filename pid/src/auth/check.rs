//! The check pipeline: privacyIDEA 3.14's `check_token_list` for PIN+OTP logins, with its
//! PIN/OTP split, fail counters, auth counters and validity periods.
//!
//! Every token of the user is tried, with no early exit. Outcome, first matching branch wins:
//! a valid token → success, its fail counter reset and its counter advanced; else tokens whose
//! PIN matched → their fail counters rise ("wrong otp value"); else tokens where nothing matched
//! → all their fail counters rise ("wrong otp pin", privacyIDEA's IncFailCountOnFalsePin); else
//! only unusable tokens → their reasons.
//!
//! The evaluation is pure with respect to the store: it returns the new records, and the caller
//! swaps them in by compare-and-swap, redoing the whole check if a token changed meanwhile.
//! What it cannot decide from the records, the input, the rules and `now` (a sealed secret, a
//! PIN hash, the user store, a validation server) it asks its `Verifier`.

use crate::auth::lockout::{LockoutRules, Source};
use crate::auth::Verifier;
use crate::error::PidError;
use crate::policy::OtpPin;
use crate::store::{TokenRecord, Versioned};
use crate::tokens::{algorithm, CounterState};
use crate::users::ResolvedUser;
use protocol::Secret;
use zeroize::Zeroizing;

/// What one check decided.
#[derive(Debug)]
pub struct Verdict {
    pub accepted: bool,
    /// privacyIDEA's detail message, for the audit trail.
    pub detail: String,
    /// What the user may be shown.
    pub user_message: String,
    /// Tokens the verdict is about (the matching ones, or the ones charged with a failure).
    pub serials: Vec<String>,
    pub token_type: Option<String>,
    /// The challenges the PIN alone triggered (`challenge_response` policy, or types that
    /// always challenge): the caller asks them and checks the answer against these tokens only.
    pub challenge: Vec<Challenged>,
    /// A wrong answer to a challenge whose tokens are still usable: it may be answered again.
    pub may_retry: bool,
    /// Codes to send before the challenge is asked (e-mail, SMS).
    pub deliveries: Vec<crate::tokens::Delivery>,
    /// An accepting token whose PIN must change now (`next_pin_change` reached): the login
    /// is accepted and the new PIN asked for afterwards.
    pub pin_change_due: Option<String>,
}

/// One token's challenge in a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenged {
    pub serial: String,
    /// The token's own question; `None`: the policy's `challenge_text` or the default.
    pub message: Option<String>,
    /// What the answer is checked against (positions asked, a question, a sent code …).
    pub data: Zeroizing<Vec<u8>>,
}

/// What the user typed.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// PIN+OTP (or, with `challenge_response`, the PIN alone).
    Pass(&'a Secret),
    /// The answer alone, to a challenge of these tokens.
    Answer {
        otp: &'a Secret,
        challenged: &'a [Challenged],
    },
}

/// The new records to swap in, and the verdict that holds once they are stored.
pub struct Plan {
    /// Each changed token and its new record; `None` deletes it (a spent registration code).
    pub changes: Vec<(Versioned, Option<TokenRecord>)>,
    pub verdict: Verdict,
}

pub const GENERIC_REJECT: &str = "Authentication failed.";

/// Why a token cannot be used for this login, whatever the user typed. Shown (in privacyIDEA's
/// words) in the audit entry; the user only learns that the token is locked when that is the
/// only reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// `count_auth_max` or `count_auth_success_max` is reached.
    CounterExceeded,
    /// Enrolled, but its user has not yet typed two consecutive codes (`verify_enrollment`).
    Unverified,
    Disabled,
    /// Too many failed attempts from this source; the lockout has not run out.
    Locked,
    /// Before `validity_start` or after `validity_end`.
    OutsideValidity,
    /// The token is bound to another PAM service (applspec).
    OtherService,
}

impl Unusable {
    pub fn message(self) -> &'static str {
        match self {
            Unusable::CounterExceeded => "Authentication counter exceeded",
            Unusable::Unverified => "Token waits for verification",
            Unusable::Disabled => "Token is disabled",
            Unusable::Locked => "Failcounter exceeded",
            Unusable::OutsideValidity => "Outside validity period",
            Unusable::OtherService => "Token is not for this service",
        }
    }
}

/// Whether the token may be used through `service` (only tokens bound to one need their key).
fn serves(verifier: &impl Verifier, rec: &TokenRecord, service: &str) -> Result<bool, PidError> {
    let alg = algorithm(rec.token_type);
    if !alg.bound_to_service() {
        return Ok(true);
    }
    let key = verifier.open_secret(rec)?;
    Ok(alg.serves(&key, service))
}

/// What policies decide for one check.
#[derive(Clone, Debug)]
pub struct Rules {
    /// `reset_all_user_tokens`: a success clears the fail counters of all the user's tokens.
    pub reset_all_user_tokens: bool,
    /// `challenge_response`: token types whose PIN alone triggers a challenge.
    pub challenge_types: Vec<protocol::TokenType>,
    /// `last_auth`: a token whose last successful login is older than this many seconds is
    /// refused even with the right OTP (the OTP is spent all the same).
    pub last_auth: Option<i64>,
    /// Where the attempt comes from: its failures count there (see `lockout`).
    pub source: Source,
    /// How long a locked source stays locked, from the same configuration snapshot as the rest
    /// of the rules.
    pub lockout: LockoutRules,
    /// The PAM service of the login (application-specific passwords are bound to one).
    pub service: String,
}

/// Checks the PIN part of what the user typed where `otppin` says: against the token's PIN hash,
/// against the user's password in the user store, or not at all (the part must be empty).
pub struct PinCheck<'a, V> {
    verifier: &'a V,
    user: &'a ResolvedUser,
    otppin: OtpPin,
    /// The user store's answers during this login. Tokens of different OTP lengths split the
    /// answer differently, so a few candidates may be asked; each only once (privacyIDEA caches
    /// `check_password` per request), which also bounds LDAP binds per login.
    store_answers: Vec<(Zeroizing<String>, bool)>,
}

impl<'a, V: Verifier> PinCheck<'a, V> {
    pub fn new(verifier: &'a V, user: &'a ResolvedUser, otppin: OtpPin) -> PinCheck<'a, V> {
        PinCheck {
            verifier,
            user,
            otppin,
            store_answers: Vec::new(),
        }
    }

    /// Whether checking `rec`'s PIN part costs an argon2 run.
    fn runs_argon2(&self, rec: &TokenRecord) -> bool {
        self.otppin == OtpPin::TokenPin && rec.pin_hash.is_some()
    }

    async fn matches(&mut self, rec: &TokenRecord, pin: &str) -> Result<bool, PidError> {
        match self.otppin {
            OtpPin::TokenPin => self.verifier.verify_pin(rec.pin_hash.as_deref(), pin).await,
            OtpPin::None => Ok(pin.is_empty()),
            // An empty password never reaches a user store (an empty LDAP bind is anonymous).
            OtpPin::UserStore if pin.is_empty() => Ok(false),
            OtpPin::UserStore => {
                if let Some((_, ok)) = self.store_answers.iter().find(|(p, _)| p.as_str() == pin) {
                    return Ok(*ok);
                }
                let ok = self
                    .verifier
                    .check_user_password(self.user, Secret::new(pin))
                    .await?;
                self.store_answers
                    .push((Zeroizing::new(pin.to_owned()), ok));
                Ok(ok)
            }
        }
    }
}

enum Class {
    /// The answer is right: the counter state and, if using it changed them, the token's new
    /// secrets (unsealed) to store.
    Valid(CounterState, Option<Zeroizing<Vec<u8>>>),
    PinMatched {
        previous_otp: bool,
    },
    Invalid,
    /// The OTP is wrong and the PIN was not checked: the user's only usable token, where
    /// pin-matched and invalid are charged alike (see `classify`).
    WrongOtp,
    /// The whole answer is the token's PIN and its type may challenge.
    ChallengeRequest,
    /// A right answer that calls for another round (4eyes: more admins' codes needed).
    FurtherChallenge {
        message: String,
        data: Zeroizing<Vec<u8>>,
    },
}

/// Evaluate what the user typed against the user's tokens at `now` (for an answer: against the
/// challenged tokens only).
pub async fn evaluate<V: Verifier>(
    verifier: &V,
    tokens: Vec<Versioned>,
    input: Input<'_>,
    now: i64,
    rules: &Rules,
    pins: &mut PinCheck<'_, V>,
) -> Result<Plan, PidError> {
    let attempt = Attempt {
        now,
        source: &rules.source,
    };
    let tokens: Vec<Versioned> = match input {
        Input::Pass(_) => tokens,
        Input::Answer { challenged, .. } => tokens
            .into_iter()
            .filter(|v| challenged.iter().any(|c| c.serial == v.rec.serial))
            .collect(),
    };
    let had_tokens = !tokens.is_empty();
    // Revoked tokens are out before anything else (privacyIDEA: check_token_list step 1).
    let mut live: Vec<(Versioned, TokenRecord)> = tokens
        .into_iter()
        .filter(|v| !v.rec.revoked)
        .map(|v| {
            let rec = v.rec.clone();
            (v, rec)
        })
        .collect();
    if had_tokens && live.is_empty() {
        return Ok(Plan {
            changes: vec![],
            verdict: reject(
                "This action is not possible, since the token is locked",
                "Your token has been revoked; ask an administrator for a new one.",
                vec![],
            ),
        });
    }
    // privacyIDEA weighs token types by their first letter; the sort is stable (serial order).
    live.sort_by_key(|(v, _)| v.rec.token_type.as_str().as_bytes()[0]);

    let mut unusable_reasons: Vec<Unusable> = Vec::new();
    let reasons: Vec<Option<Unusable>> = live
        .iter_mut()
        .map(|(_, rec)| unusable(rec, &rules.source, now))
        .collect();
    let sole_usable = reasons.iter().filter(|r| r.is_none()).count() == 1;
    let mut classes: Vec<Option<Class>> = Vec::with_capacity(live.len());
    let mut others: Vec<(Versioned, TokenRecord)> = Vec::new();
    for ((_, rec), reason) in live.iter().zip(reasons) {
        let reason = match reason {
            None if !serves(verifier, rec, &rules.service)? => Some(Unusable::OtherService),
            other => other,
        };
        if let Some(reason) = reason {
            unusable_reasons.push(reason);
            classes.push(None);
            continue;
        }
        let class = match input {
            Input::Pass(pass) if rec.token_type == protocol::TokenType::FourEyes => {
                four_eyes(verifier, rec, pass, attempt, &mut others).await?
            }
            Input::Pass(pass) => {
                classify(verifier, rec, pass, now, sole_usable, rules, pins).await?
            }
            Input::Answer { otp, challenged } => {
                let key = verifier.open_secret(rec)?;
                let alg = algorithm(rec.token_type);
                let data = challenged
                    .iter()
                    .find(|c| c.serial == rec.serial)
                    .map(|c| c.data.as_slice())
                    .unwrap_or_default();
                if rec.token_type == protocol::TokenType::FourEyes {
                    let class =
                        four_eyes_answer(verifier, rec, data, otp.expose(), attempt, &mut others)
                            .await?;
                    classes.push(Some(class));
                    continue;
                }
                match alg.check_answer(rec, &key, data, otp.expose(), now) {
                    Some(cs) => Class::Valid(cs, alg.after_use(&key, otp.expose())),
                    None => Class::WrongOtp,
                }
            }
        };
        classes.push(Some(class));
    }

    let pick = |want: fn(&Class) -> bool| -> Vec<usize> {
        classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_ref().is_some_and(want))
            .map(|(i, _)| i)
            .collect()
    };
    let valid = pick(|c| matches!(c, Class::Valid(..)));
    let pin_matched = pick(|c| matches!(c, Class::PinMatched { .. }));
    let invalid = pick(|c| matches!(c, Class::Invalid));
    let wrong_otp = pick(|c| matches!(c, Class::WrongOtp));
    let challenge = pick(|c| matches!(c, Class::ChallengeRequest));
    let further = pick(|c| matches!(c, Class::FurtherChallenge { .. }));

    // privacyIDEA's auth_lastauth: checked after the OTP, on the token's previous success.
    let stale = rules.last_auth.is_some_and(|max| {
        valid
            .iter()
            .any(|&i| live[i].1.last_auth.is_some_and(|t| now - t > max))
    });
    let verdict = if stale {
        for &i in &valid {
            if let Some(Class::Valid(cs, material)) = &classes[i] {
                // The OTP is spent; the token's last success stays where it was.
                spend(
                    verifier,
                    &mut live[i].1,
                    cs,
                    material.as_ref().map(|m| m.as_slice()),
                )?;
            }
        }
        let mut v = reject(
            "The last successful authentication was too long ago (last_auth)",
            "This token has not been used for too long; ask an administrator.",
            serials(&live, &valid),
        );
        v.token_type = single_type(&live, &valid);
        v
    } else if !valid.is_empty() {
        for &i in &valid {
            if let Some(Class::Valid(cs, material)) = &classes[i] {
                let rec = &mut live[i].1;
                spend(verifier, rec, cs, material.as_ref().map(|m| m.as_slice()))?;
                rec.clear_source(&rules.source);
                rec.count_auth += 1;
                rec.count_auth_success += 1;
                rec.last_auth = Some(now);
            }
        }
        if rules.reset_all_user_tokens {
            // privacyIDEA resets every token of the list, the unusable ones included (for this
            // source: a success here forgives nobody else's failures).
            for (_, rec) in live.iter_mut() {
                rec.clear_source(&rules.source);
            }
        }
        let serials = serials(&live, &valid);
        let pin_change_due = valid
            .iter()
            .map(|&i| &live[i].1)
            .find(|rec| rec.next_pin_change.is_some_and(|due| due <= now))
            .map(|rec| rec.serial.clone());
        Verdict {
            accepted: true,
            detail: format!("matching {} tokens", valid.len()),
            user_message: String::new(),
            token_type: single_type(&live, &valid),
            serials,
            challenge: Vec::new(),
            may_retry: false,
            deliveries: Vec::new(),
            pin_change_due,
        }
    } else if !further.is_empty() {
        // Not a failure: the next round of the same challenge.
        let mut v = reject("further challenge", "", serials(&live, &further));
        v.token_type = single_type(&live, &further);
        for &i in &further {
            if let Some(Class::FurtherChallenge { message, data }) = &classes[i] {
                v.challenge.push(Challenged {
                    serial: live[i].1.serial.clone(),
                    message: Some(message.clone()),
                    data: data.clone(),
                });
            }
        }
        v
    } else if !challenge.is_empty() {
        // privacyIDEA: one transaction for all triggered tokens; no fail counter is charged.
        let mut v = reject(
            &format!("challenge triggered for {} tokens", challenge.len()),
            "",
            serials(&live, &challenge),
        );
        v.token_type = single_type(&live, &challenge);
        for &i in &challenge {
            let rec = &live[i].1;
            let key = verifier.open_secret(rec)?;
            match algorithm(rec.token_type).challenge(rec, &key, now) {
                Ok(c) => {
                    v.challenge.push(Challenged {
                        serial: rec.serial.clone(),
                        message: c.message,
                        data: c.data,
                    });
                    v.deliveries.extend(c.delivery);
                }
                Err(why) => {
                    tracing::warn!(serial = %rec.serial, "no challenge: {why}");
                }
            }
        }
        if v.challenge.is_empty() {
            v.detail = "no challenge could be created".into();
            v.user_message = GENERIC_REJECT.into();
        }
        v
    } else if !pin_matched.is_empty() {
        charge_failure(&mut live, &pin_matched, now, rules);
        let previous = pin_matched.len() == 1
            && matches!(
                classes[pin_matched[0]],
                Some(Class::PinMatched { previous_otp: true })
            );
        let mut v = if previous {
            reject(
                "wrong otp value. previous otp used again",
                "This one-time password was already used; wait for the next one.",
                serials(&live, &pin_matched),
            )
        } else {
            reject(
                "wrong otp value",
                GENERIC_REJECT,
                serials(&live, &pin_matched),
            )
        };
        v.token_type = single_type(&live, &pin_matched);
        v
    } else if !wrong_otp.is_empty() {
        charge_failure(&mut live, &wrong_otp, now, rules);
        let detail = match input {
            Input::Answer { .. } => "Response did not match the challenge.",
            Input::Pass(_) => "wrong otp value (PIN not checked)",
        };
        let mut v = reject(detail, GENERIC_REJECT, serials(&live, &wrong_otp));
        v.token_type = single_type(&live, &wrong_otp);
        v.may_retry = matches!(input, Input::Answer { .. })
            && wrong_otp
                .iter()
                .any(|&i| !live[i].1.locked_for(&rules.source, now));
        v
    } else if !invalid.is_empty() {
        charge_failure(&mut live, &invalid, now, rules);
        reject("wrong otp pin", GENERIC_REJECT, serials(&live, &invalid))
    } else if !unusable_reasons.is_empty() {
        unusable_reasons.dedup();
        let user = if unusable_reasons == [Unusable::Locked] {
            "Too many failed attempts: your token is locked for a while. Wait, or ask an \
             administrator to reset it."
        } else if unusable_reasons == [Unusable::Unverified] {
            "Your new token is not active yet: confirm it with two consecutive codes \
             (`pictl token verify SERIAL CODE NEXT-CODE`)."
        } else {
            GENERIC_REJECT
        };
        let detail: Vec<&str> = unusable_reasons.iter().map(|r| r.message()).collect();
        reject(&detail.join(", "), user, vec![])
    } else {
        reject(
            "No suitable token found for authentication.",
            GENERIC_REJECT,
            vec![],
        )
    };

    // A single-use token (registration code) is deleted by the login it let in, in the same
    // compare-and-swap, so it cannot be used twice even by concurrent logins.
    let spent: Vec<String> = if verdict.accepted {
        valid
            .iter()
            .map(|&i| &live[i].1)
            .filter(|rec| algorithm(rec.token_type).single_use())
            .map(|rec| rec.serial.clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut changes: Vec<(Versioned, Option<TokenRecord>)> = live
        .into_iter()
        .filter_map(|(v, rec)| {
            if spent.contains(&rec.serial) {
                Some((v, None))
            } else {
                (v.rec != rec).then_some((v, Some(rec)))
            }
        })
        .collect();
    // Other users' tokens a 4eyes login used: spent whether or not the rule was met, so an
    // overheard code is never good twice.
    changes.extend(others.into_iter().map(|(v, rec)| (v, Some(rec))));
    Ok(Plan { changes, verdict })
}

/// When and from where the attempt comes (for the tokens of other users a 4eyes login uses).
#[derive(Clone, Copy)]
struct Attempt<'a> {
    now: i64,
    source: &'a Source,
}

/// The most tokens of one realm a 4eyes check looks at.
const FOUR_EYES_MAX_TOKENS: usize = 10_000;

/// privacyIDEA's 4eyes. Single shot: the answer is codes (PIN+OTP) of tokens of the realms the
/// token names, separated by its separator; each realm needs that many distinct tokens. The
/// 4eyes token's PIN alone starts the challenge form instead: one code per prompt until the rule
/// is met. Tokens used are added to `others` with their new counters; tokens of the 4eyes user
/// themself never count.
async fn four_eyes(
    verifier: &impl Verifier,
    rec: &TokenRecord,
    pass: &Secret,
    attempt: Attempt<'_>,
    others: &mut Vec<(Versioned, TokenRecord)>,
) -> Result<Class, PidError> {
    if verifier
        .verify_pin(rec.pin_hash.as_deref(), pass.expose())
        .await?
    {
        return Ok(Class::ChallengeRequest);
    }
    let req = four_eyes_requirement(verifier, rec)?;
    let mut used: Vec<(String, String)> = Vec::new();
    for part in pass.expose().split(req.separator).filter(|p| !p.is_empty()) {
        four_eyes_match(verifier, rec, &req, &mut used, part, attempt, others).await?;
    }
    Ok(if four_eyes_missing(&req, &used).is_none() {
        Class::Valid(unchanged(rec), None)
    } else {
        Class::Invalid
    })
}

/// One answer of the 4eyes challenge form: `data` holds the tokens used so far
/// (`realm TAB serial` lines).
async fn four_eyes_answer(
    verifier: &impl Verifier,
    rec: &TokenRecord,
    data: &[u8],
    answer: &str,
    attempt: Attempt<'_>,
    others: &mut Vec<(Versioned, TokenRecord)>,
) -> Result<Class, PidError> {
    let req = four_eyes_requirement(verifier, rec)?;
    let mut used: Vec<(String, String)> = std::str::from_utf8(data)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(r, s)| (r.to_owned(), s.to_owned()))
        .collect();
    if !four_eyes_match(verifier, rec, &req, &mut used, answer, attempt, others).await? {
        return Ok(Class::WrongOtp);
    }
    Ok(match four_eyes_missing(&req, &used) {
        None => Class::Valid(unchanged(rec), None),
        Some((realm, n)) => Class::FurtherChallenge {
            message: crate::tokens::foureyes::prompt(&realm, n),
            data: Zeroizing::new(
                used.iter()
                    .map(|(r, s)| format!("{r}\t{s}\n"))
                    .collect::<String>()
                    .into_bytes(),
            ),
        },
    })
}

fn unchanged(rec: &TokenRecord) -> CounterState {
    CounterState {
        count: rec.count,
        time_shift: rec.time_shift,
    }
}

fn four_eyes_requirement(
    verifier: &impl Verifier,
    rec: &TokenRecord,
) -> Result<crate::tokens::foureyes::Requirement, PidError> {
    let material = verifier.open_secret(rec)?;
    crate::tokens::foureyes::requirement(&material)
        .ok_or_else(|| PidError::Corrupt(format!("4eyes token {} has no requirement", rec.serial)))
}

/// The first realm still short of tokens, and by how many; `None`: the rule is met.
fn four_eyes_missing(
    req: &crate::tokens::foureyes::Requirement,
    used: &[(String, String)],
) -> Option<(String, usize)> {
    req.realms.iter().find_map(|(realm, n)| {
        let have = used.iter().filter(|(r, _)| r == realm).count();
        (have < *n).then(|| (realm.clone(), n - have))
    })
}

/// Find the token of a realm still short whose code (PIN+OTP) `part` is; spend it. `false`: no
/// such token.
async fn four_eyes_match(
    verifier: &impl Verifier,
    rec: &TokenRecord,
    req: &crate::tokens::foureyes::Requirement,
    used: &mut Vec<(String, String)>,
    part: &str,
    attempt: Attempt<'_>,
    others: &mut Vec<(Versioned, TokenRecord)>,
) -> Result<bool, PidError> {
    let now = attempt.now;
    for (realm, n) in &req.realms {
        if used.iter().filter(|(r, _)| r == realm).count() >= *n {
            continue;
        }
        for candidate in verifier.tokens_in_realm(realm, FOUR_EYES_MAX_TOKENS)? {
            let t = &candidate.rec;
            if t.owner == rec.owner
                || t.token_type == protocol::TokenType::FourEyes
                || used.iter().any(|(_, s)| *s == t.serial)
                || others.iter().any(|(o, _)| o.rec.serial == t.serial)
                || t.revoked
                || unusable(t, attempt.source, now).is_some()
            {
                continue;
            }
            let digits = t.digits as usize;
            if part.len() < digits || !part.is_char_boundary(part.len() - digits) {
                continue;
            }
            let (pin, otp) = part.split_at(part.len() - digits);
            let key = verifier.open_secret(t)?;
            let Some(cs) = algorithm(t.token_type).check(t, &key, otp, now) else {
                continue;
            };
            if !verifier.verify_pin(t.pin_hash.as_deref(), pin).await? {
                continue;
            }
            let mut spent = t.clone();
            spent.count = cs.count;
            spent.time_shift = cs.time_shift;
            spent.last_auth = Some(now);
            others.push((candidate.clone(), spent));
            used.push((realm.clone(), t.serial.clone()));
            return Ok(true);
        }
    }
    Ok(false)
}

/// Record that the token's answer was used: its counter state, and its new secrets if using
/// them changed them.
fn spend(
    verifier: &impl Verifier,
    rec: &mut TokenRecord,
    cs: &CounterState,
    material: Option<&[u8]>,
) -> Result<(), PidError> {
    rec.count = cs.count;
    rec.time_shift = cs.time_shift;
    if let Some(m) = material {
        rec.otpkey = verifier.seal_secret(&rec.serial, m)?;
    }
    Ok(())
}

fn reject(detail: &str, user: &str, serials: Vec<String>) -> Verdict {
    Verdict {
        accepted: false,
        detail: detail.to_owned(),
        user_message: user.to_owned(),
        serials,
        token_type: None,
        challenge: Vec::new(),
        may_retry: false,
        deliveries: Vec::new(),
        pin_change_due: None,
    }
}

fn serials(live: &[(Versioned, TokenRecord)], idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| live[i].1.serial.clone()).collect()
}

fn single_type(live: &[(Versioned, TokenRecord)], idx: &[usize]) -> Option<String> {
    let first = live.get(*idx.first()?)?.1.token_type;
    if idx.iter().all(|&i| live[i].1.token_type == first) {
        Some(first.as_str().to_owned())
    } else {
        Some("undetermined".into())
    }
}

/// privacyIDEA `inc_failcount` + `inc_count_auth`, with the failure counted for its source
/// (see `lockout`).
fn charge_failure(live: &mut [(Versioned, TokenRecord)], idx: &[usize], now: i64, rules: &Rules) {
    for &i in idx {
        let rec = &mut live[i].1;
        rec.charge(&rules.source, now, &rules.lockout);
        rec.count_auth += 1;
    }
}

/// privacyIDEA `check_all`, in its order.
pub fn unusable(rec: &TokenRecord, source: &Source, now: i64) -> Option<Unusable> {
    if (rec.count_auth_max > 0 && rec.count_auth >= rec.count_auth_max)
        || (rec.count_auth_success_max > 0 && rec.count_auth_success >= rec.count_auth_success_max)
    {
        return Some(Unusable::CounterExceeded);
    }
    if rec.rollout == crate::store::Rollout::Verify {
        return Some(Unusable::Unverified);
    }
    if !rec.active {
        return Some(Unusable::Disabled);
    }
    if rec.locked_for(source, now) {
        return Some(Unusable::Locked);
    }
    if rec.validity_start.is_some_and(|s| now < s) || rec.validity_end.is_some_and(|e| now > e) {
        return Some(Unusable::OutsideValidity);
    }
    None
}

/// Split PIN and OTP by the token's OTP length (PIN first, privacyIDEA's PrependPin default)
/// and classify the token.
///
/// The OTP is checked first. argon2 is the expensive part of a login, and a guessed OTP must not
/// buy an attacker a PIN check: when this is the user's only usable token and the OTP is wrong,
/// privacyIDEA's outcome does not depend on the PIN (the token's fail counter rises whether the
/// PIN matched or not), so the PIN is only verified to show the "previous OTP" hint. With several
/// usable tokens the PINs decide whose counters rise, so they are all checked.
async fn classify<V: Verifier>(
    verifier: &V,
    rec: &TokenRecord,
    pass: &Secret,
    now: i64,
    sole_usable: bool,
    rules: &Rules,
    pins: &mut PinCheck<'_, V>,
) -> Result<Class, PidError> {
    // privacyIDEA's is_challenge_request: the whole answer is the PIN (as `otppin` defines it)
    // of a token whose type the policy lets challenge (an empty answer matches a token without
    // PIN).
    let alg = algorithm(rec.token_type);
    if (rules.challenge_types.contains(&rec.token_type) || alg.challenges_on_pin())
        && pins.matches(rec, pass.expose()).await?
    {
        return Ok(Class::ChallengeRequest);
    }
    let pass = pass.expose();
    let digits = rec.digits as usize;
    if pass.len() < digits || !pass.is_char_boundary(pass.len() - digits) {
        return Ok(Class::Invalid);
    }
    let (pin, otp) = pass.split_at(pass.len() - digits);
    let key = verifier.open_secret(rec)?;
    let matched = match alg.check(rec, &key, otp, now) {
        // Locally plausible; the validation server decides (a failure to ask fails closed).
        Some(cs) if alg.verified_remotely() => verifier.verify_yubico(otp).await?.then_some(cs),
        other => other,
    };
    let previous_otp = matched.is_none() && alg.is_previous_otp(rec, &key, otp, now);
    if sole_usable && matched.is_none() && !previous_otp {
        if pins.runs_argon2(rec) {
            verifier.wait_as_long_as_a_pin_check().await;
        }
        return Ok(Class::WrongOtp);
    }
    // spass: an empty PIN part never passes (privacyIDEA would accept an empty answer for a
    // spass without PIN, or with otppin = none).
    let pin_ok = !(alg.needs_pin() && pin.is_empty()) && pins.matches(rec, pin).await?;
    Ok(match (pin_ok, matched) {
        (true, Some(cs)) => Class::Valid(cs, alg.after_use(&key, otp)),
        (true, None) => Class::PinMatched { previous_otp },
        (false, _) => Class::Invalid,
    })
}

#[cfg(test)]
mod tests;
