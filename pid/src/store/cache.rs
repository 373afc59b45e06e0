//! A bounded read cache in front of one sled tree, for the three point reads every login makes
//! (the user's index entry, the user-id binding, each token). A hit is a hash lookup instead of
//! a walk down sled's B-tree under an epoch guard (~15% of the daemon's CPU per login before).
//!
//! Coherence invariant: the cache never holds a value sled no longer has.
//! - Writers update it inside `Journal::write`, right after their sled write and under the same
//!   lock, with exactly the value sled now holds (`store`).
//! - A reader that missed loads from sled outside any lock, so a write may land between its
//!   sled read and its insert. Every `store` bumps a generation under the cache's lock; the
//!   reader inserts only if the generation is still the one it saw before reading sled.
//!
//! When full the cache is emptied rather than tracked for recency: at most `cap` entries, and a
//! host with more active users than that simply reads sled as before.

use sled::{IVec, Tree};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub struct ReadCache {
    inner: Mutex<Inner>,
    cap: usize,
}

struct Inner {
    generation: u64,
    /// `None` caches "no such key".
    map: HashMap<Box<[u8]>, Option<IVec>>,
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

    /// The value of `key` in `tree`, from the cache or read (and remembered) from sled.
    pub fn get(&self, tree: &Tree, key: &[u8]) -> sled::Result<Option<IVec>> {
        match self.lookup(key) {
            Ok(hit) => Ok(hit),
            Err(seen) => {
                let value = tree.get(key)?;
                self.remember(key, seen, &value);
                Ok(value)
            }
        }
    }

    /// A hit, or the generation to hand to `remember` after reading sled.
    fn lookup(&self, key: &[u8]) -> Result<Option<IVec>, u64> {
        let inner = self.lock();
        match inner.map.get(key) {
            Some(v) => Ok(v.clone()),
            None => Err(inner.generation),
        }
    }

    /// Keep what a reader loaded from sled, unless a write came after generation `seen`.
    fn remember(&self, key: &[u8], seen: u64, value: &Option<IVec>) {
        let mut inner = self.lock();
        if inner.generation == seen {
            if inner.map.len() >= self.cap {
                inner.map.clear();
            }
            inner.map.insert(key.into(), value.clone());
        }
    }

    /// `key` now holds `value` in sled. Call inside `Journal::write`, after the sled write.
    pub fn store(&self, key: &[u8], value: Option<&[u8]>) {
        let mut inner = self.lock();
        inner.generation += 1;
        if inner.map.len() >= self.cap {
            inner.map.clear();
        }
        inner.map.insert(key.into(), value.map(IVec::from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let t = db.open_tree("t").unwrap();
        (dir, t)
    }

    #[test]
    fn reads_come_from_sled_once_and_writes_are_seen_at_once() {
        let (_dir, t) = tree();
        let cache = ReadCache::new(10);
        t.insert(b"k", b"v1").unwrap();
        assert_eq!(cache.get(&t, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
        // Changed behind the cache's back: a hit proves the value came from the cache.
        t.insert(b"k", b"behind").unwrap();
        assert_eq!(cache.get(&t, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
        t.insert(b"k", b"v2").unwrap();
        cache.store(b"k", Some(b"v2"));
        assert_eq!(cache.get(&t, b"k").unwrap().as_deref(), Some(&b"v2"[..]));
        t.remove(b"k").unwrap();
        cache.store(b"k", None);
        assert_eq!(cache.get(&t, b"k").unwrap(), None);
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_remembered() {
        let (_dir, t) = tree();
        let cache = ReadCache::new(10);
        t.insert(b"k", b"old").unwrap();
        cache.store(b"other", None); // some unrelated write first: generations are global
                                     // A reader misses and reads "old" from sled; before it remembers that, a writer
                                     // stores "new" (in sled, then in the cache) and the cache is emptied by pressure.
        let seen = cache.lookup(b"k").unwrap_err();
        let stale = t.get(b"k").unwrap();
        t.insert(b"k", b"new").unwrap();
        cache.store(b"k", Some(b"new"));
        cache.lock().map.clear();
        cache.remember(b"k", seen, &stale);
        assert_eq!(cache.get(&t, b"k").unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let (_dir, t) = tree();
        let cache = ReadCache::new(3);
        for i in 0u8..10 {
            t.insert([i], &[i]).unwrap();
            cache.get(&t, &[i]).unwrap();
            assert!(cache.lock().map.len() <= 3);
        }
        assert_eq!(cache.get(&t, &[9]).unwrap().as_deref(), Some(&[9u8][..]));
    }
}
