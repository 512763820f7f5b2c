//! Geometric means of ratios along each axis (pure): for an axis A and each of its values v
//! other than the reference cell's, the geometric mean over every pair of cells that differ
//! only in A (one with v, its partner with the reference's value) of the ratio of their
//! medians. "jdk=21 vs jdk=17: 1.25x, over 4 pairs of cells differing only in jdk". Computed
//! once per metric in the [`super::Analysis`]; summary.md, report.html and table.tex show the
//! same numbers.

use crate::reference::axis_texts;
use crate::results::RunResults;
use crate::stats;

/// One axis value against the reference's value of that axis.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisGeomean {
    pub axis: String,
    pub value: String,
    /// The reference cell's value of the axis.
    pub base_value: String,
    /// The geometric mean of the pairs' ratios (value's median / base's median).
    pub geomean: f64,
    pub pairs: usize,
    /// The smallest and largest single ratio.
    pub lowest: f64,
    pub highest: f64,
}

/// The geometric means of metric `key` along each axis against the cell `reference`, for
/// matrices with two or more axes (with one, each ratio is already in the table): one per
/// (axis, other value), in axis and cell order. Cells without a positive median are left out
/// of the pairs.
pub fn axis_geomeans(run: &RunResults, reference: usize, key: &str) -> Vec<AxisGeomean> {
    let texts: Vec<Vec<(String, String)>> = run.cells.iter().map(axis_texts).collect();
    let axes: Vec<String> = texts[reference].iter().map(|(k, _)| k.clone()).collect();
    if axes.len() < 2 {
        return Vec::new();
    }
    let medians: Vec<Option<f64>> = run
        .cells
        .iter()
        .map(|c| c.summary.get(key).map(|s| s.median).filter(|m| *m > 0.0))
        .collect();
    let mut out = Vec::new();
    for (a, axis) in axes.iter().enumerate() {
        let base_value = &texts[reference][a].1;
        // Other values of this axis, in cell order.
        let mut values: Vec<&String> = Vec::new();
        for t in &texts {
            if let Some((_, v)) = t.get(a)
                && v != base_value
                && !values.contains(&v)
            {
                values.push(v);
            }
        }
        for value in values {
            let mut ratios = Vec::new();
            for (i, t) in texts.iter().enumerate() {
                if t.get(a).map(|p| &p.1) != Some(value) {
                    continue;
                }
                // Its partner: the same values on every other axis, the base value on this one.
                let partner = texts.iter().position(|p| {
                    p.len() == t.len()
                        && p.iter().enumerate().all(|(k, pair)| {
                            if k == a {
                                &pair.1 == base_value
                            } else {
                                pair == &t[k]
                            }
                        })
                });
                if let (Some(j), Some(m)) = (partner, medians[i])
                    && let Some(b) = medians[j]
                {
                    ratios.push(m / b);
                }
            }
            let Some(geomean) = stats::geometric_mean(&ratios) else {
                continue;
            };
            let (lowest, highest) = ratios
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                    (lo.min(*r), hi.max(*r))
                });
            out.push(AxisGeomean {
                axis: axis.clone(),
                value: value.clone(),
                base_value: base_value.clone(),
                geomean,
                pairs: ratios.len(),
                lowest,
                highest,
            });
        }
    }
    out
}
