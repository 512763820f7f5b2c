//! The `benchbox` binary: parse the command line, run the command, print its error if it failed,
//! and exit with its code. The command line is declared in `cli`, the commands are in `commands`.

mod cli;
mod commands;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Check(args) => commands::check::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Calibrate(args) => commands::calibrate::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Images(args) => commands::images::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Export(args) => commands::export::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            // A closed stderr loses the message, never the exit code.
            let mut stderr = std::io::stderr().lock();
            for message in e.messages() {
                let _ = writeln!(stderr, "error: {message}");
            }
            e.exit_code()
        }
    }
}
