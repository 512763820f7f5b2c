//! Change points in a series of run medians (pure): where the level of a series moved, and
//! whether that move is more than noise. The method is E-Divisive with means, as Apache Otava
//! (formerly Hunter, from MongoDB's and DataStax's work) runs it: split candidates found by the
//! energy-statistic divergence of means, each kept only when a two-sample t-test between the
//! windows before and after it is significant (`p_value`) and the step is at least
//! `min_change` relative.

/// How change points are searched for and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// A candidate is kept when the t-test's p-value is at most this (default 0.001).
    pub p_value: f64,
    /// ... and the relative step |after/before - 1| is at least this (default 0.05).
    pub min_change: f64,
    /// Points on each side of a candidate the test looks at (default 30, Otava's window).
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
    /// Of the t-test between the window before and the window after.
    pub p_value: f64,
    /// Means of the windows before and after.
    pub mean_before: f64,
    pub mean_after: f64,
    /// mean_after / mean_before - 1.
    pub relative: f64,
}

/// The change points of `series`, in index order. Non-finite values must be left out by the
/// caller. Deterministic: the same series and options give the same result.
pub fn detect(series: &[f64], opts: &Options) -> Vec<ChangePoint> {
    let _ = (series, opts);
    Vec::new() // To be written: see the module doc.
}
