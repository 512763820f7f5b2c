//! A project for the end-to-end tests: a temp dir holding `m.toml`, an empty scratch directory
//! and, unless the cells run on the host's files, a busybox root filesystem at `rootfs`; and
//! the run directories benchbox leaves under `out`, read back.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// `m.toml` written from `toml`, with a busybox rootfs beside it.
    pub fn new(toml: &str) -> Project {
        Project::at(tempfile::tempdir().unwrap(), toml, true)
    }

    /// `m.toml` written from `toml`, without a rootfs: the cells run on the host's files.
    pub fn on_host(toml: &str) -> Project {
        Project::at(tempfile::tempdir().unwrap(), toml, false)
    }

    /// The project in `dir`, with a busybox rootfs when `rootfs`.
    pub fn at(dir: tempfile::TempDir, toml: &str, rootfs: bool) -> Project {
        if rootfs {
            super::busybox_rootfs(&dir.path().join("rootfs"));
        }
        fs::create_dir(dir.path().join("scratch")).unwrap();
        fs::write(dir.path().join("m.toml"), toml).unwrap();
        Project { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `benchbox ARGS` in the project, with its scratch directory (`BENCHBOX_SCRATCH`), and
    /// outside the CI job's step summary (a test that wants one sets its own).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = super::benchbox();
        c.current_dir(self.dir.path())
            .args(args)
            .env("BENCHBOX_SCRATCH", self.path("scratch"))
            .env_remove("GITHUB_STEP_SUMMARY");
        c
    }

    /// The latest run of matrix `name` under `out`.
    pub fn latest(&self, name: &str) -> PathBuf {
        self.latest_in("out", name)
    }

    /// The latest run of matrix `name` under the output directory `out`.
    pub fn latest_in(&self, out: &str, name: &str) -> PathBuf {
        fs::canonicalize(self.path(&format!("{out}/{name}/latest"))).unwrap()
    }

    pub fn results(&self, name: &str) -> serde_json::Value {
        self.results_in("out", name)
    }

    pub fn results_in(&self, out: &str, name: &str) -> serde_json::Value {
        let path = self.latest_in(out, name).join("results.json");
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    pub fn csv(&self, name: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
        self.csv_in("out", name)
    }

    /// runs.csv as (header, rows).
    pub fn csv_in(&self, out: &str, name: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
        let mut r = csv::Reader::from_path(self.latest_in(out, name).join("runs.csv")).unwrap();
        let header = r.headers().unwrap().iter().map(String::from).collect();
        (header, r.records().map(|r| r.unwrap()).collect())
    }

    /// The stdout of one cell's first measured invocation (empty when there is none).
    pub fn log(&self, name: &str, slug: &str) -> String {
        fs::read_to_string(self.latest(name).join(format!("logs/{slug}/measure-0.out")))
            .unwrap_or_default()
    }

    pub fn assert_scratch_empty(&self) {
        let left: Vec<_> = fs::read_dir(self.path("scratch"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "scratch left: {left:?}");
    }
}

/// A finished command's status and output, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "--- status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
