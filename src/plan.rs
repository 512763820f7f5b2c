//! The plan: which cells to run (`--only`), in which order (`schedule`), and how
//! `benchbox plan` shows a matrix (`render_text`, `render_json`).
//!
//! Pure: cells in, slots out. The interleaved order puts every cell's invocation `r` in round
//! `r`, and shuffles each round with a PRNG seeded from the run's seed and the round number, so
//! drift (thermal, background load) hits all cells alike, and a recorded seed reproduces the
//! exact order. Round `r` covers warm-up `r` while `r < warmup`, then measured run
//! `r - warmup`; cells with fewer invocations drop out of later rounds.

use std::collections::HashSet;
use std::fmt;
use std::fmt::Write as _;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::spec::{Axis, Cell, Matrix, Order, Root, axis_value_text, units};

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
/// expressions on the same axis. Values compare against the axis value's text. No expressions
/// selects every cell.
pub fn filter_only(matrix: &Matrix, exprs: &[String]) -> Result<Vec<usize>, PlanError> {
    // axis index -> accepted value texts
    let mut wanted: Vec<(usize, Vec<String>)> = Vec::new();
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
        let texts = axis_texts(&matrix.axes[ai]);
        if !texts.iter().any(|t| t == value) {
            return Err(PlanError::UnknownValue {
                expr: expr.clone(),
                axis: axis.to_string(),
                value: value.to_string(),
                valid: texts.join(", "),
            });
        }
        match wanted.iter_mut().find(|(i, _)| *i == ai) {
            Some((_, values)) => values.push(value.to_string()),
            None => wanted.push((ai, vec![value.to_string()])),
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
                    .any(|(n, v)| n == name && values.contains(&axis_value_text(v)))
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

/// `benchbox plan FILE`: every cell with what it runs, where and on what.
pub fn render_text(matrix: &Matrix) -> String {
    let mut out = String::new();
    let sha = matrix
        .source_sha256
        .get(..12)
        .unwrap_or(&matrix.source_sha256);
    let _ = writeln!(
        out,
        "matrix {} ({}, sha256 {sha})",
        matrix.name,
        matrix.path.display()
    );
    if let Some(d) = &matrix.description {
        let _ = writeln!(out, "{d}");
    }
    let cells = matrix.cells.len();
    let _ = write!(
        out,
        "{cells} cell{}, {} order",
        if cells == 1 { "" } else { "s" },
        matrix.order
    );
    if let Some(seed) = matrix.seed {
        let _ = write!(out, ", seed {seed}");
    }
    if matrix.allow_failures {
        out.push_str(", failures allowed");
    }
    out.push('\n');
    for axis in &matrix.axes {
        let _ = writeln!(out, "axis {}: {}", axis.name, axis_texts(axis).join(", "));
    }
    for cell in &matrix.cells {
        out.push('\n');
        render_cell(&mut out, cell);
    }
    for w in &matrix.warnings {
        let _ = writeln!(out, "\nwarning: {w}");
    }
    out
}

fn render_cell(out: &mut String, cell: &Cell) {
    let _ = writeln!(out, "{}  {}", cell.id, cell.label);
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "  {key:<8} {value}");
    };
    line(
        "root",
        match &cell.root {
            Root::Host => "host filesystem (read-only)".to_string(),
            Root::Dir(p) => format!("dir {}", p.display()),
            Root::Image(i) => format!("image {i}"),
        },
    );
    if let Some(w) = &cell.workdir {
        line("workdir", w.display().to_string());
    }
    if !cell.volumes.is_empty() {
        let vols: Vec<String> = cell
            .volumes
            .iter()
            .map(|v| {
                let mode = if v.read_only { "ro" } else { "rw" };
                format!("{} -> {} ({mode})", v.host.display(), v.target.display())
            })
            .collect();
        line("volumes", vols.join(", "));
    }
    if !cell.env.is_empty() {
        let env: Vec<String> = cell
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        line("env", env.join(" "));
    }
    line("network", cell.network.to_string());
    line("limits", render_limits(cell));
    if let Some(setup) = &cell.setup {
        line("setup", render_argv(setup));
    }
    line("command", render_argv(&cell.command));
    let timeout = match cell.timeout {
        Some(t) => format!("timeout {}", humantime::format_duration(t)),
        None => "no timeout".to_string(),
    };
    line(
        "runs",
        format!(
            "{} warm-up + {} measured, {timeout}",
            cell.warmup, cell.runs
        ),
    );
    if !cell.metrics.is_empty() {
        let metrics: Vec<String> = cell
            .metrics
            .iter()
            .map(|m| match &m.unit {
                Some(u) => format!("{} ({u}, {} is better)", m.name, m.better),
                None => format!("{} ({} is better)", m.name, m.better),
            })
            .collect();
        line("metrics", metrics.join(", "));
    }
}

fn render_limits(cell: &Cell) -> String {
    let l = &cell.limits;
    let mut parts = Vec::new();
    if let Some(c) = &l.cpus {
        parts.push(format!("cpus {c}"));
    }
    if let Some(q) = l.cpu_quota {
        parts.push(format!(
            "cpu-quota {q} core{}",
            if q == 1.0 { "" } else { "s" }
        ));
    }
    if let Some(m) = l.memory {
        parts.push(format!("memory {}", units::format_size(m)));
    }
    if let Some(p) = l.pids {
        parts.push(format!("pids {p}"));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// argv as a shell would need it typed.
fn render_argv(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `benchbox plan FILE --json`.
pub fn render_json(matrix: &Matrix) -> String {
    #[derive(Serialize)]
    struct PlanJson<'a> {
        name: &'a str,
        description: &'a Option<String>,
        source_sha256: &'a str,
        order: Order,
        seed: Option<u64>,
        allow_failures: bool,
        axes: &'a [Axis],
        cells: &'a [Cell],
        warnings: &'a [String],
    }
    let plan = PlanJson {
        name: &matrix.name,
        description: &matrix.description,
        source_sha256: &matrix.source_sha256,
        order: matrix.order,
        seed: matrix.seed,
        allow_failures: matrix.allow_failures,
        axes: &matrix.axes,
        cells: &matrix.cells,
        warnings: &matrix.warnings,
    };
    // Serializing plain data into a String cannot fail; keep a visible fallback anyway.
    serde_json::to_string_pretty(&plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
