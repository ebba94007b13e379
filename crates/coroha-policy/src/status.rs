//! What `coroha status` shows: this node's view of every configured node,
//! members of the group or not, and what the operator must do when the
//! cluster waits for them. The JSON form (`coroha status --json`) is an
//! interface: lowercase names throughout, nodes by name.

use crate::cluster::{NodeId, RingId};
use crate::elect::Target;
use crate::freshness::{self, DataState};
use crate::message::Health;
use crate::timers::OrphanFence;
use crate::Policy;
use confd_ha::HaRole;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A snapshot of the policy for operators (`coroha status`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    #[serde(with = "role_name")]
    pub role: Option<HaRole>,
    pub epoch: u64,
    pub max_epoch: u64,
    #[serde(with = "health_name")]
    pub health: Health,
    pub parent: Option<String>,
    pub standby: bool,
    /// The view is stable and quorate: this node may act.
    pub quorate: bool,
    pub ring: Option<RingId>,
    /// The plan's primary; none while this node is not quorate (what it
    /// planned before is no longer news).
    pub primary: Option<String>,
    /// Why the plan is what it is.
    pub plan: Option<String>,
    /// The HA order in flight.
    pub pending: Option<String>,
    /// An order that keeps failing, and why (a wrong HA token, a server
    /// that refuses): tried again with back-off until it succeeds.
    #[serde(default)]
    pub failing: Option<String>,
    pub stopping: bool,
    /// The local NSO/ConfD may acknowledge commits: primary, with the
    /// lease held and the view quorate (design §13). Every other node is
    /// read-only.
    #[serde(default)]
    pub writable: bool,
    /// The cluster is paused (`coroha pause`): no role changes.
    #[serde(default)]
    pub paused: bool,
    /// The generation of the last pause or resume heard of: a request
    /// writes the next one, and is in effect once it is shown here.
    #[serde(default)]
    pub pause_gen: u64,
    pub members: Vec<MemberStatus>,
    /// Every configured node that is not a member of the group here.
    #[serde(default)]
    pub absent: Vec<AbsentNode>,
    /// What the cluster waits for the operator to do.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// One coroha daemon of the view, as it announced itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub name: String,
    #[serde(with = "role_name")]
    pub role: Option<HaRole>,
    pub epoch: u64,
    pub parent: Option<String>,
    #[serde(with = "health_name")]
    pub health: Health,
    pub standby: bool,
    pub leaving: bool,
    /// CDB transaction id of its data as it last announced it, or as its
    /// primary vouches for it.
    #[serde(default)]
    pub txid: Option<confd_ha::TxStamp>,
    /// Its data against the freshest anybody announced (design §6).
    #[serde(default = "unknown_data")]
    pub data: DataState,
    /// An order to its NSO/ConfD that keeps failing, and why.
    #[serde(default)]
    pub failing: Option<String>,
    /// How long it has been in its role, as far as this daemon has seen
    /// (at most since this daemon started), in milliseconds.
    #[serde(default)]
    pub role_for_ms: Option<u64>,
}

fn unknown_data() -> DataState {
    DataState::Unknown
}

/// A configured node whose coroha is not in the group here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsentNode {
    pub id: NodeId,
    pub name: String,
    pub presence: Presence,
    /// It was the primary when its coroha left: its NSO/ConfD may still
    /// serve (an orphan), at this epoch.
    #[serde(default)]
    pub orphaned_primary: Option<u64>,
}

/// Where an absent node is, as far as this node can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Its node is in the quorate ring, its coroha is not in the group:
    /// stopped, killed, or stopped for maintenance.
    CorohaStopped,
    /// Its node is not in the quorate ring: down, or cut off.
    Offline,
    /// This node is not quorate: it cannot tell.
    Unknown,
}

impl Presence {
    pub fn name(self) -> &'static str {
        match self {
            Presence::CorohaStopped => "coroha stopped",
            Presence::Offline => "offline",
            Presence::Unknown => "unknown",
        }
    }
}

/// What a load balancer or a monitor asks of a node over HTTP (`GET
/// /primary`, ...), in the manner of Patroni's REST API: the answer is
/// yes (200) or no (503, with the reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Send writes here: the writable primary of a quorate view, its
    /// NSO/ConfD healthy, not stopping.
    Primary,
    /// Send reads here: an NSO/ConfD attached as secondary to the current
    /// primary, in sync with it.
    Secondary,
    /// The daemon runs and its NSO/ConfD answers.
    Health,
    /// The node plays the part the plan gives it: the primary, or a
    /// secondary of the primary.
    Readiness,
}

impl Status {
    /// This node's answer to `probe`: `Err` says why not.
    pub fn probe(&self, probe: Probe) -> Result<(), String> {
        let healthy = || match self.health {
            Health::Ok => Ok(()),
            other => Err(format!("NSO/ConfD is {}", health_name::name(other))),
        };
        let role = self.role.map_or("unknown", HaRole::name);
        let primary = || -> Result<(), String> {
            healthy()?;
            if self.role != Some(HaRole::Primary) {
                return Err(format!("role {role}"));
            }
            if self.stopping {
                return Err("stopping".into());
            }
            if !self.writable {
                return Err("primary without quorum or lease: read-only".into());
            }
            Ok(())
        };
        let secondary = || -> Result<(), String> {
            healthy()?;
            if self.role != Some(HaRole::Secondary) {
                return Err(format!("role {role}"));
            }
            let Some(current) = self.primary.as_ref() else {
                return Err("no primary in a quorate view".into());
            };
            if self.parent.as_ref() != Some(current) {
                let parent = self.parent.as_deref().unwrap_or("nobody");
                return Err(format!("attached to {parent}, not to primary {current}"));
            }
            match self.members.iter().find(|m| m.name == self.node) {
                Some(me) if me.data == DataState::InSync => Ok(()),
                // Behind, diverged, or not yet known.
                Some(me) => Err(format!("data {}", format!("{:?}", me.data).to_lowercase())),
                None => Err("not in the group".into()),
            }
        };
        match probe {
            Probe::Primary => primary(),
            Probe::Secondary => secondary(),
            Probe::Health => healthy(),
            Probe::Readiness => primary().or_else(|_| secondary()).map_err(|_| {
                format!(
                    "neither the primary nor its secondary: role {role}, primary {}",
                    self.primary.as_deref().unwrap_or("none")
                )
            }),
        }
    }
}

/// Something the cluster waits for the operator to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// An orphaned primary's node left the ring and no `fence_node` hook
    /// is configured: only the operator can say its NSO/ConfD is down.
    ConfirmDown { node: String },
    /// The `fence_node` hook against an orphaned primary keeps failing.
    FenceFailing { node: String },
    /// A member runs a different node table or policy: these parts
    /// differ (empty when it does not say, an older coroha).
    ConfigDiffers { node: String, parts: Vec<String> },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::ConfirmDown { node } => write!(
                f,
                "orphaned primary {node} left the ring and nothing shows whether its NSO/ConfD \
                 still serves: once you know it is down, run `coroha confirm-down {node}`"
            ),
            Action::FenceFailing { node } => write!(
                f,
                "the fence_node hook against orphaned primary {node} keeps failing: fix it, or \
                 once you know {node}'s NSO/ConfD is down, run `coroha confirm-down {node}`"
            ),
            Action::ConfigDiffers { node, parts } if parts.is_empty() => write!(
                f,
                "{node} runs a different node table or policy: make coroha.toml the same on \
                 every node"
            ),
            Action::ConfigDiffers { node, parts } => write!(
                f,
                "{node} runs a different configuration ({} differ from this node's): make \
                 coroha.toml the same on every node",
                parts.join(", ")
            ),
        }
    }
}

impl Policy {
    /// What this node knows, for `coroha status` and the metrics.
    pub fn status(&self) -> Status {
        let brief = self.brief();
        // This node's own entry shows the id it read last, not the one it
        // last announced: while a primary stays, its new ids travel only
        // with its heartbeats, which leave its own entry as announced
        // (writability compares the two). Its secondaries are vouched for
        // at that id too.
        let mut states = self.view.states.clone();
        if let (Some(me), Some(read)) = (states.get_mut(&self.cfg.me), self.announced_txid()) {
            if me.txid < Some(read) {
                me.txid = Some(read);
            }
        }
        let members = states
            .iter()
            .map(|(id, s)| (id, s, freshness::data_of(&states, *id)))
            .map(|(id, s, (data, txid))| MemberStatus {
                id: *id,
                name: s.name.to_string(),
                role: s.role,
                epoch: s.role_epoch,
                parent: s.parent.map(|p| self.name(p)),
                health: s.health,
                standby: s.standby,
                leaving: s.leaving,
                txid,
                data,
                failing: s.failing.clone(),
                role_for_ms: self
                    .role_seen
                    .get(id)
                    .filter(|(role, _)| *role == s.role)
                    .map(|(_, at)| self.last_step_at.saturating_sub(*at)),
            })
            .collect();
        Status {
            node: self.name(self.cfg.me),
            role: brief.role,
            epoch: brief.epoch,
            max_epoch: self.persisted.max_epoch,
            health: self.local.health,
            parent: self.local.role.parent().map(|p| self.name(p)),
            standby: self.persisted.standby,
            quorate: brief.quorate,
            ring: self.quorum.vq_ring,
            primary: brief
                .primary
                .filter(|_| brief.quorate)
                .map(|n| self.name(n)),
            plan: self.plan.as_ref().map(|p| p.cause.to_string()),
            pending: self.pending.as_ref().map(|p| p.order.verb().to_string()),
            failing: self.failing.as_ref().map(ToString::to_string),
            stopping: self.leaving.is_some(),
            writable: self.writable(self.last_step_at),
            paused: self.paused(),
            pause_gen: self.persisted.pause.gen,
            members,
            absent: self.absent_nodes(),
            actions: self.actions_needed(),
        }
    }

    fn absent_nodes(&self) -> Vec<AbsentNode> {
        let quorate = self.quorum.stable();
        let orphan = self
            .known_primary()
            .filter(|k| !self.view.is_member(k.node));
        self.cfg
            .nodes
            .iter()
            .filter(|n| !self.view.states.contains_key(&n.id) && n.id != self.cfg.me)
            .map(|n| AbsentNode {
                id: n.id,
                name: n.name.to_string(),
                presence: if !quorate {
                    Presence::Unknown
                } else if self.quorum.ring_members.contains(&n.id) {
                    Presence::CorohaStopped
                } else {
                    Presence::Offline
                },
                orphaned_primary: orphan.filter(|k| k.node == n.id).map(|k| k.epoch),
            })
            .collect()
    }

    fn actions_needed(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.quorum.stable() {
            return actions;
        }
        let orphan = match self.plan.as_ref().and_then(|p| p.target.as_ref()) {
            Some(Target::Orphan(k)) if !self.quorum.ring_members.contains(&k.node) => Some(k),
            _ => None,
        };
        if let Some(k) = orphan {
            let node = k.name.to_string();
            match self.orphan_fence {
                Some(OrphanFence::RetryAt { node: n, .. }) if n == k.node => {
                    actions.push(Action::FenceFailing { node })
                }
                _ if !self.cfg.fence_node => actions.push(Action::ConfirmDown { node }),
                _ => {}
            }
        }
        for s in self.view.states.values() {
            if s.config_digest != self.cfg.digest {
                actions.push(Action::ConfigDiffers {
                    node: s.name.to_string(),
                    parts: differing_parts(&self.cfg.digest_parts, &s.config_parts),
                });
            }
        }
        actions
    }
}

/// The parts of two configurations whose digests differ, or that only
/// one of them has, in this node's order.
fn differing_parts(mine: &[(Arc<str>, u64)], theirs: &[(Arc<str>, u64)]) -> Vec<String> {
    if theirs.is_empty() {
        return vec![];
    }
    let find = |parts: &[(Arc<str>, u64)], name: &str| {
        parts.iter().find(|(n, _)| &**n == name).map(|(_, d)| *d)
    };
    let mut out: Vec<String> = mine
        .iter()
        .filter(|(name, digest)| find(theirs, name) != Some(*digest))
        .map(|(name, _)| name.to_string())
        .collect();
    out.extend(
        theirs
            .iter()
            .filter(|(name, _)| find(mine, name).is_none())
            .map(|(name, _)| name.to_string()),
    );
    out
}

/// An HA role as operators, metrics and hooks name it: `primary`.
mod role_name {
    use confd_ha::HaRole;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(role: &Option<HaRole>, s: S) -> Result<S::Ok, S::Error> {
        match role {
            Some(r) => s.serialize_some(r.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HaRole>, D::Error> {
        let name: Option<String> = Option::deserialize(d)?;
        name.map(|n| {
            [
                HaRole::None,
                HaRole::Secondary,
                HaRole::Primary,
                HaRole::Relay,
            ]
            .into_iter()
            .find(|r| r.name() == n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown role {n:?}")))
        })
        .transpose()
    }
}

/// The local NSO/ConfD's health in lowercase: `ok`, `hung`.
mod health_name {
    use crate::message::Health;
    use serde::{Deserialize, Deserializer, Serializer};

    const ALL: [Health; 6] = [
        Health::Starting,
        Health::Ok,
        Health::Down,
        Health::Hung,
        Health::Refusing,
        Health::Fenced,
    ];

    pub fn name(h: Health) -> String {
        format!("{h:?}").to_lowercase()
    }

    pub fn serialize<S: Serializer>(h: &Health, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&name(*h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Health, D::Error> {
        let text = String::deserialize(d)?;
        ALL.into_iter()
            .find(|h| name(*h) == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown health {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, u64)]) -> Vec<(Arc<str>, u64)> {
        list.iter().map(|(n, d)| (Arc::from(*n), *d)).collect()
    }

    #[test]
    fn what_differs_is_named_part_by_part() {
        let mine = parts(&[("[[node]] n1", 1), ("[[node]] n2", 2), ("[policy]", 3)]);
        let theirs = parts(&[
            ("[[node]] n1", 1),
            ("[[node]] n2", 9),
            ("[[node]] n4", 4),
            ("[policy]", 3),
        ]);
        assert_eq!(
            differing_parts(&mine, &theirs),
            vec!["[[node]] n2".to_string(), "[[node]] n4".to_string()]
        );
        // An older coroha says nothing of its parts: nothing is named.
        assert!(differing_parts(&mine, &[]).is_empty());
    }
}
