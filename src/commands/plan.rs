//! `benchbox plan`: print every cell of a matrix, as text or JSON.

use std::io::Write as _;

use benchbox::{exit, plan, resolve};

use super::{CliError, Outcome, code, open_matrix};
use crate::cli::PlanArgs;

pub fn run(args: PlanArgs) -> Outcome {
    // The cells are walked one at a time: a large matrix costs time, not memory.
    let mut m = open_matrix(&args.file)?;
    let digests = resolve::lock_digests(m.path(), m.image_refs())?;
    m.pin_images(digests);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = if args.json {
        plan::write_json(&mut out, &m).and_then(|()| writeln!(out))
    } else {
        plan::write_text(&mut out, &m)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(code(exit::OK)),
        // `benchbox plan ... | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code(exit::OK)),
        Err(e) => Err(CliError::usage(e)),
    }
}
