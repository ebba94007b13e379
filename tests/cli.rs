//! The command line as an operator uses it: `coroha check-config` and
//! `coroha simulate`, run as a separate process.

use std::path::Path;
use std::process::Command;

fn coroha(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coroha"))
        .args(args)
        .output()
        .expect("run coroha");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("coroha-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn example_configs_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let (code, out, err) = coroha(&["check-config", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", path.display());
        assert!(
            out.contains("[policy]"),
            "effective config printed with defaults"
        );
        n += 1;
    }
    assert!(n >= 3, "2-node, 3-node and 5-node examples");
}

#[test]
fn broken_config_names_file_line_column_and_what_was_expected() {
    let path = temp_file(
        "bad.toml",
        "[[node]]\nname = \"a\"\nid = 1\naddress = \"x\"\npriority = \"high\"\n",
    );
    let (code, _, err) = coroha(&["check-config", "--config", &path]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("{path}:5:12: ")), "{err}");
    assert!(err.contains("expected u32"), "{err}");
}

#[test]
fn effective_config_fills_defaults_and_hides_the_token() {
    let path = temp_file(
        "ok.toml",
        "[ha]\ntoken = \"s3cret-token\"\n[[node]]\nname = \"a\"\nid = 1\naddress = \"x\"\n",
    );
    let (code, out, _) = coroha(&["check-config", "--config", &path]);
    assert_eq!(code, 0);
    assert!(!out.contains("s3cret-token"), "token printed:\n{out}");
    assert!(
        out.contains("failback = \"never\""),
        "defaults filled in:\n{out}"
    );
    assert!(out.contains("besecondary_timeout = \"15s\""), "{out}");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let (code, _, err) = coroha(&["check-config", "--config", "/nonexistent/coroha.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/coroha.toml:1:1: cannot read"),
        "{err}"
    );
}

#[test]
fn the_demo_tells_the_failover_story() {
    let (code, out, err) = coroha(&["simulate"]);
    assert_eq!(code, 0, "{err}");
    for text in [
        "FAULT node n1 crashes",
        "n2   role secondary -> primary",
        "n1   role none -> secondary",
        ": held",
    ] {
        assert!(out.contains(text), "missing {text:?} in:\n{out}");
    }
}

#[test]
fn json_output_is_machine_readable() {
    let (code, out, _) = coroha(&["simulate", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(v["timeline"].as_array().is_some_and(|t| t.len() > 10));
    assert!(v["violation"].is_null());
    let (code, out, _) = coroha(&["simulate", "--random", "20", "--seed", "7", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["schedules"], 20);
    assert_eq!(v["violations"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_failed_expectation_exits_1() {
    let path = temp_file(
        "wrong.toml",
        "name = \"wrong\"\nduration = \"10s\"\n[[expect]]\nprimary = \"n3\"\n",
    );
    let (code, out, _) = coroha(&["simulate", &path]);
    assert_eq!(code, 1);
    assert!(
        out.contains("EXPECTATION FAILED: at 10.000s: expected primary n3"),
        "{out}"
    );
}

#[test]
fn a_broken_scenario_is_located() {
    let path = temp_file(
        "broken.toml",
        "name = \"x\"\n[[event]]\nat = \"5s\"\nactoin = \"crash\"\n",
    );
    let (code, _, err) = coroha(&["simulate", &path]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("{path}:4:1: unknown field `actoin`")),
        "{err}"
    );
}
