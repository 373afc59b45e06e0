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
        let mut client = Client { stream, path };
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

    /// Send one request and wait for its answer.
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        frame::write_frame(&mut self.stream, request)?;
        Ok(frame::read_frame(&mut self.stream)?)
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
