//! Which commit the local data is at: CDB's transaction id (design §6).
//!
//! The id is read on a socket of its own (`Output::ReadTxid`) and counts
//! only where it says something about the lineage: read while the node is
//! in it (its primary, or an initialized secondary, whose id is its
//! primary's after every commit) and still at the same freshness when the
//! answer comes. Outside the lineage (NONE, not yet in sync) the data
//! should not change at all: if it does, the node took writes nobody else
//! has (a NONE node somebody made writable) or its CDB was replaced (wiped,
//! restored), and it is diverged until a primary's copy overwrites it.

use crate::cluster::NodeId;
use crate::local::LocalRole;
use crate::message::{Fresh, Health, Mark};
use crate::{Level, Output, Policy, Sabotage};
use confd_ha::{TxStamp, Txid};
use serde::{Deserialize, Serialize};

/// What survives a restart about the local data's transaction id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The last id read in the lineage, and the freshness it was read at.
    pub lineage: Option<(Fresh, TxStamp)>,
    /// The first id read since the node last left the lineage.
    pub outside: Option<TxStamp>,
    /// The id that showed the data changed outside the lineage.
    pub diverged: Option<TxStamp>,
}

/// A read in flight: where the node stood when it asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Asked {
    fresh: Fresh,
    in_lineage: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TxidReads {
    asked: Option<Asked>,
    /// Something happened that may have moved the id: read it again.
    wanted: bool,
    unanswered_lead: Option<UnansweredLead>,
}

/// The lead a `beprimary` claimed when it timed out on a node outside the
/// lineage (server.rs: the server may apply it when it resumes). The
/// claim stands until a server that can no longer apply the order shows
/// that its data did not move: then nothing was committed at that epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UnansweredLead {
    /// The freshness claimed: the order's epoch, generation 0.
    fresh: Fresh,
    /// The id read outside the lineage before the order went out.
    before: TxStamp,
    /// The server has stopped since (it was down, or fenced): the order
    /// died with its process.
    order_died: bool,
}

impl Policy {
    /// The local data follows the lineage: it is the primary, or an
    /// initialized secondary or relay (a copy of its primary's).
    fn in_lineage(&self) -> bool {
        match &self.local.role {
            LocalRole::Primary { .. } => true,
            role => role.parent().is_some() && role.initialized(),
        }
    }

    /// Read the id again at the next opportunity (a role change, a health
    /// check, a new decision).
    pub(crate) fn want_txid(&mut self) {
        self.txid_reads.wanted = true;
    }

    /// The id as announced: read at the current freshness, in the lineage.
    pub(crate) fn announced_txid(&self) -> Option<TxStamp> {
        self.persisted
            .data
            .lineage
            .filter(|(f, _)| *f == self.persisted.fresh)
            .map(|(_, t)| t)
    }

    /// Out of the lineage with the id read out there: the server is not
    /// primary nor being promoted, and its first read outside matched the
    /// last commit the node had in the lineage (`left_lineage`), so the
    /// announced id is its data's last commit until it rejoins.
    pub(crate) fn txid_final(&self) -> bool {
        let data = &self.persisted.data;
        self.local.role.ha_role() == Some(confd_ha::HaRole::None)
            && self.local.promoting.is_none()
            && data.outside.is_some()
            && data.diverged.is_none()
            && self.announced_txid().is_some()
    }

    /// Ask for the id if it is wanted, or if the freshness moved since the
    /// last read in the lineage. One read at a time.
    pub(crate) fn read_txid_if_due(&mut self) {
        if !self.cfg.read_txid
            || self.txid_reads.asked.is_some()
            || matches!(self.local.health, Health::Down | Health::Fenced)
        {
            return;
        }
        let in_lineage = self.in_lineage();
        let stale = in_lineage && self.announced_txid().is_none();
        if self.txid_reads.wanted || stale {
            self.txid_reads.wanted = false;
            self.txid_reads.asked = Some(Asked {
                fresh: self.persisted.fresh,
                in_lineage,
            });
            self.out.push(Output::ReadTxid);
        }
    }

    /// A `beprimary` timed out and its lead was claimed at `fresh`: if the
    /// node is outside the lineage with its id read there, remember it, to
    /// end the claim once the order can no longer be applied and the id
    /// shows it never was.
    pub(crate) fn note_unanswered_lead(&mut self, fresh: Fresh) {
        let data = &self.persisted.data;
        self.txid_reads.unanswered_lead = data
            .outside
            .filter(|_| data.diverged.is_none() && !self.in_lineage())
            .map(|before| UnansweredLead {
                fresh,
                before,
                order_died: false,
            });
    }

    /// The server stopped (nothing listening, or fenced): an order it was
    /// stalled on died with it.
    pub(crate) fn note_server_stopped(&mut self) {
        if let Some(lead) = &mut self.txid_reads.unanswered_lead {
            lead.order_died = true;
        }
    }

    /// Back in the lineage: the claim is settled by what the node does
    /// there.
    pub(crate) fn forget_unanswered_lead(&mut self) {
        self.txid_reads.unanswered_lead = None;
    }

    /// A read outside the lineage that equals the first one: the data did
    /// not move. If that is since before a `beprimary` whose lead was
    /// claimed, and the server that stalled on it has stopped, the node
    /// never committed at that epoch: its id at the claimed freshness is
    /// the one it had before (seed 91143326: the claim otherwise ranked
    /// every other node behind it, and nobody was elected while it was in
    /// standby). It is final once the node is neither primary nor being
    /// promoted (`txid_final`), so a node at that id holds its data.
    fn end_unanswered_lead_if_unchanged(&mut self, read: TxStamp) {
        let Some(lead) = self.txid_reads.unanswered_lead else {
            return;
        };
        if !lead.order_died || self.sabotaged(Sabotage::KeepLeadOfDeadPromotion) {
            return;
        }
        self.txid_reads.unanswered_lead = None;
        let data = &self.persisted.data;
        let unread = data.lineage.is_none_or(|(f, _)| f != lead.fresh);
        if read == lead.before && self.persisted.fresh == lead.fresh && unread {
            self.persisted.data.lineage = Some((lead.fresh, read));
            self.log(
                Level::Info,
                format!(
                    "the promotion at epoch {} that NSO/ConfD never answered left no commit \
                     (txid {read} as before it): that is its data at {}",
                    lead.fresh.epoch, lead.fresh
                ),
            );
        }
    }

    /// The answer to [`Output::ReadTxid`]; `None` if it could not be read.
    pub(crate) fn on_txid_read(&mut self, read: Option<Txid>) {
        let Some(asked) = self.txid_reads.asked.take() else {
            return;
        };
        let Some(txid) = read else {
            // Tried again at the next health check.
            return;
        };
        let in_lineage = self.in_lineage();
        let data = &mut self.persisted.data;
        match (asked.in_lineage, in_lineage) {
            (true, true) if asked.fresh == self.persisted.fresh => {
                data.lineage = Some((asked.fresh, txid.stamp));
                data.outside = None;
                if data.diverged.take().is_some() {
                    self.log(
                        Level::Info,
                        "the local data is a copy of the primary's again: no longer diverged",
                    );
                }
            }
            (false, false) => match data.outside {
                None => self.left_lineage(&txid),
                Some(first) if first != txid.stamp && data.diverged.is_none() => {
                    self.diverge(txid.stamp, "its data changed while it was outside HA");
                }
                Some(_) => self.end_unanswered_lead_if_unchanged(txid.stamp),
            },
            // The role or the freshness moved while the read was under
            // way: the answer belongs to neither side.
            _ => self.want_txid(),
        }
    }

    /// The first read since the node left the lineage (or since its
    /// coroha started beside a server outside it): where its copy ended.
    /// The last read in the lineage may predate the last commits that
    /// reached it; those carry a primary's tag, or are its own if it led
    /// this epoch (`benone` drops the tag). A later id without either was
    /// made outside HA.
    fn left_lineage(&mut self, txid: &Txid) {
        let fresh = self.persisted.fresh;
        let led = fresh.epoch > 0 && self.persisted.led_epoch == fresh.epoch;
        let data = &mut self.persisted.data;
        data.outside = Some(txid.stamp);
        let had_data = data.lineage.is_some_and(|(_, t)| !t.is_empty());
        let last = data.lineage.filter(|(f, _)| *f == fresh).map(|(_, t)| t);
        if txid.stamp.is_empty() {
            if had_data {
                self.diverge(txid.stamp, "its CDB is empty (wiped)");
            }
            return;
        }
        match last {
            Some(t) if t == txid.stamp => {}
            Some(t) if txid.stamp < t => {
                self.diverge(
                    txid.stamp,
                    "its data is older than it was in HA (restored?)",
                );
            }
            _ if txid.primary.is_some() || led => data.lineage = Some((fresh, txid.stamp)),
            Some(_) => self.diverge(
                txid.stamp,
                "it committed outside HA, or its CDB was replaced",
            ),
            // Nothing read at this freshness to compare with: unknown,
            // unless it is the freshest commit anybody read there.
            None => self.adopt_outside_read_if_known(),
        }
    }

    /// Outside the lineage with nothing read in it at this freshness, a
    /// bare id cannot tell the lineage's last commit from one made outside
    /// HA (a handover's `benone` drops the tag, and a secondary whose copy
    /// already matched keeps its own form). An id equal to the freshest
    /// one anybody read in the lineage at this freshness is that very
    /// commit: one made outside would have given a later id. So it is
    /// this node's id at that freshness (seed 79797005: the only node with
    /// every commit otherwise ranked behind, and nobody was elected).
    fn adopt_outside_read_if_known(&mut self) {
        if self.sabotaged(Sabotage::IgnoreOutsideReadAtKnownCommit) || self.in_lineage() {
            return;
        }
        let fresh = self.persisted.fresh;
        let data = &self.persisted.data;
        let unread = data.lineage.is_none_or(|(f, _)| f != fresh);
        let Some(outside) = data.outside.filter(|_| unread && data.diverged.is_none()) else {
            return;
        };
        if fresh.epoch > 0
            && self.persisted.known_fresh == fresh
            && self.persisted.known_txid == Some(outside)
        {
            self.persisted.data.lineage = Some((fresh, outside));
            self.log(
                Level::Info,
                format!(
                    "the local data is at the freshest commit read at {fresh} (txid {outside})"
                ),
            );
        }
    }

    fn diverge(&mut self, txid: TxStamp, why: &str) {
        self.persisted.data.diverged = Some(txid);
        self.log(
            Level::Error,
            format!(
                "local data diverged from the lineage ({why}; txid {txid}): this node is not \
                 elected on it; it follows a primary again once one exists, which overwrites it"
            ),
        );
    }

    /// The decision is that the current primary stays: no transaction id
    /// enters it.
    pub(crate) fn plan_stays(&self) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|p| matches!(p.cause, crate::cause::Cause::Stays { .. }))
    }

    /// A heartbeat's transaction id: the primary's data went this far.
    /// Returns whether it moved.
    pub(crate) fn note_heartbeat_txid(&mut self, from: NodeId, txid: Option<TxStamp>) -> bool {
        // Its own stays as announced: writability compares the two.
        if from == self.cfg.me {
            return false;
        }
        let Some(state) = self.view.states.get_mut(&from) else {
            return false;
        };
        if txid.is_none() || state.txid >= txid {
            return false;
        }
        state.txid = txid;
        let (mark, known) = (state.mark(), state.known_mark());
        self.note_known_mark(mark, known);
        true
    }

    /// Remember the freshest data anybody announced.
    pub(crate) fn note_known_mark(&mut self, theirs: Mark, their_known: Mark) {
        let known = Mark {
            fresh: self.persisted.known_fresh,
            txid: self.persisted.known_txid,
        }
        .max(theirs)
        .max(their_known);
        self.persisted.known_fresh = known.fresh;
        self.persisted.known_txid = known.txid;
        self.adopt_outside_read_if_known();
    }
}
