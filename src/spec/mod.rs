//! The matrix file: parse, expand and validate it into typed cells.
//!
//! `spec` owns the file format of `envs/*.toml` and every error a user can
//! make in it. It is pure: apart from reading the file and checking that rootfs/volume paths
//! exist (when [`ValidationContext::check_paths`] is set) it touches nothing; host facts such as
//! the online cpus are passed in.
//!
//! Pipeline ([`parse`]): TOML (with spans) -> the `[matrix]` axes expanded into cells (cartesian
//! product, minus `exclude`, plus `include`) -> per cell, `{axis}` placeholders substituted into
//! the template values -> typed [`Cell`]s -> ids and slugs.
//!
//! Substitution (see `template`): every string in `[environment]`, `[limits]`, `[security]`,
//! `[run]`, `[[metric]]` and `[services.NAME]` is a template: `{axis}` or `{axis.field}` is replaced, `{{` and `}}` are literal
//! braces (so a regex quantifier is written `\d{{3}}`), any other brace is an error. A string
//! that is exactly one placeholder takes the value's own type. `exclude` and `include` are
//! reserved names in `[matrix]`, never axes; `Axis::values` lists the declared values followed
//! by any new value an `include` entry brings.
//!
//! Choices the file format makes on purpose (also see `units` for size suffixes):
//! - A cell's id hashes rootfs and volume host paths *as written* in the file (relative paths stay
//!   relative), so moving the checkout (CI vs laptop) keeps ids and `compare` still pairs cells.
//! - The text of an axis value (labels, `--only`, placeholders) is the string itself, or the
//!   number/boolean as JSON prints it; a table value is named by its `name` field if it has one.
//! - `exclude` values that match no value of their axis are an error (a typo would silently
//!   exclude nothing). Values match when equal, or when their texts are equal (`17` vs `"17"`).
//! - `timeout` also takes an integer number of seconds; env values may be numbers or booleans.
//! - `order`, `seed` and `allow-failures` are matrix-wide: they are not substituted.
//! - `[security]` enters a cell's id only when it loosens something (like `scratch`), with
//!   capability names canonical and sorted, so the defaults, written out or not, keep the ids
//!   cells had before the section existed. A capability already in the default set is kept as
//!   written (it changes the id, nothing else) with a warning, like `privileged = true` beside
//!   `capabilities` or `seccomp`.
//! - `[services.NAME]` enters a cell's id only when the cell has services (all of a service but
//!   its timeouts), so matrices without them keep their ids; its columns (`NAME.cpu_s`, ...)
//!   are appended to the cell's metrics, measured by benchbox, never read from the workload.

mod build;
mod cpuset;
mod expand;
mod node;
mod range;
pub mod report_options;
mod template;
pub mod units;

#[cfg(test)]
mod services_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cpuset::{CpuSet, CpuSetError, MAX_CPU};
pub use expand::{MAX_CELLS, thousands};
pub use report_options::ReportOptions;

/// Host facts and switches the validation needs; passed in so `spec` stays pure.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationContext {
    /// Cpus a cell may be pinned to; also bounds `cpu-quota`.
    pub online_cpus: CpuSet,
    /// Check that rootfs directories and volume host paths exist (off for `plan` on another host),
    /// and that a named `user` is in the rootfs's (or the host's) /etc/passwd.
    pub check_paths: bool,
    /// The text of `/etc/passwd` and `/etc/group` of images, by reference as written: `run` fills
    /// it in once the images are unpacked, so that a named `user` of an image cell is checked
    /// before any invocation too. An image missing here is not checked.
    pub image_accounts: BTreeMap<String, (String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub name: String,
    pub description: Option<String>,
    /// The matrix file, as given.
    pub path: PathBuf,
    /// Hex sha256 of the file's bytes.
    pub source_sha256: String,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
    pub order: Order,
    pub seed: Option<u64>,
    pub allow_failures: bool,
    /// Things that are allowed but probably not meant (an axis no template value uses, ...).
    pub warnings: Vec<String>,
    /// `[report]`: how the figures are drawn; never part of a cell's id.
    pub report: ReportOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub name: String,
    /// Declared values, then values that only `include` entries bring.
    pub values: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// 12 lowercase hex chars of the sha256 of everything that defines the cell (not the number
    /// of runs, timeout or metrics: asking for more runs tops the same cell up).
    pub id: String,
    /// "jdk=17 gc=G1", or "default" when the matrix has no axes.
    pub label: String,
    /// Hostname- and directory-safe: `[a-z0-9-]`, at most 63 chars, unique in the matrix.
    pub slug: String,
    /// In axis declaration order.
    pub axes: Vec<(String, serde_json::Value)>,
    pub root: Root,
    /// The manifest digest an image reference resolved to (from the lock file or a pull);
    /// filled in after parsing, and part of the id then.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// Absolute, inside the container.
    pub workdir: Option<PathBuf>,
    /// Run the workload as this user ("name", "uid", "uid:gid", "name:group"), resolved in
    /// the container's /etc/passwd and /etc/group. `None`: root.
    #[serde(default)]
    pub user: Option<String>,
    pub volumes: Vec<Volume>,
    pub env: BTreeMap<String, String>,
    pub network: Network,
    /// Where the container's throw-away writable layer lives.
    #[serde(default)]
    pub scratch: Scratch,
    pub limits: Limits,
    /// What the workload may do beyond the hardened defaults (`[security]`); left out of the
    /// JSON when nothing is loosened, so plans written before the key existed read the same.
    #[serde(
        default,
        skip_serializing_if = "crate::sandbox::security::Policy::is_default"
    )]
    pub security: crate::sandbox::security::Policy,
    /// argv; a plain string `s` in the file becomes `["/bin/sh", "-c", s]`.
    pub command: Vec<String>,
    pub setup: Option<Vec<String>>,
    pub warmup: u32,
    /// Measured runs; with `runs = "auto"`, the cap (`max-runs`).
    pub runs: u32,
    /// `runs = "auto"`: the cell stops once its median is known well enough. Not part of the
    /// id, like `runs` (it changes how many invocations, not what runs); left out of the JSON
    /// when absent, so plans written before it read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<Adaptive>,
    /// `None`: no timeout. Serialized as seconds.
    #[serde(with = "opt_secs")]
    pub timeout: Option<Duration>,
    /// How often the cgroup's memory is sampled during an invocation; `None`: not sampled.
    /// Not part of the id (it changes what is recorded, not what runs).
    #[serde(with = "opt_secs", default = "default_memory_interval")]
    pub memory_interval: Option<Duration>,
    /// Bytes of each stream (stdout, stderr) an invocation's log keeps; `None`: all. Not part
    /// of the id (it changes what is kept, not what runs).
    #[serde(default = "default_max_log")]
    pub max_log: Option<u64>,
    /// `[run] disturbance-threshold`: the fraction of wall time x the cell's CPUs other tasks
    /// may take before an invocation is `disturbed` (see [`crate::disturbance`]); `None`: the
    /// default, 5%. Not part of the id, and left out of the JSON at its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disturbance_threshold: Option<f64>,
    /// `[run] rerun-disturbed`: a measured invocation that comes back `ok` but `disturbed` is
    /// run again in place (at most `runs` times per cell), the new row flagged `rerun`. Not
    /// part of the id, and left out of the JSON when off, so plans written before the key
    /// existed read the same.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rerun_disturbed: bool,
    /// Attach perf_event counters to each invocation (`[run] counters`, on by default). Not
    /// part of the id (it changes what is recorded, not what runs), and left out of the JSON
    /// when on, so plans written before the key existed read the same.
    #[serde(default = "default_counters", skip_serializing_if = "is_true")]
    pub counters: bool,
    pub metrics: Vec<MetricSpec>,
    /// `[services.NAME]`: containers the workload talks to, in start order (each after the
    /// services it `depends-on`, else in the file's order). Left out of the JSON, and of the
    /// id, when there are none, so cells without services keep their ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
}

/// `runs = "auto"` with `[run] min-runs`, `max-runs`, `ci-width`, `budget` (see
/// [`crate::stats::stopping`] for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adaptive {
    pub min_runs: u32,
    pub max_runs: u32,
    /// Relative half-width of the median's 95% interval that stops the cell (0.02: ±2%).
    pub ci_width: f64,
    /// Time since the run started after which cells stop (once at `min-runs`); `None`: none.
    #[serde(with = "opt_secs", default)]
    pub budget: Option<Duration>,
}

impl Adaptive {
    pub fn rule(&self) -> crate::stats::stopping::Rule {
        crate::stats::stopping::Rule {
            min_runs: self.min_runs,
            max_runs: self.max_runs,
            ci_width: self.ci_width,
        }
    }
}

impl Cell {
    /// Whether one of the cell's services lives for the whole cell (`lifetime = "cell"`): its
    /// invocations then run together, not interleaved with other cells'.
    pub fn keeps_services_up(&self) -> bool {
        self.services.iter().any(|s| s.lifetime == Lifetime::Cell)
    }

    /// The `[run] disturbance-threshold` in force (the default when not set).
    pub fn disturbance_threshold(&self) -> f64 {
        self.disturbance_threshold
            .unwrap_or(crate::disturbance::DEFAULT_THRESHOLD)
    }

    /// The image references the cell runs, as written: its own, then its services', in start
    /// order (each may repeat).
    pub fn image_refs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.root)
            .chain(self.services.iter().map(|s| &s.root))
            .filter_map(|root| match root {
                Root::Image(r) => Some(r.as_str()),
                _ => None,
            })
    }
}

/// One `[services.NAME]` of a cell, substituted: a container of its own (its own root
/// filesystem, cgroup, limits and namespaces) in the network namespace of the workload, which
/// reaches it as `NAME` (an /etc/hosts entry for 127.0.0.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// `[a-z0-9-]`, starting with a letter: the host name the workload uses and the prefix of
    /// its columns (`NAME.cpu_s`).
    pub name: String,
    pub root: Root,
    /// The manifest digest its image resolved to (filled in like the cell's).
    #[serde(default)]
    pub image_digest: Option<String>,
    pub workdir: Option<PathBuf>,
    pub user: Option<String>,
    pub volumes: Vec<Volume>,
    pub env: BTreeMap<String, String>,
    /// argv; a plain string `s` becomes `["/bin/sh", "-c", s]`; empty: the image's
    /// Entrypoint and Cmd.
    pub command: Vec<String>,
    pub ready: Ready,
    /// How long `ready` may take from the service's start before the invocation fails
    /// (`ready-timeout`, default 30 s).
    #[serde(with = "secs")]
    pub ready_timeout: Duration,
    pub lifetime: Lifetime,
    /// Services that must be ready before this one starts (names in the same cell).
    pub depends_on: Vec<String>,
    /// Ports it listens on (`ready.tcp` and `ports`): no two services of a cell share one.
    pub ports: Vec<u16>,
    pub limits: Limits,
    /// After SIGTERM, how long the service has to exit before it is SIGKILLed (`stop-timeout`,
    /// default 5 s).
    #[serde(with = "secs")]
    pub stop_timeout: Duration,
}

/// When a service counts as ready for the next service or the workload to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ready {
    /// No `ready`: as soon as its command was executed.
    Started,
    /// A TCP connection to 127.0.0.1:PORT in the cell's network succeeds.
    Tcp(u16),
    /// This command, run in a fresh container of the service's environment and network,
    /// exits 0.
    Command(Vec<String>),
    /// The service's stdout or stderr contains this text.
    Log(String),
}

/// How long a service lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifetime {
    /// A fresh service for every invocation (warm-ups included).
    #[default]
    Invocation,
    /// One for all of the cell's invocations: the cell's invocations then run one after
    /// another (not interleaved with other cells').
    Cell,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Root {
    /// The host's filesystem through a throw-away overlay, with a private /tmp.
    Host,
    /// A local directory: absolute (canonical when it was checked to exist).
    Dir(PathBuf),
    /// An OCI image reference, as written; resolved by another module.
    Image(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Absolute (canonical when it was checked to exist).
    pub host: PathBuf,
    /// Absolute, inside the container.
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A private network namespace with loopback only.
    #[default]
    None,
    Host,
}

/// Where an invocation's writable layer (what it writes outside volumes) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scratch {
    /// A tmpfs private to the container: nothing touches the disk, and what the workload writes
    /// counts toward its memory.
    #[default]
    Memory,
    /// A directory on disk under the scratch directory (`--scratch`), deleted afterwards.
    Disk,
}

impl Scratch {
    pub fn is_memory(&self) -> bool {
        *self == Scratch::Memory
    }
}

impl fmt::Display for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scratch::Memory => "memory",
            Scratch::Disk => "disk",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    pub cpus: Option<CpuSet>,
    /// Cores' worth of CPU time.
    pub cpu_quota: Option<f64>,
    /// Bytes.
    pub memory: Option<u64>,
    pub pids: Option<u64>,
}

/// The columns benchbox measures for each service, from its cgroup over the workload's window,
/// as `NAME.<column>` with this unit (all lower is better); `ready_s` is how long it took to
/// get ready. Appended to each cell's `metrics` (with `service` set), after its own.
pub const SERVICE_METRICS: [(&str, &str); 8] = [
    ("cpu_s", "s"),
    ("user_s", "s"),
    ("system_s", "s"),
    ("peak_memory_bytes", "B"),
    ("io_read_bytes", "B"),
    ("io_write_bytes", "B"),
    ("throttled_s", "s"),
    ("ready_s", "s"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    pub name: String,
    /// A regex with exactly one capture group: the number.
    /// `None`: the metric comes only from the `BENCHBOX_METRICS` file.
    pub pattern: Option<String>,
    pub unit: Option<String>,
    pub better: Better,
    /// Measured by benchbox from this service's cgroup (`NAME.cpu_s`, ...), never read from the
    /// workload's output or metrics file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    #[default]
    Lower,
    Higher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Round by round, cells shuffled per round with a seed.
    #[default]
    Interleaved,
    /// Cell by cell, in declaration order.
    Grouped,
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Interleaved => "interleaved",
            Order::Grouped => "grouped",
        })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::None => "none",
            Network::Host => "host",
        })
    }
}

impl fmt::Display for Better {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
        })
    }
}

/// An error in (or reading) a matrix file. Every variant is the user's to fix: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "{}: cannot read the matrix file: {}\n  hint: check the path",
        path.display(),
        units::lowercase_first(&source.to_string())
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostic),
}

impl SpecError {
    pub fn exit_code(&self) -> i32 {
        2
    }

    /// The positioned diagnostic, when the error is in the file's content.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            SpecError::Invalid(d) => Some(d),
            SpecError::Read { .. } => None,
        }
    }
}

/// `file:line:col: message` and an optional `  hint: ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Reads and parses a matrix file.
pub fn load(path: &Path, ctx: &ValidationContext) -> Result<Matrix, SpecError> {
    let source = read(path)?;
    build::Prepared::new(source, path)?.into_matrix(ctx)
}

/// [`load`], refusing a matrix of more than `max_cells` cells before building any of them:
/// `run` holds every cell several times over (see `plan::MAX_RUN_CELLS`).
pub fn load_for_run(
    path: &Path,
    ctx: &ValidationContext,
    max_cells: usize,
) -> Result<Matrix, SpecError> {
    let source = read(path)?;
    let prepared = build::Prepared::new(source, path)?;
    prepared.refuse_more_than(max_cells)?;
    prepared.into_matrix(ctx)
}

/// Parses a matrix from its text. `path` names the file in messages, gives the default name,
/// and relative rootfs/volume paths are relative to its directory.
pub fn parse(source: &str, path: &Path, ctx: &ValidationContext) -> Result<Matrix, SpecError> {
    build::build(source, path, ctx)
}

/// Reads and checks a matrix file as [`load`] does (every cell is built and checked), keeping
/// none of its cells: [`LazyMatrix::cell`] builds them again one at a time. What `check` and
/// `plan` use, so a matrix of [`MAX_CELLS`] cells costs seconds and tens of megabytes, not the
/// gigabyte its cells would take at once.
pub fn open(path: &Path, ctx: &ValidationContext) -> Result<LazyMatrix, SpecError> {
    let source = read(path)?;
    let prepared = build::Prepared::new(source, path)?;
    // Per chunk of cells, its distinct image references in order.
    let walked = prepared.walk(
        ctx,
        || (Vec::new(), std::collections::HashSet::new()),
        |(refs, seen): &mut (Vec<String>, std::collections::HashSet<String>), _, cell| {
            for r in cell.image_refs() {
                if !seen.contains(r) {
                    seen.insert(r.to_string());
                    refs.push(r.to_string());
                }
            }
        },
    )?;
    let mut seen = std::collections::HashSet::new();
    let image_refs = walked
        .states
        .into_iter()
        .flat_map(|(refs, _)| refs)
        .filter(|r| seen.insert(r.clone()))
        .collect();
    Ok(LazyMatrix {
        prepared,
        ctx: ctx.clone(),
        warnings: walked.warnings,
        ids: walked.ids,
        image_refs,
        digests: BTreeMap::new(),
    })
}

/// The file's text. Bytes that are not UTF-8 are an error at the first of them.
fn read(path: &Path) -> Result<String, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let valid = String::from_utf8_lossy(&bytes[..at]);
        let (line, col) = node::line_col(&valid, at);
        SpecError::Invalid(Diagnostic {
            file: path.to_path_buf(),
            line,
            col,
            message: format!("invalid UTF-8: byte 0x{:02x}", bytes[at]),
            hint: Some(
                "a matrix is TOML, which is UTF-8: save the file as UTF-8 (from Latin-1: `iconv -f latin1 -t utf-8`)"
                    .into(),
            ),
        })
    })
}

/// A checked matrix whose cells are built when asked for (see [`open`]). Everything else is
/// as in [`Matrix`].
pub struct LazyMatrix {
    prepared: build::Prepared,
    ctx: ValidationContext,
    /// As [`Matrix::warnings`].
    pub warnings: Vec<String>,
    /// Every cell's id, from the walk that checked it (spares hashing each cell again).
    ids: Vec<u64>,
    image_refs: Vec<String>,
    /// Image digests to fold into the cells as they are built (see [`pin_images`]).
    digests: BTreeMap<String, String>,
}

impl LazyMatrix {
    pub fn name(&self) -> &str {
        &self.prepared.name
    }

    pub fn description(&self) -> Option<&str> {
        self.prepared.description.as_deref()
    }

    pub fn path(&self) -> &Path {
        self.prepared.path()
    }

    pub fn source_sha256(&self) -> &str {
        &self.prepared.source_sha256
    }

    pub fn axes(&self) -> &[Axis] {
        &self.prepared.expansion.axes
    }

    pub fn order(&self) -> Order {
        self.prepared.order
    }

    pub fn seed(&self) -> Option<u64> {
        self.prepared.seed
    }

    pub fn allow_failures(&self) -> bool {
        self.prepared.allow_failures
    }

    /// The distinct image references of the cells, as written, in cell order.
    pub fn image_refs(&self) -> &[String] {
        &self.image_refs
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    /// Never true: a matrix has at least one cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `i` (in `0..len()`), exactly as [`load`] would have it. It was checked when the
    /// matrix was opened; only a file system that changed since (a rootfs removed) can fail it.
    pub fn cell(&self, i: usize) -> Result<Cell, SpecError> {
        let mut cell = self.prepared.cell(
            i,
            &self.ctx,
            &mut build::Warnings::default(),
            self.ids.get(i).copied(),
        )?;
        pin_cell(&mut cell, &self.digests);
        Ok(cell)
    }

    /// As [`pin_images`], for the cells [`LazyMatrix::cell`] builds from now on.
    pub fn pin_images(&mut self, digests: BTreeMap<String, String>) {
        self.digests = digests;
    }
}

/// The text of an axis value: strings as themselves, numbers and booleans as JSON prints them,
/// a table by its `name` field when it has a plain one, anything else as compact JSON.
pub fn axis_value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => match map.get("name") {
            Some(name @ (serde_json::Value::String(_) | serde_json::Value::Number(_))) => {
                axis_value_text(name)
            }
            _ => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// Whether `given` (as a user types it: `--only`, `--reference`) names the axis value `value`:
/// a number compares as a number (`0.50` names `0.5`, `16` names `16.0`), anything else by its
/// text, so a string compares as a string (`"1.1"` and `"1.10"` are different versions) and a
/// boolean as `true` or `false`; a table by its `name`, the same way.
pub fn axis_value_matches(value: &serde_json::Value, given: &str) -> bool {
    let number = match value {
        serde_json::Value::Object(m) => m.get("name").and_then(serde_json::Value::as_f64),
        v => v.as_f64(),
    };
    axis_value_text(value) == given
        || matches!((number, given.parse::<f64>()), (Some(a), Ok(b)) if a == b)
}

/// `[A-Za-z_][A-Za-z0-9_-]*`: what an axis may be called (and so what `{...}` may name).
pub fn is_axis_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// "did you mean `x`? {what}: a, b, c" (or just the list when nothing is close), for hints.
pub fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    let word_l = word.to_lowercase();
    // Close enough: a typo or two (transpositions count once), or a similar-looking prefix.
    let best = candidates
        .clone()
        .map(|c| {
            let c_l = c.to_lowercase();
            (
                strsim::damerau_levenshtein(&word_l, &c_l),
                strsim::jaro_winkler(&word_l, &c_l),
                c,
            )
        })
        .filter(|(dist, jw, _)| *dist <= word.chars().count() / 3 || *jw >= 0.8)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let list = candidates.collect::<Vec<_>>().join(", ");
    match best {
        Some((_, _, c)) => format!("did you mean `{c}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

/// Serde for `Option<Duration>` as (fractional) seconds: readable by pandas/jq as a number.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let secs = Option::<f64>::deserialize(d)?;
        secs.map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Fold resolved image digests into the cells (once, right after parsing): `image_digest` is
/// set (the cell's, its services') and the id re-derived from the spec id and the digests, so the same tag pulled at two
/// digests gives two cells, and `compare` can tell (it pairs them by axis values, with a
/// warning). `digests` maps an image reference as written in the file to its manifest digest.
pub fn pin_images(matrix: &mut Matrix, digests: &BTreeMap<String, String>) {
    for cell in &mut matrix.cells {
        pin_cell(cell, digests);
    }
}

/// A service's image is folded in as `NAME=DIGEST`, after the cell's own, so only cells with
/// services change by it.
fn pin_cell(cell: &mut Cell, digests: &BTreeMap<String, String>) {
    use sha2::{Digest, Sha256};
    let fold = |id: &mut String, text: String| {
        let hash = Sha256::digest(format!("{id}@{text}").as_bytes());
        *id = hex::encode(hash)[..12].to_string();
    };
    if let Root::Image(reference) = &cell.root
        && cell.image_digest.is_none()
        && let Some(digest) = digests.get(reference)
    {
        fold(&mut cell.id, digest.clone());
        cell.image_digest = Some(digest.clone());
    }
    for service in &mut cell.services {
        if let Root::Image(reference) = &service.root
            && service.image_digest.is_none()
            && let Some(digest) = digests.get(reference)
        {
            fold(&mut cell.id, format!("{}={digest}", service.name));
            service.image_digest = Some(digest.clone());
        }
    }
}

/// Default of `[run] memory-interval`.
pub const DEFAULT_MEMORY_INTERVAL: Duration = Duration::from_millis(100);

fn default_memory_interval() -> Option<Duration> {
    Some(DEFAULT_MEMORY_INTERVAL)
}

/// Default of `[run] max-log`: 16 MiB per stream per invocation.
pub const DEFAULT_MAX_LOG: u64 = 16 << 20;

fn default_counters() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_max_log() -> Option<u64> {
    Some(DEFAULT_MAX_LOG)
}
