//! What a shard records of itself and a merged run of its shards (results.json's `shard`),
//! and the check that the CPUs a matrix pins are inside the CPUs this shard was given.
//!
//! Slicing the plan is `plan::Shard` (pure); merging shards is `merge`.

use serde::{Deserialize, Serialize};

use crate::host::HostInfo;
use crate::plan::ShardBy;
use crate::spec::{Cell, CpuSet};
use crate::status::RunStatus;

/// results.json's `shard`: absent from a whole run (and from files written before shards).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// N: how many shards the plan was cut into.
    pub count: u32,
    pub by: ShardBy,
    /// The plan every shard sliced ([`crate::plan::plan_hash`]).
    pub plan_hash: String,
    /// K, for the run of one shard; absent in a merged run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// A merged run: the shards it holds, by K.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<ShardRecord>,
}

/// One shard of a merged run, as its own results.json said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u32,
    pub run_id: String,
    /// The shard's run directory, as `merge` was given it.
    pub dir: String,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub host: HostInfo,
}

/// The CPUs the matrix pins (`limits.cpus` of the selected cells) that this process may not
/// use (`allowed`: its affinity, which a Slurm allocation or a pod's cpuset sets). An error,
/// exit 3, names both sets.
pub fn check_pinned_cpus(
    cells: &[Cell],
    selected: &[usize],
    allowed: &CpuSet,
) -> Result<(), String> {
    let mut pinned: Vec<u32> = selected
        .iter()
        .filter_map(|&i| cells.get(i)?.limits.cpus.as_ref())
        .flat_map(|s| s.cpus().collect::<Vec<_>>())
        .collect();
    pinned.sort_unstable();
    pinned.dedup();
    let pinned = CpuSet::new(pinned);
    if pinned.is_subset(allowed) {
        return Ok(());
    }
    Err(format!(
        "the matrix pins CPUs {pinned}, but this process was given CPUs {allowed} (its affinity: a Slurm allocation, a pod's cpuset, taskset)\n  hint: give the shard the CPUs the matrix pins (Slurm: --exclusive or --cpus-per-task; Kubernetes: the static CPU manager with integer requests), or pin CPUs inside the allocation"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_cell;

    #[test]
    fn pinned_cpus_outside_the_allocation_name_both_sets() {
        let mut a = test_cell("a", 0, 1);
        a.limits.cpus = Some("2-3".parse().unwrap());
        let b = test_cell("b", 0, 1);
        let cells = vec![a, b];
        let allowed: CpuSet = "0-3".parse().unwrap();
        assert!(check_pinned_cpus(&cells, &[0, 1], &allowed).is_ok());
        let small: CpuSet = "0-2".parse().unwrap();
        let e = check_pinned_cpus(&cells, &[0, 1], &small).unwrap_err();
        assert!(
            e.contains("pins CPUs 2-3") && e.contains("given CPUs 0-2"),
            "{e}"
        );
        assert!(e.contains("hint:"), "{e}");
        // A cell the run does not select pins nothing.
        assert!(check_pinned_cpus(&cells, &[1], &small).is_ok());
    }
}
