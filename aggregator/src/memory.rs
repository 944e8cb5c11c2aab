//! The process's memory settings.
//!
//! Transparent huge pages are off by default (`transparent_huge_pages = false`). mimalloc asks
//! the kernel for them on its arenas, and where the kernel grants them on request
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, common, and `always`) every
//! first touch of a fresh 2 MiB region zeroes all of it. The aggregator's batches allocate
//! large short-lived vectors and maps, and mimalloc hands freed memory back after a second, so
//! that zeroing came back batch after batch: 21–32 % of the aggregator's CPU samples under
//! load (`clear_page_erms` under `do_huge_pmd_anonymous_page`), 1–1.7 % without, and its CPU
//! per event 0.67–0.72× in alternated runs (BENCHMARKS.md §10, 2026-12-03). Per-process, through
//! `prctl(PR_SET_THP_DISABLE)`: other processes on the host keep the kernel's setting.

/// Turns transparent huge pages off for this process (all its mappings, from now on).
pub fn disable_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and four unused arguments; it only sets
    // a flag on this process's memory descriptor.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether transparent huge pages may be used for `process` (`"self"` or a process id:
/// `THP_enabled` in `/proc/<process>/status`, Linux 5.0 and later); `None` where the kernel
/// does not say.
pub fn transparent_huge_pages_enabled(process: &str) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    Some(line.split_whitespace().nth(1)? != "0")
}

/// Asks the CPU to start loading the cache lines of `len` bytes at `p` (a hint: it never
/// faults and changes nothing; a no-op off x86-64). A loop of independent lookups that only
/// prefetches lets the CPU overlap many cache misses, where the work between them would
/// otherwise make it wait for each in turn (`StateStore::prefetch`).
#[inline(always)]
pub fn prefetch(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut line = (p as usize) & !63;
        let end = (p as usize).wrapping_add(len);
        while line < end {
            // SAFETY: `prefetcht0` is a hint: it does not fault on any address and writes nothing.
            #[allow(unused_unsafe)]
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line as *const i8)
            };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel reports the process's transparent huge pages off once disabled (nextest runs
    /// each test in its own process, so no other test is affected).
    #[test]
    fn disabling_turns_them_off_for_the_process() {
        if transparent_huge_pages_enabled("self").is_none() {
            eprintln!("kernel does not report THP_enabled; nothing to check");
            return;
        }
        disable_transparent_huge_pages().expect("prctl(PR_SET_THP_DISABLE)");
        assert_eq!(transparent_huge_pages_enabled("self"), Some(false));
    }
}
