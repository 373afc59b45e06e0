//! argon2's working memory, kept between PIN hashes and wiped after each one.
//!
//! Every PIN hash fills `argon2.memory_kib` of memory (19 MiB by default, 64 MiB at
//! privacyIDEA's cost). Allocated per hash, it is faulted in and zeroed by the kernel each time;
//! reused, two cores check 3–10% more PINs per second (default cost, 2-vCPU VM).
//!
//! Threat: the blocks are derived from the PIN, the first ones by one Blake2b hash of the PIN
//! and the salt, so blocks left in memory let whoever reads the daemon's memory test PIN
//! guesses at Blake2b speed instead of argon2's. A freed buffer that glibc keeps in its heap
//! (below its mmap threshold, as the default 19 MiB is after the first hash) would stay there
//! unwiped. So every buffer is wiped as soon as its hash is done, before it goes back to
//! the pool or is freed; and spare buffers are freed when a minute passes without a PIN hash
//! (`release_idle`), so an idle daemon does not hold them.
//!
//! New buffers are advised onto transparent huge pages before their first write: argon2 reads
//! them at pseudo-random places, and on 4 KiB pages nearly every such read also misses the TLB
//! (huge pages: +7–13% PIN logins/s on a 2-vCPU VM).

/// The block the PIN hash fills: the `argon2` crate's, or the interleaved fill's (the
/// `interleaved-argon2` feature); the same 1 KiB either way.
#[cfg(feature = "interleaved-argon2")]
pub use crate::argon2_hash::Block;
#[cfg(not(feature = "interleaved-argon2"))]
pub use argon2::Block;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use zeroize::Zeroize;

#[derive(Default)]
pub struct Argon2Memory {
    /// Wiped buffers. At most as many as hashes ran at once (bounded by the argon2 slots).
    spare: Mutex<Vec<Vec<Block>>>,
    /// A hash started since the last `release_idle`.
    used: AtomicBool,
}

/// Memory for one hash; wiped, and returned to the pool, when dropped.
pub struct Lease<'a> {
    pool: &'a Argon2Memory,
    blocks: Vec<Block>,
}

impl Argon2Memory {
    /// At least `block_count` blocks (one per KiB of `memory_kib`), contents unspecified but
    /// never another hash's: argon2 writes every block before reading it.
    pub fn take(&self, block_count: usize) -> Lease<'_> {
        self.used.store(true, Ordering::Relaxed);
        let blocks = match self.spare().pop() {
            Some(blocks) if blocks.len() >= block_count => blocks,
            // None spare, or a smaller one (a PIN hashed under a higher cost than the
            // configured one): a new buffer of the size needed; the small one (wiped) is freed.
            _ => {
                // Advised before the first write faults the pages in: the kernel chooses the
                // page size then.
                let mut blocks = Vec::with_capacity(block_count);
                crate::sys::prefer_huge_pages(blocks.spare_capacity_mut());
                blocks.resize(block_count, Block::default());
                blocks
            }
        };
        Lease { pool: self, blocks }
    }

    /// Free the spare buffers if no hash started since the last call, and hand the freed heap
    /// back to the system. Returns how many buffers were freed. Call it every minute or so.
    pub fn release_idle(&self) -> usize {
        if self.used.swap(false, Ordering::Relaxed) {
            return 0;
        }
        let freed = std::mem::take(&mut *self.spare());
        let count = freed.len();
        drop(freed);
        if count > 0 {
            crate::sys::release_freed_memory();
        }
        count
    }

    fn spare(&self) -> MutexGuard<'_, Vec<Vec<Block>>> {
        // Buffers are pushed and popped whole: a poisoned lock still holds only wiped buffers.
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        &self.blocks
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut [Block] {
        &mut self.blocks
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // Wiped here, on every path out of a hash (an error or a panic unwinding included).
        self.blocks.iter_mut().for_each(Zeroize::zeroize);
        let blocks = std::mem::take(&mut self.blocks);
        self.pool.spare().push(blocks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(word: u64) -> Block {
        let mut block = Block::default();
        block.as_mut().fill(word);
        block
    }

    fn is_zero(b: &Block) -> bool {
        b.as_ref().iter().all(|w| *w == 0)
    }

    #[test]
    fn a_returned_buffer_is_wiped_and_reused() {
        let pool = Argon2Memory::default();
        let mut lease = pool.take(4);
        let addr = lease.as_ptr();
        lease.fill(block_of(0xA5));
        drop(lease);
        let again = pool.take(4);
        assert_eq!(again.as_ptr(), addr, "the same buffer came back");
        assert!(
            again.iter().all(is_zero),
            "and nothing of the last hash is left in it"
        );
    }

    #[test]
    fn a_bigger_hash_gets_a_bigger_buffer_and_concurrent_hashes_get_their_own() {
        let pool = Argon2Memory::default();
        let a = pool.take(4);
        let b = pool.take(4);
        assert_ne!(a.as_ptr(), b.as_ptr());
        drop((a, b));
        assert!(pool.take(8).len() >= 8);
        assert!(pool.take(2).len() >= 2);
    }

    /// Huge pages spare most of the TLB misses of argon2's random reads (+13% PIN logins/s at
    /// privacyIDEA's cost on a 2-vCPU VM).
    #[test]
    fn a_new_buffer_is_backed_by_huge_pages_unless_the_system_disables_them() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let pool = Argon2Memory::default();
        // 40 MiB: above glibc's largest mmap threshold (32 MiB), so always a fresh mapping.
        // Smaller buffers may come from malloc's heap, where pages already used stay small.
        let lease = pool.take(40 * 1024);
        let buffer = lease.as_ptr_range();
        let buffer = buffer.start as usize..buffer.end as usize;
        // The advice splits the mapping: sum over every mapping that overlaps the buffer.
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let (mut overlaps, mut huge_kib) = (false, 0u64);
        for line in smaps.lines() {
            let range = line.split_once(' ').and_then(|(r, _)| r.split_once('-'));
            if let Some((Ok(from), Ok(to))) =
                range.map(|(f, t)| (usize::from_str_radix(f, 16), usize::from_str_radix(t, 16)))
            {
                overlaps = from < buffer.end && buffer.start < to;
            } else if let Some(kib) = line.strip_prefix("AnonHugePages:").filter(|_| overlaps) {
                huge_kib += kib.trim().trim_end_matches(" kB").parse::<u64>().unwrap();
            }
        }
        if thp.contains("[never]") {
            assert_eq!(huge_kib, 0, "THP is off on this system");
        } else {
            // 40 MiB holds at least 19 whole 2 MiB pages wherever it starts.
            assert!(
                huge_kib >= 19 * 2048,
                "{huge_kib} KiB on huge pages (THP: {thp})"
            );
        }
    }

    #[test]
    fn spare_buffers_are_freed_after_a_quiet_round_only() {
        let pool = Argon2Memory::default();
        drop((pool.take(4), pool.take(4)));
        assert_eq!(pool.release_idle(), 0, "hashes ran in this round: kept");
        assert_eq!(pool.release_idle(), 2, "a quiet round: freed");
        assert_eq!(pool.release_idle(), 0);
        assert_eq!(pool.spare().len(), 0);
    }
}
