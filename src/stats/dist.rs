//! Special functions behind the interval and test code: ln Γ, the regularized incomplete beta
//! and upper incomplete gamma functions, the Student t distribution and the normal tail.
//!
//! Thin wrappers over `statrs` (its `function::{beta, gamma, erf}` and `StudentsT`), keeping
//! the signatures and edge cases (NaN for invalid arguments, ±∞ at p = 0 or 1, no panics) the
//! rest of `stats` was written against: statrs asserts on arguments out of range, and a
//! summary must never panic on a degenerate sample.

use statrs::distribution::{Continuous, ContinuousCDF, StudentsT};
use statrs::function::{beta, gamma};

/// Natural log of the gamma function for `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    gamma::ln_gamma(x)
}

/// Regularized incomplete beta function I_x(a, b) for `a, b > 0`, `0 <= x <= 1` (0 left of
/// the range, 1 right of it, NaN for `a` or `b` not positive).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    beta::checked_beta_reg(a, b, x).unwrap_or(f64::NAN)
}

/// Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a) (1 for `x <= 0`, NaN
/// for `a` not positive).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    gamma::checked_gamma_ur(a, x).unwrap_or(f64::NAN)
}

/// Upper tail of the standard normal distribution, P(Z > z), accurate far into the tail
/// (erfc(z / sqrt 2) / 2 computed as Q(1/2, z²/2), not as 1 - Φ: statrs's `erfc` is only
/// good to about 1e-10 relative in the tail, its incomplete gamma to about 1e-15).
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let tail = 0.5 * gamma_q(0.5, 0.5 * z * z);
    if z >= 0.0 { tail } else { 1.0 - tail }
}

/// Standard normal CDF Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// The standard Student t distribution with `df` degrees of freedom, if `df > 0`.
fn students_t(df: f64) -> Option<StudentsT> {
    if df.is_nan() || df <= 0.0 {
        return None;
    }
    StudentsT::new(0.0, 1.0, df).ok()
}

/// Student t CDF with `df > 0` degrees of freedom (non-integer allowed).
pub fn t_cdf(df: f64, t: f64) -> f64 {
    match students_t(df) {
        Some(_) if t.is_nan() => f64::NAN,
        Some(_) if t.is_infinite() => {
            if t > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Some(d) => d.cdf(t),
        None => f64::NAN,
    }
}

/// Student t inverse CDF: the `p`-quantile of the t distribution with `df > 0` degrees of
/// freedom (non-integer allowed). Returns ±∞ at p = 0 or 1 and NaN for invalid arguments.
///
/// statrs's `inverse_cdf` inverts its incomplete beta with a = df/2, which loses accuracy as
/// df grows (about 1e-4 at df = 10⁶, where a long run's intervals can land); so its answer is
/// the start of a few Newton steps on statrs's own CDF, in the lower tail (where the CDF keeps
/// its relative precision), which bring it back to about 1e-11 everywhere.
pub fn t_quantile(df: f64, p: f64) -> f64 {
    let Some(d) = students_t(df) else {
        return f64::NAN;
    };
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    let q = p.min(1.0 - p);
    let mut t = d.inverse_cdf(q);
    for _ in 0..3 {
        let step = (d.cdf(t) - q) / d.pdf(t);
        if !step.is_finite() {
            break;
        }
        t -= step;
    }
    // t is the lower-tail quantile (negative); the upper one is its mirror image.
    if p < 0.5 { t } else { -t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// The hand-written implementation statrs replaced, kept only to compare against.
    #[allow(dead_code)]
    mod old {
        use std::f64::consts::PI;

        /// Relative accuracy targeted by the continued fractions and series.
        const EPS: f64 = 1e-15;
        /// Guards the Lentz algorithm against division by zero.
        const TINY: f64 = 1e-300;
        /// Iteration cap; convergence takes O(sqrt(max(a, b))) steps, far below this for
        /// any degrees of freedom a benchmark can produce.
        const MAX_ITER: usize = 100_000;

        /// Natural log of the gamma function for `x > 0` (Lanczos approximation, about
        /// 15 significant digits).
        pub(super) fn ln_gamma(x: f64) -> f64 {
            const G: f64 = 7.0;
            const COEF: [f64; 9] = [
                0.999_999_999_999_809_9,
                676.520_368_121_885_1,
                -1_259.139_216_722_402_8,
                771.323_428_777_653_1,
                -176.615_029_162_140_6,
                12.507_343_278_686_905,
                -0.138_571_095_265_720_12,
                9.984_369_578_019_572e-6,
                1.505_632_735_149_311_6e-7,
            ];
            if x < 0.5 {
                // Reflection keeps the series in the region where it is accurate.
                return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
            }
            let x = x - 1.0;
            let mut sum = COEF[0];
            for (i, c) in COEF.iter().enumerate().skip(1) {
                sum += c / (x + i as f64);
            }
            let t = x + G + 0.5;
            0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
        }

        /// Regularized incomplete beta function I_x(a, b) for `a, b > 0`, `0 <= x <= 1`.
        pub(super) fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
            if x <= 0.0 {
                return 0.0;
            }
            if x >= 1.0 {
                return 1.0;
            }
            let front =
                (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln())
                    .exp();
            // The continued fraction converges quickly only left of the mean of the beta
            // distribution; on the right use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
            if x < (a + 1.0) / (a + b + 2.0) {
                front * beta_cf(a, b, x) / a
            } else {
                1.0 - front * beta_cf(b, a, 1.0 - x) / b
            }
        }

        /// Continued fraction for the incomplete beta function (modified Lentz).
        fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
            let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
            let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
            let mut c = 1.0;
            let mut d = 1.0 / guard(1.0 - qab * x / qap);
            let mut h = d;
            for m in 1..=MAX_ITER {
                let m = m as f64;
                let m2 = 2.0 * m;
                // Even step of the fraction.
                let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
                d = 1.0 / guard(1.0 + aa * d);
                c = guard(1.0 + aa / c);
                h *= d * c;
                // Odd step.
                let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
                d = 1.0 / guard(1.0 + aa * d);
                c = guard(1.0 + aa / c);
                let delta = d * c;
                h *= delta;
                if (delta - 1.0).abs() < EPS {
                    break;
                }
            }
            h
        }

        /// Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a).
        pub(super) fn gamma_q(a: f64, x: f64) -> f64 {
            if x <= 0.0 {
                return 1.0;
            }
            let front = (-x + a * x.ln() - ln_gamma(a)).exp();
            if x < a + 1.0 {
                // The power series for P(a, x) converges fast here.
                let mut term = 1.0 / a;
                let mut sum = term;
                let mut ap = a;
                for _ in 0..MAX_ITER {
                    ap += 1.0;
                    term *= x / ap;
                    sum += term;
                    if term.abs() < sum.abs() * EPS {
                        break;
                    }
                }
                1.0 - sum * front
            } else {
                // Continued fraction for Q(a, x) (modified Lentz).
                let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
                let mut b = x + 1.0 - a;
                let mut c = 1.0 / TINY;
                let mut d = 1.0 / b;
                let mut h = d;
                for i in 1..=MAX_ITER {
                    let i = i as f64;
                    let an = -i * (i - a);
                    b += 2.0;
                    d = 1.0 / guard(an * d + b);
                    c = guard(b + an / c);
                    let delta = d * c;
                    h *= delta;
                    if (delta - 1.0).abs() < EPS {
                        break;
                    }
                }
                front * h
            }
        }

        /// Upper tail of the standard normal distribution, P(Z > z), accurate far into
        /// the tail (computed as erfc(z / sqrt 2) / 2 through Q(1/2, z²/2), not as 1 - Φ).
        pub(super) fn normal_sf(z: f64) -> f64 {
            if z.is_nan() {
                return f64::NAN;
            }
            let tail = 0.5 * gamma_q(0.5, 0.5 * z * z);
            if z >= 0.0 { tail } else { 1.0 - tail }
        }

        /// Standard normal CDF Φ(z).
        pub(super) fn normal_cdf(z: f64) -> f64 {
            normal_sf(-z)
        }

        /// Student t CDF with `df > 0` degrees of freedom (non-integer allowed).
        pub(super) fn t_cdf(df: f64, t: f64) -> f64 {
            if df.is_nan() || df <= 0.0 || t.is_nan() {
                return f64::NAN;
            }
            if t.is_infinite() {
                return if t > 0.0 { 1.0 } else { 0.0 };
            }
            // P(T > |t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t²).
            let tail = 0.5 * beta_inc(0.5 * df, 0.5, df / (df + t * t));
            if t > 0.0 { 1.0 - tail } else { tail }
        }

        /// Student t inverse CDF: the `p`-quantile of the t distribution with `df > 0`
        /// degrees of freedom (non-integer allowed). Returns ±∞ at p = 0 or 1 and NaN for
        /// invalid arguments.
        ///
        /// Solves I_x(df/2, 1/2) = 2·min(p, 1-p) for x by bisection, then maps back with
        /// t = sqrt(df (1 - x) / x). Bisection is chosen over Newton because the t density
        /// is so flat at df = 1 that Newton needs careful safeguarding; bisection simply
        /// runs until the bracket cannot shrink in floating point.
        pub(super) fn t_quantile(df: f64, p: f64) -> f64 {
            if df.is_nan() || df <= 0.0 || p.is_nan() || !(0.0..=1.0).contains(&p) {
                return f64::NAN;
            }
            if p == 0.0 {
                return f64::NEG_INFINITY;
            }
            if p == 1.0 {
                return f64::INFINITY;
            }
            if p == 0.5 {
                return 0.0;
            }
            let target = 2.0 * p.min(1.0 - p);
            let (a, b) = (0.5 * df, 0.5);
            // I_x is increasing in x; x = 1 corresponds to t = 0 and x -> 0 to |t| -> ∞.
            let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
            for _ in 0..2_000 {
                let mid = 0.5 * (lo + hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                if beta_inc(a, b, mid) < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let x = 0.5 * (lo + hi);
            let magnitude = (df * (1.0 - x) / x).sqrt();
            if p < 0.5 { -magnitude } else { magnitude }
        }
    }

    fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected}, got {actual} (tolerance {tol})"
        );
    }

    #[test]
    fn ln_gamma_known_values() {
        close(ln_gamma(1.0), 0.0, 1e-14);
        close(ln_gamma(2.0), 0.0, 1e-14);
        close(ln_gamma(0.5), 0.5 * PI.ln(), 1e-14);
        close(ln_gamma(10.0), 362_880.0_f64.ln(), 1e-12);
        close(ln_gamma(0.1), 2.252_712_651_734_206, 1e-12);
        close(ln_gamma(100.5), 361.435_540_467_777_6, 1e-9);
    }

    #[test]
    fn beta_inc_known_values() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1-x)^b.
        close(beta_inc(1.0, 1.0, 0.3), 0.3, 1e-14);
        close(beta_inc(3.0, 1.0, 0.4), 0.064, 1e-14);
        close(beta_inc(1.0, 2.5, 0.2), 1.0 - 0.8_f64.powf(2.5), 1e-14);
        // Symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
        close(
            beta_inc(2.5, 7.0, 0.3),
            1.0 - beta_inc(7.0, 2.5, 0.7),
            1e-14,
        );
    }

    #[test]
    fn normal_tail_known_values() {
        close(normal_cdf(0.0), 0.5, 1e-15);
        close(normal_cdf(1.959_963_984_540_054), 0.975, 1e-13);
        close(normal_cdf(-1.0), 0.158_655_253_931_457_05, 1e-14);
        close(normal_sf(3.0), 0.001_349_898_031_630_094_6, 1e-16);
        // Deep tail keeps relative accuracy instead of rounding to zero.
        let deep = normal_sf(10.0);
        assert!((deep / 7.619_853_024_160_527e-24 - 1.0).abs() < 1e-10);
    }

    #[test]
    fn t_quantile_matches_tables() {
        // Values from standard t tables (two-sided 95%: p = 0.975).
        close(t_quantile(9.0, 0.975), 2.262_157, 1e-6);
        close(t_quantile(1.0, 0.975), 12.706_205, 1e-6);
        close(t_quantile(30.0, 0.975), 2.042_272, 1e-6);
        close(t_quantile(2.0, 0.975), 4.302_653, 1e-6);
        close(t_quantile(4.0, 0.995), 4.604_095, 1e-6);
        close(t_quantile(19.0, 0.95), 1.729_133, 1e-6);
        close(t_quantile(120.0, 0.975), 1.979_930, 1e-6);
        close(t_quantile(1_000_000.0, 0.975), 1.959_966, 1e-6);
    }

    #[test]
    fn t_quantile_closed_forms_and_symmetry() {
        // df = 1 is Cauchy: tan(π (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p)).
        for &p in &[0.6, 0.9, 0.99, 0.999_9] {
            close(
                t_quantile(1.0, p),
                (PI * (p - 0.5)).tan(),
                1e-9 * (PI * (p - 0.5)).tan(),
            );
            let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
            close(t_quantile(2.0, p), two, 1e-10 * two);
            close(t_quantile(7.5, 1.0 - p), -t_quantile(7.5, p), 1e-12);
        }
        assert_eq!(t_quantile(5.0, 0.5), 0.0);
        assert_eq!(t_quantile(5.0, 1.0), f64::INFINITY);
        assert_eq!(t_quantile(5.0, 0.0), f64::NEG_INFINITY);
        assert!(t_quantile(0.0, 0.9).is_nan());
        assert!(t_quantile(3.0, 1.5).is_nan());
    }

    #[test]
    fn t_cdf_inverts_t_quantile() {
        for &df in &[1.0, 2.5, 9.0, 40.0] {
            for &p in &[0.001, 0.05, 0.3, 0.7, 0.975] {
                close(t_cdf(df, t_quantile(df, p)), p, 1e-12);
            }
        }
    }

    /// statrs against the hand-written code it replaced, over the degrees of freedom and
    /// probabilities a benchmark's intervals use. Prints the largest differences.
    #[test]
    fn statrs_agrees_with_the_old_code() {
        let ps: Vec<f64> = [
            1e-6, 1e-4, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4,
        ]
        .iter()
        .flat_map(|&p| [p, 1.0 - p])
        .collect();
        let (mut q_abs, mut q_rel, mut c_abs) = (0.0_f64, 0.0_f64, 0.0_f64);
        let mut q_at = (0.0, 0.0);
        let large = [300.0, 1e3, 3e3, 1e4, 1e5, 1e6];
        let dfs = (1..=200).flat_map(|df| [df as f64, df as f64 + 0.5]);
        for df in dfs.chain(large) {
            {
                for &p in &ps {
                    let (new, old) = (t_quantile(df, p), old::t_quantile(df, p));
                    q_abs = q_abs.max((new - old).abs());
                    if ((new - old) / old).abs() > q_rel {
                        q_rel = ((new - old) / old).abs();
                        q_at = (df, p);
                    }
                    let t = old;
                    c_abs = c_abs.max((t_cdf(df, t) - old::t_cdf(df, t)).abs());
                }
            }
        }
        let mut b_abs = 0.0_f64;
        for n in 1..=400usize {
            for j in 0..n {
                let (a, b) = ((n - j) as f64, (j + 1) as f64);
                b_abs = b_abs.max((beta_inc(a, b, 0.5) - old::beta_inc(a, b, 0.5)).abs());
            }
        }
        let (mut g_abs, mut s_rel) = (0.0_f64, 0.0_f64);
        for i in 1..=2_000 {
            let x = i as f64 * 0.05;
            g_abs = g_abs.max((ln_gamma(x) - old::ln_gamma(x)).abs());
            let z = i as f64 * 0.004 - 4.0;
            s_rel = s_rel.max(((normal_sf(z) - old::normal_sf(z)) / old::normal_sf(z)).abs());
        }
        eprintln!(
            "t quantile: max abs {q_abs:e}, max rel {q_rel:e} (df, p = {q_at:?}); t cdf: max abs {c_abs:e}; \
             I_1/2: max abs {b_abs:e}; ln gamma: max abs {g_abs:e}; normal sf: max rel {s_rel:e}"
        );
        assert!(q_rel < 1e-9, "t quantile differs by {q_rel:e} (relative)");
        assert!(c_abs < 1e-11 && b_abs < 1e-11 && s_rel < 1e-11);
        assert!(g_abs < 1e-9);
    }
}
