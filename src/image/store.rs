//! The local image store: a content-addressed cache that several benchbox processes share.
//!
//! Layout under the root (`~/.cache/benchbox/store-v1`; the `-v1` changes whenever this layout
//! does, so an old benchbox never misreads a new store):
//!
//! ```text
//! blobs/sha256/<hex>      verified blobs: manifests, configs, layer tarballs (as downloaded)
//! layers/sha256/<hex>/    one directory per layer blob, unpacked: an overlay lower directory
//! layers/notes/<hex>.txt  what an unpack without root could not keep (owners, device nodes)
//! images/<hex>.json       an image whose layers are ALL unpacked (hex = manifest digest)
//! refs/<hash>.json        what a reference (a tag) last resolved to: manifest digest, platform
//! tmp/<pid>-...           downloads and unpacks in flight; removed once their process is gone
//! locks/                  flock(2) files: one per blob or layer being made, plus `gc`
//! ```
//!
//! Trust rules: a file under `blobs/` was renamed there only after its sha256 matched its name;
//! a directory under `layers/` was renamed there only after the whole tarball unpacked into a temp
//! directory (and its uncompressed digest matched the image config); an `images/` record is
//! written only after every layer is in place. Rename is atomic, so a process killed at any
//! moment leaves at worst garbage in `tmp/`, never a half-made entry that a later run would trust.
//! A per-entry lock makes concurrent pulls of the same image wait for one download instead of
//! doing two. Pulls hold the `gc` lock shared, `prune` holds it exclusively.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{ImageConfig, ImageError, ResolvedImage, now_secs};

/// The directory name of this store layout version.
pub const LAYOUT: &str = "store-v1";

/// A handle on a store directory. Cheap; open one per process (or per thread).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An image in the store, for `benchbox images`.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// References that resolved to this image here (several tags may share one digest).
    pub references: Vec<String>,
    pub digest: String,
    pub platform: String,
    /// Compressed size of config and layers, as in the manifest (what was downloaded).
    pub size: u64,
    pub last_used: SystemTime,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub images: Vec<String>,
    pub blobs: usize,
    pub layers: usize,
    /// Bytes of blobs removed (unpacked layers are not counted: walking them is slow).
    pub bytes: u64,
    /// Entries that could not be removed, with why.
    pub errors: Vec<String>,
}

/// The record of a complete image (`images/<hex>.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ImageRecord {
    pub digest: String,
    pub platform: String,
    pub references: BTreeSet<String>,
    pub config_digest: String,
    /// Layer blob digests, BOTTOM first (manifest order).
    pub layers: Vec<String>,
    pub config: ImageConfig,
    pub size: u64,
    pub last_used: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RefRecord {
    reference: String,
    digest: String,
}

/// An exclusive or shared flock(2) on a file under `locks/`, released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl Store {
    /// `$BENCHBOX_CACHE`, else `$XDG_CACHE_HOME/benchbox`, else `~/.cache/benchbox`; then the
    /// layout version (`store-v1`).
    pub fn default_root() -> PathBuf {
        let base = if let Some(dir) = std::env::var_os("BENCHBOX_CACHE").filter(|v| !v.is_empty()) {
            PathBuf::from(dir)
        } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(dir).join("benchbox")
        } else {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            home.join(".cache").join("benchbox")
        };
        base.join(LAYOUT)
    }

    /// Opens (creating) a store at `root`, and removes what dead processes left in `tmp/`.
    pub fn open(root: &Path) -> Result<Store, ImageError> {
        for sub in [
            "blobs/sha256",
            "layers/sha256",
            "images",
            "refs",
            "tmp",
            "locks",
        ] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|e| ImageError::io(&p, e))?;
        }
        // Canonical, so layer paths contain no symlink: the sandbox opens lower layers without
        // following any.
        let root = fs::canonicalize(root).map_err(|e| ImageError::io(root, e))?;
        let store = Store { root };
        store.clean_stale_tmp();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex_of(digest))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The unpacked directory of a layer blob (exists only when complete).
    pub fn layer_path(&self, digest: &str) -> PathBuf {
        self.root.join("layers/sha256").join(hex_of(digest))
    }

    pub fn has_layer(&self, digest: &str) -> bool {
        self.layer_path(digest).is_dir()
    }

    fn layer_note_path(&self, digest: &str) -> PathBuf {
        self.root
            .join("layers/notes")
            .join(format!("{}.txt", hex_of(digest)))
    }

    /// Records what unpacking the layer `digest` could not keep (see `unpack::Lost`).
    pub(crate) fn put_layer_note(&self, digest: &str, note: &str) -> Result<(), ImageError> {
        let path = self.layer_note_path(digest);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| ImageError::io(dir, e))?;
        }
        fs::write(&path, note).map_err(|e| ImageError::io(&path, e))
    }

    /// The notes of these layers ("layer sha256:abc...: unpacked without root: ..."), in order.
    pub(crate) fn layer_notes(&self, digests: &[String]) -> Vec<String> {
        digests
            .iter()
            .filter_map(|d| {
                let note = fs::read_to_string(self.layer_note_path(d)).ok()?;
                Some(format!("layer {d}: {}", note.trim()))
            })
            .collect()
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A temp file in `tmp/`, deleted on drop unless persisted (renamed into place).
    pub(crate) fn temp_file(&self) -> Result<tempfile::NamedTempFile, ImageError> {
        tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempfile_in(self.tmp_dir())
            .map_err(|e| ImageError::io(self.tmp_dir(), e))
    }

    /// A temp directory in `tmp/`, deleted on drop unless kept.
    pub(crate) fn temp_dir(&self) -> Result<tempfile::TempDir, ImageError> {
        tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempdir_in(self.tmp_dir())
            .map_err(|e| ImageError::io(self.tmp_dir(), e))
    }

    /// Blocks until this process holds the lock `name` exclusively.
    pub(crate) fn lock(&self, name: &str) -> Result<FileLock, ImageError> {
        let path = self.root.join("locks").join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ImageError::io(&path, e))?;
        file.lock().map_err(|e| ImageError::io(&path, e))?;
        Ok(FileLock { _file: file })
    }

    /// The `gc` lock, shared: held by pulls so that `prune` never removes what they are making.
    pub(crate) fn gc_shared(&self) -> Result<FileLock, ImageError> {
        let path = self.root.join("locks/gc");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ImageError::io(&path, e))?;
        file.lock_shared().map_err(|e| ImageError::io(&path, e))?;
        Ok(FileLock { _file: file })
    }

    /// Stores a small blob (manifest, config) given as bytes, verifying it against `digest` when
    /// given; returns its digest.
    pub(crate) fn put_blob(
        &self,
        expected: Option<&str>,
        bytes: &[u8],
    ) -> Result<String, ImageError> {
        let digest = sha256_digest(bytes);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(ImageError::DigestMismatch {
                reference: "(local)".into(),
                what: "blob".into(),
                expected: expected.into(),
                actual: digest,
            });
        }
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut tmp = self.temp_file()?;
        tmp.as_file_mut()
            .write_all(bytes)
            .map_err(|e| ImageError::io(tmp.path(), e))?;
        let dest = self.blob_path(&digest);
        tmp.persist(&dest)
            .map_err(|e| ImageError::io(&dest, e.error))?;
        Ok(digest)
    }

    /// Reads a small blob, checking its digest again: manifests and configs decide what we trust.
    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| ImageError::io(&path, e))?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            // A damaged cache entry: remove it so the next pull fetches it again.
            let _ = fs::remove_file(&path);
            return Err(ImageError::DigestMismatch {
                reference: "(local store)".into(),
                what: format!("cached blob {}", path.display()),
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        let key = &sha256_digest(reference.as_bytes())[7..39];
        self.root.join("refs").join(format!("{key}.json"))
    }

    /// The manifest digest a reference last resolved to in this store.
    pub fn ref_digest(&self, reference: &str) -> Option<String> {
        let text = fs::read_to_string(self.ref_path(reference)).ok()?;
        let rec: RefRecord = serde_json::from_str(&text).ok()?;
        (rec.reference == reference).then_some(rec.digest)
    }

    pub(crate) fn set_ref(&self, reference: &str, digest: &str) -> Result<(), ImageError> {
        let rec = RefRecord {
            reference: reference.into(),
            digest: digest.into(),
        };
        self.write_json(&self.ref_path(reference), &rec)
    }

    fn image_path(&self, digest: &str) -> PathBuf {
        self.root
            .join("images")
            .join(format!("{}.json", hex_of(digest)))
    }

    pub(crate) fn image_record(&self, digest: &str) -> Option<ImageRecord> {
        let text = fs::read_to_string(self.image_path(digest)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes (or updates) an image record: called once all its layers are unpacked.
    pub(crate) fn put_image_record(&self, mut rec: ImageRecord) -> Result<(), ImageError> {
        let _lock = self.lock(&format!("image-{}", hex_of(&rec.digest)))?;
        if let Some(old) = self.image_record(&rec.digest) {
            rec.references.extend(old.references);
        }
        rec.last_used = now_secs();
        self.write_json(&self.image_path(&rec.digest), &rec)
    }

    /// The image `digest` when it is complete here (every layer unpacked), recording that
    /// `reference` uses it now. Costs a few small file operations whatever the image's size.
    pub(crate) fn complete_image(
        &self,
        reference: &str,
        digest: &str,
    ) -> Result<Option<ResolvedImage>, ImageError> {
        let Some(mut rec) = self.image_record(digest) else {
            return Ok(None);
        };
        if !rec.layers.iter().all(|l| self.has_layer(l)) {
            return Ok(None);
        }
        // Refresh last use (for `images` and prune) at most once a minute: cheap, and two
        // processes racing here both write a valid record.
        if now_secs().saturating_sub(rec.last_used) > 60 || !rec.references.contains(reference) {
            rec.references.insert(reference.to_string());
            self.put_image_record(rec.clone())?;
            self.set_ref(reference, digest)?;
        }
        Ok(Some(ResolvedImage {
            reference: reference.to_string(),
            digest: rec.digest.clone(),
            platform: rec.platform.clone(),
            layers: rec
                .layers
                .iter()
                .rev()
                .map(|l| self.layer_path(l))
                .collect(),
            notes: self.layer_notes(&rec.layers),
            config: rec.config,
            downloaded_blobs: 0,
            downloaded_bytes: 0,
        }))
    }

    fn write_json<T: serde::Serialize>(&self, dest: &Path, value: &T) -> Result<(), ImageError> {
        let text = serde_json::to_vec_pretty(value).expect("store records serialize");
        let mut tmp = self.temp_file()?;
        tmp.as_file_mut()
            .write_all(&text)
            .map_err(|e| ImageError::io(tmp.path(), e))?;
        tmp.persist(dest)
            .map_err(|e| ImageError::io(dest, e.error))?;
        Ok(())
    }

    /// Every complete image, most recently used first.
    pub fn list(&self) -> Vec<CachedImage> {
        let mut out: Vec<CachedImage> = self
            .records()
            .into_iter()
            .map(|rec| CachedImage {
                references: rec.references.into_iter().collect(),
                digest: rec.digest,
                platform: rec.platform,
                size: rec.size,
                last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(rec.last_used),
            })
            .collect();
        out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.digest.cmp(&b.digest)));
        out
    }

    fn records(&self) -> Vec<ImageRecord> {
        let Ok(dir) = fs::read_dir(self.root.join("images")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str::<ImageRecord>(&t).ok())
            .collect()
    }

    /// Removes the images not in `keep` (manifest digests), then every blob and layer that no
    /// kept image uses, and every reference pointing at a removed image. Waits for pulls in
    /// flight to finish first. Do not prune while a run uses the images being removed.
    pub fn prune(&self, keep: &HashSet<String>) -> PruneReport {
        let mut report = PruneReport::default();
        let gc_path = self.root.join("locks/gc");
        let gc = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&gc_path)
            .and_then(|f| f.lock().map(|()| f));
        let _gc = match gc {
            Ok(f) => f,
            Err(e) => {
                report.errors.push(format!("{}: {e}", gc_path.display()));
                return report;
            }
        };
        let mut used: HashSet<String> = HashSet::new();
        for rec in self.records() {
            if keep.contains(&rec.digest) {
                used.insert(rec.digest.clone());
                used.insert(rec.config_digest.clone());
                used.extend(rec.layers.iter().cloned());
            } else {
                let p = self.image_path(&rec.digest);
                match fs::remove_file(&p) {
                    Ok(()) => report.images.push(rec.digest.clone()),
                    Err(e) => report.errors.push(format!("{}: {e}", p.display())),
                }
            }
        }
        // Manifests that are kept but have no record yet (imported, not unpacked) stay too.
        used.extend(keep.iter().cloned());
        if let Ok(dir) = fs::read_dir(self.root.join("refs")) {
            for e in dir.flatten() {
                let rec = fs::read_to_string(e.path())
                    .ok()
                    .and_then(|t| serde_json::from_str::<RefRecord>(&t).ok());
                if rec.is_none_or(|r| !used.contains(&r.digest)) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        for (sub, is_layer) in [("blobs/sha256", false), ("layers/sha256", true)] {
            let Ok(dir) = fs::read_dir(self.root.join(sub)) else {
                continue;
            };
            for e in dir.flatten() {
                let digest = format!("sha256:{}", e.file_name().to_string_lossy());
                if used.contains(&digest) {
                    continue;
                }
                let p = e.path();
                let size = e.metadata().map_or(0, |m| m.len());
                // Move out of sight first (atomic), then delete: a crash halfway through a big
                // layer never leaves a half-deleted directory under its trusted name.
                let res = if is_layer {
                    self.temp_dir().and_then(|t| {
                        let doomed = t.path().join("doomed");
                        fs::rename(&p, &doomed).map_err(|e| ImageError::io(&p, e))?;
                        fs::remove_dir_all(t.path()).map_err(|e| ImageError::io(t.path(), e))
                    })
                } else {
                    fs::remove_file(&p).map_err(|e| ImageError::io(&p, e))
                };
                match res {
                    Ok(()) if is_layer => report.layers += 1,
                    Ok(()) => {
                        report.blobs += 1;
                        report.bytes += size;
                    }
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
        }
        report
    }

    /// Removes `tmp/` entries whose process (the pid prefix of the name) is gone.
    fn clean_stale_tmp(&self) {
        let Ok(dir) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let p = e.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a digest, for file names (digests were validated before reaching here).
pub(crate) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_refs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(None, b"hello").unwrap();
        assert!(store.has_blob(&d));
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        let wrong = sha256_digest(b"other");
        assert!(matches!(
            store.put_blob(Some(&wrong), b"hello"),
            Err(ImageError::DigestMismatch { .. })
        ));
        assert!(!store.has_blob(&wrong));
        store.set_ref("docker.io/library/x:1", &d).unwrap();
        assert_eq!(store.ref_digest("docker.io/library/x:1"), Some(d));
        assert_eq!(store.ref_digest("docker.io/library/x:2"), None);
        // Nothing left in tmp/.
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn stale_tmp_entries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::create_dir_all(store.tmp_dir().join("999999999-x/a")).unwrap();
        fs::write(store.tmp_dir().join("999999999-y"), b"").unwrap();
        let mine = store.temp_file().unwrap();
        Store::open(dir.path()).unwrap();
        let left: Vec<_> = fs::read_dir(store.tmp_dir()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].path(), mine.path());
    }

    #[test]
    fn a_damaged_cached_blob_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(None, b"manifest").unwrap();
        fs::write(store.blob_path(&d), b"tampered").unwrap();
        assert!(store.read_blob(&d).is_err());
        assert!(!store.has_blob(&d));
    }
}
