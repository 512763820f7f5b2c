//! `benchbox history`'s plots and history.html: per cell and metric, a trend plot (the run
//! medians in history order, their intervals as a band, each change point a dashed line) drawn
//! with [`super::plots::trend`], and a self-contained page of them (inline SVG, no external
//! asset), with the table of change points. Pure: the history in, bytes out. Written with
//! `maud` as report.html is (see `super::html`): every interpolated value is escaped.

use maud::{DOCTYPE, PreEscaped, html as page};

use super::Result;
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
    let first = h.runs.first().map_or("-", |r| r.name());
    let last = h.runs.last().map_or("-", |r| r.name());
    let trends = h
        .series
        .iter()
        .map(|s| Ok((anchor(s), trend_plot(h, s, false)?)))
        .collect::<Result<Vec<_>>>()?;
    let out = page! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            (super::html::head(&title, None))
            body {
                "\n" h1 { (title) } "\n"
                p.lede {
                    (h.runs.len()) " complete run(s), " (first) " to " (last) "; "
                    (h.series.len()) " series, " (h.change_count()) " change point(s)."
                }
                "\n" p.muted { (super::history::method(h)) } "\n"
                @if check {
                    p class=(if failing.is_empty() { "better" } else { "worse" }) {
                        (super::history::check_line(h, failing))
                    }
                    "\n"
                }
                @for w in &h.warnings {
                    p.warn { "warning: " (w) } "\n"
                }
                h2 { "Change points" } "\n"
                @if h.change_count() == 0 {
                    p { "No change point." } "\n"
                } @else {
                    div.scroll { table {
                        "\n"
                        thead { tr {
                            th { "cell" } th { "metric" } th { "revision" } th { "previous" }
                            th { "direction" } th.num { "change" } th.num { "CI of change" }
                            th.num { "p" } th.num { "runs before / after" } th { "status" }
                        } }
                        "\n"
                        tbody {
                            "\n"
                            @for (si, s) in h.series.iter().enumerate() {
                                @for (ci, c) in s.changes.iter().enumerate() {
                                    (change_row(h, failing, si, s, ci, c))
                                }
                            }
                        }
                    } }
                    "\n"
                }
                h2 { "Trends" } "\n"
                @for (id, plot) in &trends {
                    figure id=(id) {
                        "\n"
                        // SVG that plotters drew from the runs' numbers, its text escaped as XML.
                        (PreEscaped(super::html::inline_svg(&plot.svg)))
                        "\n" figcaption { (plot.caption) } "\n"
                    }
                    "\n"
                }
                @if !h.skipped.is_empty() {
                    h2 { "Skipped runs" } "\n"
                    ul.notes {
                        "\n"
                        @for s in &h.skipped {
                            li { code { (s.dir.display()) } ": " (s.reason) } "\n"
                        }
                    }
                    "\n"
                }
                footer {
                    "Generated by benchbox " (env!("CARGO_PKG_VERSION"))
                    " from the runs' results.json and runs.csv."
                }
                "\n"
            }
            "\n"
        }
        "\n"
    };
    Ok(out.into_string())
}

/// One row of the change-point table.
fn change_row(
    h: &History,
    failing: &[Failing],
    si: usize,
    s: &Series,
    ci: usize,
    c: &crate::history::Change,
) -> maud::Markup {
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
    page! {
        tr {
            td { a href=(format!("#{}", anchor(s))) { (s.label) } }
            td { (s.metric.short_title()) }
            td { code { (h.runs[c.run].name()) } }
            td { code { (h.runs[c.previous_run].name()) } }
            td class=(class) { (direction) }
            td.num { (change) }
            td.num { (interval) }
            td.num { (format!("{:.1e}", c.detected.p_value)) }
            td.num { (sides) }
            td { (status) }
        }
        "\n"
    }
}

fn anchor(s: &Series) -> String {
    format!("t-{}-{}", s.cell_id, file_part(&s.metric.key))
}
