//! Which invocations a runs.csv has had so far, with a value for each: the bookkeeping of the
//! duplicate checks that every row of a read (and of `merge`) goes through.
//!
//! A run numbers each cell's invocations from 0, so the table keeps a vector per (cell, phase)
//! indexed by invocation: a row costs an index, not a hash of its key into a map of a million
//! entries (which was most of a large merge's single-threaded work). The vectors hold at most
//! twice as many slots as rows recorded, plus the room a caller reserves (`merge` reserves its
//! plan's rows, which come shard by shard, so spread over each cell's range) and a little
//! slack; an invocation they cannot take (only an edited file has one) goes to a map, so no
//! file makes the table larger than about twice its rows plus that room.

use rustc_hash::FxHashMap;

/// Invocations seen, by group (a cell and phase as a number) and invocation number.
#[derive(Debug, Clone)]
pub struct Seen<V: Copy> {
    dense: Vec<Vec<Option<V>>>,
    sparse: FxHashMap<(usize, u64), V>,
    /// The vectors' slots, all groups together.
    slots: usize,
    /// Invocations recorded.
    recorded: usize,
    /// Slots allowed beyond twice `recorded` (see [`Seen::reserve`]).
    room: usize,
}

impl<V: Copy> Default for Seen<V> {
    fn default() -> Self {
        Seen {
            dense: Vec::new(),
            sparse: FxHashMap::default(),
            slots: 0,
            recorded: 0,
            room: 0,
        }
    }
}

/// Slots allowed beyond twice the invocations recorded and the room reserved.
const SLACK: usize = 1024;

impl<V: Copy> Seen<V> {
    /// Allow the vectors `rows` more slots than twice the invocations recorded: room for a
    /// file whose invocations come spread out (a merge's, shard by shard).
    pub fn reserve(&mut self, rows: usize) {
        self.room = self.room.max(rows);
    }

    /// Record `value` for invocation `index` of `group`; returns the value recorded before, if
    /// any. `group` is a small number (cells are numbered in order of first sight).
    pub fn insert(&mut self, group: usize, index: u64, value: V) -> Option<V> {
        self.recorded += 1;
        let budget = 2 * self.recorded + self.room + SLACK;
        // A group is a cell and phase: as many as the run has, and never more than the rows.
        let Some(i) = usize::try_from(index)
            .ok()
            .filter(|&i| i < budget && group < budget)
        else {
            return self.sparse.insert((group, index), value);
        };
        if group >= self.dense.len() {
            self.dense.resize_with(group + 1, Vec::new);
        }
        let slots = &mut self.dense[group];
        if i >= slots.len() {
            let grown = |len: usize| self.slots - slots.len() + len;
            let len = (i + 1).max(2 * slots.len());
            let len = if grown(len) <= budget { len } else { i + 1 };
            if grown(len) > budget {
                return self.sparse.insert((group, index), value);
            }
            self.slots = grown(len);
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

    #[test]
    fn no_file_makes_it_larger_than_twice_its_rows_plus_the_room() {
        // Each invocation as far as the vector would grow for: doubling without filling.
        let mut seen = Seen::default();
        let mut far = 1024u64;
        for _ in 0..40 {
            seen.insert(0, far, ());
            far = 2 * far + 1024;
        }
        // A new group per row, each at an invocation near the slack.
        for g in 1..10_000 {
            seen.insert(g, 1000, ());
        }
        let rows = 40 + 9_999;
        assert!(seen.slots <= 2 * rows + SLACK, "{} slots", seen.slots);
        assert_eq!(seen.slots, seen.dense.iter().map(Vec::len).sum::<usize>());
        // Every one is still remembered.
        assert_eq!(seen.insert(0, 1024, ()), Some(()));
        assert_eq!(seen.insert(9_999, 1000, ()), Some(()));
        // With room reserved, a merge's spread-out invocations stay in the vectors.
        let mut seen = Seen::default();
        seen.reserve(100_000);
        for k in 0..100u64 {
            for j in 0..1000u64 {
                assert_eq!(seen.insert(0, j * 100 + k, ()), None);
            }
        }
        assert!(seen.sparse.is_empty(), "{} in the map", seen.sparse.len());
    }
}
