//! The validation figures of the README's "Adaptive repetitions": seeded simulations through
//! the real `compare`. The default tests use modest trial counts (debug builds are slow); the
//! ignored ones are the big runs the README quotes:
//! `cargo test --release --lib power::tests -- --ignored --nocapture`.

use super::*;

/// `runs = "auto"` as the validation runs it: at most 50 invocations a side, stopping at a
/// ±1.25% interval of the median (the README quotes the sweep of ci-width behind the choice).
fn auto_rule() -> Rule {
    rule(0.0125)
}

fn rule(ci_width: f64) -> Rule {
    Rule {
        min_runs: 10,
        max_runs: 50,
        ci_width,
    }
}

fn scenario(cv: f64, effect: f64, sampling: Sampling, trials: u32, seed: u64) -> Scenario {
    Scenario {
        noise: Noise::Normal { cv },
        effect,
        threshold: 0.05,
        sampling,
        trials,
        seed,
        resamples: 2_000,
    }
}

fn power_of(rule: Rule, trials: u32) -> Tally {
    simulate(&scenario(0.05, 0.10, Sampling::Adaptive(rule), trials, 11))
}

fn aa_of_auto(trials: u32, threshold: f64) -> Tally {
    simulate(&Scenario {
        threshold,
        ..scenario(0.05, 0.0, Sampling::Adaptive(auto_rule()), trials, 23)
    })
}

/// The target: >= 95% within 50 invocations a side. The README's figure is 2,000 trials in
/// release (`validation_figures`); these 200, in a debug build, must not fall below 93% (at a
/// true 96.8%, a 200-trial estimate falls there about once in a thousand seeds; this seed is
/// fixed).
#[test]
fn adaptive_runs_find_a_ten_percent_shift_at_five_percent_noise() {
    let t = power_of(auto_rule(), 200);
    eprintln!("power {t:?}");
    assert!(t.regression_rate() >= 0.93, "{t:?}");
    assert!(t.mean_n <= 50.0, "{t:?}");
}

#[test]
fn optional_stopping_keeps_false_regressions_rare() {
    let t = aa_of_auto(150, 0.05);
    eprintln!("A/A at 5%: {t:?}");
    assert!(t.regression_rate() <= 0.05, "{t:?}");
    // With no threshold at all the gate is the bare test: still within its 5% level.
    let t = aa_of_auto(150, 0.0);
    eprintln!("A/A at 0: {t:?}");
    assert!(t.regression_rate() <= 0.05, "{t:?}");
}

#[test]
fn the_ratio_interval_covers_the_true_ratio_at_n_10() {
    let c = coverage(&Noise::Normal { cv: 0.05 }, 0.10, 10, 300, 31, 2_000);
    eprintln!("coverage at n = 10: {c}");
    assert!(c >= 0.93, "{c}");
}

#[test]
fn fixed_ten_runs_miss_a_ten_percent_shift_at_five_percent_noise() {
    // The measured weakness that motivated `runs = "auto"`: far below 95%.
    let t = simulate(&scenario(0.05, 0.10, Sampling::Fixed(10), 100, 5));
    eprintln!("fixed 10: {t:?}");
    assert!(t.regression_rate() < 0.8, "{t:?}");
}

#[test]
fn runs_needed_and_the_detectable_effect_move_with_the_noise() {
    let quiet = scenario(0.01, 0.10, Sampling::Fixed(10), 40, 3);
    let noisy = scenario(0.05, 0.10, Sampling::Fixed(10), 40, 3);
    let n_quiet = runs_needed(&quiet, 0.95, 60).unwrap();
    let n_noisy = runs_needed(&noisy, 0.95, 60).unwrap();
    assert!(n_quiet < n_noisy, "{n_quiet} vs {n_noisy}");
    assert!(n_quiet <= 10, "{n_quiet}");
    let mde_quiet = min_detectable_effect(&quiet, 10, 0.95).unwrap();
    let mde_noisy = min_detectable_effect(&noisy, 10, 0.95).unwrap();
    assert!(
        mde_quiet > 0.05 && mde_quiet < mde_noisy,
        "{mde_quiet} {mde_noisy}"
    );
    // An effect no bigger than the threshold is never found: the interval must clear it.
    let at_threshold = Scenario {
        effect: 0.05,
        ..noisy.clone()
    };
    assert_eq!(runs_needed(&at_threshold, 0.95, 30), None);
}

#[test]
fn empirical_noise_is_relative_to_the_median() {
    let Some(Noise::Empirical(v)) = Noise::of(&[2.0, 4.0, f64::NAN, 3.0, 0.0]) else {
        panic!("two or more positive values make a noise");
    };
    assert_eq!(v, [2.0 / 3.0, 1.0, 4.0 / 3.0]);
    assert_eq!(Noise::of(&[1.0]), None);
}

#[test]
#[ignore = "the README's figures: run in release"]
fn validation_figures() {
    for ci_width in [0.02, 0.015, 0.0125, 0.01] {
        let t = power_of(rule(ci_width), 2_000);
        let quiet = simulate(&scenario(
            0.01,
            0.10,
            Sampling::Adaptive(rule(ci_width)),
            500,
            11,
        ));
        println!(
            "power, 10% shift, 5% noise, auto (min 10, max 50, ci-width {:.2}%): {:.1}% ({} of {}), mean n {:.1}; at 1% noise: {:.1}%, mean n {:.1}",
            ci_width * 100.0,
            100.0 * t.regression_rate(),
            t.regressions,
            t.trials,
            t.mean_n,
            100.0 * quiet.regression_rate(),
            quiet.mean_n
        );
    }
    for threshold in [0.05, 0.0] {
        let t = aa_of_auto(2_000, threshold);
        println!(
            "A/A under optional stopping, threshold {}%: {:.2}% false regressions ({} of {}), mean n {:.1}",
            threshold * 100.0,
            100.0 * t.regression_rate(),
            t.regressions,
            t.trials,
            t.mean_n
        );
    }
    let c = coverage(&Noise::Normal { cv: 0.05 }, 0.10, 10, 2_000, 31, 10_000);
    println!(
        "coverage of the 95% ratio interval at n = 10: {:.1}%",
        100.0 * c
    );
    for n in [10, 20, 30, 40, 50] {
        let t = simulate(&scenario(0.05, 0.10, Sampling::Fixed(n), 2_000, 5));
        println!(
            "fixed n = {n}, 10% shift, 5% noise: {:.1}%",
            100.0 * t.regression_rate()
        );
    }
}
