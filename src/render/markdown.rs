//! summary.md: the GitHub-flavoured summary of a run, short enough for a PR comment (and
//! `$GITHUB_STEP_SUMMARY`). A renderer like report.html and table.tex, on the same table model
//! ([`super::Analysis`]): the same metrics in the same order, the same reference
//! cell, the same ratios. Every value is escaped ([`crate::markdown`]): axis values, labels
//! and messages come from the matrix and the workload.
//!
//! Methods:
//! - Ratios to the reference cell are ratios of medians with their interval, computed once in
//!   the analysis ([`stats::ratio_of_medians`]: Efron's bootstrap percentile interval, or for
//!   large cells the order-statistic one); "1.23x faster" means the reference's median is
//!   1.23 times this cell's, for a lower-is-better metric. An interval that holds 1 says "no
//!   clear difference".
//! - Geometric mean of ratios along an axis (Fleming & Wallace 1986: the mean that is
//!   consistent for ratios): for axis A and value v, the cells with A = v are paired with the
//!   cells that have A = the reference's value and identical other axes; the geometric mean of
//!   the pairs' ratios of medians is shown with the range of the individual ratios. The
//!   reference cell's value of each axis is that axis' baseline.

use std::fmt::Write as _;

use super::{Analysis, LimitsInForce, MetricTable, RenderOptions, Result, limits_in_force};
use crate::markdown::code;
use crate::metrics::{self, Metric};
use crate::reference::Reference;
use crate::results::RunResults;
use crate::spec::{Better, axis_value_text};
use crate::stats;

/// summary.md: the run's summary for a PR comment, with ratios against the reference cell
/// `opts` names (see [`crate::reference::choose`]).
pub fn markdown(results: &RunResults, opts: &RenderOptions) -> Result<String> {
    Ok(markdown_of(&Analysis::new(results, opts)?))
}

/// [`markdown`] from the run's analysis: it only reads the summaries and ratios there.
pub fn markdown_of(analysis: &Analysis) -> String {
    let (run, reference) = (analysis.results, analysis.reference.as_ref());
    let mut out = String::new();
    let conf = run.stats.confidence;
    let _ = writeln!(
        out,
        "## benchbox: {} run {}\n",
        code(&run.matrix_name),
        code(&run.run_id)
    );
    if let Some(d) = &run.plan.description {
        let _ = writeln!(out, "{}\n", crate::markdown::line(d));
    }
    let axes: Vec<String> = run
        .plan
        .axes
        .iter()
        .map(|a| {
            let values: Vec<String> = a.values.iter().map(axis_value_text).collect();
            format!("{} ({})", code(&a.name), md(&values.join(", ")))
        })
        .collect();
    let measured: usize = run.cells.iter().map(|c| c.count_measured()).sum();
    let _ = writeln!(
        out,
        "- **matrix**: {} (sha256 {}), {} cell(s){}, {} measured invocation(s), {} order, status {}",
        code(&run.matrix_path),
        code(run.matrix_sha256.get(..12).unwrap_or(&run.matrix_sha256)),
        run.cells.len(),
        if axes.is_empty() {
            String::new()
        } else {
            format!(" over {}", axes.join(" x "))
        },
        measured,
        md(&run.order.to_string()),
        md(run.status.as_str())
    );
    if let Some(r) = &run.revision {
        let _ = writeln!(out, "- **revision**: {}", md(&r.describe_line()));
    }
    let _ = writeln!(out, "- **host**: {}", md(&host_line(run)));
    if let Some(noise) = &run.host.noise {
        let _ = writeln!(out, "- **host noise**: {}", md(&super::noise::line(noise)));
    }
    let _ = writeln!(
        out,
        "- **statistics**: seed {}; medians with {:.0}% {}; only invocations with status ok (failed and suspect ones excluded)",
        run.seed,
        conf * 100.0,
        super::interval_methods(run)
    );
    if let Some(r) = reference {
        let _ = writeln!(
            out,
            "- **reference**: {} ({})",
            code(&run.cells[r.index].label),
            msg(&r.why.to_string())
        );
    }
    if let Some(line) = security_line(run) {
        let _ = writeln!(out, "- **security**: {line}");
    }
    if let Some(isolation) = &run.isolation {
        let _ = writeln!(
            out,
            "- **isolation**: {}; measured: {}",
            md(&isolation.describe()),
            md(&isolation.measures)
        );
        let limits = match limits_in_force(run) {
            LimitsInForce::EveryCell(text) => format!("{} (every cell)", md(&text)),
            LimitsInForce::PerCell(cells) => cells
                .iter()
                .map(|(label, text)| format!("{} {}", code(label), md(text)))
                .collect::<Vec<_>>()
                .join("; "),
        };
        let _ = writeln!(out, "- **limits in force**: {limits}");
    }
    out.push('\n');
    // Loosened cells lead, unfolded: the numbers of a workload that could do more are not the
    // numbers of the hardened default.
    let loosened: Vec<String> = run
        .cells
        .iter()
        .filter_map(|c| c.security_warning())
        .map(|w| msg(&w))
        .collect();
    if !loosened.is_empty() {
        let _ = writeln!(out, "> [!WARNING]\n> {}\n", loosened.join("\n>\n> "));
    }

    // The same metrics, in the same order, as report.html.
    for table in &analysis.tables {
        render_metric_table(&mut out, run, reference, table);
    }

    render_warnings(&mut out, run);
    out
}

/// "1.23x faster (95% CI 1.19 to 1.27)": `ratio` is this cell's median over the reference's
/// (with its interval); the factor is always >= 1 and the word says which way is better.
/// "no clear difference (ratio 1.03, 95% CI 0.97 to 1.09)" when the interval holds 1.
pub fn describe_ratio(
    ratio: f64,
    ci: Option<stats::Interval>,
    info: &Metric,
    confidence: f64,
) -> String {
    // An interval that holds 1 says no more than "no clear difference", in every output
    // (report.html's verdict is the same rule: `render::verdict`).
    if let Some(ci) = ci
        && ci.lower <= 1.0
        && ci.upper >= 1.0
    {
        return format!(
            "no clear difference (ratio {ratio:.2}, {:.0}% CI {:.2} to {:.2})",
            confidence * 100.0,
            ci.lower,
            ci.upper
        );
    }
    let (better_word, worse_word) = info.words();
    let cell_is_better = match info.better {
        Better::Lower => ratio < 1.0,
        Better::Higher => ratio > 1.0,
    };
    let word = if cell_is_better {
        better_word
    } else {
        worse_word
    };
    // Express "how many times" as a factor >= 1: invert when the ratio is below 1.
    let invert = ratio < 1.0;
    let factor = if invert { 1.0 / ratio } else { ratio };
    let mut out = format!("{factor:.2}x {word}");
    if ratio == 1.0 {
        out = "1.00x (same)".into();
    }
    if let Some(ci) = ci {
        let (lo, hi) = if invert {
            (1.0 / ci.upper, 1.0 / ci.lower)
        } else {
            (ci.lower, ci.upper)
        };
        let _ = write!(out, " ({:.0}% CI {lo:.2} to {hi:.2})", confidence * 100.0);
    }
    out
}

fn host_line(run: &RunResults) -> String {
    let h = &run.host;
    let mut parts = vec![
        if h.cpu_model.is_empty() {
            "unknown CPU".to_string()
        } else {
            h.cpu_model.clone()
        },
        format!("{} cpus", h.logical_cpus),
        format!("kernel {}", h.kernel),
    ];
    if let Some(v) = &h.cgroup_version {
        parts.push(format!("cgroup {v}"));
    }
    if let Some(g) = &h.governor {
        parts.push(format!("governor {g}"));
    }
    if let Some(smt) = h.smt_active {
        parts.push(format!("SMT {}", if smt { "on" } else { "off" }));
    }
    if let Some(t) = h.turbo {
        parts.push(format!("turbo {}", if t { "on" } else { "off" }));
    }
    parts.join(", ")
}

/// Every cell's `[security]` policy: "default (every cell)", or per cell when they differ.
/// `None` for a run recorded before benchbox recorded policies.
fn security_line(run: &RunResults) -> Option<String> {
    if run.cells.iter().all(|c| c.security.is_none()) {
        return None;
    }
    let described: Vec<(&str, String)> = run
        .cells
        .iter()
        .map(|c| {
            let d = c.security.as_ref().map(|s| s.policy().describe());
            (c.label.as_str(), d.unwrap_or_else(|| "not recorded".into()))
        })
        .collect();
    let (_, first) = described.first()?;
    if described.iter().all(|(_, d)| d == first) {
        return Some(format!("{} (every cell)", md(first)));
    }
    let per_cell: Vec<String> = described
        .iter()
        .map(|(label, d)| format!("{} {}", code(label), md(d)))
        .collect();
    Some(per_cell.join("; "))
}

/// Any value as literal Markdown text (see [`crate::markdown`]).
fn md(text: &str) -> String {
    crate::markdown::text(text)
}

/// One of benchbox's messages (values quoted in backticks) as Markdown.
fn msg(text: &str) -> String {
    crate::markdown::message(text)
}

fn render_metric_table(
    out: &mut String,
    run: &RunResults,
    reference: Option<&Reference>,
    table: &MetricTable,
) {
    let info = &table.metric;
    let conf = run.stats.confidence;
    let _ = writeln!(
        out,
        "### {} ({})\n",
        md(&info.prose_title()),
        info.better_text()
    );
    if let Some(definition) = info.definition() {
        let _ = writeln!(out, "{}\n", md(definition));
    }
    let _ = writeln!(
        out,
        "| cell | n | median | {:.0}% CI of median | vs reference |",
        conf * 100.0
    );
    out.push_str("|---|---:|---:|---|---|\n");
    for row in &table.rows {
        let cell = row.cell;
        let Some(s) = row.summary else {
            let status = match &cell.setup_error {
                Some(_) => "setup failed",
                None if cell.samples.is_empty() => "not run",
                None => "no invocation with status ok",
            };
            let _ = writeln!(
                out,
                "| {} | {} | - | - | {status} |",
                md(&cell.label),
                cell.n_of_planned(0)
            );
            continue;
        };
        let ci = s.median_ci.map_or("-".to_string(), |c| {
            md(&format!(
                "{} to {}",
                info.format(c.lower),
                info.format(c.upper)
            ))
        });
        let vs = if row.is_reference {
            "**reference**".to_string()
        } else {
            row.ratio
                .map(|r| describe_ratio(r.ratio, r.ci, info, conf))
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ci} | {vs} |",
            md(&cell.label),
            cell.n_of_planned(s.n),
            md(&info.format(s.median))
        );
    }
    out.push('\n');
    if reference.is_some() {
        for line in axis_geomeans(table, run, info) {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
}

/// The geometric means of ratios along each axis ([`super::geomeans`]), one line each.
fn axis_geomeans(table: &MetricTable, run: &RunResults, info: &Metric) -> Vec<String> {
    table
        .geomeans
        .iter()
        .map(|g| {
            format!(
                "{} vs {}: {} (geometric mean over {} pair(s) of cells differing only in {}; single ratios {:.2} to {:.2})",
                code(&format!("{}={}", g.axis, g.value)),
                code(&format!("{}={}", g.axis, g.base_value)),
                md(&describe_ratio(g.geomean, None, info, run.stats.confidence)),
                g.pairs,
                code(&g.axis),
                g.lowest,
                g.highest
            )
        })
        .collect()
}

/// A cell's label and the metrics one warning applies to in it.
type CellMetrics = (String, Vec<String>);

fn render_warnings(out: &mut String, run: &RunResults) {
    let interesting: Vec<String> = metrics::report_metrics(run)
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut lines: Vec<String> = run.warnings.iter().map(|w| msg(w)).collect();
    // One line per distinct message, naming every cell and metric it applies to: "only 6
    // invocations" is the same news for wall, CPU and memory, and for every cell.
    let mut grouped: Vec<(String, Vec<CellMetrics>)> = Vec::new();
    for cell in &run.cells {
        let label = code(&cell.label);
        if let Some(e) = &cell.setup_error {
            lines.push(format!("{label}: {}", msg(e)));
        }
        for w in &cell.warnings {
            lines.push(format!("{label}: {}", msg(w)));
        }
        let mut add = |message: String, metric: &str| {
            let at = match grouped.iter().position(|(m, _)| *m == message) {
                Some(at) => at,
                None => {
                    grouped.push((message, Vec::new()));
                    grouped.len() - 1
                }
            };
            let cells = &mut grouped[at].1;
            match cells.iter_mut().find(|(l, _)| *l == label) {
                Some((_, metrics)) => metrics.push(metric.to_string()),
                None => cells.push((label.clone(), vec![metric.to_string()])),
            }
        };
        for metric in &interesting {
            let Some(s) = cell.summary.get(metric) else {
                continue;
            };
            let counts = s.outlier_counts();
            if counts.all > 0 {
                add(
                    format!(
                        "{} outlier(s) by Tukey's fences ({} severe), kept in the statistics",
                        counts.all, counts.severe
                    ),
                    metric,
                );
            }
            for w in &s.warnings {
                if !matches!(w, stats::Warning::SevereOutliers { .. }) {
                    add(msg(&w.message()), metric);
                }
            }
        }
    }
    for (message, cells) in grouped {
        let whom: Vec<String> = cells
            .iter()
            .map(|(label, metrics)| format!("{label} {}", md(&metrics.join(", "))))
            .collect();
        lines.push(format!("{}: {message}", whom.join("; ")));
    }
    if lines.is_empty() {
        return;
    }
    // Folded, so a PR comment leads with the numbers.
    let _ = writeln!(
        out,
        "<details><summary>Warnings ({})</summary>\n",
        lines.len()
    );
    for l in lines {
        let _ = writeln!(out, "- {l}");
    }
    out.push_str("\n</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebuild::rebuild;
    use crate::report::tests_support::write_run;
    use crate::sandbox::security::Policy;
    use std::fs;

    /// summary.md with the reference `spec` names.
    fn summary_markdown_for(run: &RunResults, spec: Option<&str>) -> String {
        let opts = RenderOptions {
            reference: spec.map(str::to_string),
        };
        markdown(run, &opts).unwrap()
    }

    #[test]
    fn summary_markdown_shows_the_run_ratios_and_geometric_means() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let run = rebuild(tmp.path(), None, &[]).unwrap().run;
        let md = summary_markdown_for(&run, None);
        assert!(
            md.starts_with(
                "## benchbox: `jvm` run `20260101T000000Z`\n\ntwo JDKs, two collectors\n"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "4 cell(s) over `jdk` (17, 21) x `gc` (G1, Par), 40 measured invocation(s)"
            ),
            "{md}"
        );
        assert!(md.contains("- **host**: Test CPU @ 3.0GHz, 8 cpus, kernel 6.1.0, cgroup v2, governor performance\n"), "{md}");
        assert!(md.contains("seed 42"), "{md}");
        // Every cell's policy, and the loosened one called out before the numbers.
        assert!(md.contains("- **security**: `jdk=17 gc=G1` default; `jdk=17 gc=Par` default; `jdk=21 gc=G1` default; `jdk=21 gc=Par` +SYS_PTRACE, seccomp unconfined\n"), "{md}");
        let warning = "\n> [!WARNING]\n> cell `jdk=21 gc=Par` runs with +SYS_PTRACE, seccomp unconfined: its workload holds SYS_PTRACE beyond the default capabilities";
        assert!(md.contains(warning), "{md}");
        assert!(md.find(warning) < md.find("### wall time"), "{md}");
        // Default reference: the fastest cell.
        assert!(
            md.contains("- **reference**: `jdk=21 gc=G1` (fastest median wall time)"),
            "{md}"
        );
        assert!(md.contains("### wall time (lower is better)\n\n| cell | n | median | 95% CI of median | vs reference |\n|---|---:|---:|---|---|\n"), "{md}");
        assert!(md.contains("| jdk=21 gc=G1 | 10 | 800.0 ms |"), "{md}");
        assert!(md.contains("| **reference** |"), "{md}");
        assert!(
            md.contains("| jdk=17 gc=G1 | 10 | 1.000 s | ") && md.contains("1.25x slower (95% CI "),
            "{md}"
        );
        // Higher-is-better custom metric: direction and unit from the plan.
        assert!(md.contains("### ops (ops/s) (higher is better)"), "{md}");
        assert!(md.contains("1.25x worse"), "{md}");
        // Geometric means along each axis, against the reference's value of that axis.
        assert!(md.contains("- `jdk=17` vs `jdk=21`: 1.25x slower (geometric mean over 2 pair(s) of cells differing only in `jdk`; single ratios 1.25 to 1.25)"), "{md}");
        assert!(md.contains("- `gc=Par` vs `gc=G1`: 1.10x slower"), "{md}");
        assert!(md.contains("<details><summary>Warnings ("), "{md}");
        assert!(
            md.contains("`jdk=21 gc=Par`: 1 failed invocation(s) excluded"),
            "{md}"
        );

        // An explicit reference names one cell; the axis baselines are its values.
        let md = summary_markdown_for(&run, Some("jdk=17,gc=G1"));
        assert!(
            md.contains("- **reference**: `jdk=17 gc=G1` (`--reference jdk=17,gc=G1`)"),
            "{md}"
        );
        assert!(md.contains("- `jdk=21` vs `jdk=17`: 1.25x faster"), "{md}");
    }

    #[test]
    fn security_in_the_summary_when_all_cells_agree_and_when_not_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let mut run = write_run(tmp.path());
        for c in &mut run.cells {
            c.security = Some(Policy::default().effective());
        }
        let md = summary_markdown_for(&run, None);
        assert!(
            md.contains("- **security**: default (every cell)\n"),
            "{md}"
        );
        assert!(!md.contains("[!WARNING]"), "{md}");
        // A results.json from before policies were recorded says nothing rather than guess.
        for c in &mut run.cells {
            c.security = None;
        }
        let md = summary_markdown_for(&run, None);
        assert!(!md.contains("**security**"), "{md}");
        let privileged = Policy {
            privileged: true,
            ..Policy::default()
        };
        run.cells[1].security = Some(privileged.effective());
        let md = summary_markdown_for(&run, None);
        assert!(md.contains("- **security**: `jdk=17 gc=G1` not recorded; `jdk=17 gc=Par` privileged (all capabilities, no seccomp filter, kernel files unmasked); `jdk=21 gc=G1` not recorded"), "{md}");
        assert!(
            md.contains("> [!WARNING]\n> cell `jdk=17 gc=Par` runs privileged: "),
            "{md}"
        );
    }

    #[test]
    fn ratios_read_the_right_way_round() {
        let time = Metric::builtin("wall_s").unwrap();
        let ci = Some(stats::Interval {
            lower: 0.8,
            upper: 0.9,
        });
        assert_eq!(
            describe_ratio(0.8, ci, &time, 0.95),
            "1.25x faster (95% CI 1.11 to 1.25)"
        );
        let ci = Some(stats::Interval {
            lower: 1.19,
            upper: 1.27,
        });
        assert_eq!(
            describe_ratio(1.23, ci, &time, 0.95),
            "1.23x slower (95% CI 1.19 to 1.27)"
        );
        let ops = Metric::custom("ops", "", Better::Higher);
        assert_eq!(describe_ratio(1.5, None, &ops, 0.95), "1.50x better");
        assert_eq!(describe_ratio(0.5, None, &ops, 0.95), "2.00x worse");
        // An interval that holds 1 is no clear difference, as report.html says (not "1.37x
        // better").
        let wide = Some(stats::Interval {
            lower: 0.87,
            upper: 1.55,
        });
        assert_eq!(
            describe_ratio(1.37, wide, &ops, 0.95),
            "no clear difference (ratio 1.37, 95% CI 0.87 to 1.55)"
        );
        let ratio = crate::stats::Ratio {
            ratio: 1.37,
            ci: wide,
        };
        assert_eq!(
            crate::render::verdict(&ops, &ratio),
            Some("no clear difference")
        );
    }

    /// Regression: axis values went into summary.md (and $GITHUB_STEP_SUMMARY) as Markdown.
    #[test]
    fn summary_markdown_escapes_every_value() {
        let tmp = tempfile::tempdir().unwrap();
        let mut run = write_run(tmp.path());
        run.matrix_name = "a`b".into();
        run.plan.description = Some("# <img src=x onerror=alert(1)>".into());
        run.plan.axes[0].values = vec![
            "<script>alert(1)</script>".into(),
            "![x](http://evil.example/p.png)".into(),
        ];
        run.cells[0].label = "jdk=<script>alert(1)</script> gc=G1".into();
        run.cells[2].label = "jdk=![x](http://evil.example/p.png) gc=G1".into();
        run.cells[0].axes[0].1 = "<script>alert(1)</script>".into();
        run.cells[2].axes[0].1 = "![x](http://evil.example/p.png)".into();
        run.cells[3].setup_error = Some("setup failed: **boom** | see `logs/x`".into());
        run.write(tmp.path()).unwrap();
        let rebuilt =
            rebuild(tmp.path(), Some("jdk=![x](http://evil.example/p.png)"), &[]).unwrap();
        let (run, written) = (rebuilt.run, rebuilt.written);
        let md = fs::read_to_string(written.summary_md.unwrap()).unwrap();
        assert_eq!(
            md,
            summary_markdown_for(&run, Some("jdk=![x](http://evil.example/p.png)"))
        );
        // Outside code spans no raw tag, image or emphasis survives.
        let (title, rest) = md.split_once('\n').unwrap();
        assert_eq!(title, "## benchbox: ``a`b`` run `20260101T000000Z`");
        let outside_code: String = rest
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, p)| p)
            .collect();
        // (A needle preceded by a backslash is escaped: it shows as text.)
        for raw in ["<script>", "<img", "![", "**boom**"] {
            let unescaped = outside_code
                .match_indices(raw)
                .any(|(i, _)| !outside_code[..i].ends_with('\\'));
            assert!(!unescaped, "{raw}: {md}");
        }
        assert!(md.starts_with("## benchbox: ``a`b`` run `20260101T000000Z`\n\n\\# \\<img src=x onerror=alert(1)\\>\n"), "{md}");
        assert!(
            md.contains("| jdk=\\<script\\>alert(1)\\</script\\> gc=G1 | 10 |"),
            "{md}"
        );
        assert!(md.contains("- **reference**: `jdk=![x](http://evil.example/p.png) gc=G1` (`--reference jdk=![x](http://evil.example/p.png)`)"), "{md}");
        assert!(
            md.contains("`jdk=<script>alert(1)</script>` vs `jdk=![x](http://evil.example/p.png)`"),
            "{md}"
        );
        assert!(
            md.contains("setup failed: \\*\\*boom\\*\\* \\| see `logs/x`"),
            "{md}"
        );
    }
}
