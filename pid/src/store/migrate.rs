//! Bringing a store an earlier pi kept in sled (`state_dir/db/`, a directory) over to redb
//! (`state_dir/db.redb`), once, at the first start of a pid that has redb.
//!
//! Invariants:
//! - Nothing is lost on a crash: the copy goes to `db.redb.migrating`, which is renamed to
//!   `db.redb` only once it holds every tree and is synced; until then the sled store is
//!   untouched and the next start copies again from scratch.
//! - The journal is not part of the copy: records sled had not yet checkpointed stay in
//!   `db.journal/` and are replayed over the copy like after any unclean stop, which ends at the
//!   newest value of every key (replaying a value redb already has is harmless).
//! - The sled directory is kept, renamed `db.sled-migrated`, so an administrator can go back to
//!   the older pid; it is never read again.

use super::journal::TreeId;
use super::kv::{open_database, table};
use super::paced_file::Pacing;
use crate::error::PidError;
use std::path::{Path, PathBuf};

/// Writes per redb transaction while copying (a transaction's dirty pages are held in memory).
const COPY_BATCH: usize = 20_000;

/// Whether `base` is a sled store directory (sled keeps its configuration in `conf`).
pub fn is_sled_store(base: &Path) -> bool {
    base.is_dir() && base.join("conf").is_file()
}

fn migrating_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_os_string();
    name.push(".migrating");
    PathBuf::from(name)
}

fn kept_sled_path(base: &Path) -> PathBuf {
    base.with_extension("sled-migrated")
}

/// Why the sled store was not brought over.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The copy failed: nothing changed, the next start copies again.
    #[error(
        "cannot migrate the sled store {} to {}; the sled store is unchanged",
        from.display(),
        to.display()
    )]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: CopyFailure,
    },
    /// The copy is in place and used from now on, but the sled store could not be renamed.
    #[error(
        "migrated the store to {} but cannot move the old sled store {} aside",
        to.display(),
        from.display()
    )]
    KeepOld {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The step of the copy that failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyFailure {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Redb(#[from] redb::Error),
    #[error("cannot {action} {}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn from_sled(base: &Path, target: &Path, cache_mib: u32) -> Result<(), PidError> {
    tracing::warn!(
        from = %base.display(),
        to = %target.display(),
        "migrating the token store from sled to redb (once; the sled directory is kept)"
    );
    let failed = |source| {
        PidError::from(MigrateError::Copy {
            from: base.to_path_buf(),
            to: target.to_path_buf(),
            source,
        })
    };
    let copied = copy(base, target, cache_mib).map_err(failed)?;
    let kept = kept_sled_path(base);
    std::fs::rename(base, &kept).map_err(|source| MigrateError::KeepOld {
        from: base.to_path_buf(),
        to: target.to_path_buf(),
        source,
    })?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed(file_failure("sync", dir)(e)))?;
    }
    tracing::warn!(
        entries = copied,
        kept = %kept.display(),
        "store migrated to redb; the old sled store may be deleted once this pid is trusted"
    );
    Ok(())
}

/// `action` on `path` failed.
fn file_failure(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CopyFailure {
    let path = path.to_path_buf();
    move |source| CopyFailure::File {
        action,
        path,
        source,
    }
}

/// Copy every tree of the sled store at `base` into a new redb file, synced and renamed to
/// `target`. Returns how many entries were copied.
fn copy(base: &Path, target: &Path, cache_mib: u32) -> Result<u64, CopyFailure> {
    let sled_db = sled::Config::new()
        .path(base)
        .cache_capacity(cache_mib as u64 * 1024 * 1024)
        .open()?;
    let partial = migrating_path(target);
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_failure("remove", &partial)(e)),
    }
    // A one-time bulk copy: nobody's login waits behind its commits.
    let db = open_database(&partial, cache_mib, Pacing::new(false)).map_err(redb::Error::from)?;
    let mut copied = 0u64;
    for id in TreeId::ALL {
        let tree = sled_db.open_tree(id.name())?;
        let mut items = tree.iter().peekable();
        while items.peek().is_some() {
            let tx = db.begin_write().map_err(redb::Error::from)?;
            {
                let mut table = tx.open_table(table(id)).map_err(redb::Error::from)?;
                for item in items.by_ref().take(COPY_BATCH) {
                    let (k, v) = item?;
                    table.insert(&*k, &*v).map_err(redb::Error::from)?;
                    copied += 1;
                }
            }
            tx.commit().map_err(redb::Error::from)?;
        }
    }
    drop(db);
    drop(sled_db);
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(file_failure("sync", &partial))?;
    std::fs::rename(&partial, target).map_err(file_failure("rename", &partial))?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::super::{Owner, Store};
    use super::*;
    use crate::tokens::hotp::tests::record;
    use protocol::frame::encode_value;
    use protocol::{HashAlgorithm, TokenType};

    /// A sled store laid out as the pid before redb wrote it: a token, its user index entry
    /// and the schema marker.
    fn old_store(base: &Path) -> super::super::TokenRecord {
        let mut rec = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
        rec.serial = "OLD1".into();
        rec.count = 7;
        let owner = Owner {
            realm: "r".into(),
            login: "alice".into(),
        };
        rec.owner = Some(owner);
        // Without its flusher thread sled lets go of the store's file lock when `db` is
        // dropped, not a moment later, so the migration below never finds it still held.
        let db = sled::Config::new()
            .path(base)
            .flush_every_ms(None)
            .open()
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(b"schema", &1u16.to_be_bytes())
            .unwrap();
        db.open_tree("tokens")
            .unwrap()
            .insert(b"OLD1", encode_value(&rec).unwrap())
            .unwrap();
        db.open_tree("user_tokens")
            .unwrap()
            .insert(
                b"r\0alice",
                encode_value(&vec!["OLD1".to_string()]).unwrap(),
            )
            .unwrap();
        db.flush().unwrap();
        rec
    }

    #[test]
    fn a_sled_store_is_copied_once_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("db");
        let rec = old_store(&base);
        // A copy cut short by a crash earlier is started again, not trusted.
        std::fs::write(migrating_path(&base.with_extension("redb")), b"torn").unwrap();
        {
            let store = Store::open(&base, 4).unwrap();
            let owner = rec.owner.clone().unwrap();
            let mine = store.tokens_of(&owner).unwrap();
            assert_eq!(mine.len(), 1);
            assert_eq!(mine[0].rec.count, 7);
            assert_eq!(store.count_tokens(), 1);
        }
        assert!(!base.exists(), "the sled directory is moved aside");
        assert!(kept_sled_path(&base).join("conf").is_file());
        assert!(!migrating_path(&base.with_extension("redb")).exists());
        // The second start opens redb and does not migrate again.
        let store = Store::open(&base, 4).unwrap();
        assert_eq!(store.count_tokens(), 1);
    }

    #[test]
    fn journal_records_sled_had_not_checkpointed_are_replayed_over_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("db");
        let mut rec = old_store(&base);
        // The old pid accepted an OTP (count 7 → 8) and died before its checkpoint: the
        // advance is only in the journal.
        rec.count = 8;
        let bytes = encode_value(&rec).unwrap();
        let (journal, mut file, _) = super::super::journal::open(
            &super::super::journal_dir(&base),
            |_, _, _| Ok(()),
            || Ok(()),
        )
        .unwrap();
        journal
            .write(|r| {
                r.set(TreeId::Tokens, b"OLD1", Some(&bytes));
                Ok(())
            })
            .unwrap();
        file.commit(&journal).unwrap();
        drop((journal, file));
        let store = Store::open(&base, 4).unwrap();
        assert_eq!(
            store.get_token("OLD1").unwrap().unwrap().rec.count,
            8,
            "a spent OTP stays spent across the migration"
        );
    }

    #[test]
    fn a_plain_directory_is_not_taken_for_a_sled_store() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_sled_store(dir.path()));
        assert!(!is_sled_store(&dir.path().join("missing")));
    }
}
