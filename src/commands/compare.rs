//! `benchbox compare`: compare two runs cell by cell, or one run's cells along an axis
//! (`--along`), print the verdicts, gate on regressions.

use std::path::Path;

use benchbox::results::RunResults;
use benchbox::status::RunStatus;
use benchbox::{along, compare, lock, stats};

use super::{CliError, Outcome, code};
use crate::cli::{CompareArgs, Format};

pub fn run(args: CompareArgs) -> Outcome {
    let mut read_warnings = Vec::new();
    let (base, candidate) = match (&args.candidate, &args.along) {
        (Some(candidate), _) => {
            // Both sides are read before either error is printed: the user fixes both at once.
            match (
                load(&args.base, "base", &mut read_warnings),
                load(candidate, "candidate", &mut read_warnings),
            ) {
                (Ok(b), Ok(c)) => (b, Some(c)),
                (Err(b), Err(c)) => return Err(b.and(c)),
                (Err(e), _) | (_, Err(e)) => return Err(e),
            }
        }
        // clap requires one of the two; --along alone: one run.
        (None, _) => (load(&args.base, "", &mut read_warnings)?, None),
    };
    let runs: Vec<&RunResults> = [Some(&base), candidate.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    let threshold = compare::parse_threshold(&args.threshold).map_err(CliError::usage)?;
    let mut metrics = Vec::new();
    for m in &args.metric {
        let m = compare::resolve_metric(m, &runs).map_err(CliError::usage)?;
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    let opts = compare::CompareOptions {
        metrics,
        threshold,
        stats: stats::StatsOptions::with_resamples(args.resamples),
        allow_partial: args.allow_partial,
    };
    let mut cmp = match (&candidate, &args.along) {
        (Some(candidate), _) => compare::compare(&base, candidate, &opts),
        (None, Some(axis)) => along::compare_along(&base, axis, args.base_value.as_deref(), &opts)
            .map_err(CliError::usage)?,
        (None, None) => unreachable!("clap requires CANDIDATE or --along"),
    };
    // The metrics' units and directions: the candidate's, the one run's along an axis.
    let candidate = candidate.as_ref().unwrap_or(&base);
    cmp.warnings.splice(0..0, read_warnings);
    let markdown = benchbox::render::compare::markdown(&cmp, candidate, args.strict);
    match args.format {
        Format::Table => print!(
            "{}",
            benchbox::render::compare::table(&cmp, candidate, args.strict)
        ),
        Format::Md => print!("{markdown}"),
        Format::Json => println!("{}", benchbox::render::compare::json(&cmp)),
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{markdown}"));
        if let Err(e) = appended {
            eprintln!(
                "warning: cannot append to GITHUB_STEP_SUMMARY `{}`: {e}",
                Path::new(&path).display()
            );
        }
    }
    Ok(code(cmp.exit_code(args.strict)))
}

/// One side (`side` is "base" or "candidate", or empty for the one run of `--along`): the run
/// read back, validated against its plan, with what the reader must know (a torn last row left
/// out; a run still going, or left `running` by a benchbox that died, which is then not
/// complete).
fn load(given: &Path, side: &str, warnings: &mut Vec<String>) -> Result<RunResults, CliError> {
    // Any run that cannot be read is the user's to fix (exit 2).
    let (mut run, read) = benchbox::results::load_checked(given).map_err(CliError::usage)?;
    warnings.extend(read.into_iter().map(|w| match side {
        "" => w,
        side => format!("{side}: {w}"),
    }));
    let side = match side {
        "" => String::new(),
        side => format!("{side} "),
    };
    if let Ok(dir) = benchbox::results::run_dir(given) {
        match lock::holder(&dir) {
            Some(holder) => {
                run.status = RunStatus::Running;
                warnings.push(format!(
                    "the {side}run `{}` is still running ({holder} holds its lock)",
                    dir.display()
                ));
            }
            None if run.status == RunStatus::Running => {
                run.status = RunStatus::Interrupted;
                warnings.push(format!(
                    "the {side}run `{}` was never finished: the benchbox that ran it stopped before the end\n  hint: `benchbox report {0}` marks it, `benchbox run MATRIX --resume {0}` finishes it",
                    dir.display()
                ));
            }
            None => {}
        }
    }
    Ok(run)
}
