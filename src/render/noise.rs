//! The host's noise as the reports show it (results.json's `host.noise`, see
//! [`crate::host::noise`]): one line for summary.md, one block for report.html's environment (a maud template, escaped by default).

use std::fmt::Write as _;

use maud::{Markup, html};

use crate::host::noise::{Check, Grade, Noise};

/// A check in a line: a `fail` with its figures, a `warn` by its name ("turbo", "irq
/// affinity"), the part of `what` before its first colon.
fn brief(c: &Check) -> &str {
    match c.grade {
        Grade::Fail => &c.what,
        _ => c.what.split(':').next().unwrap_or(&c.what),
    }
}

fn named(noise: &Noise, grade: Grade) -> Vec<&str> {
    noise
        .checks
        .iter()
        .filter(|c| c.grade == grade)
        .map(brief)
        .collect()
}

/// "cpus 0-1, sampled 0.5 s: fail: load average ...; warn: turbo, cpu frequency governor", or
/// "cpus 0-1, sampled 0.5 s: all 14 checks ok".
pub fn line(noise: &Noise) -> String {
    let mut out = format!("cpus {}", noise.cpus);
    if let Some(s) = noise.sample_s {
        let _ = write!(out, ", sampled {s:.1} s");
    }
    let (fail, warn) = (named(noise, Grade::Fail), named(noise, Grade::Warn));
    if !noise.tuned.is_empty() {
        let _ = write!(out, ", tuned by doctor --tune ({})", noise.tuned.join(", "));
    }
    if fail.is_empty() && warn.is_empty() {
        let _ = write!(out, ": all {} checks ok", noise.checks.len());
        return out;
    }
    if !fail.is_empty() {
        let _ = write!(out, "; fail: {}", fail.join("; "));
    }
    if !warn.is_empty() {
        let _ = write!(out, "; warn: {}", warn.join(", "));
    }
    out
}

/// report.html's block: a heading and one row per check, its grade marked (`warn` and `fail`
/// in the report's warning colour) and its hint under it.
pub fn html(noise: &Noise) -> Markup {
    let sample = noise
        .sample_s
        .map(|s| format!(", with a {s:.1} s sample"))
        .unwrap_or_default();
    html! {
        h3 { "Host noise" } "\n"
        p { "Checked before the first invocation on cpus " (noise.cpus) (sample) "." } "\n"
        dl.facts {
            "\n"
            @for t in &noise.tuned { dt { "tuned" } dd { (t) " (doctor --tune)" } "\n" }
            @for c in &noise.checks {
                dt class=[(c.grade != Grade::Ok).then_some("warn")] { (c.grade.as_str()) }
                dd {
                    (c.what)
                    @if let Some(hint) = &c.hint { br; small { "hint: " (hint) } }
                }
                "\n"
            }
        }
        "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(grades: &[(Grade, &str)]) -> Noise {
        Noise {
            cpus: "0-1".into(),
            sample_s: Some(0.5),
            checks: grades
                .iter()
                .map(|(g, what)| Check {
                    key: "k".into(),
                    grade: *g,
                    what: what.to_string(),
                    hint: (*g != Grade::Ok).then(|| "do <this>".into()),
                })
                .collect(),
            tuned: Vec::new(),
        }
    }

    #[test]
    fn a_line_names_the_failures_with_figures_and_the_warnings_by_name() {
        let n = noise(&[
            (Grade::Ok, "ASLR: 2 (full)"),
            (Grade::Fail, "cpu 1: busy 60.0%"),
            (Grade::Warn, "turbo: unknown (no switch)"),
            (Grade::Warn, "irq affinity: 3 of 4"),
        ]);
        assert_eq!(
            line(&n),
            "cpus 0-1, sampled 0.5 s; fail: cpu 1: busy 60.0%; warn: turbo, irq affinity"
        );
        let quiet = noise(&[(Grade::Ok, "ASLR: 2")]);
        assert_eq!(line(&quiet), "cpus 0-1, sampled 0.5 s: all 1 checks ok");
    }

    #[test]
    fn the_html_block_escapes_and_marks_what_is_not_ok() {
        let h = html(&noise(&[(Grade::Ok, "ASLR: 2"), (Grade::Warn, "a <b> c")])).into_string();
        assert!(h.starts_with("<h3>Host noise</h3>"), "{h}");
        assert!(h.contains("<dt>ok</dt><dd>ASLR: 2</dd>"), "{h}");
        assert!(
            h.contains("<dt class=\"warn\">warn</dt><dd>a &lt;b&gt; c<br><small>hint: do &lt;this&gt;</small></dd>"),
            "{h}"
        );
    }
}
