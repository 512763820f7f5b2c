//! Making images locally: `benchbox import DIR --tag REF`, and images from given layer tarballs.
//!
//! `import_dir` turns a directory into a single-layer image that is *reproducible*: the same
//! directory contents give the same digest on any machine, whenever. So the layer is an
//! uncompressed tar (a compressor's output may change between versions; a tar of sorted entries
//! does not) whose entries are sorted by name, owned by 0:0 with no user or group names, and all
//! stamped with the same mtime ([`IMPORT_MTIME`], 2000-01-01); modes, symlinks, hardlinks, device
//! nodes and fifos are kept; sockets are skipped, and so are extended attributes. The config
//! carries no creation date. The image is stored (blobs, then unpacked like a pulled one) under
//! the tag, and [`super::push`] can send it to a registry.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::reference::Reference;
use super::store::{Store, sha256_digest};
use super::{ImageConfig, ImageError, PullOptions, ResolvedImage, host_platform};

/// The mtime of every entry of an imported layer (2000-01-01T00:00:00Z): fixed for
/// reproducibility, and not 0, which some tools read as "no time".
pub const IMPORT_MTIME: u64 = 946_684_800;

const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Imports `dir` as a reproducible single-layer image tagged `tag`, unpacked and ready to run.
pub fn import_dir(store: &Store, dir: &Path, tag: &str) -> Result<ResolvedImage, ImageError> {
    let r = tag_reference(tag)?;
    let meta = fs::metadata(dir).map_err(|e| ImageError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(ImageError::io(
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    // Write the tar into a temp file while hashing it: never the whole layer in memory.
    let tmp = store.temp_file()?;
    let mut writer = HashingWriter {
        inner: tmp.as_file(),
        hasher: Sha256::new(),
        size: 0,
    };
    {
        let mut builder = tar::Builder::new(&mut writer);
        builder.follow_symlinks(false);
        let mut links = HashMap::new();
        append_tree(&mut builder, dir, Path::new(""), &mut links)?;
        builder.finish().map_err(|e| ImageError::io(dir, e))?;
    }
    let digest = format!("sha256:{}", hex::encode(writer.hasher.finalize()));
    let size = writer.size;
    let dest = store.blob_path(&digest);
    tmp.persist(&dest)
        .map_err(|e| ImageError::io(&dest, e.error))?;
    let layer = Layer {
        media_type: LAYER_TAR,
        digest: digest.clone(),
        diff_id: digest,
        size,
    };
    let config = ImageConfig {
        env: vec![(
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        )],
        ..ImageConfig::default()
    };
    let manifest = write_image(store, &[layer], &config)?;
    store.set_ref(&r.to_string(), &manifest)?;
    // All blobs are local: this unpacks without touching the network.
    super::registry::materialize(store, &r, &manifest, &PullOptions::default())
}

/// Stores an image made of the given layer tarballs (plain or gzip; BOTTOM first) and config,
/// tagged `tag`, without unpacking it; returns the manifest digest. For tests and tools that
/// build images (including broken ones, to test what pulling them does).
pub fn import_layers(
    store: &Store,
    layers: &[Vec<u8>],
    config: &ImageConfig,
    tag: &str,
) -> Result<String, ImageError> {
    let r = tag_reference(tag)?;
    let mut described = Vec::new();
    for bytes in layers {
        let gzip = bytes.starts_with(&[0x1f, 0x8b]);
        let diff_id = if gzip {
            let mut h = HashingWriter {
                inner: io::sink(),
                hasher: Sha256::new(),
                size: 0,
            };
            io::copy(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut h)
                .map_err(|e| ImageError::io(format!("layer of {r}"), e))?;
            format!("sha256:{}", hex::encode(h.hasher.finalize()))
        } else {
            sha256_digest(bytes)
        };
        described.push(Layer {
            media_type: if gzip { LAYER_GZIP } else { LAYER_TAR },
            digest: store.put_blob(None, bytes)?,
            diff_id,
            size: bytes.len() as u64,
        });
    }
    let manifest = write_image(store, &described, config)?;
    store.set_ref(&r.to_string(), &manifest)?;
    Ok(manifest)
}

fn tag_reference(tag: &str) -> Result<Reference, ImageError> {
    let r = Reference::parse(tag)?;
    if r.digest.is_some() {
        return Err(ImageError::BadReference {
            reference: tag.into(),
            why: "an image is tagged by name and tag, not by digest".into(),
        });
    }
    Ok(r)
}

struct Layer {
    media_type: &'static str,
    digest: String,
    diff_id: String,
    size: u64,
}

/// Writes config and manifest blobs (deterministic JSON, no timestamps); returns the manifest
/// digest.
fn write_image(
    store: &Store,
    layers: &[Layer],
    config: &ImageConfig,
) -> Result<String, ImageError> {
    let (os, arch, variant) = host_platform();
    let mut c = serde_json::Map::new();
    if !config.env.is_empty() {
        let env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        c.insert("Env".into(), env.into());
    }
    if let Some(w) = &config.working_dir {
        c.insert("WorkingDir".into(), w.clone().into());
    }
    if !config.entrypoint.is_empty() {
        c.insert("Entrypoint".into(), config.entrypoint.clone().into());
    }
    if !config.cmd.is_empty() {
        c.insert("Cmd".into(), config.cmd.clone().into());
    }
    if let Some(u) = &config.user {
        c.insert("User".into(), u.clone().into());
    }
    let mut cfg = serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": c,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    if let Some(v) = variant {
        cfg["variant"] = v.into();
    }
    let cfg_bytes = serde_json::to_vec(&cfg).expect("config serializes");
    let cfg_digest = store.put_blob(None, &cfg_bytes)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": cfg_digest, "size": cfg_bytes.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type, "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    store.put_blob(
        None,
        &serde_json::to_vec(&manifest).expect("manifest serializes"),
    )
}

/// Appends `root/rel` and everything below it, children sorted by name (bytes).
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), ImageError> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| ImageError::io(&dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| ImageError::io(&dir, e))?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = root.join(&rel);
        let io_err = |e: io::Error| ImageError::io(&path, e);
        let m = fs::symlink_metadata(&path).map_err(io_err)?;
        let ft = m.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(IMPORT_MTIME);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            builder
                .append_data(&mut h, &rel, io::empty())
                .map_err(io_err)?;
            append_tree(builder, root, &rel, links)?;
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let target = fs::read_link(&path).map_err(io_err)?;
            builder.append_link(&mut h, &rel, &target).map_err(io_err)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    builder.append_link(&mut h, &rel, first).map_err(io_err)?;
                    continue;
                }
                links.insert((m.dev(), m.ino()), rel.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            let file = File::open(&path).map_err(io_err)?;
            // take(): a file growing while we read it cannot overflow its entry.
            builder
                .append_data(&mut h, &rel, file.take(m.len()))
                .map_err(io_err)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            });
            h.set_size(0);
            let rdev = m.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .map_err(io_err)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .map_err(io_err)?;
            builder
                .append_data(&mut h, &rel, io::empty())
                .map_err(io_err)?;
        }
        // Sockets cannot be archived; they are skipped.
    }
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
