//! The host noise a whole run saw ([`RunNoise`]: load average, disturbed invocations, other
//! tasks' CPU, steal, CPU pressure) and whether two runs differ in it ([`differences`]), for
//! the warnings of `compare` and `history` (pure). A difference in noise is a confound, said
//! beside the verdict, never a change of it.

use crate::results::{CellResult, RunResults};

/// The noise figures of one run. Shares are medians over its measured invocations that count
/// toward the statistics and last at least 0.2 s, as a fraction of each one's wall time;
/// `None` where not measured (older runs, cgroup v1, short invocations, or a run read from
/// results.json alone).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunNoise {
    /// The higher of the 1-minute load averages at the run's start and end.
    pub load: Option<f64>,
    /// The host's logical CPUs: a load is weighed against them.
    pub cpus: usize,
    /// Measured invocations that count toward the statistics, and those of them `disturbed`.
    pub counted: usize,
    pub disturbed: usize,
    pub other_share: Option<f64>,
    pub steal_share: Option<f64>,
    pub psi_cpu_share: Option<f64>,
}

/// Invocations shorter than this (20 ticks of `/proc/stat` at its usual 100 a second, as
/// [`crate::disturbance::MIN_JUDGED_TICKS`]) give no shares.
const SHARE_MIN_WALL_S: f64 = 0.2;

/// Differences at least this large are worth a warning.
/// Load averages: by at least 1, and at least a quarter of the host's CPUs.
const LOAD_DIFFERENCE: f64 = 1.0;
const LOAD_DIFFERENCE_PER_CPU: f64 = 0.25;
const DISTURBED_DIFFERENCE: f64 = 0.10;
const OTHER_DIFFERENCE: f64 = 0.05;
const STEAL_DIFFERENCE: f64 = 0.02;
const PSI_DIFFERENCE: f64 = 0.05;

impl RunNoise {
    /// The figures of `run`: from its samples where it has them (a run loaded with runs.csv),
    /// else from results.json's counts (no shares then).
    pub fn of(run: &RunResults) -> RunNoise {
        Self::of_cells(run, &run.cells)
    }

    /// The figures of `cells`, a part of `run` (the cells a comparison pairs).
    pub fn of_cells<'a>(
        run: &RunResults,
        cells: impl IntoIterator<Item = &'a CellResult>,
    ) -> RunNoise {
        let mut noise = RunNoise {
            load: run.load_average.and_then(|l| l.peak()),
            cpus: run.host.logical_cpus,
            ..Default::default()
        };
        let (mut other, mut steal, mut psi) = (Vec::new(), Vec::new(), Vec::new());
        for cell in cells {
            if cell.samples.is_empty() {
                noise.counted += cell.summary.get("wall_s").map_or(0, |s| s.n);
                noise.disturbed += cell.disturbed;
                continue;
            }
            for s in cell.samples.iter().filter(|s| s.counts_toward_statistics()) {
                noise.counted += 1;
                if s.flags.contains(&crate::status::Flag::Disturbed) {
                    noise.disturbed += 1;
                }
                // Shares of shorter invocations are mostly the ticks' rounding.
                let wall = s.measured.wall_s;
                if !wall.is_finite() || wall < SHARE_MIN_WALL_S {
                    continue;
                }
                let d = &s.measured.disturbance;
                other.extend(d.other_cpu_s.map(|o| o / wall));
                steal.extend(d.steal_s.map(|o| o / wall));
                psi.extend(
                    s.measured
                        .pressure
                        .psi_cpu_some_us
                        .map(|us| us as f64 / 1e6 / wall),
                );
            }
        }
        noise.other_share = median(other);
        noise.steal_share = median(steal);
        noise.psi_cpu_share = median(psi);
        noise
    }

    fn disturbed_fraction(&self) -> Option<f64> {
        (self.counted > 0).then(|| self.disturbed as f64 / self.counted as f64)
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// Where `a` and `b` (named `names`, e.g. "base", "candidate") differ in host noise enough to
/// matter, in words with both figures; empty when they do not (or cannot be told).
pub fn differences(a: &RunNoise, b: &RunNoise) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(x), Some(y)) = (a.load, b.load)
        && (x - y).abs() >= LOAD_DIFFERENCE.max(LOAD_DIFFERENCE_PER_CPU * a.cpus.max(b.cpus) as f64)
    {
        out.push(format!("load average {x:.2} vs {y:.2}"));
    }
    if let (Some(x), Some(y)) = (a.disturbed_fraction(), b.disturbed_fraction())
        && (x - y).abs() >= DISTURBED_DIFFERENCE
    {
        out.push(format!(
            "disturbed invocations {} ({} of {}) vs {} ({} of {})",
            pct(x),
            a.disturbed,
            a.counted,
            pct(y),
            b.disturbed,
            b.counted
        ));
    }
    let shares = [
        (
            a.other_share,
            b.other_share,
            OTHER_DIFFERENCE,
            "other tasks' CPU",
        ),
        (a.steal_share, b.steal_share, STEAL_DIFFERENCE, "steal"),
        (
            a.psi_cpu_share,
            b.psi_cpu_share,
            PSI_DIFFERENCE,
            "CPU pressure (PSI some)",
        ),
    ];
    for (x, y, at_least, what) in shares {
        if let (Some(x), Some(y)) = (x, y)
            && (x - y).abs() >= at_least
        {
            out.push(format!(
                "{what} a median {} vs {} of wall time",
                pct(x),
                pct(y)
            ));
        }
    }
    out
}

/// `compare`'s warning when base and candidate saw different host noise; `None` when not.
pub fn compare_warning(base: &RunNoise, candidate: &RunNoise) -> Option<String> {
    let d = differences(base, candidate);
    (!d.is_empty()).then(|| {
        format!(
            "the runs saw different host noise (base vs candidate: {}): a difference may come from the noise, not the change; the verdicts stand as computed\n  hint: run both on a quiet host (runs.csv's `flags`, `other_cpu_s` and `steal_s` say which invocations were disturbed)",
            d.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(load: f64, counted: usize, disturbed: usize, other: f64) -> RunNoise {
        RunNoise {
            load: Some(load),
            cpus: 4,
            counted,
            disturbed,
            other_share: Some(other),
            steal_share: Some(0.0),
            psi_cpu_share: None,
        }
    }

    #[test]
    fn only_differences_that_matter_are_said() {
        let quiet = noise(0.2, 20, 0, 0.01);
        assert_eq!(
            differences(&quiet, &noise(1.1, 20, 1, 0.05)),
            Vec::<String>::new()
        );
        let busy = noise(3.1, 20, 12, 0.35);
        assert_eq!(
            differences(&busy, &quiet),
            [
                "load average 3.10 vs 0.20",
                "disturbed invocations 60% (12 of 20) vs 0% (0 of 20)",
                "other tasks' CPU a median 35% vs 1% of wall time"
            ]
        );
        let w = compare_warning(&busy, &quiet).unwrap();
        assert!(
            w.starts_with(
                "the runs saw different host noise (base vs candidate: load average 3.10 vs 0.20;"
            ),
            "{w}"
        );
        assert_eq!(compare_warning(&quiet, &quiet), None);
        // Unknown on one side: nothing to say.
        assert_eq!(
            differences(&RunNoise::default(), &busy),
            Vec::<String>::new()
        );
        // A load difference of 3 is much on 4 CPUs, little on 64.
        let big = |n: RunNoise| RunNoise { cpus: 64, ..n };
        assert_eq!(
            differences(&big(noise(3.2, 20, 0, 0.01)), &big(quiet)),
            Vec::<String>::new()
        );
    }
}
