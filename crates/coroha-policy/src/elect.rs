//! `elect()`: the deterministic decision every member computes from the same
//! delivered state. It reads only what the members announced and the
//! requests delivered in this view, never local observations, so all
//! members of a configuration reach the same plan with no further messages.

use super::message::{Hold, KnownPrimary, Mark, NodeState};
use crate::cause::{Cause, Unfit, Unqualified};
use crate::cluster::{Member, NodeId};
use crate::freshness::{holds, need};
use crate::Failback;
use confd_ha::HaRole;
use std::collections::{BTreeMap, BTreeSet};

/// The replicated state of one CPG configuration: identical on every member
/// once they have delivered the same messages.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub id: u64,
    pub members: Vec<Member>,
    /// Latest announcement from each member in this view.
    pub states: BTreeMap<NodeId, NodeState>,
    pub released: BTreeSet<Hold>,
    /// An operator asked for a switchover to this node (resolved when the
    /// request was delivered); it holds until that node is primary.
    pub switchover: Option<NodeId>,
    pub standby: BTreeMap<NodeId, bool>,
    /// Orphaned primaries shown to be gone.
    pub gone: BTreeSet<(NodeId, u64)>,
}

impl View {
    pub fn complete(&self) -> bool {
        !self.members.is_empty()
            && self
                .members
                .iter()
                .all(|m| self.states.contains_key(&m.node))
    }

    pub fn is_member(&self, node: NodeId) -> bool {
        self.members.iter().any(|m| m.node == node)
    }

    /// The member that measures holds for everybody: the lowest node id.
    pub fn coordinator(&self) -> Option<NodeId> {
        self.members.iter().map(|m| m.node).min()
    }

    pub(crate) fn standby(&self, node: NodeId, s: &NodeState) -> bool {
        self.standby.get(&node).copied().unwrap_or(s.standby)
    }
}

/// Policy settings that shape the decision (identical on all nodes; the
/// config digest in each announcement warns when they are not).
#[derive(Clone, Copy, Debug)]
pub struct ElectParams {
    pub failback: Failback,
    /// Hold an operator's switchover, like an election, while a primary
    /// that vanished may still hold its lease. Off only to prove the rule
    /// (`Sabotage::SwitchoverPastVanished`).
    pub switchover_waits_for_vanished: bool,
    /// Keep an orphan the plan's primary after its coroha is back, until
    /// its NSO/ConfD has answered. Off only to prove the rule
    /// (`Sabotage::TrustOrphanBackUnheard`).
    pub orphan_back_speaks_once_heard: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Member(NodeId),
    /// A primary whose coroha is gone but whose NSO/ConfD may still serve.
    Orphan(KnownPrimary),
}

impl Target {
    pub fn node(&self) -> NodeId {
        match self {
            Target::Member(n) => *n,
            Target::Orphan(k) => k.node,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub target: Option<Target>,
    /// The epoch of the target's primary role.
    pub epoch: u64,
    pub cause: Cause,
    /// A hold the coordinator must time before the plan may proceed.
    pub wait: Option<Hold>,
    /// Members that are primary but must not be.
    pub demote: BTreeSet<NodeId>,
    /// Whom each member attaches to.
    pub parent: BTreeMap<NodeId, NodeId>,
    pub relays: BTreeSet<NodeId>,
    /// Freshness a candidate needs: the freshest anybody has seen.
    pub need: Mark,
}

impl Plan {
    fn none(cause: Cause, need: Mark) -> Plan {
        Plan {
            target: None,
            epoch: 0,
            cause,
            wait: None,
            demote: BTreeSet::new(),
            parent: BTreeMap::new(),
            relays: BTreeSet::new(),
            need,
        }
    }
}

/// Ranking of candidates for a new primary: freshest data first (lineage
/// position, then the CDB transaction id read there), then the node that
/// led that lineage (the primary of an epoch holds every write of
/// it, also those acknowledged after a secondary dropped out unnoticed,
/// design §12), then how many fellow secondaries it outlived in sync, then
/// staying in sync, then priority, then the lowest node id.
type Rank = (Mark, bool, u64, u64, u32, std::cmp::Reverse<NodeId>);

fn rank(node: NodeId, s: &NodeState, mark: Mark) -> Rank {
    let in_sync = if s.sync_loss == 0 {
        u64::MAX
    } else {
        s.sync_loss
    };
    // A primary that handed over (`benone` for a switchover or failback)
    // gave the lead to the secondaries it lists: they hold every commit
    // too, and the one it handed over to must not rank below it. Its data
    // still holds every commit of the epoch (`freshness::led_epoch_of`).
    // The epoch is the one `mark` is at: a node that holds it by its
    // final commit (`freshness::at_final_commit`) may have led an older
    // one.
    let led = mark.fresh.epoch > 0 && s.led_epoch == mark.fresh.epoch && s.handed_over.is_empty();
    let outlived = s.outlived;
    (
        mark,
        led,
        outlived,
        in_sync,
        s.priority,
        std::cmp::Reverse(node),
    )
}

/// May `s` take over from a primary that still serves and replicates to
/// it synchronously (switchover, failback)? Its lineage position must be
/// the freshest; its transaction id follows the primary's by replication,
/// however late its last announcement of it.
fn in_sync_candidate(view: &View, n: NodeId, s: &NodeState, need: Mark) -> bool {
    s.eligible() && !s.diverged && !view.standby(n, s) && s.fresh >= need.fresh
}

/// Why member `n` cannot take over by a switchover now (see
/// [`in_sync_candidate`]), if it cannot.
pub(crate) fn unfit_for_switchover(view: &View, n: NodeId, s: &NodeState) -> Option<Unfit> {
    let need = need(&view.states);
    if in_sync_candidate(view, n, s, need) {
        None
    } else if !s.eligible() {
        Some(Unfit::of(s))
    } else if view.standby(n, s) {
        Some(Unfit::Standby)
    } else if s.diverged {
        Some(Unfit::Diverged)
    } else {
        Some(Unfit::Behind {
            fresh: s.mark(),
            need,
        })
    }
}

pub fn elect(view: &View, params: ElectParams) -> Plan {
    let states = &view.states;
    let need = need(&view.states);
    // Members whose NSO/ConfD is primary, best claim (highest epoch) first.
    let mut primaries: Vec<(NodeId, &NodeState)> = states
        .iter()
        .filter(|(_, s)| s.is_primary())
        .map(|(n, s)| (*n, s))
        .collect();
    primaries.sort_by_key(|(n, s)| (std::cmp::Reverse(s.role_epoch), *n));
    let current = primaries.first().copied();
    let mark_of = |n: NodeId, s: &NodeState| {
        if holds(&view.states, need, n, s) {
            s.mark().max(need)
        } else {
            s.mark()
        }
    };
    let candidate = |n: NodeId, s: &NodeState| {
        s.eligible() && !s.diverged && !view.standby(n, s) && mark_of(n, s) >= need
    };

    // A primary known to some member, not shown gone, whose coroha is not
    // in the group, or is back but cannot yet say what its NSO/ConfD did
    // while it was away: a server that has not answered still has its
    // data, and may hold commits it took alone (seed 80563403, design §7).
    let unheard = |n: NodeId| {
        states
            .get(&n)
            .is_none_or(|s| params.orphan_back_speaks_once_heard && !s.answered)
    };
    let orphan = states
        .values()
        .filter_map(|s| s.known_primary.as_ref())
        .filter(|k| unheard(k.node) && !view.gone.contains(&(k.node, k.epoch)))
        .filter(|k| current.is_none_or(|(_, c)| k.epoch > c.role_epoch))
        .max()
        .cloned();
    if let Some(k) = orphan {
        let hold = Hold::OrphanGrace {
            primary: k.node,
            epoch: k.epoch,
        };
        let mut plan = Plan::none(
            Cause::OrphanKept {
                primary: k.name.clone(),
                epoch: k.epoch,
            },
            need,
        );
        plan.demote = primaries.iter().map(|(n, _)| *n).collect();
        plan.parent = states
            .keys()
            .filter(|n| **n != k.node)
            .map(|n| (*n, k.node))
            .collect();
        plan.epoch = k.epoch;
        plan.wait = (!view.released.contains(&hold)).then_some(hold);
        plan.target = Some(Target::Orphan(k));
        return plan;
    }

    let max_epoch = states
        .values()
        .map(|s| s.max_epoch.max(s.role_epoch))
        .max()
        .unwrap_or(0);
    let mut wait = None;
    let (target, cause): (Option<NodeId>, Cause) = match current {
        Some((c, cs)) if cs.eligible() && !view.standby(c, cs) => {
            let chosen = view
                .switchover
                .filter(|t| {
                    *t != c
                        && states
                            .get(t)
                            .is_some_and(|s| in_sync_candidate(view, *t, s, need))
                })
                .map(|t| {
                    (
                        t,
                        Cause::Switchover {
                            from: cs.name.clone(),
                            to: states[&t].name.clone(),
                        },
                    )
                });
            chosen
                .or_else(|| failback(view, params, c, cs, need, &mut wait))
                .map_or_else(
                    || {
                        let primary = cs.name.clone();
                        (Some(c), Cause::Stays { primary })
                    },
                    |(t, why)| (Some(t), why),
                )
        }
        _ => {
            let best = states
                .iter()
                .filter(|(n, s)| candidate(**n, s))
                .max_by_key(|(n, s)| rank(**n, s, mark_of(**n, s)));
            // A vanished primary whose coroha is back speaks for itself.
            let vanished = states
                .values()
                .filter_map(|s| s.vanished)
                .filter(|(n, _)| !states.contains_key(n))
                .max();
            let settling = states.values().all(|s| s.settling)
                && (states.len() as u32) < states.values().map(|s| s.nodes).max().unwrap_or(0);
            let switch_to = view
                .switchover
                .filter(|t| states.get(t).is_some_and(|s| candidate(*t, s)));
            let chosen = match best {
                // A primary put in standby that nobody can take over from
                // stays, with its secondaries: standby keeps a node from
                // being elected, it does not leave the cluster without a
                // primary to attach to (seed 93683737).
                None => match current {
                    Some((c, cs))
                        if view.standby(c, cs)
                            && cs.health == super::message::Health::Ok
                            && !cs.leaving =>
                    {
                        let primary = cs.name.clone();
                        (Some(c), Cause::Stays { primary })
                    }
                    _ => (None, no_candidate_reason(view, need)),
                },
                Some(_) if switch_to.is_some() => {
                    let t = switch_to.unwrap_or_default();
                    let to = states[&t].name.clone();
                    (Some(t), Cause::SwitchoverTo { to })
                }
                Some(_) if current.is_none() && settling => (None, Cause::Settling),
                Some((b, bs)) => {
                    let why = match current {
                        Some((_, cs)) => Cause::Replaces {
                            elected: bs.name.clone(),
                            primary: cs.name.clone(),
                            why: Unfit::of(cs),
                        },
                        None => Cause::Freshest {
                            elected: bs.name.clone(),
                            fresh: mark_of(*b, bs).fresh,
                            priority: bs.priority,
                        },
                    };
                    (Some(*b), why)
                }
            };
            // A primary that vanished without a goodbye may still hold its
            // lease, or need fencing: the coordinator releases the hold once
            // neither is so (design §13). Whoever is promoted, by election
            // or by an operator's switchover (seed 20440895).
            if current.is_none() && chosen.0.is_some() {
                if let Some((primary, epoch)) = vanished {
                    let hold = Hold::PromotionDelay { primary, epoch };
                    if !view.released.contains(&hold)
                        && (params.switchover_waits_for_vanished || switch_to.is_none())
                    {
                        wait = Some(hold);
                    }
                }
            }
            chosen
        }
    };

    let Some(t) = target else {
        return Plan::none(cause, need);
    };
    let epoch = match current {
        Some((c, cs)) if c == t => cs.role_epoch,
        _ => states
            .get(&t)
            .and_then(|s| s.promoting)
            .unwrap_or(max_epoch + 1),
    };
    // Primaries with an older claim than the current one diverged (a heal
    // after a split); the current one, if replaced, hands over instead.
    let demote = primaries
        .iter()
        .skip(1)
        .map(|(n, _)| *n)
        .filter(|n| *n != t)
        .collect();
    let relay_fit = |r: NodeId| {
        states.get(&r).is_some_and(|rs| {
            rs.health == super::message::Health::Ok && rs.relay_via.is_none() && !rs.leaving
        })
    };
    let mut parent = BTreeMap::new();
    let mut relays = BTreeSet::new();
    for (n, s) in states {
        if *n == t {
            continue;
        }
        let p = match s.relay_via {
            // A healthy relay is waited for rather than bypassed, so that a
            // remote node is copied once, through its relay.
            Some(r) if r != t && r != *n && view.is_member(r) && relay_fit(r) => {
                relays.insert(r);
                r
            }
            _ => t,
        };
        parent.insert(*n, p);
    }
    Plan {
        target: Some(Target::Member(t)),
        epoch,
        cause,
        wait,
        demote,
        parent,
        relays,
        need,
    }
}

/// The best candidate other than `exclude`, for a switchover that names
/// no target.
pub fn best_other(view: &View, exclude: Option<NodeId>) -> Option<NodeId> {
    let need = need(&view.states);
    view.states
        .iter()
        .filter(|(n, s)| Some(**n) != exclude && in_sync_candidate(view, **n, s, need))
        .max_by_key(|(n, s)| {
            rank(
                **n,
                s,
                Mark {
                    txid: None,
                    ..s.mark()
                },
            )
        })
        .map(|(n, _)| *n)
}

/// Failback: a node of higher priority, in sync with the current primary,
/// takes over immediately or after a stable period.
fn failback(
    view: &View,
    params: ElectParams,
    c: NodeId,
    cs: &NodeState,
    need: Mark,
    wait: &mut Option<Hold>,
) -> Option<(NodeId, Cause)> {
    if params.failback == Failback::Never {
        return None;
    }
    let (b, bs) = view
        .states
        .iter()
        .filter(|(n, s)| {
            **n != c
                && in_sync_candidate(view, **n, s, need)
                && s.priority > cs.priority
                && s.role == Some(HaRole::Secondary)
                && s.parent == Some(c)
                && s.role_epoch == cs.role_epoch
                && s.initialized
        })
        .max_by_key(|(n, s)| (s.priority, std::cmp::Reverse(**n)))?;
    let why = Cause::Failback {
        to: bs.name.clone(),
        priority: bs.priority,
        over: cs.priority,
    };
    match params.failback {
        Failback::Immediately => Some((*b, why)),
        Failback::After(_) => {
            let hold = Hold::Failback {
                to: *b,
                epoch: cs.role_epoch,
            };
            if view.released.contains(&hold) {
                Some((*b, why))
            } else {
                *wait = Some(hold);
                None
            }
        }
        Failback::Never => None,
    }
}

fn no_candidate_reason(view: &View, need: Mark) -> Cause {
    let nodes = view
        .states
        .iter()
        .filter(|(_, s)| s.can_primary)
        .map(|(n, s)| Unqualified {
            name: s.name.clone(),
            why: if !s.eligible() {
                Unfit::of(s)
            } else if s.diverged {
                Unfit::Diverged
            } else if !holds(&view.states, need, *n, s) {
                Unfit::Behind {
                    fresh: s.mark(),
                    need,
                }
            } else {
                Unfit::of(s)
            },
        })
        .collect();
    Cause::no_candidate(nodes)
}

#[cfg(test)]
mod tests;
