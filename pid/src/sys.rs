//! Process hardening and housekeeping. Apart from argon2_hash.rs (CPU feature dispatch and
//! prefetch hints), the only `unsafe` in the daemon is here: one call into glibc that nix and
//! rustix do not wrap.

/// Threat: a core dump of the daemon would contain decrypted OTP keys and PINs in transit.
pub fn disable_core_dumps() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not disable core dumps (PR_SET_DUMPABLE)");
    }
}

/// Give the heap memory that malloc holds on to after a burst of frees back to the system.
///
/// Why: a checkpoint of a bulk import or of a journal replay frees tens of MiB (the overlay,
/// redb's copies of the pages it changed) in small blocks, and glibc returns freed memory only
/// from the top of each arena; the rest stays in the daemon's RSS until it restarts (a
/// million-token `pictl import`: 126 MiB afterwards, 64 MiB once trimmed).
/// `malloc_trim(0)` also releases the whole free pages inside the arenas. It walks malloc's
/// free lists with each arena locked in turn (7.6 ms after that import), so callers run it once
/// a burst is over, not after every step of it. Elsewhere than glibc it does nothing.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim takes no pointers, touches only malloc's own state and takes the
        // arena locks itself (glibc documents it MT-safe).
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) } == 1;
        tracing::debug!(
            released,
            took_us = started.elapsed().as_micros() as u64,
            "freed heap handed back to the system"
        );
    }
}
