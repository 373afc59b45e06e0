//! privacyIDEA's `autoassignment`: a user without a token claims an unassigned token of their
//! realm's pool by logging in with its code.
//!
//! Tried only for a known user who has no login token and whom the enrollment policy
//! `autoassignment` matches; the answer is then never passed on by `passOnNoToken` or
//! `passthru`: a code that matches no pool token is refused like any wrong code.
//!
//! Threats and invariants:
//! - A pool token is a way in for whoever holds it, so the code alone never claims one. With
//!   `userstore` the part before the code must be the user's password in the user store that
//!   found them; it is asked only once a pool token matched, so a guessed code costs no bind.
//!   With `any_pin` the part before the code becomes the PIN (within the PIN rules): whoever
//!   first types a pool token's code owns it, as in privacyIDEA.
//! - Two users racing for one token: the claim is a compare-and-swap against the record the
//!   code was checked on, so exactly one wins; the loser's next read no longer finds the token
//!   in the pool. Logins of one user run one at a time (`user_locks`), so a user cannot claim
//!   two tokens with two concurrent logins either.
//! - The code is spent in the same swap (the counter moves past it), and the answer waits
//!   until the swap is durable, so it cannot be replayed, not even after a crash.
//! - Cost: at most `MAX_POOL_SCAN` pool tokens are looked at per login (a key opened and the
//!   type's window of HMACs each, off the executor); the user's rate limits
//!   (`limits.user_auth_per_minute`, `auth_max_fail`) bound how often. Pool tokens' fail
//!   counters are not charged: a guesser could otherwise lock the whole box.

use super::{limits, unavailable, Decision, Login, Turn};
use crate::audit;
use crate::auth::check::GENERIC_REJECT;
use crate::auth::Verifier;
use crate::error::PidError;
use crate::policy::Autoassign;
use crate::store::{Rollout, Swap, TokenRecord, Versioned};
use crate::tokens::{algorithm, CounterState};
use protocol::{Outcome, Secret};
use zeroize::Zeroizing;

/// The most tokens of a realm's pool one login looks at. A larger pool still works, but only
/// its first tokens (by serial) can be claimed until those are taken.
pub const MAX_POOL_SCAN: usize = 10_000;

/// How often a claim is redone when a pool token changed under it.
const MAX_RETRIES: usize = 4;

/// What a claim came to.
enum Claim {
    /// The token is the user's now (durable with the next group commit).
    Claimed { serial: String, token_type: String },
    /// Refused; the detail is for the audit trail.
    Refused(String),
}

/// Check `pass` (password or PIN, then a pool token's code) and, if it holds, make the token
/// the user's.
pub(super) async fn claim(
    turn: &Turn<'_>,
    login: Login,
    pass: Secret,
    mode: Autoassign,
    policy: &str,
) -> Decision {
    let entry = login.audit_entry(turn);
    let mut entry = match limits::refuse_over_limit(turn, &login, entry) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let claimed = match try_claim(turn, &login, &pass, mode).await {
        Ok(c) => c,
        Err(e) => return unavailable(entry, &e),
    };
    let accepted = matches!(claimed, Claim::Claimed { .. });
    limits::record_outcome(turn, &login, accepted);
    entry.success = accepted;
    let realm = &login.user.owner.realm;
    match claimed {
        Claim::Claimed { serial, token_type } => {
            entry.message =
                format!("token {serial} of the pool of realm {realm} assigned due to '{policy}'");
            entry.serial = Some(serial.clone());
            entry.token_type = Some(token_type.clone());
            let mut assigned = audit::entry(turn.caller, "autoassign", turn.state.clock.now());
            assigned.user = Some(login.user.owner.login.clone());
            assigned.realm = Some(realm.clone());
            assigned.service = Some(login.service.clone());
            assigned.rhost = login.rhost.clone();
            assigned.serial = Some(serial);
            assigned.token_type = Some(token_type);
            assigned.success = true;
            assigned.message = entry.message.clone();
            Decision::done(Outcome::Accept {
                message: String::new(),
            })
            .audited(entry)
            .audited(assigned)
            .once_durable()
        }
        Claim::Refused(detail) => {
            entry.message = format!("{detail} (autoassignment due to '{policy}')");
            Decision::done(Outcome::Reject {
                message: GENERIC_REJECT.into(),
            })
            .audited(entry)
            .once_durable()
        }
    }
}

async fn try_claim(
    turn: &Turn<'_>,
    login: &Login,
    pass: &Secret,
    mode: Autoassign,
) -> Result<Claim, PidError> {
    let state = turn.state;
    let user = &login.user;
    let owner = &user.owner;
    let _turn = state.user_locks.lock(owner).await;
    // The PIN part that passed its check (the password is not asked twice when a claim is
    // redone after a conflict).
    let mut proven: Option<Zeroizing<String>> = None;
    for _ in 0..MAX_RETRIES {
        if !crate::auth::login_tokens(state, owner)?.is_empty() {
            return Ok(Claim::Refused(
                "the user has a token now; only a user without one may claim a pool token".into(),
            ));
        }
        let (pool, _) = state.store.pool_tokens(&owner.realm, None, MAX_POOL_SCAN)?;
        let now = state.clock.now();
        let cipher = state.cipher.clone();
        let typed = Zeroizing::new(pass.expose().to_owned());
        let found = tokio::task::spawn_blocking(move || matching(&cipher, pool, &typed, now))
            .await
            .map_err(|e| PidError::task("pool search", e))??;
        let Some(found) = found else {
            return Ok(Claim::Refused(
                "no token of the realm's pool matches".into(),
            ));
        };
        let pin_hash = match mode {
            Autoassign::UserStore => {
                let known = proven.as_ref().is_some_and(|p| **p == *found.pin);
                // An empty password never reaches a user store (an empty LDAP bind is
                // anonymous).
                if !known
                    && (found.pin.is_empty()
                        || !state
                            .check_user_password(user, Secret::new(found.pin.as_str()))
                            .await?)
                {
                    return Ok(Claim::Refused("wrong user store password".into()));
                }
                None
            }
            Autoassign::AnyPin => {
                let ctx = login.context();
                if let Err(why) = turn.live.policies.pin_rules(&ctx).check(Some(&found.pin)) {
                    return Ok(Claim::Refused(format!("the PIN typed is refused: {why}")));
                }
                match found.pin.is_empty() {
                    true => None,
                    false => Some(state.hash_pin(Secret::new(found.pin.as_str())).await?),
                }
            }
        };
        proven = Some(found.pin.clone());
        // The tokens are the person's, as with any assignment (a reused login name with
        // another person's tokens is refused here, but this user has none).
        state.bind_tokens_to(user)?;
        let old = &found.token;
        let mut rec = old.rec.clone();
        rec.owner = Some(owner.clone());
        rec.pool_realm = None;
        rec.pin_hash = pin_hash;
        rec.count = found.state.count;
        rec.time_shift = found.state.time_shift;
        rec.count_auth += 1;
        rec.count_auth_success += 1;
        rec.last_auth = Some(now);
        if state.store.swap_tokens(&[(old, Some(&rec))])? == Swap::Done {
            return Ok(Claim::Claimed {
                serial: rec.serial,
                token_type: rec.token_type.as_str().to_owned(),
            });
        }
    }
    Err(PidError::Internal(
        "the realm's pool kept changing during the claim".into(),
    ))
}

/// A pool token whose code ends what the user typed.
struct Found {
    token: Versioned,
    /// What came before the code.
    pin: Zeroizing<String>,
    /// The token's counter state once the code is spent.
    state: CounterState,
}

/// The first token of `pool` (in serial order) that may be claimed now and whose code, for
/// its OTP length, ends `typed`.
fn matching(
    cipher: &crate::crypto::Cipher,
    pool: Vec<Versioned>,
    typed: &str,
    now: i64,
) -> Result<Option<Found>, PidError> {
    for token in pool {
        if !claimable(&token.rec, now) {
            continue;
        }
        let digits = usize::from(token.rec.digits);
        let Some(at) = typed.len().checked_sub(digits) else {
            continue;
        };
        if !typed.is_char_boundary(at) {
            continue;
        }
        let (pin, otp) = typed.split_at(at);
        if !otp.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let key = cipher.open(&token.rec.serial, "otpkey", &token.rec.otpkey)?;
        if let Some(state) = algorithm(token.rec.token_type).check(&token.rec, &key, otp, now) {
            return Ok(Some(Found {
                pin: Zeroizing::new(pin.to_owned()),
                token,
                state,
            }));
        }
    }
    Ok(None)
}

/// Only HOTP and TOTP tokens in use, unlocked and within their validity period can be claimed:
/// a disabled or revoked token in the pool stays there.
fn claimable(rec: &TokenRecord, now: i64) -> bool {
    crate::tokens::shows_code_sequence(rec.token_type)
        && rec.owner.is_none()
        && rec.active
        && !rec.revoked
        && !rec.locked
        && rec.rollout == Rollout::Enrolled
        && rec.validity_start.is_none_or(|t| now >= t)
        && rec.validity_end.is_none_or(|t| now <= t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    #[test]
    fn only_usable_hotp_and_totp_tokens_can_be_claimed() {
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        assert!(claimable(&rec, 100));
        rec.validity_end = Some(99);
        assert!(!claimable(&rec, 100));
        rec.validity_end = None;
        rec.active = false;
        assert!(!claimable(&rec, 100));
        rec.active = true;
        rec.rollout = Rollout::Verify;
        assert!(!claimable(&rec, 100));
        let spass = record(TokenType::Spass, 6, HashAlgorithm::Sha1);
        assert!(!claimable(&spass, 100));
    }
}
