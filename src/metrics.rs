//! The metric vocabulary, one for every output: the catalogue of built-in metrics (names,
//! aliases, titles, kinds), custom metrics as the plan declares them, the values of a metric in
//! an invocation, and how numbers are written (pure).
//!
//! summary.md, report.html, table.tex, the plots, the terminal and `compare` all describe a
//! metric through [`Metric`]; before it they had two vocabularies that drifted apart.
//!
//! To add a built-in metric: a row in [`BUILTINS`], its value in [`Metric::value`], and its
//! column in runs.csv (`results/runs_csv.rs`). The perf_event counters are built-in metrics
//! whose values come from `measurement::Counters`.

use std::collections::BTreeSet;

use crate::measurement::Counters;
use crate::results::{CellResult, RunResults, Sample};
use crate::spec::Better;

/// How a metric's values are scaled for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Seconds: shown as µs, ms or s.
    Time,
    /// Bytes: shown as B, KiB, MiB or GiB.
    Bytes,
    /// Anything else: shown in its own unit, unscaled.
    Other,
}

/// One built-in metric.
struct Builtin {
    key: &'static str,
    /// Names accepted on the command line (`compare --metric wall`) and in `[compare]`.
    aliases: &'static [&'static str],
    /// As a heading of report.html, table.tex and the plots.
    title: &'static str,
    /// As a heading of summary.md and in compare's tables (sentence case inside a sentence).
    prose_title: &'static str,
    kind: Kind,
    /// Gets a table in summary.md (custom metrics always do).
    headline: bool,
}

/// The built-in metrics, in the order summary.md and `compare` list them.
const BUILTINS: &[Builtin] = &[
    Builtin {
        key: "wall_s",
        aliases: &["wall"],
        title: "Wall time",
        prose_title: "wall time",
        kind: Kind::Time,
        headline: true,
    },
    Builtin {
        key: "cpu_s",
        aliases: &["cpu"],
        title: "CPU time (user + system)",
        prose_title: "CPU time (user + system)",
        kind: Kind::Time,
        headline: true,
    },
    Builtin {
        key: "peak_memory_bytes",
        aliases: &["memory", "mem", "peak_memory"],
        title: "Peak memory",
        prose_title: "peak memory",
        kind: Kind::Bytes,
        headline: true,
    },
    Builtin {
        key: "max_rss_bytes",
        aliases: &["rss", "max_rss"],
        title: "Max RSS (largest process)",
        prose_title: "max RSS of the largest process",
        kind: Kind::Bytes,
        headline: false,
    },
    Builtin {
        key: "user_s",
        aliases: &["user"],
        title: "User CPU time",
        prose_title: "user CPU time",
        kind: Kind::Time,
        headline: false,
    },
    Builtin {
        key: "system_s",
        aliases: &["system", "sys"],
        title: "System CPU time",
        prose_title: "system CPU time",
        kind: Kind::Time,
        headline: false,
    },
    Builtin {
        key: "io_read_bytes",
        aliases: &["io_read"],
        title: "I/O read",
        prose_title: "I/O read",
        kind: Kind::Bytes,
        headline: false,
    },
    Builtin {
        key: "io_write_bytes",
        aliases: &["io_write"],
        title: "I/O written",
        prose_title: "I/O written",
        kind: Kind::Bytes,
        headline: false,
    },
    // The perf_event counters (`sandbox/counters.rs`; runs.csv's counter columns): absent
    // where not counted, so no summary, report or plot shows them for such a run.
    Builtin {
        key: "task_clock_s",
        aliases: &["task_clock", "task-clock"],
        title: "Task clock (perf_event)",
        prose_title: "task clock (perf_event CPU time)",
        kind: Kind::Time,
        headline: false,
    },
    Builtin {
        key: "context_switches",
        aliases: &["cs", "context-switches"],
        title: "Context switches",
        prose_title: "context switches",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "cpu_migrations",
        aliases: &["migrations", "cpu-migrations"],
        title: "CPU migrations",
        prose_title: "CPU migrations",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "page_faults",
        aliases: &["faults", "page-faults"],
        title: "Page faults",
        prose_title: "page faults",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "instructions",
        aliases: &["instr"],
        title: "Instructions",
        prose_title: "instructions",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "cycles",
        aliases: &[],
        title: "Cycles",
        prose_title: "cycles",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "branches",
        aliases: &[],
        title: "Branches",
        prose_title: "branches",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "branch_misses",
        aliases: &["branch-misses"],
        title: "Branch misses",
        prose_title: "branch misses",
        kind: Kind::Other,
        headline: false,
    },
    Builtin {
        key: "cache_misses",
        aliases: &["cache-misses"],
        title: "Cache misses",
        prose_title: "cache misses",
        kind: Kind::Other,
        headline: false,
    },
];

fn builtin(key: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.key == key)
}

/// Whether `key` is a built-in metric (not a custom one).
pub fn is_builtin(key: &str) -> bool {
    builtin(key).is_some()
}

/// Whether summary.md gives `key` a table: the headline built-ins and every custom metric.
pub fn is_headline(key: &str) -> bool {
    builtin(key).is_none_or(|b| b.headline)
}

/// The keys of the built-in metrics with their command-line aliases, in summary order.
pub fn builtin_names() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    BUILTINS.iter().map(|b| (b.key, b.aliases))
}

/// One metric as every output describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The key in each cell's `summary` (`wall_s`, `cpu_s`, `peak_memory_bytes`, custom names).
    pub key: String,
    /// Heading: "Wall time", "CPU time (user + system)", "Peak memory", or the custom name.
    pub title: String,
    /// The unit of the raw values: "s", "B", a custom unit, or "" when the plan gives none.
    pub unit: String,
    pub kind: Kind,
    pub better: Better,
    /// The service this metric measures (its `NAME.*` columns); `None` for the workload's.
    pub service: Option<String>,
}

impl Metric {
    /// The built-in metric `key`.
    pub fn builtin(key: &str) -> Option<Metric> {
        builtin(key).map(|b| Metric {
            key: b.key.into(),
            title: b.title.into(),
            unit: match b.kind {
                Kind::Bytes => "B",
                Kind::Time => "s",
                Kind::Other => "",
            }
            .into(),
            kind: b.kind,
            better: Better::Lower,
            service: None,
        })
    }

    /// A custom metric: scaled like time when its unit is seconds, like bytes when bytes.
    pub fn custom(key: &str, unit: &str, better: Better) -> Metric {
        Metric {
            key: key.into(),
            title: key.into(),
            unit: unit.into(),
            kind: match unit {
                "s" | "seconds" => Kind::Time,
                "B" | "bytes" => Kind::Bytes,
                _ => Kind::Other,
            },
            better,
            service: None,
        }
    }

    /// A service's column `key` (`db.cpu_s`, declared with `service` = `db`): titled after
    /// what it measures of the service ("db: CPU time (user + system)"), scaled by its unit.
    pub fn service_column(key: &str, service: &str, unit: &str) -> Metric {
        let column = key
            .strip_prefix(service)
            .and_then(|c| c.strip_prefix('.'))
            .unwrap_or(key);
        let what = match (builtin(column), column) {
            (Some(b), _) => b.title,
            (None, "ready_s") => "Time to ready",
            (None, "throttled_s") => "CPU throttled",
            (None, other) => other,
        };
        Metric {
            title: format!("{service}: {what}"),
            service: Some(service.to_string()),
            ..Metric::custom(key, unit, Better::Lower)
        }
    }

    /// What the metric is, where its name alone could mislead (peak memory is not RSS).
    pub fn definition(&self) -> Option<&'static str> {
        match self.key.as_str() {
            "peak_memory_bytes" => Some(
                "Peak memory is the invocation's cgroup memory charge at its highest: the anonymous memory and the page cache of all its processes (and kernel memory on cgroup v2), not a process's RSS (without a cgroup, a rootless run without limits, it is the largest process's max RSS instead: see the isolation line); max_rss_bytes in the data exports is the largest process's max RSS.",
            ),
            _ => None,
        }
    }

    /// The title without explanations, for narrow table headers: "CPU time".
    pub fn short_title(&self) -> &str {
        match self.key.as_str() {
            "cpu_s" => "CPU time",
            _ => &self.title,
        }
    }

    /// The title inside prose (summary.md, compare): "wall time", or "ops (ops/s)" for a
    /// custom metric with a unit.
    pub fn prose_title(&self) -> String {
        match builtin(&self.key) {
            Some(b) => b.prose_title.into(),
            None if self.service.is_some() => self.title.clone(),
            None if self.unit.is_empty() => self.key.clone(),
            None => format!("{} ({})", self.key, self.unit),
        }
    }

    /// "lower is better" / "higher is better".
    pub fn better_text(&self) -> &'static str {
        match self.better {
            Better::Lower => "lower is better",
            Better::Higher => "higher is better",
        }
    }

    /// Words for "this cell is better / worse" by a factor: "faster"/"slower" for the built-in
    /// times (and a service's), "smaller"/"larger" for the built-in sizes (and a service's),
    /// "better"/"worse" for the rest.
    pub fn words(&self) -> (&'static str, &'static str) {
        match self.scaled_kind() {
            Some(Kind::Time) => ("faster", "slower"),
            Some(Kind::Bytes) => ("smaller", "larger"),
            _ => ("better", "worse"),
        }
    }

    /// One value as prose shows it: built-in times and sizes in human units ("12.3 ms",
    /// "1.5 MiB"), anything else with four significant digits and its unit.
    pub fn format(&self, v: f64) -> String {
        match self.scaled_kind() {
            Some(Kind::Time) => human_seconds(v),
            Some(Kind::Bytes) => human_bytes(v),
            _ => {
                let number = significant(v, 4);
                if self.unit.is_empty() {
                    number
                } else {
                    format!("{number} {}", self.unit)
                }
            }
        }
    }

    /// The kind prose scales by: a built-in metric's and a service column's (a user's custom
    /// metric is shown in its own unit, unscaled).
    fn scaled_kind(&self) -> Option<Kind> {
        builtin(&self.key)
            .map(|b| b.kind)
            .or_else(|| self.service.as_ref().map(|_| self.kind))
    }

    /// The value of this metric in one invocation, as the runner summarizes it.
    pub fn value(&self, sample: &Sample) -> Option<f64> {
        value(sample, &self.key)
    }

    /// The values the cell's summary was computed from, finite ones only: see [`series`].
    pub fn values(&self, cell: &CellResult) -> Vec<f64> {
        series(&cell.samples, &self.key)
            .into_iter()
            .filter(|v| v.is_finite())
            .collect()
    }
}

/// The value of metric `key` in one invocation.
pub fn value(sample: &Sample, key: &str) -> Option<f64> {
    Field::of(key).value(sample)
}

/// Where metric `key` is in a sample, found from the key once: a series of a million samples
/// then reads each without matching the key's text again.
#[derive(Clone, Copy)]
enum Field<'k> {
    Wall,
    User,
    System,
    Cpu,
    PeakMemory,
    IoRead,
    IoWrite,
    MaxRss,
    Counter(&'k str),
    Custom(&'k str),
}

impl<'k> Field<'k> {
    fn of(key: &'k str) -> Field<'k> {
        match key {
            "wall_s" => Field::Wall,
            "user_s" => Field::User,
            "system_s" => Field::System,
            "cpu_s" => Field::Cpu,
            "peak_memory_bytes" => Field::PeakMemory,
            "io_read_bytes" => Field::IoRead,
            "io_write_bytes" => Field::IoWrite,
            "max_rss_bytes" => Field::MaxRss,
            counter
                if Counters::SOFTWARE.contains(&counter)
                    || Counters::HARDWARE.contains(&counter) =>
            {
                Field::Counter(counter)
            }
            custom => Field::Custom(custom),
        }
    }

    fn value(self, sample: &Sample) -> Option<f64> {
        let m = &sample.measured;
        match self {
            Field::Wall => Some(m.wall_s),
            Field::User => Some(m.user_s),
            Field::System => Some(m.system_s),
            Field::Cpu => Some(sample.cpu_s()),
            Field::PeakMemory => m.peak_memory_bytes.map(|b| b as f64),
            Field::IoRead => m.io_read_bytes.map(|b| b as f64),
            Field::IoWrite => m.io_write_bytes.map(|b| b as f64),
            // Zero where nothing reaped reported one (a command that never started).
            Field::MaxRss => Some(m.rusage.max_rss_bytes as f64).filter(|b| *b > 0.0),
            // Empty where not counted (counters off, no PMU, refused): no value, never a zero.
            Field::Counter(key) => m.counters.value(key),
            Field::Custom(key) => sample.metrics.get(key).copied(),
        }
    }
}

/// The values of metric `key` over the invocations that count toward the statistics (measured,
/// status `ok`), in invocation order: the series a summary is computed from (non-finite values
/// included: the summariser counts and reports them).
/// [`Metric::values`] grouped by host (in the order of the hosts' names): one group per host
/// of a run merged from shards, one group in one machine's run.
pub fn values_by_host(cell: &CellResult, key: &str) -> Vec<Vec<f64>> {
    if cell.sample_hosts.len() != cell.samples.len() {
        let one: Vec<f64> = series(&cell.samples, key)
            .into_iter()
            .filter(|v| v.is_finite())
            .collect();
        return vec![one];
    }
    // A handful of hosts, and runs of rows from one host: a short list searched from the
    // group last used beats a map lookup per invocation (a merged run has millions).
    let mut groups: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut last = 0;
    let field = Field::of(key);
    for (s, host) in cell.samples.iter().zip(&cell.sample_hosts) {
        if !s.counts_toward_statistics() {
            continue;
        }
        let Some(v) = field.value(s).filter(|v| v.is_finite()) else {
            continue;
        };
        if groups.get(last).is_none_or(|(h, _)| *h != &**host) {
            last = match groups.iter().position(|(h, _)| *h == &**host) {
                Some(i) => i,
                None => {
                    groups.push((host, Vec::new()));
                    groups.len() - 1
                }
            };
        }
        groups[last].1.push(v);
    }
    if groups.is_empty() {
        return vec![Vec::new()];
    }
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    groups.into_iter().map(|(_, values)| values).collect()
}

pub fn series(samples: &[Sample], key: &str) -> Vec<f64> {
    let field = Field::of(key);
    samples
        .iter()
        .filter(|s| s.counts_toward_statistics())
        .filter_map(|s| field.value(s))
        .collect()
}

/// The metric `key` of `run`: a built-in one, or a custom one as the plan declares it (unit and
/// direction from its `[[metric]]`, the first cell that declares it); a custom metric the plan
/// does not declare is lower-is-better, without a unit.
pub fn metric(run: &RunResults, key: &str) -> Metric {
    Metric::builtin(key)
        .or_else(|| declared(run).into_iter().find(|m| m.key == key))
        .unwrap_or_else(|| Metric::custom(key, "", Better::Lower))
}

/// The custom metrics the plan declares, in declaration order (first cell that names one wins).
pub fn declared(run: &RunResults) -> Vec<Metric> {
    let mut out: Vec<Metric> = Vec::new();
    for spec in run.plan.cells.iter().flat_map(|c| &c.metrics) {
        if out.iter().any(|m| m.key == spec.name) {
            continue;
        }
        let unit = spec.unit.as_deref().unwrap_or("");
        out.push(match &spec.service {
            Some(service) => Metric::service_column(&spec.name, service, unit),
            None => Metric::custom(&spec.name, unit, spec.better),
        });
    }
    out
}

fn has_summary(run: &RunResults, key: &str) -> bool {
    run.cells.iter().any(|c| c.summary.contains_key(key))
}

/// Summary keys that are neither built in nor declared by the plan, sorted.
fn undeclared_keys(run: &RunResults, declared: &[Metric]) -> Vec<String> {
    let keys: BTreeSet<&String> = run
        .cells
        .iter()
        .flat_map(|c| c.summary.keys())
        .filter(|k| !is_builtin(k) && !declared.iter().any(|m| &m.key == *k))
        .collect();
    keys.into_iter().cloned().collect()
}

/// The columns of a service the reports show (of `NAME.*`); the others are in the data exports
/// and `compare`.
const SERVICE_REPORT_COLUMNS: [&str; 3] = ["cpu_s", "peak_memory_bytes", "ready_s"];

/// The metrics report.html, table.tex and the plots show, in order: wall time, CPU time, peak
/// memory, then each custom metric of the plan (of a service's columns, its CPU time, peak
/// memory and time to ready), then any other metric found in a summary but not in the plan
/// (one a workload wrote to `BENCHBOX_METRICS` undeclared). Metrics no cell has a summary of
/// are left out.
pub fn report_metrics(run: &RunResults) -> Vec<Metric> {
    let services = service_columns(run);
    let declared = declared(run);
    let shown: Vec<Metric> = declared
        .iter()
        .filter(|m| {
            services
                .get(&m.key)
                .is_none_or(|column| SERVICE_REPORT_COLUMNS.contains(&column.as_str()))
        })
        .cloned()
        .collect();
    let undeclared = undeclared_keys(run, &declared);
    let mut out: Vec<Metric> = BUILTINS
        .iter()
        .filter(|b| b.headline)
        .filter_map(|b| Metric::builtin(b.key))
        .collect();
    out.extend(shown);
    out.extend(
        undeclared
            .iter()
            .map(|key| Metric::custom(key, "", Better::Lower)),
    );
    out.retain(|m| has_summary(run, &m.key));
    out
}

/// The services' columns the plan declares: key (`db.cpu_s`) -> column (`cpu_s`).
fn service_columns(run: &RunResults) -> std::collections::BTreeMap<String, String> {
    run.plan
        .cells
        .iter()
        .flat_map(|c| &c.metrics)
        .filter_map(|spec| {
            let service = spec.service.as_deref()?;
            let column = spec.name.strip_prefix(service)?.strip_prefix('.')?;
            Some((spec.name.clone(), column.to_string()))
        })
        .collect()
}

/// Every metric with statistics, for the data exports: the built-in ones (times, then sizes),
/// then the custom ones as in [`report_metrics`], with every column of a service.
pub fn all_metrics(run: &RunResults) -> Vec<Metric> {
    // Times together, then sizes (then anything else), each in catalogue order.
    let mut out: Vec<Metric> = [Kind::Time, Kind::Bytes, Kind::Other]
        .iter()
        .flat_map(|&kind| BUILTINS.iter().filter(move |b| b.kind == kind))
        .filter_map(|b| Metric::builtin(b.key))
        .collect();
    // Every declared metric (a service's columns all), then the undeclared ones.
    let declared = declared(run);
    let undeclared: Vec<Metric> = report_metrics(run)
        .into_iter()
        .filter(|m| !is_builtin(&m.key) && !declared.iter().any(|d| d.key == m.key))
        .collect();
    out.extend(declared);
    out.extend(undeclared);
    out.retain(|m| has_summary(run, &m.key));
    out
}

/// Every metric name of a run: the built-in ones, then custom ones (declared in the plan, or
/// found in the samples) in name order.
pub fn names(run: &RunResults) -> Vec<String> {
    let mut names: Vec<String> = BUILTINS.iter().map(|b| b.key.to_string()).collect();
    let mut custom = BTreeSet::new();
    for m in declared(run) {
        custom.insert(m.key);
    }
    for cell in &run.cells {
        for s in &cell.samples {
            custom.extend(s.metrics.keys().cloned());
        }
    }
    for name in custom {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The canonical name of `given` (an alias such as `wall`, or a metric name).
/// A service's column is named the same way after its prefix: `db.cpu` is `db.cpu_s`,
/// `db.memory` `db.peak_memory_bytes`, `db.ready` `db.ready_s`, `db.throttled` `db.throttled_s`.
pub fn canonical(given: &str) -> String {
    if let Some(key) = BUILTINS
        .iter()
        .find(|b| b.key == given || b.aliases.contains(&given))
        .map(|b| b.key.to_string())
    {
        return key;
    }
    match given.rsplit_once('.') {
        Some((service, column)) if !service.is_empty() => {
            let column = match column {
                "ready" => "ready_s".to_string(),
                "throttled" => "throttled_s".to_string(),
                other => {
                    let key = canonical(other);
                    if is_builtin(&key) {
                        key
                    } else {
                        return given.to_string();
                    }
                }
            };
            format!("{service}.{column}")
        }
        _ => given.to_string(),
    }
}

// ---- numbers as text ----

/// "500 µs", "12.3 ms", "1.500 s", "2m 5.0s".
pub fn human_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.3} s")
    } else {
        format!("{}m {:.1}s", (s / 60.0).floor(), s % 60.0)
    }
}

/// "512 B", "1.5 KiB", "12.3 MiB".
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `x` with about `digits` significant digits, never in exponent notation: "123.1", "0.0123".
pub fn significant(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i64;
    let decimals = (digits as i64 - 1 - magnitude).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_without_exponents_in_human_units() {
        assert_eq!(human_seconds(0.0005), "500 µs");
        assert_eq!(human_seconds(0.0123), "12.3 ms");
        assert_eq!(human_seconds(1.5), "1.500 s");
        assert_eq!(human_seconds(125.0), "2m 5.0s");
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(64.0 * 1024.0 * 1024.0), "64.0 MiB");
        assert_eq!(significant(123.12, 4), "123.1");
        assert_eq!(significant(0.012345, 3), "0.0123");
        assert_eq!(significant(2640517.0, 4), "2640517");
        assert_eq!(significant(0.0, 4), "0");
        assert_eq!(significant(f64::NAN, 4), "-");
    }

    #[test]
    fn one_description_per_metric() {
        let wall = Metric::builtin("wall_s").unwrap();
        assert_eq!(
            (wall.title.as_str(), wall.prose_title(), wall.words()),
            ("Wall time", "wall time".to_string(), ("faster", "slower"))
        );
        assert_eq!(wall.format(0.0123), "12.3 ms");
        let mem = Metric::builtin("peak_memory_bytes").unwrap();
        assert_eq!(
            (mem.kind, mem.words()),
            (Kind::Bytes, ("smaller", "larger"))
        );
        let ops = Metric::custom("ops", "ops/s", Better::Higher);
        assert_eq!(
            (
                ops.kind,
                ops.prose_title(),
                ops.format(1234.567),
                ops.words()
            ),
            (
                Kind::Other,
                "ops (ops/s)".to_string(),
                "1235 ops/s".to_string(),
                ("better", "worse")
            )
        );
        // A custom metric in seconds scales like time in the tables, and keeps its own unit in
        // prose.
        let t = Metric::custom("gc_pause", "s", Better::Lower);
        assert_eq!(
            (t.kind, t.format(0.5)),
            (Kind::Time, "0.5000 s".to_string())
        );
        assert_eq!(canonical("mem"), "peak_memory_bytes");
        assert_eq!(canonical("ops"), "ops");
        // A service's columns, by the same short names after its prefix.
        assert_eq!(canonical("db.cpu"), "db.cpu_s");
        assert_eq!(canonical("db.memory"), "db.peak_memory_bytes");
        assert_eq!(canonical("web-1.ready"), "web-1.ready_s");
        assert_eq!(canonical("db.throttled"), "db.throttled_s");
        assert_eq!(canonical("db.cpu_s"), "db.cpu_s");
        assert_eq!(canonical("req.total"), "req.total");
        assert_eq!(canonical(".cpu"), ".cpu");
        assert!(is_headline("cpu_s") && !is_headline("user_s") && is_headline("ops"));
    }
}
