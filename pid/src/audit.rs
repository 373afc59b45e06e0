//! The audit trail: every authentication attempt and every administrative action, in the store,
//! in the same group commit as the change it records. Never a secret: entries carry names,
//! serials and privacyIDEA-style messages only.
//!
//! Threat: a local account filling the disk through the audit trail (a full disk fails every
//! login). Whatever a user (any account but root, see `Caller::account`) makes the daemon
//! record goes through a budget: `audit.user_entries_per_minute` entries per user and minute are
//! recorded one by one, the rest only counted, and once a minute each user over budget gets one
//! summary entry ("uid 1004: 861233 more requests …"). Root's entries and those of
//! administrators working under their own uid are always recorded. The trail as a whole is
//! bounded by `audit.keep_days` and `audit.max_entries` (see `State::prune_audit`).

use crate::caller::Caller;
use crate::State;
use protocol::AuditEntry;
use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::Instant;

/// An entry being written, with who it is charged to.
#[derive(Clone)]
pub struct Draft {
    entry: AuditEntry,
    /// The user whose budget the entry counts against; `None`: always recorded.
    budget: Option<u32>,
}

impl Deref for Draft {
    type Target = AuditEntry;
    fn deref(&self) -> &AuditEntry {
        &self.entry
    }
}

impl DerefMut for Draft {
    fn deref_mut(&mut self) -> &mut AuditEntry {
        &mut self.entry
    }
}

/// Start an entry for `action` by `caller` at `now`.
pub fn entry(caller: &Caller, action: &str, now: i64) -> Draft {
    // An administrator (admin_group) under its own uid is trusted with the trail; a set-uid
    // program started by a user (su, sudo) is not.
    let trusted = caller.is_root_account() || (caller.is_admin && caller.uid != 0);
    Draft {
        entry: blank(caller.uid, caller.pid, action, now),
        budget: (!trusted).then_some(caller.account),
    }
}

fn blank(uid: u32, pid: i32, action: &str, now: i64) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time: now,
        caller_uid: uid,
        caller_pid: pid,
        action: action.to_owned(),
        user: None,
        realm: None,
        serial: None,
        token_type: None,
        service: None,
        rhost: None,
        success: false,
        message: String::new(),
    }
}

/// Queue an entry; it is written with the next group commit, which every caller that answers a
/// login or an admin request waits for. A user over budget only has it counted.
pub fn record(state: &State, draft: Draft) {
    if let Some(account) = draft.budget {
        let per_minute = state.live().config.audit.user_entries_per_minute;
        if !state.audit_budget.spend(account, &draft.entry, per_minute) {
            return;
        }
    }
    state.store.append_audit(draft.entry);
}

/// A user's connection refused over its quota: counted against its budget like a refused
/// request (a flood of connections must not write a record each).
pub fn refused_connection(state: &State, account: u32) {
    let mut draft = Draft {
        entry: blank(account, 0, "connect", state.clock.now()),
        budget: Some(account),
    };
    draft.message = "refused: over the connection quota (limits.user_connections*)".into();
    record(state, draft);
}

/// Users' audit entries this minute: how many were recorded, and what was only counted.
pub struct Budget {
    minute: Mutex<Minute>,
}

struct Minute {
    began: Instant,
    spent: HashMap<u32, Spent>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            minute: Mutex::new(Minute {
                began: Instant::now(),
                spent: HashMap::new(),
            }),
        }
    }
}

#[derive(Default)]
struct Spent {
    recorded: u32,
    /// (action, success) → how many entries were counted instead of recorded.
    counted: BTreeMap<(String, bool), u64>,
}

/// Distinct users tracked in one minute at most; past that, further users share one count (the
/// map must stay bounded whatever the number of accounts on the host).
const USERS_TRACKED: usize = 4096;
/// Where users past `USERS_TRACKED` are counted.
const OTHER_USERS: u32 = u32::MAX - 1;

impl Budget {
    /// Whether `entry` of `account` should be recorded; if not, it is counted.
    fn spend(&self, account: u32, entry: &AuditEntry, per_minute: u32) -> bool {
        let mut minute = self.lock();
        let spent = &mut minute.spent;
        let account = if spent.len() >= USERS_TRACKED && !spent.contains_key(&account) {
            OTHER_USERS
        } else {
            account
        };
        let spent = spent.entry(account).or_default();
        if spent.recorded < per_minute && account != OTHER_USERS {
            spent.recorded += 1;
            return true;
        }
        *spent
            .counted
            .entry((entry.action.clone(), entry.success))
            .or_insert(0) += 1;
        false
    }

    /// End the minute: one summary entry per user who had entries only counted.
    pub fn close_minute(&self, now: i64) -> Vec<AuditEntry> {
        let (secs, spent) = {
            let mut minute = self.lock();
            let secs = minute.began.elapsed().as_secs();
            minute.began = Instant::now();
            (secs, std::mem::take(&mut minute.spent))
        };
        let mut summaries: Vec<AuditEntry> = spent
            .into_iter()
            .filter(|(_, spent)| !spent.counted.is_empty())
            .map(|(account, spent)| summary(account, &spent, now, secs))
            .collect();
        summaries.sort_by_key(|e| e.caller_uid);
        summaries
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Minute> {
        // Counters only: a panic elsewhere cannot leave them inconsistent.
        self.minute.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn summary(account: u32, spent: &Spent, now: i64, secs: u64) -> AuditEntry {
    let total: u64 = spent.counted.values().sum();
    let parts: Vec<String> = spent
        .counted
        .iter()
        .map(|((action, success), n)| {
            let outcome = if *success { "ok" } else { "refused or failed" };
            format!("{action} {outcome}: {n}")
        })
        .collect();
    let who = if account == OTHER_USERS {
        "other users".to_owned()
    } else {
        format!("uid {account}")
    };
    let mut entry = blank(account, 0, "summary", now);
    entry.message = format!(
        "{who}: {total} more requests in the last {secs} s were counted, not recorded one by one \
         (over audit.user_entries_per_minute): {}",
        parts.join(", ")
    );
    entry
}

/// Write the summaries of the minute that ended (the housekeeping task calls this every
/// minute, and shutdown once more).
pub fn close_minute(state: &State) {
    for entry in state.audit_budget.close_minute(state.clock.now()) {
        tracing::warn!("{}", entry.message);
        state.store.append_audit(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(action: &str) -> AuditEntry {
        let mut e = blank(1004, 7, action, 100);
        e.message = "refused".into();
        e
    }

    #[test]
    fn a_user_gets_its_budget_recorded_and_the_rest_summarised_once() {
        let b = Budget::default();
        let recorded = (0..1000)
            .filter(|i| {
                b.spend(
                    1004,
                    &refused(if i % 2 == 0 { "auth" } else { "admin" }),
                    20,
                )
            })
            .count();
        assert_eq!(recorded, 20);
        assert!(
            b.spend(1005, &refused("auth"), 20),
            "another user has its own budget"
        );
        let summaries = b.close_minute(160);
        assert_eq!(
            summaries.len(),
            1,
            "only the user over budget: {summaries:?}"
        );
        let msg = &summaries[0].message;
        assert!(
            msg.starts_with("uid 1004: 980 more requests in the last 0 s"),
            "{msg}"
        );
        assert!(msg.contains("admin refused or failed: 490"), "{msg}");
        assert!(msg.contains("auth refused or failed: 490"), "{msg}");
        assert_eq!(summaries[0].caller_uid, 1004);
        assert!(b.close_minute(220).is_empty(), "a new minute starts empty");
        assert!(
            b.spend(1004, &refused("auth"), 20),
            "and with a fresh budget"
        );
    }

    #[test]
    fn the_users_tracked_in_a_minute_are_bounded() {
        let b = Budget::default();
        for uid in 0..(USERS_TRACKED as u32 + 500) {
            b.spend(uid + 1, &refused("auth"), 1);
        }
        assert_eq!(b.lock().spent.len(), USERS_TRACKED + 1);
        let summaries = b.close_minute(0);
        assert_eq!(summaries.len(), 1);
        assert!(summaries[0].message.starts_with("other users: 500 more"));
    }

    #[test]
    fn root_and_administrators_are_recorded_su_started_by_a_user_is_budgeted() {
        let caller = |uid, is_admin, account| Caller {
            uid,
            gid: uid,
            pid: 1,
            is_admin,
            account,
        };
        assert_eq!(entry(&caller(0, true, 0), "auth", 0).budget, None);
        assert_eq!(entry(&caller(1000, true, 1000), "auth", 0).budget, None);
        assert_eq!(entry(&caller(0, true, 1004), "auth", 0).budget, Some(1004));
        assert_eq!(
            entry(&caller(65534, false, 65534), "auth", 0).budget,
            Some(65534)
        );
    }
}
