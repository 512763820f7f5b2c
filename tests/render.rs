//! The renderers on real results (`tests/fixtures/*.results.json`, copied from runs of
//! `envs/quickstart.toml` and `envs/cpu-quota.toml`).

use std::path::{Path, PathBuf};

use benchbox::render::{self, RenderOptions};
use benchbox::results::RunResults;

fn fixture(name: &str) -> RunResults {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.results.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn write_all_writes_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let results = fixture("quickstart");
    let written = render::write_all(&results, dir.path(), &RenderOptions::default()).unwrap();
    let names: Vec<PathBuf> = written
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
        .collect();
    for f in ["report.html", "table.tex", "results.csv", "bencher.json"] {
        assert!(names.contains(&PathBuf::from(f)), "{f} in {names:?}");
    }
    assert!(names.contains(&PathBuf::from("plots/distribution-wall_s.png")));
    if let Ok(out) = std::env::var("BENCHBOX_RENDER_OUT") {
        for p in &written {
            let to = Path::new(&out).join(p.strip_prefix(dir.path()).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(p, to).unwrap();
        }
    }
}
