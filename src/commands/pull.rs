//! `benchbox pull`: fetch and pin every image of a matrix file, or fetch one image reference.

use std::path::Path;

use benchbox::exit;
use benchbox::image::{self, PullOptions};
use benchbox::resolve::{self, LockMode};

use super::{Outcome, code, load_matrix, open_store};
use crate::cli::PullArgs;

pub fn run(args: PullArgs) -> Outcome {
    let PullArgs {
        target,
        update,
        cache,
    } = args;
    let store = open_store(&cache)?;
    let opts = PullOptions {
        progress: true,
        ..Default::default()
    };
    let is_file = target.ends_with(".toml") || Path::new(&target).is_file();
    if is_file {
        let mut matrix = load_matrix(Path::new(&target))?;
        let mode = if update {
            LockMode::Update
        } else {
            LockMode::Use
        };
        let images = resolve::resolve(&mut matrix, &store, &opts, mode)?;
        if images.is_empty() {
            println!("{target}: no images (cells run on a rootfs directory or the host)");
        } else {
            for (r, i) in &images {
                println!(
                    "{r}  {}  {}  {} layer(s)",
                    i.digest,
                    i.platform,
                    i.layers.len()
                );
                for note in &i.notes {
                    eprintln!("warning: {r}: {note}");
                }
            }
            println!("pinned in {}", resolve::lock_path(&matrix).display());
        }
    } else {
        let i = image::pull(&store, &target, &opts)?;
        println!(
            "{}  {}  {}  {} layer(s)",
            i.reference,
            i.digest,
            i.platform,
            i.layers.len()
        );
        for note in &i.notes {
            eprintln!("warning: {}: {note}", i.reference);
        }
    }
    Ok(code(exit::OK))
}
