//! `{axis}` / `{axis.field}` placeholders in template strings, and their substitution.
//!
//! Grammar of a template string: `{{` is a literal `{`, `}}` a literal `}`, and `{name}` or
//! `{name.field}` a placeholder. Any other brace is an error, which is why a regex quantifier in
//! a metric pattern must be written `\d{{3}}`. A string that is exactly one placeholder takes
//! the axis value's own type (`"{quota}"` with `quota = [0.5, 1.0]` becomes the float 0.5);
//! otherwise scalars are pasted as plain text (no quotes).

use std::collections::BTreeSet;
use std::ops::Range;

use serde_json::Value;

use super::node::{Entry, Kind, Node};

/// A problem at a span; the caller turns it into a `SpecError` (adding the cell's label).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub span: Range<usize>,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Lit(String),
    Ref { axis: String, field: Option<String> },
}

impl Segment {
    fn placeholder(axis: &str, field: Option<&str>) -> String {
        match field {
            Some(f) => format!("{{{axis}.{f}}}"),
            None => format!("{{{axis}}}"),
        }
    }
}

const BRACE_HINT: &str =
    "write `{{` and `}}` for literal braces (regex quantifiers too: `\\d{{3}}`)";

/// Splits a template string into literal text and placeholders.
pub(crate) fn parse(s: &str) -> Result<Vec<Segment>, (String, Option<String>)> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(['{', '}']) {
        lit.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            lit.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            lit.push('}');
            rest = after;
        } else if lit.ends_with('$') && tail.starts_with('{') && tail.contains('}') {
            // `${...}` is the shell's parameter expansion, passed through untouched.
            let end = tail.find('}').expect("checked above");
            lit.push_str(&tail[..=end]);
            rest = &tail[end + 1..];
        } else if tail.starts_with('}') {
            return Err((
                format!("unmatched `}}` in `{s}`"),
                Some(BRACE_HINT.to_string()),
            ));
        } else {
            let Some(end) = tail.find('}') else {
                return Err((
                    format!("unclosed `{{` in `{s}`"),
                    Some(BRACE_HINT.to_string()),
                ));
            };
            let inner = &tail[1..end];
            let (axis, field) = match inner.split_once('.') {
                Some((a, f)) => (a, Some(f)),
                None => (inner, None),
            };
            let valid_field = field.is_none_or(|f| {
                !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
            if !super::is_axis_name(axis) || !valid_field {
                return Err((
                    format!("`{{{inner}}}` in `{s}` is not a placeholder"),
                    Some(format!(
                        "placeholders look like `{{axis}}` or `{{axis.field}}`; {BRACE_HINT}"
                    )),
                ));
            }
            if !lit.is_empty() {
                out.push(Segment::Lit(std::mem::take(&mut lit)));
            }
            out.push(Segment::Ref {
                axis: axis.to_string(),
                field: field.map(str::to_string),
            });
            rest = &tail[end + 1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Segment::Lit(lit));
    }
    Ok(out)
}

/// Checks every string under `node` once, before expansion: syntax, and that each placeholder
/// names an axis. Records which axes are used (an unused axis earns a warning).
pub(crate) fn check(
    node: &Node,
    axes: &[String],
    used: &mut BTreeSet<String>,
) -> Result<(), Problem> {
    match &node.kind {
        Kind::Str(s) => {
            let segments = parse(s).map_err(|(message, hint)| Problem {
                span: node.span.clone(),
                message,
                hint,
            })?;
            for seg in segments {
                if let Segment::Ref { axis, field } = seg {
                    if !axes.contains(&axis) {
                        let hint = if axes.is_empty() {
                            format!("the matrix has no axes; {BRACE_HINT}")
                        } else {
                            super::suggest(&axis, axes.iter().map(String::as_str), "axes")
                        };
                        return Err(Problem {
                            span: node.span.clone(),
                            message: format!(
                                "`{}` names no axis",
                                Segment::placeholder(&axis, field.as_deref())
                            ),
                            hint: Some(hint),
                        });
                    }
                    used.insert(axis);
                }
            }
            Ok(())
        }
        Kind::Array(items) => items.iter().try_for_each(|n| check(n, axes, used)),
        Kind::Table(entries) => entries.iter().try_for_each(|e| check(&e.value, axes, used)),
        _ => Ok(()),
    }
}

/// A template value with its strings parsed once, to be substituted for many cells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Compiled {
    /// No brace anywhere under it: every cell gets it as it is.
    Fixed(Node),
    Str {
        span: Range<usize>,
        segments: Vec<Segment>,
    },
    Array {
        span: Range<usize>,
        items: Vec<Compiled>,
    },
    Table {
        span: Range<usize>,
        entries: Vec<(String, Range<usize>, Compiled)>,
    },
}

/// Parses every string under `node` (`check` has run, so they parse).
pub(crate) fn compile(node: &Node) -> Result<Compiled, Problem> {
    let compiled = match &node.kind {
        Kind::Str(s) if s.contains(['{', '}']) => Compiled::Str {
            span: node.span.clone(),
            segments: parse(s).map_err(|(message, hint)| Problem {
                span: node.span.clone(),
                message,
                hint,
            })?,
        },
        Kind::Array(items) => Compiled::Array {
            span: node.span.clone(),
            items: items.iter().map(compile).collect::<Result<_, _>>()?,
        },
        Kind::Table(entries) => Compiled::Table {
            span: node.span.clone(),
            entries: entries
                .iter()
                .map(|e| Ok((e.key.clone(), e.key_span.clone(), compile(&e.value)?)))
                .collect::<Result<_, Problem>>()?,
        },
        _ => Compiled::Fixed(node.clone()),
    };
    // A container of fixed values is fixed too.
    let fixed = match &compiled {
        Compiled::Array { items, .. } => items.iter().all(Compiled::is_fixed),
        Compiled::Table { entries, .. } => entries.iter().all(|(_, _, c)| c.is_fixed()),
        _ => false,
    };
    Ok(if fixed {
        Compiled::Fixed(node.clone())
    } else {
        compiled
    })
}

impl Compiled {
    pub fn is_fixed(&self) -> bool {
        matches!(self, Compiled::Fixed(_))
    }

    /// The value for one cell: placeholders replaced by its axis values, `{{`/`}}` by braces.
    pub fn substitute(&self, values: &[(String, Value)]) -> Result<Node, Problem> {
        match self {
            Compiled::Fixed(node) => Ok(node.clone()),
            Compiled::Str { span, segments } => {
                let node = Node::new(span.clone(), Kind::Str(String::new()));
                if let [Segment::Ref { axis, field }] = segments.as_slice() {
                    let value = lookup(&node, values, axis, field.as_deref())?;
                    return Ok(from_json(value, span));
                }
                let mut text = String::new();
                let mut substituted = false;
                for seg in segments {
                    match seg {
                        Segment::Lit(l) => text.push_str(l),
                        Segment::Ref { axis, field } => {
                            let value = lookup(&node, values, axis, field.as_deref())?;
                            push_scalar(&mut text, &node, value, axis, field.as_deref())?;
                            substituted = true;
                        }
                    }
                }
                Ok(Node {
                    span: span.clone(),
                    substituted,
                    kind: Kind::Str(text),
                })
            }
            Compiled::Array { span, items } => {
                let items = items
                    .iter()
                    .map(|c| c.substitute(values))
                    .collect::<Result<Vec<_>, _>>()?;
                let substituted = items.iter().any(|n| n.substituted);
                Ok(Node {
                    span: span.clone(),
                    substituted,
                    kind: Kind::Array(items),
                })
            }
            Compiled::Table { span, entries } => {
                let entries = entries
                    .iter()
                    .map(|(key, key_span, c)| {
                        Ok(Entry {
                            key: key.clone(),
                            key_span: key_span.clone(),
                            value: c.substitute(values)?,
                        })
                    })
                    .collect::<Result<Vec<_>, Problem>>()?;
                let substituted = entries.iter().any(|e| e.value.substituted);
                Ok(Node {
                    span: span.clone(),
                    substituted,
                    kind: Kind::Table(entries),
                })
            }
        }
    }
}

/// Replaces the placeholders under `node` with one cell's axis values.
#[cfg(test)]
pub(crate) fn substitute(node: &Node, values: &[(String, Value)]) -> Result<Node, Problem> {
    compile(node)?.substitute(values)
}

fn lookup<'v>(
    node: &Node,
    values: &'v [(String, Value)],
    axis: &str,
    field: Option<&str>,
) -> Result<&'v Value, Problem> {
    let value = values
        .iter()
        .find(|(name, _)| name == axis)
        .map(|(_, v)| v)
        .ok_or_else(|| Problem {
            span: node.span.clone(),
            message: format!("`{}` names no axis", Segment::placeholder(axis, field)),
            hint: None,
        })?;
    let Some(field) = field else {
        return Ok(value);
    };
    let placeholder = Segment::placeholder(axis, Some(field));
    match value {
        Value::Object(map) => map.get(field).ok_or_else(|| Problem {
            span: node.span.clone(),
            message: format!("`{placeholder}`: this value of axis `{axis}` has no field `{field}`"),
            hint: Some(super::suggest(
                field,
                map.keys().map(String::as_str),
                "fields",
            )),
        }),
        other => Err(Problem {
            span: node.span.clone(),
            message: format!(
                "`{placeholder}`: axis `{axis}` has the plain value `{}`, which has no fields",
                super::axis_value_text(other)
            ),
            hint: Some(format!(
                "use `{{{axis}}}`, or make the values of `{axis}` tables like {{ {field} = ... }}"
            )),
        }),
    }
}

/// Appends a scalar's text (a string as itself, a number or boolean as JSON writes it).
fn push_scalar(
    text: &mut String,
    node: &Node,
    value: &Value,
    axis: &str,
    field: Option<&str>,
) -> Result<(), Problem> {
    use std::fmt::Write as _;
    match value {
        Value::String(s) => {
            text.push_str(s);
            Ok(())
        }
        Value::Number(_) | Value::Bool(_) => {
            let _ = write!(text, "{value}");
            Ok(())
        }
        _ => {
            let placeholder = Segment::placeholder(axis, field);
            Err(Problem {
                span: node.span.clone(),
                message: format!(
                    "`{placeholder}` is a table or an array and cannot be pasted into text"
                ),
                hint: Some(format!(
                    "name a field (`{{{axis}.field}}`), or make the whole string exactly `{placeholder}`"
                )),
            })
        }
    }
}

/// An axis value as a TOML-like node, for strings that are exactly one placeholder.
fn from_json(value: &Value, span: &Range<usize>) -> Node {
    let kind = match value {
        Value::String(s) => Kind::Str(s.clone()),
        Value::Bool(b) => Kind::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::Int(i),
            None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Array(items) => Kind::Array(items.iter().map(|v| from_json(v, span)).collect()),
        Value::Object(map) => Kind::Table(
            map.iter()
                .map(|(k, v)| Entry {
                    key: k.clone(),
                    key_span: span.clone(),
                    value: from_json(v, span),
                })
                .collect(),
        ),
        // Axis values never hold null (TOML has none); keep it visible rather than panic.
        Value::Null => Kind::Str(String::new()),
    };
    Node {
        span: span.clone(),
        substituted: true,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit(s: &str) -> Segment {
        Segment::Lit(s.into())
    }
    fn r(a: &str, f: Option<&str>) -> Segment {
        Segment::Ref {
            axis: a.into(),
            field: f.map(Into::into),
        }
    }

    #[test]
    fn parses_segments() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("abc").unwrap(), vec![lit("abc")]);
        assert_eq!(
            parse("-XX:+Use{gc}GC").unwrap(),
            vec![lit("-XX:+Use"), r("gc", None), lit("GC")]
        );
        assert_eq!(parse("{v.path}").unwrap(), vec![r("v", Some("path"))]);
        assert_eq!(parse("{{jdk}}").unwrap(), vec![lit("{jdk}")]);
        assert_eq!(parse(r"\d{{3}}").unwrap(), vec![lit(r"\d{3}")]);
        assert_eq!(parse("{a}{b}").unwrap(), vec![r("a", None), r("b", None)]);
        assert_eq!(
            parse("{{{a}}}").unwrap(),
            vec![lit("{"), r("a", None), lit("}")]
        );
        // Shell parameter expansion passes through; a placeholder right after it still works.
        assert_eq!(
            parse("echo ${#WORD} ${HOME:-/} {a}").unwrap(),
            vec![lit("echo ${#WORD} ${HOME:-/} "), r("a", None)]
        );
        assert_eq!(parse("x=${a}").unwrap(), vec![lit("x=${a}")]);
    }

    #[test]
    fn rejects_bad_braces() {
        assert_eq!(parse("a{b").unwrap_err().0, "unclosed `{` in `a{b`");
        assert_eq!(parse("a}b").unwrap_err().0, "unmatched `}` in `a}b`");
        assert_eq!(
            parse(r"\d{3}").unwrap_err().0,
            r"`{3}` in `\d{3}` is not a placeholder"
        );
        assert!(parse("{}").is_err());
        assert!(parse("{a.}").is_err());
        assert!(parse("{a b}").is_err());
    }

    fn s(text: &str) -> Node {
        Node::new(3..9, Kind::Str(text.into()))
    }

    #[test]
    fn substitutes_text_and_types() {
        let values = vec![
            ("jdk".to_string(), json!("17")),
            ("quota".to_string(), json!(0.5)),
            ("n".to_string(), json!(4)),
            ("v".to_string(), json!({"path": "/opt/v", "threads": 8})),
        ];
        let sub = |t: &str| substitute(&s(t), &values).unwrap().kind;
        assert_eq!(sub("jdk-{jdk}"), Kind::Str("jdk-17".into()));
        assert_eq!(sub("{quota}"), Kind::Float(0.5));
        assert_eq!(sub("q={quota} n={n}"), Kind::Str("q=0.5 n=4".into()));
        assert_eq!(sub("{n}"), Kind::Int(4));
        assert_eq!(sub("{v.threads}"), Kind::Int(8));
        assert_eq!(sub("{v.path}/bin"), Kind::Str("/opt/v/bin".into()));
        assert_eq!(sub("{{n}}"), Kind::Str("{n}".into()));
        assert!(!substitute(&s("{{n}}"), &values).unwrap().substituted);
        assert!(substitute(&s("{n}"), &values).unwrap().substituted);
        let e = substitute(&s("{v.nope}"), &values).unwrap_err();
        assert_eq!(
            e.message,
            "`{v.nope}`: this value of axis `v` has no field `nope`"
        );
        assert_eq!(e.span, 3..9);
        let e = substitute(&s("{jdk.x}"), &values).unwrap_err();
        assert_eq!(
            e.message,
            "`{jdk.x}`: axis `jdk` has the plain value `17`, which has no fields"
        );
        let e = substitute(&s("x{v}"), &values).unwrap_err();
        assert!(e.message.contains("cannot be pasted"), "{}", e.message);
    }

    #[test]
    fn check_names_unknown_axes() {
        let axes = vec!["jdk".to_string(), "gc".to_string()];
        let mut used = BTreeSet::new();
        let e = check(&s("{jkd}"), &axes, &mut used).unwrap_err();
        assert_eq!(e.message, "`{jkd}` names no axis");
        assert_eq!(e.hint.unwrap(), "did you mean `jdk`? axes: jdk, gc");
        check(&s("{gc}"), &axes, &mut used).unwrap();
        assert_eq!(used.into_iter().collect::<Vec<_>>(), vec!["gc"]);
    }
}
