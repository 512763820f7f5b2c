//! Tests of the whole pipeline: expansion, substitution, typed values, ids, and every user
//! error with its exact position and hint.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::*;

pub(super) fn ctx() -> ValidationContext {
    ValidationContext {
        online_cpus: "0-1".parse().unwrap(),
        check_paths: false,
        image_accounts: Default::default(),
    }
}

pub(super) fn ok(src: &str) -> Matrix {
    match parse(src, Path::new("envs/x.toml"), &ctx()) {
        Ok(m) => m,
        Err(e) => panic!("unexpected error:\n{e}"),
    }
}

pub(super) fn err(src: &str) -> String {
    match parse(src, Path::new("envs/x.toml"), &ctx()) {
        Ok(m) => panic!("expected an error, got {} cells", m.cells.len()),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

fn labels(m: &Matrix) -> Vec<&str> {
    m.cells.iter().map(|c| c.label.as_str()).collect()
}

const RUN: &str = "[run]\ncommand = \"true\"\n";

#[test]
fn minimal_matrix_is_one_default_cell() {
    let m = ok(RUN);
    assert_eq!(m.name, "x");
    assert_eq!(m.description, None);
    assert_eq!(m.path, Path::new("envs/x.toml"));
    assert_eq!(m.source_sha256.len(), 64);
    assert!(m.axes.is_empty());
    assert_eq!(m.order, Order::Interleaved);
    assert_eq!(m.seed, None);
    assert!(!m.allow_failures);
    assert!(m.warnings.is_empty());
    let [c] = m.cells.as_slice() else { panic!() };
    assert_eq!(c.label, "default");
    assert_eq!(c.slug, "default");
    assert!(c.axes.is_empty());
    assert_eq!(c.root, Root::Host);
    assert_eq!(c.network, Network::None);
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.command, ["/bin/sh", "-c", "true"]);
    assert_eq!(c.setup, None);
    assert_eq!((c.warmup, c.runs), (1, 10));
    assert_eq!(c.timeout, Some(Duration::from_secs(600)));
    assert!(c.metrics.is_empty());
    assert_eq!(c.id.len(), 12);
    assert!(
        c.id.chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase())
    );
}

const FULL: &str = r#"name = "jvm-gc"
description = "JDK 17 vs 21"

[matrix]
jdk = ["17", "21"]
gc  = ["G1", "Parallel"]
exclude = [{ jdk = "17", gc = "Parallel" }]
include = [{ jdk = "21", gc = "Z" }]

[environment]
image = "docker.io/library/eclipse-temurin:{jdk}-jre"
workdir = "/bench"
volumes = ["./workloads:/bench:ro", "/tmp/out:/out"]
env = { JAVA_TOOL_OPTIONS = "-XX:+Use{gc}GC", N = 3 }
network = "host"

[limits]
cpus = "0"
cpu-quota = 1.0
memory = "1GiB"
pids = 512

[run]
command = ["java", "-jar", "/bench/app.jar"]
setup = "echo {jdk}"
warmup = 2
runs = 5
timeout = "2m"
order = "grouped"
seed = 42
allow-failures = true

[[metric]]
name = "throughput"
pattern = 'Score:\s+([0-9.]+)'
unit = "ops/s"
better = "higher"
"#;

#[test]
fn full_example() {
    let m = ok(FULL);
    assert_eq!(m.name, "jvm-gc");
    assert_eq!(m.description.as_deref(), Some("JDK 17 vs 21"));
    assert_eq!(
        labels(&m),
        [
            "jdk=17 gc=G1",
            "jdk=21 gc=G1",
            "jdk=21 gc=Parallel",
            "jdk=21 gc=Z"
        ]
    );
    assert_eq!(m.order, Order::Grouped);
    assert_eq!(m.seed, Some(42));
    assert!(m.allow_failures);
    assert_eq!(
        m.axes[1].values,
        vec![json!("G1"), json!("Parallel"), json!("Z")]
    );
    let c = &m.cells[3];
    assert_eq!(c.slug, "jdk-21-gc-z");
    assert_eq!(
        c.axes,
        vec![
            ("jdk".to_string(), json!("21")),
            ("gc".to_string(), json!("Z"))
        ]
    );
    assert_eq!(
        c.root,
        Root::Image("docker.io/library/eclipse-temurin:21-jre".into())
    );
    assert_eq!(c.workdir.as_deref(), Some(Path::new("/bench")));
    let cwd = std::path::absolute(".").unwrap();
    assert_eq!(
        c.volumes,
        vec![
            Volume {
                host: cwd.join("envs/workloads"),
                target: "/bench".into(),
                read_only: true
            },
            Volume {
                host: "/tmp/out".into(),
                target: "/out".into(),
                read_only: false
            },
        ]
    );
    assert_eq!(c.env["JAVA_TOOL_OPTIONS"], "-XX:+UseZGC");
    assert_eq!(c.env["N"], "3");
    let floats = ok(&format!(
        "[environment]\nenv = {{ F = 1.0, B = true }}\n{RUN}"
    ));
    assert_eq!(floats.cells[0].env["F"], "1.0");
    assert_eq!(floats.cells[0].env["B"], "true");
    assert_eq!(c.network, Network::Host);
    assert_eq!(
        c.limits,
        Limits {
            cpus: Some(CpuSet::new([0])),
            cpu_quota: Some(1.0),
            memory: Some(1 << 30),
            pids: Some(512)
        }
    );
    assert_eq!(c.command, ["java", "-jar", "/bench/app.jar"]);
    assert_eq!(
        c.setup.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".into(), "echo 21".into()][..])
    );
    assert_eq!((c.warmup, c.runs), (2, 5));
    assert_eq!(c.timeout, Some(Duration::from_secs(120)));
    assert_eq!(
        c.metrics,
        vec![MetricSpec {
            name: "throughput".into(),
            pattern: Some(r"Score:\s+([0-9.]+)".into()),
            unit: Some("ops/s".into()),
            better: Better::Higher,
            service: None,
        }]
    );
    // Results files read the plan back.
    let json = serde_json::to_string(&m).unwrap();
    let back: Matrix = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
}

#[test]
fn cartesian_product_order_and_count() {
    let m = ok(&format!(
        "[matrix]\na = [1, 2, 3]\nb = [\"x\", \"y\"]\nc = [true, false]\n{RUN}"
    ));
    assert_eq!(m.cells.len(), 12);
    assert_eq!(m.cells[0].label, "a=1 b=x c=true");
    assert_eq!(m.cells[1].label, "a=1 b=x c=false");
    assert_eq!(m.cells[11].label, "a=3 b=y c=false");
    // Three unused axes: warnings, not errors.
    assert_eq!(m.warnings.len(), 3);
    assert!(
        m.warnings[0].starts_with("axis `a` is not used"),
        "{:?}",
        m.warnings
    );
}

#[test]
fn exclude_is_a_partial_match() {
    let m = ok(&format!(
        "[matrix]\na = [1, 2, 3]\nb = [\"x\", \"y\"]\nexclude = [{{ b = \"y\" }}, {{ a = 1, b = \"x\" }}]\n{RUN}"
    ));
    assert_eq!(labels(&m), ["a=2 b=x", "a=3 b=x"]);
    // `exclude` may name a value by its text: 2 matches "2".
    let m = ok(&format!(
        "[matrix]\na = [\"1\", \"2\"]\nexclude = [{{ a = 2 }}]\n{RUN}"
    ));
    assert_eq!(labels(&m), ["a=1"]);
}

#[test]
fn include_adds_cells_and_values() {
    let m = ok(&format!(
        "[matrix]\na = [\"1\", \"2\"]\nb = [\"x\"]\ninclude = [{{ b = \"z\", a = 1 }}, {{ a = \"3\", b = \"x\" }}]\n{RUN}"
    ));
    assert_eq!(labels(&m), ["a=1 b=x", "a=2 b=x", "a=1 b=z", "a=3 b=x"]);
    // The declared "1" is reused for the include's 1 (same value, same id as a product cell would have).
    assert_eq!(m.cells[2].axes[0].1, json!("1"));
    assert_eq!(m.axes[0].values, vec![json!("1"), json!("2"), json!("3")]);
    assert_eq!(m.axes[1].values, vec![json!("x"), json!("z")]);
    // include can bring back an excluded combination.
    let m = ok(&format!(
        "[matrix]\na = [1, 2]\nexclude = [{{ a = 1 }}, {{ a = 2 }}]\ninclude = [{{ a = 1 }}]\n{RUN}"
    ));
    assert_eq!(labels(&m), ["a=1"]);
}

#[test]
fn array_of_tables_axis_and_include_syntax() {
    let m = ok(r#"[[matrix.py]]
name = "cpython"
bin = "/usr/bin/python3"
[[matrix.py]]
name = "pypy"
bin = "/usr/bin/pypy3"
[[matrix.include]]
py = { name = "graal", bin = "/opt/graal/bin/python" }
[run]
command = ["{py.bin}", "bench.py", "--impl={py.name}"]
"#);
    assert_eq!(labels(&m), ["py=cpython", "py=pypy", "py=graal"]);
    assert_eq!(
        m.cells[2].command,
        ["/opt/graal/bin/python", "bench.py", "--impl=graal"]
    );
}

#[test]
fn substitution_everywhere() {
    let m = ok(r#"[matrix]
v = [{ name = "a", threads = 4, flags = ["-x", "-y"] }, { name = "b", threads = 8, flags = ["-z"] }]
quota = [0.5, 1]
mem = ["512MiB", 1073741824]
[environment]
rootfs = "./roots/{v.name}"
env = { THREADS = "{v.threads}", LIT = "{{v}}", Q = "{quota}" }
volumes = ["./data/{v}:/data/{v.name}"]
[limits]
cpu-quota = "{quota}"
memory = "{mem}"
pids = "{v.threads}"
[run]
command = "run --threads {v.threads} && echo {{done}}"
setup = "{v.flags}"
[[metric]]
name = "m_{v.name}"
pattern = '(\d{{2,}}) {v.name}'
"#
    .replace("{v}:", "{v.name}:")
    .as_str());
    assert_eq!(m.cells.len(), 8);
    let c = &m.cells[0];
    assert_eq!(c.label, "v=a quota=0.5 mem=512MiB");
    assert_eq!(c.limits.cpu_quota, Some(0.5));
    assert_eq!(c.limits.memory, Some(512 << 20));
    assert_eq!(c.limits.pids, Some(4));
    assert_eq!(c.env["THREADS"], "4");
    assert_eq!(c.env["LIT"], "{v}");
    assert_eq!(c.env["Q"], "0.5");
    assert_eq!(c.command[2], "run --threads 4 && echo {done}");
    assert_eq!(c.setup, Some(vec!["-x".to_string(), "-y".to_string()]));
    assert_eq!(c.metrics[0].name, "m_a");
    assert_eq!(c.metrics[0].pattern.as_deref(), Some(r"(\d{2,}) a"));
    assert!(c.volumes[0].target.ends_with("data/a"));
    match &c.root {
        Root::Dir(p) => assert!(p.ends_with("envs/roots/a"), "{p:?}"),
        other => panic!("{other:?}"),
    }
    let c = &m.cells[7];
    assert_eq!(c.label, "v=b quota=1 mem=1073741824");
    assert_eq!(c.limits.cpu_quota, Some(1.0));
    assert_eq!(c.limits.memory, Some(1 << 30));
}

#[test]
fn exact_placeholder_keeps_the_type_of_table_fields_and_arrays() {
    // `setup = "{v.flags}"`: the array element becomes the array itself, which is an error;
    // `setup = "{v.flags}"` takes the array as the argv.
    let m = ok(r#"[matrix]
v = [{ cmd = ["./a", "-q"] }]
[run]
command = "{v.cmd}"
"#);
    assert_eq!(m.cells[0].command, ["./a", "-q"]);
    assert_eq!(m.cells[0].label, r#"v={"cmd":["./a","-q"]}"#);
}

#[test]
fn ids_are_stable_and_ignore_run_counts() {
    let base = "[matrix]\njdk = [\"17\", \"21\"]\n[limits]\nmemory = \"1GiB\"\n[run]\ncommand = \"java -version {jdk}\"\n";
    let a = ok(base);
    let b = ok(base);
    assert_eq!(a.cells[0].id, b.cells[0].id);
    assert_ne!(a.cells[0].id, a.cells[1].id);
    let more = ok(&format!(
        "{base}runs = 50\nwarmup = 5\ntimeout = \"none\"\n[[metric]]\nname = \"x\"\npattern = \"(1)\"\n"
    ));
    assert_eq!(more.cells[0].id, a.cells[0].id);
    assert_eq!(more.cells[1].id, a.cells[1].id);
    let limited = ok(&base.replace("1GiB", "2GiB"));
    assert_ne!(limited.cells[0].id, a.cells[0].id);
    // The same size written differently is the same cell.
    let same = ok(&base.replace("\"1GiB\"", "1073741824"));
    assert_eq!(same.cells[0].id, a.cells[0].id);
    // The file's directory does not enter the id (paths hash as written).
    let elsewhere = parse(base, Path::new("/somewhere/else/x.toml"), &ctx()).unwrap();
    assert_eq!(elsewhere.cells[0].id, a.cells[0].id);
    let env_change = ok(&base.replace("[run]", "[environment]\nenv = { A = \"1\" }\n[run]"));
    assert_ne!(env_change.cells[0].id, a.cells[0].id);
    // The default scratch place leaves ids as they were before the key existed; disk differs.
    let memory = ok(&base.replace("[run]", "[environment]\nscratch = \"memory\"\n[run]"));
    assert_eq!(memory.cells[0].id, a.cells[0].id);
    assert_eq!(memory.cells[0].scratch, Scratch::Memory);
    let disk = ok(&base.replace("[run]", "[environment]\nscratch = \"disk\"\n[run]"));
    assert_ne!(disk.cells[0].id, a.cells[0].id);
    assert_eq!(disk.cells[0].scratch, Scratch::Disk);
    // Likewise [security]: written out at its defaults, it is the same cell; loosened, another.
    let security = |body: &str| ok(&base.replace("[run]", &format!("[security]\n{body}\n[run]")));
    let defaults = security("capabilities = []\nseccomp = \"default\"\nprivileged = false");
    assert_eq!(defaults.cells[0].id, a.cells[0].id);
    assert_eq!(defaults.cells[1].id, a.cells[1].id);
    assert!(defaults.cells[0].security.is_default());
    let ptrace = security("capabilities = [\"SYS_PTRACE\"]");
    assert_ne!(ptrace.cells[0].id, a.cells[0].id);
    for other in [
        security("seccomp = \"unconfined\""),
        security("privileged = true"),
        security("capabilities = [\"PERFMON\"]"),
    ] {
        assert_ne!(other.cells[0].id, a.cells[0].id);
        assert_ne!(other.cells[0].id, ptrace.cells[0].id);
    }
    // Spelling and order of capability names do not matter.
    let spelled = security("capabilities = [\"cap_sys_ptrace\", \"SYS_PTRACE\", \"sys_ptrace\"]");
    assert_eq!(spelled.cells[0].id, ptrace.cells[0].id);
}

/// Ids are how `compare` and `--resume` find a cell again: an existing matrix must keep them
/// whatever keys are added later. These are the ids of `reports/example/` (and of the render
/// fixtures), runs of the quick start.
#[test]
fn ids_of_an_existing_matrix_never_change() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let m = load(&path, &ctx()).unwrap();
    let ids: Vec<(&str, &str)> = m
        .cells
        .iter()
        .map(|c| (c.label.as_str(), c.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("level=1", "0b6e9b94bbc7"),
            ("level=6", "fb54c36c5013"),
            ("level=9", "79ccd99a1e7e")
        ]
    );
    // The same with `[security]` written out at its defaults.
    let source = std::fs::read_to_string(&path).unwrap()
        + "\n[security]\ncapabilities = []\nseccomp = \"default\"\nprivileged = false\n";
    let explicit = parse(&source, &path, &ctx()).unwrap();
    let explicit_ids: Vec<&str> = explicit.cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        explicit_ids,
        ["0b6e9b94bbc7", "fb54c36c5013", "79ccd99a1e7e"]
    );
}

/// `[run] counters` turns the perf_event counters on (the default) or off; either way ids stay
/// (it changes what is recorded, not what runs), and the plan's JSON only says it when off.
#[test]
fn counters_is_a_boolean_and_never_changes_ids() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let pinned = ["0b6e9b94bbc7", "fb54c36c5013", "79ccd99a1e7e"];
    let source = std::fs::read_to_string(&path).unwrap();
    let with = |value: &str| {
        let m = parse(
            &source.replace("[run]\n", &format!("[run]\ncounters = {value}\n")),
            &path,
            &ctx(),
        )
        .unwrap();
        let ids: Vec<String> = m.cells.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, pinned, "counters = {value}");
        m.cells[0].clone()
    };
    let default = load(&path, &ctx()).unwrap().cells[0].clone();
    assert!(default.counters);
    assert!(with("true").counters);
    let off = with("false");
    assert!(!off.counters);
    let json = |c: &Cell| serde_json::to_value(c).unwrap();
    assert!(json(&default).get("counters").is_none());
    assert_eq!(json(&off)["counters"], false);
    let back: Cell = serde_json::from_value(json(&default)).unwrap();
    assert!(back.counters);
    assert_eq!(
        err("[run]\ncommand = \"x\"\ncounters = \"no\"\n"),
        "envs/x.toml:3:12: expected a boolean for `counters`, found the string `no`"
    );
}

/// `[run] max-log` bounds what each log keeps; whatever its value, ids stay (it changes what is
/// kept, not what runs), so the quick start's pinned ids hold with it written out.
#[test]
fn max_log_is_a_size_or_none_and_never_changes_ids() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let pinned = ["0b6e9b94bbc7", "fb54c36c5013", "79ccd99a1e7e"];
    let source = std::fs::read_to_string(&path).unwrap();
    let with = |value: &str| {
        let m = parse(
            &source.replace("[run]\n", &format!("[run]\nmax-log = {value}\n")),
            &path,
            &ctx(),
        )
        .unwrap();
        let ids: Vec<String> = m.cells.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, pinned, "max-log = {value}");
        m.cells[0].max_log
    };
    assert_eq!(
        load(&path, &ctx()).unwrap().cells[0].max_log,
        Some(16 << 20)
    );
    assert_eq!(with("\"16MiB\""), Some(16 << 20));
    assert_eq!(with("\"1MiB\""), Some(1 << 20));
    assert_eq!(with("4096"), Some(4096));
    assert_eq!(with("\"none\""), None);
    assert_eq!(
        err("[run]\ncommand = \"x\"\nmax-log = \"lots\"\n"),
        "envs/x.toml:3:11: invalid size `lots` for `max-log`: it does not start with a number\n  hint: write a size like \"16MiB\" or \"1GiB\", or \"none\" to keep all output"
    );
    assert!(
        err("[run]\ncommand = \"x\"\nmax-log = \"0KiB\"\n")
            .starts_with("envs/x.toml:3:11: `max-log` of 0 bytes would keep no output")
    );
}

/// `[run] disturbance-threshold` and `rerun-disturbed` change what is recorded about a run, not
/// what a cell measures: whatever their values, ids stay, and at their defaults the plan's JSON
/// does not even name them.
#[test]
fn disturbance_keys_never_change_ids() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let pinned = ["0b6e9b94bbc7", "fb54c36c5013", "79ccd99a1e7e"];
    let source = std::fs::read_to_string(&path).unwrap();
    let with = |keys: &str| {
        let m = parse(
            &source.replace("[run]\n", &format!("[run]\n{keys}\n")),
            &path,
            &ctx(),
        )
        .unwrap();
        let ids: Vec<String> = m.cells.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, pinned, "{keys}");
        m.cells[0].clone()
    };
    let default = load(&path, &ctx()).unwrap().cells[0].clone();
    assert_eq!(default.disturbance_threshold, None);
    assert_eq!(default.disturbance_threshold(), 0.05);
    let json = serde_json::to_string(&default).unwrap();
    assert!(!json.contains("disturb"), "{json}");
    let set = with("disturbance-threshold = \"12.5%\"");
    assert_eq!(set.disturbance_threshold(), 0.125);
    // `rerun-disturbed`: off by default and then absent from the JSON; on, still the same ids.
    assert!(!default.rerun_disturbed);
    assert!(!json.contains("rerun"), "{json}");
    let set = with("rerun-disturbed = true");
    assert!(set.rerun_disturbed);
    assert!(
        serde_json::to_string(&set)
            .unwrap()
            .contains("\"rerun_disturbed\":true")
    );
    assert!(!with("rerun-disturbed = false").rerun_disturbed);
    assert_eq!(
        err("[run]\ncommand = \"x\"\nrerun-disturbed = \"yes\"\n"),
        "envs/x.toml:3:19: expected a boolean for `rerun-disturbed`, found the string `yes`"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\ndisturbance-threshold = \"5\"\n"),
        "envs/x.toml:3:25: invalid `disturbance-threshold`: `5` is not a percentage\n  hint: write a percentage of the cell's CPU time, like \"5%\""
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\ndisturbance-threshold = 5\n"),
        "envs/x.toml:3:25: expected a percentage such as \"5%\" for `disturbance-threshold`, found the integer `5`"
    );
}

#[test]
fn slugs_are_safe_short_and_unique() {
    let m = ok(&format!(
        "[matrix]\njdk = [\"17\"]\ngc = [\"G1\", \"Parallel\"]\n{RUN}"
    ));
    assert_eq!(m.cells[0].slug, "jdk-17-gc-g1");
    assert_eq!(m.cells[1].slug, "jdk-17-gc-parallel");
    // "a.b" and "a-b" collide as slugs: both get their id appended.
    let m = ok(&format!("[matrix]\nx = [\"a.b\", \"a-b\", \"c\"]\n{RUN}"));
    assert_eq!(m.cells[0].slug, format!("x-a-b-{}", m.cells[0].id));
    assert_eq!(m.cells[1].slug, format!("x-a-b-{}", m.cells[1].id));
    assert_eq!(m.cells[2].slug, "x-c");
    let long = "v".repeat(100);
    let m = ok(&format!("[matrix]\nx = [\"{long}1\", \"{long}2\"]\n{RUN}"));
    for c in &m.cells {
        assert!(c.slug.len() <= 63, "{}", c.slug);
        assert!(c.slug.ends_with(&c.id));
        assert!(
            c.slug
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        );
    }
    assert_ne!(m.cells[0].slug, m.cells[1].slug);
}

#[test]
fn timeouts_commands_and_defaults() {
    let t = |v: &str| ok(&format!("[run]\ncommand = [\"x\"]\ntimeout = {v}\n")).cells[0].timeout;
    assert_eq!(t("\"none\""), None);
    assert_eq!(t("\"NONE\""), None);
    assert_eq!(t("90"), Some(Duration::from_secs(90)));
    assert_eq!(t("\"100ms\""), Some(Duration::from_millis(100)));
    assert_eq!(t("\"7 days\""), Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(t("\"1h 30m\""), Some(Duration::from_secs(5400)));
    let m = ok("[run]\ncommand = [\"x\"]\nwarmup = 0\nruns = 1\n");
    assert_eq!((m.cells[0].warmup, m.cells[0].runs), (0, 1));
    assert_eq!(m.cells[0].command, ["x"]);
    let m = ok("[limits]\ncpus = 1\ncpu-quota = 2\n[run]\ncommand = [\"x\"]\n");
    assert_eq!(m.cells[0].limits.cpus, Some(CpuSet::new([1])));
    assert_eq!(
        m.warnings,
        ["cell default: cpu-quota 2 is more than its 1 pinned cpu(s) can use"]
    );
}

#[test]
fn name_defaults_to_a_safe_file_stem() {
    let m = parse(RUN, Path::new("my env.toml"), &ctx()).unwrap();
    assert_eq!(m.name, "my-env");
}

// ---- errors: exact position, message and hint ----

#[test]
fn toml_syntax_error_has_a_position() {
    let e = err("[run]\ncommand = \"x\"\nruns = = 3\n");
    assert!(e.starts_with("envs/x.toml:3:8: invalid toml: "), "{e}");
    let e = err("[run]\ncommand = \"x\"\ncommand = \"y\"\n");
    assert!(
        e.starts_with("envs/x.toml:3:1: invalid toml: duplicate key"),
        "{e}"
    );
}

#[test]
fn unknown_keys_everywhere() {
    assert_eq!(
        err(&format!("[limits]\ncpus = \"0\"\nmemroy = \"1G\"\n{RUN}")),
        "envs/x.toml:3:1: unknown key `memroy` in [limits]\n  hint: did you mean `memory`? valid keys: cpus, cpu-quota, memory, pids"
    );
    assert_eq!(
        err(&format!("[limit]\n{RUN}")),
        "envs/x.toml:1:2: unknown key `limit` at the top level\n  hint: did you mean `limits`? valid keys: name, description, matrix, environment, limits, security, run, metric, services, report"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\ncpu_quota = 1\n"),
        "envs/x.toml:3:1: unknown key `cpu_quota` in [run]\n  hint: valid keys: command, setup, warmup, runs, min-runs, max-runs, ci-width, budget, timeout, memory-interval, max-log, disturbance-threshold, rerun-disturbed, order, seed, allow-failures, counters"
    );
    assert_eq!(
        err("[environment]\nimg = \"x\"\n"),
        "envs/x.toml:2:1: unknown key `img` in [environment]\n  hint: did you mean `image`? valid keys: image, rootfs, workdir, volumes, env, network, user, scratch"
    );
    assert_eq!(
        err(&format!(
            "{RUN}[[metric]]\nname = \"x\"\npatern = \"(1)\"\n"
        )),
        "envs/x.toml:5:1: unknown key `patern` in [[metric]]\n  hint: did you mean `pattern`? valid keys: name, pattern, unit, better"
    );
    // Dotted keys point at the key itself.
    assert_eq!(
        err("run.command = \"x\"\nlimits.memroy = 1\n"),
        "envs/x.toml:2:8: unknown key `memroy` in [limits]\n  hint: did you mean `memory`? valid keys: cpus, cpu-quota, memory, pids"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        err("[run]\ncommand = 3\n"),
        "envs/x.toml:2:11: expected a string or an array of strings for `command`, found the integer `3`"
    );
    assert_eq!(
        err("[run]\ncommand = [\"a\", 1]\n"),
        "envs/x.toml:2:17: expected a string for `command`, found the integer `1`"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\nruns = \"10\"\n"),
        "envs/x.toml:3:8: expected an integer or \"auto\" for `runs`, found the string `10`\n  hint: give a number of measured runs, or \"auto\" to stop each cell once its median is known well enough"
    );
    assert_eq!(
        err("limits = 3\n[run]\ncommand = \"x\"\n"),
        "envs/x.toml:1:10: expected a table for `limits`, found the integer `3`\n  hint: write it as a `[limits]` section"
    );
    assert_eq!(
        err(&format!("[matrix]\njdk = \"17\"\n{RUN}")),
        "envs/x.toml:2:7: expected an array of values or a range for axis `jdk`, found the string `17`\n  hint: an axis lists its values, `jdk = [\"a\", \"b\"]`, or counts them, `jdk = { range = [1, 16], step = \"x2\" }`"
    );
    assert_eq!(
        err(&format!("[matrix]\njdk = [[1]]\n{RUN}")),
        "envs/x.toml:2:8: expected a string, number, boolean or table as a value of axis `jdk`, found an array"
    );
    assert_eq!(
        err(&format!("[environment]\nenv = {{ A = [1] }}\n{RUN}")),
        "envs/x.toml:2:13: expected a string for `A`, found an array"
    );
    assert_eq!(
        err(&format!("{RUN}[metric]\nname = \"x\"\n")),
        "envs/x.toml:3:1: expected an array of tables for `metric`, found a table\n  hint: declare each metric in its own `[[metric]]` section"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\nallow-failures = \"yes\"\n"),
        "envs/x.toml:3:18: expected a boolean for `allow-failures`, found the string `yes`"
    );
}

#[test]
fn placeholder_errors() {
    assert_eq!(
        err("[matrix]\njdk = [\"17\"]\n[run]\ncommand = \"java{jkd}\"\n"),
        "envs/x.toml:4:11: `{jkd}` names no axis\n  hint: did you mean `jdk`? axes: jdk"
    );
    assert_eq!(
        err("[matrix]\njdk = [\"17\", \"21\"]\n[run]\ncommand = [\"java\", \"{jdk.path}\"]\n"),
        "envs/x.toml:4:20: `{jdk.path}`: axis `jdk` has the plain value `17`, which has no fields in cell jdk=17\n  hint: use `{jdk}`, or make the values of `jdk` tables like { path = ... }"
    );
    assert_eq!(
        err("[matrix]\nv = [{ p = \"/a\" }, { q = \"/b\" }]\n[run]\ncommand = \"{v.p}\"\n"),
        "envs/x.toml:4:11: `{v.p}`: this value of axis `v` has no field `p` in cell v={\"q\":\"/b\"}\n  hint: fields: q"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\n[[metric]]\nname = \"t\"\npattern = '(\\d{3})'\n"),
        "envs/x.toml:5:11: `{3}` in `(\\d{3})` is not a placeholder\n  hint: placeholders look like `{axis}` or `{axis.field}`; write `{{` and `}}` for literal braces (regex quantifiers too: `\\d{{3}}`)"
    );
    assert_eq!(
        err("[run]\ncommand = \"echo }\"\n"),
        "envs/x.toml:2:11: unmatched `}` in `echo }`\n  hint: write `{{` and `}}` for literal braces (regex quantifiers too: `\\d{{3}}`)"
    );
    assert_eq!(
        err("[run]\ncommand = \"echo {x}\"\n"),
        "envs/x.toml:2:11: `{x}` names no axis\n  hint: the matrix has no axes; write `{{` and `}}` for literal braces (regex quantifiers too: `\\d{{3}}`)"
    );
}

#[test]
fn substituted_value_errors_name_the_cell() {
    assert_eq!(
        err(
            "[matrix]\nmem = [\"1G\", \"lots\"]\n[limits]\nmemory = \"{mem}\"\n[run]\ncommand = \"x\"\n"
        ),
        "envs/x.toml:4:10: invalid size `lots` for `memory`: it does not start with a number in cell mem=lots\n  hint: write bytes or a size like \"512MiB\", \"1GiB\", \"1.5G\" (K/M/G/T are 1024-based, KB/MB/GB/TB 1000-based)"
    );
    assert_eq!(
        err("[matrix]\nq = [1, \"x\"]\n[limits]\ncpu-quota = \"{q}\"\n[run]\ncommand = \"x\"\n"),
        "envs/x.toml:4:13: expected a number of cores for `cpu-quota`, found the string `x` in cell q=x"
    );
}

#[test]
fn value_errors() {
    let limits = |body: &str| err(&format!("[limits]\n{body}\n{RUN}"));
    assert_eq!(
        limits("memory = \"1 GiBs\""),
        "envs/x.toml:2:10: invalid size `1 GiBs` for `memory`: unknown unit `GiBs`\n  hint: write bytes or a size like \"512MiB\", \"1GiB\", \"1.5G\" (K/M/G/T are 1024-based, KB/MB/GB/TB 1000-based)"
    );
    assert_eq!(
        limits("memory = -1"),
        "envs/x.toml:2:10: `memory` must be at least 0, found `-1`"
    );
    assert_eq!(
        limits("cpus = \"3-1\""),
        "envs/x.toml:2:8: invalid cpuset `3-1`: range `3-1` ends before it starts\n  hint: write a kernel cpu list such as \"0\", \"0-3\" or \"0,2-3\""
    );
    assert_eq!(
        limits("cpus = \"0,7\""),
        "envs/x.toml:2:8: cpu 7 is not online on this host (online: 0-1)\n  hint: pick cpus from 0-1"
    );
    assert_eq!(
        limits("cpus = 7"),
        "envs/x.toml:2:8: cpu 7 is not online on this host (online: 0-1)\n  hint: pick cpus from 0-1"
    );
    assert_eq!(
        limits("cpu-quota = 3"),
        "envs/x.toml:2:13: cpu-quota `3` is out of range: it must be above 0 and at most 2 (the online cpus)\n  hint: cpu-quota is in cores: 0.5 is half a core"
    );
    assert_eq!(
        limits("cpu-quota = 0.0"),
        "envs/x.toml:2:13: cpu-quota `0` is out of range: it must be above 0 and at most 2 (the online cpus)\n  hint: cpu-quota is in cores: 0.5 is half a core"
    );
    assert_eq!(
        limits("pids = 0"),
        "envs/x.toml:2:8: `pids` must be at least 1, found `0`\n  hint: remove `pids` for no limit"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\ntimeout = \"2 fortnights\"\n"),
        "envs/x.toml:3:11: invalid duration `2 fortnights` for `timeout`: unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)\n  hint: write a duration like \"90s\", \"2m\" or \"1h 30m\", or \"none\""
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\nruns = 0\n"),
        "envs/x.toml:3:8: `runs` must be at least 1, found `0`\n  hint: a cell needs at least one measured run, or `runs = \"auto\"`; to skip cells use `exclude` or --only"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\nwarmup = -1\n"),
        "envs/x.toml:3:10: `warmup` must be at least 0, found `-1`"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\norder = \"random\"\n"),
        "envs/x.toml:3:9: invalid order `random`\n  hint: valid orders: interleaved, grouped"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\norder = \"grouped \"\n"),
        "envs/x.toml:3:9: invalid order `grouped `\n  hint: did you mean `grouped`? valid orders: interleaved, grouped"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\nseed = -3\n"),
        "envs/x.toml:3:8: `seed` must be at least 0, found `-3`\n  hint: a seed is a non-negative integer"
    );
    assert_eq!(
        err(&format!("[environment]\nnetwork = \"bridge\"\n{RUN}")),
        "envs/x.toml:2:11: invalid network `bridge`\n  hint: valid networks: none (loopback only, the default), host"
    );
    assert_eq!(
        err(&format!("[environment]\nscratch = \"ssd\"\n{RUN}")),
        "envs/x.toml:2:11: invalid scratch `ssd`\n  hint: valid scratch places: memory (a tmpfs, the default), disk"
    );
    assert_eq!(
        err("name = \"a/b\"\n[run]\ncommand = \"x\"\n"),
        "envs/x.toml:1:8: invalid matrix name `a/b`\n  hint: results go to reports/<name>/: use letters, digits, `.`, `_` and `-`, starting with a letter or digit"
    );
}

#[test]
fn security_section() {
    use crate::sandbox::security::Policy;

    // Absent: the default, and nothing about it in the cell's JSON (plans read as before).
    let m = ok(RUN);
    assert!(m.cells[0].security.is_default());
    let json = serde_json::to_value(&m.cells[0]).unwrap();
    assert!(json.get("security").is_none(), "{json}");

    // Names in any spelling become canonical, sorted, without duplicates.
    let m = ok(&format!(
        "[security]\ncapabilities = [\"sys_ptrace\", \"CAP_PERFMON\", \"SYS_PTRACE\"]\nseccomp = \"unconfined\"\n{RUN}"
    ));
    assert_eq!(
        m.cells[0].security,
        Policy {
            capabilities: vec!["PERFMON".into(), "SYS_PTRACE".into()],
            seccomp_unconfined: true,
            privileged: false,
        }
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let json = serde_json::to_value(&m.cells[0]).unwrap();
    assert_eq!(
        json["security"],
        json!({ "capabilities": ["PERFMON", "SYS_PTRACE"], "seccomp_unconfined": true })
    );

    // Templated per cell, like [limits]: an exact placeholder keeps the axis value's type.
    let m = ok(&format!(
        "[matrix]\ntool = [{{ name = \"perf\", cap = \"PERFMON\", priv = false }}, {{ name = \"gdb\", cap = \"SYS_PTRACE\", priv = true }}]\n\
         [security]\ncapabilities = [\"{{tool.cap}}\"]\nprivileged = \"{{tool.priv}}\"\n{RUN}"
    ));
    assert_eq!(m.cells[0].security.capabilities, ["PERFMON"]);
    assert!(!m.cells[0].security.privileged);
    assert!(m.cells[1].security.privileged);
    // privileged with capabilities is redundant: a warning naming the cell it came from.
    assert_eq!(
        m.warnings,
        [
            "cell tool=gdb: `privileged = true` in [security] already grants every capability and turns the seccomp filter off: `capabilities` and `seccomp` have no effect"
        ]
    );

    // Written as such: one warning for the whole matrix, not one per cell.
    let m = ok(
        "[matrix]\nv = [1, 2]\n[security]\nprivileged = true\nseccomp = \"unconfined\"\n[run]\ncommand = \"echo {v}\"\n",
    );
    assert!(m.cells.iter().all(|c| c.security.privileged));
    assert_eq!(
        m.warnings,
        [
            "`privileged = true` in [security] already grants every capability and turns the seccomp filter off: `capabilities` and `seccomp` have no effect"
        ]
    );
    let m = ok(&format!("[security]\ncapabilities = [\"CHOWN\"]\n{RUN}"));
    assert_eq!(
        m.warnings,
        [
            "capability `CHOWN` in [security] is in the default set already: listing it changes nothing but the cell's id"
        ]
    );
}

#[test]
fn security_errors() {
    let all = crate::sandbox::security::capability_names().join(", ");
    assert_eq!(
        err(&format!(
            "[security]\ncapabilities = [\"SYS_PTRACE\", \"SYS_PTRAC\"]\n{RUN}"
        )),
        format!(
            "envs/x.toml:2:31: unknown capability `SYS_PTRAC`\n  hint: did you mean `SYS_PTRACE`? valid capabilities: {all}"
        )
    );
    // The hint is the bare name, whatever the spelling.
    assert_eq!(
        err(&format!(
            "[security]\ncapabilities = [\"cap_net_admn\"]\n{RUN}"
        )),
        format!(
            "envs/x.toml:2:17: unknown capability `cap_net_admn`\n  hint: did you mean `NET_ADMIN`? valid capabilities: {all}"
        )
    );
    assert_eq!(
        err(&format!("[security]\ncapabilities = [\"\"]\n{RUN}")),
        format!("envs/x.toml:2:17: unknown capability ``\n  hint: valid capabilities: {all}")
    );
    assert_eq!(
        err(&format!("[security]\nseccomp = \"off\"\n{RUN}")),
        "envs/x.toml:2:11: invalid seccomp `off`\n  hint: valid seccomp values: default (a filter after Docker's default profile), unconfined (no filter)"
    );
    assert_eq!(
        err(&format!("[security]\nseccomp = false\n{RUN}")),
        "envs/x.toml:2:11: expected a string for `seccomp`, found the boolean `false`"
    );
    assert_eq!(
        err(&format!("[security]\ncapabilities = \"SYS_PTRACE\"\n{RUN}")),
        "envs/x.toml:2:16: expected an array of capability names for `capabilities`, found the string `SYS_PTRACE`"
    );
    assert_eq!(
        err(&format!(
            "[security]\ncapabilities = [\"SYS_PTRACE\", 7]\n{RUN}"
        )),
        "envs/x.toml:2:31: expected a capability name such as \"SYS_PTRACE\" for `capabilities`, found the integer `7`"
    );
    assert_eq!(
        err(&format!("[security]\nprivileged = \"yes\"\n{RUN}")),
        "envs/x.toml:2:14: expected a boolean for `privileged`, found the string `yes`"
    );
    assert_eq!(
        err(&format!("security = 3\n{RUN}")),
        "envs/x.toml:1:12: expected a table for `security`, found the integer `3`\n  hint: write it as a `[security]` section"
    );
    assert_eq!(
        err(&format!("[security]\nprivileges = true\n{RUN}")),
        "envs/x.toml:2:1: unknown key `privileges` in [security]\n  hint: did you mean `privileged`? valid keys: capabilities, seccomp, privileged"
    );
    assert_eq!(
        err(&format!("[security]\ncapabilites = []\n{RUN}")),
        "envs/x.toml:2:1: unknown key `capabilites` in [security]\n  hint: did you mean `capabilities`? valid keys: capabilities, seccomp, privileged"
    );
    // A bad value that came from an axis names the cell; a bad placeholder is caught once.
    assert_eq!(
        err(&format!(
            "[matrix]\ncap = [\"SYS_PTRACE\", \"PTRACE\"]\n[security]\ncapabilities = [\"{{cap}}\"]\n{RUN}"
        )),
        format!(
            "envs/x.toml:4:17: unknown capability `PTRACE` in cell cap=PTRACE\n  hint: did you mean `SYS_PTRACE`? valid capabilities: {all}"
        )
    );
    assert_eq!(
        err(&format!(
            "[matrix]\ncap = [\"SYS_PTRACE\"]\n[security]\ncapabilities = [\"{{cpa}}\"]\n{RUN}"
        )),
        "envs/x.toml:4:17: `{cpa}` names no axis\n  hint: did you mean `cap`? axes: cap"
    );
}

#[test]
fn command_errors() {
    assert_eq!(
        err("[run]\ncommand = []\n"),
        "envs/x.toml:2:11: `command` is empty\n  hint: give the program to run, e.g. `command = [\"./bench\", \"--fast\"]`"
    );
    assert_eq!(
        err("[run]\ncommand = \"  \"\n"),
        "envs/x.toml:2:11: `command` is empty\n  hint: give the program to run, e.g. `command = [\"./bench\", \"--fast\"]`"
    );
    assert_eq!(
        err("[run]\ncommand = \"x\"\nsetup = [\"\"]\n"),
        "envs/x.toml:3:9: `setup` is empty\n  hint: give the program to run, e.g. `setup = [\"./bench\", \"--fast\"]`"
    );
    assert_eq!(
        err("[run]\nruns = 3\n"),
        "envs/x.toml:1:1: missing `command` in [run]\n  hint: add `command = [\"./bench\"]` (or a string, run with /bin/sh -c)"
    );
    assert_eq!(
        err("[limits]\npids = 3\n"),
        "envs/x.toml:1:1: missing [run] section\n  hint: add `[run]` with `command = [\"./bench\"]`"
    );
}

#[test]
fn environment_errors() {
    let env = |body: &str| err(&format!("[environment]\n{body}\n{RUN}"));
    assert_eq!(
        env("volumes = [\"/tmp:/../../etc/x\"]"),
        "envs/x.toml:2:12: volume target `/../../etc/x` climbs above the container's root with `..`\n  hint: container paths stay inside the container: write the path without `..`"
    );
    assert_eq!(
        env("workdir = \"/a/../../b\""),
        "envs/x.toml:2:11: workdir `/a/../../b` climbs above the container's root with `..`\n  hint: container paths stay inside the container: write the path without `..`"
    );
    assert_eq!(
        env("image = \"a\"\nrootfs = \"./r\""),
        "envs/x.toml:3:1: both `image` and `rootfs` are set in [environment]\n  hint: a cell runs in an image or in a local directory: remove one"
    );
    assert_eq!(
        env("workdir = \"bench\""),
        "envs/x.toml:2:11: workdir `bench` is not an absolute path\n  hint: paths inside the container start with `/`, e.g. `/bench`"
    );
    assert_eq!(
        env("volumes = [\"./w:bench\"]"),
        "envs/x.toml:2:12: volume target `bench` is not an absolute path\n  hint: paths inside the container start with `/`, e.g. `/bench`"
    );
    assert_eq!(
        env("volumes = [\"./w\"]"),
        "envs/x.toml:2:12: invalid volume `./w`\n  hint: write volumes as `host:target`, `host:target:ro` or `host:target:rw`"
    );
    assert_eq!(
        env("volumes = [\"/a:/b:c:d\"]"),
        "envs/x.toml:2:12: invalid volume `/a:/b:c:d`\n  hint: write volumes as `host:target`, `host:target:ro` or `host:target:rw`"
    );
    assert_eq!(
        env("volumes = [\"/a:/b:rx\"]"),
        "envs/x.toml:2:12: invalid volume mode `rx` in `/a:/b:rx`\n  hint: valid modes: ro, rw (the default)"
    );
    assert_eq!(
        env("volumes = [\"/a:/b\", \"/c:/b/\"]"),
        "envs/x.toml:2:21: two volumes mount onto `/b`\n  hint: give each volume its own target"
    );
    assert_eq!(
        env("volumes = \"/a:/b\""),
        "envs/x.toml:2:11: expected an array of strings for `volumes`, found the string `/a:/b`"
    );
    assert_eq!(
        env("env = { \"A=B\" = \"1\" }"),
        "envs/x.toml:2:9: invalid environment variable name `A=B`\n  hint: names may not be empty or contain `=`"
    );
}

#[test]
fn matrix_errors() {
    assert_eq!(
        err(&format!("[matrix]\njdk = []\n{RUN}")),
        "envs/x.toml:2:7: axis `jdk` has no values\n  hint: give it at least one value, or remove it"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\njdk = [\"17\"]\nexclude = [{{ jdk = \"17\" }}]\n{RUN}"
        )),
        "envs/x.toml:1:1: the matrix expands to no cells\n  hint: every combination is excluded: loosen `exclude` or add `include` entries"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\njdk = [\"17\"]\nexclude = [{{ jkd = \"17\" }}]\n{RUN}"
        )),
        "envs/x.toml:3:14: unknown axis `jkd` in `exclude`\n  hint: did you mean `jdk`? axes: jdk"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\njdk = [\"17\"]\nexclude = [{{ jdk = \"18\" }}]\n{RUN}"
        )),
        "envs/x.toml:3:20: `18` is not a value of axis `jdk`\n  hint: values of `jdk`: 17"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\njdk = [\"17\"]\nexclude = [{{}}]\n{RUN}"
        )),
        "envs/x.toml:3:12: an empty `exclude` entry would drop every cell\n  hint: name the axis values to exclude, e.g. { jdk = \"17\" }"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\njdk = [\"17\"]\ngc = [\"G1\"]\ninclude = [{{ jdk = \"21\" }}]\n{RUN}"
        )),
        "envs/x.toml:4:12: `include` entry is missing axis `gc`\n  hint: an include entry gives a value for every axis: jdk, gc"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\njdk = [\"17\"]\ninclude = [{{ jdk = \"21\", os = \"x\" }}]\n{RUN}"
        )),
        "envs/x.toml:3:26: unknown axis `os` in `include`\n  hint: axes: jdk"
    );
    assert_eq!(
        err(&format!("[matrix]\njdk = [\"17\", \"21\"]\ninclude = [{{ jdk = \"21\" }}]\n{RUN}")),
        "envs/x.toml:3:12: cells `jdk=21` and `jdk=21` expand to the same cell (id ID)\n  hint: remove the duplicate `include` entry or axis value"
            .replace("ID", &ok(&format!("[matrix]\njdk = [\"17\", \"21\"]\n{RUN}")).cells[1].id)
    );
    assert_eq!(
        err(&format!("[matrix]\njdk = [\"17\", 17]\n{RUN}")),
        "envs/x.toml:2:14: duplicate value `17` in axis `jdk`\n  hint: each value of an axis must be distinct"
    );
    assert_eq!(
        err(&format!("[matrix]\n\"1jdk\" = [\"17\"]\n{RUN}")),
        "envs/x.toml:2:1: invalid axis name `1jdk`\n  hint: axis names match [A-Za-z_][A-Za-z0-9_-]* (they are used in `{axis}` placeholders)"
    );
    assert_eq!(
        err(&format!("[matrix]\nexclude = {{ a = 1 }}\n{RUN}")),
        "envs/x.toml:2:11: expected an array of tables for `exclude`, found a table\n  hint: write `exclude = [{ axis = \"value\" }]`"
    );
}

#[test]
fn metric_errors() {
    let metric = |body: &str| err(&format!("{RUN}[[metric]]\n{body}\n"));
    assert_eq!(
        metric("name = \"t\"\npattern = '([0-9]+'"),
        "envs/x.toml:5:11: invalid regex `([0-9]+`: unclosed group\n  hint: literal braces in patterns are written `{{` and `}}` (placeholder escaping)"
    );
    assert_eq!(
        metric("name = \"t\"\npattern = 'Score: [0-9]+'"),
        "envs/x.toml:5:11: pattern `Score: [0-9]+` has 0 capture groups; it needs exactly one\n  hint: capture the number with `( )` and make other groups non-capturing with `(?: )`"
    );
    assert_eq!(
        metric("name = \"t\"\npattern = '(a)(b)'"),
        "envs/x.toml:5:11: pattern `(a)(b)` has 2 capture groups; it needs exactly one\n  hint: capture the number with `( )` and make other groups non-capturing with `(?: )`"
    );
    assert_eq!(
        metric("name = \"t\"\npattern = '(1)'\n[[metric]]\nname = \"t\"\npattern = '(2)'"),
        "envs/x.toml:7:8: duplicate metric name `t`\n  hint: the first `t` is on line 4; rename one"
    );
    assert_eq!(
        metric("pattern = '(1)'"),
        "envs/x.toml:3:1: missing `name` in [[metric]]\n  hint: add `name = \"throughput\"`"
    );
    assert_eq!(
        metric("name = \"t\"\npattern = '(1)'\nbetter = \"more\""),
        "envs/x.toml:6:10: invalid value `more` for `better`\n  hint: valid values: lower (the default), higher"
    );
    assert_eq!(
        metric("name = \"my metric\"\npattern = '(1)'"),
        "envs/x.toml:4:8: invalid metric name `my metric`\n  hint: metric names become CSV columns: letters, digits, `_`, `.` and `-`, starting with a letter or `_`"
    );
}

#[test]
fn paths_are_checked_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rootfs/17")).unwrap();
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let file = dir.path().join("m.toml");
    let check = ValidationContext {
        online_cpus: CpuSet::new([0]),
        check_paths: true,
        image_accounts: Default::default(),
    };
    let src = "[matrix]\njdk = [\"17\"]\n[environment]\nrootfs = \"./rootfs/{jdk}\"\nvolumes = [\"work:/w:ro\", \"file:/f\"]\n[run]\ncommand = \"x\"\n";
    std::fs::write(&file, src).unwrap();
    let m = load(&file, &check).unwrap();
    let canon = dir.path().canonicalize().unwrap();
    assert_eq!(m.cells[0].root, Root::Dir(canon.join("rootfs/17")));
    assert_eq!(m.cells[0].volumes[0].host, canon.join("work"));
    assert_eq!(m.cells[0].volumes[1].host, canon.join("file"));

    let e = parse(&src.replace("[\"17\"]", "[\"17\", \"21\"]"), &file, &check)
        .unwrap_err()
        .to_string();
    let shown = file.display();
    let base = dir.path().display();
    assert_eq!(
        e,
        format!(
            "{shown}:4:10: rootfs `./rootfs/21` does not exist ({base}/rootfs/21) in cell jdk=21\n  hint: relative paths are relative to the matrix file's directory, {base}"
        )
    );
    let e = parse(&src.replace("./rootfs/{jdk}", "file"), &file, &check)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{shown}:4:10: rootfs `file` is not a directory ({base}/file)\n  hint: relative paths are relative to the matrix file's directory, {base}"
        )
    );
    let e = parse(&src.replace("work:", "nowork:"), &file, &check)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{shown}:5:12: volume host path `nowork` does not exist ({base}/nowork)\n  hint: relative paths are relative to the matrix file's directory, {base}"
        )
    );
    // Without the check, the same file parses (another host may have the paths).
    let unchecked = ValidationContext {
        check_paths: false,
        ..check
    };
    assert!(parse(&src.replace("work:", "nowork:"), &file, &unchecked).is_ok());
}

#[test]
fn unreadable_file_is_a_usage_error() {
    let e = load(Path::new("/nonexistent/m.toml"), &ctx()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.diagnostic().is_none());
    assert_eq!(
        e.to_string(),
        "/nonexistent/m.toml: cannot read the matrix file: no such file or directory (os error 2)\n  hint: check the path"
    );
}

#[test]
fn diagnostics_expose_their_parts() {
    let e = parse("[run]\ncommand = 3\n", Path::new("m.toml"), &ctx()).unwrap_err();
    let d = e.diagnostic().unwrap();
    assert_eq!((d.line, d.col), (2, 11));
    assert_eq!(d.file, Path::new("m.toml"));
    assert!(d.hint.is_none());
}

#[test]
fn axis_value_texts() {
    assert_eq!(axis_value_text(&json!("17")), "17");
    assert_eq!(axis_value_text(&json!(17)), "17");
    assert_eq!(axis_value_text(&json!(1.0)), "1.0");
    assert_eq!(axis_value_text(&json!(0.5)), "0.5");
    assert_eq!(axis_value_text(&json!(true)), "true");
    assert_eq!(
        axis_value_text(&json!({"name": "pypy", "bin": "x"})),
        "pypy"
    );
    assert_eq!(axis_value_text(&json!({"bin": "x"})), r#"{"bin":"x"}"#);
}

#[test]
fn axis_names() {
    for good in ["a", "_", "jdk", "gc-type", "A_1"] {
        assert!(is_axis_name(good), "{good}");
    }
    for bad in ["", "1a", "-a", "a.b", "a b", "é"] {
        assert!(!is_axis_name(bad), "{bad}");
    }
}

// ---- settings that would fail every invocation or mean something not written ----

const MEMORY_FLOOR_HINT: &str = "with less, invocations are killed for lack of memory before the workload does anything (Docker refuses less than 6 MiB too); give \"6MiB\" or more, or remove `memory` for no limit";

#[test]
fn memory_below_the_floor_is_refused() {
    let limits = |body: &str| err(&format!("[limits]\n{body}\n{RUN}"));
    assert_eq!(
        limits("memory = \"1\""),
        format!(
            "envs/x.toml:2:10: `memory` of 1 B is below the floor of 6 MiB\n  hint: {MEMORY_FLOOR_HINT}"
        )
    );
    assert_eq!(
        limits("memory = \"4096\""),
        format!(
            "envs/x.toml:2:10: `memory` of 4 KiB is below the floor of 6 MiB\n  hint: {MEMORY_FLOOR_HINT}"
        )
    );
    assert_eq!(
        limits("memory = 0"),
        format!(
            "envs/x.toml:2:10: `memory` of 0 B is below the floor of 6 MiB\n  hint: {MEMORY_FLOOR_HINT}"
        )
    );
    assert_eq!(
        limits("memory = \"5.99MiB\""),
        format!(
            "envs/x.toml:2:10: `memory` of 5.99 MiB is below the floor of 6 MiB\n  hint: {MEMORY_FLOOR_HINT}"
        )
    );
    // From a placeholder: the cell is named.
    assert_eq!(
        err(&format!(
            "[matrix]\nmem = [\"1GiB\", \"4MiB\"]\n[limits]\nmemory = \"{{mem}}\"\n{RUN}"
        )),
        format!(
            "envs/x.toml:4:10: `memory` of 4 MiB is below the floor of 6 MiB in cell mem=4MiB\n  hint: {MEMORY_FLOOR_HINT}"
        )
    );
    // The floor itself is fine, in bytes too.
    let m = ok(&format!("[limits]\nmemory = \"6MiB\"\n{RUN}"));
    assert_eq!(m.cells[0].limits.memory, Some(6 << 20));
    let m = ok(&format!("[limits]\nmemory = 6291456\n{RUN}"));
    assert_eq!(m.cells[0].limits.memory, Some(6 << 20));
}

#[test]
fn zero_and_absurd_durations_are_refused() {
    let run = |body: &str| err(&format!("[run]\ncommand = \"x\"\n{body}\n"));
    let timeout_off = "  hint: to switch it off write `timeout = \"none\"`; otherwise give a duration like \"90s\", \"2m\" or \"1h 30m\"";
    assert_eq!(
        run("timeout = \"0s\""),
        format!(
            "envs/x.toml:3:11: a `timeout` of `0s` would switch the timeout off\n{timeout_off}"
        )
    );
    assert_eq!(
        run("timeout = 0"),
        format!("envs/x.toml:3:11: a `timeout` of `0` would switch the timeout off\n{timeout_off}")
    );
    assert_eq!(
        run("timeout = \"0\""),
        format!("envs/x.toml:3:11: a `timeout` of `0` would switch the timeout off\n{timeout_off}")
    );
    assert_eq!(
        run("timeout = \"1000000000000h\""),
        "envs/x.toml:3:11: `timeout` of `1000000000000h` is longer than the maximum of 7 days\n  hint: for no timeout at all write \"none\""
    );
    assert_eq!(
        run("timeout = 604801"),
        "envs/x.toml:3:11: `timeout` of `604801` is longer than the maximum of 7 days\n  hint: for no timeout at all write \"none\""
    );
    assert_eq!(
        run("timeout = \"1ns\""),
        "envs/x.toml:3:11: `timeout` of `1ns` is shorter than the minimum of 100ms\n  hint: the watchdog checks every 20 ms from the start of the container, which itself takes a few: a shorter timeout kills invocations that barely started"
    );
    assert_eq!(
        run("timeout = -5"),
        "envs/x.toml:3:11: `timeout` must be at least 0, found `-5`"
    );
    assert_eq!(
        run("memory-interval = \"0ms\""),
        "envs/x.toml:3:19: a `memory-interval` of `0ms` would switch memory sampling off\n  hint: to switch it off write `memory-interval = \"none\"`; otherwise give a duration like \"100ms\" or \"1s\""
    );
    assert_eq!(
        run("memory-interval = \"5ms\""),
        "envs/x.toml:3:19: `memory-interval` of `5ms` is shorter than the minimum of 10ms\n  hint: sampling more often than every 10 ms would perturb the workload; use 10ms or more"
    );
    assert_eq!(
        run("memory-interval = \"1000000000000h\""),
        "envs/x.toml:3:19: `memory-interval` of `1000000000000h` is longer than the maximum of 1h\n  hint: sampling less often than hourly draws no curve of memory use; to not sample at all write \"none\""
    );
    assert_eq!(
        run("memory-interval = 100"),
        "envs/x.toml:3:19: expected a duration string such as \"100ms\" or \"1s\" for `memory-interval`, found the integer `100`"
    );
    // "none" switches them off; the bounds themselves are fine.
    let m = ok("[run]\ncommand = \"x\"\ntimeout = \"none\"\nmemory-interval = \"none\"\n");
    assert_eq!(
        (m.cells[0].timeout, m.cells[0].memory_interval),
        (None, None)
    );
    let m = ok("[run]\ncommand = \"x\"\nmemory-interval = \"1h\"\n");
    assert_eq!(m.cells[0].memory_interval, Some(Duration::from_secs(3600)));
}

#[test]
fn cpu_quota_below_the_kernel_minimum_is_refused() {
    let limits = |body: &str| err(&format!("[limits]\n{body}\n{RUN}"));
    let hint = "  hint: cpu-quota is in cores: 0.01 is the least, 0.5 is half a core";
    assert_eq!(
        limits("cpu-quota = 0.0000001"),
        format!(
            "envs/x.toml:2:13: cpu-quota `0.0000001` is below the kernel's minimum of 0.01 cores (1 ms of CPU time per 100 ms period)\n{hint}"
        )
    );
    assert_eq!(
        limits("cpu-quota = 0.009"),
        format!(
            "envs/x.toml:2:13: cpu-quota `0.009` is below the kernel's minimum of 0.01 cores (1 ms of CPU time per 100 ms period)\n{hint}"
        )
    );
    for fine in ["0.01", "0.015", "2"] {
        let m = ok(&format!("[limits]\ncpu-quota = {fine}\n{RUN}"));
        assert_eq!(m.cells[0].limits.cpu_quota, Some(fine.parse().unwrap()));
    }
}

#[test]
fn users_that_can_never_resolve_are_refused() {
    let env = |user: &str| err(&format!("[environment]\nuser = \"{user}\"\n{RUN}"));
    let hint = "  hint: write a user name, a uid from 0 to 4294967294, or `user:group` with names or ids: \"bench\", \"1000\", \"1000:1000\", \"bench:staff\"";
    for (user, why) in [
        ("-1", "`-1` is a negative id"),
        ("1000:-1", "`-1` is a negative id"),
        (
            "4294967295",
            "id `4294967295` is out of range (0 to 4294967294)",
        ),
        (
            "99999999999",
            "id `99999999999` is out of range (0 to 4294967294)",
        ),
        ("a b", "`a b` is not a valid user name"),
        ("-bench", "`-bench` is not a valid user name"),
        ("bench:st/aff", "`st/aff` is not a valid group name"),
        ("bench:", "the group is empty"),
        (":staff", "the user is empty"),
        ("a:b:c", "it has more than one `:`"),
    ] {
        assert_eq!(
            env(user),
            format!("envs/x.toml:2:8: invalid user `{user}`: {why}\n{hint}")
        );
    }
    // Syntax alone (paths unchecked): names and ids of every form.
    for user in [
        "bench",
        "1000",
        "1000:1000",
        "bench:staff",
        "0:staff",
        "www-data",
        "svc$",
        "a.b_c",
    ] {
        let m = ok(&format!("[environment]\nuser = \"{user}\"\n{RUN}"));
        assert_eq!(m.cells[0].user.as_deref(), Some(user));
    }
}

/// A named user must be in the rootfs's /etc/passwd (or the host's, for cells on the host's
/// files); a numeric id need not be. Only when paths are checked, and not when a setup step
/// or a volume could provide the account.
#[test]
fn users_are_looked_up_in_the_roots_account_files() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "# comment\nroot:x:0:0::/root:/bin/sh\nbench:x:1000:1000::/home/bench:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nstaff:x:50:bench\n").unwrap();
    let file = dir.path().join("x.toml");
    let check = ValidationContext {
        online_cpus: "0-1".parse().unwrap(),
        check_paths: true,
        image_accounts: Default::default(),
    };
    let parse_with = |env: &str, extra: &str| {
        parse(
            &format!(
                "[environment]\nrootfs = \"./rootfs\"\n{env}\n[run]\ncommand = \"x\"\n{extra}"
            ),
            &file,
            &check,
        )
    };
    for user in [
        "bench",
        "root",
        "1000",
        "4242",
        "bench:staff",
        "1000:50",
        "4242:4242",
    ] {
        let m = parse_with(&format!("user = \"{user}\""), "").unwrap();
        assert_eq!(m.cells[0].user.as_deref(), Some(user));
    }
    let canonical = std::fs::canonicalize(&rootfs).unwrap();
    let hint_user = "  hint: name a user of that file, give a numeric id (\"1000\", \"1000:1000\"), or create the user in `setup`";
    assert_eq!(
        parse_with("user = \"nobody\"", "").unwrap_err().to_string(),
        format!(
            "{}:3:8: user `nobody` is not in the rootfs's /etc/passwd ({}/etc/passwd)\n{hint_user}",
            file.display(),
            canonical.display()
        )
    );
    assert_eq!(
        parse_with("user = \"bench:wheel\"", "")
            .unwrap_err()
            .to_string(),
        format!(
            "{}:3:8: group `wheel` is not in the rootfs's /etc/group ({}/etc/group)\n  hint: name a group of that file, give a numeric id (\"1000\", \"1000:1000\"), or create the group in `setup`",
            file.display(),
            canonical.display()
        )
    );
    // A setup step may create the user; a volume over /etc may bring it.
    parse_with("user = \"nobody\"", "setup = \"adduser -D nobody\"\n").unwrap();
    std::fs::create_dir_all(dir.path().join("etc2")).unwrap();
    parse_with("user = \"nobody\"\nvolumes = [\"./etc2:/etc:ro\"]", "").unwrap();
    // Unchecked paths (plan on another host): not looked up.
    parse(
        "[environment]\nrootfs = \"./rootfs\"\nuser = \"nobody\"\n[run]\ncommand = \"x\"\n",
        &file,
        &ctx(),
    )
    .unwrap();
    // A rootfs without account files has no named users at all.
    std::fs::create_dir_all(dir.path().join("bare")).unwrap();
    let e = parse(
        "[environment]\nrootfs = \"./bare\"\nuser = \"bench\"\n[run]\ncommand = \"x\"\n",
        &file,
        &check,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("user `bench` is not in the rootfs's /etc/passwd"),
        "{e}"
    );
    // A symlinked /etc would resolve elsewhere on the host than in the container: not judged.
    let linked = dir.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink("/etc", linked.join("etc")).unwrap();
    parse(
        "[environment]\nrootfs = \"./linked\"\nuser = \"bench\"\n[run]\ncommand = \"x\"\n",
        &file,
        &check,
    )
    .unwrap();
    // On the host's files: the host's /etc/passwd, which has root and not this name.
    let host = |user: &str| {
        parse(
            &format!("[environment]\nuser = \"{user}\"\n[run]\ncommand = \"x\"\n"),
            &file,
            &check,
        )
    };
    host("root").unwrap();
    host("0:0").unwrap();
    assert_eq!(
        host("benchbox-no-such-user").unwrap_err().to_string(),
        format!(
            "{}:2:8: user `benchbox-no-such-user` is not in the host's /etc/passwd (a cell without `image` or `rootfs` runs on the host's files)\n{hint_user}",
            file.display()
        )
    );
    // Images are checked by `run` once unpacked.
    parse(
        "[environment]\nimage = \"busybox\"\nuser = \"benchbox-no-such-user\"\n",
        &file,
        &check,
    )
    .unwrap();
}

#[test]
fn malformed_image_references_are_refused() {
    let image = |r: &str| err(&format!("[environment]\nimage = \"{r}\"\n"));
    let hint = "  hint: write an image as docker does: `name`, `name:tag`, `registry.example.com:5000/team/name:tag` or `name@sha256:<64 hex digits>`";
    assert_eq!(
        image("::::@@@"),
        format!(
            "envs/x.toml:2:9: invalid image reference `::::@@@`: \"@@\": only sha256 digests are supported\n{hint}"
        )
    );
    assert_eq!(
        image("Eclipse-Temurin:21"),
        format!(
            "envs/x.toml:2:9: invalid image reference `Eclipse-Temurin:21`: \"library/Eclipse-Temurin\" is not a valid repository name (lowercase letters, digits, '.', '_', '-', separated by '/')\n{hint}"
        )
    );
    assert_eq!(
        image("registry:99999/app"),
        format!(
            "envs/x.toml:2:9: invalid image reference `registry:99999/app`: \"99999\" is not a valid registry port (a number from 1 to 65535)\n{hint}"
        )
    );
    // From a placeholder: the cell is named.
    assert_eq!(
        err("[matrix]\nv = [\"21\", \"2 1\"]\n[environment]\nimage = \"temurin:{v}\"\n"),
        format!(
            "envs/x.toml:4:9: invalid image reference `temurin:2 1`: \"2 1\" is not a valid tag in cell v=2 1\n{hint}"
        )
    );
    for fine in [
        "busybox",
        "eclipse-temurin:21-jre",
        "localhost:5000/a/b:c",
        "ghcr.io/o/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        ok(&format!("[environment]\nimage = \"{fine}\"\n"));
    }
}

#[test]
fn names_of_builtin_columns_are_refused_for_axes_and_metrics() {
    let columns = "cell, label, phase, invocation, started_at, wall_s, user_s, system_s, peak_memory_bytes, io_read_bytes, io_write_bytes, exit_code, signal, oom_killed, timed_out, throttled_s, rusage_user_s, rusage_system_s, max_rss_bytes, minor_faults, major_faults, voluntary_switches, involuntary_switches, status, flags, reason, psi_cpu_some_us, psi_memory_some_us, psi_memory_full_us, psi_io_some_us, psi_io_full_us, other_cpu_s, steal_s, disturbance_scope, task_clock_s, context_switches, cpu_migrations, page_faults, instructions, cycles, branches, branch_misses, cache_misses, counters_scaled";
    for name in [
        "cell",
        "label",
        "phase",
        "invocation",
        "wall_s",
        "exit_code",
        "status",
        "flags",
        "reason",
    ] {
        assert_eq!(
            err(&format!("[matrix]\n{name} = [1, 2]\n{RUN}")),
            format!(
                "envs/x.toml:2:1: axis `{name}` has the name of a column runs.csv always has\n  hint: rename the axis; runs.csv's own columns are {columns}"
            )
        );
        assert_eq!(
            err(&format!("{RUN}[[metric]]\nname = \"{name}\"\n")),
            format!(
                "envs/x.toml:4:8: metric `{name}` has the name of a column runs.csv always has\n  hint: rename the metric; runs.csv's own columns are {columns}"
            )
        );
    }
    assert_eq!(
        err(&format!("{RUN}[[metric]]\nname = \"cpu_s\"\n")),
        "envs/x.toml:4:8: metric `cpu_s` has the name of a standard metric\n  hint: rename the metric; the standard metrics are wall_s, cpu_s, peak_memory_bytes, max_rss_bytes, user_s, system_s, io_read_bytes, io_write_bytes, task_clock_s, context_switches, cpu_migrations, page_faults, instructions, cycles, branches, branch_misses, cache_misses"
    );
    assert_eq!(
        err(&format!(
            "[matrix]\nsize = [1, 2]\n{RUN}[[metric]]\nname = \"size\"\n"
        )),
        "envs/x.toml:6:8: metric `size` has the name of axis `size`: runs.csv would have two `size` columns\n  hint: rename the metric or the axis"
    );
    // A substituted metric name is checked per cell.
    assert_eq!(
        err(&format!(
            "[matrix]\nm = [\"ok\", \"wall\"]\n{RUN}[[metric]]\nname = \"{{m}}_s\"\n"
        )),
        format!(
            "envs/x.toml:6:8: metric `wall_s` has the name of a column runs.csv always has in cell m=wall\n  hint: rename the metric; runs.csv's own columns are {columns}"
        )
    );
    // Close is fine: the names are exact.
    ok(&format!(
        "[matrix]\nPhase = [1]\nphases = [2]\n{RUN}[[metric]]\nname = \"wall\"\n"
    ));
}

#[test]
fn encoding_errors_have_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    // "é" is two bytes: the column counts characters; 0xff is never UTF-8.
    std::fs::write(
        &file,
        b"name = \"caf\xc3\xa9\"\n[run]\ncommand = \"ab\xffc\"\n",
    )
    .unwrap();
    let e = load(&file, &ctx()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:14: invalid UTF-8: byte 0xff\n  hint: a matrix is TOML, which is UTF-8: save the file as UTF-8 (from Latin-1: `iconv -f latin1 -t utf-8`)",
            file.display()
        )
    );
    let d = e.diagnostic().unwrap();
    assert_eq!((d.line, d.col), (3, 14));
    // A Latin-1 "é" on the first line, and a file cut inside a character.
    std::fs::write(&file, b"name = \"caf\xe9\"\n").unwrap();
    assert!(
        load(&file, &ctx())
            .unwrap_err()
            .to_string()
            .contains(":1:12: invalid UTF-8: byte 0xe9")
    );
    std::fs::write(&file, b"[run]\ncommand = \"x\" # \xc3").unwrap();
    assert!(
        load(&file, &ctx())
            .unwrap_err()
            .to_string()
            .contains(":2:17: invalid UTF-8: byte 0xc3")
    );
    // A NUL byte: the TOML parser says nothing useful about it.
    assert_eq!(
        err("[run]\ncommand = \"a\0b\"\n"),
        "envs/x.toml:2:13: the file contains a NUL byte\n  hint: a matrix is a TOML text file: remove the byte (was a binary or UTF-16 file given?)"
    );
    // UTF-16 (with its byte order mark) is not UTF-8 from the first byte.
    std::fs::write(&file, b"\xff\xfe[\0r\0").unwrap();
    assert!(
        load(&file, &ctx())
            .unwrap_err()
            .to_string()
            .contains(":1:1: invalid UTF-8: byte 0xff")
    );
}

// ---- expansion: linear and bounded. No timings: counts and outcomes only; the
// timings are in benches/expansion.rs and the README. ----

fn axis(name: &str, n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!("{name} = [{}]\n", values.join(", "))
}

/// One axis of 30,000 values took 44 s (every value compared with every other as text).
#[test]
fn a_long_axis_expands() {
    let m = ok(&format!(
        "[matrix]\n{}[run]\ncommand = \"echo {{v}}\"\n",
        axis("v", 30_000)
    ));
    assert_eq!(m.cells.len(), 30_000);
    assert_eq!(m.axes[0].values.len(), 30_000);
    assert_eq!(m.cells[29_999].label, "v=29999");
    assert_eq!(m.cells[29_999].command[2], "echo 29999");
    // Duplicates are still found, wherever they are.
    let mut values: Vec<String> = (0..30_000).map(|i| i.to_string()).collect();
    values.push("\"17\"".into());
    let e = err(&format!("[matrix]\nv = [{}]\n{RUN}", values.join(", ")));
    assert!(e.contains("duplicate value `17` in axis `v`"), "{e}");
}

/// Past the limit nothing is built: a billion cells are refused at once (building them would
/// not finish, or abort on memory, as it did).
#[test]
fn matrices_past_the_limit_are_refused_before_expansion() {
    let hint = "  hint: split it into several matrix files, or use fewer axis values (the limit applies to the product, before `exclude`)";
    assert_eq!(
        err(&format!(
            "[matrix]\n{}{}{}{RUN}",
            axis("a", 1000),
            axis("b", 1000),
            axis("c", 1000)
        )),
        format!(
            "envs/x.toml:1:1: the matrix expands to 1,000,000,000 cells (the product of its axes: 1,000 x 1,000 x 1,000); the limit is 1,000,000 cells\n{hint}"
        )
    );
    // One past the limit.
    assert_eq!(
        err(&format!(
            "[matrix]\n{}{}{RUN}",
            axis("a", 1000),
            axis("b", 1001)
        )),
        format!(
            "envs/x.toml:1:1: the matrix expands to 1,001,000 cells (the product of its axes: 1,000 x 1,001); the limit is 1,000,000 cells\n{hint}"
        )
    );
    // More cells than a u128 counts.
    let many: String = (0..40).map(|i| axis(&format!("a{i}"), 10)).collect();
    let e = err(&format!("[matrix]\n{many}{RUN}"));
    assert!(e.starts_with("envs/x.toml:1:1: the matrix expands to more than 10^38 cells (the product of its axes: 10 x 10 x"), "{e}");
    // `include` entries count too.
    let includes: Vec<String> = (0..2)
        .map(|i| format!("{{ a = {}, b = 0 }}", 2000 + i))
        .collect();
    assert_eq!(
        err(&format!(
            "[matrix]\n{}{}include = [{}]\n{RUN}",
            axis("a", 1000),
            axis("b", 1000),
            includes.join(", ")
        )),
        format!(
            "envs/x.toml:1:1: the matrix expands to 1,000,001 cells (with its `include` entries); the limit is 1,000,000 cells\n{hint}"
        )
    );
    assert_eq!(MAX_CELLS, 1_000_000);
}

/// `run` takes fewer cells than `check` and `plan`, and says so before building any.
#[test]
fn run_refuses_more_cells_than_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    std::fs::write(
        &file,
        format!("[matrix]\n{}{}{RUN}", axis("a", 100), axis("b", 101)),
    )
    .unwrap();
    assert_eq!(
        load_for_run(&file, &ctx(), 10_000).unwrap_err().to_string(),
        format!(
            "{}:1:1: the matrix expands to 10,100 cells; `run` takes at most 10,000 (`check` and `plan` take 1,000,000)\n  hint: a run records every cell in results.json and holds them all in memory: split the matrix into several files",
            file.display()
        )
    );
    assert_eq!(
        load_for_run(&file, &ctx(), 10_100).unwrap().cells.len(),
        10_100
    );
}

/// Large matrices are built in parallel chunks; the outcome is the one of building the cells
/// one after the other: the first error in cell order wins, a duplicate included.
#[test]
fn large_matrices_report_the_first_error_in_cell_order() {
    // 200 x 100 = 20,000 cells (several chunks). The last value of `a` is below the memory
    // floor: cells 19,900.. fail. The include duplicates cell 0 at index 20,000.
    let mut a: Vec<String> = (0..199).map(|i| format!("\"{}MiB\"", 6 + i)).collect();
    a.push("\"1MiB\"".into());
    let src = |a: &[String], include: &str| {
        format!(
            "[matrix]\na = [{}]\n{}include = [{include}]\n[limits]\nmemory = \"{{a}}\"\n[run]\ncommand = \"echo {{b}}\"\n",
            a.join(", "),
            axis("b", 100)
        )
    };
    let e = err(&src(&a, "{ a = \"6MiB\", b = 0 }"));
    assert!(
        e.starts_with(
            "envs/x.toml:6:10: `memory` of 1 MiB is below the floor of 6 MiB in cell a=1MiB b=0\n"
        ),
        "{e}"
    );
    // Without the bad value, the duplicate is the first error.
    a.pop();
    a.push("\"300MiB\"".into());
    let e = err(&src(&a, "{ a = \"6MiB\", b = 0 }"));
    assert!(
        e.starts_with(
            "envs/x.toml:4:12: cells `a=6MiB b=0` and `a=6MiB b=0` expand to the same cell"
        ),
        "{e}"
    );
    // The bad value in the first chunk, the duplicate after the last: the bad value wins.
    let mut first_bad = a.clone();
    first_bad[0] = "\"1MiB\"".into();
    let e = err(&src(&first_bad, "{ a = \"7MiB\", b = 0 }"));
    assert!(
        e.contains("`memory` of 1 MiB is below the floor of 6 MiB in cell a=1MiB b=0"),
        "{e}"
    );
    // And when all is well, every cell is there, in order, with distinct ids and slugs.
    let m = ok(&src(&a, "{ a = \"4GiB\", b = 0 }"));
    assert_eq!(m.cells.len(), 20_001);
    assert_eq!(m.cells[0].label, "a=6MiB b=0");
    assert_eq!(m.cells[19_999].label, "a=300MiB b=99");
    assert_eq!(m.cells[20_000].label, "a=4GiB b=0");
    let ids: std::collections::HashSet<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 20_001);
    let slugs: std::collections::HashSet<&str> = m.cells.iter().map(|c| c.slug.as_str()).collect();
    assert_eq!(slugs.len(), 20_001);
}

/// `check` and `plan` build cells one at a time (`open`): the same cells, ids, slugs and
/// warnings as `load`, the whole matrix never held.
#[test]
fn lazy_cells_are_the_loaded_cells() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.toml");
    // Slugs that collide ("a.b" and "a-b"), a warning, substitution, an include.
    let source = format!(
        "[matrix]\nx = [\"a.b\", \"a-b\", \"c\"]\n{}unused = [1]\ninclude = [{{ x = \"d\", n = 1, unused = 1 }}]\n[limits]\ncpus = \"0\"\ncpu-quota = 2\n[run]\ncommand = \"echo {{x}} {{n}}\"\n",
        axis("n", 4000)
    );
    std::fs::write(&file, &source).unwrap();
    let whole = load(&file, &ctx()).unwrap();
    let lazy = open(&file, &ctx()).unwrap();
    assert_eq!(lazy.len(), whole.cells.len());
    assert_eq!(lazy.len(), 12_001);
    assert_eq!(lazy.warnings, whole.warnings);
    assert_eq!(lazy.axes(), whole.axes.as_slice());
    assert_eq!(lazy.source_sha256(), whole.source_sha256);
    for i in (0..lazy.len()).step_by(97).chain([lazy.len() - 1]) {
        assert_eq!(lazy.cell(i).unwrap(), whole.cells[i], "cell {i}");
    }
    assert_eq!(
        whole.cells[0].slug,
        format!("x-a-b-n-0-unused-1-{}", whole.cells[0].id)
    );
    assert_eq!(whole.cells[8000].slug, "x-c-n-0-unused-1");
}

/// Image cells: `run` passes the unpacked images' account files in, and the same check applies.
#[test]
fn image_users_are_looked_up_once_run_has_the_image() {
    let mut ctx = ValidationContext {
        image_accounts: [(
            "busybox".to_string(),
            (
                "root:x:0:0::/root:/bin/sh\nbench:x:1000:1000::/:/bin/sh\n".to_string(),
                "root:x:0:\n".to_string(),
            ),
        )]
        .into(),
        ..ctx()
    };
    let src = |user: &str| format!("[environment]\nimage = \"busybox\"\nuser = \"{user}\"\n");
    // Only when paths are checked (as `run` does).
    parse(&src("nobody"), Path::new("envs/x.toml"), &ctx).unwrap();
    ctx.check_paths = true;
    parse(&src("bench"), Path::new("envs/x.toml"), &ctx).unwrap();
    parse(&src("4242:4242"), Path::new("envs/x.toml"), &ctx).unwrap();
    assert_eq!(
        parse(&src("nobody"), Path::new("envs/x.toml"), &ctx)
            .unwrap_err()
            .to_string(),
        "envs/x.toml:3:8: user `nobody` is not in the image's /etc/passwd (busybox)\n  hint: name a user of that file, give a numeric id (\"1000\", \"1000:1000\"), or create the user in `setup`"
    );
    assert_eq!(
        parse(&src("bench:staff"), Path::new("envs/x.toml"), &ctx)
            .unwrap_err()
            .to_string(),
        "envs/x.toml:3:8: group `staff` is not in the image's /etc/group (busybox)\n  hint: name a group of that file, give a numeric id (\"1000\", \"1000:1000\"), or create the group in `setup`"
    );
    // An image whose files are not known is not judged.
    parse(
        "[environment]\nimage = \"alpine\"\nuser = \"nobody\"\n",
        Path::new("envs/x.toml"),
        &ctx,
    )
    .unwrap();
}

/// `runs = "auto"` changes how many invocations a cell gets, not what runs: like `runs`, it is
/// not part of the id, so the quick start's pinned ids hold with it, and a run that used a
/// number of runs can be topped up adaptively (and compared) cell for cell.
#[test]
fn runs_auto_keeps_ids_and_reads_its_settings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let source = std::fs::read_to_string(&path).unwrap();
    let auto = source.replace(
        "[run]\n",
        "[run]\nmin-runs = 6\nmax-runs = 40\nci-width = \"1.5%\"\nbudget = \"10m\"\n",
    );
    let auto = if auto.contains("\nruns = ") {
        let at = auto.find("\nruns = ").unwrap() + 1;
        let end = at + auto[at..].find('\n').unwrap();
        format!("{}runs = \"auto\"{}", &auto[..at], &auto[end..])
    } else {
        auto.replace("[run]\n", "[run]\nruns = \"auto\"\n")
    };
    let m = parse(&auto, &path, &ctx()).unwrap();
    let ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["0b6e9b94bbc7", "fb54c36c5013", "79ccd99a1e7e"]);
    let c = &m.cells[0];
    assert_eq!(c.runs, 40, "the plan holds the cap");
    assert_eq!(
        c.adaptive,
        Some(Adaptive {
            min_runs: 6,
            max_runs: 40,
            ci_width: 0.015,
            budget: Some(Duration::from_secs(600)),
        })
    );
    // The defaults; and a number of runs has no adaptive settings.
    let d = ok(&format!("{RUN}runs = \"auto\"\n"));
    let a = d.cells[0].adaptive.unwrap();
    assert_eq!(
        (a.min_runs, a.max_runs, a.ci_width, a.budget),
        (10, 50, 0.0125, None)
    );
    assert_eq!(d.cells[0].runs, 50);
    assert_eq!(ok(RUN).cells[0].adaptive, None);
    assert_eq!(d.cells[0].id, ok(RUN).cells[0].id);
}

#[test]
fn runs_auto_errors_point_at_the_value() {
    let e = err(&format!("{RUN}runs = \"many\"\n"));
    assert!(
        e.starts_with(
            "envs/x.toml:3:8: expected an integer or \"auto\" for `runs`, found the string `many`"
        ),
        "{e}"
    );
    assert!(
        e.contains("hint: give a number of measured runs, or \"auto\""),
        "{e}"
    );
    let e = err(&format!("{RUN}runs = 5\nmax-runs = 9\n"));
    assert!(
        e.starts_with("envs/x.toml:4:12: `max-runs` is only for `runs = \"auto\"`"),
        "{e}"
    );
    let e = err(&format!(
        "{RUN}runs = \"auto\"\nmin-runs = 20\nmax-runs = 10\n"
    ));
    assert!(
        e.contains("min-runs (20) is more than max-runs (10)"),
        "{e}"
    );
    let e = err(&format!("{RUN}runs = \"auto\"\nci-width = \"2\"\n"));
    assert!(e.starts_with("envs/x.toml:4:12: invalid `ci-width`"), "{e}");
    assert!(e.contains("hint: for example ci-width = \"2%\""), "{e}");
    let e = err(&format!("{RUN}runs = \"auto\"\nbudget = \"soon\"\n"));
    assert!(e.contains("invalid duration `soon` for `budget`"), "{e}");
}
