//! Cells on real OCI images, end to end through the binary: images built from busybox-static,
//! pushed to a real registry, pulled, pinned in a lock file, run, retagged.

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::fs;
use std::process::Output;

use common::project::{Project, text};

/// A project on the host's files (see `common::project::Project`; the tests write `m.toml`) with its
/// own image cache, and a registry to push to.
struct Env {
    project: Project,
    registry: registry::Registry,
}

impl std::ops::Deref for Env {
    type Target = Project;
    fn deref(&self) -> &Project {
        &self.project
    }
}

impl Env {
    fn new() -> Env {
        Env {
            project: Project::on_host(""),
            registry: registry::Registry::start(),
        }
    }

    /// `benchbox ARGS` in the project, with its own image cache.
    fn benchbox(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .env("BENCHBOX_CACHE", self.path("cache"))
            .output()
            .unwrap()
    }

    /// An environment with `bb:a` and `bb:b` pushed (flavours A and B) and `m.toml` written
    /// from [`MATRIX`], as `edit` changes it.
    fn with_two_flavours(edit: impl FnOnce(String) -> String) -> Env {
        let env = Env::new();
        env.push_flavour("a", "A");
        env.push_flavour("b", "B");
        let matrix = edit(MATRIX.replace("ADDR", &env.registry.addr));
        fs::write(env.path("m.toml"), matrix).unwrap();
        env
    }

    /// A busybox root filesystem with /etc/flavour, imported and pushed as `bb:<tag>`.
    fn push_flavour(&self, tag: &str, flavour: &str) -> String {
        let root = self.path(&format!("root-{tag}-{flavour}"));
        common::busybox_rootfs(&root);
        fs::write(root.join("etc/flavour"), flavour).unwrap();
        let reference = format!("{}/bench/bb:{tag}", self.registry.addr);
        let o = self.benchbox(&[
            "import",
            root.to_str().unwrap(),
            "--tag",
            &reference,
            "--push",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        reference
    }
}

const MATRIX: &str = r#"
name = "imgs"
[matrix]
flavour = ["a", "b"]
[environment]
image = "ADDR/bench/bb:{flavour}"
[limits]
memory = "64MiB"
[run]
command = "cat /etc/flavour; echo; test ! -e /written && echo > /written"
warmup = 0
runs = 2
"#;

fn plan_ids(env: &Env) -> Vec<(String, String)> {
    let o = env.benchbox(&["plan", "m.toml", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["image_digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn two_cells_on_two_images_are_pinned_run_and_survive_a_retag() {
    if !common::privileged() {
        return;
    }
    let env = Env::with_two_flavours(|m| m);

    // --locked without a lock file: exit 4, nothing run.
    let o = env.benchbox(&["run", "m.toml", "--out", "out", "--locked"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("m.lock"),
        "{}",
        text(&o)
    );
    assert!(!env.path("out").exists());

    // A plain run resolves, pins and runs each cell on its own image.
    let o = env.benchbox(&["run", "m.toml", "--out", "out", "--resamples", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(env.log("imgs", "flavour-a"), "A\n");
    assert_eq!(env.log("imgs", "flavour-b"), "B\n");
    let lock = fs::read_to_string(env.path("m.lock")).unwrap();
    assert_eq!(lock.matches("digest = \"sha256:").count(), 2, "{lock}");
    let pinned = plan_ids(&env);
    assert!(
        pinned.iter().all(|(_, d)| d.starts_with("sha256:")),
        "{pinned:?}"
    );
    let results: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(
            fs::canonicalize(env.path("out/imgs/latest"))
                .unwrap()
                .join("results.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        results["plan"]["cells"][0]["image_digest"],
        pinned[0].1.as_str()
    );

    // The tag moves; a locked run still uses the pinned image.
    env.push_flavour("b", "B2");
    let o = env.benchbox(&[
        "run",
        "m.toml",
        "--out",
        "out",
        "--locked",
        "--resamples",
        "100",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(env.log("imgs", "flavour-b"), "B\n");
    assert_eq!(plan_ids(&env), pinned, "a locked run changes nothing");

    // `pull --update` re-resolves: the new image runs, and its cell gets a new id.
    let o = env.benchbox(&["pull", "m.toml", "--update"]);
    assert!(o.status.success(), "{}", text(&o));
    let updated = plan_ids(&env);
    assert_eq!(updated[0], pinned[0]);
    assert_ne!(updated[1], pinned[1]);
    let o = env.benchbox(&["run", "m.toml", "--out", "out", "--resamples", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(env.log("imgs", "flavour-b"), "B2\n");

    // `images` lists them; prune keeps what the lock file pins.
    let o = env.benchbox(&["images"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("bench/bb:a"),
        "{}",
        text(&o)
    );
    let o = env.benchbox(&["images", "prune", "--lock", "m.lock", "--out", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = env.benchbox(&[
        "run",
        "m.toml",
        "--out",
        "out",
        "--locked",
        "--resamples",
        "100",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_unknown_tag_is_exit_4_naming_the_reference() {
    if !common::privileged() {
        return;
    }
    let env = Env::new();
    fs::write(
        env.path("m.toml"),
        MATRIX.replace("ADDR", &env.registry.addr),
    )
    .unwrap();
    let o = env.benchbox(&["run", "m.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bench/bb:a"),
        "{}",
        text(&o)
    );
    assert!(
        !env.path("out").exists(),
        "nothing is created when an image cannot be resolved"
    );
    assert!(!env.path("m.lock").exists());
}

#[test]
fn the_image_config_supplies_command_env_workdir_and_user() {
    if !common::privileged() {
        return;
    }
    let env = Env::new();
    let root = env.path("root");
    common::busybox_rootfs(&root);
    fs::create_dir_all(root.join("work")).unwrap();
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nbench:x:1000:1000::/work:/bin/sh\n",
    )
    .unwrap();
    // A layer tar of the rootfs (the library's import takes layers and a config).
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", &root).unwrap();
    let layer = tar.into_inner().unwrap();
    let store =
        benchbox::image::Store::open(&env.path("cache").join(benchbox::image::store::LAYOUT))
            .unwrap();
    let config = benchbox::image::ImageConfig {
        env: vec![
            ("GREETING".into(), "from-image".into()),
            ("PATH".into(), "/bin".into()),
        ],
        working_dir: Some("/work".into()),
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd: vec!["echo $GREETING $OVERRIDE; pwd; id -u".into()],
        user: Some("bench".into()),
    };
    let reference = format!("{}/bench/configured:1", env.registry.addr);
    benchbox::image::import_layers(&store, &[layer], &config, &reference).unwrap();
    benchbox::image::push(&store, &reference, &reference, &Default::default()).unwrap();
    fs::write(
        env.path("m.toml"),
        format!("name = \"cfg\"\n[environment]\nimage = \"{reference}\"\nenv = {{ OVERRIDE = \"from-matrix\" }}\n[run]\nwarmup = 0\nruns = 1\n"),
    )
    .unwrap();
    let o = env.benchbox(&["run", "m.toml", "--out", "out", "--resamples", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        env.log("cfg", "default"),
        "from-image from-matrix\n/work\n1000\n"
    );
}

/// `calibrate` measures image cells as `run` would: the images pulled and pinned (the lock
/// file written), each cell's command run in its own image, the temporary run removed.
#[test]
fn calibrate_runs_image_cells_on_their_pinned_images() {
    if !common::privileged() {
        return;
    }
    let env = Env::with_two_flavours(|m| {
        m.replace(
            "test ! -e /written && echo > /written",
            "grep -q '[AB]' /etc/flavour && sleep 0.05",
        )
    });
    // A steady command and a large effect keep the simulations short (a debug build here).
    let o = env.benchbox(&["calibrate", "m.toml", "--budget", "2s", "--effect", "50%"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for cell in ["flavour=a", "flavour=b"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(cell))
            .unwrap_or_else(|| panic!("{out}"));
        // n: at least the 6 invocations a cell always gets, all of them ok.
        let n: u32 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(n >= 6, "{row}");
    }
    let lock = fs::read_to_string(env.path("m.lock")).unwrap();
    assert_eq!(lock.matches("digest = \"sha256:").count(), 2, "{lock}");
    assert!(!env.path("out").exists());
}

/// A service from an image, as the workload's are: pulled, pinned in the lock file, run with
/// its image's files (the page it serves is the image's /etc/flavour), and an axis can choose
/// the image.
#[test]
fn a_service_runs_from_its_pinned_image() {
    if !common::privileged() {
        return;
    }
    let env = Env::new();
    env.push_flavour("a", "A");
    env.push_flavour("b", "B");
    let matrix = r#"
name = "svcimg"
[matrix]
flavour = ["a", "b"]
[environment]
image = "ADDR/bench/bb:a"
[limits]
cpus = "0"
memory = "64MiB"
[run]
command = "busybox wget -q -O - http://web:8080/flavour"
warmup = 0
runs = 2
[services.web]
image = "ADDR/bench/bb:{flavour}"
command = ["busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"]
ready = { tcp = 8080 }
"#
    .replace("ADDR", &env.registry.addr);
    fs::write(env.path("m.toml"), matrix).unwrap();
    let o = env.benchbox(&["run", "m.toml", "--out", "out", "--resamples", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(env.log("svcimg", "flavour-a"), "A");
    assert_eq!(env.log("svcimg", "flavour-b"), "B");
    // Both service images pinned (bb:a serves the workload too: two references in all).
    let lock = fs::read_to_string(env.path("m.lock")).unwrap();
    assert_eq!(lock.matches("digest = \"sha256:").count(), 2, "{lock}");
}
