//! The merged runs.csv: every shard's rows copied with their host column, each parsed once and
//! checked as the merged file's row, on as many threads as the machine has.
//!
//! Parsing a row (its numbers, its text) is most of a merge's work and needs nothing but the
//! row, so worker threads parse the shards, each a fixed share of them (shard k to worker k mod
//! the workers), and send each shard's rows a chunk at a time: the bytes they take in the merged
//! file and each row's sample. The calling thread reads the shards in order, from their
//! workers' channels (one chunk each, so no more than two chunks a worker are held), and does
//! what depends on the rows before: the overlap between shards, runs.csv's own duplicate check
//! ([`RowChecker::accept`]), the line numbers of the merged file, the writing. Errors come in
//! the order one thread reading the shards one after the other would meet them.

use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::mpsc;

use rustc_hash::FxHashMap;

use super::{MergeError, Shard, io_error, refused};
use crate::plan::ShardBy;
use crate::results::{
    self, CellIds, CellSamples, HOST_COLUMN, PlanCheck, ResultsError, RowChecker, Sample, Seen,
};

/// What [`write_runs_csv`] did: the rows it wrote, and whether every one of them is valid,
/// as a read of the merged runs.csv would find them (its first error otherwise).
pub(super) struct Copied {
    pub rows: u64,
    pub checked: Result<(), ResultsError>,
}

/// Copy every shard's rows into one runs.csv at `path` with the host column (in shard order,
/// each shard's rows in its own order), and give each row written to `samples`, checked as the
/// merged file's row (its line, its host) by the validation that reads runs.csv back: the rows
/// are parsed once. A refusal of the merge (an overlap, a row without an invocation number, a
/// shard's unreadable runs.csv) is an error; a row that the validation refuses only ends the
/// checking (it is [`Copied::checked`]), since the merge's own refusals of later rows come
/// first.
pub(super) fn write_runs_csv(
    shards: &[Shard],
    by: ShardBy,
    path: &Path,
    samples: &mut CellSamples,
) -> Result<Copied, MergeError> {
    let first_csv = shards[0].dir.join("runs.csv");
    let first_header = read_header(&first_csv)?;
    let host_at = results::fixed_columns_end(&first_header).ok_or_else(|| {
        refused(format!(
            "`{}` has not this benchbox's columns\n  hint: merge shards run by this version of benchbox",
            first_csv.display()
        ))
    })?;
    let mut merged_header = first_header.clone();
    merged_header.insert(host_at, HOST_COLUMN.to_string());
    let (mut checker, mut checked) = match RowChecker::new(path, merged_header.clone()) {
        Ok(c) => (Some(c), Ok(())),
        Err(e) => (None, Err(e)),
    };
    let file = fs::File::create(path).map_err(|e| io_error("create", path, e))?;
    let mut file = io::BufWriter::with_capacity(1 << 20, file);
    let mut header_writer = csv::WriterBuilder::new().from_writer(Vec::new());
    header_writer
        .write_record(&merged_header)
        .map_err(|e| csv_error(path, e))?;
    let header_bytes = header_writer
        .into_inner()
        .map_err(|e| io_error("write", path, e.into_error()))?;
    file.write_all(&header_bytes)
        .map_err(|e| io_error("write", path, e))?;
    // The line of the merged file the next record starts on, as a reader counts them (each
    // `\n`, those inside quoted fields included).
    let mut line = 1 + lines_of(merged_header.concat().as_bytes());
    let job = Job {
        shards,
        by,
        first_header: &first_header,
        host_at,
        parser: checker.clone(),
        plan: samples.plan().clone(),
    };
    // (cell, phase, invocation) -> the shard that has it; a phase no run has (an edited file)
    // in a map of its own. Room for every planned row: a merge's rows come shard by shard, so
    // each cell's invocations arrive spread over its whole range.
    let mut seen: Seen<u32> = Seen::default();
    seen.reserve(samples.plan().planned_rows());
    let mut seen_in_other_phases: FxHashMap<(usize, usize, u64), u32> = FxHashMap::default();
    if let Some(checker) = &mut checker {
        checker.reserve(samples.plan().planned_rows());
    }
    let (mut other_cells, mut other_phases) = (Others::default(), Others::default());
    let mut rows = 0u64;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(shards.len());
    std::thread::scope(|scope| -> Result<(), MergeError> {
        // Worker w parses shards w, w + threads, ... in turn, a chunk of rows at a time, into a
        // channel of its own that holds one chunk: the calling thread reads the shards in order
        // from their workers, and no more than two chunks a worker are ever held.
        let receivers: Vec<mpsc::Receiver<ShardRows>> = (0..threads)
            .map(|w| {
                let (sender, receiver) = mpsc::sync_channel::<ShardRows>(1);
                let job = &job;
                scope.spawn(move || {
                    for k in (w..job.shards.len()).step_by(threads) {
                        // An error sending: the calling thread stopped at an error.
                        if !job.shard_rows(k, &mut |chunk| sender.send(chunk).is_ok()) {
                            return;
                        }
                    }
                });
                receiver
            })
            .collect();
        for (k, s) in shards.iter().enumerate() {
            loop {
                let Ok(shard) = receivers[k % threads].recv() else {
                    return Err(refused(format!(
                        "the thread reading `{}` stopped before its end",
                        s.dir.join("runs.csv").display()
                    )));
                };
                file.write_all(&shard.bytes)
                    .map_err(|e| io_error("write", path, e))?;
                let host = s.run.host.hostname.as_bytes();
                for row in shard.rows {
                    let (cell, phase) = (
                        other_cells.number(row.cell, job.plan.cells()),
                        other_phases.number(row.phase, 2),
                    );
                    // A shard's own repeat (a `rerun` row replacing a disturbed one) is the
                    // rebuild's to validate; only two shards holding one invocation is an
                    // overlap.
                    let before = if phase < 2 {
                        seen.insert(cell * 2 + phase, row.invocation, s.index)
                    } else {
                        seen_in_other_phases.insert((cell, phase, row.invocation), s.index)
                    };
                    if let Some(other) = before
                        && other != s.index
                    {
                        return Err(refused(format!(
                            "shards {other} and {} both hold cell `{}` {} invocation {} (line {} of `{}`): their slices overlap\n  hint: merge shards of one `--shard K/N` split, each once",
                            s.index,
                            other_cells.text(cell, |c| samples.plan().id(c)),
                            other_phases.text(phase, |p| ["warmup", "measure"][p]),
                            row.invocation,
                            row.shard_line,
                            s.dir.join("runs.csv").display()
                        )));
                    }
                    rows += 1;
                    if checked.is_ok()
                        && let Some(checker) = &mut checker
                    {
                        checked = accept(checker, samples, row.parsed, host, line);
                    }
                    line += row.lines;
                }
                if let Some(refusal) = shard.refused {
                    return Err(refusal);
                }
                if shard.last {
                    break;
                }
            }
        }
        Ok(())
    })?;
    let file = file
        .into_inner()
        .map_err(|e| io_error("write", path, e.into_error()))?;
    file.sync_all().map_err(|e| io_error("sync", path, e))?;
    Ok(Copied { rows, checked })
}

/// The second half of a row's check, in file order: `parsed` (a worker's) accepted after the
/// rows before it, then placed in its cell.
fn accept(
    checker: &mut RowChecker,
    samples: &mut CellSamples,
    parsed: Option<Parsed>,
    host: &[u8],
    line: u64,
) -> Result<(), ResultsError> {
    let Parsed { sample, cell } =
        parsed.expect("a worker parses every row while there is a checker");
    let sample = sample.map_err(|e| at_line(e, line))?;
    let row = checker.accept(sample, Some(host), line)?;
    let cell = cell.map_err(|e| at_line(e, line))?;
    samples.push(cell, row);
    Ok(())
}

/// What worker threads share: the shards and how to parse their rows.
struct Job<'a> {
    shards: &'a [Shard],
    by: ShardBy,
    /// The first shard's columns: every shard's must be these.
    first_header: &'a [String],
    /// Where the host column goes.
    host_at: usize,
    /// `None` when the merged header is no runs.csv's (the calling thread has the error).
    parser: Option<RowChecker>,
    plan: PlanCheck,
}

/// Rows a worker sends in one piece (a few in unit tests, so that their shards take several).
const CHUNK: usize = if cfg!(test) { 3 } else { 8192 };

/// A chunk of a shard's rows as a worker made them: the bytes they take in the merged runs.csv
/// (with the host column), and what the calling thread needs of each.
struct ShardRows {
    bytes: Vec<u8>,
    rows: Vec<ShardRow>,
    /// What ended the shard's rows early: a refusal of the merge (a runs.csv that cannot be
    /// read or has other columns, an invocation that is no number).
    refused: Option<MergeError>,
    /// The shard's last chunk.
    last: bool,
}

impl ShardRows {
    fn new() -> ShardRows {
        ShardRows {
            bytes: Vec::new(),
            rows: Vec::with_capacity(CHUNK),
            refused: None,
            last: false,
        }
    }
}

struct ShardRow {
    cell: Part,
    phase: Part,
    invocation: u64,
    /// Its line in the shard's runs.csv.
    shard_line: u64,
    /// How many lines it takes in the merged file.
    lines: u64,
    parsed: Option<Parsed>,
}

/// A row parsed by a worker: its sample (or what is wrong with its fields) and its cell's place
/// in the run (or why the plan has no such row). Errors name line 0: the calling thread knows
/// the line.
struct Parsed {
    sample: Result<Sample, ResultsError>,
    cell: Result<usize, ResultsError>,
}

impl Parsed {
    fn new(sample: Result<Sample, ResultsError>, plan: &PlanCheck, label: &[u8]) -> Parsed {
        let cell = match &sample {
            Ok(s) => plan.check(0, s, || String::from_utf8_lossy(label).into_owned()),
            // Not looked at: the sample's error comes first.
            Err(_) => Ok(0),
        };
        Parsed { sample, cell }
    }
}

impl Job<'_> {
    /// Shard `k`'s rows, parsed, given to `send` a chunk at a time (the last one says so);
    /// false when `send` refused one.
    fn shard_rows(&self, k: usize, send: &mut dyn FnMut(ShardRows) -> bool) -> bool {
        let mut chunk = ShardRows::new();
        match self.copy_rows(k, &mut chunk, send) {
            Ok(false) => return false,
            Ok(true) => {}
            Err(e) => chunk.refused = Some(e),
        }
        chunk.last = true;
        send(chunk)
    }

    /// [`Job::shard_rows`] but the last chunk, left in `chunk`; Ok(false) when `send` refused
    /// one.
    fn copy_rows(
        &self,
        k: usize,
        chunk: &mut ShardRows,
        send: &mut dyn FnMut(ShardRows) -> bool,
    ) -> Result<bool, MergeError> {
        let s = &self.shards[k];
        let shard_csv = s.dir.join("runs.csv");
        let mut reader = open(&shard_csv)?;
        let theirs = header_of(&mut reader, &shard_csv)?;
        if theirs != self.first_header {
            return Err(refused(format!(
                "`{}` has other columns than shard {}'s runs.csv\n  hint: merge shards of one matrix, run by one version of benchbox",
                shard_csv.display(),
                self.shards[0].index
            )));
        }
        let mut writer = bytes_writer();
        let phase_at = self.host_at - results::FIXED_COLUMNS;
        let host = s.run.host.hostname.as_bytes();
        let mut record = csv::ByteRecord::new();
        let mut merged = csv::ByteRecord::new();
        let mut ids = CellIds::default();
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(&shard_csv, e))?
        {
            let phase = record.get(phase_at).unwrap_or(b"");
            // Every shard ran the warm-ups: the first shard's are kept.
            if self.by == ShardBy::Invocation && phase == b"warmup" && k != 0 {
                continue;
            }
            let shard_line = record.position().map_or(0, |p| p.line());
            let invocation = record.get(phase_at + 1).unwrap_or(b"");
            let Some(number) = std::str::from_utf8(invocation)
                .ok()
                .and_then(|i| i.parse::<u64>().ok())
            else {
                return Err(refused(format!(
                    "line {shard_line} of `{}`: the invocation `{}` is not a number\n  hint: merge the runs.csv files `benchbox run --shard` wrote, unedited",
                    shard_csv.display(),
                    String::from_utf8_lossy(invocation)
                )));
            };
            merged.clear();
            for (i, field) in record.iter().enumerate() {
                if i == self.host_at {
                    merged.push_field(host);
                }
                merged.push_field(field);
            }
            if self.host_at == record.len() {
                merged.push_field(host);
            }
            if chunk.rows.len() == CHUNK {
                chunk.bytes = std::mem::replace(&mut writer, bytes_writer())
                    .into_inner()
                    .map_err(|e| io_error("write", &shard_csv, e.into_error()))?;
                if !send(std::mem::replace(chunk, ShardRows::new())) {
                    return Ok(false);
                }
            }
            writer
                .write_byte_record(&merged)
                .map_err(|e| csv_error(&shard_csv, e))?;
            let cell_id = record.get(0).unwrap_or(b"");
            chunk.rows.push(ShardRow {
                cell: match self.plan.cell(cell_id) {
                    Some(c) => Part::Known(c),
                    None => Part::Other(cell_id.into()),
                },
                phase: match phase {
                    b"warmup" => Part::Known(0),
                    b"measure" => Part::Known(1),
                    other => Part::Other(other.into()),
                },
                invocation: number,
                shard_line,
                lines: lines_of(merged.as_slice()),
                parsed: self.parser.as_ref().map(|p| {
                    Parsed::new(
                        p.parse(&merged, 0, &mut ids),
                        &self.plan,
                        record.get(1).unwrap_or(b""),
                    )
                }),
            });
        }
        chunk.bytes = writer
            .into_inner()
            .map_err(|e| io_error("write", &shard_csv, e.into_error()))?;
        Ok(true)
    }
}

/// A cell or a phase in the overlap check: its place among the known ones (the run's cells;
/// warmup and measure), or, in an edited file, its bytes.
enum Part {
    Known(usize),
    Other(Box<[u8]>),
}

/// The cells and phases no plan knows, numbered after the known ones in order of first sight.
#[derive(Default)]
struct Others(FxHashMap<Box<[u8]>, usize>);

impl Others {
    /// `part`'s number: a known one's place, or `known` plus its order among the others.
    fn number(&mut self, part: Part, known: usize) -> usize {
        match part {
            Part::Known(n) => n,
            Part::Other(bytes) => {
                if let Some(&n) = self.0.get(&bytes) {
                    return n;
                }
                let n = known + self.0.len();
                self.0.insert(bytes, n);
                n
            }
        }
    }

    /// The text of number `n`, a known one's by `known`.
    fn text<'a>(&'a self, n: usize, known: impl FnOnce(usize) -> &'a str) -> String {
        match self.0.iter().find(|(_, m)| **m == n) {
            Some((bytes, _)) => String::from_utf8_lossy(bytes).into_owned(),
            None => known(n).to_string(),
        }
    }
}

/// `e` naming `line` (a worker's errors name line 0).
fn at_line(e: ResultsError, line: u64) -> ResultsError {
    match e {
        ResultsError::Invalid { path, message, .. } => ResultsError::Invalid {
            path,
            line,
            message,
        },
        other => other,
    }
}

fn open(shard_csv: &Path) -> Result<csv::Reader<fs::File>, MergeError> {
    if !shard_csv.exists() {
        return Err(MergeError::Results(ResultsError::NoRunsCsv {
            path: shard_csv.to_path_buf(),
        }));
    }
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(shard_csv)
        .map_err(|e| csv_error(shard_csv, e))
}

fn header_of(reader: &mut csv::Reader<fs::File>, path: &Path) -> Result<Vec<String>, MergeError> {
    Ok(reader
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(String::from)
        .collect())
}

/// The columns of the runs.csv at `path`.
fn read_header(path: &Path) -> Result<Vec<String>, MergeError> {
    header_of(&mut open(path)?, path)
}

/// A writer of records without a header, into memory.
fn bytes_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new())
}

fn csv_error(path: &Path, e: csv::Error) -> MergeError {
    MergeError::Results(ResultsError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// How many lines a record written with these fields takes: its line end, and each `\n` in a
/// field (written inside quotes). `fields`: its fields' bytes, one after the other.
fn lines_of(fields: &[u8]) -> u64 {
    // Almost every record has none: one fast search says so.
    if !fields.contains(&b'\n') {
        return 1;
    }
    1 + fields.iter().filter(|&&b| b == b'\n').count() as u64
}
