//! `elect()`: the deterministic decision every member computes from the same
//! delivered state. It reads only what the members announced and the
//! requests delivered in this view, never local observations, so all
//! members of a configuration reach the same plan with no further messages.

use super::message::{Fresh, Hold, KnownPrimary, NodeState};
use crate::cluster::{Member, NodeId};
use crate::config::Failback;
use crate::ha::HaRole;
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

    fn standby(&self, node: NodeId, s: &NodeState) -> bool {
        self.standby.get(&node).copied().unwrap_or(s.standby)
    }
}

/// Policy settings that shape the decision (identical on all nodes; the
/// config digest in each announcement warns when they are not).
#[derive(Clone, Copy, Debug)]
pub struct ElectParams {
    pub failback: Failback,
    pub promotion_delay: bool,
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
    pub cause: String,
    /// A hold the coordinator must time before the plan may proceed.
    pub wait: Option<Hold>,
    /// Members that are primary but must not be.
    pub demote: BTreeSet<NodeId>,
    /// Whom each member attaches to.
    pub parent: BTreeMap<NodeId, NodeId>,
    pub relays: BTreeSet<NodeId>,
    /// Freshness a candidate needs: the freshest anybody has seen.
    pub need: Fresh,
}

impl Plan {
    fn none(cause: String, need: Fresh) -> Plan {
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

/// Ranking of candidates for a new primary: freshest data first, then
/// staying in sync, then priority, then the lowest node id.
fn rank(node: NodeId, s: &NodeState) -> (Fresh, u64, u32, std::cmp::Reverse<NodeId>) {
    let in_sync = if s.sync_loss == 0 {
        u64::MAX
    } else {
        s.sync_loss
    };
    (s.fresh, in_sync, s.priority, std::cmp::Reverse(node))
}

pub fn elect(view: &View, params: ElectParams) -> Plan {
    let states = &view.states;
    let need = states
        .values()
        .map(|s| s.fresh.max(s.known_fresh))
        .max()
        .unwrap_or_default();
    let candidate =
        |n: NodeId, s: &NodeState| s.eligible() && !view.standby(n, s) && s.fresh >= need;

    // Members whose NSO/ConfD is primary, best claim (highest epoch) first.
    let mut primaries: Vec<(NodeId, &NodeState)> = states
        .iter()
        .filter(|(_, s)| s.is_primary())
        .map(|(n, s)| (*n, s))
        .collect();
    primaries.sort_by_key(|(n, s)| (std::cmp::Reverse(s.role_epoch), *n));
    let current = primaries.first().copied();

    // A primary known to some member, not in the group, not shown gone.
    let orphan = states
        .values()
        .filter_map(|s| s.known_primary.as_ref())
        .filter(|k| !view.is_member(k.node) && !view.gone.contains(&(k.node, k.epoch)))
        .filter(|k| current.map_or(true, |(_, c)| k.epoch > c.role_epoch))
        .max()
        .cloned();
    if let Some(k) = orphan {
        let hold = Hold::OrphanGrace {
            primary: k.node,
            epoch: k.epoch,
        };
        let mut plan = Plan::none(
            format!(
                "primary {} (epoch {}) lost its coroha but its node is a member: keeping it",
                k.name, k.epoch
            ),
            need,
        );
        plan.demote = primaries.iter().map(|(n, _)| *n).collect();
        plan.parent = states.keys().map(|n| (*n, k.node)).collect();
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
    let (target, cause): (Option<NodeId>, String) = match current {
        Some((c, cs)) if cs.eligible() && !view.standby(c, cs) => {
            let chosen = view
                .switchover
                .filter(|t| *t != c && states.get(t).is_some_and(|s| candidate(*t, s)))
                .map(|t| {
                    (
                        t,
                        format!(
                            "operator switchover from {} to {}",
                            cs.name, states[&t].name
                        ),
                    )
                });
            chosen
                .or_else(|| failback(view, params, c, cs, need, &mut wait))
                .map_or_else(
                    || (Some(c), format!("{} stays primary", cs.name)),
                    |(t, why)| (Some(t), why),
                )
        }
        _ => {
            let best = states
                .iter()
                .filter(|(n, s)| candidate(**n, s))
                .max_by_key(|(n, s)| rank(**n, s));
            let vanished = states.values().filter_map(|s| s.vanished).max();
            let settling = states.values().all(|s| s.settling)
                && (states.len() as u32) < states.values().map(|s| s.nodes).max().unwrap_or(0);
            let switch_to = view
                .switchover
                .filter(|t| states.get(t).is_some_and(|s| candidate(*t, s)));
            match best {
                None => (None, no_candidate_reason(view, need)),
                Some(_) if switch_to.is_some() => {
                    let t = switch_to.unwrap_or_default();
                    (
                        Some(t),
                        format!("operator switchover to {}", states[&t].name),
                    )
                }
                Some(_) if current.is_none() && settling => (
                    None,
                    "waiting for the startup settle time: not every configured node has joined"
                        .into(),
                ),
                Some((b, bs)) => {
                    let why = match current {
                        Some((_, cs)) => format!(
                            "{} elected: primary {} is not eligible ({})",
                            bs.name,
                            cs.name,
                            why_not(cs)
                        ),
                        None => format!(
                            "{} elected: freshest data ({}), priority {}",
                            bs.name, bs.fresh, bs.priority
                        ),
                    };
                    if params.promotion_delay && current.is_none() {
                        if let Some((primary, epoch)) = vanished {
                            let hold = Hold::PromotionDelay { primary, epoch };
                            if !view.released.contains(&hold) {
                                wait = Some(hold);
                            }
                        }
                    }
                    (Some(*b), why)
                }
            }
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
    let need = view
        .states
        .values()
        .map(|s| s.fresh.max(s.known_fresh))
        .max()
        .unwrap_or_default();
    view.states
        .iter()
        .filter(|(n, s)| {
            Some(**n) != exclude && s.eligible() && !view.standby(**n, s) && s.fresh >= need
        })
        .max_by_key(|(n, s)| rank(**n, s))
        .map(|(n, _)| *n)
}

/// Failback: a node of higher priority, in sync with the current primary,
/// takes over immediately or after a stable period.
fn failback(
    view: &View,
    params: ElectParams,
    c: NodeId,
    cs: &NodeState,
    need: Fresh,
    wait: &mut Option<Hold>,
) -> Option<(NodeId, String)> {
    if params.failback == Failback::Never {
        return None;
    }
    let (b, bs) = view
        .states
        .iter()
        .filter(|(n, s)| {
            **n != c
                && s.eligible()
                && !view.standby(**n, s)
                && s.fresh >= need
                && s.priority > cs.priority
                && s.role == Some(HaRole::Secondary)
                && s.parent == Some(c)
                && s.role_epoch == cs.role_epoch
                && s.initialized
        })
        .max_by_key(|(n, s)| (s.priority, std::cmp::Reverse(**n)))?;
    let why = format!(
        "failback to {} (priority {} > {})",
        bs.name, bs.priority, cs.priority
    );
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

fn why_not(s: &NodeState) -> String {
    if s.leaving {
        "stopping".into()
    } else if s.standby {
        "standby".into()
    } else if !s.can_primary {
        "can_primary = false".into()
    } else {
        format!("NSO/ConfD {:?}", s.health).to_lowercase()
    }
}

fn no_candidate_reason(view: &View, need: Fresh) -> String {
    let mut parts: Vec<String> = view
        .states
        .values()
        .filter(|s| s.can_primary)
        .map(|s| {
            if s.eligible() && s.fresh < need {
                format!("{} is behind ({} < {})", s.name, s.fresh, need)
            } else {
                format!("{}: {}", s.name, why_not(s))
            }
        })
        .collect();
    parts.sort();
    format!("no eligible up-to-date node: {}", parts.join(", "))
}
