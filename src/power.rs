//! Power and false alarms of `compare`'s gate, by seeded simulation through the real code:
//! synthetic runs go through [`compare::compare`] (the ratio's bootstrap interval, the
//! Mann-Whitney test, the verdict), so what is simulated is exactly what gates CI. Used by
//! `benchbox calibrate` (the invocations a cell needs, its minimum detectable effect) and by
//! the validation tests of `runs = "auto"` (power, false regressions under optional stopping,
//! coverage).
//!
//! Why a simulation rather than a normal-theory formula: the verdict needs the whole bootstrap
//! interval of a ratio of medians beyond the threshold and a significant test, which no
//! closed form captures at small n; and the measured noise of a cell is rarely normal. Noise is
//! either normal with a given coefficient of variation, or the cell's own measured values
//! (relative to their median) resampled with replacement. Every trial's draws come from a
//! ChaCha8 generator seeded with the trial number, so a figure is reproducible, and the same
//! trials are used at every n or effect a search tries (common random numbers: the estimates
//! move smoothly, so a search converges).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::compare::{self, CompareOptions, Verdict};
use crate::measurement::Measurement;
use crate::plan::Phase;
use crate::results::{CellResult, RunResults, Sample};
use crate::stats::stopping::Rule;
use crate::stats::{self, StatsOptions};
use crate::status::{RunStatus, Status};

/// The noise of one cell's metric, relative to its median.
#[derive(Debug, Clone, PartialEq)]
pub enum Noise {
    /// Normal with this coefficient of variation (0.05: 5%).
    Normal { cv: f64 },
    /// These values over their median, resampled with replacement.
    Empirical(Vec<f64>),
}

impl Noise {
    /// The empirical noise of `values` (non-finite and non-positive ones dropped); None when
    /// fewer than two remain.
    pub fn of(values: &[f64]) -> Option<Noise> {
        let mut v: Vec<f64> = values
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        if v.len() < 2 {
            return None;
        }
        v.sort_unstable_by(f64::total_cmp);
        let median = stats::quantile(&v, 0.5);
        Some(Noise::Empirical(v.iter().map(|x| x / median).collect()))
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            Noise::Normal { cv } => {
                // Box-Muller: rand 0.8 has no normal distribution without rand_distr.
                let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
                let u2: f64 = rng.r#gen();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                // Wall times are positive: a draw at or below zero (cv near 1) is floored.
                (1.0 + cv * z).max(1e-9)
            }
            Noise::Empirical(v) => v[rng.gen_range(0..v.len())],
        }
    }
}

/// How many invocations a side gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    Fixed(u32),
    /// `runs = "auto"` without a budget: each side stops by [`Rule::decide`].
    Adaptive(Rule),
}

/// One simulated experiment, repeated `trials` times.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub noise: Noise,
    /// True relative slowdown of the candidate (0.10: 10% slower; 0: an A/A experiment).
    pub effect: f64,
    /// `compare --threshold`.
    pub threshold: f64,
    pub sampling: Sampling,
    pub trials: u32,
    pub seed: u64,
    /// Bootstrap resamples of each comparison (`compare`'s default is 10,000).
    pub resamples: usize,
}

/// What the trials of a [`Scenario`] gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    pub trials: u32,
    /// Trials the gate called a regression (exit 10).
    pub regressions: u32,
    pub improvements: u32,
    /// Invocations a side, on average over both sides and all trials.
    pub mean_n: f64,
}

impl Tally {
    pub fn regression_rate(&self) -> f64 {
        f64::from(self.regressions) / f64::from(self.trials.max(1))
    }
}

/// Run the scenario's trials through [`compare::compare`].
pub fn simulate(s: &Scenario) -> Tally {
    let opts = CompareOptions {
        metrics: vec!["wall_s".into()],
        threshold: s.threshold,
        stats: StatsOptions {
            resamples: s.resamples,
            ..StatsOptions::default()
        },
        allow_partial: false,
    };
    let mut tally = Tally {
        trials: s.trials,
        regressions: 0,
        improvements: 0,
        mean_n: 0.0,
    };
    let mut total_n = 0usize;
    for trial in 0..s.trials {
        let mut rng = trial_rng(s.seed, trial);
        let base = side(&s.noise, 1.0, s.sampling, &mut rng);
        let candidate = side(&s.noise, 1.0 + s.effect, s.sampling, &mut rng);
        total_n += base.len() + candidate.len();
        let cmp = compare::compare(&run_of(&base), &run_of(&candidate), &opts);
        match cmp.pairs[0].verdict {
            Verdict::Regression => tally.regressions += 1,
            Verdict::Improvement => tally.improvements += 1,
            _ => {}
        }
    }
    tally.mean_n = total_n as f64 / (2.0 * f64::from(s.trials.max(1)));
    tally
}

/// The fraction of trials in which the interval of the ratio of medians
/// ([`stats::ratio_of_medians`], as `compare` computes it) covers the true ratio `1 + effect`,
/// with `n` invocations a side. The true ratio is that of the distributions' medians: the
/// candidate's noise is the base's scaled by `1 + effect`.
pub fn coverage(
    noise: &Noise,
    effect: f64,
    n: u32,
    trials: u32,
    seed: u64,
    resamples: usize,
) -> f64 {
    let truth = 1.0 + effect;
    let opts = StatsOptions {
        resamples,
        ..StatsOptions::default()
    };
    // The median of an empirical noise is 1 by construction; of the normal, 1.
    let covered = (0..trials)
        .filter(|&trial| {
            let mut rng = trial_rng(seed, trial);
            let base = side(noise, 1.0, Sampling::Fixed(n), &mut rng);
            let candidate = side(noise, truth, Sampling::Fixed(n), &mut rng);
            stats::ratio_of_medians(&base, &candidate, &opts)
                .and_then(|r| r.ci)
                .is_some_and(|ci| ci.lower <= truth && truth <= ci.upper)
        })
        .count();
    covered as f64 / f64::from(trials.max(1))
}

/// The fewest invocations a side (between 5 and `max_n`) at which the gate finds a slowdown of
/// `effect` in at least `power` of the trials; None when even `max_n` does not.
pub fn runs_needed(base: &Scenario, power: f64, max_n: u32) -> Option<u32> {
    let detects = |n: u32| {
        let t = simulate(&Scenario {
            sampling: Sampling::Fixed(n),
            ..base.clone()
        });
        t.regression_rate() >= power
    };
    // Doubling from the least n with an interval, then bisection: a quiet cell never pays
    // for simulating hundreds of invocations. Power grows with n (up to the trials' noise).
    let mut lo = stats::MIN_BOOTSTRAP_SAMPLES as u32;
    let mut hi = lo;
    while !detects(hi) {
        if hi >= max_n {
            return None;
        }
        lo = hi + 1;
        hi = (hi * 2).min(max_n);
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if detects(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The smallest slowdown (to 0.1 percentage point, up to 100%) the gate finds in at least
/// `power` of the trials with `n` invocations a side; None when not even a doubling is found.
pub fn min_detectable_effect(base: &Scenario, n: u32, power: f64) -> Option<f64> {
    let detects = |effect: f64| {
        let t = simulate(&Scenario {
            effect,
            sampling: Sampling::Fixed(n),
            ..base.clone()
        });
        t.regression_rate() >= power
    };
    let (mut lo, mut hi) = (base.threshold, 1.0);
    if !detects(hi) {
        return None;
    }
    while hi - lo > 0.001 {
        let mid = 0.5 * (lo + hi);
        if detects(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

fn trial_rng(seed: u64, trial: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ u64::from(trial).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One side's values: `scale` times the noise, as many as `sampling` says.
fn side(noise: &Noise, scale: f64, sampling: Sampling, rng: &mut ChaCha8Rng) -> Vec<f64> {
    match sampling {
        Sampling::Fixed(n) => (0..n).map(|_| scale * noise.draw(rng)).collect(),
        Sampling::Adaptive(rule) => {
            let mut values = Vec::with_capacity(rule.max_runs as usize);
            loop {
                values.push(scale * noise.draw(rng));
                if rule.decide(values.len() as u32, &values).is_some() {
                    return values;
                }
            }
        }
    }
}

/// A complete run of one cell whose measured invocations took `walls` seconds.
fn run_of(walls: &[f64]) -> RunResults {
    let samples = walls
        .iter()
        .enumerate()
        .map(|(i, &wall_s)| Sample {
            cell_id: "sim".into(),
            phase: Phase::Measure,
            index: i as u32,
            started_at: String::new(),
            measured: Measurement {
                wall_s,
                exit_code: Some(0),
                ..Measurement::default()
            },
            status: Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: Default::default(),
        })
        .collect();
    RunResults {
        schema_version: crate::results::SCHEMA_VERSION,
        tool: "benchbox".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        run_id: "sim".into(),
        status: RunStatus::Complete,
        started_at: String::new(),
        finished_at: None,
        reason: None,
        command_line: Vec::new(),
        host: Default::default(),
        isolation: None,
        matrix_name: "sim".into(),
        matrix_path: "sim.toml".into(),
        matrix_sha256: String::new(),
        revision: None,
        load_average: None,
        shard: None,
        seed: 0,
        order: Default::default(),
        stats: StatsOptions::default(),
        plan: Default::default(),
        cells: vec![CellResult {
            id: "sim".into(),
            label: "default".into(),
            slug: "default".into(),
            samples,
            ..Default::default()
        }],
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
