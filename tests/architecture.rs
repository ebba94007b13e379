//! The layering of the workspace, checked (docs/architecture.md):
//!
//! - the policy crate reaches no tokio, no socket, no file, no clock: not
//!   through its own dependencies, not through theirs, and not through the
//!   standard library in its source;
//! - each crate depends only on the crates below it;
//! - no source file is too long to hold in your head.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(ROOT)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

fn packages(meta: &Value) -> BTreeMap<String, &Value> {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p))
        .collect()
}

/// Normal (not dev, not build) dependencies that are always on.
fn normal_deps(pkg: &Value) -> Vec<&Value> {
    pkg["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null() && !d["optional"].as_bool().unwrap_or(false))
        .collect()
}

/// Every package the named one reaches through always-on normal
/// dependencies (platform-specific ones included, to be strict).
fn closure(pkgs: &BTreeMap<String, &Value>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(pkg) = pkgs.get(&name) {
            for d in normal_deps(pkg) {
                todo.push(d["name"].as_str().unwrap().to_string());
            }
        }
    }
    seen.remove(root);
    seen
}

/// What would give the election I/O, threads or a clock. (libc itself is
/// reached, through sha2's CPU-feature probe `cpufeatures`: no I/O.)
const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "nix",
    "rust-corosync",
    "sd-notify",
    "tracing-subscriber",
];

#[test]
fn the_policy_crate_reaches_no_io_runtime_or_system_library() {
    let meta = metadata();
    let pkgs = packages(&meta);
    let policy = pkgs["coroha-policy"];
    let direct: BTreeSet<&str> = normal_deps(policy)
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    let allowed: BTreeSet<&str> = ["confd-ha", "serde", "serde_json"].into();
    assert!(
        direct.is_subset(&allowed),
        "coroha-policy gained a dependency: {:?} (allowed: {allowed:?})",
        direct.difference(&allowed).collect::<Vec<_>>()
    );
    // The protocol crate's tokio client must stay switched off here.
    let confd = normal_deps(policy)
        .into_iter()
        .find(|d| d["name"] == "confd-ha")
        .expect("confd-ha");
    assert_eq!(
        confd["uses_default_features"], false,
        "coroha-policy must take confd-ha without its default `client` feature"
    );
    assert_eq!(
        confd["features"].as_array().map(Vec::len),
        Some(0),
        "coroha-policy must enable no confd-ha feature"
    );
    let reached = closure(&pkgs, "coroha-policy");
    let bad: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|f| reached.contains(*f))
        .collect();
    assert!(
        bad.is_empty(),
        "coroha-policy reaches {bad:?} through {reached:?}"
    );
}

#[test]
fn the_policy_source_uses_no_clock_file_socket_or_thread() {
    let dir = Path::new(ROOT).join("crates/coroha-policy/src");
    let banned = [
        "std::time::Instant",
        "SystemTime",
        "std::fs",
        "std::net",
        "std::thread",
        "std::process",
        "std::env",
    ];
    for file in rust_files(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for b in banned {
            assert!(
                !text.contains(b),
                "{} uses {b}: the policy takes `now` as an input and does no I/O",
                file.display()
            );
        }
    }
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    // Lower layers first; a crate may use only crates listed before it.
    let layers = [
        "confd-ha",
        "coroha-policy",
        "coroha-config",
        "coroha-sim",
        "fake-confd",
        "coroha",
    ];
    let meta = metadata();
    let pkgs = packages(&meta);
    for (i, name) in layers.iter().enumerate() {
        for d in normal_deps(pkgs[*name]) {
            let dep = d["name"].as_str().unwrap();
            if let Some(j) = layers.iter().position(|l| *l == dep) {
                assert!(j < i, "{name} depends on {dep}, a layer above it");
            }
        }
    }
    // The daemon does not ship the fake server.
    assert!(
        !normal_deps(pkgs["coroha"])
            .iter()
            .any(|d| d["name"] == "fake-confd"),
        "the coroha daemon must not depend on fake-confd outside its tests"
    );
}

const MAX_LINES: usize = 800;

#[test]
fn no_source_file_is_over_800_lines() {
    let mut long = vec![];
    let mut dirs = vec![Path::new(ROOT).join("src"), Path::new(ROOT).join("tests")];
    for entry in std::fs::read_dir(Path::new(ROOT).join("crates")).unwrap() {
        dirs.push(entry.unwrap().path());
    }
    for dir in dirs {
        for file in rust_files(&dir) {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}
