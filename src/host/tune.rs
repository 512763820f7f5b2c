//! `doctor --tune` and `--reset`: the safe settings that quiet the cpus (every online cpu's
//! governor to `performance`, transparent huge pages and their defrag from `always` to
//! `madvise`, turbo off), each old value saved first in a state file under the run root
//! (`<run>/benchbox/tune.json`) so `--reset` puts it back. A run made while the state file
//! exists records what was changed (results.json's `host.noise.tuned`).
//!
//! Every path is under a [`Roots`], so tests tune fake trees.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Roots, read_trim};

/// One setting changed: the file, its value before (as written back), its value now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
}

impl Change {
    pub fn describe(&self) -> String {
        format!("{}: {} -> {}", self.path.display(), self.before, self.after)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error(
        "the host is tuned already ({0} holds the values to restore)\n  hint: benchbox doctor --reset first"
    )]
    Tuned(PathBuf),
    #[error(
        "nothing to reset: no {0}\n  hint: benchbox doctor --tune saves it when it changes a setting"
    )]
    NotTuned(PathBuf),
    #[error(
        "cannot {action} {path}: {source}\n  hint: run as root; a virtual machine may not expose the setting"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a state file of benchbox: {message}\n  hint: restore the settings by hand and delete it"
    )]
    State { path: PathBuf, message: String },
}

impl TuneError {
    /// The exit code: tuning twice, or resetting what was not tuned, is bad usage.
    pub fn exit_code(&self) -> i32 {
        match self {
            TuneError::Tuned(_) | TuneError::NotTuned(_) => crate::exit::USAGE,
            TuneError::Io { .. } | TuneError::State { .. } => crate::exit::INTERNAL,
        }
    }
}

/// The state file `--tune` writes and `--reset` reads.
pub fn state_file(roots: &Roots) -> PathBuf {
    roots.run.join("benchbox/tune.json")
}

/// The bracketed or plain value of a sysfs setting ("always [madvise] never" -> "madvise").
fn current(path: &Path) -> Option<String> {
    let text = read_trim(path)?;
    Some(
        super::noise::bracketed(&text)
            .map(str::to_string)
            .unwrap_or(text),
    )
}

/// What `--tune` would change on this host (settings already quiet, or not exposed, are left).
pub fn plan(roots: &Roots) -> Vec<Change> {
    let mut out = Vec::new();
    let mut want = |path: PathBuf, after: &str, only_from: Option<&str>| {
        if let Some(before) = current(&path)
            && before != after
            && only_from.is_none_or(|f| f == before)
        {
            out.push(Change {
                path,
                before,
                after: after.into(),
            });
        }
    };
    let cpu = roots.sys.join("devices/system/cpu");
    for c in super::online_cpus(roots).cpus() {
        want(
            cpu.join(format!("cpu{c}/cpufreq/scaling_governor")),
            "performance",
            None,
        );
    }
    let thp = roots.sys.join("kernel/mm/transparent_hugepage");
    want(thp.join("enabled"), "madvise", Some("always"));
    want(thp.join("defrag"), "madvise", Some("always"));
    let no_turbo = cpu.join("intel_pstate/no_turbo");
    if no_turbo.exists() {
        want(no_turbo, "1", None);
    } else {
        want(cpu.join("cpufreq/boost"), "0", None);
    }
    out
}

fn write(path: &Path, value: &str) -> Result<(), TuneError> {
    fs::write(path, format!("{value}\n")).map_err(|source| TuneError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// The changes a tuned host is under (the state file), none when it is not tuned.
pub fn in_effect(roots: &Roots) -> Result<Vec<Change>, TuneError> {
    let path = state_file(roots);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|e| TuneError::State {
        path,
        message: e.to_string(),
    })
}

/// Apply [`plan`], the old values saved first (so a failure half-way can still be reset).
/// Refused when the host is tuned already: the state file holds the values to go back to.
pub fn tune(roots: &Roots) -> Result<Vec<Change>, TuneError> {
    let state = state_file(roots);
    if state.exists() {
        return Err(TuneError::Tuned(state));
    }
    let changes = plan(roots);
    if changes.is_empty() {
        return Ok(changes);
    }
    let io = |action, source| TuneError::Io {
        action,
        path: state.clone(),
        source,
    };
    fs::create_dir_all(state.parent().expect("a state file has a directory"))
        .map_err(|e| io("create the directory of", e))?;
    let json = serde_json::to_string_pretty(&changes).expect("changes serialize");
    fs::write(&state, json).map_err(|e| io("write", e))?;
    for c in &changes {
        write(&c.path, &c.after)?;
    }
    Ok(changes)
}

/// Put back what [`tune`] changed, then remove the state file.
pub fn reset(roots: &Roots) -> Result<Vec<Change>, TuneError> {
    let state = state_file(roots);
    if !state.exists() {
        return Err(TuneError::NotTuned(state));
    }
    let changes = in_effect(roots)?;
    for c in &changes {
        write(&c.path, &c.before)?;
    }
    fs::remove_file(&state).map_err(|source| TuneError::Io {
        action: "remove",
        path: state,
        source,
    })?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
            run: dir.path().join("run"),
        };
        let put = |rel: &str, text: &str| {
            let p = roots.sys.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        put("devices/system/cpu/online", "0-1\n");
        put(
            "devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "powersave\n",
        );
        put(
            "devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "performance\n",
        );
        put("devices/system/cpu/cpufreq/boost", "1\n");
        put(
            "kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        );
        put(
            "kernel/mm/transparent_hugepage/defrag",
            "always defer [never]\n",
        );
        (dir, roots)
    }

    fn read(roots: &Roots, rel: &str) -> String {
        fs::read_to_string(roots.sys.join(rel)).unwrap()
    }

    #[test]
    fn tune_saves_changes_and_reset_restores_them() {
        let (_dir, roots) = fake();
        let planned = plan(&roots);
        let described: Vec<String> = planned.iter().map(Change::describe).collect();
        assert_eq!(planned.len(), 3, "{described:#?}");
        let changed = tune(&roots).unwrap();
        assert_eq!(changed, planned);
        assert_eq!(
            read(&roots, "devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "performance\n"
        );
        assert_eq!(read(&roots, "devices/system/cpu/cpufreq/boost"), "0\n");
        assert_eq!(
            read(&roots, "kernel/mm/transparent_hugepage/enabled"),
            "madvise\n"
        );
        // defrag `never` is quiet already; cpu1 is performance already.
        assert!(
            !described
                .iter()
                .any(|d| d.contains("defrag") || d.contains("cpu1"))
        );
        assert_eq!(in_effect(&roots).unwrap(), changed);
        // Tuning twice would lose the values to go back to.
        let again = tune(&roots).unwrap_err().to_string();
        assert!(again.contains("tuned already") && again.contains("hint: benchbox doctor --reset"));
        assert_eq!(reset(&roots).unwrap(), changed);
        assert_eq!(
            read(&roots, "devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "powersave\n"
        );
        assert_eq!(read(&roots, "devices/system/cpu/cpufreq/boost"), "1\n");
        assert_eq!(
            read(&roots, "kernel/mm/transparent_hugepage/enabled"),
            "always\n"
        );
        assert!(in_effect(&roots).unwrap().is_empty());
        let none = reset(&roots).unwrap_err().to_string();
        assert!(none.contains("nothing to reset"), "{none}");
    }

    #[test]
    fn intel_pstate_wins_and_a_quiet_host_needs_nothing() {
        let (_dir, roots) = fake();
        let p = roots.sys.join("devices/system/cpu/intel_pstate/no_turbo");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, "0\n").unwrap();
        let planned = plan(&roots);
        assert!(planned.iter().any(|c| c.path == p && c.after == "1"));
        assert!(!planned.iter().any(|c| c.path.ends_with("cpufreq/boost")));
        tune(&roots).unwrap();
        assert!(plan(&roots).is_empty(), "{:?}", plan(&roots));
        // A host where nothing needs changing writes no state file.
        reset(&roots).unwrap();
        let (_dir2, quiet) = fake();
        fs::write(
            quiet
                .sys
                .join("devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "performance\n",
        )
        .unwrap();
        fs::write(quiet.sys.join("devices/system/cpu/cpufreq/boost"), "0\n").unwrap();
        fs::write(
            quiet.sys.join("kernel/mm/transparent_hugepage/enabled"),
            "always [madvise] never\n",
        )
        .unwrap();
        assert!(tune(&quiet).unwrap().is_empty());
        assert!(!state_file(&quiet).exists());
    }
}
