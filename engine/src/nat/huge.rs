//! Large NAT tables on transparent huge pages.
//!
//! A worker with a million sessions reads its indexes and slabs at random
//! over a few hundred megabytes: with 4 KiB pages nearly every lookup also
//! misses the TLB and walks the page tables (more misses). Asking the kernel
//! for 2 MiB pages (`MADV_HUGEPAGE`, honoured when THP is `madvise` or
//! `always`) before the memory is first touched removes most of that. The
//! tables are filled right away, so their memory is resident from start-up
//! and the packet path takes no page faults.

/// A vector of `n` copies of `value`, its memory advised for huge pages
/// before it is written.
pub fn huge_vec<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise(v.as_mut_ptr().cast(), n * std::mem::size_of::<T>());
    v.resize(n, value);
    v
}

/// Huge-page advice for the 2 MiB-aligned part of `[ptr, ptr + len)`.
fn advise(ptr: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside an allocation we own; MADV_HUGEPAGE
        // only changes how the kernel backs it (failure is harmless).
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn filled_like_vec() {
        let v = super::huge_vec(5 << 20, 7u32);
        assert_eq!(v.len(), 5 << 20);
        assert!(v.iter().all(|&x| x == 7));
        assert!(super::huge_vec(0, 1u8).is_empty());
    }
}
