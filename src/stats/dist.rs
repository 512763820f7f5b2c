//! Special functions behind the interval and test code: the regularized incomplete beta and
//! upper incomplete gamma functions, the Student t distribution and the normal tail.
//!
//! Thin wrappers over `statrs` (its `function::{beta, gamma, erf}` and `StudentsT`), keeping
//! the signatures and edge cases (NaN for invalid arguments, ±∞ at p = 0 or 1, no panics) the
//! rest of `stats` was written against: statrs asserts on arguments out of range, and a
//! summary must never panic on a degenerate sample.

use statrs::distribution::{Continuous, ContinuousCDF, StudentsT};
use statrs::function::{beta, gamma};

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

    fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected}, got {actual} (tolerance {tol})"
        );
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
}
