//! `benchbox merge` of 100 shards x 10,000 rows (20 cells x 50,000 measured invocations, by
//! invocation: shard K holds invocations i with i mod 100 = K), into one run of 10^6 rows.
//! Target: under 2 s for the merge itself (the checks, runs.csv with its host column,
//! results.json, and the summaries and summary.md it rebuilds); `merge/with reports` adds
//! every report format, which `benchbox report` costs on any run of that size.
//!
//! The shards are made once from a small synthetic run (`common/synthetic.rs`): its
//! results.json with the shard records, and its rows with their invocation numbers changed.
//!
//! Run: `cargo bench --bench merge`

#[path = "common/synthetic.rs"]
mod synthetic;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use benchbox::render::Format;
use criterion::{Criterion, criterion_group, criterion_main};

const CELLS: usize = 20;
const SHARDS: u32 = 100;
const ROWS_PER_SHARD: u32 = 10_000;

/// 100 shard run directories under `dir`.
fn make_shards(dir: &Path) -> Vec<PathBuf> {
    let template = dir.join("template");
    fs::create_dir(&template).unwrap();
    synthetic::generate(&template, CELLS, 1).unwrap();
    let mut results: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(template.join("results.json")).unwrap()).unwrap();
    let per_cell = ROWS_PER_SHARD / CELLS as u32;
    let runs = per_cell * SHARDS;
    for cell in results["cells"].as_array_mut().unwrap() {
        cell["planned"] = serde_json::json!({"warmup": 0, "runs": runs});
    }
    let csv = fs::read_to_string(template.join("runs.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let invocation_at = header.split(',').position(|c| c == "invocation").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    (0..SHARDS)
        .map(|k| {
            let shard = dir.join(format!("run-shard-{k}"));
            fs::create_dir(&shard).unwrap();
            results["run_id"] = format!("run-shard-{k}").into();
            results["host"]["hostname"] = format!("node{}", k % 4).into();
            results["shard"] = serde_json::json!({
                "count": SHARDS, "by": "invocation", "plan_hash": "h", "index": k
            });
            fs::write(shard.join("results.json"), results.to_string()).unwrap();
            let mut out =
                std::io::BufWriter::new(fs::File::create(shard.join("runs.csv")).unwrap());
            writeln!(out, "{header}").unwrap();
            for j in 0..per_cell {
                let invocation = (j * SHARDS + k).to_string();
                for row in &rows {
                    let mut row = row.clone();
                    row[invocation_at] = &invocation;
                    writeln!(out, "{}", row.join(",")).unwrap();
                }
            }
            shard
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let shards = make_shards(tmp.path());
    let mut group = c.benchmark_group("merge");
    group.sample_size(10);
    let mut n = 0;
    for (name, formats) in [
        ("100 shards x 10,000 rows", &[][..]),
        ("with reports", &Format::ALL[..]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let out = tmp.path().join(format!("merged-{n}"));
                let merged =
                    benchbox::merge::merge(&shards, &out, false, Vec::new(), formats).unwrap();
                assert_eq!(merged.rows, u64::from(SHARDS * ROWS_PER_SHARD));
                fs::remove_dir_all(&out).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
