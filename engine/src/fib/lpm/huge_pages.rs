//! Asks the kernel to back the big lookup tables with transparent huge
//! pages: a random lookup in the 64 MiB tbl24 otherwise misses the TLB.

/// Advises huge pages for the whole 4 KiB pages inside `table`. Only advice:
/// it changes neither contents nor validity, and failure (no THP, another
/// OS) just leaves normal pages.
pub(super) fn advise(table: &mut [u32]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = table.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(table);
        let first = start.next_multiple_of(PAGE);
        let last = end & !(PAGE - 1);
        if last > first {
            // SAFETY: [first, last) lies inside `table`, which we borrow
            // mutably, and is page-aligned as madvise requires.
            // MADV_HUGEPAGE only changes how the kernel backs the pages; their
            // contents (zeros, lazily mapped) stay the same.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = table;
}
