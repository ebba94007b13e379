//! Links between fake nodes on the HA port: joining a primary, ticks both
//! ways, the replicated write counter, and relays passing their
//! secondaries up. Errors and timings follow what the real HA sockets saw:
//! nothing listening → HA_CONNECT, a silent primary → HA_CLOSED after
//! max(10 s, 3 ticks), a closed link → NOPRIMARY 26 or SECONDARY_DIED at
//! once, no ticks for 3 tick periods → NOPRIMARY 31 or SECONDARY_DIED.

use crate::conn::FrameReader;
use crate::state::{Down, Downlink, Server, State, Uplink};
use confd_ha::code;
use confd_ha::wire;
use eetf::Term;
use fake_confd::link::{LinkMsg, LINK_VERSION};
use fake_confd::model::{Admission, Join};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant, MissedTickBehavior};

/// A link whose join succeeded, ready for its uplink task.
pub struct Joined {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Server {
    fn dead_after(&self) -> Duration {
        self.settings.tick * 3
    }

    /// How long a join waits for a silent primary.
    fn join_patience(&self) -> Duration {
        self.dead_after().max(Duration::from_secs(10))
    }
}

/// Where an address term points: a 4- or 8-tuple, or a name to resolve
/// (binary, Erlang string or atom, as the real server accepts).
async fn resolve(address: &Term, port: u16) -> Option<SocketAddr> {
    let numbers = |items: &[Term]| -> Option<Vec<u16>> {
        items
            .iter()
            .map(|t| wire::as_int(t).and_then(|v| u16::try_from(v).ok()))
            .collect()
    };
    let name = match address {
        Term::Tuple(t) => {
            let n = numbers(&t.elements)?;
            let ip: IpAddr = match n.len() {
                4 => {
                    let o: Vec<u8> = n
                        .iter()
                        .map(|v| u8::try_from(*v).ok())
                        .collect::<Option<_>>()?;
                    IpAddr::from([o[0], o[1], o[2], o[3]])
                }
                8 => IpAddr::from([n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]]),
                _ => return None,
            };
            return Some(SocketAddr::new(ip, port));
        }
        Term::Binary(b) => String::from_utf8(b.bytes.clone()).ok()?,
        Term::ByteList(b) => String::from_utf8(b.bytes.clone()).ok()?,
        Term::Atom(a) => a.name.clone(),
        _ => return None,
    };
    let found = tokio::net::lookup_host((name.as_str(), port))
        .await
        .ok()?
        .next();
    found
}

/// The address of a peer as the real primary reports a secondary: the
/// source IP of its link, as a 4- or 8-tuple.
fn address_term(addr: SocketAddr) -> Term {
    let items: Vec<Term> = match addr.ip() {
        IpAddr::V4(a) => a
            .octets()
            .iter()
            .map(|b| wire::int(i32::from(*b)))
            .collect(),
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|w| wire::int(i32::from(*w)))
            .collect(),
    };
    wire::tuple(items)
}

/// Connect to the primary named in a besecondary order and ask to join.
pub async fn join(server: &Arc<Server>, j: &Join) -> Result<(u64, Joined), i32> {
    let patience = server.join_patience();
    let target = resolve(&j.address, server.settings.ha_port)
        .await
        .ok_or(code::HA_CONNECT)?;
    let stream = match timeout(patience, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        _ => return Err(code::HA_CONNECT),
    };
    let _ = stream.set_nodelay(true);
    let (rd, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(rd);
    // The primary speaks first; a silent one fails the join with 26.
    let hello = timeout(patience, reader.next()).await.ok().flatten();
    match hello.as_deref().and_then(LinkMsg::decode) {
        Some(LinkMsg::Hello { version }) if version == LINK_VERSION => {}
        _ => return Err(code::HA_CLOSED),
    }
    let ask = LinkMsg::Join {
        token: server.lock().token.clone(),
        primary: j.primary.clone(),
        me: j.me.clone(),
    };
    if writer.write_all(&ask.encode()).await.is_err() {
        return Err(code::HA_CLOSED);
    }
    let answer = timeout(patience, reader.next()).await.ok().flatten();
    match answer.as_deref().and_then(LinkMsg::decode) {
        Some(LinkMsg::Welcome { txid }) => Ok((txid, Joined { reader, writer })),
        Some(LinkMsg::Refuse(c)) => Err(c),
        _ => Err(code::HA_CLOSED),
    }
}

/// Start the task that keeps a joined link: ticks, commits from the
/// primary, and (as a relay) changes behind us.
pub fn start_uplink(server: &Arc<Server>, st: &mut State, link: Joined) {
    let gen = st.next_id();
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    st.uplink = Some(Uplink { gen, tx, stop });
    tokio::spawn(uplink(server.clone(), gen, link, rx, stopped));
}

async fn uplink(
    server: Arc<Server>,
    gen: u64,
    link: Joined,
    mut up: mpsc::UnboundedReceiver<LinkMsg>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Joined {
        mut reader,
        mut writer,
    } = link;
    let dead_after = server.dead_after();
    let mut ticks = tokio::time::interval(server.settings.tick);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    // However the end shows itself (a failed write, EOF, the read
    // deadline), a link silent for 3 ticks lost its ticks first: that is
    // what a node waking from a freeze reports.
    loop {
        let alive = tokio::select! {
            biased;
            _ = &mut stopped => return,
            _ = ticks.tick() => writer.write_all(&LinkMsg::Tick.encode()).await.is_ok(),
            Some(msg) = up.recv() => writer.write_all(&msg.encode()).await.is_ok(),
            frame = timeout_at(last_heard + dead_after, reader.next()) => match frame {
                // A frame read after 3 silent ticks (buffered while this
                // process was frozen) comes too late: the ticks were lost.
                Ok(Some(_)) if last_heard.elapsed() >= dead_after => false,
                Ok(Some(f)) => {
                    last_heard = Instant::now();
                    match LinkMsg::decode(&f) {
                        Some(LinkMsg::Commit(txid)) => apply_commit(&server, txid, gen),
                        // Our primary was told this node behind us is dead.
                        Some(LinkMsg::Drop { id }) => server.with(|st| {
                            let effects = st.node.drop_secondary(&id);
                            st.apply(effects);
                        }),
                        _ => {}
                    }
                    true
                }
                Ok(None) | Err(_) => false,
            },
        };
        if !alive {
            break;
        }
    }
    let lost = if last_heard.elapsed() >= dead_after {
        code::HA_NOTICK
    } else {
        code::HA_CLOSED
    };
    server.with(|st| {
        if st.uplink.as_ref().is_some_and(|u| u.gen == gen) {
            st.uplink = None;
            let effects = st.node.primary_lost(lost);
            st.apply(effects);
        }
    });
}

/// A commit from our primary: take it, pass it on to our own secondaries
/// (as a relay), and acknowledge it once they have.
fn apply_commit(server: &Arc<Server>, txid: u64, gen: u64) {
    server.with(|st| st.node.replicated(txid));
    let server = server.clone();
    tokio::spawn(async move {
        replicate(&server, txid).await;
        let st = server.lock();
        if let Some(up) = st.uplink.as_ref().filter(|u| u.gen == gen) {
            let _ = up.tx.send(LinkMsg::Ack(txid));
        }
    });
}

/// Send a commit to every secondary and wait for their acknowledgements;
/// one that does not answer within 3 ticks is dropped as dead.
pub async fn replicate(server: &Arc<Server>, txid: u64) {
    let pending: Vec<(u64, oneshot::Receiver<()>)> = server.with(|st| {
        st.downlinks
            .iter()
            .map(|d| {
                let (done, wait) = oneshot::channel();
                let _ = d.tx.send(Down::Commit { txid, done });
                (d.gen, wait)
            })
            .collect()
    });
    let deadline = Instant::now() + server.dead_after();
    for (gen, wait) in pending {
        if !matches!(timeout_at(deadline, wait).await, Ok(Ok(()))) {
            server.with(|st| st.secondary_dead(gen));
        }
    }
}

/// Accept secondaries on the HA port for as long as the process runs; a
/// node that is not primary or relay refuses them with HA_CONNECT.
pub async fn listen(server: Arc<Server>, listener: TcpListener) {
    while let Ok((s, peer)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        tokio::spawn(downlink(server.clone(), s, peer));
    }
}

async fn downlink(server: Arc<Server>, stream: TcpStream, peer: SocketAddr) {
    let (rd, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(rd);
    let hello = LinkMsg::Hello {
        version: LINK_VERSION,
    };
    if writer.write_all(&hello.encode()).await.is_err() {
        return;
    }
    let ask = timeout(server.join_patience(), reader.next())
        .await
        .ok()
        .flatten();
    let Some(LinkMsg::Join { token, primary, me }) = ask.as_deref().and_then(LinkMsg::decode)
    else {
        return;
    };
    let addr = address_term(peer);
    let (tx, mut commits) = mpsc::unbounded_channel();
    let (stop, mut stopped) = oneshot::channel();
    let admitted = server.with(|st| {
        let token_matches = token == st.token;
        match st.node.admit(token_matches, &primary, &me) {
            Admission::Refuse(c) => Err(Some(c)),
            Admission::KnockedOver(effects) => {
                st.apply(effects);
                Err(None)
            }
            Admission::Welcome => {
                let gen = st.next_id();
                st.downlinks.push(Downlink {
                    id: me.clone(),
                    gen,
                    tx,
                    stop,
                });
                let effects = st.node.secondary_arrived(me.clone(), addr.clone(), None);
                st.apply(effects);
                st.forward_up(LinkMsg::Arrived {
                    id: me.clone(),
                    addr: addr.clone(),
                });
                Ok((gen, st.node.txid))
            }
        }
    });
    let (gen, txid) = match admitted {
        Ok(v) => v,
        Err(Some(c)) => {
            let _ = writer.write_all(&LinkMsg::Refuse(c).encode()).await;
            return;
        }
        Err(None) => return,
    };
    if writer
        .write_all(&LinkMsg::Welcome { txid }.encode())
        .await
        .is_err()
    {
        return secondary_gone(&server, gen);
    }
    let dead_after = server.dead_after();
    let mut ticks = tokio::time::interval(server.settings.tick);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut unacked: Vec<(u64, oneshot::Sender<()>)> = vec![];
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => return,
            _ = ticks.tick() => {
                if writer.write_all(&LinkMsg::Tick.encode()).await.is_err() {
                    break;
                }
            }
            Some(down) = commits.recv() => {
                let msg = match down {
                    Down::Commit { txid, done } => {
                        unacked.push((txid, done));
                        LinkMsg::Commit(txid)
                    }
                    Down::Drop(id) => LinkMsg::Drop { id },
                };
                if writer.write_all(&msg.encode()).await.is_err() {
                    break;
                }
            }
            frame = timeout_at(last_heard + dead_after, reader.next()) => {
                let Ok(Some(f)) = frame else { break };
                last_heard = Instant::now();
                match LinkMsg::decode(&f) {
                    Some(LinkMsg::Ack(t)) => {
                        let (acked, waiting): (Vec<_>, Vec<_>) =
                            unacked.drain(..).partition(|(u, _)| *u <= t);
                        unacked = waiting;
                        for (_, done) in acked {
                            let _ = done.send(());
                        }
                    }
                    Some(LinkMsg::Arrived { id, addr }) => server.with(|st| {
                        let effects = st.node.secondary_arrived(id.clone(), addr.clone(), Some(me.clone()));
                        st.apply(effects);
                        st.forward_up(LinkMsg::Arrived { id, addr });
                    }),
                    Some(LinkMsg::Died { id }) => server.with(|st| {
                        let effects = st.node.secondary_gone(&id, Some(&me));
                        st.apply(effects);
                        st.forward_up(LinkMsg::Died { id });
                    }),
                    _ => {}
                }
            }
        }
    }
    secondary_gone(&server, gen);
}

/// A secondary's link ended without the node asking: SECONDARY_DIED.
fn secondary_gone(server: &Server, gen: u64) {
    server.with(|st| st.secondary_dead(gen));
}
