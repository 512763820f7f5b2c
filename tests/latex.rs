//! table.tex, macros.tex and the pgfplots figures in a real paper: each fixture's files are
//! compiled by pdflatex into a `\documentclass[twocolumn]{article}` that uses every macro in
//! its text, and the log must show no error and no `Overfull \hbox` over 1 pt (the table fits
//! one column; `--wide`, both). Needs Debian's `texlive-latex-recommended`,
//! `texlive-latex-extra` and `texlive-science` (booktabs, siunitx, pgfplots); skips without
//! pdflatex unless `BENCHBOX_REQUIRE_LATEX=1`, which makes that a failure.
//!
//! Also: summary.md and report.html name the same reference cell and show the same ratios.

use std::path::{Path, PathBuf};
use std::process::Command;

use benchbox::render::latex::{CiStyle, TableOptions};
use benchbox::render::{self, Analysis, Format, RenderOptions};
use benchbox::results::RunResults;

fn fixture(name: &str) -> RunResults {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.results.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// cpu-quota with long axis names and values, as real matrices have them.
fn wide_labels() -> RunResults {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cpu-quota.results.json"),
    )
    .unwrap();
    let text = text
        .replace("\"quota\"", "\"cpu_quota_in_cores\"")
        .replace("quota=", "cpu_quota_in_cores=")
        .replace("\"mem\"", "\"memory_configuration_of_the_container\"")
        .replace(" mem=", " memory_configuration_of_the_container=")
        .replace("\"small\"", "\"openjdk-21-jre-headless_small_heap\"")
        .replace("=small", "=openjdk-21-jre-headless_small_heap")
        .replace("\"large\"", "\"openjdk-21-jre-headless_large_heap\"")
        .replace("=large", "=openjdk-21-jre-headless_large_heap");
    let mut run: RunResults = serde_json::from_str(&text).unwrap();
    benchbox::report::summarize(&mut run);
    run
}

fn pdflatex() -> Option<PathBuf> {
    let found = Command::new("pdflatex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("pdflatex"));
    }
    if std::env::var("BENCHBOX_REQUIRE_LATEX").as_deref() == Ok("1") {
        panic!(
            "pdflatex is not installed and BENCHBOX_REQUIRE_LATEX=1 (hint: apt-get install -y --no-install-recommends texlive-latex-recommended texlive-latex-extra texlive-science)"
        );
    }
    eprintln!(
        "SKIPPED: pdflatex is not installed (texlive-latex-recommended, texlive-latex-extra, texlive-science); set BENCHBOX_REQUIRE_LATEX=1 to fail instead"
    );
    None
}

/// Writes the LaTeX files of `run` into `dir`, laid out as `table` says.
fn write_tex(run: &RunResults, dir: &Path, table: TableOptions) -> Vec<PathBuf> {
    let analysis = Analysis::new(run, &RenderOptions::default())
        .unwrap()
        .with_table(table);
    render::write_analysis(&analysis, dir, &[Format::Latex]).unwrap()
}

/// Every `\newcommand{\NAME}` of macros.tex.
fn macro_names(macros: &str) -> Vec<String> {
    macros
        .lines()
        .filter_map(|l| l.strip_prefix("\\newcommand{\\"))
        .map(|l| l.split('}').next().unwrap().to_string())
        .collect()
}

/// Compiles a two-column article with the table, a figure and every macro in the text;
/// returns the log. Panics on an error or an overfull box over 1 pt.
fn compile(pdflatex: &Path, dir: &Path, wide: bool) -> String {
    let macros = std::fs::read_to_string(dir.join("macros.tex")).unwrap();
    let names = macro_names(&macros);
    assert!(names.len() > 10, "{macros}");
    // Each macro in a sentence of its own, as a paper quotes them.
    let text: String = names
        .iter()
        .map(|n| format!("The value is \\{n}{{}}.\n"))
        .collect();
    let figure = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|f| f == "medians-wall_s.tex")
        .expect("plots/medians-wall_s.tex is written");
    let (float, end) = if wide {
        ("table*", "table*")
    } else {
        ("table", "table")
    };
    let document = format!(
        "\\documentclass[twocolumn]{{article}}\n\
         \\usepackage{{booktabs,siunitx,pgfplots}}\n\
         \\pgfplotsset{{compat=1.18}}\n\
         \\input{{macros.tex}}\n\
         \\begin{{document}}\n\
         \\begin{{{float}}}\\centering\\input{{table.tex}}\\caption{{Medians.}}\\end{{{end}}}\n\
         \\begin{{figure}}\\centering\\input{{plots/{figure}}}\\caption{{Wall time.}}\\end{{figure}}\n\
         {text}\n\
         \\end{{document}}\n"
    );
    std::fs::write(dir.join("paper.tex"), document).unwrap();
    let out = Command::new(pdflatex)
        .args(["-interaction=nonstopmode", "-halt-on-error", "paper.tex"])
        .current_dir(dir)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.join("paper.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "pdflatex failed in {}:\n{}",
        dir.display(),
        log.lines()
            .filter(|l| l.starts_with('!') || l.starts_with("l."))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for line in log.lines().filter(|l| l.starts_with("Overfull \\hbox (")) {
        let points: f64 = line["Overfull \\hbox (".len()..]
            .split("pt")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(points <= 1.0, "{line} in {}", dir.display());
    }
    assert!(!log.contains("Undefined control sequence"), "{log}");
    assert!(dir.join("paper.pdf").exists());
    log
}

#[test]
fn the_table_macros_and_figure_compile_in_one_column_without_overfull_boxes() {
    let Some(pdflatex) = pdflatex() else { return };
    let runs = [
        ("quickstart", fixture("quickstart")),
        ("cpu-quota", fixture("cpu-quota")),
        ("wide-labels", wide_labels()),
    ];
    for (name, run) in &runs {
        for table in [
            TableOptions::default(),
            TableOptions {
                ci_style: CiStyle::Pm,
                marks: true,
                ..TableOptions::default()
            },
        ] {
            let dir = tempfile::Builder::new().prefix(name).tempdir().unwrap();
            write_tex(run, dir.path(), table);
            compile(&pdflatex, dir.path(), false);
            let tex = std::fs::read_to_string(dir.path().join("table.tex")).unwrap();
            assert!(tex.contains("\\begin{tabular*}{\\linewidth}"), "{tex}");
            if let Ok(out) = std::env::var("BENCHBOX_LATEX_OUT") {
                let to = Path::new(&out).join(name);
                std::fs::create_dir_all(&to).unwrap();
                std::fs::copy(dir.path().join("paper.pdf"), to.join("paper.pdf")).unwrap();
            }
        }
    }
}

#[test]
fn the_wide_table_compiles_across_both_columns() {
    let Some(pdflatex) = pdflatex() else { return };
    for run in [fixture("quickstart"), wide_labels()] {
        let dir = tempfile::tempdir().unwrap();
        write_tex(
            &run,
            dir.path(),
            TableOptions {
                wide: true,
                ..TableOptions::default()
            },
        );
        compile(&pdflatex, dir.path(), true);
        let tex = std::fs::read_to_string(dir.path().join("table.tex")).unwrap();
        assert!(tex.contains("table*"), "{tex}");
    }
}

#[test]
fn long_names_are_abbreviated_with_a_key_and_every_number_has_the_columns_decimals() {
    let run = wide_labels();
    let tex = render::latex(&run, &RenderOptions::default()).unwrap();
    // The headers are short; the key below says what they stand for.
    assert!(tex.contains("cqic & mcotc"), "{tex}");
    assert!(tex.contains("cqic: cpu\\_\\allowbreak{}quota"), "{tex}");
    assert!(tex.contains("(a) openjdk-"), "{tex}");
    // Within a metric column, every number has the same decimals.
    let analysis = Analysis::new(&run, &RenderOptions::default()).unwrap();
    for t in &analysis.tables {
        let d = render::latex::column_decimals(t);
        for r in t.rows.iter().filter_map(|r| r.summary) {
            let text = render::latex::fixed(t, r.median, d);
            assert_eq!(text.split('.').nth(1).map_or(0, str::len), d, "{text}");
            assert!(tex.contains(&text), "{text} not in table.tex");
        }
    }
}

#[test]
fn too_few_invocations_promise_no_interval() {
    let mut run = fixture("quickstart");
    for cell in &mut run.cells {
        let mut kept = 0;
        cell.samples.retain(|s| {
            if s.phase != benchbox::plan::Phase::Measure {
                return true;
            }
            kept += 1;
            kept <= 3
        });
    }
    benchbox::report::summarize(&mut run);
    let tex = render::latex(&run, &RenderOptions::default()).unwrap();
    assert!(
        tex.contains("Median of $n = 3$ invocations per cell; no confidence intervals"),
        "{tex}"
    );
    assert!(!tex.contains("CI of the median"), "{tex}");
    assert!(
        !tex.contains("{\\scriptsize ["),
        "no interval is shown: {tex}"
    );
}

#[test]
fn marks_and_bold_follow_the_reference_and_the_metric_direction() {
    let run = fixture("quickstart");
    let analysis = Analysis::new(&run, &RenderOptions::default())
        .unwrap()
        .with_table(TableOptions {
            marks: true,
            ..TableOptions::default()
        });
    let tex = render::latex::latex_of(&analysis);
    let reference = analysis.reference.as_ref().unwrap().index;
    let wall = &analysis.tables[0];
    assert_eq!(wall.metric.key, "wall_s");
    // The reference is the fastest wall time: its median is the bold one.
    let d = render::latex::column_decimals(wall);
    let best = render::latex::fixed(wall, wall.rows[reference].summary.unwrap().median, d);
    assert!(tex.contains(&format!("\\bfseries {best}")), "{tex}");
    // A dagger for each cell whose ratio interval excludes 1, and the note explains it.
    let marked: usize = analysis
        .tables
        .iter()
        .map(|t| {
            (0..t.rows.len())
                .filter(|&i| render::latex::significant_ratio(t, i))
                .count()
        })
        .sum();
    assert!(marked > 0);
    assert_eq!(
        tex.matches("\\textsuperscript{\\dag}").count(),
        marked,
        "{tex}"
    );
    assert!(
        tex.contains("$^\\dagger$: the 95\\% CI of the ratio"),
        "{tex}"
    );
    let plain = render::latex::latex_of(&analysis.clone().with_table(TableOptions::default()));
    assert!(!plain.contains("\\dag"), "{plain}");
}

#[test]
fn summary_md_and_report_html_name_the_same_reference_and_ratios() {
    for name in ["quickstart", "cpu-quota"] {
        let run = fixture(name);
        let analysis = Analysis::new(&run, &RenderOptions::default()).unwrap();
        let md = render::markdown::markdown_of(&analysis);
        let html = render::html::html_with_plots(&analysis, &[]).unwrap();
        let reference = &run.cells[analysis.reference.as_ref().unwrap().index].label;
        let escaped = reference.replace('&', "&amp;");
        assert!(
            md.contains(&format!("`{reference}`")) || md.contains(reference.as_str()),
            "{md}"
        );
        assert!(html.contains(&escaped), "{reference} not in report.html");
        let mut checked = 0;
        for table in &analysis.tables {
            for row in table.rows.iter().filter(|r| !r.is_reference) {
                let Some(ratio) = row.ratio else { continue };
                let Some(ci) = ratio.ci else { continue };
                let words = render::markdown::describe_ratio(
                    ratio.ratio,
                    ratio.ci,
                    &table.metric,
                    run.stats.confidence,
                );
                assert!(md.contains(&words), "{words} not in summary.md");
                let shown = format!(
                    "{} – {}",
                    render::format_ratio(ci.lower),
                    render::format_ratio(ci.upper)
                );
                assert!(html.contains(&shown), "{shown} not in report.html");
                checked += 1;
            }
        }
        assert!(checked >= 2, "{name}: {checked} ratios checked");
    }
}

/// A copy of `reports/example` (a real run of the quick start): its results.json and runs.csv.
fn copy_of_the_example_run() -> tempfile::TempDir {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/example");
    let dir = tempfile::tempdir().unwrap();
    for f in ["results.json", "runs.csv"] {
        std::fs::copy(example.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn report_writes_the_table_its_macros_and_figures_as_the_flags_say() {
    let run = copy_of_the_example_run();
    let report = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_benchbox"))
            .arg("report")
            .arg(run.path())
            .args(["--format", "tex"])
            .args(args)
            .output()
            .unwrap();
        let out =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        (o.status.code(), out)
    };
    let (code, out) = report(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("macros.tex"), "{out}");
    let read = |f: &str| std::fs::read_to_string(run.path().join(f)).unwrap();
    let narrow = read("table.tex");
    assert!(narrow.contains("inside a table (one column)"), "{narrow}");
    assert!(
        narrow.contains("Median [95\\% CI of the median]"),
        "{narrow}"
    );
    assert!(read("macros.tex").contains("\\newcommand{\\bbLevelOneWallMedian}"));
    let figure = read("plots/medians-wall_s.tex");
    assert!(
        figure.contains("\\benchboxplotsdir/medians-wall_s.csv"),
        "{figure}"
    );
    assert!(read("plots/medians-wall_s.csv").starts_with("index,median,lower,upper,minus,plus\n"));

    let (code, out) = report(&["--wide", "--ci-style", "pm", "--marks"]);
    assert_eq!(code, Some(0), "{out}");
    let wide = read("table.tex");
    assert!(wide.contains("inside a table* (both columns)"), "{wide}");
    assert!(wide.contains("$\\pm$\\,"), "{wide}");
    assert!(
        wide.contains("Median $\\pm$ half the width of its 95\\% CI"),
        "{wide}"
    );
    assert!(wide.contains("$^\\dagger$"), "{wide}");
    if let Some(pdflatex) = pdflatex() {
        compile(&pdflatex, run.path(), true);
    }

    let (code, out) = report(&["--ci-style", "sideways"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("brackets") && out.contains("pm"), "{out}");
}
