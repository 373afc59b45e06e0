//! piflood: what an unprivileged local account can throw at the daemon's socket, for the tests
//! and the figures in docs/security.md. Run it as that account (e.g. `setpriv --reuid=65534
//! --regid=65534 --clear-groups -- piflood …`); it asserts nothing and prints one JSON line of
//! counts when the time is up.
//!
//! Connection kinds, each held in its own slots and re-opened as soon as the daemon lets go:
//! `idle` (connect and say nothing), `slow` (a frame's length, then its body, one byte every
//! second), `sessions` (open as many login conversations as allowed, answer none),
//! `keepalive` (a `Status` every few seconds). `--requests N`: N threads send, as fast as the
//! daemon answers, requests it refuses or rate-limits (logins, admin requests, SSH keys, the
//! caller's own token list) — what would fill the audit trail if each cost a record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use protocol::admin::{AdminRequest, UserRef};
use protocol::frame::{self, LEN_BYTES};
use protocol::{AuthBegin, Request, Response};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Flood pid's socket the way an unprivileged local account could")]
struct Args {
    /// The daemon's socket.
    #[arg(long)]
    socket: PathBuf,
    /// How long to keep at it.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections that say nothing.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Connections that send a frame one byte a second.
    #[arg(long, default_value_t = 0)]
    slow: usize,
    /// Connections that open login conversations and never answer.
    #[arg(long, default_value_t = 0)]
    sessions: usize,
    /// Connections that send `Status` every few seconds.
    #[arg(long, default_value_t = 0)]
    keepalive: usize,
    /// Threads sending refused or rate-limited requests as fast as they are answered.
    #[arg(long, default_value_t = 0)]
    requests: usize,
    /// The login the conversations and requests are about (the caller's own).
    #[arg(long, default_value = "nobody")]
    user: String,
    /// How often the `keepalive` connections send `Status`.
    #[arg(long, default_value_t = 3000)]
    keepalive_ms: u64,
    /// How long a slot waits before connecting again after the daemon refused or closed it.
    #[arg(long, default_value_t = 50)]
    retry_ms: u64,
}

#[derive(Default)]
struct Counts {
    connected: AtomicU64,
    refused: AtomicU64,
    closed_by_daemon: AtomicU64,
    requests: AtomicU64,
    answers: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Idle,
    Slow,
    Sessions,
    KeepAlive,
}

fn main() {
    let args = Arc::new(Args::parse());
    let counts = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut threads = Vec::new();
    for (kind, n) in [
        (Kind::Idle, args.idle),
        (Kind::Slow, args.slow),
        (Kind::Sessions, args.sessions),
        (Kind::KeepAlive, args.keepalive),
    ] {
        if n > 0 {
            let (args, counts) = (args.clone(), counts.clone());
            threads.push(std::thread::spawn(move || {
                hold(kind, n, &args, &counts, until)
            }));
        }
    }
    for i in 0..args.requests {
        let (args, counts) = (args.clone(), counts.clone());
        threads.push(std::thread::spawn(move || {
            request_loop(i, &args, &counts, until)
        }));
    }
    for t in threads {
        t.join().expect("a flood thread panicked");
    }
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "{{\"connected\":{},\"refused\":{},\"closed_by_daemon\":{},\"requests\":{},\"answers\":{}}}",
        n(&counts.connected),
        n(&counts.refused),
        n(&counts.closed_by_daemon),
        n(&counts.requests),
        n(&counts.answers)
    );
}

/// One held connection and where it is in its script.
struct Slot {
    stream: Option<UnixStream>,
    /// Bytes of the slow frame sent so far, or conversations opened.
    progress: usize,
    next_action: Instant,
}

/// Keep `n` connections of `kind` open until `until`, re-opening each as soon as it is lost.
fn hold(kind: Kind, n: usize, args: &Args, counts: &Counts, until: Instant) {
    let retry = Duration::from_millis(args.retry_ms);
    let mut slots: Vec<Slot> = (0..n)
        .map(|_| Slot {
            stream: None,
            progress: 0,
            next_action: Instant::now(),
        })
        .collect();
    let slow_frame = frame::encode(&Request::Status).expect("encode");
    while Instant::now() < until {
        for slot in &mut slots {
            let now = Instant::now();
            if now < slot.next_action {
                continue;
            }
            let Some(stream) = &mut slot.stream else {
                match connect(args) {
                    Some(s) => {
                        counts.connected.fetch_add(1, Ordering::Relaxed);
                        slot.stream = Some(s);
                        slot.progress = 0;
                        slot.next_action = now;
                    }
                    None => slot.next_action = now + retry,
                }
                continue;
            };
            // Whatever the daemon said: a refusal over the quota, or an answer to our request.
            match drain(stream) {
                Drained::Closed { refused } => {
                    if refused {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counts.closed_by_daemon.fetch_add(1, Ordering::Relaxed);
                    }
                    slot.stream = None;
                    slot.next_action = now + retry;
                    continue;
                }
                Drained::Open(answers) => {
                    counts.answers.fetch_add(answers, Ordering::Relaxed);
                }
            }
            let sent = match kind {
                Kind::Idle => {
                    slot.next_action = now + Duration::from_millis(200);
                    Ok(())
                }
                Kind::Slow => {
                    slot.next_action = now + Duration::from_secs(1);
                    // Never the last byte: the frame stays half-sent.
                    if slot.progress + 1 < slow_frame.len() {
                        slot.progress += 1;
                        stream.write_all(&slow_frame[slot.progress - 1..slot.progress])
                    } else {
                        Ok(())
                    }
                }
                Kind::Sessions => {
                    slot.next_action = now + Duration::from_millis(500);
                    slot.progress += 1;
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    send(stream, &begin(&args.user))
                }
                Kind::KeepAlive => {
                    slot.next_action = now + Duration::from_millis(args.keepalive_ms);
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    send(stream, &Request::Status)
                }
            };
            if sent.is_err() {
                counts.closed_by_daemon.fetch_add(1, Ordering::Relaxed);
                slot.stream = None;
                slot.next_action = now + retry;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

enum Drained {
    /// The connection is still open; this many answers were read.
    Open(u64),
    /// The daemon closed it; `refused` if its last word was "too many connections".
    Closed { refused: bool },
}

/// Read what the daemon sent without waiting.
fn drain(stream: &mut UnixStream) -> Drained {
    let mut buf = [0u8; 4096];
    let mut said = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                let refused = decode_all(&said).iter().any(|r| {
                    matches!(r, Response::Error { code, .. } if *code == protocol::ErrorCode::RateLimited)
                });
                return Drained::Closed { refused };
            }
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Drained::Open(decode_all(&said).len() as u64)
            }
            Err(_) => return Drained::Closed { refused: false },
        }
    }
}

fn decode_all(mut bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while bytes.len() >= LEN_BYTES {
        match frame::read_frame::<_, Response>(&mut bytes) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
    }
    out
}

fn connect(args: &Args) -> Option<UnixStream> {
    let s = UnixStream::connect(&args.socket).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

fn send(stream: &mut UnixStream, req: &Request) -> std::io::Result<()> {
    let bytes = frame::encode(req).map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.write_all(&bytes)
}

fn begin(user: &str) -> Request {
    Request::AuthBegin(AuthBegin {
        user: user.to_owned(),
        service: "piflood".into(),
        rhost: None,
        tty: None,
        ruser: None,
        authtok: None,
    })
}

/// Requests the daemon refuses an unprivileged caller, or rate-limits: each would cost an audit
/// record if nothing bounded them.
fn request_loop(thread: usize, args: &Args, counts: &Counts, until: Instant) {
    let someone_else = UserRef {
        login: "root".into(),
        realm: None,
    };
    let requests = [
        begin(&args.user),
        Request::Admin(AdminRequest::TokenList {
            user: Some(someone_else.clone()),
            after: None,
            limit: 10,
        }),
        Request::Admin(AdminRequest::TokenList {
            user: None,
            after: None,
            limit: 10,
        }),
        Request::Admin(AdminRequest::AuditShow {
            user: Some(someone_else),
            before: None,
            limit: 10,
        }),
        Request::SshKeys {
            user: "root".into(),
            service_id: None,
        },
    ];
    let mut stream: Option<UnixStream> = None;
    let mut i = thread;
    while Instant::now() < until {
        let s = match &mut stream {
            Some(s) => s,
            None => match UnixStream::connect(&args.socket) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    counts.connected.fetch_add(1, Ordering::Relaxed);
                    stream.insert(s)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(args.retry_ms));
                    continue;
                }
            },
        };
        i += 1;
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let answered = send(s, &requests[i % requests.len()])
            .ok()
            .and_then(|()| frame::read_frame::<_, Response>(s).ok());
        match answered {
            Some(_) => {
                counts.answers.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                counts.closed_by_daemon.fetch_add(1, Ordering::Relaxed);
                stream = None;
                std::thread::sleep(Duration::from_millis(args.retry_ms));
            }
        }
    }
}
