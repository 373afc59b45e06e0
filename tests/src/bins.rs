//! Where the binaries under test are. The suite never builds them: a stale or missing binary must
//! be an explicit failure, not a silent rebuild in the middle of a timed test.

use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `CARGO_TARGET_DIR` (relative to the workspace root if relative) or `<root>/target`, then the
/// profile: `debug`, or `PI_TEST_PROFILE` (e.g. `release`).
pub fn profile_dir() -> PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    };
    let profile = std::env::var("PI_TEST_PROFILE").unwrap_or_else(|_| "debug".to_owned());
    target.join(profile)
}

fn locate(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} does not exist: run `cargo build --workspace` first \
             (or `cargo build --workspace --release` with PI_TEST_PROFILE=release)",
            path.display()
        );
    }
    path
}

/// The daemon.
pub fn pid() -> PathBuf {
    locate("pid")
}

/// The command line.
pub fn pictl() -> PathBuf {
    locate("pictl")
}

/// The load generator (`src/bin/pibench/`).
pub fn pibench() -> PathBuf {
    locate("pibench")
}

/// What an unprivileged local account can throw at the socket (tests/src/bin/piflood.rs).
pub fn piflood() -> PathBuf {
    locate("piflood")
}

/// The PAM module, as an absolute path (libpam needs one outside its module directory).
pub fn pam_pi() -> PathBuf {
    locate("libpam_pi.so")
}

/// `examples/` of the workspace (shipped configurations, the demo).
pub fn examples_dir() -> PathBuf {
    workspace_root().join("examples")
}

/// A stand-in that answers on a socket like a daemon letting everybody in (`src/bin/pi-impostor.rs`).
pub fn impostor() -> PathBuf {
    locate("pi-impostor")
}
