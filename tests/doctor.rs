//! `benchbox doctor` on this real host: the noise checks and the live sample are printed for the
//! cpus asked for (`--cpus`, a matrix's pins), `--strict` turns noise into exit 8, bad input is
//! an error with a hint; and a real run records the noise in results.json and its reports. The
//! host is shared, so the tests assert which lines exist and that the exit code agrees with
//! them, never the grades.

mod common;

use std::fs;

use benchbox::spec::CpuSet;
use common::project::{Project, text};

/// The noise checks every doctor prints, by the start of their text.
const STATIC: [&str; 10] = [
    "load average: ",
    "steal time since boot: ",
    "ASLR: ",
    "transparent huge pages",
    "isolated cpus: ",
    "irq affinity: ",
    "hardware counters: ",
    "turbo: ",
    "cpu frequency governor: ",
    "swap: ",
];

/// The lines of doctor's output that are findings: (mark, text).
fn findings(out: &str) -> Vec<(&str, &str)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (mark, what) = rest.split_once("] ")?;
            Some((mark.trim(), what))
        })
        .collect()
}

fn has(found: &[(&str, &str)], start: &str) -> bool {
    found.iter().any(|(_, w)| w.starts_with(start))
}

#[test]
fn doctor_checks_the_cpus_asked_for_and_samples_them() {
    let o = common::benchbox()
        .args(["doctor", "--cpus", "0"])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let found = findings(&out);
    assert!(out.contains("\nnoise on cpus 0 (sampling 1 s):\n"), "{out}");
    for start in STATIC {
        assert!(has(&found, start), "no `{start}` in\n{out}");
    }
    assert!(has(&found, "runnable tasks besides benchbox: "), "{out}");
    assert!(has(&found, "cpu 0: busy "), "{out}");
    assert!(!has(&found, "cpu 1: busy "), "cpu 1 not asked for: {out}");
    // Every finding is graded, and every one that is not ok has its hint on the next line.
    let lines: Vec<&str> = out.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("[warn]") || l.starts_with("[fail]") {
            assert!(lines[i + 1].starts_with("       hint: "), "{l}: {out}");
        }
    }
    for (mark, what) in &found {
        assert!(
            ["ok", "warn", "fail", "FAIL"].contains(mark),
            "{mark} {what}"
        );
    }
    // Noise never changes the exit code without --strict: 0, or 3 when isolation is blocked.
    let blocked = found.iter().any(|(m, _)| *m == "FAIL");
    assert_eq!(
        o.status.code(),
        Some(if blocked { 3 } else { 0 }),
        "{}",
        text(&o)
    );
}

#[test]
fn strict_exits_8_on_noise_and_no_sample_skips_the_sample() {
    let o = common::benchbox()
        .args(["doctor", "--cpus", "0", "--no-sample", "--strict"])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let found = findings(&out);
    assert!(out.contains("\nnoise on cpus 0:\n"), "{out}");
    assert!(!has(&found, "cpu 0: busy "), "{out}");
    assert!(!has(&found, "runnable tasks besides benchbox"), "{out}");
    let blocked = found.iter().any(|(m, _)| *m == "FAIL");
    let noisy = found.iter().any(|(m, _)| *m == "fail")
        || out
            .split("\nnoise on cpus")
            .nth(1)
            .is_some_and(|noise| noise.contains("[warn]"));
    let expected = if blocked {
        3
    } else if noisy {
        8
    } else {
        0
    };
    assert_eq!(o.status.code(), Some(expected), "{}", text(&o));
}

#[test]
fn doctor_refuses_bad_cpus_with_a_hint() {
    for (cpus, says) in [
        ("0-x", "invalid --cpus `0-x`: "),
        ("4000", "--cpus 4000: not all online"),
    ] {
        let o = common::benchbox()
            .args(["doctor", "--cpus", cpus, "--no-sample"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains(says), "{err}");
        assert!(err.contains("\n  hint: "), "{err}");
        assert!(o.stdout.is_empty(), "nothing printed before the error");
    }
}

#[test]
fn doctor_file_checks_the_cpus_a_matrix_pins() {
    // One cell on the first online cpu, one on the last: the union is checked.
    let online: CpuSet = fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (first, last) = (online.cpus().next().unwrap(), online.cpus().last().unwrap());
    let pinned = Project::on_host(&format!(
        "name = \"p\"\n[matrix]\nn = [{first}, {last}]\n[limits]\ncpus = \"{{n}}\"\n[run]\ncommand = \"true\"\n"
    ));
    let o = pinned
        .cmd(&["doctor", "m.toml", "--no-sample"])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let union = CpuSet::new([first, last]);
    assert!(
        out.contains(&format!("\nnoise on cpus {union}:\n")),
        "{}",
        text(&o)
    );
    let free = Project::on_host("name = \"f\"\n[run]\ncommand = \"true\"\n");
    let o = free
        .cmd(&["doctor", "m.toml", "--no-sample"])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(
        out.contains(&format!("\nnoise on cpus {online}:\n")),
        "{}",
        text(&o)
    );
    let broken = Project::on_host("name = \"b\"\n[run\n");
    let o = broken.cmd(&["doctor", "m.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("m.toml:2:"), "{}", text(&o));
}

#[test]
fn a_run_records_the_noise_on_its_cpus() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        "name = \"n\"\n[environment]\nrootfs = \"./rootfs\"\n[limits]\ncpus = \"0\"\n[run]\ncommand = \"true\"\nwarmup = 0\nruns = 2\n",
    );
    let o = p.cmd(&["run", "m.toml", "--out", "out"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let results = p.results("n");
    let noise = &results["host"]["noise"];
    assert_eq!(noise["cpus"], "0", "{noise:#}");
    assert!(noise["sample_s"].as_f64().unwrap() >= 0.5, "{noise:#}");
    let keys: Vec<&str> = noise["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    for key in [
        "load",
        "aslr",
        "isolation",
        "irq",
        "governor",
        "sample.cpu0",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(!keys.contains(&"sample.cpu1"), "{keys:?}");
    for c in noise["checks"].as_array().unwrap() {
        assert!(
            ["ok", "warn", "fail"].contains(&c["grade"].as_str().unwrap()),
            "{c}"
        );
    }
    let dir = p.latest("n");
    let summary = fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("\n- **host noise**: cpus 0, sampled 0."),
        "{summary}"
    );
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h3>Host noise</h3>"), "{html}");
    // `report` rebuilds the same from results.json.
    let o = p.cmd(&["report", dir.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let again = fs::read_to_string(dir.join("summary.md")).unwrap();
    assert_eq!(again, summary);
}
