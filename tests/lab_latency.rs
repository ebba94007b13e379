//! Failover latency on a real corosync cluster (docs/benchmarks.md): the
//! benchmarks behind the README's figures. Each is ignored by default and
//! prints a Markdown table; the commands are in docs/benchmarks.md.

#[path = "common/client.rs"]
mod client;
#[path = "common/lab.rs"]
mod lab;
#[path = "common/run.rs"]
mod run;

use lab::{unix_ms, wait_for, Proc};
use run::*;
use std::time::Duration;

/// Failover latency (docs/benchmarks.md): "isolate the primary" and
/// "SIGTERM coroha on the primary", `COROHA_LAB_REPS` times each (20 by
/// default) on `COROHA_LAB_NODES` nodes (3). Prints a Markdown table.
#[test]
#[ignore = "benchmark, about 5 minutes: cargo build --release -p fake-confd && cargo test --release --test lab_latency -- --ignored latency --nocapture"]
fn latency() {
    let reps: u32 = env_number("COROHA_LAB_REPS", 20);
    let n = env_number("COROHA_LAB_NODES", 3);
    let Some((_g, mut lab)) = lab(n) else { return };
    let quiet = Duration::from_millis(1500);
    // Past the startup settle time (5 s in the lab): a fault inside it
    // waits for the settle time to end (docs/design.md, section 4).
    lab.wait_settled(&all(n), SETTLE);
    std::thread::sleep(Duration::from_secs(5));
    let (mut membership, mut promoted, mut added) = (vec![], vec![], vec![]);
    for rep in 0..reps {
        let p = lab.wait_settled(&all(n), SETTLE);
        std::thread::sleep(quiet);
        let t0 = unix_ms();
        lab.link(p, false);
        let q = lab.wait_settled(&without(n, p), SETTLE);
        let up = lab.promotions_since(t0)[0];
        assert_eq!(up.0, q);
        // corosync's membership change as the survivors' daemons receive it.
        let seen = without(n, p)
            .into_iter()
            .filter_map(|s| lab.log_time(s, t0, "CPG group:"))
            .min()
            .expect("the survivors saw the membership change");
        wait_state(&lab, p, "none", SETTLE);
        lab.link(p, true);
        lab.wait_settled(&all(n), SETTLE);
        // Where the time went, for the slow ones: the decision (after the
        // announcement round) and multicasts held by corosync's TRY_AGAIN.
        let decided = lab.log_time(q, t0, &format!("decision: primary n{q}"));
        let held: Vec<String> = all(n)
            .into_iter()
            .filter_map(|s| lab.log_line(s, t0, "held"))
            .collect();
        eprintln!(
            "isolate #{rep}: membership +{} ms, decision +{} ms, beprimary on n{q} +{} ms {held:?}",
            seen - t0,
            decided.map_or(-1, |d| d as i64 - t0 as i64),
            up.1 - t0
        );
        membership.push((seen - t0) as f64);
        promoted.push((up.1 - t0) as f64);
        added.push(up.1 as f64 - seen as f64);
    }
    let isolate_overlap = lab.max_overlap_ms();
    let (mut handover, mut demoted_at, mut left) = (vec![], vec![], vec![]);
    for rep in 0..reps {
        let p = lab.wait_settled(&all(n), SETTLE);
        // Every daemon is back in the group before the next stop.
        wait_for(SETTLE, "all daemons in the group", || {
            let out = lab.coroha_cmd(p, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (v["status"]["corosync"]["group"].as_array()?.len() == n as usize).then_some(())
        });
        std::thread::sleep(quiet);
        let t0 = unix_ms();
        lab.signal(p, Proc::Coroha, "TERM");
        let q = lab.wait_settled(&all(n), SETTLE);
        let up = lab.promotions_since(t0)[0];
        assert_eq!(up.0, q);
        let down = lab
            .changes_since(t0)
            .into_iter()
            .find(|(id, _, s)| *id == p && s != "primary")
            .expect("the old primary was demoted");
        let gone = lab
            .log_time(q, t0, "CPG group:")
            .expect("the new primary saw the old daemon leave");
        eprintln!(
            "SIGTERM #{rep}: n{p} demoted +{} ms, n{q} beprimary +{} ms, left the group +{} ms",
            down.1 - t0,
            up.1 - t0,
            gone - t0
        );
        demoted_at.push((down.1 - t0) as f64);
        handover.push((up.1 - t0) as f64);
        left.push((gone - t0) as f64);
        lab.start_coroha(p);
    }
    let total_overlap = lab.max_overlap_ms();
    let row = |what: &str, v: &[f64]| {
        let (median, p95, max) = lab::summary(v.to_vec());
        format!("| {what} | {median:.0} | {p95:.0} | {max:.0} |")
    };
    let table = [
        format!("{n} nodes, {reps} repetitions each; times in ms from the fault.\n"),
        "| measure | median | p95 | max |".into(),
        "|---|---:|---:|---:|".into(),
        row("isolate: corosync membership change seen by the survivors", &membership),
        row("isolate: new primary's fake-confd gets `beprimary`", &promoted),
        row("isolate: added by coroha (beprimary − membership change)", &added),
        row("SIGTERM: old primary demoted", &demoted_at),
        row("SIGTERM: new primary's fake-confd gets `beprimary`", &handover),
        row("SIGTERM: old daemon leaves the CPG group", &left),
        String::new(),
        format!("Two primaries at once (role histories): longest overlap {isolate_overlap} ms over the isolations (different partitions), {total_overlap} ms over the whole run."),
    ]
    .join("\n");
    println!("\n{table}\n");
    assert_eq!(total_overlap, 0, "two primaries at once");
}

/// NSO/ConfD killed on the primary (issue 13): the old primary's coroha
/// sees its HA connection close and reads the status at once instead of
/// at its next poll, so the new primary is promoted in milliseconds.
/// `COROHA_LAB_REPS` times (20 by default); prints a Markdown table.
#[test]
#[ignore = "benchmark, about 4 minutes: cargo build --release -p fake-confd && cargo test --release --test lab_latency -- --ignored nso_crash --nocapture"]
fn nso_crash_latency() {
    let reps: usize = env_number("COROHA_LAB_REPS", 20);
    let Some((_g, mut lab)) = lab(3) else { return };
    lab.wait_settled(&all(3), SETTLE);
    std::thread::sleep(Duration::from_secs(5));
    let (mut noticed, mut promoted) = (vec![], vec![]);
    for rep in 0..reps {
        let p = lab.wait_settled(&all(3), SETTLE);
        std::thread::sleep(Duration::from_millis(1500));
        let t0 = unix_ms();
        lab.signal(p, Proc::Fake, "KILL");
        let q = lab.wait_settled(&without(3, p), SETTLE);
        let up = lab.promoted_at(q, t0).expect("the new primary's promotion");
        let down = lab
            .log_time(p, t0, "health Ok -> Down")
            .expect("the old primary's coroha saw its server go");
        eprintln!(
            "NSO/ConfD killed #{rep}: n{p}'s coroha saw it down +{} ms, n{q} beprimary +{} ms",
            down - t0,
            up - t0
        );
        noticed.push((down - t0) as f64);
        promoted.push((up - t0) as f64);
        lab.start_fake(p);
        lab.wait_settled_on(&all(3), q, SETTLE);
    }
    let row = |what: &str, v: &[f64]| {
        let (median, p95, max) = lab::summary(v.to_vec());
        format!("| {what} | {median:.0} | {p95:.0} | {max:.0} |")
    };
    let overlap = lab.max_overlap_ms();
    println!(
        "\n3 nodes, {reps} repetitions; times in ms from the kill.\n\n\
         | measure | median | p95 | max |\n|---|---:|---:|---:|\n{}\n{}\n\n\
         Two primaries at once (role histories): longest overlap {overlap} ms.\n",
        row("old primary's coroha: its NSO/ConfD is down", &noticed),
        row("**new primary's fake-confd gets `beprimary`**", &promoted),
    );
    assert_eq!(overlap, 0, "two primaries at once");
}
