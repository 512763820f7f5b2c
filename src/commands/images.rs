//! `benchbox images`: list the cached images, or prune what nothing uses.

use benchbox::image::{self, Store};
use benchbox::{exit, metrics};

use super::{CliError, Outcome, code, open_store};
use crate::cli::{ImagesAction, ImagesArgs};

pub fn run(args: ImagesArgs) -> Outcome {
    let store = open_store(&args.cache)?;
    match args.action {
        None => list(&store),
        Some(ImagesAction::Prune { lock, out }) => {
            let keep = image::images_in_use(&lock, &out).map_err(CliError::usage)?;
            let report = image::prune(&store, &keep);
            println!(
                "removed {} image(s), {} blob(s), {} layer(s), {}; kept {} pinned or recently used",
                report.images.len(),
                report.blobs,
                report.layers,
                metrics::human_bytes(report.bytes as f64),
                keep.len()
            );
            for e in &report.errors {
                eprintln!("warning: {e}");
            }
        }
    }
    Ok(code(exit::OK))
}

/// One line per cached image, newest use first.
fn list(store: &Store) {
    let list = image::list(store);
    if list.is_empty() {
        println!("no cached images in {}", store.root().display());
    }
    for img in list {
        let age = img
            .last_used
            .elapsed()
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        println!(
            "{}  {}  {}  {}  last used {} day(s) ago",
            img.references.join(", "),
            &img.digest[..img.digest.len().min(19)],
            img.platform,
            metrics::human_bytes(img.size as f64),
            age
        );
    }
}
