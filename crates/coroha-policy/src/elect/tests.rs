use super::*;
use crate::freshness::{data_of, DataState, States};
use crate::message::{Fresh, Health};

fn node(id: NodeId) -> NodeState {
    NodeState::sample(id)
}

fn primary(id: NodeId, epoch: u64) -> NodeState {
    NodeState {
        role: Some(HaRole::Primary),
        role_epoch: epoch,
        max_epoch: epoch,
        fresh: Fresh { epoch, gen: 0 },
        ..node(id)
    }
}

fn secondary(id: NodeId, of: NodeId, epoch: u64) -> NodeState {
    NodeState {
        role: Some(HaRole::Secondary),
        role_epoch: epoch,
        parent: Some(of),
        initialized: true,
        max_epoch: epoch,
        fresh: Fresh { epoch, gen: 0 },
        ..node(id)
    }
}

fn view(states: Vec<(NodeId, NodeState)>) -> View {
    View {
        id: 1,
        members: states
            .iter()
            .map(|(n, _)| Member {
                node: *n,
                pid: 100 + n,
            })
            .collect(),
        states: states.into_iter().collect(),
        ..View::default()
    }
}

const NEVER: ElectParams = ElectParams {
    failback: Failback::Never,
    switchover_waits_for_vanished: true,
    orphan_back_speaks_once_heard: true,
};

fn target(plan: &Plan) -> Option<NodeId> {
    plan.target.as_ref().map(Target::node)
}

#[test]
fn a_healthy_primary_stays_even_with_lower_priority() {
    let mut s2 = secondary(2, 1, 3);
    s2.priority = 500;
    let plan = elect(
        &view(vec![(1, primary(1, 3)), (2, s2), (3, secondary(3, 1, 3))]),
        NEVER,
    );
    assert_eq!(target(&plan), Some(1));
    assert_eq!(plan.epoch, 3);
    assert_eq!(plan.parent[&2], 1);
}

#[test]
fn freshness_beats_priority() {
    let mut stale = node(2);
    stale.priority = 500;
    stale.fresh = Fresh { epoch: 2, gen: 0 };
    stale.max_epoch = 2;
    let mut fresh = node(3);
    fresh.fresh = Fresh { epoch: 2, gen: 1 };
    fresh.max_epoch = 2;
    let plan = elect(&view(vec![(2, stale), (3, fresh)]), NEVER);
    assert_eq!(target(&plan), Some(3));
    assert_eq!(plan.epoch, 3, "a new primary gets a new epoch");
}

#[test]
fn a_node_that_knows_it_is_behind_is_not_elected() {
    let mut behind = node(2);
    behind.fresh = Fresh { epoch: 1, gen: 0 };
    behind.known_fresh = Fresh { epoch: 1, gen: 2 };
    let plan = elect(&view(vec![(2, behind)]), NEVER);
    assert_eq!(target(&plan), None);
    assert_eq!(
        plan.cause,
        Cause::NoCandidate(vec![Unqualified {
            name: "n2".into(),
            why: Unfit::Behind {
                fresh: Mark {
                    fresh: Fresh { epoch: 1, gen: 0 },
                    txid: None
                },
                need: Mark {
                    fresh: Fresh { epoch: 1, gen: 2 },
                    txid: None
                },
            },
        }])
    );
    assert_eq!(
        plan.cause.to_string(),
        "no eligible up-to-date node: n2 is behind (1.0 < 1.2)"
    );
}

#[test]
fn earlier_sync_loss_ranks_below_later() {
    let mut early = node(2);
    early.fresh = Fresh { epoch: 1, gen: 0 };
    early.sync_loss = 1;
    let mut late = node(3);
    late.fresh = Fresh { epoch: 1, gen: 0 };
    late.sync_loss = 2;
    assert_eq!(
        target(&elect(&view(vec![(2, early.clone()), (3, late)]), NEVER)),
        Some(3)
    );
    let mut never = node(4);
    never.fresh = Fresh { epoch: 1, gen: 0 };
    assert_eq!(
        target(&elect(&view(vec![(2, early), (4, never)]), NEVER)),
        Some(4)
    );
}

#[test]
fn the_primary_of_an_epoch_outranks_its_secondaries_at_equal_freshness() {
    // n2 led epoch 2 and is NONE now; n1 was its secondary, with a
    // higher priority and no recorded loss.
    let mut led = node(2);
    led.fresh = Fresh { epoch: 2, gen: 0 };
    led.led_epoch = 2;
    led.priority = 50;
    let mut follower = node(1);
    follower.fresh = Fresh { epoch: 2, gen: 0 };
    follower.led_epoch = 1;
    assert_eq!(
        target(&elect(&view(vec![(1, follower.clone()), (2, led)]), NEVER)),
        Some(2)
    );
    // Leading an older epoch counts for nothing.
    let mut old_leader = node(2);
    old_leader.fresh = Fresh { epoch: 2, gen: 0 };
    old_leader.led_epoch = 1;
    old_leader.priority = 50;
    assert_eq!(
        target(&elect(&view(vec![(1, follower), (2, old_leader)]), NEVER)),
        Some(1)
    );
}

#[test]
fn the_older_of_two_primaries_is_demoted() {
    let plan = elect(
        &view(vec![
            (1, primary(1, 2)),
            (2, primary(2, 5)),
            (3, secondary(3, 2, 5)),
        ]),
        NEVER,
    );
    assert_eq!(target(&plan), Some(2));
    assert!(plan.demote.contains(&1) && !plan.demote.contains(&2));
}

#[test]
fn an_unhealthy_primary_is_replaced_but_not_called_diverged() {
    let mut p = primary(1, 4);
    p.health = Health::Hung;
    let plan = elect(&view(vec![(1, p), (2, secondary(2, 1, 4))]), NEVER);
    assert_eq!(target(&plan), Some(2));
    assert!(
        plan.demote.is_empty(),
        "a replaced primary hands over, it is not diverged"
    );
    assert_eq!(
        plan.cause,
        Cause::Replaces {
            elected: "n2".into(),
            primary: "n1".into(),
            why: Unfit::Health(Health::Hung),
        }
    );
    assert!(plan
        .cause
        .to_string()
        .ends_with("is not eligible (nso/confd hung)"));
}

#[test]
fn an_orphaned_primary_is_kept_until_shown_gone() {
    let mut s2 = secondary(2, 1, 4);
    s2.known_primary = Some(KnownPrimary {
        node: 1,
        epoch: 4,
        name: "n1".into(),
        address: "10.0.0.1".into(),
        promotion_in_flight: false,
    });
    let mut v = view(vec![(2, s2), (3, secondary(3, 1, 4))]);
    let plan = elect(&v, NEVER);
    assert!(matches!(plan.target, Some(Target::Orphan(ref k)) if k.node == 1));
    assert_eq!(
        plan.wait,
        Some(Hold::OrphanGrace {
            primary: 1,
            epoch: 4
        })
    );
    v.gone.insert((1, 4));
    assert_eq!(target(&elect(&v, NEVER)), Some(2));
}

#[test]
fn switchover_holds_until_its_target_is_primary() {
    let mut v = view(vec![
        (1, primary(1, 2)),
        (2, secondary(2, 1, 2)),
        (3, secondary(3, 1, 2)),
    ]);
    v.switchover = Some(3);
    assert_eq!(target(&elect(&v, NEVER)), Some(3));
    // The old primary has demoted: still n3, not the best by rank (n2).
    v.states.insert(
        1,
        NodeState {
            fresh: Fresh { epoch: 2, gen: 0 },
            ..node(1)
        },
    );
    assert_eq!(target(&elect(&v, NEVER)), Some(3));
}

#[test]
fn failback_immediately_and_after_a_stable_period() {
    let mut s2 = secondary(2, 1, 2);
    s2.priority = 200;
    let mut v = view(vec![(1, primary(1, 2)), (2, s2)]);
    let now = ElectParams {
        failback: Failback::Immediately,
        ..NEVER
    };
    assert_eq!(target(&elect(&v, now)), Some(2));
    let later = ElectParams {
        failback: Failback::After(60_000),
        ..NEVER
    };
    let plan = elect(&v, later);
    assert_eq!(target(&plan), Some(1));
    assert_eq!(plan.wait, Some(Hold::Failback { to: 2, epoch: 2 }));
    v.released.insert(Hold::Failback { to: 2, epoch: 2 });
    assert_eq!(target(&elect(&v, later)), Some(2));
    assert_eq!(target(&elect(&v, NEVER)), Some(1));
}

#[test]
fn standby_and_never_primary_nodes_are_not_elected() {
    let mut n1 = node(1);
    n1.can_primary = false;
    let n2 = node(2);
    let mut v = view(vec![(1, n1), (2, n2), (3, node(3))]);
    v.standby.insert(2, true);
    let plan = elect(&v, NEVER);
    assert_eq!(target(&plan), Some(3));
    assert_eq!(plan.parent[&1], 3);
}

#[test]
fn cold_start_waits_while_everybody_settles_and_a_node_is_missing() {
    let mut a = node(1);
    a.settling = true;
    let mut b = node(2);
    b.settling = true;
    let plan = elect(&view(vec![(1, a.clone()), (2, b.clone())]), NEVER);
    assert_eq!(target(&plan), None);
    b.settling = false;
    assert_eq!(target(&elect(&view(vec![(1, a), (2, b)]), NEVER)), Some(1));
}

#[test]
fn remote_nodes_attach_through_a_healthy_relay() {
    let mut n4 = node(4);
    n4.relay_via = Some(3);
    let plan = elect(
        &view(vec![(1, primary(1, 1)), (3, secondary(3, 1, 1)), (4, n4)]),
        NEVER,
    );
    assert_eq!(plan.parent[&4], 3);
    assert!(plan.relays.contains(&3));
    let mut sick = secondary(3, 1, 1);
    sick.health = Health::Down;
    let mut n4 = node(4);
    n4.relay_via = Some(3);
    let plan = elect(&view(vec![(1, primary(1, 1)), (3, sick), (4, n4)]), NEVER);
    assert_eq!(
        plan.parent[&4], 1,
        "no healthy relay: attach to the primary"
    );
}

#[test]
fn a_promotion_intent_pins_the_epoch() {
    let mut n2 = node(2);
    n2.promoting = Some(7);
    n2.fresh = Fresh { epoch: 3, gen: 0 };
    let plan = elect(&view(vec![(2, n2)]), NEVER);
    assert_eq!((target(&plan), plan.epoch), (Some(2), 7));
}

fn stamp(secs: u32) -> confd_ha::TxStamp {
    confd_ha::TxStamp {
        mega: 1796,
        secs,
        micros: 0,
    }
}

#[test]
fn a_node_behind_by_transaction_id_waits_for_the_one_that_has_it() {
    let fresh = Fresh { epoch: 1, gen: 0 };
    let mut lagging = node(2);
    lagging.priority = 500;
    (lagging.fresh, lagging.txid) = (fresh, Some(stamp(10)));
    let mut ahead = node(3);
    (ahead.fresh, ahead.txid) = (fresh, Some(stamp(20)));
    let plan = elect(&view(vec![(2, lagging.clone()), (3, ahead.clone())]), NEVER);
    assert_eq!(target(&plan), Some(3), "higher id first, then priority");
    // The node with the later commits is down: nobody may be elected.
    ahead.health = Health::Down;
    let plan = elect(&view(vec![(2, lagging), (3, ahead)]), NEVER);
    assert_eq!(target(&plan), None);
    assert!(
        plan.cause
            .to_string()
            .contains("n2 is behind (1.0 txid 1796-10-000000 < 1.0 txid 1796-20-000000)"),
        "{}",
        plan.cause
    );
}

#[test]
fn a_primary_vouches_for_the_secondaries_it_lists() {
    let mut p = primary(1, 1);
    p.txid = Some(stamp(30));
    p.attached = vec![2];
    p.leaving = true;
    let mut s = secondary(2, 1, 1);
    s.txid = Some(stamp(10));
    let plan = elect(&view(vec![(1, p.clone()), (2, s.clone())]), NEVER);
    assert_eq!(target(&plan), Some(2), "{}", plan.cause);
    assert_eq!(
        data_of(&view(vec![(1, p.clone()), (2, s.clone())]).states, 2).0,
        DataState::InSync
    );
    // Stepped down for the handover: it still vouches for whom it
    // handed over to, not for a node it did not list.
    p.role = Some(HaRole::None);
    p.attached = vec![];
    p.handed_over = vec![2];
    p.leaving = false;
    p.standby = true;
    s.role = Some(HaRole::None);
    let plan = elect(&view(vec![(1, p.clone()), (2, s.clone())]), NEVER);
    assert_eq!(target(&plan), Some(2), "{}", plan.cause);
    p.handed_over = vec![];
    let plan = elect(&view(vec![(1, p), (2, s)]), NEVER);
    assert_eq!(target(&plan), None, "{}", plan.cause);
}

#[test]
fn diverged_data_is_never_elected() {
    let fresh = Fresh { epoch: 1, gen: 0 };
    let mut diverged = node(2);
    (diverged.fresh, diverged.txid, diverged.diverged) = (fresh, Some(stamp(99)), true);
    let mut other = node(3);
    (other.fresh, other.txid) = (fresh, Some(stamp(20)));
    other.health = Health::Down;
    let v = view(vec![(2, diverged), (3, other)]);
    assert_eq!(target(&elect(&v, NEVER)), None);
    assert_eq!(data_of(&v.states, 2).0, DataState::Diverged);
}

/// Design §7: a secondary that lost sync with an orphan announced that the
/// orphan went one generation further (1.2). Nobody else reached it, but
/// the node that led epoch 1 holds every commit of it.
#[test]
fn the_leader_of_an_epoch_meets_any_need_within_it() {
    let lagging = |id| {
        let mut s = node(id);
        s.fresh = Fresh { epoch: 1, gen: 1 };
        s.known_fresh = Fresh { epoch: 1, gen: 2 };
        s.max_epoch = 1;
        s
    };
    let plan = elect(&view(vec![(2, lagging(2)), (3, lagging(3))]), NEVER);
    assert_eq!(target(&plan), None, "both lack the orphan's last commits");
    let states: States = [(2, lagging(2)), (3, lagging(3))].into_iter().collect();
    assert_eq!(data_of(&states, 2).0, DataState::Behind);

    let mut leader = node(1);
    leader.fresh = Fresh { epoch: 1, gen: 0 };
    leader.led_epoch = 1;
    leader.max_epoch = 1;
    let plan = elect(
        &view(vec![(1, leader.clone()), (2, lagging(2)), (3, lagging(3))]),
        NEVER,
    );
    assert_eq!(target(&plan), Some(1), "the orphan itself, back");

    // Leading an older epoch says nothing about a newer one.
    let mut newer = lagging(3);
    newer.known_fresh = Fresh { epoch: 2, gen: 0 };
    let plan = elect(&view(vec![(1, leader), (3, newer)]), NEVER);
    assert_eq!(target(&plan), None);
}

#[test]
fn a_primary_in_standby_that_nobody_can_replace_stays_with_its_secondaries() {
    // n1 is primary at 2.1; n2 and n3 are behind (1.0), so nobody can take
    // over when an operator puts n1 in standby (seed 93683737).
    let mut p = primary(1, 2);
    p.fresh = Fresh { epoch: 2, gen: 1 };
    p.standby = true;
    p.attached = vec![];
    let behind = |id| NodeState {
        fresh: Fresh { epoch: 1, gen: 0 },
        role_epoch: 1,
        ..node(id)
    };
    let plan = elect(
        &view(vec![(1, p.clone()), (2, behind(2)), (3, behind(3))]),
        NEVER,
    );
    assert_eq!(target(&plan), Some(1));
    assert_eq!(
        plan.cause,
        Cause::Stays {
            primary: "n1".into()
        }
    );
    assert_eq!((plan.parent[&2], plan.parent[&3]), (1, 1));
    // With a secondary in sync it is replaced, as standby asks.
    p.attached = vec![2];
    let mut s2 = secondary(2, 1, 2);
    s2.fresh = Fresh { epoch: 2, gen: 1 };
    let plan = elect(&view(vec![(1, p), (2, s2), (3, behind(3))]), NEVER);
    assert_eq!(target(&plan), Some(2));
}
