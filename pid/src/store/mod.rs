//! The sled store. This module is the only one that knows tree names, keys and encodings; tree
//! names are a contract with future migrations (DESIGN §5).
//!
//! Concurrency invariant: a token changes only by compare-and-swap against the exact bytes that
//! were read, so two logins racing with the same OTP cannot both advance from the same counter.

mod audit_log;
mod cache;
mod flusher;
mod journal;
pub mod machines;
pub mod records;

use cache::ReadCache;
pub use flusher::Flusher;
use journal::{Journal, Record, TreeId};
pub use records::{Owner, TokenRecord};

use crate::error::PidError;
use protocol::frame::{decode_value, encode_value};
use protocol::AuditEntry;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional, Tree};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Version of the store layout; a store written by a newer pi is refused, not misread.
pub const SCHEMA_VERSION: u16 = 1;
const SCHEMA_KEY: &[u8] = b"schema";
const TOKEN_COUNT_KEY: &[u8] = b"token_count";
/// Entries per read cache (tokens, user index, user-id bindings): all of a 10,000-user host's,
/// a few MiB; beyond that a cache starts over when full (see `cache`).
const READ_CACHE_ENTRIES: usize = 32 * 1024;

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

/// A record together with the exact bytes it was decoded from (the CAS witness).
#[derive(Clone, Debug)]
pub struct Versioned {
    pub rec: TokenRecord,
    raw: IVec,
}

pub struct Store {
    /// Tokens in the store, kept by create and delete and saved with every group commit.
    /// Counting a sled tree walks all of it (3 s for a million tokens on a cold cache), so the
    /// walk happens only for a store that has no saved count yet.
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
    audit: Arc<audit_log::AuditLog>,
    /// Read caches of `tokens`, `user_tokens` and `user_ids`, kept by `wrote`.
    token_cache: ReadCache,
    index_cache: ReadCache,
    user_id_cache: ReadCache,
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
    /// Open (or create) the store and start its flusher thread.
    pub fn open(path: &Path, cache_mib: u32) -> Result<Store, PidError> {
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        // sled is flushed only at the journal's checkpoints, from the checkpoint thread (and
        // here, before it starts): the journal makes each write durable, and sled 0.34 must
        // not flush from two threads at once.
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mib as u64 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                if e.to_string().contains("could not acquire lock") {
                    PidError::Startup(format!(
                        "the store {} is locked by another process: is another pid running \
                         with the same state_dir?",
                        path.display()
                    ))
                } else {
                    PidError::Startup(format!("cannot open store {}: {e}", path.display()))
                }
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get(SCHEMA_KEY)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = <[u8; 2]>::try_from(v.as_ref())
                    .map(u16::from_be_bytes)
                    .map_err(|_| {
                        PidError::Startup(format!(
                            "store {} has a damaged schema marker",
                            path.display()
                        ))
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(PidError::Startup(format!(
                        "store {} has schema {found}, written by a newer pi; this pid knows \
                         schema {SCHEMA_VERSION}. Install the newer pid or restore a backup.",
                        path.display()
                    )));
                }
            }
        }
        let tokens = db.open_tree("tokens")?;
        let user_tokens = db.open_tree("user_tokens")?;
        let auth_history = db.open_tree("auth_history")?;
        let user_ids = db.open_tree("user_ids")?;
        let machine_tokens = db.open_tree("machine_tokens")?;
        let audit_tree = db.open_tree("audit")?;
        let tree_of = |id: TreeId| match id {
            TreeId::Meta => &meta,
            TreeId::Tokens => &tokens,
            TreeId::UserTokens => &user_tokens,
            TreeId::AuthHistory => &auth_history,
            TreeId::UserIds => &user_ids,
            TreeId::MachineTokens => &machine_tokens,
            TreeId::Audit => &audit_tree,
        };
        let (journal, journal_file, replayed) = journal::open(
            &journal_dir(path),
            |id, key, value| {
                let tree = tree_of(id);
                match value {
                    Some(v) => tree.insert(key, v).map(drop),
                    None => tree.remove(key).map(drop),
                }
                .map_err(PidError::from)
            },
            || flush_durably(&db, path),
        )?;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "replayed the journal of an unclean stop"
            );
        }
        let journal = Arc::new(journal);
        let audit = Arc::new(audit_log::AuditLog::open(audit_tree)?);
        let saved = meta
            .get(TOKEN_COUNT_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes);
        let token_count = Arc::new(AtomicI64::new(match saved {
            Some(n) => n,
            None => tokens.len() as i64,
        }));
        // The schema marker (and a replayed journal) on disk before the flusher thread, the
        // only one that flushes from now on, starts.
        flush_durably(&db, path)?;
        let store = Store {
            tokens,
            user_tokens,
            auth_history,
            user_ids,
            machine_tokens,
            token_cache: ReadCache::new(READ_CACHE_ENTRIES),
            index_cache: ReadCache::new(READ_CACHE_ENTRIES),
            user_id_cache: ReadCache::new(READ_CACHE_ENTRIES),
            path: path.to_path_buf(),
            flusher: Flusher::spawn(
                db.clone(),
                path.to_path_buf(),
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wait until everything written so far is on disk (group commit).
    pub async fn durable(&self) -> Result<(), PidError> {
        self.flusher.durable().await
    }

    pub fn get_token(&self, serial: &str) -> Result<Option<Versioned>, PidError> {
        self.token_cache
            .get(&self.tokens, serial.as_bytes())?
            .map(decode_token)
            .transpose()
    }

    pub fn token_exists(&self, serial: &str) -> Result<bool, PidError> {
        Ok(self.tokens.contains_key(serial.as_bytes())?)
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
        match self.index_cache.get(&self.user_tokens, &user_key(owner))? {
            Some(raw) => Ok(decode_value(&raw)?),
            None => Ok(Vec::new()),
        }
    }

    /// The id of the person this user's tokens belong to, if recorded.
    pub fn bound_user_id(&self, owner: &Owner) -> Result<Option<String>, PidError> {
        match self.user_id_cache.get(&self.user_ids, &user_key(owner))? {
            Some(raw) => Ok(Some(String::from_utf8_lossy(&raw).into_owned())),
            None => Ok(None),
        }
    }

    /// Record whose tokens this user's are. Durable with the next group commit.
    pub fn bind_user_id(&self, owner: &Owner, id: &str) -> Result<(), PidError> {
        let key = user_key(owner);
        self.journal.write(|r| {
            self.user_ids.insert(&key, id.as_bytes())?;
            self.wrote(r, TreeId::UserIds, &key, Some(id.as_bytes()));
            Ok(())
        })
    }

    /// The user's recent login outcomes.
    pub fn auth_history(&self, owner: &Owner) -> Result<AuthHistory, PidError> {
        match self.auth_history.get(user_key(owner))? {
            Some(raw) => Ok(decode_value(&raw)?),
            None => Ok(AuthHistory::default()),
        }
    }

    /// Add one login outcome atomically (concurrent logins of one user do not lose entries),
    /// keeping what `keep` says is still needed. Durable with the next group commit, like the
    /// token update of the same login.
    pub fn record_auth(
        &self,
        owner: &Owner,
        at: i64,
        success: bool,
        keep: HistoryKeep,
    ) -> Result<(), PidError> {
        let mut failure = None;
        let key = user_key(owner);
        self.journal.write(|r| {
            let new = self.auth_history.update_and_fetch(&key, |old| {
                let mut h: AuthHistory = old.and_then(|b| decode_value(b).ok()).unwrap_or_default();
                h.add(at, success, keep);
                match encode_value(&h) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        failure = Some(e);
                        old.map(<[u8]>::to_vec)
                    }
                }
            })?;
            self.wrote(r, TreeId::AuthHistory, &key, new.as_deref());
            Ok(())
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Insert a new token; `AlreadyExists` if the serial is taken.
    pub fn create_token(&self, rec: &TokenRecord) -> Result<(), PidError> {
        let bytes = encode_value(rec)?;
        let result = self.journal.write(|r| {
            let result = (&self.tokens, &self.user_tokens).transaction(|(t, u)| {
                if t.get(rec.serial.as_bytes())?.is_some() {
                    return Err(Abort::Exists.into());
                }
                t.insert(rec.serial.as_bytes(), bytes.as_slice())?;
                if let Some(owner) = &rec.owner {
                    index_update(u, owner, &rec.serial, true)?;
                }
                Ok(())
            });
            if result.is_ok() {
                self.wrote(r, TreeId::Tokens, rec.serial.as_bytes(), Some(&bytes));
                self.journal_index(r, rec.owner.iter())?;
            }
            Ok(result)
        })?;
        match result {
            Ok(()) => {
                self.token_count.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(PidError::Corrupt(e)),
            Err(TransactionError::Abort(_)) => Err(PidError::AlreadyExists(format!(
                "a token with serial {} already exists; choose another --serial or omit it",
                rec.serial
            ))),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Replace (`Some`) or delete (`None`) tokens, all or nothing, provided none changed since
    /// it was read. Keeps the user index in step with owners.
    pub fn swap_tokens(
        &self,
        changes: &[(&Versioned, Option<&TokenRecord>)],
    ) -> Result<Swap, PidError> {
        let encoded: Vec<Option<Vec<u8>>> = changes
            .iter()
            .map(|(_, new)| new.map(encode_value).transpose())
            .collect::<Result<_, _>>()?;
        // Fast path for the login hot path: one token, owner unchanged → one CAS, no transaction.
        if let [(old, Some(new))] = changes {
            if old.rec.owner == new.owner && old.rec.serial == new.serial {
                let key = old.rec.serial.as_bytes();
                let new_bytes = encoded[0].as_deref();
                return self.journal.write(|r| {
                    Ok(
                        match self
                            .tokens
                            .compare_and_swap(key, Some(&old.raw), new_bytes)?
                        {
                            Ok(()) => {
                                self.wrote(r, TreeId::Tokens, key, new_bytes);
                                Swap::Done
                            }
                            Err(e) => {
                                // Another writer came first. Refresh the cache with what sled
                                // holds, so the retry reads it (should the cache ever disagree
                                // with sled, a conflict heals it instead of repeating).
                                self.token_cache.store(key, e.current.as_deref());
                                Swap::Conflict
                            }
                        },
                    )
                });
            }
        }
        let result = self.journal.write(|r| {
            let result = (&self.tokens, &self.user_tokens).transaction(|(t, u)| {
                for ((old, new), bytes) in changes.iter().zip(&encoded) {
                    let key = old.rec.serial.as_bytes();
                    if t.get(key)?.as_ref() != Some(&old.raw) {
                        return Err(Abort::Conflict.into());
                    }
                    match bytes {
                        Some(b) => {
                            t.insert(key, b.as_slice())?;
                        }
                        None => {
                            t.remove(key)?;
                        }
                    }
                    let new_owner = new.and_then(|n| n.owner.as_ref());
                    if old.rec.owner.as_ref() != new_owner {
                        if let Some(o) = &old.rec.owner {
                            index_update(u, o, &old.rec.serial, false)?;
                        }
                        if let Some(o) = new_owner {
                            index_update(u, o, &old.rec.serial, true)?;
                        }
                    }
                }
                Ok(())
            });
            if result.is_ok() {
                for ((old, _), bytes) in changes.iter().zip(&encoded) {
                    self.wrote(
                        r,
                        TreeId::Tokens,
                        old.rec.serial.as_bytes(),
                        bytes.as_deref(),
                    );
                }
                let owners = changes
                    .iter()
                    .flat_map(|(old, new)| {
                        [old.rec.owner.as_ref(), new.and_then(|n| n.owner.as_ref())]
                    })
                    .flatten();
                self.journal_index(r, owners)?;
            } else {
                // As on the fast path: the retry reads what sled holds.
                for (old, _) in changes {
                    let key = old.rec.serial.as_bytes();
                    self.token_cache
                        .store(key, self.tokens.get(key)?.as_deref());
                }
            }
            Ok(result)
        })?;
        match result {
            Ok(()) => {
                let deleted = changes.iter().filter(|(_, new)| new.is_none()).count();
                self.token_count
                    .fetch_sub(deleted as i64, Ordering::Relaxed);
                Ok(Swap::Done)
            }
            Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(PidError::Corrupt(e)),
            Err(TransactionError::Abort(_)) => Ok(Swap::Conflict),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Tokens ordered by serial, starting after `after`.
    /// Every token assigned to a user of `realm` (the user index's keys start with the realm),
    /// at most `limit`.
    pub fn tokens_in_realm(&self, realm: &str, limit: usize) -> Result<Vec<Versioned>, PidError> {
        let mut prefix = realm.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.user_tokens.scan_prefix(&prefix) {
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
                let range = match after {
                    Some(a) => self.tokens.range::<&[u8], _>((
                        std::ops::Bound::Excluded(a.as_bytes()),
                        std::ops::Bound::Unbounded,
                    )),
                    None => self.tokens.iter(),
                };
                for item in range {
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

    /// Note the user index entries of `owners` as they are now (inside `journal.write`, so no
    /// other write can change them in between).
    fn journal_index<'o>(
        &self,
        r: &mut Record<'_>,
        owners: impl Iterator<Item = &'o Owner>,
    ) -> Result<(), PidError> {
        for owner in owners {
            let key = user_key(owner);
            let now = self.user_tokens.get(&key)?;
            self.wrote(r, TreeId::UserTokens, &key, now.as_deref());
        }
        Ok(())
    }

    /// `key` now holds `value` (or is gone) in `tree`: note it in the journal record and in the
    /// tree's read cache. Every store write calls this inside `journal.write`, right after
    /// changing sled, which is what keeps the caches coherent (see `cache`).
    fn wrote(&self, r: &mut Record<'_>, tree: TreeId, key: &[u8], value: Option<&[u8]>) {
        r.set(tree, key, value);
        let cache = match tree {
            TreeId::Tokens => &self.token_cache,
            TreeId::UserTokens => &self.index_cache,
            TreeId::UserIds => &self.user_id_cache,
            TreeId::Meta | TreeId::AuthHistory | TreeId::MachineTokens | TreeId::Audit => return,
        };
        cache.store(key, value);
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
}

fn decode_token(raw: IVec) -> Result<Versioned, PidError> {
    let rec: TokenRecord = decode_value(&raw)?;
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

/// Why a store transaction gave up.
enum Abort {
    /// The serial is taken.
    Exists,
    /// A token changed since it was read.
    Conflict,
    /// A stored value does not decode.
    Corrupt(String),
}

impl From<Abort> for ConflictableTransactionError<Abort> {
    fn from(a: Abort) -> Self {
        ConflictableTransactionError::Abort(a)
    }
}

/// Add or remove a serial in a user's index entry, inside a transaction.
fn index_update(
    u: &sled::transaction::TransactionalTree,
    owner: &Owner,
    serial: &str,
    add: bool,
) -> Result<(), ConflictableTransactionError<Abort>> {
    let key = user_key(owner);
    let mut serials: Vec<String> = match u.get(&key)? {
        Some(raw) => decode_value(&raw).map_err(|e| Abort::Corrupt(e.to_string()))?,
        None => Vec::new(),
    };
    serials.retain(|s| s != serial);
    if add {
        serials.push(serial.to_owned());
        serials.sort();
    }
    if serials.is_empty() {
        u.remove(key)?;
    } else {
        let bytes = encode_value(&serials).map_err(|e| Abort::Corrupt(e.to_string()))?;
        u.insert(key, bytes)?;
    }
    Ok(())
}

/// Make everything written to sled so far survive a power cut. `sled::Db::flush` alone is
/// not enough: on Linux it ends with `sync_file_range`, which writes the pages but neither
/// the file's metadata nor the disk's volatile write cache; only sled's own periodic thread
/// (which pid turns off) adds an `fsync`. So flush, then `fsync` sled's log file ourselves.
fn flush_durably(db: &sled::Db, dir: &Path) -> Result<(), PidError> {
    db.flush()?;
    let log = dir.join("db");
    std::fs::File::open(&log)
        .and_then(|f| f.sync_all())
        .map_err(|e| PidError::Internal(format!("cannot sync {}: {e}", log.display())))
}

/// The journal lives beside the sled directory: `<state_dir>/db.journal` for `<state_dir>/db`.
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
        .map_err(|e| PidError::Startup(format!("cannot create {}: {e}", dir.display())))
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
    fn a_conflict_makes_the_next_read_see_what_sled_holds() {
        let (_dir, store, rec) = store_with_token("T2");
        let cached = store.get_token("T2").unwrap().unwrap();
        // A write that bypassed the cache (which no code path does): the cache is now stale.
        let mut behind = rec.clone();
        behind.count = 9;
        store
            .tokens
            .insert("T2", encode_value(&behind).unwrap())
            .unwrap();
        assert_eq!(store.get_token("T2").unwrap().unwrap().rec.count, 0);
        let mut next = cached.rec.clone();
        next.count = 1;
        assert_eq!(
            store.swap_tokens(&[(&cached, Some(&next))]).unwrap(),
            Swap::Conflict
        );
        assert_eq!(store.get_token("T2").unwrap().unwrap().rec.count, 9);
    }

    #[test]
    fn deleting_a_token_empties_the_cached_user_index_and_token() {
        let (_dir, store, rec) = store_with_token("T3");
        let owner = rec.owner.clone().unwrap();
        let v = store.get_token("T3").unwrap().unwrap();
        assert_eq!(store.serials_of(&owner).unwrap(), ["T3"]);
        assert_eq!(store.swap_tokens(&[(&v, None)]).unwrap(), Swap::Done);
        assert!(store.get_token("T3").unwrap().is_none());
        assert!(store.serials_of(&owner).unwrap().is_empty());
        assert!(store.tokens_of(&owner).unwrap().is_empty());
    }
}
