//! Talking to registries (the OCI distribution API): the only network code in benchbox.
//!
//! A pull resolves a reference to a manifest (through an index when the tag is multi-arch: we
//! pick this host's os/architecture/variant), stores the manifest, then fetches the config and
//! the layers in parallel. Each blob streams into a temp file while its sha256 is computed, and
//! is renamed into the store only when size and digest match; a transfer cut short is retried
//! (three attempts), a digest mismatch is an error and the bytes are discarded. Each layer is then
//! unpacked into a temp directory and renamed into place (see [`super::unpack`]); layers unpack
//! as soon as they arrive, while others are still downloading.
//!
//! Plain HTTP is used only for registries listed in [`PullOptions::insecure`]. Credentials come
//! from the `auths` of `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), else anonymous;
//! credential helpers (`credsStore`, `credHelpers`) are not supported.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use sha2::{Digest, Sha256};

use super::net_error;
use super::reference::{Reference, check_digest};
use super::store::{ImageRecord, Store, hex_of};
use super::unpack::{self, UnpackError};
use super::{ImageConfig, ImageError, PullOptions, ResolvedImage, host_platform, platform_string};

/// Manifest media types we accept (Docker v2 schema 2 and OCI, single and multi-arch).
const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Manifests and configs are small; a bigger one is a broken or hostile registry.
const MAX_JSON: usize = 8 << 20;
/// Attempts per blob before a cut-short transfer is an error.
const ATTEMPTS: u32 = 3;
/// Layers downloading at once.
const PARALLEL: usize = 4;

/// A registry connection for one repository.
struct Remote {
    client: Client,
    /// Spoken to in plain HTTP (an insecure registry).
    plain_http: bool,
    auth: RegistryAuth,
    reference: Reference,
}

impl Remote {
    fn new(reference: &Reference, opts: &PullOptions) -> Remote {
        static PROVIDER: Once = Once::new();
        // reqwest is built without a default TLS crypto provider (to avoid building aws-lc):
        // install ring's, once per process, before any client exists.
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let insecure = opts
            .insecure
            .iter()
            .any(|h| h == &reference.registry || h == reference.host());
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        Remote {
            client: Client::new(config),
            plain_http: insecure,
            auth: docker_credentials(&reference.registry),
            reference: reference.clone(),
        }
    }

    fn err(&self, e: OciDistributionError) -> ImageError {
        map_error(e, &self.reference, self.plain_http)
    }

    /// Fetches the manifest `r` names (following an index to this host's platform); returns its
    /// digest, bytes and the platform the index gave (None for a single manifest).
    async fn resolve(
        &self,
        r: &Reference,
    ) -> Result<(String, Vec<u8>, Option<String>), ImageError> {
        let (bytes, digest) = self.fetch_manifest(r).await?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
                reference: r.to_string(),
                detail: format!("manifest {digest} is not JSON: {e}"),
            })?;
        let Some(entries) = value.get("manifests").and_then(|m| m.as_array()) else {
            return Ok((digest, bytes, None));
        };
        // An index: choose this host's entry.
        let (os, arch, variant) = host_platform();
        let mut offered = Vec::new();
        let mut chosen: Option<(String, String, u8)> = None;
        for e in entries {
            let p = &e["platform"];
            let (eos, earch) = (
                p["os"].as_str().unwrap_or(""),
                p["architecture"].as_str().unwrap_or(""),
            );
            let evariant = p["variant"].as_str();
            let Some(d) = e["digest"].as_str() else {
                continue;
            };
            if eos.is_empty() || earch == "unknown" {
                continue; // attestations and other non-image entries
            }
            offered.push(platform_string(eos, earch, evariant));
            if eos != os || earch != arch {
                continue;
            }
            // An exact variant beats an unspecified one (arm64 images often omit "v8").
            let score = match (evariant, variant) {
                (Some(a), Some(b)) if a == b => 2,
                (None, _) => 1,
                _ => 0,
            };
            if score > 0 && chosen.as_ref().is_none_or(|c| score > c.2) {
                chosen = Some((d.to_string(), platform_string(eos, earch, evariant), score));
            }
        }
        let Some((child, platform, _)) = chosen else {
            return Err(ImageError::NoPlatform {
                reference: r.to_string(),
                platform: platform_string(os, arch, variant),
                offered: if offered.is_empty() {
                    "nothing".into()
                } else {
                    offered.join(", ")
                },
            });
        };
        check_digest(&child).map_err(|why| ImageError::Malformed {
            reference: r.to_string(),
            detail: format!("index entry: {why}"),
        })?;
        let (bytes, digest) = self.fetch_manifest(&r.with_digest(&child)).await?;
        if serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .is_some_and(|v| v.get("manifests").is_some())
        {
            return Err(ImageError::Malformed {
                reference: r.to_string(),
                detail: "an index points at another index".into(),
            });
        }
        Ok((digest, bytes, Some(platform)))
    }

    /// One manifest, its digest verified against the reference when it names one.
    async fn fetch_manifest(&self, r: &Reference) -> Result<(Vec<u8>, String), ImageError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&r.to_client(), &self.auth, ACCEPT)
            .await
            .map_err(|e| map_error(e, r, self.plain_http))?;
        if bytes.len() > MAX_JSON {
            return Err(ImageError::Malformed {
                reference: r.to_string(),
                detail: format!("manifest of {} bytes is too large", bytes.len()),
            });
        }
        let digest = super::store::sha256_digest(&bytes);
        if let Some(expected) = &r.digest
            && expected != &digest
        {
            return Err(ImageError::DigestMismatch {
                reference: r.to_string(),
                what: "manifest".into(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        Ok((bytes.to_vec(), digest))
    }

    /// Downloads one blob into the store unless it is there; returns the bytes downloaded.
    /// Holds the blob's lock meanwhile, so a concurrent pull of the same blob waits and reuses it.
    async fn fetch_blob(
        &self,
        store: &Store,
        desc: &OciDescriptor,
        bars: Option<&indicatif::MultiProgress>,
    ) -> Result<u64, ImageError> {
        if store.has_blob(&desc.digest) {
            return Ok(0);
        }
        let lock_name = format!("blob-{}", hex_of(&desc.digest));
        let s = store.clone();
        let _lock = tokio::task::spawn_blocking(move || s.lock(&lock_name))
            .await
            .expect("lock task does not panic")?;
        if store.has_blob(&desc.digest) {
            return Ok(0);
        }
        let size = u64::try_from(desc.size).unwrap_or(0);
        let bar = bars.map(|m| {
            let b = m.add(indicatif::ProgressBar::new(size));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(hex_of(&desc.digest)[..12].to_string());
            b
        });
        let mut last = String::new();
        let mut got = 0;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            match self.try_fetch_blob(store, desc, size, bar.as_ref()).await {
                Ok(()) => {
                    if let Some(b) = &bar {
                        b.finish_and_clear();
                    }
                    return Ok(size);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry { got: g, detail }) => {
                    got = g;
                    last = detail;
                }
            }
        }
        Err(ImageError::Truncated {
            reference: self.reference.to_string(),
            digest: desc.digest.clone(),
            attempts: ATTEMPTS,
            got,
            size,
            detail: last,
        })
    }

    async fn try_fetch_blob(
        &self,
        store: &Store,
        desc: &OciDescriptor,
        size: u64,
        bar: Option<&indicatif::ProgressBar>,
    ) -> Result<(), Attempt> {
        let image = self.reference.to_client();
        let mut response = match self.client.pull_blob_stream(&image, desc).await {
            Ok(r) => r,
            Err(OciDistributionError::RequestError(e)) if !e.is_connect() => {
                return Err(Attempt::Retry {
                    got: 0,
                    detail: error_chain(&e),
                });
            }
            Err(e) => return Err(Attempt::Fatal(self.err(e))),
        };
        // The temp file is deleted on drop: any early return leaves nothing behind.
        let mut tmp = store.temp_file().map_err(Attempt::Fatal)?;
        let mut hasher = Sha256::new();
        let mut got: u64 = 0;
        if let Some(b) = bar {
            b.set_position(0);
        }
        let mut stream_error = None;
        while let Some(chunk) = response.stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    stream_error = Some(e.to_string());
                    break;
                }
            };
            got += chunk.len() as u64;
            if got > size {
                return Err(Attempt::Fatal(
                    self.mismatch(desc, "more bytes than the manifest says"),
                ));
            }
            hasher.update(&chunk);
            // Page-cache writes: short enough not to need a blocking thread.
            tmp.as_file_mut()
                .write_all(&chunk)
                .map_err(|e| Attempt::Fatal(ImageError::io(tmp.path(), e)))?;
            if let Some(b) = bar {
                b.set_position(got);
            }
        }
        if got < size {
            return Err(Attempt::Retry {
                got,
                detail: stream_error.unwrap_or_else(|| "the connection closed early".into()),
            });
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != desc.digest {
            return Err(Attempt::Fatal(self.mismatch(desc, &actual)));
        }
        tmp.flush()
            .map_err(|e| Attempt::Fatal(ImageError::io(tmp.path(), e)))?;
        let dest = store.blob_path(&desc.digest);
        tmp.persist(&dest)
            .map_err(|e| Attempt::Fatal(ImageError::io(&dest, e.error)))?;
        Ok(())
    }

    fn mismatch(&self, desc: &OciDescriptor, actual: &str) -> ImageError {
        ImageError::DigestMismatch {
            reference: self.reference.to_string(),
            what: format!("blob ({})", desc.media_type),
            expected: desc.digest.clone(),
            actual: actual.to_string(),
        }
    }
}

enum Attempt {
    Retry { got: u64, detail: String },
    Fatal(ImageError),
}

fn runtime() -> Result<tokio::runtime::Runtime, ImageError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ImageError::io("tokio runtime", e))
}

/// Resolves `fetch` at its registry, stores the manifest and materialises the image, recording
/// it under `named` (the reference the user wrote; `fetch` may add a pinned digest).
pub(crate) fn pull_reference(
    store: &Store,
    fetch: &Reference,
    named: &Reference,
    opts: &PullOptions,
) -> Result<ResolvedImage, ImageError> {
    let _gc = store.gc_shared()?;
    runtime()?.block_on(async {
        let remote = Remote::new(fetch, opts);
        let (digest, bytes, index_platform) = remote.resolve(fetch).await?;
        store.put_blob(Some(&digest), &bytes)?;
        materialize_with(store, named, &digest, &remote, index_platform, opts).await
    })
}

/// Makes the image whose manifest `digest` is in the store complete: fetches missing blobs from
/// `named`'s registry and unpacks missing layers.
pub(crate) fn materialize(
    store: &Store,
    named: &Reference,
    digest: &str,
    opts: &PullOptions,
) -> Result<ResolvedImage, ImageError> {
    let _gc = store.gc_shared()?;
    runtime()?.block_on(async {
        let remote = Remote::new(named, opts);
        materialize_with(store, named, digest, &remote, None, opts).await
    })
}

/// The parsed image config: what we need of it.
struct ConfigInfo {
    platform: String,
    arch: String,
    diff_ids: Vec<String>,
    config: ImageConfig,
}

fn parse_config(reference: &str, bytes: &[u8]) -> Result<ConfigInfo, ImageError> {
    let bad = |detail: String| ImageError::Malformed {
        reference: reference.to_string(),
        detail,
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("config is not JSON: {e}")))?;
    let s = |v: &serde_json::Value| v.as_str().map(String::from);
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let os = s(&v["os"]).unwrap_or_else(|| "linux".into());
    let arch = s(&v["architecture"]).unwrap_or_default();
    let platform = platform_string(&os, &arch, v["variant"].as_str());
    let diff_ids = strings(&v["rootfs"]["diff_ids"]);
    for d in &diff_ids {
        check_digest(d).map_err(|why| bad(format!("config rootfs.diff_ids: {why}")))?;
    }
    let c = &v["config"];
    let config = ImageConfig {
        env: strings(&c["Env"])
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        working_dir: s(&c["WorkingDir"]).filter(|w| !w.is_empty()),
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        user: s(&c["User"]).filter(|u| !u.is_empty()),
    };
    Ok(ConfigInfo {
        platform,
        arch,
        diff_ids,
        config,
    })
}

async fn materialize_with(
    store: &Store,
    named: &Reference,
    digest: &str,
    remote: &Remote,
    index_platform: Option<String>,
    opts: &PullOptions,
) -> Result<ResolvedImage, ImageError> {
    let name = named.to_string();
    let bytes = store.read_blob(digest)?;
    let manifest: OciImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
            reference: name.clone(),
            detail: format!("manifest {digest} is not an image manifest: {e}"),
        })?;
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        check_digest(&d.digest).map_err(|why| ImageError::Malformed {
            reference: name.clone(),
            detail: format!("manifest {digest}: {why}"),
        })?;
    }
    let bars =
        (opts.progress && std::io::stderr().is_terminal()).then(indicatif::MultiProgress::new);
    let mut downloaded_bytes = remote
        .fetch_blob(store, &manifest.config, bars.as_ref())
        .await?;
    let mut downloaded_blobs = usize::from(downloaded_bytes > 0);
    let info = parse_config(&name, &store.read_blob(&manifest.config.digest)?)?;
    let (_, host_arch, _) = host_platform();
    if info.arch != host_arch {
        return Err(ImageError::NoPlatform {
            reference: name,
            platform: platform_string("linux", host_arch, None),
            offered: info.platform,
        });
    }
    if info.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::Malformed {
            reference: name,
            detail: format!(
                "the manifest has {} layers but the config lists {} diff ids",
                manifest.layers.len(),
                info.diff_ids.len()
            ),
        });
    }
    // Download and unpack every layer, several at once; each unpacks as soon as it is here.
    let jobs = manifest
        .layers
        .iter()
        .zip(&info.diff_ids)
        .map(|(desc, diff_id)| {
            let bars = bars.as_ref();
            let name = name.clone();
            async move {
                let got = remote.fetch_blob(store, desc, bars).await?;
                let (s, d, id) = (store.clone(), desc.digest.clone(), diff_id.clone());
                tokio::task::spawn_blocking(move || unpack_layer(&s, &name, &d, &id))
                    .await
                    .expect("unpack task does not panic")?;
                Ok::<u64, ImageError>(got)
            }
        });
    let got: Vec<u64> = stream::iter(jobs)
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    downloaded_blobs += got.iter().filter(|&&g| g > 0).count();
    downloaded_bytes += got.iter().sum::<u64>();

    let platform = index_platform.unwrap_or(info.platform);
    let size = u64::try_from(manifest.config.size).unwrap_or(0)
        + manifest
            .layers
            .iter()
            .map(|l| u64::try_from(l.size).unwrap_or(0))
            .sum::<u64>();
    let layers: Vec<String> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    store.put_image_record(ImageRecord {
        digest: digest.to_string(),
        platform: platform.clone(),
        references: [name.clone()].into_iter().collect(),
        config_digest: manifest.config.digest.clone(),
        layers: layers.clone(),
        config: info.config.clone(),
        size,
        last_used: 0,
    })?;
    store.set_ref(&name, digest)?;
    Ok(ResolvedImage {
        reference: name,
        digest: digest.to_string(),
        platform,
        layers: layers.iter().rev().map(|l| store.layer_path(l)).collect(),
        notes: store.layer_notes(&layers),
        config: info.config,
        downloaded_blobs,
        downloaded_bytes,
    })
}

/// Unpacks a stored layer blob into `layers/` unless it is there (under the layer's lock).
pub(crate) fn unpack_layer(
    store: &Store,
    reference: &str,
    digest: &str,
    diff_id: &str,
) -> Result<(), ImageError> {
    if store.has_layer(digest) {
        return Ok(());
    }
    let _lock = store.lock(&format!("layer-{}", hex_of(digest)))?;
    if store.has_layer(digest) {
        return Ok(());
    }
    // Unpack into tmp/<pid>-xxx/layer, then rename into place: a crash or an error leaves only
    // tmp/ garbage (removed on drop, or by the next Store::open when we were killed).
    let tmp = store.temp_dir()?;
    let work = tmp.path().join("layer");
    std::fs::create_dir(&work).map_err(|e| ImageError::io(&work, e))?;
    let unpacked = unpack::unpack_file(&store.blob_path(digest), &work).map_err(|e| match e {
        UnpackError::Unsafe { entry, why } => ImageError::UnsafeLayer {
            reference: reference.to_string(),
            layer: digest.to_string(),
            entry,
            why,
        },
        UnpackError::Unsupported(detail) => ImageError::UnsupportedLayer {
            reference: reference.to_string(),
            layer: digest.to_string(),
            detail,
        },
        UnpackError::Io(path, source) => ImageError::Io { path, source },
    })?;
    if unpacked.diff_id != diff_id {
        return Err(ImageError::DigestMismatch {
            reference: reference.to_string(),
            what: format!("uncompressed layer {digest}"),
            expected: diff_id.to_string(),
            actual: unpacked.diff_id,
        });
    }
    // Unpacked without root: what it could not keep is noted beside the layer (before the
    // layer is in place, so a layer in place never lacks its note), and shown with the image.
    if let Some(lost) = unpacked.lost.describe() {
        store.put_layer_note(digest, &format!("unpacked without root: {lost}"))?;
    }
    let dest = store.layer_path(digest);
    std::fs::rename(&work, &dest).map_err(|e| ImageError::io(&dest, e))?;
    Ok(())
}

/// Pushes the stored image `digest` (manifest, config, layers) to `to`; returns the digest.
pub(crate) fn push_image(
    store: &Store,
    digest: &str,
    to: &Reference,
    opts: &PullOptions,
) -> Result<String, ImageError> {
    let bytes = store.read_blob(digest)?;
    let manifest: OciImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
            reference: to.to_string(),
            detail: format!("stored manifest {digest}: {e}"),
        })?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    runtime()?.block_on(async {
        let remote = Remote::new(to, opts);
        let image = to.to_client();
        remote
            .client
            .auth(&image, &remote.auth, RegistryOperation::Push)
            .await
            .map_err(|e| remote.err(e))?;
        for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if remote
                .client
                .blob_exists(&image, &desc.digest)
                .await
                .map_err(|e| remote.err(e))?
            {
                continue;
            }
            let path = store.blob_path(&desc.digest);
            let file = File::open(&path).map_err(|e| ImageError::io(&path, e))?;
            remote
                .client
                .push_blob_stream(
                    &image,
                    file_chunks(file, path),
                    &desc.digest,
                    u64::try_from(desc.size).ok(),
                )
                .await
                .map_err(|e| remote.err(e))?;
        }
        let content_type =
            http::HeaderValue::from_str(&media_type).map_err(|e| ImageError::Malformed {
                reference: to.to_string(),
                detail: format!("media type {media_type:?}: {e}"),
            })?;
        let tagged = match &to.tag {
            Some(t) => oci_client::Reference::with_tag(
                to.registry.clone(),
                to.repository.clone(),
                t.clone(),
            ),
            None => image.clone(),
        };
        remote
            .client
            .push_manifest_raw(&tagged, bytes, content_type)
            .await
            .map_err(|e| remote.err(e))?;
        Ok(digest.to_string())
    })
}

/// A blob file as a stream of 1 MiB chunks (push never holds a whole layer in memory).
fn file_chunks(
    file: File,
    path: PathBuf,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    stream::unfold(Some(file), move |state| {
        let path = path.clone();
        async move {
            let mut file = state?;
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((
                    Err(OciDistributionError::IoError(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", path.display()),
                    ))),
                    None,
                )),
            }
        }
    })
}

/// Turns a client error into ours: "not found" and "unreachable" (with its cause) are the ones
/// users act on. `plain_http`: the registry was spoken to without TLS.
fn map_error(e: OciDistributionError, r: &Reference, plain_http: bool) -> ImageError {
    let reference = r.to_string();
    let registry = r.registry.clone();
    let detail = error_chain(&e);
    match &e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                ImageError::NotFound { reference }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                ImageError::Unauthorized {
                    registry,
                    reference,
                    detail,
                }
            } else {
                ImageError::Registry { reference, detail }
            }
        }
        OciDistributionError::ImageManifestNotFoundError(_) => ImageError::NotFound { reference },
        OciDistributionError::ServerError { code: 404, .. } => ImageError::NotFound { reference },
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        }
        | OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => ImageError::Unauthorized {
            registry,
            reference,
            detail,
        },
        OciDistributionError::RequestError(re) => {
            let target = net_error::Target {
                registry: &r.registry,
                host: r.host(),
                plain_http,
            };
            let why = net_error::classify(re, &target, re.is_timeout());
            ImageError::Unreachable {
                registry,
                reference,
                message: why.message,
                hint: why.hint,
            }
        }
        _ => ImageError::Registry { reference, detail },
    }
}

/// An error and its sources, `a: b: c` (reqwest's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Credentials for `registry` from the Docker config's `auths` (base64 `user:password`).
fn docker_credentials(registry: &str) -> RegistryAuth {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker/config.json"),
            None => return RegistryAuth::Anonymous,
        },
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return RegistryAuth::Anonymous;
    };
    credentials_from(&text, registry).unwrap_or(RegistryAuth::Anonymous)
}

fn credentials_from(config_json: &str, registry: &str) -> Option<RegistryAuth> {
    use base64::Engine;
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let auths = v.get("auths")?.as_object()?;
    for (key, entry) in auths {
        // Keys are written as "host", "host:port", or URLs ("https://index.docker.io/v1/").
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        let host = match host {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            h => h,
        };
        if host != registry {
            continue;
        }
        if let Some(b64) = entry.get("auth").and_then(|a| a.as_str()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (user, pass) = text.split_once(':')?;
            return Some(RegistryAuth::Basic(user.to_string(), pass.to_string()));
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|u| u.as_str()),
            entry.get("password").and_then(|p| p.as_str()),
        ) {
            return Some(RegistryAuth::Basic(u.to_string(), p.to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_auths() {
        let json = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNzOndvcmQ="},
            "127.0.0.1:5000": {"username": "a", "password": "b"}
        }}"#;
        assert_eq!(
            credentials_from(json, "docker.io"),
            Some(RegistryAuth::Basic("user".into(), "pass:word".into()))
        );
        assert_eq!(
            credentials_from(json, "127.0.0.1:5000"),
            Some(RegistryAuth::Basic("a".into(), "b".into()))
        );
        assert_eq!(credentials_from(json, "ghcr.io"), None);
    }

    #[test]
    fn config_defaults_are_read() {
        let c = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=b=c"],
            "WorkingDir":"/w","Entrypoint":["/bin/sh"],"Cmd":["-c","x"],"User":"1000"},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let info = parse_config("r", c).unwrap();
        assert_eq!(info.platform, "linux/amd64");
        assert_eq!(
            info.config.env,
            vec![("PATH".into(), "/bin".into()), ("A".into(), "b=c".into())]
        );
        assert_eq!(info.config.working_dir.as_deref(), Some("/w"));
        assert_eq!(info.config.entrypoint, vec!["/bin/sh"]);
        assert_eq!(info.config.cmd, vec!["-c", "x"]);
        assert_eq!(info.config.user.as_deref(), Some("1000"));
    }
}
