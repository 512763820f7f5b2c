//! Change points in a series of run medians (pure): where the level of a series moved, and
//! whether that move is more than noise. The method is E-Divisive with means as Apache Otava
//! (formerly Hunter, from MongoDB's and DataStax's work) runs it by default, reproduced step
//! for step so that both find the same change points (`tests/otava.rs` checks this against
//! Otava 0.8.0 itself).
//!
//! How it works, in three steps:
//!
//! 1. **Candidates (E-Divisive).** In a stretch of points `z[s..e)`, every split `s < τ < κ <= e`
//!    into `X = z[s..τ)` and `Y = z[τ..κ)` gets the energy divergence
//!    `Q = 2/(n+m)·Σ|X_i-Y_j| - 2m/((n+m)(n-1))·Σ_{i<k}|X_i-X_k| - 2n/((n+m)(m-1))·Σ_{j<k}|Y_j-Y_k|`
//!    (n = |X|, m = |Y|; the second and third terms are left out for a single point). The
//!    candidate is the τ of the largest Q over all (τ, κ). Q grows with the distance between
//!    the two sides and shrinks with the spread inside each, so it finds a shift of the level
//!    without assuming any distribution. All the pairwise sums come from one table of
//!    within-stretch distance sums per window, so each Q costs O(1).
//! 2. **Split.** A window of `window` points slides over the series, half a window at a time
//!    (or from the last change point found, if that is further). In each window the candidates
//!    are found divisively: the best candidate over the current segments is tested with a
//!    two-sided Student t-test between the two halves of the segment it splits; if its p-value
//!    is at most a relaxed threshold (10 × `p_value` below 0.05) it becomes a boundary and the
//!    search goes on, else the window is done. The union over all windows is the set of *weak*
//!    change points.
//! 3. **Merge.** Each weak change point is re-tested between the whole segments around it
//!    (from the previous change point to the next). Repeatedly, the point with the largest
//!    p-value is dropped while that p-value is not below `p_value`; once all are, the point
//!    with the smallest step is dropped while that step is not above `min_change`. After every
//!    drop the two neighbours are re-tested, their segments having grown.
//!
//! The t-test is the pooled-variance (equal variances) test with `n1 + n2 - 2` degrees of
//! freedom, fed the population standard deviations (divided by n, not n - 1) as Otava does:
//! kept so the p-values agree, it makes them slightly smaller than the textbook test's on very
//! short segments. The step of a change point (for `min_change`) is Otava's magnitude: the
//! larger of |after/before - 1| and |before/after - 1|, so a drop of 4.8 % counts as a step of
//! 5.04 %, and the direction whose reference mean is 0 counts as 0.
//!
//! Where it differs from Otava 0.8.0's `analyze`:
//! - `min_change` defaults to 5 % (Otava: 0, which reports any significant step, however
//!   small); benchbox's users care about steps they would act on.
//! - No missing values: Otava forward-fills them, here the caller leaves non-finite values out
//!   (a gap in a run's history is not a measurement).
//! - A `window` below 2 (Otava asserts) is taken as 2.
//! - Ties (equal Q, equal p-values) are broken alike, by the first in index order; only the
//!   last bits of floating-point sums differ (Otava sums with numpy), which can change a result
//!   only on exact ties between different splits.
//! - When the merge step drops a point, both neighbours are tested again. Otava 0.8.0 tests
//!   the next one and the one after it, leaving the previous one with its old, shorter right
//!   segment (stale p-value and mean): here every change point's numbers are those of the
//!   segments it finally separates. On the synthetic series of `tests/otava.rs` this changes
//!   the change points of 1 in 200 series with one step, and of 7 to 12 in 60 series of 300
//!   points with up to 4 steps; on 500 such series (`Options::default()`) it raised recall from
//!   0.956 to 0.958 and precision from 0.922 to 0.933 (a stale p-value can keep a change point
//!   whose real one is not significant).
//! - A NaN p-value (both sides constant and equal) is taken as 1: never significant.
//! - `relative` from a mean of 0 is ±infinity (Otava's reports 0 there), or 0 when both are 0.
//!
//! Otava's incremental mode (re-analysing only the tail when points are appended) and its
//! original, permutation-tested E-Divisive are not reproduced: the whole series is analysed
//! every time, which is fast enough (0.4 ms for 1,000 points, 41 ms for 100 series of 1,000:
//! `benches/history.rs`) and leaves no state to keep.

use crate::stats::t_cdf;

/// How change points are searched for and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// A change point is kept when the t-test's p-value is below this (default 0.001). The
    /// split step finds candidates at a relaxed threshold: 10 × this below 0.05, 2 × below 0.5.
    pub p_value: f64,
    /// ... and its step (the larger of |after/before - 1| and |before/after - 1|) is above
    /// this (default 0.05; Otava's default is 0).
    pub min_change: f64,
    /// Points in each window of the split step, which slides by half of it (at least 2;
    /// default 30, the default of Otava's split step, where its `analyze` command takes 50).
    /// A longer window reports fewer spurious change points on long series but misses the
    /// first of two steps in opposite directions less than about half a window apart: on
    /// 1,000-point series without a step, 20 % (30) against 14 % (50) have one; of 1,000 pairs
    /// of steps +15 % then -20 % 10-40 points apart, both are found in 99.5 % (30) against
    /// 80 % (50).
    pub window: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            p_value: 0.001,
            min_change: 0.05,
            window: 30,
        }
    }
}

/// One change point: the level of the series differs from `index` on.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    /// The first point after the change (0 < index < series length).
    pub index: usize,
    /// Of the t-test between the segment before and the segment after.
    pub p_value: f64,
    /// Means of the segments before and after: from the previous change point (or the start)
    /// to this one, and from this one to the next (or the end).
    pub mean_before: f64,
    pub mean_after: f64,
    /// mean_after / mean_before - 1; ±infinity when mean_before is 0 (0 if both are).
    pub relative: f64,
}

impl ChangePoint {
    /// The step `min_change` is compared with: the larger of |after/before - 1| and
    /// |before/after - 1|, a direction from a mean of 0 counting as 0 (as Otava does).
    pub fn magnitude(&self) -> f64 {
        magnitude(self.mean_before, self.mean_after)
    }
}

/// The change points of `series`, in index order. Non-finite values must be left out by the
/// caller (with them the result is unspecified, but this does not panic). Deterministic: the
/// same series and options give the same result.
pub fn detect(series: &[f64], opts: &Options) -> Vec<ChangePoint> {
    let window = opts.window.max(2);
    let weak = split(series, window, first_pass_p_value(opts.p_value));
    merge(weak, series, opts.p_value, opts.min_change)
        .into_iter()
        .map(|(index, t)| ChangePoint {
            index,
            p_value: t.p_value,
            mean_before: t.mean_before,
            mean_after: t.mean_after,
            relative: relative(t.mean_before, t.mean_after),
        })
        .collect()
}

/// The relaxed threshold of the split step: the weak change points it finds are only
/// candidates, judged again at `p_value` by the merge step.
fn first_pass_p_value(p: f64) -> f64 {
    if p < 0.05 {
        p * 10.0
    } else if p < 0.5 {
        p * 2.0
    } else {
        p
    }
}

fn relative(before: f64, after: f64) -> f64 {
    if before != 0.0 {
        after / before - 1.0
    } else if after == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(after)
    }
}

fn magnitude(before: f64, after: f64) -> f64 {
    let forward = if before == 0.0 {
        0.0
    } else {
        (after / before - 1.0).abs()
    };
    let backward = if after == 0.0 {
        0.0
    } else {
        (before / after - 1.0).abs()
    };
    forward.max(backward)
}

/// The t-test between two adjacent segments.
#[derive(Debug, Clone, Copy)]
struct TTest {
    p_value: f64,
    mean_before: f64,
    mean_after: f64,
}

/// Two-sided pooled-variance t-test between `left` and `right` (both non-empty), with the
/// population standard deviations Otava feeds it. A NaN p-value (0/0: both sides constant and
/// equal) is 1.
fn t_test(left: &[f64], right: &[f64]) -> TTest {
    let (n1, n2) = (left.len() as f64, right.len() as f64);
    let (m1, v1) = mean_and_population_variance(left);
    let (m2, v2) = mean_and_population_variance(right);
    let p_value = if left.len() + right.len() > 2 {
        let df = n1 + n2 - 2.0;
        let pooled = ((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / df;
        let t = (m1 - m2) / (pooled * (1.0 / n1 + 1.0 / n2)).sqrt();
        // P(|T| >= |t|); t = ±inf (no spread, different means) gives 0.
        let p = 2.0 * t_cdf(df, -t.abs());
        if p.is_nan() { 1.0 } else { p }
    } else {
        1.0
    };
    TTest {
        p_value,
        mean_before: m1,
        mean_after: m2,
    }
}

/// Mean and variance divided by n (two passes: run medians in nanoseconds are large numbers
/// with a small spread, where the one-pass formula loses the spread). A single point has
/// variance 0.
fn mean_and_population_variance(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (mean, 0.0);
    }
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

/// The t-test of the change point at `bounds[i]` between its neighbouring boundaries, `bounds`
/// being the sorted change points of `series`.
fn test_between(series: &[f64], bounds: &[usize], i: usize) -> TTest {
    let start = if i == 0 { 0 } else { bounds[i - 1] };
    let end = bounds.get(i + 1).copied().unwrap_or(series.len());
    t_test(&series[start..bounds[i]], &series[bounds[i]..end])
}

/// The split step: the weak change points of the whole series, sorted, each with its t-test
/// between its neighbours.
fn split(series: &[f64], window: usize, p_value: f64) -> Vec<(usize, TTest)> {
    let step = window / 2;
    let mut found: Vec<usize> = Vec::new();
    let mut table = DistanceSums::default();
    let mut start = 0;
    while start < series.len() {
        let end = (start + window).min(series.len());
        let in_window = divide(&series[start..end], p_value, &mut table);
        let last = in_window.last().map_or(0, |&i| i + start);
        for i in in_window {
            if !found.contains(&(i + start)) {
                found.push(i + start);
            }
        }
        start = last.max(start + step);
    }
    found.sort_unstable();
    (0..found.len())
        .map(|i| (found[i], test_between(series, &found, i)))
        .collect()
}

/// The merge step: drops weak change points until every one left has a p-value below
/// `p_value` and a step above `min_change`.
fn merge(
    mut points: Vec<(usize, TTest)>,
    series: &[f64],
    p_value: f64,
    min_change: f64,
) -> Vec<(usize, TTest)> {
    while !points.is_empty() {
        // The weakest: the largest p-value (the first of equals), or when all are
        // significant, the smallest step.
        let mut weakest = 0;
        for (i, (_, t)) in points.iter().enumerate() {
            if t.p_value > points[weakest].1.p_value {
                weakest = i;
            }
        }
        if points[weakest].1.p_value < p_value {
            let step = |i: usize| magnitude(points[i].1.mean_before, points[i].1.mean_after);
            weakest = 0;
            for i in 1..points.len() {
                if step(i) < step(weakest) {
                    weakest = i;
                }
            }
            if step(weakest) > min_change {
                return points;
            }
        }
        points.remove(weakest);
        // Its neighbours' segments have grown: test them again.
        let bounds: Vec<usize> = points.iter().map(|&(i, _)| i).collect();
        for i in [weakest.wrapping_sub(1), weakest] {
            if i < points.len() {
                points[i].1 = test_between(series, &bounds, i);
            }
        }
    }
    points
}

/// E-Divisive within one window: splits `w` at the best candidate of its segments while the
/// split's t-test has a p-value of at most `p_value`. The change points, sorted, as indices
/// into `w`.
fn divide(w: &[f64], p_value: f64, table: &mut DistanceSums) -> Vec<usize> {
    table.fill(w);
    let mut bounds: Vec<usize> = Vec::new();
    loop {
        // The best candidate over the segments between the boundaries found so far (the first
        // of equal ones, in index order).
        let mut best: Option<(usize, f64, usize, usize)> = None;
        let mut seg_start = 0;
        for seg_end in bounds.iter().copied().chain([w.len()]) {
            if seg_end - seg_start > 1 {
                let (tau, q) = table.best_split(seg_start, seg_end);
                if best.is_none_or(|(_, best_q, _, _)| q > best_q) {
                    best = Some((tau, q, seg_start, seg_end));
                }
            }
            seg_start = seg_end;
        }
        let Some((tau, _, s, e)) = best else { break };
        if t_test(&w[s..tau], &w[tau..e]).p_value <= p_value {
            let at = bounds.partition_point(|&b| b < tau);
            bounds.insert(at, tau);
        } else {
            break;
        }
    }
    bounds
}

/// Sums of pairwise distances within every stretch of a window: `sum(a, b)` is
/// Σ_{a <= i < k < b} |w[i] - w[k]|. Built in O(L²) from non-negative additions only (no
/// cancellation), after which the energy divergence of any split is O(1). Kept across windows
/// to reuse its buffer.
#[derive(Default)]
struct DistanceSums {
    len: usize,
    sums: Vec<f64>,
}

impl DistanceSums {
    fn fill(&mut self, w: &[f64]) {
        let n = w.len();
        self.len = n;
        self.sums.clear();
        self.sums.resize((n + 1) * (n + 1), 0.0);
        for b in 2..=n {
            let j = b - 1;
            // Σ_{a <= i < j} |w[i] - w[j]|, grown as a moves left.
            let mut column = 0.0;
            for a in (0..j).rev() {
                column += (w[a] - w[j]).abs();
                self.sums[a * (n + 1) + b] = self.sums[a * (n + 1) + b - 1] + column;
            }
        }
    }

    fn sum(&self, a: usize, b: usize) -> f64 {
        self.sums[a * (self.len + 1) + b]
    }

    /// The candidate of the segment `[s, e)` (at least 2 points): the τ of the largest energy
    /// divergence Q(z[s..τ), z[τ..κ)) over s < τ < κ <= e, with Q; the first of equal ones in
    /// (τ, κ) order.
    fn best_split(&self, s: usize, e: usize) -> (usize, f64) {
        let mut best = (s + 1, f64::NEG_INFINITY);
        for tau in s + 1..e {
            let n = (tau - s) as f64;
            let within_x = self.sum(s, tau);
            for kappa in tau + 1..=e {
                let m = (kappa - tau) as f64;
                let within_y = self.sum(tau, kappa);
                let cross = self.sum(s, kappa) - within_x - within_y;
                let mut q = 2.0 / (n + m) * cross;
                if n > 1.0 {
                    q -= 2.0 * m / ((n + m) * (n - 1.0)) * within_x;
                }
                if m > 1.0 {
                    q -= 2.0 * n / ((n + m) * (m - 1.0)) * within_y;
                }
                if q > best.1 {
                    best = (tau, q);
                }
            }
        }
        best
    }
}

#[cfg(test)]
#[path = "changepoint_tests.rs"]
mod tests;
