//! `coroha status` in a failing cluster, read from the simulated daemons:
//! every configured node is listed, also the ones that are down, and the
//! status says when the cluster waits for the operator.

use coroha_policy::{Action, Presence};
use coroha_sim::{config_with, Fault, Sim, SimOptions};

#[test]
fn an_orphan_whose_node_is_gone_is_listed_and_asks_for_confirm_down() {
    // No fence_node hook: nothing but the operator can vouch that the
    // orphan's NSO/ConfD is down.
    let mut sim = Sim::new(SimOptions::new(config_with(3, false), 1));
    sim.run_until(20_000);
    let p = sim.primaries()[0];
    let other = (p + 1) % 3;
    sim.add_fault(20_000, Fault::KillCoroha(p));
    sim.add_fault(25_000, Fault::Crash(p));
    sim.run_until(40_000);
    let name = format!("n{}", p + 1);
    let status = sim.status(other).expect("its coroha runs");
    assert_eq!(status.absent.len(), 1, "{status:?}");
    let absent = &status.absent[0];
    assert_eq!(
        (absent.name.as_str(), absent.presence),
        (name.as_str(), Presence::Offline)
    );
    assert!(absent.orphaned_primary.is_some(), "{absent:?}");
    assert_eq!(
        status.actions,
        vec![Action::ConfirmDown { node: name.clone() }]
    );
    // The operator confirms; the cluster moves on and asks for nothing.
    sim.add_fault(40_000, Fault::ConfirmDown { at: other, node: p });
    sim.run_until(60_000);
    let status = sim.status(other).unwrap();
    assert!(status.actions.is_empty(), "{:?}", status.actions);
    assert!(
        status.primary.as_ref().is_some_and(|q| *q != name),
        "{status:?}"
    );
    assert!(sim.violation.is_none(), "{:?}", sim.violation);
}

#[test]
fn a_node_cut_off_from_quorum_names_no_primary_and_cannot_tell_where_the_others_are() {
    let mut sim = Sim::new(SimOptions::new(config_with(3, true), 2));
    sim.run_until(20_000);
    let p = sim.primaries()[0];
    let cut = (p + 1) % 3;
    let rest: Vec<usize> = (0..3).filter(|i| *i != cut).collect();
    sim.add_fault(20_000, Fault::Partition(vec![vec![cut], rest]));
    sim.run_until(30_000);
    let status = sim.status(cut).expect("its coroha runs");
    assert!(!status.quorate);
    assert_eq!(status.primary, None, "no stale primary: {status:?}");
    let presences: Vec<Presence> = status.absent.iter().map(|a| a.presence).collect();
    assert_eq!(presences, vec![Presence::Unknown, Presence::Unknown]);
}

#[test]
fn every_node_shows_the_last_commit_also_the_primary_itself() {
    // A commit every 10 s: at 25 s, the one of 20 s is the last.
    let mut opts = SimOptions::new(config_with(3, true), 3);
    opts.write_interval = 10_000;
    let mut sim = Sim::new(opts);
    sim.run_until(25_000);
    let p = sim.primaries()[0];
    let last = confd_ha::TxStamp::from_micros(sim.confd[p].txid);
    for i in 0..3 {
        let status = sim.status(i).expect("its coroha runs");
        let txids: Vec<_> = status.members.iter().map(|m| m.txid).collect();
        // The primary's own entry was once the last id it announced, which
        // a primary that stays does not announce again for a commit.
        assert_eq!(txids, vec![Some(last); 3], "n{}'s status", i + 1);
    }
}
