//! The hasher of the maps that are touched once per runs.csv row (the rows seen by `merge` and
//! by runs.csv's reader, the cell ids interned): keys are short (numbers, a cell id), and a
//! merged run has a million rows, where the standard SipHash cost as much as parsing a row.
//! It is the multiply-rotate hash rustc uses for its own tables. It gives no protection
//! against keys crafted to collide: a runs.csv so crafted only makes its own read slow.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`RowHasher`].
pub type RowMap<K, V> = HashMap<K, V, BuildHasherDefault<RowHasher>>;

/// An empty [`RowMap`] with room for `n` entries, so a large file's map is not rehashed as it
/// grows.
pub fn with_capacity<K, V>(n: usize) -> RowMap<K, V> {
    RowMap::with_capacity_and_hasher(n, Default::default())
}

/// See the module documentation.
#[derive(Default, Clone, Copy)]
pub struct RowHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl RowHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for RowHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table picks buckets with the low bits, which the multiplication mixes least.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_differ_hash_apart_and_maps_work() {
        let mut m: RowMap<(u32, u32, u64), u32> = with_capacity(4);
        for i in 0..10_000u64 {
            assert_eq!(m.insert((1, 0, i), 7), None);
        }
        assert_eq!(m.insert((1, 0, 5), 8), Some(7));
        assert_eq!(m.len(), 10_000);
        let mut names: RowMap<Vec<u8>, usize> = with_capacity(0);
        names.insert(b"000000000001".to_vec(), 1);
        assert_eq!(names.get(&b"000000000001"[..]), Some(&1));
        assert_eq!(names.get(&b"000000000002"[..]), None);
    }
}
