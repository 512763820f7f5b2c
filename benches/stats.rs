//! Cost of `summarize` with the default 10,000 bootstrap resamples, at a large and a
//! typical cell size. Run: `cargo bench --bench stats`.

use benchbox::stats::{StatsOptions, summarize};
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Right-skewed, timing-like samples: 1 + |noise|^2 around a 1 s baseline.
fn samples(n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    (0..n)
        .map(|_| {
            let u: f64 = rng.r#gen();
            1.0 + 0.1 * u * u
        })
        .collect()
}

fn bench_summarize(c: &mut Criterion) {
    let opts = StatsOptions {
        resamples: 10_000,
        ..StatsOptions::default()
    };
    let mut group = c.benchmark_group("summarize");
    // Each iteration of the large case takes a noticeable fraction of a second.
    group.sample_size(10);
    for n in [10_usize, 10_000] {
        let x = samples(n);
        group.bench_function(format!("n={n}/resamples=10000"), |b| {
            b.iter(|| summarize(black_box(&x), black_box(&opts)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_summarize);
criterion_main!(benches);
