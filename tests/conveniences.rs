//! The command line's conveniences, through the `benchbox` binary: shell completions, the man
//! pages, typed `--only`, range axes as `plan` shows them, the end-of-run table and
//! `GITHUB_STEP_SUMMARY` of a real run, and `pull`'s words for a connection that failed.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use common::project::{Project, text};

const SUBCOMMANDS: [&str; 6] = ["check", "plan", "run", "pull", "compare", "completions"];

fn stdout_of(args: &[&str]) -> String {
    let o = common::benchbox().args(args).output().unwrap();
    assert!(o.status.success(), "benchbox {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn bash_completion_parses_and_zsh_fish_name_every_command() {
    let bash = stdout_of(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("benchbox.bash");
    fs::write(&script, &bash).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "bash -n: {}", text(&check));
    // Sourced, it registers the completion function for `benchbox`.
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p benchbox",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(sourced.status.success(), "{}", text(&sourced));
    assert!(text(&sourced).contains("benchbox"), "{}", text(&sourced));
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks `{sub}`");
        }
        // Flags of a subcommand complete too.
        assert!(script.contains("only"), "{shell} completion lacks --only");
    }
    let bad = common::benchbox()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn the_man_page_renders_and_dir_writes_one_per_command() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH benchbox 1"), "{page}");
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("benchbox\\-{sub}(1)")),
            "{sub} missing: {page}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = common::benchbox()
        .args(["man", "--dir", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for sub in SUBCOMMANDS {
        let file = out.join(format!("benchbox-{sub}.1"));
        let roff = fs::read_to_string(&file).unwrap();
        assert!(roff.contains(&format!(".TH benchbox-{sub} 1")), "{roff}");
    }
    assert!(out.join("benchbox.1").exists());
    // `man` itself reads it, where it is installed (tests/run installs it).
    if Command::new("man").arg("--version").output().is_ok() {
        let shown = Command::new("man")
            .arg("-l")
            .arg(out.join("benchbox-run.1"))
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap();
        assert!(shown.status.success(), "{}", text(&shown));
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.contains("--only"), "{shown}");
        assert!(shown.contains("130  interrupted"), "{shown}");
    }
}

const TYPED: &str = r#"
name = "typed"
[matrix]
cpu_quota = [0.5, 1.0]
threads = { range = [1, 4], step = "x2" }
[run]
command = "echo {cpu_quota} {threads}"
warmup = 0
runs = 1
"#;

#[test]
fn plan_shows_a_range_axis_as_its_values() {
    let p = Project::on_host(TYPED);
    let o = p.cmd(&["plan", "m.toml", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let labels: Vec<&str> = plan["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 6);
    assert!(labels.contains(&"cpu_quota=0.5 threads=4"), "{labels:?}");
    // The same matrix with the values listed has the same cell ids.
    let listed = Project::on_host(&TYPED.replace(
        "threads = { range = [1, 4], step = \"x2\" }",
        "threads = [1, 2, 4]",
    ));
    let o2 = listed.cmd(&["plan", "m.toml", "--json"]).output().unwrap();
    let plan2: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    let ids = |p: &serde_json::Value| -> Vec<String> {
        p["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&plan), ids(&plan2));
}

#[test]
fn only_is_typed_and_a_run_appends_its_summary_to_the_step_summary() {
    // A value that names no cell fails before anything runs, listing the axis's values.
    let p = Project::on_host(TYPED);
    let o = p
        .cmd(&["run", "m.toml", "--out", "out", "--only", "cpu_quota=0.25"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("axis `cpu_quota` has no value `0.25` (in --only `cpu_quota=0.25`)\n  hint: values of `cpu_quota`: 0.5, 1.0"),
        "{}",
        text(&o)
    );
    let o = p
        .cmd(&["run", "m.toml", "--out", "out", "--only", "thread=2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("axes: cpu_quota, threads"),
        "{}",
        text(&o)
    );
    assert!(!p.path("out").exists());
    if !common::privileged() {
        return;
    }
    let summary = p.path("step-summary.md");
    fs::write(&summary, "# earlier step\n").unwrap();
    let o = p
        .cmd(&[
            "run",
            "m.toml",
            "--out",
            "out",
            "--resamples",
            "100",
            "--only",
            "cpu_quota=0.50",
            "--only",
            "threads=2.0",
        ])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let rows = p.csv("typed").1;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("cpu_quota=0.5 threads=2"), "{stdout}");
    assert!(stdout.contains("wall median [95% CI]"), "{stdout}");
    let appended = fs::read_to_string(&summary).unwrap();
    let own = fs::read_to_string(p.latest("typed").join("summary.md")).unwrap();
    assert!(appended.starts_with("# earlier step\n"), "{appended}");
    assert!(appended.contains(&own), "{appended}");
}

/// A port on 127.0.0.1 that nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pull(reference: &str, insecure: &str) -> (Option<i32>, String) {
    let cache = tempfile::tempdir().unwrap();
    let o = common::benchbox()
        .args(["pull", reference, "--cache"])
        .arg(cache.path())
        .env("BENCHBOX_INSECURE_REGISTRIES", insecure)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.code(), text(&o))
}

#[test]
fn pull_names_why_a_registry_cannot_be_reached() {
    // The .invalid top-level domain never resolves.
    let (code, out) = pull("nonexistent.invalid/x:1", "");
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(
            "cannot resolve host nonexistent.invalid\n  hint: check the name and your DNS"
        ),
        "{out}"
    );
    assert!(!out.contains("INSECURE"), "{out}");

    let port = closed_port();
    let (code, out) = pull(&format!("127.0.0.1:{port}/x:1"), "");
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!(
            "nothing listens on 127.0.0.1:{port} (connection refused)"
        )),
        "{out}"
    );
    assert!(!out.contains("INSECURE"), "{out}");

    // A plain-HTTP server spoken to with TLS: on 127.0.0.2, which (unlike 127.0.0.1) is not
    // on the plain-HTTP list. It answers the TLS hello with an HTTP error, as a registry
    // without TLS does.
    let server = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = server.local_addr().unwrap().port();
    // Detached: it serves a few connections at most and ends with the test process.
    std::thread::spawn(move || {
        for _ in 0..3 {
            let Ok((mut conn, _)) = server.accept() else {
                return;
            };
            let mut hello = [0u8; 512];
            let _ = conn.read(&mut hello);
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let (code, out) = pull(&format!("127.0.0.2:{port}/x:1"), "");
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!(
            "127.0.0.2:{port} answered the TLS handshake in plain text: it serves plain HTTP, not HTTPS\n  hint: mark it as a plain-HTTP registry: BENCHBOX_INSECURE_REGISTRIES=127.0.0.2:{port}"
        )),
        "{out}"
    );
}
