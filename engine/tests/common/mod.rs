//! A counting global allocator for the no-allocation tests: each test
//! binary installs it with `#[global_allocator]` and counts the
//! allocations between `start()` and `stop()` made by the thread that
//! called `start()` (the test harness's own threads may allocate meanwhile,
//! e.g. to report on a slow test on a loaded machine).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Defers to the system allocator; counts allocations while counting is on.
pub struct Counting;

thread_local! {
    // Const-initialised: reading them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no locals any more.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

/// Starts counting this thread's allocations (from zero).
pub fn start() {
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
}

/// Stops counting; returns this thread's allocations (and reallocations)
/// since `start`.
pub fn stop() -> u64 {
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(|a| a.get())
}

// SAFETY: defers to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

/// Checks that counting sees an allocation on this thread and none made
/// by another thread (each no-allocation test calls it: a counter that
/// cannot count would make those tests pass vacuously).
pub fn self_check() {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;
    start();
    drop(std::hint::black_box(vec![1u8; 64]));
    assert!(stop() >= 1, "the counting allocator missed an allocation");
    // 0: wait, 1: allocate now, 2: done.
    let step = Arc::new(AtomicU8::new(0));
    let s = step.clone();
    let other = std::thread::spawn(move || {
        while s.load(Ordering::Acquire) != 1 {
            std::hint::spin_loop();
        }
        drop(std::hint::black_box(vec![2u8; 64]));
        s.store(2, Ordering::Release);
    });
    start();
    step.store(1, Ordering::Release);
    while step.load(Ordering::Acquire) != 2 {
        std::hint::spin_loop();
    }
    assert_eq!(stop(), 0, "another thread's allocation was counted");
    other.join().expect("thread");
}
