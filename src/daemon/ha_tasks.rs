//! The two HA sockets to the local NSO/ConfD, each on a task of its own:
//! orders one at a time, and the notification stream.

use crate::ha::session::{HaNotices, HaSession, Notice};
use crate::retry::Backoff;
use confd_ha::client::ClientOptions;
use confd_ha::{HaEvent, HaFailure, HaOrder, HaReply};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// An HA order slower than this is logged: every order, the periodic
/// status probe included, holds up the next one (the server serves one HA
/// socket, in order), so a slow server slows failover.
pub(super) const SLOW_ORDER: Duration = Duration::from_millis(50);

/// The HA control socket: orders run one at a time, in the order given,
/// like the server runs them.
pub(super) fn spawn_ha_orders(
    opts: ClientOptions,
    replies: mpsc::UnboundedSender<(u64, Result<HaReply, HaFailure>)>,
    notices: mpsc::UnboundedSender<coroha_policy::Input>,
) -> mpsc::UnboundedSender<(u64, HaOrder)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, HaOrder)>();
    tokio::spawn(async move {
        let mut session = HaSession::new(opts, Backoff::default());
        let mut unreachable = false;
        loop {
            // Between orders, watch the idle socket: the server closes it
            // the moment another HA client sends its token, and that
            // client's token is then the node's own (secondaries with
            // coroha's token are refused). Take the socket back at once.
            let (id, order) = tokio::select! {
                next = rx.recv() => match next {
                    Some(next) => next,
                    None => return,
                },
                () = session.closed() => {
                    replaced(&mut session, &notices).await;
                    continue;
                }
            };
            let sent = Instant::now();
            let (answer, was_replaced) = session.call_reconnecting(&order).await;
            if was_replaced {
                report_replaced(&notices);
            }
            let took = sent.elapsed();
            if took > SLOW_ORDER {
                tracing::warn!(target: "coroha::ha", "order {id} ({}) took {} ms", order.verb(), took.as_millis());
            } else {
                tracing::trace!(target: "coroha::ha", "order {id} ({}) took {} us", order.verb(), took.as_micros());
            }
            let result = match answer {
                Ok(reply) => {
                    if unreachable {
                        tracing::info!(target: "coroha::ha", "NSO/ConfD answers again");
                        unreachable = false;
                    }
                    HaReply::from_wire(reply.as_ref())
                }
                Err(e) => {
                    let failure = e.failure();
                    if failure != HaFailure::Unreachable || !unreachable {
                        tracing::warn!(target: "coroha::ha", "{}: {e}", order.verb());
                    }
                    unreachable = failure == HaFailure::Unreachable;
                    Err(failure)
                }
            };
            if replies.send((id, result)).is_err() {
                return;
            }
        }
    });
    tx
}

/// The server closed coroha's idle HA socket: connect again (coroha's
/// token replaces the other client's), or leave it to the next order.
async fn replaced(session: &mut HaSession, notices: &mpsc::UnboundedSender<coroha_policy::Input>) {
    match session.reconnect().await {
        Ok(()) => report_replaced(notices),
        Err(e) => {
            tracing::warn!(
                target: "coroha::ha",
                "NSO/ConfD closed the HA socket and does not take a new one: {e}"
            );
            let _ = notices.send(coroha_policy::Input::HaConnectionClosed);
        }
    }
}

fn report_replaced(notices: &mpsc::UnboundedSender<coroha_policy::Input>) {
    tracing::warn!(
        target: "coroha::ha",
        "another HA client (e.g. confd_cmd) took over this node's HA socket, and its token \
         became the node's; coroha connected again with its own token. No role was changed"
    );
    let _ = notices.send(coroha_policy::Input::HaSocketReplaced);
}

/// The notification subscription. Its end (the server died or restarts)
/// is reported at once as [`coroha_policy::Input::HaConnectionClosed`],
/// so the status is read then, not at the next poll.
pub(super) fn spawn_ha_notices(
    opts: ClientOptions,
    events: mpsc::UnboundedSender<HaEvent>,
    inputs: mpsc::UnboundedSender<coroha_policy::Input>,
) {
    tokio::spawn(async move {
        let mut notices = HaNotices::new(opts, false, Backoff::default());
        let mut lost = false;
        loop {
            match notices.next().await {
                Notice::Event(e) => {
                    if events.send(HaEvent::from_wire(&e)).is_err() {
                        return;
                    }
                }
                Notice::Subscribed => {
                    tracing::info!(target: "coroha::ha", "subscribed to HA notifications");
                    lost = false;
                }
                Notice::Lost(e) => {
                    if !lost {
                        tracing::warn!(target: "coroha::ha", "HA notifications: {e}; resubscribing");
                        let _ = inputs.send(coroha_policy::Input::HaConnectionClosed);
                    }
                    lost = true;
                }
            }
        }
    });
}

/// A request on the sockets beside the HA socket.
#[derive(Clone, Copy, Debug)]
pub(super) enum IpcRequest {
    /// MAAPI `set_readonly_mode`, answered with `Input::ReadOnlyDone`.
    ReadOnly(bool),
    /// CDB `cdb_get_txid`, answered with `Input::TxidRead`.
    Txid,
}

impl IpcRequest {
    /// In words, for the log.
    fn what(self) -> &'static str {
        match self {
            IpcRequest::ReadOnly(true) => "MAAPI set_readonly_mode(on)",
            IpcRequest::ReadOnly(false) => "MAAPI set_readonly_mode(off)",
            IpcRequest::Txid => "CDB cdb_get_txid",
        }
    }
}

/// One MAAPI or CDB connection of its own beside the HA socket (a lapsed
/// lease must not wait behind an HA order, nor a txid read behind a
/// read-only call). Every request is answered; a failed connection is
/// opened again at the next request.
pub(super) fn spawn_ipc(
    opts: ClientOptions,
    cdb: bool,
    done: mpsc::UnboundedSender<coroha_policy::Input>,
) -> mpsc::UnboundedSender<IpcRequest> {
    let (tx, mut rx) = mpsc::unbounded_channel::<IpcRequest>();
    tokio::spawn(async move {
        let mut conn: Option<confd_ha::client::IpcSocket> = None;
        while let Some(request) = rx.recv().await {
            if conn.is_none() {
                let opened = if cdb {
                    confd_ha::client::Cdb::connect_cdb(&opts).await
                } else {
                    confd_ha::client::Maapi::connect(&opts).await
                };
                match opened {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(target: "coroha::ha", "{}: connecting: {e}", request.what())
                    }
                }
            }
            let answer = match (request, conn.as_mut()) {
                (IpcRequest::ReadOnly(on), c) => {
                    let result = match c {
                        Some(c) => c.set_read_only(on).await,
                        None => Err(confd_ha::client::ClientError::Closed),
                    };
                    let mode = if on { "read-only" } else { "writable" };
                    match &result {
                        Ok(()) => tracing::info!(target: "coroha::ha", "NSO/ConfD set {mode}"),
                        Err(e) => {
                            tracing::warn!(target: "coroha::ha", "setting NSO/ConfD {mode}: {e}")
                        }
                    }
                    let ok = result.is_ok();
                    coroha_policy::Input::ReadOnlyDone { on, ok }
                }
                (IpcRequest::Txid, c) => {
                    let result = match c {
                        Some(c) => c.txid().await,
                        None => Err(confd_ha::client::ClientError::Closed),
                    };
                    match &result {
                        Ok(t) => tracing::debug!(target: "coroha::ha", "CDB txid {}", t.stamp),
                        Err(e) => tracing::warn!(target: "coroha::ha", "reading the CDB txid: {e}"),
                    }
                    coroha_policy::Input::TxidRead(result.ok())
                }
            };
            if matches!(
                answer,
                coroha_policy::Input::ReadOnlyDone { ok: false, .. }
                    | coroha_policy::Input::TxidRead(None)
            ) {
                conn = None;
            }
            if done.send(answer).is_err() {
                return;
            }
        }
    });
    tx
}
