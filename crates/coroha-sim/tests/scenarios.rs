//! Every scenario in scenarios/ is a test of its own: it must pass (its
//! invariants and expectations) and reproduce its golden timeline byte for
//! byte, in the spirit of Pacemaker's scheduler regression tests. A
//! mismatch prints a unified diff. After an intended change of behaviour,
//! regenerate with `UPDATE_GOLDEN=1 cargo test -p coroha-sim --test
//! scenarios` and review the diff.

use coroha_sim::scenario::Scenario;
use libtest_mimic::{Arguments, Failed, Trial};
use similar::TextDiff;
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

/// The timeline and summary a scenario produces, and whether it passed.
fn run(path: &Path) -> Result<(String, bool), Failed> {
    let scenario = Scenario::load(path).map_err(|e| format!("{}: {e:?}", path.display()))?;
    let outcome = scenario
        .run(&[], false)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((
        format!("{}\n{}", outcome.timeline_text(), outcome.summary()),
        outcome.passed(),
    ))
}

/// One scenario: it passes, and its timeline is the golden one.
fn check(path: &Path, update: bool) -> Result<(), Failed> {
    let (text, passed) = run(path)?;
    let golden = path.with_extension("timeline");
    if update {
        std::fs::write(&golden, &text).map_err(|e| format!("{}: {e}", golden.display()))?;
    }
    if !passed {
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("invariant or expectation failed:\n{}", tail.join("\n")).into());
    }
    let want = std::fs::read_to_string(&golden).map_err(|e| {
        format!(
            "no golden timeline {} ({e}); run with UPDATE_GOLDEN=1",
            golden.display()
        )
    })?;
    if want == text {
        return Ok(());
    }
    let diff = TextDiff::from_lines(&want, &text)
        .unified_diff()
        .context_radius(3)
        .header("golden", "now")
        .to_string();
    Err(format!("the timeline differs from {}:\n{diff}", golden.display()).into())
}

fn main() {
    let args = Arguments::from_args();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = scenario_files();
    let mut trials = vec![
        Trial::test("corpus_has_at_least_forty_scenarios", {
            let count = files.len();
            move || match count {
                40.. => Ok(()),
                n => Err(format!("only {n} scenarios").into()),
            }
        }),
        Trial::test("the_same_seed_gives_a_byte_identical_timeline", {
            let path = files[3].clone();
            move || {
                let (first, second) = (run(&path)?.0, run(&path)?.0);
                match first == second {
                    true => Ok(()),
                    false => Err("two runs of one scenario differ".into()),
                }
            }
        }),
    ];
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        trials.push(Trial::test(format!("scenario::{name}"), move || {
            check(&path, update)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
