//! The Cisco/Tail-f ConfD and NSO HA control socket.
//!
//! - [`wire`]: the bytes, exactly as a real ConfD 8.2.5 exchanges them
//!   (handshake, framing, Erlang External Term Format, orders, replies,
//!   HA_INFO notifications). Pure: no I/O.
//! - the typed view an HA manager works with ([`HaRole`], [`HaOrder`],
//!   [`HaReply`], [`HaEvent`], [`HaFailure`], the error [`code`]s).
//! - [`client`] (feature `client`, on by default): a tokio client of one HA
//!   socket over TCP or a unix socket.

#[cfg(feature = "client")]
pub mod client;
mod endpoint;
pub mod wire;

pub use endpoint::Endpoint;

use serde::{Deserialize, Serialize};

/// HA state as `get_status` reports it (ConfD state codes 1..4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HaRole {
    None,
    Secondary,
    Primary,
    Relay,
}

impl HaRole {
    pub fn code(self) -> u8 {
        match self {
            HaRole::None => 1,
            HaRole::Secondary => 2,
            HaRole::Primary => 3,
            HaRole::Relay => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            HaRole::None => "none",
            HaRole::Secondary => "secondary",
            HaRole::Primary => "primary",
            HaRole::Relay => "relay",
        }
    }
}

/// Which commit a node's running datastore is at, as CDB's `cdb_get_txid`
/// reports it: the wall-clock time of that commit (MegaSecs, Secs,
/// MicroSecs) on the node that made it. A synchronous secondary reports
/// exactly its primary's; `{0,0,0}` is a node whose CDB was never
/// initialised. Ordered by time, so two stamps order commits only when the
/// same clock made both (one primary's lineage).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct TxStamp {
    pub mega: u32,
    pub secs: u32,
    pub micros: u32,
}

impl TxStamp {
    /// From microseconds since the Unix epoch (the simulator's clock).
    pub fn from_micros(us: u64) -> TxStamp {
        TxStamp {
            mega: (us / 1_000_000_000_000) as u32,
            secs: (us / 1_000_000 % 1_000_000) as u32,
            micros: (us % 1_000_000) as u32,
        }
    }

    /// `{0,0,0}`: no data at all (a wiped node in start phase 0).
    pub fn is_empty(self) -> bool {
        self == TxStamp::default()
    }
}

impl std::fmt::Display for TxStamp {
    /// As ConfD shows it in `/confd-state/internal/cdb/datastore`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{:06}", self.mega, self.secs, self.micros)
    }
}

/// A `cdb_get_txid` answer: the stamp, and the primary that made the
/// commit when the node has been in HA (informative only: two nodes with
/// equal data can carry different names, as captured).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txid {
    pub stamp: TxStamp,
    pub primary: Option<String>,
}

/// An order to the local NSO/ConfD: the policy emits exactly what goes on
/// the wire.
pub use wire::Order as HaOrder;

/// ConfD error codes seen on the HA socket (confd_errcode).
pub mod code {
    pub const BADSTATE: i32 = 17;
    pub const PROTOUSAGE: i32 = 21;
    pub const HA_CONNECT: i32 = 25;
    pub const HA_CLOSED: i32 = 26;
    pub const HA_BADTOKEN: i32 = 28;
    pub const HA_BADNAME: i32 = 29;
    pub const HA_NOTICK: i32 = 31;

    pub fn name(code: i32) -> &'static str {
        match code {
            BADSTATE => "BADSTATE",
            PROTOUSAGE => "PROTOUSAGE",
            HA_CONNECT => "HA_CONNECT",
            HA_CLOSED => "HA_CLOSED",
            HA_BADTOKEN => "HA_BADTOKEN",
            HA_BADNAME => "HA_BADNAME",
            HA_NOTICK => "HA_NOTICK",
            _ => "UNKNOWN",
        }
    }
}

/// Why an order did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaFailure {
    /// `{error, Code}` from the server.
    Error(i32),
    /// No reply within the configured timeout: the server may be hung, and
    /// whatever role it had, it may still have.
    Timeout,
    /// The connection could not be made or was closed: no server process.
    Unreachable,
}

impl std::fmt::Display for HaFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaFailure::Error(c) => write!(f, "{} ({c})", code::name(*c)),
            HaFailure::Timeout => write!(f, "timeout"),
            HaFailure::Unreachable => write!(f, "unreachable"),
        }
    }
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaReply {
    Ok,
    /// get_status: the role and, for a secondary, its primary's name; for a
    /// primary, the names of the connected secondaries.
    Status {
        role: HaRole,
        nodes: Vec<String>,
    },
}

/// HA_INFO notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaEvent {
    NoPrimary(i32),
    SecondaryDied(String),
    SecondaryArrived(String),
    SecondaryInitialized,
    IsPrimary,
    IsNone,
    BeSecondaryResult(i32),
}

/// In the words of NSO/ConfD's HA_INFO types, for the log.
impl std::fmt::Display for HaEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaEvent::NoPrimary(c) => write!(f, "no primary ({})", code::name(*c)),
            HaEvent::SecondaryDied(n) => write!(f, "secondary {n} died"),
            HaEvent::SecondaryArrived(n) => write!(f, "secondary {n} arrived"),
            HaEvent::SecondaryInitialized => f.write_str("secondary initialized"),
            HaEvent::IsPrimary => f.write_str("is primary"),
            HaEvent::IsNone => f.write_str("is none"),
            HaEvent::BeSecondaryResult(0) => f.write_str("besecondary succeeded"),
            HaEvent::BeSecondaryResult(c) => {
                write!(f, "besecondary failed ({})", code::name(*c))
            }
        }
    }
}

impl HaRole {
    /// From a `get_status` state code.
    pub fn from_code(code: i32) -> Option<HaRole> {
        match code {
            1 => Some(HaRole::None),
            2 => Some(HaRole::Secondary),
            3 => Some(HaRole::Primary),
            4 => Some(HaRole::Relay),
            _ => None,
        }
    }
}

impl HaReply {
    /// What the policy makes of a wire reply. `None` (an async besecondary
    /// has no reply) counts as accepted: its result comes as an event.
    pub fn from_wire(reply: Option<&wire::Reply>) -> Result<HaReply, HaFailure> {
        match reply {
            None | Some(wire::Reply::Ok) => Ok(HaReply::Ok),
            Some(wire::Reply::Error(c)) => Err(HaFailure::Error(*c)),
            Some(wire::Reply::Status { state, nodes }) => match HaRole::from_code(*state) {
                Some(role) => Ok(HaReply::Status {
                    role,
                    nodes: nodes
                        .iter()
                        .map(|(id, _)| wire::Reply::node_name(id))
                        .collect(),
                }),
                // A state this client does not know is not an answer to act
                // on; treat the server as refusing.
                None => Err(HaFailure::Error(code::PROTOUSAGE)),
            },
        }
    }
}

impl HaEvent {
    pub fn from_wire(event: &wire::Event) -> HaEvent {
        match event {
            wire::Event::NoPrimary(c) => HaEvent::NoPrimary(*c),
            wire::Event::SecondaryDied { id, .. } => {
                HaEvent::SecondaryDied(wire::Reply::node_name(id))
            }
            wire::Event::SecondaryArrived { id, .. } => {
                HaEvent::SecondaryArrived(wire::Reply::node_name(id))
            }
            wire::Event::SecondaryInitialized(_) => HaEvent::SecondaryInitialized,
            wire::Event::IsPrimary(_) => HaEvent::IsPrimary,
            wire::Event::IsNone(_) => HaEvent::IsNone,
            wire::Event::BeSecondaryResult(c) => HaEvent::BeSecondaryResult(*c),
        }
    }
}
