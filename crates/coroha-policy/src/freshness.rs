//! How fresh a member's data is, for the election and for the status
//! (design §6): the freshest anybody announced (`need`), the candidates
//! that may take over from a primary that still serves, the secondaries a
//! primary vouches for, and each member's `DataState`.

use crate::cluster::NodeId;
use crate::message::{Mark, NodeState};
use confd_ha::HaRole;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The freshest data anybody has announced, or seen announced: a new
/// primary where there is none must have it (design §6).
/// The members' announced states.
pub type States = BTreeMap<NodeId, NodeState>;

pub(crate) fn need(states: &States) -> Mark {
    states
        .values()
        .map(|s| s.mark().max(s.known_mark()))
        .max()
        .unwrap_or_default()
}

/// A secondary that the primary of the freshest lineage lists as attached
/// has every commit of it by synchronous replication, whatever transaction
/// id it last announced: the primary is here to say so, still serving, or
/// stepped down with `benone` in a handover (it takes no commit after
/// that). Its own last announcement may predate the last commits (design
/// §6).
pub(crate) fn vouched(states: &States, need: Mark, n: NodeId, s: &NodeState) -> bool {
    s.fresh == need.fresh
        && states.iter().any(|(l, ls)| {
            *l != n
                && ls.role_epoch == need.fresh.epoch
                && match ls.role {
                    Some(HaRole::Primary) => {
                        ls.attached.contains(&n)
                            && s.parent == Some(*l)
                            && s.initialized
                            && s.role_epoch == ls.role_epoch
                    }
                    Some(HaRole::None) => ls.handed_over.contains(&n),
                    _ => false,
                }
        })
}

/// The primary of the freshest epoch holds every commit of it, also those
/// it made alone after its last secondary dropped out, which nobody else
/// has (design §7): it meets any need within that epoch. Its data would
/// have to change outside the lineage to lose them, and that is
/// `diverged`.
pub(crate) fn led_epoch_of(need: Mark, s: &NodeState) -> bool {
    let epoch = need.fresh.epoch;
    epoch > 0 && s.fresh.epoch == epoch && s.led_epoch == epoch
}

/// A member whose data is at the very commit the freshest data ends with
/// holds it, whatever lineage position it announces, when that end is
/// final: a member out of the lineage announces it as read there. (A
/// primary whose last secondaries dropped out bumps its generation, and
/// a secondary that stopped a commit before is behind by generation
/// alone when the primary then committed nothing more; seed 3198189253.)
/// A need that stands for commits nobody has read (an orphan's, section
/// 7, or a primary that may still serve) has no final id, and no member
/// meets it this way.
pub(crate) fn at_final_commit(states: &States, need: Mark, s: &NodeState) -> bool {
    need.txid.is_some()
        && s.txid == need.txid
        && states
            .values()
            .any(|h| h.txid_final && h.mark() == need && h.known_mark() <= need)
}

/// Whether member `n` holds the data `need` stands for: it is at least
/// that fresh, its primary vouches for it, it led that epoch, or it is at
/// the final commit of the freshest data.
pub(crate) fn holds(states: &States, need: Mark, n: NodeId, s: &NodeState) -> bool {
    s.mark() >= need
        || vouched(states, need, n, s)
        || led_epoch_of(need, s)
        || at_final_commit(states, need, s)
}

/// Where a member's data stands (status and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataState {
    /// The freshest anybody announced, or a secondary its primary vouches
    /// for.
    InSync,
    /// Older than the freshest anybody announced: not elected while a
    /// node that has it can be.
    Behind,
    /// Changed outside the lineage: never elected on it.
    Diverged,
    /// No transaction id read yet at its freshness.
    Unknown,
}

/// Where member `n`'s data stands, and its transaction id: the one it
/// announced, or for a secondary its primary vouches for, the freshest
/// (replication keeps it there; it announces its own only when that may
/// decide, design §6).
pub fn data_of(states: &States, n: NodeId) -> (DataState, Option<confd_ha::TxStamp>) {
    let Some(s) = states.get(&n) else {
        return (DataState::Unknown, None);
    };
    let need = need(states);
    if s.diverged {
        (DataState::Diverged, s.txid)
    } else if vouched(states, need, n, s) {
        (DataState::InSync, need.txid.max(s.txid))
    } else if s.is_primary() || holds(states, need, n, s) {
        (DataState::InSync, s.txid)
    } else if s.txid.is_none() && s.fresh == need.fresh {
        (DataState::Unknown, None)
    } else {
        (DataState::Behind, s.txid)
    }
}
