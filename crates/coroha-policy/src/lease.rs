//! The primary's lease, and the read-only mode that enforces it (design
//! §13).
//!
//! corosync cannot tell a node that nobody hears it: under one-way loss
//! its ring stays the old one and no configuration change ever arrives,
//! and a stopped process notices nothing until it runs again. What a
//! node can know is whether its own multicasts come back: CPG delivers a
//! message only after the token has been round every member of the
//! ring. So a node that is or may be primary multicasts a heartbeat
//! stamped with its own clock, and each one delivered back in a stable,
//! quorate view proves that a quorum heard it at the time it was sent.
//!
//! - A lease runs for `lease` from the send time of the last heartbeat
//!   delivered back. While it runs (and the view is quorate) a primary
//!   is writable; when it lapses the node sets NSO/ConfD read-only at
//!   once, before anything else, so it acknowledges no more commits.
//! - A lapse for `2.5 × lease` demotes it, as a quorum loss does. That
//!   must outlast the silence of a ring that corosync re-forms around a
//!   lost secondary (token + consensus, plus a heartbeat interval), or a
//!   healthy primary would step down whenever a secondary fails.
//! - Every other node, and a primary without a lease, is read-only: a
//!   commit accepted by NSO/ConfD in NONE is lost when the node rejoins.
//!
//! The read-only flag lives in the server, and the server drops it on its
//! own: `benone` on a primary clears it, a restart clears it, any MAAPI
//! client may clear it. So what the server was last told counts only until
//! one of those may have happened, and is then told again.

use crate::local::LocalRole;
use crate::message::{Body, Health};
use crate::timers::Stopping;
use crate::{Level, Output, Policy};

/// The lease as this node holds it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lease {
    /// The send time of the last own heartbeat delivered back in a stable,
    /// quorate view.
    proof: Option<u64>,
    /// When the next heartbeat is due, while this node may be primary.
    next_beat: u64,
    /// A lapse was reported (once per lapse, not at every step).
    lapse_reported: bool,
}

/// What the local NSO/ConfD was told about read-only mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadOnly {
    /// The mode it confirmed, while nothing can have changed it since.
    told: Option<bool>,
    /// A call in flight, and the mode it sets.
    in_flight: Option<bool>,
    /// The last call failed: the same mode is asked again from then on
    /// (a server that cannot be reached is not asked at every step).
    failed: Option<(bool, u64)>,
}

impl Policy {
    /// The lease counts from its last proof, or from this daemon's start
    /// (a restarted daemon that finds its server primary gets as long to
    /// prove itself as a lapse would leave it).
    fn lease_base(&self) -> u64 {
        self.lease
            .proof
            .unwrap_or(0)
            .max(self.started_at.unwrap_or(0))
    }

    /// A quorum heard this node less than `lease` ago.
    pub(crate) fn lease_valid(&self, now: u64) -> bool {
        self.sabotaged_lease() || self.lease.proof.is_some_and(|p| now < p + self.cfg.lease)
    }

    fn sabotaged_lease(&self) -> bool {
        self.sabotaged(crate::Sabotage::IgnoreLease)
    }

    /// A primary (or a server of unknown role) that has had no proof for
    /// 2.5 leases: it steps down, like after a quorum loss.
    pub(crate) fn lease_lost(&self, now: u64) -> bool {
        let holds_role = matches!(
            self.local.role,
            LocalRole::Primary { .. } | LocalRole::Unknown
        );
        holds_role
            && !self.sabotaged_lease()
            && now >= self.lease_base() + self.lease_demotes_after()
    }

    fn lease_demotes_after(&self) -> u64 {
        self.cfg.lease * 5 / 2
    }

    /// The local NSO/ConfD may acknowledge commits: it is primary, a
    /// quorum heard this node within the lease, the view is quorate, and
    /// the group has this node's latest state. The last part matters
    /// when a secondary drops out: from then on this primary alone holds
    /// what it acknowledges, and only its delivered announcement (the
    /// sync generation it bumped) makes the others prefer it if it is
    /// lost next. Until then it takes no commit (seed 97005461: a primary
    /// nobody heard lost its last secondary and went on acknowledging
    /// commits that no later primary had).
    pub(crate) fn writable(&self, now: u64) -> bool {
        self.local.role.is_primary()
            && self.lease_valid(now)
            && self.quorum.stable()
            && !self.coroha_minority()
            && self.view.states.get(&self.cfg.me) == self.last_announced.as_ref()
            && self.last_announced.is_some()
            && self.lead_known_to_a_quorum()
    }

    /// A primary may acknowledge commits that only it holds (before a
    /// secondary is in sync, or after one dropped out) only once as many
    /// members as quorum needs have announced that they know its place in
    /// the lineage: a member announces what it has persisted. Its own
    /// announcement coming back is not enough: a member whose corosync
    /// connection breaks right after the delivery never processes it, and
    /// members that never heard of the new epoch later elected another
    /// node without its commits (seed 88532466).
    fn lead_known_to_a_quorum(&self) -> bool {
        if self.sabotaged(crate::Sabotage::WritableOnOwnEcho) {
            return true;
        }
        let mine = self.persisted.fresh;
        let knowing = self
            .view
            .states
            .iter()
            .filter(|(n, s)| **n == self.cfg.me || s.known_fresh >= mine || s.fresh >= mine)
            .count() as u32;
        knowing >= self.quorum.needed
    }

    /// Heartbeats while this node is, or is becoming, primary.
    pub(crate) fn beat(&mut self, now: u64) {
        let promoting = self.local.promoting.is_some()
            || self
                .pending
                .as_ref()
                .is_some_and(|p| matches!(p.order, confd_ha::HaOrder::BePrimary { .. }));
        let member = self
            .quorum
            .local
            .is_some_and(|l| self.view.members.contains(&l));
        if !(promoting || self.local.role.is_primary()) || !member {
            return;
        }
        if now >= self.lease.next_beat {
            self.lease.next_beat = now + self.beat_interval();
            let txid = self.announced_txid();
            self.multicast(Body::Heartbeat { sent_at: now, txid });
        }
    }

    /// Four heartbeats per lease: one lost or late still leaves three.
    fn beat_interval(&self) -> u64 {
        (self.cfg.lease / 4).max(1)
    }

    /// An own heartbeat came back.
    pub(crate) fn on_heartbeat(&mut self, now: u64, sent_at: u64) {
        if !self.quorum.stable() || self.coroha_minority() {
            return;
        }
        let renewed = self.lease.proof.is_none_or(|p| sent_at > p);
        if renewed {
            self.lease.proof = Some(sent_at);
            if self.lease.lapse_reported && self.lease_valid(now) {
                self.lease.lapse_reported = false;
                self.log(Level::Info, "lease renewed: a quorum hears this node again");
            }
        }
    }

    /// Before anything else in a step: a primary whose lease lapsed stops
    /// taking commits, whatever the input was (a stopped process resumes
    /// with its inputs queued and its clock far ahead).
    pub(crate) fn check_lease(&mut self, now: u64) {
        if self.local.role.is_primary() && !self.lease_valid(now) && !self.lease.lapse_reported {
            self.lease.lapse_reported = true;
            match self.lease.proof {
                Some(p) => self.log(
                    Level::Warn,
                    format!(
                        "lease lapsed: no proof for {} ms that a quorum hears this node; NSO/ConfD read-only until there is",
                        now - p
                    ),
                ),
                // A daemon that starts beside a primary: no lease yet.
                None => self.log(
                    Level::Info,
                    "primary without a lease yet: NSO/ConfD read-only until this daemon's first heartbeat comes back",
                ),
            }
        }
        self.sync_read_only(now);
    }

    /// Tell the server the mode it should be in, unless it was told and
    /// nothing can have changed it since. A server that does not answer
    /// is told too: a frozen one reads the request when it resumes, which
    /// is exactly when it must not take a commit. One that is down is not.
    pub(crate) fn sync_read_only(&mut self, now: u64) {
        if matches!(self.local.health, Health::Down | Health::Fenced)
            || self.read_only.in_flight.is_some()
            || matches!(self.leaving, Some(Stopping::Maintenance))
        {
            return;
        }
        let wanted = !self.writable(now);
        let backing_off = self
            .read_only
            .failed
            .is_some_and(|(mode, again)| mode == wanted && now < again);
        if self.read_only.told != Some(wanted) && !backing_off {
            self.read_only.in_flight = Some(wanted);
            self.out.push(Output::ReadOnly(wanted));
        }
    }

    pub(crate) fn on_read_only_done(&mut self, now: u64, on: bool, ok: bool) {
        self.read_only.in_flight = None;
        self.read_only.told = ok.then_some(on);
        // Asked again after a tenth of the retry interval: soon enough for
        // a server that restarts, without spinning on one that is gone.
        let again = self.read_only.failed.is_some_and(|(mode, _)| mode == on);
        self.read_only.failed = (!ok).then_some((on, now + self.cfg.retry_interval / 10));
        if !ok && !again {
            self.log(
                Level::Warn,
                format!(
                    "could not set NSO/ConfD {}; trying again every {} ms",
                    if on { "read-only" } else { "writable" },
                    self.cfg.retry_interval / 10
                ),
            );
        }
    }

    /// Something that may have changed the server's mode happened (a
    /// `benone`, a restart, an HA event of another client): tell it again.
    pub(crate) fn read_only_unknown(&mut self) {
        self.read_only.told = None;
    }

    /// When the lease next needs attention: a heartbeat, or a lapse.
    pub(crate) fn lease_deadline(&self) -> Option<u64> {
        let mut due = vec![];
        if let Some((_, again)) = self.read_only.failed {
            due.push(again);
        }
        if self.local.promoting.is_some() || self.local.role.is_primary() {
            due.push(self.lease.next_beat);
        }
        if matches!(
            self.local.role,
            LocalRole::Primary { .. } | LocalRole::Unknown
        ) {
            let base = self.lease_base();
            if let Some(p) = self.lease.proof {
                due.push(p + self.cfg.lease);
            }
            due.push(base + self.lease_demotes_after());
        }
        due.into_iter().filter(|d| *d > self.last_step_at).min()
    }
}
