//! The toolchain floor in Cargo.toml is the truth: it equals the highest `rust_version` that
//! any package in the locked dependency graph for this host declares, as `cargo metadata`
//! reports it.

use std::process::Command;

#[test]
fn rust_version_matches_the_lockfile() {
    // Only the packages this host builds: a fresh machine has fetched no others (the
    // Windows and Android ones), and --offline cannot read their manifests.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|n| n.parse().unwrap()).collect() };
    let (highest, needed_by) = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "yuqing")
        .filter_map(|p| Some((parse(p["rust_version"].as_str()?), p["name"].to_string())))
        .max()
        .expect("some dependency declares a rust_version");
    let declared = parse(env!("CARGO_PKG_RUST_VERSION"));
    let pad = |mut v: Vec<u64>| {
        v.resize(3, 0);
        v
    };
    assert_eq!(
        pad(declared),
        pad(highest.clone()),
        "Cargo.toml's rust-version should be {highest:?}, which {needed_by} needs"
    );
}
