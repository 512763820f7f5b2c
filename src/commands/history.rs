//! `benchbox history`: the change points of every cell and metric across runs, printed, drawn,
//! and with `--check` a gate on the regressions nobody accepted.

use std::path::{Path, PathBuf};

use benchbox::history::{self, History, accepted};
use benchbox::render::{history as text, history_html};
use benchbox::{compare, exit, stats};

use super::{CliError, Outcome, code};
use crate::cli::{Format, HistoryArgs};

pub fn run(args: HistoryArgs) -> Outcome {
    let min_change = compare::parse_threshold(&args.min_change).map_err(|_| {
        CliError::usage(format!(
            "invalid --min-change `{}`\n  hint: give a percentage such as 5% or 2.5 (meaning 2.5%)",
            args.min_change
        ))
    })?;
    if !(args.p_value > 0.0 && args.p_value < 1.0) {
        return Err(CliError::usage(format!(
            "invalid --p-value `{}`\n  hint: give a probability between 0 and 1, such as 0.001",
            args.p_value
        )));
    }
    let opts = history::Options {
        metrics: args.metric.clone(),
        detect: history::changepoint::Options {
            p_value: args.p_value,
            min_change,
            window: args.window as usize,
        },
        since: args.since.clone(),
        until: args.until.clone(),
        stats: stats::StatsOptions::with_resamples(args.resamples),
    };
    let mut h = history::build(&args.dirs, &opts).map_err(CliError::usage)?;
    if let Some(file) = accepted_file(&h, args.accepted.as_deref())? {
        let entries = accepted::read(&file).map_err(CliError::usage)?;
        h.acknowledge(&entries);
    }
    let failing = h.failing();
    match args.format {
        Format::Table => print!("{}", text::table(&h, &failing, args.check)),
        Format::Md => print!("{}", text::markdown(&h, &failing, args.check)),
        Format::Json => println!("{}", text::json(&h, &failing)),
    }
    if let Some(path) = &args.html {
        let page = history_html::html(&h, &failing, args.check)
            .map_err(|e| CliError::new(exit::INTERNAL, e))?;
        write(path, page.as_bytes())?;
        eprintln!("history.html: {}", path.display());
    }
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::usage(format!("cannot create `{}`: {e}", dir.display())))?;
        for s in &h.series {
            let plot = history_html::trend_plot(&h, s, true)
                .map_err(|e| CliError::new(exit::INTERNAL, e))?;
            write(&dir.join(format!("{}.svg", plot.stem)), plot.svg.as_bytes())?;
            if let Some(png) = &plot.png {
                write(&dir.join(format!("{}.png", plot.stem)), png)?;
            }
        }
        eprintln!("plots: {} ({} series)", dir.display(), h.series.len());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{}", text::markdown(&h, &failing, args.check)));
        if let Err(e) = appended {
            eprintln!(
                "warning: cannot append to GITHUB_STEP_SUMMARY `{}`: {e}",
                Path::new(&path).display()
            );
        }
    }
    if args.check && !failing.is_empty() {
        return Ok(code(exit::REGRESSION));
    }
    Ok(code(exit::OK))
}

/// The accepted file to read: `--accepted` (which must exist), else NAME.accepted.toml beside
/// the newest run's matrix file when there is one.
fn accepted_file(h: &History, given: Option<&Path>) -> Result<Option<PathBuf>, CliError> {
    if let Some(path) = given {
        if !path.is_file() {
            return Err(CliError::usage(format!(
                "the accepted file `{}` does not exist\n  hint: create it with [[accepted]] entries (revision, metric, reason), or leave --accepted out",
                path.display()
            )));
        }
        return Ok(Some(path.to_path_buf()));
    }
    let Some(newest) = h.runs.last() else {
        return Ok(None);
    };
    let matrix = Path::new(&newest.matrix_path);
    let beside = matrix
        .parent()
        .unwrap_or(Path::new(""))
        .join(format!("{}.accepted.toml", newest.matrix_name));
    Ok(beside.is_file().then_some(beside))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes)
        .map_err(|e| CliError::usage(format!("cannot write `{}`: {e}", path.display())))
}
