//! `[services.NAME]` through the `benchbox` binary, where no container runs: `check` refuses a
//! bad service with its position, `plan` shows good ones.

mod common;

use common::project::{Project, text};

#[test]
fn check_refuses_a_dependency_cycle_with_exit_2_and_a_position() {
    let p = Project::on_host(
        "[run]\ncommand = \"./client\"\n\n[services.web]\ncommand = \"./serve\"\ndepends-on = [\"db\"]\n\n[services.db]\ncommand = \"./db\"\ndepends-on = [\"web\"]\n",
    );
    let o = p.cmd(&["check", "m.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("m.toml:6:15: the services depend on each other in a cycle: web -> db -> web"),
        "{err}"
    );
    assert!(err.contains("\n  hint: "), "{err}");
}

#[test]
fn plan_shows_a_cells_services_in_start_order() {
    let p = Project::on_host(
        "[run]\ncommand = \"./client\"\n\n[services.web]\ncommand = \"./serve\"\ndepends-on = [\"db\"]\n\n[services.db]\nimage = \"redis:7\"\nready = { tcp = 6379 }\n",
    );
    let o = p.cmd(&["plan", "m.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let db = out
        .find("  service  db: image redis:7 (unpinned)")
        .expect(&out);
    let web = out.find("  service  web: host filesystem").expect(&out);
    assert!(db < web, "{out}");
    let o = p.cmd(&["check", "m.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
