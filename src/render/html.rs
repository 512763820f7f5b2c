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

use std::fmt::Write;

use super::{
    Analysis, MetricTable, RenderOptions, Result, axes, format_ratio, palette, verdict, warning_tag,
};
use crate::metrics::human_bytes;
use crate::results::{CellResult, RunResults};
use crate::spec::{Cell, Root, axis_value_text};
use crate::status::RunStatus;

/// `text` escaped for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

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
    let mut h = String::new();
    // `write!` to a String cannot fail.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"benchbox {}\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
        escape(&results.tool_version),
        escape(&title),
        css()
    );
    intro(&mut h, results, reference.as_ref(), tables);
    for table in tables {
        metric_section(&mut h, results, table, plots);
    }
    environment(&mut h, results);
    let _ = write!(
        h,
        "<footer>Generated by benchbox {} from <code>results.json</code> (schema {}); \
         rebuild with <code>benchbox report</code>.</footer>\n</body>\n</html>\n",
        escape(&results.tool_version),
        results.schema_version
    );
    Ok(h)
}

fn plan_description(results: &RunResults) -> Option<String> {
    results.plan.description.clone()
}

fn intro(
    h: &mut String,
    results: &RunResults,
    reference: Option<&crate::reference::Reference>,
    tables: &[MetricTable],
) {
    let _ = writeln!(h, "<header>\n<h1>{}</h1>", escape(&results.matrix_name));
    if let Some(d) = plan_description(results) {
        let _ = writeln!(h, "<p class=\"lede\">{}</p>", escape(&d));
    }
    let axes = axes(results);
    let compared = if axes.is_empty() {
        format!("{} cell(s), no axes", results.cells.len())
    } else {
        let list: Vec<String> = axes
            .iter()
            .map(|a| {
                let values: Vec<String> = a
                    .values
                    .iter()
                    .map(|v| format!("<code>{}</code>", escape(&axis_value_text(v))))
                    .collect();
                format!("<code>{}</code> ({})", escape(&a.name), values.join(", "))
            })
            .collect();
        format!("{} cells over {}", results.cells.len(), list.join(" × "))
    };
    let host = &results.host;
    let invocations: usize = results
        .cells
        .iter()
        .map(|c| {
            c.samples
                .iter()
                .filter(|s| s.phase == crate::plan::Phase::Measure)
                .count()
        })
        .sum();
    let reference = match reference {
        Some(r) => format!(
            "the cell <code>{}</code> ({}), for every metric",
            escape(&results.cells[r.index].label),
            match &r.why {
                crate::reference::Why::Given(spec) => {
                    format!("<code>--reference {}</code>", escape(spec))
                }
                why => escape(&why.to_string()),
            }
        ),
        None => "none (no cell has a median wall time)".into(),
    };
    let _ = write!(
        h,
        "<dl class=\"facts\">\n\
         <dt>Compared</dt><dd>{compared}</dd>\n\
         <dt>Measured</dt><dd>{invocations} invocations, each in a fresh container, order {order}; \
         statistics over those with status ok, not failed or suspect ones ({conf:.0}% intervals, {methods})</dd>\n\
         <dt>Host</dt><dd><code>{hostname}</code>: {cpu}, {cpus} logical CPUs, {mem}, Linux {kernel} ({arch}), cgroup {cg}</dd>\n\
         <dt>Run</dt><dd><code>{run}</code>, {status}, started {started}</dd>\n\
         <dt>Reference</dt><dd>{reference}</dd>\n</dl>\n",
        order = escape(&results.order.to_string()),
        conf = results.stats.confidence * 100.0,
        methods = super::interval_note(results)
            .unwrap_or_else(|| format!("{} bootstrap resamples", results.stats.resamples)),
        hostname = escape(&host.hostname),
        cpu = escape(&host.cpu_model),
        cpus = host.logical_cpus,
        mem = human_bytes(host.memory_bytes as f64),
        kernel = escape(&host.kernel),
        arch = escape(&host.architecture),
        cg = escape(host.cgroup_version.as_deref().unwrap_or("unknown")),
        run = escape(&results.run_id),
        status = escape(results.status.as_str()),
        started = escape(&results.started_at),
    );
    // Root or rootless, and the limits in force (runs recorded before benchbox said so ran as
    // root; their limits are in the environment table).
    if let Some(isolation) = &results.isolation {
        let limits = super::limits_in_force(results).plain();
        let _ = writeln!(
            h,
            "<dl class=\"facts\">\n<dt>Isolation</dt><dd>{}: {}</dd>\n<dt>Limits in force</dt><dd>{}</dd>\n</dl>",
            escape(&isolation.describe()),
            escape(&isolation.measures),
            escape(&limits)
        );
    }
    if results.status != RunStatus::Complete {
        let _ = writeln!(
            h,
            "<p class=\"warn\">This run is <strong>{}</strong>: some cells may have fewer invocations than planned.</p>",
            escape(results.status.as_str())
        );
    }
    for w in &results.warnings {
        let _ = writeln!(h, "<p class=\"warn\">{}</p>", escape(w));
    }
    for w in results.cells.iter().filter_map(|c| c.security_warning()) {
        let _ = writeln!(h, "<p class=\"warn\"><strong>{}</strong></p>", escape(&w));
    }
    let _ = writeln!(h, "<nav>");
    for t in tables {
        let _ = write!(
            h,
            "<a href=\"#metric-{}\">{}</a>",
            escape(&anchor(&t.metric.key)),
            escape(&t.metric.title)
        );
    }
    let _ = writeln!(
        h,
        "<a href=\"#environment\">Environment</a>\n</nav>\n</header>"
    );
}

fn anchor(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn metric_section(
    h: &mut String,
    results: &RunResults,
    table: &MetricTable,
    plots: &[super::Plot],
) {
    let m = &table.metric;
    let s = &table.scale;
    let unit = if s.unit.is_empty() {
        String::new()
    } else {
        format!("{}, ", escape(&s.unit))
    };
    let _ = writeln!(
        h,
        "<section id=\"metric-{}\">\n<h2>{} <small>({unit}{})</small></h2>",
        escape(&anchor(&m.key)),
        escape(&m.title),
        m.better_text()
    );
    if let Some(definition) = m.definition() {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", escape(definition));
    }
    let conf = results.stats.confidence * 100.0;
    let reference = table.reference_label().unwrap_or("none");
    let _ = write!(
        h,
        "<div class=\"scroll\"><table>\n<thead><tr><th>Cell</th><th class=\"num\">n</th>\
         <th class=\"num\">Median</th><th class=\"num\">{conf:.0}% CI of the median</th>\
         <th class=\"num\">Ratio to <code>{}</code></th><th class=\"num\">{conf:.0}% CI of the ratio</th>\
         <th>vs reference</th><th>Warnings</th></tr></thead>\n<tbody>\n",
        escape(reference)
    );
    let mut notes: Vec<String> = Vec::new();
    for row in &table.rows {
        let class = if row.is_reference {
            " class=\"reference\""
        } else {
            ""
        };
        let _ = write!(h, "<tr{class}><td>{}</td>", escape(&row.cell.label));
        match row.summary {
            None => {
                let why = if row.cell.setup_error.is_some() {
                    "setup failed"
                } else {
                    "no invocation with status ok"
                };
                let _ = writeln!(
                    h,
                    "<td class=\"num\">{}</td><td colspan=\"6\" class=\"warn\">{why}</td></tr>",
                    escape(&row.cell.n_of_planned(0))
                );
                continue;
            }
            Some(sum) => {
                let ci = sum
                    .median_ci
                    .map(|ci| format!("{} – {}", s.format(ci.lower, 4), s.format(ci.upper, 4)))
                    .unwrap_or_else(|| "–".into());
                let _ = write!(
                    h,
                    "<td class=\"num\">{}</td><td class=\"num\">{} {}</td><td class=\"num\">{}</td>",
                    escape(&row.cell.n_of_planned(sum.n)),
                    s.format(sum.median, 4),
                    escape(&s.unit),
                    ci
                );
                let (ratio, ratio_ci, words) = match (&row.ratio, row.is_reference) {
                    (_, true) => ("1".to_string(), "–".to_string(), "reference".to_string()),
                    (Some(r), false) => {
                        let ci =
                            r.ci.map(|c| {
                                format!("{} – {}", format_ratio(c.lower), format_ratio(c.upper))
                            })
                            .unwrap_or_else(|| "–".into());
                        let words = match verdict(m, r) {
                            Some("better") => "<span class=\"better\">better</span>".to_string(),
                            Some("worse") => "<span class=\"worse\">worse</span>".to_string(),
                            Some(other) => other.to_string(),
                            None if sum.n < crate::stats::MIN_BOOTSTRAP_SAMPLES => {
                                "too few runs to tell".to_string()
                            }
                            // The bootstrap met a zero median (coarse counters, such as
                            // CPU time in 4 ms ticks), so the ratio has no interval.
                            None => "no interval (zero values)".to_string(),
                        };
                        (format!("{}×", format_ratio(r.ratio)), ci, words)
                    }
                    (None, false) => ("–".into(), "–".into(), "–".into()),
                };
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
                let _ = writeln!(
                    h,
                    "<td class=\"num\">{ratio}</td><td class=\"num\">{ratio_ci}</td><td>{words}</td><td class=\"warn\">{}</td></tr>",
                    escape(&tags.join(", "))
                );
            }
        }
    }
    let _ = writeln!(h, "</tbody></table></div>");
    if !table.geomeans.is_empty() {
        let _ = writeln!(h, "<ul class=\"geomeans\">");
        for g in &table.geomeans {
            let _ = writeln!(
                h,
                "<li><code>{}={}</code> vs <code>{}={}</code>: {}× (geometric mean of the ratios over {} pair(s) of cells differing only in <code>{}</code>; single ratios {:.2} to {:.2})</li>",
                escape(&g.axis),
                escape(&g.value),
                escape(&g.axis),
                escape(&g.base_value),
                format_ratio(g.geomean),
                g.pairs,
                escape(&g.axis),
                g.lowest,
                g.highest
            );
        }
        let _ = writeln!(h, "</ul>");
    }
    if !notes.is_empty() {
        let _ = writeln!(h, "<ul class=\"notes\">");
        for n in &notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        let _ = writeln!(h, "</ul>");
    }
    let mine: Vec<&super::Plot> = plots.iter().filter(|p| p.metric == m.key).collect();
    if !mine.is_empty() {
        let _ = writeln!(h, "<div class=\"plots\">");
        for p in mine {
            let _ = writeln!(
                h,
                "<figure id=\"plot-{}\" role=\"img\" aria-label=\"{}\">\n{}\n<figcaption>{} <span class=\"muted\">(<code>plots/{}.svg</code>, <code>.png</code>)</span></figcaption>\n</figure>",
                escape(&anchor(&p.stem)),
                escape(&p.caption),
                inline_svg(&p.svg),
                escape(&p.caption),
                escape(&p.stem)
            );
        }
        let _ = writeln!(h, "</div>");
    }
    let _ = writeln!(h, "</section>");
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

fn environment(h: &mut String, results: &RunResults) {
    let _ = writeln!(
        h,
        "<section id=\"environment\">\n<h2>Environment</h2>\n<h3>Cells</h3>\n<div class=\"scroll\"><table>\n\
         <thead><tr><th>Cell</th><th>Id</th><th>Root</th><th>Command</th><th>Limits as applied</th><th>Security</th><th class=\"num\">Invocations</th></tr></thead>\n<tbody>"
    );
    for cell in &results.cells {
        let plan = plan_cell(results, cell);
        let limits = super::cell_limits(results, cell);
        let security = match &cell.security {
            Some(s) => s.policy().describe(),
            None => "not recorded".into(),
        };
        let measured = cell.n_of_planned(cell.count_measured());
        let mut extra = String::new();
        if let Some(e) = &cell.setup_error {
            extra = format!(
                "<br><span class=\"warn\">setup failed: {}</span>",
                escape(e)
            );
        }
        for w in &cell.warnings {
            extra.push_str(&format!("<br><span class=\"warn\">{}</span>", escape(w)));
        }
        let _ = writeln!(
            h,
            "<tr><td>{}{extra}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{measured} ({} failed{})</td></tr>",
            escape(&cell.label),
            escape(&cell.id),
            escape(&root_text(plan)),
            escape(&command_text(plan)),
            escape(&limits),
            escape(&security),
            cell.failures,
            if cell.suspect > 0 {
                format!(", {} suspect", cell.suspect)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(h, "</tbody></table></div>");

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
    let _ = writeln!(h, "<h3>Host</h3>\n<dl class=\"facts\">");
    for (k, v) in facts {
        let _ = writeln!(h, "<dt>{k}</dt><dd>{}</dd>", escape(&v));
    }
    let _ = writeln!(h, "</dl>");
    h.push_str(&super::noise::html(host.noise.as_ref()));

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
    let _ = writeln!(h, "<h3>Run</h3>\n<dl class=\"facts\">");
    for (k, v) in run {
        let _ = writeln!(h, "<dt>{k}</dt><dd><code>{}</code></dd>", escape(&v));
    }
    let _ = writeln!(h, "</dl>\n</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn inline_svg_drops_the_xml_declaration() {
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
        assert_eq!(inline_svg("<svg/>"), "<svg/>");
    }
}
