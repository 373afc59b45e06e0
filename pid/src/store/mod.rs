//! The store. This module is the only one that knows tree names, keys and encodings; tree
//! names are a contract with future migrations.
//!
//! Concurrency invariant: a token changes only by compare-and-swap against the exact bytes that
//! were read, so two logins racing with the same OTP cannot both advance from the same counter.

mod audit_log;
pub use audit_log::Pruned;
mod flusher;
mod journal;
mod kv;
pub mod machines;
mod migrate;
pub mod offline;
mod paced_file;
pub mod records;

pub use flusher::Flusher;
pub use journal::{Damaged, Gap, RecordDamage};
use journal::{Journal, Record, TreeId};
use kv::{Bytes, Kv, Tree};
pub use migrate::{CopyFailure, MigrateError};
pub use records::{Owner, Rollout, TokenRecord};

use crate::error::PidError;
use protocol::frame::{decode_value, encode_value};
use protocol::AuditEntry;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Version of the store layout; a store written by a newer pi is refused, not misread.
pub const SCHEMA_VERSION: u16 = 1;
const SCHEMA_KEY: &[u8] = b"schema";
const TOKEN_COUNT_KEY: &[u8] = b"token_count";
/// The fingerprint of the key the tokens' secrets are sealed with (`crypto::KeyFingerprint`).
const KEY_FINGERPRINT_KEY: &[u8] = b"enckey_fingerprint";

/// A user's recent login outcomes, newest last, for privacyIDEA's `auth_max_fail` /
/// `auth_max_success` (which count audit entries; a per-user record answers the same question
/// without scanning the audit trail on every login).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthHistory {
    pub failures: Vec<i64>,
    pub successes: Vec<i64>,
}

/// How much history a policy needs: at most `count` entries of each kind, none older than
/// `secs`.
#[derive(Clone, Copy, Debug)]
pub struct HistoryKeep {
    pub count: usize,
    pub secs: i64,
}

impl AuthHistory {
    /// Outcomes of one kind at or after `since`.
    pub fn count_since(&self, success: bool, since: i64) -> usize {
        let list = if success {
            &self.successes
        } else {
            &self.failures
        };
        list.iter().filter(|&&t| t >= since).count()
    }

    fn add(&mut self, at: i64, success: bool, keep: HistoryKeep) {
        let list = if success {
            &mut self.successes
        } else {
            &mut self.failures
        };
        list.push(at);
        for list in [&mut self.failures, &mut self.successes] {
            list.retain(|&t| t > at - keep.secs);
            let excess = list.len().saturating_sub(keep.count);
            list.drain(..excess);
        }
    }
}

/// A record together with the exact bytes it was decoded from (the compare-and-swap witness).
#[derive(Clone, Debug)]
pub struct Versioned {
    pub rec: TokenRecord,
    raw: Bytes,
}

pub struct Store {
    /// Schema marker, saved token count, key fingerprint.
    meta: Tree,
    /// Tokens in the store, kept by create and delete and saved with every group commit.
    /// Counting a tree walks all of it, so the walk happens only for a store that has no saved
    /// count yet.
    token_count: Arc<AtomicI64>,
    tokens: Tree,
    /// (realm, login) → the user's serials, one key per user so a login reads its tokens with
    /// two point lookups and no scan.
    user_tokens: Tree,
    /// (realm, login) → recent login outcomes, kept only for users an `auth_max_fail` /
    /// `auth_max_success` policy applies to (see `AuthHistory`).
    auth_history: Tree,
    /// (realm, login) → the resolver's id of the person the user's tokens were enrolled for
    /// (see `ResolvedUser::user_id`).
    user_ids: Tree,
    /// MachineToken assignments (see `machines`).
    machine_tokens: Tree,
    /// Offline OTP values from upstream servers (see `offline`).
    offline: Tree,
    /// The SSH keys upstream servers last gave per login (see `offline::UpstreamSshKeys`).
    upstream_ssh_keys: Tree,
    /// (realm, serial) → nothing: the tokens whose `pool_realm` is that realm, so a login
    /// reads a realm's pool with one bounded range scan. Written in the same journal record as
    /// the token, like the user index.
    pool_tokens: Tree,
    audit: Arc<audit_log::AuditLog>,
    /// Every write to any of the store's trees goes through it (see `journal`): it orders
    /// them and makes them durable at the next group commit.
    journal: Arc<Journal>,
    path: PathBuf,
    flusher: Flusher,
}

/// Result of a compare-and-swap update.
#[derive(Debug, PartialEq, Eq)]
pub enum Swap {
    Done,
    /// Someone changed a token since it was read: read again and redo the check.
    Conflict,
}

impl Store {
    /// Open (or create) the store for `base` (`state_dir/db`: the database is `db.redb`, its
    /// journal `db.journal/`) and start its flusher thread. A sled store an earlier pi left at
    /// `base` is migrated first.
    pub fn open(base: &Path, cache_mib: u32) -> Result<Store, PidError> {
        if let Some(parent) = base.parent() {
            create_private_dir(parent)?;
        }
        let path = base.with_extension("redb");
        let journal_dir = journal_dir(base);
        if !path.exists() && migrate::is_sled_store(base) {
            migrate::from_sled(base, &path, cache_mib)?;
            // sled's page table (~82 MiB at a million tokens) and the copy's batches are freed
            // by now, but malloc would keep them in the daemon's RSS.
            crate::sys::release_freed_memory();
        }
        let kv = Arc::new(Kv::open(&path, cache_mib)?);
        // Until the daemon serves, no commit waits behind a checkpoint, and a journal replay's
        // checkpoint should be over quickly: write back at once. The checkpoint thread decides
        // for every checkpoint after that.
        kv.pace_writeback(false);
        let meta = kv.tree(TreeId::Meta);
        let schema =
            match meta.get(SCHEMA_KEY)? {
                None => None,
                Some(v) => Some(<[u8; 2]>::try_from(&*v).map(u16::from_be_bytes).map_err(
                    |_| {
                        PidError::Startup(format!(
                            "store {} has a damaged schema marker",
                            path.display()
                        ))
                    },
                )?),
            };
        if let Some(found) = schema.filter(|&f| f > SCHEMA_VERSION) {
            return Err(PidError::Startup(format!(
                "store {} has schema {found}, written by a newer pi; this pid knows \
                 schema {SCHEMA_VERSION}. Install the newer pid or restore a backup.",
                path.display()
            )));
        }
        // The store's own journal comes out of the replay; until then no writer exists, and a
        // checkpoint only needs some lock to hold while it takes the overlay.
        let replay_journal = Journal::new();
        let (journal, journal_file, replayed) = journal::open(
            &journal_dir,
            |id, key, value| {
                kv.replay(id, key, value);
                Ok(())
            },
            || kv.checkpoint(&replay_journal).map(drop),
        )?;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "replayed the journal of an unclean stop"
            );
            // The replayed overlay is in redb now and freed; up to 64 MiB of journal (a whole
            // file) would otherwise stay in the daemon's RSS.
            crate::sys::release_freed_memory();
        }
        let journal = Arc::new(journal);
        if schema.is_none() {
            journal.write(|r| {
                meta.set(r, SCHEMA_KEY, Some(&SCHEMA_VERSION.to_be_bytes()));
                Ok(())
            })?;
        }
        let tokens = kv.tree(TreeId::Tokens);
        let audit = Arc::new(audit_log::AuditLog::open(kv.tree(TreeId::Audit))?);
        let saved = meta
            .get(TOKEN_COUNT_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(&*v).ok())
            .map(i64::from_be_bytes);
        let token_count = Arc::new(AtomicI64::new(match saved {
            Some(n) => n,
            None => tokens.len()? as i64,
        }));
        // The schema marker on disk before the flusher thread, the only one that writes redb
        // from now on, starts.
        kv.checkpoint(&journal)?;
        let store = Store {
            meta: meta.clone(),
            tokens,
            user_tokens: kv.tree(TreeId::UserTokens),
            auth_history: kv.tree(TreeId::AuthHistory),
            user_ids: kv.tree(TreeId::UserIds),
            machine_tokens: kv.tree(TreeId::MachineTokens),
            offline: kv.tree(TreeId::Offline),
            upstream_ssh_keys: kv.tree(TreeId::UpstreamSshKeys),
            pool_tokens: kv.tree(TreeId::PoolTokens),
            path,
            flusher: Flusher::spawn(
                kv,
                audit.clone(),
                meta,
                token_count.clone(),
                journal.clone(),
                journal_file,
            )?,
            audit,
            journal,
            token_count,
        };
        Ok(store)
    }

    /// What went wrong with writing the store lately, if anything (`pictl status`).
    pub fn health(&self) -> Option<String> {
        self.flusher.health()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A bulk writer (an import batch) is at work: the store checkpoints more often for a
    /// while, so that its writes are not held in memory by the ten thousand.
    pub fn bulk_writes(&self) {
        self.flusher.bulk_writes();
    }

    /// Wait until everything written so far is on disk (group commit).
    pub async fn durable(&self) -> Result<(), PidError> {
        self.flusher.durable().await
    }

    pub fn get_token(&self, serial: &str) -> Result<Option<Versioned>, PidError> {
        self.tokens
            .get(serial.as_bytes())?
            .map(decode_token)
            .transpose()
    }

    pub fn token_exists(&self, serial: &str) -> Result<bool, PidError> {
        self.tokens.contains_key(serial.as_bytes())
    }

    /// All tokens of a user, ordered by serial.
    pub fn tokens_of(&self, owner: &Owner) -> Result<Vec<Versioned>, PidError> {
        let mut out = Vec::new();
        for serial in self.serials_of(owner)? {
            // The index may briefly name a token deleted a moment ago; skip it.
            if let Some(v) = self.get_token(&serial)? {
                if v.rec.owner.as_ref() == Some(owner) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    pub fn serials_of(&self, owner: &Owner) -> Result<Vec<String>, PidError> {
        match self.user_tokens.get(&user_key(owner))? {
            Some(raw) => Ok(decode_value(&raw)?),
            None => Ok(Vec::new()),
        }
    }

    /// The id of the person this user's tokens belong to, if recorded.
    pub fn bound_user_id(&self, owner: &Owner) -> Result<Option<String>, PidError> {
        match self.user_ids.get(&user_key(owner))? {
            Some(raw) => Ok(Some(String::from_utf8_lossy(&raw).into_owned())),
            None => Ok(None),
        }
    }

    /// Record whose tokens this user's are. Durable with the next group commit.
    pub fn bind_user_id(&self, owner: &Owner, id: &str) -> Result<(), PidError> {
        let key = user_key(owner);
        self.journal.write(|r| {
            self.user_ids.set(r, &key, Some(id.as_bytes()));
            Ok(())
        })
    }

    /// The user's recent login outcomes.
    pub fn auth_history(&self, owner: &Owner) -> Result<AuthHistory, PidError> {
        match self.auth_history.get(&user_key(owner))? {
            Some(raw) => Ok(decode_value(&raw)?),
            None => Ok(AuthHistory::default()),
        }
    }

    /// Add one login outcome atomically (concurrent logins of one user do not lose entries:
    /// the read and the write are under the journal's lock), keeping what `keep` says is still
    /// needed. Durable with the next group commit, like the token update of the same login.
    pub fn record_auth(
        &self,
        owner: &Owner,
        at: i64,
        success: bool,
        keep: HistoryKeep,
    ) -> Result<(), PidError> {
        let key = user_key(owner);
        self.journal.write(|r| {
            // A damaged entry is replaced rather than blocking every later login of the user.
            let mut h: AuthHistory = self
                .auth_history
                .get(&key)?
                .and_then(|b| decode_value(&b).ok())
                .unwrap_or_default();
            h.add(at, success, keep);
            let bytes = encode_value(&h)?;
            self.auth_history.set(r, &key, Some(&bytes));
            Ok(())
        })
    }

    /// Insert a new token; `AlreadyExists` if the serial is taken.
    pub fn create_token(&self, rec: &TokenRecord) -> Result<(), PidError> {
        let bytes = encode_value(rec)?;
        self.journal.write(|r| {
            // Every check before any write, and all of it under the journal's lock: the
            // token and its index entry appear together or not at all.
            if self.tokens.contains_key(rec.serial.as_bytes())? {
                return Err(PidError::AlreadyExists(format!(
                    "a token with serial {} already exists; choose another --serial or omit it",
                    rec.serial
                )));
            }
            let index = match &rec.owner {
                Some(owner) => Some(self.index_with(owner, &rec.serial, true)?),
                None => None,
            };
            self.tokens.set(r, rec.serial.as_bytes(), Some(&bytes));
            if let (Some(owner), Some(serials)) = (&rec.owner, index) {
                self.write_index(r, owner, serials.as_deref());
            }
            if let Some(realm) = &rec.pool_realm {
                self.pool_tokens
                    .set(r, &pool_key(realm, &rec.serial), Some(&[]));
            }
            Ok(())
        })?;
        self.token_count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Replace (`Some`) or delete (`None`) tokens, all or nothing, provided none changed since
    /// it was read. Keeps the user index in step with owners and the pool index with pool
    /// realms.
    pub fn swap_tokens(
        &self,
        changes: &[(&Versioned, Option<&TokenRecord>)],
    ) -> Result<Swap, PidError> {
        let encoded: Vec<Option<Vec<u8>>> = changes
            .iter()
            .map(|(_, new)| new.map(encode_value).transpose())
            .collect::<Result<_, _>>()?;
        let swapped = self.journal.write(|r| {
            // All checks first: nothing is written unless every token is as it was read.
            for (old, _) in changes {
                let key = old.rec.serial.as_bytes();
                let now = self.tokens.get(key)?;
                if now.as_deref() != Some(&*old.raw) {
                    // Another writer came first; the caller reads again and retries.
                    return Ok(Swap::Conflict);
                }
            }
            for ((old, new), bytes) in changes.iter().zip(&encoded) {
                self.tokens
                    .set(r, old.rec.serial.as_bytes(), bytes.as_deref());
                let new_owner = new.and_then(|n| n.owner.as_ref());
                if old.rec.owner.as_ref() != new_owner {
                    if let Some(o) = &old.rec.owner {
                        let serials = self.index_with(o, &old.rec.serial, false)?;
                        self.write_index(r, o, serials.as_deref());
                    }
                    if let Some(o) = new_owner {
                        let serials = self.index_with(o, &old.rec.serial, true)?;
                        self.write_index(r, o, serials.as_deref());
                    }
                }
                let new_pool = new.and_then(|n| n.pool_realm.as_deref());
                if old.rec.pool_realm.as_deref() != new_pool {
                    if let Some(realm) = &old.rec.pool_realm {
                        self.pool_tokens
                            .set(r, &pool_key(realm, &old.rec.serial), None);
                    }
                    if let Some(realm) = new_pool {
                        self.pool_tokens
                            .set(r, &pool_key(realm, &old.rec.serial), Some(&[]));
                    }
                }
            }
            Ok(Swap::Done)
        })?;
        if swapped == Swap::Done {
            let deleted = changes.iter().filter(|(_, new)| new.is_none()).count();
            self.token_count
                .fetch_sub(deleted as i64, Ordering::Relaxed);
        }
        Ok(swapped)
    }

    /// Every token assigned to a user of `realm` (the user index's keys start with the realm),
    /// at most `limit`.
    pub fn tokens_in_realm(&self, realm: &str, limit: usize) -> Result<Vec<Versioned>, PidError> {
        let mut prefix = realm.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.user_tokens.scan_prefix(&prefix)? {
            let (_, raw) = item?;
            let serials: Vec<String> = decode_value(&raw)?;
            for serial in serials {
                if let Some(v) = self.get_token(&serial)? {
                    out.push(v);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The unassigned tokens in `realm`'s pool, ordered by serial, starting after `after`:
    /// at most `limit` entries of the index are read (a page may hold fewer tokens if some
    /// were claimed or deleted meanwhile), and the serial to continue after when more remain.
    pub fn pool_tokens(
        &self,
        realm: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Versioned>, Option<String>), PidError> {
        let start = pool_key(realm, after.unwrap_or(""));
        let lo = match after {
            Some(_) => Bound::Excluded(&start[..]),
            None => Bound::Included(&start[..]),
        };
        // Keys of this realm are `realm 0 serial`; the next realm's start after `realm 1`.
        let mut end = realm.as_bytes().to_vec();
        end.push(1);
        let mut out = Vec::new();
        let mut last = None;
        let entries = self
            .pool_tokens
            .range(lo, Bound::Excluded(&end[..]), false)?;
        for (read, item) in entries.enumerate() {
            if read >= limit {
                return Ok((out, last));
            }
            let (key, _) = item?;
            let serial = String::from_utf8_lossy(key.get(realm.len() + 1..).unwrap_or_default())
                .into_owned();
            // The index is read apart from the tokens: one may have been claimed or deleted
            // between the two reads.
            if let Some(v) = self.get_token(&serial)? {
                if v.rec.owner.is_none() && v.rec.pool_realm.as_deref() == Some(realm) {
                    out.push(v);
                }
            }
            last = Some(serial);
        }
        Ok((out, None))
    }

    /// Tokens ordered by serial, starting after `after`.
    pub fn list_tokens(
        &self,
        owner: Option<&Owner>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TokenRecord>, Option<String>), PidError> {
        let mut out = Vec::new();
        let mut push = |v: Versioned| -> bool {
            out.push(v.rec);
            out.len() >= limit
        };
        let mut full = false;
        match owner {
            Some(owner) => {
                for serial in self.serials_of(owner)? {
                    if after.is_some_and(|a| serial.as_str() <= a) {
                        continue;
                    }
                    if let Some(v) = self.get_token(&serial)? {
                        if push(v) {
                            full = true;
                            break;
                        }
                    }
                }
            }
            None => {
                let lo = match after {
                    Some(a) => Bound::Excluded(a.as_bytes()),
                    None => Bound::Unbounded,
                };
                for item in self.tokens.range(lo, Bound::Unbounded, false)? {
                    let (_, raw) = item?;
                    if push(decode_token(raw)?) {
                        full = true;
                        break;
                    }
                }
            }
        }
        let next = if full {
            out.last().map(|r| r.serial.clone())
        } else {
            None
        };
        Ok((out, next))
    }

    /// The owner's index entry with `serial` added or removed (`None`: no serials left).
    /// Inside `journal.write`, so no other write changes the entry before it is written.
    fn index_with(
        &self,
        owner: &Owner,
        serial: &str,
        add: bool,
    ) -> Result<Option<Vec<u8>>, PidError> {
        let mut serials: Vec<String> = match self.user_tokens.get(&user_key(owner))? {
            Some(raw) => decode_value(&raw)?,
            None => Vec::new(),
        };
        serials.retain(|s| s != serial);
        if add {
            serials.push(serial.to_owned());
            serials.sort();
        }
        if serials.is_empty() {
            Ok(None)
        } else {
            Ok(Some(encode_value(&serials)?))
        }
    }

    fn write_index(&self, r: &mut Record<'_>, owner: &Owner, serials: Option<&[u8]>) {
        self.user_tokens.set(r, &user_key(owner), serials);
    }

    /// The fingerprint of the key the store's secrets are sealed with, as recorded when the
    /// key was first used (raw bytes; `None` for a new store or one from before it was kept).
    pub fn key_fingerprint(&self) -> Result<Option<Vec<u8>>, PidError> {
        Ok(self.meta.get(KEY_FINGERPRINT_KEY)?.map(|v| v.to_vec()))
    }

    /// Record the key's fingerprint. Durable with the next group commit, before any secret
    /// sealed with the key (those are written after it).
    pub fn set_key_fingerprint(&self, fingerprint: &[u8]) -> Result<(), PidError> {
        self.journal.write(|r| {
            self.meta.set(r, KEY_FINGERPRINT_KEY, Some(fingerprint));
            Ok(())
        })
    }

    /// Tokens in the store.
    pub fn count_tokens(&self) -> u64 {
        self.token_count.load(Ordering::Relaxed).max(0) as u64
    }

    /// Queue an audit entry; it is written with the next group commit. Returns its sequence.
    pub fn append_audit(&self, entry: AuditEntry) -> u64 {
        self.audit.append(entry)
    }

    /// Audit entries newest first, before `before`, optionally only those matching `keep`.
    pub fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Result<(Vec<AuditEntry>, Option<u64>), PidError> {
        self.audit.page(before, limit, keep)
    }

    /// Delete audit records older than `before` (Unix seconds) or beyond the newest
    /// `max_entries`, at most `max_records` of them (see `AuditLog::prune`).
    pub fn prune_audit(
        &self,
        before: i64,
        max_entries: u64,
        max_records: usize,
    ) -> Result<Pruned, PidError> {
        self.audit
            .prune(&self.journal, before, max_entries, max_records)
    }
}

fn decode_token(raw: Bytes) -> Result<Versioned, PidError> {
    let rec = TokenRecord::decode(&raw)?;
    if rec.schema != records::TOKEN_SCHEMA {
        return Err(PidError::Corrupt(format!(
            "token {} has record schema {}, this pid reads {}",
            rec.serial,
            rec.schema,
            records::TOKEN_SCHEMA
        )));
    }
    Ok(Versioned { rec, raw })
}

fn user_key(owner: &Owner) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.realm.len() + owner.login.len() + 1);
    k.extend_from_slice(owner.realm.as_bytes());
    k.push(0);
    k.extend_from_slice(owner.login.as_bytes());
    k
}

fn pool_key(realm: &str, serial: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(realm.len() + serial.len() + 1);
    k.extend_from_slice(realm.as_bytes());
    k.push(0);
    k.extend_from_slice(serial.as_bytes());
    k
}

/// The journal lives beside the database: `<state_dir>/db.journal` for `<state_dir>/db`.
fn journal_dir(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    store.with_file_name(name)
}

fn create_private_dir(dir: &Path) -> Result<(), PidError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| PidError::file("create", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, TokenType};

    fn store_with_token(serial: &str) -> (tempfile::TempDir, Store, TokenRecord) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), 4).unwrap();
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        rec.serial = serial.into();
        rec.owner = Some(Owner {
            realm: "r".into(),
            login: "alice".into(),
        });
        store.create_token(&rec).unwrap();
        (dir, store, rec)
    }

    #[test]
    fn a_swap_is_read_back_at_once_and_a_swap_from_a_stale_read_conflicts() {
        let (_dir, store, _) = store_with_token("T1");
        let v0 = store.get_token("T1").unwrap().unwrap();
        let mut next = v0.rec.clone();
        next.count = 5;
        assert_eq!(
            store.swap_tokens(&[(&v0, Some(&next))]).unwrap(),
            Swap::Done
        );
        let v1 = store.get_token("T1").unwrap().unwrap();
        assert_eq!(v1.rec.count, 5);
        assert_eq!(
            store.tokens_of(v1.rec.owner.as_ref().unwrap()).unwrap()[0]
                .rec
                .count,
            5
        );
        let mut again = v0.rec.clone();
        again.count = 1;
        assert_eq!(
            store.swap_tokens(&[(&v0, Some(&again))]).unwrap(),
            Swap::Conflict,
            "the same OTP cannot advance the counter twice from the same read"
        );
        assert_eq!(store.get_token("T1").unwrap().unwrap().rec.count, 5);
    }

    #[test]
    fn a_swap_from_a_read_another_writer_overtook_conflicts_and_changes_nothing() {
        let (_dir, store, rec) = store_with_token("T2");
        let read = store.get_token("T2").unwrap().unwrap();
        // Another writer's update between this read and the swap below.
        let mut overtaking = rec.clone();
        overtaking.count = 9;
        let bytes = encode_value(&overtaking).unwrap();
        store
            .journal
            .write(|r| {
                store.tokens.set(r, b"T2", Some(&bytes));
                Ok(())
            })
            .unwrap();
        assert_eq!(store.get_token("T2").unwrap().unwrap().rec.count, 9);
        let mut next = read.rec.clone();
        next.count = 1;
        assert_eq!(
            store.swap_tokens(&[(&read, Some(&next))]).unwrap(),
            Swap::Conflict
        );
        assert_eq!(store.get_token("T2").unwrap().unwrap().rec.count, 9);
    }

    #[test]
    fn deleting_a_token_empties_the_user_index_and_the_token() {
        let (_dir, store, rec) = store_with_token("T3");
        let owner = rec.owner.clone().unwrap();
        let v = store.get_token("T3").unwrap().unwrap();
        assert_eq!(store.serials_of(&owner).unwrap(), ["T3"]);
        assert_eq!(store.swap_tokens(&[(&v, None)]).unwrap(), Swap::Done);
        assert!(store.get_token("T3").unwrap().is_none());
        assert!(store.serials_of(&owner).unwrap().is_empty());
        assert!(store.tokens_of(&owner).unwrap().is_empty());
    }

    fn pool_token(store: &Store, serial: &str, realm: &str) {
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        rec.serial = serial.into();
        rec.pool_realm = Some(realm.into());
        store.create_token(&rec).unwrap();
    }

    fn pool_serials(store: &Store, realm: &str, after: Option<&str>, limit: usize) -> Vec<String> {
        let (tokens, _) = store.pool_tokens(realm, after, limit).unwrap();
        tokens.into_iter().map(|v| v.rec.serial).collect()
    }

    #[test]
    fn a_realms_pool_lists_its_own_tokens_in_bounded_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), 4).unwrap();
        for s in ["P1", "P2", "P3"] {
            pool_token(&store, s, "r");
        }
        // A realm whose name extends this one's is another pool.
        pool_token(&store, "Q1", "r2");
        pool_token(&store, "Q2", "");
        assert_eq!(pool_serials(&store, "r", None, 10), ["P1", "P2", "P3"]);
        assert_eq!(pool_serials(&store, "r2", None, 10), ["Q1"]);
        let (page, next) = store.pool_tokens("r", None, 2).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(next.as_deref(), Some("P2"));
        let (rest, next) = store.pool_tokens("r", Some("P2"), 2).unwrap();
        assert_eq!(rest[0].rec.serial, "P3");
        assert_eq!(next, None);
    }

    #[test]
    fn claiming_deleting_or_moving_a_pool_token_keeps_the_pool_index_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Store::open(&path, 4).unwrap();
        for s in ["P1", "P2", "P3"] {
            pool_token(&store, s, "r");
        }
        let owner = Owner {
            realm: "r".into(),
            login: "bob".into(),
        };
        let v = store.get_token("P1").unwrap().unwrap();
        let mut claimed = v.rec.clone();
        claimed.owner = Some(owner.clone());
        claimed.pool_realm = None;
        assert_eq!(
            store.swap_tokens(&[(&v, Some(&claimed))]).unwrap(),
            Swap::Done
        );
        let v = store.get_token("P2").unwrap().unwrap();
        assert_eq!(store.swap_tokens(&[(&v, None)]).unwrap(), Swap::Done);
        let v = store.get_token("P3").unwrap().unwrap();
        let mut moved = v.rec.clone();
        moved.pool_realm = Some("other".into());
        assert_eq!(
            store.swap_tokens(&[(&v, Some(&moved))]).unwrap(),
            Swap::Done
        );
        assert!(pool_serials(&store, "r", None, 10).is_empty());
        assert_eq!(pool_serials(&store, "other", None, 10), ["P3"]);
        assert_eq!(store.serials_of(&owner).unwrap(), ["P1"]);
        // The index itself holds no stale entry (not only filtered on reading), also after
        // the journal is replayed into a reopened store.
        drop(store);
        let store = Store::open(&path, 4).unwrap();
        assert_eq!(store.pool_tokens.scan_prefix(b"r\0").unwrap().count(), 0);
        assert_eq!(pool_serials(&store, "other", None, 10), ["P3"]);
    }

    #[test]
    fn of_two_claims_of_one_pool_token_from_the_same_read_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db"), 4).unwrap());
        pool_token(&store, "P1", "r");
        let read = store.get_token("P1").unwrap().unwrap();
        let claims: Vec<_> = ["alice", "bob"]
            .into_iter()
            .map(|login| {
                let (store, read) = (store.clone(), read.clone());
                std::thread::spawn(move || {
                    let mut rec = read.rec.clone();
                    rec.owner = Some(Owner {
                        realm: "r".into(),
                        login: login.into(),
                    });
                    rec.pool_realm = None;
                    store.swap_tokens(&[(&read, Some(&rec))]).unwrap()
                })
            })
            .collect();
        let results: Vec<Swap> = claims.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| **r == Swap::Done).count(), 1);
        assert_eq!(results.iter().filter(|r| **r == Swap::Conflict).count(), 1);
        let owner = store.get_token("P1").unwrap().unwrap().rec.owner.unwrap();
        let other = if owner.login == "alice" {
            "bob"
        } else {
            "alice"
        };
        assert!(store
            .serials_of(&Owner {
                realm: "r".into(),
                login: other.into()
            })
            .unwrap()
            .is_empty());
        assert!(pool_serials(&store, "r", None, 10).is_empty());
    }

    /// The nice values of this process's threads named `name` (Linux: /proc/self/task).
    fn nice_of_threads(name: &str) -> Vec<i64> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Field 19 of stat(5); the fields after the command name start at field 3.
            let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            if let Some(nice) = after_comm.split_whitespace().nth(16) {
                out.push(nice.parse().unwrap());
            }
        }
        out
    }

    #[test]
    fn once_the_store_serves_its_checkpoints_write_back_in_slices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = Store::open(&path, 4).unwrap();
            let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
            rec.serial = "T5".into();
            store.create_token(&rec).unwrap();
        }
        // Opened again: the start-up checkpoint writes back at once (pacing off).
        let store = Store::open(&path, 4).unwrap();
        let kv = store.tokens.kv();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // The checkpoint thread's first checkpoint (half a second after the first commit)
        // turns pacing on: no bulk writer is at work.
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        rec.serial = "T6".into();
        store.create_token(&rec).unwrap();
        while !kv.paces_writeback() {
            assert!(
                std::time::Instant::now() < deadline,
                "no paced checkpoint within 10 s of serving"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_checkpoint_thread_yields_the_cores_to_logins() {
        let (_dir, _store, _) = store_with_token("T4");
        let ours = rustix::process::getpriority_process(None).unwrap() as i64;
        let lowered = (ours + flusher::CHECKPOINT_NICER_BY as i64).min(19);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            // Other tests' stores have checkpoint threads too: every one must be lowered.
            let nice = nice_of_threads("pid-checkpoint");
            if !nice.is_empty() && nice.iter().all(|n| *n == lowered) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "checkpoint threads' nice values: {nice:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            nice_of_threads("pid-flusher").iter().all(|n| *n == ours),
            "the commit every login waits for keeps the normal priority"
        );
    }
}
