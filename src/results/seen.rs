//! Which invocations a runs.csv has had so far, with a value for each: the bookkeeping of the
//! duplicate checks that every row of a read (and of `merge`) goes through.
//!
//! A run numbers each cell's invocations from 0, so the table keeps a vector per (cell, phase)
//! indexed by invocation: a row costs an index, not a hash of its key into a map of a million
//! entries (which was most of a large merge's single-threaded work). An invocation far beyond
//! those seen (only an edited file has one) goes to a map instead, so no file makes the table
//! larger than about twice its rows.

use rustc_hash::FxHashMap;

/// Invocations seen, by group (a cell and phase as a number) and invocation number.
#[derive(Debug, Clone)]
pub struct Seen<V: Copy> {
    dense: Vec<Vec<Option<V>>>,
    sparse: FxHashMap<(usize, u64), V>,
}

impl<V: Copy> Default for Seen<V> {
    fn default() -> Self {
        Seen {
            dense: Vec::new(),
            sparse: FxHashMap::default(),
        }
    }
}

/// How far past the invocations seen a group's vector grows for a new one.
const SLACK: usize = 1024;

impl<V: Copy> Seen<V> {
    /// Record `value` for invocation `index` of `group`; returns the value recorded before, if
    /// any. `group` is a small number (cells are numbered in order of first sight).
    pub fn insert(&mut self, group: usize, index: u64, value: V) -> Option<V> {
        if group >= self.dense.len() {
            self.dense.resize_with(group + 1, Vec::new);
        }
        let slots = &mut self.dense[group];
        let Ok(i) = usize::try_from(index) else {
            return self.sparse.insert((group, index), value);
        };
        if i >= slots.len() {
            if i > 2 * slots.len() + SLACK {
                return self.sparse.insert((group, index), value);
            }
            let len = (i + 1).max(2 * slots.len());
            slots.resize(len, None);
        }
        let before = slots[i].replace(value);
        // One recorded in the map before the vector grew over it.
        if before.is_none() && !self.sparse.is_empty() {
            return self.sparse.remove(&(group, index));
        }
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_remembers_every_invocation_near_or_far() {
        let mut seen = Seen::default();
        // Far ones first (the map), then the vector grows over them.
        assert_eq!(seen.insert(0, 5_000, 'a'), None);
        assert_eq!(seen.insert(0, u64::MAX, 'b'), None);
        for i in 0..10_000 {
            let before = seen.insert(0, i, 'c');
            assert_eq!(before, (i == 5_000).then_some('a'), "invocation {i}");
        }
        assert_eq!(seen.insert(0, 5_000, 'd'), Some('c'));
        assert_eq!(seen.insert(0, u64::MAX, 'e'), Some('b'));
        // Groups are apart.
        assert_eq!(seen.insert(3, 7, 'f'), None);
        assert_eq!(seen.insert(1, 7, 'g'), None);
        assert_eq!(seen.insert(3, 7, 'h'), Some('f'));
        assert_eq!(seen.insert(0, 7, 'i'), Some('c'));
        // A far invocation never makes the vector huge.
        assert!(seen.dense.iter().map(Vec::len).sum::<usize>() < 3 * 10_000);
    }
}
