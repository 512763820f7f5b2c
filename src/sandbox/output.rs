//! The workload's output: two pipes drained into their log files by a thread of benchbox
//! (outside the container's cgroup, so the logs are not charged to the workload), each log
//! kept to at most `max_log` bytes and marked where it was cut.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{Result, SandboxError};

pub(super) fn open_log(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Never through a symlink: benchbox writes here as root.
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| SandboxError::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        })
}

/// The start of the line appended to a log cut at `max_log`: "[benchbox: log truncated at
/// max-log (16 MiB); 123 more bytes were read and discarded]".
pub const TRUNCATION_MARKER: &str = "[benchbox: log truncated at max-log";

/// What a log holds of the workload's output: `text` without the marker line a truncated log
/// ends with (metric patterns see only what the workload wrote).
pub fn kept_output(text: &str, truncated: bool) -> &str {
    if !truncated {
        return text;
    }
    match text.rfind(TRUNCATION_MARKER) {
        Some(at) => {
            let kept = &text[..at];
            // The newline the marker was given to start its own line.
            kept.strip_suffix('\n').unwrap_or(kept)
        }
        None => text,
    }
}

/// One stream on its way to its log.
struct Sink {
    file: File,
    path: PathBuf,
    /// Bytes written to the log.
    kept: u64,
    /// Bytes read past `max_log` and dropped.
    discarded: u64,
    last_byte: u8,
    /// A write failed: nothing more is written (the stream is still drained).
    failed: bool,
}

/// What became of the workload's output.
#[derive(Debug, Default)]
pub(super) struct Drained {
    /// stdout, stderr: more than `max_log` bytes came, the rest was discarded.
    pub(super) truncated: [bool; 2],
    /// The first write to a log that failed.
    pub(super) error: Option<SandboxError>,
}

impl Sink {
    fn new(file: File, path: &Path) -> Sink {
        Sink {
            file,
            path: path.to_path_buf(),
            kept: 0,
            discarded: 0,
            last_byte: b'\n',
            failed: false,
        }
    }

    fn write(&mut self, bytes: &[u8], error: &mut Option<SandboxError>) {
        if let Err(source) = self.file.write_all(bytes) {
            self.failed = true;
            error.get_or_insert(SandboxError::Output {
                path: self.path.clone(),
                source,
            });
        }
    }

    /// Keep what fits under `max_log`, count the rest.
    fn take(&mut self, data: &[u8], max_log: Option<u64>, error: &mut Option<SandboxError>) {
        let room = max_log.map_or(data.len() as u64, |m| m.saturating_sub(self.kept));
        let keep = (data.len() as u64).min(room) as usize;
        self.discarded += (data.len() - keep) as u64;
        if keep == 0 || self.failed {
            return;
        }
        self.write(&data[..keep], error);
        self.kept += keep as u64;
        self.last_byte = data[keep - 1];
    }

    /// At the stream's end: the marker line, when something was discarded.
    fn close(&mut self, max_log: Option<u64>, error: &mut Option<SandboxError>) -> bool {
        if self.discarded == 0 {
            return false;
        }
        if !self.failed {
            let marker = format!(
                "{}{TRUNCATION_MARKER} ({}); {} more bytes were read and discarded]\n",
                if self.last_byte == b'\n' { "" } else { "\n" },
                crate::spec::units::format_size(max_log.unwrap_or(self.kept)),
                self.discarded
            );
            self.write(marker.as_bytes(), error);
        }
        true
    }
}

/// Copy both pipes into their log files until both reach EOF, keeping at most `max_log` bytes
/// of each. Neither the cap nor a write that fails (a full disk) stops the draining: the
/// workload must never block on, or be failed by, its output. The first failed write is
/// returned: the invocation's log is incomplete, which is benchbox's failure.
pub(super) fn drain(
    logs: [(OwnedFd, File); 2],
    paths: [&Path; 2],
    max_log: Option<u64>,
) -> Drained {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let [(out_r, out_file), (err_r, err_file)] = logs;
    let mut sinks = [Sink::new(out_file, paths[0]), Sink::new(err_file, paths[1])];
    let mut drained = Drained::default();
    let mut open = [true, true];
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(|&o| o) {
        let mut fds = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (i, fd) in [&out_r, &err_r].into_iter().enumerate() {
            if open[i] {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        for i in ready {
            let fd = if i == 0 { &out_r } else { &err_r };
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => open[i] = false,
                Ok(n) => sinks[i].take(&buf[..n], max_log, &mut drained.error),
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(_) => open[i] = false,
            }
        }
    }
    for (i, sink) in sinks.iter_mut().enumerate() {
        drained.truncated[i] = sink.close(max_log, &mut drained.error);
    }
    drained
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::pipe2;

    /// Drain two pipes fed by threads writing `sizes` bytes ("x", a newline every 100) into
    /// files in `dir` (or `/dev/full`); returns what the drain reported and the files' bytes.
    fn drain_through(
        sizes: [usize; 2],
        max_log: Option<u64>,
        full: bool,
    ) -> (Drained, [Vec<u8>; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let paths = if full {
            [PathBuf::from("/dev/full"), PathBuf::from("/dev/full")]
        } else {
            [dir.path().join("out"), dir.path().join("err")]
        };
        let mut logs = Vec::new();
        let mut writers = Vec::new();
        for (path, size) in paths.iter().zip(sizes) {
            let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
            let file = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .or_else(|_| File::create(path))
                .unwrap();
            logs.push((r, file));
            writers.push(std::thread::spawn(move || {
                let mut w = File::from(w);
                let line = [b"x".repeat(99), b"\n".to_vec()].concat();
                let chunk = line.repeat(640);
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    w.write_all(&chunk[..n]).unwrap();
                    left -= n;
                }
            }));
        }
        let [out, err]: [(OwnedFd, File); 2] = logs.try_into().unwrap();
        let drained = drain([out, err], [&paths[0], &paths[1]], max_log);
        for w in writers {
            w.join()
                .expect("the writer never blocks for good, nor fails");
        }
        let read = |p: &Path| {
            if full {
                Vec::new()
            } else {
                fs::read(p).unwrap()
            }
        };
        (drained, [read(&paths[0]), read(&paths[1])])
    }

    #[test]
    fn the_drain_keeps_max_log_bytes_marks_the_cut_and_reads_everything() {
        let mib = 1usize << 20;
        let (drained, [out, err]) = drain_through([50 * mib + 7, 1000], Some(mib as u64), false);
        assert!(drained.error.is_none());
        assert_eq!(drained.truncated, [true, false]);
        assert_eq!(err.len(), 1000, "under the cap: kept whole, no marker");
        let text = String::from_utf8(out).unwrap();
        let (kept, marker) = text.split_at(text.rfind(TRUNCATION_MARKER).unwrap());
        // 1 MiB does not end on a line: the marker starts its own.
        assert_eq!(kept.len(), mib + 1);
        assert!(kept.ends_with("x\n"));
        assert_eq!(
            marker,
            format!(
                "{TRUNCATION_MARKER} (1 MiB); {} more bytes were read and discarded]\n",
                49 * mib + 7
            )
        );
        assert_eq!(kept_output(&text, true), &kept[..mib]);
        assert_eq!(kept_output(&text, false), text);
        // Exactly at the cap: nothing discarded, nothing marked.
        let (drained, [out, _]) = drain_through([mib, 0], Some(mib as u64), false);
        assert_eq!((drained.truncated, out.len()), ([false, false], mib));
        // No cap.
        let (drained, [out, _]) = drain_through([3 * mib, 0], None, false);
        assert_eq!((drained.truncated, out.len()), ([false, false], 3 * mib));
    }

    #[test]
    fn a_log_that_cannot_be_written_is_reported_and_the_pipes_still_drain() {
        // /dev/full: every write fails with ENOSPC, as on a full output disk.
        let (drained, _) = drain_through([4 << 20, 1 << 20], None, true);
        match drained.error {
            Some(SandboxError::Output { path, source }) => {
                assert_eq!(path, Path::new("/dev/full"));
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
            }
            other => panic!("{other:?}"),
        }
    }
}
