//! Process hardening and housekeeping. Apart from argon2_hash.rs (CPU feature dispatch and
//! prefetch hints), the only `unsafe` in the daemon is here: calls into glibc that nix and
//! rustix (as configured) do not wrap, and taking ownership of the socket systemd passes.

/// Threat: a core dump of the daemon would contain decrypted OTP keys and PINs in transit.
pub fn disable_core_dumps() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not disable core dumps (PR_SET_DUMPABLE)");
    }
}

/// Give the heap memory that malloc holds on to after a burst of frees back to the system.
///
/// Why: a checkpoint of a bulk import or of a journal replay frees tens of MiB (the overlay,
/// redb's copies of the pages it changed) in small blocks, and glibc returns freed memory only
/// from the top of each arena; the rest stays in the daemon's RSS until it restarts (a
/// million-token `pictl import`: 126 MiB afterwards, 64 MiB once trimmed).
/// `malloc_trim(0)` also releases the whole free pages inside the arenas. It walks malloc's
/// free lists with each arena locked in turn (7.6 ms after that import), so callers run it once
/// a burst is over, not after every step of it. Elsewhere than glibc it does nothing.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim takes no pointers, touches only malloc's own state and takes the
        // arena locks itself (glibc documents it MT-safe).
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) } == 1;
        tracing::debug!(
            released,
            took_us = started.elapsed().as_micros() as u64,
            "freed heap handed back to the system"
        );
    }
}

/// Ask the kernel to back a big buffer with transparent huge pages (where the system's THP
/// setting is `madvise`, as on Debian; with `always` it already does, with `never` it won't).
///
/// Why: argon2 reads its working memory (64 MiB at privacyIDEA's cost) at pseudo-random
/// places; on 4 KiB pages nearly every such read also misses the TLB. Call it before the
/// buffer is first written: the kernel picks the page size when it faults a page in.
pub fn prefer_huge_pages<T>(buffer: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 2 << 20;
        let start = buffer.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let (first, last) = (start.next_multiple_of(HUGE_PAGE), end & !(HUGE_PAGE - 1));
        if last > first {
            // SAFETY: the range lies inside `buffer`, which is borrowed mutably here, and
            // MADV_HUGEPAGE changes how the kernel backs those pages, never their contents.
            #[allow(unsafe_code)]
            let refused = unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                )
            } != 0;
            if refused {
                tracing::debug!(
                    error = %std::io::Error::last_os_error(),
                    "no transparent huge pages for the argon2 memory"
                );
            }
        }
    }
}

/// Write the dirty pages of `file` in `offset..offset + len` to the disk and wait until they
/// are written (`sync_file_range`). Not a durability point: it neither flushes the disk's
/// cache nor writes metadata; an `fdatasync` must follow. Elsewhere than Linux it does nothing.
pub fn write_back_and_wait(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            // What the kernel answers for a range it cannot take.
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        };
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: sync_file_range takes a descriptor `file` keeps open for the call and plain
        // integers; it reads no memory of ours.
        #[allow(unsafe_code)]
        let failed = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) } != 0;
        if failed {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
    Ok(())
}

/// Own descriptor `fd`, which the service manager passed (socket activation), so it is closed
/// when pid drops it. Fails if `fd` is not open.
pub fn take_passed_fd(fd: std::os::fd::RawFd) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // An open descriptor, checked first: owning a closed number would close whatever file is
    // opened under it later.
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)?;
    // SAFETY: `fd` is open (checked above), and nothing else in the process owns it: it was
    // passed at exec, `LISTEN_PID` named this process, and `systemd::Environment::take` calls
    // this once, before the process opens any file of its own.
    #[allow(unsafe_code)]
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    Ok(owned)
}
