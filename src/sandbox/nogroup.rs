//! The stand-in for an invocation's cgroup when there is none: a rootless run without a
//! delegated cgroup v2 subtree (or on cgroup v1, which cannot delegate). Nothing is limited or
//! counted here; the invocation's CPU time and peak memory come from the `wait` rusage of the
//! workload's tree instead (see `supervise`), and a timeout or Ctrl-C kills the container
//! through its launcher (its init dies with it, and with init every process of its pid
//! namespace).

use std::path::PathBuf;

use super::cgroup::{Applied, Counters, Group, Result};

/// No cgroup: no files to join, nothing to show at /sys/fs/cgroup (an empty read-only
/// directory), no limits applied (`applied` is empty), no counters.
#[derive(Debug)]
pub struct NoGroup;

impl Group for NoGroup {
    fn dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn container_view(&self) -> Vec<(String, PathBuf)> {
        Vec::new()
    }
    fn procs_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn birth_dir(&self) -> Option<PathBuf> {
        None
    }
    fn applied(&self) -> Applied {
        Applied::default()
    }
    fn reset_peak(&self) -> Result<()> {
        Ok(())
    }
    fn counters(&self) -> Result<Counters> {
        Ok(Counters::default())
    }
    fn memory_current(&self) -> Option<u64> {
        None
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
    fn kill_all(&self) -> Result<()> {
        Ok(())
    }
    fn remove(&self) -> Result<()> {
        Ok(())
    }
}
