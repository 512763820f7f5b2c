//! How `benchbox plan` shows a matrix: the text listing ([`write_text`]) and the JSON
//! ([`write_json`], the same document results.json records as its `plan`), each cell rendered
//! on its own so a large matrix is shown in bounded memory.

use std::io;
use std::path::Path;

use serde::Serialize;

use super::axis_texts;
use crate::spec::{
    Axis, Cell, LazyMatrix, Lifetime, Limits, Matrix, Order, Ready, Root, Service, units,
};

/// A matrix as `plan` shows it: every cell at hand ([`Matrix`]), or built one at a time
/// ([`LazyMatrix`], which is how `benchbox plan` walks a large matrix in bounded memory).
pub trait PlanSource {
    fn head(&self) -> Head<'_>;
    /// Writes every cell, in order, as `render` puts it into a string, `separator` between two.
    fn write_cells(
        &self,
        out: &mut dyn io::Write,
        separator: &str,
        render: &RenderCell,
    ) -> io::Result<()>;
}

/// Appends one cell's text to the buffer.
pub type RenderCell = dyn Fn(&Cell, &mut Vec<u8>) -> io::Result<()> + Sync;

/// Everything `plan` shows of a matrix but its cells.
pub struct Head<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub path: &'a Path,
    pub source_sha256: &'a str,
    pub order: Order,
    pub seed: Option<u64>,
    pub allow_failures: bool,
    pub axes: &'a [Axis],
    pub cells: usize,
    pub warnings: &'a [String],
}

impl PlanSource for Matrix {
    fn head(&self) -> Head<'_> {
        Head {
            name: &self.name,
            description: self.description.as_deref(),
            path: &self.path,
            source_sha256: &self.source_sha256,
            order: self.order,
            seed: self.seed,
            allow_failures: self.allow_failures,
            axes: &self.axes,
            cells: self.cells.len(),
            warnings: &self.warnings,
        }
    }

    fn write_cells(
        &self,
        out: &mut dyn io::Write,
        separator: &str,
        render: &RenderCell,
    ) -> io::Result<()> {
        let mut text = Vec::new();
        for (i, cell) in self.cells.iter().enumerate() {
            text.clear();
            if i > 0 {
                text.extend_from_slice(separator.as_bytes());
            }
            render(cell, &mut text)?;
            out.write_all(&text)?;
        }
        Ok(())
    }
}

impl PlanSource for LazyMatrix {
    fn head(&self) -> Head<'_> {
        Head {
            name: self.name(),
            description: self.description(),
            path: self.path(),
            source_sha256: self.source_sha256(),
            order: self.order(),
            seed: self.seed(),
            allow_failures: self.allow_failures(),
            axes: self.axes(),
            cells: self.len(),
            warnings: &self.warnings,
        }
    }

    /// Builds and renders the cells in batches on one thread per available cpu (thread `t`
    /// takes batches `t`, `t + threads`, ...), each at most two batches ahead of the writer,
    /// which writes them in order: a million cells in seconds, a few megabytes at a time.
    fn write_cells(
        &self,
        out: &mut dyn io::Write,
        separator: &str,
        render: &RenderCell,
    ) -> io::Result<()> {
        const BATCH: usize = 2048;
        let n = self.len();
        let batches = n.div_ceil(BATCH);
        let threads = std::thread::available_parallelism()
            .map_or(1, |p| p.get().min(8))
            .min(batches);
        let batch = |k: usize| -> io::Result<Vec<u8>> {
            let mut text = Vec::new();
            for i in k * BATCH..((k + 1) * BATCH).min(n) {
                if i > 0 {
                    text.extend_from_slice(separator.as_bytes());
                }
                let cell = self.cell(i).map_err(io::Error::other)?;
                render(&cell, &mut text)?;
            }
            Ok(text)
        };
        if threads <= 1 {
            for k in 0..batches {
                out.write_all(&batch(k)?)?;
            }
            return Ok(());
        }
        std::thread::scope(|scope| {
            let receivers: Vec<_> = (0..threads)
                .map(|t| {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
                    let batch = &batch;
                    scope.spawn(move || {
                        for k in (t..batches).step_by(threads) {
                            let text = batch(k);
                            let failed = text.is_err();
                            // The writer stopped (an error): nothing more is wanted.
                            if tx.send(text).is_err() || failed {
                                return;
                            }
                        }
                    });
                    rx
                })
                .collect();
            for k in 0..batches {
                let text = receivers[k % threads]
                    .recv()
                    .map_err(|_| io::Error::other("a plan worker stopped"))??;
                out.write_all(&text)?;
            }
            Ok(())
        })
    }
}

/// `benchbox plan FILE`: every cell with what it runs, where and on what.
pub fn render_text(matrix: &Matrix) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and a Matrix's cells are all built.
    let _ = write_text(&mut out, matrix);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`render_text`], written to `out` cell by cell.
pub fn write_text(out: &mut dyn io::Write, matrix: &dyn PlanSource) -> io::Result<()> {
    let head = matrix.head();
    let sha = head.source_sha256.get(..12).unwrap_or(head.source_sha256);
    writeln!(
        out,
        "matrix {} ({}, sha256 {sha})",
        head.name,
        head.path.display()
    )?;
    if let Some(d) = head.description {
        writeln!(out, "{d}")?;
    }
    let cells = head.cells;
    write!(
        out,
        "{cells} cell{}, {} order",
        if cells == 1 { "" } else { "s" },
        head.order
    )?;
    if let Some(seed) = head.seed {
        write!(out, ", seed {seed}")?;
    }
    if head.allow_failures {
        write!(out, ", failures allowed")?;
    }
    writeln!(out)?;
    for axis in head.axes {
        writeln!(out, "axis {}: {}", axis.name, axis_texts(axis).join(", "))?;
    }
    writeln!(out)?;
    matrix.write_cells(out, "\n", &|cell, text| {
        render_cell(text, cell);
        Ok(())
    })?;
    for w in head.warnings {
        writeln!(out, "\nwarning: {w}")?;
    }
    Ok(())
}

fn render_cell(out: &mut Vec<u8>, cell: &Cell) {
    use std::io::Write as _;
    let _ = writeln!(out, "{}  {}", cell.id, cell.label);
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "  {key:<8} {value}");
    };
    line(
        "root",
        render_root(&cell.root, cell.image_digest.as_deref()),
    );
    if let Some(u) = &cell.user {
        line("user", u.clone());
    }
    if let Some(w) = &cell.workdir {
        line("workdir", w.display().to_string());
    }
    if !cell.volumes.is_empty() {
        let vols: Vec<String> = cell
            .volumes
            .iter()
            .map(|v| {
                let mode = if v.read_only { "ro" } else { "rw" };
                format!("{} -> {} ({mode})", v.host.display(), v.target.display())
            })
            .collect();
        line("volumes", vols.join(", "));
    }
    if !cell.env.is_empty() {
        let env: Vec<String> = cell
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        line("env", env.join(" "));
    }
    line("network", cell.network.to_string());
    if !cell.scratch.is_memory() {
        line("scratch", cell.scratch.to_string());
    }
    // Always shown, default or not: what the workload may do is never left implicit.
    line("security", cell.security.describe());
    line("limits", render_limits(&cell.limits));
    if let Some(setup) = &cell.setup {
        line("setup", render_argv(setup));
    }
    line("command", render_argv(&cell.command));
    // Only for cells with services: every other plan reads as it did.
    for s in &cell.services {
        line("service", render_service(s));
    }
    let timeout = match cell.timeout {
        Some(t) => format!("timeout {}", humantime::format_duration(t)),
        None => "no timeout".to_string(),
    };
    line(
        "runs",
        format!(
            "{} warm-up + {} measured, {timeout}",
            cell.warmup, cell.runs
        ),
    );
    if !cell.metrics.is_empty() {
        let metrics: Vec<String> = cell
            .metrics
            .iter()
            .map(|m| match &m.unit {
                Some(u) => format!("{} ({u}, {} is better)", m.name, m.better),
                None => format!("{} ({} is better)", m.name, m.better),
            })
            .collect();
        line("metrics", metrics.join(", "));
    }
}

fn render_root(root: &Root, digest: Option<&str>) -> String {
    match root {
        Root::Host => "host filesystem (throw-away overlay)".to_string(),
        Root::Dir(p) => format!("dir {}", p.display()),
        Root::Image(i) => match digest {
            Some(d) => format!("image {i} @ {d}"),
            None => format!("image {i} (unpinned)"),
        },
    }
}

/// One line: `db: image redis:7 (unpinned); command ...; ready tcp 6379 (30s); lifetime
/// invocation; limits none`, and what it waits for.
fn render_service(s: &Service) -> String {
    let command = if s.command.is_empty() {
        "the image's entrypoint".to_string()
    } else {
        render_argv(&s.command)
    };
    let within = units::format_duration(s.ready_timeout);
    let ready = match &s.ready {
        Ready::Started => "once started".to_string(),
        Ready::Tcp(port) => format!("tcp {port} within {within}"),
        Ready::Command(argv) => format!("command {} within {within}", render_argv(argv)),
        Ready::Log(text) => format!("log {} within {within}", quote(text)),
    };
    let lifetime = match s.lifetime {
        Lifetime::Invocation => "invocation",
        Lifetime::Cell => "cell",
    };
    let mut text = format!(
        "{}: {}; command {command}; ready {ready}; lifetime {lifetime}; limits {}",
        s.name,
        render_root(&s.root, s.image_digest.as_deref()),
        render_limits(&s.limits)
    );
    if !s.depends_on.is_empty() {
        text.push_str(&format!("; after {}", s.depends_on.join(", ")));
    }
    text
}

fn render_limits(l: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &l.cpus {
        parts.push(format!("cpus {c}"));
    }
    if let Some(q) = l.cpu_quota {
        parts.push(format!(
            "cpu-quota {q} core{}",
            if q == 1.0 { "" } else { "s" }
        ));
    }
    if let Some(m) = l.memory {
        parts.push(format!("memory {}", units::format_size(m)));
    }
    if let Some(p) = l.pids {
        parts.push(format!("pids {p}"));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// argv as a shell would need it typed.
fn render_argv(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `benchbox plan FILE --json`.
pub fn render_json(matrix: &Matrix) -> String {
    let mut out = Vec::new();
    // Serializing plain data into a Vec cannot fail; keep a visible fallback anyway.
    match write_json(&mut out, matrix) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!("{{\"error\": \"{e}\"}}"),
    }
}

/// [`render_json`], written to `out` cell by cell (pretty JSON, no newline at the end): the
/// bytes `serde_json::to_string_pretty` makes of the whole plan (a test holds them equal), with
/// each cell serialized on its own, so that they can be built in parallel.
pub fn write_json(out: &mut dyn io::Write, matrix: &dyn PlanSource) -> io::Result<()> {
    let head = matrix.head();
    let empty: [Cell; 0] = [];
    let plan = PlanJson {
        name: head.name,
        description: head.description,
        source_sha256: head.source_sha256,
        order: head.order,
        seed: head.seed,
        allow_failures: head.allow_failures,
        axes: head.axes,
        cells: &empty,
        warnings: head.warnings,
    };
    let text = serde_json::to_string_pretty(&plan).map_err(io::Error::other)?;
    // The top-level key is the only one indented by exactly two spaces (keys inside axis
    // values are deeper), and JSON strings cannot hold a raw newline or quote.
    const MARK: &str = "\n  \"cells\": []";
    let at = text
        .find(MARK)
        .ok_or_else(|| io::Error::other("no cells key in the plan"))?
        + MARK.len()
        - 2;
    out.write_all(&text.as_bytes()[..at])?;
    out.write_all(b"[\n")?;
    matrix.write_cells(out, ",\n", &|cell, text| {
        // An element of an array in the top-level object: two levels deep.
        text.extend_from_slice(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(text, Pretty::at_depth(2));
        cell.serialize(&mut ser).map_err(io::Error::from)
    })?;
    out.write_all(b"\n  ]")?;
    out.write_all(&text.as_bytes()[at + 2..])
}

/// serde_json's pretty format (two spaces a level), starting `depth` levels deep: a value
/// written with it is the bytes it has inside the whole document.
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn at_depth(depth: usize) -> Pretty {
        Pretty {
            depth,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + io::Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// An array or object opens: one level deeper, nothing in it yet.
    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            for _ in 0..self.depth {
                w.write_all(b"  ")?;
            }
        }
        w.write_all(bracket)
    }
}

/// Arrays and objects are written alike: an element, or a key, on a line of its own.
impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.newline(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.newline(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end_array_value(w)
    }
}

/// What `plan --json` prints: a [`Plan`] borrowed from the matrix, written cell by cell.
#[derive(Serialize)]
pub(super) struct PlanJson<'a> {
    pub(super) name: &'a str,
    pub(super) description: Option<&'a str>,
    pub(super) source_sha256: &'a str,
    pub(super) order: Order,
    pub(super) seed: Option<u64>,
    pub(super) allow_failures: bool,
    pub(super) axes: &'a [Axis],
    pub(super) cells: &'a [Cell],
    pub(super) warnings: &'a [String],
}
