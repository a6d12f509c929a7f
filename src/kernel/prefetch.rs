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
    let start = (value as *const T).cast::<u8>();
    prefetch_addr(start);
    prefetch_addr(start.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
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
        prefetch_addr(std::ptr::null());
        prefetch_addr(usize::MAX as *const u8);
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
