//! Values written into Markdown: `summary.md`, `compare --format md` and what is appended to
//! `$GITHUB_STEP_SUMMARY` (pure).
//!
//! Anything that comes from a matrix file, a workload or a results file (axis values, labels,
//! names, paths, descriptions, host strings, warnings and reasons that quote them) goes through
//! [`text`] or [`code`], so it shows exactly as written and can add no markup: an axis value
//! `<script>` stays text instead of raw HTML, `![x](http://...)` stays text instead of an image
//! fetched by every reader, `**` and `|` neither bold nor break a table. A URL remains visible
//! text (GitHub may still make a bare URL clickable; it shows where it goes).

/// Characters that can open markup anywhere in a line: emphasis, code, links and images, raw
/// HTML and entities, tables, strikethrough, math, and the backslash itself. CommonMark lets
/// any ASCII punctuation be backslash-escaped, and GitHub's tables honour `\|`.
const SPECIAL: &[char] = &[
    '\\', '`', '*', '_', '[', ']', '<', '>', '&', '!', '|', '~', '$', '#',
];

/// `s` as literal inline Markdown, inside a line or a table cell: line breaks and other control
/// characters become spaces, and markup characters (`\` `` ` `` `*` `_` `[` `]` `<` `>` `&` `!` `|` `~` `$` `#`) are backslash-escaped.
pub fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_control() {
            out.push(' ');
            continue;
        }
        // `_` between two letters or digits never emphasizes (CommonMark): `wall_s` stays.
        let intraword = c == '_'
            && i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if SPECIAL.contains(&c) && !intraword {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// [`text`] for the start of a line: also escaped is what would make it a list or a setext
/// heading there (`-`, `+`, `=`, `1.`, `1)`; headings and quotes are escaped anyway).
pub fn line(s: &str) -> String {
    let mut out = text(s);
    if out.starts_with(['-', '+', '=']) {
        out.insert(0, '\\');
    }
    let digits = out.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && out[digits..].starts_with(['.', ')']) {
        out.insert(digits, '\\');
    }
    out
}

/// One of benchbox's own messages, which quote values in backticks ("cell `jdk=21` ..."): the
/// quoted parts become code spans ([`code`]), the rest [`text`]. Safe whatever the quoted
/// values hold: a backtick inside one only moves where a code span starts, and both kinds of
/// part are inert. Unbalanced backticks: all [`text`].
pub fn message(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return text(s);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| if i % 2 == 1 { code(p) } else { text(p) })
        .collect()
}

/// `s` as an inline code span: shown verbatim (Markdown and HTML inside a code span are never
/// interpreted). The fence is longer than any run of backticks in `s`, so `s` cannot close it;
/// line breaks and control characters become spaces. Not for table cells (GitHub splits a
/// cell at `|` even inside code): use [`text`] there.
pub fn code(s: &str) -> String {
    let body: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A space on each side when the content touches a backtick (CommonMark strips one).
    if body.starts_with('`') || body.ends_with('`') {
        format!("{fence} {body} {fence}")
    } else {
        format!("{fence}{body}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_be_markup_are_escaped() {
        assert_eq!(text("jdk=17 gc=G1"), "jdk=17 gc=G1", "plain text stays");
        assert_eq!(
            text("1.234 s (95% CI 1.2 to 1.3)"),
            "1.234 s (95% CI 1.2 to 1.3)"
        );
        assert_eq!(
            text("<script>alert(1)</script>"),
            "\\<script\\>alert(1)\\</script\\>"
        );
        assert_eq!(
            text("![x](http://evil.example/p.png)"),
            "\\!\\[x\\](http://evil.example/p.png)"
        );
        assert_eq!(text("a|b\nc"), "a\\|b c");
        assert_eq!(
            text("**bold** _it_ ~~s~~ `c` $x$ &lt;"),
            "\\*\\*bold\\*\\* \\_it\\_ \\~\\~s\\~\\~ \\`c\\` \\$x\\$ \\&lt;"
        );
        assert_eq!(text("# title"), "\\# title");
        assert_eq!(text("-5.0% to +3.1%"), "-5.0% to +3.1%", "inside a line");
        assert_eq!(line("- item"), "\\- item", "at the start of a line");
        assert_eq!(line("12. item"), "12\\. item");
        assert_eq!(line("1.000 s"), "1\\.000 s");
        assert_eq!(line("plain"), "plain");
        assert_eq!(text("x\u{1b}[31m"), "x \\[31m");
        assert_eq!(text("back\\slash"), "back\\\\slash");
        assert_eq!(
            text("wall_s SYS_PTRACE _x_ a_"),
            "wall_s SYS_PTRACE \\_x\\_ a\\_"
        );
    }

    #[test]
    fn messages_keep_their_quoted_values_as_code() {
        assert_eq!(
            message("cell `<b>x</b>` failed: **no**"),
            "cell `<b>x</b>` failed: \\*\\*no\\*\\*"
        );
        assert_eq!(
            message("cell `a`b` ![i](u)"),
            "cell \\`a\\`b\\` \\!\\[i\\](u)",
            "unbalanced: all text"
        );
        assert_eq!(message("no quotes | here"), "no quotes \\| here");
    }

    #[test]
    fn code_spans_cannot_be_closed_from_inside() {
        assert_eq!(code("word=a"), "`word=a`");
        assert_eq!(code("<script>"), "`<script>`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code("two\nlines"), "`two lines`");
    }
}
