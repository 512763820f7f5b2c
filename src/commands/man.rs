//! `benchbox man`: the man pages (roff), generated from the command line's own definition
//! (`cli.rs`) so they never disagree with `--help`: benchbox.1 on stdout, or with `--dir` one
//! page per command (benchbox-run.1, ...) written into a directory.

use std::path::Path;

use clap::CommandFactory;

use super::completions::write_stdout;
use super::{CliError, Outcome, code};
use crate::cli::{Cli, ManArgs};
use benchbox::exit;

pub fn run(args: ManArgs) -> Outcome {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    match args.dir {
        None => {
            let page = page(&command).map_err(|e| {
                CliError::new(exit::INTERNAL, format!("cannot render the man page: {e}"))
            })?;
            write_stdout(&page)?;
        }
        Some(dir) => {
            let written = write_pages(&command, &dir).map_err(|e| {
                CliError::usage(format!(
                    "cannot write the man pages into `{}`: {e}\n  hint: give --dir a directory you can write to",
                    dir.display()
                ))
            })?;
            println!(
                "wrote {} man pages into {}: {}",
                written.len(),
                dir.display(),
                written.join(", ")
            );
        }
    }
    Ok(code(exit::OK))
}

/// `command`'s page and those of its subcommands (depth first) into `dir`, made if missing;
/// the file names written.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut pending = vec![command.clone()];
    while let Some(cmd) = pending.pop() {
        pending.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let name = clap_mangen::Man::new(cmd.clone()).get_filename();
        std::fs::write(dir.join(&name), page(&cmd)?)?;
        written.push(name);
    }
    written.sort();
    Ok(written)
}

/// One command's page: clap_mangen's sections, with the exit codes as a section of their own
/// (EXIT STATUS, laid out as in `--help`) where clap_mangen would refill them as prose.
fn page(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut out)?;
    }
    out.extend_from_slice(exit_status().as_bytes());
    if command.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

/// The exit-code table of `--help` as a roff section, unfilled so its columns stay.
fn exit_status() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n.nf\n");
    for line in exit::HELP_TABLE.lines().skip(1) {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with(['.', '\'']) {
            roff.push_str("\\&");
        }
        roff.push_str(&line);
        roff.push('\n');
    }
    roff.push_str(".fi\n");
    roff
}
