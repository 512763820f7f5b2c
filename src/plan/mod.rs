//! The plan: which cells to run (`--only`), in which order (`schedule`); how `benchbox plan`
//! shows a matrix (`show`: `render_text`, `render_json`), and the plan as results.json records
//! it (`record`: [`Plan`]).
//!
//! Pure: cells in, slots out. The interleaved order puts every cell's invocation `r` in round
//! `r`, and shuffles each round with a PRNG seeded from the run's seed and the round number, so
//! drift (thermal, background load) hits all cells alike, and a recorded seed reproduces the
//! exact order. Round `r` covers warm-up `r` while `r < warmup`, then measured run
//! `r - warmup`; cells with fewer invocations drop out of later rounds.

use std::collections::HashSet;
use std::fmt;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::spec::{Axis, Cell, Matrix, Order, axis_value_matches, axis_value_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Warmup,
    Measure,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
        })
    }
}

/// The most cells `run` takes (the matrix's, whatever `--only` selects): a run holds every
/// cell several times over and records them all in results.json, which it rewrites as it goes.
/// At 50,000 cells it reaches its first invocation in about 2.5 s with 0.5 GB; at 100,000, 7 s
/// with 1 GB (see the README). `check` and `plan` take [`crate::spec::MAX_CELLS`].
pub const MAX_RUN_CELLS: usize = 50_000;

/// One invocation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    /// Index into `Matrix::cells`.
    pub cell: usize,
    pub phase: Phase,
    /// 0-based within the phase.
    pub index: u32,
}

/// Every invocation of every cell not already in `done` (cell id, phase, index), in run order.
pub fn schedule(
    cells: &[Cell],
    order: Order,
    seed: u64,
    done: &HashSet<(String, Phase, u32)>,
) -> Vec<Slot> {
    let all: Vec<usize> = (0..cells.len()).collect();
    schedule_selected(cells, &all, order, seed, done)
}

/// Like [`schedule`], for the cells at `selected` (from [`filter_only`]); slots still index
/// into `cells`. Selected indices out of range are ignored.
pub fn schedule_selected(
    cells: &[Cell],
    selected: &[usize],
    order: Order,
    seed: u64,
    done: &HashSet<(String, Phase, u32)>,
) -> Vec<Slot> {
    let selected: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| i < cells.len())
        .collect();
    let mut out = Vec::new();
    let mut push = |cell: usize, round: u32| {
        let c = &cells[cell];
        let (phase, index) = if round < c.warmup {
            (Phase::Warmup, round)
        } else {
            (Phase::Measure, round - c.warmup)
        };
        if !done.contains(&(c.id.clone(), phase, index)) {
            out.push(Slot { cell, phase, index });
        }
    };
    let total = |cell: usize| cells[cell].warmup.saturating_add(cells[cell].runs);
    match order {
        Order::Grouped => {
            for &cell in &selected {
                for round in 0..total(cell) {
                    push(cell, round);
                }
            }
        }
        Order::Interleaved => {
            let rounds = selected.iter().map(|&c| total(c)).max().unwrap_or(0);
            for round in 0..rounds {
                let mut members: Vec<usize> = selected
                    .iter()
                    .copied()
                    .filter(|&c| round < total(c))
                    .collect();
                members.shuffle(&mut round_rng(seed, round));
                for cell in members {
                    push(cell, round);
                }
            }
        }
    }
    out
}

/// Each round's shuffle depends only on the seed and the round number, so adding runs later
/// (or resuming) leaves the earlier rounds' order unchanged. The multiply spreads consecutive
/// round numbers over the seed's bits, so seeds `s` and `s ^ 1` do not share rounds.
fn round_rng(seed: u64, round: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ u64::from(round).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A bad `--only` expression; exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("invalid --only `{expr}`: expected `axis=value`\n  hint: for example --only jdk=17")]
    Syntax { expr: String },
    #[error("unknown axis `{axis}` in --only `{expr}`\n  hint: {hint}")]
    UnknownAxis {
        expr: String,
        axis: String,
        hint: String,
    },
    #[error(
        "axis `{axis}` has no value `{value}` (in --only `{expr}`)\n  hint: values of `{axis}`: {valid}"
    )]
    UnknownValue {
        expr: String,
        axis: String,
        value: String,
        valid: String,
    },
    #[error("--only {exprs} matches no cell\n  hint: `benchbox plan` lists the cells")]
    NoMatch { exprs: String },
}

impl PlanError {
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Indices of the cells selected by `--only axis=value` expressions: AND across axes, OR among
/// expressions on the same axis. Values match as [`axis_value_matches`] says: numbers as
/// numbers (`cpu_quota=0.50` selects `0.5`), strings as text. No expressions selects every
/// cell.
pub fn filter_only(matrix: &Matrix, exprs: &[String]) -> Result<Vec<usize>, PlanError> {
    // axis index -> the axis values accepted
    let mut wanted: Vec<(usize, Vec<&serde_json::Value>)> = Vec::new();
    for expr in exprs {
        let Some((axis, value)) = expr.split_once('=') else {
            return Err(PlanError::Syntax { expr: expr.clone() });
        };
        let (axis, value) = (axis.trim(), value.trim());
        if axis.is_empty() {
            return Err(PlanError::Syntax { expr: expr.clone() });
        }
        let Some(ai) = matrix.axes.iter().position(|a| a.name == axis) else {
            return Err(PlanError::UnknownAxis {
                expr: expr.clone(),
                axis: axis.to_string(),
                hint: if matrix.axes.is_empty() {
                    "the matrix has no axes".to_string()
                } else {
                    crate::spec::suggest(axis, matrix.axes.iter().map(|a| a.name.as_str()), "axes")
                },
            });
        };
        // The axis values this expression names (several only for an axis whose values differ
        // in type but not in number, like `1` and `"1.0"`); cells hold copies of them.
        let named: Vec<&serde_json::Value> = matrix.axes[ai]
            .values
            .iter()
            .filter(|v| axis_value_matches(v, value))
            .collect();
        if named.is_empty() {
            return Err(PlanError::UnknownValue {
                expr: expr.clone(),
                axis: axis.to_string(),
                value: value.to_string(),
                valid: axis_texts(&matrix.axes[ai]).join(", "),
            });
        }
        match wanted.iter_mut().find(|(i, _)| *i == ai) {
            Some((_, values)) => values.extend(named),
            None => wanted.push((ai, named)),
        }
    }
    let selected: Vec<usize> = matrix
        .cells
        .iter()
        .enumerate()
        .filter(|(_, cell)| {
            wanted.iter().all(|(ai, values)| {
                let name = &matrix.axes[*ai].name;
                cell.axes
                    .iter()
                    .any(|(n, v)| n == name && values.contains(&v))
            })
        })
        .map(|(i, _)| i)
        .collect();
    if selected.is_empty() {
        return Err(PlanError::NoMatch {
            exprs: exprs.join(" "),
        });
    }
    Ok(selected)
}

fn axis_texts(axis: &Axis) -> Vec<String> {
    axis.values.iter().map(axis_value_text).collect()
}

mod record;
mod shard;
mod show;

pub use record::{Plan, serialize_sorted};
pub use shard::{MAX_SHARDS, Shard, ShardBy, plan_hash};
pub use show::{Head, PlanSource, RenderCell, render_json, render_text, write_json, write_text};

/// A cell for tests elsewhere: `id`, with `warmup` and `runs`, a custom metric `ops` (ops/s,
/// higher is better), the rest as a one-line matrix makes it.
#[cfg(test)]
pub(crate) fn test_cell(id: &str, warmup: u32, runs: u32) -> Cell {
    let ctx = crate::spec::ValidationContext {
        online_cpus: crate::spec::CpuSet::new([0]),
        check_paths: false,
        image_accounts: Default::default(),
    };
    let source = "[run]\ncommand = \"x\"\n[[metric]]\nname = \"ops\"\nunit = \"ops/s\"\nbetter = \"higher\"\n";
    let m =
        crate::spec::parse(source, std::path::Path::new("m.toml"), &ctx).expect("a valid matrix");
    Cell {
        id: id.to_string(),
        warmup,
        runs,
        ..m.cells[0].clone()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::spec::{self, CpuSet, ValidationContext};

    fn cell(id: &str, warmup: u32, runs: u32) -> Cell {
        let m = spec::parse("[run]\ncommand = \"x\"\n", Path::new("m.toml"), &ctx()).unwrap();
        Cell {
            id: id.to_string(),
            warmup,
            runs,
            ..m.cells[0].clone()
        }
    }

    fn ctx() -> ValidationContext {
        ValidationContext {
            online_cpus: CpuSet::new([0, 1]),
            check_paths: false,
            image_accounts: Default::default(),
        }
    }

    /// The round a slot belongs to.
    fn round(cells: &[Cell], s: &Slot) -> u32 {
        match s.phase {
            Phase::Warmup => s.index,
            Phase::Measure => cells[s.cell].warmup + s.index,
        }
    }

    fn all_pairs(cells: &[Cell]) -> Vec<(usize, Phase, u32)> {
        let mut out = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            out.extend((0..c.warmup).map(|k| (i, Phase::Warmup, k)));
            out.extend((0..c.runs).map(|k| (i, Phase::Measure, k)));
        }
        out
    }

    #[test]
    fn grouped_runs_cells_in_order() {
        let cells = vec![cell("a", 1, 2), cell("b", 0, 1)];
        let slots = schedule(&cells, Order::Grouped, 7, &HashSet::new());
        let got: Vec<(usize, Phase, u32)> =
            slots.iter().map(|s| (s.cell, s.phase, s.index)).collect();
        assert_eq!(
            got,
            [
                (0, Phase::Warmup, 0),
                (0, Phase::Measure, 0),
                (0, Phase::Measure, 1),
                (1, Phase::Measure, 0)
            ]
        );
    }

    #[test]
    fn interleaved_rounds_mix_warmup_and_measure() {
        // Round 0: a's warm-up and b's first measure; round 2: only a.
        let cells = vec![cell("a", 1, 2), cell("b", 0, 2)];
        let slots = schedule(&cells, Order::Interleaved, 1, &HashSet::new());
        assert_eq!(slots.len(), 5);
        let rounds: Vec<u32> = slots.iter().map(|s| round(&cells, s)).collect();
        assert_eq!(rounds, [0, 0, 1, 1, 2]);
        assert_eq!(
            slots[4],
            Slot {
                cell: 0,
                phase: Phase::Measure,
                index: 1
            }
        );
    }

    #[test]
    fn interleaved_shuffles_and_the_seed_decides() {
        let cells: Vec<Cell> = (0..12).map(|i| cell(&format!("c{i}"), 0, 4)).collect();
        let none = HashSet::new();
        let a = schedule(&cells, Order::Interleaved, 1, &none);
        assert_eq!(a, schedule(&cells, Order::Interleaved, 1, &none));
        let b = schedule(&cells, Order::Interleaved, 2, &none);
        assert_ne!(a, b);
        // Not declaration order, and not the same order every round.
        let order = |r: usize| {
            a[r * 12..(r + 1) * 12]
                .iter()
                .map(|s| s.cell)
                .collect::<Vec<_>>()
        };
        assert_ne!(order(0), (0..12).collect::<Vec<_>>());
        assert_ne!(order(0), order(1));
    }

    #[test]
    fn more_runs_keep_the_earlier_rounds() {
        let few: Vec<Cell> = (0..5).map(|i| cell(&format!("c{i}"), 1, 3)).collect();
        let many: Vec<Cell> = (0..5).map(|i| cell(&format!("c{i}"), 1, 6)).collect();
        let none = HashSet::new();
        let a = schedule(&few, Order::Interleaved, 9, &none);
        let b = schedule(&many, Order::Interleaved, 9, &none);
        assert_eq!(a[..], b[..a.len()]);
    }

    #[test]
    fn resume_runs_exactly_the_missing_pairs() {
        let cells = vec![cell("a", 1, 3), cell("b", 2, 2)];
        let done: HashSet<(String, Phase, u32)> = [
            ("a".to_string(), Phase::Warmup, 0),
            ("a".to_string(), Phase::Measure, 1),
            ("b".to_string(), Phase::Measure, 0),
            ("zzz".to_string(), Phase::Measure, 0),
        ]
        .into_iter()
        .collect();
        let slots = schedule(&cells, Order::Interleaved, 3, &done);
        let mut got: Vec<(usize, Phase, u32)> =
            slots.iter().map(|s| (s.cell, s.phase, s.index)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                (0, Phase::Measure, 0),
                (0, Phase::Measure, 2),
                (1, Phase::Warmup, 0),
                (1, Phase::Warmup, 1),
                (1, Phase::Measure, 1),
            ]
        );
    }

    #[test]
    fn selected_cells_keep_their_indices() {
        let cells = vec![cell("a", 0, 1), cell("b", 0, 1), cell("c", 0, 1)];
        let slots = schedule_selected(&cells, &[2, 0, 9], Order::Grouped, 0, &HashSet::new());
        assert_eq!(slots.iter().map(|s| s.cell).collect::<Vec<_>>(), [2, 0]);
        assert!(schedule(&[], Order::Interleaved, 0, &HashSet::new()).is_empty());
    }

    #[test]
    fn phase_text() {
        assert_eq!(Phase::Warmup.to_string(), "warmup");
        assert_eq!(
            serde_json::to_string(&Phase::Measure).unwrap(),
            "\"measure\""
        );
        assert_eq!(
            serde_json::from_str::<Phase>("\"warmup\"").unwrap(),
            Phase::Warmup
        );
    }

    proptest! {
        #[test]
        fn schedule_invariants(
            shape in proptest::collection::vec((0u32..4, 1u32..6), 0..8),
            seed in any::<u64>(),
            grouped in any::<bool>(),
            done_mask in proptest::collection::vec(any::<bool>(), 80),
        ) {
            let cells: Vec<Cell> = shape.iter().enumerate().map(|(i, &(w, r))| cell(&format!("c{i}"), w, r)).collect();
            let pairs = all_pairs(&cells);
            let done: HashSet<(String, Phase, u32)> = pairs
                .iter()
                .zip(done_mask.iter().cycle())
                .filter(|(_, d)| **d)
                .map(|(&(c, p, k), _)| (cells[c].id.clone(), p, k))
                .collect();
            let order = if grouped { Order::Grouped } else { Order::Interleaved };
            let slots = schedule(&cells, order, seed, &done);

            // Every missing pair exactly once, no done pair.
            let mut got: Vec<(usize, Phase, u32)> = slots.iter().map(|s| (s.cell, s.phase, s.index)).collect();
            got.sort();
            let mut want: Vec<(usize, Phase, u32)> = pairs
                .into_iter()
                .filter(|&(c, p, k)| !done.contains(&(cells[c].id.clone(), p, k)))
                .collect();
            want.sort();
            prop_assert_eq!(got, want);

            // Deterministic for a seed.
            prop_assert_eq!(&slots, &schedule(&cells, order, seed, &done));

            // Within a cell: warm-ups before measures, indices ascending.
            for c in 0..cells.len() {
                let rounds: Vec<u32> = slots.iter().filter(|s| s.cell == c).map(|s| round(&cells, s)).collect();
                prop_assert!(rounds.windows(2).all(|w| w[0] < w[1]));
            }
            if grouped {
                // Each cell's slots are contiguous, cells in declaration order.
                let seq: Vec<usize> = slots.iter().map(|s| s.cell).collect();
                prop_assert!(seq.windows(2).all(|w| w[0] <= w[1]));
            } else {
                // No cell's round r+1 before every cell's round r.
                let rounds: Vec<u32> = slots.iter().map(|s| round(&cells, s)).collect();
                prop_assert!(rounds.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    const MATRIX: &str = r#"name = "demo"
description = "two axes"
[matrix]
jdk = ["17", "21"]
gc = ["G1", "Parallel"]
include = [{ jdk = "22", gc = "Z" }]
[environment]
image = "temurin:{jdk}"
env = { OPTS = "-XX:+Use{gc}GC" }
volumes = ["/tmp:/data:ro"]
[limits]
cpus = "0-1"
cpu-quota = 1.0
memory = "1GiB"
pids = 64
[run]
command = "java -jar 'app.jar'"
warmup = 2
runs = 5
timeout = "2m"
seed = 5
[[metric]]
name = "score"
pattern = '(\d+)'
unit = "ops/s"
better = "higher"
"#;

    fn matrix() -> Matrix {
        spec::parse(MATRIX, Path::new("envs/demo.toml"), &ctx()).unwrap()
    }

    #[test]
    fn only_filters_and_across_axes_or_within_one() {
        let m = matrix();
        let only =
            |e: &[&str]| filter_only(&m, &e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(only(&[]).unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(only(&["jdk=17"]).unwrap(), [0, 1]);
        assert_eq!(only(&["jdk=17", "jdk=22"]).unwrap(), [0, 1, 4]);
        assert_eq!(only(&["jdk=17", "gc=Parallel"]).unwrap(), [1]);
        assert_eq!(only(&[" gc = Z "]).unwrap(), [4]);
        assert_eq!(
            only(&["jkd=17"]).unwrap_err().to_string(),
            "unknown axis `jkd` in --only `jkd=17`\n  hint: did you mean `jdk`? axes: jdk, gc"
        );
        assert_eq!(
            only(&["jdk=18"]).unwrap_err().to_string(),
            "axis `jdk` has no value `18` (in --only `jdk=18`)\n  hint: values of `jdk`: 17, 21, 22"
        );
        assert_eq!(
            only(&["jdk"]).unwrap_err().to_string(),
            "invalid --only `jdk`: expected `axis=value`\n  hint: for example --only jdk=17"
        );
        let e = only(&["jdk=17", "gc=Z"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--only jdk=17 gc=Z matches no cell\n  hint: `benchbox plan` lists the cells"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn only_compares_numbers_as_numbers_strings_as_text_and_booleans() {
        let m = spec::parse(
            "[matrix]\nquota = [0.5, 1, 2.0]\nver = [\"1.1\", \"1.10\"]\nturbo = [true, false]\n[run]\ncommand = \"true\"\n",
            Path::new("envs/typed.toml"),
            &ctx(),
        )
        .unwrap();
        let only = |e: &[&str]| {
            filter_only(&m, &e.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(|cells| {
                cells
                    .iter()
                    .map(|&i| m.cells[i].label.clone())
                    .collect::<Vec<_>>()
            })
        };
        let quota_half = only(&["quota=0.50", "ver=1.1", "turbo=true"]).unwrap();
        assert_eq!(quota_half, ["quota=0.5 ver=1.1 turbo=true"]);
        // `1.0` names the integer 1, `2` the float 2.0.
        assert_eq!(
            only(&["quota=1.0", "ver=1.10", "turbo=false"]).unwrap(),
            ["quota=1 ver=1.10 turbo=false"]
        );
        assert_eq!(
            only(&["quota=2", "ver=1.10", "turbo=false"]).unwrap(),
            ["quota=2.0 ver=1.10 turbo=false"]
        );
        assert_eq!(only(&["quota=.5", "quota=2e0"]).unwrap().len(), 8);
        // A version string is text: `1.100` is not `1.10`.
        assert_eq!(
            only(&["ver=1.100"]).unwrap_err().to_string(),
            "axis `ver` has no value `1.100` (in --only `ver=1.100`)\n  hint: values of `ver`: 1.1, 1.10"
        );
        assert_eq!(
            only(&["turbo=yes"]).unwrap_err().to_string(),
            "axis `turbo` has no value `yes` (in --only `turbo=yes`)\n  hint: values of `turbo`: true, false"
        );
        assert_eq!(
            only(&["quota=0.25"]).unwrap_err().to_string(),
            "axis `quota` has no value `0.25` (in --only `quota=0.25`)\n  hint: values of `quota`: 0.5, 1, 2.0"
        );
        assert_eq!(
            only(&["qouta=1"]).unwrap_err().to_string(),
            "unknown axis `qouta` in --only `qouta=1`\n  hint: did you mean `quota`? axes: quota, ver, turbo"
        );
    }

    #[test]
    fn text_rendering() {
        let m = matrix();
        let text = render_text(&m);
        let c = &m.cells[0];
        let expected_cell = format!(
            "{}  jdk=17 gc=G1
  root     image temurin:17 (unpinned)
  volumes  /tmp -> /data (ro)
  env      OPTS=-XX:+UseG1GC
  network  none
  security default
  limits   cpus 0-1, cpu-quota 1 core, memory 1 GiB, pids 64
  command  /bin/sh -c 'java -jar '\\''app.jar'\\'''
  runs     2 warm-up + 5 measured, timeout 2m
  metrics  score (ops/s, higher is better)
",
            c.id
        );
        assert!(text.contains(&expected_cell), "{text}");
        assert!(text.starts_with(&format!(
            "matrix demo (envs/demo.toml, sha256 {})\ntwo axes\n5 cells, interleaved order, seed 5\naxis jdk: 17, 21, 22\naxis gc: G1, Parallel, Z\n",
            &m.source_sha256[..12]
        )), "{text}");
        assert_eq!(text.matches("  root ").count(), 5);
    }

    #[test]
    fn json_rendering() {
        let m = matrix();
        let v: serde_json::Value = serde_json::from_str(&render_json(&m)).unwrap();
        assert_eq!(v["name"], "demo");
        assert_eq!(v["description"], "two axes");
        assert_eq!(v["source_sha256"], m.source_sha256.as_str());
        assert_eq!(v["axes"][0]["name"], "jdk");
        assert_eq!(v["cells"].as_array().unwrap().len(), 5);
        let c = &v["cells"][0];
        assert_eq!(c["id"], m.cells[0].id.as_str());
        assert_eq!(c["root"]["image"], "temurin:17");
        assert_eq!(c["limits"]["cpus"], "0-1");
        assert_eq!(c["limits"]["memory"], 1u64 << 30);
        assert_eq!(c["timeout"], 120.0);
        assert_eq!(c["metrics"][0]["better"], "higher");
        // The default policy is left out, as in plans written before `[security]` existed.
        assert!(c.get("security").is_none(), "{c}");
        let cells: Vec<Cell> = serde_json::from_value(v["cells"].clone()).unwrap();
        assert_eq!(cells, m.cells);
    }

    /// `benchbox plan` writes a matrix cell by cell (built one at a time): the same bytes as
    /// rendering the whole matrix, text and JSON, pinned digests included.
    #[test]
    fn streamed_plans_are_the_rendered_plans() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.toml");
        std::fs::write(&file, MATRIX).unwrap();
        let mut whole = spec::load(&file, &ctx()).unwrap();
        let mut lazy = spec::open(&file, &ctx()).unwrap();
        assert_eq!(
            lazy.image_refs(),
            ["temurin:17", "temurin:21", "temurin:22"]
        );
        for pin in [false, true] {
            if pin {
                let digests: std::collections::BTreeMap<String, String> = [(
                    "temurin:21".to_string(),
                    format!("sha256:{}", "c".repeat(64)),
                )]
                .into();
                spec::pin_images(&mut whole, &digests);
                lazy.pin_images(digests);
            }
            let mut text = Vec::new();
            write_text(&mut text, &lazy).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), render_text(&whole));
            let mut json = Vec::new();
            write_json(&mut json, &lazy).unwrap();
            assert_eq!(String::from_utf8(json).unwrap(), render_json(&whole));
        }
        assert!(render_text(&whole).contains(&format!("@ sha256:{}", "c".repeat(64))));
        // The JSON is what serde makes of the whole plan at once, even with a `cells` key
        // inside an axis value and quotes and newlines in strings.
        let tricky = "description = \"a \\\"cells\\\": []\\n\"\n[matrix]\nv = [{ name = \"x\", cells = [] }]\n[run]\ncommand = \"echo '\\\"cells\\\": []'\"\n";
        for m in [
            whole,
            spec::parse(tricky, Path::new("t.toml"), &ctx()).unwrap(),
        ] {
            let reference = serde_json::to_string_pretty(&show::PlanJson {
                name: &m.name,
                description: m.description.as_deref(),
                source_sha256: &m.source_sha256,
                order: m.order,
                seed: m.seed,
                allow_failures: m.allow_failures,
                axes: &m.axes,
                cells: &m.cells,
                warnings: &m.warnings,
            })
            .unwrap();
            assert_eq!(render_json(&m), reference);
        }
    }

    /// results.json records the plan with its keys sorted (as a `serde_json::Value` of
    /// `plan --json` had them): the typed plan writes those bytes, and reads back to itself.
    #[test]
    fn the_recorded_plan_is_the_sorted_plan_json() {
        #[derive(Serialize)]
        struct Recorded<'a>(#[serde(serialize_with = "serialize_sorted")] &'a Plan);
        let source = MATRIX.replace("[run]", "[security]\ncapabilities = [\"PERFMON\"]\n[run]");
        for m in [
            matrix(),
            spec::parse(&source, Path::new("envs/demo.toml"), &ctx()).unwrap(),
        ] {
            let plan = Plan::of(&m);
            let value: serde_json::Value = serde_json::from_str(&render_json(&m)).unwrap();
            let recorded = serde_json::to_string_pretty(&Recorded(&plan)).unwrap();
            assert_eq!(recorded, serde_json::to_string_pretty(&value).unwrap());
            assert_eq!(serde_json::from_str::<Plan>(&recorded).unwrap(), plan);
        }
    }

    /// Large matrices are rendered on several threads, in batches: still in cell order.
    #[test]
    fn large_streamed_plans_keep_the_cell_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.toml");
        let values: Vec<String> = (0..3001).map(|i| i.to_string()).collect();
        std::fs::write(
            &file,
            format!(
                "[matrix]\nx = [{}]\ny = [\"a\", \"b\"]\n[run]\ncommand = \"echo {{x}} {{y}}\"\n",
                values.join(", ")
            ),
        )
        .unwrap();
        let whole = spec::load(&file, &ctx()).unwrap();
        let lazy = spec::open(&file, &ctx()).unwrap();
        let mut text = Vec::new();
        write_text(&mut text, &lazy).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), render_text(&whole));
        let mut json = Vec::new();
        write_json(&mut json, &lazy).unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), render_json(&whole));
    }

    #[test]
    fn loosened_security_is_shown_per_cell() {
        // Each cell adds the capability its `jdk` value names.
        let source = MATRIX
            .replace("[run]", "[security]\ncapabilities = [\"{jdk}\"]\n[run]")
            .replace(
                "jdk = [\"17\", \"21\"]",
                "jdk = [\"SYS_PTRACE\", \"PERFMON\"]",
            )
            .replace("include = [{ jdk = \"22\", gc = \"Z\" }]", "")
            .replace("image = \"temurin:{jdk}\"", "image = \"temurin:21\"");
        let m = spec::parse(&source, Path::new("envs/demo.toml"), &ctx()).unwrap();
        let text = render_text(&m);
        assert!(text.contains("  security +SYS_PTRACE\n"), "{text}");
        assert!(text.contains("  security +PERFMON\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&render_json(&m)).unwrap();
        assert_eq!(
            v["cells"][0]["security"],
            serde_json::json!({ "capabilities": ["SYS_PTRACE"] })
        );
        let privileged = spec::parse(
            &MATRIX.replace("[run]", "[security]\nprivileged = true\n[run]"),
            Path::new("envs/demo.toml"),
            &ctx(),
        )
        .unwrap();
        assert!(render_text(&privileged).contains(
            "  security privileged (all capabilities, no seccomp filter, kernel files unmasked)\n"
        ));
    }
}
