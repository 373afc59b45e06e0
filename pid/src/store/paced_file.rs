//! redb's file backend, with a checkpoint's writes sent to the disk a slice at a time.
//!
//! Why: a checkpoint at a million tokens changes ~4,000 scattered 4 KiB pages, which redb
//! writes into the page cache and then hands to the disk all at once with one `fdatasync`.
//! While those ~16 MiB drain, every journal commit — a login waiting to be told yes — queues
//! behind them: its own write waits in the device queue, and its cache flush has to make
//! the checkpoint's pages durable too: unpaced, half of the logins slower than the run's p99
//! fall in that one window (3% of the time). Here `sync_data` first writes the pages back in slices
//! of `SLICE_BYTES`, waiting for each before starting the next, so a commit never finds more
//! than one slice ahead of it; then the `fdatasync` redb asked for, which is what makes the
//! checkpoint durable (it then has only the flush and the inode left to do).
//!
//! A bulk import turns pacing off (`Pacing`): its checkpoints are big and it wants them
//! over quickly, since writes pile up in memory while one runs (a million-token import peaked
//! at 97–122 MiB paced, 86–99 at once).
//!
//! Invariant: pacing changes when pages reach the disk, never whether. `sync_data` succeeds
//! only through the real `fdatasync`; a slice that fails to write fails it (the kernel reports
//! a writeback error once per open file, so the `fdatasync` would not see it again), and where
//! ranges cannot be written back at all the `fdatasync` does everything alone. Writing pages
//! before the `fdatasync` creates no state a crash could not already leave: the kernel may
//! write any dirty page back at any moment, and redb's commit protocol is built for that.

use redb::backends::FileBackend;
use redb::StorageBackend;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Written bytes handed to the disk per slice: 64 pages keep the device busy, and a journal
/// commit finds no more than that ahead of it.
const SLICE_BYTES: u64 = 256 * 1024;

/// Whether `sync_data` paces its writeback; shared by the backend, which redb owns, and the
/// store, which decides per checkpoint.
#[derive(Clone, Debug)]
pub struct Pacing(Arc<AtomicBool>);

impl Pacing {
    pub fn new(paced: bool) -> Pacing {
        Pacing(Arc::new(AtomicBool::new(paced)))
    }

    pub fn set(&self, paced: bool) {
        self.0.store(paced, Ordering::Relaxed);
    }

    pub fn paced(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct PacedFile {
    inner: FileBackend,
    pacing: Pacing,
    /// A second descriptor of the same open file, for the writeback calls (redb's backend
    /// does not lend its own).
    file: File,
    /// (offset, length) of every write since the last `sync_data`.
    written: Mutex<Vec<(u64, u64)>>,
    /// Set when a newer backend on the same open file took over (see `Kv::reopen`): closing
    /// this one must then leave the lock they share in place.
    handed_over: Arc<AtomicBool>,
}

impl PacedFile {
    /// Wrap `file` (opened read-write); takes redb's lock on it like `FileBackend::new`.
    pub fn new(file: File, pacing: Pacing) -> Result<PacedFile, redb::DatabaseError> {
        let second = file.try_clone()?;
        Ok(PacedFile {
            inner: FileBackend::new(file)?,
            pacing,
            file: second,
            written: Mutex::new(Vec::new()),
            handed_over: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The switch that keeps `close` from releasing the file's lock, for when a newer backend
    /// on a duplicate of this one's descriptor takes over. (Both share one open file, and so
    /// one lock: the newer one's `FileBackend::new` finds it already held by itself.)
    pub fn hand_over_switch(&self) -> Arc<AtomicBool> {
        self.handed_over.clone()
    }

    fn take_written(&self) -> Vec<(u64, u64)> {
        // A panic between push and take cannot leave the list inconsistent: still usable.
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl StorageBackend for PacedFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let written = self.take_written();
        if !self.pacing.paced() {
            return self.inner.sync_data();
        }
        for (offset, len) in slices(written, SLICE_BYTES) {
            match crate::sys::write_back_and_wait(&self.file, offset, len) {
                Ok(()) => {}
                Err(e) if cannot_pace(&e) => {
                    tracing::debug!(error = %e, "no paced writeback here; fdatasync does it all");
                    break;
                }
                // A writeback error is reported once per open file, and `self.file` shares
                // redb's: the fdatasync below would not see this one again and would call
                // the checkpoint durable. It fails here instead (the journal is kept).
                Err(e) => return Err(e),
            }
        }
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.inner.write(offset, data)?;
        // Never a zero length: to sync_file_range that means "to the end of the file".
        if !data.is_empty() {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((offset, data.len() as u64));
        }
        Ok(())
    }

    fn close(&self) -> Result<(), io::Error> {
        if self.handed_over.load(Ordering::Acquire) {
            return Ok(());
        }
        self.inner.close()
    }
}

/// The file system or platform cannot write back a range (as opposed to: writing it failed).
fn cannot_pace(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::ESPIPE)
    )
}

/// Group written ranges, in file order, into spans that each hold at most `slice` written
/// bytes (a single range bigger than that is a span of its own). A span may include bytes
/// nobody wrote between its ranges: writing a span back writes only its dirty pages.
fn slices(mut written: Vec<(u64, u64)>, slice: u64) -> Vec<(u64, u64)> {
    written.sort_unstable();
    let mut spans = Vec::new();
    let mut current: Option<(u64, u64, u64)> = None; // start, end, written bytes
    for (offset, len) in written {
        let end = offset.saturating_add(len);
        current = match current {
            Some((start, span_end, bytes)) if bytes + len <= slice || offset < span_end => {
                // Overlapping writes count once.
                let new_bytes = end.saturating_sub(span_end.max(offset));
                Some((start, span_end.max(end), bytes + new_bytes))
            }
            Some((start, span_end, _)) => {
                spans.push((start, span_end - start));
                Some((offset, end, len))
            }
            None => Some((offset, end, len)),
        };
    }
    if let Some((start, end, _)) = current {
        spans.push((start, end - start));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTableMetadata};

    fn open_rw(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    #[test]
    fn scattered_pages_are_grouped_in_file_order_up_to_the_slice_size() {
        let pages = vec![(40960, 4096), (0, 4096), (8192, 4096), (81920, 4096)];
        assert_eq!(
            slices(pages, 8192),
            vec![(0, 12288), (40960, 45056)],
            "two pages a slice, the gap between them included"
        );
    }

    #[test]
    fn only_an_unsupported_writeback_falls_back_to_fdatasync_alone() {
        for unsupported in [libc::ENOSYS, libc::EINVAL, libc::EOPNOTSUPP, libc::ESPIPE] {
            assert!(cannot_pace(&io::Error::from_raw_os_error(unsupported)));
        }
        for failed in [libc::EIO, libc::ENOSPC, libc::EDQUOT, libc::EBADF] {
            assert!(
                !cannot_pace(&io::Error::from_raw_os_error(failed)),
                "{failed}"
            );
        }
    }

    #[test]
    fn a_written_range_of_a_regular_file_is_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = open_rw(&dir.path().join("f"));
        std::os::unix::fs::FileExt::write_all_at(&file, &[1u8; 8192], 4096).unwrap();
        crate::sys::write_back_and_wait(&file, 4096, 8192).unwrap();
        crate::sys::write_back_and_wait(&file, 0, 1 << 20).unwrap();
    }

    #[test]
    fn an_empty_write_is_not_noted() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let backend = PacedFile::new(file, Pacing::new(true)).unwrap();
        backend.write(4096, &[]).unwrap();
        assert!(backend.written.lock().unwrap().is_empty());
    }

    #[test]
    fn a_write_bigger_than_a_slice_is_a_span_of_its_own() {
        assert_eq!(
            slices(vec![(4096, 4096), (8192, 1 << 20), (2 << 20, 4096)], 8192),
            vec![(4096, 4096), (8192, 1 << 20), (2 << 20, 4096)]
        );
    }

    #[test]
    fn overlapping_writes_are_counted_once_and_nothing_written_means_nothing_to_do() {
        assert_eq!(
            slices(vec![(0, 4096), (0, 4096), (2048, 4096)], 8192),
            vec![(0, 6144)]
        );
        assert!(slices(Vec::new(), 8192).is_empty());
    }

    #[test]
    fn what_redb_writes_through_it_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let table: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("t");
        let open = || {
            redb::Database::builder()
                .create_with_backend(PacedFile::new(open_rw(&path), Pacing::new(true)).unwrap())
                .unwrap()
        };
        {
            let db = open();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(table).unwrap();
                for i in 0..2000 {
                    t.insert(format!("k{i}").as_str(), "v".repeat(300).as_str())
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let db = open();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(table).unwrap();
        assert_eq!(t.len().unwrap(), 2000);
        assert_eq!(t.get("k1999").unwrap().unwrap().value(), "v".repeat(300));
    }

    #[test]
    fn every_sync_forgets_the_writes_it_covered_paced_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = open_rw(&dir.path().join("f"));
        let pacing = Pacing::new(true);
        let backend = PacedFile::new(file, pacing.clone()).unwrap();
        for paced in [true, false] {
            pacing.set(paced);
            backend.set_len(1 << 20).unwrap();
            for page in 0..64u64 {
                backend.write(page * 8192, &[7u8; 4096]).unwrap();
            }
            assert_eq!(backend.written.lock().unwrap().len(), 64);
            backend.sync_data().unwrap();
            assert!(backend.written.lock().unwrap().is_empty(), "paced: {paced}");
            let mut page = [0u8; 4096];
            backend.read(63 * 8192, &mut page).unwrap();
            assert_eq!(page, [7u8; 4096]);
        }
    }

    #[test]
    fn a_backend_on_a_duplicate_descriptor_takes_over_and_keeps_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let first = open_rw(&path);
        let dup = first.try_clone().unwrap();
        let old = PacedFile::new(first, Pacing::new(true)).unwrap();
        let new = PacedFile::new(dup, Pacing::new(true)).expect("the same open file: its own lock");
        old.hand_over_switch().store(true, Ordering::Release);
        old.close().unwrap();
        drop(old);
        assert!(
            matches!(
                PacedFile::new(open_rw(&path), Pacing::new(true)),
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
            ),
            "another open of the file is still refused"
        );
        new.close().unwrap();
        drop(new);
        assert!(PacedFile::new(open_rw(&path), Pacing::new(true)).is_ok());
    }

    #[test]
    fn a_second_open_of_the_same_file_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let file = || open_rw(&path);
        let _db = redb::Database::builder()
            .create_with_backend(PacedFile::new(file(), Pacing::new(true)).unwrap())
            .unwrap();
        assert!(matches!(
            PacedFile::new(file(), Pacing::new(true)),
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
        ));
    }
}
