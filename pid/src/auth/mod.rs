//! Authentication: the check pipeline, what it asks the daemon (`Verifier`), fail counters per
//! source, and the per-connection conversation sessions.

pub mod check;
pub mod lockout;
pub mod pin_change;
pub mod session;
mod verifier;

pub use verifier::Verifier;

use crate::error::PidError;
use crate::policy::OtpPin;
use crate::store::{Owner, Swap, Versioned};
use crate::users::ResolvedUser;
use crate::State;
use check::Verdict;

/// The user's tokens that take part in PAM logins. SSH keys are for sshd, not typed: a user
/// whose only token is a key has no token here (no prompt, no fail counter).
pub fn login_tokens(state: &State, owner: &Owner) -> Result<Vec<Versioned>, PidError> {
    let mut tokens = state.store.tokens_of(owner)?;
    tokens.retain(|v| crate::tokens::algorithm(v.rec.token_type).for_login());
    Ok(tokens)
}

/// How often a check is redone when a token changed under it before giving up.
const MAX_RETRIES: usize = 8;

/// Check PIN+OTP for a user and store the result; the caller still has to wait for durability
/// before it may report success. `prefetched` are the user's tokens if the caller just read them
/// (a login with the code in AuthBegin); a conflicting change makes the retry read them again.
pub async fn check_user_pass(
    state: &State,
    user: &ResolvedUser,
    input: check::Input<'_>,
    mut prefetched: Option<Vec<Versioned>>,
    rules: &check::Rules,
    otppin: OtpPin,
) -> Result<Verdict, PidError> {
    let owner = &user.owner;
    let mut pins = check::PinCheck::new(state, user, otppin);
    // One check per user at a time: concurrent logins of one user would only collide in the CAS
    // and redo argon2 work; different users never wait for each other.
    let _turn = state.user_locks.lock(owner).await;
    for _ in 0..MAX_RETRIES {
        let tokens = match prefetched.take() {
            Some(t) => t,
            None => login_tokens(state, owner)?,
        };
        let now = state.clock.now();
        let plan = check::evaluate(state, tokens, input, now, rules, &mut pins).await?;
        let changes: Vec<_> = plan
            .changes
            .iter()
            .map(|(old, new)| (old, new.as_ref()))
            .collect();
        if changes.is_empty() || state.store.swap_tokens(&changes)? == Swap::Done {
            return Ok(plan.verdict);
        }
    }
    Err(PidError::Internal(
        "token kept changing during the check".into(),
    ))
}
