//! A cell's identity and id: what defines the cell (axes, root, paths as written, environment,
//! limits, security, services, command) as canonical JSON, hashed (the "identity" stage of the spec
//! pipeline). A new matrix key left at its default must not change existing ids: see
//! ARCHITECTURE.md, "Adding things".

use super::*;

/// Bumped if the identity layout changes, so old and new ids never collide by accident.
pub(super) const ID_VERSION: u32 = 1;

/// What the id hashes: everything that defines the cell, paths as written (see module doc).
/// Borrowed from the cell: hashing copies nothing.
#[derive(Serialize)]
pub(super) struct Identity<'c> {
    v: u32,
    axes: &'c [(String, Value)],
    root: IdRoot,
    workdir: &'c Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: &'c Option<String>,
    volumes: Vec<(PathBuf, PathBuf, bool)>,
    env: &'c BTreeMap<String, String>,
    network: Network,
    /// Only when not the default, so adding the key left earlier ids unchanged.
    #[serde(skip_serializing_if = "Scratch::is_memory")]
    scratch: Scratch,
    limits: &'c Limits,
    /// Only when something is loosened, like `scratch`.
    #[serde(skip_serializing_if = "Policy::is_default")]
    security: &'c Policy,
    /// Only when the cell has services, like `scratch`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    services: Vec<IdService<'c>>,
    command: &'c [String],
    setup: &'c Option<Vec<String>>,
}

/// The parts of a cell's identity that are not in the cell as such: paths as written.
pub(super) struct IdParts {
    pub(super) root: IdRoot,
    pub(super) volumes: Vec<(PathBuf, PathBuf, bool)>,
    /// Each service's, in the order of `Cell::services`.
    pub(super) services: Vec<IdPaths>,
}

/// A service's root and volumes as written.
pub(super) struct IdPaths {
    pub(super) root: IdRoot,
    pub(super) volumes: Vec<(PathBuf, PathBuf, bool)>,
}

/// What defines a service: all of it but its timeouts (like the cell's `timeout`, they bound
/// what runs without changing it) and its image digest (folded in by `pin_images`).
#[derive(Serialize)]
pub(super) struct IdService<'c> {
    name: &'c str,
    root: IdRoot,
    command: &'c [String],
    env: &'c BTreeMap<String, String>,
    volumes: Vec<(PathBuf, PathBuf, bool)>,
    user: &'c Option<String>,
    workdir: &'c Option<PathBuf>,
    ready: &'c Ready,
    lifetime: Lifetime,
    depends_on: &'c [String],
    ports: &'c [u16],
    limits: &'c Limits,
}

impl<'c> Identity<'c> {
    pub(super) fn of(cell: &'c Cell, axes: &'c [(String, Value)], parts: IdParts) -> Identity<'c> {
        Identity {
            v: ID_VERSION,
            axes,
            root: parts.root,
            workdir: &cell.workdir,
            user: &cell.user,
            volumes: parts.volumes,
            env: &cell.env,
            network: cell.network,
            scratch: cell.scratch,
            limits: &cell.limits,
            security: &cell.security,
            services: cell
                .services
                .iter()
                .zip(parts.services)
                .map(|(s, paths)| IdService {
                    name: &s.name,
                    root: paths.root,
                    command: &s.command,
                    env: &s.env,
                    volumes: paths.volumes,
                    user: &s.user,
                    workdir: &s.workdir,
                    ready: &s.ready,
                    lifetime: s.lifetime,
                    depends_on: &s.depends_on,
                    ports: &s.ports,
                    limits: &s.limits,
                })
                .collect(),
            command: &cell.command,
            setup: &cell.setup,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum IdRoot {
    Host,
    Dir(PathBuf),
    Image(String),
}

/// 12 hex chars of sha256 over the canonical JSON (keys sorted at every level) of the identity.
pub(super) fn cell_id(identity: &Identity) -> String {
    let mut text = Vec::with_capacity(256);
    identity_json(identity, &mut text);
    let digest = Sha256::digest(&text);
    hex::encode(&digest[..6])
}

/// The canonical JSON of an identity, written field by field in sorted key order: the same
/// bytes as [`canonical_json`] of its `serde_json::to_value` (a test holds them equal), in a
/// fraction of the time, which is most of what building a cell costs. `security`, rarely
/// loosened, goes through the generic path; `limits` is destructured, so a field added to it
/// does not compile until it is hashed here.
pub(super) fn identity_json(id: &Identity, out: &mut Vec<u8>) {
    let key = |out: &mut Vec<u8>, k: &str| {
        if out.len() > 1 {
            out.push(b',');
        }
        json_scalar(k, out);
        out.push(b':');
    };
    out.push(b'{');
    key(out, "axes");
    out.push(b'[');
    for (i, (name, value)) in id.axes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json_scalar(name, out);
        out.push(b',');
        canonical_json(value, out);
        out.push(b']');
    }
    out.push(b']');
    key(out, "command");
    json_scalar(id.command, out);
    // A BTreeMap of strings: keys already in sorted (byte) order.
    key(out, "env");
    json_scalar(id.env, out);
    // Limits' fields, sorted (`cpu_quota` < `cpus`).
    key(out, "limits");
    let Limits {
        cpus,
        cpu_quota,
        memory,
        pids,
    } = id.limits;
    out.extend_from_slice(b"{\"cpu_quota\":");
    json_scalar(cpu_quota, out);
    out.extend_from_slice(b",\"cpus\":");
    json_scalar(cpus, out);
    out.extend_from_slice(b",\"memory\":");
    json_scalar(memory, out);
    out.extend_from_slice(b",\"pids\":");
    json_scalar(pids, out);
    out.push(b'}');
    key(out, "network");
    json_scalar(&id.network, out);
    key(out, "root");
    json_scalar(&id.root, out);
    if !id.scratch.is_memory() {
        key(out, "scratch");
        json_scalar(&id.scratch, out);
    }
    if !id.security.is_default() {
        key(out, "security");
        canonical(id.security, out);
    }
    // Rare, and small: the generic path.
    if !id.services.is_empty() {
        key(out, "services");
        canonical(&id.services, out);
    }
    key(out, "setup");
    json_scalar(id.setup, out);
    if id.user.is_some() {
        key(out, "user");
        json_scalar(id.user, out);
    }
    key(out, "v");
    json_scalar(&id.v, out);
    key(out, "volumes");
    json_scalar(&id.volumes, out);
    key(out, "workdir");
    json_scalar(id.workdir, out);
    out.push(b'}');
}

/// Any value's canonical JSON, through `serde_json::to_value`.
pub(super) fn canonical<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    canonical_json(&serde_json::to_value(value).unwrap_or(Value::Null), out);
}

/// JSON with object keys sorted, whatever serde_json's map ordering feature says. Written
/// straight into `out`: a cell's id costs no allocation per key or value.
pub(super) fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_scalar(k, out);
                out.push(b':');
                canonical_json(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        other => json_scalar(other, out),
    }
}

/// A string, number, boolean or null as serde_json writes it.
pub(super) fn json_scalar<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing plain data into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}
