//! Cost of change-point detection at the size `history` must handle in under 2 s: 1,000 runs
//! × 20 cells × 5 metrics, i.e. 100 series of 1,000 run medians, each with a few steps.
//! Run: `cargo bench --bench history`.

use benchbox::history::changepoint::{Options, detect};
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 100 series of 1,000 points (seeded): a level of 1 ms to 1 s in ns, noise CoV 1-5 %, and
/// 0-5 steps of 5-30 % up or down at random positions.
fn series() -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    (0..100)
        .map(|_| {
            let level = 10f64.powf(rng.gen_range(6.0..9.0));
            let cov = rng.gen_range(0.01..0.05);
            let steps: Vec<(usize, f64)> = (0..rng.gen_range(0..=5))
                .map(|_| {
                    let size = rng.gen_range(0.05..0.30);
                    (
                        rng.gen_range(1..1000),
                        if rng.r#gen::<bool>() { size } else { -size },
                    )
                })
                .collect();
            (0..1000)
                .map(|i| {
                    let factor: f64 = steps
                        .iter()
                        .filter(|&&(at, _)| i >= at)
                        .map(|&(_, step)| 1.0 + step)
                        .product();
                    // Box-Muller: a standard normal draw.
                    let u: f64 = 1.0 - rng.r#gen::<f64>();
                    let v: f64 = rng.r#gen();
                    let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                    level * factor * (1.0 + cov * z)
                })
                .collect()
        })
        .collect()
}

fn bench_detect(c: &mut Criterion) {
    let all = series();
    let opts = Options::default();
    let mut group = c.benchmark_group("changepoint");
    group.sample_size(20);
    group.bench_function("100 series x 1000 points", |b| {
        b.iter(|| {
            all.iter()
                .map(|s| detect(black_box(s), &opts).len())
                .sum::<usize>()
        })
    });
    group.bench_function("1 series x 1000 points", |b| {
        b.iter(|| detect(black_box(&all[0]), &opts).len())
    });
    group.finish();
}

criterion_group!(benches, bench_detect);
criterion_main!(benches);
