//! Exit codes: documented in `--help` and the README, and never renumbered.

/// Everything went as asked.
pub const OK: i32 = 0;
/// A bug or an unexpected system error.
pub const INTERNAL: i32 = 1;
/// Bad usage or an invalid matrix file.
pub const USAGE: i32 = 2;
/// This host cannot isolate: not root, a missing cgroup controller, no overlayfs, a kernel
/// without seccomp filters or the mount API.
pub const ISOLATION: i32 = 3;
/// An image could not be resolved.
pub const IMAGE: i32 = 4;
/// A workload failed (non-zero exit, OOM kill, timeout, could not start) or an invocation is
/// suspect (its counters cannot be trusted), and the matrix does not allow failures.
pub const WORKLOAD_FAILED: i32 = 5;
/// `compare` had nothing it could honestly compare: no pair of cells, a side that is not
/// `complete` (without `--allow-partial`), or a compared cell with no `ok` invocation on a side.
pub const NOTHING_COMPARABLE: i32 = 6;
/// The run directory is in use: another benchbox holds its lock (a run, a `--resume`, a `report`).
pub const IN_USE: i32 = 7;
/// `doctor --strict` found noise (a noise check graded `warn` or `fail`) and nothing blocking.
pub const NOISY: i32 = 8;
/// `compare` found a regression; `history --check` one that is not accepted.
pub const REGRESSION: i32 = 10;
/// Interrupted by Ctrl-C (128 + SIGINT); the results so far are kept and can be resumed.
pub const INTERRUPTED: i32 = 130;

/// The table printed at the end of `--help`.
pub const HELP_TABLE: &str = "\
Exit codes:
  0    ok
  1    internal error
  2    bad usage or an invalid matrix file
  3    this host cannot isolate (not root, missing cgroup controller, no overlayfs,
       no seccomp filters or mount API; a shard not given the CPUs the matrix pins)
  4    an image could not be resolved
  5    a workload failed (non-zero exit, OOM, timeout, cannot start) or an invocation is
       suspect (counters that cannot be trusted), and failures are not allowed
  6    compare had nothing comparable (no pair of cells; a side not complete, unless
       --allow-partial; a compared cell with no ok invocation on a side)
  7    the run directory is in use (another benchbox run, --resume or report holds its lock)
  8    doctor --strict found noise (a noise check is warn or fail)
  10   compare found a regression; history --check found one not accepted at the newest run
  130  interrupted (Ctrl-C); resume with --resume";
