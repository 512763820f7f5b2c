//! `benchbox compare`'s outputs: the terminal table, Markdown (a PR comment,
//! `$GITHUB_STEP_SUMMARY`) and JSON of a [`Comparison`]. Pure: the comparison in, text out;
//! every number and verdict comes from [`crate::compare`], which decides them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::compare::{Comparison, significant_q};
use crate::metrics::{self, Metric};
use crate::results::RunResults;

struct Row {
    cells: Vec<String>,
}

fn rows(cmp: &Comparison, infos: &BTreeMap<String, Metric>) -> Vec<Row> {
    cmp.pairs
        .iter()
        .map(|p| {
            let info = &infos[&p.metric];
            let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| info.format(v));
            let change = p
                .ratio
                .map_or("-".to_string(), |r| format!("{:+.1}%", (r - 1.0) * 100.0));
            let ci = p.ci.map_or("-".to_string(), |ci| {
                format!(
                    "{:+.1}% to {:+.1}%",
                    (ci.lower - 1.0) * 100.0,
                    (ci.upper - 1.0) * 100.0
                )
            });
            let mut verdict = p.verdict.as_str().to_uppercase();
            if let Some(n) = &p.note {
                verdict = format!("{verdict} ({n})");
            }
            Row {
                cells: vec![
                    p.label.clone(),
                    p.metric.clone(),
                    format!("{} / {}", p.base_n, p.candidate_n),
                    fmt(p.base_median),
                    fmt(p.candidate_median),
                    change,
                    ci,
                    p.q_value.map_or("-".into(), significant_q),
                    verdict,
                ],
            }
        })
        .collect()
}

const HEADER: [&str; 9] = [
    "cell",
    "metric",
    "n (base / cand.)",
    "base median",
    "candidate median",
    "change",
    "CI of change",
    "q",
    "verdict",
];

fn infos(cmp: &Comparison, candidate: &RunResults) -> BTreeMap<String, Metric> {
    cmp.metrics
        .iter()
        .map(|m| (m.clone(), metrics::metric(candidate, m)))
        .collect()
}

fn headline(cmp: &Comparison, strict: bool) -> String {
    let code = cmp.exit_code(strict);
    format!(
        "{} regression(s), {} improvement(s), {} unchanged, {} inconclusive{}: {}",
        cmp.regressions,
        cmp.improvements,
        cmp.unchanged,
        cmp.inconclusive,
        if strict { " (strict)" } else { "" },
        if code == crate::exit::OK {
            "pass".to_string()
        } else if code == crate::exit::NOTHING_COMPARABLE {
            format!("FAIL (exit {code}: nothing comparable)")
        } else {
            format!("FAIL (exit {code})")
        }
    )
}

/// What was compared and how; `quote` shows a run id (a code span in Markdown).
fn method_line(cmp: &Comparison, quote: fn(&str) -> String) -> String {
    let what = match &cmp.along {
        Some(a) => format!(
            "run {} along {}: each cell vs the cell with {} and the same other values",
            quote(&cmp.base_run),
            quote(&a.axis),
            quote(&format!("{}={}", a.axis, a.base)),
        ),
        None => {
            let revision = |r: &Option<String>| {
                r.as_ref()
                    .map_or_else(String::new, |r| format!(" (revision {})", quote(r)))
            };
            format!(
                "candidate {}{} vs base {}{}",
                quote(&cmp.candidate_run),
                revision(&cmp.candidate_revision),
                quote(&cmp.base_run),
                revision(&cmp.base_revision)
            )
        }
    };
    format!(
        "{what}; change = median ratio - 1 with its {:.0}% bootstrap CI; threshold ±{}%; q = Mann-Whitney p adjusted by Benjamini-Hochberg across {} test(s)",
        cmp.confidence * 100.0,
        percent(cmp.threshold),
        cmp.pairs.len()
    )
}

/// The terminal table. `candidate` supplies metric units and directions.
pub fn table(cmp: &Comparison, candidate: &RunResults, strict: bool) -> String {
    let rows = rows(cmp, &infos(cmp, candidate));
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(&r.cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            // Left-align text columns, right-align numbers; no padding after the last column.
            match i {
                0 | 1 => s.push_str(&format!("{c}{pad}  ")),
                8 => s.push_str(c),
                _ => s.push_str(&format!("{pad}{c}  ")),
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    for w in &cmp.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "{}", method_line(cmp, str::to_string));
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(out, "{}", line(&header));
    for r in &rows {
        let _ = writeln!(out, "{}", line(&r.cells));
    }
    for l in &cmp.unpaired_base {
        let _ = writeln!(out, "only in base: {l}");
    }
    for l in &cmp.unpaired_candidate {
        let _ = writeln!(out, "only in candidate: {l}");
    }
    for n in &cmp.not_comparable {
        let _ = writeln!(out, "not comparable: {n}");
    }
    let _ = writeln!(out, "{}", headline(cmp, strict));
    out
}

/// Markdown for a PR comment or `$GITHUB_STEP_SUMMARY`.
pub fn markdown(cmp: &Comparison, candidate: &RunResults, strict: bool) -> String {
    use crate::markdown::{code, message, text};
    let rows = rows(cmp, &infos(cmp, candidate));
    let mut out = String::new();
    let along = cmp
        .along
        .as_ref()
        .map_or(String::new(), |a| format!(" along {}", code(&a.axis)));
    let _ = writeln!(
        out,
        "## benchbox compare{along}: {}\n",
        text(&headline(cmp, strict))
    );
    for n in &cmp.not_comparable {
        let _ = writeln!(out, "> **not comparable**: {}\n", message(n));
    }
    for w in &cmp.warnings {
        let _ = writeln!(out, "> **warning**: {}\n", message(w));
    }
    let _ = writeln!(out, "{}\n", method_line(cmp, code));
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|---:|---|");
    for r in &rows {
        let cells: Vec<String> = r.cells.iter().map(|c| text(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if !cmp.unpaired_base.is_empty() || !cmp.unpaired_candidate.is_empty() {
        out.push('\n');
        for l in &cmp.unpaired_base {
            let _ = writeln!(out, "- only in base: {}", code(l));
        }
        for l in &cmp.unpaired_candidate {
            let _ = writeln!(out, "- only in candidate: {}", code(l));
        }
    }
    out
}

/// The whole comparison as JSON.
pub fn json(cmp: &Comparison) -> String {
    serde_json::to_string_pretty(cmp).expect("a comparison serializes")
}

/// 0.05 -> "5", 0.025 -> "2.5": the threshold as the user wrote it.
fn percent(fraction: f64) -> String {
    let text = format!("{:.3}", fraction * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::compare;
    use crate::compare::test_support::*;

    #[test]
    fn compare_markdown_escapes_every_value() {
        let evil = "<script>alert(1)</script> ![x](http://evil.example/p.png) | **b**";
        let mut base = run("base`id", vec![cell("x", &[("w", evil)], &TEN)]);
        base.cells.push(cell("only", &[("w", "`tick` <i>")], &TEN));
        let cand = run("cand", vec![cell("x", &[("w", evil)], &TEN)]);
        let md = markdown(&compare(&base, &cand, &fast_opts()), &cand, false);
        assert!(
            // `<i>` appears only inside a code span, where nothing is interpreted.
            !md.contains("<script>") && !md.contains("!["),
            "{md}"
        );
        assert!(md.contains("| w=\\<script\\>alert(1)\\</script\\> \\!\\[x\\](http://evil.example/p.png) \\| \\*\\*b\\*\\* | wall_s |"), "{md}");
        assert!(md.contains("vs base ``base`id``;"), "{md}");
        assert!(md.contains("- only in base: ``w=`tick` <i>``"), "{md}");
    }

    #[test]
    fn renderings_name_the_cell_and_the_verdict() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let base = run(
            "base-run",
            vec![cell(
                "x",
                &[("jdk", "17")],
                &normal(&mut rng, 10, 1.0, 0.01),
            )],
        );
        let cand = run(
            "cand-run",
            vec![cell(
                "x",
                &[("jdk", "17")],
                &normal(&mut rng, 10, 1.5, 0.01),
            )],
        );
        let cmp = compare(&base, &cand, &fast_opts());
        let table = table(&cmp, &cand, false);
        assert!(table.contains("jdk=17"), "{table}");
        assert!(table.contains("REGRESSION"), "{table}");
        assert!(table.trim_end().ends_with("FAIL (exit 10)"), "{table}");
        let md = markdown(&cmp, &cand, false);
        assert!(md.starts_with("## benchbox compare: 1 regression(s), 0 improvement(s), 0 unchanged, 0 inconclusive: FAIL (exit 10)\n"), "{md}");
        assert!(md.contains("| cell | metric | n (base / cand.) |"), "{md}");
        assert!(md.contains("threshold ±5%;"), "{md}");
        assert!(md.contains("| jdk=17 | wall_s | 10 / 10 |"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&json(&cmp)).unwrap();
        assert_eq!(json["pairs"][0]["verdict"], "regression");
        assert_eq!(json["regressions"], 1);
        // No revision recorded: none shown, none in the JSON.
        assert!(!md.contains("revision"), "{md}");
        assert!(json.get("base_revision").is_none());
    }

    #[test]
    fn the_revisions_of_both_runs_are_named() {
        let revision = |id: &str| crate::revision::Revision {
            id: id.into(),
            describe: None,
            branch: None,
            commit_time: None,
            source: crate::revision::Source::Flag,
        };
        let mut base = run("base-run", vec![cell("x", &[("w", "1")], &TEN)]);
        let mut cand = run("cand-run", vec![cell("x", &[("w", "1")], &TEN)]);
        base.revision = Some(revision("v1.0"));
        cand.revision = Some(revision(&"a".repeat(40)));
        let cmp = compare(&base, &cand, &fast_opts());
        let md = markdown(&cmp, &cand, false);
        assert!(
            md.contains("candidate `cand-run` (revision `aaaaaaaaaaaa`) vs base `base-run` (revision `v1.0`)"),
            "{md}"
        );
        let table = table(&cmp, &cand, false);
        assert!(table.contains("(revision aaaaaaaaaaaa)"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&json(&cmp)).unwrap();
        assert_eq!(json["base_revision"], "v1.0");
        assert_eq!(json["candidate_revision"], "aaaaaaaaaaaa");
    }
}
