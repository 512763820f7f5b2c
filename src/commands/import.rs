//! `benchbox import`: make a reproducible image from a directory, store it, optionally push it.

use benchbox::exit;
use benchbox::image::{self, PullOptions};

use super::{Outcome, code, open_store};
use crate::cli::ImportArgs;

pub fn run(args: ImportArgs) -> Outcome {
    let ImportArgs {
        dir,
        tag,
        push,
        cache,
    } = args;
    let store = open_store(&cache)?;
    let imported = image::import_dir(&store, &dir, &tag)?;
    println!("{}  {}", imported.reference, imported.digest);
    if let Some(dest) = push {
        // `--push` without a value pushes to the --tag reference.
        let dest = if dest.is_empty() { tag.clone() } else { dest };
        let digest = image::push(&store, &tag, &dest, &PullOptions::default())?;
        println!("pushed {dest}  {digest}");
    }
    Ok(code(exit::OK))
}
