//! `benchbox completions SHELL`: the shell's completion script, generated from the command
//! line's own definition (`cli.rs`), so it completes exactly the commands and flags there are.

use clap::CommandFactory;

use super::{CliError, Outcome, code};
use crate::cli::{Cli, CompletionsArgs};
use benchbox::exit;

pub fn run(args: CompletionsArgs) -> Outcome {
    let mut command = Cli::command();
    // Into a buffer first: a script cut short by a closed pipe must not look complete.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "benchbox", &mut script);
    write_stdout(&script)?;
    Ok(code(exit::OK))
}

/// `bytes` to stdout; a reader that went away early is not benchbox's failure (exit 0, as the
/// other commands' output).
pub(super) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::new(
            exit::INTERNAL,
            format!("cannot write to stdout: {e}"),
        )),
        _ => Ok(()),
    }
}
