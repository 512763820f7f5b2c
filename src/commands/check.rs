//! `benchbox check`: parse and validate a matrix file.

use benchbox::exit;

use super::{Outcome, code, open_matrix};
use crate::cli::CheckArgs;

pub fn run(args: CheckArgs) -> Outcome {
    // The cells are walked one at a time: a large matrix costs time, not memory.
    let m = open_matrix(&args.file)?;
    for w in &m.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}: ok, {} cell(s)", args.file.display(), m.len());
    Ok(code(exit::OK))
}
