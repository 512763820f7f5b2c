//! Unpacking one layer tarball into its own directory: an overlay lower layer.
//!
//! A layer is a tar archive (plain or gzip) of the files it adds or changes. Deletions are
//! written as OCI *whiteouts*, which we translate to what overlayfs understands:
//!
//! - `dir/.wh.NAME` (an empty file) means "NAME is deleted": it becomes a character device 0/0 at
//!   `dir/NAME`, overlayfs's whiteout, hiding NAME of every lower layer;
//! - `dir/.wh..wh..opq` means "dir is opaque: nothing of the lower layers shows through": it
//!   becomes the xattr `trusted.overlay.opaque=y` on `dir` (the entries this layer has in dir stay);
//! - other `.wh..wh.*` names are AUFS bookkeeping and are skipped.
//!
//! Everything else is recreated exactly: regular files, directories, symlinks (their targets are
//! never followed), hardlinks, device nodes and fifos, with mode (including setuid bits), numeric
//! owner, mtime and extended attributes (PAX `SCHILY.xattr.*`). `trusted.overlay.*` xattrs from a
//! tarball are dropped: only our own whiteout translation may speak to overlayfs.
//!
//! Safety: the destination is a fresh private directory. An entry with a `..` component, an entry
//! whose parent is (through an earlier entry) a symlink, and a hardlink whose target is outside
//! the layer or not a file of it are rejected with an error naming the entry; the caller then
//! deletes the whole directory. An absolute path (`/`, `/etc/passwd`; umoci writes the root as
//! `/`) is read relative to the layer root, as Docker and containerd do: it cannot escape. We never follow a symlink while writing:
//! every parent is checked with lstat (only this process writes in the directory), files are
//! created with O_EXCL (so an existing symlink is never opened), and an entry replaces whatever
//! an earlier entry put at its path (tar semantics: the last one wins).
//!
//! While reading, the sha256 of the uncompressed stream is computed: the image config lists it
//! (`rootfs.diff_ids`) and the caller checks it.
//!
//! Unpacked by an ordinary user (rootless, into `~/.cache/benchbox`), what only root may make is
//! left out and counted ([`Lost`]), never failing the layer: owners other than root (every
//! file is the user's, which is root in a rootless container), device nodes (inert under the
//! container's `nodev` anyway), and extended attributes outside `user.*` (file capabilities,
//! SELinux labels). Whiteouts are made all the same (an unprivileged user may make the 0/0
//! device, Linux 5.8+), and an opaque directory is marked `user.overlay.opaque`, which overlayfs
//! reads when mounted in a user namespace (`userxattr`).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use sha2::{Digest, Sha256};
use tar::EntryType;

/// Why a layer could not be unpacked. The caller turns it into an [`super::ImageError`] with the
/// image reference and layer digest.
#[derive(Debug)]
pub enum UnpackError {
    /// A malicious or broken entry: its path and why.
    Unsafe { entry: String, why: String },
    /// Not a tar, or a compression we do not read.
    Unsupported(String),
    /// A system error (the disk is full, ...), with the path involved.
    Io(PathBuf, io::Error),
}

/// The opaque-directory marker and the whiteout prefix (OCI image spec, layer.md).
const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT: &str = ".wh.";

/// What an unpack found, besides the files.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// `sha256:` of the uncompressed tar stream (the layer's diff id).
    pub diff_id: String,
    pub entries: u64,
    /// What an unpack without root could not keep.
    pub lost: Lost,
}

/// What an unpack without root left out: entries (numbers of).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lost {
    /// Owned by someone other than root in the image: they are the unpacking user's.
    pub owners: u64,
    /// Device nodes not made.
    pub devices: u64,
    /// Extended attributes not set (outside `user.*`).
    pub xattrs: u64,
}

impl Lost {
    pub fn is_empty(&self) -> bool {
        *self == Lost::default()
    }

    /// "12 entries owned by users other than root belong to the unpacking user, 2 device
    /// nodes were not made" (`None` when nothing was lost).
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.owners > 0 {
            parts.push(format!(
                "{} entries owned by users other than root belong to the unpacking user (root in a rootless container)",
                self.owners
            ));
        }
        if self.devices > 0 {
            parts.push(format!("{} device nodes were not made", self.devices));
        }
        if self.xattrs > 0 {
            parts.push(format!(
                "{} extended attributes outside user.* were not set",
                self.xattrs
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Unpacks the layer blob at `blob` into `dest` (an existing, empty directory).
pub fn unpack_file(blob: &Path, dest: &Path) -> Result<Unpacked, UnpackError> {
    let file = File::open(blob).map_err(|e| UnpackError::Io(blob.to_path_buf(), e))?;
    unpack(BufReader::with_capacity(1 << 20, file), dest)
}

/// Unpacks a layer stream (plain or gzip tar, detected by its magic bytes) into `dest`, as
/// root or (another user) rootless.
pub fn unpack(input: impl io::BufRead, dest: &Path) -> Result<Unpacked, UnpackError> {
    unpack_as(input, dest, !nix::unistd::geteuid().is_root())
}

/// [`unpack`], rootless (see the module doc) or not.
pub fn unpack_as(
    mut input: impl io::BufRead,
    dest: &Path,
    rootless: bool,
) -> Result<Unpacked, UnpackError> {
    let head = input
        .fill_buf()
        .map_err(|e| UnpackError::Io(dest.to_path_buf(), e))?
        .to_vec();
    let decoded: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(UnpackError::Unsupported("zstd-compressed layer".into()));
    } else if head.len() >= 262 && &head[257..262] == b"ustar"
        || head.is_empty()
        || head.len() >= 512 && head[..512].iter().all(|&b| b == 0)
    {
        Box::new(input)
    } else {
        return Err(UnpackError::Unsupported(
            "neither a tar archive nor gzip-compressed".into(),
        ));
    };
    let mut hashing = HashingReader {
        inner: decoded,
        hasher: Sha256::new(),
        real_len: 0,
        padded: 0,
    };
    let mut state = State {
        dest: dest.to_path_buf(),
        known_dirs: HashSet::new(),
        dir_times: Vec::new(),
        entries: 0,
        last_data_end: 0,
        rootless,
        lost: Lost::default(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(|e| bad_tar(dest, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad_tar(dest, e))?;
            let data_end = entry.raw_file_position() + entry.size();
            state.entry(&mut entry)?;
            state.entries += 1;
            state.last_data_end = data_end;
        }
    }
    // Zeros were made up past the end: fine only when the stream ended right after the last
    // entry's data (what Go's archive/tar, and so Docker and umoci, accept: umoci writes such
    // layers), never inside an entry.
    if hashing.padded > 0 && hashing.real_len != state.last_data_end {
        return Err(UnpackError::Unsupported(format!(
            "truncated archive: it ends at byte {} inside an entry",
            hashing.real_len
        )));
    }
    // The diff id covers the whole stream, including the end-of-archive blocks and padding.
    hashing.padded = MAX_PAD;
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| bad_tar(dest, e))?;
    // Directory mtimes last (creating their children changed them), deepest first.
    for (path, mtime) in state.dir_times.iter().rev() {
        set_mtime(path, *mtime).map_err(|e| UnpackError::Io(path.clone(), e))?;
    }
    Ok(Unpacked {
        diff_id: format!("sha256:{}", hex::encode(hashing.hasher.finalize())),
        entries: state.entries,
        lost: state.lost,
    })
}

fn bad_tar(dest: &Path, e: io::Error) -> UnpackError {
    if e.raw_os_error().is_some() {
        UnpackError::Io(dest.to_path_buf(), e)
    } else {
        UnpackError::Unsupported(format!("corrupt archive: {e}"))
    }
}

/// Hashes what it reads; past the real end, reads as up to [`MAX_PAD`] zero bytes (not hashed)
/// so that an archive missing its final padding and end blocks still parses (checked after).
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    real_len: u64,
    padded: u64,
}

/// Enough zeros for the last entry's padding (< 512) and the two end-of-archive blocks.
const MAX_PAD: u64 = 1535;

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.padded == 0 || self.padded == MAX_PAD {
            // Real bytes (and, once padding is spent or switched off, the real EOF).
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() || self.padded == MAX_PAD {
                self.hasher.update(&buf[..n]);
                self.real_len += n as u64;
                return Ok(n);
            }
        }
        let n = buf.len().min((MAX_PAD - self.padded.min(MAX_PAD)) as usize);
        buf[..n].fill(0);
        self.padded += n as u64;
        Ok(n)
    }
}

struct State {
    dest: PathBuf,
    /// Directories (relative) known to be real directories we made: saves lstat calls.
    known_dirs: HashSet<PathBuf>,
    dir_times: Vec<(PathBuf, i64)>,
    entries: u64,
    /// Where the data of the last entry ends in the uncompressed stream.
    last_data_end: u64,
    /// Unpacking without root: what only root may make is left out and counted in `lost`.
    rootless: bool,
    lost: Lost,
}

/// The metadata of an entry, PAX records applied over the header.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl State {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_entry = |why: &str| UnpackError::Unsafe {
            entry: shown.clone(),
            why: why.into(),
        };
        let rel = clean_path(Path::new(OsStr::from_bytes(&raw))).map_err(&unsafe_entry)?;
        let kind = entry.header().entry_type();
        let meta = self.meta(entry, &shown)?;

        let Some(name) = rel.file_name().map(|n| n.as_bytes().to_vec()) else {
            // The root of the layer ("./"): its mode and owner become the container's `/`.
            if kind.is_dir() {
                self.apply_meta(&self.dest.clone(), &meta, false)?;
                self.dir_times.push((self.dest.clone(), meta.mtime));
            }
            return Ok(());
        };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        self.make_parents(&parent, &shown)?;
        let parent_abs = self.dest.join(&parent);

        if name == OPAQUE.as_bytes() {
            // Without root, the attribute overlayfs reads in a user namespace (`userxattr`).
            let attribute = if self.rootless {
                "user.overlay.opaque"
            } else {
                "trusted.overlay.opaque"
            };
            xattr::set(&parent_abs, attribute, b"y")
                .map_err(|e| UnpackError::Io(parent_abs.clone(), e))?;
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
                return Err(unsafe_entry("is a whiteout of no valid name"));
            }
            let target = parent_abs.join(OsStr::from_bytes(hidden));
            self.remove_existing(&target, false)?;
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| UnpackError::Io(target.clone(), e.into()))?;
            return Ok(());
        }

        let full = self.dest.join(&rel);
        let io_err = |e: io::Error| UnpackError::Io(full.clone(), e);
        match kind {
            EntryType::Directory => {
                let existing_dir = self.remove_existing(&full, true)?;
                if !existing_dir {
                    fs::create_dir(&full).map_err(io_err)?;
                }
                self.known_dirs.insert(rel.clone());
                self.apply_meta(&full, &meta, false)?;
                self.dir_times.push((full, meta.mtime));
                return Ok(());
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.remove_existing(&full, false)?;
                let mut f = File::create_new(&full).map_err(io_err)?;
                io::copy(entry, &mut f).map_err(|e| {
                    if e.raw_os_error().is_some() {
                        UnpackError::Io(full.clone(), e)
                    } else {
                        UnpackError::Unsupported(format!("corrupt archive at {shown:?}: {e}"))
                    }
                })?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("is a symlink without a target"))?
                    .into_owned();
                self.remove_existing(&full, false)?;
                symlink(OsStr::from_bytes(&target), &full).map_err(io_err)?;
                self.apply_meta(&full, &meta, true)?;
                return Ok(());
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("is a hardlink without a target"))?
                    .into_owned();
                let target_rel =
                    clean_path(Path::new(OsStr::from_bytes(&target))).map_err(|why| {
                        unsafe_entry(&format!(
                            "is a hardlink to {:?}, which {why}",
                            String::from_utf8_lossy(&target)
                        ))
                    })?;
                let target_abs = self.check_link_target(&target_rel).map_err(|why| {
                    unsafe_entry(&format!(
                        "is a hardlink to {:?}, which {why}",
                        String::from_utf8_lossy(&target)
                    ))
                })?;
                if target_abs == full {
                    return Ok(());
                }
                self.remove_existing(&full, false)?;
                fs::hard_link(&target_abs, &full).map_err(io_err)?;
                // A hardlink shares its inode, and so its metadata, with its target.
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (flag, dev) = match kind {
                    EntryType::Char => (SFlag::S_IFCHR, device(entry)),
                    EntryType::Block => (SFlag::S_IFBLK, device(entry)),
                    _ => (SFlag::S_IFIFO, 0),
                };
                self.remove_existing(&full, false)?;
                match mknod(&full, flag, Mode::from_bits_truncate(0o600), dev) {
                    Err(nix::Error::EPERM) if self.rootless && flag != SFlag::S_IFIFO => {
                        self.lost.devices += 1;
                        return Ok(());
                    }
                    made => made.map_err(|e| UnpackError::Io(full.clone(), e.into()))?,
                }
            }
            // PAX and GNU long-name headers are consumed by the tar reader; anything else
            // (sockets never appear in archives) carries no file.
            _ => return Ok(()),
        }
        self.apply_meta(&full, &meta, false)?;
        set_mtime(&full, meta.mtime).map_err(|e| UnpackError::Io(full.clone(), e))?;
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<R>, shown: &str) -> Result<Meta, UnpackError> {
        let h = entry.header();
        let corrupt =
            |what: &str| UnpackError::Unsupported(format!("corrupt {what} in entry {shown:?}"));
        let mut meta = Meta {
            mode: h.mode().map_err(|_| corrupt("mode"))?,
            uid: h.uid().map_err(|_| corrupt("uid"))?,
            gid: h.gid().map_err(|_| corrupt("gid"))?,
            mtime: h.mtime().map_err(|_| corrupt("mtime"))? as i64,
            xattrs: Vec::new(),
        };
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                let text = std::str::from_utf8(value).unwrap_or("");
                match key {
                    b"uid" => meta.uid = text.parse().map_err(|_| corrupt("pax uid"))?,
                    b"gid" => meta.gid = text.parse().map_err(|_| corrupt("pax gid"))?,
                    b"mtime" => {
                        let secs = text.split('.').next().unwrap_or("0");
                        meta.mtime = secs.parse().map_err(|_| corrupt("pax mtime"))?;
                    }
                    _ => {
                        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                            meta.xattrs.push((name.to_vec(), value.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Owner, xattrs and mode (in this order: chown clears setuid bits). Without root, an
    /// owner or attribute only root may set is counted in `lost` instead.
    fn apply_meta(
        &mut self,
        path: &Path,
        meta: &Meta,
        is_symlink: bool,
    ) -> Result<(), UnpackError> {
        let io_err = |e: io::Error| UnpackError::Io(path.to_path_buf(), e);
        let uid = u32::try_from(meta.uid).unwrap_or(u32::MAX - 1);
        let gid = u32::try_from(meta.gid).unwrap_or(u32::MAX - 1);
        if self.rootless {
            // The unpacking user owns everything, and is root in a rootless container: only
            // other owners are lost.
            if (uid, gid) != (0, 0) {
                self.lost.owners += 1;
            }
        } else {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err)?;
        }
        for (name, value) in &meta.xattrs {
            // Only benchbox's own whiteout translation may speak to overlayfs.
            if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
                continue;
            }
            // Symlinks carry no user.* xattrs on Linux; a failure there is not worth a layer.
            let res = xattr::set(path, OsStr::from_bytes(name), value);
            match res {
                Err(e) if self.rootless && e.raw_os_error() == Some(libc::EPERM) => {
                    self.lost.xattrs += 1;
                }
                Err(e) if !is_symlink => return Err(io_err(e)),
                _ => {}
            }
        }
        if is_symlink {
            set_mtime(path, meta.mtime).map_err(io_err)?;
        } else {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode & 0o7777))
                .map_err(io_err)?;
        }
        Ok(())
    }

    /// Creates the missing parents of an entry; every existing one must be a real directory.
    fn make_parents(&mut self, parent: &Path, shown: &str) -> Result<(), UnpackError> {
        if parent.as_os_str().is_empty() || self.known_dirs.contains(parent) {
            return Ok(());
        }
        let mut rel = PathBuf::new();
        for c in parent.components() {
            rel.push(c);
            if self.known_dirs.contains(&rel) {
                continue;
            }
            let abs = self.dest.join(&rel);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(UnpackError::Unsafe {
                        entry: shown.into(),
                        why: format!(
                            "would be written through the symlink {:?} (it could point outside the layer)",
                            rel.display().to_string()
                        ),
                    });
                }
                Ok(_) => {
                    return Err(UnpackError::Unsafe {
                        entry: shown.into(),
                        why: format!(
                            "has a parent {:?} that is not a directory",
                            rel.display().to_string()
                        ),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Implied directories (the archive has no entry for them) get 0755 root.
                    fs::create_dir(&abs).map_err(|e| UnpackError::Io(abs.clone(), e))?;
                    fs::set_permissions(&abs, fs::Permissions::from_mode(0o755))
                        .map_err(|e| UnpackError::Io(abs.clone(), e))?;
                }
                Err(e) => return Err(UnpackError::Io(abs, e)),
            }
            self.known_dirs.insert(rel.clone());
        }
        Ok(())
    }

    /// A hardlink target must be an existing non-directory of this layer, reached through real
    /// directories only.
    fn check_link_target(&self, rel: &Path) -> Result<PathBuf, String> {
        if rel.as_os_str().is_empty() {
            return Err("is the layer root".into());
        }
        let mut walked = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            walked.push(c);
            let m = fs::symlink_metadata(self.dest.join(&walked))
                .map_err(|_| "is not in this layer".to_string())?;
            let last = i + 1 == comps.len();
            if !last && !m.is_dir() {
                return Err("is reached through a symlink or a file".into());
            }
            if last && m.is_dir() {
                return Err("is a directory".into());
            }
        }
        Ok(self.dest.join(rel))
    }

    /// Makes way for a new entry at `path`. Returns true when a directory is there and the new
    /// entry is a directory too (it is kept, with its contents).
    fn remove_existing(&mut self, path: &Path, new_is_dir: bool) -> Result<bool, UnpackError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                if new_is_dir {
                    return Ok(true);
                }
                fs::remove_dir_all(path).map_err(|e| UnpackError::Io(path.into(), e))?;
                // Directories below it are gone: forget what we knew.
                self.known_dirs.clear();
                Ok(false)
            }
            Ok(_) => {
                fs::remove_file(path).map_err(|e| UnpackError::Io(path.into(), e))?;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(UnpackError::Io(path.into(), e)),
        }
    }
}

fn device<R: Read>(entry: &tar::Entry<R>) -> u64 {
    let h = entry.header();
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    makedev(u64::from(major), u64::from(minor))
}

fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    let t = TimeSpec::new(secs, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// The path of an entry relative to the layer root, or why the entry is unsafe. `./a/b`, `a/b/`
/// and `/a/b` (rooted at the layer) are fine; `a/../b` is not, even where it would stay inside:
/// no legitimate tool writes it, and refusing is simpler to reason about than resolving.
pub fn clean_path(p: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a '..' component (it could escape the layer)"),
            // Rooted at the layer, never at the host.
            Component::RootDir => {}
            Component::Prefix(_) => return Err("has a path prefix"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn header(kind: EntryType, path: &str, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        // Write the raw name: set_path refuses '..', and we need to build malicious archives.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        h
    }

    fn link(kind: EntryType, path: &str, target: &str) -> tar::Header {
        let mut h = header(kind, path, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        h
    }

    fn archive(entries: Vec<(tar::Header, &[u8])>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (h, data) in entries {
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn run(tar: &[u8]) -> (tempfile::TempDir, Result<Unpacked, UnpackError>) {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(io::Cursor::new(tar.to_vec()), dir.path());
        (dir, r)
    }

    /// Unpacked as an ordinary user would (run as root here, so only what the rootless path
    /// does differently shows): no chown (owners other than root counted), the opaque
    /// directory marked for overlayfs in a user namespace, whiteouts made all the same.
    #[test]
    fn a_rootless_unpack_keeps_the_users_ownership_and_marks_opaque_dirs_for_userxattr() {
        let mut owned = header(EntryType::Regular, "./home/bench/file", 3);
        owned.set_uid(1000);
        owned.set_gid(1000);
        owned.set_cksum();
        let tar = archive(vec![
            (header(EntryType::Directory, "./", 0), b""),
            (header(EntryType::Regular, "./etc/passwd", 5), b"root\n"),
            (owned, b"abc"),
            (header(EntryType::Regular, "./etc/.wh.gone", 0), b""),
            (header(EntryType::Regular, "./opq/.wh..wh..opq", 0), b""),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let u = unpack_as(io::Cursor::new(tar.clone()), d, true).unwrap();
        assert_eq!(u.diff_id, crate::image::store::sha256_digest(&tar));
        assert_eq!(
            u.lost,
            Lost {
                owners: 1,
                devices: 0,
                xattrs: 0
            }
        );
        assert_eq!(
            u.lost.describe().as_deref(),
            Some(
                "1 entries owned by users other than root belong to the unpacking user (root in a rootless container)"
            )
        );
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(fs::metadata(d.join("home/bench/file")).unwrap().uid(), me);
        assert_eq!(
            xattr::get(d.join("opq"), "user.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(
            xattr::get(d.join("opq"), "trusted.overlay.opaque").unwrap(),
            None
        );
        let gone = fs::symlink_metadata(d.join("etc/gone")).unwrap();
        assert_eq!(
            (gone.mode() & libc::S_IFMT, gone.rdev()),
            (libc::S_IFCHR, 0)
        );
        // As root, nothing is lost.
        let (_dir, r) = run(&tar);
        assert!(r.unwrap().lost.is_empty());
    }

    #[test]
    fn files_links_whiteouts_and_metadata() {
        let tar = archive(vec![
            (header(EntryType::Directory, "./", 0), b""),
            (header(EntryType::Regular, "./etc/passwd", 5), b"root\n"),
            (link(EntryType::Symlink, "./etc/alias", "/etc/passwd"), b""),
            (link(EntryType::Link, "./etc/hard", "etc/passwd"), b""),
            (header(EntryType::Regular, "./etc/.wh.gone", 0), b""),
            (header(EntryType::Regular, "./opq/.wh..wh..opq", 0), b""),
            (header(EntryType::Regular, "./opq/new", 0), b""),
        ]);
        let (dir, r) = run(&tar);
        let u = r.unwrap();
        assert_eq!(u.diff_id, crate::image::store::sha256_digest(&tar));
        let d = dir.path();
        assert_eq!(fs::read(d.join("etc/passwd")).unwrap(), b"root\n");
        assert_eq!(
            fs::read_link(d.join("etc/alias")).unwrap(),
            Path::new("/etc/passwd")
        );
        let (a, b) = (
            fs::metadata(d.join("etc/passwd")).unwrap(),
            fs::metadata(d.join("etc/hard")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.mtime(), 1_000_000);
        let gone = fs::symlink_metadata(d.join("etc/gone")).unwrap();
        assert_eq!(gone.mode() & libc::S_IFMT, libc::S_IFCHR);
        assert_eq!(gone.rdev(), 0);
        assert_eq!(
            xattr::get(d.join("opq"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert!(d.join("opq/new").exists());
        assert_eq!(fs::metadata(d).unwrap().mode() & 0o777, 0o755);
    }

    #[test]
    fn escapes_are_rejected_naming_the_entry() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                archive(vec![(header(EntryType::Regular, "../evil", 1), b"x")]),
                "../evil",
            ),
            (
                archive(vec![(header(EntryType::Regular, "a/../../evil", 1), b"x")]),
                "a/../../evil",
            ),
            (
                archive(vec![
                    (link(EntryType::Symlink, "esc", "/tmp"), b""),
                    (header(EntryType::Regular, "esc/evil", 1), b"x"),
                ]),
                "esc/evil",
            ),
            (
                archive(vec![(link(EntryType::Link, "h", "../../etc/passwd"), b"")]),
                "h",
            ),
            (
                archive(vec![(link(EntryType::Link, "h", "/etc/passwd"), b"")]),
                "h",
            ),
            (
                archive(vec![
                    (link(EntryType::Symlink, "s", "/etc"), b""),
                    (link(EntryType::Link, "h", "s/passwd"), b""),
                ]),
                "h",
            ),
        ];
        for (tar, entry) in cases {
            let (_dir, r) = run(&tar);
            match r {
                Err(UnpackError::Unsafe { entry: e, .. }) => assert_eq!(e, entry),
                other => panic!("{entry}: expected unsafe, got {other:?}"),
            }
        }
    }

    #[test]
    fn later_entries_replace_earlier_ones_without_following_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"safe").unwrap();
        let tar = archive(vec![
            (link(EntryType::Symlink, "f", victim.to_str().unwrap()), b""),
            (header(EntryType::Regular, "f", 4), b"evil"),
        ]);
        let (dir, r) = run(&tar);
        r.unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"safe");
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"evil");
    }

    #[test]
    fn absolute_paths_are_rooted_at_the_layer() {
        let outside = tempfile::tempdir().unwrap();
        let abs = outside.path().join("evil");
        let tar = archive(vec![
            (header(EntryType::Directory, "/", 0), b""),
            (header(EntryType::Regular, abs.to_str().unwrap(), 1), b"x"),
        ]);
        let (dir, r) = run(&tar);
        r.unwrap();
        assert!(
            !abs.exists(),
            "an absolute entry was written outside the layer"
        );
        assert!(dir.path().join(abs.strip_prefix("/").unwrap()).exists());
    }

    #[test]
    fn a_missing_end_of_archive_is_tolerated_but_a_cut_entry_is_not() {
        let full = archive(vec![(
            header(EntryType::Regular, "a", 700),
            &[7u8; 700][..],
        )]);
        // Header + data, without the data's padding and the end blocks (as umoci writes).
        let short = &full[..512 + 700];
        let (dir, r) = run(short);
        assert_eq!(
            r.unwrap().diff_id,
            crate::image::store::sha256_digest(short)
        );
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), vec![7u8; 700]);
        let (_d, r) = run(&full[..512 + 600]);
        assert!(matches!(r, Err(UnpackError::Unsupported(_))), "{r:?}");
    }

    #[test]
    fn gzip_and_garbage() {
        let tar = archive(vec![(header(EntryType::Regular, "a", 1), b"x")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let (dir, r) = run(&gz.finish().unwrap());
        assert_eq!(r.unwrap().diff_id, crate::image::store::sha256_digest(&tar));
        assert!(dir.path().join("a").exists());
        let (_d, r) = run(b"this is not a tarball at all, not at all, no");
        assert!(matches!(r, Err(UnpackError::Unsupported(_))));
    }
}
