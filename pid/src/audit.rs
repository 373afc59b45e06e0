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

/// Append an entry. A failure to audit is logged loudly but does not change the verdict: the
/// token change it describes is already stored.
pub fn record(state: &State, entry: AuditEntry) {
    if let Err(e) = state.store.append_audit(entry) {
        tracing::error!(error = %e, "could not append to the audit trail");
    }
}
