//! Metrics a workload reports about itself, from two sources:
//!
//! - a `[[metric]]` `pattern`: a regex with one capture group, applied to the invocation's
//!   stdout; when it matches several times the *last* match wins (tools that print progress
//!   end with their final figure);
//! - the `BENCHBOX_METRICS` file: one `name value [unit]` line per metric, `#` comments and
//!   blank lines ignored; a later line for the same name wins.
//!
//! A declared metric found in both takes the file's value (the workload said it explicitly).
//! A service's columns (`db.cpu_s`, ...) are benchbox's own measurement: the workload can set
//! them from neither source (see [`Extractor::for_metrics`]).
//! Pure: strings in, numbers out.

use std::collections::BTreeMap;

use regex::Regex;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub values: BTreeMap<String, f64>,
    /// Units given in the metrics file.
    pub units: BTreeMap<String, String>,
    /// Lines or matches that could not be used, for the log and the run's warnings.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Extractor {
    patterns: Vec<(String, Regex)>,
    /// Names the metrics file may not set: measured by benchbox (a service's columns).
    reserved: Vec<String>,
}

impl Extractor {
    /// The extractor of a cell's declared metrics: the workload's own by their patterns and
    /// the metrics file; a service's columns from neither, so a hostile workload cannot
    /// report its database's CPU time as zero.
    pub fn for_metrics(metrics: &[crate::spec::MetricSpec]) -> Result<Extractor, regex::Error> {
        let (services, own): (Vec<_>, Vec<_>) = metrics.iter().partition(|m| m.service.is_some());
        let mut ex = Extractor::new(own.iter().map(|m| (m.name.as_str(), m.pattern.as_deref())))?;
        ex.reserved = services.into_iter().map(|m| m.name.clone()).collect();
        Ok(ex)
    }

    /// `metrics`: (name, optional pattern). Patterns were validated by `spec`; an invalid one
    /// here is still an error, never a panic.
    pub fn new<'a>(
        metrics: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Extractor, regex::Error> {
        let mut patterns = Vec::new();
        for (name, pattern) in metrics {
            if let Some(p) = pattern {
                patterns.push((name.to_string(), Regex::new(p)?));
            }
        }
        Ok(Extractor {
            patterns,
            reserved: Vec::new(),
        })
    }

    pub fn extract(&self, stdout: &str, metrics_file: &str) -> Extracted {
        let mut out = Extracted::default();
        for (name, regex) in &self.patterns {
            let Some(caps) = regex.captures_iter(stdout).last() else {
                continue;
            };
            let text = caps
                .get(1)
                .or_else(|| caps.get(0))
                .map_or("", |m| m.as_str());
            match parse_number(text) {
                Some(v) => {
                    out.values.insert(name.clone(), v);
                }
                None => out.problems.push(format!(
                    "metric `{name}`: matched `{}`, which is not a number",
                    printable(text)
                )),
            }
        }
        for (lineno, line) in metrics_file.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                out.problems.push(format!(
                    "metrics file line {}: expected `name value [unit]`, got `{}`",
                    lineno + 1,
                    printable(line)
                ));
                continue;
            };
            if name.chars().any(char::is_control) {
                out.problems.push(format!(
                    "metrics file line {}: the name `{}` contains control characters",
                    lineno + 1,
                    printable(name)
                ));
                continue;
            }
            if self.reserved.iter().any(|r| r == name) {
                out.problems.push(format!(
                    "metrics file line {}: `{}` is measured by benchbox, not reported by the workload: ignored",
                    lineno + 1,
                    printable(name)
                ));
                continue;
            }
            let Some(value) = parse_number(value) else {
                out.problems.push(format!(
                    "metrics file line {}: `{}` is not a number",
                    lineno + 1,
                    printable(value)
                ));
                continue;
            };
            out.values.insert(name.to_string(), value);
            if let Some(unit) = parts.next() {
                if unit.chars().any(char::is_control) {
                    out.problems.push(format!(
                        "metrics file line {}: the unit `{}` contains control characters",
                        lineno + 1,
                        printable(unit)
                    ));
                } else {
                    out.units.insert(name.to_string(), unit.to_string());
                }
            }
        }
        out
    }
}

/// Workload text as benchbox quotes it in a message: control characters escaped (a workload
/// must not send escape sequences to the terminal of whoever runs benchbox) and at most 120
/// characters.
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 120 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A number as workloads print it: "1234", "1,234.5" (thousands separators), "1.2e3".
fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|&c| c != ',' && c != '_')
        .collect();
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {

    #[test]
    fn workload_text_in_messages_cannot_drive_the_terminal() {
        let ex = Extractor::new(std::iter::empty()).unwrap();
        let got = ex.extract("", "ok 1\n\u{1b}]0;PWNED\u{7}\nx\u{1b}[2J 3 u\u{1b}[1m\n");
        assert_eq!(got.values.get("ok"), Some(&1.0));
        assert!(!got.values.contains_key("x\u{1b}[2J"));
        let text = got.problems.join("\n");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("\\u{1b}]0;PWNED"), "{text}");
        assert!(got.units.is_empty());
        assert_eq!(printable(&"a".repeat(300)).chars().count(), 121);
    }

    use super::*;

    #[test]
    fn last_regex_match_wins_and_file_overrides() {
        let ex = Extractor::new([
            ("score", Some(r"Score:\s+([0-9.,]+)")),
            ("lat", Some(r"lat=(\d+)")),
            ("file_only", None),
        ])
        .unwrap();
        let got = ex.extract(
            "Score: 1\nScore: 1,234.5\nlat=x\n",
            "# comment\nlat 7 ms\nfile_only 2e3\n\nbroken\nbad x\n",
        );
        assert_eq!(got.values["score"], 1234.5);
        assert_eq!(got.values["lat"], 7.0);
        assert_eq!(got.values["file_only"], 2000.0);
        assert_eq!(got.units["lat"], "ms");
        assert_eq!(got.problems.len(), 2, "{:?}", got.problems);
    }

    /// A service's columns come from its cgroup: a pattern or metrics-file line of the
    /// workload naming one is ignored (a problem), the workload's own metrics are read.
    #[test]
    fn the_workload_cannot_set_a_service_column() {
        let metric =
            |name: &str, pattern: Option<&str>, service: Option<&str>| crate::spec::MetricSpec {
                name: name.into(),
                pattern: pattern.map(Into::into),
                unit: None,
                better: crate::spec::Better::Lower,
                service: service.map(Into::into),
            };
        let ex = Extractor::for_metrics(&[
            metric("ops", Some(r"ops=(\d+)"), None),
            // A pattern on a service column (never made by `spec`) is not applied either.
            metric("db.cpu_s", Some(r"cpu=(\d+)"), Some("db")),
            metric("db.peak_memory_bytes", None, Some("db")),
        ])
        .unwrap();
        let got = ex.extract(
            "ops=5 cpu=0\n",
            "db.cpu_s 0\ndb.peak_memory_bytes 1 B\nfile_only 3\n",
        );
        assert_eq!(got.values.get("ops"), Some(&5.0));
        assert_eq!(got.values.get("file_only"), Some(&3.0));
        assert!(!got.values.contains_key("db.cpu_s"), "{:?}", got.values);
        assert!(!got.values.contains_key("db.peak_memory_bytes"));
        assert!(got.units.is_empty());
        assert_eq!(got.problems.len(), 2, "{:?}", got.problems);
        assert!(
            got.problems[0].contains("`db.cpu_s` is measured by benchbox"),
            "{:?}",
            got.problems
        );
    }

    #[test]
    fn non_numeric_capture_is_a_problem_not_a_value() {
        let ex = Extractor::new([("m", Some(r"m=(\S+)"))]).unwrap();
        let got = ex.extract("m=fast\n", "");
        assert!(got.values.is_empty());
        assert!(got.problems[0].contains("`fast`"));
    }
}
