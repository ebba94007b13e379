//! A client of one NSO/ConfD HA control socket (client type 17) over TCP or
//! a unix socket: handshake with the protocol version negotiated (or
//! pinned), the token, then one order at a time, each bounded by a timeout.
//! A new HA connection replaces the previous one on the server once its
//! token arrives, so a daemon keeps exactly one.

use crate::wire::{
    self, AccessCheck, Deframer, Hello, HelloReply, Order, Reply, Term, WireError,
    PROTOCOL_VERSIONS,
};
pub use crate::Endpoint;
use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

#[derive(Clone)]
pub struct ClientOptions {
    pub endpoint: Endpoint,
    /// Sent raw, never logged.
    pub token: Vec<u8>,
    /// Pin LIB_PROTO_VSN; unset: try 82, then the version a reject names.
    pub protocol: Option<u16>,
    pub connect_timeout: Duration,
    /// Every order but besecondary.
    pub timeout: Duration,
    pub besecondary_timeout: Duration,
    /// The IPC access check and the secret (the access file's bytes).
    pub access: Option<(AccessCheck, Vec<u8>)>,
}

/// The token and the access secret are never printed.
impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &"<redacted>")
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("besecondary_timeout", &self.besecondary_timeout)
            .field(
                "access",
                &self.access.as_ref().map(|(check, _)| (check, "<redacted>")),
            )
            .finish()
    }
}

/// A secret file's raw bytes (a trailing newline is part of it).
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens, or the connection could not be made in time.
    Unreachable(String),
    /// The server refused our protocol version; it speaks `server`.
    WrongVersion { sent: u16, server: u16 },
    /// The server refused the handshake for another reason (status byte).
    Refused(u8),
    /// The IPC access check failed (result byte).
    AccessDenied(u8),
    /// The server closed the connection.
    Closed,
    /// No answer within the bound: the server may be hung.
    Timeout,
    /// It answered something that is not a reply.
    Protocol(WireError),
    /// `{error, Code}`.
    Server(i32),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(e) => write!(f, "unreachable: {e}"),
            ClientError::WrongVersion { sent, server } => {
                write!(
                    f,
                    "protocol version {sent} refused; the server speaks {server}"
                )
            }
            ClientError::Refused(s) => write!(f, "handshake refused (status {s})"),
            ClientError::AccessDenied(s) => {
                write!(f, "IPC access check failed (result {s}): wrong secret?")
            }
            ClientError::Closed => write!(f, "connection closed by the server"),
            ClientError::Timeout => write!(f, "no answer in time"),
            ClientError::Protocol(e) => write!(f, "protocol error: {e}"),
            ClientError::Server(c) => write!(f, "{} ({c})", crate::code::name(*c)),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// What the policy makes of it.
    pub fn failure(&self) -> crate::HaFailure {
        match self {
            ClientError::Timeout => crate::HaFailure::Timeout,
            ClientError::Server(c) => crate::HaFailure::Error(*c),
            _ => crate::HaFailure::Unreachable,
        }
    }
}

/// A byte stream over TCP or a unix socket.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct HaClient {
    stream: Box<dyn Stream>,
    frames: Deframer,
    opts: ClientOptions,
    /// The LIB_PROTO_VSN the server accepted.
    pub protocol: u16,
}

/// Connect to an endpoint within `bound`.
pub async fn open(endpoint: &Endpoint, bound: Duration) -> Result<Box<dyn Stream>, ClientError> {
    let connect = async {
        match endpoint {
            Endpoint::Tcp(addr) => TcpStream::connect(addr).await.map(|s| {
                let _ = s.set_nodelay(true);
                Box::new(s) as Box<dyn Stream>
            }),
            Endpoint::Unix(path) => UnixStream::connect(path)
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
        }
    };
    match timeout(bound, connect).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ClientError::Unreachable(format!("{endpoint}: {e}"))),
        Err(_) => Err(ClientError::Unreachable(format!(
            "{endpoint}: no connection within {bound:?}"
        ))),
    }
}

/// The 9-byte handshake of a library connection, with the access check
/// when configured. `Ok(())` once the server accepted it.
async fn handshake(
    stream: &mut Box<dyn Stream>,
    kind: u8,
    proto: u16,
    opts: &ClientOptions,
) -> Result<(), ClientError> {
    let mut hello = Hello::new(kind, proto);
    if let Some((check, _)) = &opts.access {
        hello.kind |= check.type_bits();
    }
    let mut reply = [0u8; 9];
    let exchange = async {
        stream.write_all(&hello.encode()).await?;
        if let Some((check, secret)) = &opts.access {
            let mut challenge = vec![0u8; 1 + check.challenge_len()];
            stream.read_exact(&mut challenge).await?;
            if challenge[0] != 0x0b {
                return Ok(Err(ClientError::Refused(challenge[0])));
            }
            stream
                .write_all(&check.response(secret, &challenge[1..]))
                .await?;
            let mut result = [0u8; 1];
            stream.read_exact(&mut result).await?;
            if result[0] != 0 {
                return Ok(Err(ClientError::AccessDenied(result[0])));
            }
        }
        stream.read_exact(&mut reply).await.map(|_| Ok(()))
    };
    match timeout(opts.timeout, exchange).await {
        Err(_) => return Err(ClientError::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ClientError::Closed)
        }
        Ok(Err(e)) => return Err(ClientError::Unreachable(e.to_string())),
        Ok(Ok(Err(refused))) => return Err(refused),
        Ok(Ok(Ok(()))) => {}
    }
    let reply = HelloReply::decode(&reply).map_err(ClientError::Protocol)?;
    match reply.status {
        0 => Ok(()),
        1 => Err(ClientError::WrongVersion {
            sent: proto,
            server: reply.proto,
        }),
        other => Err(ClientError::Refused(other)),
    }
}

/// Read frames until a whole one has arrived.
async fn read_frame(
    stream: &mut Box<dyn Stream>,
    frames: &mut Deframer,
) -> Result<Vec<u8>, ClientError> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = frames.next_frame().map_err(ClientError::Protocol)? {
            return Ok(frame);
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Err(ClientError::Closed),
            Ok(n) => frames.push(&buf[..n]),
        }
    }
}

impl HaClient {
    /// Connect, shake hands (negotiating the version unless pinned) and send
    /// the token.
    pub async fn connect(opts: ClientOptions) -> Result<HaClient, ClientError> {
        let first = opts.protocol.unwrap_or(PROTOCOL_VERSIONS[0]);
        match HaClient::connect_with(&opts, first).await {
            Err(ClientError::WrongVersion { server, .. })
                if opts.protocol.is_none() && server != first =>
            {
                // The reject names the server's own version: try that once.
                HaClient::connect_with(&opts, server).await
            }
            other => other,
        }
    }

    async fn connect_with(opts: &ClientOptions, proto: u16) -> Result<HaClient, ClientError> {
        let mut stream = open(&opts.endpoint, opts.connect_timeout).await?;
        handshake(&mut stream, wire::CLIENT_HA, proto, opts).await?;
        let mut client = HaClient {
            stream,
            frames: Deframer::default(),
            opts: opts.clone(),
            protocol: proto,
        };
        // The server never answers the token.
        let token = wire::frame(&opts.token);
        client.write(&token, opts.timeout).await?;
        Ok(client)
    }

    async fn write(&mut self, bytes: &[u8], bound: Duration) -> Result<(), ClientError> {
        match timeout(bound, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    async fn read_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        read_frame(&mut self.stream, &mut self.frames).await
    }

    /// Resolves when the server closes this idle socket. The server never
    /// writes to the HA socket unasked, so anything readable means it is
    /// gone: most often another HA client (`confd_cmd`) connected, whose
    /// token replaced this one. Cancel-safe: nothing is consumed until
    /// the socket is closed anyway.
    pub async fn closed(&mut self) {
        let mut byte = [0u8; 1];
        let _ = self.stream.read(&mut byte).await;
    }

    /// Send one order and wait for its reply (none for an asynchronous
    /// besecondary: `Ok(None)`). `{error, Code}` becomes `Server(Code)`.
    pub async fn call(&mut self, order: &Order) -> Result<Option<Reply>, ClientError> {
        let bound = match order {
            Order::BeSecondary { .. } => self.opts.besecondary_timeout,
            _ => self.opts.timeout,
        };
        self.write(&order.encode(), bound).await?;
        if !order.expects_reply() {
            return Ok(None);
        }
        let frame = match timeout(bound, self.read_frame()).await {
            Ok(result) => result?,
            Err(_) => return Err(ClientError::Timeout),
        };
        let term = wire::decode_term(&frame).map_err(ClientError::Protocol)?;
        match Reply::from_term(&term).map_err(ClientError::Protocol)? {
            Reply::Error(code) => Err(ClientError::Server(code)),
            reply => Ok(Some(reply)),
        }
    }
}

/// A subscription to HA_INFO notifications (client type 11) on its own
/// connection. With `sync`, the server waits for an acknowledgement of each
/// event before its next HA step; `next_event` sends it.
pub struct HaEvents {
    stream: Box<dyn Stream>,
    frames: Deframer,
    sync: bool,
}

impl HaEvents {
    pub async fn connect(opts: &ClientOptions, sync: bool) -> Result<HaEvents, ClientError> {
        let proto = opts.protocol.unwrap_or(PROTOCOL_VERSIONS[0]);
        let mut stream = open(&opts.endpoint, opts.connect_timeout).await?;
        handshake(&mut stream, wire::CLIENT_NOTIFICATIONS, proto, opts).await?;
        let mask = wire::MASK_HA_INFO | if sync { wire::MASK_HA_INFO_SYNC } else { 0 };
        match timeout(opts.timeout, stream.write_all(&wire::subscription(mask))).await {
            Err(_) => return Err(ClientError::Timeout),
            Ok(Err(_)) => return Err(ClientError::Closed),
            Ok(Ok(())) => {}
        }
        let mut events = HaEvents {
            stream,
            frames: Deframer::default(),
            sync,
        };
        // The subscription is answered with `ok`.
        let frame = match timeout(opts.timeout, events.read_frame()).await {
            Ok(frame) => frame?,
            Err(_) => return Err(ClientError::Timeout),
        };
        let term = wire::decode_term(&frame).map_err(ClientError::Protocol)?;
        match Reply::from_term(&term) {
            Ok(Reply::Ok) => Ok(events),
            _ => Err(ClientError::Protocol(WireError::Unexpected(format!(
                "subscription answered {term}"
            )))),
        }
    }

    async fn read_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        read_frame(&mut self.stream, &mut self.frames).await
    }

    /// The next HA event (acknowledged at once in sync mode). Frames that
    /// are not HA events are skipped; a closed socket is `Closed`.
    pub async fn next_event(&mut self) -> Result<wire::Event, ClientError> {
        loop {
            let frame = self.read_frame().await?;
            let Ok(event) = wire::decode_term(&frame).and_then(|t| wire::Event::from_term(&t))
            else {
                continue;
            };
            if self.sync {
                self.stream
                    .write_all(&wire::sync_ack())
                    .await
                    .map_err(|_| ClientError::Closed)?;
            }
            return Ok(event);
        }
    }
}

/// A request socket beside the HA socket: MAAPI (client type 7) for
/// read-only mode, CDB (client type 5) for the transaction id. No token,
/// no user or CDB session needed (as captured).
pub struct IpcSocket {
    stream: Box<dyn Stream>,
    frames: Deframer,
    bound: Duration,
}

/// The MAAPI socket coroha keeps for `set_readonly_mode`.
pub type Maapi = IpcSocket;
/// The CDB read socket coroha keeps for `cdb_get_txid`.
pub type Cdb = IpcSocket;

impl IpcSocket {
    /// A MAAPI connection.
    pub async fn connect(opts: &ClientOptions) -> Result<IpcSocket, ClientError> {
        IpcSocket::open(opts, wire::ipc::CLIENT_MAAPI).await
    }

    /// A CDB read connection.
    pub async fn connect_cdb(opts: &ClientOptions) -> Result<IpcSocket, ClientError> {
        IpcSocket::open(opts, wire::ipc::CLIENT_CDB).await
    }

    async fn open(opts: &ClientOptions, kind: u8) -> Result<IpcSocket, ClientError> {
        let proto = opts.protocol.unwrap_or(PROTOCOL_VERSIONS[0]);
        let mut stream = open(&opts.endpoint, opts.connect_timeout).await?;
        handshake(&mut stream, kind, proto, opts).await?;
        Ok(IpcSocket {
            stream,
            frames: Deframer::default(),
            bound: opts.timeout,
        })
    }

    /// One request and its reply, within the timeout. An error reply
    /// becomes `Server(code)`; the connection stays usable.
    async fn call(&mut self, op: u32, request: Vec<u8>) -> Result<Option<Term>, ClientError> {
        let exchange = async {
            self.stream
                .write_all(&request)
                .await
                .map_err(|_| ClientError::Closed)?;
            read_frame(&mut self.stream, &mut self.frames).await
        };
        let frame = match timeout(self.bound, exchange).await {
            Ok(result) => result?,
            Err(_) => return Err(ClientError::Timeout),
        };
        match wire::ipc::decode_reply(&frame).map_err(ClientError::Protocol)? {
            wire::ipc::IpcReply::Ok { op: got, value } if got == op => Ok(value),
            wire::ipc::IpcReply::Ok { op: got, .. } => Err(ClientError::Protocol(
                WireError::Unexpected(format!("reply to op {got}, asked {op}")),
            )),
            wire::ipc::IpcReply::Error { code, .. } => Err(ClientError::Server(code as i32)),
        }
    }

    /// `set_readonly_mode` (MAAPI): commits are refused while it is on.
    pub async fn set_read_only(&mut self, on: bool) -> Result<(), ClientError> {
        let op = wire::ipc::OP_SET_READONLY;
        self.call(op, wire::ipc::set_readonly_request(on))
            .await
            .map(drop)
    }

    /// `cdb_get_txid` (CDB): which commit the running datastore is at.
    pub async fn txid(&mut self) -> Result<crate::Txid, ClientError> {
        let op = wire::ipc::OP_GET_TXID;
        let value = self.call(op, wire::ipc::get_txid_request()).await?;
        let term = value.ok_or_else(|| {
            ClientError::Protocol(WireError::Unexpected(
                "no transaction id in the reply".into(),
            ))
        })?;
        wire::ipc::txid_from_term(&term).map_err(ClientError::Protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:4565"),
            Ok(Endpoint::Tcp("127.0.0.1:4565".into()))
        );
        assert_eq!(
            Endpoint::parse("[::1]:4569"),
            Ok(Endpoint::Tcp("[::1]:4569".into()))
        );
        assert_eq!(
            Endpoint::parse("unix:/tmp/nso/nso-ipc"),
            Ok(Endpoint::Unix("/tmp/nso/nso-ipc".into()))
        );
        assert!(Endpoint::parse("localhost").is_err());
        assert!(Endpoint::parse("unix:").is_err());
    }
}
