//! The adaptive stopping rule of `runs = "auto"`: when a cell has been measured enough. Pure:
//! a cell's values in, a decision out; the runner calls it after each measured invocation.
//!
//! The rule, checked after every measured invocation whose status is `ok`, first match wins:
//! - `max-runs` measured invocations (of any status): stop, [`StopReason::MaxRuns`];
//! - at least `min-runs` ok values and the relative half-width of the distribution-free 95%
//!   interval of the median ([`relative_half_width`]) at most `ci-width`: stop,
//!   [`StopReason::CiWidth`];
//! - the run's budget spent and at least `min-runs` measured: stop, [`StopReason::Budget`]
//!   (the runner knows the clock, so it asks [`Rule::budget_allows_stop`]).
//!
//! Why the interval of the median from order statistics: it is exact at every n (binomial
//! coverage, no resampling, no Monte Carlo error), so the decision costs microseconds and is
//! the same on every replay. Why `min-runs`: stopping on a narrow interval favours samples that
//! happen to be tight; a floor of 10 keeps that bias small, which the seeded simulations of
//! `crate::power` measure through the real `compare` (see the README's validation figures).

use serde::{Deserialize, Serialize};

use super::{median_order_interval, quantile};

/// The confidence of the stopping rule's interval: 95%, like every interval of a report.
pub const STOP_CONFIDENCE: f64 = 0.95;

/// Why an adaptive cell stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Its median's interval got narrower than `ci-width`.
    CiWidth,
    /// It reached `max-runs`.
    MaxRuns,
    /// The run's `budget` was spent (after `min-runs`).
    Budget,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::CiWidth => "ci-width",
            StopReason::MaxRuns => "max-runs",
            StopReason::Budget => "budget",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cell's `runs = "auto"` settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub min_runs: u32,
    pub max_runs: u32,
    /// The largest relative half-width of the median's interval that stops the cell, e.g.
    /// 0.02 for `ci-width = "2%"`.
    pub ci_width: f64,
}

impl Rule {
    /// The decision after a measured invocation: `measured` counts every measured invocation
    /// of the cell (any status), `values` are its ok values of wall time, in any order.
    pub fn decide(&self, measured: u32, values: &[f64]) -> Option<StopReason> {
        if measured >= self.max_runs {
            return Some(StopReason::MaxRuns);
        }
        if values.len() >= self.min_runs as usize
            && relative_half_width(values, STOP_CONFIDENCE).is_some_and(|w| w <= self.ci_width)
        {
            return Some(StopReason::CiWidth);
        }
        None
    }

    /// Whether a spent budget may stop a cell with `measured` measured invocations: not before
    /// `min-runs` (the floor is a promise, like the statistics' minimum n).
    pub fn budget_allows_stop(&self, measured: u32) -> bool {
        measured >= self.min_runs
    }
}

/// Half the width of the distribution-free `confidence` interval of the median, over the
/// median: (upper - lower) / (2 x median), so `ci-width = "2%"` means "median ± 2%". None
/// when there are too few values for the interval (n < 6 at 95%) or the median is not
/// positive.
pub fn relative_half_width(values: &[f64], confidence: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    if sorted.is_empty() {
        return None;
    }
    let median = quantile(&sorted, 0.5);
    if median.is_nan() || median <= 0.0 {
        return None;
    }
    let ci = median_order_interval(&sorted, confidence)?;
    Some((ci.upper - ci.lower) / (2.0 * median))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            min_runs: 10,
            max_runs: 30,
            ci_width: 0.02,
        }
    }

    #[test]
    fn half_width_is_the_order_statistic_interval_over_the_median() {
        // n = 10 at 95%: ranks 2 and 9.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let w = relative_half_width(&v, 0.95).unwrap();
        assert!((w - (9.0 - 2.0) / (2.0 * 5.5)).abs() < 1e-12, "{w}");
        // Too few for a 95% interval, and no relative width around a zero median.
        assert_eq!(relative_half_width(&[1.0; 5], 0.95), None);
        assert_eq!(relative_half_width(&[0.0; 10], 0.95), None);
    }

    #[test]
    fn stops_on_width_only_after_min_runs_and_always_at_max_runs() {
        let tight = vec![1.0; 9];
        assert_eq!(rule().decide(9, &tight), None, "below min-runs");
        assert_eq!(rule().decide(10, &[1.0; 10]), Some(StopReason::CiWidth));
        let wide: Vec<f64> = (0..20).map(|i| 1.0 + 0.1 * f64::from(i % 5)).collect();
        assert_eq!(rule().decide(20, &wide), None);
        assert_eq!(rule().decide(30, &wide), Some(StopReason::MaxRuns));
        // Failed invocations count toward max-runs, not toward the interval.
        assert_eq!(rule().decide(30, &[]), Some(StopReason::MaxRuns));
        assert!(!rule().budget_allows_stop(9));
        assert!(rule().budget_allows_stop(10));
        assert_eq!(StopReason::CiWidth.to_string(), "ci-width");
        assert_eq!(
            serde_json::to_string(&StopReason::MaxRuns).unwrap(),
            "\"max-runs\""
        );
    }
}
