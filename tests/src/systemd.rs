//! What a test needs of a service manager to start pid the way systemd does: a listening
//! socket the test holds across daemon restarts (as a `.socket` unit does), passed to pid as
//! descriptor 3 with `LISTEN_FDS=1` and `LISTEN_PID` naming pid's process, and a datagram
//! socket pid sends its notifications to (`NOTIFY_SOCKET`).
//!
//! The socket reaches descriptor 3 through `sh`: it is the shell's stdin (the spawn places it
//! there in the child only, so no other process of the suite inherits it), the shell moves it
//! to descriptor 3 and `exec`s pid, keeping its process id for `LISTEN_PID=$$`.

use crate::daemon::Launcher;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for one notification.
pub const NOTIFY_DEADLINE: Duration = Duration::from_secs(10);

pub struct ServiceManager {
    listener: UnixListener,
    notify: UnixDatagram,
    notify_path: PathBuf,
}

impl ServiceManager {
    /// Listen on `socket` (mode 0666, as `pid.socket` sets it) and receive notifications on
    /// `notify.sock` next to it.
    pub fn listen(socket: &Path) -> ServiceManager {
        let listener = UnixListener::bind(socket)
            .unwrap_or_else(|e| panic!("listen on {}: {e}", socket.display()));
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))
            .expect("chmod the socket");
        let notify_path = socket.with_file_name("notify.sock");
        let notify = UnixDatagram::bind(&notify_path)
            .unwrap_or_else(|e| panic!("bind {}: {e}", notify_path.display()));
        ServiceManager {
            listener,
            notify,
            notify_path,
        }
    }

    /// Starts pid with the socket as descriptor 3 (and `extra_fds` more descriptors after it,
    /// /dev/null, to pass more than one), `LISTEN_FDS`, `LISTEN_PID` and `NOTIFY_SOCKET`.
    pub fn launcher(&self, extra_fds: usize) -> Launcher {
        let listener = OwnedFd::from(self.listener.try_clone().expect("dup the listener"));
        let notify = self.notify_path.clone();
        let extra: String = (0..extra_fds)
            .map(|i| format!(" {}</dev/null", 4 + i))
            .collect();
        let script = format!(
            "exec 3<&0 0</dev/null{extra}; export LISTEN_FDS={} LISTEN_PID=$$ \
             LISTEN_FDNAMES=pid.socket; exec \"$0\" \"$@\"",
            1 + extra_fds
        );
        Box::new(move || {
            let mut command = Command::new("/bin/sh");
            command
                .arg("-c")
                .arg(&script)
                .arg(crate::bins::pid())
                .env("NOTIFY_SOCKET", &notify)
                .stdin(Stdio::from(
                    listener.try_clone().expect("dup the listener for pid"),
                ));
            command
        })
    }

    /// The next notification pid sent, `None` if none came within `timeout`.
    pub fn next_notification(&self, timeout: Duration) -> Option<String> {
        self.notify
            .set_read_timeout(Some(timeout))
            .expect("set a read timeout");
        let mut buf = [0u8; 4096];
        match self.notify.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Notifications until one has a line equal to `line` (e.g. `READY=1`); returns that one.
    /// Panics after `NOTIFY_DEADLINE`, listing what came.
    pub fn wait_for(&self, line: &str) -> String {
        let deadline = Instant::now() + NOTIFY_DEADLINE;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_notification(left) {
                Some(message) if message.lines().any(|l| l == line) => return message,
                Some(message) => seen.push(message),
                None => break,
            }
        }
        panic!("no notification with {line} within {NOTIFY_DEADLINE:?}; got {seen:?}");
    }
}

/// `systemd-analyze ARGS`: exit status, stdout and stderr.
pub fn analyze(args: &[&str]) -> crate::CmdOutput {
    let mut command = Command::new("systemd-analyze");
    command.args(args);
    crate::process::run(command, b"")
}

/// The unit files of the repository's `systemd/` directory.
pub fn unit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}
