//! The local NSO/ConfD as this daemon knows it: its HA role, with the data
//! that only that role has, and what outlives a role.

use crate::cluster::NodeId;
use crate::message::Health;
use confd_ha::HaRole;
use std::collections::BTreeSet;

/// The HA role of the local NSO/ConfD, each with what belongs to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LocalRole {
    /// Not yet asked since this daemon started: it may be anything, primary
    /// included (a restarted daemon adopts what it finds).
    Unknown,
    None,
    /// The secondaries NSO/ConfD reports attached.
    Primary {
        attached: BTreeSet<NodeId>,
    },
    /// Following `parent` (the primary, or a relay); `initialized` once
    /// the first full copy has arrived.
    Secondary {
        parent: Option<NodeId>,
        initialized: bool,
    },
    /// A secondary that passes the stream on to secondaries of its site.
    Relay {
        parent: Option<NodeId>,
        initialized: bool,
    },
}

impl LocalRole {
    pub(crate) fn ha_role(&self) -> Option<HaRole> {
        match self {
            LocalRole::Unknown => None,
            LocalRole::None => Some(HaRole::None),
            LocalRole::Primary { .. } => Some(HaRole::Primary),
            LocalRole::Secondary { .. } => Some(HaRole::Secondary),
            LocalRole::Relay { .. } => Some(HaRole::Relay),
        }
    }

    pub(crate) fn is_primary(&self) -> bool {
        matches!(self, LocalRole::Primary { .. })
    }

    /// Whom a secondary or relay follows.
    pub(crate) fn parent(&self) -> Option<NodeId> {
        match self {
            LocalRole::Secondary { parent, .. } | LocalRole::Relay { parent, .. } => *parent,
            _ => None,
        }
    }

    /// A secondary or relay that has its first full copy.
    pub(crate) fn initialized(&self) -> bool {
        match self {
            LocalRole::Secondary { initialized, .. } | LocalRole::Relay { initialized, .. } => {
                *initialized
            }
            _ => false,
        }
    }

    /// A primary's attached secondaries (none for any other role).
    pub(crate) fn attached(&self) -> Vec<NodeId> {
        match self {
            LocalRole::Primary { attached } => attached.iter().copied().collect(),
            _ => Vec::new(),
        }
    }

    /// A primary's secondary left; true when it was attached.
    pub(crate) fn detach(&mut self, node: NodeId) -> bool {
        match self {
            LocalRole::Primary { attached } => attached.remove(&node),
            _ => false,
        }
    }

    /// The role NSO/ConfD took now, keeping what still applies: a primary
    /// keeps its secondaries, a secondary that becomes a relay (or back)
    /// keeps its parent and its copy.
    pub(crate) fn became(self, role: HaRole) -> LocalRole {
        let follower = match self {
            LocalRole::Secondary {
                parent,
                initialized,
            }
            | LocalRole::Relay {
                parent,
                initialized,
            } => (parent, initialized),
            _ => (None, false),
        };
        match (role, self) {
            (HaRole::Primary, LocalRole::Primary { attached }) => LocalRole::Primary { attached },
            (HaRole::Primary, _) => LocalRole::Primary {
                attached: BTreeSet::new(),
            },
            (HaRole::Secondary, _) => LocalRole::Secondary {
                parent: follower.0,
                initialized: follower.1,
            },
            (HaRole::Relay, _) => LocalRole::Relay {
                parent: follower.0,
                initialized: follower.1,
            },
            (HaRole::None, _) => LocalRole::None,
        }
    }

    /// A secondary or relay now follows `parent`, with its copy complete
    /// or not.
    pub(crate) fn follow(&mut self, new_parent: Option<NodeId>, now_initialized: bool) {
        if let LocalRole::Secondary {
            parent,
            initialized,
        }
        | LocalRole::Relay {
            parent,
            initialized,
        } = self
        {
            *parent = new_parent;
            *initialized = now_initialized;
        }
    }
}

/// What the local NSO/ConfD is doing, as far as this daemon knows.
#[derive(Clone, Debug)]
pub(crate) struct Local {
    pub(crate) role: LocalRole,
    /// The epoch this node announced it will promote itself at.
    pub(crate) promoting: Option<u64>,
    /// The epoch of the primary term the role belongs to: its own as
    /// primary, its primary's as secondary. Kept when the role ends: it
    /// dates the data this node has.
    pub(crate) role_epoch: u64,
    /// The sync generation of this node's last primary term: one more each
    /// time a secondary dropped out. Kept after a demotion, as part of the
    /// node's claim to the freshest data, `(role_epoch, gen)`.
    pub(crate) gen: u64,
    pub(crate) health: Health,
    /// It has answered since this daemon started (`NodeState::answered`).
    pub(crate) answered: bool,
    /// Orders that failed in a row.
    pub(crate) failures: u32,
    /// Marked refusing (start phase 0) until then: a status answer does
    /// not make it eligible again before, or the plan would turn to it and
    /// away again every second, a new epoch each time (design §12).
    pub(crate) refusing_until: Option<u64>,
}
