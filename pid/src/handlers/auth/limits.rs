//! Limits on logins beyond the tokens' fail counters: users' rate
//! (`limits.user_auth_per_minute`), and privacyIDEA's `auth_max_fail` / `auth_max_success`
//! per user and period.

use super::{unavailable, Decision, Login, Turn};
use crate::audit;
use crate::error::PidError;
use crate::policy::{Action, AuthLimit};
use crate::store::HistoryKeep;
use protocol::Outcome;

/// Threat: a local user guessing OTPs through a screen locker. Users (su and sudo count for the
/// account that started them) may start `limits.user_auth_per_minute` logins a minute; root's
/// logins (sshd, login) are bounded by the fail counters. Counts this login; whether it is one
/// too many.
pub(super) fn over_user_rate(turn: &Turn<'_>, now: i64) -> bool {
    let per_minute = turn.live.config.limits.user_auth_per_minute;
    !turn.caller.is_root_account() && !turn.state.rate.allow(turn.caller.account, now, per_minute)
}

/// privacyIDEA's `auth_max_fail` / `auth_max_success`: the user's logins in the period have
/// reached a limit, so this one is refused without looking at tokens or passwords. The message.
fn over_limit(turn: &Turn<'_>, login: &Login) -> Result<Option<String>, PidError> {
    let (live, now) = (&turn.live, login.now);
    let ctx = login.context();
    let limits = [
        (false, live.policies.limit(Action::AuthMaxFail, &ctx)),
        (true, live.policies.limit(Action::AuthMaxSuccess, &ctx)),
    ];
    if limits.iter().all(|(_, l)| l.is_none()) {
        return Ok(None);
    }
    let history = turn.state.store.auth_history(&login.user.owner)?;
    for (success, limit) in limits {
        let Some(AuthLimit {
            count,
            secs,
            period,
            ..
        }) = limit
        else {
            continue;
        };
        if history.count_since(success, now - secs) >= count as usize {
            let kind = if success { "successful" } else { "failed" };
            return Ok(Some(format!(
                "Only {count} {kind} authentications per {period} allowed."
            )));
        }
    }
    Ok(None)
}

/// The login goes on (its audit entry handed back) unless a limit policy refuses it; then the
/// refusal, audited, is the decision.
pub(super) fn refuse_over_limit(
    turn: &Turn<'_>,
    login: &Login,
    mut entry: audit::Draft,
) -> Result<audit::Draft, Decision> {
    match over_limit(turn, login) {
        Ok(None) => Ok(entry),
        Ok(Some(msg)) => {
            entry.message = msg.clone();
            Err(Decision::done(Outcome::Reject { message: msg }).audited(entry))
        }
        Err(e) => Err(unavailable(entry, &e)),
    }
}

/// Remember this login's outcome when a limit policy applies to the user. Durable with the
/// group commit the answer waits for.
pub(super) fn record_outcome(turn: &Turn<'_>, login: &Login, success: bool) {
    let ctx = login.context();
    let keep = [Action::AuthMaxFail, Action::AuthMaxSuccess]
        .into_iter()
        .filter_map(|a| turn.live.policies.limit(a, &ctx))
        .fold(None, |acc: Option<HistoryKeep>, l| {
            let (count, secs) = (l.count as usize, l.secs);
            Some(match acc {
                None => HistoryKeep { count, secs },
                Some(k) => HistoryKeep {
                    count: k.count.max(count),
                    secs: k.secs.max(secs),
                },
            })
        });
    if let Some(keep) = keep {
        if let Err(e) = turn
            .state
            .store
            .record_auth(&login.user.owner, login.now, success, keep)
        {
            // Fail closed on the next login instead: its history read fails the same way.
            tracing::error!(
                error = %crate::error::chain(&e),
                "could not record the login for auth_max_* policies"
            );
        }
    }
}
