//! libfaketime (Debian's `faketime`), preloaded into the daemon so that it lives days ahead of
//! the rest of the test: for what only time changes (offline values that grow too old). The
//! daemon's clock is read through libc, which libfaketime answers for; its monotonic clock moves
//! by the same offset, so timers keep running as before.

use std::path::PathBuf;

/// The library, by absolute path (the multiarch directory differs between architectures).
pub fn library() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime").join("libfaketime.so.1"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("libfaketime.so.1 not found under /usr/lib/*/faketime: apt-get install faketime")
    })
}

/// The environment that puts a process `days` ahead: `LD_PRELOAD` and `FAKETIME`.
pub fn days_ahead(days: u32) -> [(String, String); 2] {
    [
        ("LD_PRELOAD".into(), library().display().to_string()),
        ("FAKETIME".into(), format!("+{days}d")),
    ]
}
