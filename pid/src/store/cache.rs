//! A bounded read cache in front of one tree, for the three point reads every login makes (the
//! user's index entry, the user-id binding, each token). A hit is a hash lookup instead of an
//! overlay look-up and a walk down the B-tree (with sled, ~15% of the daemon's CPU per login).
//!
//! Coherence invariant: the cache never holds a value the tree no longer has.
//! - Writers update it inside `Journal::write`, right after their tree write and under the same
//!   lock, with exactly the value the tree now holds (`store`).
//! - A reader that missed loads from the tree outside any lock, so a write may land between its
//!   read and its insert. Every `store` bumps a generation under the cache's lock; the reader
//!   inserts only if the generation is still the one it saw before reading the tree.
//!
//! When full the cache is emptied rather than tracked for recency: at most `cap` entries, and a
//! host with more active users than that simply reads the tree as before.

use super::kv::{Bytes, Tree};
use crate::error::PidError;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub struct ReadCache {
    inner: Mutex<Inner>,
    cap: usize,
}

struct Inner {
    generation: u64,
    /// `None` caches "no such key".
    map: HashMap<Box<[u8]>, Option<Bytes>>,
}

impl ReadCache {
    pub fn new(cap: usize) -> ReadCache {
        ReadCache {
            inner: Mutex::new(Inner {
                generation: 0,
                map: HashMap::new(),
            }),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is a single map operation: a panic cannot leave it half done.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key` in `tree`, from the cache or read (and remembered) from the tree.
    pub fn get(&self, tree: &Tree, key: &[u8]) -> Result<Option<Bytes>, PidError> {
        match self.lookup(key) {
            Ok(hit) => Ok(hit),
            Err(seen) => {
                let value = tree.get(key)?;
                self.remember(key, seen, &value);
                Ok(value)
            }
        }
    }

    /// A hit, or the generation to hand to `remember` after reading the tree.
    fn lookup(&self, key: &[u8]) -> Result<Option<Bytes>, u64> {
        let inner = self.lock();
        match inner.map.get(key) {
            Some(v) => Ok(v.clone()),
            None => Err(inner.generation),
        }
    }

    /// Keep what a reader loaded from the tree, unless a write came after generation `seen`.
    fn remember(&self, key: &[u8], seen: u64, value: &Option<Bytes>) {
        let mut inner = self.lock();
        if inner.generation == seen {
            if inner.map.len() >= self.cap {
                inner.map.clear();
            }
            inner.map.insert(key.into(), value.clone());
        }
    }

    /// `key` now holds `value` in the tree. Call inside `Journal::write`, after the tree write.
    pub fn store(&self, key: &[u8], value: Option<&[u8]>) {
        let mut inner = self.lock();
        inner.generation += 1;
        if inner.map.len() >= self.cap {
            inner.map.clear();
        }
        inner.map.insert(key.into(), value.map(Bytes::from));
    }
}

#[cfg(test)]
mod tests {
    use super::super::journal::{Journal, TreeId};
    use super::super::kv::Kv;
    use super::*;
    use std::sync::Arc;

    /// A tree, and a way to write it behind the cache's back.
    struct Fixture {
        _dir: tempfile::TempDir,
        journal: Journal,
        t: Tree,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let kv = Arc::new(Kv::open(&dir.path().join("t.redb"), 1).unwrap());
            Fixture {
                _dir: dir,
                journal: Journal::new(),
                t: kv.tree(TreeId::Tokens),
            }
        }

        fn set(&self, key: &[u8], value: Option<&[u8]>) {
            self.journal
                .write(|r| {
                    self.t.set(r, key, value);
                    Ok(())
                })
                .unwrap();
        }
    }

    #[test]
    fn reads_come_from_the_tree_once_and_writes_are_seen_at_once() {
        let f = Fixture::new();
        let cache = ReadCache::new(10);
        f.set(b"k", Some(b"v1"));
        assert_eq!(cache.get(&f.t, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
        // Changed behind the cache's back: a hit proves the value came from the cache.
        f.set(b"k", Some(b"behind"));
        assert_eq!(cache.get(&f.t, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
        f.set(b"k", Some(b"v2"));
        cache.store(b"k", Some(b"v2"));
        assert_eq!(cache.get(&f.t, b"k").unwrap().as_deref(), Some(&b"v2"[..]));
        f.set(b"k", None);
        cache.store(b"k", None);
        assert_eq!(cache.get(&f.t, b"k").unwrap(), None);
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_remembered() {
        let f = Fixture::new();
        let cache = ReadCache::new(10);
        f.set(b"k", Some(b"old"));
        // Some unrelated write first: generations are global.
        cache.store(b"other", None);
        // A reader misses and reads "old" from the tree; before it remembers that, a writer
        // stores "new" (in the tree, then in the cache) and the cache is emptied by pressure.
        let seen = cache.lookup(b"k").unwrap_err();
        let stale = f.t.get(b"k").unwrap();
        f.set(b"k", Some(b"new"));
        cache.store(b"k", Some(b"new"));
        cache.lock().map.clear();
        cache.remember(b"k", seen, &stale);
        assert_eq!(cache.get(&f.t, b"k").unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let f = Fixture::new();
        let cache = ReadCache::new(3);
        for i in 0u8..10 {
            f.set(&[i], Some(&[i]));
            cache.get(&f.t, &[i]).unwrap();
            assert!(cache.lock().map.len() <= 3);
        }
        assert_eq!(cache.get(&f.t, &[9]).unwrap().as_deref(), Some(&[9u8][..]));
    }
}
