//! The pipeline behind [`super::parse`]: TOML with spans -> expanded axes (`spec/expand.rs`)
//! -> substituted sections (here) -> typed cells (`build/cell.rs`, with `build/environment.rs`,
//! `build/limits.rs` and `build/services.rs`) -> ids (`build/identity.rs`) and slugs (here). Every user error is raised in these stages, pointing at the original file.

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
    Adaptive, Axis, Better, Cell, CpuSet, DEFAULT_MAX_LOG, DEFAULT_MEMORY_INTERVAL, Diagnostic,
    Lifetime, Limits, Matrix, MetricSpec, Network, Order, Ready, Root, Scratch, Service, SpecError,
    ValidationContext, Volume, suggest, units,
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
    "services",
    "report",
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
    "min-runs",
    "max-runs",
    "ci-width",
    "budget",
    "timeout",
    "memory-interval",
    "max-log",
    "disturbance-threshold",
    "rerun-disturbed",
    "order",
    "seed",
    "allow-failures",
    "counters",
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
/// `runs = "auto"`'s defaults: the statistics' recommended minimum, a cap that bounds a
/// cell's time, and "median ± 1.25%", the width at which the seeded validation finds a 10%
/// slowdown at 5% noise in at least 95% of trials within 50 invocations a side (at ± 2% it
/// stops sooner and finds it in 92.7%; the README has the sweep).
const DEFAULT_MIN_RUNS: u32 = 10;
const DEFAULT_MAX_RUNS: u32 = 50;
const DEFAULT_CI_WIDTH: f64 = 0.0125;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Turns spans into `file:line:col` diagnostics; `cell` is set while building one cell.
#[derive(Clone, Copy)]
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    cell: Option<&'a str>,
}

type Result<T> = std::result::Result<T, SpecError>;

mod cell;
mod environment;
mod identity;
mod limits;
mod services;

use cell::*;
use environment::*;
use identity::*;
use limits::*;
use services::*;

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
    services: Option<Template>,
    pub order: Order,
    pub seed: Option<u64>,
    pub allow_failures: bool,
    pub report: super::ReportOptions,
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
            services: sub(&self.services, &values, &cr)?,
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
            report: self.report,
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
    let services = r.section(&root, "services")?;
    let metrics = metric_tables(r, &root)?;
    let metrics_node = metrics.as_ref().map(|m| m.0);
    if let Some(t) = environment {
        r.check_keys(t, ENV_KEYS, "in [environment]")?;
        one_root(r, t, "[environment]", "a cell")?;
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
    if let Some(t) = services {
        check_services(r, t)?;
    }

    let report = report_section(r, &root)?;
    let name = matrix_name(r, &root, path)?;
    let description = match root.get("description") {
        Some(e) => Some(r.string(e)?.to_string()),
        None => None,
    };

    let expansion = expand(r, matrix)?;
    let axis_names: Vec<String> = expansion.axes.iter().map(|a| a.name.clone()).collect();
    let report = match report {
        Some(t) => report_options(r, t, &axis_names, metrics.as_ref().map(|m| m.1.as_slice()))?,
        None => super::ReportOptions::default(),
    };

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
    let services = template(services)?;
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
        services,
        order,
        seed,
        allow_failures,
        report,
        base_dir: base_dir(path),
        warnings,
        slug_collides,
        accounts: AccountFiles::default(),
    })
}

/// `[report]` as a table, if present.
fn report_section<'n>(r: &Reporter, root: &'n Node) -> Result<Option<&'n Node>> {
    r.section(root, "report")
}

/// `[report]` read ([`super::report_options`]); labels may name an axis, a built-in metric
/// or a `[[metric]]` by its name as written.
fn report_options(
    r: &Reporter,
    table: &Node,
    axis_names: &[String],
    metrics: Option<&[&Node]>,
) -> Result<super::ReportOptions> {
    let mut metric_names: Vec<String> = crate::metrics::builtin_names()
        .map(|(key, _)| key.to_string())
        .collect();
    for m in metrics.unwrap_or_default() {
        if let Some(name) = m.get("name").and_then(|e| e.value.as_str()) {
            metric_names.push(name.to_string());
        }
    }
    super::report_options::parse(table, axis_names, &metric_names).map_err(|p| {
        let span = p.key_span.unwrap_or_else(|| p.node.span.clone());
        r.at(&span, p.message, Some(p.hint))
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

/// The columns every runs.csv has, whatever its axes and metrics (`cell`, `label`, `phase`,
/// `wall_s`, ... `status`, `flags`, `reason`, and every perf_event counter's): no axis or metric may take one of these names,
/// or runs.csv would have two columns of that name and could not be read back.
pub(crate) fn builtin_columns() -> &'static [String] {
    static COLUMNS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        crate::results::csv_header(&[], &crate::measurement::Counters::COLUMNS, &[])
    })
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
            r#"[run]
command = "true"
[services.web]
rootfs = "./web"
command = "./serve"
env = { B = "2", A = "ü" }
volumes = ["./static:/static:ro"]
user = "www:www"
workdir = "/srv"
ready = { command = ["curl", "-f", "http://localhost/"] }
lifetime = "cell"
depends-on = ["db"]
ports = [8080]
limits = { cpus = "1", cpu-quota = 0.5, memory = "64MiB", pids = 9 }
[services.db]
image = "redis:7"
ready = { tcp = 6379 }
[services.log]
command = "tail -f x"
ready = { log = "up" }
"#,
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
                    services: sub(&p.services),
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
        assert_eq!(checked, 1 + 8 + 1 + 1);
    }
}
