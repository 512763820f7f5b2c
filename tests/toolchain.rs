//! The `rust-version` in Cargo.toml is true: no locked dependency (for this platform) needs a
//! newer Rust, and the language features benchbox uses (let-chains: 1.88) are within it. std
//! APIs newer than it (`File::lock`: 1.89) are caught by clippy's `incompatible_msrv` lint,
//! which reads the same field, in `cargo clippy -D warnings`; only this host's toolchain is
//! installed here, so no older one builds it for real.

use std::process::Command;

fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().unwrap());
    (
        parts.next().unwrap(),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn rust_version_covers_every_locked_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .unwrap();
    let host = String::from_utf8(rustc.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "benchbox")
        .expect("benchbox in its own metadata");
    let declared = version(
        ours["rust_version"]
            .as_str()
            .expect("Cargo.toml sets rust-version"),
    );
    let (newest, by) = packages
        .iter()
        .filter(|p| p["name"] != "benchbox")
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            Some((
                version(v),
                format!("{} {}", p["name"].as_str()?, p["version"].as_str()?),
            ))
        })
        .max()
        .unwrap();
    assert!(
        declared >= newest,
        "rust-version {declared:?} is older than {by} needs ({newest:?}): raise it in Cargo.toml and the README"
    );
    // let-chains, used throughout, are stable from 1.88.
    assert!(declared >= (1, 88, 0), "let-chains need Rust 1.88");
}
