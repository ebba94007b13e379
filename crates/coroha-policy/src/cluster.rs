//! What corosync tells the policy: the events it consumes. The real
//! backend (rust-corosync, in the `coroha` daemon) and the simulated
//! corosync (`coroha-sim`) both produce exactly these.

use serde::{Deserialize, Serialize};

/// A corosync node id (`nodeid` in corosync.conf).
pub type NodeId = u32;

/// A totem ring id. Corosync gives the same `seq` to both sides of a split
/// (seen as `1.1a` and `3.1a`), so a ring is only ever compared as the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RingId {
    pub rep: NodeId,
    pub seq: u64,
}

impl std::fmt::Display for RingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:x}", self.rep, self.seq)
    }
}

/// One process in the CPG group: a coroha daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    pub pid: u32,
}

/// Why a process joined or left the CPG group (corosync's `cpg_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    Join,
    Leave,
    NodeDown,
    NodeUp,
    ProcDown,
}

/// What the corosync side tells the policy. The real backend converts each
/// rust-corosync callback into one of these; the simulator produces them in
/// the order a real corosync 3.1.7 does (see docs/design.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterEvent {
    /// A new session with corosync; `local` is this daemon's CPG identity.
    Connected { local: Member },
    /// The corosync connection died (dispatch error). Everything learnt in
    /// the session is void until the next `Connected`.
    Disconnected,
    /// CPG configuration change of our group. `members` is sorted the same
    /// way on every node.
    CpgConfChg {
        members: Vec<Member>,
        left: Vec<(Member, Reason)>,
        joined: Vec<(Member, Reason)>,
    },
    /// CPG totem configuration change (same fd, same stream as deliveries).
    CpgTotem { ring: RingId, members: Vec<NodeId> },
    /// A message delivered to the group (AGREED order).
    Deliver { sender: Member, data: Vec<u8> },
    /// votequorum node list notification: the ring it belongs to.
    QuorumNodes { ring: RingId, members: Vec<NodeId> },
    /// votequorum quorum notification; applies to the preceding node list.
    /// `needed` is the number of votes quorum needs (votequorum_getinfo's
    /// `quorum`, read right after the notification).
    Quorum { quorate: bool, needed: u32 },
}
