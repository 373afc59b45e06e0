//! The store's write-ahead journal: how a login becomes durable with one `write` and one
//! `fdatasync` of our own instead of a database commit.
//!
//! Every write to a tree goes through [`Journal::write`], which applies it to the in-memory
//! overlay (see `kv`) and appends the values it left behind to a buffer, both under one lock.
//! The flusher thread writes that buffer to the current journal file and `fdatasync`s it before
//! answering anyone waiting for durability (group commit). The database file is written only at
//! checkpoints (every half second, on another thread): after a checkpoint the journal files it
//! covers are retired. At start-up the journal files left are replayed, in order, before
//! anything is served.
//!
//! Invariants:
//! - Per key, the journal holds values in the order the overlay took them: the overlay write
//!   and the append happen under the same lock. Replaying a key's records in order therefore ends at the
//!   newest value any caller was told is durable, so a spent OTP cannot come back after a crash.
//! - A record holds the *resulting* values (put or delete) of one operation, never the
//!   operation: replaying a record the database already has is harmless, and a transaction's writes
//!   are one record, whole or (cut short by a crash, so never acknowledged) ignored.
//! - A journal file is retired only after a checkpoint that started after the file's last
//!   record was appended, and the directory is synced after every rename and delete, so a
//!   power cut cannot bring back an older file over a newer checkpoint.
//! - Files are recycled: a retired file becomes `journal-free` and then the next
//!   `journal-<seq>`, overwritten from its start. Overwriting blocks a file already has makes
//!   `fdatasync` one disk write instead of two (an append also has to write the inode's new
//!   size): 150 µs instead of 270 µs here, and the group commit's latency is what bounds
//!   logins/s. Every record carries the number of the file it was written for, so the leftovers
//!   of an earlier use after the last fresh record end the replay like a torn write does.
//!
//! - A torn write is normal, damage is not. Each record carries the offset at which its commit
//!   began. A commit's records were all acknowledged once a later commit began, so an intact
//!   record whose commit began after a damaged one proves the damage hit acknowledged data:
//!   replaying only what comes before it would bring spent one-time passwords back, and start-up
//!   refuses instead. A file ends with a closing record before the next file is started, so a
//!   file that is not the last and stops early is damaged too.
//!
//! File format: records of `[u32 LE payload length][u32 LE CRC-32 of the rest of the header and
//! the payload][u64 LE file number][u64 LE offset where the record's commit began][payload]`;
//! the payload is a run of ops `[u8 tree][u8 1=put|0=delete][u32 LE key length][key]` followed,
//! for a put, by `[u32 LE value length][value]`, or the single op `[u8 255]` that closes the
//! file. Files written before commits were recorded lack the offset field (`HEADER_V1`); they are
//! still replayed, without the damage checks.

use crate::error::PidError;
use crate::trust::open_nofollow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The trees a journal record can name. The numbers are on disk: never reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeId {
    Meta = 0,
    Tokens = 1,
    UserTokens = 2,
    AuthHistory = 3,
    UserIds = 4,
    MachineTokens = 5,
    Audit = 6,
    Offline = 7,
    UpstreamSshKeys = 8,
    PoolTokens = 9,
}

impl TreeId {
    /// Every tree, in the order of their numbers (`ALL[id as usize] == id`).
    pub const ALL: [TreeId; 10] = [
        TreeId::Meta,
        TreeId::Tokens,
        TreeId::UserTokens,
        TreeId::AuthHistory,
        TreeId::UserIds,
        TreeId::MachineTokens,
        TreeId::Audit,
        TreeId::Offline,
        TreeId::UpstreamSshKeys,
        TreeId::PoolTokens,
    ];

    /// The tree's table name on disk (the names of a sled store's trees, which `migrate` copies).
    pub fn name(self) -> &'static str {
        match self {
            TreeId::Meta => "meta",
            TreeId::Tokens => "tokens",
            TreeId::UserTokens => "user_tokens",
            TreeId::AuthHistory => "auth_history",
            TreeId::UserIds => "user_ids",
            TreeId::MachineTokens => "machine_tokens",
            TreeId::Audit => "audit",
            TreeId::Offline => "offline",
            TreeId::UpstreamSshKeys => "upstream_ssh_keys",
            TreeId::PoolTokens => "pool_tokens",
        }
    }

    fn from_byte(b: u8) -> Option<TreeId> {
        Some(match b {
            0 => TreeId::Meta,
            1 => TreeId::Tokens,
            2 => TreeId::UserTokens,
            3 => TreeId::AuthHistory,
            4 => TreeId::UserIds,
            5 => TreeId::MachineTokens,
            6 => TreeId::Audit,
            7 => TreeId::Offline,
            8 => TreeId::UpstreamSshKeys,
            9 => TreeId::PoolTokens,
            _ => return None,
        })
    }
}

const HEADER: usize = 24;
/// The header of files written before records carried their commit's offset.
const HEADER_V1: usize = 16;
/// The op that closes a file (never a tree number).
const CLOSE: u8 = 0xFF;
/// A record larger than this is damage, not data (the largest real one is an audit batch).
const MAX_RECORD: usize = 256 * 1024 * 1024;
const FILE_PREFIX: &str = "journal-";
/// A retired file waiting to be reused.
const FREE_FILE: &str = "journal-free";
/// The free file is extended with zeros to twice what the last file held, within these
/// bounds, so that the next file's writes overwrite blocks it already has (see above). The
/// lower bound covers a burst right after a start (50,000 logins/s write ~6 MB per half
/// second); it costs a daemon one 8 MiB write of zeros per start (`prepare_for_writes`).
const FREE_FILE_MIN: u64 = 8 * 1024 * 1024;
const FREE_FILE_MAX: u64 = 64 * 1024 * 1024;

/// A journal file taken out of use, and how many bytes of records it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Retired {
    pub path: PathBuf,
    pub used: u64,
}

/// The shared half: the lock that orders store writes, and the records not yet on disk.
pub struct Journal {
    pending: Mutex<Pending>,
}

struct Pending {
    buf: Vec<u8>,
    /// Where the last whole record ends: a record cut short by a panic is dropped from here.
    complete: usize,
}

/// One operation's record, filled by the closure given to [`Journal::write`].
pub struct Record<'a> {
    pending: MutexGuard<'a, Pending>,
}

impl Record<'_> {
    /// `key` now holds `value`, or is absent if `None`.
    pub fn set(&mut self, tree: TreeId, key: &[u8], value: Option<&[u8]>) {
        self.op(tree, key, value);
    }

    fn op(&mut self, tree: TreeId, key: &[u8], value: Option<&[u8]>) {
        let buf = &mut self.pending.buf;
        buf.push(tree as u8);
        buf.push(value.is_some() as u8);
        buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        buf.extend_from_slice(key);
        if let Some(v) = value {
            buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            buf.extend_from_slice(v);
        }
    }
}

impl Journal {
    pub(super) fn new() -> Journal {
        Journal {
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                complete: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic inside `write` leaves at most one unfinished record after `complete`; cut it
        // off, and the buffer is whole again. (Its overlay write, if any, is then only made
        // durable by the next checkpoint; its caller never got an answer.)
        self.pending.lock().unwrap_or_else(|poisoned| {
            let mut p = poisoned.into_inner();
            let complete = p.complete;
            p.buf.truncate(complete);
            p
        })
    }

    /// Run `apply`, which writes to the overlay and notes the values it left behind in the record,
    /// with every other store write held off. The record is queued for the next commit even if
    /// `apply` fails after a write took effect.
    pub fn write<T>(
        &self,
        apply: impl FnOnce(&mut Record<'_>) -> Result<T, PidError>,
    ) -> Result<T, PidError> {
        let mut pending = self.lock();
        let start = pending.buf.len();
        pending.buf.extend_from_slice(&[0; HEADER]);
        let mut record = Record { pending };
        let result = apply(&mut record);
        let p = &mut *record.pending;
        let len = p.buf.len() - start - HEADER;
        if len == 0 {
            p.buf.truncate(start);
        } else {
            // The file number and checksum are stamped at commit, when the file is known.
            p.buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
        }
        p.complete = p.buf.len();
        result
    }

    /// Run `f` with every store write held off (a checkpoint taking the overlay must not cut
    /// an operation's writes in two).
    pub fn hold<T>(&self, f: impl FnOnce() -> T) -> T {
        let _held = self.lock();
        f()
    }

    /// Bytes of whole records waiting for the next commit.
    pub fn queued_bytes(&self) -> usize {
        self.lock().complete
    }

    /// Move the queued records into `into` (emptied first), leaving the queue empty.
    fn take(&self, into: &mut Vec<u8>) {
        into.clear();
        let mut p = self.lock();
        std::mem::swap(&mut p.buf, into);
        p.complete = 0;
    }
}

/// The flusher thread's half: the open journal file and the ones a checkpoint may delete.
pub struct JournalFile {
    dir: PathBuf,
    seq: u64,
    file: File,
    /// Bytes in the current file.
    size: u64,
    spare: Vec<u8>,
}

impl JournalFile {
    /// Append everything queued to the current file and make it durable. Returns whether
    /// anything was written.
    pub fn commit(&mut self, journal: &Journal) -> Result<bool, PidError> {
        journal.take(&mut self.spare);
        if self.spare.is_empty() {
            return Ok(false);
        }
        stamp(&mut self.spare, self.seq, self.size);
        self.file
            .write_all_at(&self.spare, self.size)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| PidError::JournalFile {
                action: "write the journal",
                path: file_path(&self.dir, self.seq),
                source,
            })?;
        self.size += self.spare.len() as u64;
        // Do not keep a huge buffer after a burst (a big audit batch, a bulk enrolment).
        if self.spare.capacity() > 4 * 1024 * 1024 {
            self.spare = Vec::new();
        }
        Ok(true)
    }

    /// Bytes written to the current file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Start a new file (the free one if there is one) and return the one it replaces
    /// (`None` if that one is empty). Every record in the returned file was appended before
    /// this call; [`retire`] it after a checkpoint that starts after this call.
    pub fn rotate(&mut self) -> Result<Option<Retired>, PidError> {
        if self.size == 0 {
            return Ok(None);
        }
        // Closed and durable before the next file exists: a file followed by another must end
        // with this record, or it is damaged (see the module comment).
        let mut close = vec![0; HEADER];
        close.push(CLOSE);
        close[..4].copy_from_slice(&1u32.to_le_bytes());
        stamp(&mut close, self.seq, self.size);
        let path = file_path(&self.dir, self.seq);
        self.file
            .write_all_at(&close, self.size)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| PidError::JournalFile {
                action: "close journal",
                path,
                source,
            })?;
        self.size += close.len() as u64;
        let file = next_file(&self.dir, self.seq + 1)?;
        drop(std::mem::replace(&mut self.file, file));
        let retired = Retired {
            path: file_path(&self.dir, self.seq),
            used: self.size,
        };
        self.seq += 1;
        self.size = 0;
        Ok(Some(retired))
    }
}

/// Journal files a checkpoint now covers: the newest becomes the free file (unless there is
/// one), the others are deleted, and the directory is synced so a power cut cannot bring one
/// back under its old name after a newer checkpoint. Then the free file is extended with
/// zeros to twice what the newest held (within bounds).
pub fn retire(files: &[Retired]) -> Result<(), PidError> {
    let Some((newest, older)) = files.split_last() else {
        return Ok(());
    };
    let dir = newest.path.parent().unwrap_or(Path::new("."));
    let free = dir.join(FREE_FILE);
    let fail = |action, path: &Path, source| PidError::JournalFile {
        action,
        path: path.to_path_buf(),
        source,
    };
    for old in older {
        match std::fs::remove_file(&old.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail("delete journal", &old.path, e)),
        }
    }
    if free.exists() {
        std::fs::remove_file(&newest.path).map_err(|e| fail("delete journal", &newest.path, e))?;
    } else {
        std::fs::rename(&newest.path, &free)
            .map_err(|e| fail("recycle journal", &newest.path, e))?;
    }
    sync_dir(dir)?;
    let want = (2 * newest.used).clamp(FREE_FILE_MIN, FREE_FILE_MAX);
    preallocate(&free, want).map_err(|e| fail("extend journal", &free, e))
}

/// Extend the current file and the free one (created if missing) with zeros before anything is
/// served: otherwise the first commits after a start append to a new file, each `fdatasync`
/// then also writing the file's new size (0.2 instead of 0.1 ms here), for the half second
/// until the first checkpoint recycles a file.
fn prepare_for_writes(dir: &Path, seq: u64) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let free = dir.join(FREE_FILE);
    open_nofollow(
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        &free,
    )?;
    preallocate(&file_path(dir, seq), FREE_FILE_MIN)?;
    preallocate(&free, FREE_FILE_MIN)?;
    File::open(dir)?.sync_all()
}

/// Extend `path` with zeros to `len` bytes (really written: space that `fallocate` reserves
/// is marked unwritten, and the first write into it changes metadata again).
fn preallocate(path: &Path, len: u64) -> std::io::Result<()> {
    let file = open_nofollow(OpenOptions::new().write(true), path)?;
    let mut at = file.metadata()?.len();
    if at >= len {
        return Ok(());
    }
    let zeros = vec![0u8; 1024 * 1024];
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_data()
}

/// Fill in each queued record's file number, the offset its commit begins at, and checksum.
fn stamp(buf: &mut [u8], seq: u64, commit_at: u64) {
    let mut pos = 0;
    while pos < buf.len() {
        let len = le_u32(&buf[pos..]) as usize;
        buf[pos + 8..pos + 16].copy_from_slice(&seq.to_le_bytes());
        buf[pos + 16..pos + HEADER].copy_from_slice(&commit_at.to_le_bytes());
        let crc = crc32fast::hash(&buf[pos + 8..pos + HEADER + len]);
        buf[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos += HEADER + len;
    }
}

/// Open the journal in `dir` (created if missing): replay every record left by an earlier run
/// through `apply` in order, then let `checkpoint` make those writes durable in the database, delete
/// the replayed files and start a fresh one. Returns the two halves and how many records were
/// replayed.
pub fn open(
    dir: &Path,
    mut apply: impl FnMut(TreeId, &[u8], Option<&[u8]>) -> Result<(), PidError>,
    checkpoint: impl FnOnce() -> Result<(), PidError>,
) -> Result<(Journal, JournalFile, u64), PidError> {
    super::create_private_dir(dir)?;
    let mut files = list_files(dir)?;
    files.sort();
    let mut replayed = 0u64;
    let mut retired = Vec::new();
    for (i, (seq, path)) in files.iter().enumerate() {
        let mut data = Vec::new();
        open_nofollow(OpenOptions::new().read(true), path)
            .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut data))
            .map_err(|e| PidError::file("read journal", path, e))?;
        let damaged = |at: usize, gap: Gap| Damaged::Gap {
            path: path.clone(),
            at,
            gap,
        };
        let header = Format::of(&data, *seq).header();
        let replay = for_each_op(&data, *seq, header, &mut apply).map_err(|e| match e {
            Replay::Damaged(damage) => PidError::from(Damaged::Record {
                path: path.clone(),
                damage,
            }),
            Replay::Apply(e) => e,
        })?;
        let whole = replay.end;
        if header == HEADER && !replay.closed {
            if i + 1 < files.len() {
                return Err(damaged(whole, Gap::Unclosed(whole)).into());
            }
            if let Some(at) = acknowledged_after(&data, whole, *seq) {
                return Err(damaged(whole, Gap::LaterCommit(at)).into());
            }
        }
        if replay.records > 0 {
            tracing::info!(journal = %path.display(), records = replay.records, "journal replayed");
        }
        if !replay.closed && data[whole..].iter().take(header).any(|&b| b != 0) {
            // A torn last write (never acknowledged) or what an earlier use of a recycled
            // file left behind.
            tracing::debug!(journal = %path.display(), "journal ends at byte {whole}");
        }
        replayed += replay.records;
        retired.push(Retired {
            path: path.clone(),
            used: whole as u64,
        });
    }
    if !retired.is_empty() {
        checkpoint()?;
        retire(&retired)?;
    }
    let seq = files.last().map(|(s, _)| s + 1).unwrap_or(1);
    let file = next_file(dir, seq)?;
    if let Err(e) = prepare_for_writes(dir, seq) {
        // Only speed is lost: the journal appends as it would without the extension. A full
        // disk must not keep pid (and every login) down.
        tracing::warn!(
            "cannot extend the journal files in {} ({e}); commits are slower until a \
             checkpoint recycles a file. Is the disk full?",
            dir.display()
        );
    }
    Ok((
        Journal::new(),
        JournalFile {
            dir: dir.to_path_buf(),
            seq,
            file,
            size: 0,
            spare: Vec::new(),
        },
        replayed,
    ))
}

/// How a file's records are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Current,
    /// Written before records carried their commit's offset.
    V1,
}

impl Format {
    /// The format of a file: its first record is intact in only one of them (a file with no
    /// record of its own is read as current: there is nothing to replay either way).
    fn of(data: &[u8], seq: u64) -> Format {
        if record_at(data, 0, seq, HEADER).is_none() && record_at(data, 0, seq, HEADER_V1).is_some()
        {
            Format::V1
        } else {
            Format::Current
        }
    }

    fn header(self) -> usize {
        match self {
            Format::Current => HEADER,
            Format::V1 => HEADER_V1,
        }
    }
}

/// The payload length of the intact record of file `seq` at `pos`, if there is one.
fn record_at(data: &[u8], pos: usize, seq: u64, header: usize) -> Option<usize> {
    let rest = data.get(pos..)?;
    if rest.len() < header || rest[8..16] != seq.to_le_bytes() {
        return None;
    }
    let len = le_u32(rest) as usize;
    if len == 0 || len > MAX_RECORD || rest.len() - header < len {
        return None;
    }
    (crc32fast::hash(&rest[8..header + len]) == le_u32(&rest[4..])).then_some(len)
}

/// Where the first intact record of file `seq` after `from` lies whose commit began after
/// `from`: proof that whatever is damaged at `from` had been acknowledged.
fn acknowledged_after(data: &[u8], from: usize, seq: u64) -> Option<usize> {
    let marker = seq.to_le_bytes();
    // Cheap filter first: a record of this file has its number at offset 8.
    (from + 1..data.len().saturating_sub(HEADER - 1))
        .filter(|&at| data[at + 8..at + 16] == marker)
        .find(|&at| {
            record_at(data, at, seq, HEADER).is_some()
                && u64::from_le_bytes(data[at + 16..at + 24].try_into().unwrap_or_default())
                    > from as u64
        })
}

/// What replaying one file found.
#[derive(Debug, PartialEq, Eq)]
struct Replayed {
    records: u64,
    /// The length of the intact prefix.
    end: usize,
    /// The file ends with its closing record.
    closed: bool,
}

/// Why a replay stopped.
enum Replay {
    /// An intact record does not parse.
    Damaged(RecordDamage),
    /// Applying an operation failed.
    Apply(PidError),
}

impl From<RecordDamage> for Replay {
    fn from(damage: RecordDamage) -> Replay {
        Replay::Damaged(damage)
    }
}

/// How a record that passed its checksum fails to parse: damage, not a torn write.
#[derive(Debug, thiserror::Error)]
pub enum RecordDamage {
    #[error("a record ends inside an operation")]
    Truncated,
    #[error("unknown tree number {0}")]
    UnknownTree(u8),
}

/// Records found missing before others that were acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Gap {
    /// The records before this byte replay.
    #[error(
        "a newer journal file follows, so this one was closed, but its closing record is not \
         found (the records before byte {0} replay)"
    )]
    Unclosed(usize),
    #[error("an intact record of a later commit follows at byte {0}")]
    LaterCommit(usize),
}

/// A journal file found at start that cannot be replayed whole: pid does not start.
#[derive(Debug, thiserror::Error)]
pub enum Damaged {
    /// An intact record does not parse.
    #[error(
        "journal {} is damaged: {damage}; restore {} from a backup",
        path.display(),
        journal_dir_of(path).display()
    )]
    Record { path: PathBuf, damage: RecordDamage },
    /// Records are missing before acknowledged ones.
    #[error(
        "journal {} is damaged at byte {at}: {gap}. Replaying only what comes before would \
         bring back one-time passwords already used. Restore {dir} from a backup; or, accepting \
         that the logins and changes since the store's last checkpoint are lost (a code used \
         since then may work once more), move {dir} aside and start pid again",
        path.display(),
        dir = journal_dir_of(path).display()
    )]
    Gap { path: PathBuf, at: usize, gap: Gap },
}

/// The journal directory a journal file is in.
fn journal_dir_of(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

/// Apply the ops of every whole, intact record in `data`, up to the closing record if there is
/// one. A record whose checksum fails ends the replay (a torn write, or damage: the caller
/// tells which); an intact record that does not parse is damage.
fn for_each_op(
    data: &[u8],
    seq: u64,
    header: usize,
    apply: &mut impl FnMut(TreeId, &[u8], Option<&[u8]>) -> Result<(), PidError>,
) -> Result<Replayed, Replay> {
    let mut pos = 0;
    let mut records = 0;
    while let Some(len) = record_at(data, pos, seq, header) {
        let payload = &data[pos + header..pos + header + len];
        pos += header + len;
        if payload == [CLOSE] {
            return Ok(Replayed {
                records,
                end: pos,
                closed: true,
            });
        }
        let mut ops = Reader(payload);
        while !ops.0.is_empty() {
            let tree = ops.byte()?;
            let tree = TreeId::from_byte(tree).ok_or(RecordDamage::UnknownTree(tree))?;
            let put = ops.byte()? == 1;
            let key = ops.bytes()?;
            let value = if put { Some(ops.bytes()?) } else { None };
            apply(tree, key, value).map_err(Replay::Apply)?;
        }
        records += 1;
    }
    Ok(Replayed {
        records,
        end: pos,
        closed: false,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordDamage> {
        if self.0.len() < n {
            return Err(RecordDamage::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, RecordDamage> {
        Ok(self.take(1)?[0])
    }

    fn bytes(&mut self) -> Result<&'a [u8], RecordDamage> {
        let len = le_u32(self.take(4)?) as usize;
        self.take(len)
    }
}

/// The little-endian u32 at the start of `b` (callers check there are four bytes).
fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn file_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{seq:020}"))
}

fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PidError> {
    let unreadable = |e| PidError::file("read", dir, e);
    let entries = std::fs::read_dir(dir).map_err(unreadable)?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name();
        let seq = name
            .to_str()
            .and_then(|n| n.strip_prefix(FILE_PREFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, entry.path()));
        }
    }
    Ok(out)
}

/// Open `journal-<seq>`: the free file renamed, or a new one.
fn next_file(dir: &Path, seq: u64) -> Result<File, PidError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = file_path(dir, seq);
    match std::fs::rename(dir.join(FREE_FILE), &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(PidError::JournalFile {
                action: "reuse journal",
                path: dir.join(FREE_FILE),
                source,
            })
        }
    }
    let file = open_nofollow(
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        &path,
    )
    .map_err(|source| PidError::JournalFile {
        action: "create journal",
        path: path.clone(),
        source,
    })?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), PidError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| PidError::JournalFile {
            action: "sync directory",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type Model = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

    /// One record that sets one key (the overlay is left out: these tests are about files).
    fn put(journal: &Journal, tree: TreeId, key: &[u8], value: &[u8]) {
        journal
            .write(|r| {
                r.set(tree, key, Some(value));
                Ok(())
            })
            .unwrap();
    }

    fn replay_into(dir: &Path, model: &mut Model) -> (JournalFile, u64) {
        let (_, file, n) = open(
            dir,
            |tree, key, value| {
                match value {
                    Some(v) => model.insert((tree as u8, key.to_vec()), v.to_vec()),
                    None => model.remove(&(tree as u8, key.to_vec())),
                };
                Ok(())
            },
            || Ok(()),
        )
        .unwrap();
        (file, n)
    }

    #[test]
    fn committed_records_replay_in_order_and_their_file_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        for counter in 0u32..5 {
            journal
                .write(|r| {
                    r.set(TreeId::Tokens, b"T1", Some(&counter.to_le_bytes()));
                    r.set(TreeId::Audit, &counter.to_be_bytes(), Some(b"entry"));
                    Ok(())
                })
                .unwrap();
        }
        journal
            .write(|r| {
                r.set(TreeId::Audit, &0u32.to_be_bytes(), None);
                Ok(())
            })
            .unwrap();
        assert!(file.commit(&journal).unwrap());
        drop(file);

        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 6);
        assert_eq!(model[&(1, b"T1".to_vec())], 4u32.to_le_bytes());
        assert!(!model.contains_key(&(6, 0u32.to_be_bytes().to_vec())));
        assert_eq!(model.len(), 5);
        let left = list_files(dir.path()).unwrap();
        assert_eq!(left.len(), 1, "the replayed file is reused: {left:?}");
        let (_, n) = replay_into(dir.path(), &mut Model::new());
        assert_eq!(n, 0, "what a reused file held before does not replay again");
    }

    #[test]
    fn a_started_journal_writes_into_files_already_extended() {
        let dir = tempfile::tempdir().unwrap();
        for _start in 0..2 {
            let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
            let len = |p: PathBuf| std::fs::metadata(p).unwrap().len();
            let current = len(file_path(dir.path(), file.seq));
            let free = len(dir.path().join(FREE_FILE));
            assert!(
                current >= FREE_FILE_MIN && free >= FREE_FILE_MIN,
                "{current} {free}"
            );
            assert_eq!(file.size(), 0, "writing starts at the beginning");
            put(&journal, TreeId::Tokens, b"T", b"v");
            file.commit(&journal).unwrap();
            assert_eq!(
                len(file_path(dir.path(), file.seq)),
                current,
                "overwritten, not grown"
            );
        }
    }

    #[test]
    fn a_recycled_file_replays_only_what_was_written_for_its_new_number() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        for v in [b"a1", b"a2", b"a3"] {
            put(&journal, TreeId::Tokens, v, b"first use");
            file.commit(&journal).unwrap();
        }
        let first = file.rotate().unwrap().unwrap();
        retire(&[first]).unwrap();
        put(&journal, TreeId::Tokens, b"x", b"filler");
        file.commit(&journal).unwrap();
        // The third file is the first one again, overwritten from its start.
        let second = file.rotate().unwrap().unwrap();
        retire(&[second]).unwrap();
        put(&journal, TreeId::Tokens, b"b1", b"second use");
        file.commit(&journal).unwrap();
        let path = file_path(dir.path(), file.seq);
        assert!(
            std::fs::metadata(&path).unwrap().len() > file.size(),
            "old records remain"
        );
        drop(file);

        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 1);
        assert_eq!(
            model.keys().map(|k| k.1.clone()).collect::<Vec<_>>(),
            [b"b1".to_vec()]
        );
    }

    #[test]
    fn a_torn_last_record_is_ignored_and_everything_before_it_replays() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        put(&journal, TreeId::Tokens, b"T1", b"first");
        file.commit(&journal).unwrap();
        put(
            &journal,
            TreeId::Tokens,
            b"T1",
            b"second, never acknowledged",
        );
        file.commit(&journal).unwrap();
        let path = file_path(dir.path(), file.seq);
        // Where the records end: the file goes on with zeros (it was extended at the start).
        let end = file.size();
        drop(file);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(end - 3)
            .unwrap();

        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 1);
        assert_eq!(model[&(1, b"T1".to_vec())], b"first");
    }

    #[test]
    fn a_flipped_bit_in_the_last_commit_ends_the_replay_there() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        for v in [b"one", b"two"] {
            put(&journal, TreeId::UserIds, b"k", v);
        }
        file.commit(&journal).unwrap();
        let path = file_path(dir.path(), file.seq);
        let last = file.size() as usize - 1;
        drop(file);
        let mut data = std::fs::read(&path).unwrap();
        data[last] ^= 1;
        std::fs::write(&path, data).unwrap();
        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 1);
        assert_eq!(model[&(4, b"k".to_vec())], b"one");
    }

    /// Commit each group of values as one commit of one record per value; returns the file's
    /// path, the offsets where each record starts, and the journal half to continue with.
    fn commits(dir: &Path, groups: &[&[&[u8]]]) -> (PathBuf, Vec<usize>, Journal, JournalFile) {
        let (journal, mut file, _) = open(dir, |_, _, _| Ok(()), || Ok(())).unwrap();
        let mut starts = Vec::new();
        for group in groups {
            let mut at = file.size() as usize;
            for v in *group {
                starts.push(at);
                put(&journal, TreeId::Tokens, b"k", v);
                at = journal.queued_bytes() + file.size() as usize;
            }
            file.commit(&journal).unwrap();
        }
        (file_path(dir, file.seq), starts, journal, file)
    }

    fn flip(path: &Path, at: usize) {
        let mut data = std::fs::read(path).unwrap();
        data[at] ^= 0x10;
        std::fs::write(path, data).unwrap();
    }

    #[test]
    fn damage_followed_by_a_later_commit_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let (path, starts, _, file) = commits(dir.path(), &[&[b"one", b"two"], &[b"three"]]);
        drop(file);
        // A bit of the second record's payload: the first commit was acknowledged long before
        // the second began.
        flip(&path, starts[1] + HEADER + 2);
        let err = open(dir.path(), |_, _, _| Ok(()), || Ok(()))
            .err()
            .expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("damaged at byte {}", starts[1]))
                && msg.contains(&format!("later commit follows at byte {}", starts[2]))
                && msg.contains("move"),
            "{msg}"
        );
    }

    #[test]
    fn a_torn_last_commit_whose_later_records_reached_the_disk_replays_up_to_the_tear() {
        let dir = tempfile::tempdir().unwrap();
        let (path, starts, _, file) =
            commits(dir.path(), &[&[b"one"], &[b"two", b"three", b"four"]]);
        drop(file);
        // The last commit's first record lost, its later ones on disk: a power cut during a
        // write the disk reordered. Nothing of that commit was acknowledged.
        flip(&path, starts[1] + HEADER + 2);
        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 1);
        assert_eq!(model[&(1, b"k".to_vec())], b"one");
    }

    /// Two commits, a rotation, and a third commit in the next file.
    fn two_files(dir: &Path) -> (PathBuf, Vec<usize>) {
        let (path, starts, journal, mut file) = commits(dir, &[&[b"one"], &[b"two"]]);
        assert!(file.rotate().unwrap().is_some());
        put(&journal, TreeId::Tokens, b"k", b"three");
        file.commit(&journal).unwrap();
        (path, starts)
    }

    #[test]
    fn a_file_followed_by_another_replays_whole_and_must_end_with_its_closing_record() {
        let dir = tempfile::tempdir().unwrap();
        two_files(dir.path());
        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 3);
        assert_eq!(model[&(1, b"k".to_vec())], b"three");

        // Damage in the last commit of the first file: no later commit in that file shows it,
        // the newer file does.
        let dir = tempfile::tempdir().unwrap();
        let (path, starts) = two_files(dir.path());
        flip(&path, starts[1] + HEADER + 2);
        let err = open(dir.path(), |_, _, _| Ok(()), || Ok(()))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("closing record"), "{err}");
    }

    #[test]
    fn a_file_written_before_records_carried_their_commit_still_replays() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        for value in [b"old1", b"old2"] {
            let mut payload = vec![TreeId::Tokens as u8, 1];
            payload.extend_from_slice(&1u32.to_le_bytes());
            payload.push(b'k');
            payload.extend_from_slice(&4u32.to_le_bytes());
            payload.extend_from_slice(value);
            let mut rec = (payload.len() as u32).to_le_bytes().to_vec();
            rec.extend_from_slice(&[0; 4]);
            rec.extend_from_slice(&3u64.to_le_bytes());
            rec.extend_from_slice(&payload);
            let crc = crc32fast::hash(&rec[8..]);
            rec[4..8].copy_from_slice(&crc.to_le_bytes());
            data.extend_from_slice(&rec);
        }
        data.extend_from_slice(&[0; 4096]);
        std::fs::write(file_path(dir.path(), 3), data).unwrap();
        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 2);
        assert_eq!(model[&(1, b"k".to_vec())], b"old2");
    }

    #[test]
    fn rotated_files_replay_oldest_first_until_a_checkpoint_retires_them() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        for v in [b"old", b"new"] {
            put(&journal, TreeId::Tokens, b"T", v);
            file.commit(&journal).unwrap();
            assert!(file.rotate().unwrap().is_some());
        }
        assert_eq!(file.rotate().unwrap(), None, "an empty file is not retired");
        assert_eq!(list_files(dir.path()).unwrap().len(), 3);
        let mut model = Model::new();
        replay_into(dir.path(), &mut model);
        assert_eq!(model[&(1, b"T".to_vec())], b"new");

        // After a checkpoint the retired files are gone and nothing replays.
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        put(&journal, TreeId::Tokens, b"T", b"x");
        file.commit(&journal).unwrap();
        let retired = file.rotate().unwrap().unwrap();
        retire(&[retired]).unwrap();
        drop(file);
        let (_, n) = replay_into(dir.path(), &mut Model::new());
        assert_eq!(n, 0);
    }

    #[test]
    fn an_operation_that_wrote_nothing_leaves_no_record_and_an_error_keeps_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        journal.write(|_| Ok(())).unwrap();
        assert!(!file.commit(&journal).unwrap());
        let err = journal.write(|r| -> Result<(), PidError> {
            r.set(TreeId::Tokens, b"T", Some(b"applied before the failure"));
            Err(PidError::Internal("later step failed".into()))
        });
        assert!(err.is_err());
        assert!(file.commit(&journal).unwrap());
        drop(file);
        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 1);
    }

    #[test]
    fn a_panic_inside_a_write_drops_only_its_own_unfinished_record() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut file, _) = open(dir.path(), |_, _, _| Ok(()), || Ok(())).unwrap();
        put(&journal, TreeId::Tokens, b"before", b"1");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            journal.write(|r| -> Result<(), PidError> {
                r.set(TreeId::Tokens, b"torn", Some(b"2"));
                panic!("a bug in the middle of a store write");
            })
        }));
        assert!(panicked.is_err());
        put(&journal, TreeId::Tokens, b"after", b"3");
        file.commit(&journal).unwrap();
        drop(file);
        let mut model = Model::new();
        let (_, n) = replay_into(dir.path(), &mut model);
        assert_eq!(n, 2);
        let keys: Vec<Vec<u8>> = model.keys().map(|k| k.1.clone()).collect();
        assert_eq!(keys, [b"after".to_vec(), b"before".to_vec()]);
    }

    #[test]
    fn an_unknown_tree_number_in_an_intact_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = TreeId::ALL.len() as u8;
        let payload = [unknown, 0, 1, 0, 0, 0, b'k'];
        let mut data = (payload.len() as u32).to_le_bytes().to_vec();
        data.extend_from_slice(&[0; HEADER - 4]);
        data.extend_from_slice(&payload);
        stamp(&mut data, 7, 0);
        std::fs::write(file_path(dir.path(), 7), data).unwrap();
        let err = open(dir.path(), |_, _, _| Ok(()), || Ok(()))
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains(&format!("unknown tree number {unknown}")),
            "{err}"
        );
    }
}
