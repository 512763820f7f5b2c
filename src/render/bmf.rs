//! `bencher.json`: the run in Bencher Metric Format, for `bencher run --adapter json --file
//! bencher.json`. Shape: `{ "<benchmark>": { "<measure>": { "value", "lower_value",
//! "upper_value" } } }`.
//!
//! Mapping (Bencher creates a measure the first time it sees an unknown slug):
//! - benchmark name = the cell label (`"jdk=17 gc=G1"`; `"default"` without axes);
//! - `value` = the median over the cell's invocations, `lower_value`/`upper_value` = the bounds
//!   of the bootstrap interval of the median (left out when there were too few invocations);
//! - wall time -> `latency`, in **nanoseconds**: Bencher's built-in Latency measure, so its
//!   default thresholds and charts apply;
//! - CPU time (user + system) -> `cpu-time`, in nanoseconds, like latency;
//! - peak memory -> `peak-memory`, in bytes;
//! - a custom metric -> its name in kebab case (`Score_ops` -> `score-ops`), in its own unit
//!   (a metric named `throughput` in ops/s thus lands on Bencher's built-in Throughput).

use serde_json::{Map, Value, json};

use super::report_metrics;
use crate::results::RunResults;

/// A Bencher measure slug: lowercase ASCII letters and digits, runs of anything else as `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    // Bencher limits slugs to 64 characters.
    out.chars().take(64).collect()
}

/// The measure slug and the factor from the raw unit to the measure's unit.
fn measure(key: &str) -> (String, f64) {
    match key {
        "wall_s" => ("latency".into(), 1e9),
        "cpu_s" => ("cpu-time".into(), 1e9),
        "peak_memory_bytes" => ("peak-memory".into(), 1.0),
        other => (slug(other), 1.0),
    }
}

/// The run as Bencher Metric Format JSON (pretty-printed; keys sorted, so the bytes are stable).
pub fn bmf_json(results: &RunResults) -> String {
    let metrics = report_metrics(results);
    let mut doc = Map::new();
    for cell in &results.cells {
        let mut measures = Map::new();
        for metric in &metrics {
            let Some(s) = cell.summary.get(&metric.key) else {
                continue;
            };
            let (name, factor) = measure(&metric.key);
            let mut m = Map::new();
            m.insert("value".into(), json!(s.median * factor));
            if let Some(ci) = s.median_ci {
                m.insert("lower_value".into(), json!(ci.lower * factor));
                m.insert("upper_value".into(), json!(ci.upper * factor));
            }
            measures.insert(name, Value::Object(m));
        }
        if !measures.is_empty() {
            doc.insert(cell.label.clone(), Value::Object(measures));
        }
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(doc)).expect("json of plain values");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_kebab_case() {
        assert_eq!(slug("Score_ops"), "score-ops");
        assert_eq!(slug("  GC pause (p99) "), "gc-pause-p99");
        assert_eq!(measure("wall_s"), ("latency".to_string(), 1e9));
    }
}
