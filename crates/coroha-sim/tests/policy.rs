//! The policy step by step, through its public interface only: one node's
//! `Policy` fed by hand-made corosync events and HA replies.

use confd_ha::{HaFailure, HaOrder, HaReply, HaRole};
use coroha_policy::cause::Unfit;
use coroha_policy::cluster::{ClusterEvent, NodeId, Reason, RingId};
use coroha_policy::elect::Target;
use coroha_policy::message::{
    Body, Envelope, Fresh, Health, KnownPrimary, NodeState, Pause, RememberedPrimary, Request,
};
use coroha_policy::{Input, Level, Operator, Output, Persisted, Policy, Refusal};
use coroha_sim::default_config;
use coroha_sim::rng::Rng;
use std::convert::Infallible;

mod steps;
use steps::*;

#[test]
fn promotion_is_announced_first_then_persisted_then_ordered() {
    let (mut p, view) = started(&[1, 2, 3], true);
    let out = elect_me_announcing(&mut p, view);
    assert!(
        orders(&out).is_empty(),
        "no beprimary before the intent is delivered: {out:?}"
    );
    let intent = own_announcement(&out).expect("intent announced");
    match Envelope::decode(&intent).unwrap().body {
        Body::Announce(s) => assert_eq!(s.promoting, Some(1)),
        other => panic!("{other:?}"),
    }
    let ready = deliver_intent(&mut p, 13, &out);
    assert_eq!(ready.persist().map(|s| s.max_epoch), Some(1));
    // The order is only handed out once the epoch is written.
    let mut written = None;
    let Ok(out) = ready.persist_then(|state| {
        written = Some(state.max_epoch);
        Ok::<(), Infallible>(())
    });
    assert_eq!(written, Some(1), "the epoch is persisted first");
    assert!(
        matches!(orders(&out)[..], [HaOrder::BePrimary { .. }]),
        "then beprimary is sent: {out:?}"
    );
}

#[test]
fn a_state_that_cannot_be_persisted_releases_no_order() {
    let (mut p, view) = started(&[1, 2, 3], true);
    let out = elect_me_announcing(&mut p, view);
    let ready = deliver_intent(&mut p, 13, &out);
    let result = ready.persist_then(|_| Err("disk full"));
    assert_eq!(
        result,
        Err("disk full"),
        "nothing of the step is carried out"
    );
}

#[test]
fn without_quorum_nobody_is_promoted() {
    let (mut p, view) = started(&[1, 2, 3], false);
    let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
    let out = elect_me(&mut p, view, mine);
    assert!(
        p.plan()
            .is_some_and(|plan| plan.target == Some(Target::Member(1))),
        "elected"
    );
    assert!(
        orders(&out).is_empty()
            && own_announcement(&out)
                .is_none_or(|d| !String::from_utf8_lossy(&d).contains("\"promoting\":1"))
    );
}

#[test]
fn a_minority_of_coroha_daemons_does_not_promote() {
    // corosync is quorate (3 nodes), but only one coroha runs.
    let (mut p, view) = started(&[1], true);
    let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
    let out = deliver(&mut p, 12, 1, mine);
    assert!(orders(&out).is_empty(), "{out:?}");
    assert!(p.promoting().is_none());
}

#[test]
fn messages_for_another_view_are_ignored_with_a_log_line() {
    let (mut p, view) = started(&[1, 2, 3], true);
    let out = deliver(&mut p, 10, 2, peer(view + 1, 2));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Log { text, .. } if text.contains("for another view"))));
    assert!(!p.status().members.iter().any(|m| m.id == 2));
}

#[test]
fn garbage_on_the_group_is_logged_and_survived() {
    let (mut p, view) = started(&[1, 2, 3], true);
    let mut rng = Rng::new(7);
    for k in 0..5000u64 {
        let len = rng.range(0, 300) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if k % 3 == 0 {
            // Mostly valid JSON with a damaged tail.
            data = peer(view, 2);
            let cut = rng.range(0, data.len() as u64 - 1) as usize;
            data.truncate(cut);
            data.push(rng.next_u64() as u8);
        }
        let out = deliver(&mut p, 10 + k, 2, data);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Log {
                level: Level::Warn,
                ..
            } | Output::Log {
                level: Level::Debug,
                ..
            }
        )));
    }
    // Still working: a valid announcement is taken.
    deliver(&mut p, 9000, 2, peer(view, 2));
    assert!(p.status().members.iter().any(|m| m.id == 2));
}

#[test]
fn a_restarted_daemon_adopts_the_primary_role_it_finds() {
    let config = default_config(3);
    let persisted = Persisted {
        max_epoch: 4,
        role_epoch: 4,
        ..Persisted::default()
    };
    let mut p = Policy::new(config.settings(1), persisted);
    let out = step(&mut p, 0, Input::Timer);
    let id = out.iter().find_map(|o| match o {
        Output::Order { id, .. } => Some(*id),
        _ => None,
    });
    let status = HaReply::Status {
        role: HaRole::Primary,
        nodes: vec!["n2".into()],
    };
    let out = step(
        &mut p,
        1,
        Input::HaReply {
            id: id.unwrap(),
            result: Ok(status),
        },
    );
    assert_eq!(p.role(), Some(HaRole::Primary));
    assert!(
        orders(&out).is_empty(),
        "no order: the role is adopted, not changed"
    );
    assert_eq!(p.my_state().role_epoch, 4);
}

/// Node 1 restarted remembering `known`.
fn restarted_remembering(known: RememberedPrimary) -> Policy {
    connected(Persisted {
        known_primary: Some(known),
        ..Persisted::default()
    })
}

fn ring(p: &mut Policy, now: u64, members: Vec<NodeId>, quorate: bool) {
    let ring = RingId {
        rep: members[0],
        seq: now,
    };
    step(
        p,
        now,
        Input::Cluster(ClusterEvent::QuorumNodes { ring, members }),
    );
    step(
        p,
        now,
        Input::Cluster(ClusterEvent::Quorum { quorate, needed: 2 }),
    );
}

fn n2_primary() -> KnownPrimary {
    KnownPrimary {
        node: 2,
        epoch: 4,
        name: "n2".into(),
        address: "10.0.0.2".into(),
        promotion_in_flight: false,
    }
}

#[test]
fn a_remembered_primary_outlives_the_boot_ring_and_goes_with_a_quorate_ring_without_it() {
    let mut p = restarted_remembering(RememberedPrimary::Attended(n2_primary()));
    // corosync forms a ring of its own first: no verdict on n2 yet.
    ring(&mut p, 10, vec![1], false);
    assert_eq!(
        p.persisted().known_primary,
        Some(RememberedPrimary::Attended(n2_primary()))
    );
    // A quorate ring without n2: its coroha, last seen in the group,
    // demotes it on the quorum loss.
    ring(&mut p, 20, vec![1, 3], true);
    assert_eq!(p.persisted().known_primary, None);
}

#[test]
fn a_remembered_orphan_is_kept_in_a_quorate_ring_without_it() {
    let mut p = restarted_remembering(RememberedPrimary::Orphaned(n2_primary()));
    ring(&mut p, 10, vec![1], false);
    ring(&mut p, 20, vec![1, 3], true);
    assert_eq!(
        p.persisted().known_primary,
        Some(RememberedPrimary::Orphaned(n2_primary())),
        "nothing demotes an orphan: only evidence forgets it"
    );
}

#[test]
fn a_remembered_primary_in_the_ring_without_its_coroha_becomes_an_orphan() {
    let mut p = restarted_remembering(RememberedPrimary::Attended(n2_primary()));
    ring(&mut p, 10, vec![1, 2, 3], true);
    let out = step(
        &mut p,
        11,
        Input::Cluster(ClusterEvent::CpgConfChg {
            members: vec![member(1), member(3)],
            left: vec![],
            joined: vec![(member(1), Reason::Join)],
        }),
    );
    let view = Envelope::decode(&own_announcement(&out).expect("announced"))
        .expect("decodes")
        .view;
    deliver(&mut p, 12, 1, own_announcement(&out).expect("announced"));
    let out = deliver(&mut p, 13, 3, peer(view, 3));
    assert_eq!(
        p.persisted().known_primary,
        Some(RememberedPrimary::Orphaned(n2_primary()))
    );
    assert!(
        matches!(p.plan().and_then(|plan| plan.target.clone()), Some(Target::Orphan(k)) if k.node == 2),
        "the plan keeps n2"
    );
    assert!(
        !orders(&out)
            .iter()
            .any(|o| matches!(o, HaOrder::BePrimary { .. })),
        "nobody is promoted beside it"
    );
}

fn standby(node: &str, on: bool) -> Operator {
    Operator::Standby {
        node: node.into(),
        on,
    }
}

#[test]
fn a_request_that_could_not_take_effect_is_refused_with_the_reason() {
    // Not quorate: nothing the group decides here counts.
    let (mut p, view) = started(&[1, 2, 3], false);
    elect_me_announcing(&mut p, view);
    let refused = p.admit(&standby("n2", true)).unwrap_err();
    assert_eq!(refused, Refusal::NotQuorate);
    assert_eq!(p.admit(&Operator::Stop { handover: false }), Ok(()));

    // Quorate, but n3's coroha is not in the group: it could not record
    // its own standby flag; n2's can.
    let (mut p, view) = started(&[1, 2], true);
    deliver(&mut p, 10, 2, peer(view, 2));
    let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
    deliver(&mut p, 11, 1, mine);
    let refused = p.admit(&standby("n3", true)).unwrap_err();
    assert_eq!(refused, Refusal::NotInGroup("n3".into()));
    assert_eq!(p.admit(&standby("n2", true)), Ok(()));
    // Nobody is primary yet: there is nothing to switch over from.
    assert_eq!(
        p.admit(&Operator::Switchover { to: None }),
        Err(Refusal::NoPrimary)
    );
}

fn switchover(to: Option<&str>) -> Operator {
    Operator::Switchover {
        to: to.map(String::from),
    }
}

#[test]
fn a_request_that_would_change_nothing_is_refused_with_what_stands_in_its_way() {
    // n2 is primary at epoch 1, n3 its secondary and in standby; node 1
    // (asked here) has just come up in NONE without the data.
    let (mut p, view) = started(&[1, 2, 3], true);
    let fresh = Fresh { epoch: 1, gen: 0 };
    let mut n2 = NodeState::sample(2);
    (n2.role, n2.role_epoch, n2.max_epoch, n2.fresh) = (Some(HaRole::Primary), 1, 1, fresh);
    n2.attached = vec![3];
    let mut n3 = NodeState::sample(3);
    (n3.role, n3.role_epoch, n3.max_epoch, n3.fresh) = (Some(HaRole::Secondary), 1, 1, fresh);
    (n3.parent, n3.initialized, n3.standby) = (Some(2), true, true);
    for (id, state) in [(2, n2), (3, n3)] {
        deliver(
            &mut p,
            10,
            id,
            Envelope::new(view, Body::Announce(Box::new(state))).encode(),
        );
    }
    let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
    deliver(&mut p, 12, 1, mine);
    assert_eq!(
        p.status().primary.as_deref(),
        Some("n2"),
        "{:?}",
        p.status().plan
    );

    assert_eq!(
        p.admit(&switchover(Some("n2"))),
        Err(Refusal::AlreadyPrimary("n2".into()))
    );
    assert_eq!(
        p.admit(&switchover(Some("n3"))),
        Err(Refusal::CannotTakeOver {
            node: "n3".into(),
            why: Unfit::Standby
        })
    );
    let Err(Refusal::NoCandidate { from, why }) = p.admit(&switchover(None)) else {
        panic!("a switchover to anybody has nobody to go to");
    };
    assert_eq!(from, "n2");
    let why: Vec<(&str, bool)> = why
        .iter()
        .map(|(n, u)| (n.as_str(), matches!(u, Unfit::Behind { .. })))
        .collect();
    assert_eq!(why, vec![("n1", true), ("n3", false)]);
    assert_eq!(
        p.admit(&standby("n3", true)),
        Err(Refusal::AlreadyStandby("n3".into()))
    );
    assert_eq!(
        p.admit(&standby("n1", false)),
        Err(Refusal::NotStandby("n1".into()))
    );
    assert_eq!(
        p.admit(&Operator::ConfirmDown { node: "n2".into() }),
        Err(Refusal::NotOrphaned("n2".into()))
    );
    assert_eq!(p.admit(&standby("n3", false)), Ok(()));
    assert!(Refusal::AlreadyPrimary("n2".into()).as_asked());
    assert!(!Refusal::NoPrimary.as_asked());

    // n3 out of standby, and a switchover to it delivered: a second one
    // waits for it.
    let mut n3 = NodeState::sample(3);
    (n3.role, n3.role_epoch, n3.max_epoch, n3.fresh) = (Some(HaRole::Secondary), 1, 1, fresh);
    (n3.parent, n3.initialized) = (Some(2), true);
    let request = Body::Request(Request::Switchover { to: Some(3) });
    for (t, body) in (13..).zip([Body::Announce(Box::new(n3)), request]) {
        deliver(&mut p, t, 3, Envelope::new(view, body).encode());
    }
    assert_eq!(
        p.admit(&switchover(Some("n1"))),
        Err(Refusal::SwitchoverInProgress { to: "n3".into() })
    );
    // Paused: no switchover, and no second pause.
    let pause = Request::Pause(Pause { gen: 1, on: true });
    deliver(
        &mut p,
        15,
        3,
        Envelope::new(view, Body::Request(pause)).encode(),
    );
    assert_eq!(p.admit(&switchover(None)), Err(Refusal::Paused));
    // Taken as it stands: the command waits for its own generation.
    assert_eq!(p.admit(&Operator::Pause { on: true }), Ok(()));
    assert_eq!(p.admit(&Operator::Pause { on: false }), Ok(()));
    assert_eq!((p.status().paused, p.status().pause_gen), (true, 1));
}

/// Node 1's own messages delivered back to it (the others stay silent);
/// what remains of the outputs.
fn pump(p: &mut Policy, now: u64, mut out: Vec<Output>) -> Vec<Output> {
    while let Some(i) = out.iter().position(|o| matches!(o, Output::Multicast(_))) {
        let Output::Multicast(m) = out.remove(i) else {
            unreachable!()
        };
        out.extend(deliver(p, now, 1, m.encode()));
    }
    out
}

fn first_order(out: &[Output]) -> Option<(u64, HaOrder)> {
    out.iter().find_map(|o| match o {
        Output::Order { id, order } => Some((*id, order.clone())),
        _ => None,
    })
}

/// Step timers until the policy gives an order; its id and the order.
fn next_order(p: &mut Policy, now: &mut u64, pending: Vec<Output>) -> (u64, HaOrder) {
    if let Some(o) = first_order(&pending) {
        return o;
    }
    for _ in 0..100 {
        *now += 100;
        let out = step(p, *now, Input::Timer);
        let out = pump(p, *now, out);
        if let Some(o) = first_order(&out) {
            return o;
        }
    }
    panic!("no order within 10 s");
}

fn refuse(p: &mut Policy, now: u64, id: u64) -> Vec<Output> {
    let out = step(
        p,
        now,
        Input::HaReply {
            id,
            result: Err(HaFailure::Error(confd_ha::code::BADSTATE)),
        },
    );
    pump(p, now, out)
}

fn answer_none(p: &mut Policy, now: u64, id: u64) -> Vec<Output> {
    let out = step(
        p,
        now,
        Input::HaReply {
            id,
            result: Ok(HaReply::Status {
                role: HaRole::None,
                nodes: vec![],
            }),
        },
    );
    pump(p, now, out)
}

#[test]
fn a_server_refusing_promotion_stays_refusing_for_the_settle_time() {
    let (mut p, view) = started(&[1, 2, 3], true);
    let out = elect_me_announcing(&mut p, view);
    let Ok(out) = deliver_intent(&mut p, 13, &out).persist_then(|_| Ok::<(), Infallible>(()));
    let mut now = 13;
    let mut id = out
        .iter()
        .find_map(|o| match o {
            Output::Order {
                id,
                order: HaOrder::BePrimary { .. },
            } => Some(*id),
            _ => None,
        })
        .expect("beprimary");
    // Refused until it counts as refusing (max_order_failures = 3).
    let mut out;
    loop {
        out = refuse(&mut p, now, id);
        if p.my_state().health == Health::Refusing {
            break;
        }
        loop {
            let (next, order) = next_order(&mut p, &mut now, std::mem::take(&mut out));
            if matches!(order, HaOrder::BePrimary { .. }) {
                id = next;
                break;
            }
            out = answer_none(&mut p, now, next);
        }
    }
    let refused_at = now;
    // Status answers within the settle time (5 s here) say nothing of the
    // start phase: still refusing, so the plan does not turn back to it.
    while now < refused_at + 4000 {
        let (next, order) = next_order(&mut p, &mut now, std::mem::take(&mut out));
        assert_eq!(order, HaOrder::GetStatus);
        out = answer_none(&mut p, now, next);
        assert_eq!(p.my_state().health, Health::Refusing, "at {now}");
    }
    // After it, a status answer makes it eligible again.
    while p.my_state().health == Health::Refusing {
        let (next, order) = next_order(&mut p, &mut now, std::mem::take(&mut out));
        assert!(now < refused_at + 7000, "still refusing at {now}");
        assert_eq!(order, HaOrder::GetStatus);
        out = answer_none(&mut p, now, next);
    }
    assert_eq!(p.my_state().health, Health::Ok);
}

/// An order that keeps failing is tried again after 1 s, then 2 s, and
/// what fails is in the status until an order succeeds.
#[test]
fn a_failing_order_backs_off_and_shows_in_the_status() {
    let (mut p, view) = started(&[1, 2, 3], true);
    let out = elect_me_announcing(&mut p, view);
    let Ok(out) = deliver_intent(&mut p, 13, &out).persist_then(|_| Ok::<(), Infallible>(()));
    let (mut id, _) = first_order(&out).expect("beprimary");
    let mut now = 13;
    let mut tries = vec![];
    for _ in 0..2 {
        let mut out = refuse(&mut p, now, id);
        let refused_at = now;
        loop {
            let (next, order) = next_order(&mut p, &mut now, std::mem::take(&mut out));
            if matches!(order, HaOrder::BePrimary { .. }) {
                tries.push(now - refused_at);
                id = next;
                break;
            }
            out = answer_none(&mut p, now, next);
        }
    }
    assert!(
        (1000..1200).contains(&tries[0]) && (2000..2200).contains(&tries[1]),
        "retried after {tries:?} ms"
    );
    let failing = p.status().failing.expect("shown in the status");
    assert!(
        failing.contains("beprimary failed 2 time(s) in a row: BADSTATE"),
        "{failing}"
    );
    // The others are told what fails, not how often: one announcement.
    assert_eq!(p.my_state().failing.as_deref(), Some("beprimary: BADSTATE"));
}

fn asked_txid(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::ReadTxid))
}

/// Answer a read that may be outstanding, then run the policy until it
/// asks for the transaction id again, and answer that too: `txid` is what
/// the server says now.
fn answer_txid(p: &mut Policy, now: &mut u64, txid: confd_ha::Txid) {
    if asked_txid(&step(p, *now, Input::TxidRead(Some(txid.clone())))) {
        step(p, *now, Input::TxidRead(Some(txid)));
        return;
    }
    for _ in 0..100 {
        *now += 500;
        let out = step(p, *now, Input::Timer);
        for o in &out {
            if let Output::Order {
                id,
                order: HaOrder::GetStatus,
            } = o
            {
                step(
                    p,
                    *now,
                    Input::HaReply {
                        id: *id,
                        result: Ok(HaReply::Status {
                            role: HaRole::None,
                            nodes: vec![],
                        }),
                    },
                );
            }
        }
        if asked_txid(&out) {
            step(p, *now, Input::TxidRead(Some(txid)));
            return;
        }
    }
    panic!("no transaction id asked for");
}

fn txid(secs: u32, primary: Option<&str>) -> confd_ha::Txid {
    confd_ha::Txid {
        stamp: confd_ha::TxStamp {
            mega: 1796,
            secs,
            micros: 0,
        },
        primary: primary.map(Into::into),
    }
}

/// Outside HA the data must not change: a NONE node whose transaction id
/// moves between two reads took commits nobody else has (or its CDB was
/// replaced), and announces that it is diverged.
#[test]
fn data_that_changes_outside_ha_is_diverged() {
    let (mut p, _) = started(&[1, 2, 3], true);
    let mut now = 10;
    answer_txid(&mut p, &mut now, txid(100, Some("n2")));
    assert!(!p.my_state().diverged);
    answer_txid(&mut p, &mut now, txid(100, Some("n2")));
    assert!(!p.my_state().diverged, "the same id again is no change");
    answer_txid(&mut p, &mut now, txid(200, None));
    assert!(p.my_state().diverged);
    assert_eq!(
        p.persisted().data.diverged.map(|t| t.secs),
        Some(200),
        "kept across restarts"
    );
}

/// `{0,0,0}` where the node had data: its CDB was wiped.
#[test]
fn an_empty_cdb_where_there_was_data_is_diverged() {
    let mut persisted = Persisted::default();
    let fresh = coroha_policy::message::Fresh { epoch: 1, gen: 0 };
    persisted.fresh = fresh;
    persisted.data.lineage = Some((fresh, txid(100, Some("n2")).stamp));
    let mut p = connected(persisted);
    let mut now = 10;
    answer_txid(
        &mut p,
        &mut now,
        confd_ha::Txid {
            stamp: confd_ha::TxStamp::default(),
            primary: None,
        },
    );
    assert!(p.my_state().diverged);
}

/// Issue 13: when NSO/ConfD closes its HA connection and takes no new one
/// (it died), the status is read at once, not at the next poll; a timer
/// step just as early asks nothing.
#[test]
fn a_closed_ha_connection_has_the_status_read_at_once() {
    let (mut p, _) = started(&[1, 2, 3], true);
    let asks = |out: &[Output]| {
        out.iter().any(|o| {
            matches!(
                o,
                Output::Order {
                    order: HaOrder::GetStatus,
                    ..
                }
            )
        })
    };
    assert!(
        !asks(&step(&mut p, 100, Input::Timer)),
        "not yet time to poll"
    );
    assert!(asks(&step(&mut p, 101, Input::HaConnectionClosed)));
}
