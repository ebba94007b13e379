//! One fake node's library sockets: the HA control socket (orders), the
//! notification socket (HA_INFO events) and the MAAPI/CDB socket.

use crate::conn::{Conn, FrameReader};
use crate::links;
use crate::state::{unix_micros, Server, Subscriber};
use confd_ha::wire::{self, Reply};
use eetf::Term;
use fake_confd::model::{Effect, Join};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedMutexGuard};

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
