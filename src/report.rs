//! The summariser: every cell's summaries, warnings and failure counts recomputed from its
//! samples with the run's recorded [`StatsOptions`] ([`summarize`], [`summarize_one`],
//! [`summarize_samples`]); [`crate::rebuild`] runs it on a run read back from runs.csv, and
//! the renderers ([`crate::render`]) show what it computed. The run comes from
//! [`crate::results::load`]: `runs.csv` is the source of truth for the samples and
//! `results.json` only for the metadata; rows missing from runs.csv are shown as "n of N"
//! everywhere, by the warning [`missing_warning`] and the `n` columns of every table.
//!
//! Methods and decisions:
//! - Only invocations with status `ok` enter the statistics; failed and suspect ones are left
//!   out with a warning naming how many and why.
//! - Interval methods and bootstrap cost follow one rule, in [`crate::stats`]
//!   ([`stats::resamples_for`], [`stats::uses_order_statistics`]): large cells get fewer
//!   resamples, and above n = 1,000 order-statistic intervals of the median. A cell the rule
//!   touches gets a note saying what its intervals are ([`method_note`]). Cells are summarized
//!   in parallel (deterministically: each cell's result depends only on its samples and the
//!   seed).

use std::collections::{BTreeMap, BTreeSet};

use crate::metrics;
use crate::plan::Phase;
use crate::reference::ReferenceError;
use crate::results::{CellResult, ResultsError, RunResults, Sample};
use crate::stats::{self, StatsOptions};
use crate::status::{self, Status};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// Summaries per metric (the standard ones and every custom metric the samples carry) over a
/// cell's invocations that count toward the statistics, and a warning when failed or suspect
/// ones were left out.
pub fn summarize_samples(
    samples: &[Sample],
    opts: &StatsOptions,
) -> (BTreeMap<String, stats::Summary>, Vec<String>) {
    let mut names: BTreeSet<String> = metrics::builtin_names()
        .map(|(n, _)| n.to_string())
        .collect();
    // A name is copied once, not once per sample (a merged run has a million of them).
    for name in samples.iter().flat_map(|s| s.metrics.keys()) {
        if !names.contains(name) {
            names.insert(name.clone());
        }
    }
    // The statistics see only measured invocations: the summary says whether warm-ups ran
    // before the first of them, so a slow first one does not ask for a warm-up already there.
    let warmups = samples.iter().filter(|s| s.phase == Phase::Warmup).count() as u32;
    let summaries = names
        .into_iter()
        .filter_map(|name| {
            let mut summary = stats::summarize(&metrics::series(samples, &name), opts)?;
            for w in &mut summary.warnings {
                if let stats::Warning::SlowFirst { after_warmups, .. } = w {
                    *after_warmups = warmups;
                }
            }
            Some((name, summary))
        })
        .collect();
    let mut warnings = Vec::new();
    // A row replaced by a rerun is as if it had not run (the rerun is the invocation).
    let measured = samples
        .iter()
        .filter(|s| s.phase == Phase::Measure && !s.is_replaced());
    let failed = measured.clone().filter(|s| s.status.is_failure()).count();
    if failed > 0 {
        warnings.push(format!("{failed} failed invocation(s) excluded from the statistics\n  hint: see the logs/ directory of the run"));
    }
    let suspect: Vec<&Sample> = measured
        .clone()
        .filter(|s| s.status == Status::Suspect)
        .collect();
    if let Some(first) = suspect.first() {
        let mut kinds: Vec<&str> = Vec::new();
        for s in &suspect {
            let kind = status::suspect_kind(&s.reason);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        warnings.push(format!(
            "{} of {} invocations suspect: {}; excluded from the statistics\n  hint: measured invocation {}: {}; the `reason` column of runs.csv has every one",
            suspect.len(),
            measured.count(),
            kinds.join("; "),
            first.index,
            if first.reason.is_empty() {
                "no reason recorded"
            } else {
                &first.reason
            }
        ));
    }
    if let Some(w) = disturbed_warning(samples) {
        warnings.push(w);
    }
    if let Some(w) = replaced_note(samples) {
        warnings.push(w);
    }
    (summaries, warnings)
}

/// A cell's `disturbed` measured invocations, counted (see [`crate::disturbance`]): they
/// still count toward the statistics, so the reader is told, with the worst one's figures.
fn disturbed_warning(samples: &[Sample]) -> Option<String> {
    let measured: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == Phase::Measure && !s.is_replaced())
        .collect();
    let disturbed: Vec<&Sample> = measured
        .iter()
        .copied()
        .filter(|s| s.flags.contains(&status::Flag::Disturbed) && s.status.counts())
        .collect();
    let worst = disturbed.iter().max_by(|a, b| {
        let share = |s: &Sample| {
            s.measured.disturbance.other_cpu_s.unwrap_or(0.0) / s.measured.wall_s.max(1e-9)
        };
        share(a).total_cmp(&share(b))
    })?;
    let d = &worst.measured.disturbance;
    let scope = d.disturbance_scope.map_or("its", |s| match s {
        crate::disturbance::Scope::Pinned => "its pinned",
        crate::disturbance::Scope::Host => "the host's",
    });
    Some(format!(
        "{} of {} measured invocations disturbed (other tasks or steal took more than the threshold of {scope} CPUs); they count toward the statistics\n  hint: measured invocation {}: other tasks {:.3} s, steal {:.3} s in {:.3} s wall; the `other_cpu_s` and `steal_s` columns of runs.csv have every one; run on a quieter host, or pin the cell to CPUs nothing else uses",
        disturbed.len(),
        measured.iter().filter(|s| s.status.counts()).count(),
        worst.index,
        d.other_cpu_s.unwrap_or(0.0),
        d.steal_s.unwrap_or(0.0),
        worst.measured.wall_s,
    ))
}

/// A cell's measured invocations replaced by a rerun (`[run] rerun-disturbed`), counted: the
/// reader is told the statistics rest on the reruns, and where the replaced rows are.
fn replaced_note(samples: &[Sample]) -> Option<String> {
    let replaced: Vec<u32> = samples
        .iter()
        .filter(|s| s.phase == Phase::Measure && s.is_replaced())
        .map(|s| s.index)
        .collect();
    let first = *replaced.first()?;
    let mut slots = replaced.clone();
    slots.dedup();
    Some(format!(
        "{} disturbed row(s) replaced by a rerun (`[run] rerun-disturbed`) in {} of {} measured invocations: the statistics use the reruns; the replaced rows stay in runs.csv (flagged `disturbed`), left out of them\n  hint: the first in measured invocation {first}; a row flagged `rerun` replaces the row before it of the same invocation",
        replaced.len(),
        slots.len(),
        samples
            .iter()
            .filter(|s| s.phase == Phase::Measure && !s.is_replaced())
            .count(),
    ))
}

// ---------------------------------------------------------------------------
// Loading and rebuilding.

/// Recompute one cell's summaries, warnings and failure count from its samples.
pub fn summarize_one(cell: &mut CellResult, opts: &StatsOptions) {
    let (summary, mut warnings) = summarize_samples(&cell.samples, opts);
    let n = cell
        .samples
        .iter()
        .filter(|s| s.counts_toward_statistics())
        .count();
    warnings.extend(method_note(n, opts));
    cell.summary = summary;
    cell.warnings = warnings;
    if let Some(missing) = missing_warning(cell) {
        cell.warnings.insert(0, missing);
    }
    if let Some(adaptive) = cell.adaptive {
        cell.warnings.push(adaptive.describe());
    }
    cell.failures = cell.count_failures();
    cell.suspect = cell.count_suspect();
    cell.disturbed = cell.count_disturbed();
    cell.reruns = cell.count_replaced();
}

/// What a cell of `n` invocations that count gets from the large-sample rule, in words; None
/// when its intervals are the plain bootstrap with the recorded resamples.
pub fn method_note(n: usize, opts: &StatsOptions) -> Option<String> {
    let resamples = stats::resamples_for(n, opts);
    if stats::uses_order_statistics(n, opts) {
        Some(format!(
            "the cell has {n} invocations, so the intervals of its medians and of their ratios come from order statistics (distribution-free, no resampling) and its means' from Student's t\n  hint: give `--resamples` to bootstrap every interval with that many resamples"
        ))
    } else if resamples < opts.resamples {
        Some(format!(
            "the cell has {n} invocations, so its bootstrap intervals use {resamples} resamples (not {})\n  hint: at this n the intervals are narrow and the Monte Carlo error of their endpoints is small next to their width",
            opts.resamples
        ))
    } else {
        None
    }
}

/// "4 of 6 measured invocations in runs.csv (2 missing) ..." when the cell has fewer rows than
/// its plan (an interrupted run, rows deleted). Not for a cell whose setup failed: its setup
/// error says why nothing ran.
pub fn missing_warning(cell: &CellResult) -> Option<String> {
    let planned = cell.planned?;
    if cell.setup_error.is_some() {
        return None;
    }
    let measured = cell.count_measured();
    let warmups = cell.samples.len() - measured;
    let runs = cell.expected_runs(planned);
    if measured >= runs as usize && warmups >= planned.warmup as usize {
        return None;
    }
    let mut parts = vec![format!(
        "{measured} of {runs} measured invocations in runs.csv ({} missing)",
        (runs as usize).saturating_sub(measured)
    )];
    if warmups < planned.warmup as usize {
        parts.push(format!("{warmups} of {} warm-ups", planned.warmup));
    }
    Some(format!(
        "{}; the statistics cover only the invocations present\n  hint: finish the run with `benchbox run MATRIX --resume RUN`",
        parts.join(", ")
    ))
}

/// Recompute every cell's summaries with the run's recorded options, using all cores. Each
/// cell's result depends only on its samples and the seed, so the thread split cannot change
/// a byte.
pub fn summarize(run: &mut RunResults) {
    let opts = run.stats;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Interleave cells across threads so big and small cells spread evenly.
    let mut buckets: Vec<Vec<&mut CellResult>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, cell) in run.cells.iter_mut().enumerate() {
        buckets[i % threads].push(cell);
    }
    std::thread::scope(|scope| {
        for bucket in buckets {
            scope.spawn(move || {
                for cell in bucket {
                    summarize_one(cell, &opts);
                }
            });
        }
    });
    stratify_by_host(run);
    note_cell_lifetime_services(run);
}

/// A cell whose services live for the whole cell ran its invocations one after another, not
/// interleaved with the other cells' (see the runner): its notes say so, in every report.
fn note_cell_lifetime_services(run: &mut RunResults) {
    let together: std::collections::HashSet<&str> = run
        .plan
        .cells
        .iter()
        .filter(|c| c.keeps_services_up())
        .map(|c| c.id.as_str())
        .collect();
    if run.cells.len() < 2 || together.is_empty() {
        return;
    }
    for cell in &mut run.cells {
        if together.contains(cell.id.as_str()) {
            cell.warnings.push(
                "its services live for the whole cell (`lifetime = \"cell\"`), so its invocations ran one after another, not interleaved with the other cells': a drift of the host over the run shows between cells as a difference\n  hint: `lifetime = \"invocation\"` (the default) interleaves the cell with the others, a fresh service for each invocation".into(),
            );
        }
    }
}

/// A run merged from shards on more than one host: each summary's median interval is
/// bootstrapped within hosts (the machine is a block), each cell says how far its hosts'
/// median wall times are apart, and a cell measured on one host only says so.
fn stratify_by_host(run: &mut RunResults) {
    let mut all: Vec<&str> = run
        .cells
        .iter()
        .flat_map(|c| c.sample_hosts.iter().map(|h| &**h))
        .collect();
    all.sort_unstable();
    all.dedup();
    let hosts = all.len();
    if hosts < 2 {
        return;
    }
    let opts = run.stats;
    for cell in &mut run.cells {
        // The hosts of the invocations that count (a shard may have run only warm-ups).
        let mut own: Vec<String> = cell
            .samples
            .iter()
            .zip(&cell.sample_hosts)
            .filter(|(s, _)| s.counts_toward_statistics())
            .map(|(_, h)| h.to_string())
            .collect();
        own.sort_unstable();
        own.dedup();
        if own.len() < 2 {
            if let Some(only) = own.first() {
                cell.warnings.push(format!(
                    "measured on host `{only}` only (the run has {hosts}): its numbers and ratios reflect that machine alone"
                ));
            }
            continue;
        }
        // Above the large-cell rule the pooled order-statistic interval stands (see
        // `stats::stratified_median_interval`): no strata to gather for that metric.
        let keys: Vec<String> = cell
            .summary
            .iter()
            .filter(|(_, summary)| !stats::uses_order_statistics(summary.n, &opts))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            let strata = metrics::values_by_host(cell, &key);
            if let Some(ci) = stats::stratified_median_interval(&strata, &opts)
                && let Some(summary) = cell.summary.get_mut(&key)
            {
                summary.median_ci = Some(ci);
            }
        }
        let strata = metrics::values_by_host(cell, "wall_s");
        if let Some((medians, spread)) = stats::between_host_spread(&strata) {
            let each: Vec<String> = own
                .iter()
                .zip(&medians)
                .map(|(h, m)| format!("{h} {}", crate::metrics::human_seconds(*m)))
                .collect();
            cell.warnings.push(format!(
                "measured on {} hosts: their median wall times are {:.1}% apart ({}); intervals are bootstrapped within each host",
                own.len(),
                spread * 100.0,
                each.join(", ")
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::results::CsvWriter;
    use crate::sandbox::security::Policy;
    use crate::spec::Axis;
    use crate::status::RunStatus;

    pub fn sample(cell: &str, phase: Phase, i: u32, wall: f64, ops: f64) -> Sample {
        Sample {
            cell_id: cell.into(),
            phase,
            index: i,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            measured: crate::measurement::Measurement {
                wall_s: wall,
                user_s: wall * 0.75,
                system_s: wall * 0.125,
                peak_memory_bytes: Some(8 << 20),
                io_read_bytes: Some(0),
                io_write_bytes: Some(4096),
                exit_code: Some(0),
                signal: None,
                oom_killed: false,
                timed_out: false,
                rusage: crate::measurement::Rusage {
                    max_rss_bytes: 8 << 20,
                    ..Default::default()
                },
                throttled_s: 0.0,
                pressure: Default::default(),
                disturbance: Default::default(),
                counters: Default::default(),
            },
            status: crate::status::Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: [("ops".to_string(), ops)].into(),
        }
    }

    /// A 2x2 matrix (jdk x gc) run directory: jdk=21 is 20% faster than jdk=17, and each cell
    /// has one warm-up and ten measured invocations; the last cell has one failure.
    pub fn drop_lines(dir: &Path, drop: impl Fn(usize, &str) -> bool) {
        let path = dir.join("runs.csv");
        let text: String = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .enumerate()
            .filter(|(i, l)| !drop(i + 1, l))
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        fs::write(path, text).unwrap();
    }

    /// A 2x2 matrix (jdk x gc) run directory: jdk=21 is 20% faster than jdk=17, and each cell
    /// has one warm-up and ten measured invocations; the last cell has one failure.
    pub fn write_run(dir: &Path) -> RunResults {
        write_run_with(dir, 10)
    }

    /// [`write_run`] with `runs` measured invocations per cell; past the tenth, their wall
    /// times spread over 2% more (so large cells have few ties).
    pub fn write_run_with(dir: &Path, runs: u32) -> RunResults {
        let axes = ["jdk", "gc"];
        let combos = [("17", "G1"), ("17", "Par"), ("21", "G1"), ("21", "Par")];
        let mut cells = Vec::new();
        let mut plan_cells = Vec::new();
        let mut csv = CsvWriter::open(
            &dir.join("runs.csv"),
            &axes.map(String::from),
            &[],
            &["ops".to_string()],
        )
        .unwrap();
        for (k, (jdk, gc)) in combos.iter().enumerate() {
            let id = format!("cell{k}");
            let label = format!("jdk={jdk} gc={gc}");
            let base = if *jdk == "17" { 1.0 } else { 0.8 } * if *gc == "G1" { 1.0 } else { 1.1 };
            let mut samples = vec![sample(&id, Phase::Warmup, 0, base * 2.0, 1.0)];
            for i in 0..runs {
                let mut jitter = 1.0 + 0.01 * ((i * 7 % 5) as f64 - 2.0);
                if i >= 10 {
                    jitter += 0.02 * f64::from(i * 7_919 % 997) / 997.0;
                }
                samples.push(sample(
                    &id,
                    Phase::Measure,
                    i,
                    base * jitter,
                    100.0 / (base * jitter),
                ));
            }
            if k == 3 {
                samples[10].measured.exit_code = Some(1);
                (samples[10].status, samples[10].reason) = crate::status::judge(&samples[10]);
            }
            for s in &samples {
                csv.append(s, &label, &[jdk.to_string(), gc.to_string()])
                    .unwrap();
            }
            plan_cells.push(crate::plan::test_cell(&id, 1, runs));
            cells.push(CellResult {
                id: id.clone(),
                label,
                slug: id.clone(),
                axes: vec![
                    ("jdk".into(), serde_json::json!(jdk)),
                    ("gc".into(), serde_json::json!(gc)),
                ],
                // Stale samples in results.json must be ignored: runs.csv is the truth.
                samples: vec![sample(&id, Phase::Measure, 0, 99.0, 1.0)],
                // The last cell traces its processes without a seccomp filter.
                security: Some(
                    if k == 3 {
                        Policy {
                            capabilities: vec!["SYS_PTRACE".into()],
                            seccomp_unconfined: true,
                            privileged: false,
                        }
                    } else {
                        Policy::default()
                    }
                    .effective(),
                ),
                ..Default::default()
            });
        }
        let run = RunResults {
            schema_version: 1,
            tool: "benchbox".into(),
            tool_version: "0.1.0".into(),
            run_id: "20260101T000000Z".into(),
            status: RunStatus::Complete,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: Some("2026-01-01T00:01:00.000Z".into()),
            reason: None,
            command_line: vec!["benchbox".into(), "run".into(), "m.toml".into()],
            host: crate::host::HostInfo {
                hostname: "box".into(),
                kernel: "6.1.0".into(),
                cpu_model: "Test CPU @ 3.0GHz".into(),
                logical_cpus: 8,
                cgroup_version: Some("v2".into()),
                governor: Some("performance".into()),
                ..Default::default()
            },
            isolation: None,
            matrix_name: "jvm".into(),
            matrix_path: "envs/jvm.toml".into(),
            matrix_sha256: "ab".repeat(32),
            revision: None,
            seed: 42,
            order: crate::spec::Order::Interleaved,
            stats: StatsOptions {
                resamples: 1000,
                ..Default::default()
            },
            plan: crate::plan::Plan {
                description: Some("two JDKs, two collectors".into()),
                axes: vec![
                    Axis {
                        name: "jdk".into(),
                        values: vec!["17".into(), "21".into()],
                    },
                    Axis {
                        name: "gc".into(),
                        values: vec!["G1".into(), "Par".into()],
                    },
                ],
                cells: plan_cells,
                ..Default::default()
            },
            cells,
            warnings: vec![],
            load_average: None,
            shard: None,
        };
        run.write(dir).unwrap();
        run
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{drop_lines, write_run, write_run_with};
    use super::*;
    use crate::results::{Planned, load};

    #[test]
    fn a_slow_first_invocation_asks_for_a_warm_up_only_when_none_ran() {
        use super::tests_support::sample;
        let slow_first = |warmups: u32| {
            let mut samples: Vec<Sample> = (0..warmups)
                .map(|i| sample("c", Phase::Warmup, i, 5.0, 1.0))
                .collect();
            samples.push(sample("c", Phase::Measure, 0, 2.0, 1.0));
            samples.extend((1..10).map(|i| {
                sample(
                    "c",
                    Phase::Measure,
                    i,
                    if i % 2 == 0 { 1.0 } else { 0.999 },
                    1.0,
                )
            }));
            let (summaries, _) = summarize_samples(&samples, &StatsOptions::default());
            summaries["wall_s"]
                .warnings
                .iter()
                .find(|w| matches!(w, stats::Warning::SlowFirst { .. }))
                .map(|w| w.message())
                .expect("the first measured invocation is the slowest")
        };
        let none = slow_first(0);
        assert!(
            none.contains("hint: add a warm-up invocation (`warmup`)"),
            "{none}"
        );
        for warmups in [1, 3] {
            let after = slow_first(warmups);
            assert!(!after.contains("add a warm-up"), "{after}");
            assert!(
                after.contains(&format!("the first measured invocation was the slowest, 2.00x the median of the rest, after {warmups} warm-up(s)")),
                "{after}"
            );
        }
        // results.json keeps the field only when warm-ups ran: older readers see what they knew.
        let w = stats::Warning::SlowFirst {
            ratio: 2.0,
            after_warmups: 0,
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"kind":"slow_first","ratio":2.0}"#
        );
        let read: stats::Warning =
            serde_json::from_str(r#"{"kind":"slow_first","ratio":2.0}"#).unwrap();
        assert_eq!(read, w);
    }

    #[test]
    fn large_cells_say_which_intervals_they_get() {
        let opts = StatsOptions::default();
        assert_eq!(method_note(100, &opts), None);
        let scaled = method_note(101, &opts).unwrap();
        assert!(
            scaled.contains("use 9900 resamples (not 10000)"),
            "{scaled}"
        );
        let order = method_note(1_001, &opts).unwrap();
        assert!(order.contains("come from order statistics"), "{order}");
        assert!(order.contains("means' from Student's t"), "{order}");
        let explicit = StatsOptions {
            resamples_explicit: true,
            ..opts
        };
        assert_eq!(
            method_note(5_000, &explicit),
            None,
            "an explicit count wins"
        );
    }

    #[test]
    fn large_runs_rebuild_to_the_same_bytes() {
        // Cells past the order-statistic boundary, with a ratio's mixed sizes: two rebuilds of
        // the same runs.csv (and seed) write the same bytes, whatever the thread timing.
        use crate::render::Format;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_run_with(a.path(), 1_200);
        for f in ["results.json", "runs.csv"] {
            std::fs::copy(a.path().join(f), b.path().join(f)).unwrap();
        }
        let formats = [Format::Latex, Format::StatsCsv, Format::Bmf];
        for dir in [a.path(), b.path()] {
            crate::rebuild::rebuild(dir, None, &formats).unwrap();
        }
        for f in [
            "results.json",
            "summary.md",
            "table.tex",
            "results.csv",
            "bencher.json",
        ] {
            let (x, y) = (
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
            );
            assert!(x == y, "{f} differs between two rebuilds");
        }
        let md = std::fs::read_to_string(a.path().join("summary.md")).unwrap();
        assert!(
            md.contains("order statistics for cells over 1000 invocations"),
            "{md}"
        );
    }

    #[test]
    fn not_a_run_directory_has_a_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("is not a benchbox run directory: it has no results.json\n  hint: pass a run directory such as reports/NAME/latest"), "{e}");
    }

    #[test]
    fn the_plan_of_an_older_results_json_comes_from_its_command_line() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let mut meta = RunResults::read(tmp.path()).unwrap();
        meta.command_line = [
            "benchbox",
            "run",
            "m.toml",
            "--runs",
            "12",
            "--warmup=1",
            "--only",
            "jdk=17",
        ]
        .map(String::from)
        .to_vec();
        meta.write(tmp.path()).unwrap();
        drop_lines(tmp.path(), |_, l| {
            l.starts_with("cell2,") || l.starts_with("cell3,")
        });
        let run = load(tmp.path()).unwrap();
        let planned: Vec<Option<Planned>> = run.cells.iter().map(|c| c.planned).collect();
        let twelve = Some(Planned {
            warmup: 1,
            runs: 12,
        });
        // Cells with no rows in a run restricted by --only were not part of it.
        assert_eq!(planned, [twelve, twelve, None, None]);
        // A recorded plan wins: the warm-up row beyond `--warmup=0` is then an error.
        let mut meta = RunResults::read(tmp.path()).unwrap();
        meta.cells[0].planned = Some(Planned {
            warmup: 0,
            runs: 10,
        });
        meta.write(tmp.path()).unwrap();
        let e = load(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 2: warm-up 0 of cell `jdk=17 gc=G1` is beyond the plan (0 warm-ups"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod loader_properties {
    use super::tests_support::write_run;
    use super::*;
    use crate::results::{self, load_checked};
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::fs;

    #[derive(Debug, Clone)]
    enum Mutation {
        /// Cut the file at this fraction (per 10,000) of its length.
        Truncate(usize),
        /// Delete a data line.
        Delete(usize),
        /// Copy a data line to another place.
        Duplicate(usize, usize),
        /// Swap two data lines.
        Swap(usize, usize),
        /// Set one field of a data line.
        SetField(usize, usize, String),
        /// Overwrite one byte anywhere (the header included).
        FlipByte(usize, u8),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let value = prop_oneof![
            prop::sample::select(vec![
                "-1",
                "NaN",
                "inf",
                "-inf",
                "",
                "1e400",
                "2e9",
                "x",
                "-0.5",
                "1.5",
                "18446744073709551616",
                "true",
                "warmup",
                "measure",
                "cell1",
                "cell9",
                "99",
                "0",
                "9",
                "\"",
                ",",
                "ok",
                "failed",
                "suspect",
                "rerun",
                "256",
            ])
            .prop_map(String::from),
            "[ -~]{0,8}",
        ];
        prop_oneof![
            (0usize..10_000).prop_map(Mutation::Truncate),
            (0usize..1000).prop_map(Mutation::Delete),
            (0usize..1000, 0usize..1000).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
            (0usize..1000, 0usize..1000).prop_map(|(a, b)| Mutation::Swap(a, b)),
            (0usize..1000, 0usize..64, value).prop_map(|(l, c, v)| Mutation::SetField(l, c, v)),
            (0usize..100_000, any::<u8>()).prop_map(|(p, b)| Mutation::FlipByte(p, b)),
        ]
    }

    type Counts = BTreeMap<(String, Phase), usize>;

    fn counts_of_lines(lines: &[&str]) -> Counts {
        let mut c = Counts::new();
        for l in lines {
            let f: Vec<&str> = l.split(',').collect();
            let phase = if f[4] == "warmup" {
                Phase::Warmup
            } else {
                Phase::Measure
            };
            *c.entry((f[0].to_string(), phase)).or_default() += 1;
        }
        c
    }

    fn counts_of_run(run: &RunResults) -> Counts {
        let mut c = Counts::new();
        for cell in &run.cells {
            for s in &cell.samples {
                *c.entry((s.cell_id.to_string(), s.phase)).or_default() += 1;
            }
        }
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn mutated_runs_csv_never_panics_nor_miscounts(m in mutation()) {
            let tmp = tempfile::tempdir().unwrap();
            write_run(tmp.path());
            let path = tmp.path().join("runs.csv");
            let original = fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = original.lines().collect();
            let (header, data) = (lines[0], &lines[1..]);
            let n = data.len();
            let join = |rows: &[&str]| {
                let mut t = format!("{header}\n");
                for r in rows {
                    t.push_str(r);
                    t.push('\n');
                }
                t
            };
            let all = counts_of_lines(data);
            let mutated: Vec<u8> = match &m {
                Mutation::Truncate(k) => original.as_bytes()[..original.len() * k / 10_000].to_vec(),
                Mutation::Delete(l) => {
                    let mut rows = data.to_vec();
                    rows.remove(l % n);
                    join(&rows).into_bytes()
                }
                Mutation::Duplicate(a, b) => {
                    let mut rows = data.to_vec();
                    rows.insert(b % (n + 1), data[a % n]);
                    join(&rows).into_bytes()
                }
                Mutation::Swap(a, b) => {
                    let mut rows = data.to_vec();
                    rows.swap(a % n, b % n);
                    join(&rows).into_bytes()
                }
                Mutation::SetField(l, c, v) => {
                    let mut rows: Vec<String> = data.iter().map(|r| r.to_string()).collect();
                    let mut f: Vec<&str> = data[l % n].split(',').collect();
                    let k = c % f.len();
                    f[k] = v;
                    rows[l % n] = f.join(",");
                    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
                    join(&refs).into_bytes()
                }
                Mutation::FlipByte(p, b) => {
                    let mut bytes = original.clone().into_bytes();
                    let at = p % bytes.len();
                    bytes[at] = *b;
                    bytes
                }
            };
            fs::write(&path, &mutated).unwrap();

            match load_checked(tmp.path()) {
                Err(e) => {
                    // Cutting, deleting and reordering rows leave a valid file.
                    prop_assert!(
                        !matches!(m, Mutation::Truncate(_) | Mutation::Delete(_) | Mutation::Swap(..)),
                        "{m:?} was refused: {e}"
                    );
                }
                Ok((mut run, warnings)) => {
                    prop_assert!(!matches!(m, Mutation::Duplicate(..)), "a duplicate was accepted");
                    // No duplicate, nothing beyond the plan, every value in range.
                    let mut seen = HashSet::new();
                    for cell in &run.cells {
                        let planned = cell.planned.unwrap();
                        for s in &cell.samples {
                            prop_assert!(seen.insert((s.cell_id.clone(), s.phase, s.index)));
                            let limit = match s.phase {
                                Phase::Warmup => planned.warmup,
                                Phase::Measure => planned.runs,
                            };
                            prop_assert!(s.index < limit);
                            for v in [s.measured.wall_s, s.measured.user_s, s.measured.system_s, s.measured.throttled_s, s.measured.rusage.user_s, s.measured.rusage.system_s] {
                                prop_assert!(v.is_finite() && (0.0..=results::MAX_SECONDS).contains(&v));
                            }
                            prop_assert!(s.metrics.values().all(|v| v.is_finite()));
                        }
                    }
                    let got = counts_of_run(&run);
                    let expected = match &m {
                        Mutation::Truncate(k) => {
                            // Exactly the rows whose line end made it.
                            let cut = original.len() * k / 10_000;
                            let kept = original[..cut].matches('\n').count().saturating_sub(1);
                            let at_boundary = cut == 0 || original.as_bytes()[cut - 1] == b'\n';
                            prop_assert_eq!(warnings.is_empty(), at_boundary, "{:?}", warnings);
                            Some(counts_of_lines(&data[..kept]))
                        }
                        Mutation::Delete(l) => {
                            prop_assert!(warnings.is_empty());
                            let mut rows = data.to_vec();
                            rows.remove(l % n);
                            Some(counts_of_lines(&rows))
                        }
                        Mutation::Swap(..) => Some(all.clone()),
                        _ => None,
                    };
                    let got_vs = |c: &Counts| -> Counts {
                        c.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.clone(), *v)).collect()
                    };
                    if let Some(expected) = expected {
                        prop_assert_eq!(got_vs(&got), got_vs(&expected));
                    } else if got_vs(&got) != got_vs(&all) {
                        // A row lost to a field or byte change: only ever as a torn last row,
                        // which is said.
                        prop_assert!(!warnings.is_empty(), "{m:?}: counts changed silently");
                        for (k, v) in &got {
                            prop_assert!(v <= all.get(k).unwrap_or(&0), "{m:?}: more rows than written");
                        }
                    }
                    // Every cell with fewer rows than planned says "n of N".
                    summarize(&mut run);
                    for cell in &run.cells {
                        let planned = cell.planned.unwrap();
                        let measured = cell.count_measured();
                        let short = measured < planned.runs as usize
                            || cell.samples.len() - measured < planned.warmup as usize;
                        prop_assert_eq!(short, missing_warning(cell).is_some());
                        prop_assert_eq!(
                            short,
                            cell.warnings.first().is_some_and(|w| w.contains(" measured invocations in runs.csv ("))
                        );
                    }
                }
            }
        }
    }
}
