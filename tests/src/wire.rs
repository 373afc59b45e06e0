//! A raw connection to the daemon's socket, for the hostile-input tests: it sends whatever bytes a
//! misbehaving or malicious local process could send, bypassing the well-behaved client.

use protocol::frame::{self, LEN_BYTES};
use protocol::{FrameError, Request, Response};
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Raw {
    stream: UnixStream,
}

impl Raw {
    pub fn connect(socket: &Path) -> Raw {
        let stream = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
        stream
            .set_read_timeout(Some(Duration::from_millis(250)))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("set write timeout");
        Raw { stream }
    }

    /// Send bytes. The daemon may close the connection part-way (that is a correct reaction to
    /// garbage), so the error is returned, not asserted.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    pub fn send_request(&mut self, request: &Request) {
        let bytes = frame::encode(request).expect("encode request");
        self.send(&bytes).expect("send request");
    }

    /// The next answer, waiting up to `deadline`.
    pub fn read_response(&mut self, deadline: Duration) -> Result<Response, FrameError> {
        let started = Instant::now();
        loop {
            match frame::read_frame::<_, Response>(&mut self.stream) {
                Err(FrameError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                        && started.elapsed() < deadline => {}
                other => return other,
            }
        }
    }

    /// Read until the daemon closes the connection; return what it said before closing. Fails the
    /// test if the connection is still open after `deadline`: a peer that sent garbage must not
    /// keep a connection slot.
    pub fn expect_closed_within(&mut self, deadline: Duration) -> Vec<Response> {
        let started = Instant::now();
        let mut said = Vec::new();
        loop {
            match frame::read_frame::<_, Response>(&mut self.stream) {
                Ok(response) => said.push(response),
                Err(FrameError::Closed) | Err(FrameError::Truncated) => return said,
                Err(FrameError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if started.elapsed() > deadline {
                        panic!(
                            "the daemon kept the connection open for {deadline:?} after bad \
                             input (answers so far: {said:?})"
                        );
                    }
                }
                // Reset by peer and the like: closed.
                Err(FrameError::Io(_)) => return said,
                Err(other) => panic!("the daemon sent an undecodable frame: {other}"),
            }
        }
    }
}

/// A frame whose header says `version` instead of ours.
pub fn frame_with_version(version: u16, request: &Request) -> Vec<u8> {
    let mut bytes = frame::encode(request).expect("encode request");
    bytes[LEN_BYTES..LEN_BYTES + 2].copy_from_slice(&version.to_be_bytes());
    bytes
}

/// A complete, well-formed `AuthContinue` frame whose answer is `answer_len` bytes: far above
/// `MAX_FRAME`, so an honest client could never send it.
pub fn oversized_auth_continue(session: u64, answer_len: usize) -> Vec<u8> {
    let request = Request::AuthContinue {
        session,
        answer: protocol::Secret::new("7".repeat(answer_len)),
    };
    let body = frame::encode_value(&request).expect("encode an oversized body");
    let len = u32::try_from(body.len() + 2).expect("frame length fits u32");
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(&protocol::paths::PROTOCOL_VERSION.to_be_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// Pseudo-random bytes (xorshift; reproducible from `seed`).
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_auth_continue_announces_its_true_length() {
        let bytes = oversized_auth_continue(7, 1 << 20);
        let announced = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        assert_eq!(announced, bytes.len() - LEN_BYTES);
        assert!(announced > protocol::paths::MAX_FRAME);
    }

    #[test]
    fn wrong_version_frame_differs_only_in_the_version() {
        let good = frame::encode(&Request::Status).unwrap();
        let bad = frame_with_version(99, &Request::Status);
        assert_eq!(good.len(), bad.len());
        assert_eq!(&bad[4..6], &99u16.to_be_bytes());
        assert_eq!(&good[6..], &bad[6..]);
    }
}
