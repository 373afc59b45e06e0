//! The audit trail: every authentication attempt and every administrative action, in the store,
//! in the same group commit as the change it records. Never a secret: entries carry names,
//! serials and privacyIDEA-style messages only.

use crate::caller::Caller;
use crate::State;
use protocol::AuditEntry;

/// Start an entry for `action` by `caller` at `now`.
pub fn entry(caller: &Caller, action: &str, now: i64) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time: now,
        caller_uid: caller.uid,
        caller_pid: caller.pid,
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
/// login or an admin request waits for.
pub fn record(state: &State, entry: AuditEntry) {
    state.store.append_audit(entry);
}
