//! Where pid's log goes, and why writing it can never stop or stall the daemon.
//!
//! Threat: pid answers every login on the host. Started from a terminal (`pid --config … &`),
//! its stderr fails with EIO once the terminal closes; the formatter's fallback then printed
//! to stderr with `eprintln!`, which panics when that fails, and the panic ended the accept
//! loop: every SSH and sudo login failed from then on. A log consumer that stops reading (a
//! full pipe, a stopped terminal, a stalled journald) would equally block whichever thread
//! logs, i.e. a login.
//!
//! So no log write runs on a thread that serves logins, and none can fail loudly:
//! - stderr: each formatted line goes into a bounded queue (`try_send`, never waiting); one
//!   thread writes the queue out. A line that does not fit in the queue or cannot be written
//!   is dropped and counted; the first line that gets through again is preceded by "N log
//!   lines were lost".
//! - the journal: each event is one datagram in journald's native format, sent on a
//!   non-blocking socket, with the event's fields as journal fields (`USER`, `SERIAL`,
//!   `SERVICE` …, next to `MESSAGE` and `PRIORITY`). A datagram journald does not take is
//!   dropped and counted the same way.
//!
//! Which one (`log_target = "auto"`): the journal when stderr is the journal (systemd sets
//! `JOURNAL_STREAM` to its device and inode), or when stderr is a terminal or nothing at all
//! and journald listens (a terminal goes away with the session); otherwise stderr, because
//! whoever pointed stderr at a file or pipe wants the log there.

use crate::config::{Config, LogTarget};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Lines waiting for the stderr thread at most; beyond, new lines are dropped (and counted).
const QUEUE_LINES: usize = 4096;
/// How long the guard waits at exit for queued lines to be written.
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);
/// Longest field value sent to the journal (bytes); a datagram stays far below journald's
/// limit.
const MAX_JOURNAL_VALUE: usize = 8 * 1024;

/// Where records go, for `Lossy`.
trait Sink {
    /// Deliver one record, or fail without blocking for long.
    fn send(&mut self, record: &[u8]) -> std::io::Result<()>;
    /// The record that says `lost` records were dropped.
    fn lost_note(&self, lost: u64) -> Vec<u8>;
}

/// A sink whose failures drop the record instead of reaching the caller.
struct Lossy<S> {
    sink: S,
    lost: u64,
}

impl<S: Sink> Lossy<S> {
    fn new(sink: S) -> Lossy<S> {
        Lossy { sink, lost: 0 }
    }

    /// Records dropped elsewhere (a full queue) count as lost here.
    fn add_lost(&mut self, n: u64) {
        self.lost += n;
    }

    /// Send one record. If it fails, it is counted; the first record that gets through after
    /// losses is preceded by a note saying how many were lost.
    fn send(&mut self, record: &[u8]) {
        if self.lost > 0 {
            let note = self.sink.lost_note(self.lost);
            if self.sink.send(&note).is_err() {
                self.lost += 1;
                return;
            }
            self.lost = 0;
        }
        if self.sink.send(record).is_err() {
            self.lost += 1;
        }
    }
}

/// stderr as a `Sink`: text lines.
struct Stderr;

impl Sink for Stderr {
    fn send(&mut self, record: &[u8]) -> std::io::Result<()> {
        let mut err = std::io::stderr().lock();
        err.write_all(record)?;
        err.flush()
    }

    fn lost_note(&self, lost: u64) -> Vec<u8> {
        format!("pid: {lost} log lines were lost: the log could not be written\n").into_bytes()
    }
}

enum Queued {
    Line(Vec<u8>),
    /// Answer once everything before it is written.
    Flush(SyncSender<()>),
}

/// The formatter's writer for stderr: hands each line to the writing thread.
#[derive(Clone)]
struct StderrQueue {
    queue: SyncSender<Queued>,
    /// Lines the queue had no room for, since the writing thread last looked.
    dropped: Arc<AtomicU64>,
}

impl StderrQueue {
    fn start() -> StderrQueue {
        let (queue, lines) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("pid-log".into())
            .spawn(move || {
                write_out(lines, counted, Lossy::new(Stderr));
            });
        if spawned.is_err() {
            // Without the thread nothing is written; every line then counts as lost, and the
            // daemon still runs.
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        StderrQueue { queue, dropped }
    }

    fn push(&self, item: Queued) -> bool {
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The writing thread: until every sender is gone, write each queued line to `out`, counting
/// the lines the queue dropped meanwhile.
fn write_out<S: Sink>(
    lines: Receiver<Queued>,
    dropped: Arc<AtomicU64>,
    mut out: Lossy<S>,
) -> Lossy<S> {
    for item in lines {
        out.add_lost(dropped.swap(0, Ordering::Relaxed));
        match item {
            Queued::Line(line) => out.send(&line),
            Queued::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
    out
}

/// One event's text, queued when the formatter drops it.
struct QueuedLine<'a> {
    queue: &'a StderrQueue,
    line: Vec<u8>,
}

impl Write for QueuedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine<'_> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue
                .push(Queued::Line(std::mem::take(&mut self.line)));
        }
    }
}

impl<'a> MakeWriter<'a> for StderrQueue {
    type Writer = QueuedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedLine {
            queue: self,
            line: Vec::new(),
        }
    }
}

/// journald's native socket as a `Sink`: one datagram per record, never waiting.
struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journal {
    /// A socket to `path`, if journald (or whoever binds it) takes a datagram now.
    fn connect(path: &Path) -> std::io::Result<Journal> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        let mut journal = Journal {
            socket,
            path: path.to_path_buf(),
        };
        // journald ignores an empty datagram; an error means nobody listens.
        journal.send(&[])?;
        Ok(journal)
    }
}

impl Sink for Journal {
    fn send(&mut self, record: &[u8]) -> std::io::Result<()> {
        self.socket.send_to(record, &self.path).map(drop)
    }

    fn lost_note(&self, lost: u64) -> Vec<u8> {
        let mut record = JournalRecord::default();
        record.field("PRIORITY", b"4");
        record.field("SYSLOG_IDENTIFIER", b"pid");
        record.field(
            "MESSAGE",
            format!("{lost} log lines were lost: the journal did not take them").as_bytes(),
        );
        record.0
    }
}

/// One record in journald's native protocol: `NAME=value\n`, or for a value with a newline
/// `NAME\n`, its length as 64-bit little endian, the value, `\n`.
#[derive(Default)]
struct JournalRecord(Vec<u8>);

impl JournalRecord {
    fn field(&mut self, name: &str, value: &[u8]) {
        let value = &value[..value.len().min(MAX_JOURNAL_VALUE)];
        self.0.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            self.0.push(b'\n');
            self.0
                .extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            self.0.push(b'=');
        }
        self.0.extend_from_slice(value);
        self.0.push(b'\n');
    }
}

/// Fields journald gives a meaning of its own: an event field of that name is sent as
/// `PI_<NAME>` instead, so it cannot pose as the record's priority or message.
const RESERVED_FIELDS: [&str; 14] = [
    "MESSAGE",
    "MESSAGE_ID",
    "PRIORITY",
    "CODE_FILE",
    "CODE_LINE",
    "CODE_FUNC",
    "ERRNO",
    "SYSLOG_FACILITY",
    "SYSLOG_IDENTIFIER",
    "SYSLOG_PID",
    "TID",
    "UNIT",
    "INVOCATION_ID",
    "TARGET",
];

/// A tracing field name as a journal field name: upper case, `[A-Z0-9_]`, starting with a
/// letter (journald drops other names, and keeps those starting with `_` for itself).
fn journal_field_name(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let upper = upper.trim_start_matches('_');
    let starts_with_letter = upper.starts_with(|c: char| c.is_ascii_uppercase());
    if !starts_with_letter || RESERVED_FIELDS.contains(&upper) || upper.starts_with("SYSLOG_") {
        format!("PI_{upper}")
    } else {
        upper.to_string()
    }
}

/// The fields of one event: the message, and every other field as text.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.others.push((field.name(), format!("{value:?}")));
        }
    }
}

/// syslog priorities (what journald's PRIORITY means).
fn priority(level: &tracing::Level) -> &'static [u8] {
    match *level {
        tracing::Level::ERROR => b"3",
        tracing::Level::WARN => b"4",
        tracing::Level::INFO => b"6",
        tracing::Level::DEBUG | tracing::Level::TRACE => b"7",
    }
}

/// The journal record of one event. MESSAGE carries the fields too (`… user=alice`), as the
/// stderr log does, because `journalctl` shows only MESSAGE unless asked for more.
fn journal_record(event: &tracing::Event<'_>) -> Vec<u8> {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let meta = event.metadata();
    let mut message = fields.message;
    for (name, value) in &fields.others {
        message.push_str(&format!(" {name}={value}"));
    }
    let mut record = JournalRecord::default();
    record.field("PRIORITY", priority(meta.level()));
    record.field("SYSLOG_IDENTIFIER", b"pid");
    record.field("MESSAGE", message.as_bytes());
    record.field("TARGET", meta.target().as_bytes());
    if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
        record.field("CODE_FILE", file.as_bytes());
        record.field("CODE_LINE", line.to_string().as_bytes());
    }
    for (name, value) in &fields.others {
        record.field(&journal_field_name(name), value.as_bytes());
    }
    record.0
}

/// Sends every event to the journal.
struct JournalLayer {
    journal: Mutex<Lossy<Journal>>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JournalLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let record = journal_record(event);
        // A send never waits, so neither does the lock; a panic elsewhere cannot leave the
        // counter unusable.
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        journal.send(&record);
    }
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd) names the file `fd` is open on.
fn names_stream(journal_stream: &str, fd: std::os::fd::RawFd) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
}

/// Whether nobody chose where stderr goes: it is closed, a terminal (gone with the session) or
/// another character device such as /dev/null.
fn stderr_unchosen() -> bool {
    use nix::sys::stat::SFlag;
    match nix::sys::stat::fstat(libc::STDERR_FILENO) {
        Err(_) => true,
        Ok(st) => SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR,
    }
}

/// What `init` set up; dropping it waits (briefly) until queued lines are written.
pub struct LogGuard {
    stderr: Option<StderrQueue>,
    journal: bool,
}

impl LogGuard {
    /// Whether the log goes to the journal (not to stderr).
    pub fn to_journal(&self) -> bool {
        self.journal
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(queue) = &self.stderr else { return };
        let (done, flushed) = sync_channel(1);
        let until = Instant::now() + FLUSH_DEADLINE;
        let mut item = Queued::Flush(done);
        loop {
            match queue.queue.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < until => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = flushed.recv_timeout(until.saturating_duration_since(Instant::now()));
    }
}

/// Start logging as `config` says (`log_level`, `log_target`, `journal_socket`); RUST_LOG
/// overrides the level. Never fails: without a usable journal the log goes to stderr.
pub fn init(config: &Config) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let wants_journal = match config.log_target {
        LogTarget::Stderr => false,
        LogTarget::Journal => true,
        LogTarget::Auto => {
            std::env::var("JOURNAL_STREAM").is_ok_and(|s| names_stream(&s, libc::STDERR_FILENO))
                || (stderr_unchosen() && config.journal_socket.exists())
        }
    };
    let journal = if wants_journal {
        match Journal::connect(&config.journal_socket) {
            Ok(j) => Some(j),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "pid: cannot log to the journal at {} ({e}); logging to stderr",
                    config.journal_socket.display()
                );
                None
            }
        }
    } else {
        None
    };
    let registry = tracing_subscriber::registry().with(filter);
    match journal {
        Some(journal) => {
            let layer = JournalLayer {
                journal: Mutex::new(Lossy::new(journal)),
            };
            let _ = registry.with(layer).try_init();
            LogGuard {
                stderr: None,
                journal: true,
            }
        }
        None => {
            let queue = StderrQueue::start();
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(queue.clone())
                .with_ansi(false)
                .with_target(false)
                .log_internal_errors(false);
            let _ = registry.with(layer).try_init();
            LogGuard {
                stderr: Some(queue),
                journal: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that fails its first `failures` sends and records the rest.
    struct Flaky {
        failures: usize,
        got: Vec<String>,
    }

    impl Sink for Flaky {
        fn send(&mut self, record: &[u8]) -> std::io::Result<()> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            self.got.push(String::from_utf8_lossy(record).into_owned());
            Ok(())
        }

        fn lost_note(&self, lost: u64) -> Vec<u8> {
            Stderr.lost_note(lost)
        }
    }

    #[test]
    fn failed_writes_are_dropped_counted_and_reported_once_writing_works_again() {
        let mut out = Lossy::new(Flaky {
            failures: 3,
            got: Vec::new(),
        });
        for line in ["a\n", "b\n", "c\n", "d\n", "e\n"] {
            out.send(line.as_bytes());
        }
        // a, b and c fail; the note about them goes out before d.
        assert_eq!(
            out.sink.got,
            [
                "pid: 3 log lines were lost: the log could not be written\n",
                "d\n",
                "e\n"
            ]
        );
        let mut out = Lossy::new(Flaky {
            failures: 0,
            got: Vec::new(),
        });
        out.add_lost(2);
        out.send(b"x\n");
        out.send(b"y\n");
        assert_eq!(
            out.sink.got,
            [
                "pid: 2 log lines were lost: the log could not be written\n",
                "x\n",
                "y\n"
            ],
            "the note comes once"
        );
    }

    #[test]
    fn a_full_queue_drops_lines_without_waiting_and_counts_them() {
        let (sender, lines) = sync_channel(1);
        let queue = StderrQueue {
            queue: sender,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        for line in ["kept\n", "dropped\n", "dropped\n"] {
            queue.make_writer().write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 2);
        let dropped = queue.dropped.clone();
        let sink = Flaky {
            failures: 0,
            got: Vec::new(),
        };
        let writer = std::thread::spawn(move || write_out(lines, dropped, Lossy::new(sink)));
        // Room again once the writer took the first line.
        while !matches!(
            queue.queue.try_send(Queued::Line(b"later\n".to_vec())),
            Ok(())
        ) {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(queue);
        let got = writer.join().unwrap().sink.got;
        assert_eq!(
            got,
            [
                "pid: 2 log lines were lost: the log could not be written\n",
                "kept\n",
                "later\n"
            ]
        );
    }

    #[test]
    fn field_names_become_journal_names_that_cannot_pose_as_journald_fields() {
        assert_eq!(journal_field_name("user"), "USER");
        assert_eq!(journal_field_name("took_us"), "TOOK_US");
        assert_eq!(journal_field_name("a.b-c"), "A_B_C");
        assert_eq!(journal_field_name("priority"), "PI_PRIORITY");
        assert_eq!(journal_field_name("message_id"), "PI_MESSAGE_ID");
        assert_eq!(
            journal_field_name("syslog_identifier"),
            "PI_SYSLOG_IDENTIFIER"
        );
        assert_eq!(journal_field_name("_uid"), "UID");
        assert_eq!(journal_field_name("2fa"), "PI_2FA");
    }

    #[test]
    fn a_value_with_a_newline_is_sent_with_its_length() {
        let mut record = JournalRecord::default();
        record.field("MESSAGE", b"one line");
        record.field("DETAIL", b"two\nlines");
        let mut want = b"MESSAGE=one line\nDETAIL\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(record.0, want);
    }

    #[test]
    fn a_journal_that_does_not_read_costs_a_dropped_datagram_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let mut journal = Lossy::new(Journal::connect(&path).unwrap());
        let started = Instant::now();
        // Far more than a datagram socket's queue holds while nobody reads.
        for _ in 0..10_000 {
            journal.send(b"MESSAGE=x\n");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(journal.lost > 0, "some datagrams were dropped");
        let mut buf = [0u8; 256];
        listener.set_nonblocking(true).unwrap();
        while listener.recv(&mut buf).is_ok() {}
        journal.send(b"MESSAGE=y\n");
        let n = listener.recv(&mut buf).unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).contains("log lines were lost"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        assert_eq!(journal.lost, 0);
    }

    #[test]
    fn journal_stream_names_a_file_by_device_and_inode() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let file = tempfile::tempfile().unwrap();
        let meta = file.metadata().unwrap();
        let fd = file.as_raw_fd();
        assert!(names_stream(&format!("{}:{}", meta.dev(), meta.ino()), fd));
        assert!(!names_stream(
            &format!("{}:{}", meta.dev(), meta.ino() + 1),
            fd
        ));
        assert!(!names_stream("garbage", fd));
    }
}
