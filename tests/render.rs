//! The renderers on real results: `tests/fixtures/*.results.json` are copies of the
//! `results.json` of runs of `envs/quickstart.toml` (one numeric axis, a custom metric) and
//! `envs/cpu-quota.toml` (two axes, one of them a table axis).
//!
//! Snapshots (every text output: table.tex, results.csv, bencher.json, the text of report.html,
//! summary.md and the terminal table) live in `tests/fixtures/expected/`; `BENCHBOX_UPDATE_SNAPSHOTS=1 cargo test --test
//! render` rewrites them (review the diff before committing). The browser test needs Debian's
//! `chromium`; it skips without it unless `BENCHBOX_REQUIRE_BROWSER=1`, which makes that a failure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use benchbox::render::{self, RenderError, RenderOptions};
use benchbox::results::RunResults;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> RunResults {
    let path = fixtures().join(format!("{name}.results.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The analysis every renderer reads, with the default options.
fn analysis(r: &benchbox::results::RunResults) -> render::Analysis<'_> {
    render::Analysis::new(r, &default_opts()).unwrap()
}

fn default_opts() -> RenderOptions {
    RenderOptions::default()
}

/// Compares `actual` with `tests/fixtures/expected/<name>`, or rewrites it when
/// `BENCHBOX_UPDATE_SNAPSHOTS=1`.
fn snapshot(name: &str, actual: &str) {
    let path = fixtures().join("expected").join(name);
    if std::env::var("BENCHBOX_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read snapshot {}: {e} (hint: BENCHBOX_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its snapshot at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             (hint: if the change is intended, BENCHBOX_UPDATE_SNAPSHOTS=1 rewrites it)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The text a reader sees in the HTML: tags, the style sheet and inline SVGs removed, one
/// line per block, whitespace collapsed. Plot internals are tested separately.
fn html_text(html: &str) -> String {
    let mut s = html.to_string();
    for (open, close) in [("<style>", "</style>"), ("<svg", "</svg>")] {
        while let Some(start) = s.find(open) {
            let end = s[start..]
                .find(close)
                .map(|e| start + e + close.len())
                .unwrap();
            s.replace_range(start..end, "[svg]");
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn snapshots_of_the_text_formats() {
    for name in ["quickstart", "cpu-quota"] {
        let r = fixture(name);
        snapshot(
            &format!("{name}.table.tex"),
            &render::latex(&r, &default_opts()).unwrap(),
        );
        snapshot(&format!("{name}.results.csv"), &render::stats_csv(&r));
        snapshot(&format!("{name}.bencher.json"), &render::bmf_json(&r));
        snapshot(
            &format!("{name}.report.txt"),
            &html_text(&render::html(&r, &default_opts()).unwrap()),
        );
        // summary.md and the table `run` and `report` print, with the default reference.
        snapshot(
            &format!("{name}.summary.md"),
            &render::markdown(&r, &default_opts()).unwrap(),
        );
        snapshot(
            &format!("{name}.terminal.txt"),
            &benchbox::ui::summary_table(&r),
        );
    }
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let r = fixture("cpu-quota");
    let a = render::plots(&r, &default_opts()).unwrap();
    let b = render::plots(&r, &default_opts()).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        render::html(&r, &default_opts()).unwrap(),
        render::html(&r, &default_opts()).unwrap()
    );
    assert_eq!(
        render::latex(&r, &default_opts()).unwrap(),
        render::latex(&r, &default_opts()).unwrap()
    );
    assert_eq!(render::stats_csv(&r), render::stats_csv(&r));
    assert_eq!(render::bmf_json(&r), render::bmf_json(&r));
}

/// Every text node of an SVG, after checking that it parses as XML.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("bad SVG: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[test]
fn svg_plots_parse_and_carry_labels_and_axis_titles() {
    let r = fixture("quickstart");
    let plots = render::plots(&r, &default_opts()).unwrap();
    let stems: Vec<&str> = plots.iter().map(|p| p.stem.as_str()).collect();
    for stem in [
        "distribution-wall_s",
        "medians-wall_s",
        "line-wall_s-level",
        "ratios-wall_s",
        "distribution-peak_memory_bytes",
        "distribution-compressed",
    ] {
        assert!(stems.contains(&stem), "{stem} missing from {stems:?}");
    }
    // Memory over time is not sampled yet, so there is no such plot.
    assert!(!stems.iter().any(|s| s.contains("over-time")));
    for p in &plots {
        let texts = svg_texts(&p.svg);
        let all = texts.join("\n");
        if p.stem.starts_with("distribution-") || p.stem.starts_with("ratios-") {
            for label in ["level=1", "level=6", "level=9"] {
                assert!(all.contains(label), "{}: no {label} in {texts:?}", p.stem);
            }
        }
        if p.stem == "distribution-wall_s" {
            assert!(texts.contains(&"Wall time (ms)".to_string()), "{texts:?}");
        }
        if p.stem == "distribution-peak_memory_bytes" {
            assert!(
                texts.contains(&"Peak memory (MiB)".to_string()),
                "{texts:?}"
            );
        }
        if p.stem.starts_with("medians-") || p.stem.starts_with("line-") {
            // The x axis title is the axis name in words.
            assert!(
                texts.contains(&"Level".to_string()),
                "{}: {texts:?}",
                p.stem
            );
            // One axis: a single panel, so no facet titles.
            assert!(!all.contains("level="), "{}: {texts:?}", p.stem);
        }
        if p.stem == "ratios-wall_s" {
            assert!(all.contains("Wall time relative to level=1"), "{texts:?}");
        }
    }
}

#[test]
fn two_axes_give_one_panel_per_value_of_the_second() {
    let r = fixture("cpu-quota");
    let plots = render::plots(&r, &default_opts()).unwrap();
    let medians = plots.iter().find(|p| p.stem == "medians-wall_s").unwrap();
    let texts = svg_texts(&medians.svg);
    // Panel titles and the x axis title in words ("Mem = small", "Quota").
    for t in [
        "Mem = small",
        "Mem = large",
        "Quota",
        "0.5",
        "1.0",
        "Wall time (ms)",
    ] {
        assert!(texts.contains(&t.to_string()), "no {t} in {texts:?}");
    }
    // Two quota values only: no line over it.
    assert!(!plots.iter().any(|p| p.stem.starts_with("line-")));
}

#[test]
fn pngs_decode_and_are_not_blank() {
    let r = fixture("quickstart");
    for p in render::plots(&r, &default_opts()).unwrap() {
        let decoder = png::Decoder::new(p.png.as_slice());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert!(info.width >= 1000, "{}: {} px wide", p.stem, info.width);
        let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
        let distinct: HashSet<&[u8]> = pixels.iter().copied().collect();
        // Antialiased text and lines in several colours give many distinct values.
        assert!(
            distinct.len() > 50,
            "{}: {} colours",
            p.stem,
            distinct.len()
        );
        let ink = pixels
            .iter()
            .filter(|px| px.iter().any(|c| *c < 128))
            .count();
        assert!(ink * 200 > pixels.len(), "{}: too little ink", p.stem);
    }
}

#[test]
fn a_chosen_reference_is_used_for_every_ratio() {
    let r = fixture("quickstart");
    let opts = RenderOptions {
        reference: Some("level=6".into()),
    };
    let tables = render::metric_tables(&r, &opts).unwrap();
    for t in &tables {
        assert_eq!(t.reference_label(), Some("level=6"));
        let row = &t.rows[1];
        assert!(row.is_reference);
        assert_eq!(row.ratio.as_ref().unwrap().ratio, 1.0);
    }
    assert!(
        render::html(&r, &opts)
            .unwrap()
            .contains("Ratio to <code>level=6</code>")
    );
    // By default, one reference for every metric: the fastest median wall time (level=1),
    // also where another cell is best (level=6 compresses best).
    let tables = render::metric_tables(&r, &default_opts()).unwrap();
    for t in &tables {
        assert_eq!(t.reference_label(), Some("level=1"), "{}", t.metric.key);
    }
    let html = render::html(&r, &default_opts()).unwrap();
    assert!(
        html.contains("<dt>Reference</dt><dd>the cell <code>level=1</code> (fastest median wall time), for every metric</dd>"),
        "{html}"
    );
}

#[test]
fn a_bad_reference_is_an_error_that_lists_the_cells() {
    let r = fixture("cpu-quota");
    let opts = |s: &str| RenderOptions {
        reference: Some(s.into()),
    };
    let e = render::html(&r, &opts("quota=1.0")).unwrap_err();
    assert!(
        matches!(
            e,
            RenderError::Reference(benchbox::reference::ReferenceError::Ambiguous { count: 2, .. })
        ),
        "{e}"
    );
    let e = render::write_all(&r, Path::new("/nonexistent"), &opts("gc=G1")).unwrap_err();
    assert!(e.to_string().contains("`quota=0.5 mem=small`"), "{e}");
    assert!(render::latex(&r, &opts("quota=1.0 mem=large")).is_ok());
    assert!(render::latex(&r, &opts("quota=1.0,mem=small")).is_ok());
}

#[test]
fn labels_with_special_characters_are_escaped_everywhere() {
    let mut r = fixture("quickstart");
    let nasty = r#"50%_fast & <b>"x"</b> #1 {y} ~z"#;
    r.cells[0].label = nasty.into();
    r.cells[0].axes[0].1 = serde_json::Value::String(nasty.into());
    let tex = render::latex(&r, &default_opts()).unwrap();
    assert!(
        tex.contains(r#"50\%\_fast \& \textless{}b\textgreater{}"x"\textless{}/b\textgreater{} \#1 \{y\} \textasciitilde{}z"#),
        "{tex}"
    );
    let html = render::html(&r, &default_opts()).unwrap();
    assert!(!html.contains("<b>"));
    assert!(html.contains("50%_fast &amp; &lt;b&gt;&quot;x&quot;&lt;/b&gt;"));
    for p in render::plots(&r, &default_opts()).unwrap() {
        svg_texts(&p.svg);
    }
    let csv = render::stats_csv(&r);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let labels: Vec<String> = reader
        .records()
        .map(|rec| rec.unwrap()[1].to_string())
        .collect();
    assert!(labels.contains(&nasty.to_string()));
}

#[test]
fn html_is_self_contained() {
    let html = render::html(&fixture("cpu-quota"), &default_opts()).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("default-src 'none'"));
    for needle in [
        "<script",
        "src=",
        "href=\"http",
        "url(",
        "@import",
        "<link",
        "<?xml",
    ] {
        assert!(!html.contains(needle), "report.html contains {needle}");
    }
    // Environment: limits as applied, host, seed, matrix hash, tool version.
    for fact in [
        "CPU quota 0.50 cores",
        "memory 64.0 MiB, no swap",
        "memory 512.0 MiB, no swap",
        "AMD EPYC",
        &fixture("cpu-quota").seed.to_string(),
        &fixture("cpu-quota").matrix_sha256,
        "benchbox 0.1.0",
    ] {
        assert!(html.contains(fact), "report.html lacks {fact}");
    }
}

#[test]
fn write_all_writes_every_format_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let results = fixture("quickstart");
    let written = render::write_all(&results, dir.path(), &default_opts()).unwrap();
    let names: Vec<PathBuf> = written
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
        .collect();
    for f in [
        "report.html",
        "table.tex",
        "results.csv",
        "bencher.json",
        "plots/distribution-wall_s.svg",
        "plots/distribution-wall_s.png",
    ] {
        assert!(names.contains(&PathBuf::from(f)), "{f} not in {names:?}");
    }
    for p in &written {
        assert!(p.exists(), "{}", p.display());
    }
    // Nothing but what was listed (no temp files left behind).
    let on_disk = walk(dir.path());
    assert_eq!(on_disk.len(), written.len());
    if let Ok(out) = std::env::var("BENCHBOX_RENDER_OUT") {
        for p in &written {
            let to = Path::new(&out).join(p.strip_prefix(dir.path()).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(p, to).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The Chromium binary, if installed (Debian's `chromium`).
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Hosts Chromium itself talks to in the background (updates, sign-in), whatever the page.
/// They are sent to a dead proxy below, so nothing leaves the machine; they are not the page's.
fn browser_own_host(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':', '?']).next())
        .unwrap_or("");
    [
        "google.com",
        "googleapis.com",
        "gstatic.com",
        "gvt1.com",
        "chromium.org",
    ]
    .iter()
    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

#[test]
fn a_real_browser_opens_the_report_with_no_error_and_no_request() {
    let Some(browser) = chromium() else {
        if std::env::var("BENCHBOX_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "chromium is not installed and BENCHBOX_REQUIRE_BROWSER=1 (hint: apt-get install -y chromium)"
            );
        }
        eprintln!(
            "SKIPPED: chromium is not installed (apt-get install -y chromium); set BENCHBOX_REQUIRE_BROWSER=1 to fail instead"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let results = fixture("cpu-quota");
    render::write_all(&results, dir.path(), &default_opts()).unwrap();
    let report = dir.path().join("report.html");
    let profile = dir.path().join("profile");
    let shot = dir.path().join("shot.png");
    let netlog = dir.path().join("net.json");
    let output = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-pings",
            // Whatever Chromium or the page might try goes nowhere: a closed local port, and no
            // name resolves.
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {stderr}");

    // The page has no script, so any console message is a problem: a CSP violation (a blocked
    // request), a parse error...
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");

    // The net log records every URL request; the page may make none but its own file.
    let log = std::fs::read_to_string(&netlog).unwrap();
    let log: serde_json::Value = serde_json::from_str(&log)
        // Chromium may leave the JSON's closing brackets off if killed; be lenient.
        .or_else(|_| serde_json::from_str(&format!("{}]}}", log.trim_end().trim_end_matches(','))))
        .unwrap();
    let mut urls: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["params"]["url"].as_str().map(String::from))
        .filter(|u| !browser_own_host(u))
        .collect();
    urls.sort();
    urls.dedup();
    let report_url = format!("file://{}", report.display());
    assert!(
        urls.iter().all(|u| *u == report_url),
        "requests besides the report itself: {urls:?}"
    );

    // The screenshot shows a page, not a blank.
    let bytes = std::fs::read(&shot).unwrap();
    let mut reader = png::Decoder::new(bytes.as_slice()).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let distinct: HashSet<&[u8]> = pixels.iter().copied().collect();
    let ink = pixels
        .iter()
        .filter(|px| px.iter().take(3).any(|c| *c < 160))
        .count();
    assert!(distinct.len() > 100, "{} colours", distinct.len());
    assert!(
        ink * 100 > pixels.len(),
        "too little ink: {ink} of {}",
        pixels.len()
    );
}

#[test]
#[ignore = "writes the cpu-quota plots to $BENCHBOX_RENDER_OUT for a person to look at"]
fn dump_cpu_quota() {
    let out = std::env::var("BENCHBOX_RENDER_OUT").unwrap();
    render::write_all(&fixture("cpu-quota"), Path::new(&out), &default_opts()).unwrap();
}

#[test]
fn memory_over_time_is_plotted_only_when_sampled() {
    let mut results = fixture("quickstart");
    let stems = |r: &RunResults| -> Vec<String> {
        render::plots(r, &default_opts())
            .unwrap()
            .into_iter()
            .map(|p| p.stem)
            .collect()
    };
    assert!(
        !stems(&results).iter().any(|s| s == "memory-over-time"),
        "no samples, no plot"
    );
    for (k, cell) in results.cells.iter_mut().enumerate() {
        cell.memory_timeline = (0..20)
            .map(|i| (i as f64 * 0.05, (1 + k as u64) << 20 | (i as u64) << 12))
            .collect();
    }
    let all = render::plots(&results, &default_opts()).unwrap();
    let plot = all
        .iter()
        .find(|p| p.stem == "memory-over-time")
        .expect("a memory-over-time plot");
    let doc = roxmltree::Document::parse(&plot.svg).unwrap();
    let text: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("Time since exec (s)") && text.contains("Memory (MiB)"),
        "{text}"
    );
    for cell in &results.cells {
        assert!(text.contains(&cell.label), "{text}");
    }
}

#[test]
fn the_security_policy_is_shown_and_a_loosened_one_leads_the_page() {
    use benchbox::sandbox::security::Policy;

    // The fixtures record the default policy for every cell: no warning, "default" per cell.
    let html = html_text(&render::html(&fixture("quickstart"), &default_opts()).unwrap());
    assert!(!html.contains(" runs with "), "{html}");
    assert_eq!(
        html.matches(" pids 64 default 10 (0 failed)").count(),
        3,
        "{html}"
    );

    let mut results = fixture("quickstart");
    results.cells[1].security = Some(
        Policy {
            seccomp_unconfined: true,
            ..Policy::default()
        }
        .effective(),
    );
    // A results.json written before policies were recorded.
    results.cells[2].security = None;
    let html = html_text(&render::html(&results, &default_opts()).unwrap());
    let warning = "cell `level=6` runs with seccomp unconfined: its workload has no seccomp filter";
    let at = html.find(warning).expect("a warning for the loosened cell");
    assert!(
        at < html.find("Wall time (ms, lower is better)").unwrap(),
        "before the numbers:\n{html}"
    );
    assert!(
        html.contains(" pids 64 seccomp unconfined 10 (0 failed)"),
        "{html}"
    );
    assert!(
        html.contains(" pids 64 not recorded 10 (0 failed)"),
        "{html}"
    );
}

/// The quickstart run with two cells of `n` measured invocations each (values spread
/// deterministically around the recorded ones), summarised again; few resamples, as the
/// figures are what is tested.
fn large_run(n: u32) -> RunResults {
    let mut r = fixture("quickstart");
    r.cells.truncate(2);
    r.stats.resamples = 200;
    for (c, cell) in r.cells.iter_mut().enumerate() {
        let template = cell
            .samples
            .iter()
            .find(|s| s.phase == benchbox::plan::Phase::Measure)
            .unwrap()
            .clone();
        cell.samples = (0..n)
            .map(|i| {
                let mut s = template.clone();
                s.index = i;
                // A fixed, scrambled spread of +-10% (the order differs from sorted order).
                let u = ((i as u64 * 7_919 + c as u64 * 104_729) % 1_009) as f64 / 1_009.0;
                let f = 0.9 + 0.2 * u;
                s.measured.wall_s *= f;
                s.measured.user_s *= f;
                s.measured.peak_memory_bytes = s.measured.peak_memory_bytes.map(|b| b + i as u64);
                s.metrics = s.metrics.iter().map(|(k, v)| (k.clone(), v * f)).collect();
                s
            })
            .collect();
    }
    benchbox::report::summarize(&mut r);
    r
}

fn elements(svg: &str, name: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.is_element() && (name.is_empty() || n.tag_name().name() == name))
        .count()
}

#[test]
fn small_runs_draw_every_invocation_and_say_nothing_of_thinning() {
    let r = fixture("quickstart");
    let plots = render::plots(&r, &default_opts()).unwrap();
    let wall = plots
        .iter()
        .find(|p| p.stem == "distribution-wall_s")
        .unwrap();
    let measured: usize = r
        .cells
        .iter()
        .map(|c| {
            c.samples
                .iter()
                .filter(|s| s.counts_toward_statistics())
                .count()
        })
        .sum();
    assert_eq!(elements(&wall.svg, "circle"), measured);
    assert!(!wall.caption.contains("thinned"), "{}", wall.caption);
    assert!(!svg_texts(&wall.svg).join(" ").contains("Points"));
}

#[test]
fn large_cells_are_thinned_with_a_bounded_size_and_say_so() {
    const N: u32 = 2_000;
    let r = large_run(N);
    let plots = render::plots(&r, &default_opts()).unwrap();
    let bound = render::plots::MAX_POINTS_PER_CELL + 1;
    for p in plots.iter().filter(|p| p.stem.starts_with("distribution-")) {
        // Per cell at most the bound (and the largest), plus the chart's own elements.
        let circles = elements(&p.svg, "circle");
        assert!(circles <= 2 * bound, "{}: {circles} circles", p.stem);
        assert!(circles >= bound, "{}: {circles} circles", p.stem);
        let all = elements(&p.svg, "");
        assert!(all <= 2 * bound + 200, "{}: {all} elements", p.stem);
        let words = "every 10th of 2,000 invocations shown per cell";
        assert!(p.caption.contains(words), "{}", p.caption);
        assert!(svg_texts(&p.svg).join(" ").contains(words), "{}", p.stem);
    }
    // report.html: the small report and a budget per cell and plotted metric that does not
    // grow with the invocations (the points as SVG circles, about 90 bytes each).
    let html = render::html::html_with_plots(&analysis(&r), &plots).unwrap();
    let small = render::html(&fixture("quickstart"), &default_opts()).unwrap();
    let distributions = plots
        .iter()
        .filter(|p| p.stem.starts_with("distribution-"))
        .count();
    let budget = small.len() + distributions * r.cells.len() * bound * 100;
    assert!(
        html.len() < budget,
        "report.html is {} bytes, over {budget}",
        html.len()
    );
    assert!(html.contains("every 10th of 2,000 invocations shown per cell"));
}

#[test]
fn thinning_is_deterministic_and_independent_of_the_order_of_invocations() {
    let r = large_run(1_000);
    let a = render::plots(&r, &default_opts()).unwrap();
    assert_eq!(a, render::plots(&r, &default_opts()).unwrap());
    assert_eq!(
        render::html::html_with_plots(&analysis(&r), &a).unwrap(),
        render::html::html_with_plots(&analysis(&r), &a).unwrap()
    );
    // The same invocations recorded in another order: the same distribution plots.
    let mut reversed = r.clone();
    for cell in &mut reversed.cells {
        cell.samples.reverse();
    }
    let b = render::plots(&reversed, &default_opts()).unwrap();
    for (pa, pb) in a.iter().zip(&b) {
        if pa.stem.starts_with("distribution-") {
            assert_eq!(pa, pb, "{}", pa.stem);
        }
    }
}

#[test]
fn a_long_memory_timeline_is_a_band_of_bounded_size() {
    let mut r = fixture("quickstart");
    for (k, cell) in r.cells.iter_mut().enumerate() {
        cell.memory_timeline = (0..20_000u64)
            .map(|i| (i as f64 * 0.01, (10 + k as u64) << 20 | (i % 64) << 12))
            .collect();
    }
    let plots = render::plots(&r, &default_opts()).unwrap();
    let memory = plots.iter().find(|p| p.stem == "memory-over-time").unwrap();
    assert!(memory.caption.contains("10-90% band"), "{}", memory.caption);
    assert_eq!(elements(&memory.svg, "circle"), 0);
    assert!(memory.svg.len() < 100_000, "{} bytes", memory.svg.len());
    assert!(elements(&memory.svg, "") < 300);
}

#[test]
fn memory_over_time_is_a_band_over_the_measured_invocations_logs() {
    // Each measured invocation's timeline in its logs: the plot pools them, one band per cell,
    // and says so; without the logs it falls back to the cell's last timeline.
    let mut r = fixture("quickstart");
    for cell in &mut r.cells {
        cell.memory_timeline = (0..5).map(|i| (i as f64 * 0.1, 8 << 20)).collect();
    }
    let dir = tempfile::tempdir().unwrap();
    let draw = || {
        let analysis = render::Analysis::new(&r, &default_opts())
            .unwrap()
            .with_figure_data(dir.path(), &[render::Format::Plots]);
        render::plots::plots_of(&analysis)
            .unwrap()
            .into_iter()
            .find(|p| p.stem == "memory-over-time")
            .unwrap()
    };
    let last_only = draw();
    assert!(
        last_only.caption.contains("its last measured invocation"),
        "{}",
        last_only.caption
    );
    assert!(elements(&last_only.svg, "circle") > 0, "dots on samples");
    for cell in &r.cells {
        for s in cell.samples.iter().filter(|s| s.counts_toward_statistics()) {
            let path =
                benchbox::results::memory_timeline_path(dir.path(), &cell.slug, "measure", s.index);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut text = String::from("t_s,memory_bytes\n");
            for i in 0..50u64 {
                let bytes = (10 + u64::from(s.index)) << 20 | i << 12;
                text.push_str(&format!("{:.3},{bytes}\n", i as f64 * 0.01));
            }
            std::fs::write(path, text).unwrap();
        }
    }
    let pooled = draw();
    assert!(
        pooled
            .caption
            .contains("over the cell's measured invocations")
            && pooled.caption.contains("10-90% band"),
        "{}",
        pooled.caption
    );
    assert_eq!(elements(&pooled.svg, "circle"), 0, "bins, not samples");
    assert_ne!(pooled.svg, last_only.svg);
    assert_eq!(draw(), pooled, "the same files, the same figure");
}

/// Whatever a matrix or a run carries is text in report.html, never markup: a hostile cell
/// label, axis value, metric name and unit, matrix name, description, warning or caption.
#[test]
fn hostile_names_are_escaped_in_report_html() {
    let evil = r#"<script>alert(1)</script>"onload=alert(2) x='y'"#;
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;onload=alert(2) x='y'";
    let mut r = fixture("quickstart");
    r.cells[0].label = evil.into();
    r.cells[0].axes[0].1 = serde_json::Value::String(evil.into());
    r.matrix_name = evil.into();
    r.plan.description = Some(evil.into());
    r.warnings.push(evil.into());
    let mut a = analysis(&r);
    let mut plots = render::plots::plots_of(&a).unwrap();
    a.tables[0].metric.title = evil.into();
    a.tables[0].scale.unit = evil.into();
    plots[0].caption = evil.into();
    let html = render::html::html_with_plots(&a, &plots).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("\"onload"), "{html}");
    // Title, h1, description, axis value, warning, metric heading and unit, the label in the
    // table, the reference and the environment, the plot's caption and aria-label.
    assert!(html.matches(escaped).count() >= 12, "{html}");
    for (what, at) in [
        ("title", "<title>benchbox: &lt;script&gt;"),
        ("axis value", "<code>&lt;script&gt;alert(1)"),
        ("aria-label", "aria-label=\"&lt;script&gt;"),
        ("table row", "<td>&lt;script&gt;"),
    ] {
        assert!(html.contains(at), "{what}: {html}");
    }
}

/// The quick start with its `[report]` replaced, for the figure options.
fn with_figures(figures: &str) -> RunResults {
    let mut r = fixture("quickstart");
    r.plan.report = serde_json::from_str(figures).unwrap();
    r
}

fn plot<'a>(plots: &'a [render::Plot], stem: &str) -> &'a render::Plot {
    plots
        .iter()
        .find(|p| p.stem == stem)
        .unwrap_or_else(|| panic!("no {stem}"))
}

#[test]
fn golden_svg_of_a_small_fixture() {
    // The whole drawing of one figure, byte for byte: a change to any plot's look shows here.
    let plots = render::plots(&fixture("quickstart"), &default_opts()).unwrap();
    snapshot(
        "quickstart.medians-wall_s.svg",
        &plot(&plots, "medians-wall_s").svg,
    );
    snapshot(
        "quickstart.ratios-wall_s.svg",
        &plot(&plots, "ratios-wall_s").svg,
    );
}

#[test]
fn pdf_embeds_the_font_and_carries_the_axis_text() {
    let plots = render::plots(&fixture("quickstart"), &default_opts()).unwrap();
    let p = plot(&plots, "distribution-wall_s");
    let doc = lopdf::Document::load_mem(&p.pdf).unwrap();
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 1);
    // The page is the printed size: 3.5 in wide, in points.
    let page = doc.get_dictionary(pages[&1]).unwrap();
    let media = page.get(b"MediaBox").unwrap().as_array().unwrap();
    let width = media[2]
        .as_float()
        .unwrap_or_else(|_| media[2].as_i64().unwrap() as f32);
    assert!((width - 252.0).abs() < 1.0, "{width} pt wide");
    // A font descriptor with the font program itself (FontFile2: TrueType), DejaVu Sans.
    let mut embedded = Vec::new();
    for object in doc.objects.values() {
        if let Ok(d) = object.as_dict()
            && d.get(b"Type").and_then(|t| t.as_name()).ok() == Some(b"FontDescriptor".as_slice())
        {
            let name =
                String::from_utf8_lossy(d.get(b"FontName").unwrap().as_name().unwrap()).to_string();
            embedded.push((name, d.has(b"FontFile2") || d.has(b"FontFile3")));
        }
    }
    assert!(
        embedded
            .iter()
            .any(|(n, e)| n.ends_with("+DejaVuSans") && *e),
        "{embedded:?}"
    );
    // The text is text, not outlines: the page shows glyphs (Tj/TJ), and the font's ToUnicode
    // map (what copy and search use) covers every character of the axis title and a label.
    let content = doc.get_page_content(pages[&1]).unwrap();
    let content = String::from_utf8_lossy(&content);
    assert!(
        content.contains("Tj") || content.contains("TJ"),
        "no text shown"
    );
    let mut cmaps = String::new();
    for object in doc.objects.values() {
        if let Ok(d) = object.as_dict()
            && let Ok(r) = d.get(b"ToUnicode").and_then(|o| o.as_reference())
        {
            let stream = doc.get_object(r).unwrap().as_stream().unwrap();
            let bytes = stream
                .decompressed_content()
                .unwrap_or_else(|_| stream.content.clone());
            cmaps.push_str(&String::from_utf8_lossy(&bytes).to_lowercase());
        }
    }
    assert!(cmaps.contains("begincmap"), "no ToUnicode map");
    for c in "Wall time (ms)level=6".chars().filter(|c| *c != ' ') {
        let code = format!("<{:04x}>", c as u32);
        assert!(
            cmaps.contains(&code),
            "{c:?} ({code}) not in the ToUnicode map"
        );
    }
    // The outlined SVG has no text left: every glyph is a path.
    assert!(!p.outlined_svg.contains("<text"));
    assert!(p.outlined_svg.contains("<path"));
}

#[test]
fn a_wide_spread_gets_a_log_axis_by_itself() {
    // One cell 91 times slower than another: the value axes turn logarithmic, and say so.
    let mut r = fixture("quickstart");
    for s in &mut r.cells[2].samples {
        s.measured.wall_s *= 91.0;
    }
    benchbox::report::summarize(&mut r);
    let plots = render::plots(&r, &default_opts()).unwrap();
    for stem in ["distribution-wall_s", "medians-wall_s", "ratios-wall_s"] {
        let p = plot(&plots, stem);
        assert!(p.caption.contains("Logarithmic"), "{stem}: {}", p.caption);
    }
    // The other metrics did not move: linear.
    assert!(
        !plot(&plots, "distribution-cpu_s")
            .caption
            .contains("Logarithmic")
    );
    // `never` keeps it linear.
    r.plan.report.log_scale = Some(benchbox::spec::report_options::LogScale::Never);
    let linear = render::plots(&r, &default_opts()).unwrap();
    assert!(
        !plot(&linear, "medians-wall_s")
            .caption
            .contains("Logarithmic")
    );
}

/// The x tick labels of a line plot: the texts just under the chart's x axis line.
fn tick_texts(svg: &str) -> Vec<String> {
    svg_texts(svg)
        .into_iter()
        .filter(|t| t.parse::<f64>().is_ok())
        .collect()
}

#[test]
fn a_numeric_axis_is_ticked_exactly_at_its_levels() {
    // level = 1, 6, 9: categorical by default, linear on request; either way the ticks on x
    // are the three levels and nothing between them.
    for figures in ["{}", r#"{"axes": {"level": "linear"}}"#] {
        let plots = render::plots(&with_figures(figures), &default_opts()).unwrap();
        let line = plot(&plots, "line-wall_s-level");
        let texts = tick_texts(&line.svg);
        for level in ["1", "6", "9"] {
            assert!(texts.contains(&level.to_string()), "{figures}: {texts:?}");
        }
        for between in ["2", "3", "4", "5", "7", "8"] {
            assert!(
                !texts.contains(&between.to_string()),
                "{figures}: {between} in {texts:?}"
            );
        }
    }
}

#[test]
fn the_reference_has_no_whisker_and_the_caption_says_why() {
    let plots = render::plots(&fixture("quickstart"), &default_opts()).unwrap();
    let ratios = plot(&plots, "ratios-wall_s");
    assert!(
        ratios
            .caption
            .contains("1 by definition, without an interval"),
        "{}",
        ratios.caption
    );
    // Two other cells, each a bar and two caps; the reference a triangle alone. Bars are
    // horizontal two-point polylines in the series colour (#0072B2).
    let doc = roxmltree::Document::parse(&ratios.svg).unwrap();
    let whiskers = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline" && n.attribute("stroke") == Some("#0072B2"))
        .count();
    assert_eq!(whiskers, 2 * 3, "{}", ratios.svg);
    let triangles = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polygon" && n.attribute("fill") == Some("#000000"))
        .count();
    assert_eq!(triangles, 1);
}

#[test]
fn captions_say_what_is_drawn_and_how_it_was_measured() {
    let r = fixture("quickstart");
    let plots = render::plots(&r, &default_opts()).unwrap();
    let n = r.cells[0].summary["wall_s"].n;
    let seed = r.stats.seed;
    for p in &plots {
        if p.stem == "memory-over-time" {
            continue;
        }
        // n, the interval method and its seed, in every statistical figure.
        assert!(
            p.caption.contains(&format!("n = {n} invocations per cell")),
            "{}: {}",
            p.stem,
            p.caption
        );
        assert!(p.caption.contains("95%"), "{}: {}", p.stem, p.caption);
        assert!(
            p.caption.contains(&format!("seed {seed}")),
            "{}: {}",
            p.stem,
            p.caption
        );
    }
    let d = plot(&plots, "distribution-wall_s");
    for words in [
        "every measured invocation per cell",
        "quartiles",
        "median",
        "1.5 IQR whiskers",
        "Points beyond the whiskers (Tukey, 1.5 IQR) in vermillion",
    ] {
        assert!(d.caption.contains(words), "no {words:?} in {}", d.caption);
    }
    let m = plot(&plots, "medians-wall_s");
    assert!(
        m.caption.contains("median per cell (points)"),
        "{}",
        m.caption
    );
    assert!(
        m.caption.contains("confidence interval (whiskers)"),
        "{}",
        m.caption
    );
    // captions.tex: one macro per plot, escaped for LaTeX.
    let tex = render::pdf::captions_tex(&plots);
    assert!(tex.contains("\\newcommand{\\benchboxCaptionDistributionWallS}{"));
    assert_eq!(tex.matches("\\newcommand").count(), plots.len());
}
