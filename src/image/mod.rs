//! OCI images: pull, verify, cache, unpack, pin, import and push.
//!
//! An OCI image is a *manifest* (JSON) naming a *config* blob (JSON: environment, working
//! directory, entrypoint, the uncompressed digests of the layers) and an ordered list of *layer*
//! blobs (tar archives, usually gzipped), each a set of changes to the layers below it. A tag may
//! instead point at an *index* (a multi-arch "manifest list") whose entries are per-platform
//! manifests; we pick the one for this host. Everything is addressed by the sha256 of its bytes,
//! so a blob can be verified on arrival and shared between images.
//!
//! benchbox keeps images in a content-addressed [`Store`] (see [`store`]): verified blobs, and each
//! layer unpacked once into its own directory. A container's root filesystem is an overlay whose
//! lower directories are those layer directories ([`ResolvedImage::layers`], top first), so ten
//! cells on one image copy nothing, and deletions inside a layer are kept as overlay whiteouts
//! (see [`unpack`]).
//!
//! All calls here are synchronous: the network client is async, so each call runs it on a small
//! private tokio runtime and the rest of benchbox never sees it. [`registry`] is the only code in
//! benchbox that touches the network.
//!
//! Exit codes (see [`ImageError::exit_code`]): 4 when an image cannot be resolved or used
//! (unknown repository or tag, unreachable registry, digest mismatch, unsafe layer), 2 for a
//! malformed reference, 1 for local system errors (a full disk, permissions).

pub mod import;
pub mod lock;
mod net_error;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use import::{import_dir, import_layers};
pub use lock::{LockFile, LockedImage};
pub use reference::Reference;
pub use store::{CachedImage, PruneReport, Store};

/// Everything that can go wrong with images. Messages are lowercase, name the reference or path,
/// and end with a `\n  hint: ...` line where the user can act.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {why}")]
    BadReference { reference: String, why: String },

    #[error(
        "image {reference} not found: the registry knows no such repository, tag or digest\n  hint: check the name and tag (tags are case-sensitive); a pinned digest may have been deleted from the registry"
    )]
    NotFound { reference: String },

    /// The cause in words (`net_error`): the name does not resolve, nothing listens, TLS, ...
    #[error("cannot pull {reference}: {message}\n  hint: {hint}")]
    Unreachable {
        registry: String,
        reference: String,
        message: String,
        hint: String,
    },

    #[error(
        "registry {registry} refused access to {reference}: {detail}\n  hint: log in (credentials are read from the `auths` of ~/.docker/config.json, or $DOCKER_CONFIG/config.json)"
    )]
    Unauthorized {
        registry: String,
        reference: String,
        detail: String,
    },

    #[error("registry error for {reference}: {detail}")]
    Registry { reference: String, detail: String },

    #[error(
        "digest mismatch for {what} of {reference}: expected {expected}, got {actual}; the download was discarded\n  hint: the registry (or a proxy) served corrupt data; try again, and report it if it persists"
    )]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error(
        "download of {digest} for {reference} was cut short {attempts} times (got {got} of {size} bytes): {detail}\n  hint: the connection to the registry is unstable; try again"
    )]
    Truncated {
        reference: String,
        digest: String,
        attempts: u32,
        got: u64,
        size: u64,
        detail: String,
    },

    #[error(
        "image {reference} has no manifest for this host's platform {platform} (it offers: {offered})"
    )]
    NoPlatform {
        reference: String,
        platform: String,
        offered: String,
    },

    #[error("image {reference} is malformed: {detail}")]
    Malformed { reference: String, detail: String },

    #[error(
        "unsafe layer {layer} of {reference}: entry {entry:?} {why}; nothing of this layer was kept\n  hint: the image was built by a broken or malicious tool; do not use it"
    )]
    UnsafeLayer {
        reference: String,
        layer: String,
        entry: String,
        why: String,
    },

    #[error(
        "layer {layer} of {reference} uses an unsupported format: {detail}\n  hint: benchbox reads plain and gzip-compressed tar layers; rebuild the image with gzip layers"
    )]
    UnsupportedLayer {
        reference: String,
        layer: String,
        detail: String,
    },

    #[error(
        "image {reference} is not in the local store\n  hint: pull it first (benchbox pull {reference})"
    )]
    NotCached { reference: String },

    #[error("{path}: {source}{}", io_hint(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("lock file {path}: {detail}\n  hint: regenerate it with `benchbox pull --update`")]
    BadLockFile { path: PathBuf, detail: String },
}

fn io_hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    // By kind, not errno: wrappers (tempfile adds the path) keep the kind but not the errno.
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            "\n  hint: the disk is full; free space or point BENCHBOX_CACHE at a larger disk (nothing partial was kept)"
        }
        ErrorKind::PermissionDenied => {
            "\n  hint: check that the cache directory (--cache, BENCHBOX_CACHE, ~/.cache/benchbox) belongs to the user running benchbox"
        }
        _ => "",
    }
}

impl ImageError {
    /// The process exit code for this error: 4 when the image cannot be
    /// resolved or used, 2 for a malformed reference, 1 for local system errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            ImageError::BadReference { .. } | ImageError::BadLockFile { .. } => crate::exit::USAGE,
            ImageError::Io { .. } => crate::exit::INTERNAL,
            _ => crate::exit::IMAGE,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: path.into(),
            source,
        }
    }
}

/// How to talk to registries.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registries (`host` or `host:port`) reached over plain HTTP. [`PullOptions::default`] holds
    /// `localhost`, `127.0.0.1` and `::1` plus the comma-separated `BENCHBOX_INSECURE_REGISTRIES`.
    pub insecure: Vec<String>,
    /// Progress bars per layer on stderr (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        let mut insecure: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Ok(extra) = std::env::var("BENCHBOX_INSECURE_REGISTRIES") {
            insecure.extend(
                extra
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        PullOptions {
            insecure,
            progress: false,
        }
    }
}

/// What the image config says a container should start with, unless the matrix overrides it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    /// `Env`, split at the first `=`, in image order.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: Option<String>,
}

/// An image ready to run: its layers unpacked in the store.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The normalised reference asked for (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The digest of the platform-specific manifest: what a lock file pins.
    pub digest: String,
    /// `linux/amd64`, `linux/arm64/v8`.
    pub platform: String,
    /// Unpacked layer directories, TOP FIRST (the order of overlay's `lowerdir=`).
    pub layers: Vec<PathBuf>,
    /// What unpacking its layers without root could not keep (one line per layer concerned).
    pub notes: Vec<String>,
    pub config: ImageConfig,
    /// Blobs this call downloaded (0 when everything was cached), and their bytes.
    pub downloaded_blobs: usize,
    pub downloaded_bytes: u64,
}

/// Resolves `reference` to an unpacked image, using the store when it can.
///
/// With `pinned_digest` (from a lock file) the cached manifest of that digest is used, and the
/// registry is asked for exactly that digest when it is missing: a tag moved since does not
/// matter. Without it, the tag's last resolution in this store is used; only a reference never
/// seen here goes to the registry. Use [`pull`] to re-resolve a tag.
pub fn ensure(
    store: &Store,
    reference: &str,
    pinned_digest: Option<&str>,
    opts: &PullOptions,
) -> Result<ResolvedImage, ImageError> {
    let r = Reference::parse(reference)?;
    let digest = match pinned_digest {
        Some(d) => {
            reference::check_digest(d).map_err(|why| ImageError::BadReference {
                reference: format!("{r}@{d}"),
                why,
            })?;
            Some(d.to_string())
        }
        None => r
            .digest
            .clone()
            .or_else(|| store.ref_digest(&r.to_string())),
    };
    if let Some(d) = &digest {
        if let Some(img) = store.complete_image(&r.to_string(), d)? {
            return Ok(img);
        }
        if store.has_blob(d) {
            // The manifest is here but a layer is missing (pruned, or an interrupted pull):
            // finish it, fetching only what is missing.
            return registry::materialize(store, &r, d, opts);
        }
        return registry::pull_reference(store, &r.with_digest(d), &r, opts);
    }
    registry::pull_reference(store, &r, &r, opts)
}

/// Resolves `reference` at the registry (a tag may have moved) and makes sure it is unpacked.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
) -> Result<ResolvedImage, ImageError> {
    let r = Reference::parse(reference)?;
    registry::pull_reference(store, &r, &r, opts)
}

/// Pushes an image of the store (by the reference it was pulled or imported as) to `to`;
/// returns the manifest digest, the same as in the store.
pub fn push(
    store: &Store,
    tag_in_store: &str,
    to: &str,
    opts: &PullOptions,
) -> Result<String, ImageError> {
    let from = Reference::parse(tag_in_store)?;
    let digest = match &from.digest {
        Some(d) => d.clone(),
        None => store
            .ref_digest(&from.to_string())
            .ok_or_else(|| ImageError::NotCached {
                reference: from.to_string(),
            })?,
    };
    let to = Reference::parse(to)?;
    registry::push_image(store, &digest, &to, opts)
}

/// What the store holds, newest use first.
pub fn list(store: &Store) -> Vec<CachedImage> {
    store.list()
}

/// Removes every image whose manifest digest is not in `keep_digests`, then every blob and
/// layer no remaining image uses.
pub fn prune(store: &Store, keep_digests: &HashSet<String>) -> PruneReport {
    store.prune(keep_digests)
}

/// How long a run keeps its images from `prune` after it last wrote its results.
const RECENT_RUN: Duration = Duration::from_secs(30 * 86_400);

/// Digests to keep when pruning: every lock file given (default `envs/*.lock`, relative to the
/// working directory) and every image a run under `out` used in the last 30 days. An error (a
/// lock file given that is missing or unreadable) is the user's to fix.
pub fn images_in_use(locks: &[PathBuf], out: &Path) -> Result<HashSet<String>, String> {
    let mut keep = HashSet::new();
    let mut files: Vec<PathBuf> = locks.to_vec();
    if files.is_empty()
        && let Ok(entries) = std::fs::read_dir("envs")
    {
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "lock")),
        );
    }
    for file in files {
        match LockFile::read(&file) {
            Ok(Some(lock)) => keep.extend(lock.images.values().map(|l| l.digest.clone())),
            Ok(None) => return Err(format!("lock file `{}` does not exist", file.display())),
            Err(e) => return Err(e.to_string()),
        }
    }
    let recent = SystemTime::now() - RECENT_RUN;
    for matrix_dir in std::fs::read_dir(out).into_iter().flatten().flatten() {
        for run in std::fs::read_dir(matrix_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let results = run.path().join("results.json");
            let fresh = std::fs::metadata(&results)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= recent);
            if run.file_name() == "latest" || !fresh {
                continue;
            }
            if let Ok(r) = crate::results::RunResults::read(&run.path()) {
                keep.extend(r.plan.cells.iter().filter_map(|c| c.image_digest.clone()));
            }
        }
    }
    Ok(keep)
}

/// Seconds since the epoch, for last-use records.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This host's platform as OCI writes it: (os, architecture, variant).
pub fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "riscv64" => ("riscv64", None),
        "s390x" => ("s390x", None),
        other => (other, None),
    };
    ("linux", arch, variant)
}

/// `os/arch[/variant]`.
pub(crate) fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(hex: char) -> String {
        format!("sha256:{}", hex.to_string().repeat(64))
    }

    /// A run under `out/NAME/ID` whose only cell used `digest`, last written `age` ago.
    fn write_run(out: &Path, id: &str, digest: String, age: Duration) {
        let mut results: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/quickstart.results.json"))
                .unwrap();
        results["plan"]["cells"][0]["image_digest"] = digest.into();
        let dir = out.join("quickstart").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        std::fs::write(&path, results.to_string()).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    #[test]
    fn images_in_use_are_the_pinned_and_the_recently_run() {
        let tmp = tempfile::tempdir().unwrap();
        let lock_file = tmp.path().join("m.lock");
        let mut lock = LockFile::new();
        lock.images.insert(
            "docker.io/library/busybox:1".into(),
            LockedImage {
                digest: digest('a'),
                platform: "linux/amd64".into(),
            },
        );
        lock.write(&lock_file).unwrap();
        let out = tmp.path().join("reports");
        let day = Duration::from_secs(86_400);
        write_run(&out, "recent", digest('b'), day);
        write_run(&out, "old", digest('c'), RECENT_RUN + day);

        let keep = images_in_use(std::slice::from_ref(&lock_file), &out).unwrap();
        let expected: HashSet<String> = [digest('a'), digest('b')].into();
        assert_eq!(keep, expected);

        let missing = tmp.path().join("gone.lock");
        assert_eq!(
            images_in_use(std::slice::from_ref(&missing), &out).unwrap_err(),
            format!("lock file `{}` does not exist", missing.display())
        );
    }
}
