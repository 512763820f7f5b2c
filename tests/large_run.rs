//! The synthetic 100,000-row run of the report benchmark (20 cells x 5,000 invocations),
//! reported in every format by the real binary: results.json holds no samples (it stays under
//! runs.csv), report.html stays under 3 MB, and a second report gives the same bytes. Speed is
//! the benchmark's business (`benches/report-formats.sh`), not this test's.

#[path = "../benches/common/synthetic.rs"]
mod synthetic;

use std::fs;
use std::path::Path;
use std::process::Command;

fn report_all(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_benchbox"))
        .args(["report", "--format", "all"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_100k_row_run_reports_in_every_format_within_its_size_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    synthetic::generate(dir, 20, 5_000).unwrap();
    report_all(dir);
    let size = |name: &str| fs::metadata(dir.join(name)).unwrap().len();
    let (json, csv, html) = (size("results.json"), size("runs.csv"), size("report.html"));
    assert!(json < csv, "results.json {json} B, runs.csv {csv} B");
    assert!(html < 3 << 20, "report.html {html} B");
    for file in ["summary.md", "table.tex", "results.csv", "bencher.json"] {
        assert!(size(file) > 0, "{file}");
    }
    // Deterministic at this size too: the same bytes again.
    let first: Vec<Vec<u8>> = ["results.json", "summary.md", "report.html", "table.tex"]
        .iter()
        .map(|f| fs::read(dir.join(f)).unwrap())
        .collect();
    report_all(dir);
    for (f, before) in ["results.json", "summary.md", "report.html", "table.tex"]
        .iter()
        .zip(first)
    {
        assert!(fs::read(dir.join(f)).unwrap() == before, "{f} changed");
    }
}
