//! The acknowledged regressions of `benchbox history --check`: a committed TOML file
//! (`envs/NAME.accepted.toml` beside the matrix by default), one `[[accepted]]` table per
//! change the team decided to live with:
//!
//! ```toml
//! [[accepted]]
//! revision = "3f2a9c1"       # the revision where the change point appears (id prefix or describe)
//! metric = "wall"            # wall, cpu, memory or a custom metric's name
//! cell = "level=9"           # optional: a cell's label or id; every cell when left out
//! reason = "gzip 1.13 trades speed for ratio; accepted in review"
//! ```
//!
//! Every error points at file:line:col.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, Table, Value};

use crate::metrics;

/// One acknowledged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub revision: String,
    /// Canonical (`wall` is `wall_s`).
    pub metric: String,
    pub cell: Option<String>,
    pub reason: String,
}

impl Accepted {
    /// Whether this entry acknowledges a change at `revision` (id, or `describe`) of `metric`
    /// in the cell `cell_id` labelled `label`. A revision matches by equality with the
    /// description, or as a prefix of the id of at least 4 characters (or the whole id).
    pub fn covers(
        &self,
        revision_id: &str,
        describe: Option<&str>,
        metric: &str,
        cell_id: &str,
        label: &str,
    ) -> bool {
        let revision = describe == Some(self.revision.as_str())
            || revision_id == self.revision
            || (self.revision.len() >= 4 && revision_id.starts_with(&self.revision));
        let cell = self
            .cell
            .as_deref()
            .is_none_or(|c| c == cell_id || c == label);
        revision && self.metric == metric && cell
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptedError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{col}: {message}\n  hint: {hint}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
        hint: String,
    },
}

const HINT: &str = "each entry is [[accepted]] with revision = \"...\", metric = \"wall\", reason = \"...\" and optionally cell = \"...\"";

/// The entries of the file at `path`.
pub fn read(path: &Path) -> Result<Vec<Accepted>, AcceptedError> {
    let text = std::fs::read_to_string(path).map_err(|source| AcceptedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// The entries of `text` (read from `path`, for the errors).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Accepted>, AcceptedError> {
    let invalid = |span: Range<usize>, message: String, hint: &str| {
        let (line, col) = line_col(text, span.start);
        AcceptedError::Invalid {
            path: path.to_path_buf(),
            line,
            col,
            message,
            hint: hint.to_string(),
        }
    };
    let doc = ImDocument::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        invalid(span, e.message().to_string(), "fix the TOML syntax")
    })?;
    let root = doc.as_table();
    let mut out = Vec::new();
    for (key, item) in root.iter() {
        let key_span = root.key(key).and_then(|k| k.span()).unwrap_or(0..0);
        if key != "accepted" {
            return Err(invalid(
                key_span,
                format!("unknown key `{key}`"),
                "the file holds only [[accepted]] tables",
            ));
        }
        let Item::ArrayOfTables(tables) = item else {
            return Err(invalid(
                item.span().unwrap_or(key_span),
                "`accepted` must be an array of tables ([[accepted]])".into(),
                HINT,
            ));
        };
        for table in tables.iter() {
            out.push(entry(table, &invalid)?);
        }
    }
    Ok(out)
}

fn entry(
    table: &Table,
    invalid: &dyn Fn(Range<usize>, String, &str) -> AcceptedError,
) -> Result<Accepted, AcceptedError> {
    let table_span = table.span().unwrap_or(0..0);
    let mut fields: [Option<String>; 4] = Default::default();
    const KEYS: [&str; 4] = ["revision", "metric", "cell", "reason"];
    for (key, item) in table.iter() {
        let key_span = table
            .key(key)
            .and_then(|k| k.span())
            .unwrap_or(table_span.clone());
        let Some(slot) = KEYS.iter().position(|k| *k == key) else {
            let suggestion = KEYS
                .iter()
                .map(|k| (strsim::jaro_winkler(k, key), k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| HINT.to_string());
            return Err(invalid(
                key_span,
                format!("unknown key `{key}`"),
                &suggestion,
            ));
        };
        let value_span = item.span().unwrap_or(key_span);
        let value = match item {
            Item::Value(Value::String(s)) => s.value().trim().to_string(),
            _ => {
                return Err(invalid(
                    value_span,
                    format!("`{key}` must be a string"),
                    HINT,
                ));
            }
        };
        if value.is_empty() {
            return Err(invalid(value_span, format!("`{key}` is empty"), HINT));
        }
        fields[slot] = Some(value);
    }
    let [revision, metric, cell, reason] = fields;
    let missing = |name: &str| {
        invalid(
            table_span.clone(),
            format!("this [[accepted]] entry has no `{name}`"),
            HINT,
        )
    };
    Ok(Accepted {
        revision: revision.ok_or_else(|| missing("revision"))?,
        metric: metrics::canonical(&metric.ok_or_else(|| missing("metric"))?),
        cell,
        reason: reason.ok_or_else(|| missing("reason: say why the change is accepted"))?,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("envs/m.accepted.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn entries_read_with_canonical_metrics() {
        let text = "[[accepted]]\nrevision = \"r16\"\nmetric = \"wall\"\nreason = \"slower, on purpose\"\n\n[[accepted]]\nrevision = \"abc1234\"\nmetric = \"compressed\"\ncell = \"level=9\"\nreason = \"x\"\n";
        let got = parse(text, Path::new("a.toml")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].metric, "wall_s");
        assert_eq!(got[1].cell.as_deref(), Some("level=9"));
        assert!(got[0].covers("r16", None, "wall_s", "c1", "n=1"));
        assert!(!got[0].covers("r16", None, "cpu_s", "c1", "n=1"));
        assert!(got[1].covers("abc1234ffff", None, "compressed", "id", "level=9"));
        assert!(!got[1].covers("abc1234ffff", None, "compressed", "id", "level=6"));
        assert!(parse("", Path::new("a.toml")).unwrap().is_empty());
    }

    #[test]
    fn bad_entries_point_at_file_line_col() {
        assert_eq!(
            err("[[accepted]]\nrevision = \"r1\"\nmetrc = \"wall\"\n"),
            "envs/m.accepted.toml:3:1: unknown key `metrc`\n  hint: did you mean `metric`?"
        );
        assert!(
            err("[[accepted]]\nrevision = \"r1\"\nmetric = 5\nreason = \"x\"\n")
                .starts_with("envs/m.accepted.toml:3:10: `metric` must be a string")
        );
        assert!(
            err("[[accepted]]\nrevision = \"r1\"\nmetric = \"wall\"\n")
                .starts_with("envs/m.accepted.toml:1:1: this [[accepted]] entry has no `reason")
        );
        assert!(
            err("[accepted]\nrevision = \"r1\"\n")
                .starts_with("envs/m.accepted.toml:1:1: `accepted` must be an array")
        );
        assert!(err("[[accepted]\n").starts_with("envs/m.accepted.toml:1:"));
        assert!(err("x = 1\n").starts_with("envs/m.accepted.toml:1:1: unknown key `x`"));
    }
}
