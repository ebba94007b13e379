//! Every scenario in scenarios/ must pass (invariants and
//! expectations) and reproduce its golden timeline byte for byte, in the
//! spirit of Pacemaker's scheduler regression tests. After an intended
//! change of behaviour, regenerate with `UPDATE_GOLDEN=1 cargo test --test
//! scenarios` and review the diff.

use coroha_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn golden_text(path: &Path) -> (String, bool) {
    let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    let outcome = scenario
        .run(None, false)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (
        format!("{}\n{}", outcome.timeline_text(), outcome.summary()),
        outcome.passed(),
    )
}

#[test]
fn corpus_has_at_least_forty_scenarios() {
    assert!(
        scenario_files().len() >= 40,
        "only {} scenarios",
        scenario_files().len()
    );
}

#[test]
fn every_scenario_passes_and_matches_its_golden_timeline() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = vec![];
    for path in scenario_files() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let (text, passed) = golden_text(&path);
        if !passed {
            failures.push(format!(
                "{name}: invariant or expectation failed:\n{}",
                text.lines().rev().take(6).collect::<Vec<_>>().join("\n")
            ));
        }
        let golden = path.with_extension("timeline");
        if update {
            std::fs::write(&golden, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Err(_) => failures.push(format!(
                "{name}: no golden timeline (run with UPDATE_GOLDEN=1)"
            )),
            Ok(want) if want != text => {
                let (n, (w, g)) = want
                    .lines()
                    .zip(text.lines())
                    .enumerate()
                    .find(|(_, (w, g))| w != g)
                    .unwrap_or((
                        want.lines().count().min(text.lines().count()),
                        ("<end>", "<end>"),
                    ));
                failures.push(format!(
                    "{name}: timeline differs at line {}:\n  golden: {w}\n  now:    {g}",
                    n + 1
                ));
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_same_seed_gives_a_byte_identical_timeline() {
    let path = &scenario_files()[3];
    assert_eq!(golden_text(path).0, golden_text(path).0);
}
