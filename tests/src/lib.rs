//! Harness for the cross-binary suite: the real `pid`, `pictl` and `libpam_pi.so`, driven through
//! real libpam (`pamtester` under `libpam_wrapper`), with OTPs computed by `oathtool`, an
//! implementation independent of ours.
//!
//! Nothing here builds anything: run `cargo build --workspace` first (the README's test command
//! does). Every test starts its own daemon in its own temporary directory, so tests run in
//! parallel and never touch `/etc`, `/run` or `/var`.
//!
//! A harness fails by panicking with a message that says what to do; that is the only useful way
//! for test support code to fail, hence the crate-wide allow below.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod bins;
pub mod certs;
pub mod daemon;
pub mod fake_http;
pub mod faketime;
pub mod impostor;
pub mod lazyfs;
pub mod oath;
pub mod pam;
pub mod privacyidea;
pub mod process;
pub mod sinks;
pub mod slapd;
pub mod sshd;
pub mod systemd;
pub mod wire;

pub use daemon::{Daemon, DaemonOptions};
pub use oath::{hotp, test_key, totp, totp_b32, unix_now, wait_for_fresh_totp_step};
pub use pam::{Pam, PamRun};
pub use process::{Caller, CmdOutput};

/// A fresh directory below the temporary directory, root's and mode 0755: uid 65534 reaches
/// what is inside (a socket, a PAM service file), nobody else may write there, so pid trusts it.
pub fn reachable_tempdir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temporary directory");
    dir
}

/// A port on 127.0.0.1 nobody listened on a moment ago. A server started on it may still find it
/// taken by then: the fixtures retry on another.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port on 127.0.0.1")
}

/// A login that exists on every Debian system and is not root: the unprivileged caller.
pub const NOBODY: &str = "nobody";
pub const NOBODY_UID: u32 = 65534;
/// A login that exists nowhere, for `UnknownUser`.
pub const NO_SUCH_USER: &str = "pi-test-no-such-user";
