//! The HA sockets as a long-running daemon keeps them: reconnect with
//! back-off, and tell a dead server (nothing listens, the socket closed)
//! from a hung one (connected, but no answer in time). A hung server is
//! only visible on the control socket, since a quiet notification socket is
//! normal; the daemon probes it with `get_status` every `ha.status_interval`.

use crate::retry::Backoff;
use confd_ha::client::{ClientError, ClientOptions, HaClient, HaEvents};
use confd_ha::wire::{Event, Order, Reply};
use tokio::time::Instant;

/// What a probe found.
#[derive(Debug)]
pub enum Health {
    /// It answered get_status.
    Up(Reply),
    /// Connected, but no answer within `ha.timeout`.
    Hung,
    /// Not reachable, closed, or not speaking the protocol.
    Down(ClientError),
}

/// The HA control socket, reconnected on demand.
pub struct HaSession {
    opts: ClientOptions,
    client: Option<HaClient>,
    backoff: Backoff,
    /// No new connection before this instant.
    retry_at: Option<Instant>,
}

impl HaSession {
    pub fn new(opts: ClientOptions, backoff: Backoff) -> HaSession {
        HaSession {
            opts,
            client: None,
            backoff,
            retry_at: None,
        }
    }

    pub fn connected(&self) -> bool {
        self.client.is_some()
    }

    /// Until when a reconnect is held back, if it is.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|t| *t > Instant::now())
    }

    fn lost(&mut self) {
        self.client = None;
        self.retry_at = Some(Instant::now() + self.backoff.failed());
    }

    /// Send one order, connecting first if needed. During the back-off it
    /// fails at once with `Unreachable` rather than block the caller. A
    /// ConfD error keeps the connection; anything else drops it (the next
    /// connection replaces it on the server anyway).
    pub async fn call(&mut self, order: &Order) -> Result<Option<Reply>, ClientError> {
        if self.client.is_none() {
            if let Some(at) = self.retry_at() {
                let left = at.saturating_duration_since(Instant::now());
                return Err(ClientError::Unreachable(format!(
                    "reconnecting in {} ms",
                    left.as_millis()
                )));
            }
            match HaClient::connect(self.opts.clone()).await {
                Ok(c) => {
                    self.client = Some(c);
                    self.retry_at = None;
                }
                Err(e) => {
                    self.lost();
                    return Err(e);
                }
            }
        }
        let Some(client) = self.client.as_mut() else {
            return Err(ClientError::Closed);
        };
        match client.call(order).await {
            Ok(r) => {
                self.backoff.succeeded();
                Ok(r)
            }
            Err(ClientError::Server(c)) => Err(ClientError::Server(c)),
            Err(e) => {
                self.lost();
                Err(e)
            }
        }
    }

    /// Resolves when the server closes the idle connection (never while
    /// there is none); the connection is then dropped.
    pub async fn closed(&mut self) {
        match self.client.as_mut() {
            Some(client) => {
                client.closed().await;
                self.client = None;
            }
            None => std::future::pending().await,
        }
    }

    /// Connect again at once, without the back-off: after the server
    /// closed the socket because another HA client replaced it, a new
    /// connection (with coroha's token) replaces that one in turn.
    pub async fn reconnect(&mut self) -> Result<(), ClientError> {
        self.client = None;
        match HaClient::connect(self.opts.clone()).await {
            Ok(c) => {
                self.client = Some(c);
                self.retry_at = None;
                Ok(())
            }
            Err(e) => {
                self.lost();
                Err(e)
            }
        }
    }

    /// Send one order; if the server closed the connection before or
    /// while it was sent (another HA client replaced it), connect again at
    /// once and send it once more. HA orders are safe to repeat: the
    /// server answers a repeated beprimary, benone or besecondary to the
    /// same primary as done. Returns whether the connection was replaced.
    pub async fn call_reconnecting(
        &mut self,
        order: &Order,
    ) -> (Result<Option<Reply>, ClientError>, bool) {
        let had_connection = self.connected();
        match self.call(order).await {
            Err(ClientError::Closed) if had_connection => {
                if self.reconnect().await.is_err() {
                    return (Err(ClientError::Closed), false);
                }
                (self.call(order).await, true)
            }
            other => (other, false),
        }
    }

    /// `get_status`, classified.
    pub async fn probe(&mut self) -> Health {
        match self.call(&Order::GetStatus).await {
            Ok(Some(r)) => Health::Up(r),
            Ok(None) => Health::Down(ClientError::Closed),
            Err(ClientError::Timeout) => Health::Hung,
            Err(e) => Health::Down(e),
        }
    }
}

/// What the notification stream yields.
#[derive(Debug)]
pub enum Notice {
    Event(Event),
    /// The subscription is (again) in place. Events may have been missed
    /// while it was not: read the status afresh.
    Subscribed,
    /// The subscription was lost or could not be made; it is retried after
    /// the back-off.
    Lost(ClientError),
}

/// An HA_INFO subscription that comes back after the server does.
pub struct HaNotices {
    opts: ClientOptions,
    sync: bool,
    events: Option<HaEvents>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl HaNotices {
    pub fn new(opts: ClientOptions, sync: bool, backoff: Backoff) -> HaNotices {
        HaNotices {
            opts,
            sync,
            events: None,
            backoff,
            retry_at: None,
        }
    }

    /// The next notice; waits out the back-off before a reconnect.
    /// Cancel-safe only between notices (use it from one task).
    pub async fn next(&mut self) -> Notice {
        match self.events.as_mut() {
            Some(events) => match events.next_event().await {
                Ok(e) => Notice::Event(e),
                Err(e) => {
                    self.events = None;
                    self.retry_at = Some(Instant::now() + self.backoff.failed());
                    Notice::Lost(e)
                }
            },
            None => {
                if let Some(at) = self.retry_at.take() {
                    tokio::time::sleep_until(at).await;
                }
                match HaEvents::connect(&self.opts, self.sync).await {
                    Ok(events) => {
                        self.events = Some(events);
                        self.backoff.succeeded();
                        Notice::Subscribed
                    }
                    Err(e) => {
                        self.retry_at = Some(Instant::now() + self.backoff.failed());
                        Notice::Lost(e)
                    }
                }
            }
        }
    }
}
