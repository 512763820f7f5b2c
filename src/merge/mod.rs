//! `benchbox merge`: shards of one plan (`run --shard`), from one or many machines, made into
//! one run directory.
//!
//! Refused: a directory that is no shard, shards of different matrices (the matrix file's
//! hash), plans (the plan hash: cell ids carry the images' digests, so a different lock file
//! is a different plan), benchbox versions, shard counts or modes, a shard given twice, a row
//! found in two shards, and missing shards unless allowed. runs.csv gains the `host` column
//! (each row's shard's host name); with `--shard-by invocation` every shard ran the warm-ups,
//! and the merged run keeps the first shard's. results.json is the first shard's with the
//! merged run's status and times and `shard.merged` listing every shard; the summaries and
//! reports are then rebuilt as `report` does. The shards' rows are parsed once: each is
//! written to the merged runs.csv and checked and kept as the merged file's row, so the
//! rebuild has the samples without reading back the file just written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

mod rows;

use crate::compare::host_differences;
use crate::lock::RunLock;
use crate::render::Format;
use crate::render::latex::TableOptions;
use crate::report::ReportError;
use crate::results::{self, CellSamples, ResultsError, RunResults};
use crate::shard::{ShardInfo, ShardRecord};
use crate::status::RunStatus;

/// Why shards were not merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards do not make one run (exit 2).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
}

/// What a merge made.
#[derive(Debug)]
pub struct Merged {
    pub dir: PathBuf,
    pub run: RunResults,
    /// Host differences, missing shards, shards that did not complete.
    pub warnings: Vec<String>,
    /// Rows written to runs.csv.
    pub rows: u64,
}

struct Shard {
    dir: PathBuf,
    run: RunResults,
    index: u32,
    _lock: RunLock,
}

fn refused(message: String) -> MergeError {
    MergeError::Refused(message)
}

/// Merge the shard run directories `dirs` into the new run directory `out`, with the report
/// `formats` (`benchbox merge`: all of them; summary.md and results.json always).
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    allow_missing: bool,
    command_line: Vec<String>,
    formats: &[Format],
) -> Result<Merged, MergeError> {
    if dirs.is_empty() {
        return Err(refused(
            "no shard to merge\n  hint: pass the shards' run directories, e.g. benchbox merge out/NAME/*-shard-* --out merged".into(),
        ));
    }
    let mut shards = Vec::with_capacity(dirs.len());
    let mut given_dirs = std::collections::HashSet::new();
    for given in dirs {
        let dir = results::run_dir(given)?;
        if !given_dirs.insert(fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
            return Err(refused(format!(
                "`{}` is given twice\n  hint: pass each shard's run directory once",
                dir.display()
            )));
        }
        if !dir.join("results.json").is_file() {
            return Err(refused(format!(
                "`{}` is not a run directory (no results.json)\n  hint: pass the directories `benchbox run --shard` wrote, e.g. out/NAME/<run-id>-shard-0",
                dir.display()
            )));
        }
        // A shard still being written (its run, a `report`) is not merged half-way.
        let lock = RunLock::acquire(&dir, "merge")?;
        let run = RunResults::read(&dir)?;
        let index = match &run.shard {
            Some(ShardInfo { index: Some(k), .. }) => *k,
            Some(_) => {
                return Err(refused(format!(
                    "`{}` is a merged run, not a shard\n  hint: merge the shards themselves (results.json's shard.merged lists them)",
                    dir.display()
                )));
            }
            None => {
                return Err(refused(format!(
                    "`{}` is not a shard: it was not run with --shard\n  hint: run the matrix with `benchbox run FILE --shard K/N`, one K per machine",
                    dir.display()
                )));
            }
        };
        shards.push(Shard {
            dir,
            run,
            index,
            _lock: lock,
        });
    }
    shards.sort_by_key(|s| s.index);
    let first = &shards[0];
    let info = first.run.shard.clone().expect("checked above");
    // Every difference that makes two shards parts of different runs.
    for s in &shards[1..] {
        let other = s.run.shard.as_ref().expect("checked above");
        let mismatch = |what: &str, a: String, b: String, hint: &str| {
            refused(format!(
                "`{}` and `{}` are not shards of one run: {what} `{a}` vs `{b}`\n  hint: {hint}",
                first.dir.display(),
                s.dir.display()
            ))
        };
        if s.run.matrix_sha256 != first.run.matrix_sha256 {
            return Err(mismatch(
                "different matrix files (sha256)",
                short(&first.run.matrix_sha256),
                short(&s.run.matrix_sha256),
                "run every shard from the same matrix file",
            ));
        }
        if other.plan_hash != info.plan_hash {
            return Err(mismatch(
                "different plans (cells, image digests from the lock file, --runs, --warmup or --only)",
                short(&info.plan_hash),
                short(&other.plan_hash),
                "run every shard with the same lock file and the same --runs, --warmup and --only",
            ));
        }
        if s.run.tool_version != first.run.tool_version {
            return Err(mismatch(
                "different benchbox versions",
                first.run.tool_version.clone(),
                s.run.tool_version.clone(),
                "run every shard with the same benchbox",
            ));
        }
        if other.count != info.count {
            return Err(mismatch(
                "different shard counts",
                info.count.to_string(),
                other.count.to_string(),
                "run shards K/N with the same N",
            ));
        }
        if other.by != info.by {
            return Err(mismatch(
                "different --shard-by",
                info.by.to_string(),
                other.by.to_string(),
                "run every shard with the same --shard-by",
            ));
        }
    }
    for pair in shards.windows(2) {
        if pair[0].index == pair[1].index {
            return Err(refused(format!(
                "shard {}/{} is given twice: `{}` and `{}`, whose slices overlap\n  hint: pass each shard once (a shard run again: keep one of its directories)",
                pair[0].index,
                info.count,
                pair[0].dir.display(),
                pair[1].dir.display()
            )));
        }
    }
    let mut warnings = Vec::new();
    let present: Vec<u32> = shards.iter().map(|s| s.index).collect();
    let missing: Vec<String> = (0..info.count)
        .filter(|k| !present.contains(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "shard(s) {} of {} missing: their invocations are not in the merged run",
            missing.join(", "),
            info.count
        );
        if !allow_missing {
            return Err(refused(format!(
                "{message}\n  hint: pass every shard's run directory, or --allow-missing to merge what there is (the missing invocations are then reported as missing)"
            )));
        }
        warnings.push(message);
    }
    for s in &shards {
        if s.run.status != RunStatus::Complete {
            warnings.push(format!(
                "shard {} (`{}`) is {}: the merged run holds what it ran",
                s.index,
                s.dir.display(),
                s.run.status
            ));
        }
        let differences = host_differences(&first.run.host, &s.run.host);
        if !differences.is_empty() {
            warnings.push(format!(
                "THE SHARDS COME FROM DIFFERENT HOSTS: shard {} on `{}` vs shard {} on `{}` ({}): cells are compared within each host (a stratified bootstrap), but a cell measured on one host only reflects that host\n  hint: run every shard on the same kind of machine (one Slurm partition, one node pool)",
                first.index,
                first.run.host.hostname,
                s.index,
                s.run.host.hostname,
                differences.join("; ")
            ));
        }
    }

    // What this merge creates, it removes when it fails: a refused merge leaves no half-made
    // run behind (the outermost directory it had to make, or else what it wrote in `out`).
    let made = outermost_missing(out);
    fs::create_dir_all(out).map_err(|e| io_error("create", out, e))?;
    if fs::read_dir(out)
        .map_err(|e| io_error("read", out, e))?
        .next()
        .is_some()
    {
        return Err(refused(format!(
            "`{}` is not empty: merge writes a new run directory\n  hint: pass --out a directory that does not exist yet",
            out.display()
        )));
    }
    let complete = missing.is_empty();
    let written = write_merged(
        &shards,
        info,
        complete,
        out,
        command_line,
        formats,
        warnings,
    );
    if written.is_err() {
        match &made {
            Some(top) => {
                let _ = fs::remove_dir_all(top);
            }
            None => remove_entries(out),
        }
    }
    written
}

/// Write the merged run into `out` (an empty directory): runs.csv, results.json, the reports.
/// `complete`: no shard is missing.
fn write_merged(
    shards: &[Shard],
    info: ShardInfo,
    complete: bool,
    out: &Path,
    command_line: Vec<String>,
    formats: &[Format],
    mut warnings: Vec<String>,
) -> Result<Merged, MergeError> {
    let first = &shards[0];
    let _lock = RunLock::acquire(out, "merge")?;

    let mut run = first.run.clone();
    run.run_id = out
        .file_name()
        .map_or_else(|| "merged".into(), |f| f.to_string_lossy().into_owned());
    run.command_line = command_line;
    run.started_at = shards
        .iter()
        .map(|s| s.run.started_at.clone())
        .min()
        .unwrap_or_default();
    run.finished_at = shards
        .iter()
        .filter_map(|s| s.run.finished_at.clone())
        .max();
    run.status = if complete && shards.iter().all(|s| s.run.status == RunStatus::Complete) {
        RunStatus::Complete
    } else {
        RunStatus::Interrupted
    };
    run.reason = None;
    // By cell, a shard plans only its own cells: the merged run plans each cell as the shard
    // that ran it did (and keeps what it applied).
    for s in &shards[1..] {
        for (cell, theirs) in run.cells.iter_mut().zip(&s.run.cells) {
            if cell.planned.is_none() {
                cell.planned = theirs.planned;
            }
            if cell.applied_limits.is_none() {
                cell.applied_limits = theirs.applied_limits.clone();
            }
            if cell.setup_error.is_none() {
                cell.setup_error = theirs.setup_error.clone();
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    run.warnings = shards
        .iter()
        .flat_map(|s| s.run.warnings.iter().cloned())
        .filter(|w| seen.insert(w.clone()))
        .chain(warnings.iter().cloned())
        .collect();
    run.shard = Some(ShardInfo {
        index: None,
        merged: shards
            .iter()
            .map(|s| ShardRecord {
                index: s.index,
                run_id: s.run.run_id.clone(),
                dir: s.dir.display().to_string(),
                status: s.run.status,
                started_at: s.run.started_at.clone(),
                finished_at: s.run.finished_at.clone(),
                host: s.run.host.clone(),
            })
            .collect(),
        ..info
    });
    // One pass over the shards' rows: each is written to the merged runs.csv and gathered into
    // its cell's samples, checked as `benchbox report` would check it reading the file back.
    let mut samples = CellSamples::of_written(&run, out)?;
    let copied = rows::write_runs_csv(shards, info.by, &out.join("runs.csv"), &mut samples)?;
    run.write(out)?;
    // A row that `report` would refuse fails the merge as that rebuild did, once the files
    // are written.
    copied.checked.map_err(ReportError::from)?;
    // The summaries and reports, as `benchbox report` makes them from the merged runs.csv.
    let rebuilt = crate::rebuild::rebuild_loaded(
        out,
        (samples.into_run(), Vec::new()),
        None,
        formats,
        None,
        TableOptions::default(),
        &Default::default(),
    )?;
    warnings.extend(rebuilt.warnings.iter().cloned());
    Ok(Merged {
        dir: out.to_path_buf(),
        run: rebuilt.run,
        warnings,
        rows: copied.rows,
    })
}

/// The outermost of `dir` and its ancestors that does not exist yet (what `create_dir_all`
/// will make), or `None` when `dir` exists.
fn outermost_missing(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .last()
        .map(Path::to_path_buf)
}

/// Remove everything in `dir` (a directory that was empty before this merge wrote in it).
fn remove_entries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
    }
}

fn short(hash: &str) -> String {
    hash[..12.min(hash.len())].to_string()
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> MergeError {
    MergeError::Results(ResultsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ShardBy;
    use crate::report::tests_support::write_run;

    /// The two shards (by invocation) of the run `write_run` makes, on two hosts: each has
    /// every warm-up and the measured invocations i with i mod 2 = K.
    fn two_shards(dir: &Path) -> Vec<PathBuf> {
        shards_of(dir, 2)
    }

    /// The `n` shards (by invocation) of the run `write_run` makes, each on its own host.
    fn shards_of(dir: &Path, n: u32) -> Vec<PathBuf> {
        let whole = dir.join("whole");
        fs::create_dir(&whole).unwrap();
        let run = write_run(&whole);
        let csv = fs::read_to_string(whole.join("runs.csv")).unwrap();
        let (header, rows) = csv.split_once('\n').unwrap();
        (0..n)
            .map(|k| {
                let shard = dir.join(format!("shard-{k}"));
                fs::create_dir(&shard).unwrap();
                let mut r = run.clone();
                r.host.hostname = format!("node{k}");
                r.shard = Some(ShardInfo {
                    count: n,
                    by: ShardBy::Invocation,
                    plan_hash: "h".into(),
                    index: Some(k),
                    merged: Vec::new(),
                });
                r.write(&shard).unwrap();
                let mine: String = rows
                    .lines()
                    .filter(|l| {
                        let f: Vec<&str> = l.split(',').collect();
                        f[4] == "warmup" || f[5].parse::<u32>().unwrap() % n == k
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                fs::write(shard.join("runs.csv"), format!("{header}\n{mine}")).unwrap();
                shard
            })
            .collect()
    }

    #[test]
    fn the_one_pass_gives_what_a_rebuild_from_the_merged_runs_csv_gives() {
        let tmp = tempfile::tempdir().unwrap();
        let shards = two_shards(tmp.path());
        let out = tmp.path().join("merged");
        let merged = merge(&shards, &out, false, Vec::new(), &[]).unwrap();
        assert_eq!(
            merged.rows,
            4 * 10 + 4,
            "every measured row, shard 0's warm-ups"
        );
        let read = |f: &str| fs::read(out.join(f)).unwrap();
        let (json, md) = (read("results.json"), read("summary.md"));
        assert!(String::from_utf8_lossy(&md).contains("2 hosts"));
        // `benchbox report` of the merged run reads runs.csv back: the same bytes.
        crate::rebuild::rebuild(&out, None, &[]).unwrap();
        assert!(read("results.json") == json && read("summary.md") == md);
    }

    /// Where `column` is in the runs.csv of [`write_run`] (two axes, no counters).
    fn csv_header_position(column: &str) -> usize {
        let header = results::csv_header(&["jdk".into(), "gc".into()], &[], &["ops".into()]);
        header.iter().position(|c| c == column).unwrap()
    }

    #[test]
    fn a_row_a_read_back_refuses_fails_the_merge_with_the_read_backs_error() {
        let tmp = tempfile::tempdir().unwrap();
        let shards = two_shards(tmp.path());
        // A reason over two lines in shard 0 (quoted), then a negative time in shard 1: the
        // error names the merged file's line, counted as a reader counts it.
        let edit = |path: &Path, row: &str, field: usize, value: &str| -> String {
            let text = fs::read_to_string(path).unwrap();
            let line = text.lines().find(|l| l.contains(row)).unwrap();
            let mut fields: Vec<&str> = line.split(',').collect();
            let was = fields[field].to_string();
            fields[field] = value;
            fs::write(path, text.replacen(line, &fields.join(","), 1)).unwrap();
            was
        };
        let (reason, wall) = (csv_header_position("reason"), csv_header_position("wall_s"));
        edit(
            &shards[0].join("runs.csv"),
            ",measure,2,",
            reason,
            "\"two\nlines\"",
        );
        let wall_was = edit(&shards[1].join("runs.csv"), ",measure,3,", wall, "-1");
        let out = tmp.path().join("merged");
        let e = merge(&shards, &out, false, Vec::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("column `wall_s`: `-1` is negative"), "{e}");
        assert!(!out.exists(), "a failed merge leaves nothing");
        // The same row made negative in the merged runs.csv, read back by `benchbox report`.
        edit(&shards[1].join("runs.csv"), ",measure,3,", wall, &wall_was);
        merge(&shards, &out, false, Vec::new(), &[]).unwrap();
        edit(&out.join("runs.csv"), ",measure,3,", wall, "-1");
        let read_back = crate::rebuild::rebuild(&out, None, &[])
            .unwrap_err()
            .to_string();
        assert_eq!(e, read_back);
    }

    #[test]
    fn errors_come_in_shard_order_whichever_thread_parsed_them() {
        let tmp = tempfile::tempdir().unwrap();
        let shards = shards_of(tmp.path(), 5);
        let edit = |k: usize, from: &str, to: &str| {
            let path = shards[k].join("runs.csv");
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{from} in shard {k}");
            fs::write(&path, text.replacen(from, to, 1)).unwrap();
        };
        // Shard 4's invocation 9 is no number, shard 1's invocation 6 (shard 1 holds 1 and 6)
        // is shard 0's 5 (an overlap), and a row of shard 0 has a negative time: the overlap is
        // the first refusal in shard order, and refusals come before a row's own error.
        edit(4, ",measure,9,", ",measure,nine,");
        edit(1, ",measure,6,", ",measure,5,");
        let wall = results::csv_header(&["jdk".into(), "gc".into()], &[], &["ops".into()])
            .iter()
            .position(|c| c == "wall_s")
            .unwrap();
        let path = shards[0].join("runs.csv");
        let text = fs::read_to_string(&path).unwrap();
        let line = text.lines().find(|l| l.contains(",measure,0,")).unwrap();
        let mut fields: Vec<&str> = line.split(',').collect();
        fields[wall] = "-1";
        fs::write(&path, text.replacen(line, &fields.join(","), 1)).unwrap();
        // Threads finish shards in any order: the answer must not depend on it.
        for attempt in 0..20 {
            let out = tmp.path().join(format!("merged-{attempt}"));
            let e = merge(&shards, &out, false, Vec::new(), &[])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("shards 0 and 1 both hold cell") && e.contains("measure invocation 5"),
                "attempt {attempt}: {e}"
            );
            assert!(!out.exists());
        }
        // Without the overlap, shard 4's refusal; without it too, shard 0's row.
        edit(1, ",measure,5,", ",measure,6,");
        let out = tmp.path().join("merged");
        let e = merge(&shards, &out, false, Vec::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("the invocation `nine` is not a number"), "{e}");
        edit(4, ",measure,nine,", ",measure,9,");
        let e = merge(&shards, &out, false, Vec::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("column `wall_s`: `-1` is negative"), "{e}");
        edit(0, &fields.join(","), line);
        let merged = merge(&shards, &out, false, Vec::new(), &[]).unwrap();
        assert_eq!(
            merged.rows,
            4 * 10 + 4,
            "every measured row, shard 0's warm-ups"
        );
    }

    #[test]
    fn an_unknown_phase_and_an_unknown_cell_are_not_taken_for_each_other_or_a_real_cell() {
        let tmp = tempfile::tempdir().unwrap();
        let shards = shards_of(tmp.path(), 2);
        let path = shards[0].join("runs.csv");
        let text = fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let edit = |line: &mut String, at: usize, value: &str| {
            let mut fields: Vec<&str> = line.split(',').collect();
            fields[at] = value;
            *line = fields.join(",");
        };
        // Shard 0: a warm-up whose phase is `x`, then a measured row whose cell is `x` and
        // whose invocation, 1, is one shard 1 holds for every real cell. Numbered together,
        // the unknown cell took the unknown phase's number, 2: a real cell's place, and a false
        // overlap with shard 1.
        let warmup = lines.iter().position(|l| l.contains(",warmup,")).unwrap();
        edit(&mut lines[warmup], 4, "x");
        let measured = lines
            .iter()
            .position(|l| l.contains(",measure,0,"))
            .unwrap();
        edit(&mut lines[measured], 0, "x");
        edit(&mut lines[measured], 5, "1");
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = tmp.path().join("merged");
        let e = merge(&shards, &out, false, Vec::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("overlap"), "{e}");
        assert!(e.contains("unknown phase `x`"), "{e}");
        assert!(!out.exists());
    }
}
