//! Process hardening. No `unsafe` is needed: nix wraps the calls.

/// Threat: a core dump of the daemon would contain decrypted OTP keys and PINs in transit.
pub fn disable_core_dumps() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not disable core dumps (PR_SET_DUMPABLE)");
    }
}
