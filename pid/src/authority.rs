//! Who may manage which tokens: the answer for an `Admin` request, decided in dispatch before any
//! handler runs, then checked against each request's target once the target is known.
//!
//! - root manages everything (restricting root on its own host would be theatre);
//! - members of `admin_group` manage everything while no admin policy exists; once one does,
//!   they may do exactly what an admin policy that matches their groups and the target allows
//!   (privacyIDEA's admin policies);
//! - any other caller manages only the tokens of its own host account (SO_PEERCRED uid =
//!   the account's uid), and only what a `user` policy allows (privacyIDEA's self-service).
//!   It may always list and show its own tokens, never anyone else's: other users' tokens are
//!   reported as not found, so their existence does not leak.

use crate::caller::Caller;
use crate::error::PidError;
use crate::policy::{Action, Context, Scope};
use crate::store::Owner;
use crate::users::ResolvedUser;
use crate::{Live, State};
use protocol::TokenType;

pub enum Authority {
    Root,
    Admin {
        uid: u32,
        /// The groups named in admin policies that this caller belongs to.
        groups: Vec<String>,
    },
    SelfService {
        user: ResolvedUser,
    },
}

/// Decide the caller's authority. Blocking NSS work runs off the executor.
pub async fn authorize(state: &State, caller: &Caller) -> Result<Authority, PidError> {
    if caller.uid == 0 {
        return Ok(Authority::Root);
    }
    let live = state.live();
    if caller.is_admin {
        let names = live.policies.admin_group_names();
        let (uid, gid) = (caller.uid, caller.gid);
        let groups = tokio::task::spawn_blocking(move || {
            names
                .into_iter()
                .filter(|g| crate::caller::in_group(uid, gid, g))
                .collect()
        })
        .await
        .map_err(|e| PidError::task("group lookup", e))?;
        return Ok(Authority::Admin {
            uid: caller.uid,
            groups,
        });
    }
    let denied = || {
        PidError::PermissionDenied(format!(
            "uid {} may not administer tokens: only root and members of group {:?} (pid.toml \
             admin_group) can; users may manage their own tokens where a `user` policy allows it",
            caller.uid, live.config.admin_group
        ))
    };
    let uid = caller.uid;
    let name = tokio::task::spawn_blocking(move || {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    })
    .await
    .map_err(|e| PidError::task("user lookup", e))?
    .ok_or_else(denied)?;
    let (login, realm) = live.realms.split(&name, None);
    match state.lookup_user(login, realm).await? {
        Some(user) if user.host_uid == Some(caller.uid) => Ok(Authority::SelfService { user }),
        _ => Err(denied()),
    }
}

impl Authority {
    pub fn is_self_service(&self) -> bool {
        matches!(self, Authority::SelfService { .. })
    }

    /// The caller's own account, for self-service.
    pub fn own(&self) -> Option<&ResolvedUser> {
        match self {
            Authority::SelfService { user } => Some(user),
            _ => None,
        }
    }

    /// May the caller do `action` to tokens of `target` (`None`: unassigned tokens, or all
    /// tokens for listings)? `token_type` matters for `enroll`.
    pub fn check(
        &self,
        live: &Live,
        action: Action,
        target: Option<&Owner>,
        token_type: Option<TokenType>,
        now: i64,
    ) -> Result<(), PidError> {
        if action.needs_explicit_policy() {
            return self.check_explicit(live, action, target, token_type, now);
        }
        match self {
            Authority::Root => Ok(()),
            Authority::Admin { .. } if !live.policies.restricts_admins() => Ok(()),
            Authority::Admin { uid, groups } => {
                if live.policies.allows(
                    Scope::Admin,
                    action,
                    &context(target, groups, now),
                    token_type,
                ) {
                    Ok(())
                } else {
                    Err(PidError::PermissionDenied(format!(
                        "no admin policy lets uid {uid} {} {}; see the [[policy]] entries with \
                         scope = \"admin\" in pid.toml (the action is {:?})",
                        describe(action, token_type),
                        target.map_or("here".to_owned(), |o| match o.login.is_empty() {
                            // A realm's token pool: no user.
                            true => format!("in realm {}", o.realm),
                            false => format!("for {}@{}", o.login, o.realm),
                        }),
                        action.name()
                    )))
                }
            }
            Authority::SelfService { user } => {
                if action != Action::TokenList && !action.scopes().contains(&Scope::User) {
                    return Err(PidError::PermissionDenied(format!(
                        "only administrators may {}; users manage their own tokens where a \
                         `user` policy allows it",
                        describe(action, token_type)
                    )));
                }
                // Another user's token is "not found": its existence is not the caller's business.
                if target != Some(&user.owner) {
                    return Err(PidError::NotFound(
                        "no such token among yours; `pictl token list` shows them".into(),
                    ));
                }
                if matches!(action, Action::TokenList)
                    || live.policies.allows(
                        Scope::User,
                        action,
                        &context(target, &[], now),
                        token_type,
                    )
                {
                    Ok(())
                } else {
                    Err(PidError::PermissionDenied(format!(
                        "users may not {} here; ask an administrator (or see the [[policy]] \
                         entries with scope = \"user\" in pid.toml, action {:?})",
                        describe(action, token_type),
                        action.name()
                    )))
                }
            }
        }
    }

    /// An action only an admin policy that names it allows (`Action::needs_explicit_policy`):
    /// to root through a policy without an `admin_group` condition, to an administrator through
    /// one that matches their groups, never to a user.
    fn check_explicit(
        &self,
        live: &Live,
        action: Action,
        target: Option<&Owner>,
        token_type: Option<TokenType>,
        now: i64,
    ) -> Result<(), PidError> {
        let groups: &[String] = match self {
            Authority::Root => &[],
            Authority::Admin { groups, .. } => groups,
            Authority::SelfService { .. } => {
                return Err(PidError::PermissionDenied(format!(
                    "only administrators may {}",
                    describe(action, token_type)
                )))
            }
        };
        if live.policies.allows(
            Scope::Admin,
            action,
            &context(target, groups, now),
            token_type,
        ) {
            return Ok(());
        }
        Err(PidError::PermissionDenied(format!(
            "nobody may {} unless an admin policy allows it, root included: add a [[policy]] with \
             scope = \"admin\" and actions = {{ {} = true }} to pid.toml (narrowed with realm, \
             user or admin_group conditions), then `systemctl reload pid`",
            describe(action, token_type),
            action.name()
        )))
    }
}

/// Policies of the user and admin scopes match the target user's realm and login, and admin
/// policies the caller's groups.
fn context<'a>(target: Option<&'a Owner>, groups: &'a [String], now: i64) -> Context<'a> {
    Context {
        admin_groups: groups,
        ..Context::of_owner(target, now)
    }
}

/// What the caller asked for, in words. Policies name actions (`auditlog`), people ask to read
/// the audit trail: the messages say the latter, and add the name where a policy could allow it.
fn describe(action: Action, token_type: Option<TokenType>) -> String {
    let words = match action {
        Action::Enroll => {
            return match token_type {
                Some(t) => format!("enroll {} tokens", t.as_str()),
                None => "enroll tokens".into(),
            }
        }
        Action::Delete => "delete tokens",
        Action::Enable => "enable tokens",
        Action::Disable => "disable tokens",
        Action::Reset => "clear tokens' fail counters",
        Action::Resync => "resynchronise tokens",
        Action::SetPin => "set token PINs",
        Action::Revoke => "revoke tokens",
        Action::Set => "change token settings",
        Action::Assign => "give tokens to users",
        Action::Unassign => "take tokens away from users",
        Action::TokenList => "list tokens",
        Action::AuditLog => "read the audit trail",
        Action::PolicyCheck => "see which policies apply to a login",
        Action::ManageMachineTokens => "attach tokens to hosts or detach them",
        Action::GetMultiOtp => "see the next codes of tokens",
        Action::KeepOneToken => "delete their last token",
        Action::FirstTokenByAdmin => "enroll their first token",
        Action::TokenRealms => "manage token pools",
        // Authentication and enrollment settings are never asked for as operations.
        other => return format!("use {}", other.name()),
    };
    words.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_in_words_what_was_asked_for() {
        assert_eq!(describe(Action::AuditLog, None), "read the audit trail");
        assert_eq!(
            describe(Action::Enroll, Some(TokenType::Totp)),
            "enroll totp tokens"
        );
        // Every operation a user or an administrator can be refused.
        let operations = Action::ALL.into_iter().filter(|a| {
            a.scopes()
                .iter()
                .any(|s| matches!(s, Scope::User | Scope::Admin))
        });
        for action in operations {
            let words = describe(action, None);
            assert!(
                !words.starts_with("use "),
                "{action:?} has no words: {words}"
            );
            for name in ["auditlog", "tokenlist", "policycheck", "setpin", "_"] {
                assert!(!words.contains(name), "{action:?}: {words}");
            }
        }
    }
}
