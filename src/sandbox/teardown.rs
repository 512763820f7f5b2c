//! The end of an invocation after its measurements are taken: the launcher's exit (once the
//! container's namespaces and mounts are gone), the cgroup's removal and a disk scratch
//! directory's. It costs ~0.7 ms, so it runs on a thread of its own, overlapping the next
//! invocation's container setup; [`Teardowns::wait`] is called before the next workload is
//! told to go (and before a run ends), so a teardown never overlaps a measurement.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nix::unistd::Pid;

use super::cgroup;
use super::supervise::wait_with_rusage;
use super::{Result, SandboxError};

/// What is left of an invocation once its measurements are taken.
pub(super) struct Teardown {
    /// The launcher, when it is still to be reaped (it exits once the namespaces are gone).
    pub(super) launcher: Option<Pid>,
    pub(super) group: Box<dyn cgroup::Group>,
    pub(super) disk_scratch: Option<PathBuf>,
}

impl Teardown {
    pub(super) fn reap_and_remove_group(&mut self) -> Result<()> {
        let reaped = match self.launcher.take() {
            Some(launcher) => wait_with_rusage(launcher).map(|_| ()),
            None => Ok(()),
        };
        let removed = self.group.remove();
        reaped?;
        Ok(removed?)
    }

    pub(super) fn finish(mut self) -> Result<()> {
        let done = self.reap_and_remove_group();
        if let Some(dir) = &self.disk_scratch {
            let _ = fs::remove_dir_all(dir);
        }
        done
    }
}

/// The teardowns a [`super::Sandbox`] has started and not yet waited for: each runs on a
/// thread of its own, and [`Teardowns::wait`] waits until none is running, whichever thread
/// started it (tests share one sandbox between threads).
#[derive(Default)]
pub(super) struct Teardowns {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Notified whenever a teardown ends.
    done: Condvar,
}

/// Teardowns still running, and the errors of those that ended.
#[derive(Default)]
struct Pending {
    running: usize,
    errors: Vec<SandboxError>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finish one started teardown and count it as ended, its error kept for `wait`.
    fn end(&self, teardown: Teardown) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| teardown.finish()))
            .unwrap_or_else(|_| Err(SandboxError::Setup("a teardown thread panicked".into())));
        let mut pending = self.lock();
        pending.running -= 1;
        if let Err(e) = result {
            pending.errors.push(e);
        }
        self.done.notify_all();
    }
}

impl Teardowns {
    /// Finish `teardown` on a thread of its own, or here when no thread can be made (the
    /// count must come back down either way, or `wait` and the sandbox's drop would block
    /// forever).
    pub(super) fn start(&self, teardown: Teardown) {
        self.shared.lock().running += 1;
        // The thread takes the teardown from here; a failed spawn leaves it to run inline.
        let slot = Arc::new(Mutex::new(Some(teardown)));
        let (shared, taken) = (Arc::clone(&self.shared), Arc::clone(&slot));
        let spawned = std::thread::Builder::new()
            .name("benchbox-teardown".into())
            .spawn(move || {
                let teardown = taken.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(teardown) = teardown {
                    shared.end(teardown);
                }
            });
        if spawned.is_err() {
            let teardown = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(teardown) = teardown {
                self.shared.end(teardown);
            }
        }
    }

    /// Wait until every started teardown has ended: no process, mount, cgroup or scratch
    /// directory of its invocation left. The first error of a teardown (a cgroup that would not
    /// go away) is returned, once.
    pub(super) fn wait(&self) -> Result<()> {
        let mut pending = self.shared.lock();
        while pending.running > 0 {
            pending = self
                .shared
                .done
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        match pending.errors.drain(..).next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
