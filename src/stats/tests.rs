//! Tests of the statistics: hand-computed values, property tests of the summaries' invariants,
//! and simulations of interval coverage, power and false alarms.

use super::*;
use proptest::prelude::*;
use rand::Rng;

fn close(actual: f64, expected: f64, tol: f64) {
    assert!(
        (actual - expected).abs() <= tol,
        "expected {expected}, got {actual} (tolerance {tol})"
    );
}

/// Bootstrap with exactly `resamples` at any n (as given explicitly), so these tests see the
/// bootstrap itself; the large-sample rule has its own tests below.
fn opts(resamples: usize, seed: u64) -> StatsOptions {
    StatsOptions {
        confidence: 0.95,
        resamples,
        seed,
        resamples_explicit: true,
    }
}

/// Standard normal draw (Box-Muller); the crate has no rand_distr.
fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>(); // (0, 1], so ln is finite
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

// ---------------------------------------------------------------------------
// Hand-computed values.

#[test]
fn quantile_type7_hand_values() {
    let even = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(quantile(&even, 0.5), 2.5);
    assert_eq!(quantile(&even, 0.25), 1.75); // h = 0.75
    close(quantile(&even, 0.9), 3.7, 1e-12); // h = 2.7
    assert_eq!(quantile(&even, 0.0), 1.0);
    assert_eq!(quantile(&even, 1.0), 4.0);
    assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
    assert_eq!(quantile(&[7.0], 0.3), 7.0);
    // q is clamped; empty input has no quantile.
    assert_eq!(quantile(&even, -1.0), 1.0);
    assert_eq!(quantile(&even, 2.0), 4.0);
    assert!(quantile(&[], 0.5).is_nan());
}

#[test]
fn summary_hand_values() {
    // Σ(x - 5)² = 32, so s = sqrt(32 / 7); deviations from 4.5 have median 0.5.
    let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    let s = summarize(&x, &opts(1000, 1)).unwrap();
    assert_eq!(s.n, 8);
    assert_eq!(s.mean, 5.0);
    assert_eq!(s.median, 4.5);
    close(s.stddev, 2.138_089_935_299_395, 1e-12);
    assert_eq!(s.mad, 0.5);
    close(s.mad_scaled, 0.5 * 1.482_602_218_505_602, 1e-12);
    assert_eq!((s.min, s.max), (2.0, 9.0));
    close(s.p5, 2.7, 1e-12); // h = 0.35
    close(s.p95, 8.3, 1e-12); // h = 6.65
    close(s.cv, 2.138_089_935_299_395 / 5.0, 1e-12);
    // t(0.975, 7) = 2.364624; half width = 2.364624 * s / sqrt(8).
    let t = s.t_interval.unwrap();
    close(t.lower, 5.0 - 1.787_487_918_236_210_4, 1e-9);
    close(t.upper, 5.0 + 1.787_487_918_236_210_4, 1e-9);
    assert!(s.mean_ci.unwrap().contains(5.0));
    assert!(s.median_ci.unwrap().contains(4.5));
    assert_eq!(
        s.warnings,
        vec![
            Warning::TooFewSamples { n: 8, needed: 10 },
            Warning::HighVariation { cv: s.cv }
        ]
    );
}

#[test]
fn summary_of_one_sample() {
    let s = summarize(&[3.5], &StatsOptions::default()).unwrap();
    assert_eq!(
        (s.n, s.mean, s.median, s.min, s.max),
        (1, 3.5, 3.5, 3.5, 3.5)
    );
    assert_eq!((s.stddev, s.mad, s.cv), (0.0, 0.0, 0.0));
    assert_eq!((s.mean_ci, s.median_ci, s.t_interval), (None, None, None));
    assert!(s.outliers.is_empty());
    assert_eq!(
        s.warnings,
        vec![Warning::TooFewSamples { n: 1, needed: 10 }]
    );
}

#[test]
fn summary_of_nothing_is_none() {
    let o = StatsOptions::default();
    assert_eq!(summarize(&[], &o), None);
    assert_eq!(summarize(&[f64::NAN, f64::INFINITY], &o), None);
}

#[test]
fn bootstrap_needs_five_samples_t_interval_needs_two() {
    let s = summarize(&[1.0, 2.0, 3.0, 4.0], &opts(500, 0)).unwrap();
    assert!(s.mean_ci.is_none() && s.median_ci.is_none());
    assert!(s.t_interval.is_some());
    assert!(s.warnings[0].message().contains("omitted"));
    let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0], &opts(500, 0)).unwrap();
    assert!(s.mean_ci.is_some() && s.median_ci.is_some());
}

#[test]
fn invalid_options_drop_intervals_not_summary() {
    let x: Vec<f64> = (1..=20).map(f64::from).collect();
    for bad in [
        StatsOptions {
            confidence: 1.0,
            ..StatsOptions::default()
        },
        StatsOptions {
            confidence: f64::NAN,
            ..StatsOptions::default()
        },
    ] {
        let s = summarize(&x, &bad).unwrap();
        assert_eq!((s.mean_ci, s.median_ci, s.t_interval), (None, None, None));
    }
    let s = summarize(&x, &opts(0, 0)).unwrap();
    assert_eq!((s.mean_ci, s.median_ci), (None, None));
    assert!(s.t_interval.is_some());
}

#[test]
fn constant_samples_have_degenerate_intervals() {
    let x = [0.1; 12];
    let s = summarize(&x, &opts(500, 3)).unwrap();
    assert_eq!((s.mean, s.median, s.mad), (0.1, 0.1, 0.0));
    assert!(s.stddev < 1e-15);
    let point = Interval {
        lower: 0.1,
        upper: 0.1,
    };
    assert_eq!(s.median_ci, Some(point));
    assert_eq!(s.mean_ci, Some(point));
    assert!(s.outliers.is_empty());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn nan_and_infinite_samples_are_ignored_and_reported() {
    let clean = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98, 1.01, 0.99];
    let mut dirty = clean.to_vec();
    dirty.insert(3, f64::NAN);
    dirty.push(f64::INFINITY);
    let o = opts(500, 9);
    let a = summarize(&clean, &o).unwrap();
    let mut b = summarize(&dirty, &o).unwrap();
    assert_eq!(b.warnings[0], Warning::IgnoredNonFinite { count: 2 });
    b.warnings.remove(0);
    assert_eq!(a, b);
}

#[test]
fn tukey_fences_hand_example() {
    // Q1 = 10.75, Q3 = 12.5, IQR = 1.75: mild fences (8.125, 15.125),
    // severe fences (5.5, 17.75).
    let d = [
        10.0, 10.5, 11.0, 11.0, 11.5, 12.0, 12.0, 30.0, 13.0, 17.0, 4.0,
    ];
    let s = summarize(&d, &opts(100, 0)).unwrap();
    let severe = OutlierKind::Severe;
    assert_eq!(
        s.outliers,
        vec![
            Outlier {
                index: 7,
                value: 30.0,
                kind: severe
            },
            Outlier {
                index: 9,
                value: 17.0,
                kind: OutlierKind::Mild
            },
            Outlier {
                index: 10,
                value: 4.0,
                kind: severe
            },
        ]
    );
    assert!(s.warnings.contains(&Warning::SevereOutliers { count: 2 }));
}

#[test]
fn outlier_indices_count_ignored_samples() {
    let mut d = vec![1.0; 10];
    d.insert(0, f64::NAN);
    d.push(50.0);
    let s = summarize(&d, &opts(100, 0)).unwrap();
    assert_eq!(s.outliers.len(), 1);
    assert_eq!(s.outliers[0].index, 11);
}

#[test]
fn slow_first_fires_only_when_first_is_slowest_by_margin() {
    let mut x = vec![2.0, 1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0, 1.0];
    let s = summarize(&x, &opts(100, 0)).unwrap();
    assert!(s.warnings.contains(&Warning::SlowFirst {
        ratio: 2.0,
        after_warmups: 0
    }));
    // Same values, slow one later: no warning.
    x.swap(0, 5);
    let s = summarize(&x, &opts(100, 0)).unwrap();
    assert!(
        !s.warnings
            .iter()
            .any(|w| matches!(w, Warning::SlowFirst { .. }))
    );
    // Slowest but only by 10%: no warning.
    let y = [1.1, 1.0, 1.0, 1.0, 1.0];
    let s = summarize(&y, &opts(100, 0)).unwrap();
    assert!(
        !s.warnings
            .iter()
            .any(|w| matches!(w, Warning::SlowFirst { .. }))
    );
}

#[test]
fn near_timer_resolution_needs_a_resolution() {
    // 0.00196 ..= 0.00204: median 0.002, tiny spread, no outliers.
    let x: Vec<f64> = (0..9).map(|i| 0.001_96 + 1e-5 * f64::from(i)).collect();
    let o = opts(100, 0);
    let plain = summarize(&x, &o).unwrap();
    close(plain.median, 0.002, 1e-15);
    assert_eq!(plain.warnings.len(), 1, "{:?}", plain.warnings);
    let ms_clock = summarize_with_resolution(&x, &o, Some(1e-3)).unwrap();
    assert_eq!(
        ms_clock.warnings,
        vec![
            Warning::TooFewSamples { n: 9, needed: 10 },
            Warning::NearTimerResolution {
                median: plain.median
            }
        ]
    );
    let ns_clock = summarize_with_resolution(&x, &o, Some(1e-9)).unwrap();
    assert_eq!(ns_clock.warnings, plain.warnings);
}

#[test]
fn every_warning_message_has_a_hint() {
    let all = [
        Warning::HighVariation { cv: 0.25 },
        Warning::TooFewSamples { n: 3, needed: 10 },
        Warning::TooFewSamples { n: 7, needed: 10 },
        Warning::SlowFirst {
            ratio: 1.8,
            after_warmups: 0,
        },
        Warning::NearTimerResolution { median: 2e-6 },
        Warning::SevereOutliers { count: 2 },
        Warning::IgnoredNonFinite { count: 1 },
    ];
    for w in &all {
        let m = w.message();
        assert!(m.contains("hint: "), "{m}");
        assert_eq!(w.to_string(), m);
    }
    assert!(all[0].message().contains("25.0%"));
    assert!(all[1].message().contains("raise `runs`"));
}

#[test]
fn same_seed_same_result_other_seed_other_intervals() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let x: Vec<f64> = (0..30).map(|_| 1.0 + 0.1 * std_normal(&mut rng)).collect();
    let a = summarize(&x, &opts(2000, 7)).unwrap();
    let b = summarize(&x, &opts(2000, 7)).unwrap();
    let c = summarize(&x, &opts(2000, 8)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.mean_ci, c.mean_ci);
    // The deterministic parts do not depend on the seed.
    assert_eq!(
        (a.mean, a.median, a.t_interval),
        (c.mean, c.median, c.t_interval)
    );
}

#[test]
fn summary_round_trips_through_json() {
    let d = [
        10.0,
        10.5,
        11.0,
        11.0,
        11.5,
        12.0,
        12.0,
        30.0,
        13.0,
        17.0,
        f64::NAN,
    ];
    let s = summarize(&d, &opts(300, 2)).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains(r#""kind":"severe_outliers""#), "{json}");
    let back: Summary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
}

#[test]
fn interval_helpers() {
    let i = Interval {
        lower: 1.0,
        upper: 3.0,
    };
    assert!(i.contains(1.0) && i.contains(3.0) && !i.contains(3.5));
    assert_eq!(i.width(), 2.0);
}

#[test]
fn ratio_of_medians_basics() {
    let base = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0];
    let cand: Vec<f64> = base.iter().map(|x| 2.0 * x).collect();
    let r = ratio_of_medians(&base, &cand, &opts(1000, 0)).unwrap();
    assert_eq!(r.ratio, 2.0);
    assert!(r.ci.unwrap().contains(2.0));
    // Too few samples for an interval, but the point estimate stands.
    let r = ratio_of_medians(&[1.0, 2.0], &[2.0, 4.0], &opts(1000, 0)).unwrap();
    assert_eq!((r.ratio, r.ci), (2.0, None));
    // Non-positive medians have no meaningful ratio.
    assert_eq!(ratio_of_medians(&[0.0; 6], &cand, &opts(100, 0)), None);
    assert_eq!(ratio_of_medians(&[], &cand, &opts(100, 0)), None);
    // A base with zeros can resample to a zero median: no interval rather than ∞.
    let zeros = [0.0, 0.0, 1.0, 1.0, 1.0];
    let r = ratio_of_medians(&zeros, &cand, &opts(2000, 0)).unwrap();
    assert_eq!(r.ci, None);
}

#[test]
fn geometric_mean_values() {
    assert_eq!(geometric_mean(&[1.0, 4.0]), Some(2.0));
    close(geometric_mean(&[2.0, 8.0, 4.0]).unwrap(), 4.0, 1e-12);
    close(
        geometric_mean(&[1e300, 1e300, 1e-300]).unwrap(),
        1e100,
        1e88,
    );
    assert_eq!(geometric_mean(&[]), None);
    assert_eq!(geometric_mean(&[1.0, 0.0]), None);
    assert_eq!(geometric_mean(&[1.0, -2.0]), None);
    assert_eq!(geometric_mean(&[1.0, f64::NAN]), None);
}

#[test]
fn mann_whitney_textbook_example() {
    // SciPy's documented example (after Conover): U = 17, exact two-sided p = 14/126
    // (7 of the 126 splits have U >= 17), asymptotic p = 0.11134688653314041.
    let males = [19.0, 22.0, 16.0, 29.0, 24.0];
    let females = [20.0, 11.0, 17.0, 12.0];
    let r = mann_whitney_u(&males, &females).unwrap();
    assert_eq!(r.u, 17.0);
    assert!(r.exact);
    close(r.p_value, 1.0 / 9.0, 1e-14);
    close(r.prob_a_greater, 17.0 / 20.0, 1e-15);
    close(
        normal_approx_p(17.0, 5.0, 4.0, 0.0),
        0.111_346_886_533_140_4,
        1e-12,
    );
    // Swapping the groups mirrors U and keeps p.
    let s = mann_whitney_u(&females, &males).unwrap();
    assert_eq!(s.u, 3.0);
    close(s.p_value, r.p_value, 1e-15);
}

#[test]
fn mann_whitney_with_ties_hand_example() {
    // Pooled ranks: 1(a) 3(a) 3(a) 3(b) 5(a) 6(b) 7(b); R_a = 12, U_a = 12 - 10 = 2.
    // One tie group of 3: Σ(t³ - t) = 24; σ² = 12/12 (8 - 24/42); z = 3.5 / σ.
    let r = mann_whitney_u(&[1.0, 2.0, 2.0, 3.0], &[2.0, 4.0, 5.0]).unwrap();
    assert_eq!(r.u, 2.0);
    assert!(!r.exact);
    close(r.p_value, 0.199_089_852_148_204_57, 1e-12);
}

#[test]
fn mann_whitney_degenerate_inputs() {
    assert_eq!(mann_whitney_u(&[], &[1.0]), None);
    assert_eq!(mann_whitney_u(&[f64::NAN], &[1.0]), None);
    let tied = mann_whitney_u(&[1.0, 1.0, 1.0], &[1.0, 1.0]).unwrap();
    assert_eq!((tied.u, tied.p_value), (3.0, 1.0));
    // -0.0 and 0.0 are the same value, hence tied.
    let zeros = mann_whitney_u(&[-0.0], &[0.0]).unwrap();
    assert_eq!((zeros.u, zeros.exact), (0.5, false));
    // Complete separation at n = 5 + 5: exact p = 2 / C(10, 5).
    let sep = mann_whitney_u(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
    assert_eq!(sep.u, 0.0);
    close(sep.p_value, 2.0 / 252.0, 1e-15);
}

#[test]
fn exact_u_distribution_matches_enumeration() {
    // Count, for every way of choosing which m of the m + n ranks belong to group
    // a, the U it yields; compare with the recurrence.
    for m in 1..=6 {
        for n in 1..=6 {
            let total = m + n;
            let mut counts = vec![0.0; m * n + 1];
            let mut splits = 0.0;
            for mask in 0u32..(1 << total) {
                if mask.count_ones() as usize != m {
                    continue;
                }
                // U = Σ over a-members of the number of b-members below them.
                let mut u = 0;
                let mut b_below = 0;
                for bit in 0..total {
                    if mask & (1 << bit) != 0 {
                        u += b_below;
                    } else {
                        b_below += 1;
                    }
                }
                counts[u] += 1.0;
                splits += 1.0;
            }
            let pmf = exact_u_distribution(m, n);
            assert_eq!(pmf.len(), counts.len());
            for (p, c) in pmf.iter().zip(&counts) {
                close(*p, c / splits, 1e-14);
            }
        }
    }
}

#[test]
fn exact_and_normal_agree_for_moderate_n() {
    // At n = 30 + 30 without ties the approximation is good to ~1e-3.
    let a: Vec<f64> = (0..30).map(|i| f64::from(i) * 2.0 + 0.5).collect();
    let b: Vec<f64> = (0..30).map(|i| f64::from(i) * 2.1 + 0.25).collect();
    let r = mann_whitney_u(&a, &b).unwrap();
    assert!(r.exact);
    let approx = normal_approx_p(r.u, 30.0, 30.0, 0.0);
    close(r.p_value, approx, 2e-3);
}

#[test]
fn benjamini_hochberg_known_vectors() {
    let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
    for (got, want) in q.iter().zip([0.02, 0.04, 0.04, 0.02]) {
        close(*got, want, 1e-15);
    }
    // Step-up: 0.03 (rank 2) would be 0.06 but inherits 0.04 · 4/3 from rank 3.
    let q = benjamini_hochberg(&[0.04, 0.001, 0.9, 0.03]);
    for (got, want) in q
        .iter()
        .zip([0.04 * 4.0 / 3.0, 0.004, 0.9, 0.04 * 4.0 / 3.0])
    {
        close(*got, want, 1e-15);
    }
    // Capped at 1.
    assert_eq!(benjamini_hochberg(&[0.9, 0.95]), vec![0.95, 0.95]);
    assert_eq!(benjamini_hochberg(&[0.6, 0.8, 0.9]), vec![0.9, 0.9, 0.9]);
    assert!(benjamini_hochberg(&[]).is_empty());
    // NaN stays NaN and does not count towards m.
    let q = benjamini_hochberg(&[0.02, f64::NAN, 0.04]);
    assert!(q[1].is_nan());
    assert_eq!((q[0], q[2]), (0.04, 0.04));
}

#[test]
fn benjamini_hochberg_never_rounds_below_p() {
    // Found by proptest: 0.9596267582760363 · 20 / 20 rounds below the input,
    // which would break q >= p; computing p · (m / rank) cannot.
    let mut p = vec![0.0; 20];
    p[7] = 0.959_626_758_276_036_3;
    let q = benjamini_hochberg(&p);
    assert!(q[7] >= p[7]);
}

// ---------------------------------------------------------------------------
// Invariants.

fn samples_strategy() -> impl Strategy<Value = Vec<f64>> {
    // Mix of continuous values and a few repeated ones so ties occur.
    prop::collection::vec(
        prop_oneof![4 => 1e-3..1e3_f64, 1 => prop::sample::select(vec![1.0, 2.0, 5.0])],
        1..40,
    )
}

/// Strips the parts of a summary that legitimately depend on invocation order.
fn order_free(mut s: Summary) -> Summary {
    s.warnings
        .retain(|w| !matches!(w, Warning::SlowFirst { .. }));
    for o in &mut s.outliers {
        o.index = 0;
    }
    s.outliers.sort_by(|a, b| a.value.total_cmp(&b.value));
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn summary_order_invariants(x in samples_strategy(), seed in any::<u64>()) {
        let s = summarize(&x, &opts(200, seed)).unwrap();
        prop_assert!(s.min <= s.p5 && s.p5 <= s.median && s.median <= s.p95 && s.p95 <= s.max);
        prop_assert!(s.min <= s.mean && s.mean <= s.max);
        prop_assert!(s.stddev >= 0.0 && s.mad >= 0.0 && s.cv >= 0.0);
        for ci in [s.mean_ci, s.median_ci].into_iter().flatten() {
            prop_assert!(ci.lower <= ci.upper);
            prop_assert!(s.min <= ci.lower && ci.upper <= s.max);
        }
        if let Some(t) = s.t_interval {
            prop_assert!(t.lower <= s.mean && s.mean <= t.upper);
        }
        for o in &s.outliers {
            prop_assert_eq!(x[o.index], o.value);
        }
    }

    #[test]
    fn summary_is_order_independent(
        (x, shuffled) in samples_strategy().prop_flat_map(|x| (Just(x.clone()), Just(x).prop_shuffle())),
        seed in any::<u64>(),
    ) {
        let o = opts(200, seed);
        let a = order_free(summarize(&x, &o).unwrap());
        let b = order_free(summarize(&shuffled, &o).unwrap());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn ratio_is_order_independent_and_ordered(
        (base, base_shuffled) in samples_strategy().prop_flat_map(|x| (Just(x.clone()), Just(x).prop_shuffle())),
        cand in samples_strategy(),
        seed in any::<u64>(),
    ) {
        let o = opts(200, seed);
        let a = ratio_of_medians(&base, &cand, &o).unwrap();
        let b = ratio_of_medians(&base_shuffled, &cand, &o).unwrap();
        prop_assert_eq!(a, b);
        if let Some(ci) = a.ci {
            prop_assert!(ci.lower <= ci.upper && ci.lower > 0.0);
        }
    }

    #[test]
    fn mann_whitney_is_symmetric_and_order_independent(
        (a, a_shuffled) in samples_strategy().prop_flat_map(|x| (Just(x.clone()), Just(x).prop_shuffle())),
        b in samples_strategy(),
    ) {
        let ab = mann_whitney_u(&a, &b).unwrap();
        let ba = mann_whitney_u(&b, &a).unwrap();
        prop_assert_eq!(ab.u + ba.u, (a.len() * b.len()) as f64);
        prop_assert!((ab.p_value - ba.p_value).abs() < 1e-12);
        prop_assert!(ab.p_value > 0.0 && ab.p_value <= 1.0);
        prop_assert_eq!(mann_whitney_u(&a_shuffled, &b).unwrap(), ab);
    }

    #[test]
    fn bh_q_at_least_p_capped_and_monotone(p in prop::collection::vec(0.0..=1.0_f64, 0..60)) {
        let q = benjamini_hochberg(&p);
        prop_assert_eq!(q.len(), p.len());
        for i in 0..p.len() {
            prop_assert!(q[i] >= p[i] && q[i] <= 1.0);
            for j in 0..p.len() {
                if p[i] <= p[j] {
                    prop_assert!(q[i] <= q[j]);
                }
            }
        }
    }

    #[test]
    fn resampler_matches_an_explicit_resample(x in samples_strategy(), seed in any::<u64>()) {
        let mut sorted = x;
        sorted.sort_by(f64::total_cmp);
        let mut resampler = Resampler::new(&sorted);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..5 {
            let (mean, median) = resampler.draw(&mut rng);
            // Expand the counts back into the resample they stand for.
            let expanded: Vec<f64> = sorted
                .iter()
                .zip(&resampler.counts)
                .flat_map(|(&v, &c)| std::iter::repeat_n(v, c as usize))
                .collect();
            prop_assert_eq!(expanded.len(), sorted.len());
            prop_assert_eq!(median, quantile(&expanded, 0.5));
            let naive = expanded.iter().sum::<f64>() / expanded.len() as f64;
            prop_assert!((mean - naive).abs() <= 1e-12 * naive.abs().max(1.0));
        }
    }

    #[test]
    fn quantile_is_monotone_in_q(x in samples_strategy(), q1 in 0.0..=1.0_f64, q2 in 0.0..=1.0_f64) {
        let mut s = x;
        s.sort_by(f64::total_cmp);
        let (lo, hi) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
        prop_assert!(quantile(&s, lo) <= quantile(&s, hi));
    }
}

// ---------------------------------------------------------------------------
// Does the uncertainty mean what it claims? Simulations with fixed seeds, sized to
// run in about a second in debug builds.

const DATASETS: usize = 400;
const N: usize = 20;
/// Fewer resamples than the default keeps these tests fast in debug builds; the
/// Monte Carlo error this adds to each endpoint is small next to sampling error.
const COVERAGE_RESAMPLES: usize = 1000;

/// Fraction of datasets whose median CI covers `true_median` and whose t-interval
/// covers `true_mean`.
fn coverage(draw: impl Fn(&mut ChaCha8Rng) -> f64, true_median: f64, true_mean: f64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let (mut median_hits, mut mean_hits) = (0, 0);
    let mut x = vec![0.0; N];
    for dataset in 0..DATASETS {
        for v in x.iter_mut() {
            *v = draw(&mut rng);
        }
        let s = summarize(&x, &opts(COVERAGE_RESAMPLES, dataset as u64)).unwrap();
        median_hits += usize::from(s.median_ci.unwrap().contains(true_median));
        mean_hits += usize::from(s.t_interval.unwrap().contains(true_mean));
    }
    (
        median_hits as f64 / DATASETS as f64,
        mean_hits as f64 / DATASETS as f64,
    )
}

#[test]
fn coverage_normal() {
    let (median, mean) = coverage(|rng| 10.0 + 2.0 * std_normal(rng), 10.0, 10.0);
    eprintln!("normal: median CI coverage {median}, t-interval coverage {mean}");
    assert!(
        (0.90..=0.98).contains(&median),
        "median CI coverage {median}"
    );
    assert!((0.90..=0.98).contains(&mean), "t-interval coverage {mean}");
}

#[test]
fn coverage_lognormal() {
    // exp(N(0, 0.5²)): median 1, mean exp(0.125), right-skewed like timings.
    let sigma: f64 = 0.5;
    let (median, mean) = coverage(
        |rng| (sigma * std_normal(rng)).exp(),
        1.0,
        (sigma * sigma / 2.0).exp(),
    );
    eprintln!("lognormal: median CI coverage {median}, t-interval coverage {mean}");
    assert!(
        (0.90..=0.98).contains(&median),
        "median CI coverage {median}"
    );
    assert!((0.90..=0.98).contains(&mean), "t-interval coverage {mean}");
}

#[test]
fn power_ratio_ci_detects_ten_percent_shift() {
    // 10% slower candidate, 2% noise, n = 10: the CI should sit clearly above 1.05.
    let mut detected = 0;
    for seed in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let base: Vec<f64> = (0..10).map(|_| 1.0 + 0.02 * std_normal(&mut rng)).collect();
        let cand: Vec<f64> = (0..10)
            .map(|_| 1.1 * (1.0 + 0.02 * std_normal(&mut rng)))
            .collect();
        let r = ratio_of_medians(&base, &cand, &opts(1000, seed)).unwrap();
        detected += usize::from(r.ci.unwrap().lower > 1.05);
    }
    eprintln!("10% shift detected (CI above 1.05) in {detected} of 200");
    assert!(detected >= 190, "detected in only {detected} of 200");
}

#[test]
fn no_shift_false_alarms_stay_near_alpha() {
    // 200 runs of 10 metrics, no real change: count runs where BH flags anything
    // at q < 0.05. Under the complete null BH bounds that probability by 5%.
    let metrics = 10;
    let mut alarmed_runs = 0;
    let mut raw_rejections = 0;
    for seed in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p: Vec<f64> = (0..metrics)
            .map(|_| {
                let a: Vec<f64> = (0..10)
                    .map(|_| (0.1 * std_normal(&mut rng)).exp())
                    .collect();
                let b: Vec<f64> = (0..10)
                    .map(|_| (0.1 * std_normal(&mut rng)).exp())
                    .collect();
                mann_whitney_u(&a, &b).unwrap().p_value
            })
            .collect();
        raw_rejections += p.iter().filter(|&&p| p < 0.05).count();
        alarmed_runs += usize::from(benjamini_hochberg(&p).iter().any(|&q| q < 0.05));
    }
    let run_rate = alarmed_runs as f64 / 200.0;
    let test_rate = raw_rejections as f64 / (200 * metrics) as f64;
    eprintln!("no shift: BH run false-alarm rate {run_rate}, per-test rate {test_rate}");
    assert!(run_rate <= 0.08, "BH false-alarm rate {run_rate}");
    assert!(
        test_rate <= 0.065,
        "per-test false-positive rate {test_rate}"
    );
}

// ---------------------------------------------------------------------------
// The large-sample rule.

/// `n` lognormal draws (median `median`, log-sd 0.3): skewed like timings.
fn lognormal(n: usize, median: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| median * (0.3 * std_normal(&mut rng)).exp())
        .collect()
}

#[test]
fn resamples_adapt_above_the_budget_and_an_explicit_count_wins() {
    let default = StatsOptions::default();
    assert_eq!(resamples_for(10, &default), 10_000);
    assert_eq!(
        resamples_for(100, &default),
        10_000,
        "small cells keep the count"
    );
    assert_eq!(resamples_for(101, &default), 9_900);
    assert_eq!(resamples_for(1_000, &default), 1_000);
    assert_eq!(resamples_for(5_000, &default), MIN_RESAMPLES);
    assert_eq!(resamples_for(1_000_000, &default), MIN_RESAMPLES);
    let few = StatsOptions {
        resamples: 100,
        ..default
    };
    assert_eq!(resamples_for(5_000, &few), 100, "never more than recorded");
    let explicit = StatsOptions {
        resamples_explicit: true,
        ..default
    };
    assert_eq!(resamples_for(1_000_000, &explicit), 10_000);
    assert!(!uses_order_statistics(ORDER_STATISTICS_ABOVE, &default));
    assert!(uses_order_statistics(ORDER_STATISTICS_ABOVE + 1, &default));
    assert!(!uses_order_statistics(1_000_000, &explicit));
}

#[test]
fn median_rank_interval_hand_values() {
    // n = 5: even (min, max) covers only 1 - 2/32 = 93.75% < 95%.
    assert_eq!(median_rank_interval(5, 0.95), None);
    let (l, u, c) = median_rank_interval(6, 0.95).unwrap();
    assert_eq!((l, u), (1, 6));
    close(c, 1.0 - 2.0 / 64.0, 1e-12);
    // n = 10: P(B <= 1) = 11/1024 fits, P(B <= 2) = 56/1024 does not.
    let (l, u, c) = median_rank_interval(10, 0.95).unwrap();
    assert_eq!((l, u), (2, 9));
    close(c, 1.0 - 22.0 / 1024.0, 1e-12);
    assert_eq!(median_rank_interval(10, 1.0), None);
}

#[test]
fn median_rank_interval_is_the_exact_binomial_one_at_large_n() {
    for n in [1_001, 1_500, 5_000, 100_000] {
        // The binomial CDF summed term by term in log space.
        let ln_half_n = n as f64 * 0.5f64.ln();
        let mut ln_pmf = ln_half_n;
        let mut cdf = vec![ln_pmf.exp()];
        for j in 1..n / 2 {
            ln_pmf += ((n - j + 1) as f64 / j as f64).ln();
            cdf.push(cdf[j - 1] + ln_pmf.exp());
        }
        let k = (1..n / 2)
            .filter(|&k| 2.0 * cdf[k - 1] <= 0.05)
            .max()
            .unwrap();
        let (l, u, c) = median_rank_interval(n, 0.95).unwrap();
        assert_eq!((l, u), (k, n + 1 - k), "n = {n}");
        close(c, 1.0 - 2.0 * cdf[k - 1], 1e-9);
        assert!(c >= 0.95);
    }
}

#[test]
fn large_samples_get_order_statistic_medians_and_t_interval_means() {
    let data = lognormal(ORDER_STATISTICS_ABOVE + 1, 1.0, 3);
    let s = summarize(&data, &StatsOptions::default()).unwrap();
    let mut sorted = data.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(s.median_ci, median_order_interval(&sorted, 0.95));
    let mean_ci = s.mean_ci.unwrap();
    assert!(mean_ci.contains(s.mean), "{mean_ci:?}");
    assert_eq!(s.mean_ci, s.t_interval);
    // ... and about the bootstrap's, which it replaces: endpoints within a tenth of the
    // half-width (the bootstrap's own Monte Carlo error at B = 1,000 is 4%).
    let boot = summarize(&data, &opts(1_000, 0)).unwrap().mean_ci.unwrap();
    let half = (mean_ci.upper - mean_ci.lower) / 2.0;
    assert!(
        (boot.lower - mean_ci.lower).abs() < 0.1 * half,
        "{boot:?} {mean_ci:?}"
    );
    assert!(
        (boot.upper - mean_ci.upper).abs() < 0.1 * half,
        "{boot:?} {mean_ci:?}"
    );
    // At the boundary the bootstrap still gives the median's interval: the same as asked
    // for explicitly with the adapted count.
    let at = &data[..ORDER_STATISTICS_ABOVE];
    let explicit = StatsOptions {
        resamples: resamples_for(at.len(), &StatsOptions::default()),
        resamples_explicit: true,
        ..StatsOptions::default()
    };
    assert_eq!(
        summarize(at, &StatsOptions::default()),
        summarize(at, &explicit)
    );
    // An explicit count bootstraps the median at any n.
    let boot = summarize(&data, &opts(300, 0)).unwrap().median_ci.unwrap();
    assert_ne!(Some(boot), s.median_ci);
}

#[test]
fn large_samples_are_deterministic_and_order_free() {
    let data = lognormal(5_000, 2.0, 9);
    let mut shuffled = data.clone();
    shuffled.reverse();
    let opts = StatsOptions {
        seed: 17,
        ..StatsOptions::default()
    };
    let a = summarize(&data, &opts).unwrap();
    assert_eq!(Some(&a), summarize(&data, &opts).as_ref());
    let b = summarize(&shuffled, &opts).unwrap();
    assert_eq!((a.median_ci, a.mean_ci), (b.median_ci, b.mean_ci));
    let other = lognormal(3_000, 2.4, 10);
    assert_eq!(
        ratio_of_medians(&data, &other, &opts),
        ratio_of_medians(&shuffled, &other, &opts)
    );
}

#[test]
fn large_sample_ratio_interval_covers_at_about_the_nominal_rate() {
    // Two lognormal samples whose true medians are 1 and 1.1: the log-scale interval from
    // order statistics should cover 1.1 about 95% of the time.
    let reps = 200;
    let covered = (0..reps)
        .filter(|&r| {
            let base = lognormal(1_200, 1.0, 2 * r);
            let candidate = lognormal(1_500, 1.1, 2 * r + 1);
            let ratio = ratio_of_medians(&base, &candidate, &StatsOptions::default()).unwrap();
            ratio.ci.unwrap().contains(1.1)
        })
        .count();
    let rate = covered as f64 / reps as f64;
    assert!((0.9..=0.99).contains(&rate), "coverage {rate}");
}

#[test]
fn bootstrap_endpoint_monte_carlo_error_matches_the_stated_one() {
    // The README states the Monte Carlo standard deviation of a 95% percentile endpoint as
    // sqrt(0.025 x 0.975 / B) / phi(1.96) ~ 2.67 / sqrt(B) standard errors. Check it on the
    // mean at n = 2,000, where the rule gives B = 500: the endpoint's spread across seeds.
    let n = 2_000;
    let data = lognormal(n, 1.0, 5);
    let b = resamples_for(n, &StatsOptions::default());
    assert_eq!(b, 500);
    let mut sorted = data.clone();
    sorted.sort_by(f64::total_cmp);
    let lowers: Vec<f64> = (0..40)
        .map(|seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (mut means, _) = bootstrap_mean_median(&sorted, b, &mut rng);
            percentile_interval(&mut means, 0.95).lower
        })
        .collect();
    let mean = lowers.iter().sum::<f64>() / lowers.len() as f64;
    let sd =
        (lowers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (lowers.len() - 1) as f64).sqrt();
    let s = summarize(&data, &StatsOptions::default()).unwrap();
    let se = s.stddev / (n as f64).sqrt();
    let stated = 2.67 / (b as f64).sqrt() * se;
    assert!(
        (0.6 * stated..=1.5 * stated).contains(&sd),
        "Monte Carlo sd {sd:e}, stated {stated:e}"
    );
}

#[test]
fn a_summary_lists_at_most_the_bound_of_outliers_and_counts_them_all() {
    // 200 values near 1.0, then 60 far ones: every far one is an outlier, the farthest listed.
    let mut values: Vec<f64> = (0..200).map(|i| 1.0 + (i % 10) as f64 * 0.01).collect();
    values.extend((0..60).map(|i| 100.0 + i as f64));
    let s = summarize(&values, &StatsOptions::default()).unwrap();
    let counts = s.outlier_counts();
    assert_eq!(counts.all, 60);
    assert_eq!(s.outliers.len(), MAX_LISTED_OUTLIERS);
    assert!(s.outliers.windows(2).all(|w| w[0].index < w[1].index));
    // The farthest from the median: the last 20 values.
    assert!(
        s.outliers.iter().all(|o| o.index >= 140),
        "{:?}",
        s.outliers
    );
    // A short list is complete, and says nothing more.
    let few = summarize(
        &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 50.0],
        &StatsOptions::default(),
    )
    .unwrap();
    assert_eq!((few.outliers.len(), few.outliers_total), (1, None));
    assert_eq!(few.outlier_counts().all, 1);
}
