//! The static inputs of the policy. The policy owns these types: the TOML
//! schema (`coroha-config`) turns into them, so that the election knows
//! nothing of files, spans or defaults.

use crate::cluster::NodeId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One configured node, as the election needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// HA node name, as NSO/ConfD knows it (shared with every announcement
    /// that names the node).
    pub name: Arc<str>,
    /// corosync node id.
    pub id: NodeId,
    /// Address the secondaries use to reach this node's HA port.
    pub address: Arc<str>,
    pub priority: u32,
    /// false: this node is only ever a secondary (e.g. a DR site).
    pub can_primary: bool,
    /// Attach through this node (a relay) instead of the primary.
    pub relay_via: Option<String>,
}

/// What happens when a better (higher priority) node becomes available
/// while another is primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    Never,
    Immediately,
    /// After this many milliseconds of the better node being available.
    After(u64),
}

/// What a primary does the moment it loses quorum (safety rule 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuorumLossAction {
    /// Order `benone`. NSO/ConfD in NONE is writable: writes there are lost
    /// when the node rejoins as a secondary.
    Benone,
    /// Run the fence hook (e.g. stop NSO), then consider the node demoted.
    Fence,
}

/// Durations are in milliseconds of the caller's monotonic clock.
#[derive(Clone, Debug)]
pub struct Settings {
    pub me: NodeId,
    pub nodes: Vec<Node>,
    pub failback: Failback,
    pub on_quorum_loss: QuorumLossAction,
    pub startup_settle: u64,
    pub promotion_delay: u64,
    pub orphan_grace: u64,
    /// corosync's time to notice a lost node (token + consensus).
    pub membership_detect: u64,
    /// A primary's lease: it stays writable this long after its last
    /// heartbeat came back, and primary twice as long (design §13).
    pub lease: u64,
    /// A `fence_node` hook is configured: a primary that vanished is
    /// fenced before anybody else is promoted.
    pub fence_node: bool,
    /// corosync runs with `two_node`: each half of a split is quorate, so
    /// the two nodes race to fence each other (design §13).
    pub two_node: bool,
    /// In that race, how much longer a node that is not primary waits
    /// before it fences the primary, so that the primary's side wins.
    pub fence_race_delay: u64,
    /// Read CDB's transaction id and elect by it (design §6). Always on in
    /// the daemon; the simulator switches it off to measure what it adds.
    pub read_txid: bool,
    pub secondary_dead: bool,
    pub fence_hung_primary: bool,
    /// A fence hook is configured: the escalation when demotion fails.
    pub has_fence: bool,
    pub handover_timeout: u64,
    /// At least 1.
    pub max_order_failures: u32,
    /// At least 1.
    pub status_interval: u64,
    /// Back-off before an order that failed is given again.
    pub retry_interval: u64,
    /// Digest of the node table and policy: announced, so that a node
    /// running a different configuration is noticed.
    pub digest: u64,
    /// The digest part by part (`Config::digest_parts`), announced so that
    /// the others can say what differs.
    pub digest_parts: std::sync::Arc<[(std::sync::Arc<str>, u64)]>,
}

impl Settings {
    pub(crate) fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub(crate) fn name(&self, id: NodeId) -> String {
        self.node(id)
            .map_or_else(|| format!("node{id}"), |n| String::from(&*n.name))
    }

    pub(crate) fn id_of(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().find(|n| &*n.name == name).map(|n| n.id)
    }
}

/// FNV-1a, 64 bit: a stable digest (the same on every node and build) for
/// view ids and configuration digests. Not a security boundary.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
