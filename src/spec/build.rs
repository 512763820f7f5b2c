//! The pipeline behind [`super::parse`]: TOML with spans -> expanded axes -> substituted,
//! typed cells -> ids and slugs. Every user error is raised here, pointing at the original file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::node::{Entry, Kind, Node, line_col};
use super::template::{self, Problem};
use super::{
    Axis, Better, Cell, CpuSet, DEFAULT_MAX_LOG, DEFAULT_MEMORY_INTERVAL, Diagnostic, Limits,
    Matrix, MetricSpec, Network, Order, Root, Scratch, SpecError, ValidationContext, Volume,
    axis_value_text, is_axis_name, suggest, units,
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

const DEFAULT_WARMUP: u32 = 1;
const DEFAULT_RUNS: u32 = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Bumped if the identity layout changes, so old and new ids never collide by accident.
const ID_VERSION: u32 = 1;

/// Turns spans into `file:line:col` diagnostics; `cell` is set while building one cell.
#[derive(Clone, Copy)]
struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    cell: Option<&'a str>,
}

type Result<T> = std::result::Result<T, SpecError>;

impl Reporter<'_> {
    fn at(
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

/// One cell of the expansion, before substitution.
struct Expanded {
    values: Vec<(String, Value)>,
    label: String,
    /// Where the cell comes from: the `[matrix]` table, or its `include` entry.
    origin: Range<usize>,
}

pub(crate) fn build(source: &str, path: &Path, ctx: &ValidationContext) -> Result<Matrix> {
    let r = Reporter {
        file: path,
        source,
        cell: None,
    };
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
    let metrics = metric_tables(&r, &root)?;
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

    let name = matrix_name(&r, &root, path)?;
    let description = match root.get("description") {
        Some(e) => Some(r.string(e)?.to_string()),
        None => None,
    };

    let (axes, expanded) = expand(&r, matrix)?;
    let axis_names: Vec<String> = axes.iter().map(|a| a.name.clone()).collect();

    // Placeholders are checked once on the template, so such errors are not reported per cell.
    let mut used = BTreeSet::new();
    let templates = [environment, limits, security, run, metrics_node];
    for t in templates.into_iter().flatten() {
        template::check(t, &axis_names, &mut used).map_err(|p| r.problem(p))?;
    }
    let mut warnings: Vec<String> = axis_names
        .iter()
        .filter(|a| !used.contains(*a))
        .map(|a| {
            format!("axis `{a}` is not used by any template value: its cells differ only by name")
        })
        .collect();

    let (order, seed, allow_failures) = run_settings(&r, run)?;

    let base_dir = base_dir(path);
    let mut cells = Vec::with_capacity(expanded.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for exp in &expanded {
        let cr = Reporter {
            cell: Some(&exp.label),
            ..r
        };
        let sub = |t: Option<&Node>| -> Result<Option<Node>> {
            t.map(|t| template::substitute(t, &exp.values))
                .transpose()
                .map_err(|p| cr.problem(p))
        };
        let parts = Parts {
            environment: sub(environment)?,
            limits: sub(limits)?,
            security: sub(security)?,
            run: sub(run)?,
            metrics: sub(metrics_node)?,
        };
        let (cell, identity) = build_cell(&cr, ctx, &base_dir, exp, &parts, &mut warnings)?;
        let id = cell_id(&identity);
        if let Some(&first) = seen.get(&id) {
            let first: &Cell = &cells[first];
            return Err(r.at(
                &exp.origin,
                format!(
                    "cells `{}` and `{}` expand to the same cell (id {id})",
                    first.label, exp.label
                ),
                Some("remove the duplicate `include` entry or axis value".into()),
            ));
        }
        seen.insert(id.clone(), cells.len());
        cells.push(Cell { id, ..cell });
    }
    assign_slugs(&mut cells);
    dedup_keep_order(&mut warnings);

    Ok(Matrix {
        name,
        description,
        path: path.to_path_buf(),
        source_sha256: hex::encode(Sha256::digest(source.as_bytes())),
        axes,
        cells,
        order,
        seed,
        allow_failures,
        warnings,
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

/// Axes as declared, plus the cells: product minus `exclude`, plus `include`.
fn expand(r: &Reporter, matrix: Option<&Node>) -> Result<(Vec<Axis>, Vec<Expanded>)> {
    let Some(matrix) = matrix else {
        return Ok((Vec::new(), vec![expanded(Vec::new(), 0..0)]));
    };
    let mut axes: Vec<Axis> = Vec::new();
    for e in matrix.entries() {
        if e.key == "exclude" || e.key == "include" {
            continue;
        }
        if !is_axis_name(&e.key) {
            return Err(r.at(
                &e.key_span,
                format!("invalid axis name `{}`", e.key),
                Some("axis names match [A-Za-z_][A-Za-z0-9_-]* (they are used in `{axis}` placeholders)".into()),
            ));
        }
        let Kind::Array(items) = &e.value.kind else {
            return Err(r.at(
                &e.value.span,
                format!(
                    "expected an array of values for axis `{}`, found {}",
                    e.key,
                    e.value.describe()
                ),
                Some(format!(
                    "an axis lists its values: `{} = [\"a\", \"b\"]`",
                    e.key
                )),
            ));
        };
        if items.is_empty() {
            return Err(r.at(
                &e.value.span,
                format!("axis `{}` has no values", e.key),
                Some("give it at least one value, or remove it".into()),
            ));
        }
        let mut values: Vec<Value> = Vec::new();
        for item in items {
            let v = axis_value(r, &e.key, item)?;
            if values
                .iter()
                .any(|old| axis_value_text(old) == axis_value_text(&v))
            {
                return Err(r.at(
                    &item.span,
                    format!(
                        "duplicate value `{}` in axis `{}`",
                        axis_value_text(&v),
                        e.key
                    ),
                    Some("each value of an axis must be distinct".into()),
                ));
            }
            values.push(v);
        }
        axes.push(Axis {
            name: e.key.clone(),
            values,
        });
    }
    let owned_names: Vec<String> = axes.iter().map(|a| a.name.clone()).collect();
    let names: Vec<&str> = owned_names.iter().map(String::as_str).collect();

    // Cartesian product, first axis outermost, as nested loops would read.
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for axis in &axes {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((axis.name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }

    if let Some(e) = matrix.get("exclude") {
        let rules = rule_tables(r, e)?;
        for rule in &rules {
            if rule.entries().is_empty() {
                return Err(r.at(
                    &rule.span,
                    "an empty `exclude` entry would drop every cell",
                    Some("name the axis values to exclude, e.g. { jdk = \"17\" }".into()),
                ));
            }
            for re in rule.entries() {
                let axis = find_axis(r, &axes, &names, re, "exclude")?;
                let given = axis_value(r, &re.key, &re.value)?;
                if !axis.values.iter().any(|v| values_match(&given, v)) {
                    return Err(r.at(
                        &re.value.span,
                        format!(
                            "`{}` is not a value of axis `{}`",
                            axis_value_text(&given),
                            axis.name
                        ),
                        Some(format!(
                            "values of `{}`: {}",
                            axis.name,
                            value_list(&axis.values)
                        )),
                    ));
                }
            }
        }
        combos.retain(|combo| {
            !rules.iter().any(|rule| {
                rule.entries().iter().all(|re| {
                    let given = json_of(&re.value);
                    combo
                        .iter()
                        .any(|(n, v)| *n == re.key && values_match(&given, v))
                })
            })
        });
    }

    let mut cells: Vec<Expanded> = combos
        .into_iter()
        .map(|c| expanded(c, matrix.span.clone()))
        .collect();

    if let Some(e) = matrix.get("include") {
        for entry in rule_tables(r, e)? {
            let mut given: Vec<(usize, Value)> = Vec::new();
            for ie in entry.entries() {
                find_axis(r, &axes, &names, ie, "include")?;
                let index = names.iter().position(|n| *n == ie.key).unwrap_or(0);
                given.push((index, axis_value(r, &ie.key, &ie.value)?));
            }
            if let Some(missing) = names
                .iter()
                .enumerate()
                .find(|(i, _)| !given.iter().any(|(g, _)| g == i))
            {
                return Err(r.at(
                    &entry.span,
                    format!("`include` entry is missing axis `{}`", missing.1),
                    Some(format!(
                        "an include entry gives a value for every axis: {}",
                        names.join(", ")
                    )),
                ));
            }
            given.sort_by_key(|(i, _)| *i);
            let mut values = Vec::new();
            for (i, v) in given {
                let axis = &mut axes[i];
                // Reuse the declared value when it is the same (`17` vs `"17"`): same cell, same id.
                let v = match axis.values.iter().find(|d| values_match(&v, d)) {
                    Some(d) => d.clone(),
                    None => {
                        axis.values.push(v.clone());
                        v
                    }
                };
                values.push((axis.name.clone(), v));
            }
            cells.push(expanded(values, entry.span.clone()));
        }
    }

    if cells.is_empty() {
        return Err(r.at(
            &matrix.span,
            "the matrix expands to no cells",
            Some("every combination is excluded: loosen `exclude` or add `include` entries".into()),
        ));
    }
    Ok((axes, cells))
}

fn expanded(values: Vec<(String, Value)>, origin: Range<usize>) -> Expanded {
    let label = if values.is_empty() {
        "default".to_string()
    } else {
        values
            .iter()
            .map(|(n, v)| format!("{n}={}", axis_value_text(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Expanded {
        values,
        label,
        origin,
    }
}

fn rule_tables<'n>(r: &Reporter, e: &'n Entry) -> Result<Vec<&'n Node>> {
    let err = |node: &Node| {
        r.at(
            &node.span,
            format!(
                "expected an array of tables for `{}`, found {}",
                e.key,
                node.describe()
            ),
            Some(format!("write `{} = [{{ axis = \"value\" }}]`", e.key)),
        )
    };
    let Kind::Array(items) = &e.value.kind else {
        return Err(err(&e.value));
    };
    items
        .iter()
        .map(|i| {
            if matches!(i.kind, Kind::Table(_)) {
                Ok(i)
            } else {
                Err(err(i))
            }
        })
        .collect()
}

fn find_axis<'a>(
    r: &Reporter,
    axes: &'a [Axis],
    names: &[&str],
    e: &Entry,
    what: &str,
) -> Result<&'a Axis> {
    axes.iter().find(|a| a.name == e.key).ok_or_else(|| {
        let hint = if names.is_empty() {
            "the matrix declares no axes".to_string()
        } else {
            suggest(&e.key, names.iter().copied(), "axes")
        };
        r.at(
            &e.key_span,
            format!("unknown axis `{}` in `{what}`", e.key),
            Some(hint),
        )
    })
}

/// Equal values, or a plain value naming the other by its text (`17` matches `"17"`).
fn values_match(given: &Value, declared: &Value) -> bool {
    given == declared
        || (!given.is_object()
            && !given.is_array()
            && axis_value_text(given) == axis_value_text(declared))
}

fn value_list(values: &[Value]) -> String {
    values
        .iter()
        .map(axis_value_text)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An axis value as JSON: a scalar or a table (whose fields may hold anything but datetimes
/// become strings).
fn axis_value(r: &Reporter, axis: &str, node: &Node) -> Result<Value> {
    match &node.kind {
        Kind::Array(_) | Kind::Datetime(_) => Err(r.at(
            &node.span,
            format!(
                "expected a string, number, boolean or table as a value of axis `{axis}`, found {}",
                node.describe()
            ),
            None,
        )),
        Kind::Float(f) if !f.is_finite() => Err(r.at(
            &node.span,
            format!("axis `{axis}` has the non-finite value `{f}`"),
            Some("axis values are recorded as JSON, which has no nan or inf".into()),
        )),
        _ => Ok(json_of(node)),
    }
}

fn json_of(node: &Node) -> Value {
    match &node.kind {
        Kind::Str(s) | Kind::Datetime(s) => Value::String(s.clone()),
        Kind::Int(i) => Value::from(*i),
        Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        Kind::Table(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), json_of(&e.value)))
                .collect(),
        ),
    }
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
struct Parts {
    environment: Option<Node>,
    limits: Option<Node>,
    security: Option<Node>,
    run: Option<Node>,
    metrics: Option<Node>,
}

/// What the id hashes: everything that defines the cell, paths as written (see module doc).
#[derive(Serialize)]
struct Identity {
    v: u32,
    axes: Vec<(String, Value)>,
    root: IdRoot,
    workdir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    volumes: Vec<(PathBuf, PathBuf, bool)>,
    env: BTreeMap<String, String>,
    network: Network,
    /// Only when not the default, so adding the key left earlier ids unchanged.
    #[serde(skip_serializing_if = "Scratch::is_memory")]
    scratch: Scratch,
    limits: Limits,
    /// Only when something is loosened, like `scratch`.
    #[serde(skip_serializing_if = "Policy::is_default")]
    security: Policy,
    command: Vec<String>,
    setup: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum IdRoot {
    Host,
    Dir(PathBuf),
    Image(String),
}

fn build_cell(
    r: &Reporter,
    ctx: &ValidationContext,
    base_dir: &Path,
    exp: &Expanded,
    parts: &Parts,
    warnings: &mut Vec<String>,
) -> Result<(Cell, Identity)> {
    let empty = Node::new(0..0, Kind::Table(Vec::new()));
    let env_t = parts.environment.as_ref().unwrap_or(&empty);
    let limits_t = parts.limits.as_ref().unwrap_or(&empty);
    let security_t = parts.security.as_ref().unwrap_or(&empty);

    // Root filesystem.
    let (root, id_root) = if let Some(e) = env_t.get("image") {
        let image = non_empty(r, e)?;
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
        Some(e) => Some(non_empty(r, e)?.to_string()),
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

    let limits = parse_limits(r, ctx, limits_t, &exp.label, warnings)?;
    let security = parse_security(r, security_t, &exp.label, warnings)?;

    // [run]
    // With an image, no command means the image's own Entrypoint + Cmd (an empty argv here).
    let from_image = matches!(root, Root::Image(_));
    let empty_run = Node::new(0..0, Kind::Table(Vec::new()));
    let run_t = match parts.run.as_ref() {
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
        Some(e) => match &e.value.kind {
            Kind::Str(s) => units::parse_timeout(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid duration `{s}` for `timeout`: {why}"),
                    Some("write a duration like \"90s\", \"2m\" or \"1h 30m\", or \"none\"".into()),
                )
            })?,
            Kind::Int(0) => None,
            Kind::Int(_) => Some(Duration::from_secs(r.int_in(e, 0, i64::MAX, None)? as u64)),
            _ => {
                return Err(r.wrong_type(
                    &e.key,
                    &e.value,
                    "a duration string or a number of seconds",
                ));
            }
        },
    };

    // How often the cgroup's memory is sampled during an invocation (the memory-over-time
    // plot); "none" or 0 turns sampling off.
    let memory_interval = match run_t.get("memory-interval") {
        None => Some(DEFAULT_MEMORY_INTERVAL),
        Some(e) => match &e.value.kind {
            Kind::Str(s) => units::parse_timeout(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid duration `{s}` for `memory-interval`: {why}"),
                    Some("write a duration like \"100ms\" or \"1s\", or \"none\"".into()),
                )
            })?,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a duration string such as \"100ms\"")),
        },
    };
    if let Some(i) = memory_interval
        && i < Duration::from_millis(10)
    {
        let e = run_t
            .get("memory-interval")
            .expect("only a written value can be this small");
        return Err(r.node(
            &e.value,
            format!("`memory-interval` of {i:?} is too short"),
            Some(
                "sampling more often than every 10 ms would perturb the workload; use 10ms or more"
                    .into(),
            ),
        ));
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

    let metrics = parse_metrics(r, parts.metrics.as_ref())?;

    let identity = Identity {
        v: ID_VERSION,
        axes: exp.values.clone(),
        root: id_root,
        workdir: workdir.clone(),
        user: user.clone(),
        volumes: id_volumes,
        env: env.clone(),
        network,
        scratch,
        limits: limits.clone(),
        security: security.clone(),
        command: command.clone(),
        setup: setup.clone(),
    };
    let cell = Cell {
        id: String::new(),
        label: exp.label.clone(),
        slug: String::new(),
        axes: exp.values.clone(),
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
    Ok((cell, identity))
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
    warnings: &mut Vec<String>,
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
            Kind::Int(_) => r.int_in(e, 1, i64::MAX, None)? as u64,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a size such as \"1GiB\" or a number of bytes")),
        };
        if bytes == 0 {
            return Err(r.node(
                &e.value,
                "`memory` must be above 0",
                Some("remove `memory` for no limit".into()),
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
fn parse_security(
    r: &Reporter,
    t: &Node,
    label: &str,
    warnings: &mut Vec<String>,
) -> Result<Policy> {
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

fn parse_metrics(r: &Reporter, metrics: Option<&Node>) -> Result<Vec<MetricSpec>> {
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

/// 12 hex chars of sha256 over the canonical JSON (sorted keys) of the identity.
fn cell_id(identity: &Identity) -> String {
    let value = serde_json::to_value(identity).unwrap_or(Value::Null);
    let mut text = String::new();
    canonical_json(&value, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string()
}

/// JSON with object keys sorted, whatever serde_json's map ordering feature says.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
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

/// Slugs from labels; where two collide (after truncation) or one is empty, append the id.
fn assign_slugs(cells: &mut [Cell]) {
    let bases: Vec<String> = cells.iter().map(|c| slugify(&c.label)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for b in &bases {
        *counts.entry(b).or_default() += 1;
    }
    for (cell, base) in cells.iter_mut().zip(&bases) {
        cell.slug = if base.is_empty() {
            cell.id.clone()
        } else if counts[base.as_str()] > 1 {
            let mut prefix = base.clone();
            prefix.truncate(SLUG_MAX - cell.id.len() - 1);
            format!("{}-{}", prefix.trim_end_matches('-'), cell.id)
        } else {
            base.clone()
        };
    }
}

fn dedup_keep_order(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    items.retain(|w| seen.insert(w.clone()));
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
