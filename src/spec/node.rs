//! A span-carrying copy of the parsed TOML tree, and positions in the source.
//!
//! `toml_edit` only knows spans for values it parsed itself; once we substitute `{axis}`
//! placeholders we build new values. This small tree keeps the template value's span on every
//! substituted value, so an error about a cell still points at the line the user wrote.

use std::ops::Range;

use toml_edit::{Item, Table, Value};

/// One TOML value with the byte range it came from in the original file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub span: Range<usize>,
    /// True when a placeholder was replaced in this value (errors then name the cell).
    pub substituted: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// A key of a table (with its own span, for "unknown key" errors) and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    pub fn new(span: Range<usize>, kind: Kind) -> Node {
        Node {
            span,
            substituted: false,
            kind,
        }
    }

    /// The root table of a parsed document.
    pub fn from_document(table: &Table) -> Node {
        from_table(table, 0..0)
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.kind {
            Kind::Table(entries) => entries,
            _ => &[],
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// "the string `x`", "the integer `3`", "an array", ... for "found ..." in messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Str(s) => format!("the string `{s}`"),
            Kind::Int(i) => format!("the integer `{i}`"),
            Kind::Float(f) => format!("the float `{f}`"),
            Kind::Bool(b) => format!("the boolean `{b}`"),
            Kind::Datetime(d) => format!("the datetime `{d}`"),
            Kind::Array(_) => "an array".to_string(),
            Kind::Table(_) => "a table".to_string(),
        }
    }
}

fn from_item(item: &Item, fallback: Range<usize>) -> Option<Node> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(from_value(v, fallback)),
        Item::Table(t) => Some(from_table(t, fallback)),
        Item::ArrayOfTables(a) => {
            let span = a.span().unwrap_or(fallback.clone());
            let tables = a.iter().map(|t| from_table(t, span.clone())).collect();
            Some(Node::new(span, Kind::Array(tables)))
        }
    }
}

fn from_table(table: &Table, fallback: Range<usize>) -> Node {
    // Implicit tables (`[a.b]` creates `a`, `x.y = 1` creates `x`) have no span of their own.
    let span = table.span().unwrap_or(fallback);
    let mut entries = Vec::new();
    for (key, item) in table.iter() {
        let key_span = table
            .key(key)
            .and_then(|k| k.span())
            .unwrap_or(span.clone());
        if let Some(value) = from_item(item, key_span.clone()) {
            entries.push(Entry {
                key: key.to_string(),
                key_span,
                value,
            });
        }
    }
    Node::new(span, Kind::Table(entries))
}

fn from_value(value: &Value, fallback: Range<usize>) -> Node {
    let span = value.span().unwrap_or(fallback);
    let kind = match value {
        Value::String(f) => Kind::Str(f.value().clone()),
        Value::Integer(f) => Kind::Int(*f.value()),
        Value::Float(f) => Kind::Float(*f.value()),
        Value::Boolean(f) => Kind::Bool(*f.value()),
        Value::Datetime(f) => Kind::Datetime(f.value().to_string()),
        Value::Array(a) => Kind::Array(a.iter().map(|v| from_value(v, span.clone())).collect()),
        Value::InlineTable(t) => {
            let mut entries = Vec::new();
            for (key, v) in t.iter() {
                let key_span = t.key(key).and_then(|k| k.span()).unwrap_or(span.clone());
                entries.push(Entry {
                    key: key.to_string(),
                    key_span: key_span.clone(),
                    value: from_value(v, key_span),
                });
            }
            Kind::Table(entries)
        }
    };
    Node::new(span, kind)
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based_and_counts_chars() {
        let s = "ab\ncé\nx";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 3), (2, 1));
        // `x` is after the two-byte `é`.
        assert_eq!(line_col(s, s.len() - 1), (3, 1));
        assert_eq!(line_col(s, 6), (2, 3));
        assert_eq!(line_col(s, 999), (3, 2));
    }

    #[test]
    fn spans_survive_conversion() {
        let src = "[limits]\nmemory = \"1G\"\nx = { a = [1, 2] }\n";
        let doc = toml_edit::ImDocument::parse(src).unwrap();
        let root = Node::from_document(doc.as_table());
        let limits = &root.get("limits").unwrap().value;
        let mem = limits.get("memory").unwrap();
        assert_eq!(line_col(src, mem.key_span.start), (2, 1));
        assert_eq!(line_col(src, mem.value.span.start), (2, 10));
        let x = &limits.get("x").unwrap().value;
        let a = x.get("a").unwrap();
        assert_eq!(line_col(src, a.key_span.start), (3, 7));
        match &a.value.kind {
            Kind::Array(items) => assert_eq!(line_col(src, items[1].span.start), (3, 15)),
            other => panic!("{other:?}"),
        }
    }
}
