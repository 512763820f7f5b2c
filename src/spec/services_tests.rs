//! Tests of `[services.NAME]`: typed values and defaults, start order, substitution, ids,
//! the columns appended to a cell's metrics, image pinning, and every error with its position.

use std::path::Path;
use std::time::Duration;

use super::tests::{ctx, err, ok};
use super::*;

const RUN: &str = "[run]\ncommand = \"./client\"\n";

/// Two services declared out of start order (`web` depends on `db`, declared after it).
const TWO: &str = r#"[matrix]
redis = ["7", "6"]

[run]
command = "./client"

[services.web]
rootfs = "./web"
command = "./serve --port 8080"
env = { MODE = "bench", PORT = 8080 }
volumes = ["./static:/static:ro"]
user = "www"
workdir = "/srv"
ready = { command = ["curl", "-f", "http://localhost:8080/"] }
ready-timeout = "1m"
stop-timeout = 2
lifetime = "cell"
depends-on = ["db"]
ports = [8080, 8443]

[services.db]
image = "redis:{redis}"
command = ["redis-server", "--port", "6379", "--tag", "v{redis}"]
ready = { tcp = 6379 }

[services.db.limits]
cpus = "1"
memory = "256MiB"
"#;

#[test]
fn services_are_typed_with_their_defaults_in_start_order() {
    let m = ok(TWO);
    assert_eq!(m.cells.len(), 2);
    let c = &m.cells[0];
    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    let db = &c.services[0];
    assert_eq!(db.root, Root::Image("redis:7".into()));
    assert_eq!(db.image_digest, None);
    assert_eq!(
        db.command,
        ["redis-server", "--port", "6379", "--tag", "v7"]
    );
    assert_eq!(db.ready, Ready::Tcp(6379));
    assert_eq!(db.ready_timeout, Duration::from_secs(30));
    assert_eq!(db.stop_timeout, Duration::from_secs(5));
    assert_eq!(db.lifetime, Lifetime::Invocation);
    assert!(db.depends_on.is_empty());
    assert_eq!(db.ports, [6379]);
    assert_eq!(db.limits.cpus, Some("1".parse().unwrap()));
    assert_eq!(db.limits.memory, Some(256 << 20));
    assert_eq!((db.workdir.as_ref(), db.user.as_ref()), (None, None));

    let web = &c.services[1];
    assert_eq!(
        web.root,
        Root::Dir(build::normalize(&std::path::absolute("envs/web").unwrap()))
    );
    assert_eq!(web.command, ["/bin/sh", "-c", "./serve --port 8080"]);
    assert_eq!(web.env["MODE"], "bench");
    assert_eq!(web.env["PORT"], "8080");
    assert_eq!(web.volumes.len(), 1);
    assert!(web.volumes[0].read_only);
    assert_eq!(web.volumes[0].target, Path::new("/static"));
    assert_eq!(web.user.as_deref(), Some("www"));
    assert_eq!(web.workdir.as_deref(), Some(Path::new("/srv")));
    assert_eq!(
        web.ready,
        Ready::Command(vec![
            "curl".into(),
            "-f".into(),
            "http://localhost:8080/".into()
        ])
    );
    assert_eq!(web.ready_timeout, Duration::from_secs(60));
    assert_eq!(web.stop_timeout, Duration::from_secs(2));
    assert_eq!(web.lifetime, Lifetime::Cell);
    assert_eq!(web.depends_on, ["db"]);
    assert_eq!(web.ports, [8080, 8443]);
    assert_eq!(web.limits, Limits::default());

    // The axis reaches the service's image and command; it is used, so no warning.
    let db6 = &m.cells[1].services[0];
    assert_eq!(db6.root, Root::Image("redis:6".into()));
    assert_eq!(db6.command[4], "v6");
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_ne!(m.cells[0].id, m.cells[1].id);
}

#[test]
fn ready_probes_and_a_missing_ready() {
    let m = ok(&format!(
        "{RUN}[services.a]\ncommand = \"./a\"\n[services.b]\ncommand = \"./b\"\nready = {{ log = \"Ready to accept\" }}\n[services.c]\ncommand = \"./c\"\nready = {{ command = \"probe --quick\" }}\nready-timeout = \"100ms\"\nstop-timeout = \"0s\"\n"
    ));
    let s = &m.cells[0].services;
    assert_eq!(s[0].ready, Ready::Started);
    assert!(s[0].ports.is_empty());
    assert_eq!(s[1].ready, Ready::Log("Ready to accept".into()));
    assert_eq!(
        s[2].ready,
        Ready::Command(vec!["/bin/sh".into(), "-c".into(), "probe --quick".into()])
    );
    assert_eq!(s[2].ready_timeout, Duration::from_millis(100));
    assert_eq!(s[2].stop_timeout, Duration::ZERO);
    // No image and no dependencies: the file's order.
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn start_order_puts_dependencies_first_and_keeps_the_files_order_otherwise() {
    let m = ok(&format!(
        "{RUN}[services.app]\ncommand = \"x\"\ndepends-on = [\"queue\", \"db\"]\n[services.solo]\ncommand = \"x\"\n[services.queue]\ncommand = \"x\"\ndepends-on = [\"db\"]\n[services.db]\ncommand = \"x\"\n[services.late]\ncommand = \"x\"\n"
    ));
    let names: Vec<&str> = m.cells[0]
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["solo", "db", "queue", "app", "late"]);
}

#[test]
fn each_service_appends_its_columns_to_the_metrics() {
    let m = ok(&format!(
        "{RUN}[[metric]]\nname = \"ops\"\npattern = 'ops=(\\d+)'\n[services.db]\nimage = \"redis:7\"\n[services.cache-2]\nimage = \"redis:7\"\nports = [1]\n"
    ));
    let metrics = &m.cells[0].metrics;
    assert_eq!(metrics.len(), 1 + 2 * 8);
    assert_eq!(metrics[0].name, "ops");
    assert_eq!(metrics[0].service, None);
    let db: Vec<(&str, &str)> = metrics[1..9]
        .iter()
        .map(|m| (m.name.as_str(), m.unit.as_deref().unwrap()))
        .collect();
    assert_eq!(
        db,
        [
            ("db.cpu_s", "s"),
            ("db.user_s", "s"),
            ("db.system_s", "s"),
            ("db.peak_memory_bytes", "B"),
            ("db.io_read_bytes", "B"),
            ("db.io_write_bytes", "B"),
            ("db.throttled_s", "s"),
            ("db.ready_s", "s"),
        ]
    );
    for m in &metrics[1..9] {
        assert_eq!(m.service.as_deref(), Some("db"));
        assert_eq!((m.pattern.as_ref(), m.better), (None, Better::Lower));
    }
    assert_eq!(metrics[9].name, "cache-2.cpu_s");
    assert_eq!(metrics[9].service.as_deref(), Some("cache-2"));
    // A user metric may look like a column of a service that does not exist.
    ok(&format!(
        "{RUN}[[metric]]\nname = \"web.cpu_s\"\n[services.db]\nimage = \"redis:7\"\n"
    ));
}

#[test]
fn ids_change_only_with_services() {
    let base = ok(RUN);
    // An empty `[services]` is no service: the id of the cell without the section.
    assert_eq!(
        ok(&format!("{RUN}[services]\n")).cells[0].id,
        base.cells[0].id
    );
    let service = format!("{RUN}[services.db]\nimage = \"redis:7\"\nready = {{ tcp = 6379 }}\n");
    let with = ok(&service);
    assert_ne!(with.cells[0].id, base.cells[0].id);
    // The timeouts bound what runs without changing it, like the cell's `timeout`.
    let timeouts = ok(&format!(
        "{service}ready-timeout = \"2m\"\nstop-timeout = \"1s\"\n"
    ));
    assert_eq!(timeouts.cells[0].id, with.cells[0].id);
    // Everything else does change it.
    for extra in [
        "command = \"x\"\n",
        "env = { A = \"1\" }\n",
        "volumes = [\"./d:/d\"]\n",
        "user = \"1\"\n",
        "workdir = \"/w\"\n",
        "lifetime = \"cell\"\n",
        "ports = [1]\n",
        "limits = { pids = 10 }\n",
    ] {
        let other = ok(&format!("{service}{extra}"));
        assert_ne!(other.cells[0].id, with.cells[0].id, "{extra}");
    }
    let other_ready = ok(&format!(
        "{RUN}[services.db]\nimage = \"redis:7\"\nready = {{ tcp = 6380 }}\n"
    ));
    assert_ne!(other_ready.cells[0].id, with.cells[0].id);
    let other_name = ok(&format!(
        "{RUN}[services.kv]\nimage = \"redis:7\"\nready = {{ tcp = 6379 }}\n"
    ));
    assert_ne!(other_name.cells[0].id, with.cells[0].id);
    let depends = ok(&format!("{service}[services.x]\ncommand = \"x\"\n"));
    let depends_on = ok(&format!(
        "{service}[services.x]\ncommand = \"x\"\ndepends-on = [\"db\"]\n"
    ));
    assert_ne!(depends.cells[0].id, depends_on.cells[0].id);
}

#[test]
fn the_quick_starts_ids_hold_beside_an_empty_services_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let source = std::fs::read_to_string(&path).unwrap() + "\n[services]\n";
    let m = parse(&source, &path, &ctx()).unwrap();
    let ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["0b6e9b94bbc7", "fb54c36c5013", "79ccd99a1e7e"]);
    assert!(m.cells.iter().all(|c| c.services.is_empty()));
    // Nothing about services in the plan's JSON of a cell without them.
    let json = serde_json::to_string(&m.cells[0]).unwrap();
    assert!(!json.contains("services"), "{json}");
}

#[test]
fn service_images_are_pinned_into_the_id() {
    let src =
        format!("[environment]\nimage = \"busybox:1\"\n{RUN}[services.db]\nimage = \"redis:7\"\n");
    let mut m = ok(&src);
    let unpinned = m.cells[0].id.clone();
    let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let mut digests = BTreeMap::from([("busybox:1".to_string(), digest('a'))]);
    pin_images(&mut m, &digests);
    let cell_only = m.cells[0].id.clone();
    assert_ne!(cell_only, unpinned);
    assert_eq!(m.cells[0].services[0].image_digest, None);
    // The same cell without services pins to the id it always did: its image alone.
    let mut plain = ok(&format!("[environment]\nimage = \"busybox:1\"\n{RUN}"));
    let plain_id = plain.cells[0].id.clone();
    pin_images(&mut plain, &digests);
    let expected =
        hex::encode(sha2::Sha256::digest(format!("{plain_id}@{}", digest('a'))))[..12].to_string();
    assert_eq!(plain.cells[0].id, expected);

    let mut m = ok(&src);
    digests.insert("redis:7".into(), digest('b'));
    pin_images(&mut m, &digests);
    assert_eq!(m.cells[0].image_digest, Some(digest('a')));
    assert_eq!(m.cells[0].services[0].image_digest, Some(digest('b')));
    assert_ne!(m.cells[0].id, cell_only);
    // Another digest of the service's image, another cell.
    let mut again = ok(&src);
    digests.insert("redis:7".into(), digest('c'));
    pin_images(&mut again, &digests);
    assert_ne!(again.cells[0].id, m.cells[0].id);
    assert_eq!(
        m.cells[0].image_refs().collect::<Vec<_>>(),
        ["busybox:1", "redis:7"]
    );
}

use sha2::Digest as _;

#[test]
fn lazy_matrices_list_service_images() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.toml");
    std::fs::write(
        &file,
        format!("[matrix]\nv = [\"7\", \"6\"]\n[environment]\nimage = \"busybox:1\"\n{RUN}[services.db]\nimage = \"redis:{{v}}\"\n[services.cache]\nimage = \"busybox:1\"\n"),
    )
    .unwrap();
    let lazy = open(&file, &ctx()).unwrap();
    assert_eq!(lazy.image_refs(), ["busybox:1", "redis:7", "redis:6"]);
    let m = load(&file, &ctx()).unwrap();
    assert_eq!(
        crate::resolve::image_refs(&m),
        ["busybox:1", "redis:7", "redis:6"]
    );
}

#[test]
fn a_services_user_is_checked_against_its_roots_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "redis:x:999:999::/:/bin/sh\n").unwrap();
    let file = dir.path().join("m.toml");
    let checking = ValidationContext {
        check_paths: true,
        ..ctx()
    };
    let write = |user: &str| {
        std::fs::write(
            &file,
            format!("[environment]\nrootfs = \"root\"\n{RUN}[services.db]\nrootfs = \"root\"\ncommand = \"x\"\nuser = \"{user}\"\n"),
        )
        .unwrap();
    };
    write("redis");
    load(&file, &checking).unwrap();
    write("postgres");
    let e = load(&file, &checking).unwrap_err().to_string();
    assert!(
        e.contains(":8:8: user `postgres` is not in the rootfs's /etc/passwd"),
        "{e}"
    );
}

/// The error for `src`, without the file's name.
fn error(src: &str) -> String {
    err(src).trim_start_matches("envs/x.toml:").to_string()
}

#[test]
fn unknown_keys_and_bad_tables() {
    assert_eq!(
        error(&format!(
            "{RUN}[services.db]\nimage = \"redis\"\nredy = {{ tcp = 1 }}\n"
        )),
        "5:1: unknown key `redy` in [services.db]\n  hint: did you mean `ready`? valid keys: image, rootfs, command, env, volumes, user, workdir, ready, ready-timeout, stop-timeout, lifetime, depends-on, ports, limits"
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.db]\nimage = \"redis\"\n[services.db.limits]\nmemroy = \"1G\"\n"
        )),
        "6:1: unknown key `memroy` in [services.db.limits]\n  hint: did you mean `memory`? valid keys: cpus, cpu-quota, memory, pids"
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.db]\nimage = \"redis\"\nready = {{ tpc = 1 }}\n"
        )),
        "5:11: unknown key `tpc` in `ready` of [services.db]\n  hint: did you mean `tcp`? valid keys: tcp, command, log"
    );
    assert_eq!(
        error(&format!("{RUN}[services]\ndb = \"redis\"\n")),
        "4:6: expected a table for `services.db`, found the string `redis`\n  hint: write it as a `[services.db]` section with `image` or `command`"
    );
    assert_eq!(
        error(&format!("services = [1]\n{RUN}")),
        "1:12: expected a table for `services`, found an array\n  hint: write it as a `[services]` section"
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.db]\nimage = \"redis\"\nrootfs = \"./r\"\n"
        )),
        "5:1: both `image` and `rootfs` are set in [services.db]\n  hint: a service runs in an image or in a local directory: remove one"
    );
    assert_eq!(
        error(&format!("{RUN}[services.db]\nrootfs = \"./r\"\n")),
        "3:11: missing `command` in [services.db]\n  hint: a service without an `image` runs the `command` it is given: add `command = [\"./server\"]` (or a string, run with /bin/sh -c)"
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.db]\nimage = \"redis\"\nlimits = 1\n"
        )),
        "5:10: expected a table for `limits`, found the integer `1`"
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.db]\nimage = \"redis\"\nlimits = {{ memory = \"1M\" }}\n"
        )),
        "5:21: `memory` of 1 MiB is below the floor of 6 MiB\n  hint: with less, invocations are killed for lack of memory before the workload does anything (Docker refuses less than 6 MiB too); give \"6MiB\" or more, or remove `memory` for no limit"
    );
}

#[test]
fn bad_names() {
    let hint = "\n  hint: the workload reaches a service by its name, a host name: lowercase letters, digits and `-`, starting with a letter, at most 63 characters (`db`, `redis-7`)";
    assert_eq!(
        error(&format!("{RUN}[services.Db]\nimage = \"redis\"\n")),
        format!("3:11: invalid service name `Db`: it does not start with a lowercase letter{hint}")
    );
    assert_eq!(
        error(&format!("{RUN}[services.my_db]\nimage = \"redis\"\n")),
        format!(
            "3:11: invalid service name `my_db`: only lowercase letters, digits and `-` may follow{hint}"
        )
    );
    assert_eq!(
        error(&format!("{RUN}[services.2db]\nimage = \"redis\"\n")),
        format!(
            "3:11: invalid service name `2db`: it does not start with a lowercase letter{hint}"
        )
    );
    let long = "a".repeat(64);
    assert_eq!(
        error(&format!("{RUN}[services.{long}]\nimage = \"redis\"\n")),
        format!("3:11: invalid service name `{long}`: it is longer than 63 characters{hint}")
    );
    ok(&format!(
        "{RUN}[services.{}]\nimage = \"redis\"\n",
        "a".repeat(63)
    ));
    assert_eq!(
        error(&format!("{RUN}[services.localhost]\nimage = \"redis\"\n")),
        "3:11: a service cannot be called `localhost`\n  hint: `localhost` is every container's own loopback address: pick another name"
    );
}

#[test]
fn bad_ready_probes() {
    let hint = "\n  hint: write `ready = { tcp = 6379 }` (a port that accepts connections), `ready = { command = [\"redis-cli\", \"ping\"] }` (a probe that exits 0) or `ready = { log = \"Ready to accept\" }` (a text in its output)";
    let service = format!("{RUN}[services.db]\nimage = \"redis\"\n");
    assert_eq!(
        error(&format!("{service}ready = {{ tcp = 1, log = \"up\" }}\n")),
        format!(
            "5:20: `ready` in [services.db] has both `tcp` and `log`: it takes exactly one of `tcp`, `command` and `log`{hint}"
        )
    );
    assert_eq!(
        error(&format!("{service}ready = {{}}\n")),
        format!("5:9: `ready` in [services.db] is empty{hint}")
    );
    assert_eq!(
        error(&format!("{service}ready = 6379\n")),
        format!(
            "5:9: expected a table for `ready` in [services.db], found the integer `6379`{hint}"
        )
    );
    for port in ["0", "65536", "-1"] {
        assert_eq!(
            error(&format!("{service}ready = {{ tcp = {port} }}\n")),
            format!(
                "5:17: port `{port}` in `tcp` is out of range\n  hint: a TCP port is a number from 1 to 65535"
            )
        );
    }
    assert_eq!(
        error(&format!("{service}ready = {{ tcp = \"6379\" }}\n")),
        "5:17: expected a port number for `tcp`, found the string `6379`"
    );
    assert_eq!(
        error(&format!("{service}ready = {{ log = \" \" }}\n")),
        "5:17: `log` is empty"
    );
    assert_eq!(
        error(&format!("{service}ready = {{ command = [] }}\n")),
        "5:21: `command` is empty\n  hint: give the program to run, e.g. `command = [\"./bench\", \"--fast\"]`"
    );
    ok(&format!("{service}ready = {{ tcp = 65535 }}\n"));
}

#[test]
fn bad_durations_and_lifetimes() {
    let service = format!("{RUN}[services.db]\nimage = \"redis\"\n");
    assert_eq!(
        error(&format!("{service}ready-timeout = \"soon\"\n")),
        "5:17: invalid duration `soon` for `ready-timeout`: expected number at 0\n  hint: write a duration like \"30s\" or \"2m\""
    );
    assert_eq!(
        error(&format!("{service}ready-timeout = \"none\"\n")),
        "5:17: `ready-timeout` cannot be \"none\"\n  hint: give a duration like \"30s\" or \"2m\""
    );
    assert_eq!(
        error(&format!("{service}ready-timeout = \"10ms\"\n")),
        "5:17: `ready-timeout` of `10ms` is shorter than the minimum of 100ms\n  hint: starting a container and probing it takes milliseconds itself: a shorter timeout fails services that are fine"
    );
    assert_eq!(
        error(&format!("{service}ready-timeout = \"2h\"\n")),
        "5:17: `ready-timeout` of `2h` is longer than the maximum of 1h\n  hint: a service that is not ready within an hour holds the whole run up; give it an hour or less"
    );
    assert_eq!(
        error(&format!("{service}stop-timeout = 600\n")),
        "5:16: `stop-timeout` of `600` is longer than the maximum of 5m\n  hint: every stop waits this long for a service that ignores SIGTERM; give it 5 minutes or less"
    );
    assert_eq!(
        error(&format!("{service}stop-timeout = true\n")),
        "5:16: expected a duration string or a number of seconds for `stop-timeout`, found the boolean `true`"
    );
    assert_eq!(
        error(&format!("{service}lifetime = \"run\"\n")),
        "5:12: invalid lifetime `run`\n  hint: valid lifetimes: invocation (a fresh service for every invocation, the default), cell (one for all of the cell's invocations)"
    );
}

#[test]
fn bad_dependencies() {
    let a = format!("{RUN}[services.a]\nimage = \"redis\"\n");
    assert_eq!(
        error(&format!("{a}depends-on = [\"a\"]\n")),
        "5:15: service `a` depends on itself\n  hint: remove `a` from its `depends-on`"
    );
    assert_eq!(
        error(&format!(
            "{a}depends-on = [\"bb\"]\n[services.b]\nimage = \"redis\"\n"
        )),
        "5:15: service `a` depends on `bb`, which is no service\n  hint: did you mean `b`? services: b"
    );
    assert_eq!(
        error(&format!("{a}depends-on = [\"db\"]\n")),
        "5:15: service `a` depends on `db`, which is no service\n  hint: `a` is the only service: declare `[services.db]`"
    );
    assert_eq!(
        error(&format!(
            "{a}depends-on = \"b\"\n[services.b]\nimage = \"redis\"\n"
        )),
        "5:14: expected an array of service names for `depends-on`, found the string `b`"
    );
    assert_eq!(
        error(&format!(
            "{a}depends-on = [\"b\", \"b\"]\n[services.b]\nimage = \"redis\"\n"
        )),
        "5:20: service `a` lists `b` twice in `depends-on`\n  hint: list each service once"
    );
    let cycle_hint = "\n  hint: a service starts once the services it `depends-on` are ready, so none of these could start: remove one of these dependencies";
    // a -> b -> a, reported at a's entry naming b.
    assert_eq!(
        error(&format!(
            "{a}depends-on = [\"b\"]\n[services.b]\nimage = \"redis\"\ndepends-on = [\"a\"]\n"
        )),
        format!("5:15: the services depend on each other in a cycle: a -> b -> a{cycle_hint}")
    );
    // A service outside the cycle waiting on it, and a three-service cycle declared out of
    // order: named from the first declared.
    assert_eq!(
        error(&format!(
            "{RUN}[services.w]\ncommand = \"x\"\ndepends-on = [\"y\"]\n[services.x]\ncommand = \"x\"\ndepends-on = [\"z\"]\n[services.y]\ncommand = \"x\"\ndepends-on = [\"x\"]\n[services.z]\ncommand = \"x\"\ndepends-on = [\"y\"]\n"
        )),
        format!("8:15: the services depend on each other in a cycle: x -> z -> y -> x{cycle_hint}")
    );
}

#[test]
fn two_services_claiming_a_port() {
    let hint = "\n  hint: a cell's services share one network namespace, so each listens on ports of its own: change one";
    assert_eq!(
        error(&format!(
            "{RUN}[services.a]\nimage = \"redis\"\nready = {{ tcp = 80 }}\n[services.b]\nimage = \"redis\"\nports = [443, 80]\n"
        )),
        format!("8:15: port 80 of service `b` is claimed by service `a` already{hint}")
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.a]\nimage = \"redis\"\nports = [80]\n[services.b]\nimage = \"redis\"\nready = {{ tcp = 80 }}\n"
        )),
        format!("8:17: port 80 of service `b` is claimed by service `a` already{hint}")
    );
    // One service may name its ready port among its ports.
    let m = ok(&format!(
        "{RUN}[services.a]\nimage = \"redis\"\nready = {{ tcp = 80 }}\nports = [443, 80, 443]\n"
    ));
    assert_eq!(m.cells[0].services[0].ports, [80, 443]);
    assert_eq!(
        error(&format!(
            "{RUN}[services.a]\nimage = \"redis\"\nports = [0]\n"
        )),
        "5:10: port `0` in `ports` is out of range\n  hint: a TCP port is a number from 1 to 65535"
    );
    assert_eq!(
        error(&format!(
            "{RUN}[services.a]\nimage = \"redis\"\nports = 80\n"
        )),
        "5:9: expected an array of port numbers for `ports`, found the integer `80`"
    );
}

#[test]
fn a_port_from_an_axis_names_the_cell() {
    assert_eq!(
        error(&format!(
            "[matrix]\np = [80, 81]\n{RUN}[services.a]\nimage = \"redis\"\nports = [80]\n[services.b]\nimage = \"redis\"\nports = [\"{{p}}\"]\n"
        )),
        "10:10: port 80 of service `b` is claimed by service `a` already in cell p=80\n  hint: a cell's services share one network namespace, so each listens on ports of its own: change one"
    );
}

#[test]
fn a_metric_named_like_a_service_column() {
    assert_eq!(
        error(&format!(
            "{RUN}[[metric]]\nname = \"db.cpu_s\"\n[services.db]\nimage = \"redis\"\n"
        )),
        "4:8: metric `db.cpu_s` has the name of a column of service `db`\n  hint: benchbox measures `db.cpu_s` itself, from the service's cgroup: rename the metric"
    );
}

#[test]
fn plans_show_services_only_when_there_are_some() {
    let m = ok(TWO);
    let text = crate::plan::render_text(&m);
    assert!(
        text.contains("  service  db: image redis:7 (unpinned); command redis-server --port 6379 --tag v7; ready tcp 6379 within 30s; lifetime invocation; limits cpus 1, memory 256 MiB\n"),
        "{text}"
    );
    assert!(text.contains("  service  web: dir "), "{text}");
    assert!(
        text.contains("; command /bin/sh -c './serve --port 8080'; ready command curl -f http://localhost:8080/ within 1m; lifetime cell; limits none; after db\n"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&crate::plan::render_json(&m)).unwrap();
    let db = &json["cells"][0]["services"][0];
    assert_eq!(db["name"], "db");
    assert_eq!(db["ready"], serde_json::json!({ "tcp": 6379 }));
    assert_eq!(db["lifetime"], "invocation");
    assert_eq!(db["ready_timeout"], 30.0);
    assert_eq!(json["cells"][0]["metrics"].as_array().unwrap().len(), 16);

    // results.json reads its plan back: a cell with services round-trips.
    for cell in &m.cells {
        let back: Cell = serde_json::from_str(&serde_json::to_string(cell).unwrap()).unwrap();
        assert_eq!(&back, cell);
    }

    let plain = crate::plan::render_text(&ok(RUN));
    assert!(!plain.contains("service"), "{plain}");
}
