//! One fake node's shared state and its two library sockets: the HA control
//! socket (orders) and the notification socket (HA_INFO events).

use crate::links;
use crate::Settings;
use confd_ha::wire::{self, Event, Reply};
use eetf::Term;
use fake_confd::link::LinkMsg;
use fake_confd::model::{Effect, FakeNode, Join};
use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify, OwnedMutexGuard};

pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Make the close a reset (RST), not a FIN: what the real server does
    /// to a connection whose access check is configured on one side only.
    /// Nothing on a unix socket.
    fn reset_on_close(&self) {}
}

impl Conn for tokio::net::TcpStream {
    fn reset_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Conn for tokio::net::UnixStream {}

/// Accept connections on a TCP or unix endpoint for as long as the
/// process runs, handing each to `serve`; an error if it cannot listen.
pub async fn accept(
    endpoint: &confd_ha::client::Endpoint,
    serve: impl Fn(Box<dyn Conn>),
) -> Result<(), String> {
    use confd_ha::client::Endpoint;
    match endpoint {
        Endpoint::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            while let Ok((s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                serve(Box::new(s));
            }
        }
        Endpoint::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            while let Ok((s, _)) = listener.accept().await {
                serve(Box::new(s));
            }
        }
    }
    Ok(())
}

/// Reads frames; cancel-safe, so it can sit in a `select!`.
pub struct FrameReader<R> {
    inner: R,
    frames: wire::Deframer,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            frames: wire::Deframer::default(),
        }
    }

    /// The next frame; `None` at EOF, on an error or an oversized frame.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 4096];
        loop {
            match self.frames.next_frame() {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(_) => return None,
            }
            match self.inner.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.frames.push(&buf[..n]),
            }
        }
    }
}

pub struct Subscriber {
    id: u64,
    tx: mpsc::UnboundedSender<Event>,
    /// HA_INFO_SYNC: the node's next HA step waits for the acknowledgement.
    sync: bool,
    unacked: usize,
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
    ha_socket: Option<oneshot::Sender<bool>>,
    subscribers: Vec<Subscriber>,
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
    acked: Notify,
    /// Orders are served one at a time, across HA sockets.
    orders: Arc<tokio::sync::Mutex<()>>,
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
    async fn wait_for_acks(&self) {
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

/// A MAAPI or CDB socket: `set_readonly_mode` and `cdb_get_txid` as the
/// real server answers them. An integer sets or clears the node-wide
/// read-only flag, anything else is ecode 18 "Expected integer"; the txid
/// is answered in any start phase; libconfd's two unanswered CDB frames
/// (client name, op 0, and `pid/fd`, op 19) get no reply; every other op is
/// refused with ecode 18, since fake-confd has no data model.
pub async fn ipc_socket(s: Box<dyn Conn>, server: Arc<Server>) {
    use wire::ipc::{error_reply, ok_reply, OP_GET_TXID, OP_SET_READONLY};
    const OP_CLIENT_NAME: u32 = 0;
    const OP_CLIENT_INFO: u32 = 19;
    let (rd, mut wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    while let Some(frame) = reader.next().await {
        let Some(op) = frame
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return;
        };
        let value = frame.get(4..).and_then(|t| wire::decode_term(t).ok());
        let reply = match (op, value.as_ref().and_then(wire::as_int)) {
            (OP_CLIENT_NAME | OP_CLIENT_INFO, _) => continue,
            (OP_SET_READONLY, Some(v)) => {
                server.with(|st| st.node.read_only = v != 0);
                ok_reply(op, None)
            }
            (OP_SET_READONLY, None) => error_reply(op, 18, "Expected integer"),
            (OP_GET_TXID, _) => {
                let txid = server.with(|st| st.node.cdb_txid());
                ok_reply(op, Some(&wire::ipc::txid_to_term(&txid)))
            }
            _ => error_reply(op, 18, "not supported by fake-confd"),
        };
        if wr.write_all(&wire::frame(&reply)).await.is_err() {
            return;
        }
    }
}

/// Serve the HA control socket after the handshake.
pub async fn ha_socket(s: Box<dyn Conn>, server: Arc<Server>) {
    let (rd, mut wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    // No token within 2 s: closed (a fixed time on the real server).
    let Ok(Some(token)) =
        tokio::time::timeout(std::time::Duration::from_secs(2), reader.next()).await
    else {
        return;
    };
    let (close_tx, mut close_rx) = oneshot::channel();
    server.with(|st| {
        st.token = token;
        if let Some(old) = st.ha_socket.replace(close_tx) {
            let _ = old.send(true);
        }
    });
    // Once replaced, the socket still serves the orders that had already
    // arrived (the real server answers them in order), then closes. What
    // "already arrived" means to this task is the next 100 ms: frames
    // sent just before the new token may not have been read yet.
    let mut replaced = false;
    loop {
        let frame = if replaced {
            tokio::time::timeout(std::time::Duration::from_millis(100), reader.next())
                .await
                .ok()
                .flatten()
        } else {
            tokio::select! {
                biased;
                serve_pending = &mut close_rx => {
                    if serve_pending != Ok(true) {
                        return;
                    }
                    replaced = true;
                    continue;
                }
                f = reader.next() => f,
            }
        };
        let Some(frame) = frame else { return };
        let gate = server.orders.clone().lock_owned().await;
        server.wait_for_acks().await;
        let effects = server.with(|st| st.node.frame(&frame));
        if !serve_order(&server, effects, &mut wr, gate).await {
            return;
        }
    }
}

/// Carry out an order's effects in order: a reply waits for the sync
/// acknowledgements of the events before it (benone's ok waits for
/// IS_NONE); a waiting join holds the socket. `false`: close the socket.
async fn serve_order<W: AsyncWrite + Unpin>(
    server: &Arc<Server>,
    effects: Vec<Effect>,
    wr: &mut W,
    gate: OwnedMutexGuard<()>,
) -> bool {
    let mut queue: VecDeque<Effect> = effects.into();
    while let Some(e) = queue.pop_front() {
        match e {
            Effect::Reply(r) => {
                server.wait_for_acks().await;
                if wr.write_all(&r.encode()).await.is_err() {
                    return false;
                }
            }
            Effect::Join(join) if join.wait => {
                let done = join_and_settle(server, &join).await;
                for e in done.into_iter().rev() {
                    queue.push_front(e);
                }
            }
            Effect::Join(join) => {
                // No reply: the outcome is an event. Later orders wait.
                let server = server.clone();
                tokio::spawn(async move {
                    let done = join_and_settle(&server, &join).await;
                    server.with(|st| st.apply(done));
                    drop(gate);
                });
                return true;
            }
            Effect::CloseHaSocket => {
                server.with(|st| st.apply(vec![Effect::CloseHaSocket]));
                return false;
            }
            other => {
                server.with(|st| st.apply(vec![other]));
            }
        }
    }
    true
}

/// Join a primary and settle the node's state; the returned effects (the
/// reply or result, then SECONDARY_INITIALIZED or IS_NONE) are the
/// caller's to deliver in order.
async fn join_and_settle(server: &Arc<Server>, join: &Join) -> Vec<Effect> {
    let (result, link) = match links::join(server, join).await {
        Ok((txid, link)) => (Ok(txid), Some(link)),
        Err(code) => (Err(code), None),
    };
    if let (Ok(_), Some((min, max))) = (&result, server.settings.join_latency) {
        // The initial sync of a real server, which takes its time.
        let spread = (max - min).as_micros() as u64;
        let extra = if spread == 0 {
            0
        } else {
            unix_micros() % (spread + 1)
        };
        tokio::time::sleep(min + std::time::Duration::from_micros(extra)).await;
    }
    server.with(|st| {
        let effects = st.node.join_done(join, result);
        if let Some(link) = link {
            links::start_uplink(server, st, link);
        }
        effects
    })
}

/// Serve the notification socket after the handshake.
pub async fn notification_socket(s: Box<dyn Conn>, server: Arc<Server>) {
    let (rd, mut wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    let Some(frame) = reader.next().await else {
        return;
    };
    // Not a term at all: closed without a word; a term of the wrong shape:
    // {error, 18, <<"Bad subscription data">>}, then closed.
    let Ok(term) = wire::decode_term(&frame) else {
        return;
    };
    let mask = match &term {
        Term::Tuple(t) if t.elements.len() == 5 => wire::as_int(&t.elements[0]),
        _ => None,
    };
    let Some(mask) = mask.map(|m| m as u32) else {
        let bad = wire::tuple(vec![
            Term::from(eetf::Atom::from("error")),
            wire::int(18),
            Term::from(eetf::Binary::from(b"Bad subscription data".to_vec())),
        ]);
        let _ = wr
            .write_all(&wire::frame(&wire::encode_term_otp25(&bad)))
            .await;
        return;
    };
    if wr.write_all(&Reply::Ok.encode()).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    // HA events need bit 6; bit 20 alone delivers nothing.
    let subscribed = mask & wire::MASK_HA_INFO != 0;
    let _unsubscribed = (!subscribed).then(|| tx.clone());
    let id = server.with(|st| {
        let id = st.next_id();
        if subscribed {
            st.subscribers.push(Subscriber {
                id,
                tx,
                sync: mask & wire::MASK_HA_INFO_SYNC != 0,
                unacked: 0,
            });
        }
        id
    });
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => if wr.write_all(&ev.encode()).await.is_err() { break },
                None => break,
            },
            f = reader.next() => match f {
                // An acknowledgement (either atom encoding); one nobody
                // asked for is ignored, like anything else sent here.
                Some(f) => {
                    let is_ack = wire::decode_term(&f)
                        .is_ok_and(|t| wire::as_atom(&t) == Some("ha_synced"));
                    if is_ack {
                        if let Some(s) = server.lock().subscribers.iter_mut().find(|s| s.id == id) {
                            s.unacked = s.unacked.saturating_sub(1);
                        }
                        server.acked.notify_waiters();
                    }
                }
                None => break,
            },
        }
    }
    server.lock().subscribers.retain(|s| s.id != id);
    server.acked.notify_waiters();
}
