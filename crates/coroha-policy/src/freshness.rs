//! How fresh a member's data is, for the election and for the status
//! (design §6): the freshest anybody announced (`need`), the candidates
//! that may take over from a primary that still serves, the secondaries a
//! primary vouches for, and each member's `DataState`.

use crate::cluster::NodeId;
use crate::elect::View;
use crate::message::{Mark, NodeState};
use confd_ha::HaRole;
use serde::{Deserialize, Serialize};

/// The freshest data anybody has announced, or seen announced: a new
/// primary where there is none must have it (design §6).
pub(crate) fn need(view: &View) -> Mark {
    view.states
        .values()
        .map(|s| s.mark().max(s.known_mark()))
        .max()
        .unwrap_or_default()
}

/// May `s` take over from a primary that still serves and replicates to
/// it synchronously (switchover, failback)? Its lineage position must be
/// the freshest; its transaction id follows the primary's by replication,
/// however late its last announcement of it.
pub(crate) fn in_sync_candidate(view: &View, n: NodeId, s: &NodeState, need: Mark) -> bool {
    s.eligible() && !s.diverged && !view.standby(n, s) && s.fresh >= need.fresh
}

/// A secondary that the primary of the freshest lineage lists as attached
/// has every commit of it by synchronous replication, whatever transaction
/// id it last announced: the primary is here to say so, still serving, or
/// stepped down with `benone` in a handover (it takes no commit after
/// that). Its own last announcement may predate the last commits (design
/// §6).
pub(crate) fn vouched(view: &View, need: Mark, n: NodeId, s: &NodeState) -> bool {
    s.fresh == need.fresh
        && view.states.iter().any(|(l, ls)| {
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
pub fn data_of(view: &View, n: NodeId) -> (DataState, Option<confd_ha::TxStamp>) {
    let Some(s) = view.states.get(&n) else {
        return (DataState::Unknown, None);
    };
    let need = need(view);
    if s.diverged {
        (DataState::Diverged, s.txid)
    } else if vouched(view, need, n, s) {
        (DataState::InSync, need.txid.max(s.txid))
    } else if s.is_primary() || s.mark() >= need {
        (DataState::InSync, s.txid)
    } else if s.txid.is_none() && s.fresh == need.fresh {
        (DataState::Unknown, None)
    } else {
        (DataState::Behind, s.txid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elect::elect;
    use crate::elect::tests::{node, primary, secondary, target, view, NEVER};
    use crate::message::{Fresh, Health};

    fn stamp(secs: u32) -> confd_ha::TxStamp {
        confd_ha::TxStamp {
            mega: 1796,
            secs,
            micros: 0,
        }
    }

    #[test]
    fn a_node_behind_by_transaction_id_waits_for_the_one_that_has_it() {
        let fresh = Fresh { epoch: 1, gen: 0 };
        let mut lagging = node(2);
        lagging.priority = 500;
        (lagging.fresh, lagging.txid) = (fresh, Some(stamp(10)));
        let mut ahead = node(3);
        (ahead.fresh, ahead.txid) = (fresh, Some(stamp(20)));
        let plan = elect(&view(vec![(2, lagging.clone()), (3, ahead.clone())]), NEVER);
        assert_eq!(target(&plan), Some(3), "higher id first, then priority");
        // The node with the later commits is down: nobody may be elected.
        ahead.health = Health::Down;
        let plan = elect(&view(vec![(2, lagging), (3, ahead)]), NEVER);
        assert_eq!(target(&plan), None);
        assert!(
            plan.cause
                .to_string()
                .contains("n2 is behind (1.0 txid 1796-10-000000 < 1.0 txid 1796-20-000000)"),
            "{}",
            plan.cause
        );
    }

    #[test]
    fn a_primary_vouches_for_the_secondaries_it_lists() {
        let mut p = primary(1, 1);
        p.txid = Some(stamp(30));
        p.attached = vec![2];
        p.leaving = true;
        let mut s = secondary(2, 1, 1);
        s.txid = Some(stamp(10));
        let plan = elect(&view(vec![(1, p.clone()), (2, s.clone())]), NEVER);
        assert_eq!(target(&plan), Some(2), "{}", plan.cause);
        assert_eq!(
            data_of(&view(vec![(1, p.clone()), (2, s.clone())]), 2).0,
            DataState::InSync
        );
        // Stepped down for the handover: it still vouches for whom it
        // handed over to, not for a node it did not list.
        p.role = Some(HaRole::None);
        p.attached = vec![];
        p.handed_over = vec![2];
        p.leaving = false;
        p.standby = true;
        s.role = Some(HaRole::None);
        let plan = elect(&view(vec![(1, p.clone()), (2, s.clone())]), NEVER);
        assert_eq!(target(&plan), Some(2), "{}", plan.cause);
        p.handed_over = vec![];
        let plan = elect(&view(vec![(1, p), (2, s)]), NEVER);
        assert_eq!(target(&plan), None, "{}", plan.cause);
    }

    #[test]
    fn diverged_data_is_never_elected() {
        let fresh = Fresh { epoch: 1, gen: 0 };
        let mut diverged = node(2);
        (diverged.fresh, diverged.txid, diverged.diverged) = (fresh, Some(stamp(99)), true);
        let mut other = node(3);
        (other.fresh, other.txid) = (fresh, Some(stamp(20)));
        other.health = Health::Down;
        let v = view(vec![(2, diverged), (3, other)]);
        assert_eq!(target(&elect(&v, NEVER)), None);
        assert_eq!(data_of(&v, 2).0, DataState::Diverged);
    }
}
