//! Group commit. "Durable before success": a counter advance must be on disk before `Accept` is
//! sent, or a crash makes a spent OTP valid again. One fsync per request would cap throughput, so
//! callers queue here and one task flushes for all of them.
//!
//! Invariant: a waiter is answered only by a flush that *started after* it queued, so every write
//! it made before queueing is covered. Only this task ever calls `flush`: sled 0.34.7 deadlocks
//! when several tasks call `flush_async` at once (upstream #1308/#1241).

use super::audit_log::AuditLog;
use crate::error::PidError;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Audit entries not followed by a durable answer (refusals) are written at least this often.
const IDLE_FLUSH: Duration = Duration::from_secs(1);

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
    pending: Arc<Pending>,
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
    pub fn spawn(
        db: sled::Db,
        audit: Arc<AuditLog>,
        meta: sled::Tree,
        token_count: Arc<AtomicI64>,
    ) -> Flusher {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let pending = Arc::new(Pending {
            audit,
            meta,
            token_count,
            saved_count: AtomicI64::new(-1),
        });
        let task_pending = pending.clone();
        tokio::spawn(async move {
            let pending = task_pending;
            loop {
                let mut waiters = Vec::new();
                match tokio::time::timeout(IDLE_FLUSH, rx.recv()).await {
                    Ok(Some(first)) => waiters.push(first),
                    Ok(None) => break,
                    Err(_) if pending.audit.has_pending() => {}
                    Err(_) => continue,
                }
                while let Ok(w) = rx.try_recv() {
                    waiters.push(w);
                }
                let (db, pending) = (db.clone(), pending.clone());
                let result = match tokio::task::spawn_blocking(move || {
                    pending.write().map_err(|e| e.to_string())?;
                    db.flush().map(|_| ()).map_err(|e| e.to_string())
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => Err(format!("flush task failed: {e}")),
                };
                if let Err(e) = &result {
                    tracing::error!(error = %e, "store flush failed");
                }
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        });
        Flusher { tx, pending }
    }

    /// Write what the next flush would write (for a synchronous flush at shutdown).
    pub fn write_pending(&self) -> Result<(), PidError> {
        self.pending.write()
    }

    /// Wait until everything this caller wrote so far is on disk.
    pub async fn durable(&self) -> Result<(), crate::error::PidError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .map_err(|_| crate::error::PidError::Internal("flusher stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(crate::error::PidError::Internal(format!(
                "flush failed: {e}"
            ))),
            Err(_) => Err(crate::error::PidError::Internal("flusher stopped".into())),
        }
    }
}
