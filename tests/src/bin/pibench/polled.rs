//! Event-driven clients for pid: `clients` connections, each with exactly one login in flight
//! (as one PAM process per connection would have), served by a few poll(2) loops instead of one
//! blocked thread per connection. A blocked thread per client costs the load generator two
//! thread wake-ups per login, which on a small machine takes the cores the daemon is being
//! measured on; `--blocking` keeps the thread-per-client driver for comparison.

use super::{login_name, next_otp, wrong, Args, ThreadResult, UserState};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use protocol::frame::{check_len, decode_payload, encode, LEN_BYTES};
use protocol::{AuthBegin, Outcome, Prompt, Request, Response, Secret};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a loop sleeps when none of its connections has anything in flight (every user's
/// TOTP codes are spent until the next time step).
const IDLE_POLL: Duration = Duration::from_millis(50);

/// The login a connection is waiting on.
struct Flight {
    begin: Instant,
    wrong: bool,
    pass: String,
}

struct Conn {
    stream: UnixStream,
    users: Vec<UserState>,
    cursor: usize,
    buf: Vec<u8>,
    flight: Option<Flight>,
}

/// Per-loop state that is not per connection.
struct Loop<'a> {
    args: &'a Args,
    rng: u64,
    res: ThreadResult,
}

impl Loop<'_> {
    fn coin(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 10_000) as f64 / 10_000.0 < self.args.wrong_share
    }

    /// Send the next login of this connection; false when none of its users has a code now.
    fn start(&mut self, c: &mut Conn) -> Result<bool, String> {
        for _ in 0..c.users.len() {
            let i = c.cursor % c.users.len();
            c.cursor += 1;
            let Some(otp) = next_otp(self.args.kind, &mut c.users[i]) else {
                continue;
            };
            let send_wrong = self.coin();
            let otp = if send_wrong { wrong(&otp) } else { otp };
            let pass = if self.args.pin {
                format!("1234{otp}")
            } else {
                otp
            };
            let begin = AuthBegin {
                user: login_name(c.users[i].index),
                service: "pibench".into(),
                authtok: (!self.args.conversation).then(|| Secret::new(pass.clone())),
                ..Default::default()
            };
            send(&mut c.stream, &Request::AuthBegin(begin))?;
            c.flight = Some(Flight {
                begin: Instant::now(),
                wrong: send_wrong,
                pass,
            });
            return Ok(true);
        }
        Ok(false)
    }

    /// Read what arrived; when the answer is complete, count it (or send the conversation's
    /// second step).
    fn on_readable(&mut self, c: &mut Conn) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        let n = c.stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the daemon closed the connection".into());
        }
        c.buf.extend_from_slice(&chunk[..n]);
        if c.buf.len() < LEN_BYTES {
            return Ok(());
        }
        let len = check_len(u32::from_be_bytes([c.buf[0], c.buf[1], c.buf[2], c.buf[3]]))
            .map_err(|e| e.to_string())?;
        if c.buf.len() < LEN_BYTES + len {
            return Ok(());
        }
        let resp: Response =
            decode_payload(&c.buf[LEN_BYTES..LEN_BYTES + len]).map_err(|e| e.to_string())?;
        c.buf.drain(..LEN_BYTES + len);
        let flight = c.flight.take().ok_or("an answer nobody asked for")?;
        let accepted = match resp {
            Response::AuthStep {
                session,
                prompt: Prompt::Secret { .. },
            } => {
                let answer = Secret::new(flight.pass.clone());
                send(&mut c.stream, &Request::AuthContinue { session, answer })?;
                c.flight = Some(flight);
                return Ok(());
            }
            Response::AuthDone(Outcome::Accept { .. }) => true,
            Response::AuthDone(_) => false,
            other => return Err(format!("unexpected answer {other:?}")),
        };
        let us = flight.begin.elapsed().as_micros().min(u32::MAX as u128) as u32;
        self.res.lat_us.push(us);
        match (accepted, flight.wrong) {
            (true, false) => self.res.accepted += 1,
            (false, true) => self.res.rejected += 1,
            _ => self.res.unexpected += 1,
        }
        Ok(())
    }
}

fn send(stream: &mut UnixStream, req: &Request) -> Result<(), String> {
    let frame = encode(req).map_err(|e| e.to_string())?;
    stream.write_all(&frame).map_err(|e| e.to_string())
}

/// One poll loop over its connections until `stop`; answers still in flight then are not counted.
fn run_loop(
    args: &Args,
    mut conns: Vec<Conn>,
    seed: u64,
    stop: &AtomicBool,
) -> Result<ThreadResult, String> {
    let mut lp = Loop {
        args,
        rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        res: ThreadResult {
            accepted: 0,
            rejected: 0,
            unexpected: 0,
            lat_us: Vec::new(),
            next: Vec::new(),
        },
    };
    let mut ready = vec![false; conns.len()];
    while !stop.load(Ordering::Relaxed) {
        for c in conns.iter_mut().filter(|c| c.flight.is_none()) {
            lp.start(c)?;
        }
        let waiting = conns.iter().any(|c| c.flight.is_some());
        {
            let mut fds: Vec<PollFd> = conns
                .iter()
                .map(|c| {
                    let events = if c.flight.is_some() {
                        PollFlags::POLLIN
                    } else {
                        PollFlags::empty()
                    };
                    PollFd::new(c.stream.as_fd(), events)
                })
                .collect();
            let timeout = if waiting {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::try_from(IDLE_POLL).map_err(|e| e.to_string())?
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            for (r, fd) in ready.iter_mut().zip(&fds) {
                *r = fd.revents().is_some_and(|e| {
                    e.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                });
            }
        }
        for (c, _) in conns.iter_mut().zip(&ready).filter(|(_, r)| **r) {
            lp.on_readable(c)?;
        }
    }
    Ok(lp.res)
}

/// Drive `clients` connections from `threads` poll loops for `duration` seconds. User i belongs
/// to connection i % clients, as in the blocking driver.
pub(super) fn drive(
    args: &Args,
    socket: &Path,
    users: u32,
    clients: u32,
    threads: u32,
    counters: &[u64],
    duration: f64,
) -> Result<(Vec<ThreadResult>, f64), String> {
    let threads = threads.clamp(1, clients);
    let mut per_thread: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for c in 0..clients {
        let stream = UnixStream::connect(socket)
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        let users = super::users_of(args, users, clients, c, counters);
        per_thread[(c % threads) as usize].push(Conn {
            stream,
            users,
            cursor: 0,
            buf: Vec::with_capacity(256),
            flight: None,
        });
    }
    let items: Vec<(usize, Vec<Conn>)> = per_thread.into_iter().enumerate().collect();
    super::run_timed(items, duration, |(t, conns), stop| {
        run_loop(args, conns, t as u64 + 1, stop)
    })
}
