//! The blocking client used by `pam_pi` and `pictl`. No tokio: a PAM module must not start a
//! runtime inside sshd or sudo. Every operation is bounded by a timeout, so a hung daemon can
//! never hang a login.

use crate::error::ClientError;
use crate::frame;
use crate::paths::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT};
use crate::request::Request;
use crate::response::Response;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    /// How long `call` keeps the CPU, checking for the answer, before it sleeps in `read`
    /// (see `set_busy_wait`). Zero: sleep at once.
    busy_wait: Duration,
}

impl Client {
    /// The daemon's process id as the kernel recorded it when the daemon listened
    /// (SO_PEERCRED). pam_pi uses it to notice that it runs inside the daemon itself (a user
    /// store PAM service that loads pam_pi) and refuse instead of recursing.
    pub fn peer_pid(&self) -> Option<i32> {
        nix::sys::socket::getsockopt(&self.stream, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| c.pid())
    }

    /// The uid of the process that created the listening socket (SO_PEERCRED), if the kernel
    /// told us.
    pub fn peer_uid(&self) -> Option<u32> {
        nix::sys::socket::getsockopt(&self.stream, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| c.uid())
    }

    /// Refuse a peer that is not the daemon's user.
    ///
    /// Threat: whoever can create the socket path (a writable socket directory, a daemon that
    /// is down and a directory someone else owns) can answer in the daemon's place: "accept"
    /// to any login, and collect what `pictl` sends (PINs, OTP keys). The kernel's record of who
    /// listens cannot be forged by the peer, so it is checked before anything is sent.
    pub fn require_peer_uid(&self, expected: u32) -> Result<(), ClientError> {
        match self.peer_uid() {
            Some(uid) if uid == expected => Ok(()),
            found => Err(ClientError::UntrustedDaemon {
                path: self.path.display().to_string(),
                found,
                expected,
            }),
        }
    }

    /// Connect with the default timeouts.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        Client::connect_with(path, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT)
    }

    /// Connect within `connect_timeout`; every later read and write is bounded by `io_timeout`.
    pub fn connect_with(
        path: impl AsRef<Path>,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Client, ClientError> {
        let path = path.as_ref().to_path_buf();
        let unreachable = |source| ClientError::Unreachable {
            path: path.display().to_string(),
            source,
        };
        let addr = socket2::SockAddr::unix(&path).map_err(unreachable)?;
        let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
            .map_err(unreachable)?;
        socket
            .connect_timeout(&addr, connect_timeout)
            .map_err(unreachable)?;
        let stream = UnixStream::from(OwnedFd::from(socket));
        stream.set_nonblocking(false).map_err(unreachable)?;
        let mut client = Client {
            stream,
            path,
            busy_wait: Duration::ZERO,
        };
        client.set_io_timeout(io_timeout)?;
        Ok(client)
    }

    /// Change the read/write timeout (e.g. `pam_pi`'s `timeout=` option).
    pub fn set_io_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        let unreachable = |source| ClientError::Unreachable {
            path: self.path.display().to_string(),
            source,
        };
        self.stream.set_read_timeout(timeout).map_err(unreachable)?;
        self.stream
            .set_write_timeout(timeout)
            .map_err(unreachable)?;
        Ok(())
    }

    /// Keep the CPU for up to `budget` after each request, checking for the answer and
    /// yielding to anything else that wants this CPU, before sleeping until it comes.
    ///
    /// Why (`pam_pi`): a process asleep in `read` is woken by the daemon's answer onto the
    /// daemon's CPU, away from its parent; every wake-up of the parent after that (the
    /// process's output, its exit) then crosses CPUs, and so does the TLB shootdown of its
    /// exit. Measured on two vCPUs: 3.3 cross-CPU interrupts per PAM login instead of 0.3,
    /// and 0.08 ms of each login. The daemon answers a login within the budget unless a PIN
    /// (argon2) or a slow disk keeps it: then this costs the budget's CPU, once per request.
    pub fn set_busy_wait(&mut self, budget: Duration) {
        self.busy_wait = budget;
    }

    /// Send one request and wait for its answer.
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        frame::write_frame(&mut self.stream, request)?;
        if !self.busy_wait.is_zero() {
            self.wait_busily_for_data();
        }
        Ok(frame::read_frame(&mut self.stream)?)
    }

    /// Return once the answer has begun to arrive, the budget is spent, or the socket reports
    /// anything else (the read that follows reports it properly).
    fn wait_busily_for_data(&self) {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let until = std::time::Instant::now() + self.busy_wait;
        let mut byte = [0u8; 1];
        let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        while let Err(nix::errno::Errno::EAGAIN) = recv(self.stream.as_raw_fd(), &mut byte, peek) {
            if std::time::Instant::now() >= until {
                return;
            }
            // The daemon's worker may have been woken onto this very CPU.
            std::thread::yield_now();
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("path", &self.path).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::os::unix::net::UnixListener;

    /// A daemon stand-in: reads one request, waits `delay`, answers (or hangs up).
    fn serve_once(delay: Duration, answer: bool) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _: Request = frame::read_frame(&mut stream).unwrap();
            std::thread::sleep(delay);
            if answer {
                let reply = Response::Error {
                    code: ErrorCode::PermissionDenied,
                    message: "m".into(),
                };
                frame::write_frame(&mut stream, &reply).unwrap();
            }
        });
        (dir, path)
    }

    fn call_with_busy_wait(path: &Path, budget: Duration) -> Result<Response, ClientError> {
        let mut client =
            Client::connect_with(path, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
        client.set_busy_wait(budget);
        client.call(&Request::Status)
    }

    #[test]
    fn an_answer_is_read_whether_it_comes_within_the_busy_wait_or_after_it() {
        for (delay, budget) in [
            (Duration::ZERO, Duration::from_millis(200)),
            (Duration::from_millis(100), Duration::from_millis(1)),
        ] {
            let (_dir, path) = serve_once(delay, true);
            let answer = call_with_busy_wait(&path, budget).unwrap();
            assert!(
                matches!(
                    answer,
                    Response::Error {
                        code: ErrorCode::PermissionDenied,
                        ..
                    }
                ),
                "answer after {delay:?}, busy wait {budget:?}"
            );
        }
    }

    #[test]
    fn a_peer_of_another_uid_is_refused_and_named() {
        let (_dir, path) = serve_once(Duration::ZERO, true);
        let mut client =
            Client::connect_with(&path, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(client.peer_uid(), Some(me));
        client.require_peer_uid(me).unwrap();
        let other = me.wrapping_add(1);
        match client.require_peer_uid(other) {
            Err(e @ ClientError::UntrustedDaemon { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&format!("uid {me}")), "{text}");
                assert!(text.contains(&format!("uid {other}")), "{text}");
                assert!(text.contains(&path.display().to_string()), "{text}");
            }
            other => panic!("expected UntrustedDaemon, got {other:?}"),
        }
        // The check itself sends nothing; the stand-in still waits for its one request.
        client.call(&Request::Status).unwrap();
    }

    #[test]
    fn a_daemon_hanging_up_during_the_busy_wait_is_an_error_not_a_hang() {
        let (_dir, path) = serve_once(Duration::ZERO, false);
        let started = std::time::Instant::now();
        let result = call_with_busy_wait(&path, Duration::from_secs(3));
        assert!(result.is_err(), "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the hang-up ended the busy wait"
        );
    }
}
