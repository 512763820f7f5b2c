//! `[matrix]` -> axes and the list of cells: the cartesian product of the axes (first axis
//! outermost, as nested loops read), minus `exclude`, plus `include`.
//!
//! Linear and bounded. A cell is a row of value indices (one `u32` per axis), not a copy of
//! its values, so a million cells of three axes take 12 MB; labels and values are made when a
//! cell is built. Every lookup (a duplicate value, an `exclude` or `include` value) goes
//! through a hash of the values' texts: no step compares every value, or every cell, with
//! every other. The product is counted before anything is made: past [`MAX_CELLS`] the matrix
//! is refused at once, with its size.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::Value;

use super::build::{Reporter, builtin_columns};
use super::node::{Entry, Kind, Node};
use super::range;
use super::{Axis, SpecError, axis_value_text, is_axis_name, suggest};

/// The most cells a matrix may expand to (the product of its axes before `exclude`, and the
/// cells after `include`). `check` and `plan` walk this many in seconds and bounded memory;
/// see the README for the numbers.
pub const MAX_CELLS: usize = 1_000_000;

type Result<T> = std::result::Result<T, SpecError>;

/// The cells of a matrix, as rows of value indices into [`Expansion::axes`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expansion {
    /// Declared values, then values that only `include` entries bring.
    pub axes: Vec<Axis>,
    /// `texts[a][v]`: the text of value `v` of axis `a` (labels).
    texts: Vec<Vec<String>>,
    /// `axes.len()` value indices per cell, cells in order.
    rows: Vec<u32>,
    len: usize,
    /// Cells from `product..` come from `include` entries, at these spans.
    product: usize,
    include_spans: Vec<Range<usize>>,
    matrix_span: Range<usize>,
}

impl Expansion {
    pub fn len(&self) -> usize {
        self.len
    }

    fn row(&self, cell: usize) -> &[u32] {
        let n = self.axes.len();
        &self.rows[cell * n..(cell + 1) * n]
    }

    /// Cell `cell`'s `(axis, value)` pairs, in axis declaration order.
    pub fn values(&self, cell: usize) -> Vec<(String, Value)> {
        self.axes
            .iter()
            .zip(self.row(cell))
            .map(|(axis, &v)| (axis.name.clone(), axis.values[v as usize].clone()))
            .collect()
    }

    /// "jdk=17 gc=G1", or "default" when the matrix has no axes.
    pub fn label(&self, cell: usize) -> String {
        if self.axes.is_empty() {
            return "default".to_string();
        }
        let mut label = String::new();
        for ((axis, texts), &v) in self.axes.iter().zip(&self.texts).zip(self.row(cell)) {
            if !label.is_empty() {
                label.push(' ');
            }
            label.push_str(&axis.name);
            label.push('=');
            label.push_str(&texts[v as usize]);
        }
        label
    }

    /// Where the cell comes from: the `[matrix]` table, or its `include` entry.
    pub fn origin(&self, cell: usize) -> Range<usize> {
        match cell.checked_sub(self.product) {
            Some(i) => self.include_spans[i].clone(),
            None => self.matrix_span.clone(),
        }
    }
}

/// One axis while it is being built: its values and an index of them by text.
struct AxisIndex {
    values: Vec<Value>,
    texts: Vec<String>,
    /// Text -> indices of the values with that text (one, except for an `include` table value
    /// that differs from a declared one of the same name).
    by_text: HashMap<String, Vec<u32>>,
}

impl AxisIndex {
    /// The index of the value `given` names: an equal value, or for a plain value one with
    /// the same text (`17` names `"17"`). The first such value, in declaration order.
    fn find(&self, given: &Value) -> Option<u32> {
        let candidates = self.by_text.get(&axis_value_text(given))?;
        candidates.iter().copied().find(|&i| {
            given == &self.values[i as usize] || !(given.is_object() || given.is_array())
        })
    }

    fn push(&mut self, value: Value) -> u32 {
        let i = self.values.len() as u32;
        let text = axis_value_text(&value);
        self.by_text.entry(text.clone()).or_default().push(i);
        self.texts.push(text);
        self.values.push(value);
        i
    }
}

/// Axes as declared, plus the cells: product minus `exclude`, plus `include`.
pub(crate) fn expand(r: &Reporter, matrix: Option<&Node>) -> Result<Expansion> {
    let Some(matrix) = matrix else {
        return Ok(Expansion {
            axes: Vec::new(),
            texts: Vec::new(),
            rows: Vec::new(),
            len: 1,
            product: 1,
            include_spans: Vec::new(),
            matrix_span: 0..0,
        });
    };
    let mut names: Vec<&str> = Vec::new();
    let mut index: Vec<AxisIndex> = Vec::new();
    for e in matrix.entries() {
        if e.key == "exclude" || e.key == "include" {
            continue;
        }
        if !is_axis_name(&e.key) {
            return Err(r.at(
                &e.key_span,
                format!("invalid axis name `{}`", e.key),
                Some("axis names match [A-Za-z_][A-Za-z0-9_-]* (they are used in `{axis}` placeholders)".into()),
            ));
        }
        if builtin_columns().contains(&e.key) {
            return Err(r.at(
                &e.key_span,
                format!(
                    "axis `{}` has the name of a column runs.csv always has",
                    e.key
                ),
                Some(format!(
                    "rename the axis; runs.csv's own columns are {}",
                    builtin_columns().join(", ")
                )),
            ));
        }
        if range::is_range(&e.value) {
            let values = range::values(r, &e.key, e)?;
            let mut axis = AxisIndex {
                values: Vec::with_capacity(values.len()),
                texts: Vec::with_capacity(values.len()),
                by_text: HashMap::with_capacity(values.len()),
            };
            for v in values {
                axis.push(v);
            }
            names.push(&e.key);
            index.push(axis);
            continue;
        }
        let Kind::Array(items) = &e.value.kind else {
            return Err(r.at(
                &e.value.span,
                format!(
                    "expected an array of values or a range for axis `{}`, found {}",
                    e.key,
                    e.value.describe()
                ),
                Some(format!(
                    "an axis lists its values, `{0} = [\"a\", \"b\"]`, or counts them, `{0} = {{ range = [1, 16], step = \"x2\" }}`",
                    e.key
                )),
            ));
        };
        if items.is_empty() {
            return Err(r.at(
                &e.value.span,
                format!("axis `{}` has no values", e.key),
                Some("give it at least one value, or remove it".into()),
            ));
        }
        let mut axis = AxisIndex {
            values: Vec::with_capacity(items.len()),
            texts: Vec::with_capacity(items.len()),
            by_text: HashMap::with_capacity(items.len()),
        };
        for item in items {
            let v = axis_value(r, &e.key, item)?;
            let text = axis_value_text(&v);
            if axis.by_text.contains_key(&text) {
                return Err(r.at(
                    &item.span,
                    format!("duplicate value `{text}` in axis `{}`", e.key),
                    Some("each value of an axis must be distinct".into()),
                ));
            }
            axis.push(v);
        }
        names.push(&e.key);
        index.push(axis);
    }

    // Refuse before making anything: the product alone may be far beyond what fits.
    let product = index
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    if product.is_none_or(|n| n > MAX_CELLS) {
        let counts: Vec<usize> = index.iter().map(|a| a.values.len()).collect();
        return Err(too_many(
            r,
            &matrix.span,
            &counts,
            "the product of its axes",
        ));
    }
    let product = product.unwrap_or(0);

    // Each `exclude` rule as (axis, value) pairs: a cell is dropped when it has all of them.
    let mut rules: Vec<Vec<(usize, u32)>> = Vec::new();
    if let Some(e) = matrix.get("exclude") {
        for rule in rule_tables(r, e)? {
            if rule.entries().is_empty() {
                return Err(r.at(
                    &rule.span,
                    "an empty `exclude` entry would drop every cell",
                    Some("name the axis values to exclude, e.g. { jdk = \"17\" }".into()),
                ));
            }
            let mut pairs = Vec::new();
            for re in rule.entries() {
                let a = find_axis(r, &names, re, "exclude")?;
                let given = axis_value(r, &re.key, &re.value)?;
                let Some(v) = index[a].find(&given) else {
                    return Err(r.at(
                        &re.value.span,
                        format!(
                            "`{}` is not a value of axis `{}`",
                            axis_value_text(&given),
                            names[a]
                        ),
                        Some(format!(
                            "values of `{}`: {}",
                            names[a],
                            index[a].texts.join(", ")
                        )),
                    ));
                };
                pairs.push((a, v));
            }
            rules.push(pairs);
        }
    }

    // The product, as an odometer over value indices (last axis fastest).
    let n = index.len();
    let mut rows: Vec<u32> = Vec::with_capacity(product * n);
    let mut odometer = vec![0u32; n];
    let mut len = 0;
    for _ in 0..product {
        let excluded = rules
            .iter()
            .any(|rule| rule.iter().all(|&(a, v)| odometer[a] == v));
        if !excluded {
            rows.extend_from_slice(&odometer);
            len += 1;
        }
        for a in (0..n).rev() {
            odometer[a] += 1;
            if (odometer[a] as usize) < index[a].values.len() {
                break;
            }
            odometer[a] = 0;
        }
    }
    let product = len;

    let mut include_spans = Vec::new();
    if let Some(e) = matrix.get("include") {
        for entry in rule_tables(r, e)? {
            let mut given: Vec<Option<Value>> = vec![None; n];
            for ie in entry.entries() {
                let a = find_axis(r, &names, ie, "include")?;
                given[a] = Some(axis_value(r, &ie.key, &ie.value)?);
            }
            if let Some(missing) = given.iter().position(Option::is_none) {
                return Err(r.at(
                    &entry.span,
                    format!("`include` entry is missing axis `{}`", names[missing]),
                    Some(format!(
                        "an include entry gives a value for every axis: {}",
                        names.join(", ")
                    )),
                ));
            }
            for (a, v) in given.into_iter().flatten().enumerate() {
                // Reuse the declared value when it is the same (`17` vs `"17"`): same cell, same id.
                let i = match index[a].find(&v) {
                    Some(i) => i,
                    None => index[a].push(v),
                };
                rows.push(i);
            }
            len += 1;
            include_spans.push(entry.span.clone());
            if len > MAX_CELLS {
                return Err(too_many(
                    r,
                    &matrix.span,
                    &[len],
                    "with its `include` entries",
                ));
            }
        }
    }

    if len == 0 {
        return Err(r.at(
            &matrix.span,
            "the matrix expands to no cells",
            Some("every combination is excluded: loosen `exclude` or add `include` entries".into()),
        ));
    }
    let (axes, texts) = names
        .iter()
        .zip(index)
        .map(|(name, a)| {
            (
                Axis {
                    name: name.to_string(),
                    values: a.values,
                },
                a.texts,
            )
        })
        .unzip();
    Ok(Expansion {
        axes,
        texts,
        rows,
        len,
        product,
        include_spans,
        matrix_span: matrix.span.clone(),
    })
}

/// "the matrix expands to 1,000,000,000 cells (...); the limit is 1,000,000".
fn too_many(r: &Reporter, span: &Range<usize>, factors: &[usize], what: &str) -> SpecError {
    let total = factors
        .iter()
        .try_fold(1u128, |n, &f| n.checked_mul(f as u128));
    let size = match total {
        Some(t) => format!("{} cells", thousands(t)),
        None => "more than 10^38 cells".to_string(),
    };
    let shape = if factors.len() > 1 {
        format!(
            "{what}: {}",
            factors
                .iter()
                .map(|f| thousands(*f as u128))
                .collect::<Vec<_>>()
                .join(" x ")
        )
    } else {
        what.to_string()
    };
    r.at(
        span,
        format!(
            "the matrix expands to {size} ({shape}); the limit is {} cells",
            thousands(MAX_CELLS as u128)
        ),
        Some(
            "split it into several matrix files, or use fewer axis values (the limit applies to the product, before `exclude`)"
                .into(),
        ),
    )
}

/// 1234567 -> "1,234,567" (every count benchbox prints).
pub fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rule_tables<'n>(r: &Reporter, e: &'n Entry) -> Result<Vec<&'n Node>> {
    let err = |node: &Node| {
        r.at(
            &node.span,
            format!(
                "expected an array of tables for `{}`, found {}",
                e.key,
                node.describe()
            ),
            Some(format!("write `{} = [{{ axis = \"value\" }}]`", e.key)),
        )
    };
    let Kind::Array(items) = &e.value.kind else {
        return Err(err(&e.value));
    };
    items
        .iter()
        .map(|i| {
            if matches!(i.kind, Kind::Table(_)) {
                Ok(i)
            } else {
                Err(err(i))
            }
        })
        .collect()
}

/// The index of the axis `e` names.
fn find_axis(r: &Reporter, names: &[&str], e: &Entry, what: &str) -> Result<usize> {
    names.iter().position(|n| *n == e.key).ok_or_else(|| {
        let hint = if names.is_empty() {
            "the matrix declares no axes".to_string()
        } else {
            suggest(&e.key, names.iter().copied(), "axes")
        };
        r.at(
            &e.key_span,
            format!("unknown axis `{}` in `{what}`", e.key),
            Some(hint),
        )
    })
}

/// An axis value as JSON: a scalar or a table (whose fields may hold anything but datetimes
/// become strings).
fn axis_value(r: &Reporter, axis: &str, node: &Node) -> Result<Value> {
    match &node.kind {
        Kind::Array(_) | Kind::Datetime(_) => Err(r.at(
            &node.span,
            format!(
                "expected a string, number, boolean or table as a value of axis `{axis}`, found {}",
                node.describe()
            ),
            None,
        )),
        Kind::Float(f) if !f.is_finite() => Err(r.at(
            &node.span,
            format!("axis `{axis}` has the non-finite value `{f}`"),
            Some("axis values are recorded as JSON, which has no nan or inf".into()),
        )),
        _ => Ok(json_of(node)),
    }
}

fn json_of(node: &Node) -> Value {
    match &node.kind {
        Kind::Str(s) | Kind::Datetime(s) => Value::String(s.clone()),
        Kind::Int(i) => Value::from(*i),
        Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        Kind::Table(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), json_of(&e.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000_000), "1,000,000,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
