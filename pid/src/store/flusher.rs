//! Group commit. "Durable before success": a counter advance must be on disk before `Accept` is
//! sent, or a crash makes a spent OTP valid again. One fsync per request would cap throughput, so
//! callers queue here and one thread flushes for all of them.
//!
//! Invariant: a waiter is answered only by a flush that *started after* it queued, so every write
//! it made before queueing is covered. Only this thread ever calls `flush`, shutdown included:
//! sled 0.34.7 deadlocks when flushes run concurrently (upstream #1308/#1241).

use super::audit_log::AuditLog;
use crate::error::PidError;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Audit entries not followed by a durable answer (refusals) are written at least this often.
const IDLE_FLUSH: Duration = Duration::from_secs(1);

type Waiter = oneshot::Sender<Result<(), String>>;

pub struct Flusher {
    tx: Option<mpsc::Sender<Waiter>>,
    /// Joined on drop, so the store (and sled's directory lock) is released when `Store` is.
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

/// What is written just before each flush: queued audit entries and the token count.
struct Pending {
    audit: Arc<AuditLog>,
    meta: sled::Tree,
    token_count: Arc<AtomicI64>,
    saved_count: AtomicI64,
}

impl Pending {
    fn write(&self) -> Result<(), PidError> {
        self.audit.write_pending()?;
        let count = self.token_count.load(Ordering::Relaxed);
        if self.saved_count.swap(count, Ordering::Relaxed) != count {
            self.meta
                .insert(super::TOKEN_COUNT_KEY, &count.to_be_bytes())?;
        }
        Ok(())
    }
}

impl Flusher {
    /// Start the flusher thread. It is a plain OS thread, not a task: a login that waits for
    /// durability wakes exactly one thread, which flushes and answers every waiter it collected.
    pub fn spawn(
        db: sled::Db,
        audit: Arc<AuditLog>,
        meta: sled::Tree,
        token_count: Arc<AtomicI64>,
    ) -> Result<Flusher, PidError> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let pending = Arc::new(Pending {
            audit,
            meta,
            token_count,
            saved_count: AtomicI64::new(-1),
        });
        let thread = std::thread::Builder::new()
            .name("pid-flusher".into())
            .spawn(move || flush_loop(db, pending, rx))
            .map_err(|e| PidError::Startup(format!("cannot start the flusher thread: {e}")))?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Wait until everything this caller wrote so far is on disk.
    pub async fn durable(&self) -> Result<(), PidError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .and_then(|sender| sender.send(tx).ok())
            .ok_or_else(|| PidError::Internal("flusher stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PidError::Internal(format!("flush failed: {e}"))),
            Err(_) => Err(PidError::Internal("flusher stopped".into())),
        }
    }
}

/// Collect the waiters that queued, write pending audit entries and the count, flush once, answer
/// them all. Ends when the store (the last sender) is dropped.
fn flush_loop(db: sled::Db, pending: Arc<Pending>, rx: mpsc::Receiver<Waiter>) {
    loop {
        let mut waiters = Vec::new();
        match rx.recv_timeout(IDLE_FLUSH) {
            Ok(first) => waiters.push(first),
            Err(RecvTimeoutError::Timeout) if pending.audit.has_pending() => {}
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let result = pending
            .write()
            .and_then(|_| db.flush().map(|_| ()).map_err(PidError::from))
            .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "store flush failed");
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}
