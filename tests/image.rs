//! Image tests against a real registry (Debian's docker-registry), with images built here from
//! busybox-static: push through the client, pull back, check what the overlay shows.
//! Unpacking needs root (ownership, device-node whiteouts, trusted.* xattrs, overlay mounts).

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use benchbox::image::{self, ImageConfig, ImageError, LockFile, PullOptions, Store};
use registry::{Fault, FaultyRegistry, Registry, http};

fn opts() -> PullOptions {
    PullOptions::default()
}

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

/// Entries of a test layer.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Exec(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn raw_header(kind: tar::EntryType, path: &str, link: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    // Raw names: the tar crate refuses to write '..' or absolute paths, and we need those.
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    h
}

fn layer(entries: &[E], gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            E::Dir(p) => (raw_header(tar::EntryType::Directory, p, "", 0, 0o755), b""),
            E::File(p, d) => (
                raw_header(tar::EntryType::Regular, p, "", d.len() as u64, 0o644),
                d,
            ),
            E::Exec(p, d) => (
                raw_header(tar::EntryType::Regular, p, "", d.len() as u64, 0o755),
                d,
            ),
            E::Symlink(p, t) => (raw_header(tar::EntryType::Symlink, p, t, 0, 0o777), b""),
            E::Hardlink(p, t) => (raw_header(tar::EntryType::Link, p, t, 0, 0o644), b""),
        };
        b.append(&h, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// Three layers: busybox and files; then a deletion, an opaque directory and a new file; then a
/// file over a hardlinked pair's directory. `marker` lands in /etc/marker to tell images apart.
fn busybox_layers(marker: &str) -> Vec<Vec<u8>> {
    let busybox = fs::read("/bin/busybox")
        .expect("busybox-static is not installed (apt-get install busybox-static)");
    let l1 = layer(
        &[
            E::Dir("bin/"),
            E::Exec("bin/busybox", &busybox),
            E::Symlink("bin/sh", "busybox"),
            E::Symlink("bin/cat", "/bin/busybox"),
            E::Symlink("bin/ls", "busybox"),
            E::Dir("etc/"),
            E::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            E::Dir("data/"),
            E::File("data/keep", b"keep"),
            E::File("data/gone", b"gone"),
            E::Dir("opq/"),
            E::File("opq/old", b"old"),
            E::Dir("hard/"),
            E::File("hard/a", b"linked"),
            E::Hardlink("hard/b", "hard/a"),
        ],
        true,
    );
    let l2 = layer(
        &[
            E::File("data/.wh.gone", b""),
            E::Dir("opq/"),
            E::File("opq/.wh..wh..opq", b""),
            E::File("opq/new", b"new"),
        ],
        false,
    );
    let l3 = layer(
        &[E::Dir("etc/"), E::File("etc/marker", marker.as_bytes())],
        true,
    );
    vec![l1, l2, l3]
}

fn config() -> ImageConfig {
    ImageConfig {
        env: vec![("PATH".into(), "/bin".into())],
        working_dir: Some("/data".into()),
        cmd: vec!["/bin/sh".into()],
        ..ImageConfig::default()
    }
}

/// Builds an image in a scratch store and pushes it to `to`; returns its manifest digest.
fn push_image(layers: &[Vec<u8>], to: &str) -> String {
    let (_d, scratch) = new_store();
    image::import_layers(&scratch, layers, &config(), "scratch/build:1").unwrap();
    image::push(&scratch, "scratch/build:1", to, &opts()).unwrap()
}

/// A read-only overlay of the image's layers, unmounted on drop.
struct Overlay {
    dir: tempfile::TempDir,
}

impl Overlay {
    fn mount(layers: &[PathBuf]) -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        let lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={}", lower.join(":")))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount overlay failed");
        Overlay { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn sh(&self, script: &str) -> String {
        let out = Command::new("chroot")
            .arg(self.path())
            .args(["/bin/sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn tmp_is_empty(store: &Store) -> bool {
    fs::read_dir(store.root().join("tmp")).unwrap().count() == 0
}

#[test]
fn pull_unpacks_layers_whiteouts_and_links() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    let reference = format!("{}/bench/busybox:1", reg.addr);
    let pushed = push_image(&busybox_layers("one"), &reference);

    let (_d, store) = new_store();
    let img = image::pull(&store, &reference, &opts()).unwrap();
    assert_eq!(img.digest, pushed);
    assert_eq!(img.reference, reference);
    assert_eq!(img.layers.len(), 3);
    assert_eq!(img.downloaded_blobs, 4, "config and three layers");
    assert_eq!(img.config.working_dir.as_deref(), Some("/data"));
    assert_eq!(img.config.cmd, vec!["/bin/sh"]);
    assert_eq!(img.platform, format!("linux/{}", image::host_platform().1));
    assert!(tmp_is_empty(&store));

    let ov = Overlay::mount(&img.layers);
    let root = ov.path();
    assert!(root.join("data/keep").exists());
    assert!(
        !root.join("data/gone").exists(),
        "whiteout must hide data/gone"
    );
    let opq: Vec<_> = fs::read_dir(root.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(opq, vec!["new"], "opaque directory must hide opq/old");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let (a, b) = (
        fs::metadata(root.join("hard/a")).unwrap(),
        fs::metadata(root.join("hard/b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hardlink must survive");
    assert_eq!(a.nlink(), 2);
    assert_eq!(
        fs::metadata(root.join("bin/busybox")).unwrap().mode() & 0o777,
        0o755
    );
    // And the image runs: busybox through its symlinks, inside the overlay.
    assert_eq!(
        ov.sh("cat /data/keep /etc/marker; ls /opq; ls /data"),
        "keeponenew\nkeep\n"
    );
    drop(ov);

    // Cached: no download, same layers, even through a different spelling of the reference.
    let again = image::ensure(&store, &reference, None, &opts()).unwrap();
    assert_eq!(again.downloaded_blobs, 0);
    assert_eq!(again.layers, img.layers);
    let pinned = image::ensure(&store, &reference, Some(&img.digest), &opts()).unwrap();
    assert_eq!(pinned.layers, img.layers);
    let listed = image::list(&store);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, img.digest);
    assert!(listed[0].references.contains(&reference));
    assert!(listed[0].size > 1_000_000);

    // Docker v2 schema 2 manifests work too: same blobs, Docker media types.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(store.blob_path(&img.digest)).unwrap()).unwrap();
    let mut docker = manifest.clone();
    docker["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into();
    docker["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json".into();
    for l in docker["layers"].as_array_mut().unwrap() {
        let gz = l["mediaType"].as_str().unwrap().ends_with("gzip");
        l["mediaType"] = if gz {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            "application/vnd.docker.image.rootfs.diff.tar"
        }
        .into();
    }
    let body = serde_json::to_vec(&docker).unwrap();
    let (status, _) = http(
        &reg.addr,
        "PUT",
        "/v2/bench/busybox/manifests/docker",
        &[(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        &body,
    )
    .unwrap();
    assert_eq!(status, 201);
    let (_d2, store2) = new_store();
    let d = image::pull(
        &store2,
        &format!("{}/bench/busybox:docker", reg.addr),
        &opts(),
    )
    .unwrap();
    assert_eq!(d.layers.len(), 3);
    assert_eq!(fs::read(d.layers[0].join("etc/marker")).unwrap(), b"one");
}

#[test]
fn multi_arch_index_resolves_to_this_host() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    let host = push_image(
        &busybox_layers("host"),
        &format!("{}/multi/app:host", reg.addr),
    );
    let other = push_image(
        &busybox_layers("other"),
        &format!("{}/multi/app:other", reg.addr),
    );
    let (_, arch, _) = image::host_platform();
    let foreign = if arch == "s390x" { "riscv64" } else { "s390x" };
    let entry = |digest: &str, os: &str, arch: &str| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": 1, "platform": {"os": os, "architecture": arch}})
    };
    let index = |entries: Vec<serde_json::Value>| {
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}))
        .unwrap()
    };
    let put = |tag: &str, body: &[u8]| {
        let (status, text) = http(
            &reg.addr,
            "PUT",
            &format!("/v2/multi/app/manifests/{tag}"),
            &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
            body,
        )
        .unwrap();
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&text));
    };
    // The foreign platform first, and an attestation-like entry: neither may be picked.
    put(
        "latest",
        &index(vec![
            entry(&other, "linux", foreign),
            entry(&other, "unknown", "unknown"),
            entry(&host, "linux", arch),
        ]),
    );
    let (_d, store) = new_store();
    let img = image::pull(&store, &format!("{}/multi/app", reg.addr), &opts()).unwrap();
    assert_eq!(
        img.digest, host,
        "the index must resolve to this host's manifest"
    );
    assert_eq!(fs::read(img.layers[0].join("etc/marker")).unwrap(), b"host");

    put("foreign", &index(vec![entry(&other, "linux", foreign)]));
    let e = image::pull(&store, &format!("{}/multi/app:foreign", reg.addr), &opts()).unwrap_err();
    assert!(matches!(e, ImageError::NoPlatform { .. }), "{e}");
    assert!(e.to_string().contains(&format!("linux/{foreign}")), "{e}");
    assert_eq!(e.exit_code(), 4);
}

#[test]
fn malicious_layers_are_rejected_and_nothing_kept() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("pwned");
    let target_s = target.display().to_string();
    let good = layer(&[E::Dir("etc/"), E::File("etc/ok", b"ok")], true);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "slip",
            layer(&[E::File("../../../../../../../../tmp/slip", b"x")], true),
            "../../../../../../../../tmp/slip",
        ),
        (
            "symlink",
            layer(
                &[
                    E::Symlink("esc", outside.path().to_str().unwrap()),
                    E::File("esc/pwned", b"x"),
                ],
                true,
            ),
            "esc/pwned",
        ),
        (
            "hardlink",
            layer(&[E::Hardlink("passwd", "../../../../etc/passwd")], true),
            "passwd",
        ),
        (
            "hardlink-via-symlink",
            layer(
                &[
                    E::Symlink("etc", "/etc"),
                    E::Hardlink("passwd", "etc/passwd"),
                ],
                true,
            ),
            "passwd",
        ),
    ];
    for (name, bad, entry) in cases {
        let reference = format!("{}/evil/{name}:1", reg.addr);
        push_image(&[good.clone(), bad.clone()], &reference);
        let (_d, store) = new_store();
        let e = image::pull(&store, &reference, &opts()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ImageError::UnsafeLayer { .. }), "{name}: {msg}");
        assert!(
            msg.contains(&format!("{entry:?}")),
            "{name}: the error must name {entry}: {msg}"
        );
        assert!(msg.contains("hint:"), "{msg}");
        assert_eq!(e.exit_code(), 4);
        assert!(
            !target.exists() && !Path::new("/tmp/slip").exists(),
            "{name} wrote outside"
        );
        // Nothing of the bad layer is kept; no record claims the image is complete.
        let bad_digest = format!("sha256:{}", hex_sha256(&bad));
        assert!(
            !store.layer_path(&bad_digest).exists(),
            "{name}: half layer kept"
        );
        assert!(tmp_is_empty(&store), "{name}: tmp not cleaned");
        assert!(image::list(&store).is_empty());
    }
    // An absolute entry is rooted at the layer (as Docker does): accepted, and confined.
    let reference = format!("{}/evil/absolute:1", reg.addr);
    push_image(
        &[good, layer(&[E::File(&target_s, b"x")], false)],
        &reference,
    );
    let (_d, store) = new_store();
    let img = image::pull(&store, &reference, &opts()).unwrap();
    assert!(
        !target.exists(),
        "an absolute entry was written outside the layer"
    );
    assert!(
        img.layers[0]
            .join(target.strip_prefix("/").unwrap())
            .exists()
    );
}

/// Incompressible bytes (xorshift), so layer sizes are what they say.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    // A few MB of incompressible data, so both pulls really overlap.
    let big = noise(6_000_000, 9);
    let mut layers = busybox_layers("conc");
    layers.push(layer(&[E::File("big", &big)], true));
    let reference = format!("{}/conc/app:1", reg.addr);
    let digest = push_image(&layers, &reference);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (root, reference) = (root.clone(), reference.clone());
            std::thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                image::pull(&store, &reference, &opts()).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for r in &results {
        assert_eq!(r.digest, digest);
        assert_eq!(r.layers, results[0].layers);
    }
    let total: usize = results.iter().map(|r| r.downloaded_blobs).sum();
    assert_eq!(
        total,
        1 + layers.len(),
        "each blob downloaded by exactly one pull"
    );
    for l in &layers {
        let d = format!("sha256:{}", hex_sha256(l));
        assert_eq!(
            reg.blob_downloads("conc/app", &d),
            1,
            "registry served {d} more than once"
        );
    }
    let store = Store::open(&root).unwrap();
    assert!(tmp_is_empty(&store));
    assert_eq!(fs::read(results[0].layers[0].join("big")).unwrap(), big);
}

#[test]
fn a_pinned_digest_survives_a_retag() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    let reference = format!("{}/pin/app:stable", reg.addr);
    let old = push_image(&busybox_layers("old"), &reference);
    let (_d, store) = new_store();
    let first = image::pull(&store, &reference, &opts()).unwrap();
    assert_eq!(first.digest, old);
    let lock_dir = tempfile::tempdir().unwrap();
    let lock_path = image::lock::lock_path(&lock_dir.path().join("m.toml"));
    let mut lock = LockFile::new();
    lock.set(&reference, &first.digest, &first.platform)
        .unwrap();
    lock.write(&lock_path).unwrap();

    // The tag moves.
    let new = push_image(&busybox_layers("new"), &reference);
    assert_ne!(new, old);

    // A fresh machine with the lock file gets the old image, by digest, from the registry.
    let lock = LockFile::read(&lock_path).unwrap().unwrap();
    let pin = lock.get(&reference).unwrap();
    let (_d2, fresh) = new_store();
    let locked = image::ensure(&fresh, &reference, Some(&pin.digest), &opts()).unwrap();
    assert_eq!(locked.digest, old);
    assert_eq!(
        fs::read(locked.layers[0].join("etc/marker")).unwrap(),
        b"old"
    );
    // The first store still answers from its cache; a pull re-resolves the tag.
    assert_eq!(
        image::ensure(&store, &reference, None, &opts())
            .unwrap()
            .digest,
        old
    );
    let updated = image::pull(&store, &reference, &opts()).unwrap();
    assert_eq!(updated.digest, new);
    assert_eq!(
        fs::read(updated.layers[0].join("etc/marker")).unwrap(),
        b"new"
    );
    // Two images share their two lower layers: stored once.
    assert_eq!(updated.layers[1..], first.layers[1..]);

    // Prune keeps what is pinned and drops the rest.
    let keep = [old.clone()].into_iter().collect();
    let report = image::prune(&store, &keep);
    assert_eq!(report.images, vec![new.clone()]);
    assert_eq!(report.layers, 1);
    assert!(first.layers.iter().all(|l| l.exists()));
    assert!(!updated.layers[0].exists());
    assert_eq!(
        image::ensure(&store, &reference, Some(&old), &opts())
            .unwrap()
            .downloaded_blobs,
        0
    );
}

#[test]
fn unknown_and_unreachable_images_say_so() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    let (_d, store) = new_store();
    let reference = format!("{}/nobody/here:1", reg.addr);
    let e = image::pull(&store, &reference, &opts()).unwrap_err();
    assert!(matches!(e, ImageError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&reference), "{e}");
    assert_eq!(e.exit_code(), 4);

    push_image(&busybox_layers("x"), &format!("{}/some/app:1", reg.addr));
    let e = image::pull(&store, &format!("{}/some/app:nope", reg.addr), &opts()).unwrap_err();
    assert!(matches!(e, ImageError::NotFound { .. }), "{e}");
    let pinned = format!("sha256:{}", "0".repeat(64));
    let e = image::ensure(
        &store,
        &format!("{}/some/app:1", reg.addr),
        Some(&pinned),
        &opts(),
    )
    .unwrap_err();
    assert!(matches!(e, ImageError::NotFound { .. }), "{e}");

    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = image::pull(&store, &format!("127.0.0.1:{port}/a:1"), &opts()).unwrap_err();
    assert!(matches!(e, ImageError::Unreachable { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("nothing listens on 127.0.0.1:{port}")),
        "{e}"
    );
    assert_eq!(e.exit_code(), 4);

    // Plain HTTP only for insecure registries: without 127.0.0.1 in the list, TLS fails.
    let strict = PullOptions {
        insecure: vec![],
        progress: false,
    };
    let e = image::pull(&store, &format!("{}/some/app:1", reg.addr), &strict).unwrap_err();
    assert!(matches!(e, ImageError::Unreachable { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("BENCHBOX_INSECURE_REGISTRIES=127.0.0.1"),
        "{e}"
    );

    let e = image::pull(&store, "Bad//Ref", &opts()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(image::list(&store).is_empty());
    assert!(tmp_is_empty(&store));
}

/// Tag or digest -> (media type, bytes).
type Manifests = HashMap<String, (String, Vec<u8>)>;

/// An image served by the fault-injecting registry: (manifests, blobs, big layer digest).
fn faulty_image(repo: &str) -> (Manifests, HashMap<String, Vec<u8>>, String) {
    let (_d, scratch) = new_store();
    let big = noise(300_000, 7);
    let layers = vec![
        layer(&[E::File("small", b"s")], true),
        layer(&[E::File("big", &big)], true),
    ];
    let digest = image::import_layers(&scratch, &layers, &config(), &format!("{repo}:1")).unwrap();
    let manifest = fs::read(scratch.blob_path(&digest)).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut blobs = HashMap::new();
    let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    digests.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    for d in &digests {
        blobs.insert(d.clone(), fs::read(scratch.blob_path(d)).unwrap());
    }
    let manifests = [(
        "1".to_string(),
        (
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            manifest,
        ),
    )]
    .into_iter()
    .collect();
    (manifests, blobs, digests[2].clone())
}

#[test]
fn truncated_transfers_are_retried_then_fail_and_corrupt_blobs_are_discarded() {
    if !common::privileged() {
        return;
    }
    let (manifests, blobs, big) = faulty_image("f/app");
    let path = format!("/v2/f/app/blobs/{big}");

    // Cut short twice, then whole: the third attempt succeeds.
    let reg = FaultyRegistry::start(
        "f/app",
        manifests.clone(),
        blobs.clone(),
        &big,
        Fault::TruncateFirst(2),
    );
    let (_d, store) = new_store();
    let img = image::pull(&store, &format!("{}/f/app:1", reg.addr), &opts()).unwrap();
    assert_eq!(reg.count(&path), 3);
    assert!(img.layers[0].join("big").exists());

    // Always cut short: an error after three attempts, nothing kept.
    let reg = FaultyRegistry::start(
        "f/app",
        manifests.clone(),
        blobs.clone(),
        &big,
        Fault::TruncateFirst(99),
    );
    let (_d, store) = new_store();
    let e = image::pull(&store, &format!("{}/f/app:1", reg.addr), &opts()).unwrap_err();
    assert!(
        matches!(e, ImageError::Truncated { attempts: 3, .. }),
        "{e}"
    );
    assert_eq!(reg.count(&path), 3);
    assert!(!store.has_blob(&big) && !store.has_layer(&big));
    assert!(tmp_is_empty(&store));
    assert_eq!(e.exit_code(), 4);

    // Corrupt: a digest mismatch, the blob discarded, and a later good pull works.
    let reg = FaultyRegistry::start(
        "f/app",
        manifests.clone(),
        blobs.clone(),
        &big,
        Fault::Corrupt,
    );
    let (_d, store) = new_store();
    let e = image::pull(&store, &format!("{}/f/app:1", reg.addr), &opts()).unwrap_err();
    assert!(matches!(e, ImageError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&big), "{e}");
    assert!(!store.has_blob(&big));
    assert!(tmp_is_empty(&store));
    let good = FaultyRegistry::start("f/app", manifests, blobs, "none", Fault::Corrupt);
    let img = image::ensure(&store, &format!("{}/f/app:1", good.addr), None, &opts()).unwrap();
    assert_eq!(img.layers.len(), 2);
}

#[test]
fn a_full_disk_is_an_error_and_leaves_nothing_partial() {
    if !common::privileged() {
        return;
    }
    let reg = Registry::start();
    let big = noise(3_000_000, 9);
    let bad_layer = layer(&[E::File("big", &big)], true);
    let reference = format!("{}/full/app:1", reg.addr);
    push_image(
        &[layer(&[E::File("a", b"a")], true), bad_layer.clone()],
        &reference,
    );

    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(dir.path().to_path_buf());
    let store = Store::open(dir.path()).unwrap();
    let e = image::pull(&store, &reference, &opts()).unwrap_err();
    assert!(matches!(e, ImageError::Io { .. }), "{e}");
    assert!(e.to_string().contains("disk is full"), "{e}");
    assert_eq!(e.exit_code(), 1);
    let bad = format!("sha256:{}", hex_sha256(&bad_layer));
    assert!(!store.has_blob(&bad) && !store.has_layer(&bad));
    assert!(tmp_is_empty(&store));
    assert!(image::list(&store).is_empty());
}

#[test]
fn import_is_reproducible_and_a_valid_image() {
    if !common::privileged() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let rootfs = common::busybox_rootfs(&src.path().join("rootfs"));
    fs::write(rootfs.join("etc/hello"), b"hello\n").unwrap();
    fs::hard_link(rootfs.join("etc/hello"), rootfs.join("etc/hello2")).unwrap();
    let (_d1, a) = new_store();
    let (_d2, b) = new_store();
    let ia = image::import_dir(&a, &rootfs, "local/bench:1").unwrap();
    // Different mtimes and a different store: same digest.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(rootfs.join("etc/hello"), b"hello\n").unwrap();
    let ib = image::import_dir(&b, &rootfs, "local/bench:1").unwrap();
    assert_eq!(ia.digest, ib.digest, "same input, same digest");
    assert_eq!(ia.layers.len(), 1);
    let l = &ia.layers[0];
    assert_eq!(
        fs::read_link(l.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::metadata(l.join("etc/hello")).unwrap().ino(),
        fs::metadata(l.join("etc/hello2")).unwrap().ino()
    );
    fs::write(rootfs.join("etc/hello"), b"changed\n").unwrap();
    let (_d3, c) = new_store();
    assert_ne!(
        image::import_dir(&c, &rootfs, "local/bench:1")
            .unwrap()
            .digest,
        ia.digest
    );

    // Push it; skopeo (another implementation) must find a valid image with our digest.
    let reg = Registry::start();
    let to = format!("{}/imported/bench:1", reg.addr);
    let pushed = image::push(&a, "local/bench:1", &to, &opts()).unwrap();
    assert_eq!(pushed, ia.digest);
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{to}")])
        .output()
        .expect("skopeo is missing (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], ia.digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["Architecture"], image::host_platform().1);

    // And it pulls back and runs.
    let (_d4, fresh) = new_store();
    let img = image::pull(&fresh, &to, &opts()).unwrap();
    let out = Command::new("chroot")
        .arg(&img.layers[0])
        .args(["/bin/sh", "-c", "cat /etc/hello2"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
}

/// Not a test: the measuring end of `benches/pull.sh` (until the CLI's `benchbox pull` is wired).
/// BENCH_MODE=pull times one pull of BENCH_REF into the store BENCH_STORE; BENCH_MODE=ensure
/// times `ensure` of an already cached image (median of BENCH_N calls).
#[test]
#[ignore = "driver for benches/pull.sh"]
fn bench_driver() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (reference, root) = (var("BENCH_REF"), PathBuf::from(var("BENCH_STORE")));
    let store = Store::open(&root).unwrap();
    match var("BENCH_MODE").as_str() {
        "pull" => {
            let t = std::time::Instant::now();
            let img = image::pull(&store, &reference, &opts()).unwrap();
            println!(
                "BENCH pull_seconds={:.3} layers={} bytes={}",
                t.elapsed().as_secs_f64(),
                img.layers.len(),
                img.downloaded_bytes
            );
        }
        "ensure" => {
            let n: usize = var("BENCH_N").parse().unwrap();
            let mut times: Vec<f64> = (0..n)
                .map(|_| {
                    let t = std::time::Instant::now();
                    let img = image::ensure(&store, &reference, None, &opts()).unwrap();
                    assert_eq!(img.downloaded_blobs, 0);
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("BENCH ensure_us={:.1}", times[n / 2]);
        }
        other => panic!("BENCH_MODE {other:?}: pull or ensure"),
    }
}
