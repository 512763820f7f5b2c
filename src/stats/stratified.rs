//! The bootstrap stratified by host, for runs merged from shards on several machines: each
//! resample draws every host's invocations from that host alone (as many as it measured),
//! so the machine is a block and the interval does not mistake the mix of machines for
//! noise. With one stratum it is, draw for draw, the plain bootstrap of
//! [`super::ratio_of_medians`] and of the summaries' median interval. Above the large-cell
//! rule ([`uses_order_statistics`]) both give way to the plain closed-form intervals over the
//! pooled invocations: conservative, and free of resampling.

use rand::SeedableRng;
use rand::distributions::{Distribution, Uniform};
use rand_chacha::ChaCha8Rng;

use super::{
    Interval, Ratio, Resampler, StatsOptions, bootstrap_allowed, finite_sorted, index_sampler,
    percentile_interval, quantile, ratio_of_medians, resamples_for, uses_order_statistics,
};

/// One side's samples, as strata (one per host; any order within a stratum).
struct Strata {
    /// Every finite sample, ascending.
    sorted: Vec<f64>,
    /// Per stratum: its samples' positions in `sorted`, and the sampler of a position.
    members: Vec<(Vec<u32>, Uniform<u32>)>,
}

impl Strata {
    fn new(strata: &[Vec<f64>]) -> Strata {
        let mut tagged: Vec<(f64, usize)> = strata
            .iter()
            .enumerate()
            .flat_map(|(h, xs)| xs.iter().filter(|x| x.is_finite()).map(move |&x| (x, h)))
            .collect();
        // Stable, so one stratum keeps exactly `finite_sorted`'s order.
        tagged.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); strata.len()];
        for (position, &(_, h)) in tagged.iter().enumerate() {
            members[h].push(position as u32);
        }
        Strata {
            sorted: tagged.iter().map(|&(x, _)| x).collect(),
            members: members
                .into_iter()
                .filter(|m| !m.is_empty())
                .map(|m| {
                    let pick = index_sampler(m.len());
                    (m, pick)
                })
                .collect(),
        }
    }

    /// The smallest stratum: the bootstrap needs enough invocations in each.
    fn smallest(&self) -> usize {
        self.members.iter().map(|(m, _)| m.len()).min().unwrap_or(0)
    }
}

impl Resampler<'_> {
    /// One stratified resample's median: each stratum's positions drawn from it alone.
    fn draw_stratified(&mut self, strata: &Strata, rng: &mut ChaCha8Rng) -> f64 {
        self.counts.fill(0);
        for (members, pick) in &strata.members {
            for _ in 0..members.len() {
                self.counts[members[pick.sample(rng) as usize] as usize] += 1;
            }
        }
        self.median()
    }
}

/// [`ratio_of_medians`] with each side stratified by host: the ratio of the pooled medians,
/// and the percentile interval of a bootstrap that resamples within each host. With one
/// stratum on each side it is `ratio_of_medians` (the same bytes).
pub fn stratified_ratio_of_medians(
    base: &[Vec<f64>],
    candidate: &[Vec<f64>],
    opts: &StatsOptions,
) -> Option<Ratio> {
    if base.len() <= 1 && candidate.len() <= 1 {
        let empty = Vec::new();
        return ratio_of_medians(
            base.first().unwrap_or(&empty),
            candidate.first().unwrap_or(&empty),
            opts,
        );
    }
    let (b, c) = (Strata::new(base), Strata::new(candidate));
    if b.sorted.is_empty() || c.sorted.is_empty() {
        return None;
    }
    // Large cells take the plain path's closed-form interval over the pooled invocations
    // (no resampling at all): wider than the stratified one when hosts differ (the mix of
    // machines counts as noise), so conservative, and it keeps a merged run's report fast.
    if uses_order_statistics(b.sorted.len().max(c.sorted.len()), opts) {
        return ratio_of_medians(&b.sorted, &c.sorted, opts);
    }
    let (base_median, candidate_median) = (quantile(&b.sorted, 0.5), quantile(&c.sorted, 0.5));
    if !(base_median > 0.0 && candidate_median > 0.0) {
        return None;
    }
    let ratio = candidate_median / base_median;
    let opts = &StatsOptions {
        resamples: resamples_for(b.sorted.len().max(c.sorted.len()), opts),
        ..*opts
    };
    let ci = if bootstrap_allowed(b.smallest(), opts) && bootstrap_allowed(c.smallest(), opts) {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let (mut rb, mut rc) = (Resampler::new(&b.sorted), Resampler::new(&c.sorted));
        let mut ratios = Vec::with_capacity(opts.resamples);
        for _ in 0..opts.resamples {
            let r = rc.draw_stratified(&c, &mut rng) / rb.draw_stratified(&b, &mut rng);
            if !(r.is_finite() && r > 0.0) {
                return Some(Ratio { ratio, ci: None });
            }
            ratios.push(r);
        }
        Some(percentile_interval(&mut ratios, opts.confidence))
    } else {
        None
    };
    Some(Ratio { ratio, ci })
}

/// The median's interval of a sample stratified by host: a bootstrap resampling within each
/// host. `None` with fewer than two strata (the summary's own interval stands) or too few
/// invocations in a stratum.
pub fn stratified_median_interval(strata: &[Vec<f64>], opts: &StatsOptions) -> Option<Interval> {
    let s = Strata::new(strata);
    // Large cells keep the summary's own order-statistic interval over the pooled invocations
    // (see `stratified_ratio_of_medians`).
    if s.members.len() < 2 || uses_order_statistics(s.sorted.len(), opts) {
        return None;
    }
    let opts = &StatsOptions {
        resamples: resamples_for(s.sorted.len(), opts),
        ..*opts
    };
    if !bootstrap_allowed(s.smallest(), opts) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut r = Resampler::new(&s.sorted);
    let mut medians: Vec<f64> = (0..opts.resamples)
        .map(|_| r.draw_stratified(&s, &mut rng))
        .collect();
    Some(percentile_interval(&mut medians, opts.confidence))
}

/// The spread between hosts: each stratum's median, and max/min - 1 of them. `None` with
/// fewer than two strata holding samples.
pub fn between_host_spread(strata: &[Vec<f64>]) -> Option<(Vec<f64>, f64)> {
    let medians: Vec<f64> = strata
        .iter()
        .map(|xs| finite_sorted(xs))
        .filter(|xs| !xs.is_empty())
        .map(|xs| quantile(&xs, 0.5))
        .collect();
    if medians.len() < 2 {
        return None;
    }
    let lo = medians.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = medians.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo > 0.0).then(|| (medians.clone(), hi / lo - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize, scale: f64, seed: u64) -> Vec<f64> {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| scale * (1.0 + rng.r#gen::<f64>())).collect()
    }

    /// One host: the stratified bootstrap is the plain one, draw for draw (the general path
    /// is checked too, not only the shortcut).
    #[test]
    fn one_host_gives_the_plain_answer() {
        let opts = StatsOptions {
            resamples: 2_000,
            ..StatsOptions::default()
        };
        for n in [5, 12, 40] {
            let (a, b) = (samples(n, 1.0, 1), samples(n + 3, 1.3, 2));
            let plain = ratio_of_medians(&a, &b, &opts).unwrap();
            let one = stratified_ratio_of_medians(
                std::slice::from_ref(&a),
                std::slice::from_ref(&b),
                &opts,
            )
            .unwrap();
            assert_eq!(one.ratio.to_bits(), plain.ratio.to_bits());
            let (p, o) = (plain.ci.unwrap(), one.ci.unwrap());
            assert_eq!(
                (o.lower.to_bits(), o.upper.to_bits()),
                (p.lower.to_bits(), p.upper.to_bits())
            );
            // The general path with one stratum draws exactly as the plain resampler does.
            let (sa, sb) = (
                Strata::new(std::slice::from_ref(&a)),
                Strata::new(std::slice::from_ref(&b)),
            );
            let (fa, fb) = (finite_sorted(&a), finite_sorted(&b));
            let mut rng1 = ChaCha8Rng::seed_from_u64(7);
            let mut rng2 = ChaCha8Rng::seed_from_u64(7);
            let (mut r1, mut r2) = (Resampler::new(&sa.sorted), Resampler::new(&fa));
            let (mut q1, mut q2) = (Resampler::new(&sb.sorted), Resampler::new(&fb));
            for _ in 0..500 {
                assert_eq!(
                    r1.draw_stratified(&sa, &mut rng1).to_bits(),
                    r2.draw(&mut rng2).1.to_bits()
                );
                assert_eq!(
                    q1.draw_stratified(&sb, &mut rng1).to_bits(),
                    q2.draw(&mut rng2).1.to_bits()
                );
            }
            // And the summary's median interval: one stratum leaves it to the plain one.
            assert!(stratified_median_interval(&[a], &opts).is_none());
        }
    }

    /// Two hosts 30% apart: resampling within hosts keeps each resample's mix of hosts
    /// fixed, so the interval of the median is narrower than a bootstrap that lets the mix
    /// wander, and it still holds the pooled median.
    #[test]
    fn two_hosts_are_blocks() {
        let opts = StatsOptions {
            resamples: 4_000,
            ..StatsOptions::default()
        };
        let (fast, slow) = (samples(15, 1.0, 3), samples(15, 1.3, 4));
        let strata = [fast.clone(), slow.clone()];
        let pooled: Vec<f64> = fast.iter().chain(&slow).copied().collect();
        let plain = super::super::summarize(&pooled, &opts).unwrap();
        let s = stratified_median_interval(&strata, &opts).unwrap();
        assert!(s.contains(plain.median), "{s:?} {}", plain.median);
        assert!(
            s.width() <= plain.median_ci.unwrap().width(),
            "{s:?} vs {:?}",
            plain.median_ci
        );
        let (medians, spread) = between_host_spread(&strata).unwrap();
        assert_eq!(medians.len(), 2);
        assert!(spread > 0.1 && spread < 0.6, "{spread}");
        assert!(between_host_spread(std::slice::from_ref(&fast)).is_none());
        let r = stratified_ratio_of_medians(&strata, &strata, &opts).unwrap();
        assert_eq!(r.ratio, 1.0);
        assert!(r.ci.unwrap().contains(1.0));
    }
}
