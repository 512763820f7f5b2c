//! The cells of one run compared along one axis (`benchbox compare RUN --along AXIS`): each cell
//! against the cell that differs from it only in AXIS and has the base value there. This module
//! pairs the cells; the verdicts, intervals, FDR correction and exit codes are
//! [`crate::compare`]'s, the same as for two runs. Pure.
//!
//! Why within one run: a matrix axis `rev = ["base", "head"]` whose values mount two builds
//! measures both on one machine, interleaved, in one run, so the machine's noise and drift fall
//! on both sides alike; two runs from two CI machines differ by the machines too.
//!
//! The rules:
//! - AXIS is an axis of the run, with at least two values among its cells. The base value is
//!   `--base`'s (matched as the reference cell's values are: as text, numbers as numbers), else
//!   the axis's first declared value that a cell has.
//! - Cells are grouped by their values on every other axis (hashed: linear in the cells). In
//!   each group, every cell with another value of AXIS is paired with the group's base cell;
//!   pairs come in the run's cell order.
//! - Every cell of the run must be in a pair. A cell that is in none (the matrix's `exclude` or
//!   `include` left its partner out) is an error naming it: a gate that quietly skipped part of
//!   the run would pass on less than it says.

use std::collections::HashMap;

use serde::Serialize;

use crate::compare::{self, CompareOptions, Comparison};
use crate::reference::same_value;
use crate::results::{CellResult, RunResults};
use crate::spec::axis_value_text;

/// At most this many cells without a partner are named in the error (then a count).
const MAX_NAMED: usize = 20;

/// What a comparison along an axis compared: recorded in its [`Comparison`] (and its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Along {
    pub axis: String,
    /// The base value, as the cells' labels write it.
    pub base: String,
    /// The other values, each compared with the base, in declared order.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlongError {
    #[error("the run has no axis `{axis}` to compare along\n  hint: {hint}")]
    UnknownAxis { axis: String, hint: String },
    #[error(
        "`--base {given}` is not a value of the axis `{axis}` in this run\n  hint: its values: {valid}"
    )]
    UnknownBase {
        axis: String,
        given: String,
        valid: String,
    },
    #[error(
        "the axis `{axis}` has {found}: there is nothing to compare along it\n  hint: give the axis a second value (e.g. base and head builds), or compare two runs: benchbox compare BASE CANDIDATE"
    )]
    OneValue { axis: String, found: String },
    #[error(
        "along `{axis}`, {count} cell(s) have no partner (a cell that differs only in `{axis}`):\n{list}\n  hint: give every value of `{axis}` the same cells (the matrix's `exclude` or `include` left these partners out)"
    )]
    Unpartnered {
        axis: String,
        count: usize,
        /// One line per cell, indented.
        list: String,
    },
}

/// The pairs of one run's cells along an axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairing {
    pub along: Along,
    /// (base cell, other cell) indices into the run's cells.
    pub pairs: Vec<(usize, usize)>,
}

/// `compare RUN --along AXIS [--base VALUE]`: the pairing, then [`compare`]'s verdicts.
pub fn compare_along(
    run: &RunResults,
    axis: &str,
    base: Option<&str>,
    opts: &CompareOptions,
) -> Result<Comparison, AlongError> {
    let pairing = pair(run, axis, base)?;
    let mut cmp = compare::judge(run, run, &pairing.pairs, Vec::new(), opts, true);
    cmp.along = Some(pairing.along);
    Ok(cmp)
}

/// Pair the run's cells along `axis` (see the module doc).
pub fn pair(run: &RunResults, axis: &str, base: Option<&str>) -> Result<Pairing, AlongError> {
    let cells = &run.cells;
    let values = axis_values(run, axis)?;
    let present: Vec<&serde_json::Value> = {
        let seen: std::collections::HashSet<String> = cells
            .iter()
            .filter_map(|c| value_of(c, axis))
            .map(serde_json::Value::to_string)
            .collect();
        values
            .iter()
            .filter(|v| seen.contains(&v.to_string()))
            .collect()
    };
    let texts = |vs: &[&serde_json::Value]| {
        vs.iter()
            .map(|v| format!("`{}`", axis_value_text(v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if present.len() < 2 {
        return Err(AlongError::OneValue {
            axis: axis.to_string(),
            found: match present.first() {
                Some(v) => format!("one value in this run (`{}`)", axis_value_text(v)),
                None => "no value in this run's cells".into(),
            },
        });
    }
    let base_value = match base {
        Some(given) => *present
            .iter()
            .find(|v| same_value(v, given.trim()))
            .ok_or_else(|| AlongError::UnknownBase {
                axis: axis.to_string(),
                given: given.to_string(),
                valid: texts(&present),
            })?,
        None => present[0],
    };

    // Per group of equal other-axis values: its base cells and its other cells, in cell order.
    let mut groups: HashMap<String, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (i, cell) in cells.iter().enumerate() {
        let group = groups.entry(others_key(cell, axis)).or_default();
        match value_of(cell, axis) {
            Some(v) if v == base_value => group.0.push(i),
            _ => group.1.push(i),
        }
    }
    let base_text = axis_value_text(base_value);
    let mut pairs = Vec::new();
    let mut lonely: Vec<String> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let (bases, others) = &groups[&others_key(cell, axis)];
        let is_base = value_of(cell, axis).is_some_and(|v| v == base_value);
        match (is_base, bases.as_slice()) {
            (false, [b]) => pairs.push((*b, i)),
            (false, []) => lonely.push(format!(
                "    `{}`: no cell with {axis}={base_text} and the same other values",
                cell.label
            )),
            (false, _) => lonely.push(format!(
                "    `{}`: {} cells with {axis}={base_text} and the same other values",
                cell.label,
                bases.len()
            )),
            (true, _) if others.is_empty() => lonely.push(format!(
                "    `{}`: no cell with another value of `{axis}` and the same other values",
                cell.label
            )),
            (true, _) => {}
        }
    }
    if !lonely.is_empty() {
        let count = lonely.len();
        if count > MAX_NAMED {
            lonely.truncate(MAX_NAMED);
            lonely.push(format!("    ... and {} more", count - MAX_NAMED));
        }
        return Err(AlongError::Unpartnered {
            axis: axis.to_string(),
            count,
            list: lonely.join("\n"),
        });
    }
    Ok(Pairing {
        along: Along {
            axis: axis.to_string(),
            base: base_text,
            values: present
                .iter()
                .filter(|v| **v != base_value)
                .map(|v| axis_value_text(v))
                .collect(),
        },
        pairs,
    })
}

/// The axis's values in declared order: the plan's when it records the axis, else in the order
/// the cells (which are in matrix order) first show them.
fn axis_values(run: &RunResults, axis: &str) -> Result<Vec<serde_json::Value>, AlongError> {
    if let Some(a) = run.plan.axes.iter().find(|a| a.name == axis) {
        return Ok(a.values.clone());
    }
    let mut values: Vec<serde_json::Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for v in run.cells.iter().filter_map(|c| value_of(c, axis)) {
        if seen.insert(v.to_string()) {
            values.push(v.clone());
        }
    }
    if !values.is_empty() {
        return Ok(values);
    }
    // The axes the run has, for the hint: the plan's, else the cells'.
    let mut names: Vec<&str> = run.plan.axes.iter().map(|a| a.name.as_str()).collect();
    for c in &run.cells {
        for (name, _) in &c.axes {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let hint = if names.is_empty() {
        "this run has no axes (one cell); give the matrix an axis such as rev = [\"base\", \"head\"], or compare two runs: benchbox compare BASE CANDIDATE".to_string()
    } else {
        crate::spec::suggest(axis, names.iter().copied(), "the run's axes")
    };
    Err(AlongError::UnknownAxis {
        axis: axis.to_string(),
        hint,
    })
}

fn value_of<'a>(cell: &'a CellResult, axis: &str) -> Option<&'a serde_json::Value> {
    cell.axes.iter().find(|(k, _)| k == axis).map(|(_, v)| v)
}

/// A cell's values on every axis but `axis`, as one hashable text (exact JSON, so table values
/// that share a `name` stay apart).
fn others_key(cell: &CellResult, axis: &str) -> String {
    let others: Vec<&(String, serde_json::Value)> =
        cell.axes.iter().filter(|(k, _)| k != axis).collect();
    serde_json::to_string(&others).expect("axis values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Verdict;
    use crate::compare::test_support::*;
    use crate::spec::Axis;

    fn with_axes(mut r: RunResults, axes: &[(&str, &[&str])]) -> RunResults {
        r.plan.axes = axes
            .iter()
            .map(|(name, values)| Axis {
                name: name.to_string(),
                values: values.iter().map(|v| serde_json::json!(v)).collect(),
            })
            .collect();
        r
    }

    /// rev x size, in matrix order (rev first), every cell present.
    fn full() -> RunResults {
        let mut cells = Vec::new();
        for rev in ["base", "head"] {
            for size in ["small", "large"] {
                cells.push(cell(
                    &format!("{rev}-{size}"),
                    &[("rev", rev), ("size", size)],
                    &TEN,
                ));
            }
        }
        with_axes(
            run("r", cells),
            &[("rev", &["base", "head"]), ("size", &["small", "large"])],
        )
    }

    fn ids(run: &RunResults, p: &Pairing) -> Vec<(String, String)> {
        p.pairs
            .iter()
            .map(|&(b, c)| (run.cells[b].id.clone(), run.cells[c].id.clone()))
            .collect()
    }

    #[test]
    fn cells_pair_with_the_cell_that_differs_only_in_the_axis() {
        let r = full();
        let p = pair(&r, "rev", None).unwrap();
        assert_eq!(
            ids(&r, &p),
            [
                ("base-small".into(), "head-small".into()),
                ("base-large".into(), "head-large".into())
            ]
        );
        assert_eq!(
            p.along,
            Along {
                axis: "rev".into(),
                base: "base".into(),
                values: vec!["head".into()]
            }
        );
        // Along the other axis, with a base given.
        let p = pair(&r, "size", Some("large")).unwrap();
        assert_eq!(
            ids(&r, &p),
            [
                ("base-large".into(), "base-small".into()),
                ("head-large".into(), "head-small".into())
            ]
        );
        assert_eq!(p.along.values, ["small"]);
    }

    #[test]
    fn three_values_pair_each_with_the_base_and_the_declared_order_decides_the_default() {
        let cells = ["head2", "base", "head1"]
            .iter()
            .map(|rev| cell(rev, &[("rev", rev)], &TEN))
            .collect();
        // Declared order, not cell order or the alphabet, picks the default base.
        let r = with_axes(run("r", cells), &[("rev", &["base", "head1", "head2"])]);
        let p = pair(&r, "rev", None).unwrap();
        assert_eq!(
            ids(&r, &p),
            [
                ("base".into(), "head2".into()),
                ("base".into(), "head1".into())
            ]
        );
        assert_eq!(p.along.values, ["head1", "head2"]);
        // Without a recorded plan axis, the cells' order.
        let mut r = r;
        r.plan.axes.clear();
        assert_eq!(pair(&r, "rev", None).unwrap().along.base, "head2");
    }

    #[test]
    fn numbers_match_as_numbers() {
        let cells = vec![
            CellResult {
                axes: vec![("quota".into(), serde_json::json!(0.5))],
                ..cell("a", &[], &TEN)
            },
            CellResult {
                axes: vec![("quota".into(), serde_json::json!(1.0))],
                ..cell("b", &[], &TEN)
            },
        ];
        let r = run("r", cells);
        let p = pair(&r, "quota", Some("1")).unwrap();
        assert_eq!(ids(&r, &p), [("b".into(), "a".into())]);
        assert_eq!(p.along.base, "1.0");
    }

    #[test]
    fn an_exclude_hole_names_the_cells_without_a_partner() {
        // exclude = [{ rev = "head", size = "large" }], include = [{ rev = "head", size = "huge" }]
        let mut r = full();
        r.cells.retain(|c| c.id != "head-large");
        r.cells.push(cell(
            "head-huge",
            &[("rev", "head"), ("size", "huge")],
            &TEN,
        ));
        let e = pair(&r, "rev", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "along `rev`, 2 cell(s) have no partner (a cell that differs only in `rev`):\n    `rev=base size=large`: no cell with another value of `rev` and the same other values\n    `rev=head size=huge`: no cell with rev=base and the same other values\n  hint: give every value of `rev` the same cells (the matrix's `exclude` or `include` left these partners out)"
        );
        // Along `size` every cell has a partner: small, the base, with large or with huge.
        r.plan.axes[1].values.push(serde_json::json!("huge"));
        let p = pair(&r, "size", None).unwrap();
        assert_eq!(
            ids(&r, &p),
            [
                ("base-small".into(), "base-large".into()),
                ("head-small".into(), "head-huge".into())
            ]
        );
        assert_eq!(p.along.values, ["large", "huge"]);
        // With large as the base, small and huge of head have none.
        let e = pair(&r, "size", Some("large")).unwrap_err().to_string();
        assert!(
            e.starts_with("along `size`, 2 cell(s) have no partner"),
            "{e}"
        );
        assert!(
            e.contains(
                "    `rev=head size=huge`: no cell with size=large and the same other values"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_base_missing_one_of_several_values_still_pairs() {
        // rev = [base, a, b]; b excluded for size=large: every cell is still in a pair.
        let mut cells = Vec::new();
        for rev in ["base", "a", "b"] {
            for size in ["small", "large"] {
                if !(rev == "b" && size == "large") {
                    cells.push(cell(
                        &format!("{rev}-{size}"),
                        &[("rev", rev), ("size", size)],
                        &TEN,
                    ));
                }
            }
        }
        let r = run("r", cells);
        let p = pair(&r, "rev", None).unwrap();
        assert_eq!(p.pairs.len(), 3);
        assert_eq!(p.along.values, ["a", "b"]);
    }

    #[test]
    fn bad_axes_and_values_say_what_is_valid() {
        let r = full();
        assert_eq!(
            pair(&r, "revs", None).unwrap_err().to_string(),
            "the run has no axis `revs` to compare along\n  hint: did you mean `rev`? the run's axes: rev, size"
        );
        assert_eq!(
            pair(&r, "rev", Some("main")).unwrap_err().to_string(),
            "`--base main` is not a value of the axis `rev` in this run\n  hint: its values: `base`, `head`"
        );
        let one = run("r", vec![cell("x", &[], &TEN)]);
        assert!(
            pair(&one, "rev", None)
                .unwrap_err()
                .to_string()
                .contains("this run has no axes (one cell)")
        );
        // Declared with two values, but the run has cells of one (an exclude, `--only`...).
        let mut r = full();
        r.cells.retain(|c| c.axes[0].1 == "base");
        assert_eq!(
            pair(&r, "rev", None).unwrap_err(),
            AlongError::OneValue {
                axis: "rev".into(),
                found: "one value in this run (`base`)".into()
            }
        );
    }

    #[test]
    fn verdicts_are_compares_with_one_correction_across_the_pairs() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut r = full();
        // head is 20% slower on `large` only.
        for c in &mut r.cells {
            let mean = if c.id == "head-large" { 1.2 } else { 1.0 };
            *c = cell(
                &c.id.clone(),
                &[
                    ("rev", c.id.split('-').next().unwrap()),
                    ("size", c.id.split('-').nth(1).unwrap()),
                ],
                &normal(&mut rng, 10, mean, 0.02),
            );
        }
        let cmp = compare_along(&r, "rev", None, &fast_opts()).unwrap();
        let got: Vec<(&str, Verdict)> = cmp
            .pairs
            .iter()
            .map(|p| (p.label.as_str(), p.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("rev=head size=small", Verdict::Unchanged),
                ("rev=head size=large", Verdict::Regression)
            ]
        );
        let p: Vec<f64> = cmp.pairs.iter().map(|r| r.p_value.unwrap()).collect();
        let q: Vec<f64> = cmp.pairs.iter().map(|r| r.q_value.unwrap()).collect();
        assert_eq!(q, crate::stats::benjamini_hochberg(&p));
        assert_eq!(cmp.exit_code(false), crate::exit::REGRESSION);
        assert_eq!(cmp.along.as_ref().unwrap().base, "base");
        assert!(cmp.unpaired_base.is_empty() && cmp.unpaired_candidate.is_empty());
        assert!(cmp.warnings.is_empty(), "{:?}", cmp.warnings);
        // The other way round: head is the base, base 1/1.2 as fast: an improvement, a pass.
        let cmp = compare_along(&r, "rev", Some("head"), &fast_opts()).unwrap();
        assert_eq!(cmp.pairs[1].verdict, Verdict::Improvement);
        assert_eq!(cmp.exit_code(false), crate::exit::OK);
    }

    #[test]
    fn a_partial_run_or_an_empty_cell_is_not_comparable_named_once() {
        let mut r = full();
        r.status = crate::status::RunStatus::Interrupted;
        // A base cell with nothing: in one pair here, but named once whatever the pairs.
        r.cells[0].samples.clear();
        let cmp = compare_along(&r, "rev", None, &fast_opts()).unwrap();
        assert_eq!(
            cmp.not_comparable,
            [
                "the run r is interrupted, not complete\n  hint: finish it (`benchbox run MATRIX --resume RUN`), or pass --allow-partial to compare what it has",
                "cell `rev=base size=small` has no measured invocation with status ok in the run (0 measured, 0 failed, 0 suspect)"
            ]
        );
        assert_eq!(cmp.exit_code(false), crate::exit::NOTHING_COMPARABLE);
    }
}
