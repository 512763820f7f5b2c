//! The reference cell: the one cell that every "vs reference" ratio of a run is taken against,
//! in summary.md, report.html, table.tex, the plots and the terminal alike (pure).
//!
//! The rule, in one place:
//! - `--reference SPEC` names exactly one cell: by its label (`jdk=17 gc=G1`), its id, or
//!   `axis=value` pairs separated by commas or spaces that only that cell has. Numbers compare
//!   as numbers (`cpu_quota=0.50` names the cell `0.5`). A spec that matches no cell, or more
//!   than one, is an error that lists the cells, before anything is written.
//! - Without it, the reference is the cell with the lowest median wall time (ties: the first
//!   in matrix order), for every metric: one baseline per run, as a reader of a table with a
//!   "vs reference" column expects, rather than a baseline that moves from table to table.
//!   A run without any wall-time summary (every invocation failed) has no reference.

use crate::results::CellResult;
use crate::spec::axis_value_text;

/// The wall-time metric the default reference is chosen by.
const WALL: &str = "wall_s";

/// The reference cell of a run, and why it is the one.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Index into the run's cells.
    pub index: usize,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// Named with `--reference`: the spec as given.
    Given(String),
    /// The default: the lowest median wall time.
    FastestWall,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Given(spec) => write!(f, "`--reference {spec}`"),
            Why::FastestWall => f.write_str("fastest median wall time"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReferenceError {
    #[error(
        "the reference `{spec}` matches no cell\n  hint: name one cell with axis=value pairs, its label or its id; this run's cells: {cells}"
    )]
    NoMatch { spec: String, cells: String },
    #[error(
        "the reference `{spec}` matches {count} cells: {matched}\n  hint: add axis=value pairs until one cell is left"
    )]
    Ambiguous {
        spec: String,
        count: usize,
        matched: String,
    },
}

/// The run's reference cell (see the module doc). `Ok(None)`: no spec and no wall time.
pub fn choose(
    cells: &[CellResult],
    spec: Option<&str>,
) -> Result<Option<Reference>, ReferenceError> {
    match spec {
        Some(spec) => named(cells, spec).map(|index| {
            Some(Reference {
                index,
                why: Why::Given(spec.trim().to_string()),
            })
        }),
        None => Ok(fastest(cells).map(|index| Reference {
            index,
            why: Why::FastestWall,
        })),
    }
}

/// "jdk=17 gc=G1": a cell's axis values as `(axis, text)` pairs, the text cells are matched by
/// (here, in `compare`'s pairing and in summary.md's geometric means).
pub fn axis_texts(cell: &CellResult) -> Vec<(String, String)> {
    cell.axes
        .iter()
        .map(|(k, v)| (k.clone(), axis_value_text(v)))
        .collect()
}

/// The one cell `spec` names.
fn named(cells: &[CellResult], spec: &str) -> Result<usize, ReferenceError> {
    let spec_trimmed = spec.trim();
    if let Some(i) = cells
        .iter()
        .position(|c| c.label == spec_trimmed || c.id == spec_trimmed)
    {
        return Ok(i);
    }
    let pairs: Vec<(&str, &str)> = spec_trimmed
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (axis, value) = p.split_once('=').unwrap_or((p, ""));
            (axis.trim(), value.trim())
        })
        .collect();
    let matched: Vec<usize> = cells
        .iter()
        .enumerate()
        .filter(|(_, cell)| {
            !pairs.is_empty()
                && pairs.iter().all(|(axis, value)| {
                    cell.axes
                        .iter()
                        .any(|(name, v)| name == axis && same_value(v, value))
                })
        })
        .map(|(i, _)| i)
        .collect();
    let labels = |indices: &mut dyn Iterator<Item = usize>| {
        indices
            .map(|i| format!("`{}`", cells[i].label))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matched.len() {
        1 => Ok(matched[0]),
        0 => Err(ReferenceError::NoMatch {
            spec: spec.to_string(),
            cells: labels(&mut (0..cells.len())),
        }),
        count => Err(ReferenceError::Ambiguous {
            spec: spec.to_string(),
            count,
            matched: labels(&mut matched.iter().copied()),
        }),
    }
}

/// The one matching rule of axis values (`0.50` names `0.5`; strings compare as text).
pub(crate) fn same_value(cell_value: &serde_json::Value, given: &str) -> bool {
    crate::spec::axis_value_matches(cell_value, given)
}

/// The cell with the lowest median wall time; ties go to the earlier cell, so the choice is
/// stable.
fn fastest(cells: &[CellResult]) -> Option<usize> {
    cells
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.summary.get(WALL).map(|s| (i, s.median)))
        .filter(|(_, m)| m.is_finite())
        .fold(None, |best: Option<(usize, f64)>, (i, m)| match best {
            Some((_, b)) if b <= m => best,
            _ => Some((i, m)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{StatsOptions, summarize};

    fn cell(label: &str, axes: &[(&str, serde_json::Value)], wall: Option<f64>) -> CellResult {
        let mut c = CellResult {
            id: format!("id-{}", label.replace(' ', "-")),
            label: label.into(),
            axes: axes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Default::default()
        };
        if let Some(m) = wall {
            let summary = summarize(&[m], &StatsOptions::default()).unwrap();
            c.summary.insert(WALL.into(), summary);
        }
        c
    }

    fn two_by_two() -> Vec<CellResult> {
        use serde_json::json;
        vec![
            cell(
                "jdk=17 gc=G1",
                &[("jdk", json!(17)), ("gc", json!("G1"))],
                Some(2.0),
            ),
            cell(
                "jdk=17 gc=Par",
                &[("jdk", json!(17)), ("gc", json!("Par"))],
                Some(1.0),
            ),
            cell(
                "jdk=21 gc=G1",
                &[("jdk", json!(21)), ("gc", json!("G1"))],
                Some(1.0),
            ),
            cell(
                "jdk=21 gc=Par",
                &[("jdk", json!(21)), ("gc", json!("Par"))],
                None,
            ),
        ]
    }

    #[test]
    fn the_default_is_the_fastest_median_wall_time_first_on_ties() {
        let run = two_by_two();
        let r = choose(&run, None).unwrap().unwrap();
        assert_eq!(
            (r.index, r.why.to_string()),
            (1, "fastest median wall time".into())
        );
        let mut none = run.clone();
        none.iter_mut().for_each(|c| c.summary.clear());
        assert_eq!(choose(&none, None).unwrap(), None);
    }

    #[test]
    fn a_spec_names_exactly_one_cell() {
        let run = two_by_two();
        let index = |s: &str| choose(&run, Some(s)).unwrap().unwrap().index;
        assert_eq!(index("jdk=21,gc=G1"), 2);
        assert_eq!(index(" gc=Par jdk=21 "), 3);
        assert_eq!(index("jdk=17 gc=G1"), 0); // the label
        assert_eq!(index("id-jdk=17-gc=Par"), 1); // the id
        assert_eq!(index("jdk=21.0, gc=G1"), 2); // numbers as numbers
        let ambiguous = choose(&run, Some("jdk=17")).unwrap_err();
        assert_eq!(
            ambiguous.to_string(),
            "the reference `jdk=17` matches 2 cells: `jdk=17 gc=G1`, `jdk=17 gc=Par`\n  hint: add axis=value pairs until one cell is left"
        );
        let none = choose(&run, Some("jdk=11")).unwrap_err();
        assert!(
            none.to_string()
                .starts_with("the reference `jdk=11` matches no cell\n  hint: ")
                && none.to_string().contains("`jdk=21 gc=Par`"),
            "{none}"
        );
        assert!(matches!(
            choose(&run, Some("")).unwrap_err(),
            ReferenceError::NoMatch { .. }
        ));
        assert!(matches!(
            choose(&run, Some("gc=G1=x")).unwrap_err(),
            ReferenceError::NoMatch { .. }
        ));
    }

    #[test]
    fn string_values_compare_as_text() {
        use serde_json::json;
        let run = vec![
            cell(
                "go=1.1 os=linux",
                &[("go", json!("1.1")), ("os", json!("linux"))],
                Some(1.0),
            ),
            cell(
                "go=1.10 os=linux",
                &[("go", json!("1.10")), ("os", json!("linux"))],
                Some(1.0),
            ),
        ];
        let index = |s: &str| choose(&run, Some(s)).unwrap().unwrap().index;
        assert_eq!(index("go=1.1,os=linux"), 0);
        assert_eq!(index("go=1.10,os=linux"), 1);
    }
}
