//! `benchbox merge`: the shards of one run, merged into one run directory (see
//! `benchbox::merge`), and what the user should know of it.

use benchbox::merge::{self, MergeError};
use benchbox::{exit, ui};

use super::{CliError, Outcome, code};
use crate::cli::MergeArgs;

pub fn run(args: MergeArgs) -> Outcome {
    let command_line: Vec<String> = std::env::args().collect();
    let merged = merge::merge(
        &args.runs,
        &args.out,
        args.allow_missing,
        command_line,
        &benchbox::render::Format::ALL,
    )
    .map_err(|e| match e {
        MergeError::Refused(message) => CliError::usage(message),
        MergeError::Results(e) => e.into(),
        MergeError::Report(e) => e.into(),
        MergeError::Lock(e) => e.into(),
    })?;
    for w in &merged.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", ui::summary_table(&merged.run));
    let shards = merged.run.shard.as_ref().map_or(0, |s| s.merged.len());
    println!(
        "merged {shards} shard(s), {} row(s): {}",
        merged.rows,
        merged.dir.display()
    );
    Ok(code(exit::OK))
}
