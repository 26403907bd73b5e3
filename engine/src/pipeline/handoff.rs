//! Cross-worker handoff: frames one worker received that another must
//! handle (NAT: the worker owning the session by inside address or by
//! outside port, see [`crate::nat::ports`]).
//!
//! Every ordered pair of workers has its own single-producer single-consumer
//! ring of fixed-size frame slots, preallocated at start. The sender copies
//! the frame into a slot; the receiver copies it into a buffer of its own
//! pool. Copying keeps each pool single-threaded (packets are not `Send`)
//! and costs two copies of the frame only for the packets that cross; a
//! full ring drops the frame (counted `handoff_full`, like VPP's congestion
//! drop). A receiver that sleeps in `poll(2)` is woken through its eventfd,
//! written only when it said it was going to sleep, and checked once per
//! poll for every worker sent to ([`Handoff::notify`]), so a busy receiver
//! costs the sender no system call and no fence per frame.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::buffer::BUF_DATA_ROOM;

/// Frames all the rings into one worker hold together (about 36 MB of
/// slots per worker, whatever the worker count).
const INBOUND_FRAMES: usize = 16_384;

/// Frames each ring holds with `workers` workers: a power of two in
/// 256..=8192 (8192 with two workers).
pub fn ring_slots(workers: usize) -> usize {
    let n = (INBOUND_FRAMES / workers.saturating_sub(1).max(1)).clamp(256, 8192);
    // Round down: stay within the budget.
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// Keeps producer and consumer indices on separate cache lines.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded<T>(T);

struct Slot {
    port: u16,
    len: u16,
    data: [u8; BUF_DATA_ROOM],
}

/// One single-producer single-consumer frame ring.
pub struct FrameRing {
    slots: Box<[UnsafeCell<Slot>]>,
    /// Next slot the consumer reads (written by the consumer only).
    head: Padded<AtomicUsize>,
    /// Next slot the producer writes (written by the producer only).
    tail: Padded<AtomicUsize>,
}

// SAFETY: a slot is written only by the single producer while it is outside
// [head, tail) and read only by the single consumer while inside it; the
// Release/Acquire pairs on `tail` and `head` order those accesses.
unsafe impl Sync for FrameRing {}
// SAFETY: as above; the slots hold plain bytes.
unsafe impl Send for FrameRing {}

impl std::fmt::Debug for FrameRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRing")
            .field("len", &self.len())
            .finish()
    }
}

impl FrameRing {
    pub fn new(slots: usize) -> Self {
        assert!(slots.is_power_of_two(), "ring size must be a power of two");
        FrameRing {
            slots: (0..slots)
                .map(|_| {
                    UnsafeCell::new(Slot {
                        port: 0,
                        len: 0,
                        data: [0; BUF_DATA_ROOM],
                    })
                })
                .collect(),
            head: Padded::default(),
            tail: Padded::default(),
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        let t = self.tail.0.load(Ordering::Acquire);
        let h = self.head.0.load(Ordering::Acquire);
        t.wrapping_sub(h)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Producer: copies `frame` (received on `port`) in; false when full or
    /// the frame is larger than a slot.
    pub fn push(&self, port: u16, frame: &[u8]) -> bool {
        let t = self.tail.0.load(Ordering::Relaxed);
        let h = self.head.0.load(Ordering::Acquire);
        if t.wrapping_sub(h) >= self.slots.len() || frame.len() > BUF_DATA_ROOM {
            return false;
        }
        let i = t & (self.slots.len() - 1);
        // SAFETY: slot `i` is outside [head, tail): the consumer does not
        // touch it until `tail` moves past it below.
        let s = unsafe { &mut *self.slots[i].get() };
        s.port = port;
        s.len = frame.len() as u16;
        s.data[..frame.len()].copy_from_slice(frame);
        self.tail.0.store(t.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer: the oldest frame's port, if any.
    pub fn peek_port(&self) -> Option<u16> {
        let h = self.head.0.load(Ordering::Relaxed);
        if self.tail.0.load(Ordering::Acquire) == h {
            return None;
        }
        // SAFETY: slot `h` is inside [head, tail): the producer published
        // it (Acquire above) and will not write it until `head` passes it.
        Some(unsafe { (*self.slots[h & (self.slots.len() - 1)].get()).port })
    }

    /// Consumer: hands the oldest frame to `f` and frees its slot.
    pub fn pop_with<R>(&self, f: impl FnOnce(u16, &[u8]) -> R) -> Option<R> {
        let h = self.head.0.load(Ordering::Relaxed);
        if self.tail.0.load(Ordering::Acquire) == h {
            return None;
        }
        // SAFETY: as in `peek_port`.
        let s = unsafe { &*self.slots[h & (self.slots.len() - 1)].get() };
        let r = f(s.port, &s.data[..usize::from(s.len)]);
        self.head.0.store(h.wrapping_add(1), Ordering::Release);
        Some(r)
    }
}

/// Wakes a worker sleeping in `poll(2)`.
#[derive(Debug)]
pub struct Waker {
    fd: libc::c_int,
    sleeping: AtomicBool,
}

impl Waker {
    fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Waker {
            fd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The descriptor to add to the worker's `poll(2)` set.
    pub fn fd(&self) -> libc::c_int {
        self.fd
    }

    /// Worker: about to sleep (then it must look at its rings once more).
    pub fn set_sleeping(&self, s: bool) {
        self.sleeping.store(s, Ordering::SeqCst);
    }

    /// Worker after waking: empties the eventfd.
    pub fn clear(&self) {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into `v` from our own non-blocking eventfd.
        unsafe { libc::read(self.fd, (&mut v as *mut u64).cast(), 8) };
    }

    /// Sender: wake the worker if it sleeps.
    fn wake(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let v = 1u64;
            // SAFETY: writes 8 bytes to our own eventfd.
            unsafe { libc::write(self.fd, (&v as *const u64).cast(), 8) };
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// One worker's ends of the mesh: its inboxes (one per other worker) and
/// its outboxes (indexed by destination worker; its own index is unused).
#[derive(Debug, Clone)]
pub struct Handoff {
    pub worker: usize,
    inboxes: Vec<Arc<FrameRing>>,
    outboxes: Vec<Option<Arc<FrameRing>>>,
    wakers: Vec<Arc<Waker>>,
    /// Inbox to read first next time (round robin between senders).
    next_inbox: usize,
    /// Workers sent to since the last [`Handoff::notify`] (bit per worker;
    /// more than 64 workers share bits, which only wakes some needlessly).
    sent_to: u64,
}

impl Handoff {
    /// The connected ends for `workers` workers; empty for one worker.
    pub fn mesh(workers: usize) -> std::io::Result<Vec<Handoff>> {
        Self::mesh_with(workers, ring_slots(workers))
    }

    /// [`Handoff::mesh`] with rings of `slots` frames (a power of two).
    pub fn mesh_with(workers: usize, slots: usize) -> std::io::Result<Vec<Handoff>> {
        if workers < 2 {
            return Ok(Vec::new());
        }
        // rings[from][to]
        let rings: Vec<Vec<Option<Arc<FrameRing>>>> = (0..workers)
            .map(|from| {
                (0..workers)
                    .map(|to| (from != to).then(|| Arc::new(FrameRing::new(slots))))
                    .collect()
            })
            .collect();
        let wakers: Vec<Arc<Waker>> = (0..workers)
            .map(|_| Waker::new().map(Arc::new))
            .collect::<std::io::Result<_>>()?;
        Ok((0..workers)
            .map(|w| Handoff {
                worker: w,
                inboxes: (0..workers).filter_map(|f| rings[f][w].clone()).collect(),
                outboxes: rings[w].clone(),
                wakers: wakers.clone(),
                next_inbox: 0,
                sent_to: 0,
            })
            .collect())
    }

    /// Sends a frame received on `port` to worker `to`; false when its ring
    /// is full (or `to` is not another worker). Call [`Handoff::notify`]
    /// before sleeping or polling again.
    pub fn send(&mut self, to: usize, port: u16, frame: &[u8]) -> bool {
        let Some(Some(ring)) = self.outboxes.get(to) else {
            return false;
        };
        if !ring.push(port, frame) {
            return false;
        }
        self.sent_to |= 1 << (to % 64);
        true
    }

    /// Wakes the workers sent to since the last call if they sleep.
    pub fn notify(&mut self) {
        if self.sent_to == 0 {
            return;
        }
        // Our ring writes before their sleeping flag's read (the receiver
        // does the mirror: flag write, then ring read), so one side sees
        // the other.
        std::sync::atomic::fence(Ordering::SeqCst);
        for (w, waker) in self.wakers.iter().enumerate() {
            if w != self.worker && self.sent_to & (1 << (w % 64)) != 0 {
                waker.wake();
            }
        }
        self.sent_to = 0;
    }

    /// Number of workers in the mesh.
    pub fn workers(&self) -> usize {
        self.wakers.len()
    }

    /// This worker's waker.
    pub fn waker(&self) -> &Waker {
        &self.wakers[self.worker]
    }

    /// True when some inbox holds frames.
    pub fn pending(&self) -> bool {
        self.inboxes.iter().any(|r| !r.is_empty())
    }

    /// The next inbox to drain (round robin), if any holds frames.
    pub fn next_busy_inbox(&mut self) -> Option<&FrameRing> {
        let n = self.inboxes.len();
        for k in 0..n {
            let i = (self.next_inbox + k) % n;
            if !self.inboxes[i].is_empty() {
                self.next_inbox = (i + 1) % n;
                return Some(&self.inboxes[i]);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_shrink_with_more_workers() {
        assert_eq!(ring_slots(2), 8192);
        assert_eq!(ring_slots(3), 8192);
        assert_eq!(ring_slots(5), 4096);
        assert_eq!(ring_slots(6), 2048);
        assert_eq!(ring_slots(64), 256);
        for w in 2..100 {
            assert!(ring_slots(w).is_power_of_two());
        }
    }

    #[test]
    fn ring_keeps_order_and_refuses_when_full() {
        let r = FrameRing::new(4);
        for i in 0..4u8 {
            assert!(r.push(u16::from(i), &[i; 60]));
        }
        assert!(!r.push(9, &[9; 60]), "full");
        assert_eq!(r.len(), 4);
        for i in 0..4u8 {
            assert_eq!(r.peek_port(), Some(u16::from(i)));
            let got = r.pop_with(|port, f| (port, f.to_vec())).unwrap();
            assert_eq!(got, (u16::from(i), vec![i; 60]));
        }
        assert!(r.pop_with(|_, _| ()).is_none());
        assert!(!r.push(0, &[0; BUF_DATA_ROOM + 1]), "too large");
    }

    #[test]
    fn frames_cross_threads_intact_and_in_order() {
        let mesh = Handoff::mesh(2).unwrap();
        let (mut a, mut b) = (mesh[0].clone(), mesh[1].clone());
        const N: u32 = 200_000;
        let sender = std::thread::spawn(move || {
            let mut i = 0u32;
            while i < N {
                let len = 60 + (i % 1400) as usize;
                let mut f = vec![0u8; len];
                f[..4].copy_from_slice(&i.to_be_bytes());
                f[len - 1] = i as u8;
                if a.send(1, (i % 3) as u16, &f) {
                    i += 1;
                }
            }
        });
        let mut next = 0u32;
        while next < N {
            if let Some(r) = b.next_busy_inbox() {
                while let Some((port, seq, last, len)) = r.pop_with(|port, f| {
                    (
                        port,
                        u32::from_be_bytes(f[..4].try_into().unwrap()),
                        f[f.len() - 1],
                        f.len(),
                    )
                }) {
                    assert_eq!(seq, next);
                    assert_eq!(port, (next % 3) as u16);
                    assert_eq!(len, 60 + (next % 1400) as usize);
                    assert_eq!(last, next as u8);
                    next += 1;
                }
            }
        }
        sender.join().unwrap();
        assert!(!b.pending());
    }

    #[test]
    fn a_sleeping_worker_is_woken() {
        let mut mesh = Handoff::mesh(2).unwrap();
        mesh[1].waker().set_sleeping(true);
        assert!(mesh[0].send(1, 0, &[1; 64]));
        mesh[0].notify();
        let mut pfd = libc::pollfd {
            fd: mesh[1].waker().fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert_eq!(n, 1);
        mesh[1].waker().clear();
        mesh[1].waker().set_sleeping(false);
        assert!(mesh[1].pending());
        assert!(!mesh[0].send(0, 0, &[1; 64]), "no ring to self");
    }
}
