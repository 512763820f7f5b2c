//! Range axes: `threads = { range = [1, 16], step = "x2" }` in `[matrix]`, expanded to the
//! values the same axis written as a list would have (so the cells get the same ids).
//!
//! - `step = N` (a positive number, default 1) is linear: start, start + N, ... up to the end,
//!   which is included when it lands exactly. `step = "xF"` (F > 1) is geometric: start,
//!   start * F, ... (start > 0).
//! - Integers stay integers when the start, the end and the step (or factor) are integers;
//!   otherwise every value is a float (`[1.0, 1.5, 2.25]` as a list). A float value is rounded
//!   to the decimals its inputs imply (`0.1 * 3` is `0.3`, as the list `[0.3]` reads), so no
//!   accumulated rounding error reaches a label or an id.
//! - Only a table of the keys `range` and `step` on an axis itself is a range: a table inside
//!   an axis's list (`{ name = "g1", ... }`) is always a table value.

use std::ops::Range;

use serde_json::Value;

use super::SpecError;
use super::build::Reporter;
use super::expand::{MAX_CELLS, thousands};
use super::node::{Entry, Kind, Node};

type Result<T> = std::result::Result<T, SpecError>;

/// Whether the value of axis entry `e` is written as a range (a table with a `range` key and
/// otherwise at most `step`); [`values`] then checks it.
pub(crate) fn is_range(node: &Node) -> bool {
    matches!(&node.kind, Kind::Table(entries)
        if entries.iter().any(|e| e.key == "range")
            && entries.iter().all(|e| e.key == "range" || e.key == "step"))
}

/// A number as written in the file.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

enum Step {
    Linear(Num),
    Geometric(Num),
}

/// The values of the range axis `axis` (see the module doc), each with the span errors about
/// it point at (the range's).
pub(crate) fn values(r: &Reporter, axis: &str, e: &Entry) -> Result<Vec<Value>> {
    let node = &e.value;
    let hint_form = || {
        Some(format!(
            "write `{axis} = {{ range = [1, 16], step = \"x2\" }}` (1, 2, 4, 8, 16) or `{{ range = [0, 100], step = 25 }}` (0, 25, 50, 75, 100)"
        ))
    };
    let range = node.get("range").expect("is_range checked the key");
    let Kind::Array(ends) = &range.value.kind else {
        return Err(r.at(
            &range.value.span,
            format!(
                "expected `[start, end]` for the range of axis `{axis}`, found {}",
                range.value.describe()
            ),
            hint_form(),
        ));
    };
    let [start, end] = ends.as_slice() else {
        return Err(r.at(
            &range.value.span,
            format!(
                "the range of axis `{axis}` has {} value(s); it takes two, `[start, end]`",
                ends.len()
            ),
            hint_form(),
        ));
    };
    let number = |n: &Node, what: &str| -> Result<Num> {
        match n.kind {
            Kind::Int(i) => Ok(Num::Int(i)),
            Kind::Float(f) if f.is_finite() => Ok(Num::Float(f)),
            _ => Err(r.at(
                &n.span,
                format!(
                    "the {what} of the range of axis `{axis}` must be a finite number, found {}",
                    n.describe()
                ),
                Some("a range counts numbers; list other values: `[\"a\", \"b\"]`".into()),
            )),
        }
    };
    let (start_n, end_n) = (number(start, "start")?, number(end, "end")?);
    let step_span: Range<usize> = node
        .get("step")
        .map_or(range.value.span.clone(), |s| s.value.span.clone());
    let step = match node.get("step") {
        None => Step::Linear(Num::Int(1)),
        Some(s) => match &s.value.kind {
            Kind::Str(text) => {
                let factor = text
                    .strip_prefix(['x', 'X', '*'])
                    .map(str::trim)
                    .and_then(|f| {
                        f.parse::<i64>()
                            .map(Num::Int)
                            .ok()
                            .or_else(|| f.parse::<f64>().ok().map(Num::Float))
                    });
                match factor {
                    Some(f) if f.f64().is_finite() && f.f64() > 1.0 => Step::Geometric(f),
                    Some(f) if f.f64().is_finite() => {
                        return Err(r.at(
                            &step_span,
                            format!(
                                "the factor of the range of axis `{axis}` is {}; a geometric step multiplies by more than 1",
                                f.f64()
                            ),
                            Some("write `step = \"x2\"` (doubling), or a number for a linear step".into()),
                        ));
                    }
                    _ => {
                        return Err(r.at(
                            &step_span,
                            format!(
                                "invalid step `{text}` for the range of axis `{axis}`: expected a number or `\"xF\"`"
                            ),
                            Some("`step = 25` adds 25 each time, `step = \"x2\"` doubles".into()),
                        ));
                    }
                }
            }
            Kind::Int(i) if *i > 0 => Step::Linear(Num::Int(*i)),
            Kind::Float(f) if f.is_finite() && *f > 0.0 => Step::Linear(Num::Float(*f)),
            Kind::Int(_) | Kind::Float(_) => {
                return Err(r.at(
                    &step_span,
                    format!("the step of the range of axis `{axis}` must be positive"),
                    Some("a range counts up from its start to its end: `range = [0, 100], step = 25`".into()),
                ));
            }
            _ => {
                return Err(r.at(
                    &step_span,
                    format!(
                        "expected a number or `\"xF\"` for the step of the range of axis `{axis}`, found {}",
                        s.value.describe()
                    ),
                    Some("`step = 25` adds 25 each time, `step = \"x2\"` doubles".into()),
                ));
            }
        },
    };
    let (a, b) = (start_n.f64(), end_n.f64());
    if a > b {
        return Err(r.at(
            &range.value.span,
            format!("the range of axis `{axis}` is empty: its start {a} is above its end {b}"),
            Some("write the smaller number first: `range = [low, high]`".into()),
        ));
    }
    if matches!(step, Step::Geometric(_)) && a <= 0.0 {
        return Err(r.at(
            &start.span,
            format!(
                "a geometric range of axis `{axis}` must start above 0, not at {a} (it would never grow)"
            ),
            Some("start at 1, or use a linear step (`step = 5`)".into()),
        ));
    }
    // Counted before anything is made: a range can ask for more values than fit.
    let count = match &step {
        Step::Linear(s) => ((b - a) / s.f64() + 1e-9).floor() + 1.0,
        Step::Geometric(f) => ((b / a).ln() / f.f64().ln() + 1e-9).floor() + 1.0,
    };
    if count > MAX_CELLS as f64 {
        return Err(r.at(
            &node.span,
            format!(
                "the range of axis `{axis}` has {} values; the limit is {} cells",
                if count < 1e30 {
                    thousands(count as u128)
                } else {
                    format!("{count:e}")
                },
                thousands(MAX_CELLS as u128)
            ),
            Some("use a larger step".into()),
        ));
    }
    let ints = match (&step, start_n, end_n) {
        (Step::Linear(Num::Int(s)) | Step::Geometric(Num::Int(s)), Num::Int(a), Num::Int(b)) => {
            Some((*s, a, b))
        }
        _ => None,
    };
    let out = match ints {
        Some((s, a, b)) => integer_values(&step, s, a, b),
        None => float_values(&step, start_n, end_n),
    };
    Ok(out)
}

fn integer_values(step: &Step, s: i64, a: i64, b: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut x = Some(a);
    while let Some(v) = x
        && v <= b
    {
        out.push(Value::from(v));
        x = match step {
            Step::Linear(_) => v.checked_add(s),
            Step::Geometric(_) => v.checked_mul(s),
        };
    }
    out
}

fn float_values(step: &Step, start: Num, end: Num) -> Vec<Value> {
    let (a, b) = (start.f64(), end.f64());
    let mut out = Vec::new();
    for k in 0u32.. {
        let (raw, digits) = match step {
            Step::Linear(s) => (
                a + f64::from(k) * s.f64(),
                decimals(start.f64()).max(decimals(s.f64())),
            ),
            Step::Geometric(f) => (
                a * f.f64().powi(k as i32),
                decimals(a).saturating_add(decimals(f.f64()).saturating_mul(k)),
            ),
        };
        let v = round_to(raw, digits);
        // The end is included when the rounded value lands on it. The count was checked, so
        // the bound only guards against a rounding that never moves.
        if v > b || out.len() > MAX_CELLS {
            break;
        }
        out.push(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number));
    }
    out
}

/// How many decimals the shortest text of `x` has (`0.25` -> 2, `3.0` -> 0).
fn decimals(x: f64) -> u32 {
    let text = format!("{x}");
    if text.contains(['e', 'E']) {
        return 15;
    }
    text.split_once('.').map_or(0, |(_, d)| d.len() as u32)
}

/// `x` rounded to `digits` decimals (at most 15, past which f64 has nothing to round).
fn round_to(x: f64, digits: u32) -> f64 {
    if digits >= 15 {
        return x;
    }
    let scale = 10f64.powi(digits as i32);
    let scaled = (x * scale).round();
    // An integer divided by a power of ten is the float the decimal text parses to.
    if scaled.abs() < 9.0e15 {
        scaled / scale
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::tests::{err, ok};

    const RUN: &str = "[run]\ncommand = \"echo {t}\"\n";

    fn axis(matrix: &str) -> Vec<Value> {
        ok(&format!("[matrix]\n{matrix}\n{RUN}")).axes[0]
            .values
            .clone()
    }

    fn ids(matrix: &str) -> Vec<(String, String)> {
        ok(&format!("[matrix]\n{matrix}\n{RUN}"))
            .cells
            .into_iter()
            .map(|c| (c.label, c.id))
            .collect()
    }

    #[test]
    fn geometric_and_linear_ranges_of_integers() {
        assert_eq!(
            axis("t = { range = [1, 16], step = \"x2\" }"),
            [json!(1), json!(2), json!(4), json!(8), json!(16)]
        );
        assert_eq!(
            axis("t = { range = [0, 100], step = 25 }"),
            [json!(0), json!(25), json!(50), json!(75), json!(100)]
        );
        // The end is included only where it lands.
        assert_eq!(
            axis("t = { range = [1, 20], step = \"x3\" }"),
            [json!(1), json!(3), json!(9)]
        );
        assert_eq!(
            axis("t = { range = [0, 10], step = 4 }"),
            [json!(0), json!(4), json!(8)]
        );
        // Step 1 by default; a one-value range; negative starts count up.
        assert_eq!(
            axis("t = { range = [-1, 2] }"),
            [json!(-1), json!(0), json!(1), json!(2)]
        );
        assert_eq!(axis("t = { range = [5, 5], step = 3 }"), [json!(5)]);
        // The `[matrix.t]` table form is the same range.
        assert_eq!(
            axis("[matrix.t]\nrange = [1, 4]\nstep = \"x2\""),
            [json!(1), json!(2), json!(4)]
        );
    }

    #[test]
    fn float_ranges_have_no_accumulated_rounding_error() {
        assert_eq!(
            axis("t = { range = [0, 1], step = 0.1 }"),
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0].map(|f| json!(f))
        );
        assert_eq!(
            axis("t = { range = [1, 4], step = \"x1.5\" }"),
            [1.0, 1.5, 2.25, 3.375].map(|f| json!(f))
        );
        assert_eq!(
            axis("t = { range = [0.5, 2], step = \"x2\" }"),
            [0.5, 1.0, 2.0].map(|f| json!(f))
        );
        assert_eq!(
            axis("t = { range = [1, 1.5], step = \"x1.1\" }"),
            [1.0, 1.1, 1.21, 1.331, 1.4641].map(|f| json!(f))
        );
    }

    #[test]
    fn a_range_gives_the_cells_and_ids_of_the_same_list() {
        assert_eq!(
            ids("t = { range = [1, 16], step = \"x2\" }"),
            ids("t = [1, 2, 4, 8, 16]")
        );
        assert_eq!(
            ids("t = { range = [0, 0.3], step = 0.1 }\nu = [\"a\", \"b\"]"),
            ids("t = [0.0, 0.1, 0.2, 0.3]\nu = [\"a\", \"b\"]")
        );
        let labels: Vec<String> = ids("t = { range = [0, 0.3], step = 0.1 }")
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(labels, ["t=0.0", "t=0.1", "t=0.2", "t=0.3"]);
        // `exclude` and `include` name range values as they name listed ones.
        let m = ok(&format!(
            "[matrix]\nt = {{ range = [1, 8], step = \"x2\" }}\nexclude = [{{ t = 4 }}]\ninclude = [{{ t = 32 }}]\n{RUN}"
        ));
        let labels: Vec<&str> = m.cells.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["t=1", "t=2", "t=8", "t=32"]);
    }

    #[test]
    fn a_table_in_a_list_is_a_table_value_not_a_range() {
        let m = ok(
            "[matrix]\nt = [{ range = [1, 2], step = 1, name = \"r\" }, { range = [3], step = 2 }]\n[run]\ncommand = \"echo {t.step}\"\n",
        );
        let values = &m.axes[0].values;
        assert_eq!(values[0], json!({"range": [1, 2], "step": 1, "name": "r"}));
        assert_eq!(values[1], json!({"range": [3], "step": 2}));
        // On the axis itself, a table with other keys is neither.
        assert_eq!(
            err(&format!(
                "[matrix]\nt = {{ name = \"g1\", heap = 2 }}\n{RUN}"
            )),
            "envs/x.toml:2:5: expected an array of values or a range for axis `t`, found a table\n  hint: an axis lists its values, `t = [\"a\", \"b\"]`, or counts them, `t = { range = [1, 16], step = \"x2\" }`"
        );
    }

    #[test]
    fn bad_ranges_point_at_what_is_wrong() {
        let e = |m: &str| err(&format!("[matrix]\n{m}\n{RUN}"));
        assert_eq!(
            e("t = { range = [16, 1], step = \"x2\" }"),
            "envs/x.toml:2:15: the range of axis `t` is empty: its start 16 is above its end 1\n  hint: write the smaller number first: `range = [low, high]`"
        );
        assert_eq!(
            e("t = { range = [1, 16], step = 0 }"),
            "envs/x.toml:2:31: the step of the range of axis `t` must be positive\n  hint: a range counts up from its start to its end: `range = [0, 100], step = 25`"
        );
        assert_eq!(
            e("t = { range = [1, 16], step = -2.5 }"),
            "envs/x.toml:2:31: the step of the range of axis `t` must be positive\n  hint: a range counts up from its start to its end: `range = [0, 100], step = 25`"
        );
        assert_eq!(
            e("t = { range = [1, 16], step = \"x1\" }"),
            "envs/x.toml:2:31: the factor of the range of axis `t` is 1; a geometric step multiplies by more than 1\n  hint: write `step = \"x2\"` (doubling), or a number for a linear step"
        );
        assert_eq!(
            e("t = { range = [1, 16], step = \"double\" }"),
            "envs/x.toml:2:31: invalid step `double` for the range of axis `t`: expected a number or `\"xF\"`\n  hint: `step = 25` adds 25 each time, `step = \"x2\"` doubles"
        );
        assert_eq!(
            e("t = { range = [1, 16], step = true }"),
            "envs/x.toml:2:31: expected a number or `\"xF\"` for the step of the range of axis `t`, found the boolean `true`\n  hint: `step = 25` adds 25 each time, `step = \"x2\"` doubles"
        );
        assert_eq!(
            e("t = { range = [\"a\", 16] }"),
            "envs/x.toml:2:16: the start of the range of axis `t` must be a finite number, found the string `a`\n  hint: a range counts numbers; list other values: `[\"a\", \"b\"]`"
        );
        assert_eq!(
            e("t = { range = [1, nan] }"),
            "envs/x.toml:2:19: the end of the range of axis `t` must be a finite number, found the float `NaN`\n  hint: a range counts numbers; list other values: `[\"a\", \"b\"]`"
        );
        assert_eq!(
            e("t = { range = [1, 2, 3] }"),
            "envs/x.toml:2:15: the range of axis `t` has 3 value(s); it takes two, `[start, end]`\n  hint: write `t = { range = [1, 16], step = \"x2\" }` (1, 2, 4, 8, 16) or `{ range = [0, 100], step = 25 }` (0, 25, 50, 75, 100)"
        );
        assert_eq!(
            e("t = { range = 5 }"),
            "envs/x.toml:2:15: expected `[start, end]` for the range of axis `t`, found the integer `5`\n  hint: write `t = { range = [1, 16], step = \"x2\" }` (1, 2, 4, 8, 16) or `{ range = [0, 100], step = 25 }` (0, 25, 50, 75, 100)"
        );
        assert_eq!(
            e("t = { range = [0, 16], step = \"x2\" }"),
            "envs/x.toml:2:16: a geometric range of axis `t` must start above 0, not at 0 (it would never grow)\n  hint: start at 1, or use a linear step (`step = 5`)"
        );
        assert_eq!(
            e("t = { range = [0, 10000000000] }"),
            "envs/x.toml:2:5: the range of axis `t` has 10,000,000,001 values; the limit is 1,000,000 cells\n  hint: use a larger step"
        );
        // Two ranges within the limit whose product is not: the matrix's own limit.
        assert!(
            e("t = { range = [1, 1000] }\nu = { range = [1, 1001] }")
                .contains("the matrix expands to 1,001,000 cells")
        );
    }
}
