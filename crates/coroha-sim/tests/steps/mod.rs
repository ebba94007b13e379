//! The steps the policy tests take: one node's `Policy` started by hand
//! (corosync events, HA replies), and what its outputs say.

use confd_ha::{HaOrder, HaReply, HaRole};
use coroha_policy::cluster::{ClusterEvent, Member, NodeId, Reason, RingId};
use coroha_policy::message::{Body, Envelope, NodeState};
use coroha_policy::{Input, Output, Persisted, Policy, Ready};
use coroha_sim::default_config;
use std::convert::Infallible;

pub const RING: RingId = RingId { rep: 1, seq: 8 };

pub fn member(node: NodeId) -> Member {
    Member {
        node,
        pid: 100 + node,
    }
}

/// Node 1 of a 3-node cluster starting from `persisted`: NSO/ConfD
/// answered NONE and corosync is connected; the ring is still to come.
pub fn connected(persisted: Persisted) -> Policy {
    let config = default_config(3);
    let mut p = Policy::new(config.settings(1), persisted);
    let out = step(&mut p, 0, Input::Timer);
    let id = out.iter().find_map(|o| match o {
        Output::Order {
            id,
            order: HaOrder::GetStatus,
        } => Some(*id),
        _ => None,
    });
    step(
        &mut p,
        1,
        Input::HaReply {
            id: id.expect("status first"),
            result: Ok(HaReply::Status {
                role: HaRole::None,
                nodes: vec![],
            }),
        },
    );
    step(
        &mut p,
        2,
        Input::Cluster(ClusterEvent::Connected { local: member(1) }),
    );
    p
}

/// Node 1 of a 3-node cluster, NSO/ConfD in NONE, in a view of `members`.
pub fn started(members: &[NodeId], quorate: bool) -> (Policy, u64) {
    let mut p = connected(Persisted::default());
    step(
        &mut p,
        3,
        Input::Cluster(ClusterEvent::QuorumNodes {
            ring: RING,
            members: vec![1, 2, 3],
        }),
    );
    step(
        &mut p,
        4,
        Input::Cluster(ClusterEvent::Quorum { quorate, needed: 2 }),
    );
    let out = step(
        &mut p,
        5,
        Input::Cluster(ClusterEvent::CpgConfChg {
            members: members.iter().map(|n| member(*n)).collect(),
            left: vec![],
            joined: vec![(member(1), Reason::Join)],
        }),
    );
    let view = out
        .iter()
        .find_map(|o| match o {
            Output::Multicast(message) => Some(message.view),
            _ => None,
        })
        .expect("an announcement after the configuration change");
    (p, view)
}

/// One step whose durable state is written nowhere: these tests look at
/// what the step does, not at the disk.
pub fn step(p: &mut Policy, now: u64, input: Input) -> Vec<Output> {
    let Ok(out) = p
        .step(now, input)
        .persist_then(|_| Ok::<(), Infallible>(()));
    out
}

pub fn own_announcement(out: &[Output]) -> Option<Vec<u8>> {
    out.iter().rev().find_map(|o| match o {
        Output::Multicast(m) if matches!(m.body, Body::Announce(_)) => Some(m.encode()),
        _ => None,
    })
}

/// A delivery, and the step's result before anything is persisted.
pub fn deliver_ready(p: &mut Policy, now: u64, from: NodeId, data: Vec<u8>) -> Ready {
    p.step(
        now,
        Input::Cluster(ClusterEvent::Deliver {
            sender: member(from),
            data,
        }),
    )
}

pub fn deliver(p: &mut Policy, now: u64, from: NodeId, data: Vec<u8>) -> Vec<Output> {
    step(
        p,
        now,
        Input::Cluster(ClusterEvent::Deliver {
            sender: member(from),
            data,
        }),
    )
}

/// This node's heartbeat among a step's outputs (a node about to promote
/// sends one with its intent: beprimary waits for it to come back).
pub fn own_heartbeat(out: &[Output]) -> Option<Vec<u8>> {
    out.iter().find_map(|o| match o {
        Output::Multicast(m) if matches!(m.body, Body::Heartbeat { .. }) => Some(m.encode()),
        _ => None,
    })
}

/// Deliver the intent announced in `out`, then the heartbeat sent with
/// it; the second step is where beprimary is given.
pub fn deliver_intent(p: &mut Policy, now: u64, out: &[Output]) -> Ready {
    let intent = own_announcement(out).expect("intent announced");
    let heartbeat = own_heartbeat(out).expect("heartbeat sent with the intent");
    let _ = deliver(p, now, 1, intent);
    deliver_ready(p, now, 1, heartbeat)
}

pub fn peer(view: u64, id: NodeId) -> Vec<u8> {
    Envelope::new(view, Body::Announce(Box::new(NodeState::sample(id)))).encode()
}

pub fn orders(out: &[Output]) -> Vec<&HaOrder> {
    out.iter()
        .filter_map(|o| match o {
            Output::Order { order, .. } if *order != HaOrder::GetStatus => Some(order),
            _ => None,
        })
        .collect()
}

/// Deliver everybody's announcements; return what node 1 does next.
pub fn elect_me(p: &mut Policy, view: u64, mine: Vec<u8>) -> Vec<Output> {
    deliver(p, 10, 2, peer(view, 2));
    deliver(p, 11, 3, peer(view, 3));
    deliver(p, 12, 1, mine)
}

/// [`elect_me`] with node 1's own current announcement.
pub fn elect_me_announcing(p: &mut Policy, view: u64) -> Vec<Output> {
    let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
    elect_me(p, view, mine)
}
