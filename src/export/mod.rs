//! `benchbox export`: what runs a matrix's shards on an engine that exists, as text. Pure: the
//! matrix and the options in, a Slurm batch script (`slurm`), a Kubernetes Indexed Job
//! (`k8s`) or a GitHub Actions workflow (`github`) out. benchbox schedules nothing itself.

mod github;
mod k8s;
mod slurm;

use crate::plan::ShardBy;
use crate::spec::{CpuSet, Matrix};

/// What every engine's export is made from.
pub struct Export<'a> {
    pub matrix: &'a Matrix,
    /// The matrix file as the shards name it (relative to where they start).
    pub file: String,
    pub shards: u32,
    pub by: ShardBy,
    /// The results directory every shard and the merge write into.
    pub out: String,
}

/// The engine and its own options.
pub enum Engine {
    Slurm {
        partition: Option<String>,
        time: Option<String>,
        /// The benchbox the nodes run.
        benchbox: String,
    },
    K8s {
        image: String,
        /// A PersistentVolumeClaim for the results; `None`: an emptyDir.
        pvc: Option<String>,
    },
    Github {
        runs_on: String,
    },
}

/// The export's text, or why it cannot be made.
pub fn render(e: &Export, engine: &Engine) -> Result<String, String> {
    match engine {
        Engine::Slurm {
            partition,
            time,
            benchbox,
        } => slurm::render(e, partition.as_deref(), time.as_deref(), benchbox),
        Engine::K8s { image, pvc } => Ok(k8s::render(e, image, pvc.as_deref())),
        Engine::Github { runs_on } => Ok(github::render(e, runs_on)),
    }
}

/// What one shard needs of the machine it runs on.
pub(crate) struct Needs {
    /// The CPUs the cells pin (`limits.cpus`), if any: they must be in the shard's allocation.
    pub pinned: Option<CpuSet>,
    /// Whole CPUs for the largest cell: its pinned CPUs, else its CPU quota rounded up, else 1.
    pub cpus: u32,
    /// The largest memory limit of a cell, in bytes, if any.
    pub memory: Option<u64>,
}

impl Export<'_> {
    pub(crate) fn needs(&self) -> Needs {
        let mut pinned: Vec<u32> = Vec::new();
        let mut cpus = 1u32;
        let mut memory: Option<u64> = None;
        for cell in &self.matrix.cells {
            let l = &cell.limits;
            if let Some(set) = &l.cpus {
                pinned.extend(set.cpus());
                cpus = cpus.max(set.len() as u32);
            } else if let Some(q) = l.cpu_quota {
                cpus = cpus.max(q.ceil().max(1.0) as u32);
            }
            if let Some(m) = l.memory {
                memory = Some(memory.map_or(m, |old| old.max(m)));
            }
        }
        pinned.sort_unstable();
        pinned.dedup();
        Needs {
            cpus: cpus.max(pinned.len() as u32),
            pinned: (!pinned.is_empty()).then(|| CpuSet::new(pinned)),
            memory,
        }
    }

    /// `benchbox run FILE --shard SHARD/N --shard-by MODE --out OUT`, `shard` as the engine
    /// spells the index (a shell variable).
    pub(crate) fn run_args(&self, shard: &str, out: &str) -> String {
        format!(
            "run {} --shard \"{shard}/{}\" --shard-by {} --out {out}",
            sh_quote(&self.file),
            self.shards,
            self.by
        )
    }
}

/// `s` as one shell word.
pub(crate) fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `s` as a YAML double-quoted scalar.
pub(crate) fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A name Kubernetes and Slurm accept: lowercase alphanumerics and `-`, at most 40 long.
pub(crate) fn dns_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(40);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "matrix".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_survive_quoting() {
        assert_eq!(sh_quote("envs/m.toml"), "envs/m.toml");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(dns_name("My_Bench.v2"), "my-bench-v2");
        assert_eq!(yaml_quote("a\"b"), r#""a\"b""#);
    }
}
