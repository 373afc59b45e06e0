//! Running under systemd: the listening socket a `.socket` unit passes (socket activation), and
//! the state changes pid tells the service manager (`sd_notify`: ready, reloading, stopping).
//!
//! Both come in the environment: `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` and
//! `NOTIFY_SOCKET`. pid reads them once, first thing in `main` while the process still has one
//! thread, and removes them ([`Environment::take`]).
//!
//! Threat: a variable left in the environment is inherited by every process pid starts (the
//! PAM service that checks user-store passwords runs helpers such as `unix_chkpwd`). A child
//! that saw `LISTEN_FDS` with its own pid could not use it, but one that saw `NOTIFY_SOCKET`
//! could tell systemd that pid is stopping or ready. And removing a variable while another
//! thread may read the environment is a data race in glibc, so it happens before the runtime,
//! the logging thread or anything else starts a thread.
//!
//! Why not the `sd-notify` crate: its `notify` reads `NOTIFY_SOCKET` at every send and can
//! remove it only as part of a send, which here would be on a runtime with worker threads; and
//! pid checks what it was passed (one socket, its type, that it listens, its path) beyond what
//! its `listen_fds` does. What remains is a few lines of parsing and one datagram per state.

use crate::error::PidError;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const FIRST_PASSED_FD: i32 = 3;

/// What the service manager handed pid in its environment, read once at start.
pub struct Environment {
    /// The socket passed by a `.socket` unit, if one was; `Err` if what was passed is unusable.
    passed: Result<Option<OwnedFd>, String>,
    notifier: Notifier,
}

impl Environment {
    /// Read `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` and `NOTIFY_SOCKET`, take the passed
    /// socket, and remove the four variables from the environment.
    ///
    /// Call it first thing in `main`, while the process has one thread (see the module's
    /// comment); problems are reported when the daemon starts ([`Environment::listener`]) or
    /// sends its first notification, once logging is set up.
    pub fn take() -> Environment {
        let listen_pid = std::env::var_os("LISTEN_PID");
        let listen_fds = std::env::var_os("LISTEN_FDS");
        let notify_socket = std::env::var_os("NOTIFY_SOCKET");
        for name in [
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            "NOTIFY_SOCKET",
        ] {
            std::env::remove_var(name);
        }
        let passed = passed_count(listen_pid, listen_fds, std::process::id()).and_then(|n| {
            match n {
                0 => Ok(None),
                1 => {
                    let fd = crate::sys::take_passed_fd(FIRST_PASSED_FD).map_err(|e| {
                        format!(
                            "LISTEN_FDS=1 says a socket was passed as descriptor \
                             {FIRST_PASSED_FD}, but it is not open ({e})"
                        )
                    })?;
                    // Passed without close-on-exec; no child of pid may hold the socket.
                    let _ = nix::fcntl::fcntl(
                        fd.as_raw_fd(),
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                    );
                    Ok(Some(fd))
                }
                // pid refuses to start: no child is ever started to inherit them.
                n => Err(format!(
                    "systemd passed {n} descriptors (LISTEN_FDS={n}), but pid serves exactly one \
                     socket: give the .socket unit a single ListenStream= line (the path of \
                     `socket` in pid.toml) and no other Listen*= lines"
                )),
            }
        });
        Environment {
            passed,
            notifier: Notifier::new(notify_socket),
        }
    }

    /// An environment with nothing passed and nobody to notify (tests, and `pid` started by
    /// hand).
    pub fn none() -> Environment {
        Environment {
            passed: Ok(None),
            notifier: Notifier::new(None),
        }
    }

    /// The passed socket, checked to be a listening Unix stream socket bound to `socket` (the
    /// configured path); `None` if no socket was passed (pid then binds its own).
    pub fn listener(&mut self, socket: &Path) -> Result<Option<OwnedFd>, PidError> {
        let passed = std::mem::replace(&mut self.passed, Ok(None));
        match passed.map_err(PidError::Startup)? {
            None => Ok(None),
            Some(fd) => {
                check_passed(&fd, socket)?;
                Ok(Some(fd))
            }
        }
    }

    /// Where the daemon's state changes go.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// The notifier, for tasks that outlive this borrow.
    pub fn into_notifier(self) -> Notifier {
        self.notifier
    }
}

/// How many descriptors the service manager passed to this process (`me`): none unless
/// `LISTEN_PID` names it (a variable inherited from a parent that was activated is not ours).
fn passed_count(
    listen_pid: Option<OsString>,
    listen_fds: Option<OsString>,
    me: u32,
) -> Result<i32, String> {
    let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
        return Ok(0);
    };
    let number = |name: &str, value: &OsString| {
        value
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| {
                format!(
                    "{name}={} is not a number; start pid from its systemd units, or without \
                     LISTEN_PID and LISTEN_FDS",
                    value.to_string_lossy()
                )
            })
    };
    if number("LISTEN_PID", &listen_pid)? != me {
        return Ok(0);
    }
    let count = number("LISTEN_FDS", &listen_fds)?;
    // More than the descriptors a process can hold: nonsense, refused like any count but one.
    Ok(i32::try_from(count).unwrap_or(i32::MAX))
}

/// The passed socket must be what pid would have bound itself: a Unix stream socket, listening,
/// on the configured path. Anything else would serve logins somewhere the PAM module does not
/// look, or not at all.
fn check_passed(fd: &OwnedFd, socket: &Path) -> Result<(), PidError> {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, SockaddrLike, UnixAddr};
    let configured = socket.display();
    let fix = "make the .socket unit's ListenStream= and `socket` in pid.toml name the same \
               path (both default to /run/pi/pid.sock)";
    let refuse = |what: String| {
        PidError::Startup(format!(
            "the socket systemd passed (descriptor {FIRST_PASSED_FD}) {what}; {fix}"
        ))
    };
    match getsockopt(&fd.as_fd(), sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(other) => {
            return Err(refuse(format!(
                "is a {other:?} socket, not a stream socket"
            )))
        }
        Err(e) => return Err(refuse(format!("is not a socket ({e})"))),
    }
    match getsockopt(&fd.as_fd(), sockopt::AcceptConn) {
        Ok(true) => {}
        Ok(false) => return Err(refuse("does not listen".into())),
        Err(e) => return Err(refuse(format!("cannot be inspected ({e})"))),
    }
    let bound: UnixAddr = match getsockname::<UnixAddr>(fd.as_raw_fd()) {
        Ok(addr) if addr.family() == Some(nix::sys::socket::AddressFamily::Unix) => addr,
        _ => return Err(refuse("is not a Unix socket".into())),
    };
    match bound.path() {
        Some(path) if path == socket => Ok(()),
        Some(path) => Err(PidError::Startup(format!(
            "the socket systemd passed listens on {}, but pid.toml says socket = \"{configured}\"; \
             {fix}",
            path.display()
        ))),
        None => Err(PidError::Startup(format!(
            "the socket systemd passed is bound to no path (abstract or unnamed), but pid.toml \
             says socket = \"{configured}\"; {fix}"
        ))),
    }
}

/// Sends state changes to the service manager when `NOTIFY_SOCKET` named one; does nothing
/// otherwise. A send that fails is logged once and never stops the daemon: systemd then
/// reports a start timeout, which is the right outcome for a manager that cannot be told.
pub struct Notifier {
    target: Result<Option<(UnixDatagram, SocketAddr)>, String>,
    warned: AtomicBool,
}

impl Notifier {
    fn new(notify_socket: Option<OsString>) -> Notifier {
        Notifier {
            target: notify_socket.map(|s| connect(&s)).transpose(),
            warned: AtomicBool::new(false),
        }
    }

    /// `READY=1` with a status line: the store is open and the socket is served.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `RELOADING=1` with the time the reload starts, as systemd asks of a reloading service.
    pub fn reloading(&self) {
        let since_boot = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| {
                (t.tv_sec() as u64)
                    .saturating_mul(1_000_000)
                    .saturating_add(t.tv_nsec() as u64 / 1_000)
            })
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={since_boot}"));
    }

    /// `STOPPING=1`: shutdown has started.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    fn send(&self, message: &str) {
        let failed = match &self.target {
            Ok(None) => return,
            Ok(Some((socket, addr))) => match socket.send_to_addr(message.as_bytes(), addr) {
                Ok(_) => return,
                Err(e) => format!("cannot notify the service manager ({e})"),
            },
            Err(why) => why.clone(),
        };
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{failed}; pid keeps serving, but systemd may not see it ready, reloading or \
                 stopping (further failures are not logged)"
            );
        }
    }
}

/// A non-blocking datagram socket and the address `NOTIFY_SOCKET` names: a path, or `@name`
/// in the abstract namespace.
fn connect(notify_socket: &OsString) -> Result<(UnixDatagram, SocketAddr), String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = notify_socket.as_bytes();
    let shown = notify_socket.to_string_lossy();
    let addr = match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(PathBuf::from(notify_socket)),
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..])
        }
        _ => {
            return Err(format!(
                "NOTIFY_SOCKET={shown} is neither a path nor an @abstract name"
            ))
        }
    }
    .map_err(|e| format!("NOTIFY_SOCKET={shown} is not a usable address ({e})"))?;
    // Non-blocking: a service manager that does not read its queue must not stall a reload.
    let socket = UnixDatagram::unbound()
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| format!("cannot open a socket to notify {shown} ({e})"))?;
    Ok((socket, addr))
}

/// A status line without line breaks (each line of a notification is one assignment).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn descriptors_count_only_when_listen_pid_names_this_process() {
        assert_eq!(passed_count(None, None, 7), Ok(0));
        assert_eq!(passed_count(None, os("1"), 7), Ok(0));
        assert_eq!(
            passed_count(os("8"), os("1"), 7),
            Ok(0),
            "another process's"
        );
        assert_eq!(passed_count(os("7"), os("1"), 7), Ok(1));
        assert_eq!(passed_count(os("7"), os("2"), 7), Ok(2));
        assert!(passed_count(os("seven"), os("1"), 7).is_err());
        assert!(passed_count(os("7"), os("-1"), 7).is_err());
    }

    #[test]
    fn a_notification_reaches_a_socket_named_by_path_or_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listening = UnixDatagram::bind(&path).unwrap();
        Notifier::new(Some(path.clone().into_os_string())).ready("serving 3 tokens\non x");
        let mut buf = [0u8; 256];
        let n = listening.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving 3 tokens on x");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("pi-test-notify-{}", std::process::id());
        let abstract_listening =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        Notifier::new(os(&format!("@{name}"))).stopping();
        let n = abstract_listening.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn reloading_carries_the_monotonic_clock_in_microseconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listening = UnixDatagram::bind(&path).unwrap();
        Notifier::new(Some(path.into_os_string())).reloading();
        let mut buf = [0u8; 256];
        let n = listening.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let usec: u64 = text
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0, "{text}");
    }

    #[test]
    fn a_notify_socket_that_is_no_address_is_kept_as_an_error_not_a_panic() {
        let notifier = Notifier::new(os("vsock:2:1234"));
        assert!(notifier.target.is_err());
        notifier.ready("x");
        notifier.ready("x");
        assert!(notifier.warned.load(Ordering::Relaxed));
    }

    #[test]
    fn a_passed_socket_on_another_path_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("there.sock");
        let listener = std::os::unix::net::UnixListener::bind(&there).unwrap();
        let fd = OwnedFd::from(listener);
        check_passed(&fd, &there).unwrap();
        let configured = dir.path().join("pid.sock");
        let msg = check_passed(&fd, &configured).unwrap_err().to_string();
        assert!(
            msg.contains(&there.display().to_string())
                && msg.contains(&configured.display().to_string())
                && msg.contains("ListenStream="),
            "{msg}"
        );
    }

    #[test]
    fn a_passed_socket_that_does_not_listen_or_is_no_stream_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let datagram = OwnedFd::from(UnixDatagram::bind(&path).unwrap());
        let msg = check_passed(&datagram, &path).unwrap_err().to_string();
        assert!(msg.contains("not a stream socket"), "{msg}");
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let msg = check_passed(&OwnedFd::from(a), &path)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("does not listen"), "{msg}");
        let file = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let msg = check_passed(&file, &path).unwrap_err().to_string();
        assert!(msg.contains("is not a socket"), "{msg}");
    }
}
