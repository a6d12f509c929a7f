//! Fresh heap memory faulted in on a spare core (issue 16).
//!
//! A long run's tables only grow: etcd's watch history until compaction keeps pace with it,
//! the checker's change log, the key index. Each new 4 KiB page costs its first writer a page
//! fault and the clearing of the page, and on this host the hypervisor's own fault behind it:
//! in `cluster-65k`'s first twenty minutes a tenth of the simulator thread's samples were
//! page faults, seven in ten of them etcd's watch history filling a freshly grown ring.
//!
//! [`PrefaultingAlloc`] is the binary's global allocator: the system allocator, which also
//! tells a helper thread about the new tail of every block grown by 256 KiB or more. The
//! helper asks the kernel to fault those pages in ahead of their first write
//! (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14+). That changes no byte of memory:
//! populating a never-written anonymous page maps a page of zeros, which is what reading it
//! gave already. If the block is freed or reused first, the request fails or maps a page the
//! program will use anyway; every error is ignored. So nothing the program computes depends on
//! it, and runs, traces and hashes are the same with it on or off. Its cost is memory: the
//! unused part of a grown block (a vector doubled to hold a little more) becomes resident.
//!
//! It is off until [`start`] (a lone `watchsim run` on a machine with a core to spare); sweeps,
//! checks and tests never start it. Elsewhere than Linux, [`start`] does nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Smaller growths come from memory the allocator already holds, mostly faulted in.
const MIN_BLOCK: usize = 256 * 1024;

/// Requests waiting for the helper; more at once are dropped (their pages fault as before).
const QUEUE: usize = 64;

static ENABLED: AtomicBool = AtomicBool::new(false);
static PENDING: Mutex<Pending> = Mutex::new(Pending::new());
static WAKE: Condvar = Condvar::new();

/// A fixed ring of `(address, length)` requests: the allocator cannot allocate to queue one.
struct Pending {
    ranges: [(usize, usize); QUEUE],
    head: usize,
    len: usize,
}

impl Pending {
    const fn new() -> Self {
        Pending {
            ranges: [(0, 0); QUEUE],
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, range: (usize, usize)) -> bool {
        if self.len == QUEUE {
            return false;
        }
        self.ranges[(self.head + self.len) % QUEUE] = range;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<(usize, usize)> {
        if self.len == 0 {
            return None;
        }
        let r = self.ranges[self.head];
        self.head = (self.head + 1) % QUEUE;
        self.len -= 1;
        Some(r)
    }
}

/// The system allocator, telling the helper of large grown blocks once [`start`] ran.
pub struct PrefaultingAlloc;

// SAFETY: every call is forwarded to `System` unchanged; the helper is only told addresses.
// Only a grown block is reported: its new tail is what a growing table fills slowly, step by
// step (a fresh block is mostly written at once by whoever asked for it). So `alloc` and
// `dealloc`, which the explorer and the sweeps call millions of times, pass straight through;
// `realloc` adds one compare of sizes.
unsafe impl GlobalAlloc for PrefaultingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        // Sizes are at most `isize::MAX`: the sum cannot overflow.
        if new_size >= layout.size() + MIN_BLOCK && !p.is_null() {
            fresh(p.wrapping_add(layout.size()), new_size - layout.size());
        }
        p
    }
}

/// Tells the helper about the `len` fresh bytes at `start`, if it runs.
#[cold]
#[inline(never)]
fn fresh(start: *mut u8, len: usize) {
    // `start` is past the start of a block `realloc` returned: never null.
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let queued = match PENDING.lock() {
        Ok(mut q) => q.push((start as usize, len)),
        Err(_) => false,
    };
    if queued {
        WAKE.notify_one();
    }
}

/// Starts the helper thread (once; Linux only): from now on, the new tails of large grown blocks
/// are faulted in on it. True when it runs.
pub fn start() -> bool {
    #[cfg(target_os = "linux")]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("watchsim-prefault".into())
                .spawn(serve);
            if spawned.is_ok() {
                ENABLED.store(true, Ordering::Relaxed);
            }
        });
        ENABLED.load(Ordering::Relaxed)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The helper: faults in each requested range, whole pages only, ignoring every error.
#[cfg(target_os = "linux")]
fn serve() {
    // SAFETY: `sysconf` has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    loop {
        let (start, len) = {
            let Ok(mut q) = PENDING.lock() else { return };
            loop {
                if let Some(r) = q.pop() {
                    break r;
                }
                q = match WAKE.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        let first = start.div_ceil(page) * page;
        let end = (start + len) / page * page;
        if end > first {
            // SAFETY: `MADV_POPULATE_WRITE` reads and writes no byte of the range; on a range no
            // longer mapped, or mapped without write access, it fails, and that is ignored.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    end - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue keeps order, refuses past its size and wraps around.
    #[test]
    fn pending_ring_keeps_order_and_bounds() {
        let mut q = Pending::new();
        assert_eq!(q.pop(), None);
        for i in 0..QUEUE {
            assert!(q.push((i, i + 1)));
        }
        assert!(!q.push((999, 1)), "full");
        for i in 0..QUEUE / 2 {
            assert_eq!(q.pop(), Some((i, i + 1)));
        }
        for i in 0..QUEUE / 2 {
            assert!(q.push((1000 + i, 1)));
        }
        for i in QUEUE / 2..QUEUE {
            assert_eq!(q.pop(), Some((i, i + 1)));
        }
        for i in 0..QUEUE / 2 {
            assert_eq!(q.pop(), Some((1000 + i, 1)));
        }
        assert_eq!(q.pop(), None);
    }

    /// Resident pages of `len` bytes at `p` (`mincore`), and how many pages that is.
    #[cfg(target_os = "linux")]
    fn resident(p: *mut u8, len: usize) -> (usize, usize) {
        // SAFETY: `sysconf` has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let first = (p as usize).div_ceil(page) * page;
        let pages = (p as usize + len - first) / page;
        let mut vec = vec![0u8; pages];
        // SAFETY: the range is inside the live block at `p`; `vec` has a byte per page.
        let rc =
            unsafe { libc::mincore(first as *mut libc::c_void, pages * page, vec.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore");
        (vec.iter().filter(|b| *b & 1 == 1).count(), pages)
    }

    /// Once started, the new tail of a block grown by the allocator becomes resident without
    /// being written, and still reads as zeros.
    #[cfg(target_os = "linux")]
    #[test]
    fn started_helper_faults_in_grown_tails() {
        assert!(start(), "the helper starts on Linux");
        // Above glibc's largest mmap threshold (32 MiB): a fresh mapping, never written.
        let small = Layout::from_size_align(64 << 20, 4096).unwrap();
        let big = Layout::from_size_align(128 << 20, 4096).unwrap();
        // SAFETY: a non-zero size; grown, then freed below with the grown layout.
        let p = unsafe { PrefaultingAlloc.alloc(small) };
        assert!(!p.is_null());
        // SAFETY: `p` is live with layout `small`; the new size is non-zero.
        let p = unsafe { PrefaultingAlloc.realloc(p, small, big.size()) };
        assert!(!p.is_null());
        let mut waited = 0;
        let tail = p.wrapping_add(small.size());
        let (mut got, pages) = resident(tail, big.size() - small.size());
        while got < pages && waited < 500 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
            got = resident(tail, big.size() - small.size()).0;
        }
        assert_eq!(got, pages, "every page of the new tail is resident");
        // SAFETY: the block is live and `big.size()` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(p, big.size()) };
        assert!(bytes.iter().all(|&b| b == 0), "populating wrote nothing");
        // SAFETY: allocated above with this layout.
        unsafe { PrefaultingAlloc.dealloc(p, big) };
    }
}
