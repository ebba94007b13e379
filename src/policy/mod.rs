//! The election policy: a pure state machine. `step(now, input)` consumes a
//! corosync event, an HA reply or event, a timer or an operator request, and
//! returns what to do (multicast, HA order, persist, hook, log). No I/O, no
//! clock, no async: `now` is milliseconds on any monotonic clock.
//!
//! Each daemon announces its state after every CPG configuration change and
//! after every change of its own state. Once a member has delivered an
//! announcement from every member of the current configuration it runs
//! [`elect::elect`]; everybody computes the same plan and acts only on its
//! own NSO/ConfD, gated on a quorate, stable view.

pub mod elect;
pub mod message;

use crate::cluster::{ClusterEvent, Member, NodeId, Reason, RingId};
use crate::config::{fnv1a, Config, Failback, QuorumLossAction};
use crate::ha::{HaEvent, HaFailure, HaOrder, HaReply, HaRole};
use elect::{elect, ElectParams, Plan, Target, View};
use message::{Body, Envelope, Fresh, Health, Hold, KnownPrimary, NodeState, Request};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What survives a restart of the daemon (written and fsynced by the I/O
/// edge before the order that follows it is sent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    pub max_epoch: u64,
    pub role_epoch: u64,
    pub fresh: Fresh,
    pub known_fresh: Fresh,
    pub standby: bool,
    /// Primary: the secondaries attached and the sync generation, so that a
    /// restarted daemon notices a secondary that dropped out meanwhile.
    #[serde(default)]
    pub attached: Vec<NodeId>,
    #[serde(default)]
    pub gen: u64,
    /// 0 while in sync; otherwise the order in which this node lost sync
    /// with its primary among nodes of equal freshness (later is fresher).
    #[serde(default)]
    pub sync_loss: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    Switchover {
        to: Option<String>,
    },
    Standby {
        node: String,
        on: bool,
    },
    /// SIGTERM (`handover`: move the primary role away first) or a
    /// maintenance stop that leaves every role as it is.
    Stop {
        handover: bool,
    },
    /// The operator vouches that the orphaned primary's NSO/ConfD is down
    /// (like Pacemaker's manual fencing confirmation).
    ConfirmDown {
        node: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Cluster(ClusterEvent),
    HaReply {
        id: u64,
        result: Result<HaReply, HaFailure>,
    },
    HaEvent(HaEvent),
    FenceDone {
        ok: bool,
    },
    Operator(Operator),
    /// A deadline from [`Policy::next_deadline`] has passed.
    Timer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    Multicast(Vec<u8>),
    Order {
        id: u64,
        order: HaOrder,
    },
    Persist(Persisted),
    /// Run the fence hook; answer with `Input::FenceDone`.
    Fence,
    /// The local NSO/ConfD changed role (run the role hook). Every role
    /// change carries its cause (invariant I4).
    RoleChanged {
        from: Option<HaRole>,
        to: HaRole,
        cause: String,
    },
    Log {
        level: Level,
        text: String,
    },
    /// Orderly stop finished: leave the CPG group and exit.
    Leave,
}

/// See [`Policy::brief`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Brief {
    pub role: Option<HaRole>,
    pub epoch: u64,
    pub quorate: bool,
    /// The plan's primary.
    pub primary: Option<NodeId>,
}

/// A snapshot of the policy for operators (`coroha status`).
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub node: String,
    pub role: Option<HaRole>,
    pub epoch: u64,
    pub max_epoch: u64,
    pub health: Health,
    pub parent: Option<String>,
    pub standby: bool,
    /// The view is stable and quorate: this node may act.
    pub quorate: bool,
    pub ring: Option<RingId>,
    /// The plan's primary.
    pub primary: Option<String>,
    /// Why the plan is what it is.
    pub plan: Option<String>,
    /// The HA order in flight.
    pub pending: Option<String>,
    pub stopping: bool,
    pub members: Vec<MemberStatus>,
}

/// One coroha daemon of the view, as it announced itself.
#[derive(Clone, Debug, Serialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub name: String,
    pub role: Option<HaRole>,
    pub epoch: u64,
    pub parent: Option<String>,
    pub health: Health,
    pub standby: bool,
    pub leaving: bool,
}

/// The static inputs of the policy, taken from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub me: NodeId,
    pub nodes: Vec<crate::config::NodeConfig>,
    pub failback: Failback,
    pub on_quorum_loss: QuorumLossAction,
    pub startup_settle: u64,
    pub promotion_delay: u64,
    pub orphan_grace: u64,
    pub secondary_dead: bool,
    pub fence_hung_primary: bool,
    /// A fence hook is configured: the escalation when demotion fails.
    pub has_fence: bool,
    pub handover_timeout: u64,
    pub max_order_failures: u32,
    pub status_interval: u64,
    pub retry_interval: u64,
    pub digest: u64,
}

impl Settings {
    pub fn from_config(config: &Config, me: NodeId) -> Settings {
        let p = &config.policy;
        Settings {
            me,
            nodes: config.nodes.iter().map(|n| n.get_ref().clone()).collect(),
            failback: p.failback,
            on_quorum_loss: p.on_quorum_loss,
            startup_settle: p.startup_settle.as_ms(),
            promotion_delay: p.promotion_delay.as_ms(),
            orphan_grace: p.orphan_grace.as_ms(),
            secondary_dead: p.secondary_dead,
            fence_hung_primary: p.fence_hung_primary,
            has_fence: !config.hooks.fence.is_empty(),
            handover_timeout: p.handover_timeout.as_ms(),
            max_order_failures: p.max_order_failures.max(1),
            status_interval: config.ha.status_interval.as_ms().max(1),
            // Back-off before an order that failed is given again.
            retry_interval: 1000,
            digest: config.digest(),
        }
    }

    fn node(&self, id: NodeId) -> Option<&crate::config::NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn name(&self, id: NodeId) -> String {
        self.node(id)
            .map_or_else(|| format!("node{id}"), |n| n.name.clone())
    }

    fn id_of(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().find(|n| n.name == name).map(|n| n.id)
    }
}

/// What the local NSO/ConfD is doing, as far as this daemon knows.
#[derive(Clone, Debug)]
struct Local {
    role: Option<HaRole>,
    promoting: Option<u64>,
    role_epoch: u64,
    parent: Option<NodeId>,
    initialized: bool,
    health: Health,
    attached: BTreeSet<NodeId>,
    gen: u64,
    failures: u32,
}

/// The order in flight (one at a time, like the server processes them).
#[derive(Clone, Debug)]
struct Pending {
    id: u64,
    /// max_epoch before this order: announced until a promotion completes,
    /// so the plan's epoch does not move under an order in flight.
    prev_max_epoch: u64,
    order: HaOrder,
    epoch: u64,
    parent: Option<NodeId>,
    cause: String,
}

/// What the corosync connection has told us in this session.
#[derive(Clone, Debug, Default)]
struct Quorum {
    connected: bool,
    /// The connection was lost (not merely not yet made).
    lost_connection: bool,
    local: Option<Member>,
    vq_ring: Option<RingId>,
    ring_members: Vec<NodeId>,
    /// The quorum flag and the node-list ring it belongs to.
    quorate: Option<(RingId, bool)>,
    /// Votes quorum needs (one per node).
    needed: u32,
    totem: Option<RingId>,
}

impl Quorum {
    /// Safety rule 1: quorate, for the current ring, on both fds.
    fn stable(&self) -> bool {
        match (self.connected, self.vq_ring, self.quorate) {
            (true, Some(ring), Some((qring, true))) => {
                qring == ring && self.totem.map_or(true, |t| t == ring)
            }
            _ => false,
        }
    }

    /// Explicitly not quorate (not merely waiting for a notification).
    fn lost(&self) -> bool {
        self.lost_connection
            || matches!((self.vq_ring, self.quorate), (Some(r), Some((q, false))) if q == r)
    }
}

/// Safety rules switched off on purpose, only to prove that the simulator's
/// invariant checks can fail. Never set outside tests.
#[derive(Clone, Copy, Debug, Default)]
struct Sabotage {
    skip_quorum_gate: bool,
    skip_demote_first: bool,
}

pub struct Policy {
    cfg: Settings,
    persisted: Persisted,
    /// What the I/O edge last wrote to disk.
    written: Persisted,
    local: Local,
    quorum: Quorum,
    view: View,
    plan: Option<Plan>,
    known_primary: Option<KnownPrimary>,
    vanished: Option<(NodeId, u64)>,
    last_announced: Option<NodeState>,
    pending: Option<Pending>,
    next_id: u64,
    started_at: Option<u64>,
    status_at: u64,
    retry_at: u64,
    /// The order that failed last: it is not repeated before `retry_at`.
    failed_order: Option<HaOrder>,
    hold_timer: Option<(Hold, u64)>,
    leaving: Option<(bool, u64)>,
    fence_running: bool,
    last_step_at: u64,
    sabotage: Sabotage,
    /// Lost this primary (node, epoch): do not attach to it again until its
    /// coroha shows it is alive, so a dead primary does not hold up the
    /// order pipeline while corosync has not yet noticed.
    reattach_block: Option<(NodeId, u64)>,
    secondary_dead_sent: BTreeSet<NodeId>,
    gone_reported: BTreeSet<(NodeId, u64)>,
    out: Vec<Output>,
}

impl Policy {
    pub fn new(cfg: Settings, persisted: Persisted) -> Policy {
        let local = Local {
            role: None,
            promoting: None,
            role_epoch: persisted.role_epoch,
            parent: None,
            initialized: false,
            health: Health::Starting,
            attached: BTreeSet::new(),
            gen: 0,
            failures: 0,
        };
        Policy {
            cfg,
            written: persisted.clone(),
            persisted,
            local,
            quorum: Quorum::default(),
            view: View::default(),
            plan: None,
            known_primary: None,
            vanished: None,
            last_announced: None,
            pending: None,
            next_id: 1,
            started_at: None,
            status_at: 0,
            retry_at: 0,
            failed_order: None,
            hold_timer: None,
            leaving: None,
            fence_running: false,
            last_step_at: 0,
            sabotage: Sabotage::default(),
            reattach_block: None,
            secondary_dead_sent: BTreeSet::new(),
            gone_reported: BTreeSet::new(),
            out: Vec::new(),
        }
    }

    #[doc(hidden)]
    pub fn sabotage_skip_quorum_gate(&mut self) {
        self.sabotage.skip_quorum_gate = true;
    }

    #[doc(hidden)]
    pub fn sabotage_skip_demote_first(&mut self) {
        self.sabotage.skip_demote_first = true;
    }

    pub fn role(&self) -> Option<HaRole> {
        self.local.role
    }

    pub fn persisted(&self) -> &Persisted {
        &self.persisted
    }

    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// Take new settings (a SIGHUP reload). The caller keeps what cannot
    /// change without a restart (this node, the node names, ids and
    /// addresses); changed priorities and flags are announced at the next
    /// step.
    pub fn reload(&mut self, cfg: Settings) {
        debug_assert_eq!(cfg.me, self.cfg.me);
        self.cfg = cfg;
    }

    /// The few facts the daemon reports after every step (systemd
    /// STATUS, hook environment); cheap, unlike [`Policy::status`].
    pub fn brief(&self) -> Brief {
        Brief {
            role: self.local.role,
            epoch: self.local.role_epoch,
            quorate: self.quorum.stable(),
            primary: self
                .plan
                .as_ref()
                .and_then(|p| p.target.as_ref())
                .map(Target::node),
        }
    }

    /// What this node knows, for `coroha status` and the metrics.
    pub fn status(&self) -> Status {
        let brief = self.brief();
        let members = self
            .view
            .states
            .iter()
            .map(|(id, s)| MemberStatus {
                id: *id,
                name: s.name.clone(),
                role: s.role,
                epoch: s.role_epoch,
                parent: s.parent.map(|p| self.name(p)),
                health: s.health,
                standby: s.standby,
                leaving: s.leaving,
            })
            .collect();
        Status {
            node: self.name(self.cfg.me),
            role: brief.role,
            epoch: brief.epoch,
            max_epoch: self.persisted.max_epoch,
            health: self.local.health,
            parent: self.local.parent.map(|p| self.name(p)),
            standby: self.persisted.standby,
            quorate: brief.quorate,
            ring: self.quorum.vq_ring,
            primary: brief.primary.map(|n| self.name(n)),
            plan: self.plan.as_ref().map(|p| p.cause.clone()),
            pending: self.pending.as_ref().map(|p| p.order.verb().to_string()),
            stopping: self.leaving.is_some(),
            members,
        }
    }

    /// An orderly stop is in progress.
    pub fn stopping(&self) -> bool {
        self.leaving.is_some()
    }

    /// The earliest time at which `step(_, Input::Timer)` has work to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut deadlines = vec![];
        if self.pending.is_none() {
            deadlines.push(self.status_at);
            if self.retry_at > 0 {
                deadlines.push(self.retry_at);
            }
        }
        if let Some((_, at)) = self.hold_timer.as_ref().filter(|(_, at)| *at != u64::MAX) {
            deadlines.push(*at);
        }
        if let (Some(start), true) = (self.started_at, self.settling_flag()) {
            deadlines.push(start + self.cfg.startup_settle);
        }
        if let Some((true, at)) = self.leaving.filter(|(_, at)| *at != u64::MAX) {
            deadlines.push(at);
        }
        // A deadline already past was not acted on because something else
        // blocks it; the next input re-evaluates it.
        deadlines
            .into_iter()
            .filter(|d| *d > self.last_step_at)
            .min()
    }

    pub fn step(&mut self, now: u64, input: Input) -> Vec<Output> {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        match input {
            Input::Cluster(ev) => self.on_cluster(ev),
            Input::HaReply { id, result } => self.on_reply(now, id, result),
            Input::HaEvent(ev) => self.on_ha_event(ev),
            Input::FenceDone { ok } => self.on_fence_done(ok),
            Input::Operator(op) => self.on_operator(now, op),
            Input::Timer => self.on_timer(now),
        }
        self.claim_fresh();
        self.announce_if_changed();
        let promoting = self.local.promoting;
        self.act(now);
        // Acting may have changed what we announce (an intent to promote).
        if self.local.promoting != promoting {
            self.announce_if_changed();
        }
        self.flush_persisted();
        std::mem::take(&mut self.out)
    }

    // ----- logging helpers -------------------------------------------------

    fn log(&mut self, level: Level, text: impl Into<String>) {
        self.out.push(Output::Log {
            level,
            text: text.into(),
        });
    }

    fn name(&self, id: NodeId) -> String {
        self.cfg.name(id)
    }

    // ----- corosync --------------------------------------------------------

    fn on_cluster(&mut self, ev: ClusterEvent) {
        match ev {
            ClusterEvent::Connected { local } => {
                self.quorum = Quorum {
                    connected: true,
                    local: Some(local),
                    ..Quorum::default()
                };
                self.view = View::default();
                self.plan = None;
                self.log(
                    Level::Info,
                    format!("connected to corosync as {}/{}", local.node, local.pid),
                );
            }
            ClusterEvent::Disconnected => {
                let text = if self.quorum.connected {
                    "corosync connection lost: not quorate until it is back"
                } else {
                    "corosync is not reachable: not quorate until it is"
                };
                self.quorum = Quorum {
                    lost_connection: true,
                    ..Quorum::default()
                };
                self.view = View::default();
                self.plan = None;
                self.hold_timer = None;
                self.log(Level::Warn, text);
            }
            ClusterEvent::CpgConfChg {
                members,
                left,
                joined,
            } => self.on_confchg(members, left, joined),
            ClusterEvent::CpgTotem { ring, members } => {
                self.quorum.totem = Some(ring);
                self.quorum.ring_members = members.clone();
                self.on_ring_left(&members);
            }
            ClusterEvent::Deliver { sender, data } => self.on_deliver(sender, &data),
            ClusterEvent::QuorumNodes { ring, members } => {
                self.quorum.vq_ring = Some(ring);
                self.quorum.ring_members = members;
            }
            ClusterEvent::Quorum { quorate, needed } => {
                self.quorum.needed = needed;
                if let Some(ring) = self.quorum.vq_ring {
                    let was = self.quorum.quorate.map(|(_, q)| q);
                    self.quorum.quorate = Some((ring, quorate));
                    if was != Some(quorate) {
                        let text = if quorate { "quorate" } else { "not quorate" };
                        self.log(Level::Info, format!("ring {ring}: {text}"));
                    }
                }
            }
        }
    }

    fn on_confchg(
        &mut self,
        members: Vec<Member>,
        left: Vec<(Member, Reason)>,
        joined: Vec<(Member, Reason)>,
    ) {
        // A node that went down is out of the ring already; the totem
        // callback that says so follows on the same fd.
        for (m, reason) in &left {
            if *reason == Reason::NodeDown {
                self.quorum.ring_members.retain(|n| *n != m.node);
            }
        }
        for (m, reason) in &left {
            if self
                .known_primary
                .as_ref()
                .is_some_and(|k| k.node == m.node)
            {
                match reason {
                    Reason::NodeDown => self.forget_primary_unless(|n| n != m.node, "its node left the membership"),
                    _ => self.log(
                        Level::Warn,
                        format!("coroha on primary {} left ({reason:?}); its NSO/ConfD may still be primary", self.name(m.node)),
                    ),
                }
            }
        }
        let describe = |list: &[(Member, Reason)]| {
            list.iter()
                .map(|(m, r)| format!("{}:{r:?}", self.cfg.name(m.node)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text = format!(
            "configuration: {} members{}{}",
            members.len(),
            if left.is_empty() {
                String::new()
            } else {
                format!(", left {}", describe(&left))
            },
            if joined.is_empty() {
                String::new()
            } else {
                format!(", joined {}", describe(&joined))
            },
        );
        self.log(Level::Debug, text);
        let digest = members.iter().fold(fnv1a(b"view"), |h, m| {
            fnv1a(
                &[
                    h.to_le_bytes(),
                    u64::from(m.node).to_le_bytes(),
                    u64::from(m.pid).to_le_bytes(),
                ]
                .concat(),
            )
        });
        self.view = View {
            id: digest,
            members,
            ..View::default()
        };
        self.plan = None;
        self.hold_timer = None;
        // Announce in every new view, even when nothing changed locally.
        self.last_announced = None;
    }

    /// The known primary's node is not in the new ring. If its coroha was in
    /// the group until now, that coroha stops it on quorum loss, so it is
    /// gone. If its coroha had already left (an orphan), nothing tells
    /// whether its NSO/ConfD still serves: keep waiting for evidence.
    fn on_ring_left(&mut self, members: &[NodeId]) {
        let Some(k) = self.known_primary.clone() else {
            return;
        };
        if members.contains(&k.node) {
            return;
        }
        if self.view.is_member(k.node) {
            self.forget_primary_unless(|n| n != k.node, "its node left the ring");
        } else {
            self.log(
                Level::Warn,
                format!(
                    "orphaned primary {}: its node left the ring too; cannot tell whether its NSO/ConfD still serves: not promoting (start coroha there, or confirm it down)",
                    k.name
                ),
            );
        }
    }

    /// Clear the known primary when its node is gone from the ring: a
    /// partitioned or crashed primary is not an orphan to wait for.
    fn forget_primary_unless(&mut self, keep: impl Fn(NodeId) -> bool, why: &str) {
        if let Some(k) = self.known_primary.clone() {
            if !keep(k.node) {
                self.log(
                    Level::Info,
                    format!("primary {} (epoch {}) is gone: {why}", k.name, k.epoch),
                );
                self.vanished = Some((k.node, k.epoch));
                self.known_primary = None;
            }
        }
    }

    fn on_deliver(&mut self, sender: Member, data: &[u8]) {
        let envelope = match Envelope::decode(data) {
            Ok(e) => e,
            Err(e) => {
                self.log(
                    Level::Warn,
                    format!("ignored message from node {}: {e}", sender.node),
                );
                return;
            }
        };
        if envelope.view != self.view.id || !self.view.members.contains(&sender) {
            self.log(
                Level::Debug,
                format!(
                    "ignored message from {} for another view",
                    self.name(sender.node)
                ),
            );
            return;
        }
        match envelope.body {
            Body::Announce(state) => self.on_announce(sender.node, *state),
            Body::Request(r) => self.on_request(sender.node, r),
        }
        if self.view.complete() {
            self.replan();
        }
    }

    fn on_announce(&mut self, from: NodeId, state: NodeState) {
        if state.config_digest != self.cfg.digest && from != self.cfg.me {
            self.log(
                Level::Warn,
                format!(
                    "{} runs a different node table or policy (digest {:x})",
                    state.name, state.config_digest
                ),
            );
        }
        self.persisted.known_fresh = self
            .persisted
            .known_fresh
            .max(state.fresh)
            .max(state.known_fresh);
        if state.is_primary() {
            let newer = self
                .known_primary
                .as_ref()
                .map_or(true, |k| state.role_epoch >= k.epoch);
            if newer {
                self.known_primary = Some(KnownPrimary {
                    node: from,
                    epoch: state.role_epoch,
                    name: state.name.clone(),
                    address: state.address.clone(),
                });
                self.vanished = None;
            }
        } else if state.role.is_some()
            && self.known_primary.as_ref().is_some_and(|k| k.node == from)
        {
            self.known_primary = None;
        }
        // A primary listing us as attached confirms our copy is in sync.
        let me = self.cfg.me;
        if self.reattach_block.is_some_and(|(n, e)| {
            n == from && (state.role_epoch != e || !state.attached.contains(&me))
        }) {
            self.reattach_block = None;
        }
        if state.is_primary()
            && state.attached.contains(&me)
            && self.local.parent == Some(from)
            && self.local.role_epoch == state.role_epoch
            && self.local.initialized
        {
            self.persisted.fresh = self.persisted.fresh.max(Fresh {
                epoch: state.role_epoch,
                gen: state.gen,
            });
            self.persisted.sync_loss = 0;
        }
        self.view.states.insert(from, state);
    }

    fn on_request(&mut self, from: NodeId, request: Request) {
        let who = self.name(from);
        match request {
            Request::Switchover { to } => {
                // Resolve "the best other node" now, while the primary that
                // is to be replaced is known, so everybody holds one target.
                let current = self
                    .plan
                    .as_ref()
                    .and_then(|p| p.target.as_ref())
                    .map(Target::node);
                let target = to.or_else(|| elect::best_other(&self.view, current));
                match target {
                    Some(t) => {
                        let text = format!("switchover to {} requested by {who}", self.name(t));
                        self.log(Level::Info, text);
                        self.view.switchover = Some(t);
                    }
                    None => self.log(
                        Level::Warn,
                        format!("switchover requested by {who}: no other node can take over"),
                    ),
                }
            }
            Request::Standby { node, on } => {
                self.log(
                    Level::Info,
                    format!(
                        "standby {} for {} requested by {who}",
                        if on { "on" } else { "off" },
                        self.name(node)
                    ),
                );
                self.view.standby.insert(node, on);
                if node == self.cfg.me {
                    self.persisted.standby = on;
                }
            }
            Request::Release(hold) => {
                self.log(Level::Info, format!("{hold:?} elapsed"));
                if self.hold_timer.as_ref().is_some_and(|(h, _)| *h == hold) {
                    self.hold_timer = None;
                }
                self.view.released.insert(hold);
            }
            Request::PrimaryGone { node, epoch } => {
                self.log(
                    Level::Warn,
                    format!(
                        "{who} shows primary {} (epoch {epoch}) no longer serves",
                        self.name(node)
                    ),
                );
                self.view.gone.insert((node, epoch));
                if self
                    .known_primary
                    .as_ref()
                    .is_some_and(|k| k.node == node && k.epoch == epoch)
                {
                    self.known_primary = None;
                    self.vanished = Some((node, epoch));
                }
            }
        }
    }

    fn replan(&mut self) {
        let params = ElectParams {
            failback: self.cfg.failback,
            promotion_delay: self.cfg.promotion_delay > 0,
        };
        let plan = elect(&self.view, params);
        let changed = self.plan.as_ref().map_or(true, |p| {
            p.target != plan.target || p.epoch != plan.epoch || p.cause != plan.cause
        });
        if changed {
            let who = match &plan.target {
                Some(t) => format!("{} (epoch {})", self.name(t.node()), plan.epoch),
                None => "none".into(),
            };
            self.log(
                Level::Info,
                format!("decision: primary {who}: {}", plan.cause),
            );
        }
        if let Some(Target::Member(t)) = &plan.target {
            if self.view.switchover.is_some()
                && self
                    .view
                    .states
                    .get(t)
                    .is_some_and(|s| s.is_primary() && s.role_epoch == plan.epoch)
            {
                // The switchover is done once its target is primary.
                if self.plan.as_ref().is_some_and(|p| p.target == plan.target)
                    && plan.cause.ends_with("stays primary")
                {
                    self.view.switchover = None;
                }
            }
        }
        self.plan = Some(plan);
    }

    // ----- NSO/ConfD -------------------------------------------------------

    fn set_role(&mut self, role: HaRole, cause: &str) {
        let from = self.local.role;
        if from != Some(role) {
            self.out.push(Output::RoleChanged {
                from,
                to: role,
                cause: cause.to_string(),
            });
        }
        self.local.role = Some(role);
        if role != HaRole::Primary {
            self.local.attached.clear();
        }
        if !matches!(role, HaRole::Secondary | HaRole::Relay) {
            self.local.parent = None;
            self.local.initialized = false;
        }
    }

    fn set_health(&mut self, health: Health, why: &str) {
        if self.local.health != health {
            let level = match (self.local.health, health) {
                (Health::Starting, Health::Ok) => Level::Debug,
                (_, Health::Ok) => Level::Info,
                _ => Level::Warn,
            };
            self.log(
                level,
                format!(
                    "local NSO/ConfD health {:?} -> {health:?}: {why}",
                    self.local.health
                ),
            );
            self.local.health = health;
        }
    }

    fn on_reply(&mut self, now: u64, id: u64, result: Result<HaReply, HaFailure>) {
        let Some(p) = self.pending.take().filter(|p| p.id == id) else {
            self.log(Level::Warn, format!("reply to unknown order {id} ignored"));
            return;
        };
        match result {
            Ok(reply) => {
                if !matches!(p.order, HaOrder::GetStatus) {
                    self.local.failures = 0;
                    self.retry_at = 0;
                    self.failed_order = None;
                }
                if self.local.health != Health::Fenced || matches!(p.order, HaOrder::GetStatus) {
                    self.set_health(Health::Ok, "answered");
                }
                self.on_success(now, p, reply);
            }
            Err(failure) => self.on_failure(now, p, failure),
        }
    }

    fn on_success(&mut self, now: u64, p: Pending, reply: HaReply) {
        match (&p.order, reply) {
            (HaOrder::GetStatus, HaReply::Status { role, nodes }) => self.on_status(role, nodes),
            (HaOrder::BePrimary { .. }, _) => {
                self.local.promoting = None;
                self.local.role_epoch = p.epoch;
                self.local.gen = 0;
                self.local.attached.clear();
                self.persisted.sync_loss = 0;
                self.persisted.role_epoch = p.epoch;
                self.persisted.fresh = self.persisted.fresh.max(Fresh {
                    epoch: p.epoch,
                    gen: 0,
                });
                self.set_role(HaRole::Primary, &p.cause);
            }
            (HaOrder::BeSecondary { .. }, _) => {
                self.set_role(HaRole::Secondary, &p.cause);
                self.local.parent = p.parent;
                self.local.role_epoch = p.epoch;
                self.local.initialized = true;
                self.persisted.role_epoch = p.epoch;
                self.persisted.sync_loss = 0;
                self.adopt_fresh_from_parent();
            }
            (HaOrder::BeNone, _) => {
                self.set_role(HaRole::None, &p.cause);
                if self.leaving.is_some() {
                    self.log(Level::Info, "demoted for the handover");
                }
            }
            (HaOrder::BeRelay, _) => self.set_role(HaRole::Relay, &p.cause),
            (HaOrder::SecondaryDead { node }, _) => {
                // The server raises no SECONDARY_DIED for it: count it here.
                let node = node.clone();
                if let Some(id) = self.cfg.id_of(&node) {
                    if self.local.attached.remove(&id) {
                        self.bump_gen();
                    }
                }
                self.log(
                    Level::Info,
                    format!(
                        "told NSO/ConfD that secondary {node} is dead (sync generation {})",
                        self.local.gen
                    ),
                );
            }
            (HaOrder::GetStatus, HaReply::Ok) => {}
        }
        self.status_at = self.status_at.max(now + self.cfg.status_interval);
    }

    /// A secondary dropped out: from now on only the primary and the
    /// secondaries still attached have every write.
    fn bump_gen(&mut self) {
        self.local.gen += 1;
        self.persist_attachment();
    }

    /// The primary's claim to the freshest data follows its sync generation
    /// only while it is quorate: only then can it acknowledge a write that
    /// invariant I2 protects, and outside quorum it is about to step down.
    fn claim_fresh(&mut self) {
        if self.local.role == Some(HaRole::Primary)
            && self.quorum.stable()
            && !self.coroha_minority()
        {
            let fresh = Fresh {
                epoch: self.local.role_epoch,
                gen: self.local.gen,
            };
            self.persisted.fresh = self.persisted.fresh.max(fresh);
        }
    }

    fn persist_attachment(&mut self) {
        let attached: Vec<NodeId> = self.local.attached.iter().copied().collect();
        if self.persisted.attached != attached || self.persisted.gen != self.local.gen {
            self.persisted.attached = attached;
            self.persisted.gen = self.local.gen;
        }
    }

    /// The local copy stopped following a primary that, as far as the
    /// delivered state shows, still serves: it may fall behind.
    fn note_sync_lost(&mut self, why: &str) {
        let (Some(parent), true) = (
            self.local.parent,
            matches!(self.local.role, Some(HaRole::Secondary | HaRole::Relay)),
        ) else {
            return;
        };
        let epoch = self.local.role_epoch;
        let member_serving =
            self.view.is_member(parent)
                && self.view.states.get(&parent).is_some_and(|s| {
                    s.is_primary() && s.health == Health::Ok && s.role_epoch == epoch
                });
        // An orphaned primary (its coroha gone) may serve the others still.
        let orphan_serving = !self.view.is_member(parent)
            && self.plan.as_ref().is_some_and(|p| matches!(&p.target, Some(Target::Orphan(k)) if k.node == parent && k.epoch == epoch));
        // A primary that the plan replaces steps down on purpose: no loss.
        let replaced = self
            .plan
            .as_ref()
            .is_some_and(|p| p.target.as_ref().map(Target::node) != Some(parent));
        let serving = (member_serving || orphan_serving) && !replaced;
        if serving && self.persisted.sync_loss == 0 {
            let fresh = self.persisted.fresh;
            let seen = self
                .view
                .states
                .values()
                .filter(|s| s.fresh == fresh)
                .map(|s| s.sync_loss)
                .max()
                .unwrap_or(0);
            self.persisted.sync_loss = seen + 1;
            let text = format!(
                "no longer in sync with primary {} ({why}; loss #{})",
                self.name(parent),
                seen + 1
            );
            self.log(Level::Info, text);
        }
    }

    /// A freshly attached secondary may already be listed by its primary.
    fn adopt_fresh_from_parent(&mut self) {
        if let Some(parent) = self.local.parent {
            if let Some(ps) = self.view.states.get(&parent) {
                if ps.is_primary()
                    && ps.role_epoch == self.local.role_epoch
                    && ps.attached.contains(&self.cfg.me)
                {
                    self.persisted.fresh = self.persisted.fresh.max(Fresh {
                        epoch: ps.role_epoch,
                        gen: ps.gen,
                    });
                }
            }
        }
    }

    fn on_status(&mut self, role: HaRole, nodes: Vec<String>) {
        let ids: Vec<NodeId> = nodes.iter().filter_map(|n| self.cfg.id_of(n)).collect();
        match (self.local.role, role) {
            (None, _) => {
                // Restart adoption (rule 8): take over the role the server has.
                let text = format!(
                    "adopting existing role {} (epoch {})",
                    role.name(),
                    self.persisted.role_epoch
                );
                let level = if role == HaRole::None {
                    Level::Debug
                } else {
                    Level::Info
                };
                self.log(level, text);
                self.set_role(role, "adopted at start");
                if role == HaRole::Primary {
                    self.local.attached = self.persisted.attached.iter().copied().collect();
                    self.local.gen = self.persisted.gen;
                }
                if matches!(role, HaRole::Secondary | HaRole::Relay) {
                    self.local.parent = ids.first().copied();
                    self.local.initialized = true;
                }
            }
            (Some(old), new) if old != new => {
                self.set_role(new, &format!("observed: NSO/ConfD reports {}", new.name()));
                if matches!(new, HaRole::Secondary | HaRole::Relay) {
                    self.local.parent = ids.first().copied();
                }
            }
            _ => {}
        }
        if role == HaRole::Primary {
            let now_attached: BTreeSet<NodeId> = ids.into_iter().collect();
            let lost = self
                .local
                .attached
                .iter()
                .any(|n| !now_attached.contains(n));
            self.local.attached = now_attached;
            if lost {
                self.bump_gen();
            } else {
                self.persist_attachment();
            }
        }
    }

    fn on_failure(&mut self, now: u64, p: Pending, failure: HaFailure) {
        let verb = p.order.verb();
        if matches!(p.order, HaOrder::BePrimary { .. }) && failure != HaFailure::Timeout {
            // It did not become primary (a timeout leaves that open).
            self.local.promoting = None;
        }
        match failure {
            HaFailure::Timeout => {
                self.set_health(Health::Hung, &format!("{verb} timed out"));
                if self.maybe_primary() && self.cfg.fence_hung_primary && !self.fence_running {
                    self.log(
                        Level::Warn,
                        "fencing the hung primary so that another node can take over",
                    );
                    self.fence_running = true;
                    self.out.push(Output::Fence);
                }
            }
            HaFailure::Unreachable => {
                self.note_sync_lost("NSO/ConfD is not running");
                self.set_health(Health::Down, &format!("{verb}: nothing listening"));
                if self.local.role != Some(HaRole::None) {
                    self.set_role(HaRole::None, "NSO/ConfD is not running");
                }
            }
            HaFailure::Error(code) => {
                self.local.failures += 1;
                self.log(
                    Level::Warn,
                    format!(
                        "{verb} failed: {failure} ({} in a row)",
                        self.local.failures
                    ),
                );
                if matches!(p.order, HaOrder::BeSecondary { .. }) {
                    self.on_attach_failed(p.parent, code);
                }
                let refused = self.local.failures >= self.cfg.max_order_failures;
                if refused && matches!(p.order, HaOrder::BePrimary { .. }) {
                    self.set_health(
                        Health::Refusing,
                        &format!("{verb} refused {} times", self.local.failures),
                    );
                }
                if refused && p.order == HaOrder::BeNone && self.local.role == Some(HaRole::Primary)
                {
                    // It will not stop being primary: escalate.
                    if self.cfg.has_fence && !self.fence_running {
                        self.log(
                            Level::Error,
                            "NSO/ConfD refuses to stop being primary: fencing it",
                        );
                        self.fence_running = true;
                        self.out.push(Output::Fence);
                    } else if !self.cfg.has_fence {
                        self.log(Level::Error, "NSO/ConfD refuses to stop being primary and no fence hook is configured");
                    }
                }
                // The server told us what it is now: ask.
                self.status_at = now;
            }
        }
        if !matches!(p.order, HaOrder::GetStatus) {
            self.retry_at = now + self.cfg.retry_interval;
            self.failed_order = Some(p.order);
        }
        self.status_at = self.status_at.min(now + self.cfg.status_interval);
    }

    /// A failed attach to an orphaned primary, once its grace is over, is
    /// evidence that it no longer serves.
    fn on_attach_failed(&mut self, parent: Option<NodeId>, code: i32) {
        let Some(Plan {
            target: Some(Target::Orphan(k)),
            wait: None,
            ..
        }) = &self.plan
        else {
            return;
        };
        if parent != Some(k.node) || code == crate::ha::code::HA_BADTOKEN {
            return;
        }
        if !self.quorum.ring_members.contains(&k.node) {
            // Unreachable is no evidence when its node is not with us.
            return;
        }
        let gone = (k.node, k.epoch);
        if self.gone_reported.insert(gone) {
            self.multicast(Body::Request(Request::PrimaryGone {
                node: gone.0,
                epoch: gone.1,
            }));
        }
    }

    fn on_ha_event(&mut self, ev: HaEvent) {
        match ev {
            HaEvent::NoPrimary(code) => {
                self.note_sync_lost(&format!("NOPRIMARY {}", crate::ha::code::name(code)));
                if let (Some(parent), true) = (
                    self.local.parent,
                    matches!(self.local.role, Some(HaRole::Secondary | HaRole::Relay)),
                ) {
                    let me = self.cfg.me;
                    let epoch = self.local.role_epoch;
                    let still_listed = self
                        .view
                        .states
                        .get(&parent)
                        .map_or(true, |s| s.attached.contains(&me));
                    if still_listed {
                        self.reattach_block = Some((parent, epoch));
                    }
                }
                let why = format!("lost its primary ({})", crate::ha::code::name(code));
                self.set_role(HaRole::None, &why);
            }
            HaEvent::IsNone => {
                if self.local.role.is_some() {
                    self.set_role(HaRole::None, "NSO/ConfD reports none");
                }
            }
            HaEvent::IsPrimary => {}
            HaEvent::SecondaryDied(name) => {
                if let Some(id) = self.cfg.id_of(&name) {
                    if self.local.attached.remove(&id) {
                        self.bump_gen();
                        self.log(
                            Level::Info,
                            format!(
                                "secondary {name} detached (sync generation {})",
                                self.local.gen
                            ),
                        );
                    }
                }
            }
            HaEvent::SecondaryArrived(name) => {
                if let Some(id) = self.cfg.id_of(&name) {
                    if self.local.role == Some(HaRole::Primary) {
                        self.local.attached.insert(id);
                        self.persist_attachment();
                    }
                }
            }
            HaEvent::SecondaryInitialized => {
                self.local.initialized = true;
            }
            HaEvent::BeSecondaryResult(_) => {}
        }
    }

    fn on_fence_done(&mut self, ok: bool) {
        self.fence_running = false;
        if ok {
            self.set_health(Health::Fenced, "fence hook succeeded");
            self.set_role(HaRole::None, "fenced");
        } else {
            self.log(
                Level::Error,
                "fence hook failed; the local NSO/ConfD may still be primary",
            );
        }
    }

    // ----- operator --------------------------------------------------------

    fn on_operator(&mut self, now: u64, op: Operator) {
        match op {
            Operator::Switchover { to } => {
                let to = match to {
                    Some(name) => match self.cfg.id_of(&name) {
                        Some(id) => Some(id),
                        None => {
                            self.log(Level::Error, format!("switchover: no node named {name}"));
                            return;
                        }
                    },
                    None => None,
                };
                self.multicast(Body::Request(Request::Switchover { to }));
            }
            Operator::Standby { node, on } => match self.cfg.id_of(&node) {
                Some(id) => self.multicast(Body::Request(Request::Standby { node: id, on })),
                None => self.log(Level::Error, format!("standby: no node named {node}")),
            },
            Operator::ConfirmDown { node } => {
                let known = self.known_primary.clone().filter(|k| k.name == node);
                match known {
                    Some(k) => self.multicast(Body::Request(Request::PrimaryGone {
                        node: k.node,
                        epoch: k.epoch,
                    })),
                    None => self.log(
                        Level::Error,
                        format!("confirm-down: {node} is not an orphaned primary"),
                    ),
                }
            }
            Operator::Stop { handover } => {
                let primary = self.local.role == Some(HaRole::Primary);
                if handover && primary {
                    self.log(Level::Info, "orderly stop: handing the primary role over");
                    self.leaving = Some((true, now + self.cfg.handover_timeout));
                } else {
                    let what = if handover {
                        "orderly stop"
                    } else {
                        "maintenance stop: roles stay as they are"
                    };
                    self.log(Level::Info, what);
                    self.leaving = Some((handover, now));
                    self.out.push(Output::Leave);
                }
            }
        }
    }

    // ----- timers ----------------------------------------------------------

    fn on_timer(&mut self, now: u64) {
        if let Some((hold, at)) = self.hold_timer.clone() {
            if now >= at {
                self.multicast(Body::Request(Request::Release(hold.clone())));
                // Sent; the hold ends for everybody when it is delivered.
                self.hold_timer = Some((hold, u64::MAX));
            }
        }
        if let Some((true, at)) = self.leaving {
            if now >= at && !self.out.contains(&Output::Leave) {
                self.log(
                    Level::Warn,
                    "handover did not finish in time: leaving anyway",
                );
                self.leaving = Some((true, u64::MAX));
                self.out.push(Output::Leave);
            }
        }
    }

    // ----- announcing ------------------------------------------------------

    fn settling_flag(&self) -> bool {
        self.started_at
            .map_or(true, |s| self.last_step_at < s + self.cfg.startup_settle)
    }

    fn my_state(&self) -> NodeState {
        let me = self.cfg.node(self.cfg.me);
        NodeState {
            name: self.name(self.cfg.me),
            address: me.map(|n| n.address.clone()).unwrap_or_default(),
            role: self.local.role,
            role_epoch: self.local.role_epoch,
            parent: self.local.parent,
            initialized: self.local.initialized,
            promoting: self.local.promoting,
            health: self.local.health,
            max_epoch: self.announced_max_epoch(),
            fresh: self.persisted.fresh,
            sync_loss: self.persisted.sync_loss,
            known_fresh: self.persisted.known_fresh,
            gen: self.local.gen,
            attached: self.local.attached.iter().copied().collect(),
            priority: me.map_or(0, |n| n.priority),
            can_primary: me.is_some_and(|n| n.can_primary),
            standby: self.persisted.standby,
            // A maintenance stop does not announce itself: the role stays,
            // and nobody should plan around this node going away.
            leaving: matches!(self.leaving, Some((true, _))),
            settling: self.settling_flag(),
            relay_via: me
                .and_then(|n| n.relay_via.as_deref())
                .and_then(|r| self.cfg.id_of(r)),
            known_primary: self
                .known_primary
                .clone()
                .or_else(|| self.parent_as_primary()),
            vanished: self.vanished,
            nodes: self.cfg.nodes.len() as u32,
            config_digest: self.cfg.digest,
        }
    }

    /// A secondary's own primary is a known primary even when nobody else
    /// remembers it (its coroha stopped before everybody else restarted):
    /// being attached to it proves it serves.
    fn parent_as_primary(&self) -> Option<KnownPrimary> {
        if !matches!(self.local.role, Some(HaRole::Secondary)) {
            return None;
        }
        let parent = self.cfg.node(self.local.parent?)?;
        if !self.quorum.ring_members.contains(&parent.id) {
            // Its node left: not an orphan, and its NSO/ConfD will drop us.
            return None;
        }
        Some(KnownPrimary {
            node: parent.id,
            epoch: self.local.role_epoch,
            name: parent.name.clone(),
            address: parent.address.clone(),
        })
    }

    fn announced_max_epoch(&self) -> u64 {
        match &self.pending {
            Some(p) if matches!(p.order, HaOrder::BePrimary { .. }) => p.prev_max_epoch,
            _ => self.persisted.max_epoch.max(self.local.role_epoch),
        }
    }

    fn announce_if_changed(&mut self) {
        if self.view.members.is_empty()
            || !self
                .quorum
                .local
                .is_some_and(|l| self.view.members.contains(&l))
        {
            return;
        }
        let state = self.my_state();
        if self.last_announced.as_ref() != Some(&state) {
            self.last_announced = Some(state.clone());
            self.multicast(Body::Announce(Box::new(state)));
        }
    }

    fn multicast(&mut self, body: Body) {
        let envelope = Envelope::new(self.view.id, body);
        self.out.push(Output::Multicast(envelope.encode()));
    }

    // ----- acting ----------------------------------------------------------

    /// Ask the edge to write the persistent state if it changed. Called
    /// before every order, so that what an order relies on is on disk first.
    fn flush_persisted(&mut self) {
        if self.persisted != self.written {
            self.written = self.persisted.clone();
            self.out.push(Output::Persist(self.persisted.clone()));
        }
    }

    fn order(&mut self, order: HaOrder, epoch: u64, parent: Option<NodeId>, cause: String) {
        self.flush_persisted();
        let id = self.next_id;
        self.next_id += 1;
        if !matches!(order, HaOrder::GetStatus) {
            self.log(Level::Info, format!("order {}: {cause}", order.verb()));
        }
        let prev_max_epoch = self.announced_max_epoch();
        self.pending = Some(Pending {
            id,
            order: order.clone(),
            epoch,
            parent,
            cause,
            prev_max_epoch,
        });
        self.out.push(Output::Order { id, order });
    }

    fn act(&mut self, now: u64) {
        self.last_step_at = now;
        self.arm_hold_timer(now);
        if self.pending.is_some() || self.fence_running {
            return;
        }
        let next = self.next_order(now).filter(|(order, ..)| {
            // Back off before repeating the order that just failed.
            now >= self.retry_at || self.failed_order.as_ref() != Some(order)
        });
        if let Some(order) = next {
            let (order, epoch, parent, cause) = order;
            let before = self.announced_max_epoch();
            if let HaOrder::BePrimary { .. } = order {
                self.persisted.max_epoch = self.persisted.max_epoch.max(epoch);
            }
            self.order(order, epoch, parent, cause);
            if let Some(p) = self.pending.as_mut() {
                p.prev_max_epoch = before;
            }
            return;
        }
        if now >= self.status_at {
            self.status_at = now + self.cfg.status_interval;
            self.order(HaOrder::GetStatus, 0, None, "health check".into());
        }
    }

    fn arm_hold_timer(&mut self, now: u64) {
        let wait = self.plan.as_ref().and_then(|p| p.wait.clone());
        let coordinator = self.view.coordinator() == Some(self.cfg.me);
        match (wait, coordinator) {
            (Some(hold), true) => {
                if self.hold_timer.as_ref().map(|(h, _)| h) != Some(&hold) {
                    let delay = match &hold {
                        Hold::PromotionDelay { .. } => self.cfg.promotion_delay,
                        Hold::OrphanGrace { .. } => self.cfg.orphan_grace,
                        Hold::Failback { .. } => match self.cfg.failback {
                            Failback::After(d) => d.as_ms(),
                            _ => 0,
                        },
                    };
                    self.hold_timer = Some((hold, now + delay));
                }
            }
            _ => self.hold_timer = None,
        }
    }

    /// The one order this node should give its NSO/ConfD now, if any.
    fn next_order(&mut self, now: u64) -> Option<(HaOrder, u64, Option<NodeId>, String)> {
        let me = self.cfg.me;
        let my_name = self.name(me);
        let primary = self.local.role == Some(HaRole::Primary);
        // Rule 7: quorum loss on the primary acts at once, whatever the plan.
        let gate = !self.sabotage.skip_quorum_gate;
        if gate && (self.quorum.lost() || self.coroha_minority()) {
            // An unknown role may be primary: benone is harmless in NONE.
            if self.maybe_primary() && now >= self.retry_at {
                return match self.cfg.on_quorum_loss {
                    QuorumLossAction::Benone => {
                        Some((HaOrder::BeNone, 0, None, "quorum lost".into()))
                    }
                    QuorumLossAction::Fence => {
                        self.fence_running = true;
                        self.out.push(Output::Fence);
                        self.log(Level::Warn, "quorum lost: fencing the local NSO/ConfD");
                        None
                    }
                };
            }
            return None;
        }
        if (gate && !self.quorum.stable()) || self.local.health != Health::Ok {
            return None;
        }
        let plan = self.plan.clone()?;
        if self.leaving_done() {
            return None;
        }
        // Act only on a plan that already includes this node's latest state:
        // everybody else has then decided on the same facts.
        if self.view.states.get(&me) != self.last_announced.as_ref() {
            return None;
        }
        let target_is_me = plan.target == Some(Target::Member(me));
        if self.local.promoting.is_some() && !target_is_me && !primary {
            self.local.promoting = None;
            self.log(Level::Info, "promotion called off: the decision changed");
            return None;
        }
        if plan.demote.contains(&me) && primary {
            let why = match &plan.target {
                Some(t) => format!(
                    "another primary has a newer epoch ({} at {}); writes accepted here since epoch {} may be lost",
                    self.name(t.node()),
                    plan.epoch,
                    self.local.role_epoch
                ),
                None => "diverged primary".into(),
            };
            self.log(
                Level::Warn,
                format!("demoting diverged primary {my_name}: {why}"),
            );
            return Some((HaOrder::BeNone, 0, None, why));
        }
        let target = plan.target.clone()?;
        match &target {
            Target::Member(t) if *t == me => {
                if primary {
                    return self.secondary_dead_order();
                }
                if plan.wait.is_some() {
                    return None;
                }
                let blocker = self
                    .view
                    .states
                    .iter()
                    .find(|(n, s)| **n != me && s.maybe_primary())
                    .map(|(n, _)| *n);
                if let Some(b) = blocker.filter(|_| !self.sabotage.skip_demote_first) {
                    self.log(
                        Level::Debug,
                        format!("waiting for {} to stop being primary", self.name(b)),
                    );
                    return None;
                }
                if self.local.promoting != Some(plan.epoch) {
                    // Announce the intent first; order once it is delivered.
                    self.local.promoting = Some(plan.epoch);
                    return None;
                }
                Some((
                    HaOrder::BePrimary { me: my_name },
                    plan.epoch,
                    None,
                    plan.cause.clone(),
                ))
            }
            _ => {
                if primary {
                    if let Target::Member(t) = &target {
                        let why = format!("handing over to {}: {}", self.name(*t), plan.cause);
                        return Some((HaOrder::BeNone, 0, None, why));
                    }
                    return None;
                }
                let parent = *plan.parent.get(&me)?;
                let ready = match &target {
                    Target::Orphan(k) => k.node == parent,
                    Target::Member(t) => self.view.states.get(&parent).is_some_and(|ps| {
                        ps.health == Health::Ok
                            && if parent == *t {
                                ps.is_primary() && ps.role_epoch == plan.epoch
                            } else {
                                ps.role == Some(HaRole::Relay)
                                    && ps.parent == Some(*t)
                                    && ps.role_epoch == plan.epoch
                            }
                    }),
                };
                if !ready {
                    return None;
                }
                let attached = matches!(
                    self.local.role,
                    Some(HaRole::Secondary) | Some(HaRole::Relay)
                ) && self.local.parent == Some(parent)
                    && self.local.role_epoch == plan.epoch;
                if !attached
                    && self.reattach_block == Some((parent, plan.epoch))
                    && matches!(target, Target::Member(_))
                {
                    return None;
                }
                if attached {
                    if plan.relays.contains(&me)
                        && self.local.role == Some(HaRole::Secondary)
                        && self.local.initialized
                    {
                        return Some((
                            HaOrder::BeRelay,
                            plan.epoch,
                            Some(parent),
                            format!("relay for its site, under {}", self.name(parent)),
                        ));
                    }
                    return None;
                }
                let (name, address) = match &target {
                    Target::Orphan(k) => (k.name.clone(), k.address.clone()),
                    Target::Member(_) => {
                        let ps = &self.view.states[&parent];
                        (ps.name.clone(), ps.address.clone())
                    }
                };
                let cause = match &target {
                    Target::Orphan(_) => format!("attach to {name}, whose coroha is gone"),
                    Target::Member(t) if *t == parent => {
                        format!("attach to primary {name} (epoch {})", plan.epoch)
                    }
                    Target::Member(_) => format!("attach through relay {name}"),
                };
                Some((
                    HaOrder::BeSecondary {
                        me: my_name,
                        primary: name,
                        address: crate::ha::wire::Address::parse(&address),
                        wait: true,
                    },
                    plan.epoch,
                    Some(parent),
                    cause,
                ))
            }
        }
    }

    /// Primary, or not known not to be (role unknown, server not down).
    fn maybe_primary(&self) -> bool {
        self.local.promoting.is_some()
            || match self.local.role {
                Some(role) => role == HaRole::Primary,
                None => !matches!(self.local.health, Health::Down | Health::Fenced),
            }
    }

    /// Corosync counts the votes of nodes whose coroha is not running, but
    /// only running daemons carry what the election knows (who is in sync).
    /// So that every future election overlaps with the knowledge of every
    /// past one, the CPG group itself must hold a quorum of daemons.
    fn coroha_minority(&self) -> bool {
        self.quorum.stable()
            && !self.view.members.is_empty()
            && (self.view.members.len() as u32) < self.quorum.needed
    }

    /// Rule 6: only a quorate primary sheds secondaries whose node left.
    fn secondary_dead_order(&mut self) -> Option<(HaOrder, u64, Option<NodeId>, String)> {
        if !self.cfg.secondary_dead {
            return None;
        }
        let gone = self.local.attached.iter().copied().find(|n| {
            !self.quorum.ring_members.contains(n) && !self.secondary_dead_sent.contains(n)
        })?;
        self.secondary_dead_sent.insert(gone);
        let node = self.name(gone);
        Some((
            HaOrder::SecondaryDead { node: node.clone() },
            0,
            None,
            format!("{node} left the membership"),
        ))
    }

    /// During an orderly stop: leave once the role is handed over.
    fn leaving_done(&mut self) -> bool {
        let Some((true, at)) = self.leaving else {
            return false;
        };
        if at == u64::MAX {
            return true;
        }
        let me = self.cfg.me;
        let announced_leaving = self.view.states.get(&me).is_some_and(|s| s.leaving);
        let attached = matches!(
            self.local.role,
            Some(HaRole::Secondary) | Some(HaRole::Relay)
        ) && self.local.initialized;
        let nobody_else = self.local.role == Some(HaRole::Primary)
            && self
                .plan
                .as_ref()
                .is_some_and(|p| p.target.is_none() || p.target == Some(Target::Member(me)));
        let handed_over = announced_leaving && (attached || nobody_else);
        if handed_over {
            let text = if self.local.role == Some(HaRole::Primary) {
                "no other node can take over: leaving with NSO/ConfD still primary"
            } else {
                "handover done: leaving"
            };
            self.log(Level::Info, text);
            self.leaving = Some((true, u64::MAX));
            self.out.push(Output::Leave);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::sim::default_config;
    use crate::cluster::sim::rng::Rng;

    const RING: RingId = RingId { rep: 1, seq: 8 };

    fn member(node: NodeId) -> Member {
        Member {
            node,
            pid: 100 + node,
        }
    }

    /// Node 1 of a 3-node cluster, NSO/ConfD in NONE, in a view of `members`.
    fn started(members: &[NodeId], quorate: bool) -> (Policy, u64) {
        let config = default_config(3);
        let mut p = Policy::new(Settings::from_config(&config, 1), Persisted::default());
        let out = p.step(0, Input::Timer);
        let id = out.iter().find_map(|o| match o {
            Output::Order {
                id,
                order: HaOrder::GetStatus,
            } => Some(*id),
            _ => None,
        });
        p.step(
            1,
            Input::HaReply {
                id: id.expect("status first"),
                result: Ok(HaReply::Status {
                    role: HaRole::None,
                    nodes: vec![],
                }),
            },
        );
        p.step(
            2,
            Input::Cluster(ClusterEvent::Connected { local: member(1) }),
        );
        p.step(
            3,
            Input::Cluster(ClusterEvent::QuorumNodes {
                ring: RING,
                members: vec![1, 2, 3],
            }),
        );
        p.step(
            4,
            Input::Cluster(ClusterEvent::Quorum { quorate, needed: 2 }),
        );
        let out = p.step(
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
                Output::Multicast(data) => Envelope::decode(data).ok().map(|e| e.view),
                _ => None,
            })
            .expect("an announcement after the configuration change");
        (p, view)
    }

    fn own_announcement(out: &[Output]) -> Option<Vec<u8>> {
        out.iter().rev().find_map(|o| match o {
            Output::Multicast(d)
                if matches!(Envelope::decode(d).map(|e| e.body), Ok(Body::Announce(_))) =>
            {
                Some(d.clone())
            }
            _ => None,
        })
    }

    fn deliver(p: &mut Policy, now: u64, from: NodeId, data: Vec<u8>) -> Vec<Output> {
        p.step(
            now,
            Input::Cluster(ClusterEvent::Deliver {
                sender: member(from),
                data,
            }),
        )
    }

    fn peer(view: u64, id: NodeId) -> Vec<u8> {
        Envelope::new(view, Body::Announce(Box::new(NodeState::sample(id)))).encode()
    }

    fn orders(out: &[Output]) -> Vec<&HaOrder> {
        out.iter()
            .filter_map(|o| match o {
                Output::Order { order, .. } if *order != HaOrder::GetStatus => Some(order),
                _ => None,
            })
            .collect()
    }

    /// Deliver everybody's announcements; return what node 1 does next.
    fn elect_me(p: &mut Policy, view: u64, mine: Vec<u8>) -> Vec<Output> {
        deliver(p, 10, 2, peer(view, 2));
        deliver(p, 11, 3, peer(view, 3));
        deliver(p, 12, 1, mine)
    }

    #[test]
    fn promotion_is_announced_first_then_persisted_then_ordered() {
        let (mut p, view) = started(&[1, 2, 3], true);
        let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
        let out = elect_me(&mut p, view, mine);
        assert!(
            orders(&out).is_empty(),
            "no beprimary before the intent is delivered: {out:?}"
        );
        let intent = own_announcement(&out).expect("intent announced");
        match Envelope::decode(&intent).unwrap().body {
            Body::Announce(s) => assert_eq!(s.promoting, Some(1)),
            other => panic!("{other:?}"),
        }
        let out = deliver(&mut p, 13, 1, intent);
        let persist = out
            .iter()
            .position(|o| matches!(o, Output::Persist(s) if s.max_epoch == 1));
        let order = out.iter().position(|o| {
            matches!(
                o,
                Output::Order {
                    order: HaOrder::BePrimary { .. },
                    ..
                }
            )
        });
        assert!(persist.is_some() && order.is_some(), "{out:?}");
        assert!(
            persist < order,
            "the epoch is persisted before beprimary is sent"
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
                && own_announcement(&out).map_or(true, |d| !String::from_utf8_lossy(&d)
                    .contains("\"promoting\":1"))
        );
    }

    #[test]
    fn a_minority_of_coroha_daemons_does_not_promote() {
        // corosync is quorate (3 nodes), but only one coroha runs.
        let (mut p, view) = started(&[1], true);
        let mine = Envelope::new(view, Body::Announce(Box::new(p.my_state()))).encode();
        let out = deliver(&mut p, 12, 1, mine);
        assert!(orders(&out).is_empty(), "{out:?}");
        assert!(p.local.promoting.is_none());
    }

    #[test]
    fn messages_for_another_view_are_ignored_with_a_log_line() {
        let (mut p, view) = started(&[1, 2, 3], true);
        let out = deliver(&mut p, 10, 2, peer(view + 1, 2));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Log { text, .. } if text.contains("for another view"))));
        assert!(!p.view.states.contains_key(&2));
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
        assert!(p.view.states.contains_key(&2));
    }

    #[test]
    fn a_restarted_daemon_adopts_the_primary_role_it_finds() {
        let config = default_config(3);
        let persisted = Persisted {
            max_epoch: 4,
            role_epoch: 4,
            ..Persisted::default()
        };
        let mut p = Policy::new(Settings::from_config(&config, 1), persisted);
        let out = p.step(0, Input::Timer);
        let id = out.iter().find_map(|o| match o {
            Output::Order { id, .. } => Some(*id),
            _ => None,
        });
        let status = HaReply::Status {
            role: HaRole::Primary,
            nodes: vec!["n2".into()],
        };
        let out = p.step(
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
}
