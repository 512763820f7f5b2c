//! `results.json`: the document ([`RunResults`], [`CellResult`]), its one writer and its one
//! reader.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Planned, Result, ResultsError, Sample, io_err, write_atomic};
use crate::plan::Phase;
use crate::sandbox::Applied;
use crate::status::Status;

/// Per-cell part of results.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CellResult {
    pub id: String,
    pub label: String,
    pub slug: String,
    pub axes: Vec<(String, serde_json::Value)>,
    /// Limits as read back from the kernel (from the cell's latest invocation).
    pub applied_limits: Option<Applied>,
    /// What the workload was allowed: capabilities kept, seccomp, privileged. `None` only in
    /// results.json files written before benchbox recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<crate::sandbox::security::Effective>,
    pub setup_error: Option<String>,
    /// The invocations the run planned for this cell (after `--runs` and `--warmup`): what
    /// "n of N" counts against. `None` for a cell `--only` left out of every run of the
    /// directory (and in results.json files written before benchbox recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<Planned>,
    /// Memory use over time (seconds since the exec, bytes) of the cell's last measured
    /// invocation whose status is `ok`; every invocation's is in `logs/<cell>/<phase>-<n>.memory.csv`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_timeline: Vec<(f64, u64)>,
    pub samples: Vec<Sample>,
    /// Per metric (`wall_s`, `cpu_s`, `peak_memory_bytes`, custom...), over the measured
    /// invocations whose status is `ok`.
    pub summary: BTreeMap<String, crate::stats::Summary>,
    /// Measured invocations that failed (excluded from the statistics).
    pub failures: usize,
    /// Measured invocations whose status is `suspect` (excluded from the statistics).
    #[serde(default)]
    pub suspect: usize,
    pub warnings: Vec<String>,
}

impl CellResult {
    /// "cell `X` runs with ...: its workload can ..." when the cell's recorded policy loosens
    /// the defaults.
    pub fn security_warning(&self) -> Option<String> {
        self.security.as_ref()?.policy().warning(&self.label)
    }

    /// Measured invocations that failed (any status but `ok` and `suspect`).
    pub fn count_failures(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.phase == Phase::Measure && s.status.is_failure())
            .count()
    }

    /// Measured invocations in runs.csv, whatever their status.
    pub fn count_measured(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.phase == Phase::Measure)
            .count()
    }

    /// "7" when the plan had 7 measured invocations (or is unknown), "5 of 7" when it had more:
    /// `n` is a count of measured invocations (those in runs.csv, or those that count toward the
    /// statistics).
    pub fn n_of_planned(&self, n: usize) -> String {
        match self.planned {
            Some(p) if n < p.runs as usize => format!("{n} of {}", p.runs),
            _ => n.to_string(),
        }
    }

    /// Measured invocations whose status is `suspect`.
    pub fn count_suspect(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.phase == Phase::Measure && s.status == Status::Suspect)
            .count()
    }
}

/// The whole of results.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub run_id: String,
    /// `running`, `complete`, `interrupted`, or `failed` (benchbox itself could not go on, for
    /// example on a full output disk: see `reason`).
    pub status: String,
    /// Why a `failed` run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub command_line: Vec<String>,
    pub host: crate::host::HostInfo,
    /// How the run was isolated: root or rootless, and with which limits (see
    /// [`crate::mode`]). Absent from files written before benchbox recorded it (runs as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<crate::mode::Isolation>,
    pub matrix_name: String,
    pub matrix_path: String,
    pub matrix_sha256: String,
    pub seed: u64,
    pub order: String,
    pub stats: crate::stats::StatsOptions,
    /// The expanded plan, as `benchbox plan --json` prints it.
    pub plan: serde_json::Value,
    pub cells: Vec<CellResult>,
    pub warnings: Vec<String>,
}

impl RunResults {
    /// Write results.json atomically; returns its size.
    pub fn write(&self, run_dir: &Path) -> Result<u64> {
        let json = serde_json::to_vec_pretty(self).expect("results serialize");
        write_atomic(&run_dir.join("results.json"), &json)?;
        Ok(json.len() as u64)
    }

    pub fn read(run_dir: &Path) -> Result<RunResults> {
        let path = run_dir.join("results.json");
        let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
        serde_json::from_str(&text).map_err(|e| ResultsError::Csv {
            path,
            message: e.to_string(),
        })
    }
}
