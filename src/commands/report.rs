//! `benchbox report`: rebuild a run's summaries and reports from its runs.csv, with the run's
//! lock held.

use std::path::Path;

use benchbox::render::Format;
use benchbox::render::latex::{CiStyle, TableOptions};
use benchbox::{exit, lock, ui};

use super::{CliError, Outcome, code};
use crate::cli::{ReportArgs, ReportFormat};

pub fn run(args: ReportArgs) -> Outcome {
    let dir = benchbox::results::run_dir(&args.run)?;
    // A run still being written is left alone: its files are the writer's.
    let _lock = match lock::RunLock::acquire(&dir, "report") {
        Ok(l) => l,
        Err(lock::LockError::InUse { holder, .. }) => {
            return Err(CliError::new(
                exit::IN_USE,
                format!(
                    "the run `{}` is still running ({holder} holds its lock); report leaves its files as they are\n  hint: wait for it to finish, or look at it now with `benchbox compare --allow-partial`",
                    dir.display()
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let table = TableOptions {
        wide: args.wide,
        ci_style: match args.ci_style {
            crate::cli::CiStyle::Brackets => CiStyle::Brackets,
            crate::cli::CiStyle::Pm => CiStyle::Pm,
        },
        marks: args.marks,
    };
    // The figure flags win over the matrix's [report]; they are not recorded.
    let figures = benchbox::spec::ReportOptions {
        figure_width_in: args.figure_width,
        font_size_pt: args.font_size,
        log_scale: args.log_scale,
        palette: args.palette,
        ..Default::default()
    };
    rebuild(
        &dir,
        args.reference,
        &args.format,
        args.resamples,
        table,
        &figures,
    )
}

fn rebuild(
    run: &Path,
    reference: Option<String>,
    format: &[ReportFormat],
    resamples: Option<usize>,
    table: TableOptions,
    figures: &benchbox::spec::ReportOptions,
) -> Outcome {
    let rebuilt = benchbox::rebuild::rebuild_with(
        run,
        reference.as_deref(),
        &render_formats(format),
        resamples,
        table,
        figures,
    )?;
    for w in &rebuilt.warnings {
        eprintln!("warning: {w}");
    }
    print!(
        "{}",
        ui::summary_table_with(&rebuilt.run, reference.as_deref())
    );
    let written = rebuilt.written;
    println!("wrote {}", written.results_json.display());
    // summary.md or a report that could not be written is said after the files that were
    // (exit 2, as before: the run's data is intact and `report` can be run again).
    let mut failed = Vec::new();
    match written.summary_md {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => failed.push(e.to_string()),
    }
    let paths = written.reports.unwrap_or_else(|e| {
        failed.push(e.to_string());
        Vec::new()
    });
    // The plots are many: they are counted, not listed.
    let plots = paths.iter().filter(|p| in_plots(p)).count();
    for p in paths.iter().filter(|p| !in_plots(p)) {
        println!("wrote {}", p.display());
    }
    if plots > 0 {
        println!(
            "wrote {plots} plot files in {}",
            run.join("plots").display()
        );
    }
    if !failed.is_empty() {
        return Err(CliError::all(exit::USAGE, failed));
    }
    Ok(code(exit::OK))
}

fn in_plots(path: &Path) -> bool {
    path.parent().is_some_and(|d| d.ends_with("plots"))
}

/// The formats `--format` names, `all` being every one.
fn render_formats(given: &[ReportFormat]) -> Vec<Format> {
    if given.contains(&ReportFormat::All) {
        return Format::ALL.to_vec();
    }
    given
        .iter()
        .filter_map(|f| match f {
            ReportFormat::All => None,
            ReportFormat::Html => Some(Format::Html),
            ReportFormat::Tex => Some(Format::Latex),
            ReportFormat::Csv => Some(Format::StatsCsv),
            ReportFormat::Bmf => Some(Format::Bmf),
            ReportFormat::Plots => Some(Format::Plots),
        })
        .collect()
}
