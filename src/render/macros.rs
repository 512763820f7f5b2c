//! `macros.tex`: a `\newcommand` for every number a paper would quote, so its text never
//! retypes one: per cell and metric the median, its interval, n and the ratio to the
//! reference with its interval; per metric its unit; the geometric means along each axis.
//! Written beside table.tex, with the same numbers (the same decimals: [`latex::fixed`] with
//! [`latex::column_decimals`]; ratios as every report writes them, [`super::format_ratio`]).
//!
//! Names are LaTeX-legal (ASCII letters only) and stable: `\bb` + cell + metric + quantity,
//! e.g. `\bbLevelOneWallMedian`. A cell is its axis names and values in CamelCase (its label
//! without axes), a metric its key (`wall_s` -> `Wall`, `peak_memory_bytes` -> `PeakMemory`,
//! a custom `db.qps` -> `DbQps`); digits are spelled out (`16` -> `OneSix`), a decimal point
//! between digits is `Point` (`0.5` -> `ZeroPointFive`), other characters only separate words
//! and letters outside ASCII are dropped. Two cells (or metrics) whose names would collide get
//! `B`, `C`, ... appended in the results' order, so the same run gives the same names. The file
//! lists each cell's and metric's name in a comment.

use std::collections::HashSet;

use super::{Analysis, MetricTable, format_ratio, latex};
use crate::reference::axis_texts;

/// The file name, beside table.tex.
pub const MACROS_FILE: &str = "macros.tex";

/// The prefix of every command: short, and taken by no LaTeX package we know of.
pub const PREFIX: &str = "bb";

const DIGITS: [&str; 10] = [
    "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine",
];

/// `text` as CamelCase ASCII letters (see the module doc): "compression_level" ->
/// "CompressionLevel", "0.5" -> "ZeroPointFive", "jdk-21" -> "JdkTwoOne".
pub fn camel(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut start_word = true;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            out.push_str(DIGITS[c as usize - '0' as usize]);
            start_word = true;
        } else if c == '.'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
        {
            out.push_str("Point");
            start_word = true;
        } else if c.is_ascii_alphabetic() {
            if start_word {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            start_word = false;
        } else {
            // Anything else (including letters outside ASCII) separates words.
            start_word = true;
        }
    }
    out
}

/// A metric's part of a name: its key in CamelCase, built-ins without their unit suffix.
fn metric_name(table: &MetricTable) -> String {
    let key = table.metric.key.as_str();
    let base = if crate::metrics::Metric::builtin(key).is_some() {
        key.trim_end_matches("_bytes").trim_end_matches("_s")
    } else {
        key
    };
    camel(base)
}

/// A cell's part of a name: "LevelOne", "QuotaZeroPointFiveMemSmall".
fn cell_name(cell: &crate::results::CellResult) -> String {
    let texts = axis_texts(cell);
    if texts.is_empty() {
        return camel(&cell.label);
    }
    texts.iter().map(|(k, v)| camel(k) + &camel(v)).collect()
}

/// `names` made distinct (and non-empty): a repeated one gets B, C, ..., Z, BA, ... appended.
pub fn disambiguate(names: Vec<String>) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let name = if name.is_empty() {
            "X".to_string()
        } else {
            name
        };
        let mut candidate = name.clone();
        let mut k = 1usize;
        while taken.contains(&candidate) {
            candidate = format!("{name}{}", suffix(k));
            k += 1;
        }
        taken.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

/// 1 -> B, 2 -> C, ..., 25 -> Z, 26 -> BA (letters, never digits).
fn suffix(mut k: usize) -> String {
    let mut out = Vec::new();
    while k > 0 {
        out.push(b'A' + (k % 26) as u8);
        k /= 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// macros.tex (see the module doc).
pub fn macros_of(analysis: &Analysis) -> String {
    let results = analysis.results;
    let cells = disambiguate(results.cells.iter().map(cell_name).collect());
    let metrics = disambiguate(analysis.tables.iter().map(metric_name).collect());
    let mut out = String::new();
    out.push_str(&format!(
        "% benchbox {}: run {} of `{}` (matrix sha256 {}).\n",
        results.tool_version, results.run_id, results.matrix_name, results.matrix_sha256
    ));
    out.push_str(
        "% \\input{macros.tex} in the preamble, then e.g. \\bbLevelOneWallMedian{} in the text.\n\
         % Per cell and metric: \\bb<Cell><Metric>Median, ...Low and ...High (the ends of the\n\
         % median's CI), ...N (invocations), ...Ratio, ...RatioLow, ...RatioHigh (median / the\n\
         % reference cell's median, with its CI); per metric \\bb<Metric>Unit; per axis value\n\
         % \\bbGeomean<Metric><Axis><Value> (the geometric mean ratio against the reference's value).\n\
         % Numbers are in the metric's unit with table.tex's decimals; a number the run does not\n\
         % have (no invocation, too few for a CI) has no command.\n",
    );
    let reference = analysis.reference.as_ref().map(|r| r.index);
    if let Some(r) = reference {
        out.push_str(&format!(
            "\\newcommand{{\\{PREFIX}Reference}}{{{}}}\n",
            latex::breakable(&results.cells[r].label)
        ));
    }
    out.push_str(&format!(
        "\\newcommand{{\\{PREFIX}Confidence}}{{{:.0}\\%}}\n",
        results.stats.confidence * 100.0
    ));
    out.push_str("% Cells:\n");
    for (cell, name) in results.cells.iter().zip(&cells) {
        out.push_str(&format!("%   {name}: {}\n", cell.label));
    }
    out.push_str("% Metrics:\n");
    for (t, name) in analysis.tables.iter().zip(&metrics) {
        out.push_str(&format!("%   {name}: {}\n", t.metric.key));
    }
    let mut taken: HashSet<String> = HashSet::new();
    let mut define = |out: &mut String, name: String, value: String| {
        // Names joined from parts could still meet ("AB"+"C", "A"+"BC"): the later one gets
        // a suffix, as colliding parts do.
        let mut candidate = name.clone();
        let mut k = 1;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{name}{}", suffix(k));
            k += 1;
        }
        out.push_str(&format!(
            "\\newcommand{{\\{PREFIX}{candidate}}}{{{value}}}\n"
        ));
    };
    for (t, metric) in analysis.tables.iter().zip(&metrics) {
        out.push_str(&format!("% {}\n", t.metric.title));
        define(
            &mut out,
            format!("{metric}Unit"),
            latex::escape(&t.scale.unit),
        );
        let decimals = latex::column_decimals(t);
        for (row, cell) in t.rows.iter().zip(&cells) {
            let Some(s) = row.summary else { continue };
            let stem = format!("{cell}{metric}");
            define(
                &mut out,
                format!("{stem}Median"),
                latex::fixed(t, s.median, decimals),
            );
            if let Some(ci) = s.median_ci {
                define(
                    &mut out,
                    format!("{stem}Low"),
                    latex::fixed(t, ci.lower, decimals),
                );
                define(
                    &mut out,
                    format!("{stem}High"),
                    latex::fixed(t, ci.upper, decimals),
                );
            }
            define(&mut out, format!("{stem}N"), s.n.to_string());
            // The reference's ratio is 1 by definition: it has none to quote.
            if let Some(q) = row.ratio.filter(|_| !row.is_reference) {
                define(&mut out, format!("{stem}Ratio"), format_ratio(q.ratio));
                if let Some(ci) = q.ci {
                    define(&mut out, format!("{stem}RatioLow"), format_ratio(ci.lower));
                    define(&mut out, format!("{stem}RatioHigh"), format_ratio(ci.upper));
                }
            }
        }
        for g in &t.geomeans {
            define(
                &mut out,
                format!("Geomean{metric}{}{}", camel(&g.axis), camel(&g.value)),
                format_ratio(g.geomean),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ascii_letters() {
        assert_eq!(camel("compression_level"), "CompressionLevel");
        assert_eq!(camel("0.5"), "ZeroPointFive");
        assert_eq!(camel("jdk-21"), "JdkTwoOne");
        assert_eq!(camel("v1.2.x"), "VOnePointTwoX");
        assert_eq!(camel("größe"), "GrE");
        assert_eq!(camel("50%_fast & small"), "FiveZeroFastSmall");
        for name in ["a.b", "0.5", "x y", "Ü"] {
            assert!(camel(name).chars().all(|c| c.is_ascii_alphabetic()));
        }
    }

    #[test]
    fn collisions_get_letters_in_order() {
        let names = disambiguate(vec![
            "A".into(),
            "A".into(),
            "AB".into(),
            "A".into(),
            String::new(),
        ]);
        assert_eq!(names, ["A", "AB", "ABB", "AC", "X"]);
        assert_eq!(suffix(1), "B");
        assert_eq!(suffix(25), "Z");
        assert_eq!(suffix(26), "BA");
    }
}
