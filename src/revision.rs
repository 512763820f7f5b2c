//! The source revision a run measured: from `run --rev`/`--branch`, else from GitHub Actions'
//! environment, else from the git repository that holds the matrix file. Recorded in
//! results.json (`revision`), shown in every report, and the order of `benchbox history`.
//!
//! Detection never fails a run: git missing, the matrix outside a repository, a repository git
//! refuses (owned by another user) all give what could be found, or nothing.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// Where a revision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `run --rev`.
    Flag,
    /// `GITHUB_SHA` (GitHub Actions).
    Github,
    /// `git rev-parse HEAD` in the matrix file's repository.
    Git,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Github => "github",
            Source::Git => "git",
        }
    }
}

/// A run's source revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The commit (or whatever `--rev` named).
    pub id: String,
    /// `git describe --always --dirty` (`v1.2-3-gabc1234-dirty`), when git knows the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub describe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit's committer date (RFC 3339), when git knows the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<String>,
    pub source: Source,
}

impl Revision {
    /// The short name a person reads: the description when there is one, else the id (a
    /// 40-digit commit cut to 12).
    pub fn short(&self) -> &str {
        if let Some(d) = &self.describe {
            return d;
        }
        if self.id.len() == 40 && self.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            &self.id[..12]
        } else {
            &self.id
        }
    }

    /// "v1.2-3-gabc1234 (main, 2024-05-01T10:00:00+02:00, from git)": one line for reports.
    pub fn describe_line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = &self.branch {
            parts.push(b.clone());
        }
        if let Some(t) = &self.commit_time {
            parts.push(format!("committed {t}"));
        }
        parts.push(format!("from {}", self.source.as_str()));
        let id = if self.describe.is_some() || self.short() != self.id {
            format!("{} ({})", self.short(), self.id)
        } else {
            self.id.clone()
        };
        format!("{id}, {}", parts.join(", "))
    }
}

/// What the environment holds, for [`detect_with`] (tests give their own).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process's environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

/// The revision of a run of the matrix file at `matrix`: `rev` and `branch` are the flags.
pub fn detect(rev: Option<&str>, branch: Option<&str>, matrix: &Path) -> Option<Revision> {
    detect_with(rev, branch, matrix, &ProcessEnv)
}

/// [`detect`] with the environment given.
pub fn detect_with(
    rev: Option<&str>,
    branch: Option<&str>,
    matrix: &Path,
    env: &dyn Env,
) -> Option<Revision> {
    let dir = match matrix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let git = Git { dir: &dir };
    let mut found = if let Some(rev) = rev {
        // A revision git knows gets its description and time; any other name is kept as given.
        let commit = git.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ]);
        Revision {
            id: rev.to_string(),
            describe: commit
                .as_ref()
                .and_then(|c| git.run(&["describe", "--always", c])),
            branch: None,
            commit_time: commit.as_ref().and_then(|c| git.commit_time(c)),
            source: Source::Flag,
        }
    } else if let Some(sha) = env.var("GITHUB_SHA") {
        // On a pull request GITHUB_REF_NAME is `123/merge`; the branch is GITHUB_HEAD_REF.
        let branch = env
            .var("GITHUB_HEAD_REF")
            .or_else(|| env.var("GITHUB_REF_NAME"));
        let known = git.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{sha}^{{commit}}"),
        ]);
        Revision {
            describe: known
                .as_ref()
                .and_then(|c| git.run(&["describe", "--always", c])),
            commit_time: known.as_ref().and_then(|c| git.commit_time(c)),
            id: sha,
            branch,
            source: Source::Github,
        }
    } else {
        let id = git.run(&["rev-parse", "HEAD"])?;
        Revision {
            describe: git.run(&["describe", "--always", "--dirty"]),
            // Detached: `HEAD`, no branch.
            branch: git
                .run(&["rev-parse", "--abbrev-ref", "HEAD"])
                .filter(|b| b != "HEAD"),
            commit_time: git.commit_time(&id),
            id,
            source: Source::Git,
        }
    };
    if let Some(b) = branch {
        found.branch = Some(b.to_string());
    }
    Some(found)
}

/// git, run in one directory; every failure (no git, no repository) is `None`.
struct Git<'a> {
    dir: &'a Path,
}

impl Git<'_> {
    fn run(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            // The repository found from the matrix file's directory, whatever the caller's
            // environment points git at.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    fn commit_time(&self, commit: &str) -> Option<String> {
        self.run(&["show", "-s", "--format=%cI", commit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_DATE", "2024-05-01T10:00:00+02:00")
            .env("GIT_AUTHOR_DATE", "2024-05-01T10:00:00+02:00")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    fn repo() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        git(tmp.path(), &["init", "-q", "-b", "trunk"]);
        std::fs::write(tmp.path().join("m.toml"), "name = \"m\"\n").unwrap();
        git(tmp.path(), &["add", "m.toml"]);
        git(tmp.path(), &["commit", "-q", "-m", "first"]);
        tmp
    }

    #[test]
    fn from_the_matrix_files_repository() {
        let tmp = repo();
        let rev = detect_with(
            None,
            None,
            &tmp.path().join("m.toml"),
            &Vars(HashMap::new()),
        )
        .expect("a revision");
        assert_eq!(rev.source, Source::Git);
        assert_eq!(rev.id.len(), 40);
        assert_eq!(rev.describe.as_deref(), Some(&rev.id[..7]));
        assert_eq!(rev.branch.as_deref(), Some("trunk"));
        assert_eq!(
            rev.commit_time.as_deref(),
            Some("2024-05-01T10:00:00+02:00")
        );
        // A change not committed: dirty.
        std::fs::write(tmp.path().join("m.toml"), "name = \"n\"\n").unwrap();
        let dirty = detect_with(
            None,
            None,
            &tmp.path().join("m.toml"),
            &Vars(HashMap::new()),
        );
        assert!(dirty.unwrap().describe.unwrap().ends_with("-dirty"));
    }

    #[test]
    fn outside_a_repository_there_is_none_and_a_flag_is_kept_as_given() {
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path().join("m.toml");
        assert_eq!(detect_with(None, None, &m, &Vars(HashMap::new())), None);
        let flag = detect_with(Some("r07"), Some("exp"), &m, &Vars(HashMap::new())).unwrap();
        assert_eq!(
            flag,
            Revision {
                id: "r07".into(),
                describe: None,
                branch: Some("exp".into()),
                commit_time: None,
                source: Source::Flag,
            }
        );
    }

    #[test]
    fn a_flag_git_knows_gets_its_time_and_github_wins_over_git() {
        let tmp = repo();
        let m = tmp.path().join("m.toml");
        let flag = detect_with(Some("trunk"), None, &m, &Vars(HashMap::new())).unwrap();
        assert_eq!(flag.id, "trunk");
        assert_eq!(
            flag.commit_time.as_deref(),
            Some("2024-05-01T10:00:00+02:00")
        );
        let env = Vars(HashMap::from([
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_HEAD_REF", "feature"),
        ]));
        let gh = detect_with(None, None, &m, &env).unwrap();
        assert_eq!(gh.source, Source::Github);
        assert_eq!(gh.branch.as_deref(), Some("feature"));
        assert_eq!(gh.describe, None, "a commit this clone does not have");
        assert_eq!(gh.short(), "0123456789ab");
    }

    #[test]
    fn an_older_results_json_without_a_revision_reads_and_none_is_not_written() {
        let r: Revision = serde_json::from_str(r#"{"id":"abc","source":"flag"}"#).unwrap();
        assert_eq!(r.describe_line(), "abc, from flag");
        assert!(!serde_json::to_string(&r).unwrap().contains("branch"));
    }
}
