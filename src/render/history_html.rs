//! `benchbox history`'s plots and history.html: per cell and metric, a trend plot (the run
//! medians in history order, their intervals as a band, each change point a dashed line) drawn
//! with [`super::plots::trend`], and a self-contained page of them (inline SVG, no external
//! asset), with the table of change points. Pure: the history in, bytes out.

use std::fmt::Write as _;

use super::Result;
use super::html::escape;
use super::plots::{self, Trend};
use crate::history::{Failing, History, Series};

/// One trend plot, ready to write as `<stem>.svg` (and `<stem>.png`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPlot {
    pub stem: String,
    pub caption: String,
    pub svg: String,
    pub png: Option<Vec<u8>>,
}

/// A cell's slug-like file part: `[A-Za-z0-9_-]`, anything else as `-`.
fn file_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The trend plot of series `s` (PNG too when `png`).
pub fn trend_plot(h: &History, s: &Series, png: bool) -> Result<TrendPlot> {
    let stem = format!(
        "history-{}-{}-{}",
        file_part(&s.label),
        &s.cell_id,
        file_part(&s.metric.key)
    );
    // The x axis: the runs this series has, in history order.
    let x_labels: Vec<String> = s
        .points
        .iter()
        .map(|p| h.runs[p.run].name().to_string())
        .collect();
    let y_title = if s.metric.unit.is_empty() {
        s.metric.short_title().to_string()
    } else {
        format!("{} ({})", s.metric.short_title(), s.metric.unit)
    };
    let trend = Trend {
        x_title: "revision (history order)".into(),
        y_title,
        x_labels,
        points: s
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i as f64, p.median, p.ci.map(|c| (c.lower, c.upper))))
            .collect(),
        changes: s
            .changes
            .iter()
            .map(|c| (c.point as f64, c.regression))
            .collect(),
    };
    let (svg, png) = plots::trend(&stem, trend, png)?;
    let caption = format!(
        "{} of {}: the median of each run with its {:.0}% interval; {} change point(s) marked (vermillion: regression, green: improvement).",
        s.metric.short_title(),
        s.label,
        h.confidence * 100.0,
        s.changes.len()
    );
    Ok(TrendPlot {
        stem,
        caption,
        svg,
        png,
    })
}

/// history.html: the scope, the method, the change points, and per cell and metric its trend.
pub fn html(h: &History, failing: &[Failing], check: bool) -> Result<String> {
    let mut names: Vec<&str> = h.runs.iter().map(|r| r.matrix_name.as_str()).collect();
    names.sort();
    names.dedup();
    let title = format!("benchbox history: {}", names.join(", "));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        super::html::css(),
        escape(&title)
    );
    let first = h.runs.first().map_or("-", |r| r.name());
    let last = h.runs.last().map_or("-", |r| r.name());
    let _ = writeln!(
        out,
        "<p class=\"lede\">{} complete run(s), {} to {}; {} series, {} change point(s).</p>\n<p class=\"muted\">{}</p>",
        h.runs.len(),
        escape(first),
        escape(last),
        h.series.len(),
        h.change_count(),
        escape(&super::history::method(h))
    );
    if check {
        let class = if failing.is_empty() {
            "better"
        } else {
            "worse"
        };
        let _ = writeln!(
            out,
            "<p class=\"{class}\">{}</p>",
            escape(&super::history::check_line(h, failing))
        );
    }
    for w in &h.warnings {
        let _ = writeln!(out, "<p class=\"warn\">warning: {}</p>", escape(w));
    }
    // The change points.
    let _ = writeln!(out, "<h2>Change points</h2>");
    if h.change_count() == 0 {
        let _ = writeln!(out, "<p>No change point.</p>");
    } else {
        let _ = writeln!(
            out,
            "<div class=\"scroll\"><table>\n<thead><tr><th>cell</th><th>metric</th><th>revision</th><th>previous</th><th>direction</th><th class=\"num\">change</th><th class=\"num\">CI of change</th><th class=\"num\">p</th><th class=\"num\">runs before / after</th><th>status</th></tr></thead>\n<tbody>"
        );
        for (si, s) in h.series.iter().enumerate() {
            for (ci, c) in s.changes.iter().enumerate() {
                let fails = failing.contains(&Failing {
                    series: si,
                    change: ci,
                });
                let (change, interval, sides) = match &c.step {
                    Some(st) => (
                        format!("{:+.1}%", st.relative * 100.0),
                        st.ci.map_or("-".into(), |i| {
                            format!("{:+.1}% to {:+.1}%", i.lower * 100.0, i.upper * 100.0)
                        }),
                        format!("{} / {}", st.runs_before, st.runs_after),
                    ),
                    None => (
                        format!("{:+.1}%", c.detected.relative * 100.0),
                        "-".into(),
                        "-".into(),
                    ),
                };
                let (class, direction) = if c.regression {
                    ("worse", "regression")
                } else {
                    ("better", "improvement")
                };
                let status = match (&c.accepted, fails) {
                    (Some(r), _) => format!("accepted: {r}"),
                    (None, true) => "not accepted".into(),
                    (None, false) => String::new(),
                };
                let _ = writeln!(
                    out,
                    "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td class=\"{class}\">{direction}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1e}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    anchor(s),
                    escape(&s.label),
                    escape(s.metric.short_title()),
                    escape(h.runs[c.run].name()),
                    escape(h.runs[c.previous_run].name()),
                    escape(&change),
                    escape(&interval),
                    c.detected.p_value,
                    escape(&sides),
                    escape(&status)
                );
            }
        }
        let _ = writeln!(out, "</tbody></table></div>");
    }
    let _ = writeln!(out, "<h2>Trends</h2>");
    for s in &h.series {
        let plot = trend_plot(h, s, false)?;
        let _ = writeln!(
            out,
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            anchor(s),
            super::html::inline_svg(&plot.svg),
            escape(&plot.caption)
        );
    }
    if !h.skipped.is_empty() {
        let _ = writeln!(out, "<h2>Skipped runs</h2>\n<ul class=\"notes\">");
        for s in &h.skipped {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {}</li>",
                escape(&s.dir.display().to_string()),
                escape(&s.reason)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(
        out,
        "<footer>Generated by benchbox {} from the runs' results.json and runs.csv.</footer>\n</body>\n</html>",
        escape(env!("CARGO_PKG_VERSION"))
    );
    Ok(out)
}

fn anchor(s: &Series) -> String {
    format!("t-{}-{}", s.cell_id, file_part(&s.metric.key))
}
