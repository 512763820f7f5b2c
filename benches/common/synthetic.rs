//! A synthetic finished run of any size, for the benchmarks of `benchbox report`: the one
//! generator behind `benches/report.rs` (criterion) and `examples/synthetic_run.rs` (used by
//! `benches/report-formats.sh`), so both time the same data.
//!
//! The run has CELLS cells on two axes (`jdk`, four `gc` values each) and a custom metric,
//! INVOCATIONS measured invocations each, no warmup. runs.csv is written row by row (never held
//! in memory); results.json and summary.md are then written by benchbox's own rebuild step,
//! as the end of a real `run` leaves them (without the report formats, which are what the
//! benchmarks time). The numbers come from a ChaCha generator with a fixed seed, so the same
//! CELLS and INVOCATIONS give the same bytes; 20 x 5,000 is the historical shape of the
//! criterion bench and keeps its data.

use std::io::Write as _;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use benchbox::results::{CellResult, Planned, RunResults, csv_header};
use benchbox::stats::StatsOptions;

/// `gc` values per `jdk` value: cell `c` is `jdk = 11 + c / 4`, `gc = gc{c % 4}`.
const GCS: usize = 4;

/// Memory samples of each cell's recorded timeline (its last invocation), as a 100 ms
/// `memory-interval` takes them over an invocation of about a second.
const TIMELINE_POINTS: u32 = 11;

/// Writes runs.csv, then results.json and summary.md (through `benchbox::rebuild`), of a
/// synthetic complete run into `dir`, which must exist.
pub fn generate(
    dir: &Path,
    cells: usize,
    invocations: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let axes = vec!["jdk".to_string(), "gc".to_string()];
    let metrics = vec!["throughput".to_string()];
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("runs.csv"))?);
    writeln!(csv, "{}", csv_header(&axes, &[], &metrics).join(","))?;
    // Every plan cell is this one with its own id: the report reads only ids and metrics.
    let template = {
        let ctx = benchbox::spec::ValidationContext {
            online_cpus: benchbox::spec::CpuSet::new([0]),
            check_paths: false,
            image_accounts: Default::default(),
        };
        let source = "[run]\ncommand = \"x\"\n[[metric]]\nname = \"throughput\"\nunit = \"ops/s\"\nbetter = \"higher\"\n";
        benchbox::spec::parse(source, Path::new("bench.toml"), &ctx)?.cells[0].clone()
    };
    let mut result_cells = Vec::with_capacity(cells);
    let mut plan_cells = Vec::with_capacity(cells);
    for c in 0..cells {
        let (jdk, gc) = (format!("{}", 11 + c / GCS), format!("gc{}", c % GCS));
        let id = format!("{c:012x}");
        let label = format!("jdk={jdk} gc={gc}");
        let base = 1.0 + c as f64 * 0.05;
        let mut peak = 0;
        for i in 0..invocations {
            // The draws are in the order the first version of the bench made them: the same
            // seed still gives the same 20 x 5,000 rows.
            let wall = base * (1.0 + 0.05 * rng.r#gen::<f64>());
            peak = 100_000_000 + rng.gen_range(0..1_000_000u64);
            let io_write: u64 = rng.gen_range(0..4096);
            let (user, system) = (wall * 0.9, wall * 0.05);
            writeln!(
                csv,
                "{id},{label},{jdk},{gc},measure,{i},2026-01-01T00:00:00.000Z,{wall:.9},{user:.6},{system:.6},{peak},0,{io_write},0,,false,false,{:.6},{user:.6},{system:.6},100000000,0,0,0,0,ok,,,,,,,,,,,{}",
                0.0,
                1000.0 / wall
            )?;
        }
        plan_cells.push(benchbox::spec::Cell {
            id: id.clone(),
            ..template.clone()
        });
        // The memory in use over the cell's last invocation, rising to its peak.
        let memory_timeline = (0..TIMELINE_POINTS)
            .map(|k| {
                let f = f64::from(k) / f64::from(TIMELINE_POINTS - 1);
                (f * base, (peak as f64 * (0.2 + 0.8 * f)) as u64)
            })
            .collect();
        result_cells.push(CellResult {
            id: id.clone(),
            label,
            slug: id,
            axes: vec![
                ("jdk".into(), serde_json::json!(jdk)),
                ("gc".into(), serde_json::json!(gc)),
            ],
            planned: Some(Planned {
                warmup: 0,
                runs: invocations,
            }),
            memory_timeline,
            ..Default::default()
        });
    }
    csv.flush()?;
    let jdks = cells.div_ceil(GCS);
    let run = RunResults {
        schema_version: benchbox::results::SCHEMA_VERSION,
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
        revision: None,
        seed: 7,
        order: benchbox::spec::Order::Interleaved,
        stats: StatsOptions::default(),
        plan: benchbox::plan::Plan {
            axes: vec![
                benchbox::spec::Axis {
                    name: "jdk".into(),
                    values: (0..jdks)
                        .map(|j| format!("{}", 11 + j).as_str().into())
                        .collect(),
                },
                benchbox::spec::Axis {
                    name: "gc".into(),
                    values: (0..GCS.min(cells))
                        .map(|g| format!("gc{g}").as_str().into())
                        .collect(),
                },
            ],
            cells: plan_cells,
            ..Default::default()
        },
        cells: result_cells,
        warnings: vec![],
        load_average: None,
        shard: None,
    };
    // The plan and the cells without their samples; the rebuild reads the samples from
    // runs.csv and writes results.json (metadata, plan, summaries) and summary.md as a run's end does.
    run.write(dir)?;
    benchbox::rebuild::rebuild(dir, None, &[])?;
    Ok(())
}
