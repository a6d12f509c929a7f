//! Prefetch hints for the fan-outs (issue 16): one EndpointSlice event reaches 15,000
//! kube-proxies, and each receiver's state (its reflector, its checker stream) sits in its own
//! heap allocation, so the loop over receivers waits on a cache miss per receiver. Telling the
//! processor, a few receivers ahead, which memory the loop will read next lets those misses
//! overlap. A hint changes no value the program computes: it cannot fault and reads nothing into
//! the program, so results (and traces) are the same with or without it, on any machine.

/// How many receivers ahead a fan-out loop asks for their state: far enough for a miss to be
/// served before the loop gets there, near enough for the lines to still be cached.
pub const AHEAD: usize = 32;

/// Asks for the cache line holding `addr` to be loaded. The address is only a hint: it is never
/// dereferenced.
#[inline(always)]
pub fn prefetch_addr(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint. It never faults, whatever the address (valid, dangling or
    // null), and it reads nothing into the program, so it cannot break any memory invariant.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Asks for the cache line holding `value`'s first byte.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T) {
    prefetch_addr((value as *const T).cast());
}

/// Which lines a read-ahead asks for, a step of work apart (issue 16: the simulator's loop asks
/// for what the next pending events' handlers read first, `world/read_ahead.rs`; see
/// [`crate::kernel::lookup_table`] for a table's two stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Lines whose address needs no memory read: a hash table's control bytes for a key, a
    /// ring's oldest slots, a key's text.
    Table,
    /// Lines named by what the first stage brought in: a hash table's entry for a key.
    Entry,
}

/// Asks for every cache line `value` spans (its first and last byte's: a value of up to 64
/// bytes spans at most two).
#[inline(always)]
pub fn prefetch_whole<T>(value: &T) {
    prefetch_value_at::<T>((value as *const T).cast());
}

/// Asks for the first and last byte's lines of a `T` at `start` (never dereferenced).
#[inline(always)]
fn prefetch_value_at<T>(start: *const u8) {
    prefetch_addr(start);
    prefetch_addr(start.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}

/// Asks for the lines of the slot just after `items`' last one: where a push onto the vector
/// they are the elements of writes next (a log appended at every write: the slot was last written
/// a buffer's length ago, or never, so the push's store misses and waits in the store buffer
/// unless asked for; issue 16). Past the buffer's end when it is full, which a hint may be.
#[inline(always)]
pub fn prefetch_after<T>(items: &[T]) {
    prefetch_value_at::<T>(items.as_ptr_range().end.cast());
}

/// [`prefetch_after`] for a ring buffer: the slot after its newest element, which its next
/// `push_back` writes. When the newest sits at the buffer's very end the next slot is the
/// buffer's first, which the slices do not name: the hint then points past the end.
#[inline(always)]
pub fn prefetch_after_newest<T>(ring: &std::collections::VecDeque<T>) {
    let (front, back) = ring.as_slices();
    prefetch_after(if back.is_empty() { front } else { back });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hints never change values, and any address (even a dangling one) is accepted.
    #[test]
    fn hints_are_harmless() {
        let v: Vec<u64> = (0..1000).collect();
        for x in &v {
            prefetch(x);
            prefetch_whole(x);
        }
        prefetch_after(&v);
        prefetch_after::<u64>(&[]);
        let mut ring: std::collections::VecDeque<u64> = (0..10).collect();
        prefetch_after_newest(&ring);
        ring.rotate_left(3);
        prefetch_after_newest(&ring);
        prefetch_addr(std::ptr::null());
        prefetch_addr(usize::MAX as *const u8);
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
