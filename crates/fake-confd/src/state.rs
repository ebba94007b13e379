//! One fake node's shared state behind one lock: its model, its HA socket,
//! its notification subscribers and its links to the other nodes; every
//! change is recorded (history file, timeline, CDB file) as it is made.

use confd_ha::wire::Event;
use eetf::Term;
use fake_confd::link::LinkMsg;
use fake_confd::model::{Effect, FakeNode};
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::Settings;

pub struct Subscriber {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<Event>,
    /// HA_INFO_SYNC: the node's next HA step waits for the acknowledgement.
    pub sync: bool,
    pub unacked: usize,
}

/// The link to our primary.
pub struct Uplink {
    pub gen: u64,
    pub tx: mpsc::UnboundedSender<LinkMsg>,
    pub stop: oneshot::Sender<()>,
}

/// What goes down the link to one secondary.
pub enum Down {
    /// A commit, and where to say it was acknowledged.
    Commit {
        txid: u64,
        done: oneshot::Sender<()>,
    },
    /// To a relay: drop this node behind you.
    Drop(Term),
}

/// The link to one of our secondaries.
pub struct Downlink {
    pub id: Term,
    pub gen: u64,
    pub tx: mpsc::UnboundedSender<Down>,
    /// Ends the link's task; whoever sends it has forgotten the link.
    pub stop: oneshot::Sender<()>,
}

pub struct State {
    pub node: FakeNode,
    /// The token of the current HA socket: the node's token.
    pub token: Vec<u8>,
    /// Closes the current HA socket: `true` when a new socket replaced
    /// it (orders already sent are still served), `false` when the node's
    /// HA was knocked over.
    pub ha_socket: Option<oneshot::Sender<bool>>,
    pub subscribers: Vec<Subscriber>,
    pub uplink: Option<Uplink>,
    pub downlinks: Vec<Downlink>,
    next_id: u64,
    /// (unix ms, state) of every state the node had.
    pub timeline: Vec<(u128, i32)>,
    /// What the CDB file holds (`FakeNode::cdb_file`).
    saved_cdb: String,
}

pub struct Server {
    pub settings: Settings,
    state: Mutex<State>,
    pub acked: Notify,
    /// Orders are served one at a time, across HA sockets.
    pub orders: Arc<tokio::sync::Mutex<()>>,
}

/// The wall clock in microseconds: what a commit is stamped with.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

impl State {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn emit(&mut self, ev: &Event) {
        self.subscribers.retain_mut(|s| {
            let sent = s.tx.send(ev.clone()).is_ok();
            if sent && s.sync {
                s.unacked += 1;
            }
            sent
        });
    }

    /// Apply the effects that need no socket of the caller; return the
    /// rest (replies and joins) in order.
    pub fn apply(&mut self, effects: Vec<Effect>) -> Vec<Effect> {
        let mut rest = vec![];
        for e in effects {
            match e {
                Effect::Event(ev) => self.emit(&ev),
                Effect::DropUplink => {
                    if let Some(up) = self.uplink.take() {
                        let _ = up.stop.send(());
                    }
                }
                Effect::DropDownlinks => {
                    for d in std::mem::take(&mut self.downlinks) {
                        // A relay that stops relaying tells its primary.
                        if let Some(up) = &self.uplink {
                            let _ = up.tx.send(LinkMsg::Died { id: d.id.clone() });
                        }
                        let _ = d.stop.send(());
                    }
                }
                Effect::DropDownlink(id) => {
                    if let Some(k) = self.downlinks.iter().position(|d| d.id == id) {
                        let _ = self.downlinks.remove(k).stop.send(());
                    }
                }
                Effect::DropBehind { relay, id } => {
                    if let Some(d) = self.downlinks.iter().find(|d| d.id == relay) {
                        let _ = d.tx.send(Down::Drop(id));
                    }
                }
                Effect::CloseHaSocket => {
                    if let Some(s) = self.ha_socket.take() {
                        let _ = s.send(false);
                    }
                }
                other => rest.push(other),
            }
        }
        rest
    }

    /// The secondary on link `gen` is dead (its link closed, stopped
    /// ticking or did not acknowledge a commit): close it, and raise
    /// SECONDARY_DIED (or tell our primary, as a relay).
    pub fn secondary_dead(&mut self, gen: u64) {
        let Some(k) = self.downlinks.iter().position(|d| d.gen == gen) else {
            return; // already dropped on purpose
        };
        let link = self.downlinks.remove(k);
        let _ = link.stop.send(());
        let effects = self.node.secondary_gone(&link.id, None);
        self.apply(effects);
        self.forward_up(LinkMsg::Died { id: link.id });
    }

    /// Pass a change behind us on to our primary, if we are a relay.
    pub fn forward_up(&self, msg: LinkMsg) {
        if self.node.state == fake_confd::model::RELAY {
            if let Some(up) = &self.uplink {
                let _ = up.tx.send(msg);
            }
        }
    }
}

impl Server {
    pub fn new(settings: Settings, node: FakeNode) -> Server {
        let saved_cdb = node.cdb_file();
        Server {
            settings,
            state: Mutex::new(State {
                node,
                token: vec![],
                ha_socket: None,
                subscribers: vec![],
                uplink: None,
                downlinks: vec![],
                next_id: 0,
                timeline: vec![(unix_ms(), fake_confd::model::NONE)],
                saved_cdb,
            }),
            acked: Notify::new(),
            orders: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug of ours; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the state, then record what changed: the history (file
    /// and timeline) and the persisted write counter.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.lock();
        let out = f(&mut st);
        // The timeline and the node's history start alike and grow alike.
        let new: Vec<i32> = st.node.history[st.timeline.len()..].to_vec();
        let now = unix_ms();
        st.timeline.extend(new.iter().map(|s| (now, *s)));
        if let (Some(path), false) = (&self.settings.history, new.is_empty()) {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                for s in &new {
                    let _ = writeln!(f, "{now} {}", fake_confd::model::state_name(*s));
                }
            }
        }
        let cdb = st.node.cdb_file();
        if cdb != st.saved_cdb {
            if let Some(path) = &self.settings.cdb {
                let _ = std::fs::write(path, &cdb);
            }
            st.saved_cdb = cdb;
        }
        out
    }

    /// Wait until every HA_INFO_SYNC subscriber has acknowledged what it
    /// was sent (closing its socket counts).
    pub async fn wait_for_acks(&self) {
        loop {
            let notified = self.acked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self
                .lock()
                .subscribers
                .iter()
                .any(|s| s.sync && s.unacked > 0)
            {
                return;
            }
            notified.await;
        }
    }
}
