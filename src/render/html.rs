//! `report.html`: one self-contained page a person reads first.
//!
//! Order: what was compared, on what host; then per metric a table (cell, n, median, CI of
//! the median, ratio to the reference with its CI and what it means, warnings) and the plots;
//! then the environment (per cell: root or image, command, limits as the kernel applied them,
//! what `[security]` loosened; the host; seed, matrix hash, tool version). A cell with a
//! loosened policy is also named at the top.
//!
//! Self-contained on purpose: CSS is inline, plots are inline SVG, there is no script and no
//! font, image or style sheet fetched from anywhere. A Content-Security-Policy
//! (`default-src 'none'`) makes any request a browser might still try fail, visibly, in its
//! console, so a test can catch one. `@media print` drops the navigation and keeps tables and
//! figures whole across pages.
//!
//! Written with `maud`, which escapes every interpolated value: only `PreEscaped` emits raw
//! markup, and each use says why it is safe. The `"\n"` literals keep one block per line in the
//! source of the page, as a reader of it (and the text snapshot in tests/render.rs) expects.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{
    Analysis, MetricTable, RenderOptions, Result, axes, format_ratio, palette, verdict, warning_tag,
};
use crate::metrics::human_bytes;
use crate::results::{CellResult, RunResults};
use crate::spec::{Cell, Root, axis_value_text};
use crate::status::RunStatus;

const CSS: &str = r#"
:root { --fg: #1b1b1b; --muted: #5a5a5a; --rule: #d8d8d8; --band: #f5f5f5; --accent: ACCENT; --warn: WARN; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); background: #fff; line-height: 1.45; margin: 0 auto; padding: 1.5rem 2rem 3rem;
  max-width: 72rem; font-size: 15px; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .5rem; padding-top: .6rem; border-top: 2px solid var(--fg); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
h2 small, .muted { color: var(--muted); font-weight: normal; }
p { margin: .4rem 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
nav { margin: 1rem 0; font-size: .95rem; }
nav a { margin-right: 1rem; color: var(--accent); }
.lede { font-size: 1.05rem; color: var(--muted); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .8rem 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { padding: .3rem .7rem; text-align: left; vertical-align: top; border-bottom: 1px solid var(--rule); }
thead th { border-bottom: 2px solid var(--fg); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { background: var(--band); }
.better { color: #00795a; font-weight: 600; }
.worse { color: var(--warn); font-weight: 600; }
.warn { color: var(--warn); }
.notes { font-size: .88rem; color: var(--muted); padding-left: 1.2rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem 2rem; }
figure { margin: .5rem 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85rem; color: var(--muted); max-width: 28rem; }
.scroll { overflow-x: auto; }
footer { margin-top: 3rem; font-size: .85rem; color: var(--muted); }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  table, figure { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
}
"#;

pub(crate) fn css() -> String {
    CSS.replace("ACCENT", &palette::hex(palette::series(0)))
        .replace("WARN", &palette::hex(palette::OKABE_ITO[5]))
}

/// The report (see the module doc).
pub fn html(results: &RunResults, opts: &RenderOptions) -> Result<String> {
    let analysis = Analysis::new(results, opts)?;
    html_with_plots(&analysis, &super::plots::plots_of(&analysis)?)
}

/// [`html`] from the run's analysis (it only reads the summaries and ratios there), with plots
/// already drawn from it (so [`super::write_all`] draws them once).
pub fn html_with_plots(analysis: &Analysis, plots: &[super::Plot]) -> Result<String> {
    let (results, tables, reference) = (analysis.results, &analysis.tables, &analysis.reference);
    let title = format!("benchbox: {} (run {})", results.matrix_name, results.run_id);
    let page = html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            (head(&title, Some(&results.tool_version)))
            body {
                "\n"
                (intro(results, reference.as_ref(), tables))
                @for table in tables {
                    (metric_section(results, table, plots))
                }
                (environment(results))
                footer {
                    "Generated by benchbox " (results.tool_version) " from " code { "results.json" }
                    " (schema " (results.schema_version) "); rebuild with "
                    code { "benchbox report" } "."
                }
                "\n"
            }
            "\n"
        }
        "\n"
    };
    Ok(page.into_string())
}

/// The `<head>` of report.html and history.html: the Content-Security-Policy, the title and
/// the style sheet.
pub(crate) fn head(title: &str, generator: Option<&str>) -> Markup {
    html! {
        head {
            "\n" meta charset="utf-8";
            "\n" meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
            "\n" meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(version) = generator {
                "\n" meta name="generator" content=(format!("benchbox {version}"));
            }
            "\n" title { (title) }
            // The style sheet is this file's constant (and palette colours), not data; inside
            // <style> entities are not decoded, so escaping it would break its quoted fonts.
            "\n" style { (PreEscaped(css())) }
            "\n"
        }
        "\n"
    }
}

fn plan_description(results: &RunResults) -> Option<String> {
    results.plan.description.clone()
}

fn intro(
    results: &RunResults,
    reference: Option<&crate::reference::Reference>,
    tables: &[MetricTable],
) -> Markup {
    let axes = axes(results);
    let compared = html! {
        @if axes.is_empty() {
            (results.cells.len()) " cell(s), no axes"
        } @else {
            (results.cells.len()) " cells over "
            @for (i, a) in axes.iter().enumerate() {
                @if i > 0 { " × " }
                code { (a.name) } " ("
                @for (j, v) in a.values.iter().enumerate() {
                    @if j > 0 { ", " }
                    code { (axis_value_text(v)) }
                }
                ")"
            }
        }
    };
    let host = &results.host;
    let invocations: usize = results.cells.iter().map(|c| c.count_measured()).sum();
    let reference = html! {
        @match reference {
            Some(r) => {
                "the cell " code { (results.cells[r.index].label) } " ("
                @match &r.why {
                    crate::reference::Why::Given(spec) => code { "--reference " (spec) },
                    why => (why.to_string()),
                }
                "), for every metric"
            }
            None => "none (no cell has a median wall time)",
        }
    };
    let methods = super::interval_note(results)
        .unwrap_or_else(|| format!("{} bootstrap resamples", results.stats.resamples));
    html! {
        header {
            "\n" h1 { (results.matrix_name) } "\n"
            @if let Some(d) = plan_description(results) {
                p.lede { (d) } "\n"
            }
            dl.facts {
                "\n" dt { "Compared" } dd { (compared) }
                "\n" dt { "Measured" } dd {
                    (invocations) " invocations, each in a fresh container, order " (results.order)
                    "; statistics over those with status ok, not failed or suspect ones ("
                    (format!("{:.0}", results.stats.confidence * 100.0)) "% intervals, " (methods) ")"
                }
                "\n" dt { "Host" } dd {
                    code { (host.hostname) } ": " (host.cpu_model) ", " (host.logical_cpus)
                    " logical CPUs, " (human_bytes(host.memory_bytes as f64)) ", Linux "
                    (host.kernel) " (" (host.architecture) "), cgroup "
                    (host.cgroup_version.as_deref().unwrap_or("unknown"))
                }
                "\n" dt { "Run" } dd {
                    code { (results.run_id) } ", " (results.status.as_str()) ", started " (results.started_at)
                }
                "\n" dt { "Reference" } dd { (reference) }
                "\n"
            }
            "\n"
            // Root or rootless, and the limits in force (runs recorded before benchbox said so
            // ran as root; their limits are in the environment table).
            @if let Some(isolation) = &results.isolation {
                dl.facts {
                    "\n" dt { "Isolation" } dd { (isolation.describe()) ": " (isolation.measures) }
                    "\n" dt { "Limits in force" } dd { (super::limits_in_force(results).plain()) }
                    "\n"
                }
                "\n"
            }
            @if results.status != RunStatus::Complete {
                p.warn {
                    "This run is " strong { (results.status.as_str()) }
                    ": some cells may have fewer invocations than planned."
                }
                "\n"
            }
            @for w in &results.warnings {
                p.warn { (w) } "\n"
            }
            @for w in results.cells.iter().filter_map(|c| c.security_warning()) {
                p.warn { strong { (w) } } "\n"
            }
            nav {
                "\n"
                @for t in tables {
                    a href=(format!("#metric-{}", anchor(&t.metric.key))) { (t.metric.title) }
                }
                a href="#environment" { "Environment" } "\n"
            }
            "\n"
        }
        "\n"
    }
}

fn anchor(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn metric_section(results: &RunResults, table: &MetricTable, plots: &[super::Plot]) -> Markup {
    let m = &table.metric;
    let s = &table.scale;
    let unit = if s.unit.is_empty() {
        String::new()
    } else {
        format!("{}, ", s.unit)
    };
    let conf = format!("{:.0}", results.stats.confidence * 100.0);
    let reference = table.reference_label().unwrap_or("none");
    let mut notes: Vec<String> = Vec::new();
    let rows = html! {
        @for row in &table.rows {
            tr.reference[row.is_reference] {
                td { (row.cell.label) }
                @match row.summary {
                    None => {
                        td.num { (row.cell.n_of_planned(0)) }
                        td colspan="6" class="warn" {
                            @if row.cell.setup_error.is_some() { "setup failed" }
                            @else { "no invocation with status ok" }
                        }
                    }
                    Some(sum) => {
                        @let ci = sum
                            .median_ci
                            .map(|ci| format!("{} – {}", s.format(ci.lower, 4), s.format(ci.upper, 4)))
                            .unwrap_or_else(|| "–".into());
                        td.num { (row.cell.n_of_planned(sum.n)) }
                        td.num { (s.format(sum.median, 4)) " " (s.unit) }
                        td.num { (ci) }
                        (ratio_cells(m, row, sum))
                        td.warn { (tags(row, sum, &mut notes).join(", ")) }
                    }
                }
            }
            "\n"
        }
    };
    html! {
        section id=(format!("metric-{}", anchor(&m.key))) {
            "\n" h2 { (m.title) " " small { "(" (unit) (m.better_text()) ")" } } "\n"
            @if let Some(definition) = m.definition() {
                p.muted { (definition) } "\n"
            }
            div.scroll { table {
                "\n"
                thead { tr {
                    th { "Cell" } th.num { "n" } th.num { "Median" }
                    th.num { (conf) "% CI of the median" }
                    th.num { "Ratio to " code { (reference) } }
                    th.num { (conf) "% CI of the ratio" }
                    th { "vs reference" } th { "Warnings" }
                } }
                "\n"
                tbody { "\n" (rows) }
            } }
            "\n"
            @if !table.geomeans.is_empty() {
                ul.geomeans {
                    "\n"
                    @for g in &table.geomeans {
                        li {
                            code { (g.axis) "=" (g.value) } " vs " code { (g.axis) "=" (g.base_value) } ": "
                            (format_ratio(g.geomean)) "× (geometric mean of the ratios over " (g.pairs)
                            " pair(s) of cells differing only in " code { (g.axis) } "; single ratios "
                            (format!("{:.2} to {:.2}", g.lowest, g.highest)) ")"
                        }
                        "\n"
                    }
                }
                "\n"
            }
            @if !notes.is_empty() {
                ul.notes {
                    "\n"
                    @for n in &notes { li { (n) } "\n" }
                }
                "\n"
            }
            @let mine: Vec<&super::Plot> = plots.iter().filter(|p| p.metric == m.key).collect();
            @if !mine.is_empty() {
                div.plots {
                    "\n"
                    @for p in mine {
                        figure id=(format!("plot-{}", anchor(&p.stem))) role="img" aria-label=(p.caption) {
                            "\n"
                            // The plot is SVG that plotters drew from this run's numbers, with
                            // its text escaped as XML (tests/render.rs parses every plot).
                            (PreEscaped(inline_svg(&p.svg)))
                            "\n"
                            figcaption {
                                (p.caption) " " span.muted {
                                    "(" code { "plots/" (p.stem) ".pdf" } ", " code { ".svg" } ", " code { ".png" } ")"
                                }
                            }
                            "\n"
                        }
                        "\n"
                    }
                }
                "\n"
            }
        }
        "\n"
    }
}

/// The ratio, its interval and what it means, for a row with a summary.
fn ratio_cells(
    m: &crate::metrics::Metric,
    row: &super::Row,
    sum: &crate::stats::Summary,
) -> Markup {
    html! {
        @match (&row.ratio, row.is_reference) {
            (_, true) => { td.num { "1" } td.num { "–" } td { "reference" } }
            (Some(r), false) => {
                td.num { (format_ratio(r.ratio)) "×" }
                td.num {
                    @match r.ci {
                        Some(c) => { (format_ratio(c.lower)) " – " (format_ratio(c.upper)) }
                        None => "–",
                    }
                }
                td {
                    @match verdict(m, r) {
                        Some("better") => span.better { "better" },
                        Some("worse") => span.worse { "worse" },
                        Some(other) => (other),
                        None if sum.n < crate::stats::MIN_BOOTSTRAP_SAMPLES => "too few runs to tell",
                        // The bootstrap met a zero median (coarse counters, such as CPU time in
                        // 4 ms ticks), so the ratio has no interval.
                        None => "no interval (zero values)",
                    }
                }
            }
            (None, false) => { td.num { "–" } td.num { "–" } td { "–" } }
        }
    }
}

/// A row's warning tags; each warning's message goes to `notes`, under the table.
fn tags(row: &super::Row, sum: &crate::stats::Summary, notes: &mut Vec<String>) -> Vec<String> {
    let mut tags: Vec<String> = sum.warnings.iter().map(warning_tag).collect();
    for w in &sum.warnings {
        notes.push(format!("{}: {}", row.cell.label, w.message()));
    }
    if row.cell.failures > 0 {
        tags.push(format!("{} failed", row.cell.failures));
    }
    if row.cell.suspect > 0 {
        tags.push(format!("{} suspect", row.cell.suspect));
    }
    tags
}

/// An SVG document as an inline element: without an XML declaration, which HTML does not
/// allow inside the body.
pub(crate) fn inline_svg(svg: &str) -> &str {
    let svg = svg.trim();
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map(|(_, r)| r.trim()).unwrap_or(svg),
        None => svg,
    }
}

/// The plan's entry for a cell (root, command...), matched by id.
fn plan_cell<'a>(results: &'a RunResults, cell: &CellResult) -> Option<&'a Cell> {
    results.plan.cell(&cell.id)
}

fn root_text(plan: Option<&Cell>) -> String {
    let Some(p) = plan else {
        return "unknown".into();
    };
    let mut text = match &p.root {
        Root::Host => "host filesystem (throw-away overlay, private /tmp)".to_string(),
        Root::Dir(dir) => format!("dir: {}", dir.display()),
        Root::Image(image) => format!("image: {image}"),
    };
    // A resolved image digest, when the plan carries one.
    if let Some(d) = &p.image_digest {
        text.push_str(&format!(" @ {d}"));
    }
    text
}

fn command_text(plan: Option<&Cell>) -> String {
    let Some(p) = plan else {
        return String::new();
    };
    match p.command.as_slice() {
        [sh, c, script] if sh == "/bin/sh" && c == "-c" => script.clone(),
        argv => argv.join(" "),
    }
}

fn environment(results: &RunResults) -> Markup {
    let cells = html! {
        @for cell in &results.cells {
            @let plan = plan_cell(results, cell);
            @let security = match &cell.security {
                Some(s) => s.policy().describe(),
                None => "not recorded".into(),
            };
            tr {
                td {
                    (cell.label)
                    @if let Some(e) = &cell.setup_error {
                        br; span.warn { "setup failed: " (e) }
                    }
                    @for w in &cell.warnings {
                        br; span.warn { (w) }
                    }
                }
                td { code { (cell.id) } }
                td { (root_text(plan)) }
                td { code { (command_text(plan)) } }
                td { (super::cell_limits(results, cell)) }
                td { (security) }
                td.num {
                    (cell.n_of_planned(cell.count_measured())) " (" (cell.failures) " failed"
                    @if cell.suspect > 0 { ", " (cell.suspect) " suspect" }
                    ")"
                }
            }
            "\n"
        }
    };
    let host = &results.host;
    let opt_bool = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let facts: Vec<(&str, String)> = vec![
        ("Hostname", host.hostname.clone()),
        ("CPU", host.cpu_model.clone()),
        (
            "Logical CPUs",
            format!("{} (online {})", host.logical_cpus, host.online_cpus),
        ),
        ("Memory", human_bytes(host.memory_bytes as f64)),
        ("Swap", human_bytes(host.swap_bytes as f64)),
        ("Kernel", format!("{} ({})", host.kernel, host.architecture)),
        (
            "cgroup",
            host.cgroup_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        (
            "CPU governor",
            host.governor.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("SMT active", opt_bool(host.smt_active).into()),
        ("Turbo", opt_bool(host.turbo).into()),
    ];
    let duration = results
        .finished_at
        .as_deref()
        .map(|f| format!("{} to {f}", results.started_at))
        .unwrap_or_else(|| format!("{} (not finished)", results.started_at));
    let mut run: Vec<(&str, String)> = vec![
        ("Run id", results.run_id.clone()),
        ("Status", results.status.to_string()),
        ("Time (UTC)", duration),
        ("Matrix file", results.matrix_path.clone()),
        ("Matrix sha256", results.matrix_sha256.clone()),
        ("Order", results.order.to_string()),
        ("Seed (order)", results.seed.to_string()),
        (
            "Statistics",
            format!(
                "{:.0}% intervals, {}, seed {}",
                results.stats.confidence * 100.0,
                super::interval_note(results)
                    .unwrap_or_else(|| format!("{} bootstrap resamples", results.stats.resamples)),
                results.stats.seed
            ),
        ),
        ("Tool", format!("{} {}", results.tool, results.tool_version)),
        ("Command line", results.command_line.join(" ")),
    ];
    if let Some(r) = &results.revision {
        run.insert(1, ("Revision", r.describe_line()));
    }
    html! {
        section id="environment" {
            "\n" h2 { "Environment" } "\n" h3 { "Cells" } "\n"
            div.scroll { table {
                "\n"
                thead { tr {
                    th { "Cell" } th { "Id" } th { "Root" } th { "Command" }
                    th { "Limits as applied" } th { "Security" } th.num { "Invocations" }
                } }
                "\n"
                tbody { "\n" (cells) }
            } }
            "\n" h3 { "Host" } "\n"
            dl.facts {
                "\n"
                @for (k, v) in facts { dt { (k) } dd { (v) } "\n" }
            }
            "\n"
            @if let Some(noise) = &host.noise { (super::noise::html(noise)) }
            h3 { "Run" } "\n"
            dl.facts {
                "\n"
                @for (k, v) in run { dt { (k) } dd { code { (v) } } "\n" }
            }
            "\n"
        }
        "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_svg_drops_the_xml_declaration() {
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
        assert_eq!(inline_svg("<svg/>"), "<svg/>");
    }
}
