//! Shards: which slice of a run's plan one machine runs (`run --shard K/N`), and the hash that
//! tells `merge` that shards come from the same plan.
//!
//! Pure. `--shard-by invocation` (the default): every shard runs every cell's warm-ups and the
//! measured invocations `i` with `i mod N = K`, so each machine measures every cell and the
//! machine is a block. `--shard-by cell`: shard K runs the selected cells at positions
//! `p mod N = K` (positions in the selection, so `--only` still balances the shards), whole.
//! Slicing keeps the schedule's order, so a shard interleaves its cells as a whole run would.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Phase, Slot};

/// How a plan is cut into shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardBy {
    /// Every shard runs every cell; measured invocation `i` goes to shard `i mod N`.
    #[default]
    Invocation,
    /// Each cell runs whole in one shard: the cell at position `p` of the selection goes to
    /// shard `p mod N`.
    Cell,
}

impl fmt::Display for ShardBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShardBy::Invocation => "invocation",
            ShardBy::Cell => "cell",
        })
    }
}

/// `K/N`: this is shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The most shards a plan is cut into.
pub const MAX_SHARDS: u32 = 100_000;

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let hint = "\n  hint: write K/N with 0 <= K < N, e.g. --shard 0/4 (in a Slurm array: --shard $SLURM_ARRAY_TASK_ID/4)";
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid shard `{s}`: expected K/N{hint}"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("invalid shard `{s}`: K is not a whole number{hint}"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("invalid shard `{s}`: N is not a whole number{hint}"))?;
        if n == 0 || n > MAX_SHARDS {
            return Err(format!(
                "invalid shard `{s}`: N must be from 1 to {MAX_SHARDS}{hint}"
            ));
        }
        if k >= n {
            return Err(format!(
                "invalid shard `{s}`: K must be below N (shards are numbered from 0){hint}"
            ));
        }
        Ok(Shard { index: k, count: n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether this shard runs the invocation (`phase`, `index`) of the cell at `position` in
    /// the selection.
    pub fn keeps(&self, by: ShardBy, position: usize, phase: Phase, index: u32) -> bool {
        let n = u64::from(self.count);
        let k = u64::from(self.index);
        match by {
            ShardBy::Cell => position as u64 % n == k,
            // Warm-ups run in every shard: each machine warms up its own caches.
            ShardBy::Invocation => phase == Phase::Warmup || u64::from(index) % n == k,
        }
    }

    /// The slots of `slots` (a schedule of the `selected` cells) this shard runs, in order.
    pub fn slice(&self, by: ShardBy, selected: &[usize], slots: Vec<Slot>) -> Vec<Slot> {
        let mut position = std::collections::HashMap::with_capacity(selected.len());
        for (p, &cell) in selected.iter().enumerate() {
            position.entry(cell).or_insert(p);
        }
        slots
            .into_iter()
            .filter(|s| {
                position
                    .get(&s.cell)
                    .is_some_and(|&p| self.keeps(by, p, s.phase, s.index))
            })
            .collect()
    }

    /// How many of `runs` measured invocations (numbered from 0) this shard runs of a cell it
    /// keeps, in invocation mode.
    pub fn measured_of(&self, runs: u32) -> u32 {
        let (k, n) = (self.index, self.count);
        if runs <= k { 0 } else { (runs - k).div_ceil(n) }
    }
}

/// The plan's hash, which every shard records and `merge` compares: the selected cells' ids
/// with their planned warm-ups and measured invocations, in order (sha256, hex). Two shards
/// with the same hash ran slices of the same invocations.
pub fn plan_hash<'a>(cells: impl IntoIterator<Item = (&'a str, u32, u32)>) -> String {
    let mut h = Sha256::new();
    for (id, warmup, runs) in cells {
        h.update(id.as_bytes());
        h.update(b"\0");
        h.update(warmup.to_le_bytes());
        h.update(runs.to_le_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;
    use crate::plan::{schedule_selected, test_cell};
    use crate::spec::Order;

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
        for (bad, why) in [
            ("4/4", "K must be below N"),
            ("1/0", "N must be from 1"),
            ("x/2", "K is not a whole number"),
            ("1", "expected K/N"),
            ("-1/2", "K is not a whole number"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(why) && e.contains("hint:"), "{bad}: {e}");
        }
    }

    #[test]
    fn measured_of_counts_the_residue_class() {
        for runs in 0..20 {
            for n in 1..7 {
                for k in 0..n {
                    let s = Shard { index: k, count: n };
                    let expected = (0..runs).filter(|i| i % n == k).count() as u32;
                    assert_eq!(s.measured_of(runs), expected, "{runs} {k}/{n}");
                }
            }
        }
    }

    proptest! {
        /// Over random plans, shard counts, orders and both modes: the shards' slices together
        /// hold every measured invocation exactly once; in invocation mode every shard runs
        /// every selected cell's warm-ups, in cell mode each warm-up runs in exactly one shard;
        /// each slice keeps the schedule's order.
        #[test]
        fn slices_partition_the_plan(
            plan in proptest::collection::vec((0u32..4, 0u32..9), 1..12),
            unselected in proptest::collection::vec(any::<bool>(), 12),
            n in 1u32..9,
            seed in any::<u64>(),
            interleaved in any::<bool>(),
            by_cell in any::<bool>(),
        ) {
            let cells: Vec<_> = plan
                .iter()
                .enumerate()
                .map(|(i, &(w, r))| test_cell(&format!("c{i}"), w, r))
                .collect();
            let selected: Vec<usize> = (0..cells.len()).filter(|&i| !unselected[i]).collect();
            let order = if interleaved { Order::Interleaved } else { Order::Grouped };
            let by = if by_cell { ShardBy::Cell } else { ShardBy::Invocation };
            let whole = schedule_selected(&cells, &selected, order, seed, &HashSet::new());
            let mut measured: HashMap<Slot, u32> = HashMap::new();
            let mut warmups: HashMap<Slot, u32> = HashMap::new();
            for k in 0..n {
                let shard = Shard { index: k, count: n };
                let slice = shard.slice(by, &selected, whole.clone());
                // The slice is a subsequence of the schedule.
                let mut rest = whole.iter();
                for s in &slice {
                    prop_assert!(rest.any(|w| w == s), "out of order: {s:?}");
                }
                for s in slice {
                    let seen = if s.phase == Phase::Measure { &mut measured } else { &mut warmups };
                    *seen.entry(s).or_default() += 1;
                }
            }
            for s in &whole {
                match s.phase {
                    Phase::Measure => prop_assert_eq!(measured.get(s), Some(&1), "{:?}", s),
                    Phase::Warmup => {
                        let expected = if by_cell { 1 } else { n };
                        prop_assert_eq!(warmups.get(s), Some(&expected), "{:?}", s);
                    }
                }
            }
            prop_assert_eq!(measured.len() + warmups.len(), whole.len());
        }
    }

    #[test]
    fn the_plan_hash_follows_ids_and_counts() {
        let a = plan_hash([("a", 1, 5), ("b", 0, 5)]);
        assert_eq!(a, plan_hash([("a", 1, 5), ("b", 0, 5)]));
        assert_ne!(a, plan_hash([("a", 1, 6), ("b", 0, 5)]));
        assert_ne!(a, plan_hash([("a", 1, 5)]));
        assert_ne!(
            plan_hash([("ab", 1, 5)]),
            plan_hash([("a", 1, 5), ("b", 1, 5)])
        );
    }
}
