//! The files of a run directory other than runs.csv and results.json: the directory itself and
//! `latest`, atomic writes, the logs and their spool files, and the reserve of disk space.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{Result, ResultsError, io_err};

/// Write `bytes` to `path` atomically: a temp file in the same directory, synced, renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(io_err("create a temp file in", dir))?;
    tmp.write_all(bytes).map_err(io_err("write", path))?;
    tmp.as_file().sync_data().map_err(io_err("sync", path))?;
    // tempfile creates 0600; results are meant to be read by others (CI artifacts, web servers).
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io_err("chmod", path))?;
    tmp.persist(path).map_err(|e| ResultsError::Io {
        action: "replace",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// A new run directory `<out>/<name>/<run-id>`; the id is the UTC start time, made unique.
pub fn create_run_dir(out: &Path, name: &str) -> Result<(String, PathBuf)> {
    create_run_dir_suffixed(out, name, "")
}

/// [`create_run_dir`], the id ending in `suffix` (a shard's `-shard-K`).
pub fn create_run_dir_suffixed(out: &Path, name: &str, suffix: &str) -> Result<(String, PathBuf)> {
    let base = out.join(name);
    fs::create_dir_all(&base).map_err(io_err("create", &base))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for n in 0..1000 {
        let id = if n == 0 {
            format!("{stamp}{suffix}")
        } else {
            format!("{stamp}-{n}{suffix}")
        };
        let dir = base.join(&id);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
    }
    Err(ResultsError::Io {
        action: "create",
        path: base,
        source: io::ErrorKind::AlreadyExists.into(),
    })
}

/// Point `<run>/../latest` at `run` (replacing the old link atomically).
pub fn update_latest(run_dir: &Path) -> Result<()> {
    let Some(parent) = run_dir.parent() else {
        return Ok(());
    };
    let Some(id) = run_dir.file_name() else {
        return Ok(());
    };
    let tmp = parent.join(format!(".latest-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(id, &tmp).map_err(io_err("link", &tmp))?;
    fs::rename(&tmp, parent.join("latest")).map_err(io_err("link", parent))
}

/// `logs/<cell slug>/<phase>-<index>.{out,err}` (the directory is made by [`keep_log`]).
pub fn log_paths(run_dir: &Path, slug: &str, phase: &str, index: u32) -> (PathBuf, PathBuf) {
    let dir = run_dir.join("logs").join(slug);
    (
        dir.join(format!("{phase}-{index}.out")),
        dir.join(format!("{phase}-{index}.err")),
    )
}

/// An invocation's memory use over time, beside its stdout log:
/// `logs/<cell slug>/<phase>-<index>.memory.csv`, rows `t_s,memory_bytes`.
pub fn memory_timeline_path(run_dir: &Path, slug: &str, phase: &str, index: u32) -> PathBuf {
    log_paths(run_dir, slug, phase, index)
        .0
        .with_extension("memory.csv")
}

/// The most invocations per cell whose memory timelines [`memory_timelines`] reads: enough for
/// a band over invocations, and a bounded number of files read at the end of a long run.
pub const MAX_MEMORY_TIMELINES: usize = 500;

/// Per cell of `run` (in its order), the memory timelines of its measured invocations with
/// status `ok`, read from their `memory.csv` files: all of them up to
/// [`MAX_MEMORY_TIMELINES`], else that many evenly spread over the cell's invocations (the
/// same ones every time). An invocation without a file (nothing sampled, logs removed) or with
/// an unreadable one is left out; a row that does not parse ends its file.
pub fn memory_timelines(run_dir: &Path, run: &super::RunResults) -> Vec<Vec<Vec<(f64, u64)>>> {
    run.cells
        .iter()
        .map(|cell| {
            let indices: Vec<u32> = cell
                .samples
                .iter()
                .filter(|s| s.counts_toward_statistics())
                .map(|s| s.index)
                .collect();
            spread(&indices, MAX_MEMORY_TIMELINES)
                .filter_map(|index| {
                    let path = memory_timeline_path(run_dir, &cell.slug, "measure", index);
                    let text = fs::read_to_string(path).ok()?;
                    let timeline = parse_memory_timeline(&text);
                    (!timeline.is_empty()).then_some(timeline)
                })
                .collect()
        })
        .collect()
}

/// At most `most` of `items`, evenly spread (the first always among them), in order.
fn spread(items: &[u32], most: usize) -> impl Iterator<Item = u32> + '_ {
    let n = items.len();
    let keep = n.min(most);
    (0..keep).map(move |k| items[k * n / keep.max(1)])
}

/// The rows of a `memory.csv` (after its header) up to the first that does not parse.
fn parse_memory_timeline(text: &str) -> Vec<(f64, u64)> {
    text.lines()
        .skip(1)
        .map_while(|line| {
            let (t, bytes) = line.split_once(',')?;
            let t: f64 = t.parse().ok().filter(|t: &f64| t.is_finite())?;
            Some((t, bytes.parse().ok()?))
        })
        .collect()
}

/// The spool files every invocation's stdout and stderr go to first: `logs/.stdout.spool`
/// and `logs/.stderr.spool` (in the run directory, so a rename moves them to their logs).
pub fn spool_paths(run_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = run_dir.join("logs");
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    Ok((dir.join(".stdout.spool"), dir.join(".stderr.spool")))
}

/// After an invocation: a spool file that holds output becomes the log at `log` (in a
/// directory made as needed); an empty one stays for the next invocation.
pub fn keep_log(spool: &Path, log: &Path) -> Result<()> {
    if fs::metadata(spool).map_or(0, |m| m.len()) == 0 {
        return Ok(());
    }
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    fs::rename(spool, log).map_err(io_err("move a log to", log))
}

/// At the end of a run: the spool files are no longer needed.
pub fn remove_spools(run_dir: &Path) {
    if let Ok((out, err)) = spool_paths(run_dir) {
        let _ = fs::remove_file(out);
        let _ = fs::remove_file(err);
    }
}

/// Room kept on the output disk so that a run can always record how it ended: a file of
/// allocated blocks (`.reserve` in the run directory) as large as the next `results.json`
/// could be, released right before that file is written for the last time (at the end of the
/// run, or when it stops on an error). Without it a full disk would leave `results.json`
/// saying `running`. A file system that cannot preallocate gets no reserve.
///
/// results.json holds no samples, so it does not grow with the invocations: between two
/// writes it grows only by a few counters and limits per invocation ([`Self::PER_INVOCATION`]),
/// a cell's memory timeline replaced by a longer one ([`Self::PER_TIMELINE_POINT`] per point),
/// and at the end a failure's reason ([`Self::SLACK`]).
pub struct Reserve {
    path: PathBuf,
    file: Option<File>,
    size: u64,
}

impl Reserve {
    pub const FILE: &'static str = ".reserve";
    /// Room per invocation since the last write: its cell's counts of failures and suspect
    /// invocations, and its applied limits, which it may set for the first time.
    pub const PER_INVOCATION: u64 = 512;
    /// Room per point of a memory timeline that replaces its cell's last one: a pair of
    /// numbers in pretty JSON (about 60 bytes for a time and a byte count).
    pub const PER_TIMELINE_POINT: u64 = 96;
    /// Room for a failure's reason and setup errors.
    pub const SLACK: u64 = 16 << 10;
    const STEP: u64 = 64 << 10;

    pub fn new(run_dir: &Path) -> Reserve {
        Reserve {
            path: run_dir.join(Self::FILE),
            file: None,
            size: 0,
        }
    }

    /// Grow the reserve to at least `bytes` (in steps of 64 KiB, so this is rarely a system
    /// call). A full disk is an error: the run must stop while it can still say why.
    pub fn ensure(&mut self, bytes: u64) -> Result<()> {
        if bytes <= self.size {
            return Ok(());
        }
        let size = bytes.div_ceil(Self::STEP) * Self::STEP;
        if self.file.is_none() {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(io_err("create", &self.path))?;
            self.file = Some(file);
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        use std::os::fd::AsRawFd;
        match nix::fcntl::fallocate(
            file.as_raw_fd(),
            nix::fcntl::FallocateFlags::empty(),
            0,
            size as libc::off_t,
        ) {
            Ok(()) => {
                self.size = size;
                Ok(())
            }
            // This file system cannot preallocate: no reserve, as before it existed.
            Err(nix::Error::EOPNOTSUPP) => {
                self.release();
                self.size = u64::MAX;
                Ok(())
            }
            Err(e) => Err(ResultsError::Io {
                action: "reserve room for results.json in",
                path: self.path.clone(),
                source: e.into(),
            }),
        }
    }

    /// Give the room back (before the last write of results.json).
    pub fn release(&mut self) {
        self.file = None;
        self.size = 0;
        let _ = fs::remove_file(&self.path);
    }
}

/// Last resort when even the reserve could not make room for results.json: its `"status":
/// "running"` overwritten in place with `"status": "failed" ` (same length, so no new block
/// is needed). The reason is then only in benchbox's error message.
pub fn mark_failed_in_place(run_dir: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let path = run_dir.join("results.json");
    let text = fs::read(&path).map_err(io_err("read", &path))?;
    const RUNNING: &[u8] = br#""status": "running""#;
    const FAILED: &[u8] = br#""status": "failed" "#;
    let at = text
        .windows(RUNNING.len())
        .position(|w| w == RUNNING)
        .ok_or_else(|| ResultsError::Csv {
            path: path.clone(),
            message: "no `\"status\": \"running\"` to mark failed".into(),
        })?;
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    file.write_all_at(FAILED, at as u64)
        .and_then(|()| file.sync_data())
        .map_err(io_err("write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_bound_of_timelines_evenly_spread_and_the_same_each_time() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(spread(&items, 20).collect::<Vec<_>>(), items);
        assert_eq!(spread(&items, 5).collect::<Vec<_>>(), [0, 2, 4, 6, 8]);
        assert_eq!(spread(&[], 5).count(), 0);
        let many: Vec<u32> = (0..10_000).collect();
        let kept: Vec<u32> = spread(&many, MAX_MEMORY_TIMELINES).collect();
        assert_eq!(kept.len(), MAX_MEMORY_TIMELINES);
        assert_eq!((kept[0], kept[1], kept[499]), (0, 20, 9_980));
    }

    #[test]
    fn a_memory_csv_is_read_up_to_its_first_bad_row() {
        let text = "t_s,memory_bytes\n0.000,100\n0.100,200\n0.2x,300\n0.300,400\n";
        assert_eq!(parse_memory_timeline(text), [(0.0, 100), (0.1, 200)]);
        assert!(parse_memory_timeline("t_s,memory_bytes\n").is_empty());
        assert!(parse_memory_timeline("t_s,memory_bytes\nNaN,5\n").is_empty());
    }

    #[test]
    fn the_reserve_grows_in_steps_and_is_released() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(Reserve::FILE);
        let mut reserve = Reserve::new(tmp.path());
        reserve.ensure(1).unwrap();
        let allocated = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(p).unwrap().blocks() * 512
        };
        assert_eq!(fs::metadata(&path).unwrap().len(), 64 << 10);
        assert!(allocated(&path) >= 64 << 10, "blocks, not a sparse file");
        reserve.ensure(64 << 10).unwrap();
        reserve.ensure((64 << 10) + 1).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 128 << 10);
        reserve.release();
        assert!(!path.exists());
    }

    #[test]
    fn a_run_is_marked_failed_in_place_as_a_last_resort() {
        let tmp = tempfile::tempdir().unwrap();
        let json = "{\n  \"run_id\": \"x\",\n  \"status\": \"running\",\n  \"cells\": []\n}";
        fs::write(tmp.path().join("results.json"), json).unwrap();
        mark_failed_in_place(tmp.path()).unwrap();
        let text = fs::read_to_string(tmp.path().join("results.json")).unwrap();
        assert_eq!(text.len(), json.len());
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["status"], "failed");
        assert!(
            mark_failed_in_place(tmp.path()).is_err(),
            "nothing left to mark"
        );
    }

    #[test]
    fn atomic_write_replaces_and_latest_points_at_the_newest_run() {
        let tmp = tempfile::tempdir().unwrap();
        let (id1, dir1) = create_run_dir(tmp.path(), "m").unwrap();
        let (id2, dir2) = create_run_dir(tmp.path(), "m").unwrap();
        assert_ne!(id1, id2);
        update_latest(&dir1).unwrap();
        update_latest(&dir2).unwrap();
        assert_eq!(
            fs::read_link(tmp.path().join("m/latest")).unwrap(),
            PathBuf::from(&id2)
        );
        write_atomic(&dir2.join("x.json"), b"1").unwrap();
        write_atomic(&dir2.join("x.json"), b"2").unwrap();
        assert_eq!(fs::read_to_string(dir2.join("x.json")).unwrap(), "2");
        assert_eq!(fs::read_dir(&dir2).unwrap().count(), 1, "no temp file left");
    }
}
