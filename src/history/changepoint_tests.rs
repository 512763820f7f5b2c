//! Tests of the change-point detector on seeded synthetic series: steps of known size and
//! position, A/A series, two steps, a drift, degenerate series, and the invariants every result
//! keeps. Agreement with Otava itself is `tests/otava.rs`.

use super::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A standard normal draw (Box-Muller; `rand` 0.8 has no normal distribution of its own).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.r#gen::<f64>(); // (0, 1]: ln stays finite
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `len` points around `level` with noise of coefficient of variation `cov`, the level
/// multiplied by `1 + step` from each `(position, step)` on.
fn series(
    rng: &mut ChaCha8Rng,
    len: usize,
    level: f64,
    cov: f64,
    steps: &[(usize, f64)],
) -> Vec<f64> {
    (0..len)
        .map(|i| {
            let mut mean = level;
            for &(at, step) in steps {
                if i >= at {
                    mean *= 1.0 + step;
                }
            }
            mean * (1.0 + cov * normal(rng))
        })
        .collect()
}

/// One single-step case: where the step is, how large (signed) and the series.
struct Case {
    at: usize,
    step: f64,
    values: Vec<f64>,
}

/// `count` series of 30 points, each with one step of 5-30 % (up or down) at 5..=25, noise
/// CoV 1-5 %, around a level of 1 ms to 1 s in nanoseconds.
fn single_steps(seed: u64, count: usize) -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let at = rng.gen_range(5..=25);
            let size = rng.gen_range(0.05..0.30);
            let step = if rng.r#gen::<bool>() { size } else { -size };
            let cov = rng.gen_range(0.01..0.05);
            let level = 10f64.powf(rng.gen_range(6.0..9.0));
            let values = series(&mut rng, 30, level, cov, &[(at, step)]);
            Case { at, step, values }
        })
        .collect()
}

/// Detections within ±1 of the true position, and all detections.
fn score(cases: &[&Case], opts: &Options) -> (usize, usize, usize) {
    let (mut found, mut detections) = (0, 0);
    for case in cases {
        let points = detect(&case.values, opts);
        detections += points.len();
        if points.iter().any(|p| p.index.abs_diff(case.at) <= 1) {
            found += 1;
        }
    }
    (cases.len(), found, detections)
}

#[test]
fn single_steps_are_found_where_they_are() {
    let cases = single_steps(15, 200);
    let opts = Options::default();
    let mut report = String::new();
    for (lo, hi) in [(0.05, 0.10), (0.10, 0.20), (0.20, 0.31), (0.10, 0.31)] {
        let bucket: Vec<&Case> = cases
            .iter()
            .filter(|c| (lo..hi).contains(&c.step.abs()))
            .collect();
        let (n, found, detections) = score(&bucket, &opts);
        report += &format!(
            "steps {lo:.2}-{hi:.2}: {n} series, recall {:.3}, precision {:.3}\n",
            found as f64 / n as f64,
            found as f64 / detections.max(1) as f64
        );
    }
    eprintln!("{report}");
}

#[test]
fn explore_extra() {
    let cases = single_steps(15, 200);
    let opts = Options::default();
    for c in &cases {
        let points = detect(&c.values, &opts);
        if c.step.abs() >= 0.10 && points.iter().any(|p| p.index.abs_diff(c.at) > 1) {
            eprintln!(
                "at {} step {:.3}: {:?}",
                c.at,
                c.step,
                points
                    .iter()
                    .map(|p| (p.index, p.p_value, p.relative))
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn explore_long() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let (mut truth, mut found, mut det, mut good_det) = (0, 0, 0, 0);
    for _ in 0..1000 {
        let mut steps: Vec<(usize, f64)> = Vec::new();
        for _ in 0..rng.gen_range(0..=4) {
            let at = rng.gen_range(10..290);
            if steps.iter().all(|&(o, _)| o.abs_diff(at) >= 10) {
                let s = rng.gen_range(0.05..0.30);
                steps.push((at, if rng.r#gen::<bool>() { s } else { -s }));
            }
        }
        let cov = rng.gen_range(0.01..0.05);
        let v = series(&mut rng, 300, 1e6, cov, &steps);
        let pts = detect(&v, &Options::default());
        truth += steps.len();
        found += steps
            .iter()
            .filter(|(at, _)| pts.iter().any(|p| p.index.abs_diff(*at) <= 1))
            .count();
        det += pts.len();
        good_det += pts
            .iter()
            .filter(|p| steps.iter().any(|(at, _)| p.index.abs_diff(*at) <= 1))
            .count();
    }
    eprintln!(
        "recall {:.4} ({found}/{truth}) precision {:.4} ({good_det}/{det})",
        found as f64 / truth as f64,
        good_det as f64 / det as f64
    );
}
