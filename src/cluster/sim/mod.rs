//! A deterministic discrete-event simulation of a corosync cluster whose
//! nodes each run the real policy, a simulated NSO/ConfD and a client
//! workload. It models what was measured on corosync 3.1.7 (see
//! shared/corosync-client.md): membership changes after token + consensus,
//! rings named (representative, seq) with the same seq on both sides of a
//! split, callbacks in the order CPG confchg → totem → votequorum node list →
//! quorum on two fds read in random order, AGREED delivery in one total order
//! per configuration, and messages sent during a membership change held and
//! delivered in the next configuration only to the members that moved on.
//! The same seed gives the same run, byte for byte.

pub mod confd;
pub mod rng;
pub mod scenario;
pub mod votequorum;

use crate::cluster::{ClusterEvent, Member, NodeId, Reason, RingId};
use crate::config::Config;
use crate::ha::{code, HaEvent, HaFailure, HaOrder, HaReply, HaRole};
use crate::policy::{Input, Level, Operator, Output, Persisted, Policy, Settings};
use confd::{Confd, Idx};
use rng::Rng;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Corosync timings (ms), as measured with token 1000 on three nodes.
pub mod timing {
    /// Token timeout + consensus: a lost node or a split is noticed.
    pub const DETECT_LOSS: u64 = 3500;
    /// knet link-up plus one membership round: a heal is noticed.
    pub const DETECT_MERGE: u64 = 1900;
    /// A restarted corosync first forms a lone ring...
    pub const LONE_RING: u64 = 750;
    /// ...and merges this much later.
    pub const MERGE_AFTER_START: u64 = 1400;
    /// Others see a killed coroha's ProcDown.
    pub const PROC_DOWN: u64 = 10;
    /// Multicast to delivery.
    pub const MCAST: u64 = 1;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Fault {
    /// Power loss: corosync, coroha and NSO/ConfD die; peers notice late.
    Crash(Idx),
    /// Power back: corosync, coroha and NSO/ConfD (in NONE) start.
    Boot(Idx),
    /// Network split into groups (nodes not named stay together).
    Partition(Vec<Vec<Idx>>),
    Heal,
    /// coroha SIGKILLed / started again.
    KillCoroha(Idx),
    StartCoroha(Idx),
    /// SIGTERM (orderly stop with handover) and maintenance stop.
    StopCoroha(Idx),
    MaintenanceStop(Idx),
    /// NSO/ConfD process dies / is started again (in NONE).
    ConfdStop(Idx),
    ConfdStart(Idx),
    ConfdHang(Idx),
    ConfdResume(Idx),
    /// NSO/ConfD refuses every order (or stops refusing).
    ConfdRefuse(Idx, bool),
    /// corosync SIGTERM then start, or SIGKILL then start after `after` ms.
    CorosyncRestart(Idx),
    CorosyncKill(Idx, u64),
    Switchover {
        at: Idx,
        to: Option<Idx>,
    },
    Standby {
        at: Idx,
        node: Idx,
        on: bool,
    },
    /// The operator vouches that `node`'s NSO/ConfD is down.
    ConfirmDown {
        at: Idx,
        node: Idx,
    },
}

impl Fault {
    pub fn describe(&self, names: &[String]) -> String {
        let n = |i: &Idx| names[*i].clone();
        match self {
            Fault::Crash(i) => format!("FAULT node {} crashes (power off)", n(i)),
            Fault::Boot(i) => format!("FAULT node {} boots", n(i)),
            Fault::Partition(groups) => format!(
                "FAULT network partition: {}",
                groups
                    .iter()
                    .map(|g| format!("[{}]", g.iter().map(n).collect::<Vec<_>>().join(" ")))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            Fault::Heal => "FAULT network healed".into(),
            Fault::KillCoroha(i) => format!("FAULT coroha on {} killed (SIGKILL)", n(i)),
            Fault::StartCoroha(i) => format!("OPERATOR coroha on {} started", n(i)),
            Fault::StopCoroha(i) => format!("OPERATOR coroha on {} stopped (SIGTERM)", n(i)),
            Fault::MaintenanceStop(i) => {
                format!("OPERATOR coroha on {} stopped in maintenance mode", n(i))
            }
            Fault::ConfdStop(i) => format!("FAULT NSO/ConfD on {} dies", n(i)),
            Fault::ConfdStart(i) => format!("OPERATOR NSO/ConfD on {} started", n(i)),
            Fault::ConfdHang(i) => format!("FAULT NSO/ConfD on {} hangs", n(i)),
            Fault::ConfdResume(i) => format!("FAULT NSO/ConfD on {} resumes", n(i)),
            Fault::ConfdRefuse(i, on) => {
                format!(
                    "FAULT NSO/ConfD on {} {} orders",
                    n(i),
                    if *on { "refuses" } else { "accepts" }
                )
            }
            Fault::CorosyncRestart(i) => format!("OPERATOR corosync on {} restarted", n(i)),
            Fault::CorosyncKill(i, after) => {
                format!("FAULT corosync on {} killed, back after {after} ms", n(i))
            }
            Fault::Switchover { at, to } => {
                format!(
                    "OPERATOR switchover to {} (asked on {})",
                    to.as_ref().map_or("best other node".into(), n),
                    n(at)
                )
            }
            Fault::ConfirmDown { at, node } => {
                format!("OPERATOR confirms {} down (asked on {})", n(node), n(at))
            }
            Fault::Standby { at, node, on } => {
                format!(
                    "OPERATOR standby {} {} (asked on {})",
                    if *on { "on" } else { "off" },
                    n(node),
                    n(at)
                )
            }
        }
    }
}

/// Ways to break the policy on purpose, to prove the checker can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Sabotage {
    /// Act on elections without a quorate, stable view.
    SkipQuorumGate,
    /// Promote without waiting for the old primary to demote.
    SkipDemoteFirst,
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    pub config: Config,
    pub two_node: bool,
    pub wait_for_all: bool,
    /// Client writes to the primary this often (ms).
    pub write_interval: u64,
    /// NSO/ConfD HA tick timeout: a silent peer is dropped after 3 ticks.
    pub tick: u64,
    /// A primary in a partition without quorum must stop within this (ms).
    pub quorum_loss_bound: u64,
    pub sabotage: Option<Sabotage>,
    /// Record debug lines in the timeline too.
    pub verbose: bool,
    /// Invariants whose violations are recorded but do not stop the run.
    pub allowed: Vec<String>,
}

impl SimOptions {
    pub fn new(config: Config, seed: u64) -> SimOptions {
        SimOptions {
            seed,
            config,
            two_node: false,
            wait_for_all: false,
            write_interval: 100,
            // PT2S, as on the captured server: 3 ticks (6 s) outlast corosync's
            // detection, so a primary blocks commits until coroha decides.
            tick: 2000,
            quorum_loss_bound: timing::DETECT_LOSS + 1500,
            sabotage: None,
            verbose: false,
            allowed: vec![],
        }
    }
}

/// A cluster configuration with nodes n1..nN for simulations: the
/// recommended production settings, with a fence hook that restarts
/// NSO/ConfD (it comes back in NONE).
pub fn default_config(nodes: usize) -> Config {
    let mut text = String::from(
        "[cluster]\nstate_dir = \"/var/lib/coroha\"\n[policy]\nstartup_settle = \"5s\"\nfence_hung_primary = true\n\
         [hooks]\nfence = [\"systemctl\", \"restart\", \"ncs\"]\n",
    );
    for i in 1..=nodes {
        text.push_str(&format!(
            "[[node]]\nname = \"n{i}\"\nid = {i}\naddress = \"10.0.0.{i}\"\n"
        ));
    }
    Config::parse(&text, "<default>").expect("the default config is valid")
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub t: u64,
    pub node: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub invariant: String,
    pub t: u64,
    pub step: u64,
    pub seed: u64,
    pub text: String,
    pub trail: Vec<Entry>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "VIOLATION {} at {} (seed {}, step {}): {}",
            self.invariant,
            secs(self.t),
            self.seed,
            self.step,
            self.text
        )?;
        writeln!(f, "events that led to it:")?;
        for e in &self.trail {
            writeln!(f, "  {}", line(e))?;
        }
        Ok(())
    }
}

pub fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

pub fn line(e: &Entry) -> String {
    format!("{:>9}  {:<4} {}", secs(e.t), e.node, e.text)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fd {
    Cpg,
    Vq,
}

#[derive(Clone, Debug)]
enum Ev {
    Fault(Fault),
    Reconfigure,
    CorosyncReady(Idx),
    CorosyncStart(Idx),
    Dispatch {
        node: Idx,
        pid: u32,
        ev: Box<Input>,
    },
    Sequence {
        sender: Member,
        data: Vec<u8>,
    },
    ProcLeave {
        member: Member,
        reason: Reason,
    },
    ProcJoin {
        member: Member,
    },
    Timer {
        node: Idx,
        pid: u32,
        gen: u64,
    },
    OrderTimeout {
        node: Idx,
        pid: u32,
        id: u64,
    },
    OrderApply {
        node: Idx,
        pid: u32,
        id: u64,
        order: HaOrder,
    },
    LinkCheck,
    Write,
    FenceDone {
        node: Idx,
        pid: u32,
    },
}

struct Coroha {
    pid: u32,
    policy: Policy,
    /// In a corosync session and joined to the CPG group.
    session: bool,
    joined: bool,
    cpg_view: Vec<Member>,
    timer: Option<(u64, u64)>,
    timer_gen: u64,
    pending_order: Option<u64>,
}

#[derive(Clone, Debug, Default)]
struct Corosync {
    up: bool,
    ready: bool,
    ring: Option<RingId>,
    ring_members: Vec<Idx>,
    wfa_ok: bool,
    fd_last: [u64; 2],
}

pub struct Sim {
    pub opts: SimOptions,
    names: Vec<String>,
    rng: Rng,
    now: u64,
    step: u64,
    same_instant: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    free: Vec<usize>,
    powered: Vec<bool>,
    group: Vec<u32>,
    /// A node whose corosync crashed stays out of everybody's ring until
    /// the others have declared it dead (NodeDown before NodeUp).
    merge_after: Vec<u64>,
    /// Per pair of nodes: reachable now, and since when.
    link: Vec<Vec<(bool, u64)>>,
    cs: Vec<Corosync>,
    ring_seq: u64,
    frozen: BTreeMap<RingId, bool>,
    held: Vec<(Member, Vec<u8>)>,
    coroha: Vec<Option<Coroha>>,
    disk: Vec<Persisted>,
    next_pid: u32,
    pub confd: Vec<Confd>,
    next_write: u64,
    pub acked: Vec<u64>,
    pub writes_acked: u64,
    pub writes_failed: u64,
    nonquorate_primary_since: Vec<Option<u64>>,
    /// I2 was checked for this node since it became primary in its ring.
    i2_checked: Vec<bool>,
    pub timeline: Vec<Entry>,
    pub violation: Option<Violation>,
    pub role_changes: Vec<(u64, Idx, HaRole)>,
    pub last_fault: u64,
}

impl Sim {
    pub fn new(opts: SimOptions) -> Sim {
        let names: Vec<String> = opts
            .config
            .nodes
            .iter()
            .map(|n| n.get_ref().name.clone())
            .collect();
        let n = names.len();
        let mut sim = Sim {
            rng: Rng::new(opts.seed),
            opts,
            names,
            now: 0,
            step: 0,
            same_instant: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: vec![],
            free: vec![],
            powered: vec![false; n],
            group: vec![0; n],
            merge_after: vec![0; n],
            link: vec![vec![(false, 0); n]; n],
            cs: vec![Corosync::default(); n],
            ring_seq: 0,
            frozen: BTreeMap::new(),
            held: vec![],
            coroha: (0..n).map(|_| None).collect(),
            disk: vec![Persisted::default(); n],
            next_pid: 1000,
            confd: vec![
                Confd {
                    running: false,
                    ..Confd::new()
                };
                n
            ],
            next_write: 1,
            acked: vec![],
            writes_acked: 0,
            writes_failed: 0,
            nonquorate_primary_since: vec![None; n],
            i2_checked: vec![false; n],
            timeline: vec![],
            violation: None,
            role_changes: vec![],
            last_fault: 0,
        };
        for i in 0..n {
            sim.schedule(0, Ev::Fault(Fault::Boot(i)));
        }
        let first_write = sim.opts.write_interval;
        sim.schedule(first_write, Ev::Write);
        sim
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    fn id(i: Idx) -> NodeId {
        i as NodeId + 1
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.events[s] = Some(ev);
                s
            }
            None => {
                self.events.push(Some(ev));
                self.events.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    pub fn add_fault(&mut self, at: u64, fault: Fault) {
        self.last_fault = self.last_fault.max(at);
        self.schedule(at, Ev::Fault(fault));
    }

    fn record(&mut self, node: Option<Idx>, text: String) {
        let node = node.map_or_else(|| "--".to_string(), |i| self.names[i].clone());
        self.timeline.push(Entry {
            t: self.now,
            node,
            text,
        });
    }

    fn violate(&mut self, invariant: &str, text: String) {
        if self.violation.is_some() {
            return;
        }
        if self.opts.allowed.iter().any(|a| a == invariant) {
            if self.timeline.last().map(|e| &e.text)
                != Some(&format!("ALLOWED {invariant}: {text}"))
            {
                self.record(None, format!("ALLOWED {invariant}: {text}"));
            }
            return;
        }
        self.record(None, format!("VIOLATION {invariant}: {text}"));
        let start = self.timeline.len().saturating_sub(40);
        self.violation = Some(Violation {
            invariant: invariant.into(),
            t: self.now,
            step: self.step,
            seed: self.opts.seed,
            text,
            trail: self.timeline[start..].to_vec(),
        });
    }

    /// Run until `until` (ms) or the first violation.
    pub fn run_until(&mut self, until: u64) {
        while self.violation.is_none() {
            let Some(Reverse((at, _, slot))) = self.queue.peek().copied() else {
                break;
            };
            if at > until {
                break;
            }
            self.queue.pop();
            let ev = self.events[slot].take().expect("scheduled event");
            self.free.push(slot);
            if at == self.now {
                self.same_instant += 1;
                if self.same_instant > 50_000 {
                    self.violate(
                        "livelock",
                        format!(
                            "more than 50000 events at {} without time passing",
                            secs(at)
                        ),
                    );
                    break;
                }
            } else {
                self.same_instant = 0;
            }
            self.now = at;
            self.step += 1;
            let fault = matches!(ev, Ev::Fault(_) | Ev::Reconfigure);
            if matches!(ev, Ev::Fault(_)) {
                self.handle(ev);
                self.update_links();
            } else {
                self.handle(ev);
            }
            if fault {
                // Start or stop the tick clocks of the HA links.
                self.link_check();
            }
            self.check_safety();
        }
        if self.violation.is_none() {
            self.now = self.now.max(until);
        }
    }

    // ----- physical world --------------------------------------------------

    fn reachable(&self, a: Idx, b: Idx) -> bool {
        self.powered[a] && self.powered[b] && self.group[a] == self.group[b]
    }

    /// Nodes that corosync puts in one ring with `i` now: a lost link splits
    /// a ring only once it has been down for token + consensus, and a link
    /// that is back merges rings only after a membership round.
    fn component(&self, i: Idx) -> Vec<Idx> {
        let isolated = |k: Idx| self.merge_after[k] >= self.now;
        let alive = |k: Idx| self.cs[k].up && self.cs[k].ready;
        let together = |a: Idx, b: Idx| {
            let (up, since) = self.link[a][b];
            let same_ring = self.cs[a].ring.is_some() && self.cs[a].ring == self.cs[b].ring;
            let age = self.now.saturating_sub(since);
            let linked = if up {
                same_ring || age >= timing::DETECT_MERGE
            } else {
                same_ring && age < timing::DETECT_LOSS
            };
            alive(b) && !isolated(a) && !isolated(b) && linked
        };
        // Membership is transitive: the closure of the pairwise relation.
        let mut comp = vec![i];
        let mut k = 0;
        while k < comp.len() {
            let a = comp[k];
            for b in 0..self.names.len() {
                if !comp.contains(&b) && together(a, b) {
                    comp.push(b);
                }
            }
            k += 1;
        }
        comp.sort();
        comp
    }

    /// Note when each link went up or down.
    fn update_links(&mut self) {
        let n = self.names.len();
        for a in 0..n {
            for b in 0..n {
                let up = self.reachable(a, b);
                if self.link[a][b].0 != up {
                    self.link[a][b] = (up, self.now);
                }
            }
        }
    }

    fn crashed(&mut self, i: Idx, detect: u64) {
        self.merge_after[i] = self.now + detect;
        self.schedule(self.now + detect + 800, Ev::Reconfigure);
    }

    fn expected_votes(&self) -> usize {
        self.names.len()
    }

    fn votequorum(&self) -> votequorum::VoteQuorum {
        votequorum::VoteQuorum {
            two_node: self.opts.two_node,
            wait_for_all: self.opts.wait_for_all.then_some(true),
            ..votequorum::VoteQuorum::new(self.expected_votes() as u32)
        }
    }

    /// votequorum's `quorum`: votes needed, one vote per node.
    fn votes_needed(&self) -> u32 {
        self.votequorum().needed()
    }

    /// Partitions, for the invariants, are corosync memberships (rings).
    /// Is `i` in a ring that has quorum?
    fn ring_quorate(&self, i: Idx) -> bool {
        self.cs[i].up && self.cs[i].ring.is_some() && self.vq_quorate(i)
    }

    /// In a quorate ring that is not in the middle of a membership change:
    /// a write acknowledged now is protected by invariant I2.
    fn stably_quorate(&self, i: Idx) -> bool {
        self.ring_quorate(i)
            && !self.cs[i]
                .ring
                .is_some_and(|r| self.frozen.get(&r).copied().unwrap_or(false))
    }

    /// Freeze the rings whose members can no longer all reach each other:
    /// totem holds their messages until the new membership forms.
    fn freeze_broken_rings(&mut self) {
        for i in 0..self.names.len() {
            if let Some(ring) = self.cs[i].ring {
                let members = self.cs[i].ring_members.clone();
                let broken = members
                    .iter()
                    .any(|j| !(self.cs[*j].up && self.reachable(i, *j)));
                if broken {
                    self.frozen.insert(ring, true);
                }
            }
        }
    }

    fn topology_changed(&mut self, delay: u64) {
        self.freeze_broken_rings();
        self.schedule(self.now + delay, Ev::Reconfigure);
        self.schedule(self.now + 3 * self.opts.tick, Ev::LinkCheck);
    }

    // ----- event handling --------------------------------------------------

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Fault(f) => self.fault(f),
            Ev::Reconfigure => self.reconfigure(),
            Ev::CorosyncStart(i) => self.corosync_start(i),
            Ev::CorosyncReady(i) => {
                if self.cs[i].up && !self.cs[i].ready {
                    self.cs[i].ready = true;
                    self.reconfigure_nodes(&[i]);
                    self.schedule(self.now + timing::MERGE_AFTER_START, Ev::Reconfigure);
                    self.start_session(i);
                }
            }
            Ev::Dispatch { node, pid, ev } => self.deliver(node, pid, *ev),
            Ev::Sequence { sender, data } => self.sequence(sender, data),
            Ev::ProcLeave { member, reason } => self.proc_change(member, Some(reason)),
            Ev::ProcJoin { member } => self.proc_change(member, None),
            Ev::Timer { node, pid, gen } => {
                let current = self.coroha[node]
                    .as_ref()
                    .is_some_and(|c| c.pid == pid && c.timer_gen == gen);
                if current {
                    if let Some(c) = self.coroha[node].as_mut() {
                        c.timer = None;
                    }
                    self.step_policy(node, Input::Timer);
                }
            }
            Ev::OrderTimeout { node, pid, id } => {
                let waiting = self.coroha[node]
                    .as_ref()
                    .is_some_and(|c| c.pid == pid && c.pending_order == Some(id));
                if waiting {
                    self.step_policy(
                        node,
                        Input::HaReply {
                            id,
                            result: Err(HaFailure::Timeout),
                        },
                    );
                }
            }
            Ev::OrderApply {
                node,
                pid,
                id,
                order,
            } => self.apply_order(node, pid, id, order),
            Ev::LinkCheck => self.link_check(),
            Ev::Write => {
                self.write();
                let next = self.now + self.opts.write_interval;
                self.schedule(next, Ev::Write);
            }
            Ev::FenceDone { node, pid } => {
                // The fence hook restarts NSO/ConfD: it comes back in NONE
                // with its data, no longer primary.
                self.confd_stop(node, "fenced (restart)");
                self.schedule(self.now + 2000, Ev::Fault(Fault::ConfdStart(node)));
                if self.coroha[node].as_ref().is_some_and(|c| c.pid == pid) {
                    self.step_policy(node, Input::FenceDone { ok: true });
                }
            }
        }
    }

    fn fault(&mut self, f: Fault) {
        if !matches!(f, Fault::Boot(_)) || self.now > 0 {
            let text = f.describe(&self.names);
            self.record(None, text);
        }
        match f {
            Fault::Crash(i) => {
                if !self.powered[i] {
                    return;
                }
                self.powered[i] = false;
                self.cs[i] = Corosync::default();
                self.coroha[i] = None;
                self.crashed(i, timing::DETECT_LOSS);
                // The process vanishes with the machine: no TCP close, so
                // peers notice only after their ticks.
                self.confd[i].running = false;
                self.confd[i].hung = false;
                self.confd[i].owed.clear();
                self.confd[i].stalled.clear();
                self.topology_changed(timing::DETECT_LOSS);
            }
            Fault::Boot(i) => {
                if self.powered[i] {
                    return;
                }
                self.powered[i] = true;
                let data = std::mem::take(&mut self.confd[i].data);
                let history = std::mem::take(&mut self.confd[i].history);
                self.confd[i] = Confd {
                    data,
                    history,
                    ..Confd::new()
                };
                self.confd[i].set_role(self.now, HaRole::None);
                // Peers' connections to the old process are reset on their
                // next tick.
                let tick = self.now + self.opts.tick;
                self.schedule(tick, Ev::LinkCheck);
                self.schedule(self.now, Ev::CorosyncStart(i));
                self.start_coroha(i);
            }
            Fault::Partition(groups) => {
                for g in self.group.iter_mut() {
                    *g = 0;
                }
                for (k, g) in groups.iter().enumerate() {
                    for i in g {
                        self.group[*i] = k as u32 + 1;
                    }
                }
                self.topology_changed(timing::DETECT_LOSS);
            }
            Fault::Heal => {
                for g in self.group.iter_mut() {
                    *g = 0;
                }
                self.schedule(self.now + timing::DETECT_MERGE, Ev::Reconfigure);
                // Held messages flow as soon as the ring is whole again.
                self.schedule(self.now + 1, Ev::Reconfigure);
            }
            Fault::KillCoroha(i) => self.kill_coroha(i, Reason::ProcDown, timing::PROC_DOWN),
            Fault::StartCoroha(i) => {
                let stopping = self.coroha[i].as_ref().is_some_and(|c| c.policy.stopping());
                if stopping {
                    // Like systemd: start again once the stop has finished.
                    self.schedule(self.now + 1000, Ev::Fault(Fault::StartCoroha(i)));
                } else if self.powered[i] && self.coroha[i].is_none() {
                    self.start_coroha(i);
                }
            }
            Fault::StopCoroha(i) => self.operator(i, Operator::Stop { handover: true }),
            Fault::MaintenanceStop(i) => self.operator(i, Operator::Stop { handover: false }),
            Fault::ConfdStop(i) => self.confd_stop(i, "process died"),
            Fault::ConfdStart(i) => {
                if self.powered[i] && !self.confd[i].running {
                    self.confd[i].running = true;
                    self.confd[i].hung = false;
                    self.confd[i].refusing = false;
                    self.confd[i].busy_until = self.now;
                    self.confd[i].set_role(self.now, HaRole::None);
                }
            }
            Fault::ConfdHang(i) => {
                if self.confd[i].running {
                    self.confd[i].hung = true;
                    self.schedule(self.now + 3 * self.opts.tick, Ev::LinkCheck);
                }
            }
            Fault::ConfdResume(i) => {
                if !(self.confd[i].running && self.confd[i].hung) {
                    return;
                }
                self.confd[i].hung = false;
                for ev in std::mem::take(&mut self.confd[i].owed) {
                    self.send_event(i, ev);
                }
                for (pid, id, order) in std::mem::take(&mut self.confd[i].stalled) {
                    self.submit_order(i, pid, id, order);
                }
                self.confd[i].busy_until = self.confd[i].busy_until.max(self.now);
            }
            Fault::ConfdRefuse(i, on) => self.confd[i].refusing = on,
            Fault::CorosyncRestart(i) => {
                if self.cs[i].up {
                    self.corosync_stop(i, true);
                    self.schedule(self.now + 1000, Ev::CorosyncStart(i));
                }
            }
            Fault::CorosyncKill(i, after) => {
                if self.cs[i].up {
                    self.corosync_stop(i, false);
                    self.schedule(self.now + after, Ev::CorosyncStart(i));
                }
            }
            Fault::Switchover { at, to } => {
                let to = to.map(|t| self.names[t].clone());
                self.operator(at, Operator::Switchover { to });
            }
            Fault::Standby { at, node, on } => {
                let node = self.names[node].clone();
                self.operator(at, Operator::Standby { node, on });
            }
            Fault::ConfirmDown { at, node } => {
                let node = self.names[node].clone();
                self.operator(at, Operator::ConfirmDown { node });
            }
        }
    }

    fn operator(&mut self, i: Idx, op: Operator) {
        if self.coroha[i].is_some() {
            self.step_policy(i, Input::Operator(op));
        } else {
            self.record(
                Some(i),
                "operator request ignored: coroha is not running".into(),
            );
        }
    }

    // ----- corosync --------------------------------------------------------

    fn corosync_start(&mut self, i: Idx) {
        if !self.powered[i] || self.cs[i].up {
            return;
        }
        self.cs[i] = Corosync {
            up: true,
            ..Corosync::default()
        };
        self.schedule(self.now + timing::LONE_RING, Ev::CorosyncReady(i));
    }

    fn corosync_stop(&mut self, i: Idx, graceful: bool) {
        let member = self.coroha[i]
            .as_ref()
            .filter(|c| c.joined)
            .map(|c| Member {
                node: Self::id(i),
                pid: c.pid,
            });
        let ring = self.cs[i].ring;
        self.cs[i] = Corosync::default();
        let pid = self.coroha[i].as_ref().map(|c| c.pid);
        if let Some(pid) = pid {
            let at = self.now + if graceful { 53 } else { 13 };
            self.schedule(
                at,
                Ev::Dispatch {
                    node: i,
                    pid,
                    ev: Box::new(Input::Cluster(ClusterEvent::Disconnected)),
                },
            );
        }
        if graceful {
            // corosync disconnects its clients first (ProcDown), then leaves
            // the ring: a totem change with no CPG confchg follows.
            if let (Some(m), Some(_)) = (member, ring) {
                self.schedule(
                    self.now + 55,
                    Ev::ProcLeave {
                        member: m,
                        reason: Reason::ProcDown,
                    },
                );
            }
            self.schedule(self.now + 62, Ev::Reconfigure);
            self.schedule(self.now + 3 * self.opts.tick, Ev::LinkCheck);
        } else {
            self.crashed(i, timing::DETECT_LOSS + 100);
            self.topology_changed(timing::DETECT_LOSS + 100);
        }
    }

    fn reconfigure(&mut self) {
        let nodes: Vec<Idx> = (0..self.names.len())
            .filter(|i| self.cs[*i].up && self.cs[*i].ready)
            .collect();
        self.reconfigure_nodes(&nodes);
    }

    /// Form new rings where the physical components differ from the rings.
    fn reconfigure_nodes(&mut self, nodes: &[Idx]) {
        let mut done = vec![false; self.names.len()];
        let mut changed: Vec<Vec<Idx>> = vec![];
        for &i in nodes {
            if done[i] {
                continue;
            }
            let comp: Vec<Idx> = self
                .component(i)
                .into_iter()
                .filter(|j| nodes.contains(j))
                .collect();
            for j in &comp {
                done[*j] = true;
            }
            let same = comp
                .iter()
                .all(|j| self.cs[*j].ring.is_some() && self.cs[*j].ring_members == comp);
            if !same {
                changed.push(comp);
            }
        }
        if changed.is_empty() {
            // The ring survived (a split healed before it was noticed):
            // totem resumes and delivers what it held, once every member
            // is reachable again.
            let whole = |s: &Sim, r: &RingId| {
                (0..s.names.len())
                    .filter(|k| s.cs[*k].ring == Some(*r))
                    .all(|a| {
                        (0..s.names.len())
                            .filter(|k| s.cs[*k].ring == Some(*r))
                            .all(|b| s.reachable(a, b))
                    })
            };
            let healed: Vec<RingId> = self
                .frozen
                .keys()
                .copied()
                .filter(|r| whole(self, r))
                .collect();
            for r in healed {
                self.frozen.remove(&r);
            }
            let held = std::mem::take(&mut self.held);
            for (sender, data) in held {
                self.sequence(sender, data);
            }
            return;
        }
        self.ring_seq += 4;
        for comp in changed {
            let ring = RingId {
                rep: Self::id(comp[0]),
                seq: self.ring_seq,
            };
            if self.votequorum().sees_all(comp.len() as u32) {
                for j in &comp {
                    self.cs[*j].wfa_ok = true;
                }
            }
            for &j in &comp {
                let old = std::mem::replace(&mut self.cs[j].ring_members, comp.clone());
                if let Some(r) = self.cs[j].ring.replace(ring) {
                    self.frozen.remove(&r);
                }
                self.ring_changed(j, &old);
            }
        }
        self.frozen.clear();
        // Messages held during the change: delivered in the new
        // configuration, to the members that moved on with the sender.
        for (sender, data) in std::mem::take(&mut self.held) {
            self.sequence(sender, data);
        }
    }

    fn group_members(&self, ring_members: &[Idx]) -> Vec<Member> {
        let mut members: Vec<Member> = ring_members
            .iter()
            .filter_map(|j| {
                self.coroha[*j]
                    .as_ref()
                    .filter(|c| c.joined)
                    .map(|c| Member {
                        node: Self::id(*j),
                        pid: c.pid,
                    })
            })
            .collect();
        members.sort();
        members
    }

    fn vq_quorate(&self, j: Idx) -> bool {
        self.votequorum()
            .quorate(self.cs[j].ring_members.len() as u32, self.cs[j].wfa_ok)
    }

    /// The callbacks one node gets for a new ring, in corosync's order.
    fn ring_changed(&mut self, j: Idx, old_ring: &[Idx]) {
        self.i2_checked[j] = false;
        let Some(ring) = self.cs[j].ring else { return };
        let ids: Vec<NodeId> = self.cs[j]
            .ring_members
            .iter()
            .map(|k| Self::id(*k))
            .collect();
        let joined = self.coroha[j].as_ref().is_some_and(|c| c.joined);
        if joined {
            let new = self.group_members(&self.cs[j].ring_members.clone());
            let old = self.coroha[j]
                .as_ref()
                .map(|c| c.cpg_view.clone())
                .unwrap_or_default();
            if new != old {
                let left = old
                    .iter()
                    .filter(|m| !new.contains(m))
                    .map(|m| {
                        let gone_node = !ids.contains(&m.node);
                        (
                            *m,
                            if gone_node {
                                Reason::NodeDown
                            } else {
                                Reason::ProcDown
                            },
                        )
                    })
                    .collect();
                let joined_list = new
                    .iter()
                    .filter(|m| !old.contains(m))
                    .map(|m| {
                        let new_node = !old_ring.contains(&(m.node as Idx - 1));
                        (
                            *m,
                            if new_node {
                                Reason::NodeUp
                            } else {
                                Reason::Join
                            },
                        )
                    })
                    .collect();
                self.push_cpg(
                    j,
                    ClusterEvent::CpgConfChg {
                        members: new.clone(),
                        left,
                        joined: joined_list,
                    },
                );
            }
            self.push_cpg(
                j,
                ClusterEvent::CpgTotem {
                    ring,
                    members: ids.clone(),
                },
            );
        }
        if self.coroha[j].as_ref().is_some_and(|c| c.session) {
            let quorate = self.vq_quorate(j);
            let needed = self.votes_needed();
            self.push_vq(j, ClusterEvent::QuorumNodes { ring, members: ids });
            self.push_vq(j, ClusterEvent::Quorum { quorate, needed });
        }
    }

    fn push_fd(&mut self, j: Idx, fd: Fd, ev: ClusterEvent) {
        let Some(pid) = self.coroha[j].as_ref().map(|c| c.pid) else {
            return;
        };
        let jitter = match fd {
            Fd::Cpg => self.rng.range(0, 1),
            Fd::Vq => self.rng.range(0, 8),
        };
        let slot = fd as usize;
        let at = (self.now + jitter).max(self.cs[j].fd_last[slot]);
        self.cs[j].fd_last[slot] = at;
        if let (Fd::Cpg, ClusterEvent::CpgConfChg { members, .. }) = (fd, &ev) {
            if let Some(c) = self.coroha[j].as_mut() {
                c.cpg_view = members.clone();
            }
        }
        self.schedule(
            at,
            Ev::Dispatch {
                node: j,
                pid,
                ev: Box::new(Input::Cluster(ev)),
            },
        );
    }

    fn push_cpg(&mut self, j: Idx, ev: ClusterEvent) {
        self.push_fd(j, Fd::Cpg, ev);
    }

    fn push_vq(&mut self, j: Idx, ev: ClusterEvent) {
        self.push_fd(j, Fd::Vq, ev);
    }

    /// The total-order point of a multicast.
    fn sequence(&mut self, sender: Member, data: Vec<u8>) {
        let s = sender.node as Idx - 1;
        let Some(ring) = self.cs[s].ring else { return };
        if self.frozen.get(&ring).copied().unwrap_or(false) {
            self.held.push((sender, data));
            return;
        }
        // A message already in totem is delivered even if its sender died
        // since (virtual synchrony); receivers judge it by its view stamp.
        for j in self.cs[s].ring_members.clone() {
            if self.coroha[j].as_ref().is_some_and(|c| c.joined) {
                self.push_cpg(
                    j,
                    ClusterEvent::Deliver {
                        sender,
                        data: data.clone(),
                    },
                );
            }
        }
    }

    /// A process joins or leaves the group without a ring change.
    fn proc_change(&mut self, member: Member, leave: Option<Reason>) {
        let i = member.node as Idx - 1;
        if leave.is_none() {
            let ok = self.coroha[i]
                .as_ref()
                .is_some_and(|c| c.pid == member.pid && c.session);
            if !ok || self.cs[i].ring.is_none() {
                return;
            }
            if let Some(c) = self.coroha[i].as_mut() {
                c.joined = true;
            }
        }
        let ring_members = if self.cs[i].ring.is_some() {
            self.cs[i].ring_members.clone()
        } else {
            // corosync on that node is gone: tell the ring it was in.
            (0..self.names.len())
                .filter(|j| {
                    self.coroha[*j]
                        .as_ref()
                        .is_some_and(|c| c.cpg_view.contains(&member))
                })
                .collect()
        };
        for j in ring_members {
            let Some(c) = self.coroha[j].as_ref().filter(|c| c.joined) else {
                continue;
            };
            let mut members = c.cpg_view.clone();
            let (left, joined) = match leave {
                Some(reason) => {
                    if !members.contains(&member) {
                        continue;
                    }
                    members.retain(|m| *m != member);
                    (vec![(member, reason)], vec![])
                }
                None => {
                    if members.contains(&member) {
                        continue;
                    }
                    members.push(member);
                    members.sort();
                    (vec![], vec![(member, Reason::Join)])
                }
            };
            if j == i && leave.is_none() {
                members = self.group_members(&self.cs[i].ring_members.clone());
            }
            self.push_cpg(
                j,
                ClusterEvent::CpgConfChg {
                    members,
                    left,
                    joined,
                },
            );
        }
    }

    // ----- coroha ----------------------------------------------------------

    fn start_coroha(&mut self, i: Idx) {
        self.next_pid += 1;
        let settings = Settings::from_config(&self.opts.config, Self::id(i));
        let mut policy = Policy::new(settings, self.disk[i].clone());
        match self.opts.sabotage {
            Some(Sabotage::SkipQuorumGate) => policy.sabotage_skip_quorum_gate(),
            Some(Sabotage::SkipDemoteFirst) => policy.sabotage_skip_demote_first(),
            None => {}
        }
        self.coroha[i] = Some(Coroha {
            pid: self.next_pid,
            policy,
            session: false,
            joined: false,
            cpg_view: vec![],
            timer: None,
            timer_gen: 0,
            pending_order: None,
        });
        self.step_policy(i, Input::Timer);
        if self.cs[i].ready {
            self.start_session(i);
        } else {
            // The first connection attempt fails: corosync is not there.
            self.step_policy(i, Input::Cluster(ClusterEvent::Disconnected));
        }
    }

    /// coroha connects to corosync: votequorum first, then the CPG join.
    fn start_session(&mut self, i: Idx) {
        let Some(c) = self.coroha[i].as_mut() else {
            return;
        };
        if c.session {
            return;
        }
        c.session = true;
        let member = Member {
            node: Self::id(i),
            pid: c.pid,
        };
        self.step_policy(i, Input::Cluster(ClusterEvent::Connected { local: member }));
        if let Some(ring) = self.cs[i].ring {
            let ids = self.cs[i]
                .ring_members
                .iter()
                .map(|k| Self::id(*k))
                .collect();
            let quorate = self.vq_quorate(i);
            let needed = self.votes_needed();
            self.push_vq(i, ClusterEvent::QuorumNodes { ring, members: ids });
            self.push_vq(i, ClusterEvent::Quorum { quorate, needed });
        }
        self.schedule(self.now + 1, Ev::ProcJoin { member });
    }

    fn kill_coroha(&mut self, i: Idx, reason: Reason, delay: u64) {
        let Some(c) = self.coroha[i].take() else {
            return;
        };
        if c.joined {
            let member = Member {
                node: Self::id(i),
                pid: c.pid,
            };
            self.schedule(self.now + delay, Ev::ProcLeave { member, reason });
        }
    }

    fn deliver(&mut self, node: Idx, pid: u32, input: Input) {
        let Some(c) = self.coroha[node].as_mut().filter(|c| c.pid == pid) else {
            return;
        };
        match &input {
            Input::Cluster(ClusterEvent::Disconnected) => {
                c.session = false;
                c.joined = false;
                c.cpg_view.clear();
            }
            Input::Cluster(ClusterEvent::Connected { .. }) => {}
            _ if !c.session && matches!(input, Input::Cluster(_)) => return,
            _ => {}
        }
        self.step_policy(node, input);
        // After a lost session, reconnect once corosync is back.
        if self.coroha[node].as_ref().is_some_and(|c| !c.session) && self.cs[node].ready {
            self.start_session(node);
        }
    }

    fn step_policy(&mut self, i: Idx, input: Input) {
        let now = self.now;
        let Some(c) = self.coroha[i].as_mut() else {
            return;
        };
        if let Input::HaReply { id, .. } = &input {
            if c.pending_order != Some(*id) {
                return;
            }
            c.pending_order = None;
        }
        let outputs = c.policy.step(now, input);
        let pid = c.pid;
        for out in outputs {
            self.output(i, pid, out);
        }
        self.rearm_timer(i);
    }

    fn rearm_timer(&mut self, i: Idx) {
        let Some(c) = self.coroha[i].as_mut() else {
            return;
        };
        let Some(at) = c.policy.next_deadline() else {
            return;
        };
        let at = at.max(self.now);
        if c.timer.map(|(t, _)| t) == Some(at) {
            return;
        }
        c.timer_gen += 1;
        c.timer = Some((at, c.timer_gen));
        let (pid, gen) = (c.pid, c.timer_gen);
        self.schedule(at, Ev::Timer { node: i, pid, gen });
    }

    fn output(&mut self, i: Idx, pid: u32, out: Output) {
        match out {
            Output::Multicast(data) => {
                let joined = self.coroha[i].as_ref().is_some_and(|c| c.joined);
                if joined {
                    let sender = Member {
                        node: Self::id(i),
                        pid,
                    };
                    self.schedule(self.now + timing::MCAST, Ev::Sequence { sender, data });
                }
            }
            Output::Order { id, order } => {
                let timeout = match order {
                    HaOrder::BeSecondary { .. } => self.opts.config.ha.besecondary_timeout.as_ms(),
                    _ => self.opts.config.ha.timeout.as_ms(),
                };
                if let Some(c) = self.coroha[i].as_mut() {
                    c.pending_order = Some(id);
                }
                self.schedule(self.now + timeout, Ev::OrderTimeout { node: i, pid, id });
                self.submit_order(i, pid, id, order);
            }
            Output::Persist(p) => self.disk[i] = p,
            Output::Fence => {
                self.record(Some(i), "fence hook: restarting NSO/ConfD".into());
                self.schedule(self.now + 100, Ev::FenceDone { node: i, pid });
            }
            Output::RoleChanged { from, to, cause } => {
                if cause.trim().is_empty() {
                    self.violate(
                        "I4",
                        format!("{} changed role without a cause", self.names[i]),
                    );
                }
                let from = from.map_or("unknown", |r| r.name());
                self.record(Some(i), format!("role {from} -> {} ({cause})", to.name()));
            }
            Output::Log { level, text } => {
                if level >= Level::Info || self.opts.verbose {
                    self.record(Some(i), text);
                }
            }
            Output::Leave => {
                self.record(Some(i), "coroha leaves the group and exits".into());
                self.kill_coroha(i, Reason::Leave, 1);
            }
        }
    }

    // ----- NSO/ConfD -------------------------------------------------------

    fn send_event(&mut self, i: Idx, ev: HaEvent) {
        if self.confd[i].hung {
            self.confd[i].owed.push(ev);
            return;
        }
        if let Some(pid) = self.coroha[i].as_ref().map(|c| c.pid) {
            self.schedule(
                self.now + 1,
                Ev::Dispatch {
                    node: i,
                    pid,
                    ev: Box::new(Input::HaEvent(ev)),
                },
            );
        }
    }

    fn reply(&mut self, i: Idx, pid: u32, id: u64, result: Result<HaReply, HaFailure>, delay: u64) {
        self.schedule(
            self.now + delay,
            Ev::Dispatch {
                node: i,
                pid,
                ev: Box::new(Input::HaReply { id, result }),
            },
        );
    }

    fn submit_order(&mut self, i: Idx, pid: u32, id: u64, order: HaOrder) {
        let c = &self.confd[i];
        if !c.running {
            self.reply(i, pid, id, Err(HaFailure::Unreachable), 1);
            return;
        }
        if c.hung {
            // Served after the resume, if ever; the coroha side times out.
            self.confd[i].stalled.push((pid, id, order));
            return;
        }
        let latency = match &order {
            HaOrder::GetStatus => 1,
            HaOrder::BePrimary { .. } => 10,
            HaOrder::BeNone | HaOrder::BeRelay => 5,
            HaOrder::SecondaryDead { .. } => 2,
            HaOrder::BeSecondary { primary, .. } => {
                match self.names.iter().position(|n| n == primary) {
                    Some(p) if self.confd[p].hung && self.reachable(i, p) => 10_000,
                    Some(p) if !self.reachable(i, p) => 1000,
                    _ => 60,
                }
            }
        };
        let at = self.now.max(c.busy_until) + latency;
        self.confd[i].busy_until = at;
        self.schedule(
            at,
            Ev::OrderApply {
                node: i,
                pid,
                id,
                order,
            },
        );
    }

    fn set_confd_role(&mut self, i: Idx, role: HaRole) {
        let before = self.confd[i].role;
        self.confd[i].set_role(self.now, role);
        if before != role {
            self.role_changes.push((self.now, i, role));
            self.i2_checked[i] = false;
        }
    }

    fn apply_order(&mut self, i: Idx, pid: u32, id: u64, order: HaOrder) {
        if !self.confd[i].serving() {
            // Died or froze while the order was queued.
            if !self.confd[i].running {
                self.reply(i, pid, id, Err(HaFailure::Unreachable), 0);
            }
            return;
        }
        let refused = self.confd[i].refusing && order != HaOrder::GetStatus;
        if refused {
            self.reply(i, pid, id, Err(HaFailure::Error(code::BADSTATE)), 0);
            return;
        }
        let result = match order {
            HaOrder::GetStatus => {
                let c = &self.confd[i];
                let mut nodes: Vec<String> =
                    c.parent.iter().map(|p| self.names[*p].clone()).collect();
                nodes.extend(c.children.iter().rev().map(|k| self.names[*k].clone()));
                Ok(HaReply::Status {
                    role: c.role,
                    nodes,
                })
            }
            HaOrder::BePrimary { .. } => {
                if self.confd[i].role != HaRole::Primary {
                    self.detach_from_parent(i);
                    self.set_confd_role(i, HaRole::Primary);
                    self.send_event(i, HaEvent::IsPrimary);
                }
                Ok(HaReply::Ok)
            }
            HaOrder::BeNone => {
                self.drop_children(i, code::HA_CLOSED);
                self.detach_from_parent(i);
                self.set_confd_role(i, HaRole::None);
                self.send_event(i, HaEvent::IsNone);
                Ok(HaReply::Ok)
            }
            HaOrder::BeRelay => {
                if self.confd[i].role == HaRole::Secondary {
                    self.set_confd_role(i, HaRole::Relay);
                    Ok(HaReply::Ok)
                } else {
                    Err(HaFailure::Error(code::BADSTATE))
                }
            }
            HaOrder::SecondaryDead { node } => {
                if let Some(k) = self.names.iter().position(|n| *n == node) {
                    if self.confd[i].children.contains(&k) {
                        self.break_link(i, k, code::HA_CLOSED, false);
                    }
                }
                Ok(HaReply::Ok)
            }
            HaOrder::BeSecondary { primary, .. } => self.be_secondary(i, &primary),
        };
        self.reply(i, pid, id, result, 0);
    }

    fn be_secondary(&mut self, i: Idx, primary: &str) -> Result<HaReply, HaFailure> {
        let Some(p) = self.names.iter().position(|n| n == primary) else {
            return Err(HaFailure::Error(code::HA_BADNAME));
        };
        if self.confd[i].parent == Some(p)
            && matches!(self.confd[i].role, HaRole::Secondary | HaRole::Relay)
        {
            return Ok(HaReply::Ok);
        }
        let failure = if p == i || !self.confd[p].running || !self.reachable(i, p) {
            Some(code::HA_CONNECT)
        } else if self.confd[p].hung
            || !matches!(self.confd[p].role, HaRole::Primary | HaRole::Relay)
        {
            Some(code::HA_CLOSED)
        } else {
            None
        };
        self.drop_children(i, code::HA_CLOSED);
        self.detach_from_parent(i);
        if let Some(c) = failure {
            self.set_confd_role(i, HaRole::None);
            self.send_event(i, HaEvent::IsNone);
            return Err(HaFailure::Error(c));
        }
        self.confd[i].data = self.confd[p].data.clone();
        self.confd[i].silent_since = None;
        self.confd[i].parent = Some(p);
        self.confd[p].children.push(i);
        self.set_confd_role(i, HaRole::Secondary);
        let top = self.top_primary(p);
        self.send_event(top, HaEvent::SecondaryArrived(self.names[i].clone()));
        self.send_event(i, HaEvent::SecondaryInitialized);
        Ok(HaReply::Ok)
    }

    fn top_primary(&self, mut p: Idx) -> Idx {
        while let Some(up) = self.confd[p].parent {
            p = up;
        }
        p
    }

    fn detach_from_parent(&mut self, i: Idx) {
        if let Some(p) = self.confd[i].parent {
            self.confd[p].children.retain(|k| *k != i);
            let top = self.top_primary(p);
            self.send_event(top, HaEvent::SecondaryDied(self.names[i].clone()));
            self.confd[i].parent = None;
        }
    }

    /// Children of `i` lose their primary (NOPRIMARY `code`, then NONE).
    fn drop_children(&mut self, i: Idx, code: i32) {
        for k in self.confd[i].children.clone() {
            self.break_link(i, k, code, true);
        }
    }

    /// The HA link between parent `p` and child `k` is gone.
    fn break_link(&mut self, p: Idx, k: Idx, code: i32, tell_parent: bool) {
        self.confd[p].children.retain(|x| *x != k);
        if tell_parent && self.confd[p].running {
            let top = self.top_primary(p);
            self.send_event(top, HaEvent::SecondaryDied(self.names[k].clone()));
        }
        if self.confd[k].parent == Some(p) {
            self.confd[k].parent = None;
            self.confd[k].silent_since = None;
            if self.confd[k].running {
                self.drop_children(k, code);
                self.set_confd_role(k, HaRole::None);
                self.send_event(k, HaEvent::NoPrimary(code));
                self.send_event(k, HaEvent::IsNone);
            }
        }
    }

    fn confd_stop(&mut self, i: Idx, why: &str) {
        if !self.confd[i].running {
            return;
        }
        self.record(Some(i), format!("NSO/ConfD stops: {why}"));
        // The process is gone: TCP connections close at once, and it says
        // nothing more itself.
        self.confd[i].running = false;
        self.drop_children(i, code::HA_CLOSED);
        self.detach_from_parent(i);
        self.confd[i].hung = false;
        self.confd[i].owed.clear();
        // Calls in progress see the connection close.
        for (pid, id, _) in std::mem::take(&mut self.confd[i].stalled) {
            self.reply(i, pid, id, Err(HaFailure::Unreachable), 0);
        }
        self.set_confd_role(i, HaRole::None);
    }

    /// Ticks: links whose peer is unreachable, dead without a close, or
    /// frozen are dropped after three tick timeouts.
    fn link_check(&mut self) {
        for k in 0..self.names.len() {
            let Some(p) = self.confd[k].parent else {
                continue;
            };
            if !self.confd[p].children.contains(&k) {
                // A rebooted primary no longer knows the connection: reset.
                self.break_link(p, k, code::HA_CLOSED, true);
                continue;
            }
            let silent = !self.reachable(p, k)
                || !self.confd[p].running
                || !self.confd[k].running
                || self.confd[p].hung
                || self.confd[k].hung;
            if !silent {
                self.confd[k].silent_since = None;
                continue;
            }
            let since = *self.confd[k].silent_since.get_or_insert(self.now);
            let limit = since + 3 * self.opts.tick;
            if self.now >= limit {
                self.break_link(p, k, code::HA_NOTICK, true);
            } else {
                self.schedule(limit, Ev::LinkCheck);
            }
        }
    }

    // ----- workload and invariants ------------------------------------------

    fn descendants(&self, p: Idx, out: &mut Vec<Idx>) {
        for k in &self.confd[p].children {
            out.push(*k);
            self.descendants(*k, out);
        }
    }

    /// The client writes to every node whose NSO/ConfD is a serving primary;
    /// a write is acknowledged once every attached secondary has it.
    fn write(&mut self) {
        for p in 0..self.names.len() {
            if !(self.confd[p].serving() && self.confd[p].role == HaRole::Primary) {
                continue;
            }
            let mut tree = vec![];
            self.descendants(p, &mut tree);
            let blocked = tree
                .iter()
                .any(|k| !self.confd[*k].serving() || !self.reachable(p, *k));
            if blocked {
                self.writes_failed += 1;
                continue;
            }
            let w = self.next_write;
            self.next_write += 1;
            self.confd[p].data.push(w);
            for k in tree {
                self.confd[k].data.push(w);
            }
            self.writes_acked += 1;
            if self.stably_quorate(p) {
                self.acked.push(w);
            }
        }
    }

    fn check_safety(&mut self) {
        let n = self.names.len();
        // I1: one primary per quorate partition (corosync membership).
        for i in 0..n {
            if !self.ring_quorate(i) {
                continue;
            }
            let ring = self.cs[i].ring;
            // A frozen server serves nobody; it counts again on resume.
            let serving_primary = |k: &Idx| {
                self.cs[*k].ring == ring
                    && self.confd[*k].serving()
                    && self.confd[*k].role == HaRole::Primary
            };
            if (0..n).filter(serving_primary).nth(1).is_some() {
                let primaries: Vec<Idx> = (0..n).filter(serving_primary).collect();
                let list = primaries
                    .iter()
                    .map(|k| self.names[*k].clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.violate(
                    "I1",
                    format!("two primaries in one quorate partition: {list}"),
                );
                return;
            }
        }
        // I2: a primary serving a quorate partition has every write that
        // was acknowledged by a quorate primary before.
        for i in 0..n {
            let serving_primary = self.confd[i].serving() && self.confd[i].role == HaRole::Primary;
            if !self.i2_checked[i] && serving_primary && self.ring_quorate(i) {
                self.i2_checked[i] = true;
                if let Err(missing) = self.confd[i].has_all(&self.acked) {
                    let text = format!("{} is primary in a quorate partition without acknowledged write #{missing}", self.names[i]);
                    self.violate("I2", text);
                    return;
                }
            }
        }
        // I1: a primary without quorum stops within the bound. Only coroha
        // can make it stop: a node whose coroha is not running (killed, or
        // stopped in maintenance mode) is unmanaged and exempt.
        for i in 0..n {
            let primary = self.confd[i].running
                && self.confd[i].role == HaRole::Primary
                && self.coroha[i].is_some();
            if primary && !self.ring_quorate(i) {
                let since = *self.nonquorate_primary_since[i].get_or_insert(self.now);
                if self.now - since > self.opts.quorum_loss_bound {
                    self.violate(
                        "I1",
                        format!(
                            "{} is still primary {} after losing quorum",
                            self.names[i],
                            secs(self.now - since)
                        ),
                    );
                    return;
                }
            } else {
                self.nonquorate_primary_since[i] = None;
            }
        }
    }

    /// I3: after the last fault has settled, every quorate partition with an
    /// eligible node has one primary and every other healthy node follows it.
    pub fn check_liveness(&mut self) {
        if self.violation.is_some() {
            return;
        }
        let n = self.names.len();
        let mut seen = vec![false; n];
        for i in 0..n {
            if seen[i] || !self.ring_quorate(i) {
                continue;
            }
            let comp = self.component(i);
            for k in &comp {
                seen[*k] = true;
            }
            let managed = |s: &Sim, k: Idx| {
                s.coroha[k].is_some() && s.confd[k].serving() && !s.confd[k].refusing
            };
            let eligible: Vec<Idx> = comp
                .iter()
                .copied()
                .filter(|k| {
                    let node = self.opts.config.nodes[*k].get_ref();
                    let standby = self.coroha[*k]
                        .as_ref()
                        .is_some_and(|c| c.policy.persisted().standby);
                    managed(self, *k)
                        && node.can_primary
                        && !standby
                        && self.confd[*k].has_all(&self.acked).is_ok()
                })
                .collect();
            let primaries: Vec<Idx> = comp
                .iter()
                .copied()
                .filter(|k| self.confd[*k].running && self.confd[*k].role == HaRole::Primary)
                .collect();
            let names = |v: &[Idx]| {
                v.iter()
                    .map(|k| self.names[*k].clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // Only a running coroha carries what the election knows: without
            // a quorum of daemons nobody may be promoted (policy rule).
            let daemons = comp.iter().filter(|k| self.coroha[**k].is_some()).count() as u32;
            if eligible.is_empty() || daemons < self.votes_needed() {
                continue;
            }
            if primaries.len() != 1 {
                let text = format!(
                    "partition [{}] has {} primaries ({}) although {} could be primary",
                    names(&comp),
                    primaries.len(),
                    names(&primaries),
                    names(&eligible)
                );
                self.violate("I3", text);
                return;
            }
            let p = primaries[0];
            let mut tree = vec![];
            self.descendants(p, &mut tree);
            let strays: Vec<Idx> = comp
                .iter()
                .copied()
                .filter(|k| *k != p && managed(self, *k) && !tree.contains(k))
                .collect();
            if !strays.is_empty() {
                let text = format!(
                    "{} not attached to primary {}",
                    names(&strays),
                    self.names[p]
                );
                self.violate("I3", text);
                return;
            }
        }
    }

    /// Who is primary now (serving NSO/ConfD), for expectations.
    pub fn primaries(&self) -> Vec<Idx> {
        (0..self.names.len())
            .filter(|k| self.confd[*k].running && self.confd[*k].role == HaRole::Primary)
            .collect()
    }

    pub fn secondaries_of(&self, p: Idx) -> Vec<Idx> {
        let mut tree = vec![];
        self.descendants(p, &mut tree);
        tree.sort();
        tree
    }
}
