//! `benchbox report` over a large run: 20 cells x 5,000 measured invocations = 100,000 rows of
//! runs.csv, plus the results.json the runner would have left (with every sample in it).
//!
//! Targets: under 1 s and under 100 MB. The time is criterion's; the peak memory is
//! measured once, before the timing, by running the real binary under `/usr/bin/time -v`
//! (maximum resident set size), so it includes everything the command does.
//!
//! Run: `cargo bench --bench report`

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use benchbox::plan::Phase;
use benchbox::results::{CellResult, RunResults, Sample, csv_header};
use benchbox::stats::StatsOptions;

const CELLS: usize = 20;
const INVOCATIONS: u32 = 5_000;

/// Writes results.json and runs.csv of a synthetic 2-axis run into `dir`.
fn generate(dir: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let axes = vec!["jdk".to_string(), "gc".to_string()];
    let metrics = vec!["throughput".to_string()];
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("runs.csv")).unwrap());
    writeln!(csv, "{}", csv_header(&axes, &metrics).join(",")).unwrap();
    let mut cells = Vec::new();
    let mut plan_cells = Vec::new();
    // Every plan cell is this one with its own id: the report reads only ids and metrics.
    let template = {
        let ctx = benchbox::spec::ValidationContext {
            online_cpus: benchbox::spec::CpuSet::new([0]),
            check_paths: false,
            image_accounts: Default::default(),
        };
        // The plan must hold every row: a rebuild checks runs.csv against it.
        let source = format!(
            "[run]\ncommand = \"x\"\nwarmup = 0\nruns = {INVOCATIONS}\n[[metric]]\nname = \"throughput\"\nunit = \"ops/s\"\nbetter = \"higher\"\n"
        );
        benchbox::spec::parse(&source, Path::new("bench.toml"), &ctx)
            .unwrap()
            .cells[0]
            .clone()
    };
    for c in 0..CELLS {
        let (jdk, gc) = (format!("{}", 11 + c / 4), format!("gc{}", c % 4));
        let id = format!("{c:012x}");
        let label = format!("jdk={jdk} gc={gc}");
        let base = 1.0 + c as f64 * 0.05;
        let mut samples = Vec::with_capacity(INVOCATIONS as usize);
        for i in 0..INVOCATIONS {
            let wall = base * (1.0 + 0.05 * rng.r#gen::<f64>());
            let s = Sample {
                cell_id: id.clone(),
                phase: Phase::Measure,
                index: i,
                started_at: "2026-01-01T00:00:00.000Z".into(),
                measured: benchbox::measurement::Measurement {
                    wall_s: wall,
                    user_s: wall * 0.9,
                    system_s: wall * 0.05,
                    peak_memory_bytes: Some(100_000_000 + rng.gen_range(0..1_000_000)),
                    io_read_bytes: Some(0),
                    io_write_bytes: Some(rng.gen_range(0..4096)),
                    exit_code: Some(0),
                    signal: None,
                    oom_killed: false,
                    timed_out: false,
                    throttled_s: 0.0,
                    rusage: benchbox::measurement::Rusage {
                        user_s: wall * 0.9,
                        system_s: wall * 0.05,
                        max_rss_bytes: 100_000_000,
                        ..Default::default()
                    },
                    pressure: Default::default(),
                },
                status: benchbox::status::Status::Ok,
                flags: Vec::new(),
                reason: String::new(),
                metrics: [("throughput".to_string(), 1000.0 / wall)].into(),
            };
            writeln!(
                csv,
                "{id},{label},{jdk},{gc},measure,{i},{},{:.9},{:.6},{:.6},{},{},{},0,,false,false,{:.6},{:.6},{:.6},{},0,0,0,0,ok,,,,,,,,{}",
                s.started_at,
                s.measured.wall_s,
                s.measured.user_s,
                s.measured.system_s,
                s.measured.peak_memory_bytes.unwrap(),
                s.measured.io_read_bytes.unwrap(),
                s.measured.io_write_bytes.unwrap(),
                s.measured.throttled_s,
                s.measured.rusage.user_s,
                s.measured.rusage.system_s,
                s.measured.rusage.max_rss_bytes,
                s.metrics["throughput"]
            )
            .unwrap();
            samples.push(s);
        }
        plan_cells.push(benchbox::spec::Cell {
            id: id.clone(),
            ..template.clone()
        });
        cells.push(CellResult {
            id: id.clone(),
            label,
            slug: id,
            axes: vec![
                ("jdk".into(), serde_json::json!(jdk)),
                ("gc".into(), serde_json::json!(gc)),
            ],
            samples,
            ..Default::default()
        });
    }
    csv.flush().unwrap();
    let run = RunResults {
        schema_version: 1,
        tool: "benchbox".into(),
        tool_version: "0.1.0".into(),
        run_id: "bench".into(),
        status: benchbox::status::RunStatus::Complete,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: Some("2026-01-02T00:00:00.000Z".into()),
        reason: None,
        command_line: vec![],
        host: Default::default(),
        isolation: None,
        matrix_name: "big".into(),
        matrix_path: "envs/big.toml".into(),
        matrix_sha256: "0".repeat(64),
        seed: 7,
        order: benchbox::spec::Order::Interleaved,
        stats: StatsOptions::default(),
        plan: benchbox::plan::Plan {
            axes: vec![
                benchbox::spec::Axis {
                    name: "jdk".into(),
                    values: ["11", "12", "13", "14", "15"].map(Into::into).to_vec(),
                },
                benchbox::spec::Axis {
                    name: "gc".into(),
                    values: ["gc0", "gc1", "gc2", "gc3"].map(Into::into).to_vec(),
                },
            ],
            cells: plan_cells,
            ..Default::default()
        },
        cells,
        warnings: vec![],
    };
    run.write(dir).unwrap();
}

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
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
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
