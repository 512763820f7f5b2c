//! Image references of a matrix -> pinned, unpacked images, through its lock file.
//!
//! `envs/NAME.lock` (beside `envs/NAME.toml`) records the manifest digest every image reference
//! resolved to. Three modes:
//! - [`LockMode::Use`] (`run`, `pull FILE`): a pinned reference uses its digest; an unpinned one is
//!   resolved (cache first, then the registry) and added to the lock file, like Cargo.lock.
//! - [`LockMode::Locked`] (`run --locked`, for CI): the lock file must pin every reference;
//!   nothing is resolved and the file is never written.
//! - [`LockMode::Update`] (`pull --update`): every tag is re-resolved at its registry.
//!
//! Then the digests are folded into the cells ([`crate::spec::pin_images`]), so a cell's id
//! changes when its image does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::image::{self, ImageError, PullOptions, ResolvedImage, Store, lock};
use crate::spec::{self, Matrix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Use,
    Locked,
    Update,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("{0}")]
    Locked(String),
}

impl ResolveError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ResolveError::Image(e) => e.exit_code(),
            ResolveError::Locked(_) => crate::exit::IMAGE,
        }
    }
}

/// The distinct image references of a matrix, as written, in cell order (a cell's own, then
/// its services'): what `pull`, the lock file and `run` resolve.
pub fn image_refs(matrix: &Matrix) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut refs: Vec<String> = Vec::new();
    for cell in &matrix.cells {
        for r in cell.image_refs() {
            if seen.insert(r) {
                refs.push(r.to_string());
            }
        }
    }
    refs
}

pub fn lock_path(matrix: &Matrix) -> PathBuf {
    lock::lock_path(&matrix.path)
}

/// Pin the cells to the digests the lock file already holds; no store, no network (`plan`).
pub fn pin_from_lock(matrix: &mut Matrix) -> Result<(), ResolveError> {
    let refs = image_refs(matrix);
    let digests = lock_digests(&matrix.path, &refs)?;
    spec::pin_images(matrix, &digests);
    Ok(())
}

/// The digests the lock file of the matrix at `matrix_path` pins for `refs` (references as
/// written), by reference; empty without a lock file. What [`pin_from_lock`] folds into cells.
pub fn lock_digests(
    matrix_path: &Path,
    refs: &[String],
) -> Result<BTreeMap<String, String>, ResolveError> {
    let Some(lockfile) = lock::LockFile::read(&lock::lock_path(matrix_path))? else {
        return Ok(BTreeMap::new());
    };
    Ok(refs
        .iter()
        .filter_map(|r| lockfile.get(r).map(|l| (r.clone(), l.digest.clone())))
        .collect())
}

/// Resolve and unpack every image of the matrix, update its lock file as `mode` says, and pin
/// the cells. Returns the images by reference as written.
pub fn resolve(
    matrix: &mut Matrix,
    store: &Store,
    opts: &PullOptions,
    mode: LockMode,
) -> Result<BTreeMap<String, ResolvedImage>, ResolveError> {
    let refs = image_refs(matrix);
    let mut images = BTreeMap::new();
    if refs.is_empty() {
        return Ok(images);
    }
    let path = lock_path(matrix);
    let existing = lock::LockFile::read(&path)?;
    if mode == LockMode::Locked {
        let Some(lockfile) = &existing else {
            return Err(ResolveError::Locked(format!(
                "`{}` does not exist, and --locked needs every image pinned\n  hint: run `benchbox pull {}` and commit the lock file",
                path.display(),
                matrix.path.display()
            )));
        };
        let missing = lockfile.missing(refs.iter().map(String::as_str));
        if !missing.is_empty() {
            return Err(ResolveError::Locked(format!(
                "`{}` is out of date: no pin for {}\n  hint: run `benchbox pull {}` and commit the lock file",
                path.display(),
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                matrix.path.display()
            )));
        }
    }
    let mut lockfile = existing.clone().unwrap_or_else(lock::LockFile::new);
    for r in &refs {
        let resolved = match mode {
            LockMode::Update => image::pull(store, r, opts)?,
            LockMode::Use | LockMode::Locked => {
                let pinned = lockfile.get(r).map(|l| l.digest.clone());
                image::ensure(store, r, pinned.as_deref(), opts)?
            }
        };
        lockfile.set(r, &resolved.digest, &resolved.platform)?;
        images.insert(r.clone(), resolved);
    }
    if mode != LockMode::Locked && existing.as_ref() != Some(&lockfile) {
        lockfile.write(&path)?;
    }
    let digests = images
        .iter()
        .map(|(r, i)| (r.clone(), i.digest.clone()))
        .collect();
    spec::pin_images(matrix, &digests);
    Ok(images)
}

/// The `/etc/passwd` and `/etc/group` an image's container sees, read from its unpacked layers
/// (top first, as overlayfs stacks them: the topmost layer with the file wins, a whiteout or
/// an opaque `/etc` hides the layers below). `None` when a layer makes them something only the
/// container could resolve (a symlinked `/etc` or file): then the user is not checked.
pub fn image_accounts(image: &ResolvedImage) -> Option<(String, String)> {
    Some((
        layered_etc_file(&image.layers, "passwd")?,
        layered_etc_file(&image.layers, "group")?,
    ))
}

/// `etc/NAME` through overlay layers, top first; missing is empty, as the sandbox reads it.
fn layered_etc_file(layers: &[PathBuf], name: &str) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let whiteout = |m: &std::fs::Metadata| m.file_type().is_char_device() && m.rdev() == 0;
    for layer in layers {
        let etc = layer.join("etc");
        let Ok(m) = std::fs::symlink_metadata(&etc) else {
            continue;
        };
        if m.file_type().is_symlink() {
            return None;
        }
        if !m.is_dir() {
            // A whiteout of /etc, or a file in its place: no account files at all.
            return Some(String::new());
        }
        let file = etc.join(name);
        match std::fs::symlink_metadata(&file) {
            Ok(f) if f.file_type().is_symlink() => return None,
            Ok(f) if whiteout(&f) => return Some(String::new()),
            Ok(f) if f.is_file() => {
                return std::fs::read(&file)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
            }
            Ok(_) => return Some(String::new()),
            Err(_) => {}
        }
        let opaque = xattr::get(&etc, "trusted.overlay.opaque").ok().flatten();
        if opaque.as_deref() == Some(b"y") {
            return Some(String::new());
        }
    }
    Some(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The account files as overlayfs would merge the layers: the topmost file wins, a
    /// whiteout or an opaque /etc hides the lower layers, a symlink is not followed.
    #[test]
    fn account_files_through_layers() {
        let dir = tempfile::tempdir().unwrap();
        let (top, mid, base) = (
            dir.path().join("top"),
            dir.path().join("mid"),
            dir.path().join("base"),
        );
        for l in [&top, &mid, &base] {
            std::fs::create_dir_all(l).unwrap();
        }
        write(&base.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n");
        write(&base.join("etc/group"), "root:x:0:\n");
        write(&mid.join("etc/passwd"), "bench:x:1:1::/:/bin/sh\n");
        let layers = vec![top.clone(), mid.clone(), base.clone()];
        assert_eq!(
            layered_etc_file(&layers, "passwd").as_deref(),
            Some("bench:x:1:1::/:/bin/sh\n")
        );
        assert_eq!(
            layered_etc_file(&layers, "group").as_deref(),
            Some("root:x:0:\n")
        );
        assert_eq!(layered_etc_file(&layers, "shadow").as_deref(), Some(""));
        // A symlink could point anywhere on the host: unknown.
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", top.join("etc/passwd")).unwrap();
        assert_eq!(layered_etc_file(&layers, "passwd"), None);
        std::fs::remove_file(top.join("etc/passwd")).unwrap();
        // A whiteout (a 0/0 character device) deletes the file of the layers below; making one
        // needs CAP_MKNOD, which the test suite has (it runs as root).
        if nix::sys::stat::mknod(
            &top.join("etc/group"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok()
        {
            assert_eq!(layered_etc_file(&layers, "group").as_deref(), Some(""));
        }
        // An opaque /etc hides everything below it (a trusted.* xattr: root only as well).
        if xattr::set(top.join("etc"), "trusted.overlay.opaque", b"y").is_ok() {
            assert_eq!(layered_etc_file(&layers, "passwd").as_deref(), Some(""));
        }
    }
}
