//! A/B comparison of two runs (`benchbox compare BASE CANDIDATE`): pairing and verdicts. Pure:
//! runs in, a [`Comparison`] out; [`crate::render::compare`] turns it into the terminal table,
//! Markdown and JSON.
//!
//! Methods:
//! - Pairing: cells with the same id; then cells whose ids differ but whose axis values are
//!   identical (and unique on both sides), with a warning naming the settings that differ
//!   (an image digest, a command...). Everything else is listed as unpaired. A pair whose
//!   recorded security policies differ (`[security]`, or benchbox's defaults) gets a warning.
//! - Per pair and metric: the ratio of medians candidate / base with Efron's bootstrap
//!   percentile interval ([`stats::ratio_of_medians`]), a two-sided Mann-Whitney U test
//!   ([`stats::mann_whitney_u`]), and Benjamini-Hochberg q-values across all pairs and metrics
//!   of the report ([`stats::benjamini_hochberg`]).
//! - Verdict with threshold t (see [`verdict`]): for a lower-is-better metric, a regression when
//!   the whole interval lies above 1 + t, an improvement when it lies below 1 - t (mirrored for
//!   higher-is-better), unchanged when it lies within [1 - t, 1 + t], inconclusive otherwise.
//!   Decision where the issue is silent: a regression or an improvement also needs q <= 1 -
//!   confidence (0.05), so testing many cells cannot manufacture a finding; without it, the pair
//!   is inconclusive. A pair without an interval (fewer than 5 invocations a side, a median of
//!   0) is inconclusive.
//! - Exit codes: 0 when no pair regressed, 10 when one did; with `--strict` an inconclusive pair
//!   also gives 10 (one code for "the gate did not pass"). Unpaired cells never fail the gate;
//!   they are listed.
//! - Nothing comparable (exit 6, checked before 10): a gate that compared nothing must not pass.
//!   It fails when no pair of cells was compared; when a run is not `complete` (running,
//!   interrupted), unless `--allow-partial` says a partial run will do; and when a compared cell
//!   has no invocation with status `ok` on a side, or a compared metric has no value on a side
//!   (a `--runs 0` run, a base whose every invocation failed). Decision where the issue is
//!   silent: exit 6 wins over 10, because a comparison with holes is not a verdict on the
//!   change, and the regressions it did find are still listed; `--allow-partial` relaxes only
//!   the completeness of the runs, never a cell with nothing to compare.

use std::collections::HashSet;

use serde::Serialize;

use crate::metrics::{self, Metric};
use crate::reference::axis_texts;
use crate::results::{CellResult, RunResults};
use crate::spec::Better;
use crate::stats::{self, Interval, StatsOptions};
use crate::status::RunStatus;

/// The default `--threshold`: 5%.
pub const DEFAULT_THRESHOLD: f64 = 0.05;

#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Canonical metric names (see [`resolve_metric`]).
    pub metrics: Vec<String>,
    /// Relative change that matters, e.g. 0.05 for 5%.
    pub threshold: f64,
    /// Confidence, resamples and seed of the ratio intervals.
    pub stats: StatsOptions,
    /// A run that is not `complete` (still running, interrupted) is compared with a warning
    /// instead of failing the gate with exit 6.
    pub allow_partial: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            metrics: vec!["wall_s".into()],
            threshold: DEFAULT_THRESHOLD,
            stats: StatsOptions::default(),
            allow_partial: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("unknown metric `{given}`\n  hint: valid metrics are {valid}")]
    UnknownMetric { given: String, valid: String },
    #[error(
        "invalid threshold `{given}`\n  hint: give a percentage such as 5% or 2.5 (meaning 2.5%)"
    )]
    Threshold { given: String },
}

/// `wall`, `cpu`, `memory` and the other aliases, or a standard or custom metric name that one
/// of the runs has.
pub fn resolve_metric(given: &str, runs: &[&RunResults]) -> Result<String, CompareError> {
    let canonical = metrics::canonical(given);
    let mut valid: Vec<String> = Vec::new();
    for run in runs {
        for name in metrics::names(run) {
            if !valid.contains(&name) {
                valid.push(name);
            }
        }
    }
    if valid.contains(&canonical) {
        return Ok(canonical);
    }
    // A custom metric whose name only looks like a service's column (`req.wall`).
    if valid.iter().any(|v| v == given) {
        return Ok(given.to_string());
    }
    Err(CompareError::UnknownMetric {
        given: given.to_string(),
        valid: format!("wall, cpu, memory, {}", valid.join(", ")),
    })
}

/// "5%", "5", "0.05%" -> a fraction (5 and 5% both mean 5%).
pub fn parse_threshold(given: &str) -> Result<f64, CompareError> {
    let number = given.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(CompareError::Threshold {
            given: given.to_string(),
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Regression,
    Improvement,
    Unchanged,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The verdict of one pair from the interval of candidate / base, the metric's direction, the
/// threshold and whether the difference survived the FDR correction. Bounds: "wholly beyond"
/// is strict (an interval touching 1 + t is not a regression), "inside" is inclusive.
pub fn verdict(ci: Option<Interval>, better: Better, threshold: f64, significant: bool) -> Verdict {
    let Some(ci) = ci else {
        return Verdict::Inconclusive;
    };
    let (high, low) = (1.0 + threshold, 1.0 - threshold);
    let above = ci.lower > high;
    let below = ci.upper < low;
    let (worse, better_side) = match better {
        Better::Lower => (above, below),
        Better::Higher => (below, above),
    };
    if worse && significant {
        Verdict::Regression
    } else if better_side && significant {
        Verdict::Improvement
    } else if ci.lower >= low && ci.upper <= high {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    }
}

/// One cell of both runs, for one metric.
#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    pub label: String,
    pub base_id: String,
    pub candidate_id: String,
    pub metric: String,
    pub better: Better,
    pub base_n: usize,
    pub candidate_n: usize,
    pub base_median: Option<f64>,
    pub candidate_median: Option<f64>,
    /// median(candidate) / median(base).
    pub ratio: Option<f64>,
    pub ci: Option<Interval>,
    pub p_value: Option<f64>,
    /// Benjamini-Hochberg adjusted p-value across every pair and metric of the comparison.
    pub q_value: Option<f64>,
    pub verdict: Verdict,
    /// Why the verdict is inconclusive, when something other than the interval decided it.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base_run: String,
    pub candidate_run: String,
    /// The source revisions the two runs measured (short form), when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_revision: Option<String>,
    pub metrics: Vec<String>,
    pub threshold: f64,
    pub confidence: f64,
    pub pairs: Vec<PairResult>,
    /// Labels of base cells with no partner in the candidate.
    pub unpaired_base: Vec<String>,
    pub unpaired_candidate: Vec<String>,
    /// The hosts' fingerprints differ: numbers may not be comparable at all.
    pub host_differs: bool,
    pub warnings: Vec<String>,
    /// Why the comparison cannot pass as a gate (exit 6); empty when it can.
    pub not_comparable: Vec<String>,
    /// Set when the cells of one run were compared along an axis (`compare RUN --along AXIS`);
    /// `base_run` and `candidate_run` are then that run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub along: Option<crate::along::Along>,
    pub regressions: usize,
    pub improvements: usize,
    pub unchanged: usize,
    pub inconclusive: usize,
}

impl Comparison {
    /// 6 (nothing comparable, see the module doc), 10 (a regression; with `strict`, also an
    /// inconclusive pair) or 0 (pass).
    pub fn exit_code(&self, strict: bool) -> i32 {
        if !self.not_comparable.is_empty() {
            crate::exit::NOTHING_COMPARABLE
        } else if self.regressions > 0 || (strict && self.inconclusive > 0) {
            crate::exit::REGRESSION
        } else {
            crate::exit::OK
        }
    }
}

/// Pairs of (base cell index, candidate cell index), and warnings about axis pairing.
fn pair_cells(base: &RunResults, candidate: &RunResults) -> (Vec<(usize, usize)>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut warnings = Vec::new();
    let mut base_left: Vec<usize> = Vec::new();
    let mut cand_used = vec![false; candidate.cells.len()];
    for (i, b) in base.cells.iter().enumerate() {
        match candidate.cells.iter().position(|c| c.id == b.id) {
            Some(j) if !cand_used[j] => {
                cand_used[j] = true;
                pairs.push((i, j));
            }
            _ => base_left.push(i),
        }
    }
    let cand_left: Vec<usize> = (0..candidate.cells.len())
        .filter(|&j| !cand_used[j])
        .collect();
    for &i in &base_left {
        let axes = axis_texts(&base.cells[i]);
        let same_base: Vec<usize> = base_left
            .iter()
            .copied()
            .filter(|&k| axis_texts(&base.cells[k]) == axes)
            .collect();
        let same_cand: Vec<usize> = cand_left
            .iter()
            .copied()
            .filter(|&k| axis_texts(&candidate.cells[k]) == axes)
            .collect();
        // Only an unambiguous match: one cell on each side with these axis values.
        if let ([_], [j]) = (same_base.as_slice(), same_cand.as_slice()) {
            let differs = plan_differences(base, &base.cells[i], candidate, &candidate.cells[*j]);
            warnings.push(format!(
                "cell `{}`: ids differ ({} in base, {} in candidate), paired by axis values; {}\n  hint: make sure the two runs measure the same thing",
                base.cells[i].label,
                base.cells[i].id,
                candidate.cells[*j].id,
                if differs.is_empty() {
                    "the plans do not say what changed (an image digest?)".to_string()
                } else {
                    format!("what changed: {}", differs.join(", "))
                }
            ));
            pairs.push((i, *j));
        }
    }
    (pairs, warnings)
}

/// Top-level settings of a cell's plan entry that differ between the runs (ignoring the id and
/// settings that do not define the cell).
fn plan_differences(
    base: &RunResults,
    b: &CellResult,
    candidate: &RunResults,
    c: &CellResult,
) -> Vec<String> {
    // Compared as JSON objects, key by key. Both sides are read through the typed plan, so a
    // setting one run predates reads as its default there: only values that differ count.
    let find = |run: &RunResults, id: &str| match serde_json::to_value(run.plan.cell(id)?) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    let (Some(pb), Some(pc)) = (find(base, &b.id), find(candidate, &c.id)) else {
        return Vec::new();
    };
    let ignore = [
        "id", "runs", "warmup", "timeout", "metrics", "slug", "label",
    ];
    let mut keys: Vec<&String> = pb.keys().chain(pc.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !ignore.contains(&k.as_str()) && pb.get(*k) != pc.get(*k))
        .cloned()
        .collect()
}

/// A warning when a paired cell ran under different security policies. Compares what each
/// run recorded as effective, so a change of benchbox's defaults between the runs shows too;
/// a run recorded before policies were is not compared.
fn security_difference(b: &CellResult, c: &CellResult) -> Option<String> {
    let (Some(sb), Some(sc)) = (&b.security, &c.security) else {
        return None;
    };
    if sb == sc {
        return None;
    }
    let (db, dc) = (sb.policy().describe(), sc.policy().describe());
    let what = if db != dc {
        format!("base {db}, candidate {dc}")
    } else {
        let only = |x: &[String], y: &[String]| {
            let names: Vec<&str> = x
                .iter()
                .filter(|n| !y.contains(n))
                .map(String::as_str)
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(" ")
            }
        };
        format!(
            "both {db}, but the defaults differ: capabilities only base kept: {}; only candidate kept: {}",
            only(&sb.capabilities, &sc.capabilities),
            only(&sc.capabilities, &sb.capabilities)
        )
    };
    Some(format!(
        "cell `{}`: the runs' security policies differ ({what})\n  hint: what a workload may do can change what it does and how fast; compare runs with the same [security]",
        c.label
    ))
}

/// What differs between two hosts that can move the numbers (CPU model, kernel, cgroup
/// version), one phrase each; `compare` and `merge` warn with them.
pub fn host_differences(a: &crate::host::HostInfo, b: &crate::host::HostInfo) -> Vec<String> {
    let mut out = Vec::new();
    if a.cpu_model != b.cpu_model {
        out.push(format!("CPU model `{}` vs `{}`", a.cpu_model, b.cpu_model));
    }
    if a.kernel != b.kernel {
        out.push(format!("kernel `{}` vs `{}`", a.kernel, b.kernel));
    }
    if a.cgroup_version != b.cgroup_version {
        out.push(format!(
            "cgroup `{}` vs `{}`",
            a.cgroup_version.as_deref().unwrap_or("?"),
            b.cgroup_version.as_deref().unwrap_or("?")
        ));
    }
    out
}

/// Compare `candidate` against `base` (see the module doc for the methods).
pub fn compare(base: &RunResults, candidate: &RunResults, opts: &CompareOptions) -> Comparison {
    let (pairs, mut warnings) = pair_cells(base, candidate);
    let hosts = host_differences(&base.host, &candidate.host);
    if !hosts.is_empty() {
        warnings.insert(
            0,
            format!(
                "THE RUNS COME FROM DIFFERENT HOSTS ({}): differences may come from the machines, not the change\n  hint: run base and candidate on the same machine (in CI: the same runner type, one job)",
                hosts.join("; ")
            ),
        );
    }
    // Host noise over the paired cells: a confound to say, not a verdict to change.
    let noise = crate::noise::compare_warning(
        &crate::noise::RunNoise::of_cells(base, pairs.iter().map(|p| &base.cells[p.0])),
        &crate::noise::RunNoise::of_cells(candidate, pairs.iter().map(|p| &candidate.cells[p.1])),
    );
    warnings.extend(noise);
    let mut cmp = judge(base, candidate, &pairs, warnings, opts, false);
    cmp.host_differs = !hosts.is_empty();
    let paired_base: HashSet<usize> = pairs.iter().map(|p| p.0).collect();
    let paired_cand: HashSet<usize> = pairs.iter().map(|p| p.1).collect();
    cmp.unpaired_base = (0..base.cells.len())
        .filter(|i| !paired_base.contains(i))
        .map(|i| base.cells[i].label.clone())
        .collect();
    cmp.unpaired_candidate = (0..candidate.cells.len())
        .filter(|j| !paired_cand.contains(j))
        .map(|j| candidate.cells[j].label.clone())
        .collect();
    cmp
}

/// The verdicts on `pairs` of (base cell, candidate cell) indices: per metric and pair the
/// ratio, its interval, the test, one FDR correction across all of them, and what makes the
/// comparison unfit to gate. Shared by two runs ([`compare`]) and by the cells of one run
/// along an axis ([`crate::along`]: `one_run`, `base` and `candidate` are that run, and the
/// messages name cells of "the run"). The caller fills in what only its pairing knows
/// (unpaired cells, hosts, the axis).
pub(crate) fn judge(
    base: &RunResults,
    candidate: &RunResults,
    pairs: &[(usize, usize)],
    mut warnings: Vec<String>,
    opts: &CompareOptions,
    one_run: bool,
) -> Comparison {
    for &(i, j) in pairs {
        warnings.extend(security_difference(&base.cells[i], &candidate.cells[j]));
    }
    let alpha = 1.0 - opts.stats.confidence;
    let mut results: Vec<PairResult> = Vec::new();
    for metric in &opts.metrics {
        let info: Metric = metrics::metric(candidate, metric);
        for &(i, j) in pairs {
            let (b, c) = (&base.cells[i], &candidate.cells[j]);
            let bv = metrics::series(&b.samples, metric);
            let cv = metrics::series(&c.samples, metric);
            let median = |v: &[f64]| {
                let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                s.sort_unstable_by(f64::total_cmp);
                (!s.is_empty()).then(|| stats::quantile(&s, 0.5))
            };
            // Runs merged from shards on several hosts: resampled within each host.
            let ratio = stats::stratified_ratio_of_medians(
                &metrics::values_by_host(b, metric),
                &metrics::values_by_host(c, metric),
                &opts.stats,
            );
            let mw = stats::mann_whitney_u(&cv, &bv);
            let note = if bv.is_empty() || cv.is_empty() {
                Some(format!(
                    "no invocation with status ok in {}",
                    if bv.is_empty() { "base" } else { "candidate" }
                ))
            } else if ratio.is_none() {
                Some("ratio undefined (a median is not positive)".into())
            } else if ratio.is_some_and(|r| r.ci.is_none()) {
                Some(format!(
                    "no interval: fewer than {} invocations on a side",
                    stats::MIN_BOOTSTRAP_SAMPLES
                ))
            } else {
                None
            };
            results.push(PairResult {
                label: c.label.clone(),
                base_id: b.id.clone(),
                candidate_id: c.id.clone(),
                metric: metric.clone(),
                better: info.better,
                base_n: bv.len(),
                candidate_n: cv.len(),
                base_median: median(&bv),
                candidate_median: median(&cv),
                ratio: ratio.map(|r| r.ratio),
                ci: ratio.and_then(|r| r.ci),
                p_value: mw.map(|m| m.p_value),
                q_value: None,
                verdict: Verdict::Inconclusive,
                note,
            });
        }
    }
    // One correction across every test of the report.
    let p: Vec<f64> = results
        .iter()
        .map(|r| r.p_value.unwrap_or(f64::NAN))
        .collect();
    let q = stats::benjamini_hochberg(&p);
    for (r, q) in results.iter_mut().zip(q) {
        r.q_value = (!q.is_nan()).then_some(q);
        let significant = r.q_value.is_some_and(|q| q <= alpha);
        r.verdict = verdict(r.ci, r.better, opts.threshold, significant);
        let beyond = r
            .ci
            .is_some_and(|ci| ci.lower > 1.0 + opts.threshold || ci.upper < 1.0 - opts.threshold);
        if beyond && !significant && r.note.is_none() {
            r.note = Some(format!(
                "interval beyond the threshold but q = {} > {alpha:.2} after the FDR correction",
                r.q_value.map_or("-".into(), significant_q)
            ));
        }
    }
    let mut not_comparable = Vec::new();
    let sides: &[(&str, &RunResults)] = if one_run {
        &[("", base)]
    } else {
        &[("base ", base), ("candidate ", candidate)]
    };
    for &(side, run) in sides {
        if run.status != RunStatus::Complete {
            let message = format!(
                "the {side}run {} is {}, not complete",
                run.run_id, run.status
            );
            if opts.allow_partial {
                warnings.push(format!("{message} (compared anyway: --allow-partial)"));
            } else {
                not_comparable.push(format!(
                    "{message}\n  hint: finish it (`benchbox run MATRIX --resume RUN`), or pass --allow-partial to compare what it has"
                ));
            }
        }
    }
    if pairs.is_empty() {
        not_comparable.push(
            "no cell of the base run pairs with a cell of the candidate (by id or by axis values)\n  hint: compare two runs of the same matrix".into(),
        );
    }
    // Along an axis one base cell is in several pairs: each cell with nothing is named once.
    let mut empty_named: HashSet<(bool, usize)> = HashSet::new();
    for &(i, j) in pairs {
        let (b, c) = (&base.cells[i], &candidate.cells[j]);
        for (side, cell, key) in [("base", b, (false, i)), ("candidate", c, (true, j))] {
            if !cell.samples.iter().any(|s| s.counts_toward_statistics()) && empty_named.insert(key)
            {
                let (label, whose) = if one_run {
                    (&cell.label, "the run".to_string())
                } else {
                    (&c.label, format!("the {side} run"))
                };
                not_comparable.push(format!(
                    "cell `{}` has no measured invocation with status ok in {whose} ({} measured, {} failed, {} suspect)",
                    label,
                    cell.n_of_planned(cell.count_measured()),
                    cell.count_failures(),
                    cell.count_suspect()
                ));
            }
        }
    }
    let with_ok = |run: &RunResults| -> HashSet<String> {
        run.cells
            .iter()
            .filter(|x| x.samples.iter().any(|s| s.counts_toward_statistics()))
            .map(|x| x.id.clone())
            .collect()
    };
    let (base_ok, candidate_ok) = (with_ok(base), with_ok(candidate));
    let mut seen: HashSet<String> = HashSet::new();
    for r in &results {
        let (b, c) = (r.base_n == 0, r.candidate_n == 0);
        // A cell without ok invocations is reported once above; here, a metric without values.
        if (b && base_ok.contains(&r.base_id)) || (c && candidate_ok.contains(&r.candidate_id)) {
            let message = if one_run {
                let id = if b { &r.base_id } else { &r.candidate_id };
                let label = base
                    .cells
                    .iter()
                    .find(|x| &x.id == id)
                    .map_or(id, |x| &x.label);
                format!(
                    "cell `{label}`: metric `{}` has no value in the run",
                    r.metric
                )
            } else {
                format!(
                    "cell `{}`: metric `{}` has no value in the {} run",
                    r.label,
                    r.metric,
                    if b { "base" } else { "candidate" }
                )
            };
            if seen.insert(message.clone()) {
                not_comparable.push(message);
            }
        }
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    Comparison {
        base_run: base.run_id.clone(),
        candidate_run: candidate.run_id.clone(),
        base_revision: base.revision.as_ref().map(|r| r.short().to_string()),
        candidate_revision: candidate.revision.as_ref().map(|r| r.short().to_string()),
        metrics: opts.metrics.clone(),
        threshold: opts.threshold,
        confidence: opts.stats.confidence,
        regressions: count(Verdict::Regression),
        improvements: count(Verdict::Improvement),
        unchanged: count(Verdict::Unchanged),
        inconclusive: count(Verdict::Inconclusive),
        pairs: results,
        unpaired_base: Vec::new(),
        unpaired_candidate: Vec::new(),
        host_differs: false,
        along: None,
        warnings,
        not_comparable,
    }
}

/// A q-value as every output shows it: three decimals, "<0.001" below.
pub fn significant_q(q: f64) -> String {
    if q < 0.001 {
        "<0.001".into()
    } else {
        format!("{q:.3}")
    }
}

/// Runs and cells for the tests of this module and of its renderings.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::plan::Phase;
    use crate::results::Sample;
    pub use rand::SeedableRng;
    use rand::distributions::Distribution;
    pub use rand_chacha::ChaCha8Rng;

    pub fn sample(cell: &str, i: u32, wall: f64) -> Sample {
        Sample {
            cell_id: cell.into(),
            phase: Phase::Measure,
            index: i,
            started_at: String::new(),
            measured: crate::measurement::Measurement {
                wall_s: wall,
                user_s: wall * 0.9,
                system_s: wall * 0.1,
                peak_memory_bytes: Some(1 << 20),
                io_read_bytes: Some(0),
                io_write_bytes: Some(0),
                exit_code: Some(0),
                signal: None,
                oom_killed: false,
                timed_out: false,
                rusage: crate::measurement::Rusage {
                    max_rss_bytes: 0,
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
            metrics: Default::default(),
        }
    }

    pub fn cell(id: &str, axes: &[(&str, &str)], walls: &[f64]) -> CellResult {
        CellResult {
            id: id.into(),
            label: axes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            slug: id.into(),
            axes: axes
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                .collect(),
            samples: walls
                .iter()
                .enumerate()
                .map(|(i, w)| sample(id, i as u32, *w))
                .collect(),
            ..Default::default()
        }
    }

    pub fn run(id: &str, cells: Vec<CellResult>) -> RunResults {
        RunResults {
            schema_version: 1,
            tool: "benchbox".into(),
            tool_version: "0".into(),
            run_id: id.into(),
            status: RunStatus::Complete,
            started_at: String::new(),
            finished_at: None,
            reason: None,
            command_line: vec![],
            host: crate::host::HostInfo {
                cpu_model: "Test CPU".into(),
                kernel: "6.1".into(),
                cgroup_version: Some("v2".into()),
                ..Default::default()
            },
            isolation: None,
            matrix_name: "m".into(),
            matrix_path: "m.toml".into(),
            matrix_sha256: "0".repeat(64),
            revision: None,
            seed: 1,
            order: crate::spec::Order::Interleaved,
            stats: StatsOptions::default(),
            plan: Default::default(),
            cells,
            warnings: vec![],
            load_average: None,
            shard: None,
        }
    }

    pub fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let dist = rand_distr_normal();
        (0..n).map(|_| mean + sd * dist.sample(rng)).collect()
    }

    /// Standard normal by Box-Muller (rand 0.8 has no normal distribution without rand_distr).
    fn rand_distr_normal() -> impl Distribution<f64> {
        struct Normal;
        impl Distribution<f64> for Normal {
            fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
                let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
                let u2: f64 = rng.r#gen();
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            }
        }
        Normal
    }

    pub fn fast_opts() -> CompareOptions {
        CompareOptions {
            stats: StatsOptions {
                resamples: 2000,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    pub const TEN: [f64; 10] = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.0];
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn cells_pair_by_id_then_by_axes_with_a_warning() {
        let base = run(
            "b",
            vec![
                cell("aaa", &[("jdk", "17")], &TEN),
                cell("bbb", &[("jdk", "21")], &TEN),
                cell("ccc", &[("jdk", "11")], &TEN),
            ],
        );
        let cand = run(
            "c",
            vec![
                cell("bbb", &[("jdk", "21")], &TEN),
                cell("zzz", &[("jdk", "17")], &TEN),
                cell("ddd", &[("jdk", "22")], &TEN),
            ],
        );
        let cmp = compare(&base, &cand, &fast_opts());
        let got: Vec<(&str, &str)> = cmp
            .pairs
            .iter()
            .map(|p| (p.base_id.as_str(), p.candidate_id.as_str()))
            .collect();
        assert_eq!(got, [("bbb", "bbb"), ("aaa", "zzz")]);
        assert_eq!(cmp.unpaired_base, ["jdk=11"]);
        assert_eq!(cmp.unpaired_candidate, ["jdk=22"]);
        assert_eq!(cmp.warnings.len(), 1, "{:?}", cmp.warnings);
        assert!(cmp.warnings[0].contains("paired by axis values"));
        assert!(cmp.warnings[0].contains("aaa") && cmp.warnings[0].contains("zzz"));
        assert!(!cmp.host_differs);
    }

    #[test]
    fn ambiguous_axis_matches_stay_unpaired() {
        let base = run(
            "b",
            vec![
                cell("a1", &[("x", "1")], &TEN),
                cell("a2", &[("x", "1")], &TEN),
            ],
        );
        let cand = run("c", vec![cell("b1", &[("x", "1")], &TEN)]);
        let cmp = compare(&base, &cand, &fast_opts());
        assert!(cmp.pairs.is_empty());
        assert_eq!(cmp.unpaired_base.len(), 2);
        assert_eq!(cmp.unpaired_candidate.len(), 1);
    }

    #[test]
    fn different_hosts_warn_loudly() {
        let base = run("b", vec![cell("a", &[], &TEN)]);
        let mut cand = run("c", vec![cell("a", &[], &TEN)]);
        cand.host.kernel = "5.10".into();
        cand.host.cgroup_version = Some("v1".into());
        let cmp = compare(&base, &cand, &fast_opts());
        assert!(cmp.host_differs);
        assert!(cmp.warnings[0].starts_with("THE RUNS COME FROM DIFFERENT HOSTS"));
        assert!(cmp.warnings[0].contains("kernel `6.1` vs `5.10`"));
        assert!(cmp.warnings[0].contains("cgroup `v2` vs `v1`"));
        assert!(!cmp.warnings[0].contains("CPU model"));
    }

    #[test]
    fn paired_cells_with_different_policies_warn() {
        use crate::sandbox::security::Policy;
        let with = |id: &str, label: &str, policy: Option<Policy>| CellResult {
            security: policy.map(|p| p.effective()),
            ..cell(id, &[("x", label)], &TEN)
        };
        let ptrace = Policy {
            capabilities: vec!["SYS_PTRACE".into()],
            ..Policy::default()
        };
        let base = run(
            "b",
            vec![
                with("a", "same", Some(Policy::default())),
                with("b", "loosened", Some(Policy::default())),
                with("c", "old", None),
            ],
        );
        let cand = run(
            "c",
            vec![
                with("a", "same", Some(Policy::default())),
                with("b2", "loosened", Some(ptrace)),
                with("c", "old", Some(Policy::default())),
            ],
        );
        let cmp = compare(&base, &cand, &fast_opts());
        assert_eq!(cmp.pairs.len(), 3);
        // One for the id pairing, one for the policies; none for a run that recorded none.
        let security: Vec<&String> = cmp
            .warnings
            .iter()
            .filter(|w| w.contains("security policies"))
            .collect();
        assert_eq!(
            security,
            [
                "cell `x=loosened`: the runs' security policies differ (base default, candidate +SYS_PTRACE)\n  hint: what a workload may do can change what it does and how fast; compare runs with the same [security]"
            ]
        );

        // Same opt-outs, but benchbox's defaults changed between the runs: the kept sets say so.
        let mut older = Policy::default().effective();
        older.capabilities.push("MKNOD".into());
        let base = run(
            "b",
            vec![CellResult {
                security: Some(older),
                ..cell("a", &[], &TEN)
            }],
        );
        let cand = run("c", vec![with("a", "", Some(Policy::default()))]);
        let cmp = compare(&base, &cand, &fast_opts());
        assert!(
            cmp.warnings[0].contains("(both default, but the defaults differ: capabilities only base kept: MKNOD; only candidate kept: none)"),
            "{:?}",
            cmp.warnings
        );
    }

    fn iv(lower: f64, upper: f64) -> Option<Interval> {
        Some(Interval { lower, upper })
    }

    #[test]
    fn verdicts_at_the_boundaries() {
        let t = 0.05;
        let (hi, lo) = (1.0 + t, 1.0 - t);
        use Verdict::*;
        // Lower is better.
        let v = |ci, sig| verdict(ci, Better::Lower, t, sig);
        assert_eq!(
            v(iv(hi, 1.2), true),
            Inconclusive,
            "touching 1+t is not beyond it"
        );
        assert_eq!(v(iv(hi + 1e-9, 1.2), true), Regression);
        assert_eq!(
            v(iv(hi + 1e-9, 1.2), false),
            Inconclusive,
            "needs q <= alpha"
        );
        assert_eq!(v(iv(0.8, lo), true), Inconclusive);
        assert_eq!(v(iv(0.8, lo - 1e-9), true), Improvement);
        assert_eq!(v(iv(lo, hi), false), Unchanged, "inside is inclusive");
        assert_eq!(v(iv(lo - 1e-9, hi), false), Inconclusive);
        assert_eq!(v(iv(lo, hi + 1e-9), false), Inconclusive);
        assert_eq!(v(iv(0.99, 1.01), true), Unchanged);
        assert_eq!(v(iv(0.9, 1.1), true), Inconclusive);
        assert_eq!(v(None, true), Inconclusive);
        // Higher is better: mirrored.
        let v = |ci, sig| verdict(ci, Better::Higher, t, sig);
        assert_eq!(v(iv(0.8, lo - 1e-9), true), Regression);
        assert_eq!(v(iv(hi + 1e-9, 1.2), true), Improvement);
        assert_eq!(v(iv(0.8, lo), true), Inconclusive);
        assert_eq!(v(iv(lo, hi), true), Unchanged);
        // A zero threshold: any significant interval off 1 counts.
        assert_eq!(
            verdict(iv(1.001, 1.002), Better::Lower, 0.0, true),
            Regression
        );
        assert_eq!(verdict(iv(1.0, 1.0), Better::Lower, 0.0, false), Unchanged);
    }

    #[test]
    fn q_values_are_corrected_across_all_pairs() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let ids = ["a", "b", "c", "d"];
        let shifts = [1.0, 1.0, 1.0, 1.3];
        let base = run(
            "b",
            ids.iter()
                .map(|id| cell(id, &[("k", id)], &normal(&mut rng, 10, 1.0, 0.02)))
                .collect(),
        );
        let cand = run(
            "c",
            ids.iter()
                .zip(shifts)
                .map(|(id, s)| cell(id, &[("k", id)], &normal(&mut rng, 10, s, 0.02)))
                .collect(),
        );
        let cmp = compare(&base, &cand, &fast_opts());
        let p: Vec<f64> = cmp.pairs.iter().map(|r| r.p_value.unwrap()).collect();
        let q: Vec<f64> = cmp.pairs.iter().map(|r| r.q_value.unwrap()).collect();
        assert_eq!(q, stats::benjamini_hochberg(&p));
        for (p, q) in p.iter().zip(&q) {
            assert!(q >= p);
        }
        assert_eq!(cmp.pairs[3].verdict, Verdict::Regression);
        assert_eq!(cmp.regressions, 1);
        assert_eq!(cmp.exit_code(false), crate::exit::REGRESSION);
        // Two metrics: the correction spans both.
        let opts = CompareOptions {
            metrics: vec!["wall_s".into(), "cpu_s".into()],
            ..fast_opts()
        };
        let cmp2 = compare(&base, &cand, &opts);
        assert_eq!(cmp2.pairs.len(), 8);
        let p2: Vec<f64> = cmp2.pairs.iter().map(|r| r.p_value.unwrap()).collect();
        let q2: Vec<f64> = cmp2.pairs.iter().map(|r| r.q_value.unwrap()).collect();
        assert_eq!(q2, stats::benjamini_hochberg(&p2));
    }

    #[test]
    fn a_run_compared_with_itself_is_unchanged() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let r = run(
            "r",
            (0..4)
                .map(|i| {
                    let id = format!("c{i}");
                    cell(
                        &id,
                        &[("i", &id)],
                        &normal(&mut rng, 10, 1.0 + i as f64, 0.03),
                    )
                })
                .collect(),
        );
        let cmp = compare(&r, &r, &fast_opts());
        assert_eq!(cmp.regressions, 0);
        assert_eq!(
            cmp.exit_code(true),
            0,
            "{}",
            crate::render::compare::table(&cmp, &r, true)
        );
        assert!(cmp.pairs.iter().all(|p| p.ratio == Some(1.0)));
    }

    /// Two runs of the same distributions (A/A) across many seeds: (almost) never a regression.
    #[test]
    fn a_a_runs_rarely_if_ever_regress() {
        let seeds = 200;
        let mut regressions = 0;
        let mut unchanged = 0;
        for seed in 0..seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
            let mk = |rng: &mut ChaCha8Rng, id| {
                run(
                    id,
                    (0..3)
                        .map(|i| {
                            let id = format!("c{i}");
                            cell(&id, &[("i", &id)], &normal(rng, 10, 1.0, 0.02))
                        })
                        .collect(),
                )
            };
            let (a, b) = (mk(&mut rng, "a"), mk(&mut rng, "b"));
            let cmp = compare(&a, &b, &fast_opts());
            regressions += cmp.regressions;
            unchanged += cmp.unchanged;
        }
        assert_eq!(regressions, 0, "A/A regressions in {seeds} x 3 pairs");
        assert!(unchanged as f64 >= 0.9 * (seeds * 3) as f64, "{unchanged}");
    }

    /// 10% slower, 2% noise, n = 10: called a regression in at least 95% of seeds.
    #[test]
    fn a_ten_percent_shift_is_found() {
        let seeds = 200;
        let mut found = 0;
        for seed in 0..seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(5000 + seed);
            let base = run("a", vec![cell("x", &[], &normal(&mut rng, 10, 1.0, 0.02))]);
            let cand = run("b", vec![cell("x", &[], &normal(&mut rng, 10, 1.1, 0.02))]);
            let cmp = compare(&base, &cand, &fast_opts());
            if cmp.pairs[0].verdict == Verdict::Regression {
                found += 1;
            }
        }
        assert!(found as f64 >= 0.95 * seeds as f64, "{found}/{seeds}");
    }

    #[test]
    fn higher_is_better_custom_metrics_mirror() {
        let with = |v: f64, id: &str| {
            let mut c = cell("x", &[], &TEN);
            for (i, s) in c.samples.iter_mut().enumerate() {
                s.metrics
                    .insert("ops".into(), v * (1.0 + 0.01 * (i % 3) as f64));
            }
            let mut r = run(id, vec![c]);
            r.plan.cells = vec![crate::plan::test_cell("x", 0, 10)];
            r
        };
        let base = with(100.0, "a");
        let cand = with(80.0, "b");
        let metric = resolve_metric("ops", &[&base, &cand]).unwrap();
        let opts = CompareOptions {
            metrics: vec![metric],
            ..fast_opts()
        };
        let cmp = compare(&base, &cand, &opts);
        assert_eq!(
            cmp.pairs[0].verdict,
            Verdict::Regression,
            "fewer ops/s is worse"
        );
        let cmp = compare(&cand, &base, &opts);
        assert_eq!(cmp.pairs[0].verdict, Verdict::Improvement);
    }

    #[test]
    fn metrics_resolve_by_alias_and_unknown_ones_list_the_valid_ones() {
        let r = run("a", vec![cell("x", &[], &TEN)]);
        assert_eq!(resolve_metric("wall", &[&r]).unwrap(), "wall_s");
        assert_eq!(resolve_metric("cpu", &[&r]).unwrap(), "cpu_s");
        assert_eq!(
            resolve_metric("memory", &[&r]).unwrap(),
            "peak_memory_bytes"
        );
        let e = resolve_metric("walltime", &[&r]).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "unknown metric `walltime`\n  hint: valid metrics are wall, cpu, memory, wall_s"
            ),
            "{e}"
        );
        assert_eq!(parse_threshold("5%").unwrap(), 0.05);
        assert_eq!(parse_threshold("2.5").unwrap(), 0.025);
        assert!(parse_threshold("-1").is_err());
        assert!(parse_threshold("x").is_err());
    }

    #[test]
    fn few_invocations_are_inconclusive_and_fail_only_strict() {
        let base = run("a", vec![cell("x", &[], &[1.0, 1.0, 1.0])]);
        let cand = run("b", vec![cell("x", &[], &[2.0, 2.0, 2.0])]);
        let cmp = compare(&base, &cand, &fast_opts());
        assert_eq!(cmp.pairs[0].verdict, Verdict::Inconclusive);
        assert!(
            cmp.pairs[0]
                .note
                .as_deref()
                .unwrap()
                .contains("fewer than 5")
        );
        assert!(cmp.not_comparable.is_empty(), "{:?}", cmp.not_comparable);
        assert_eq!(cmp.exit_code(false), 0);
        assert_eq!(cmp.exit_code(true), crate::exit::REGRESSION);
    }

    /// Regression: a gate that compared nothing passed. Each case is now exit 6.
    #[test]
    fn a_gate_that_compared_nothing_fails_with_exit_6() {
        let six = crate::exit::NOTHING_COMPARABLE;
        let ok = run("a", vec![cell("x", &[("k", "1")], &TEN)]);

        // No cell in common: 0 pairs.
        let other = run("b", vec![cell("z", &[("k", "2")], &TEN)]);
        let cmp = compare(&ok, &other, &fast_opts());
        assert!(cmp.pairs.is_empty());
        assert_eq!(cmp.exit_code(false), six);
        assert!(cmp.not_comparable[0].starts_with("no cell of the base run pairs"));
        assert!(
            crate::render::compare::table(&cmp, &other, false)
                .trim_end()
                .ends_with("FAIL (exit 6: nothing comparable)")
        );

        // A candidate that is interrupted, or still running: 6, unless --allow-partial.
        for status in [RunStatus::Interrupted, RunStatus::Running] {
            let mut partial = run("b", vec![cell("x", &[("k", "1")], &TEN)]);
            partial.status = status;
            let cmp = compare(&ok, &partial, &fast_opts());
            assert_eq!(cmp.exit_code(false), six, "{status}");
            assert_eq!(
                cmp.not_comparable,
                [format!(
                    "the candidate run b is {status}, not complete\n  hint: finish it (`benchbox run MATRIX --resume RUN`), or pass --allow-partial to compare what it has"
                )]
            );
            let allowed = CompareOptions {
                allow_partial: true,
                ..fast_opts()
            };
            let cmp = compare(&ok, &partial, &allowed);
            assert_eq!(cmp.exit_code(false), 0, "{status} with --allow-partial");
            assert!(
                cmp.warnings
                    .iter()
                    .any(|w| w.contains("(compared anyway: --allow-partial)"))
            );
        }

        // A `--runs 0` candidate, and a base whose every invocation failed: no ok invocation.
        let empty = run("b", vec![cell("x", &[("k", "1")], &[])]);
        let cmp = compare(&ok, &empty, &fast_opts());
        assert_eq!(cmp.exit_code(false), six);
        assert_eq!(
            cmp.not_comparable,
            [
                "cell `k=1` has no measured invocation with status ok in the candidate run (0 measured, 0 failed, 0 suspect)"
            ]
        );
        let mut failed = run("a", vec![cell("x", &[("k", "1")], &TEN)]);
        for s in &mut failed.cells[0].samples {
            s.measured.exit_code = Some(1);
            s.status = crate::status::Status::Failed;
        }
        let cmp = compare(
            &failed,
            &ok,
            &CompareOptions {
                allow_partial: true,
                ..fast_opts()
            },
        );
        assert_eq!(
            cmp.exit_code(false),
            six,
            "--allow-partial does not excuse a cell with nothing"
        );
        assert!(
            cmp.not_comparable[0].ends_with("in the base run (10 measured, 10 failed, 0 suspect)")
        );

        // A compared metric without a value on a side.
        let opts = CompareOptions {
            metrics: vec!["ops".into()],
            ..fast_opts()
        };
        let cmp = compare(&ok, &ok, &opts);
        assert_eq!(
            cmp.not_comparable,
            ["cell `k=1`: metric `ops` has no value in the base run"]
        );

        // 6 wins over 10: a regression found beside a hole is listed, but the gate says 6.
        let slow = run(
            "b",
            vec![
                cell("x", &[("k", "1")], &TEN.map(|w| w * 2.0)),
                cell("y", &[("k", "3")], &[]),
            ],
        );
        let base = run(
            "a",
            vec![
                cell("x", &[("k", "1")], &TEN),
                cell("y", &[("k", "3")], &TEN),
            ],
        );
        let cmp = compare(&base, &slow, &fast_opts());
        assert_eq!(cmp.regressions, 1);
        assert_eq!(cmp.exit_code(false), six);
        let md = crate::render::compare::markdown(&cmp, &slow, false);
        assert!(
            md.contains("> **not comparable**: cell `k=3` has no measured invocation"),
            "{md}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&crate::render::compare::json(&cmp)).unwrap();
        assert_eq!(json["not_comparable"].as_array().unwrap().len(), 1);
    }
}
