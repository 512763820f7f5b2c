//! The matrix's `[report]` section: how the figures are drawn (width, font size, log scale,
//! axis labels, palette, per-axis scale). It is recorded in the plan (results.json) so a later
//! `report` draws the same figures, and `report`'s flags override it key by key. It describes
//! drawing only: no key of it enters a cell's id (`build/identity.rs` hashes what runs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::node::{Kind, Node};

/// `[report]` as written; every key optional (`None`: the default of [`crate::render`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportOptions {
    /// Figure width in inches (`"column"` = 3.5, `"page"` = 7, `"5in"`, `"12cm"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figure_width_in: Option<f64>,
    /// Tick-label text size in points; titles are 1 pt larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font_size_pt: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_scale: Option<LogScale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub palette: Option<Palette>,
    /// Axis or metric key -> its axis title (`cpu_quota = "CPU quota (cores)"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Axis name -> how its values are placed on a plot's x axis.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub axes: BTreeMap<String, AxisScale>,
    /// `table = "wide"`: table.tex as a `table*` across both columns (as `report --wide`);
    /// `"column"` (the default): one column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wide_table: Option<bool>,
}

impl ReportOptions {
    pub fn is_default(&self) -> bool {
        *self == ReportOptions::default()
    }

    /// These options with every key `over` sets taken from it (flags over the matrix).
    pub fn overridden_by(&self, over: &ReportOptions) -> ReportOptions {
        let mut out = self.clone();
        out.figure_width_in = over.figure_width_in.or(out.figure_width_in);
        out.font_size_pt = over.font_size_pt.or(out.font_size_pt);
        out.log_scale = over.log_scale.or(out.log_scale);
        out.palette = over.palette.or(out.palette);
        out.wide_table = over.wide_table.or(out.wide_table);
        out.labels
            .extend(over.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.axes
            .extend(over.axes.iter().map(|(k, v)| (k.clone(), *v)));
        out
    }
}

/// When a value axis is logarithmic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogScale {
    /// When the figure's values (all positive) span more than [`AUTO_LOG_SPAN`] times.
    Auto,
    Always,
    Never,
}

/// Above this max/min ratio, `log-scale = "auto"` draws a value axis logarithmic.
pub const AUTO_LOG_SPAN: f64 = 20.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Palette {
    /// Okabe-Ito: distinct for colour-blind readers (the default).
    OkabeIto,
    /// Shades of grey and black, for print.
    Grey,
}

/// How an axis's values sit on a plot's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AxisScale {
    /// Evenly spaced levels, ticked at the values, no line or band between them (the default:
    /// levels such as 1, 6, 9 are rarely evenly meaningful).
    Categorical,
    Linear,
    Log,
}

pub const KEYS: &[&str] = &[
    "figure-width",
    "font-size",
    "log-scale",
    "palette",
    "labels",
    "axes",
    "table",
];

/// `"column"`, `"page"`, or a length with its unit (`in`, `cm`, `mm`, `pt`) -> inches, 1 to 20.
pub fn parse_width(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let inches = match t {
        "column" => 3.5,
        "page" => 7.0,
        _ => {
            let units = [
                ("in", 1.0),
                ("cm", 1.0 / 2.54),
                ("mm", 1.0 / 25.4),
                ("pt", 1.0 / 72.0),
            ];
            let (number, per) = units
                .iter()
                .find_map(|(u, per)| t.strip_suffix(u).map(|n| (n.trim(), *per)))
                .ok_or_else(|| {
                    format!("figure width `{t}` is not `column`, `page` or a length such as `5in` or `12cm`")
                })?;
            let n: f64 = number
                .parse()
                .map_err(|_| format!("figure width `{t}`: `{number}` is not a number"))?;
            n * per
        }
    };
    if !(1.0..=20.0).contains(&inches) {
        return Err(format!(
            "figure width `{t}` is {inches:.2} in; it must be between 1 in and 20 in"
        ));
    }
    Ok(inches)
}

/// A font size in points, 4 to 24.
pub fn check_font_size(pt: f64) -> Result<f64, String> {
    if !(4.0..=24.0).contains(&pt) {
        return Err(format!("font size {pt} pt must be between 4 and 24"));
    }
    Ok(pt)
}

pub fn parse_log_scale(text: &str) -> Result<LogScale, String> {
    match text {
        "auto" => Ok(LogScale::Auto),
        "always" => Ok(LogScale::Always),
        "never" => Ok(LogScale::Never),
        _ => Err(format!(
            "log scale `{text}` is not one of `auto`, `always`, `never`"
        )),
    }
}

pub fn parse_palette(text: &str) -> Result<Palette, String> {
    match text {
        "okabe-ito" => Ok(Palette::OkabeIto),
        "grey" | "gray" => Ok(Palette::Grey),
        _ => Err(format!(
            "palette `{text}` is not one of `okabe-ito`, `grey`"
        )),
    }
}

pub fn parse_axis_scale(text: &str) -> Result<AxisScale, String> {
    match text {
        "categorical" => Ok(AxisScale::Categorical),
        "linear" => Ok(AxisScale::Linear),
        "log" => Ok(AxisScale::Log),
        _ => Err(format!(
            "scale `{text}` is not one of `categorical`, `linear`, `log`"
        )),
    }
}

/// A problem in `[report]`: the node it is about, the message and a hint.
pub(crate) struct Problem<'n> {
    pub node: &'n Node,
    /// Whether `node` is a key (its span is then the key's).
    pub key_span: Option<std::ops::Range<usize>>,
    pub message: String,
    pub hint: String,
}

fn problem<'n>(node: &'n Node, message: String, hint: &str) -> Problem<'n> {
    Problem {
        node,
        key_span: None,
        message,
        hint: hint.to_string(),
    }
}

fn string<'n>(node: &'n Node, key: &str) -> Result<&'n str, Problem<'n>> {
    node.as_str().ok_or_else(|| {
        problem(
            node,
            format!("expected a string for `{key}`, found {}", node.describe()),
            "write it in quotes",
        )
    })
}

/// Reads `[report]`; `names` are the axis names and the metric keys a label may name.
pub(crate) fn parse<'n>(
    table: &'n Node,
    axis_names: &[String],
    metric_names: &[String],
) -> Result<ReportOptions, Problem<'n>> {
    let mut out = ReportOptions::default();
    for e in table.entries() {
        let v = &e.value;
        match e.key.as_str() {
            "figure-width" => {
                let text = string(v, &e.key)?;
                out.figure_width_in = Some(parse_width(text).map_err(|m| {
                    problem(
                        v,
                        m,
                        "use \"column\" (3.5 in), \"page\" (7 in) or e.g. \"5in\", \"12cm\"",
                    )
                })?);
            }
            "font-size" => {
                let pt = match v.kind {
                    Kind::Int(i) => i as f64,
                    Kind::Float(f) => f,
                    _ => {
                        return Err(problem(
                            v,
                            format!(
                                "expected a number of points for `font-size`, found {}",
                                v.describe()
                            ),
                            "write e.g. font-size = 8",
                        ));
                    }
                };
                out.font_size_pt = Some(
                    check_font_size(pt).map_err(|m| problem(v, m, "8 or 9 pt suits a paper"))?,
                );
            }
            "table" => {
                out.wide_table = Some(match string(v, &e.key)? {
                    "wide" => true,
                    "column" => false,
                    other => {
                        return Err(problem(
                            v,
                            format!("unknown table layout `{other}`"),
                            "write \"column\" (one column, the default) or \"wide\" (a table* across both)",
                        ));
                    }
                });
            }
            "log-scale" => {
                out.log_scale = Some(
                    parse_log_scale(string(v, &e.key)?)
                        .map_err(|m| problem(v, m, "\"auto\" is the default"))?,
                );
            }
            "palette" => {
                out.palette = Some(parse_palette(string(v, &e.key)?).map_err(|m| {
                    problem(
                        v,
                        m,
                        "\"okabe-ito\" is the default; \"grey\" prints in black and white",
                    )
                })?);
            }
            "labels" => {
                if !matches!(v.kind, Kind::Table(_)) {
                    return Err(problem(
                        v,
                        format!("expected a table for `labels`, found {}", v.describe()),
                        "write it as [report.labels] with NAME = \"Label\" lines",
                    ));
                }
                let known: Vec<&str> = axis_names
                    .iter()
                    .chain(metric_names)
                    .map(String::as_str)
                    .collect();
                for l in v.entries() {
                    if !known.contains(&l.key.as_str()) {
                        return Err(Problem {
                            node: &l.value,
                            key_span: Some(l.key_span.clone()),
                            message: format!(
                                "`{}` in [report.labels] is neither an axis nor a metric",
                                l.key
                            ),
                            hint: super::suggest(&l.key, known.iter().copied(), "axes and metrics"),
                        });
                    }
                    out.labels
                        .insert(l.key.clone(), string(&l.value, &l.key)?.to_string());
                }
            }
            "axes" => {
                for a in v.entries() {
                    if !axis_names.contains(&a.key) {
                        return Err(Problem {
                            node: &a.value,
                            key_span: Some(a.key_span.clone()),
                            message: format!("`{}` in [report.axes] is not an axis", a.key),
                            hint: super::suggest(
                                &a.key,
                                axis_names.iter().map(String::as_str),
                                "axes",
                            ),
                        });
                    }
                    // `axes = { level = "log" }` is short for `[report.axes.level] scale = "log"`.
                    if let Kind::Str(text) = &a.value.kind {
                        let scale = parse_axis_scale(text).map_err(|m| {
                            problem(
                                &a.value,
                                m,
                                "\"categorical\" (the default) places the values evenly",
                            )
                        })?;
                        out.axes.insert(a.key.clone(), scale);
                        continue;
                    }
                    if !matches!(a.value.kind, Kind::Table(_)) {
                        return Err(Problem {
                            node: &a.value,
                            key_span: Some(a.key_span.clone()),
                            message: format!(
                                "[report.axes] `{}` must be a scale or a table with `scale`",
                                a.key
                            ),
                            hint: format!(
                                "write `{} = \"log\"` (or \"linear\", \"categorical\")",
                                a.key
                            ),
                        });
                    }
                    for s in a.value.entries() {
                        if s.key != "scale" {
                            return Err(Problem {
                                node: &s.value,
                                key_span: Some(s.key_span.clone()),
                                message: format!(
                                    "unknown key `{}` in [report.axes.{}]",
                                    s.key, a.key
                                ),
                                hint: "the only key is `scale`".into(),
                            });
                        }
                        let scale = parse_axis_scale(string(&s.value, "scale")?).map_err(|m| {
                            problem(
                                &s.value,
                                m,
                                "\"categorical\" (the default) places the values evenly",
                            )
                        })?;
                        out.axes.insert(a.key.clone(), scale);
                    }
                }
            }
            _ => {
                return Err(Problem {
                    node: v,
                    key_span: Some(e.key_span.clone()),
                    message: format!("unknown key `{}` in [report]", e.key),
                    hint: super::suggest(&e.key, KEYS.iter().copied(), "valid keys"),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_in_words_and_units() {
        assert_eq!(parse_width("column"), Ok(3.5));
        assert_eq!(parse_width("page"), Ok(7.0));
        assert_eq!(parse_width("5in"), Ok(5.0));
        assert!((parse_width("12.7cm").unwrap() - 5.0).abs() < 1e-9);
        assert!((parse_width("252pt").unwrap() - 3.5).abs() < 1e-9);
        assert!(parse_width("5").unwrap_err().contains("not `column`"));
        assert!(
            parse_width("0.5in")
                .unwrap_err()
                .contains("between 1 in and 20 in")
        );
        assert!(parse_width("xin").unwrap_err().contains("not a number"));
    }

    #[test]
    fn report_keys_never_change_a_cell_id() {
        use crate::spec::tests::{err, ok};
        let base = "[matrix]\nlevel = [1, 6, 9]\n[run]\ncommand = \"gzip -{level}\"\n";
        let plain = ok(base);
        let drawn = ok(&format!(
            "{base}[report]\nfigure-width = \"page\"\nfont-size = 10\nlog-scale = \"always\"\npalette = \"grey\"\nlabels = {{ level = \"Compression level\", wall_s = \"Time (s)\" }}\naxes = {{ level = \"log\" }}\n"
        ));
        let ids =
            |m: &crate::spec::Matrix| m.cells.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&drawn), ids(&plain));
        assert_eq!(drawn.report.figure_width_in, Some(7.0));
        assert_eq!(drawn.report.axes.get("level"), Some(&AxisScale::Log));
        let table = ok(&format!("{base}[report.axes.level]\nscale = \"linear\"\n"));
        assert_eq!(table.report.axes.get("level"), Some(&AxisScale::Linear));
        let e = err(&format!("{base}[report]\naxes = {{ level = 3 }}\n"));
        assert!(e.contains("must be a scale"), "{e}");
        assert!(plain.report.is_default());
        // A label for a name that is neither an axis nor a metric is an error at its place.
        let e = err(&format!("{base}[report]\nlabels = {{ levle = \"x\" }}\n"));
        assert!(e.contains("levle"), "{e}");
        assert!(e.contains("hint:"), "{e}");
    }

    #[test]
    fn overriding_takes_the_flags_keys_only() {
        let mut matrix = ReportOptions {
            font_size_pt: Some(9.0),
            palette: Some(Palette::Grey),
            ..Default::default()
        };
        matrix.labels.insert("a".into(), "A".into());
        let mut flags = ReportOptions {
            font_size_pt: Some(7.0),
            ..Default::default()
        };
        flags.labels.insert("b".into(), "B".into());
        let both = matrix.overridden_by(&flags);
        assert_eq!(both.font_size_pt, Some(7.0));
        assert_eq!(both.palette, Some(Palette::Grey));
        assert_eq!(both.labels.len(), 2);
    }
}
