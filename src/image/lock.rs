//! Lock files (`envs/NAME.lock` beside `envs/NAME.toml`): the image digests a matrix resolved to.
//!
//! A tag such as `eclipse-temurin:21-jre` moves as its publisher rebuilds it; a lock file records,
//! for every image reference of the matrix, the manifest digest and platform it resolved to, so a
//! run a year later uses the same bytes. It is TOML, sorted by reference, meant to be committed:
//!
//! ```toml
//! # benchbox lock file: the image digests this matrix resolved to.
//! version = 1
//!
//! [images."docker.io/library/eclipse-temurin:21-jre"]
//! digest = "sha256:..."
//! platform = "linux/amd64"
//! ```
//!
//! Keys are normalised references, so `eclipse-temurin:21-jre` in the matrix finds the entry.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ImageError;
use super::reference::{Reference, check_digest};

const VERSION: u32 = 1;
const HEADER: &str = "# benchbox lock file: the image digests this matrix resolved to.\n# Commit it; `benchbox pull --update FILE` re-resolves the tags.\n";

/// One pinned image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockedImage {
    pub digest: String,
    pub platform: String,
}

/// The contents of a lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    /// Normalised reference -> what it resolved to.
    #[serde(default)]
    pub images: BTreeMap<String, LockedImage>,
}

/// `envs/NAME.toml` -> `envs/NAME.lock`.
pub fn lock_path(matrix_file: &Path) -> PathBuf {
    matrix_file.with_extension("lock")
}

impl LockFile {
    pub fn new() -> LockFile {
        LockFile {
            version: VERSION,
            images: BTreeMap::new(),
        }
    }

    /// Reads a lock file; `Ok(None)` when there is none (`run --locked` makes that an error).
    pub fn read(path: &Path) -> Result<Option<LockFile>, ImageError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ImageError::io(path, e)),
        };
        let bad = |detail: String| ImageError::BadLockFile {
            path: path.to_path_buf(),
            detail,
        };
        let lock: LockFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if lock.version != VERSION {
            return Err(bad(format!(
                "version {} is not supported (this benchbox writes version {VERSION})",
                lock.version
            )));
        }
        for (r, img) in &lock.images {
            Reference::parse(r).map_err(|e| bad(e.to_string()))?;
            check_digest(&img.digest).map_err(|why| bad(format!("{r}: {why}")))?;
        }
        Ok(Some(lock))
    }

    /// Writes the lock file atomically (temp file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), ImageError> {
        let body = toml::to_string(self).expect("lock files serialize");
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| ImageError::io(dir, e))?;
        tmp.write_all(HEADER.as_bytes())
            .and_then(|()| tmp.write_all(body.as_bytes()))
            .map_err(|e| ImageError::io(tmp.path(), e))?;
        tmp.persist(path)
            .map_err(|e| ImageError::io(path, e.error))?;
        Ok(())
    }

    /// The pin for a reference as the matrix writes it (normalised before lookup).
    pub fn get(&self, reference: &str) -> Option<&LockedImage> {
        let key = Reference::parse(reference).ok()?.to_string();
        self.images.get(&key)
    }

    /// Records what `reference` resolved to.
    pub fn set(&mut self, reference: &str, digest: &str, platform: &str) -> Result<(), ImageError> {
        let key = Reference::parse(reference)?.to_string();
        self.images.insert(
            key,
            LockedImage {
                digest: digest.to_string(),
                platform: platform.to_string(),
            },
        );
        Ok(())
    }

    /// References of `wanted` that have no pin here (for `run --locked`).
    pub fn missing<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        wanted
            .into_iter()
            .filter(|r| self.get(r).is_none())
            .map(String::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_normalised_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join("jvm.toml"));
        assert_eq!(path.file_name().unwrap(), "jvm.lock");
        assert_eq!(LockFile::read(&path).unwrap(), None);
        let d = format!("sha256:{}", "b".repeat(64));
        let mut lock = LockFile::new();
        lock.set("eclipse-temurin:21-jre", &d, "linux/amd64")
            .unwrap();
        lock.write(&path).unwrap();
        let back = LockFile::read(&path).unwrap().unwrap();
        assert_eq!(back, lock);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[images.\"docker.io/library/eclipse-temurin:21-jre\"]"),
            "{text}"
        );
        assert_eq!(
            back.get("docker.io/library/eclipse-temurin:21-jre")
                .unwrap()
                .digest,
            d
        );
        assert_eq!(
            back.missing(["eclipse-temurin:21-jre", "busybox"]),
            vec!["busybox"]
        );
    }

    #[test]
    fn bad_lock_files_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(
            &path,
            "version = 1\n[images.\"busybox\"]\ndigest = \"md5:1\"\nplatform = \"linux/amd64\"\n",
        )
        .unwrap();
        let e = LockFile::read(&path).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("x.lock"), "{e}");
    }
}
