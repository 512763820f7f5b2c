//! `benchbox report` over a large run: 20 cells x 5,000 measured invocations = 100,000 rows of
//! runs.csv, plus the results.json a finished run leaves (`common/synthetic.rs`, shared with
//! `examples/synthetic_run.rs`). `benches/report-formats.sh` times the whole command per
//! report format, at this size and at 10^6 rows.
//!
//! Targets: the whole command under 3 s and under 200 MB at this size. The time is criterion's; the peak memory is
//! measured once, before the timing, by running the real binary under `/usr/bin/time -v`
//! (maximum resident set size), so it includes everything the command does.
//!
//! Run: `cargo bench --bench report`

#[path = "common/synthetic.rs"]
mod synthetic;

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

const CELLS: usize = 20;
const INVOCATIONS: u32 = 5_000;

/// Peak RSS and wall time of `benchbox report DIR`, measured once by `/usr/bin/time -v`.
fn measure_binary_once(dir: &Path) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        eprintln!("report: /usr/bin/time not found; peak memory not measured");
        return;
    }
    let out = Command::new(time)
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_benchbox"))
        .arg("report")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let field = |name: &str| {
        err.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let kib: f64 = field("Maximum resident set size (kbytes):")
        .parse()
        .unwrap_or(0.0);
    eprintln!(
        "report: `benchbox report` on {} rows: peak RSS {:.1} MiB, elapsed {}",
        CELLS * INVOCATIONS as usize,
        kib / 1024.0,
        field("Elapsed (wall clock) time (h:mm:ss or m:ss):")
    );
    // The report rewrote results.json, summaries included: still no copy of the samples.
    let size = |name: &str| std::fs::metadata(dir.join(name)).unwrap().len();
    let (json, csv) = (size("results.json"), size("runs.csv"));
    eprintln!("report: results.json {json} bytes, runs.csv {csv} bytes");
    assert!(
        json < csv,
        "results.json ({json} B) holds no samples: under runs.csv ({csv} B)"
    );
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::generate(tmp.path(), CELLS, INVOCATIONS).unwrap();
    // Keep a copy of the data for profiling by hand.
    if let Some(keep) = std::env::var_os("BENCHBOX_BENCH_KEEP") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        for f in ["results.json", "runs.csv"] {
            std::fs::copy(tmp.path().join(f), keep.join(f)).unwrap();
        }
    }
    measure_binary_once(tmp.path());
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.bench_function("rebuild 100k rows", |b| {
        b.iter(|| benchbox::rebuild::rebuild(tmp.path(), None, &[]).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
