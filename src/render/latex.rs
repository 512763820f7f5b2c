//! `table.tex`: a booktabs table of medians with their confidence intervals, one row per cell
//! and one column per metric, ready to `\input` inside a `table` (or, `--wide`, `table*`)
//! environment of a paper (`\usepackage{booktabs,siunitx}` in the preamble).
//!
//! Decisions:
//! - By default the table fits one column of a two-column article: `\footnotesize`, tight
//!   `\tabcolsep`, the interval stacked under its median, short metric headers and long axis
//!   names or values abbreviated, with a key in the note below. `--wide` puts each interval
//!   beside its median with full metric headers (abbreviating only longer names and values),
//!   for a `table*` across both columns.
//! - Numbers are siunitx `S` columns aligned on the decimal point. One precision rule
//!   ([`column_decimals`]): a column's decimals are the fewest that show its narrowest
//!   interval with two significant digits, the same for every number of the column (its
//!   medians and interval ends), so no digit is shown that the uncertainty does not support
//!   and no cell loses one it does. The unit is in the header, once.
//! - The best median of each column is bold, by the metric's direction (the one rule of
//!   [`crate::metrics`]); `--marks` adds a dagger where the interval of the ratio to the
//!   reference cell ([`crate::reference`]) excludes 1.
//! - The note states n, how the intervals were made, and only promises intervals that are
//!   shown; every label and unit is escaped, so an axis value such as `50%_fast & small`
//!   cannot break the document.

use super::{Analysis, MetricTable, RenderOptions, Result, axes, axis_text};
use crate::results::RunResults;
use crate::spec::Better;
use crate::stats::MIN_BOOTSTRAP_SAMPLES;

/// How an interval is written beside its median.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CiStyle {
    /// `123 [116, 131]`: the interval's ends.
    #[default]
    Brackets,
    /// `123 ± 7.5`: half the interval's width (intervals of a median need not be symmetric:
    /// the note says so).
    Pm,
}

/// The choices `report` offers for table.tex.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// For `table*` across both columns: full headers, intervals beside their medians.
    pub wide: bool,
    pub ci_style: CiStyle,
    /// A dagger on each median whose ratio to the reference has an interval excluding 1.
    pub marks: bool,
}

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

/// [`escape`], with line breaks allowed after `-`, `_`, `/`, `.`, `=` and `,` inside words
/// longer than [`LONG_WORD`] characters, so a long value in a note wraps instead of running
/// into the margin (shorter words are left whole: the line can break at their spaces).
pub fn breakable(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.chars().count() <= LONG_WORD {
                return escape(word);
            }
            let mut out = String::new();
            for c in word.chars() {
                out.push_str(&escape(&c.to_string()));
                if matches!(c, '-' | '_' | '/' | '.' | '=' | ',') {
                    out.push_str(r"\allowbreak{}");
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The longest word [`breakable`] leaves whole.
pub const LONG_WORD: usize = 16;

/// The decimals every number of a metric's column is written with (in its [`super::Scale`]):
/// the fewest that show the narrowest positive interval of the column with two significant
/// digits; without any such interval, three significant digits of the smallest median. At
/// most 6.
pub fn column_decimals(table: &MetricTable) -> usize {
    let factor = table.scale.factor;
    let need = |x: f64, digits: i64| -> Option<i64> {
        (x.is_finite() && x > 0.0).then(|| digits - 1 - (x * factor).log10().floor() as i64)
    };
    let from_intervals = table
        .rows
        .iter()
        .filter_map(|r| r.summary?.median_ci)
        .filter_map(|ci| need(ci.width(), 2))
        .max();
    let decimals = from_intervals.or_else(|| {
        table
            .rows
            .iter()
            .filter_map(|r| r.summary.map(|s| s.median.abs()))
            .filter_map(|m| need(m, 3))
            .max()
    });
    decimals.unwrap_or(0).clamp(0, 6) as usize
}

/// `value` in `table`'s unit with `decimals` decimals ("-" for a non-finite value).
pub fn fixed(table: &MetricTable, value: f64, decimals: usize) -> String {
    let x = value * table.scale.factor;
    if !x.is_finite() {
        return "-".into();
    }
    let text = format!("{x:.decimals$}");
    // "-0.0" reads as a sign that is not there.
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_string()
    } else {
        text
    }
}

/// A metric column as the table writes it: decimals, the best median, siunitx's format.
struct Column<'t, 'a> {
    table: &'t MetricTable<'a>,
    decimals: usize,
    /// The median as written, for each row ("" without a summary).
    medians: Vec<String>,
    /// Rows whose written median equals the best one's (bold), when two or more rows have one.
    best: Vec<bool>,
}

impl<'t, 'a> Column<'t, 'a> {
    fn new(table: &'t MetricTable<'a>) -> Self {
        let decimals = column_decimals(table);
        let medians: Vec<String> = table
            .rows
            .iter()
            .map(|r| {
                r.summary
                    .map_or(String::new(), |s| fixed(table, s.median, decimals))
            })
            .collect();
        let with_summary: Vec<(usize, f64)> = table
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.summary.map(|s| (i, s.median)))
            .filter(|(_, m)| m.is_finite())
            .collect();
        let best_index = with_summary
            .iter()
            .copied()
            .reduce(|a, b| match table.metric.better {
                Better::Lower if b.1 < a.1 => b,
                Better::Higher if b.1 > a.1 => b,
                _ => a,
            })
            .map(|(i, _)| i);
        let best = (0..table.rows.len())
            .map(|i| match best_index {
                Some(b) if with_summary.len() >= 2 => medians[i] == medians[b],
                _ => false,
            })
            .collect();
        Column {
            table,
            decimals,
            medians,
            best,
        }
    }

    /// siunitx's `table-format` for the medians: integer digits, decimals, a sign if needed.
    fn table_format(&self) -> String {
        let integers = self
            .medians
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.trim_start_matches('-')
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .len()
            })
            .max()
            .unwrap_or(1)
            .max(1);
        let sign = if self.medians.iter().any(|m| m.starts_with('-')) {
            "-"
        } else {
            ""
        };
        format!("{sign}{integers}.{}", self.decimals)
    }

    /// The median cell of `row`, bold when best, daggered when marked.
    fn median_cell(&self, row: usize, marks: bool) -> String {
        let r = &self.table.rows[row];
        if r.summary.is_none() {
            return "{--}".into();
        }
        let mut out = String::new();
        if self.best[row] {
            out.push_str("\\bfseries ");
        }
        out.push_str(&self.medians[row]);
        if marks && significant_ratio(self.table, row) {
            out.push_str("\\rlap{\\textsuperscript{\\dag}}");
        }
        out
    }

    /// The interval of `row` as text ("" without one).
    fn interval_text(&self, row: usize, style: CiStyle) -> String {
        let Some(ci) = self.table.rows[row].summary.and_then(|s| s.median_ci) else {
            return String::new();
        };
        match style {
            CiStyle::Brackets => format!(
                "[{}, {}]",
                fixed(self.table, ci.lower, self.decimals),
                fixed(self.table, ci.upper, self.decimals)
            ),
            CiStyle::Pm => format!(
                "$\\pm$\\,{}",
                fixed(self.table, ci.width() / 2.0, self.decimals)
            ),
        }
    }
}

/// Whether `row`'s ratio to the reference has an interval that excludes 1.
pub fn significant_ratio(table: &MetricTable, row: usize) -> bool {
    let r = &table.rows[row];
    !r.is_reference
        && r.ratio
            .and_then(|q| q.ci)
            .is_some_and(|ci| ci.lower > 1.0 || ci.upper < 1.0)
}

/// The short header of a metric in the narrow table, and what it stands for.
fn short_metric(table: &MetricTable) -> (String, String) {
    let m = &table.metric;
    let short = match m.key.as_str() {
        "wall_s" => "Wall".to_string(),
        "cpu_s" => "CPU".to_string(),
        "peak_memory_bytes" => "Mem.".to_string(),
        _ => abbreviate(m.short_title(), 7),
    };
    (short, m.title.to_lowercase_first())
}

trait LowerFirst {
    fn to_lowercase_first(&self) -> String;
}

impl LowerFirst for String {
    /// "Wall time" -> "wall time", but "CPU time" stays.
    fn to_lowercase_first(&self) -> String {
        let mut chars = self.chars();
        match (chars.next(), chars.next()) {
            (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
                a.to_lowercase().collect::<String>() + &self[a.len_utf8()..]
            }
            _ => self.clone(),
        }
    }
}

/// `name` if at most `max` characters, else its initials ("compression_level" -> "cl") or,
/// for one long word, its first five letters and a period ("compression" -> "compr.").
pub fn abbreviate(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let words = words(name);
    if words.len() >= 2 {
        let initials: String = words.iter().filter_map(|w| w.chars().next()).collect();
        if initials.chars().count() <= max {
            return initials;
        }
        return initials.chars().take(max).collect();
    }
    let first: String = name.chars().take(5).collect();
    format!("{first}.")
}

/// The words of a name: split at anything but letters and digits, and at lower-to-upper
/// case changes ("peakMemory_bytes" -> peak, Memory, bytes).
pub fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Distinct short forms: a repeated one gets 2, 3, ... in order (the first keeps its form).
fn distinct(mut names: Vec<String>) -> Vec<String> {
    for i in 1..names.len() {
        if names[..i].contains(&names[i]) {
            let base = names[i].clone();
            let mut k = 2;
            while names.contains(&format!("{base}{k}")) {
                k += 1;
            }
            names[i] = format!("{base}{k}");
        }
    }
    names
}

/// The longest axis name and value the narrow (wide) table writes in full; longer names are
/// abbreviated, longer values get a letter, each with an entry in the key.
const LONG_NAME: [usize; 2] = [6, 14];
const LONG_VALUE: [usize; 2] = [10, 24];

/// The labels of the narrow table: axis headers, each cell's axis texts, and the key.
struct Labels {
    headers: Vec<String>,
    /// Per cell, per label column, the text written (escaped).
    cells: Vec<Vec<String>>,
    /// Per axis, (value, written form) of the abbreviated values.
    value_codes: Vec<Vec<(String, String)>>,
    /// "short: what it stands for" entries of the key (escaped).
    key: Vec<String>,
}

fn labels(results: &RunResults, axes: &[super::Axis], wide: bool) -> Labels {
    if axes.is_empty() {
        return Labels {
            headers: vec!["Cell".into()],
            cells: results
                .cells
                .iter()
                .map(|c| vec![escape(&c.label)])
                .collect(),
            value_codes: Vec::new(),
            key: Vec::new(),
        };
    }
    let names: Vec<String> = axes.iter().map(|a| a.name.clone()).collect();
    let (long_name, long_value) = (LONG_NAME[wide as usize], LONG_VALUE[wide as usize]);
    let shorts = distinct(names.iter().map(|n| abbreviate(n, long_name)).collect());
    let mut key = Vec::new();
    for (short, name) in shorts.iter().zip(&names) {
        if short != name {
            key.push(format!("{}: {}", escape(short), breakable(name)));
        }
    }
    // Long values, lettered in order of first appearance across the table.
    let mut value_codes: Vec<Vec<(String, String)>> = vec![Vec::new(); axes.len()];
    let mut next = 0usize;
    let mut cells = Vec::new();
    for cell in &results.cells {
        let mut row = Vec::new();
        for (a, axis) in axes.iter().enumerate() {
            let text = axis_text(cell, &axis.name);
            if text.chars().count() <= long_value {
                row.push(escape(&text));
                continue;
            }
            let code = match value_codes[a].iter().find(|(v, _)| v == &text) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = format!("({})", letter_code(next));
                    next += 1;
                    key.push(format!("{c} {}", breakable(&text)));
                    value_codes[a].push((text.clone(), c.clone()));
                    c
                }
            };
            row.push(code);
        }
        cells.push(row);
    }
    Labels {
        headers: shorts.iter().map(|s| escape(s)).collect(),
        cells,
        value_codes,
        key,
    }
}

/// a, b, ..., z, aa, ab, ...
fn letter_code(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The geometric-mean rows: per (axis, value) against the reference's value, each metric's
/// geometric mean ratio.
fn geomean_rows(
    tables: &[MetricTable],
    axes: &[super::Axis],
    labels: &Labels,
    wide: bool,
) -> String {
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
    let shown = |a: usize, value: &str| -> String {
        labels
            .value_codes
            .get(a)
            .and_then(|codes| codes.iter().find(|(v, _)| v == value))
            .map_or_else(|| escape(value), |(_, c)| c.clone())
    };
    let mut out = String::from("\\midrule\n");
    for (axis, value, base) in &keys {
        let mut fields: Vec<String> = axes
            .iter()
            .enumerate()
            .map(|(a, x)| {
                if &x.name == axis {
                    format!("{}\\,/\\,{}", shown(a, value), shown(a, base))
                } else {
                    "\\textit{g.\\,m.}".to_string()
                }
            })
            .collect();
        for t in tables {
            let g = t
                .geomeans
                .iter()
                .find(|g| (&g.axis, &g.value) == (axis, value));
            fields.push(g.map_or("{--}".to_string(), |g| {
                format!("{{{}$\\times$}}", super::format_ratio(g.geomean))
            }));
            if wide {
                fields.push(String::new());
            }
        }
        out.push_str(&format!("{} \\\\\n", fields.join(" & ")));
    }
    out
}

pub fn latex(results: &RunResults, opts: &RenderOptions) -> Result<String> {
    Ok(latex_of(&Analysis::new(results, opts)?))
}

/// [`latex`] from the run's analysis: it only reads the summaries and ratios there, with the
/// analysis' [`TableOptions`].
pub fn latex_of(analysis: &Analysis) -> String {
    let opts = analysis.table;
    let (results, tables) = (analysis.results, &analysis.tables);
    let axes = axes(results);
    let labels = labels(results, &axes, opts.wide);
    let columns: Vec<Column> = tables.iter().map(Column::new).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "% benchbox {}: run {} of `{}` (matrix sha256 {}).\n",
        results.tool_version, results.run_id, results.matrix_name, results.matrix_sha256
    ));
    if let Some(r) = &results.revision {
        // A comment line: a newline in a `--rev` must not end it.
        out.push_str(&format!(
            "% Revision measured: {}.\n",
            r.describe_line().replace(['\n', '\r'], " ")
        ));
    }
    out.push_str(&format!(
        "% Needs \\usepackage{{booktabs,siunitx}}; use as \\input{{table.tex}} inside a {} environment.\n",
        if opts.wide {
            "table* (both columns)"
        } else {
            "table (one column)"
        }
    ));

    let label_count = labels.headers.len();
    let metric_spec = |c: &Column| {
        let s = format!(
            "S[table-format={},detect-weight,mode=text]",
            c.table_format()
        );
        if opts.wide {
            format!("{s}@{{\\,}}l")
        } else {
            s
        }
    };
    let (size, sep) = if opts.wide {
        ("\\small", "4pt")
    } else {
        ("\\footnotesize", "2.5pt")
    };
    out.push_str(&format!(
        "\\begingroup{size}\\setlength{{\\tabcolsep}}{{{sep}}}%\n\\begin{{tabular*}}{{\\linewidth}}{{@{{\\extracolsep{{\\fill}}}}{}{}@{{}}}}\n\\toprule\n",
        "l".repeat(label_count),
        columns.iter().map(metric_spec).collect::<String>()
    ));

    // Headers: the metric, then its unit (kept apart so columns stay narrow).
    let mut key = labels.key.clone();
    let mut titles = labels.headers.clone();
    let mut units = vec![String::new(); label_count];
    for c in &columns {
        let title = if opts.wide {
            escape(c.table.metric.short_title())
        } else {
            let (short, long) = short_metric(c.table);
            if short != long {
                key.push(format!("{}: {}", escape(&short), escape(&long)));
            }
            escape(&short)
        };
        let unit = if c.table.scale.unit.is_empty() {
            String::new()
        } else {
            format!("({})", escape(&c.table.scale.unit))
        };
        if opts.wide {
            titles.push(format!("\\multicolumn{{2}}{{c}}{{{title}}}"));
            units.push(format!("\\multicolumn{{2}}{{c}}{{{unit}}}"));
        } else {
            titles.push(format!("{{{title}}}"));
            units.push(format!("{{{unit}}}"));
        }
    }
    out.push_str(&format!("{} \\\\\n", titles.join(" & ")));
    out.push_str(&format!("{} \\\\\n\\midrule\n", units.join(" & ")));

    for (i, cell_labels) in labels.cells.iter().enumerate() {
        let mut fields = cell_labels.clone();
        let mut under = vec![String::new(); label_count];
        for c in &columns {
            fields.push(c.median_cell(i, opts.marks));
            let interval = c.interval_text(i, opts.ci_style);
            if opts.wide {
                fields.push(format!("\\footnotesize {interval}"));
            } else if interval.is_empty() {
                under.push(String::new());
            } else {
                under.push(format!("{{\\scriptsize {interval}}}"));
            }
        }
        out.push_str(&format!("{} \\\\\n", fields.join(" & ")));
        if !opts.wide && under.iter().any(|u| !u.is_empty()) {
            out.push_str(&format!("{} \\\\\n", under.join(" & ")));
            if i + 1 < labels.cells.len() {
                out.push_str("\\addlinespace[2pt]\n");
            }
        }
    }
    out.push_str(&geomean_rows(tables, &axes, &labels, opts.wide));
    out.push_str("\\bottomrule\n\\end{tabular*}\n");
    out.push_str(&format!(
        "\\par\\smallskip{{\\scriptsize\\raggedright {}\\par}}\n\\endgroup\n",
        note(analysis, opts, &key)
    ));
    out
}

/// The note under the table: what the numbers are, so the table stands without its caption.
fn note(analysis: &Analysis, opts: TableOptions, key: &[String]) -> String {
    let (results, tables) = (analysis.results, &analysis.tables);
    let summaries: Vec<(usize, bool)> = tables
        .iter()
        .flat_map(|t| {
            t.rows
                .iter()
                .filter_map(|r| r.summary.map(|s| (s.n, s.median_ci.is_some())))
        })
        .collect();
    let ns: Vec<usize> = summaries.iter().map(|(n, _)| *n).collect();
    let (lo, hi) = (
        ns.iter().min().copied().unwrap_or(0),
        ns.iter().max().copied().unwrap_or(0),
    );
    let n = if lo == hi {
        format!("$n = {lo}$")
    } else {
        format!("$n = {lo}$--${hi}$")
    };
    let shown = summaries.iter().filter(|(_, ci)| *ci).count();
    let confidence = format!("{:.0}\\%", results.stats.confidence * 100.0);
    let mut parts = Vec::new();
    if shown == 0 {
        parts.push(format!(
            "Median of {n} invocations per cell; no confidence intervals: they need at least {MIN_BOOTSTRAP_SAMPLES} invocations per cell."
        ));
    } else {
        let what = match opts.ci_style {
            CiStyle::Brackets => format!("Median [{confidence} CI of the median]"),
            CiStyle::Pm => format!(
                "Median $\\pm$ half the width of its {confidence} CI (the interval need not be symmetric)"
            ),
        };
        let missing = if shown < summaries.len() {
            format!("; cells with fewer than {MIN_BOOTSTRAP_SAMPLES} invocations have no interval")
        } else {
            String::new()
        };
        parts.push(format!(
            "{what} of {n} invocations per cell; {}{missing}.",
            escape(&super::interval_methods(results))
        ));
        parts.push(format!(
            "Numbers have the decimals that show the narrowest {confidence} CI of their column with two significant digits."
        ));
    }
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
    let bold = tables
        .iter()
        .any(|t| t.rows.iter().filter(|r| r.summary.is_some()).count() >= 2);
    if bold {
        parts.push(format!("Bold: the best median of each column ({better})."));
    } else {
        parts.push(format!("{}.", capitalized(&better)));
    }
    let reference = analysis
        .reference
        .as_ref()
        .map(|r| breakable(&results.cells[r.index].label));
    if opts.marks
        && let Some(reference) = &reference
    {
        let any_ratio_ci = tables
            .iter()
            .flat_map(|t| &t.rows)
            .any(|r| r.ratio.is_some_and(|q| q.ci.is_some()));
        if any_ratio_ci {
            parts.push(format!(
                "$^\\dagger$: the {confidence} CI of the ratio of medians to the reference cell ({reference}) excludes 1."
            ));
        } else {
            parts.push(format!(
                "No cell is marked: the ratios to the reference cell ({reference}) have no interval (too few invocations)."
            ));
        }
    }
    if tables.iter().any(|t| !t.geomeans.is_empty()) {
        let reference = reference.unwrap_or_default();
        parts.push(format!(
            "g.\\,m.: the geometric mean, over the pairs of cells that differ only in that axis, of the ratio of their medians (value\\,/\\,the reference cell's value; reference {reference})."
        ));
    }
    if !key.is_empty() {
        parts.push(format!("{}.", key.join("; ")));
    }
    if tables.iter().any(|t| t.metric.key == "peak_memory_bytes") {
        parts.push("Peak memory: the cgroup's memory charge, page cache included, not RSS.".into());
    }
    parts.join(" ")
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
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

    #[test]
    fn abbreviations_are_initials_or_a_cut_word() {
        assert_eq!(abbreviate("level", 6), "level");
        assert_eq!(abbreviate("compression_level", 6), "cl");
        assert_eq!(abbreviate("compression", 6), "compr.");
        assert_eq!(abbreviate("peakMemoryBytes", 6), "pMB");
        assert_eq!(
            distinct(vec!["cl".into(), "cl".into(), "x".into(), "cl".into()]),
            ["cl", "cl2", "x", "cl3"]
        );
        assert_eq!(letter_code(0), "a");
        assert_eq!(letter_code(25), "z");
        assert_eq!(letter_code(26), "aa");
    }

    #[test]
    fn decimals_follow_the_narrowest_interval() {
        let dir = tempfile::tempdir().unwrap();
        crate::report::tests_support::write_run(dir.path());
        let (run, _) = crate::rebuild::load_summarized(dir.path()).unwrap();
        let analysis = Analysis::new(&run, &RenderOptions::default()).unwrap();
        for t in &analysis.tables {
            let d = column_decimals(t);
            let narrowest = t
                .rows
                .iter()
                .filter_map(|r| r.summary?.median_ci)
                .map(|ci| ci.width() * t.scale.factor)
                .filter(|w| *w > 0.0)
                .fold(f64::INFINITY, f64::min);
            if narrowest.is_finite() && d < 6 {
                // Two significant digits of the narrowest interval, and not one more.
                let shown = (narrowest * 10f64.powi(d as i32)).round();
                assert!(
                    (10.0..100.0).contains(&shown) || (d == 0 && shown >= 10.0),
                    "{} {d} {narrowest}",
                    t.metric.key
                );
            }
            assert_eq!(fixed(t, -1e-9 / t.scale.factor, 1), "0.0");
        }
    }
}
