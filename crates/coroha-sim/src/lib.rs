//! A deterministic discrete-event simulation of a corosync cluster whose
//! nodes each run the real policy, a simulated NSO/ConfD and a client
//! workload. It models what was measured on corosync 3.1.7 (see
//! docs/reference/corosync-3.1.7-client.md): membership changes after token + consensus,
//! rings named (representative, seq) with the same seq on both sides of a
//! split, callbacks in the order CPG confchg → totem → votequorum node list →
//! quorum on two fds read in random order, AGREED delivery in one total order
//! per configuration, and messages sent during a membership change held and
//! delivered in the next configuration only to the members that moved on.
//! The same seed gives the same run, byte for byte.

mod check;
pub mod confd;
mod coroha;
mod corosync;
pub mod coverage;
mod fault;
pub mod probe;
pub mod rng;
pub mod scenario;
mod server;
mod settle;
pub mod votequorum;

pub use coverage::{Coverage, Rare};
pub use fault::Fault;

/// The built-in story `coroha simulate` tells without a scenario file.
pub const DEMO: &str = include_str!("demo.toml");

use confd::{Confd, Idx};
use confd_ha::{HaFailure, HaOrder, HaRole};
use coroha_config::Config;
use coroha_policy::cluster::{Member, NodeId, Reason, RingId};
use coroha_policy::message::Envelope;
use coroha_policy::{Input, Persisted, Policy};
use rng::Rng;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

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

/// How often a simulated operator tries a refused request (once a second).
const OPERATOR_TRIES: u32 = 60;

/// Ways to break the policy on purpose, to prove the checker can fail.
pub use coroha_policy::Sabotage;

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
    /// How far the nodes' clocks, which stamp commits with transaction
    /// ids, are apart (µs): node i runs (i mod 3 − 1) × this ahead.
    pub clock_skew_us: u64,
    /// The daemons read CDB's transaction id and elect by it (design §6).
    pub txid: bool,
    /// A primary in a partition without quorum must stop within this (ms).
    pub quorum_loss_bound: u64,
    pub sabotage: Vec<Sabotage>,
    /// Record debug lines in the timeline too.
    pub verbose: bool,
    /// Invariants whose violations are recorded but do not stop the run.
    pub allowed: Vec<String>,
    /// Carry every group message as the bytes the daemon sends
    /// (`Envelope::encode`, decoded by each receiver) instead of handing
    /// the message itself over: slower, and exercises the codec.
    pub wire: bool,
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
            // NTP keeps a LAN within milliseconds; 20 ms is generous.
            clock_skew_us: 20_000,
            txid: true,
            quorum_loss_bound: timing::DETECT_LOSS + 1500,
            sabotage: Vec::new(),
            verbose: false,
            allowed: vec![],
            wire: false,
        }
    }
}

/// A cluster configuration with nodes n1..nN for simulations: the
/// recommended production settings, with a fence hook that restarts
/// NSO/ConfD (it comes back in NONE).
pub fn default_config(nodes: usize) -> Config {
    config_with(nodes, true)
}

/// As [`default_config`], with or without a `fence_node` hook (the
/// classic fault kinds ran without one).
pub fn config_with(nodes: usize, fence_node: bool) -> Config {
    let mut text = String::from(
        "[cluster]\nstate_dir = \"/var/lib/coroha\"\n[policy]\nstartup_settle = \"5s\"\nfence_hung_primary = true\n\
         [hooks]\nfence = [\"systemctl\", \"restart\", \"ncs\"]\n",
    );
    if fence_node {
        text.push_str("fence_node = [\"stonith_admin\", \"--reboot\", \"{node}\"]\n");
    }
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
    /// coroha tries its corosync session again (it could not join while
    /// its corosync was stuck).
    Session(Idx),
    Dispatch {
        node: Idx,
        pid: u32,
        ev: Box<Input>,
    },
    Sequence {
        sender: Member,
        message: Arc<Envelope>,
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
    /// An operator request tried again after it was refused.
    OperatorRetry {
        request: Fault,
        tries: u32,
    },
    FenceDone {
        node: Idx,
        pid: u32,
    },
    /// A MAAPI read-only call reaches the local server.
    ReadOnly {
        node: Idx,
        pid: u32,
        on: bool,
    },
    /// A CDB `cdb_get_txid` reaches the local server.
    ReadTxid {
        node: Idx,
        pid: u32,
    },
    /// The `fence_node` hook run on `node` has powered `target` off.
    FenceNodeDone {
        node: Idx,
        pid: u32,
        target: Idx,
    },
}

/// What a stopped node owes itself when it resumes.
#[derive(Default)]
struct Stopped {
    /// Events for its coroha (corosync callbacks, timers, replies).
    events: Vec<Ev>,
    /// Its NSO/ConfD was serving when the node stopped.
    confd_was_serving: bool,
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
    /// Its packets are lost or it is stopped: it keeps its ring, forms no
    /// new one and delivers nothing (see `Fault::SendLoss`).
    stuck: bool,
    /// Callbacks due while stuck, delivered when it is heard again.
    late: Vec<(Fd, Input)>,
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
    /// Every packet the node sends is lost (`Fault::SendLoss`).
    send_lost: Vec<bool>,
    /// The whole node is stopped (`Fault::Freeze`): what reaches its
    /// coroha waits here, in order, until it resumes.
    stopped: Vec<Option<Stopped>>,
    /// A node whose corosync crashed stays out of everybody's ring until
    /// the others have declared it dead (NodeDown before NodeUp).
    merge_after: Vec<u64>,
    /// Per pair of nodes: reachable now, and since when.
    link: Vec<Vec<(bool, u64)>>,
    cs: Vec<Corosync>,
    ring_seq: u64,
    frozen: BTreeMap<RingId, bool>,
    held: Vec<(Member, Arc<Envelope>)>,
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
    /// The rare states this run reached (for coverage counts).
    pub reached: Vec<Rare>,
    /// Per node, the standby flag the operator asked for last: a refused
    /// request about the node is not tried again once a later one came.
    standby_wanted: Vec<Option<bool>>,
    /// The operator's `coroha pause` (true) or `resume` still running, and
    /// the generation its last request wrote.
    pause_running: Option<(bool, Option<u64>)>,
    /// Set by [`probe::ServerProbe`]: what the NSO/ConfD model says goes
    /// here instead of to the coroha processes.
    tap: Option<Vec<(Idx, probe::Said)>>,
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
            send_lost: vec![false; n],
            stopped: (0..n).map(|_| None).collect(),
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
            reached: vec![],
            standby_wanted: vec![None; n],
            pause_running: None,
            tap: None,
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

    /// What `coroha status` on node `i` shows, while its coroha runs.
    pub fn status(&self, i: Idx) -> Option<coroha_policy::Status> {
        self.coroha[i].as_ref().map(|c| c.policy.status())
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

    /// Note a rare state for the coverage counts.
    fn reach(&mut self, state: Rare) {
        if !self.reached.contains(&state) {
            self.reached.push(state);
        }
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

    // ----- event handling --------------------------------------------------

    fn handle(&mut self, ev: Ev) {
        let for_coroha = match &ev {
            Ev::Dispatch { node, .. }
            | Ev::Timer { node, .. }
            | Ev::OrderTimeout { node, .. }
            | Ev::FenceDone { node, .. }
            | Ev::FenceNodeDone { node, .. } => Some(*node),
            Ev::OperatorRetry {
                request:
                    Fault::Switchover { at, .. }
                    | Fault::Standby { at, .. }
                    | Fault::ConfirmDown { at, .. },
                ..
            } => Some(*at),
            _ => None,
        };
        if let Some(stopped) = for_coroha.and_then(|i| self.stopped[i].as_mut()) {
            stopped.events.push(ev);
            return;
        }
        match ev {
            Ev::Fault(f) => self.fault(f),
            Ev::Reconfigure => self.reconfigure(),
            Ev::CorosyncStart(i) => self.corosync_start(i),
            Ev::Session(i) => self.start_session(i),
            Ev::CorosyncReady(i) => {
                if self.cs[i].up && !self.cs[i].ready {
                    self.cs[i].ready = true;
                    self.reconfigure_nodes(&[i]);
                    self.schedule(self.now + timing::MERGE_AFTER_START, Ev::Reconfigure);
                    self.start_session(i);
                }
            }
            Ev::Dispatch { node, pid, ev } => self.deliver(node, pid, *ev),
            Ev::Sequence { sender, message } => self.sequence(sender, message),
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
            Ev::OperatorRetry { request, tries } => self.operator_request(request, tries),
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
            Ev::ReadOnly { node, pid, on } => self.apply_read_only(node, pid, on),
            Ev::ReadTxid { node, pid } => self.read_txid(node, pid),
            Ev::FenceNodeDone { node, pid, target } => {
                // Like `stonith_admin --reboot`: it answers once the node
                // is off; the node boots again later.
                self.record(
                    Some(node),
                    format!("fence_node hook: {} powered off", self.names[target]),
                );
                if self.powered[target] {
                    self.fault(Fault::Crash(target));
                }
                self.update_links();
                self.schedule(self.now + 8000, Ev::Fault(Fault::Boot(target)));
                if self.coroha[node].as_ref().is_some_and(|c| c.pid == pid) {
                    let ok = true;
                    let target = Self::id(target);
                    self.step_policy(node, Input::FenceNodeDone { node: target, ok });
                }
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
}
