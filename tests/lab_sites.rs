//! Two sites on a real corosync cluster (network namespaces, root), as in
//! the simulator's scenarios 37, 80 and 81: n4 and n5 attach through the
//! relay n3 (`relay_via`) and may not be primary. Every test checks I1
//! from every fake-confd's role history and I3 at the end, as `lab.rs`
//! does.

#[path = "common/client.rs"]
mod client;
#[path = "common/lab.rs"]
mod lab;
#[path = "common/run.rs"]
mod run;

use run::*;
use std::time::Duration;

/// The two sites, started.
fn relay_lab() -> Option<Running> {
    lab_with(5, |lab| lab.relay_site(3, &[4, 5]))
}

#[test]
fn a_relay_that_dies_lets_its_site_attach_to_the_primary() {
    let Some((_g, mut lab)) = relay_lab() else {
        return;
    };
    let p = lab.wait_settled(&all(5), SETTLE);
    assert_ne!(p, 3, "the relay was elected: nothing to show");
    assert_eq!(lab.fake_status(3).expect("n3")["state"], "relay");
    lab.crash(3);
    // Its site attaches to the primary directly; nothing else moves.
    assert_eq!(lab.wait_settled(&without(5, 3), SETTLE), p);
    no_overlap(&lab);
    // Back, it attaches, relays again, and its site moves behind it.
    rejoins_under(&mut lab, 3, p);
    assert_eq!(
        lab.promotions_since(0).len(),
        1,
        "{:?}",
        lab.changes_since(0)
    );
}

#[test]
fn the_top_primary_dies_and_its_site_b_follows_the_new_one_through_the_relay() {
    let Some((_g, mut lab)) = relay_lab() else {
        return;
    };
    let p = lab.wait_settled(&all(5), SETTLE);
    let writer = lab.writer(p);
    std::thread::sleep(Duration::from_millis(500));
    lab.crash(p);
    let acked = writer.stop();
    let q = lab.wait_settled(&without(5, p), SETTLE);
    assert!([1, 2, 3].contains(&q), "n{q} may not be primary");
    no_overlap(&lab);
    holds_every_commit(&lab, q, &acked, "after the primary's crash");
    rejoins_under(&mut lab, p, q);
}
