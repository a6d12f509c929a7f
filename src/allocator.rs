//! The process's memory allocator (issue 16): mimalloc, set for one long simulation.
//!
//! Nothing in the model depends on it (no value the program computes reads an address), so
//! traces are the same under any allocator; what changes is speed and resident memory. With
//! these two settings mimalloc took `cluster-15k`'s virtual hour from 25.6 to 23.7 s and
//! `cluster-65k`'s from 234 to 207 s on the project's 2-core host, for a third more peak memory
//! (docs/performance.md, issue 16 step 19):
//!
//! - **No purging** (`purge_delay = -1`): a simulation's memory only grows to its peak, so
//!   giving freed pages back to the kernel and faulting them in again was pure system time
//!   (2-5 s of `cluster-65k`'s 5 minutes).
//! - **Large OS pages** (`allow_large_os_pages = 1`): mimalloc's arenas are asked for as
//!   transparent huge pages (`madvise`), so the model's tables, read at random, miss the TLB
//!   less, and the kernel faults in 2 MiB at a time.
//!
//! Both are defaults only: a `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_LARGE_OS_PAGES`
//! environment variable still wins (mimalloc reads them itself), for a host where huge pages
//! cost more than they save (a fragmented memory makes the kernel compact for each one).

use libmimalloc_sys::{mi_option_large_os_pages, mi_option_set_default, mi_option_t};

/// The global allocator the `watchsim` binary installs (`src/main.rs`).
pub type Allocator = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (bundled mimalloc 3.x, `include/mimalloc.h`: the 16th
/// option). The Rust binding does not name it; `purge_delay_is_the_sixteenth_option` checks it.
const PURGE_DELAY: mi_option_t = 15;

/// Sets the defaults above. Call it first thing in `main`, before anything allocates: an arena
/// reserved before it runs keeps small pages.
pub fn configure() {
    // SAFETY: mimalloc's option setters write one word of its option table; any option id
    // in range is valid, and these two are read only when memory is reserved or purged.
    unsafe {
        mi_option_set_default(PURGE_DELAY, -1);
        mi_option_set_default(mi_option_large_os_pages, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libmimalloc_sys::mi_option_get;

    /// The id the binding does not name is the purge delay: its default (1000 ms in mimalloc
    /// 3.x's `options.c`) is the one no neighbouring option has, and setting it reads back.
    #[test]
    fn purge_delay_is_the_sixteenth_option() {
        // SAFETY: reading and writing option words (see `configure`).
        let (before, after) = unsafe {
            let before = mi_option_get(PURGE_DELAY);
            configure();
            (before, mi_option_get(PURGE_DELAY))
        };
        assert!(
            before == 1000 || before == -1,
            "option {PURGE_DELAY} has default {before}: not mimalloc's purge_delay"
        );
        assert_eq!(after, -1);
        // SAFETY: as above.
        assert_eq!(unsafe { mi_option_get(mi_option_large_os_pages) }, 1);
    }
}
