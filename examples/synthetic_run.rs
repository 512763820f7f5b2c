//! Writes a synthetic finished run of CELLS x INVOCATIONS measured invocations into DIR
//! (runs.csv, results.json, summary.md), for timing `benchbox report` on large runs by hand or
//! with `benches/report-formats.sh`. The same arguments always give the same bytes.
//!
//! Run: `cargo run --release --example synthetic_run -- DIR CELLS INVOCATIONS`
//! (`benches/report.rs` uses the same generator: 20 cells x 5,000 invocations).

#[path = "../benches/common/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [dir, cells, invocations] => cells
            .parse::<usize>()
            .ok()
            .zip(invocations.parse::<u32>().ok())
            .filter(|&(c, i)| c > 0 && i > 0)
            .map(|(c, i)| (PathBuf::from(dir), c, i)),
        _ => None,
    };
    let Some((dir, cells, invocations)) = parsed else {
        eprintln!("usage: synthetic_run DIR CELLS INVOCATIONS   (CELLS, INVOCATIONS > 0)");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    match synthetic::generate(&dir, cells, invocations) {
        Ok(()) => {
            println!(
                "wrote {} rows ({cells} cells x {invocations}) in {}",
                cells as u64 * u64::from(invocations),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
