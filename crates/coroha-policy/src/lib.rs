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

mod act;
pub mod cause;
pub mod cluster;
pub mod elect;
pub mod freshness;
mod lease;
mod local;
mod lone;
mod membership;
pub mod message;
mod operator;
mod sabotage;
mod server;
mod settings;
mod status;
mod timers;
mod txid;

pub use operator::Refusal;
pub use sabotage::Sabotage;
pub use settings::{fnv1a, Failback, Node, QuorumLossAction, Settings};
pub use status::{AbsentNode, Action, MemberStatus, Presence, Probe, Status};
pub use timers::Timer;
use timers::{Evidence, HoldTimer, OrphanFence, Stopping};

use cluster::{ClusterEvent, Member, NodeId, RingId};
use confd_ha::{HaEvent, HaFailure, HaOrder, HaReply, HaRole};
use elect::{Plan, Target, View};
use local::{Local, LocalRole};
use message::{Envelope, Fresh, Health, KnownPrimary, NodeState, RememberedPrimary};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What survives a restart of the daemon. A step that changes it hands it
/// out in [`Ready`], which the I/O edge writes and fsyncs before it may
/// carry out anything else of that step.
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
    /// The last epoch at which the local NSO/ConfD was primary, or may
    /// have been (a `beprimary` whose outcome is unknown): see
    /// `NodeState::led_epoch`.
    #[serde(default)]
    pub led_epoch: u64,
    /// The highest epoch any node was seen to claim or to promote itself
    /// to. New epochs are chosen above it, so a promotion whose node
    /// vanished mid-way is never given the same epoch as a later one
    /// (design §12). Not this node's own: restart adoption uses
    /// `max_epoch`.
    #[serde(default)]
    pub seen_epoch: u64,
    /// Fellow secondaries this node saw drop out while it stayed in sync
    /// at that freshness (see `NodeState::outlived`).
    #[serde(default)]
    pub outlived: Outlived,
    /// The cluster-wide pause as this node last heard of it.
    #[serde(default)]
    pub pause: crate::message::Pause,
    /// The primary this node knows of, and whether its coroha was in the
    /// group when last seen. Durable so that a node that crashes and boots
    /// again still knows of a primary whose NSO/ConfD may serve without a
    /// coroha (design §12): otherwise a quorum of rebooted nodes elects a
    /// second primary beside an orphan only they had heard of.
    #[serde(default)]
    pub known_primary: Option<RememberedPrimary>,
    /// The highest CDB transaction id anybody announced at `known_fresh`.
    #[serde(default)]
    pub known_txid: Option<confd_ha::TxStamp>,
    /// The local data's transaction id and whether it diverged (design §6).
    #[serde(default)]
    pub data: txid::DataRecord,
    /// A loss of sync with a primary that may serve on without this node
    /// (design §7): announced for it once it is an orphan.
    #[serde(default)]
    pub lost_sync: Option<lone::LostSync>,
    /// The secondaries the primary last announced attached, and its
    /// freshness then: if its coroha dies, the nodes its server may drop
    /// and go on without (design §7).
    #[serde(default)]
    pub lineup: Option<lone::Lineup>,
    /// A primary whose node left without a goodbye (or a member that
    /// vanished while promoting itself): nobody is promoted before its
    /// lease has surely run out and it is fenced (design §13). Durable, so
    /// that a coroha restarted meanwhile still waits for that, rather than
    /// promote beside a primary whose own coroha died with its node's
    /// link (seed 90712053).
    #[serde(default)]
    pub vanished: Option<(NodeId, u64)>,
    /// An orphaned or vanished primary whose node this node saw out of its
    /// ring: counted once it is back (design §7, "An orphan back in the
    /// ring").
    #[serde(default)]
    pub orphan_away: Option<lone::Away>,
}

/// Secondaries in sync with `parent` at `fresh`, as announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Fellows {
    parent: Option<NodeId>,
    fresh: Fresh,
    nodes: BTreeSet<NodeId>,
}

/// How many fellow secondaries dropped out of a lineage while this node
/// stayed in sync with it, counted at the freshness `at`; it counts for
/// nothing once the node's freshness has moved on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outlived {
    pub at: Fresh,
    pub drops: u64,
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
    /// Pause (`on`) or resume the whole cluster: while paused nobody is
    /// elected, promoted or attached, and no orphan is fenced; what keeps
    /// data safe stays on (design §14).
    Pause {
        on: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Cluster(ClusterEvent),
    /// A group message handed over as it is, where sender and receivers
    /// share one process (the simulator): the same as a
    /// `ClusterEvent::Deliver` of its encoding, without the decoding.
    Delivered {
        sender: Member,
        message: std::sync::Arc<Envelope>,
    },
    HaReply {
        id: u64,
        result: Result<HaReply, HaFailure>,
    },
    HaEvent(HaEvent),
    FenceDone {
        ok: bool,
    },
    /// The answer to [`Output::ReadOnly`].
    ReadOnlyDone {
        on: bool,
        ok: bool,
    },
    /// The answer to [`Output::FenceNode`]: `ok` only when the hook made
    /// sure that node's NSO/ConfD is not primary (powered off, rebooted).
    FenceNodeDone {
        node: NodeId,
        ok: bool,
    },
    Operator(Operator),
    /// The answer to [`Output::ReadTxid`]: `None` if it could not be read.
    TxidRead(Option<confd_ha::Txid>),
    /// Another HA client (e.g. Tail-f's `confd_cmd`) replaced this
    /// daemon's HA socket, which the I/O edge has taken back. The server
    /// changed no role for it; whatever that client ordered is read back.
    HaSocketReplaced,
    /// The server closed an HA connection and took no new one (it died,
    /// or is restarting): its status is read at once, not at the next
    /// poll, and what it says is announced (issue 13: a crash is seen in
    /// milliseconds).
    HaConnectionClosed,
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
    /// Send to the group; the I/O edge encodes it (`Envelope::encode`).
    Multicast(std::sync::Arc<Envelope>),
    Order {
        id: u64,
        order: HaOrder,
    },
    /// Run the fence hook; answer with `Input::FenceDone`.
    Fence,
    /// Set the local NSO/ConfD read-only (`true`) or writable (MAAPI
    /// `set_readonly_mode`); answer with `Input::ReadOnlyDone`. Carried out
    /// before the step's later outputs: a lapsed lease stops commits first.
    ReadOnly(bool),
    /// Read the local CDB transaction id (`cdb_get_txid`) on a socket of
    /// its own; answer with `Input::TxidRead`.
    ReadTxid,
    /// Run the `fence_node` hook against another node, whose NSO/ConfD may
    /// still be primary; answer with `Input::FenceNodeDone`.
    FenceNode {
        node: NodeId,
    },
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

/// What one step asks of the I/O edge. The durable state comes first and
/// on its own: the outputs (multicasts, HA orders, hooks) are only handed
/// out by [`Ready::persist_then`], after the caller's write succeeded, so an
/// order can never overtake the state it relies on (an epoch, a claim to the
/// freshest data). The same rule as raft-rs's `Ready`: persist, then send.
#[must_use = "a step's outputs must be carried out, after its state is persisted"]
#[derive(Debug)]
pub struct Ready {
    persist: Option<Persisted>,
    outputs: Vec<Output>,
}

impl Ready {
    /// The state to write durably first, if the step changed it.
    pub fn persist(&self) -> Option<&Persisted> {
        self.persist.as_ref()
    }

    /// Write the state with `write` (when there is one to write), then
    /// hand out the outputs. A failed write hands out nothing: the daemon
    /// must not act on a state it could not make durable.
    pub fn persist_then<E>(
        self,
        write: impl FnOnce(&Persisted) -> Result<(), E>,
    ) -> Result<Vec<Output>, E> {
        if let Some(state) = &self.persist {
            write(state)?;
        }
        Ok(self.outputs)
    }
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
    /// What the sessions before this one last knew: a restart of the
    /// local corosync tells nothing about the others.
    before: Option<PreviousSession>,
}

/// The ring votequorum last reported before this corosync session.
#[derive(Clone, Debug, Default)]
struct PreviousSession {
    ring: Vec<NodeId>,
    quorate: bool,
}

impl Quorum {
    /// A new session (connected or not) that remembers the last ring.
    fn next_session(&self, connected: bool) -> Quorum {
        let before = match self.last_known_ring() {
            Some((ring, quorate)) => Some(PreviousSession {
                ring: ring.to_vec(),
                quorate,
            }),
            None => self.before.clone(),
        };
        Quorum {
            connected,
            lost_connection: !connected,
            before,
            ..Quorum::default()
        }
    }

    /// The ring as votequorum last reported it, in this session or the
    /// one before, and whether it was quorate.
    fn last_known_ring(&self) -> Option<(&[NodeId], bool)> {
        if self.connected && self.quorate.is_some() {
            Some((&self.ring_members, self.ring_quorate()))
        } else {
            self.before.as_ref().map(|b| (b.ring.as_slice(), b.quorate))
        }
    }

    /// Quorate as votequorum last said, also in the middle of a change.
    fn ring_quorate(&self) -> bool {
        self.connected && matches!(self.quorate, Some((_, true)))
    }

    /// Safety rule 1: quorate, for the current ring, on both fds.
    fn stable(&self) -> bool {
        match (self.connected, self.vq_ring, self.quorate) {
            (true, Some(ring), Some((qring, true))) => {
                qring == ring && self.totem.is_none_or(|t| t == ring)
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

pub struct Policy {
    cfg: Settings,
    persisted: Persisted,
    /// What the I/O edge was last handed to write.
    written: Persisted,
    local: Local,
    quorum: Quorum,
    view: View,
    plan: Option<Plan>,
    last_announced: Option<NodeState>,
    pending: Option<Pending>,
    next_id: u64,
    started_at: Option<u64>,
    status_at: u64,
    /// Set after a failed order; `failed_order` is not repeated before.
    retry_at: Option<u64>,
    /// The order that failed last: it is not repeated before `retry_at`.
    failed_order: Option<HaOrder>,
    /// How often in a row it failed (the back-off doubles each time).
    repeats: u32,
    /// What keeps failing and why, until an order succeeds (status, and
    /// announced to the others).
    failing: Option<server::Failing>,
    hold_timer: Option<HoldTimer>,
    leaving: Option<Stopping>,
    fence_running: bool,
    last_step_at: u64,
    /// When each member was first seen in the role it announces (this
    /// daemon's clock), for `coroha status`.
    role_seen: BTreeMap<NodeId, (Option<HaRole>, u64)>,
    sabotage: Vec<Sabotage>,
    /// Lost this primary (node, epoch): do not attach to it again until its
    /// coroha shows it is alive, so a dead primary does not hold up the
    /// order pipeline while corosync has not yet noticed.
    reattach_block: Option<(NodeId, u64)>,
    /// The primary (node, epoch) that listed this node as attached since
    /// it last changed role: from then on, a generation that primary
    /// reaches without listing it means it was dropped.
    listed_by: Option<(NodeId, u64)>,
    secondary_dead_sent: BTreeSet<NodeId>,
    /// The orphan whose node left the ring was reported (once, not at
    /// every ring and quorum event).
    orphan_out_of_ring_warned: Option<KnownPrimary>,
    /// Each member's promotion intent as last announced, kept across view
    /// changes until it announces again (see `announced_intent`).
    intents: std::collections::BTreeMap<NodeId, u64>,
    gone_reported: BTreeSet<(NodeId, u64)>,
    /// The other secondaries last announced in sync with the same primary
    /// at the same freshness as this node; kept across views, since a
    /// fellow that crashed announces nothing in the views that follow.
    fellows: Fellows,
    evidence: Option<Evidence>,
    lease: lease::Lease,
    read_only: lease::ReadOnly,
    /// When each member's last message was delivered: a primary that
    /// vanished held its lease at most `lease` beyond it.
    heard: std::collections::BTreeMap<NodeId, u64>,
    /// Vanished primaries this node fenced (node, epoch).
    fenced: BTreeSet<(NodeId, u64)>,
    orphan_fence: Option<OrphanFence>,
    /// The id of the last `get_status` the server answered.
    status_answered: u64,
    /// The primary this node's server said it was attached to in its last
    /// answer, where that primary's node was in this node's quorate ring
    /// then (design §7, "A loss dates from the server's last word").
    attached_in_ring: Option<NodeId>,
    orphan_follow: Option<lone::OrphanFollow>,
    txid_reads: txid::TxidReads,
    /// Set by a `benone` on a primary: the secondaries attached then.
    handed_over: Vec<NodeId>,
    out: Vec<Output>,
}

impl Policy {
    pub fn new(cfg: Settings, persisted: Persisted) -> Policy {
        let local = Local {
            role: LocalRole::Unknown,
            promoting: None,
            role_epoch: persisted.role_epoch,
            gen: 0,
            health: Health::Starting,
            answered: false,
            failures: 0,
            refusing_until: None,
        };
        Policy {
            cfg,
            written: persisted.clone(),
            persisted,
            local,
            quorum: Quorum::default(),
            view: View::default(),
            plan: None,
            last_announced: None,
            pending: None,
            next_id: 1,
            started_at: None,
            status_at: 0,
            retry_at: None,
            failed_order: None,
            repeats: 0,
            failing: None,
            hold_timer: None,
            leaving: None,
            fence_running: false,
            last_step_at: 0,
            role_seen: BTreeMap::new(),
            sabotage: Vec::new(),
            reattach_block: None,
            listed_by: None,
            secondary_dead_sent: BTreeSet::new(),
            orphan_out_of_ring_warned: None,
            intents: std::collections::BTreeMap::new(),
            gone_reported: BTreeSet::new(),
            fellows: Fellows::default(),
            evidence: None,
            lease: lease::Lease::default(),
            read_only: lease::ReadOnly::default(),
            heard: std::collections::BTreeMap::new(),
            fenced: BTreeSet::new(),
            orphan_fence: None,
            status_answered: 0,
            attached_in_ring: None,
            orphan_follow: None,
            txid_reads: Default::default(),
            handed_over: vec![],
            out: Vec::new(),
        }
    }

    #[doc(hidden)]
    pub fn sabotage(&mut self, rule: Sabotage) {
        self.sabotage.push(rule);
        if rule == Sabotage::ForgetKnownPrimaryOnRestart {
            self.persisted.known_primary = None;
        }
        if rule == Sabotage::ForgetVanishedOnRestart {
            self.persisted.vanished = None;
        }
    }

    fn sabotaged(&self, rule: Sabotage) -> bool {
        self.sabotage.contains(&rule)
    }

    pub fn role(&self) -> Option<HaRole> {
        self.local.role.ha_role()
    }

    /// The epoch this node announced it will promote itself at, if any.
    pub fn promoting(&self) -> Option<u64> {
        self.local.promoting
    }

    pub fn persisted(&self) -> &Persisted {
        &self.persisted
    }

    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// The primary this node knows of (announced, and persisted).
    pub(crate) fn known_primary(&self) -> Option<&KnownPrimary> {
        self.persisted
            .known_primary
            .as_ref()
            .map(RememberedPrimary::primary)
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
            role: self.local.role.ha_role(),
            epoch: self.local.role_epoch,
            quorate: self.quorum.stable(),
            primary: self
                .plan
                .as_ref()
                .and_then(|p| p.target.as_ref())
                .map(Target::node),
        }
    }

    /// An orderly stop is in progress.
    pub fn stopping(&self) -> bool {
        self.leaving.is_some()
    }

    pub fn step(&mut self, now: u64, input: Input) -> Ready {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        // Before the input: a lease that lapsed while this process was
        // stopped stops commits first.
        self.check_lease(now);
        match input {
            Input::Cluster(ev) => self.on_cluster(now, ev),
            Input::Delivered { sender, message } => {
                let message = std::sync::Arc::try_unwrap(message).unwrap_or_else(|m| (*m).clone());
                self.on_deliver(now, sender, Ok(message));
            }
            Input::HaReply { id, result } => self.on_reply(now, id, result),
            Input::HaEvent(ev) => self.on_ha_event(ev),
            Input::FenceDone { ok } => self.on_fence_done(ok),
            Input::ReadOnlyDone { on, ok } => self.on_read_only_done(now, on, ok),
            Input::TxidRead(read) => self.on_txid_read(read),
            Input::FenceNodeDone { node, ok } => self.on_fence_node_done(now, node, ok),
            Input::Operator(op) => self.on_operator(now, op),
            Input::HaSocketReplaced => {
                self.log(
                    Level::Warn,
                    "another HA client replaced this daemon's HA socket; reading the status again",
                );
                self.status_at = now;
                self.read_only_unknown();
            }
            Input::HaConnectionClosed => {
                self.log(
                    Level::Info,
                    "NSO/ConfD closed its HA connection: reading its status now",
                );
                self.status_at = now;
            }
            Input::Timer => self.on_timer(now),
        }
        self.confirm_evidence(now);
        self.account_for_orphan();
        self.claim_fresh();
        self.announce_if_changed();
        let promoting = self.local.promoting;
        self.act(now);
        // Acting may have changed what we announce (an intent to promote).
        if self.local.promoting != promoting {
            self.announce_if_changed();
        }
        self.beat(now);
        self.sync_read_only(now);
        self.read_txid_if_due();
        // Whatever changed of the durable state is written before any of
        // this step's outputs, orders included.
        let persist = (self.persisted != self.written).then(|| {
            self.written = self.persisted.clone();
            self.written.clone()
        });
        Ready {
            persist,
            outputs: std::mem::take(&mut self.out),
        }
    }

    // ----- logging helpers -------------------------------------------------

    pub(crate) fn log(&mut self, level: Level, text: impl Into<String>) {
        self.out.push(Output::Log {
            level,
            text: text.into(),
        });
    }

    pub(crate) fn name(&self, id: NodeId) -> String {
        self.cfg.name(id)
    }
}
