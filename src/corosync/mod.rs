//! The real corosync backend: votequorum and a CPG group member through
//! `rust-corosync`, turned into the same [`ClusterEvent`]s the simulator
//! produces.
//!
//! The crate's callbacks are plain `fn`s called while the crate holds a
//! global lock, and a panic in them aborts (see docs/corosync.md). So:
//! - everything corosync runs on one dedicated thread with its own
//!   current-thread runtime; the fds are polled with tokio `AsyncFd`;
//! - callbacks only push owned records to a thread-local queue, which is
//!   drained after `dispatch` returns; nothing in them can panic or call
//!   back into the library;
//! - any dispatch error is a full reconnect: drop the fds, finalize both
//!   handles, back off, initialize again and re-join. The policy gets
//!   `Disconnected` meanwhile, which counts as quorum loss.

use crate::retry::{sleep_until, Backoff};
use coroha_policy::cluster::{ClusterEvent, Member, NodeId, Reason, RingId};
use rust_corosync::{cmap, cpg, votequorum, CsError, DispatchFlags, TrackFlags};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the daemon asks of the corosync thread.
#[derive(Debug)]
pub enum Command {
    /// Multicast to the group (AGREED); retried on TRY_AGAIN, in order.
    Multicast(Vec<u8>),
    /// Leave the group, finalize and end the thread.
    Leave,
}

/// votequorum's view of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Member,
    Dead,
    Leaving,
    /// Not seen by this corosync since it started.
    Unknown,
}

/// What corosync currently says, for `coroha status` and the metrics. The
/// policy does not read it: it gets the events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CorosyncView {
    pub connected: bool,
    pub local: Option<Member>,
    pub ring: Option<RingId>,
    pub ring_members: Vec<NodeId>,
    pub quorate: bool,
    pub expected_votes: u32,
    /// Votes quorum needs.
    pub quorum: u32,
    pub node_states: BTreeMap<NodeId, NodeState>,
    /// The coroha daemons in the CPG group.
    pub group: Vec<Member>,
    /// Corosync sessions lost since start.
    pub reconnects: u64,
    /// Multicasts that met TRY_AGAIN and were sent again.
    pub mcast_retries: u64,
}

/// The corosync thread, seen from the daemon.
pub struct Corosync {
    pub view: watch::Receiver<CorosyncView>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Corosync {
    /// Start the corosync thread; its events come on the receiver. `nodes`
    /// are the configured node ids whose votequorum state is tracked for the
    /// status.
    pub fn start(
        group: String,
        nodes: Vec<NodeId>,
    ) -> std::io::Result<(Corosync, mpsc::UnboundedReceiver<ClusterEvent>)> {
        let (event_tx, events) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (view_tx, view) = watch::channel(CorosyncView::default());
        let thread = std::thread::Builder::new()
            .name("corosync".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(actor(group, nodes, event_tx, cmd_rx, view_tx)),
                    Err(e) => tracing::error!("corosync thread: cannot start a runtime: {e}"),
                }
            })?;
        let corosync = Corosync {
            view,
            commands: cmd_tx,
            thread: Some(thread),
        };
        Ok((corosync, events))
    }

    pub fn multicast(&self, data: Vec<u8>) {
        let _ = self.commands.send(Command::Multicast(data));
    }

    /// Leave the group and wait for the thread to finish (bounded by
    /// corosync's own teardown, ~40 ms per handle when it died).
    pub fn leave(mut self) {
        let _ = self.commands.send(Command::Leave);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ----- callbacks: record, never act ----------------------------------------

/// One callback's data, owned.
#[derive(Debug)]
enum Raw {
    Confchg {
        members: Vec<Member>,
        left: Vec<(Member, Reason)>,
        joined: Vec<(Member, Reason)>,
    },
    Totem {
        ring: RingId,
        members: Vec<NodeId>,
    },
    Deliver {
        sender: Member,
        data: Vec<u8>,
    },
    Nodes {
        ring: RingId,
        members: Vec<NodeId>,
    },
    Quorum {
        quorate: bool,
    },
    Expected(u32),
}

thread_local! {
    static QUEUE: RefCell<Vec<Raw>> = const { RefCell::new(Vec::new()) };
}

/// Push from inside a callback. A panic must not cross the C boundary (it
/// would abort), and none can happen here but an allocation failure.
fn record(raw: Raw) {
    let _ = std::panic::catch_unwind(move || {
        QUEUE.with(|q| {
            if let Ok(mut q) = q.try_borrow_mut() {
                q.push(raw);
            }
        })
    });
}

fn take_recorded() -> Vec<Raw> {
    QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

fn reason(r: cpg::Reason) -> Reason {
    match r {
        cpg::Reason::Join => Reason::Join,
        cpg::Reason::Leave => Reason::Leave,
        cpg::Reason::NodeDown => Reason::NodeDown,
        cpg::Reason::NodeUp => Reason::NodeUp,
        // Undefined is never sent by corosync 3; a process gone is the
        // cautious reading.
        cpg::Reason::ProcDown | cpg::Reason::Undefined => Reason::ProcDown,
    }
}

fn member(a: &cpg::Address) -> Member {
    Member {
        node: u32::from(a.nodeid),
        pid: a.pid,
    }
}

fn on_confchg(
    _h: &cpg::Handle,
    _group: &str,
    members: Vec<cpg::Address>,
    left: Vec<cpg::Address>,
    joined: Vec<cpg::Address>,
) {
    let with_reason =
        |l: &[cpg::Address]| l.iter().map(|a| (member(a), reason(a.reason))).collect();
    record(Raw::Confchg {
        members: members.iter().map(member).collect(),
        left: with_reason(&left),
        joined: with_reason(&joined),
    });
}

fn on_totem(_h: &cpg::Handle, ring: cpg::RingId, members: Vec<rust_corosync::NodeId>) {
    record(Raw::Totem {
        ring: RingId {
            rep: u32::from(ring.nodeid),
            seq: ring.seq,
        },
        members: members.into_iter().map(u32::from).collect(),
    });
}

fn on_deliver(
    _h: &cpg::Handle,
    _group: String,
    node: rust_corosync::NodeId,
    pid: u32,
    msg: &[u8],
    _len: usize,
) {
    record(Raw::Deliver {
        sender: Member {
            node: u32::from(node),
            pid,
        },
        data: msg.to_vec(),
    });
}

fn on_nodelist(
    _h: &votequorum::Handle,
    _ctx: u64,
    ring: votequorum::RingId,
    members: Vec<rust_corosync::NodeId>,
) {
    record(Raw::Nodes {
        ring: RingId {
            rep: u32::from(ring.nodeid),
            seq: ring.seq,
        },
        members: members.into_iter().map(u32::from).collect(),
    });
}

fn on_quorum(_h: &votequorum::Handle, _ctx: u64, quorate: bool, _nodes: Vec<votequorum::Node>) {
    // The node list's fields are private in the crate; states are read with
    // get_info after dispatch returns.
    record(Raw::Quorum { quorate });
}

fn on_expected(_h: &votequorum::Handle, _ctx: u64, expected: u32) {
    record(Raw::Expected(expected));
}

const VQ_CALLBACKS: votequorum::Callbacks = votequorum::Callbacks {
    quorum_notification_fn: Some(on_quorum),
    nodelist_notification_fn: Some(on_nodelist),
    expectedvotes_notification_fn: Some(on_expected),
};

const CPG_MODEL: cpg::ModelData = cpg::ModelData::ModelV1(cpg::Model1Data {
    // The crate cannot ask for the initial totem configuration (flags are
    // hard-coded to 0); votequorum's initial node list names the ring.
    flags: cpg::Model1Flags::None,
    deliver_fn: Some(on_deliver),
    confchg_fn: Some(on_confchg),
    totem_confchg_fn: Some(on_totem),
});

/// The context key set on both handles (the crate's initialize context is
/// broken; nothing reads it back, but it marks our handles in a core dump).
const CONTEXT: u64 = 0xC0_50_4A;

// ----- the actor ------------------------------------------------------------

/// An fd owned by libqb: registered with the reactor, never closed by us.
struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn watch_fd(fd: i32) -> std::io::Result<AsyncFd<Borrowed>> {
    // SAFETY: libqb keeps the fd open until finalize, and every AsyncFd is
    // dropped before its handle is finalized (see `session`).
    unsafe { AsyncFd::register_with_interest(Borrowed(fd), Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// How a session ended.
enum Ended {
    /// Asked to leave (or the daemon is gone): do not reconnect.
    Left,
    Lost(String),
}

struct Session<'a> {
    group: &'a str,
    nodes: &'a [NodeId],
    events: &'a mpsc::UnboundedSender<ClusterEvent>,
    view: &'a watch::Sender<CorosyncView>,
}

async fn actor(
    group: String,
    nodes: Vec<NodeId>,
    events: mpsc::UnboundedSender<ClusterEvent>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    view: watch::Sender<CorosyncView>,
) {
    let s = Session {
        group: &group,
        nodes: &nodes,
        events: &events,
        view: &view,
    };
    // corosync restarts in about a second; retry quickly at first.
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    let mut warned = false;
    loop {
        let Ended::Lost(why) = s.run(&mut commands, &mut backoff).await else {
            return;
        };
        let was_connected = view.borrow().connected;
        if was_connected || !warned {
            tracing::warn!("corosync connection lost or refused: {why}; retrying");
        } else {
            tracing::debug!("corosync still unreachable: {why}");
        }
        warned = true;
        let _ = events.send(ClusterEvent::Disconnected);
        view.send_modify(|v| {
            *v = CorosyncView {
                reconnects: v.reconnects + u64::from(was_connected),
                mcast_retries: v.mcast_retries,
                ..CorosyncView::default()
            };
        });
        // Messages queued meanwhile belong to a view that is gone; the
        // policy announces afresh after the next Connected.
        let wait = tokio::time::sleep(backoff.failed());
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Multicast(_)) => {}
                    Some(Command::Leave) | None => return,
                }
            }
        }
    }
}

fn cs(what: &str, e: CsError) -> String {
    format!("{what}: {e:?}")
}

impl Session<'_> {
    async fn run(
        &self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        backoff: &mut Backoff,
    ) -> Ended {
        let vq = match votequorum::initialize(&VQ_CALLBACKS) {
            Ok(h) => h,
            Err(e) => return Ended::Lost(cs("votequorum initialize", e)),
        };
        let cpg = match cpg::initialize(&CPG_MODEL, CONTEXT) {
            Ok(h) => h,
            Err(e) => {
                let _ = votequorum::finalize(&vq);
                return Ended::Lost(cs("cpg initialize", e));
            }
        };
        let ended = self.serve(&vq, &cpg, commands, backoff).await;
        if matches!(ended, Ended::Left) {
            let _ = cpg::leave(&cpg, self.group);
        }
        // The AsyncFds are gone (dropped inside serve) before libqb closes
        // the fds. Finalize may fail after corosync died; that is expected.
        let _ = cpg::finalize(&cpg);
        let _ = votequorum::finalize(&vq);
        ended
    }

    async fn serve(
        &self,
        vq: &votequorum::Handle,
        cpg: &cpg::Handle,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        backoff: &mut Backoff,
    ) -> Ended {
        let setup = (|| {
            let _ = cpg::context_set(cpg, CONTEXT);
            let local = cpg::local_get(cpg).map_err(|e| cs("cpg local_get", e))?;
            votequorum::trackstart(vq, CONTEXT, TrackFlags::Changes)
                .map_err(|e| cs("votequorum trackstart", e))?;
            let vq_fd = votequorum::fd_get(vq).map_err(|e| cs("votequorum fd_get", e))?;
            let cpg_fd = cpg::fd_get(cpg).map_err(|e| cs("cpg fd_get", e))?;
            Ok::<_, String>((u32::from(local), vq_fd, cpg_fd))
        })();
        let (local_node, vq_fd, cpg_fd) = match setup {
            Ok(x) => x,
            Err(e) => return Ended::Lost(e),
        };
        if let Err(e) = join(cpg, self.group).await {
            return Ended::Lost(e);
        }
        let (vq_async, cpg_async) = match (watch_fd(vq_fd), watch_fd(cpg_fd)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Ended::Lost(format!("register fd: {e}")),
        };
        backoff.succeeded();
        let local = Member {
            node: local_node,
            pid: std::process::id(),
        };
        tracing::info!(
            "connected to corosync as node {local_node}; joined CPG group {:?}",
            self.group
        );
        let _ = self.events.send(ClusterEvent::Connected { local });
        self.view.send_modify(|v| {
            v.connected = true;
            v.local = Some(local);
        });
        let mut outbox = Outbox::default();
        loop {
            let retry_at = outbox.retry_at;
            let lost = tokio::select! {
                biased;
                ready = vq_async.readable() => {
                    let mut guard = match ready { Ok(g) => g, Err(e) => return Ended::Lost(e.to_string()) };
                    let r = votequorum::dispatch(vq, DispatchFlags::All);
                    guard.clear_ready();
                    r.err().map(|e| cs("votequorum dispatch", e))
                }
                ready = cpg_async.readable() => {
                    let mut guard = match ready { Ok(g) => g, Err(e) => return Ended::Lost(e.to_string()) };
                    let r = cpg::dispatch(cpg, DispatchFlags::All);
                    guard.clear_ready();
                    r.err().map(|e| cs("cpg dispatch", e))
                }
                _ = sleep_until(retry_at) => outbox.flush(cpg, self.view).err(),
                cmd = commands.recv() => match cmd {
                    Some(Command::Multicast(data)) => {
                        outbox.queue.push_back(data);
                        if outbox.retry_at.is_none() { outbox.flush(cpg, self.view).err() } else { None }
                    }
                    Some(Command::Leave) | None => {
                        self.publish(vq, take_recorded());
                        return Ended::Left;
                    }
                },
            };
            // Events recorded before a dispatch error are still real.
            self.publish(vq, take_recorded());
            if let Some(why) = lost {
                return Ended::Lost(why);
            }
        }
    }

    /// Turn recorded callbacks into events, in callback order.
    fn publish(&self, vq: &votequorum::Handle, raws: Vec<Raw>) {
        for raw in raws {
            let event = match raw {
                Raw::Confchg {
                    members,
                    left,
                    joined,
                } => {
                    self.view.send_modify(|v| v.group = members.clone());
                    ClusterEvent::CpgConfChg {
                        members,
                        left,
                        joined,
                    }
                }
                Raw::Totem { ring, members } => ClusterEvent::CpgTotem { ring, members },
                Raw::Deliver { sender, data } => {
                    tracing::trace!(
                        "delivered {} bytes from {}/{}",
                        data.len(),
                        sender.node,
                        sender.pid
                    );
                    ClusterEvent::Deliver { sender, data }
                }
                Raw::Nodes { ring, members } => {
                    self.view.send_modify(|v| {
                        v.ring = Some(ring);
                        v.ring_members = members.clone();
                    });
                    ClusterEvent::QuorumNodes { ring, members }
                }
                Raw::Quorum { quorate } => {
                    let needed = self.read_quorum_info(vq, quorate);
                    ClusterEvent::Quorum { quorate, needed }
                }
                Raw::Expected(expected) => {
                    tracing::info!("corosync expected votes changed to {expected}");
                    self.view.send_modify(|v| v.expected_votes = expected);
                    continue;
                }
            };
            if self.events.send(event).is_err() {
                return;
            }
        }
    }

    /// After a quorum notification: votes needed, expected votes and every
    /// node's state, through get_info (safe outside callbacks).
    fn read_quorum_info(&self, vq: &votequorum::Handle, quorate: bool) -> u32 {
        let local = votequorum::get_info(vq, rust_corosync::NodeId::from(0));
        let mut states = BTreeMap::new();
        for &n in self.nodes {
            let state = match votequorum::get_info(vq, rust_corosync::NodeId::from(n)) {
                Ok(info) => match info.node_state {
                    votequorum::NodeState::Member => NodeState::Member,
                    votequorum::NodeState::Dead => NodeState::Dead,
                    votequorum::NodeState::Leaving => NodeState::Leaving,
                    votequorum::NodeState::Unknown => NodeState::Unknown,
                },
                Err(_) => NodeState::Unknown,
            };
            states.insert(n, state);
        }
        let mut needed = self.view.borrow().quorum;
        self.view.send_modify(|v| {
            v.quorate = quorate;
            v.node_states = states;
            if let Ok(info) = &local {
                v.quorum = info.quorum;
                v.expected_votes = info.node_expected_votes;
                needed = info.quorum;
            }
        });
        if let Err(e) = local {
            tracing::warn!("votequorum get_info: {e:?}; keeping the last known quorum ({needed})");
        }
        needed
    }
}

/// Join the group; TRY_AGAIN while corosync synchronises.
async fn join(cpg: &cpg::Handle, group: &str) -> Result<(), String> {
    let mut wait = Duration::from_millis(1);
    loop {
        match cpg::join(cpg, group) {
            Ok(()) => return Ok(()),
            Err(CsError::CsErrTryAgain) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(cs("cpg join", e)),
        }
    }
}

/// Messages waiting to be multicast, in order. TRY_AGAIN (corosync is
/// synchronising after a membership change) holds the queue for a short
/// back-off; nothing is dropped.
struct Outbox {
    queue: VecDeque<Vec<u8>>,
    retry_at: Option<Instant>,
    /// corosync is usually done synchronising within a few ms.
    wait: Backoff,
    /// When the head of the queue first met TRY_AGAIN.
    held_since: Option<Instant>,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            retry_at: None,
            wait: Backoff::new(Duration::from_micros(100), Duration::from_millis(10)),
            held_since: None,
        }
    }
}

impl Outbox {
    fn flush(
        &mut self,
        cpg: &cpg::Handle,
        view: &watch::Sender<CorosyncView>,
    ) -> Result<(), String> {
        self.retry_at = None;
        while let Some(data) = self.queue.front() {
            match cpg::mcast_joined(cpg, cpg::Guarantee::TypeAgreed, data) {
                Ok(()) => {
                    tracing::trace!("multicast {} bytes", data.len());
                    self.queue.pop_front();
                    self.wait.succeeded();
                    if let Some(since) = self.held_since.take() {
                        tracing::debug!(
                            "multicast held {} us by TRY_AGAIN",
                            since.elapsed().as_micros()
                        );
                    }
                }
                Err(CsError::CsErrTryAgain) => {
                    self.held_since.get_or_insert_with(Instant::now);
                    self.retry_at = Some(Instant::now() + self.wait.failed());
                    view.send_modify(|v| v.mcast_retries += 1);
                    return Ok(());
                }
                Err(e) => return Err(cs("cpg mcast_joined", e)),
            }
        }
        Ok(())
    }
}

// ----- startup checks ---------------------------------------------------------

/// A node of corosync's configured nodelist (cmap `nodelist.node.N`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorosyncNode {
    pub id: NodeId,
    pub name: Option<String>,
}

/// corosync's timing and quorum settings as it runs them: the runtime
/// token and consensus grow with the node count beyond what corosync.conf
/// says (token + 650 ms per node beyond two with the default coefficient).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totem {
    /// `runtime.config.totem.token`, ms.
    pub token: Option<u32>,
    /// `runtime.config.totem.consensus`, ms.
    pub consensus: Option<u32>,
    /// `quorum.two_node`: each half of a split of two is quorate.
    pub two_node: bool,
}

impl Totem {
    /// How long corosync takes to notice a lost node, if it said.
    pub fn detection(&self) -> Option<u64> {
        Some(u64::from(self.token?) + u64::from(self.consensus?))
    }
}

/// corosync's configured nodes, this node's id and its runtime totem
/// settings, read from cmap. Fails while corosync is not running.
pub fn read_nodelist() -> Result<(NodeId, Vec<CorosyncNode>, Totem), String> {
    let h = cmap::initialize(cmap::Map::Icmap).map_err(|e| {
        format!("cannot connect to corosync ({e:?}): is corosync running on this node?")
    })?;
    let number = |key: &str| match cmap::get(&h, key) {
        Ok(cmap::Data::UInt32(n)) => Some(n),
        Ok(cmap::Data::UInt8(n)) => Some(n.into()),
        Ok(cmap::Data::UInt16(n)) => Some(n.into()),
        Ok(cmap::Data::UInt64(n)) => u32::try_from(n).ok(),
        Ok(cmap::Data::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let local = number("runtime.votequorum.this_node_id");
    let mut nodes = Vec::new();
    for i in 0.. {
        let Some(id) = number(&format!("nodelist.node.{i}.nodeid")) else {
            break;
        };
        let name = match cmap::get(&h, &format!("nodelist.node.{i}.name")) {
            Ok(cmap::Data::String(s)) => Some(s),
            _ => None,
        };
        nodes.push(CorosyncNode { id, name });
    }
    let totem = Totem {
        token: number("runtime.config.totem.token"),
        consensus: number("runtime.config.totem.consensus"),
        two_node: number("quorum.two_node").is_some_and(|n| n == 1),
    };
    let _ = cmap::finalize(&h);
    let local = local.ok_or("corosync does not say which node this is (runtime.votequorum.this_node_id); is votequorum the quorum provider?")?;
    Ok((local, nodes, totem))
}
