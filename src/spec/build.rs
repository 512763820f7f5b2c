//! The pipeline behind [`super::parse`]: TOML with spans -> expanded axes -> substituted,
//! typed cells -> ids and slugs. Every user error is raised here, pointing at the original file.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::expand::{Expansion, expand, thousands};
use super::node::{Entry, Kind, Node, line_col};
use super::template::{self, Problem};
use super::{
    Axis, Better, Cell, CpuSet, DEFAULT_MAX_LOG, DEFAULT_MEMORY_INTERVAL, Diagnostic, Limits,
    Matrix, MetricSpec, Network, Order, Root, Scratch, SpecError, ValidationContext, Volume,
    suggest, units,
};
use crate::sandbox::security::{self, Policy};

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "matrix",
    "environment",
    "limits",
    "security",
    "run",
    "metric",
];
const ENV_KEYS: &[&str] = &[
    "image", "rootfs", "workdir", "volumes", "env", "network", "user", "scratch",
];
const LIMIT_KEYS: &[&str] = &["cpus", "cpu-quota", "memory", "pids"];
const SECURITY_KEYS: &[&str] = &["capabilities", "seccomp", "privileged"];
const RUN_KEYS: &[&str] = &[
    "command",
    "setup",
    "warmup",
    "runs",
    "timeout",
    "memory-interval",
    "max-log",
    "order",
    "seed",
    "allow-failures",
];
const METRIC_KEYS: &[&str] = &["name", "pattern", "unit", "better"];

/// The least `memory` a cell may have: Docker's floor. Far below it (`memory = "4096"`) every
/// invocation is killed as "out of memory" before the workload does anything.
pub(crate) const MIN_MEMORY: u64 = 6 << 20;
/// The CFS period benchbox gives every cgroup with a CPU quota, and the kernel's least quota.
const CPU_PERIOD_US: f64 = 100_000.0;
const MIN_CPU_QUOTA_US: f64 = 1_000.0;

const DEFAULT_WARMUP: u32 = 1;
const DEFAULT_RUNS: u32 = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Bumped if the identity layout changes, so old and new ids never collide by accident.
const ID_VERSION: u32 = 1;

/// Turns spans into `file:line:col` diagnostics; `cell` is set while building one cell.
#[derive(Clone, Copy)]
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    cell: Option<&'a str>,
}

type Result<T> = std::result::Result<T, SpecError>;

impl Reporter<'_> {
    pub(crate) fn at(
        &self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        let (line, col) = line_col(self.source, span.start);
        SpecError::Invalid(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            message: message.into(),
            hint,
        })
    }

    /// An error about a value; names the cell when the value came from a placeholder.
    fn node(&self, node: &Node, message: impl Into<String>, hint: Option<String>) -> SpecError {
        let mut message = message.into();
        if node.substituted {
            self.append_cell(&mut message);
        }
        self.at(&node.span, message, hint)
    }

    fn append_cell(&self, message: &mut String) {
        if let Some(cell) = self.cell {
            message.push_str(&format!(" in cell {cell}"));
        }
    }

    fn problem(&self, p: Problem) -> SpecError {
        let mut message = p.message;
        self.append_cell(&mut message);
        self.at(&p.span, message, p.hint)
    }

    fn wrong_type(&self, key: &str, node: &Node, expected: &str) -> SpecError {
        self.node(
            node,
            format!("expected {expected} for `{key}`, found {}", node.describe()),
            None,
        )
    }

    fn string<'n>(&self, e: &'n Entry) -> Result<&'n str> {
        e.value
            .as_str()
            .ok_or_else(|| self.wrong_type(&e.key, &e.value, "a string"))
    }

    /// A string naming one of `choices`; the default when the key is absent. `what` names the
    /// setting in the error ("invalid network `x`"), `hint` lists the valid values.
    fn choice<T: Copy>(
        &self,
        e: Option<&Entry>,
        default: T,
        what: &str,
        choices: &[(&str, T)],
        hint: &str,
    ) -> Result<T> {
        let Some(e) = e else {
            return Ok(default);
        };
        let text = self.string(e)?;
        match choices.iter().find(|(name, _)| *name == text) {
            Some(&(_, value)) => Ok(value),
            None => Err(self.node(
                &e.value,
                format!("invalid {what} `{text}`"),
                Some(hint.into()),
            )),
        }
    }

    fn int(&self, e: &Entry) -> Result<i64> {
        match e.value.kind {
            Kind::Int(i) => Ok(i),
            _ => Err(self.wrong_type(&e.key, &e.value, "an integer")),
        }
    }

    /// An integer in `min..=max`.
    fn int_in(&self, e: &Entry, min: i64, max: i64, hint: Option<&str>) -> Result<i64> {
        let i = self.int(e)?;
        if i < min {
            return Err(self.node(
                &e.value,
                format!("`{}` must be at least {min}, found `{i}`", e.key),
                hint.map(str::to_string),
            ));
        }
        if i > max {
            return Err(self.node(
                &e.value,
                format!("`{}` must be at most {max}, found `{i}`", e.key),
                hint.map(str::to_string),
            ));
        }
        Ok(i)
    }

    fn check_keys(&self, table: &Node, valid: &[&str], context: &str) -> Result<()> {
        for e in table.entries() {
            if !valid.contains(&e.key.as_str()) {
                return Err(self.at(
                    &e.key_span,
                    format!("unknown key `{}` {context}", e.key),
                    Some(suggest(&e.key, valid.iter().copied(), "valid keys")),
                ));
            }
        }
        Ok(())
    }

    /// `[name]` as a table, if present.
    fn section<'n>(&self, root: &'n Node, name: &str) -> Result<Option<&'n Node>> {
        match root.get(name) {
            None => Ok(None),
            Some(e) if matches!(e.value.kind, Kind::Table(_)) => Ok(Some(&e.value)),
            Some(e) => Err(self.at(
                &e.value.span,
                format!(
                    "expected a table for `{name}`, found {}",
                    e.value.describe()
                ),
                Some(format!("write it as a `[{name}]` section")),
            )),
        }
    }
}

/// A matrix file parsed and checked as far as its cells: everything building one cell needs.
/// Cells are built on demand ([`Prepared::cell`]), so a caller can walk a million of them
/// without holding them.
pub(crate) struct Prepared {
    file: PathBuf,
    source: String,
    pub name: String,
    pub description: Option<String>,
    pub source_sha256: String,
    pub expansion: Expansion,
    environment: Option<Template>,
    limits: Option<Template>,
    security: Option<Template>,
    run: Option<Template>,
    metrics: Option<Template>,
    pub order: Order,
    pub seed: Option<u64>,
    pub allow_failures: bool,
    base_dir: PathBuf,
    /// Warnings about the whole matrix (an unused axis), before any cell's.
    pub warnings: Vec<String>,
    /// Per cell: another cell has the same slug base, so both get their id appended.
    slug_collides: Vec<bool>,
    accounts: AccountFiles,
}

/// Below this many cells a walk does not start threads.
const PARALLEL_MIN: usize = 10_000;

/// What [`Prepared::walk`] gives back.
pub(crate) struct Walked<T> {
    /// What the callback made of each chunk of cells, chunks in cell order.
    pub states: Vec<T>,
    /// Every cell's id (its 12 hex digits as a number), in cell order.
    pub ids: Vec<u64>,
    /// The matrix's warnings, then its cells'.
    pub warnings: Vec<String>,
}

/// One thread's share of a walk.
struct Chunk<T> {
    state: T,
    ids: Vec<u64>,
    warnings: Warnings,
    /// The first error in the chunk, with its cell's index.
    error: Option<(usize, SpecError)>,
}

/// A template section (`[run]`, ...), its strings parsed once. A section without a brace is
/// the same for every cell and is used as it is, not copied per cell.
struct Template(template::Compiled);

impl Template {
    fn substitute(
        &self,
        values: &[(String, Value)],
    ) -> std::result::Result<Cow<'_, Node>, Problem> {
        match &self.0 {
            template::Compiled::Fixed(node) => Ok(Cow::Borrowed(node)),
            compiled => compiled.substitute(values).map(Cow::Owned),
        }
    }
}

/// Warnings in first-seen order, each once (a warning about a template value is raised by every
/// cell; only the first is kept, without a list of a million copies in between).
#[derive(Default)]
pub(crate) struct Warnings {
    list: Vec<String>,
    seen: HashSet<String>,
}

impl Warnings {
    pub fn push(&mut self, warning: String) {
        if !self.seen.contains(&warning) {
            self.seen.insert(warning.clone());
            self.list.push(warning);
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.list
    }
}

impl Prepared {
    /// Parses the file and checks everything that is not per cell: TOML, keys, the expansion,
    /// placeholders, the matrix-wide run settings.
    pub fn new(source: String, path: &Path) -> Result<Prepared> {
        let r = Reporter {
            file: path,
            source: &source,
            cell: None,
        };
        let p = prepare(&r)?;
        Ok(Prepared {
            file: path.to_path_buf(),
            source_sha256: hex::encode(Sha256::digest(source.as_bytes())),
            source,
            ..p
        })
    }

    pub fn len(&self) -> usize {
        self.expansion.len()
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// An error at `[matrix]` when the matrix has more than `max` cells (for `run`).
    pub fn refuse_more_than(&self, max: usize) -> Result<()> {
        if self.len() <= max {
            return Ok(());
        }
        Err(self.reporter().at(
            &self.expansion.origin(0),
            format!(
                "the matrix expands to {} cells; `run` takes at most {} (`check` and `plan` take {})",
                thousands(self.len() as u128),
                thousands(max as u128),
                thousands(super::MAX_CELLS as u128)
            ),
            Some("a run records every cell in results.json and holds them all in memory: split the matrix into several files".into()),
        ))
    }

    fn reporter(&self) -> Reporter<'_> {
        Reporter {
            file: &self.file,
            source: &self.source,
            cell: None,
        }
    }

    /// Builds cell `i` with its id, but no slug (see [`Prepared::cell`]); warnings about it go
    /// to `warnings`. `id`, when known from an earlier walk, spares hashing the cell again.
    pub fn build(
        &self,
        i: usize,
        ctx: &ValidationContext,
        warnings: &mut Warnings,
        id: Option<u64>,
    ) -> Result<Cell> {
        let label = self.expansion.label(i);
        let values = self.expansion.values(i);
        let cr = Reporter {
            cell: Some(&label),
            ..self.reporter()
        };
        fn sub<'t>(
            t: &'t Option<Template>,
            values: &[(String, Value)],
            r: &Reporter,
        ) -> Result<Option<Cow<'t, Node>>> {
            t.as_ref()
                .map(|t| t.substitute(values))
                .transpose()
                .map_err(|p| r.problem(p))
        }
        let parts = Parts {
            environment: sub(&self.environment, &values, &cr)?,
            limits: sub(&self.limits, &values, &cr)?,
            security: sub(&self.security, &values, &cr)?,
            run: sub(&self.run, &values, &cr)?,
            metrics: sub(&self.metrics, &values, &cr)?,
        };
        let (mut cell, id_parts) = build_cell(
            &cr,
            &Shared {
                ctx,
                base_dir: &self.base_dir,
                accounts: &self.accounts,
                axes: &self.expansion.axes,
            },
            &label,
            &parts,
            warnings,
        )?;
        cell.id = match id {
            Some(id) => format!("{id:012x}"),
            None => cell_id(&Identity::of(&cell, &values, id_parts)),
        };
        cell.axes = values;
        cell.label = label;
        Ok(cell)
    }

    /// Builds cell `i` with its slug: [`Prepared::build`], which leaves the slug to this.
    pub fn cell(
        &self,
        i: usize,
        ctx: &ValidationContext,
        warnings: &mut Warnings,
        id: Option<u64>,
    ) -> Result<Cell> {
        let mut cell = self.build(i, ctx, warnings, id)?;
        cell.slug = self.slug(i, &cell);
        Ok(cell)
    }

    /// Cell `i`'s slug: from its label, with its id appended where two labels give one slug.
    fn slug(&self, i: usize, cell: &Cell) -> String {
        let base = slugify(&cell.label);
        if base.is_empty() {
            cell.id.clone()
        } else if self.slug_collides[i] {
            let mut prefix = base;
            prefix.truncate(SLUG_MAX - cell.id.len() - 1);
            format!("{}-{}", prefix.trim_end_matches('-'), cell.id)
        } else {
            base
        }
    }

    /// Builds every cell (without its slug: [`Prepared::slug`]), hands each and its index to
    /// `f` (with the state `init` made for its chunk of cells), and refuses two cells with one id; the first error in cell order wins, as if the
    /// cells were built one after the other. Large matrices are split into one chunk per
    /// available cpu, built in parallel.
    pub fn walk<T: Send>(
        &self,
        ctx: &ValidationContext,
        init: impl Fn() -> T + Sync,
        f: impl Fn(&mut T, usize, Cell) + Sync,
    ) -> Result<Walked<T>> {
        let n = self.len();
        let threads = if n < PARALLEL_MIN {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |p| p.get().min(8))
        };
        let size = n.div_ceil(threads);
        let first_error = AtomicUsize::new(usize::MAX);
        let bounds = |t: usize| ((t * size).min(n), ((t + 1) * size).min(n));
        let chunk = |t: usize| {
            let (lo, hi) = bounds(t);
            let mut out = Chunk {
                state: init(),
                ids: Vec::with_capacity(hi - lo),
                warnings: Warnings::default(),
                error: None,
            };
            for i in lo..hi {
                // A cell after an error found elsewhere cannot change the outcome.
                if i > first_error.load(Ordering::Relaxed) {
                    break;
                }
                match self.build(i, ctx, &mut out.warnings, None) {
                    Ok(cell) => {
                        out.ids
                            .push(u64::from_str_radix(&cell.id, 16).unwrap_or_default());
                        f(&mut out.state, i, cell);
                    }
                    Err(e) => {
                        first_error.fetch_min(i, Ordering::Relaxed);
                        out.error = Some((i, e));
                        break;
                    }
                }
            }
            out
        };
        let chunks: Vec<Chunk<T>> = if threads == 1 {
            vec![chunk(0)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let chunk = &chunk;
                        scope.spawn(move || chunk(t))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };

        // The ids of the cells before the first error, in order: every chunk up to the first
        // one that stopped early is complete.
        let mut ids: Vec<u64> = Vec::with_capacity(n);
        let mut error: Option<(usize, SpecError)> = None;
        let mut warnings = Warnings::default();
        for w in &self.warnings {
            warnings.push(w.clone());
        }
        let mut states = Vec::with_capacity(chunks.len());
        let mut complete = true;
        for (t, c) in chunks.into_iter().enumerate() {
            if complete {
                ids.extend_from_slice(&c.ids);
                let (lo, hi) = bounds(t);
                complete = c.ids.len() == hi - lo;
            }
            if let Some((i, e)) = c.error
                && error.as_ref().is_none_or(|(first, _)| i < *first)
            {
                error = Some((i, e));
            }
            for w in c.warnings.into_vec() {
                warnings.push(w);
            }
            states.push(c.state);
        }
        // Ids are 12 hex digits: their 48 bits as the key, the first cell's index as the value.
        let mut seen: HashMap<u64, u32> = HashMap::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            if let Some(&first) = seen.get(&id) {
                return Err(self.reporter().at(
                    &self.expansion.origin(i),
                    format!(
                        "cells `{}` and `{}` expand to the same cell (id {id:012x})",
                        self.expansion.label(first as usize),
                        self.expansion.label(i),
                    ),
                    Some("remove the duplicate `include` entry or axis value".into()),
                ));
            }
            seen.insert(id, i as u32);
        }
        if let Some((_, e)) = error {
            return Err(e);
        }
        Ok(Walked {
            states,
            ids,
            warnings: warnings.into_vec(),
        })
    }

    /// The whole matrix, every cell built.
    pub fn into_matrix(self, ctx: &ValidationContext) -> Result<Matrix> {
        let walked = self.walk(ctx, Vec::new, |cells: &mut Vec<Cell>, i, mut c| {
            c.slug = self.slug(i, &c);
            cells.push(c);
        })?;
        let warnings = walked.warnings;
        let cells = walked.states.concat();
        Ok(Matrix {
            name: self.name,
            description: self.description,
            path: self.file,
            source_sha256: self.source_sha256,
            axes: self.expansion.axes,
            cells,
            order: self.order,
            seed: self.seed,
            allow_failures: self.allow_failures,
            warnings,
        })
    }
}

pub(crate) fn build(source: &str, path: &Path, ctx: &ValidationContext) -> Result<Matrix> {
    Prepared::new(source.to_string(), path)?.into_matrix(ctx)
}

/// Everything of [`Prepared`] but the file's path, text and hash.
fn prepare(r: &Reporter) -> Result<Prepared> {
    let source = r.source;
    let path = r.file;
    // The TOML parser's own message for it is empty.
    if let Some(at) = source.find('\0') {
        return Err(r.at(
            &(at..at),
            "the file contains a NUL byte",
            Some("a matrix is a TOML text file: remove the byte (was a binary or UTF-16 file given?)".into()),
        ));
    }
    let doc = toml_edit::ImDocument::parse(source).map_err(|e| {
        let message = e.message().trim().replace('\n', "; ");
        r.at(
            &e.span().unwrap_or(0..0),
            format!("invalid toml: {}", units::lowercase_first(&message)),
            None,
        )
    })?;
    let root = Node::from_document(doc.as_table());
    r.check_keys(&root, TOP_KEYS, "at the top level")?;

    let matrix = r.section(&root, "matrix")?;
    let environment = r.section(&root, "environment")?;
    let limits = r.section(&root, "limits")?;
    let security = r.section(&root, "security")?;
    let run = r.section(&root, "run")?;
    let metrics = metric_tables(r, &root)?;
    let metrics_node = metrics.as_ref().map(|m| m.0);
    if let Some(t) = environment {
        r.check_keys(t, ENV_KEYS, "in [environment]")?;
        if let (Some(_), Some(rootfs)) = (t.get("image"), t.get("rootfs")) {
            return Err(r.at(
                &rootfs.key_span,
                "both `image` and `rootfs` are set in [environment]",
                Some("a cell runs in an image or in a local directory: remove one".into()),
            ));
        }
    }
    if let Some(t) = limits {
        r.check_keys(t, LIMIT_KEYS, "in [limits]")?;
    }
    if let Some(t) = security {
        r.check_keys(t, SECURITY_KEYS, "in [security]")?;
    }
    if let Some(t) = run {
        r.check_keys(t, RUN_KEYS, "in [run]")?;
    }
    for m in metrics.iter().flat_map(|m| m.1.iter()) {
        r.check_keys(m, METRIC_KEYS, "in [[metric]]")?;
    }

    let name = matrix_name(r, &root, path)?;
    let description = match root.get("description") {
        Some(e) => Some(r.string(e)?.to_string()),
        None => None,
    };

    let expansion = expand(r, matrix)?;
    let axis_names: Vec<String> = expansion.axes.iter().map(|a| a.name.clone()).collect();

    // Placeholders are checked once on the template, so such errors are not reported per cell.
    let mut used = BTreeSet::new();
    let mut template = |t: Option<&Node>| -> Result<Option<Template>> {
        let Some(t) = t else { return Ok(None) };
        template::check(t, &axis_names, &mut used).map_err(|p| r.problem(p))?;
        let compiled = template::compile(t).map_err(|p| r.problem(p))?;
        Ok(Some(Template(compiled)))
    };
    let environment = template(environment)?;
    let limits = template(limits)?;
    let security = template(security)?;
    let run_t = template(run)?;
    let metrics = template(metrics_node)?;
    let warnings: Vec<String> = axis_names
        .iter()
        .filter(|a| !used.contains(*a))
        .map(|a| {
            format!("axis `{a}` is not used by any template value: its cells differ only by name")
        })
        .collect();

    let (order, seed, allow_failures) = run_settings(r, run)?;

    let slug_collides = slug_collisions(&expansion);

    Ok(Prepared {
        file: PathBuf::new(),
        source: String::new(),
        name,
        description,
        source_sha256: String::new(),
        expansion,
        environment,
        limits,
        security,
        run: run_t,
        metrics,
        order,
        seed,
        allow_failures,
        base_dir: base_dir(path),
        warnings,
        slug_collides,
        accounts: AccountFiles::default(),
    })
}

/// `[[metric]]`: the array node and its tables.
fn metric_tables<'n>(r: &Reporter, root: &'n Node) -> Result<Option<(&'n Node, Vec<&'n Node>)>> {
    let Some(e) = root.get("metric") else {
        return Ok(None);
    };
    let err = || {
        r.at(
            &e.value.span,
            format!(
                "expected an array of tables for `metric`, found {}",
                e.value.describe()
            ),
            Some("declare each metric in its own `[[metric]]` section".into()),
        )
    };
    let Kind::Array(items) = &e.value.kind else {
        return Err(err());
    };
    let mut tables = Vec::new();
    for item in items {
        if !matches!(item.kind, Kind::Table(_)) {
            return Err(err());
        }
        tables.push(item);
    }
    Ok(Some((&e.value, tables)))
}

fn matrix_name(r: &Reporter, root: &Node, path: &Path) -> Result<String> {
    let valid = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if let Some(e) = root.get("name") {
        let name = r.string(e)?;
        if !valid(name) {
            return Err(r.at(
                &e.value.span,
                format!("invalid matrix name `{name}`"),
                Some("results go to reports/<name>/: use letters, digits, `.`, `_` and `-`, starting with a letter or digit".into()),
            ));
        }
        return Ok(name.to_string());
    }
    // The default is the file stem, made safe rather than rejected: the user never wrote it.
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let safe = safe.trim_start_matches(['.', '_', '-']).to_string();
    Ok(if safe.is_empty() {
        "matrix".to_string()
    } else {
        safe
    })
}

/// `order`, `seed`, `allow-failures`: matrix-wide, read from the template as written.
fn run_settings(r: &Reporter, run: Option<&Node>) -> Result<(Order, Option<u64>, bool)> {
    let Some(run) = run else {
        return Ok((Order::default(), None, false));
    };
    let order = match run.get("order") {
        None => Order::default(),
        Some(e) => match r.string(e)? {
            "interleaved" => Order::Interleaved,
            "grouped" => Order::Grouped,
            other => {
                return Err(r.at(
                    &e.value.span,
                    format!("invalid order `{other}`"),
                    Some(suggest(
                        other,
                        ["interleaved", "grouped"].into_iter(),
                        "valid orders",
                    )),
                ));
            }
        },
    };
    let seed = match run.get("seed") {
        None => None,
        Some(e) => Some(r.int_in(e, 0, i64::MAX, Some("a seed is a non-negative integer"))? as u64),
    };
    let allow_failures = match run.get("allow-failures") {
        None => false,
        Some(e) => match e.value.kind {
            Kind::Bool(b) => b,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a boolean")),
        },
    };
    Ok((order, seed, allow_failures))
}

/// One cell's template sections after substitution.
struct Parts<'t> {
    environment: Option<Cow<'t, Node>>,
    limits: Option<Cow<'t, Node>>,
    security: Option<Cow<'t, Node>>,
    run: Option<Cow<'t, Node>>,
    metrics: Option<Cow<'t, Node>>,
}

/// What the id hashes: everything that defines the cell, paths as written (see module doc).
/// Borrowed from the cell: hashing copies nothing.
#[derive(Serialize)]
struct Identity<'c> {
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
    command: &'c [String],
    setup: &'c Option<Vec<String>>,
}

/// The parts of a cell's identity that are not in the cell as such: paths as written.
struct IdParts {
    root: IdRoot,
    volumes: Vec<(PathBuf, PathBuf, bool)>,
}

impl<'c> Identity<'c> {
    fn of(cell: &'c Cell, axes: &'c [(String, Value)], parts: IdParts) -> Identity<'c> {
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
            command: &cell.command,
            setup: &cell.setup,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum IdRoot {
    Host,
    Dir(PathBuf),
    Image(String),
}

/// What building any cell of a matrix needs besides the cell's own sections.
#[derive(Clone, Copy)]
struct Shared<'a> {
    ctx: &'a ValidationContext,
    base_dir: &'a Path,
    accounts: &'a AccountFiles,
    axes: &'a [Axis],
}

/// One cell's typed values, from its substituted sections. `id`, `slug`, `label` and `axes`
/// are left empty for the caller.
fn build_cell(
    r: &Reporter,
    shared: &Shared,
    label: &str,
    parts: &Parts,
    warnings: &mut Warnings,
) -> Result<(Cell, IdParts)> {
    let Shared {
        ctx,
        base_dir,
        accounts,
        axes,
    } = *shared;
    let empty = Node::new(0..0, Kind::Table(Vec::new()));
    let env_t = parts.environment.as_deref().unwrap_or(&empty);
    let limits_t = parts.limits.as_deref().unwrap_or(&empty);
    let security_t = parts.security.as_deref().unwrap_or(&empty);

    // Root filesystem.
    let (root, id_root) = if let Some(e) = env_t.get("image") {
        let image = non_empty(r, e)?;
        if let Err(crate::image::ImageError::BadReference { why, .. }) =
            crate::image::Reference::parse(image)
        {
            return Err(r.node(
                &e.value,
                format!("invalid image reference `{image}`: {why}"),
                Some("write an image as docker does: `name`, `name:tag`, `registry.example.com:5000/team/name:tag` or `name@sha256:<64 hex digits>`".into()),
            ));
        }
        (
            Root::Image(image.to_string()),
            IdRoot::Image(image.to_string()),
        )
    } else if let Some(e) = env_t.get("rootfs") {
        let written = non_empty(r, e)?;
        let dir = host_path(r, ctx, base_dir, &e.value, written, "rootfs", true)?;
        (Root::Dir(dir), IdRoot::Dir(normalize(Path::new(written))))
    } else {
        (Root::Host, IdRoot::Host)
    };

    let workdir = match env_t.get("workdir") {
        Some(e) => Some(container_path(r, &e.value, r.string(e)?, "workdir")?),
        None => None,
    };

    // `user` is resolved inside the container (its /etc/passwd): "name", "uid", "uid:gid",
    // "name:group".
    let user = match env_t.get("user") {
        Some(e) => Some(user_spec(r, e)?),
        None => None,
    };

    let mut volumes = Vec::new();
    let mut id_volumes = Vec::new();
    if let Some(e) = env_t.get("volumes") {
        let Kind::Array(items) = &e.value.kind else {
            return Err(r.wrong_type(&e.key, &e.value, "an array of strings"));
        };
        for item in items {
            let spec = item.as_str().ok_or_else(|| {
                r.wrong_type("volumes", item, "a string like \"./data:/data:ro\"")
            })?;
            let (host, target, read_only) = volume(r, ctx, base_dir, item, spec)?;
            if volumes.iter().any(|v: &Volume| v.target == target) {
                return Err(r.node(
                    item,
                    format!("two volumes mount onto `{}`", target.display()),
                    Some("give each volume its own target".into()),
                ));
            }
            let written = spec.split(':').next().unwrap_or_default();
            id_volumes.push((normalize(Path::new(written)), target.clone(), read_only));
            volumes.push(Volume {
                host,
                target,
                read_only,
            });
        }
    }

    let mut env = BTreeMap::new();
    if let Some(e) = env_t.get("env") {
        if !matches!(e.value.kind, Kind::Table(_)) {
            return Err(r.wrong_type(&e.key, &e.value, "a table of strings"));
        }
        for var in e.value.entries() {
            if var.key.is_empty() || var.key.contains(['=', '\0']) {
                return Err(r.at(
                    &var.key_span,
                    format!("invalid environment variable name `{}`", var.key),
                    Some("names may not be empty or contain `=`".into()),
                ));
            }
            let value = match &var.value.kind {
                Kind::Str(s) => s.clone(),
                Kind::Int(i) => i.to_string(),
                // Same text as a float axis value pasted by a placeholder (`1.0`, not `1`).
                Kind::Float(f) => {
                    serde_json::Number::from_f64(*f).map_or(f.to_string(), |n| n.to_string())
                }
                Kind::Bool(b) => b.to_string(),
                _ => return Err(r.wrong_type(&var.key, &var.value, "a string")),
            };
            if value.contains('\0') {
                return Err(r.node(
                    &var.value,
                    format!("the value of `{}` contains a nul byte", var.key),
                    None,
                ));
            }
            env.insert(var.key.clone(), value);
        }
    }

    let network = r.choice(
        env_t.get("network"),
        Network::None,
        "network",
        &[("none", Network::None), ("host", Network::Host)],
        "valid networks: none (loopback only, the default), host",
    )?;
    let scratch = r.choice(
        env_t.get("scratch"),
        Scratch::Memory,
        "scratch",
        &[("memory", Scratch::Memory), ("disk", Scratch::Disk)],
        "valid scratch places: memory (a tmpfs, the default), disk",
    )?;

    let limits = parse_limits(r, ctx, limits_t, label, warnings)?;
    let security = parse_security(r, security_t, label, warnings)?;

    // [run]
    // With an image, no command means the image's own Entrypoint + Cmd (an empty argv here).
    let from_image = matches!(root, Root::Image(_));
    let empty_run = Node::new(0..0, Kind::Table(Vec::new()));
    let run_t = match parts.run.as_deref() {
        Some(t) => t,
        None if from_image => &empty_run,
        None => {
            return Err(r.at(
                &(0..0),
                "missing [run] section",
                Some("add `[run]` with `command = [\"./bench\"]`".into()),
            ));
        }
    };
    let command = match run_t.get("command") {
        Some(command_e) => argv(r, command_e)?,
        None if from_image => Vec::new(),
        None => {
            return Err(r.at(
                &run_t.span,
                "missing `command` in [run]",
                Some("add `command = [\"./bench\"]` (or a string, run with /bin/sh -c)".into()),
            ));
        }
    };
    let setup = match run_t.get("setup") {
        Some(e) => Some(argv(r, e)?),
        None => None,
    };
    let warmup = match run_t.get("warmup") {
        Some(e) => r.int_in(e, 0, u32::MAX.into(), None)? as u32,
        None => DEFAULT_WARMUP,
    };
    let runs = match run_t.get("runs") {
        Some(e) => r.int_in(
            e,
            1,
            u32::MAX.into(),
            Some("a cell needs at least one measured run; to skip cells use `exclude` or --only"),
        )? as u32,
        None => DEFAULT_RUNS,
    };
    let timeout = match run_t.get("timeout") {
        None => Some(DEFAULT_TIMEOUT),
        Some(e) => duration_setting(r, e, &TIMEOUT_BOUNDS)?,
    };
    // How often the cgroup's memory is sampled during an invocation (the memory-over-time
    // plot); "none" turns sampling off.
    let memory_interval = match run_t.get("memory-interval") {
        None => Some(DEFAULT_MEMORY_INTERVAL),
        Some(e) => duration_setting(r, e, &MEMORY_INTERVAL_BOUNDS)?,
    };

    let metrics = parse_metrics(r, parts.metrics.as_deref(), axes)?;
    if let (Some(spec), Some(e)) = (&user, env_t.get("user")) {
        let covered = setup.is_some()
            || volumes.iter().any(|v| {
                ["/etc", "/etc/passwd", "/etc/group"].contains(&v.target.to_str().unwrap_or(""))
            });
        // A setup step may add the user, a volume may bring its own account files.
        if ctx.check_paths && !covered {
            check_accounts(r, ctx, &e.value, spec, &root, accounts)?;
        }
    }

    // How much of each stream's output an invocation's log keeps (what the metric patterns
    // see); "none": all of it. Not part of the id: it changes what is kept, not what runs.
    let max_log = match run_t.get("max-log") {
        None => Some(DEFAULT_MAX_LOG),
        Some(e) => {
            let bytes = match &e.value.kind {
                Kind::Str(s) if s.trim().eq_ignore_ascii_case("none") => None,
                Kind::Str(s) => Some(units::parse_size(s).map_err(|why| {
                    r.node(
                        &e.value,
                        format!("invalid size `{s}` for `max-log`: {why}"),
                        Some("write a size like \"16MiB\" or \"1GiB\", or \"none\" to keep all output".into()),
                    )
                })?),
                Kind::Int(_) => Some(r.int_in(e, 0, i64::MAX, None)? as u64),
                _ => return Err(r.wrong_type(&e.key, &e.value, "a size such as \"16MiB\", or \"none\"")),
            };
            if bytes == Some(0) {
                return Err(r.node(
                    &e.value,
                    "`max-log` of 0 bytes would keep no output (and no metric could match)",
                    Some("write a size like \"16MiB\", or \"none\" to keep all output".into()),
                ));
            }
            bytes
        }
    };

    let cell = Cell {
        id: String::new(),
        label: String::new(),
        slug: String::new(),
        axes: Vec::new(),
        root,
        image_digest: None,
        workdir,
        user,
        volumes,
        env,
        network,
        scratch,
        limits,
        security,
        command,
        setup,
        warmup,
        runs,
        timeout,
        memory_interval,
        max_log,
        metrics,
    };
    Ok((
        cell,
        IdParts {
            root: id_root,
            volumes: id_volumes,
        },
    ))
}

/// What a duration setting that "none" switches off may be, and what to say when it is not.
struct DurationBounds {
    min: Duration,
    max: Duration,
    /// `min` and `max` as the messages write them.
    min_text: &'static str,
    max_text: &'static str,
    /// Integers are seconds (`timeout = 90`); otherwise only strings.
    seconds: bool,
    /// "the timeout": what zero would switch off.
    feature: &'static str,
    /// Why not shorter than `min`, why not longer than `max`.
    too_short: &'static str,
    too_long: &'static str,
    example: &'static str,
}

/// `[run] timeout`: from 100 ms (the watchdog looks every 20 ms from the container's start,
/// which itself takes milliseconds) to 7 days.
const TIMEOUT_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(7 * 86_400),
    min_text: "100ms",
    max_text: "7 days",
    seconds: true,
    feature: "the timeout",
    too_short: "the watchdog checks every 20 ms from the start of the container, which itself takes a few: a shorter timeout kills invocations that barely started",
    too_long: "for no timeout at all write \"none\"",
    example: "\"90s\", \"2m\" or \"1h 30m\"",
};

/// `[run] memory-interval`: from 10 ms (more often perturbs the workload) to an hour.
const MEMORY_INTERVAL_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::from_millis(10),
    max: Duration::from_secs(3_600),
    min_text: "10ms",
    max_text: "1h",
    seconds: false,
    feature: "memory sampling",
    too_short: "sampling more often than every 10 ms would perturb the workload; use 10ms or more",
    too_long: "sampling less often than hourly draws no curve of memory use; to not sample at all write \"none\"",
    example: "\"100ms\" or \"1s\"",
};

/// A duration setting: "none" (`None`), or a duration within `b`. Zero is refused rather than
/// read as "off": only "none" switches a feature off.
fn duration_setting(r: &Reporter, e: &Entry, b: &DurationBounds) -> Result<Option<Duration>> {
    let key = &e.key;
    let (written, duration) = match &e.value.kind {
        Kind::Str(s) => {
            let d = units::parse_duration_or_none(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid duration `{s}` for `{key}`: {why}"),
                    Some(format!("write a duration like {}, or \"none\"", b.example)),
                )
            })?;
            (s.trim().to_string(), d)
        }
        Kind::Int(i) if b.seconds => {
            let secs = r.int_in(e, 0, i64::MAX, None)? as u64;
            (format!("{i}"), Some(Duration::from_secs(secs)))
        }
        _ if b.seconds => {
            return Err(r.wrong_type(key, &e.value, "a duration string or a number of seconds"));
        }
        _ => {
            return Err(r.wrong_type(
                key,
                &e.value,
                &format!("a duration string such as {}", b.example),
            ));
        }
    };
    let Some(d) = duration else {
        return Ok(None);
    };
    if d.is_zero() {
        return Err(r.node(
            &e.value,
            format!("a `{key}` of `{written}` would switch {} off", b.feature),
            Some(format!(
                "to switch it off write `{key} = \"none\"`; otherwise give a duration like {}",
                b.example
            )),
        ));
    }
    if d < b.min {
        return Err(r.node(
            &e.value,
            format!(
                "`{key}` of `{written}` is shorter than the minimum of {}",
                b.min_text
            ),
            Some(b.too_short.into()),
        ));
    }
    if d > b.max {
        return Err(r.node(
            &e.value,
            format!(
                "`{key}` of `{written}` is longer than the maximum of {}",
                b.max_text
            ),
            Some(b.too_long.into()),
        ));
    }
    Ok(Some(d))
}

/// `user`: "name", "uid", "uid:gid", "name:group" (names or ids on either side of the `:`),
/// checked for what can never resolve: a negative or out-of-range id, a malformed name.
fn user_spec(r: &Reporter, e: &Entry) -> Result<String> {
    let spec = non_empty(r, e)?;
    let hint = || {
        Some("write a user name, a uid from 0 to 4294967294, or `user:group` with names or ids: \"bench\", \"1000\", \"1000:1000\", \"bench:staff\"".to_string())
    };
    let invalid = |why: String| r.node(&e.value, format!("invalid user `{spec}`: {why}"), hint());
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group.is_some_and(|g| g.contains(':')) {
        return Err(invalid("it has more than one `:`".into()));
    }
    for (part, what) in [(Some(user), "user"), (group, "group")] {
        let Some(part) = part else { continue };
        if part.is_empty() {
            return Err(invalid(format!("the {what} is empty")));
        }
        let digits = part.strip_prefix('-').unwrap_or(part);
        if digits.chars().all(|c| c.is_ascii_digit()) {
            if part.starts_with('-') {
                return Err(invalid(format!("`{part}` is a negative id")));
            }
            // (uid_t)-1 means "unchanged" to setuid: no process can run as it.
            if !matches!(part.parse::<u32>(), Ok(id) if id < u32::MAX) {
                return Err(invalid(format!(
                    "id `{part}` is out of range (0 to 4294967294)"
                )));
            }
        } else {
            let name_ok = !part.starts_with('-')
                && part
                    .trim_end_matches('$')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !name_ok {
                return Err(invalid(format!("`{part}` is not a valid {what} name")));
            }
        }
    }
    Ok(spec.to_string())
}

/// The account files of root directories, read once per directory (a matrix may name the same
/// rootfs in a million cells): `None` where they cannot be read safely (a symlinked `etc`).
#[derive(Default)]
pub(crate) struct AccountFiles(Mutex<HashMap<PathBuf, Option<Arc<Accounts>>>>);

/// The text of `/etc/passwd` and of `/etc/group`.
type Accounts = (String, String);

impl AccountFiles {
    /// `/etc/passwd` and `/etc/group` under `root` (a missing file is empty, as in the sandbox).
    fn get(&self, root: &Path) -> Option<Arc<Accounts>> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(root.to_path_buf())
            .or_insert_with(|| {
                // Not through a symlink: in the container it would resolve inside the rootfs,
                // here on the host.
                let etc = root.join("etc");
                let read = |name: &str| -> Option<String> {
                    let path = etc.join(name);
                    match std::fs::symlink_metadata(&path) {
                        Err(_) => Some(String::new()),
                        Ok(m) if m.file_type().is_symlink() => None,
                        Ok(_) => std::fs::read(&path)
                            .ok()
                            .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    }
                };
                if std::fs::symlink_metadata(&etc).is_ok_and(|m| m.file_type().is_symlink()) {
                    return None;
                }
                Some(Arc::new((read("passwd")?, read("group")?)))
            })
            .clone()
    }
}

/// A named user (and group) must be in the account files of the cell's root: the rootfs's, the
/// host's for a cell on the host's files, an image's when `run` has unpacked it
/// ([`ValidationContext::image_accounts`]). Ids need no entry.
fn check_accounts(
    r: &Reporter,
    ctx: &ValidationContext,
    node: &Node,
    spec: &str,
    root: &Root,
    accounts: &AccountFiles,
) -> Result<()> {
    let (files, place, which) = match root {
        Root::Image(reference) => match ctx.image_accounts.get(reference) {
            Some(files) => (Arc::new(files.clone()), "the image's", reference.clone()),
            None => return Ok(()),
        },
        Root::Dir(dir) => match accounts.get(dir) {
            Some(files) => (files, "the rootfs's", dir.join("etc").display().to_string()),
            None => return Ok(()),
        },
        Root::Host => match accounts.get(Path::new("/")) {
            Some(files) => (
                files,
                "the host's",
                "a cell without `image` or `rootfs` runs on the host's files".to_string(),
            ),
            None => return Ok(()),
        },
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let named = |part: &str| !part.chars().all(|c| c.is_ascii_digit());
    let listed = |text: &str, name: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.split(':').next() == Some(name))
    };
    let missing = if named(user) && !listed(&files.0, user) {
        Some(("user", user, "passwd"))
    } else {
        group
            .filter(|g| named(g) && !listed(&files.1, g))
            .map(|g| ("group", g, "group"))
    };
    let Some((what, name, file)) = missing else {
        return Ok(());
    };
    let which = match root {
        Root::Dir(_) => format!("{which}/{file}"),
        _ => which,
    };
    Err(r.node(
        node,
        format!("{what} `{name}` is not in {place} /etc/{file} ({which})"),
        Some(format!(
            "name a {what} of that file, give a numeric id (\"1000\", \"1000:1000\"), or create the {what} in `setup`"
        )),
    ))
}

fn non_empty<'n>(r: &Reporter, e: &'n Entry) -> Result<&'n str> {
    let s = r.string(e)?;
    if s.trim().is_empty() {
        return Err(r.node(&e.value, format!("`{}` is empty", e.key), None));
    }
    Ok(s)
}

/// A host path relative to the matrix file's directory, checked when `ctx.check_paths`.
fn host_path(
    r: &Reporter,
    ctx: &ValidationContext,
    base_dir: &Path,
    node: &Node,
    written: &str,
    what: &str,
    must_be_dir: bool,
) -> Result<PathBuf> {
    let path = normalize(&base_dir.join(written));
    if !ctx.check_paths {
        return Ok(path);
    }
    let hint = Some(format!(
        "relative paths are relative to the matrix file's directory, {}",
        base_dir.display()
    ));
    match std::fs::metadata(&path) {
        Err(_) => Err(r.node(
            node,
            format!("{what} `{written}` does not exist ({})", path.display()),
            hint,
        )),
        Ok(m) if must_be_dir && !m.is_dir() => Err(r.node(
            node,
            format!("{what} `{written}` is not a directory ({})", path.display()),
            hint,
        )),
        Ok(_) => Ok(std::fs::canonicalize(&path).unwrap_or(path)),
    }
}

/// An absolute path inside the container.
fn container_path(r: &Reporter, node: &Node, written: &str, what: &str) -> Result<PathBuf> {
    if !written.starts_with('/') {
        return Err(r.node(
            node,
            format!("{what} `{written}` is not an absolute path"),
            Some(format!(
                "paths inside the container start with `/`, e.g. `/{}`",
                written.trim_start_matches("./")
            )),
        ));
    }
    // `..` above `/` would mean a path outside the container; inside it the kernel stops at the
    // root anyway, so such a path is a mistake (or an attempt), never what the user meant.
    let mut depth = 0usize;
    for c in Path::new(written).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => {
                return Err(r.node(
                    node,
                    format!("{what} `{written}` climbs above the container's root with `..`"),
                    Some(
                        "container paths stay inside the container: write the path without `..`"
                            .into(),
                    ),
                ));
            }
            Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    Ok(normalize(Path::new(written)))
}

/// `host:target[:ro|:rw]`.
fn volume(
    r: &Reporter,
    ctx: &ValidationContext,
    base_dir: &Path,
    node: &Node,
    spec: &str,
) -> Result<(PathBuf, PathBuf, bool)> {
    let syntax = || {
        r.node(
            node,
            format!("invalid volume `{spec}`"),
            Some("write volumes as `host:target`, `host:target:ro` or `host:target:rw`".into()),
        )
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, read_only) = match parts.as_slice() {
        [host, target] => (*host, *target, false),
        [host, target, "ro"] => (*host, *target, true),
        [host, target, "rw"] => (*host, *target, false),
        [_, _, mode] => {
            return Err(r.node(
                node,
                format!("invalid volume mode `{mode}` in `{spec}`"),
                Some("valid modes: ro, rw (the default)".into()),
            ));
        }
        _ => return Err(syntax()),
    };
    if host.is_empty() || target.is_empty() {
        return Err(syntax());
    }
    let target = container_path(r, node, target, "volume target")?;
    if target == Path::new("/") {
        return Err(r.node(
            node,
            format!("volume `{spec}` would cover the container's whole filesystem"),
            Some("mount it on a directory such as `/data`".into()),
        ));
    }
    let host = host_path(r, ctx, base_dir, node, host, "volume host path", false)?;
    Ok((host, target, read_only))
}

fn parse_limits(
    r: &Reporter,
    ctx: &ValidationContext,
    t: &Node,
    label: &str,
    warnings: &mut Warnings,
) -> Result<Limits> {
    let mut limits = Limits::default();
    let online = &ctx.online_cpus;
    if let Some(e) = t.get("cpus") {
        let cpus: CpuSet = match &e.value.kind {
            Kind::Str(s) => s.parse().map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid cpuset `{s}`: {why}"),
                    Some("write a kernel cpu list such as \"0\", \"0-3\" or \"0,2-3\"".into()),
                )
            })?,
            Kind::Int(_) => CpuSet::new([r.int_in(e, 0, super::MAX_CPU.into(), None)? as u32]),
            _ => return Err(r.wrong_type(&e.key, &e.value, "a cpu list string such as \"0-1\"")),
        };
        if let Some(cpu) = cpus.cpus().find(|c| !online.contains(*c)) {
            return Err(r.node(
                &e.value,
                format!("cpu {cpu} is not online on this host (online: {online})"),
                Some(format!("pick cpus from {online}")),
            ));
        }
        limits.cpus = Some(cpus);
    }
    if let Some(e) = t.get("cpu-quota") {
        let quota = match e.value.kind {
            Kind::Float(f) => f,
            Kind::Int(i) => i as f64,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a number of cores")),
        };
        let max = online.len() as f64;
        if !(quota > 0.0 && quota <= max) {
            return Err(r.node(
                &e.value,
                format!("cpu-quota `{quota}` is out of range: it must be above 0 and at most {max} (the online cpus)"),
                Some("cpu-quota is in cores: 0.5 is half a core".into()),
            ));
        }
        // What the cgroup gets: microseconds per 100 ms period, at least 1 ms (the kernel's
        // minimum; the sandbox would raise a smaller quota to it without a word).
        if (quota * CPU_PERIOD_US).round() < MIN_CPU_QUOTA_US {
            return Err(r.node(
                &e.value,
                format!(
                    "cpu-quota `{quota}` is below the kernel's minimum of 0.01 cores (1 ms of CPU time per 100 ms period)"
                ),
                Some("cpu-quota is in cores: 0.01 is the least, 0.5 is half a core".into()),
            ));
        }
        if let Some(cpus) = &limits.cpus
            && quota > cpus.len() as f64
        {
            warnings.push(format!(
                "cell {label}: cpu-quota {quota} is more than its {} pinned cpu(s) can use",
                cpus.len()
            ));
        }
        limits.cpu_quota = Some(quota);
    }
    if let Some(e) = t.get("memory") {
        let bytes = match &e.value.kind {
            Kind::Str(s) => units::parse_size(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid size `{s}` for `memory`: {why}"),
                    Some("write bytes or a size like \"512MiB\", \"1GiB\", \"1.5G\" (K/M/G/T are 1024-based, KB/MB/GB/TB 1000-based)".into()),
                )
            })?,
            Kind::Int(_) => r.int_in(e, 0, i64::MAX, None)? as u64,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a size such as \"1GiB\" or a number of bytes")),
        };
        if bytes < MIN_MEMORY {
            return Err(r.node(
                &e.value,
                format!(
                    "`memory` of {} is below the floor of 6 MiB",
                    units::format_size(bytes)
                ),
                Some("with less, invocations are killed for lack of memory before the workload does anything (Docker refuses less than 6 MiB too); give \"6MiB\" or more, or remove `memory` for no limit".into()),
            ));
        }
        limits.memory = Some(bytes);
    }
    if let Some(e) = t.get("pids") {
        limits.pids = Some(r.int_in(e, 1, i64::MAX, Some("remove `pids` for no limit"))? as u64);
    }
    Ok(limits)
}

/// `[security]`: what the workload may do beyond the hardened defaults (see
/// `sandbox::security`). Capability names are stored in their canonical spelling, sorted and
/// deduplicated, so `sys_ptrace` and `CAP_SYS_PTRACE` are the same cell.
fn parse_security(r: &Reporter, t: &Node, label: &str, warnings: &mut Warnings) -> Result<Policy> {
    let mut policy = Policy::default();
    let capabilities = t.get("capabilities");
    if let Some(e) = capabilities {
        let Kind::Array(items) = &e.value.kind else {
            return Err(r.wrong_type(&e.key, &e.value, "an array of capability names"));
        };
        for item in items {
            let name = item.as_str().ok_or_else(|| {
                r.wrong_type(&e.key, item, "a capability name such as \"SYS_PTRACE\"")
            })?;
            let Some(cap) = security::parse_capability(name) else {
                // Suggest from the bare name: `CAP_SYS_PTRAC` is close to `SYS_PTRACE`.
                let upper = name.trim().to_ascii_uppercase();
                let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
                let names = security::capability_names();
                return Err(r.node(
                    item,
                    format!("unknown capability `{name}`"),
                    Some(suggest(
                        bare,
                        names.iter().map(String::as_str),
                        "valid capabilities",
                    )),
                ));
            };
            if security::DEFAULT_CAPABILITIES.contains(&cap) {
                warnings.push(format!(
                    "{}capability `{}` in [security] is in the default set already: listing it changes nothing but the cell's id",
                    cell_prefix(label, [item]),
                    security::capability_name(cap)
                ));
            }
            policy.capabilities.push(security::capability_name(cap));
        }
        policy.capabilities.sort();
        policy.capabilities.dedup();
    }
    let seccomp = t.get("seccomp");
    policy.seccomp_unconfined = r.choice(
        seccomp,
        false,
        "seccomp",
        &[("default", false), ("unconfined", true)],
        "valid seccomp values: default (a filter after Docker's default profile), unconfined (no filter)",
    )?;
    if let Some(e) = t.get("privileged") {
        policy.privileged = match e.value.kind {
            Kind::Bool(b) => b,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a boolean")),
        };
        // Redundant, not wrong: the file still says what was meant.
        if policy.privileged && (capabilities.is_some() || seccomp.is_some()) {
            let nodes = [Some(e), capabilities, seccomp].into_iter().flatten();
            warnings.push(format!(
                "{}`privileged = true` in [security] already grants every capability and turns the seccomp filter off: `capabilities` and `seccomp` have no effect",
                cell_prefix(label, nodes.map(|e| &e.value))
            ));
        }
    }
    Ok(policy)
}

/// "cell jdk=17: " when one of `nodes` came from a placeholder (the warning may hold for some
/// cells only), else nothing (one warning for the whole matrix, as the duplicates are dropped).
fn cell_prefix<'n>(label: &str, nodes: impl IntoIterator<Item = &'n Node>) -> String {
    if nodes.into_iter().any(|n| n.substituted) {
        format!("cell {label}: ")
    } else {
        String::new()
    }
}

/// A command: an argv array, or a string run with `/bin/sh -c`.
fn argv(r: &Reporter, e: &Entry) -> Result<Vec<String>> {
    let expected = "a string or an array of strings";
    let argv = match &e.value.kind {
        Kind::Str(s) => {
            if s.trim().is_empty() {
                Vec::new()
            } else {
                vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()]
            }
        }
        Kind::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| r.wrong_type(&e.key, i, "a string"))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(r.wrong_type(&e.key, &e.value, expected)),
    };
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(r.node(
            &e.value,
            format!("`{}` is empty", e.key),
            Some(format!(
                "give the program to run, e.g. `{} = [\"./bench\", \"--fast\"]`",
                e.key
            )),
        ));
    }
    if let Some(bad) = argv.iter().find(|a| a.contains('\0')) {
        return Err(r.node(
            &e.value,
            format!("argument `{bad}` of `{}` contains a nul byte", e.key),
            None,
        ));
    }
    Ok(argv)
}

fn parse_metrics(r: &Reporter, metrics: Option<&Node>, axes: &[Axis]) -> Result<Vec<MetricSpec>> {
    let Some(Node {
        kind: Kind::Array(tables),
        ..
    }) = metrics
    else {
        return Ok(Vec::new());
    };
    let mut out: Vec<MetricSpec> = Vec::new();
    let mut first_at: Vec<Range<usize>> = Vec::new();
    for t in tables {
        let Some(name_e) = t.get("name") else {
            return Err(r.at(
                &t.span,
                "missing `name` in [[metric]]",
                Some("add `name = \"throughput\"`".into()),
            ));
        };
        let name = r.string(name_e)?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(r.node(
                &name_e.value,
                format!("invalid metric name `{name}`"),
                Some("metric names become CSV columns: letters, digits, `_`, `.` and `-`, starting with a letter or `_`".into()),
            ));
        }
        if builtin_columns().iter().any(|c| c == name) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{name}` has the name of a column runs.csv always has"),
                Some(format!(
                    "rename the metric; runs.csv's own columns are {}",
                    builtin_columns().join(", ")
                )),
            ));
        }
        if let Some((standard, _)) = crate::metrics::builtin_names().find(|(n, _)| *n == name) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{standard}` has the name of a standard metric"),
                Some(format!(
                    "rename the metric; the standard metrics are {}",
                    crate::metrics::builtin_names()
                        .map(|(n, _)| n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
        if axes.iter().any(|a| a.name == name) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{name}` has the name of axis `{name}`: runs.csv would have two `{name}` columns"),
                Some("rename the metric or the axis".into()),
            ));
        }
        if let Some(i) = out.iter().position(|m| m.name == name) {
            let (line, _) = line_col(r.source, first_at[i].start);
            return Err(r.node(
                &name_e.value,
                format!("duplicate metric name `{name}`"),
                Some(format!("the first `{name}` is on line {line}; rename one")),
            ));
        }
        // No pattern: the workload reports the metric in its BENCHBOX_METRICS file.
        let pattern = match t.get("pattern") {
            None => None,
            Some(pattern_e) => {
                let pattern = r.string(pattern_e)?;
                let re = regex::Regex::new(pattern).map_err(|e| {
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .find_map(|l| l.strip_prefix("error: "))
                        .unwrap_or(text.lines().last().unwrap_or_default());
                    r.node(
                        &pattern_e.value,
                        format!("invalid regex `{pattern}`: {why}"),
                        Some(
                            "literal braces in patterns are written `{{` and `}}` (placeholder escaping)"
                                .into(),
                        ),
                    )
                })?;
                let groups = re.captures_len() - 1;
                if groups != 1 {
                    return Err(r.node(
                        &pattern_e.value,
                        format!("pattern `{pattern}` has {groups} capture groups; it needs exactly one"),
                        Some("capture the number with `( )` and make other groups non-capturing with `(?: )`".into()),
                    ));
                }
                Some(pattern.to_string())
            }
        };
        let unit = match t.get("unit") {
            Some(e) => Some(r.string(e)?.to_string()),
            None => None,
        };
        let better = match t.get("better") {
            None => Better::default(),
            Some(e) => match r.string(e)? {
                "lower" => Better::Lower,
                "higher" => Better::Higher,
                other => {
                    return Err(r.node(
                        &e.value,
                        format!("invalid value `{other}` for `better`"),
                        Some("valid values: lower (the default), higher".into()),
                    ));
                }
            },
        };
        first_at.push(name_e.value.span.clone());
        out.push(MetricSpec {
            name: name.to_string(),
            pattern,
            unit,
            better,
        });
    }
    Ok(out)
}

/// 12 hex chars of sha256 over the canonical JSON (keys sorted at every level) of the identity.
fn cell_id(identity: &Identity) -> String {
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
fn identity_json(id: &Identity, out: &mut Vec<u8>) {
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
fn canonical<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    canonical_json(&serde_json::to_value(value).unwrap_or(Value::Null), out);
}

/// JSON with object keys sorted, whatever serde_json's map ordering feature says. Written
/// straight into `out`: a cell's id costs no allocation per key or value.
fn canonical_json(value: &Value, out: &mut Vec<u8>) {
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
fn json_scalar<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing plain data into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The columns every runs.csv has, whatever its axes and metrics (`cell`, `label`, `phase`,
/// `wall_s`, ... `status`, `flags`, `reason`): no axis or metric may take one of these names,
/// or runs.csv would have two columns of that name and could not be read back.
pub(crate) fn builtin_columns() -> &'static [String] {
    static COLUMNS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| crate::results::csv_header(&[], &[]))
}

/// Max length of a hostname label.
const SLUG_MAX: usize = 63;

pub(crate) fn slugify(label: &str) -> String {
    let mut slug = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(SLUG_MAX);
    slug.trim_matches('-').to_string()
}

/// Which cells share their slug base (from the label) with another cell. Linear in practice:
/// each base is hashed once and the hashes sorted; only cells whose hashes are equal have
/// their bases compared as text, so a collision of hashes never merges two slugs.
fn slug_collisions(expansion: &Expansion) -> Vec<bool> {
    let mut hashes: Vec<(u64, u32)> = (0..expansion.len())
        .map(|i| (fnv1a(slugify(&expansion.label(i)).as_bytes()), i as u32))
        .collect();
    hashes.sort_unstable();
    let mut collides = vec![false; expansion.len()];
    for group in hashes.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        let slugs: Vec<String> = group
            .iter()
            .map(|&(_, i)| slugify(&expansion.label(i as usize)))
            .collect();
        // Large groups are real: labels longer than a slug share their first 63 characters.
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for slug in &slugs {
            *counts.entry(slug).or_default() += 1;
        }
        for (slug, &(_, i)) in slugs.iter().zip(group) {
            collides[i as usize] = counts[slug.as_str()] > 1;
        }
    }
    collides
}

/// 64-bit FNV-1a: a fixed, fast hash (the standard library's may change between versions).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The matrix file's directory, absolute.
fn base_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    normalize(&std::path::absolute(&dir).unwrap_or(dir))
}

/// Lexical normalization: drops `.`, resolves `..` against earlier components (never above `/`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let last = out.components().next_back();
                match last {
                    Some(Component::Normal(_)) => {
                        out.pop();
                    }
                    Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                    _ => out.push(".."),
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity's hand-written canonical JSON is byte for byte the generic one (serde's
    /// value, keys sorted at every level), for cells that use every part of the identity.
    #[test]
    fn identity_json_is_the_generic_canonical_json() {
        let ctx = ValidationContext {
            online_cpus: "0-1".parse().unwrap(),
            check_paths: false,
            image_accounts: Default::default(),
        };
        let sources = [
            "[run]\ncommand = \"true\"\n",
            r#"[matrix]
v = [{ name = "a", n = 1.5, deep = { z = 1, a = [1, { y = 2, b = "x\"q" }] } }, { name = "b", n = 2 }]
q = [0.5, 1]
u = ["bench", "1000:1000"]
[environment]
image = "busybox:{v.name}"
workdir = "/w/{v.name}"
user = "{u}"
volumes = ["/tmp/a:/data:ro", "./b:/b"]
env = { Z = "1", A = "{v.name}", "ü" = "é\n" }
network = "host"
scratch = "disk"
[limits]
cpus = "0-1"
cpu-quota = "{q}"
memory = "1GiB"
pids = 64
[security]
capabilities = ["SYS_PTRACE", "perfmon"]
seccomp = "unconfined"
[run]
command = ["./x", "n={v.n}", "ü\t\"'"]
setup = "make {v.name}"
"#,
            "[matrix]\nr = [\"a\"]\n[environment]\nrootfs = \"./roots/{r}\"\n[security]\nprivileged = true\n[run]\ncommand = \"true\"\n",
        ];
        let mut checked = 0;
        for source in sources {
            let p = Prepared::new(source.to_string(), Path::new("envs/x.toml")).unwrap();
            for i in 0..p.len() {
                let label = p.expansion.label(i);
                let values = p.expansion.values(i);
                let r = p.reporter();
                let sub = |t: &Option<Template>| -> Option<Cow<'static, Node>> {
                    t.as_ref()
                        .map(|t| Cow::Owned(t.substitute(&values).unwrap().into_owned()))
                };
                let parts = Parts {
                    environment: sub(&p.environment),
                    limits: sub(&p.limits),
                    security: sub(&p.security),
                    run: sub(&p.run),
                    metrics: sub(&p.metrics),
                };
                let shared = Shared {
                    ctx: &ctx,
                    base_dir: &p.base_dir,
                    accounts: &AccountFiles::default(),
                    axes: &p.expansion.axes,
                };
                let (cell, id_parts) =
                    build_cell(&r, &shared, &label, &parts, &mut Warnings::default()).unwrap();
                let identity = Identity::of(&cell, &values, id_parts);
                let mut fast = Vec::new();
                identity_json(&identity, &mut fast);
                let mut generic = Vec::new();
                canonical(&identity, &mut generic);
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(generic).unwrap()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 1 + 8 + 1);
    }
}
