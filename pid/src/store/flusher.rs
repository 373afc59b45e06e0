//! Group commit. "Durable before success": a counter advance must be on disk before `Accept` is
//! sent, or a crash makes a spent OTP valid again. One fsync per request would cap throughput, so
//! callers queue here and one thread commits the journal for all of them (see `journal`). A
//! caller that finds nobody else waiting commits on its own thread instead (a small commit, a
//! fast disk): handing over to the flusher and being woken again would cost it two wake-ups.
//!
//! Invariant: a waiter is answered only by a commit that *started after* it queued (or, alone,
//! by the commit it ran itself), so every write it made before is covered.
//!
//! Checkpoints (the overlay written to redb in one durable transaction, then retiring the
//! journal files it covers) run on a second thread so that a slow checkpoint never holds up a
//! commit. That thread is the only one that writes redb, shutdown included.

use super::audit_log::AuditLog;
use super::journal::{self, Journal, JournalFile, Retired};
use super::kv::{Kv, Tree};
use crate::error::{chain, PidError};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Audit entries not followed by a durable answer (refusals) are written at least this often.
const IDLE_FLUSH: Duration = Duration::from_secs(1);
/// The overlay is written to redb and the journal file it then covers is retired this often
/// under load...
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// ...or as soon as the current journal file reaches this size, which bounds the replay at
/// start-up after a crash.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// While a bulk writer is at work (`Flusher::bulk_writes`: an import), checkpoints come this
/// often instead. An import writes new tokens by the ten thousand per interval, and until a
/// checkpoint has them in redb they are held in memory twice over (the overlay being written and
/// the one filling meanwhile): a million-token import peaked at 122–130 MiB of RSS with 500 ms,
/// 101–104 MiB with 125 ms, and took 21 vs 23.5 s. Under login load the shorter interval would
/// cost 11% of throughput at a million tokens (p99 4.0 instead of 2.5–2.9 ms), so it is for
/// bulk writes only.
const BULK_CHECKPOINT_EVERY: Duration = Duration::from_millis(125);
/// A bulk writer counts as at work until this long after it last said so.
const BULK_LASTS: Duration = Duration::from_secs(1);
/// How much nicer than the daemon the checkpoint thread runs. A checkpoint is background work
/// (at a million tokens, ~60 ms of CPU every 500 ms under load) competing for the same cores as
/// the logins that wait on the commit; at normal priority it preempts them and shows in their
/// tail latency. Nice 10 still gives it about a tenth of a busy core, and a checkpoint that
/// falls behind only makes the next one bigger (the journal keeps everything).
pub(super) const CHECKPOINT_NICER_BY: i32 = 10;
/// A checkpoint of at least this many writes is part of a burst (a bulk import, a replay,
/// logins by the thousand per second). Its transient memory (the overlay, and redb's copies of
/// every page it changes: up to 4 KiB per write in a big store) is freed afterwards but kept by
/// malloc: a million-token `pictl import` left pid at 126 MiB instead of 64. Once the burst is
/// over that heap is handed back to the system (`sys::release_freed_memory`).
const BURST_CHECKPOINT_WRITES: usize = 4096;
/// A burst is over when the next checkpoint is smaller, or when none comes for this long.
const BURST_OVER_AFTER: Duration = Duration::from_secs(1);

/// Whether the heap should be trimmed now. Trimming after every big checkpoint would take
/// malloc's arena locks again and again during an import for memory the next batch reuses;
/// waiting for the end of the burst trims once.
#[derive(Default)]
struct HeapTrim {
    /// A burst checkpoint freed memory since the last trim.
    owed: bool,
}

impl HeapTrim {
    /// After a checkpoint that made `writes` writes.
    fn after_checkpoint(&mut self, writes: usize) -> bool {
        if writes >= BURST_CHECKPOINT_WRITES {
            self.owed = true;
            false
        } else {
            std::mem::take(&mut self.owed)
        }
    }

    /// After `BURST_OVER_AFTER` without a checkpoint.
    fn after_quiet(&mut self) -> bool {
        std::mem::take(&mut self.owed)
    }
}

/// Shared by every caller that waited for the same commit.
type Waiter = oneshot::Sender<Result<(), Arc<PidError>>>;

/// How checkpoints fared: failures and reopenings since the daemon started.
#[derive(Default)]
struct Health {
    state: Mutex<HealthState>,
}

#[derive(Default)]
struct HealthState {
    failures: u64,
    reopened: u64,
    /// The last failure: when and why.
    last: Option<(Instant, String)>,
    /// Whether the newest checkpoint failed.
    failing: bool,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkpointed(&self) {
        self.lock().failing = false;
    }

    fn failed(&self, e: &PidError, reopened: bool) {
        let mut h = self.lock();
        h.failures += 1;
        h.reopened += u64::from(reopened);
        h.failing = true;
        h.last = Some((Instant::now(), chain(e).to_string()));
    }

    /// `None` while no checkpoint ever failed.
    fn describe(&self) -> Option<String> {
        let h = self.lock();
        let (at, why) = h.last.as_ref()?;
        let state = if h.failing {
            "checkpoints are failing; every write is kept in the journal and logins go on, but \
             the journal grows until they succeed: free disk space in the state directory"
        } else {
            "checkpoints succeed again"
        };
        Some(format!(
            "store: {} checkpoints failed since start, the last {} s ago: {why}; the store was \
             opened again {} times; {state}",
            h.failures,
            at.elapsed().as_secs(),
            h.reopened
        ))
    }
}

pub struct Flusher {
    tx: Option<mpsc::Sender<Waiter>>,
    /// Shared with the flusher thread, which holds it while it commits.
    committer: Arc<Mutex<Committer>>,
    /// Who is waiting, how fast commits are and whether a bulk writer is at work.
    load: Arc<CommitLoad>,
    /// How the checkpoints fare, for `pictl status`.
    health: Arc<Health>,
    /// Joined on drop, so the store (and redb's file lock) is released when `Store` is.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the flusher thread owns: the journal's file, the way to the checkpoint thread, and what
/// is written just before each commit (queued audit entries and the token count).
struct Committer {
    journal: Arc<Journal>,
    file: JournalFile,
    audit: Arc<AuditLog>,
    meta: Tree,
    token_count: Arc<AtomicI64>,
    saved_count: i64,
    last_checkpoint: Instant,
    /// Retired journal files for the checkpoint thread.
    checkpoints: Option<mpsc::Sender<Retired>>,
    /// Set while the checkpoint thread works on a file: no rotation meanwhile.
    checkpoint_busy: Arc<AtomicBool>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Queue the audit entries and the token count, then write and sync the journal. Returns
    /// whether anything was written.
    fn commit(&mut self) -> Result<bool, PidError> {
        self.audit.write_pending(&self.journal)?;
        let count = self.token_count.load(Ordering::Relaxed);
        if self.saved_count != count {
            self.journal.write(|r| {
                self.meta
                    .set(r, super::TOKEN_COUNT_KEY, Some(&count.to_be_bytes()));
                Ok(())
            })?;
            self.saved_count = count;
        }
        self.file.commit(&self.journal)
    }

    /// `commit`, noting in `load` how long it took when it wrote something: an empty commit
    /// syncs nothing and says nothing about the disk.
    fn commit_timed(&mut self, load: &CommitLoad) -> Result<(), PidError> {
        let started = Instant::now();
        let wrote = self.commit()?;
        if wrote {
            load.took(started.elapsed());
        }
        Ok(())
    }

    fn checkpoint_due(&self, load: &CommitLoad) -> bool {
        let every = if load.bulk_writer_at_work(Instant::now()) {
            BULK_CHECKPOINT_EVERY
        } else {
            CHECKPOINT_EVERY
        };
        self.file.size() >= CHECKPOINT_BYTES
            || (self.file.size() > 0 && self.last_checkpoint.elapsed() >= every)
    }

    /// Start a new journal file and hand the full one to the checkpoint thread, unless that
    /// thread is still busy with the previous one (then the current file grows a while longer).
    fn checkpoint(&mut self) {
        let Some(tx) = &self.checkpoints else { return };
        if self.checkpoint_busy.load(Ordering::Acquire) {
            return;
        }
        self.last_checkpoint = Instant::now();
        match self.file.rotate() {
            Ok(Some(retired)) => {
                self.checkpoint_busy.store(true, Ordering::Release);
                if tx.send(retired).is_err() {
                    // Only if that thread panicked. Nothing is lost (the journal keeps every
                    // record and is replayed at start-up), but it now only grows.
                    tracing::error!(
                        "the checkpoint thread has stopped; the journal grows until pid restarts"
                    );
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %chain(&e), "cannot start a new journal file"),
        }
    }

    /// Hand over the last file and wait for the final checkpoint.
    fn finish(&mut self) {
        if let Err(e) = self.commit() {
            tracing::error!(error = %chain(&e), "store commit at shutdown failed");
        }
        if let Some(tx) = self.checkpoints.take() {
            if let Ok(Some(retired)) = self.file.rotate() {
                let _ = tx.send(retired);
            }
        }
        if let Some(t) = self.checkpointer.take() {
            let _ = t.join();
        }
    }
}

/// The checkpoint thread: for each retired journal file, write the overlay to redb durably,
/// then retire the file (see `journal::retire`). Every record in a retired file was appended
/// after its overlay write, and the checkpoint takes the overlay after the rotation, so redb
/// holds all of it on disk before the file goes. On failure the files stay and are retried
/// with the next one; at the end there is one more checkpoint.
fn checkpoint_loop(
    kv: Arc<Kv>,
    journal: Arc<Journal>,
    load: &CommitLoad,
    health: &Health,
    rx: mpsc::Receiver<Retired>,
    busy: Arc<AtomicBool>,
) {
    // On Linux the nice value is per thread: this lowers only the checkpoint thread.
    let nice = rustix::process::getpriority_process(None)
        .map(|now| (now + CHECKPOINT_NICER_BY).min(19))
        .and_then(|nice| rustix::process::setpriority_process(None, nice));
    if let Err(e) = nice {
        tracing::debug!(error = %e, "cannot lower the checkpoint thread's priority");
    }
    let mut retired: Vec<Retired> = Vec::new();
    // Writes made, 0 if the checkpoint failed (its overlay is still held).
    let checkpoint = |retired: &mut Vec<Retired>| {
        // Logins' commits should not queue behind a checkpoint's pages; an import wants its
        // checkpoints over quickly (see `paced_file`).
        kv.pace_writeback(!load.bulk_writer_at_work(Instant::now()));
        let result = kv
            .checkpoint(&journal)
            .and_then(|writes| journal::retire(retired).map(|()| writes));
        match result {
            Ok(writes) => {
                retired.clear();
                health.checkpointed();
                writes
            }
            Err(e) => {
                // redb refuses everything after a failed write until it is opened again.
                let reopened = kv.reopen();
                match &reopened {
                    Ok(()) => tracing::error!(
                        error = %chain(&e),
                        "store checkpoint failed (a full disk?); the journal keeps every write \
                         and the store was opened again: the next checkpoint retries"
                    ),
                    Err(again) => tracing::error!(
                        error = %chain(&e),
                        reopen = %chain(again),
                        "store checkpoint failed (a full disk?) and the store cannot be opened \
                         again yet; the journal keeps every write, the next checkpoint retries"
                    ),
                }
                health.failed(&e, reopened.is_ok());
                0
            }
        }
    };
    let mut heap = HeapTrim::default();
    loop {
        let next = if heap.owed {
            rx.recv_timeout(BURST_OVER_AFTER)
        } else {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        let trim = match next {
            Ok(file) => {
                retired.push(file);
                let writes = checkpoint(&mut retired);
                busy.store(false, Ordering::Release);
                heap.after_checkpoint(writes)
            }
            Err(RecvTimeoutError::Timeout) => heap.after_quiet(),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if trim {
            crate::sys::release_freed_memory();
        }
    }
    checkpoint(&mut retired);
}

impl Flusher {
    /// Start the flusher thread. It is a plain OS thread, not a task: a login that waits for
    /// durability wakes exactly one thread, which commits and answers every waiter it collected.
    pub(super) fn spawn(
        kv: Arc<Kv>,
        audit: Arc<AuditLog>,
        meta: Tree,
        token_count: Arc<AtomicI64>,
        journal: Arc<Journal>,
        file: JournalFile,
    ) -> Result<Flusher, PidError> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let (checkpoints, checkpoint_rx) = mpsc::channel();
        let checkpoint_busy = Arc::new(AtomicBool::new(false));
        let busy = checkpoint_busy.clone();
        let checkpoint_journal = journal.clone();
        let load = Arc::new(CommitLoad::new(workers_that_can_steal()));
        let checkpoint_load = load.clone();
        let health = Arc::new(Health::default());
        let checkpoint_health = health.clone();
        let checkpointer = std::thread::Builder::new()
            .name("pid-checkpoint".into())
            .spawn(move || {
                checkpoint_loop(
                    kv,
                    checkpoint_journal,
                    &checkpoint_load,
                    &checkpoint_health,
                    checkpoint_rx,
                    busy,
                )
            })
            .map_err(|e| PidError::Thread("checkpoint", e))?;
        let committer = Committer {
            journal,
            file,
            audit,
            meta,
            token_count,
            saved_count: -1,
            last_checkpoint: Instant::now(),
            checkpoints: Some(checkpoints),
            checkpoint_busy,
            checkpointer: Some(checkpointer),
        };
        let committer = Arc::new(Mutex::new(committer));
        let (loop_committer, loop_load) = (committer.clone(), load.clone());
        let thread = std::thread::Builder::new()
            .name("pid-flusher".into())
            .spawn(move || flush_loop(&loop_committer, &loop_load, rx))
            .map_err(|e| PidError::Thread("flusher", e))?;
        Ok(Flusher {
            tx: Some(tx),
            committer,
            load,
            health,
            thread: Some(thread),
        })
    }

    /// What went wrong with checkpoints lately, if anything (`pictl status`).
    pub fn health(&self) -> Option<String> {
        self.health.describe()
    }

    /// A bulk writer (an import batch) is at work: checkpoint more often for the next second
    /// (see `BULK_CHECKPOINT_EVERY`).
    pub fn bulk_writes(&self) {
        self.load.bulk_writer_began(Instant::now());
    }

    /// A caller that is the only one waiting for durability commits on its own thread instead
    /// of waking the flusher and waiting to be woken: two wake-ups across CPUs saved, which is
    /// most of what a lone login waits besides the `fdatasync` itself (0.25 → 0.16 ms for one
    /// client on a 2-vCPU VM). Callers that overlap share the flusher's group commit; a slow
    /// disk stays with the flusher, so a worker is never held long (see `CommitLoad`). `None`:
    /// not alone, or the flusher is committing right now (what this caller wrote waits for its
    /// next commit).
    fn commit_here_if_alone(&self, waiting: usize, now: Instant) -> Option<Result<(), PidError>> {
        if !self.load.commits_here(waiting, now) {
            return None;
        }
        let mut committer = self.committer.try_lock().ok()?;
        if committer.journal.queued_bytes() > SMALL_COMMIT {
            return None;
        }
        let result = committer.commit_timed(&self.load);
        let checkpoint_due = committer.checkpoint_due(&self.load);
        drop(committer);
        if checkpoint_due {
            // The flusher starts checkpoints after its commits; with the commits made here it
            // would wait for its idle timer, and the overlay (memory) and the journal would
            // grow meanwhile: a bulk import through one pictl peaked at 269 MiB instead of
            // 124. Wake it without waiting for it: it commits (nothing new) and checkpoints.
            if let Some(tx) = &self.tx {
                let _ = tx.send(oneshot::channel().0);
            }
        }
        Some(result.map_err(|e| PidError::Flush(Arc::new(e))))
    }

    /// Wait until everything this caller wrote so far is on disk.
    pub async fn durable(&self) -> Result<(), PidError> {
        let now = Instant::now();
        let waiting = self.load.waiting(now);
        if let Some(result) = self.commit_here_if_alone(waiting.count, now) {
            return result;
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .and_then(|sender| sender.send(tx).ok())
            .ok_or_else(|| PidError::Internal("flusher stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PidError::Flush(e)),
            Err(_) => Err(PidError::Internal("flusher stopped".into())),
        }
    }
}

/// Collect the waiters that queued, commit once, answer them all; checkpoint when due. Ends
/// with a last commit and checkpoint when the store (the last sender) is dropped.
fn flush_loop(committer: &Mutex<Committer>, load: &CommitLoad, rx: mpsc::Receiver<Waiter>) {
    let lock = || committer.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let mut waiters = Vec::new();
        match rx.recv_timeout(IDLE_FLUSH) {
            Ok(first) => waiters.push(first),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let mut c = lock();
        let result = c.commit_timed(load).map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(error = %chain(&**e), "store commit failed");
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
        if c.checkpoint_due(load) {
            c.checkpoint();
        }
    }
    lock().finish();
}

/// Whether the runtime this is spawned in has two or more worker threads. A commit on the
/// caller's thread blocks that worker; tasks queued behind it then run on another worker
/// (work stealing). With a single one (a one-CPU host, a current-thread runtime) they would all
/// wait: each would find itself alone in `durable`, commit on its own, and the group commit
/// would be gone (measured with one worker: 7,400 logins/s instead of 51,000).
fn workers_that_can_steal() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|h| {
        h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            && h.metrics().num_workers() >= 2
    })
}

/// How many callers wait in `durable`, when they last overlapped, how long the last commit took,
/// and until when a bulk writer counts as at work.
struct CommitLoad {
    /// Commits may run on a caller's thread at all (see `workers_that_can_steal`).
    enabled: bool,
    epoch: Instant,
    waiting: AtomicUsize,
    /// When a caller last found another one waiting (ns after `epoch`; `NEVER`).
    overlapped_at: AtomicU64,
    /// Nanoseconds.
    last_took: AtomicU64,
    /// Until when a bulk writer counts as at work (ns after `epoch`; 0: never was).
    bulk_until: AtomicU64,
}

const NEVER: u64 = u64::MAX;

/// A lone caller commits on its own thread only if no two callers overlapped for this long:
/// with two clients taking turns, a commit here while the other's write arrives makes that one
/// wait for it and then for a flusher commit of its own, where otherwise both share one
/// (2 clients: 6,308 instead of 6,997 logins/s)...
const QUIET_AFTER_OVERLAP: Duration = Duration::from_millis(100);
/// ...if the last commit took less than this (a slow disk stays with the flusher)...
const FAST_COMMIT: Duration = Duration::from_millis(1);
/// ...and if no more than this is queued (a login writes a few hundred bytes; a bulk import's
/// batch, committed here, raises the import's peak memory by a fifth: 145 MiB instead of 122).
const SMALL_COMMIT: usize = 64 * 1024;

/// One caller counted in `CommitLoad::waiting` until dropped (also when `durable` is cancelled).
struct Waiting<'a> {
    load: &'a CommitLoad,
    /// Callers waiting, this one included, when it arrived.
    count: usize,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.load.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CommitLoad {
    fn new(enabled: bool) -> CommitLoad {
        CommitLoad {
            enabled,
            epoch: Instant::now(),
            waiting: AtomicUsize::new(0),
            overlapped_at: AtomicU64::new(NEVER),
            last_took: AtomicU64::new(0),
            bulk_until: AtomicU64::new(0),
        }
    }

    /// A bulk writer (an import batch) is at work at `now` (see `BULK_CHECKPOINT_EVERY`).
    fn bulk_writer_began(&self, now: Instant) {
        self.bulk_until
            .fetch_max(self.nanos(now + BULK_LASTS), Ordering::Relaxed);
    }

    fn bulk_writer_at_work(&self, now: Instant) -> bool {
        self.nanos(now) < self.bulk_until.load(Ordering::Relaxed)
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// A caller arrives in `durable` at `now`.
    fn waiting(&self, now: Instant) -> Waiting<'_> {
        let count = self.waiting.fetch_add(1, Ordering::AcqRel) + 1;
        if count > 1 {
            self.overlapped_at.store(self.nanos(now), Ordering::Relaxed);
        }
        Waiting { load: self, count }
    }

    fn took(&self, d: Duration) {
        self.last_took
            .store(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Whether a caller that found `waiting` callers (itself included) at `now` commits on its
    /// own thread.
    fn commits_here(&self, waiting: usize, now: Instant) -> bool {
        let overlapped_at = self.overlapped_at.load(Ordering::Relaxed);
        let quiet = overlapped_at == NEVER
            || self.nanos(now).saturating_sub(overlapped_at)
                >= QUIET_AFTER_OVERLAP.as_nanos() as u64;
        self.enabled
            && waiting == 1
            && quiet
            && self.last_took.load(Ordering::Relaxed) < FAST_COMMIT.as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_caller_commits_on_its_own_thread_unless_callers_overlap_or_the_disk_is_slow() {
        let load = CommitLoad::new(true);
        let t0 = load.epoch;
        let first = load.waiting(t0);
        assert_eq!(first.count, 1);
        assert!(load.commits_here(first.count, t0), "alone, fast so far");
        let second = load.waiting(t0);
        assert!(
            !load.commits_here(second.count, t0),
            "two wait: the group commit"
        );
        drop((first, second));
        let later = t0 + QUIET_AFTER_OVERLAP / 2;
        let lone = load.waiting(later);
        assert_eq!(lone.count, 1, "the count follows the callers");
        assert!(
            !load.commits_here(lone.count, later),
            "callers overlapped moments ago: more will, they share the flusher's commits"
        );
        let quiet = t0 + QUIET_AFTER_OVERLAP;
        assert!(load.commits_here(lone.count, quiet));

        load.took(FAST_COMMIT);
        assert!(
            !load.commits_here(1, quiet),
            "a slow disk keeps the flusher committing"
        );
        load.took(Duration::from_micros(150));
        assert!(load.commits_here(1, quiet), "fast again");

        assert!(
            !CommitLoad::new(false).commits_here(1, quiet),
            "one worker: every commit goes to the flusher"
        );
    }

    #[test]
    fn only_a_runtime_with_two_workers_or_more_commits_on_callers_threads() {
        assert!(!workers_that_can_steal(), "outside a runtime");
        let one = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert!(!one.block_on(async { workers_that_can_steal() }));
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(!current.block_on(async { workers_that_can_steal() }));
        let two = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert!(two.block_on(async { workers_that_can_steal() }));
    }

    #[test]
    fn the_heap_is_trimmed_once_when_a_burst_of_big_checkpoints_ends() {
        let mut heap = HeapTrim::default();
        assert!(
            !heap.after_checkpoint(BURST_CHECKPOINT_WRITES - 1),
            "no burst yet"
        );
        assert!(!heap.after_quiet(), "nothing freed, nothing to trim");
        assert!(
            !heap.after_checkpoint(BURST_CHECKPOINT_WRITES),
            "the burst goes on"
        );
        assert!(
            !heap.after_checkpoint(50 * BURST_CHECKPOINT_WRITES),
            "still going on"
        );
        assert!(
            heap.after_checkpoint(1000),
            "the first small checkpoint ends it"
        );
        assert!(!heap.after_checkpoint(1000), "and trims only once");
        assert!(!heap.after_quiet());
    }

    #[test]
    fn bulk_writes_shorten_the_checkpoint_interval_for_a_second_after_each_batch() {
        let load = CommitLoad::new(true);
        let t0 = load.epoch + Duration::from_secs(5);
        assert!(!load.bulk_writer_at_work(t0), "no import yet");
        load.bulk_writer_began(t0);
        assert!(load.bulk_writer_at_work(t0));
        assert!(load.bulk_writer_at_work(t0 + BULK_LASTS - Duration::from_millis(1)));
        assert!(
            !load.bulk_writer_at_work(t0 + BULK_LASTS),
            "over a second after the last batch"
        );
        // Batches that overlap (two pictl runs) extend it; a late-arriving earlier one does
        // not shorten it.
        load.bulk_writer_began(t0 + Duration::from_millis(800));
        load.bulk_writer_began(t0 + Duration::from_millis(300));
        assert!(load.bulk_writer_at_work(t0 + Duration::from_millis(1_700)));
        assert!(!load.bulk_writer_at_work(t0 + Duration::from_millis(1_800)));
    }

    #[test]
    fn a_burst_followed_by_silence_is_trimmed_when_the_quiet_timer_fires() {
        let mut heap = HeapTrim::default();
        assert!(!heap.after_checkpoint(BURST_CHECKPOINT_WRITES));
        assert!(heap.after_quiet());
        assert!(!heap.after_quiet());
    }
}
