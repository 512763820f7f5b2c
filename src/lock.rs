//! One writer per run directory: an exclusive `flock` on `<run>/.lock`.
//!
//! `run` (a new run, or `--resume`) holds it from the moment the directory is chosen until the
//! process ends, and `report` holds it while it rewrites the run's files. A second writer is
//! refused at once with exit 7 ([`crate::exit::IN_USE`]): two writers would run the same
//! invocations twice and interleave their rows in `runs.csv`. Readers (`compare`) never take
//! it; they only ask whether someone holds it ([`holder`]), which means the run is still going.
//!
//! Why `flock`: the kernel releases it when the holder dies, even by SIGKILL, so a crash never
//! leaves a stale lock behind and there is nothing to clean up. The lock file itself is never
//! removed (removing it would let a second process lock a fresh inode while the first still
//! holds the old one). It holds the holder's pid and command, for the message a refused
//! process prints. The lock belongs to the open file description, which benchbox opens
//! close-on-exec; the sandbox closes every inherited descriptor in its container's init, so no
//! workload can keep a run locked.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file inside a run directory.
pub const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the run directory `{}` is in use: {holder} holds its lock\n  hint: wait until it finishes; two writers would run invocations twice and mix their rows in runs.csv",
        dir.display()
    )]
    InUse { dir: PathBuf, holder: String },
    #[error("cannot lock `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on a run directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
}

impl RunLock {
    /// Lock `dir` for `purpose` (`run`, `report`), or say who holds it. Never waits.
    pub fn acquire(dir: &Path, purpose: &str) -> Result<RunLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                // Who holds it, for whoever is refused next. A failure here costs only that.
                let _ = lock.set_len(0).and_then(|_| {
                    lock.rewind()?;
                    writeln!(lock, "{} {purpose}", std::process::id())
                });
                Ok(RunLock { _lock: lock })
            }
            Err((file, Errno::EWOULDBLOCK)) => Err(LockError::InUse {
                dir: dir.to_path_buf(),
                holder: describe_holder(file),
            }),
            Err((_, e)) => Err(io(std::io::Error::from(e))),
        }
    }
}

/// Who holds the lock of the run in `dir`, if anyone ("benchbox run (pid 1234)"). Takes no
/// lock: a shared lock is tried and dropped at once. A run without a lock file (written by an
/// older benchbox) or whose lock file cannot be opened is not held.
pub fn holder(dir: &Path) -> Option<String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err((file, Errno::EWOULDBLOCK)) => Some(describe_holder(file)),
        Err(_) => None,
    }
}

/// "benchbox run (pid 1234)" from the lock file, when its pid is alive; "another process"
/// otherwise (a reader probing the lock, or a file from a process that has died since).
fn describe_holder(mut file: File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut words = text.split_whitespace();
    match (
        words.next().and_then(|p| p.parse::<u32>().ok()),
        words.next(),
    ) {
        (Some(pid), Some(purpose)) if Path::new(&format!("/proc/{pid}")).exists() => {
            format!("benchbox {purpose} (pid {pid})")
        }
        _ => "another process".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_readers_see_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(holder(tmp.path()), None, "no lock file: not held");
        let lock = RunLock::acquire(tmp.path(), "run").unwrap();
        let me = format!("benchbox run (pid {})", std::process::id());
        assert_eq!(holder(tmp.path()).as_deref(), Some(me.as_str()));
        // flock is per open file description: a second acquire, even in this process, fails.
        let e = RunLock::acquire(tmp.path(), "report").unwrap_err();
        assert!(matches!(e, LockError::InUse { .. }), "{e}");
        assert!(
            e.to_string().starts_with(&format!(
                "the run directory `{}` is in use: {me} holds its lock\n  hint: wait",
                tmp.path().display()
            )),
            "{e}"
        );
        drop(lock);
        assert_eq!(holder(tmp.path()), None);
        let again = RunLock::acquire(tmp.path(), "report").unwrap();
        assert!(
            holder(tmp.path())
                .unwrap()
                .starts_with("benchbox report (pid ")
        );
        drop(again);
    }
}
