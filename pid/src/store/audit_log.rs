//! The audit trail in the store, written in batches: all entries made between two group commits
//! become one record, keyed by the sequence number of its first entry. One store write per
//! commit instead of one per login halves the store writes on the login path.
//!
//! Invariant: entries appended before a caller waits for durability are in the next record the
//! flusher writes, so they are on disk before that caller answers. Sequence numbers are assigned
//! under the same lock as the queue, so every record holds a contiguous ascending run.

use super::journal::Journal;
use super::kv::Tree;
use crate::error::PidError;
use protocol::frame::{decode_value, encode_value};
use protocol::AuditEntry;
use std::ops::Bound;
use std::sync::Mutex;

/// What one pruning step deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub records: usize,
    pub entries: usize,
}

pub struct AuditLog {
    tree: Tree,
    pending: Mutex<Pending>,
}

struct Pending {
    next_seq: u64,
    entries: Vec<AuditEntry>,
}

impl AuditLog {
    pub fn open(tree: Tree) -> Result<AuditLog, PidError> {
        let next_seq = match tree.last()? {
            Some((_, raw)) => {
                let batch: Vec<AuditEntry> = decode_value(&raw)?;
                batch.last().map(|e| e.seq + 1).unwrap_or(1)
            }
            None => 1,
        };
        Ok(AuditLog {
            tree,
            pending: Mutex::new(Pending {
                next_seq,
                entries: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the queue inconsistent (push and take
        // are single operations), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue an entry for the next group commit; returns its sequence number.
    pub fn append(&self, mut entry: AuditEntry) -> u64 {
        let mut p = self.lock();
        entry.seq = p.next_seq;
        p.next_seq += 1;
        p.entries.push(entry);
        entry_seq(&p.entries)
    }

    /// Write the queued entries as one record (the flusher calls this before each flush).
    pub fn write_pending(&self, journal: &Journal) -> Result<(), PidError> {
        let batch = std::mem::take(&mut self.lock().entries);
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let key = first.seq.to_be_bytes();
        let value = encode_value(&batch)?;
        journal.write(|r| {
            self.tree.set(r, &key, Some(&value));
            Ok(())
        })
    }

    /// Delete the oldest records whose entries are all older than `before` (Unix seconds), or
    /// that hold more than `max_entries` entries with those after them; at most `max_records`
    /// records. The newest record always stays: the next sequence number is read from it at
    /// start-up, so numbers never repeat. Durable with the next group commit.
    pub fn prune(
        &self,
        journal: &Journal,
        before: i64,
        max_entries: u64,
        max_records: usize,
    ) -> Result<Pruned, PidError> {
        let next_seq = self.lock().next_seq;
        let mut expired = Vec::new();
        let mut entries = 0;
        let mut records = self.tree.iter()?.peekable();
        while let Some(item) = records.next() {
            if expired.len() >= max_records || records.peek().is_none() {
                break;
            }
            let (key, raw) = item?;
            let first = <[u8; 8]>::try_from(&*key)
                .map(u64::from_be_bytes)
                .map_err(|_| PidError::Corrupt("an audit record has a damaged key".into()))?;
            let batch: Vec<AuditEntry> = decode_value(&raw)?;
            // Records are in sequence order, and times follow it but for clock steps: stop at
            // the first record with anything to keep rather than search past it.
            let too_many = next_seq.saturating_sub(first) > max_entries;
            if !too_many && batch.iter().any(|e| e.time >= before) {
                break;
            }
            entries += batch.len();
            expired.push(key);
        }
        if expired.is_empty() {
            return Ok(Pruned::default());
        }
        journal.write(|r| {
            for key in &expired {
                self.tree.set(r, key, None);
            }
            Ok(())
        })?;
        Ok(Pruned {
            records: expired.len(),
            entries,
        })
    }

    /// Entries newest first with `seq < before`, at most `limit` of those `keep` accepts.
    pub fn page(
        &self,
        before: Option<u64>,
        limit: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Result<(Vec<AuditEntry>, Option<u64>), PidError> {
        let before = before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        // Every record whose first entry is before `before` may hold wanted entries.
        let end = before.to_be_bytes();
        let older = self
            .tree
            .range(Bound::Unbounded, Bound::Excluded(end.as_slice()), true)?;
        for item in older {
            let (_, raw) = item?;
            let batch: Vec<AuditEntry> = decode_value(&raw)?;
            for e in batch.into_iter().rev() {
                if e.seq < before && keep(&e) {
                    out.push(e);
                    if out.len() >= limit {
                        let next = out.last().map(|e| e.seq);
                        return Ok((out, next));
                    }
                }
            }
        }
        Ok((out, None))
    }
}

fn entry_seq(entries: &[AuditEntry]) -> u64 {
    entries.last().map(|e| e.seq).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::journal::TreeId;
    use super::super::kv::Kv;
    use super::*;
    use std::sync::Arc;

    fn entry(msg: &str) -> AuditEntry {
        entry_at(msg, 0)
    }

    fn entry_at(msg: &str, time: i64) -> AuditEntry {
        AuditEntry {
            seq: 0,
            time,
            caller_uid: 0,
            caller_pid: 0,
            action: "auth".into(),
            user: Some(msg.into()),
            realm: None,
            serial: None,
            token_type: None,
            service: None,
            rhost: None,
            success: true,
            message: msg.into(),
        }
    }

    #[test]
    fn pruning_keeps_at_most_max_entries_whatever_their_age() {
        let (_dir, _kv, log, journal) = fresh_log();
        // Ten records of three entries each (seq 1..=30), all recent.
        for _ in 0..10 {
            for _ in 0..3 {
                log.append(entry_at("recent", 1000));
            }
            log.write_pending(&journal).unwrap();
        }
        let pruned = log.prune(&journal, 0, 10, 100).unwrap();
        // Whole records only: 12 entries would still be more than 10, 9 are not.
        assert_eq!(
            pruned,
            Pruned {
                records: 7,
                entries: 21
            }
        );
        let left = log.page(None, 100, |_| true).unwrap().0;
        assert_eq!(left.len(), 9);
        assert_eq!(left.last().unwrap().seq, 22, "the oldest went");
        assert_eq!(log.prune(&journal, 0, 10, 100).unwrap(), Pruned::default());
    }

    /// An audit log on a fresh store, with the journal its writes go through.
    fn fresh_log() -> (tempfile::TempDir, Arc<Kv>, AuditLog, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(Kv::open(&dir.path().join("t.redb"), 1).unwrap());
        let log = AuditLog::open(kv.tree(TreeId::Audit)).unwrap();
        (dir, kv, log, Journal::new())
    }

    #[test]
    fn entries_page_newest_first_across_batches_and_survive_reopening() {
        let (_dir, kv, log, journal) = fresh_log();
        for batch in 0..5 {
            for i in 0..7 {
                log.append(entry(&format!("{batch}-{i}")));
            }
            log.write_pending(&journal).unwrap();
        }
        let (page, next) = log.page(None, 10, |_| true).unwrap();
        assert_eq!(page.len(), 10);
        assert_eq!(page[0].seq, 35);
        assert!(page.windows(2).all(|w| w[0].seq == w[1].seq + 1));
        let (rest, _) = log.page(next, 100, |_| true).unwrap();
        assert_eq!(rest.len(), 25);
        assert_eq!(rest.last().unwrap().seq, 1);
        let only: Vec<_> = log
            .page(None, 100, |e| e.message.starts_with("3-"))
            .unwrap()
            .0;
        assert_eq!(only.len(), 7);
        kv.checkpoint(&journal).unwrap();
        drop(log);
        let log = AuditLog::open(kv.tree(TreeId::Audit)).unwrap();
        assert_eq!(
            log.append(entry("after")),
            36,
            "sequence continues after reopening"
        );
    }

    #[test]
    fn pruning_drops_whole_old_records_in_bounded_steps_and_keeps_the_newest() {
        let (_dir, kv, log, journal) = fresh_log();
        // Records at times 100..=104, then one mixing 105 and 200, then one at 300.
        for t in 100..105 {
            log.append(entry_at("old", t));
            log.write_pending(&journal).unwrap();
        }
        log.append(entry_at("old", 105));
        log.append(entry_at("new", 200));
        log.write_pending(&journal).unwrap();
        log.append(entry_at("new", 300));
        log.write_pending(&journal).unwrap();
        let all = |log: &AuditLog| log.page(None, 100, |_| true).unwrap().0;
        assert_eq!(all(&log).len(), 8);

        let records = |p: Pruned| p.records;
        assert_eq!(
            records(log.prune(&journal, 150, u64::MAX, 3).unwrap()),
            3,
            "at most 3 per step"
        );
        assert_eq!(records(log.prune(&journal, 150, u64::MAX, 3).unwrap()), 2);
        assert_eq!(
            records(log.prune(&journal, 150, u64::MAX, 3).unwrap()),
            0,
            "a record with an entry to keep stays whole"
        );
        let left: Vec<i64> = all(&log).iter().map(|e| e.time).collect();
        assert_eq!(left, [300, 200, 105]);

        assert_eq!(
            log.prune(&journal, i64::MAX, u64::MAX, 100).unwrap(),
            Pruned {
                records: 1,
                entries: 2
            }
        );
        assert_eq!(all(&log).len(), 1, "the newest record always stays");
        kv.checkpoint(&journal).unwrap();
        drop(log);
        let log = AuditLog::open(kv.tree(TreeId::Audit)).unwrap();
        assert_eq!(
            log.append(entry("after")),
            9,
            "sequence numbers never repeat"
        );
    }
}
