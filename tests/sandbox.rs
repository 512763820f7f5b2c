//! Real containers and real cgroups, one invocation at a time, through the library.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use benchbox::sandbox::{self, Invocation, Limits, Outcome, RootSpec};

struct Fixture {
    dir: tempfile::TempDir,
    rootfs: std::path::PathBuf,
    cgroups: sandbox::Hierarchy,
    seq: std::cell::Cell<u64>,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !common::privileged() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let rootfs = common::busybox_rootfs(&dir.path().join("rootfs"));
        std::fs::create_dir(dir.path().join("scratch")).unwrap();
        let cgroups = sandbox::cgroup::detect_host().expect("cgroups");
        Some(Fixture {
            dir,
            rootfs,
            cgroups,
            seq: 0.into(),
        })
    }

    fn invocation(&self, script: &str) -> Invocation {
        Invocation {
            root: RootSpec::Overlay {
                lowers: vec![self.rootfs.clone()],
            },
            volumes: vec![],
            workdir: None,
            env: vec![("PATH".into(), "/bin".into())],
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            hostname: "cell".into(),
            host_network: false,
            limits: Limits::default(),
            stdout: self.dir.path().join("out"),
            stderr: self.dir.path().join("err"),
            timeout: Some(Duration::from_secs(60)),
            scratch_base: self.dir.path().join("scratch"),
            keep_upper: None,
        }
    }

    fn run(&self, inv: &Invocation) -> (Outcome, String) {
        self.seq.set(self.seq.get() + 1);
        let name = format!("test-{}-{}", std::process::id(), self.seq.get());
        let outcome =
            sandbox::run(inv, &self.cgroups, &name, &AtomicBool::new(false)).expect("invocation");
        let out = std::fs::read_to_string(&inv.stdout).unwrap();
        (outcome, out)
    }

    fn scratch_is_empty(&self) -> bool {
        std::fs::read_dir(self.dir.path().join("scratch"))
            .unwrap()
            .next()
            .is_none()
    }
}

fn _unused(_: &Path) {}

#[test]
fn runs_a_workload_in_a_fresh_rootfs_and_cleans_up() {
    let Some(f) = Fixture::new() else { return };
    let (o, out) = f.run(&f.invocation(
        "echo hello; hostname; echo $$; ls /proc | grep -c '^[0-9]'; echo x > /written",
    ));
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(lines[1], "cell");
    assert_ne!(lines[2], "1", "the workload must not be pid 1");
    assert!(o.wall > Duration::ZERO);
    assert!(f.scratch_is_empty());
    let (o, out) = f.run(&f.invocation("cat /written 2>&1; true"));
    assert_eq!(o.exit_code, Some(0));
    assert!(out.contains("No such file"), "{out}");
}
