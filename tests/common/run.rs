//! What the lab tests share: a running lab, the node lists, and the
//! checks every test makes (never two primaries; a node that comes back
//! follows the primary that stayed).

#![allow(dead_code)]

use crate::lab::{self, wait_for, Lab};
use std::time::Duration;

/// Generous bounds: a slow machine must not fail a correct run. The
/// figures themselves are measured by the benchmark, not asserted here.
pub const SETTLE: Duration = Duration::from_secs(40);
/// I1 across partitions: a primary that lost quorum steps down within this
/// (docs/design.md, section 10).
pub const QUORUM_LOSS_BOUND_MS: u64 = 5000;

pub type Running = (std::sync::MutexGuard<'static, ()>, Lab);

pub fn lab(n: u32) -> Option<Running> {
    lab_with(n, |_| {})
}

/// A running lab of `n` nodes; `setup` runs before anything starts.
pub fn lab_with(n: u32, setup: impl FnOnce(&mut Lab)) -> Option<Running> {
    if !lab::require() {
        return None;
    }
    let guard = lab::ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = Lab::new(n, "");
    setup(&mut lab);
    lab.start_all();
    Some((guard, lab))
}

/// A number from the environment (how many runs, a seed), or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn all(n: u32) -> Vec<u32> {
    (1..=n).collect()
}

pub fn without(n: u32, gone: u32) -> Vec<u32> {
    all(n).into_iter().filter(|&i| i != gone).collect()
}

pub fn no_overlap(lab: &Lab) {
    assert_eq!(
        lab.max_overlap_ms(),
        0,
        "two primaries at once: {:?}",
        lab.changes_since(0)
    );
}

/// Node `p` starts again (corosync, fake-confd, coroha) and follows the
/// primary `q`, which stays put; never two primaries.
pub fn rejoins_under(lab: &mut Lab, p: u32, q: u32) {
    lab.start_corosync(p);
    lab.start_fake(p);
    lab.start_coroha(p);
    let everybody = all(lab.nodes.len() as u32);
    assert_eq!(lab.wait_settled(&everybody, SETTLE), q);
    no_overlap(lab);
}

pub fn wait_state(lab: &Lab, id: u32, state: &str, limit: Duration) {
    wait_for(limit, &format!("n{id} in state {state}"), || {
        let s = lab.fake_status(id)?;
        (s["state"] == state).then_some(())
    });
}

/// Node `id`'s transaction id, as its fake-confd reports it.
pub fn txid_of(lab: &Lab, id: u32) -> u64 {
    lab.fake_status(id).expect("fake-confd's status")["txid"]
        .as_u64()
        .expect("txid")
}

/// I2 for a client that committed only on nodes other than `q` (or on
/// `q` alone): `q`'s data is at least at the last commit acknowledged.
pub fn holds_every_commit(lab: &Lab, q: u32, acked: &[u64], context: &str) {
    let on_q = txid_of(lab, q);
    let last = acked.iter().copied().max().unwrap_or(0);
    assert!(
        on_q >= last,
        "{context}: commit {last} was acknowledged, but primary n{q} is at {on_q}"
    );
}
