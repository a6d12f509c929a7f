//! `ArmedSet`: the small integer ids (clients) whose fan-out lane was armed since the lanes were
//! last settled, each listed once, in the order they were armed. A lane owner
//! ([`crate::client::Fleet`], [`crate::monitor::stream_table::StreamTable`]) settles exactly these
//! instead of walking every lane. The order is never an output: settling folds each lane into
//! its own receiver, so any order gives the same state.

/// Ids armed since the last settle (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct ArmedSet {
    ids: Vec<u32>,
    /// By id: listed in `ids`.
    listed: Vec<bool>,
}

impl ArmedSet {
    /// Lists `id` unless it is listed already.
    #[inline]
    pub fn mark(&mut self, id: u32) {
        let i = id as usize;
        if i >= self.listed.len() {
            self.listed.resize(i + 1, false);
        }
        if !self.listed[i] {
            self.listed[i] = true;
            self.ids.push(id);
        }
    }

    /// True when no id is listed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every listed id, in the order listed (the set unchanged).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Every listed id, in the order listed; the set is empty after. Hand the list back with
    /// [`ArmedSet::give_back`] to keep its capacity.
    pub fn take(&mut self) -> Vec<u32> {
        for &id in &self.ids {
            self.listed[id as usize] = false;
        }
        std::mem::take(&mut self.ids)
    }

    /// Returns a list [`ArmedSet::take`] gave out (emptied), to reuse its capacity.
    pub fn give_back(&mut self, mut ids: Vec<u32>) {
        if self.ids.is_empty() {
            ids.clear();
            self.ids = ids;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_listed_once_until_taken() {
        let mut s = ArmedSet::default();
        assert!(s.is_empty());
        for id in [5, 2, 5, 9, 2] {
            s.mark(id);
        }
        let ids = s.take();
        assert_eq!(ids, vec![5, 2, 9]);
        assert!(s.is_empty());
        s.give_back(ids);
        s.mark(2);
        assert_eq!(s.take(), vec![2], "listed again after a take");
    }
}
