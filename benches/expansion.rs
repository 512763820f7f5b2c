//! Expanding and checking a large matrix: `check` and `plan` of 10^4, 10^5 and
//! 10^6 cells, and one axis of 30,000 values (quadratic before: 44 s).
//!
//! Targets: a 10^6-cell matrix answers within 10 s and 1 GiB on the 2-core reference machine,
//! and the cost per cell does not grow with the matrix. Criterion times `spec::open` (what
//! `check` does: every cell built and checked, none kept) and `plan::write_text` into a sink
//! at 10^4 and 10^5 cells; the 10^6 cases take seconds each, so they are measured once, before
//! the timing, by running the real binary under `/usr/bin/time -v` (wall time and maximum
//! resident set size, so everything the command does is in it).
//!
//! Run: `cargo bench --bench expansion`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use criterion::{Criterion, black_box, criterion_group, criterion_main};

use benchbox::spec::{self, ValidationContext};

/// A matrix of `sizes` axes (values 0..n), every axis used by the command.
fn write_matrix(dir: &Path, name: &str, sizes: &[usize]) -> PathBuf {
    let mut text = String::from("[matrix]\n");
    let mut command = String::from("echo");
    for (i, n) in sizes.iter().enumerate() {
        let values: Vec<String> = (0..*n).map(|v| v.to_string()).collect();
        text.push_str(&format!("a{i} = [{}]\n", values.join(", ")));
        command.push_str(&format!(" {{a{i}}}"));
    }
    text.push_str(&format!(
        "[limits]\nmemory = \"64MiB\"\n[run]\ncommand = \"{command}\"\n"
    ));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn ctx() -> ValidationContext {
    ValidationContext {
        online_cpus: "0".parse().unwrap(),
        check_paths: true,
        image_accounts: Default::default(),
    }
}

/// Wall time and peak RSS of `benchbox ARGS`, output discarded, measured once.
fn measure_binary_once(args: &[&str], file: &Path) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        eprintln!("expansion: /usr/bin/time not found; not measured");
        return;
    }
    let out = Command::new(time)
        .arg("-f")
        .arg("%e %M")
        .arg(env!("CARGO_BIN_EXE_benchbox"))
        .args(args)
        .arg(file)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    let mut parts = last.split_whitespace();
    let wall: f64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let kib: f64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    eprintln!(
        "benchbox {:<12} {:<16} {wall:>6.2} s  {:>7.1} MiB peak RSS",
        args.join(" "),
        file.file_name().unwrap().to_string_lossy(),
        kib / 1024.0
    );
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cells_1e4 = write_matrix(dir.path(), "cells-1e4", &[100, 100]);
    let cells_1e5 = write_matrix(dir.path(), "cells-1e5", &[100, 100, 10]);
    let cells_1e6 = write_matrix(dir.path(), "cells-1e6", &[100, 100, 100]);
    let long_axis = write_matrix(dir.path(), "axis-30000", &[30_000]);

    for file in [&cells_1e4, &cells_1e5, &cells_1e6, &long_axis] {
        measure_binary_once(&["check"], file);
        measure_binary_once(&["plan"], file);
        measure_binary_once(&["plan", "--json"], file);
    }

    let mut group = c.benchmark_group("expansion");
    group.sample_size(10);
    for (name, file) in [
        ("1e4", &cells_1e4),
        ("1e5", &cells_1e5),
        ("axis-30000", &long_axis),
    ] {
        group.bench_function(format!("check/{name}"), |b| {
            b.iter(|| spec::open(black_box(file), &ctx()).unwrap().len())
        });
    }
    for (name, file) in [("1e4", &cells_1e4), ("1e5", &cells_1e5)] {
        let m = spec::open(file, &ctx()).unwrap();
        group.bench_function(format!("plan-text/{name}"), |b| {
            b.iter(|| benchbox::plan::write_text(&mut std::io::sink(), black_box(&m)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
