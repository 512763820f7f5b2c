//! `table.tex`: a booktabs table of medians with their 95% confidence intervals, one row per
//! cell and one column per metric, ready to `\input` inside a `table` environment of a paper
//! (`\usepackage{booktabs}` in the preamble; nothing else is required).
//!
//! Decisions: a column per axis (rather than the "a=1 b=2" label) so the table reads like the
//! matrix; one unit per metric column, in the header, so digits line up; four significant
//! digits; every label and unit is escaped, so an axis value such as `50%_fast & small` cannot
//! break the document.

use super::{Analysis, MetricTable, RenderOptions, Result, axes, axis_text};
use crate::results::RunResults;
use crate::spec::Better;

/// `text` with LaTeX's special characters escaped for text mode.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '<' => out.push_str(r"\textless{}"),
            '>' => out.push_str(r"\textgreater{}"),
            // Math mode works in every LaTeX, with or without a unicode-aware engine.
            'µ' => out.push_str(r"$\mu$"),
            '×' => out.push_str(r"$\times$"),
            _ => out.push(c),
        }
    }
    out
}

fn cell_text(table: &MetricTable, row: usize) -> String {
    match table.rows[row].summary {
        None => "--".into(),
        Some(s) => {
            let median = table.scale.format(s.median, 4);
            match s.median_ci {
                Some(ci) => format!(
                    "{median} [{}, {}]",
                    table.scale.format(ci.lower, 4),
                    table.scale.format(ci.upper, 4)
                ),
                None => median,
            }
        }
    }
}

/// The booktabs table (see the module doc).
/// The geometric means along each axis, one row per (axis, value) against the reference's
/// value: "value / base" in that axis's column, each metric's geometric mean ratio.
fn geomean_rows(tables: &[MetricTable], axes: &[super::Axis]) -> String {
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for g in tables.iter().flat_map(|t| &t.geomeans) {
        let key = (g.axis.clone(), g.value.clone(), g.base_value.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return String::new();
    }
    let mut out = String::from("\\midrule\n");
    for (axis, value, base) in &keys {
        let mut fields: Vec<String> = axes
            .iter()
            .map(|a| {
                if &a.name == axis {
                    format!("{} / {}", escape(value), escape(base))
                } else {
                    "\\textit{geo.\\ mean}".to_string()
                }
            })
            .collect();
        fields.extend(tables.iter().map(|t| {
            t.geomeans
                .iter()
                .find(|g| (&g.axis, &g.value) == (axis, value))
                .map_or("--".to_string(), |g| {
                    format!("{}$\\times$", super::format_ratio(g.geomean))
                })
        }));
        out.push_str(&format!("{} \\\\\n", fields.join(" & ")));
    }
    out
}

pub fn latex(results: &RunResults, opts: &RenderOptions) -> Result<String> {
    Ok(latex_of(&Analysis::new(results, opts)?))
}

/// [`latex`] from the run's analysis: it only reads the summaries and ratios there.
pub fn latex_of(analysis: &Analysis) -> String {
    let (results, tables) = (analysis.results, &analysis.tables);
    let axes = axes(results);
    let mut out = String::new();
    out.push_str(&format!(
        "% benchbox {}: run {} of `{}` (matrix sha256 {}).\n",
        results.tool_version, results.run_id, results.matrix_name, results.matrix_sha256
    ));
    out.push_str(
        "% Needs \\usepackage{booktabs}; use as \\input{table.tex} inside a table environment.\n",
    );

    let label_columns: Vec<String> = if axes.is_empty() {
        vec!["Cell".into()]
    } else {
        axes.iter().map(|a| escape(&a.name)).collect()
    };
    let columns = label_columns.len() + tables.len();
    out.push_str(&format!(
        "\\begin{{tabular}}{{{}{}}}\n\\toprule\n",
        "l".repeat(label_columns.len()),
        "r".repeat(tables.len())
    ));
    // Two header lines: the metric, then its unit (kept apart so columns stay narrow).
    let mut titles = label_columns.clone();
    titles.extend(tables.iter().map(|t| escape(t.metric.short_title())));
    out.push_str(&format!("{} \\\\\n", titles.join(" & ")));
    let mut units = vec![String::new(); label_columns.len()];
    units.extend(tables.iter().map(|t| {
        if t.scale.unit.is_empty() {
            String::new()
        } else {
            format!("({})", escape(&t.scale.unit))
        }
    }));
    out.push_str(&format!("{} \\\\\n\\midrule\n", units.join(" & ")));

    for (i, cell) in results.cells.iter().enumerate() {
        let mut fields: Vec<String> = if axes.is_empty() {
            vec![escape(&cell.label)]
        } else {
            axes.iter()
                .map(|a| escape(&axis_text(cell, &a.name)))
                .collect()
        };
        fields.extend(tables.iter().map(|t| cell_text(t, i)));
        out.push_str(&format!("{} \\\\\n", fields.join(" & ")));
    }
    out.push_str(&geomean_rows(tables, &axes));
    out.push_str("\\bottomrule\n");

    // The note says what the numbers are, so the table can stand without its caption.
    let ns: Vec<usize> = tables
        .iter()
        .flat_map(|t| t.rows.iter().filter_map(|r| r.summary.map(|s| s.n)))
        .collect();
    let (lo, hi) = (
        ns.iter().min().copied().unwrap_or(0),
        ns.iter().max().copied().unwrap_or(0),
    );
    let n = if lo == hi {
        format!("$n = {lo}$")
    } else {
        format!("$n = {lo}$--${hi}$")
    };
    let higher: Vec<String> = tables
        .iter()
        .filter(|t| t.metric.better == Better::Higher)
        .map(|t| escape(t.metric.short_title()))
        .collect();
    let better = if higher.is_empty() {
        "lower is better".to_string()
    } else {
        format!("lower is better except for {}", higher.join(", "))
    };
    let confidence = results.stats.confidence * 100.0;
    out.push_str(&format!(
        "\\multicolumn{{{columns}}}{{l}}{{\\footnotesize Median [{confidence:.0}\\% CI of the median] over {n} invocations per cell; {better}.}} \\\\\n"
    ));
    if tables.iter().any(|t| t.metric.key == "peak_memory_bytes") {
        out.push_str(&format!(
            "\\multicolumn{{{columns}}}{{l}}{{\\footnotesize Peak memory: the cgroup's memory charge, page cache included, not RSS.}} \\\\\n"
        ));
    }
    out.push_str("\\end{tabular}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape(r"50%_a & b #1 $x {y} ~z ^ \ µs"),
            r"50\%\_a \& b \#1 \$x \{y\} \textasciitilde{}z \textasciicircum{} \textbackslash{} $\mu$s"
        );
    }
}
