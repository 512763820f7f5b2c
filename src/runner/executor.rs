//! The seam between the runner and the sandbox: what the runner needs of whatever runs its
//! invocations. A run on this host uses [`Sandbox`]; tests use a fake that writes the output
//! spools and returns scripted outcomes, so the runner's scheduling and recording (resume,
//! interruption, setup failures, results.json) are tested without root.

use std::sync::atomic::AtomicBool;

use crate::sandbox::{Invocation, Outcome, Sandbox, SandboxError, Watcher};

/// Runs a run's invocations, one per call, in order.
pub trait Executor {
    /// Run `inv` to its end (or its timeout, or until `cancel` is set: then the outcome is
    /// `interrupted`). Its stdout and stderr go to the spool files `inv` names; with
    /// `keep_upper` (a setup step), a successful run leaves its writable layer there. An error
    /// of the container before the command started (`Setup`, `Exec`) is the invocation's
    /// (`start-failed`); any other error is benchbox's own and stops the run.
    fn execute(&mut self, inv: &Invocation, cancel: &AtomicBool) -> Result<Outcome, SandboxError>;

    /// [`Executor::execute`], telling `watcher` when the workload's measured time starts and
    /// ends (a cell's services are measured over it). By default, just before and just after
    /// the whole invocation: an executor that knows the moments better says so.
    fn execute_watched(
        &mut self,
        inv: &Invocation,
        cancel: &AtomicBool,
        watcher: &dyn Watcher,
    ) -> Result<Outcome, SandboxError> {
        watcher.exec();
        let executed = self.execute(inv, cancel);
        watcher.exited();
        executed
    }

    /// Wait until everything of the invocations that ended is gone (before the run's last
    /// writes, and before it is marked failed).
    fn settle(&mut self) -> Result<(), SandboxError>;
}

impl Executor for Sandbox {
    fn execute(&mut self, inv: &Invocation, cancel: &AtomicBool) -> Result<Outcome, SandboxError> {
        self.run(inv, cancel)
    }

    fn execute_watched(
        &mut self,
        inv: &Invocation,
        cancel: &AtomicBool,
        watcher: &dyn Watcher,
    ) -> Result<Outcome, SandboxError> {
        self.run_watched(inv, cancel, watcher)
    }

    fn settle(&mut self) -> Result<(), SandboxError> {
        self.wait_for_cleanup()
    }
}
