//! The CPG message format between coroha daemons. Versioned JSON: easy to
//! read in a capture, cheap at election rates. Anything that does not decode,
//! or carries another version, is ignored by the receiver with a log line.

use crate::cluster::NodeId;
use confd_ha::{HaRole, TxStamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const PROTOCOL_VERSION: u8 = 1;

/// How fresh a node's copy of the data is: the epoch of the primary it was
/// last confirmed in sync with, and that primary's sync generation (bumped
/// each time a secondary drops out). Higher is fresher.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Fresh {
    pub epoch: u64,
    pub gen: u64,
}

impl std::fmt::Display for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.gen)
    }
}

/// The cluster-wide pause (`coroha pause`/`resume`): the latest
/// operator's word wins, by its generation, wherever it was heard, so a
/// node that was down while the cluster resumed does not pause it again
/// when it returns.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Pause {
    pub gen: u64,
    pub on: bool,
}

/// Freshness with the data's own evidence (design §6): the lineage
/// position first, then, among nodes at the same position (so in one
/// primary's lineage, stamped by one clock), the CDB transaction id read
/// at that position. Unknown (`None`) ranks below any id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub fresh: Fresh,
    pub txid: Option<TxStamp>,
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.txid {
            Some(t) => write!(f, "{} txid {t}", self.fresh),
            None => write!(f, "{}", self.fresh),
        }
    }
}

/// State of the local NSO/ConfD as its coroha sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// Not yet asked since this coroha started: its role is unknown.
    Starting,
    Ok,
    /// Nothing listens: no server process, so it is not primary.
    Down,
    /// It stopped answering: it keeps whatever role it had.
    Hung,
    /// It answers but refuses orders.
    Refusing,
    /// The fence hook ran: the node is no longer primary.
    Fenced,
}

/// A primary as last seen by a node, used when its coroha disappears while
/// its node stays in the membership (an orphaned primary).
#[derive(Clone, Debug, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KnownPrimary {
    pub node: NodeId,
    pub epoch: u64,
    pub name: Arc<str>,
    pub address: Arc<str>,
    /// Its coroha left while its `beprimary` may still be in flight: it may
    /// not be primary yet, so nothing listening at its HA address is no
    /// evidence that it will not be (design §12).
    #[serde(default)]
    pub promotion_in_flight: bool,
}

/// Every step compares announcements that carry a known primary; its
/// names are shared, so they are compared by pointer first.
impl PartialEq for KnownPrimary {
    fn eq(&self, other: &KnownPrimary) -> bool {
        let KnownPrimary {
            node,
            epoch,
            name,
            address,
            promotion_in_flight,
        } = self;
        *node == other.node
            && *epoch == other.epoch
            && same_shared(name, &other.name)
            && same_shared(address, &other.address)
            && *promotion_in_flight == other.promotion_in_flight
    }
}

/// A known primary as this node remembers it across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RememberedPrimary {
    /// Its coroha was in the group when last seen: if its node leaves the
    /// ring, that coroha demotes it on the quorum loss (safety rule 7).
    Attended(KnownPrimary),
    /// Its coroha left the group while its node stayed (killed, or a
    /// maintenance stop): nothing demotes it, so only evidence that its
    /// NSO/ConfD stopped serving, or its coroha's return, forgets it.
    Orphaned(KnownPrimary),
}

impl RememberedPrimary {
    pub fn primary(&self) -> &KnownPrimary {
        match self {
            RememberedPrimary::Attended(k) | RememberedPrimary::Orphaned(k) => k,
        }
    }

    pub fn orphaned(&self) -> bool {
        matches!(self, RememberedPrimary::Orphaned(_))
    }
}

/// What every daemon announces after every configuration change and after
/// every change of its own state.
#[derive(Clone, Debug, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Shared, not copied: every step builds this node's state to see
    /// whether it changed, and equal `Arc`s compare by pointer first.
    pub name: Arc<str>,
    pub address: Arc<str>,
    /// Observed HA role; `None` while unknown (starting, never answered).
    pub role: Option<HaRole>,
    /// Primary: its own epoch. Secondary or relay: its primary's epoch.
    pub role_epoch: u64,
    /// Secondary or relay: the node it is attached to.
    pub parent: Option<NodeId>,
    pub initialized: bool,
    /// About to order `beprimary` for this epoch: counts as primary for
    /// everybody else until it is done or called off.
    pub promoting: Option<u64>,
    pub health: Health,
    /// Its NSO/ConfD has answered since this coroha started. Until then
    /// its coroha cannot say what the server did while nobody watched (a
    /// primary whose coroha was away may have committed alone): its role
    /// and data are its server's word only once it has answered.
    #[serde(default = "answered_by_default")]
    pub answered: bool,
    pub max_epoch: u64,
    pub fresh: Fresh,
    /// 0 while in sync; otherwise the order in which it lost sync with a
    /// still-serving primary among nodes of equal freshness: a node that
    /// dropped out earlier missed more.
    pub sync_loss: u64,
    /// The freshest state this node has seen anybody announce.
    pub known_fresh: Fresh,
    /// The CDB transaction id of its data, read at `fresh` while it was in
    /// the lineage (primary, or an initialized secondary); `None` until
    /// such a read (design §6).
    #[serde(default)]
    pub txid: Option<TxStamp>,
    /// The highest transaction id anybody announced at `known_fresh`.
    #[serde(default)]
    pub known_txid: Option<TxStamp>,
    /// Its data changed while it was outside the lineage (commits while
    /// NONE, a wiped or restored CDB): it holds writes nobody else has and
    /// may lack ones everybody has, so it is never elected on them.
    #[serde(default)]
    pub diverged: bool,
    /// Out of the lineage (its server not primary, nor promoting), and its
    /// transaction id was read out there and matched: `txid` is its data's
    /// last commit, and stays so until it rejoins (design §6).
    #[serde(default)]
    pub txid_final: bool,
    /// The last epoch at which this node's NSO/ConfD was, or may have
    /// been, primary (0: never). The primary of an epoch holds every write
    /// of it, so it outranks its own secondaries at equal freshness.
    #[serde(default)]
    pub led_epoch: u64,
    /// How many fellow secondaries at this node's freshness it saw drop out
    /// of the ring while it stayed in sync: at equal freshness it holds
    /// writes they lack, also where nobody bumped the generation (the
    /// primary an orphan).
    #[serde(default)]
    pub outlived: u64,
    /// Primary only: sync generation and the secondaries attached to it.
    pub gen: u64,
    pub attached: Vec<NodeId>,
    /// A primary that stepped down with `benone` (a handover): the
    /// secondaries attached to it then, which hold every commit it made
    /// (design §6). Empty once it has another role.
    #[serde(default)]
    pub handed_over: Vec<NodeId>,
    pub priority: u32,
    pub can_primary: bool,
    pub standby: bool,
    /// Orderly stop in progress: hand the primary role over.
    pub leaving: bool,
    /// Still inside its startup settle time.
    pub settling: bool,
    pub relay_via: Option<NodeId>,
    pub known_primary: Option<KnownPrimary>,
    /// A primary whose node left the membership without a goodbye.
    pub vanished: Option<(NodeId, u64)>,
    /// Number of configured nodes and the config digest, to notice drift.
    pub nodes: u32,
    pub config_digest: u64,
    /// The cluster-wide pause as this node knows it.
    #[serde(default)]
    pub pause: Pause,
    /// An order to its NSO/ConfD that keeps failing, and why (for the
    /// others' status: a wrong HA token is seen from every node).
    #[serde(default)]
    pub failing: Option<String>,
    /// `config_digest` part by part: what differs, where it does.
    #[serde(default = "no_parts")]
    pub config_parts: Arc<[(Arc<str>, u64)]>,
}

/// A peer that does not announce it predates the field: it announced its
/// server's role only once the server had answered.
fn answered_by_default() -> bool {
    true
}

fn no_parts() -> Arc<[(Arc<str>, u64)]> {
    Arc::new([])
}

/// Every step compares this node's state with the one it announced, and
/// the lists in it hold a few node ids: compared element by element, not
/// through `memcmp`, which was a third of the simulator's time.
fn same_nodes(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Shared values compared by pointer first: `Arc`'s own `==` compares
/// the contents of a `str` or a slice every time (its pointer shortcut
/// needs a sized type), and this node's announcement is compared with the
/// one it made last, which shares them, twice a step.
fn same_shared<T: PartialEq + ?Sized>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

impl PartialEq for NodeState {
    fn eq(&self, other: &NodeState) -> bool {
        self.txid == other.txid && self.known_txid == other.known_txid && self.same_but_txid(other)
    }
}

impl NodeState {
    /// A healthy node in NONE that knows nothing yet (tests build on it).
    pub fn sample(id: NodeId) -> NodeState {
        NodeState {
            name: format!("n{id}").into(),
            address: format!("10.0.0.{id}").into(),
            role: Some(HaRole::None),
            role_epoch: 0,
            parent: None,
            initialized: false,
            promoting: None,
            health: Health::Ok,
            answered: true,
            max_epoch: 0,
            fresh: Fresh::default(),
            sync_loss: 0,
            known_fresh: Fresh::default(),
            txid: None,
            known_txid: None,
            diverged: false,
            txid_final: false,
            led_epoch: 0,
            outlived: 0,
            gen: 0,
            attached: vec![],
            handed_over: vec![],
            priority: 100,
            can_primary: true,
            standby: false,
            leaving: false,
            settling: false,
            relay_via: None,
            known_primary: None,
            vanished: None,
            nodes: 3,
            config_digest: 0,
            pause: Pause::default(),
            failing: None,
            config_parts: no_parts(),
        }
    }

    /// Equal but for the transaction ids.
    pub fn same_but_txid(&self, other: &NodeState) -> bool {
        // Destructured, so that a new field cannot be forgotten here.
        let NodeState {
            name,
            address,
            role,
            role_epoch,
            parent,
            initialized,
            promoting,
            health,
            answered,
            max_epoch,
            fresh,
            sync_loss,
            known_fresh,
            diverged,
            txid_final,
            led_epoch,
            outlived,
            gen,
            attached,
            handed_over,
            priority,
            can_primary,
            standby,
            leaving,
            settling,
            relay_via,
            known_primary,
            vanished,
            nodes,
            config_digest,
            pause,
            failing,
            config_parts,
            txid: _,
            known_txid: _,
        } = self;
        same_shared(name, &other.name)
            && same_shared(address, &other.address)
            && *role == other.role
            && *role_epoch == other.role_epoch
            && *parent == other.parent
            && *initialized == other.initialized
            && *promoting == other.promoting
            && *health == other.health
            && *answered == other.answered
            && *max_epoch == other.max_epoch
            && *fresh == other.fresh
            && *sync_loss == other.sync_loss
            && *known_fresh == other.known_fresh
            && *diverged == other.diverged
            && *txid_final == other.txid_final
            && *led_epoch == other.led_epoch
            && *outlived == other.outlived
            && *gen == other.gen
            && same_nodes(attached, &other.attached)
            && same_nodes(handed_over, &other.handed_over)
            && *priority == other.priority
            && *can_primary == other.can_primary
            && *standby == other.standby
            && *leaving == other.leaving
            && *settling == other.settling
            && *relay_via == other.relay_via
            && *known_primary == other.known_primary
            && *vanished == other.vanished
            && *nodes == other.nodes
            && *config_digest == other.config_digest
            && *pause == other.pause
            && *failing == other.failing
            && same_shared(config_parts, &other.config_parts)
    }

    /// Its data's freshness as announced.
    pub fn mark(&self) -> Mark {
        Mark {
            fresh: self.fresh,
            txid: self.txid,
        }
    }

    /// The freshest data it has seen anybody announce.
    pub fn known_mark(&self) -> Mark {
        Mark {
            fresh: self.known_fresh,
            txid: self.known_txid,
        }
    }

    pub fn eligible(&self) -> bool {
        self.health == Health::Ok && self.can_primary && !self.standby && !self.leaving
    }

    /// Could its NSO/ConfD be primary right now (so nobody else may be
    /// promoted)? Unknown counts as maybe, unless nothing is running.
    pub fn maybe_primary(&self) -> bool {
        self.promoting.is_some()
            || match self.role {
                Some(role) => role == HaRole::Primary,
                None => !matches!(self.health, Health::Down | Health::Fenced),
            }
    }

    pub fn is_primary(&self) -> bool {
        self.role == Some(HaRole::Primary)
    }
}

/// A timed wait that one node (the coordinator) measures for everybody and
/// ends with a `Release` message, so that every member acts on it at the
/// same point of the message order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Hold {
    /// The primary's node vanished without a goodbye: `promotion_delay`,
    /// the rest of its lease, and fencing it (design §13).
    PromotionDelay { primary: NodeId, epoch: u64 },
    /// The primary's coroha is gone but its node is a member: `orphan_grace`.
    OrphanGrace { primary: NodeId, epoch: u64 },
    /// A better node is ready to take over: `failback = "after …"`.
    Failback { to: NodeId, epoch: u64 },
}

/// Operator requests and coordinator decisions, applied by every member in
/// delivery order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Move the primary role to `to`, or to the best other node.
    Switchover {
        to: Option<NodeId>,
    },
    Standby {
        node: NodeId,
        on: bool,
    },
    Release(Hold),
    /// Evidence that an orphaned primary's NSO/ConfD no longer serves.
    PrimaryGone {
        node: NodeId,
        epoch: u64,
    },
    /// `coroha pause` / `resume`, at a generation above any known.
    Pause(Pause),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Announce(Box<NodeState>),
    Request(Request),
    /// A primary's proof of life, stamped with its own clock: only the
    /// sender reads that (design §13). It carries the primary's latest
    /// transaction id, so that everybody knows how far its data went
    /// without an announcement per commit (design §6).
    Heartbeat {
        sent_at: u64,
        #[serde(default)]
        txid: Option<TxStamp>,
    },
}

/// One CPG message, stamped with the sender's view so that a message sent in
/// one configuration and delivered in the next is recognised and dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u8,
    pub view: u64,
    pub body: Body,
}

impl Envelope {
    pub fn new(view: u64, body: Body) -> Envelope {
        Envelope {
            v: PROTOCOL_VERSION,
            view,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u8,
        }
        match serde_json::from_slice::<Envelope>(bytes) {
            Ok(e) if e.v == PROTOCOL_VERSION => Ok(e),
            // Parse twice only on failure, to say what it was.
            Ok(e) => Err(format!(
                "protocol version {} (this daemon speaks {PROTOCOL_VERSION})",
                e.v
            )),
            Err(full) => match serde_json::from_slice::<VersionOnly>(bytes) {
                Err(e) => Err(format!("not a coroha message: {e}")),
                Ok(v) if v.v != PROTOCOL_VERSION => Err(format!(
                    "protocol version {} (this daemon speaks {PROTOCOL_VERSION})",
                    v.v
                )),
                Ok(_) => Err(format!("malformed coroha message: {full}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let e = Envelope::new(7, Body::Request(Request::Switchover { to: Some(2) }));
        assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn other_versions_and_garbage_are_rejected() {
        assert!(Envelope::decode(b"\x00\xffgarbage")
            .unwrap_err()
            .contains("not a coroha message"));
        let future = br#"{"v":2,"view":1,"body":{"Whatever":{}}}"#;
        assert!(Envelope::decode(future)
            .unwrap_err()
            .contains("protocol version 2"));
        let broken = br#"{"v":1,"view":1,"body":{"Request":{"Standby":{"node":"x"}}}}"#;
        assert!(Envelope::decode(broken).unwrap_err().contains("malformed"));
    }
}
