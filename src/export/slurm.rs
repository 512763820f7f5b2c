//! The Slurm export: a bash script that submits an array job of N shards and a job that
//! merges them once the array is done (`--dependency=afterany`, so a failed shard still
//! leads to a merge that says which shard is missing).

use std::fmt::Write as _;

use super::{Export, sh_quote};

pub(super) fn render(
    e: &Export,
    partition: Option<&str>,
    time: Option<&str>,
    benchbox: &str,
) -> Result<String, String> {
    let name = &e.matrix.name;
    let needs = e.needs();
    let bb = sh_quote(benchbox);
    let out = sh_quote(&e.out);
    let mut common = String::new();
    if let Some(p) = partition {
        writeln!(common, "#SBATCH --partition={}", sh_quote(p)).unwrap();
    }
    let mut s = String::new();
    writeln!(
        s,
        "#!/bin/bash\n\
         # benchbox: matrix `{name}` ({file}) in {n} shard(s) by {by}, on Slurm.\n\
         # Submit with `bash THIS-FILE` from the directory holding the matrix: it submits the\n\
         # array of shards, then a job that merges them once every shard has ended. Each shard\n\
         # writes OUT/array-<array job id>/{name}/<run-id>-shard-K; the merged run is\n\
         # OUT/{name}/merged-<array job id>. OUT must be shared by the nodes.",
        file = e.file,
        n = e.shards,
        by = e.by,
    )
    .unwrap();
    writeln!(s, "set -euo pipefail\nOUT={out}\nmkdir -p \"$OUT\"").unwrap();
    // The shards.
    writeln!(
        s,
        "array=$(sbatch --parsable <<'BENCHBOX_SHARD'\n#!/bin/bash\n#SBATCH --job-name=benchbox-{}\n#SBATCH --array=0-{}\n#SBATCH --ntasks=1\n#SBATCH --output={}/slurm-%A_%a.out",
        super::dns_name(name),
        e.shards - 1,
        e.out.replace('%', "%%"),
    )
    .unwrap();
    s.push_str(&common);
    if let Some(t) = time {
        writeln!(s, "#SBATCH --time={}", sh_quote(t)).unwrap();
    }
    match &needs.pinned {
        // Pinned CPUs are CPU ids: only a whole node is sure to hold them (benchbox checks
        // its affinity before the first invocation, exit 3 otherwise).
        Some(set) => writeln!(
            s,
            "# The matrix pins CPUs {set}: a whole node, so that those CPUs are this shard's.\n#SBATCH --exclusive"
        )
        .unwrap(),
        None => writeln!(
            s,
            "# The largest cell needs {} CPU(s); nothing else runs on them.\n#SBATCH --cpus-per-task={}",
            needs.cpus, needs.cpus
        )
        .unwrap(),
    }
    if let Some(m) = needs.memory {
        // The largest cell's limit, and room for benchbox and the container's own processes.
        writeln!(s, "#SBATCH --mem={}M", m.div_ceil(1 << 20) + 512).unwrap();
    }
    writeln!(s, "set -euo pipefail").unwrap();
    writeln!(
        s,
        "exec {bb} {}\nBENCHBOX_SHARD\n)",
        e.run_args(
            "$SLURM_ARRAY_TASK_ID",
            &format!("{out}/array-\"$SLURM_ARRAY_JOB_ID\"")
        )
    )
    .unwrap();
    // The merge, after every shard has ended (afterany: a failed shard still ends the wait,
    // and the merge then names it).
    writeln!(
        s,
        "merge=$(sbatch --parsable --dependency=afterany:\"$array\" --export=ALL,BENCHBOX_ARRAY=\"$array\" <<'BENCHBOX_MERGE'\n#!/bin/bash\n#SBATCH --job-name=benchbox-{}-merge\n#SBATCH --ntasks=1\n#SBATCH --output={}/slurm-%j-merge.out",
        super::dns_name(name),
        e.out.replace('%', "%%"),
    )
    .unwrap();
    s.push_str(&common);
    let name_q = sh_quote(name);
    writeln!(
        s,
        "set -euo pipefail\nexec {bb} merge {out}/array-\"$BENCHBOX_ARRAY\"/{name_q}/*-shard-* --out {out}/{name_q}/merged-\"$BENCHBOX_ARRAY\"\nBENCHBOX_MERGE\n)"
    )
    .unwrap();
    writeln!(
        s,
        "echo \"shards: job $array (array 0-{}); merge: job $merge -> $OUT/{name}/merged-$array\"",
        e.shards - 1
    )
    .unwrap();
    Ok(s)
}
