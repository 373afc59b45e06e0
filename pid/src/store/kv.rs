//! The key-value layer under the store: redb tables on disk, with the writes since the last
//! checkpoint held in memory in front of them.
//!
//! Why this shape (docs/decisions.md "redb instead of sled"): the journal already makes every
//! write durable, so the on-disk tables only need to catch up at checkpoints. A write goes to
//! the in-memory overlay (and, through [`Tree::set`], into the journal record of the same
//! operation); the checkpoint thread moves the overlay into redb in one transaction every
//! half second. redb keeps no per-page state in memory (a million tokens open in ~3 MiB, where
//! sled needed ~80 MiB of page table), and one transaction of a few thousand sorted writes costs
//! far less per write than one commit each.
//!
//! Invariants:
//! - Every write happens inside `Journal::write`, whose lock orders all writes: a
//!   read-check-write sequence there (a compare-and-swap, a two-tree update) cannot interleave
//!   with another. Writers never wait for redb.
//! - A read sees the newest value: `pending` (newest), then `flushing` (what a running
//!   checkpoint is writing), then `snapshot`, redb as of the last checkpoint. `flushing` is
//!   emptied in the same critical section that installs the snapshot holding it, so a reader,
//!   which takes the overlay and the snapshot together, always finds a value in one of them.
//! - Readers share that snapshot instead of opening a redb read transaction per lookup: a read
//!   transaction takes redb's locks twice and looks the table up in redb's table tree, which at
//!   a million tokens was a visible part of every login.
//! - A checkpoint takes `pending` under the journal lock, so it never holds half of an
//!   operation's writes; and it takes everything written before the journal file it retires was
//!   rotated (see `flusher`), so redb holds all of that file durably before the file goes.

use super::journal::{Journal, Record, TreeId};
use super::paced_file::{PacedFile, Pacing};
use crate::error::PidError;
use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A stored value, shared between the overlay and readers without copying.
pub type Bytes = Arc<[u8]>;

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;
/// One tree's table in a read snapshot.
type SnapshotTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;
/// One overlay per tree: `None` is a deletion not yet in redb.
type Writes = BTreeMap<Box<[u8]>, Option<Bytes>>;
/// A key and its value, as scans yield them.
pub type Entry = (Box<[u8]>, Bytes);
/// A write not yet in redb (`None`: a deletion).
type OverlayEntry = (Box<[u8]>, Option<Bytes>);
type DiskEntries = Box<dyn Iterator<Item = Result<Entry, PidError>>>;

/// The on-disk table of each tree. The names are a contract with stores already written.
pub(super) fn table(id: TreeId) -> Table {
    TableDefinition::new(id.name())
}

pub struct Kv {
    /// The database file, for messages.
    path: PathBuf,
    /// Declared before `db`: the snapshot's tables are dropped before the database they read.
    overlay: RwLock<Overlay>,
    /// Only checkpoints (and `reopen`) use it; readers use the snapshot.
    db: Mutex<Open>,
    /// How checkpoints hand their pages to the disk (see `paced_file`).
    pacing: Pacing,
    cache_mib: u32,
}

/// The database as opened, with what opening it again needs.
struct Open {
    db: redb::Database,
    /// Keeps the backend's `close` from releasing the file's lock (see `Kv::reopen`).
    hand_over: Arc<AtomicBool>,
    /// A duplicate of the backend's descriptor: the same open file, so the same lock.
    file: File,
}

struct Overlay {
    /// Writes since the running (or last) checkpoint took its share, per tree.
    pending: Vec<Writes>,
    /// What the running checkpoint writes to redb; kept if it fails, and merged into the next.
    flushing: Arc<Vec<Writes>>,
    /// redb as the last checkpoint left it: one read-only table per tree, in `TreeId` order.
    /// The pages it uses stay allocated until the last reader drops it.
    snapshot: Arc<Vec<SnapshotTable>>,
}

/// Every tree's table as redb holds it now.
fn snapshot(db: &redb::Database) -> Result<Arc<Vec<SnapshotTable>>, PidError> {
    let tx = db.begin_read().map_err(store_err)?;
    let tables = TreeId::ALL
        .iter()
        .map(|id| tx.open_table(table(*id)).map_err(store_err))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(tables))
}

fn empty() -> Vec<Writes> {
    TreeId::ALL.iter().map(|_| Writes::new()).collect()
}

impl Kv {
    /// Open (or create) the database file. `cache_mib` bounds redb's page cache.
    pub fn open(path: &Path, cache_mib: u32) -> Result<Kv, PidError> {
        let pacing = Pacing::new(true);
        let open = open_file(path)
            .and_then(|file| on_file(file, cache_mib, pacing.clone()))
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => PidError::Startup(format!(
                    "the store {} is in use by another process: is another pid running with \
                     the same state_dir?",
                    path.display()
                )),
                source => PidError::StoreOpen {
                    action: "open",
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        let db = &open.db;
        // Every table exists from the start, so a read never meets a missing one.
        let mut tx = db.begin_write().map_err(store_err)?;
        tx.set_quick_repair(true);
        for id in TreeId::ALL {
            tx.open_table(table(id)).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        let snapshot = snapshot(db)?;
        Ok(Kv {
            path: path.to_path_buf(),
            overlay: RwLock::new(Overlay {
                pending: empty(),
                flushing: Arc::new(empty()),
                snapshot,
            }),
            db: Mutex::new(open),
            pacing,
            cache_mib,
        })
    }

    fn db(&self) -> MutexGuard<'_, Open> {
        // Replaced in one assignment: a panic cannot leave it half changed.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open the database again in place of the one in use, after a checkpoint failed. redb
    /// refuses every operation after a failed write (it cannot know what the write left
    /// behind) until the database is opened again: without this, a disk that filled up and
    /// then had space again would leave every later checkpoint failing, the journal growing
    /// and reads of the store failing until pid restarted.
    ///
    /// The new database runs on a duplicate of the old one's descriptor, so the file's lock
    /// never lapses (another process opening the store meanwhile is still refused); the old
    /// backend is told not to release it when it closes. Opening runs redb's own recovery;
    /// readers then switch to the new snapshot, which holds what the old one did (the failed
    /// checkpoint committed nothing). What that checkpoint owed is still in `flushing` and goes
    /// in with the next one.
    pub fn reopen(&self) -> Result<(), PidError> {
        let mut current = self.db();
        let file = current
            .file
            .try_clone()
            .map_err(|e| PidError::file("duplicate the descriptor of the store", &self.path, e))?;
        let fresh = on_file(file, self.cache_mib, self.pacing.clone()).map_err(|source| {
            PidError::StoreOpen {
                action: "open again",
                path: self.path.clone(),
                source,
            }
        })?;
        let snapshot = snapshot(&fresh.db)?;
        current.hand_over.store(true, Ordering::Release);
        let old = std::mem::replace(&mut *current, fresh);
        self.write().snapshot = snapshot;
        drop(current);
        drop(old);
        Ok(())
    }

    /// Whether the following checkpoints write their pages back a slice at a time (the
    /// default: logins' commits do not queue behind them) or all at once (a bulk import).
    pub fn pace_writeback(&self, paced: bool) {
        self.pacing.set(paced);
    }

    #[cfg(test)]
    pub fn paces_writeback(&self) -> bool {
        self.pacing.paced()
    }

    fn read(&self) -> RwLockReadGuard<'_, Overlay> {
        // Every change under the write lock is one assignment or map operation: a panic cannot
        // leave the overlay half changed, so a poisoned lock is still consistent.
        self.overlay.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Overlay> {
        self.overlay.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn tree(self: &Arc<Self>, id: TreeId) -> Tree {
        Tree {
            kv: self.clone(),
            id,
        }
    }

    /// A write found in the journal at start-up: into the overlay, like any write, and into
    /// redb with the checkpoint that follows the replay.
    pub fn replay(&self, id: TreeId, key: &[u8], value: Option<&[u8]>) {
        self.write().pending[id as usize].insert(key.into(), value.map(Bytes::from));
    }

    /// Make every write made so far durable in redb, then forget it from the overlay. Only the
    /// checkpoint thread (and start-up, before it runs) calls this. Returns how many writes it
    /// made (0: nothing was owed).
    pub fn checkpoint(&self, journal: &Journal) -> Result<usize, PidError> {
        let batch = journal.hold(|| {
            let mut o = self.write();
            let taken = std::mem::replace(&mut o.pending, empty());
            if o.flushing.iter().all(BTreeMap::is_empty) {
                o.flushing = Arc::new(taken);
            } else {
                // The last checkpoint failed: its writes are still owed, the newer ones win.
                let mut merged = (*o.flushing).clone();
                for (into, mut newer) in merged.iter_mut().zip(taken) {
                    into.append(&mut newer);
                }
                o.flushing = Arc::new(merged);
            }
            o.flushing.clone()
        });
        if batch.iter().all(BTreeMap::is_empty) {
            return Ok(0);
        }
        let started = std::time::Instant::now();
        let open = self.db();
        let mut tx = open.db.begin_write().map_err(store_err)?;
        // Saves the allocator state with the commit: opening after a crash takes milliseconds
        // instead of a walk over the whole file.
        tx.set_quick_repair(true);
        for (id, writes) in TreeId::ALL.iter().zip(batch.iter()) {
            if writes.is_empty() {
                continue;
            }
            let mut t = tx.open_table(table(*id)).map_err(store_err)?;
            for (k, v) in writes {
                match v {
                    Some(v) => t.insert(&**k, &**v).map(drop),
                    None => t.remove(&**k).map(drop),
                }
                .map_err(store_err)?;
            }
        }
        let inserted = started.elapsed();
        tx.commit().map_err(store_err)?;
        let committed = snapshot(&open.db)?;
        drop(open);
        tracing::debug!(
            entries = ?batch.iter().map(BTreeMap::len).collect::<Vec<_>>(),
            value_bytes = batch.iter().flat_map(|t| t.values()).flatten().map(|v| v.len()).sum::<usize>(),
            insert_ms = inserted.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "checkpoint written"
        );
        let mut o = self.write();
        if Arc::ptr_eq(&o.flushing, &batch) {
            o.flushing = Arc::new(empty());
        }
        o.snapshot = committed;
        Ok(batch.iter().map(BTreeMap::len).sum())
    }
}

/// Open or create the redb file at `path`, readable by its owner only: it holds the tokens'
/// (encrypted) secrets and every user's token list. `pacing` decides how commits write back.
pub fn open_database(
    path: &Path,
    cache_mib: u32,
    pacing: Pacing,
) -> Result<redb::Database, redb::DatabaseError> {
    Ok(on_file(open_file(path)?, cache_mib, pacing)?.db)
}

fn open_file(path: &Path) -> Result<File, redb::DatabaseError> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(crate::trust::open_nofollow(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        path,
    )?)
}

/// The database on `file` (which takes redb's lock on it).
fn on_file(file: File, cache_mib: u32, pacing: Pacing) -> Result<Open, redb::DatabaseError> {
    let dup = file.try_clone()?;
    let backend = PacedFile::new(file, pacing)?;
    let hand_over = backend.hand_over_switch();
    let db = redb::Database::builder()
        .set_cache_size(cache_mib as usize * 1024 * 1024)
        .create_with_backend(backend)?;
    Ok(Open {
        db,
        hand_over,
        file: dup,
    })
}

/// One tree of the store (a redb table and its overlay).
#[derive(Clone)]
pub struct Tree {
    kv: Arc<Kv>,
    id: TreeId,
}

impl Tree {
    #[cfg(test)]
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>, PidError> {
        let t = self.id as usize;
        let snapshot = {
            let o = self.kv.read();
            if let Some(v) = o.pending[t].get(key).or_else(|| o.flushing[t].get(key)) {
                return Ok(v.clone());
            }
            o.snapshot.clone()
        };
        Ok(snapshot[t]
            .get(key)
            .map_err(store_err)?
            .map(|v| Bytes::from(v.value())))
    }

    pub fn contains_key(&self, key: &[u8]) -> Result<bool, PidError> {
        Ok(self.get(key)?.is_some())
    }

    /// `key` now holds `value` (`None`: is gone). Only inside `Journal::write` (the record is
    /// the proof): the write goes into that operation's journal record and the overlay.
    pub fn set(&self, r: &mut Record<'_>, key: &[u8], value: Option<&[u8]>) {
        r.set(self.id, key, value);
        self.kv.write().pending[self.id as usize].insert(key.into(), value.map(Bytes::from));
    }

    /// Entries with keys in `(lo, hi)`, ascending or (`rev`) descending.
    pub fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool) -> Result<Iter, PidError> {
        // The overlay first, then redb: a checkpoint that finishes in between leaves its
        // writes in redb *and* in this copy, never in neither.
        let t = self.id as usize;
        let mut overlay: Writes = Writes::new();
        let snapshot = {
            let o = self.kv.read();
            for layer in [&o.flushing[t], &o.pending[t]] {
                for (k, v) in layer.range::<[u8], _>((lo, hi)) {
                    overlay.insert(k.clone(), v.clone());
                }
            }
            o.snapshot.clone()
        };
        let disk = snapshot[t].range::<&[u8]>((lo, hi)).map_err(store_err)?;
        let disk: DiskEntries = if rev {
            Box::new(disk.rev().map(owned))
        } else {
            Box::new(disk.map(owned))
        };
        let overlay: Vec<_> = if rev {
            overlay.into_iter().rev().collect()
        } else {
            overlay.into_iter().collect()
        };
        Ok(Iter {
            overlay: overlay.into_iter().peekable(),
            disk: disk.peekable(),
            rev,
        })
    }

    pub fn iter(&self) -> Result<Iter, PidError> {
        self.range(Bound::Unbounded, Bound::Unbounded, false)
    }

    /// Entries whose key starts with `prefix`, ascending.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Iter, PidError> {
        let end = prefix_end(prefix);
        let hi = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(Bound::Included(prefix), hi, false)
    }

    /// The entry with the greatest key.
    pub fn last(&self) -> Result<Option<Entry>, PidError> {
        self.range(Bound::Unbounded, Bound::Unbounded, true)?
            .next()
            .transpose()
    }

    /// Entries in the tree (walks the overlay; redb keeps the count of what it holds).
    pub fn len(&self) -> Result<u64, PidError> {
        let i = self.id as usize;
        let (newest, snapshot): (Writes, _) = {
            let o = self.kv.read();
            let mut m = o.flushing[i].clone();
            m.extend(o.pending[i].iter().map(|(k, v)| (k.clone(), v.clone())));
            (m, o.snapshot.clone())
        };
        let t = &snapshot[i];
        let mut n = t.len().map_err(store_err)? as i64;
        for (k, v) in newest {
            let on_disk = t.get(&*k).map_err(store_err)?.is_some();
            n += v.is_some() as i64 - on_disk as i64;
        }
        Ok(n.max(0) as u64)
    }
}

type RedbItem<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, &'static [u8]>,
);

/// A redb entry as an owned one.
fn owned(item: Result<RedbItem<'_>, redb::StorageError>) -> Result<Entry, PidError> {
    item.map(|(k, v)| (Box::<[u8]>::from(k.value()), Bytes::from(v.value())))
        .map_err(store_err)
}

/// The smallest key greater than every key starting with `prefix` (`None`: there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// redb's entries merged with the overlay's (which wins, and whose deletions hide entries).
pub struct Iter {
    /// The overlay's entries in scan order (`None`: deleted).
    overlay: std::iter::Peekable<std::vec::IntoIter<OverlayEntry>>,
    disk: std::iter::Peekable<DiskEntries>,
    rev: bool,
}

impl Iterator for Iter {
    type Item = Result<(Box<[u8]>, Bytes), PidError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_overlay = match (self.overlay.peek(), self.disk.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(Err(_))) => false,
                (Some((ok, _)), Some(Ok((dk, _)))) => {
                    if ok == dk {
                        // The overlay's value replaces redb's.
                        self.disk.next();
                        true
                    } else {
                        (ok < dk) != self.rev
                    }
                }
            };
            if take_overlay {
                match self.overlay.next() {
                    Some((k, Some(v))) => return Some(Ok((k, v))),
                    Some((_, None)) => continue,
                    None => return None,
                }
            }
            return self.disk.next();
        }
    }
}

/// A redb failure as the daemon's error (its source).
pub fn store_err(e: impl Into<redb::Error>) -> PidError {
    PidError::from(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> (tempfile::TempDir, Arc<Kv>, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(Kv::open(&dir.path().join("t.redb"), 1).unwrap());
        (dir, kv, Journal::new())
    }

    fn set(j: &Journal, t: &Tree, k: &str, v: Option<&str>) {
        j.write(|r| {
            t.set(r, k.as_bytes(), v.map(str::as_bytes));
            Ok(())
        })
        .unwrap();
    }

    fn keys(it: Iter) -> Vec<String> {
        it.map(|e| String::from_utf8(e.unwrap().0.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn readers_racing_checkpoints_never_see_an_older_value_or_none() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (_d, kv, j) = kv();
        let j = Arc::new(j);
        let t = kv.tree(TreeId::Tokens);
        let put = |n: u64| {
            j.write(|r| {
                t.set(r, b"k", Some(&n.to_be_bytes()));
                Ok(())
            })
            .unwrap()
        };
        put(0);
        let done = Arc::new(AtomicBool::new(false));
        let checkpoints = {
            let (kv, j, done) = (kv.clone(), j.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !done.load(Ordering::Relaxed) {
                    kv.checkpoint(&j).unwrap();
                    n += 1;
                }
                n
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (t, done) = (kv.tree(TreeId::Tokens), done.clone());
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let point = t.get(b"k").unwrap().expect("the key vanished");
                        let scanned = t.scan_prefix(b"k").unwrap().next().unwrap().unwrap().1;
                        for v in [point, scanned] {
                            let v = u64::from_be_bytes((*v).try_into().unwrap());
                            assert!(v >= seen, "read {v} after {seen}");
                            seen = v;
                        }
                    }
                })
            })
            .collect();
        // Paced, so that the key is often in no overlay layer and readers go to the snapshot.
        for n in 1..=500 {
            put(n);
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        done.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert!(
            checkpoints.join().unwrap() > 1,
            "checkpoints ran during the reads"
        );
        assert_eq!(
            t.get(b"k").unwrap().as_deref(),
            Some(&500u64.to_be_bytes()[..])
        );
    }

    #[test]
    fn reads_and_scans_see_the_overlay_over_redb_before_and_after_a_checkpoint() {
        let (_d, kv, j) = kv();
        let t = kv.tree(TreeId::Tokens);
        for k in ["a1", "a3", "b1", "a5"] {
            set(&j, &t, k, Some("disk"));
        }
        kv.checkpoint(&j).unwrap();
        set(&j, &t, "a2", Some("new"));
        set(&j, &t, "a3", None);
        set(&j, &t, "a5", Some("changed"));
        let check = |when: &str| {
            assert_eq!(
                keys(t.scan_prefix(b"a").unwrap()),
                ["a1", "a2", "a5"],
                "{when}"
            );
            assert_eq!(
                keys(
                    t.range(Bound::Unbounded, Bound::Excluded(b"b"), true)
                        .unwrap()
                ),
                ["a5", "a2", "a1"],
                "{when}"
            );
            assert_eq!(
                t.get(b"a5").unwrap().as_deref(),
                Some(&b"changed"[..]),
                "{when}"
            );
            assert_eq!(t.get(b"a3").unwrap(), None, "{when}");
            assert_eq!(t.len().unwrap(), 4, "{when}");
            assert_eq!(&*t.last().unwrap().unwrap().0, b"b1", "{when}");
        };
        check("overlay over redb");
        kv.checkpoint(&j).unwrap();
        check("all in redb");
        assert!(kv.read().pending.iter().all(BTreeMap::is_empty));
        assert!(kv.read().flushing.iter().all(BTreeMap::is_empty));
    }

    #[test]
    fn checkpointed_writes_survive_reopening_and_trees_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        {
            let kv = Arc::new(Kv::open(&path, 1).unwrap());
            let j = Journal::new();
            set(&j, &kv.tree(TreeId::Tokens), "k", Some("token"));
            set(&j, &kv.tree(TreeId::Audit), "k", Some("audit"));
            kv.checkpoint(&j).unwrap();
            set(
                &j,
                &kv.tree(TreeId::Tokens),
                "lost",
                Some("never checkpointed"),
            );
        }
        let kv = Arc::new(Kv::open(&path, 1).unwrap());
        assert_eq!(
            kv.tree(TreeId::Tokens).get(b"k").unwrap().as_deref(),
            Some(&b"token"[..])
        );
        assert_eq!(
            kv.tree(TreeId::Audit).get(b"k").unwrap().as_deref(),
            Some(&b"audit"[..])
        );
        assert_eq!(kv.tree(TreeId::Tokens).get(b"lost").unwrap(), None);
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused_with_advice() {
        let (d, _kv, _j) = kv();
        let err = Kv::open(&d.path().join("t.redb"), 1).err().unwrap();
        assert!(err.to_string().contains("another pid"), "{err}");
    }

    #[test]
    fn the_database_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (d, _kv, _j) = kv();
        let mode = std::fs::metadata(d.path().join("t.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_end_of_a_prefix_skips_trailing_0xff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
