//! Other watch-cache configurations followed along one run, for `watchsim sweep` (notes.md
//! "Sweep speed", "verify or rerun"). A sweep over the watch cache's size runs, per seed, one
//! representative configuration for real and carries for each other grid point a shadow of its
//! cache window: the same events go into a [`Window`] sized by that point's configuration. At
//! every place where the cacher's behaviour depends on its window (a watch's start RV inside it
//! or 410, a replay's events still buffered, a slow watcher's channel size), the shadow's answer
//! is compared with the cacher's; the first difference drops the shadow. A shadow that lasts the
//! whole run made every decision as the real cache did, so that grid point's run is this run,
//! step for step, and only its cache figures (capacity and memory maxima) differ: those come
//! from the shadow. Dropped points are run again as representatives of their own.

use super::cache_window::Window;
use crate::kernel::Nanos;
use crate::scenario::WatchCacheConfig;

/// A shadow window: events reduced to `(rv, record time, bytes)`.
pub type ShadowWindow = Window<(i64, Nanos, u64)>;

/// The shadows of one cacher, indexed by member (grid point) number; `None` once a member's
/// decisions differed from the cacher's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Shadows {
    members: Vec<Option<ShadowWindow>>,
}

impl Shadows {
    /// Fresh windows for `configs`, except the members already dropped (`dropped(m)`).
    pub fn new(configs: &[WatchCacheConfig], dropped: impl Fn(usize) -> bool) -> Self {
        Shadows {
            members: configs
                .iter()
                .enumerate()
                .map(|(m, c)| (!dropped(m)).then(|| Window::new(c)))
                .collect(),
        }
    }

    /// True when no member is followed (the normal, unshared run).
    pub fn is_empty(&self) -> bool {
        self.members.iter().all(Option::is_none)
    }

    /// Every member slot (for per-watcher data sized alike).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// `Replace`: every window restarts; `store_bytes` is the new state's size.
    pub fn restart(&mut self, store_bytes: u64) {
        for w in self.members.iter_mut().flatten() {
            w.restart(store_bytes);
        }
    }

    /// `processEvent` on every window; `store_bytes` is the store's size after the event.
    pub fn record(&mut self, rv: i64, time_ns: Nanos, bytes: u64, store_bytes: u64) {
        for w in self.members.iter_mut().flatten() {
            w.make_room(time_ns);
            w.push((rv, time_ns, bytes), store_bytes);
        }
    }

    /// Compares each live member's answer (`answer(member, window)`) with the cacher's
    /// (`actual`) and drops the members that differ.
    pub fn check<R: PartialEq>(&mut self, actual: &R, answer: impl Fn(usize, &ShadowWindow) -> R) {
        if self.is_empty() {
            return;
        }
        for (m, slot) in self.members.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|w| answer(m, w) != *actual) {
                *slot = None;
            }
        }
    }

    /// Member `m`'s window, if it is still followed.
    pub fn get(&self, m: usize) -> Option<&ShadowWindow> {
        self.members.get(m).and_then(Option::as_ref)
    }

    /// The live members' windows.
    pub fn live(&self) -> impl Iterator<Item = (usize, &ShadowWindow)> {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(m, w)| w.as_ref().map(|w| (m, w)))
    }
}
