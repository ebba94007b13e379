//! Commits an orphaned primary may make alone (design §7, "What an orphan
//! commits alone").
//!
//! A primary whose coroha is gone still serves, and nobody bumps its sync
//! generation when a secondary drops out: its NSO/ConfD goes on
//! acknowledging commits without that secondary, and if the secondary was
//! the last one, without anybody. The secondary is the only one that
//! knows. So it speaks for the primary: it keeps a record of the loss and,
//! once the primary is an orphan, announces the generation the primary's
//! coroha would have claimed. The others then need that generation, which
//! only the orphan (the leader of its epoch) and secondaries that stayed in
//! sync with it hold.

use crate::cluster::NodeId;
use crate::elect::Target;
use crate::message::{Fresh, Health, Mark, NodeState, RememberedPrimary};
use crate::{Level, Policy, Sabotage};
use serde::{Deserialize, Serialize};

/// This node lost sync with `primary` while at `at`, and the primary may
/// have gone on serving (persisted until it is settled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostSync {
    pub primary: NodeId,
    pub at: Fresh,
    pub evidence: LossEvidence,
}

/// What the loss says about the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossEvidence {
    /// This node's own server left the lineage (it died, restarted, froze,
    /// or was found in another role), or stopped hearing the primary's
    /// ticks: the primary may go on serving without it.
    PrimaryMayServe,
    /// The primary closed the connection: it died, or it dropped this node
    /// and serves on. The next attach to it tells which: nothing listening
    /// there means its server is gone.
    PrimaryClosed,
}

/// A primary's last announced secondaries and its freshness then. Should
/// its coroha die, its server drops whichever of them stops ticking and
/// goes on committing without it: nobody bumps the generation for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineup {
    pub primary: NodeId,
    pub at: Fresh,
    pub attached: Vec<NodeId>,
}

/// An orphaned primary, or one that vanished with its node, that this node
/// saw out of its ring at `epoch`. Out there nobody hears its ticks, so its
/// server drops every secondary that stops hearing them; back in a quorate
/// ring, it commits without them in a partition that counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Away {
    pub primary: NodeId,
    pub epoch: u64,
}

/// A generation an orphan reached that this secondary, in sync with it as
/// far as it knows, is to follow it to once its server confirms it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrphanFollow {
    /// The generation as known when the confirmation was asked for.
    to: Fresh,
    /// The first `get_status` that counts: asked after it was known.
    asked_from: u64,
}

/// Why a secondary lost sync, as its coroha saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LossCause {
    /// The local server stopped, froze, or reports another role.
    Local,
    /// NOPRIMARY: the primary stopped sending ticks (frozen, or cut off).
    NoTick,
    /// NOPRIMARY: the primary closed the connection.
    Closed,
    /// The primary announced a generation it reached without this node:
    /// it dropped it, and goes on committing.
    Dropped,
}

impl Policy {
    /// Keep the loss for the primary's sake, where the primary's node is
    /// in this node's quorate ring: there it can go on acknowledging
    /// commits that count. A primary whose node left the ring before the
    /// loss is not waited for: one whose coroha runs is read-only once its
    /// lease lapses (design §13), and for an orphan nothing here tells a
    /// node that lost power (which committed nothing more) from one cut
    /// off by one-way loss (which may have); waiting would cost every
    /// failover after the first (design §7 says what this leaves open).
    /// While the local corosync restarts, the ring is the one it last
    /// reported: the restart says nothing about the primary (seed
    /// 20461367: this node's server and its corosync went down together
    /// and the orphan's lone commits were lost).
    pub(crate) fn record_lost_sync(&mut self, primary: NodeId, cause: LossCause) {
        let ring = if self.sabotaged(Sabotage::ForgetAcrossCorosyncRestart) {
            (self.quorum.connected && self.quorum.quorate.is_some()).then(|| {
                (
                    self.quorum.ring_members.as_slice(),
                    self.quorum.ring_quorate(),
                )
            })
        } else {
            self.quorum.last_known_ring()
        };
        let primary_in_quorate_ring =
            ring.is_some_and(|(members, quorate)| quorate && members.contains(&primary));
        // This node's own server stopped some time after its last answer,
        // and the primary dropped it then, not when this node noticed.
        let in_ring_when_last_heard = cause == LossCause::Local
            && self.attached_in_ring == Some(primary)
            && !self.sabotaged(Sabotage::JudgeLocalLossAtNotice);
        if self.sabotaged(Sabotage::IgnoreOrphanLoneCommits)
            || !(primary_in_quorate_ring || in_ring_when_last_heard)
        {
            return;
        }
        let evidence = match cause {
            LossCause::Local | LossCause::NoTick | LossCause::Dropped => {
                LossEvidence::PrimaryMayServe
            }
            LossCause::Closed => LossEvidence::PrimaryClosed,
        };
        self.persisted.lost_sync = Some(LostSync {
            primary,
            at: self.persisted.fresh,
            evidence,
        });
    }

    /// After every status answer: the primary the server says it is
    /// attached to, if that primary's node is in this node's quorate ring.
    /// A loss of the server's own (it stops, restarts or freezes) happens
    /// some time after its last answer, and the primary drops this node at
    /// that moment; the ring when the loss is noticed can be a later one
    /// (seed 182986557: this node's server died 0.2 s before one-way loss
    /// cut off the orphaned primary, which committed alone in between, and
    /// the death was noticed 0.8 s later, after the primary's node had left
    /// the ring; this node, unrecorded, was elected without those commits).
    pub(crate) fn note_attached_in_ring(&mut self) {
        let parent = self
            .local
            .role
            .parent()
            .filter(|_| self.local.role.initialized());
        self.attached_in_ring =
            parent.filter(|p| self.quorum.stable() && self.quorum.ring_members.contains(p));
    }

    /// The first attach to the primary after it closed the connection.
    /// Nothing listening there while its node is in the ring: its server
    /// died (that was the close).
    /// Its node gone from the ring: it closed because it lost quorum, or
    /// went with its node, and is not waited for (as in
    /// [`Policy::record_lost_sync`]). Anything else: it may serve on.
    pub(crate) fn settle_lost_sync(&mut self, parent: Option<NodeId>, code: i32) {
        let Some(lost) = self.persisted.lost_sync else {
            return;
        };
        if Some(lost.primary) != parent || lost.evidence != LossEvidence::PrimaryClosed {
            return;
        }
        let gone =
            !self.quorum.ring_members.contains(&lost.primary) || code == confd_ha::code::HA_CONNECT;
        if gone {
            self.persisted.lost_sync = None;
        } else {
            self.persisted.lost_sync = Some(LostSync {
                evidence: LossEvidence::PrimaryMayServe,
                ..lost
            });
        }
    }

    /// Keep the lineup of every other primary that announces itself.
    pub(crate) fn note_lineup(&mut self, from: NodeId, state: &NodeState) {
        if from == self.cfg.me || !state.is_primary() {
            return;
        }
        let lineup = Lineup {
            primary: from,
            at: Fresh {
                epoch: state.role_epoch,
                gen: state.gen,
            },
            attached: state.attached.clone(),
        };
        self.persisted.lineup = Some(lineup);
    }

    /// An orphan's secondary whose node left this node's quorate ring,
    /// while the orphan's node stayed in it: the orphan's server drops it
    /// after three ticks and may go on committing without it, in a
    /// partition that counts. The secondary cannot say so (it lost power,
    /// or sits in a minority where it records nothing), and the orphan's
    /// coroha is gone, so the witnesses do: the orphan is a generation
    /// ahead of its lineup for each such departure (seed 135434412: the
    /// primary's coroha was killed as its only secondary lost power; the
    /// orphan committed alone for three seconds before its own node went
    /// down, and the secondary, back first, was elected without those
    /// commits).
    fn note_orphans_lost_secondaries(&mut self, orphan: NodeId, epoch: u64, name: &str) {
        if self.sabotaged(Sabotage::IgnoreOrphansLostSecondary) {
            return;
        }
        let me = self.cfg.me;
        let above = self.orphan_generation_above(epoch);
        let Some(lineup) = self.persisted.lineup.as_mut() else {
            return;
        };
        let witnessed = lineup.primary == orphan
            && lineup.at.epoch == epoch
            && self.quorum.stable()
            && self.quorum.ring_members.contains(&orphan);
        if !witnessed {
            return;
        }
        let ring = &self.quorum.ring_members;
        let (gone, stayed): (Vec<NodeId>, Vec<NodeId>) = lineup
            .attached
            .iter()
            .partition(|n| **n != me && !ring.contains(n));
        if gone.is_empty() {
            return;
        }
        lineup.attached = stayed;
        lineup.at.gen = lineup.at.gen.max(above) + 1;
        let ahead = lineup.at;
        self.note_orphan_ahead(ahead);
        let names: Vec<String> = gone.iter().map(|n| self.name(*n)).collect();
        self.log(
            Level::Warn,
            format!(
                "{} left the ring while orphaned primary {name} (epoch {epoch}) stayed: its NSO/ConfD may \
                 go on committing without it, so a new primary needs freshness {ahead} (design §7)",
                names.join(", ")
            ),
        );
    }

    /// After every ring, quorum or view change: an orphaned primary, or one
    /// that vanished with its node, whose node is not in this node's ring.
    /// Also the ring of this node's own booting corosync: while it was
    /// down, it was not attached to the orphan either.
    pub(crate) fn note_orphan_away(&mut self) {
        let ring_known = self.quorum.totem.is_some() || self.quorum.vq_ring.is_some();
        if !ring_known {
            return;
        }
        let orphaned = match &self.persisted.known_primary {
            Some(RememberedPrimary::Orphaned(k)) => Some((k.node, k.epoch)),
            _ => None,
        };
        for (primary, epoch) in orphaned.into_iter().chain(self.persisted.vanished) {
            if primary != self.cfg.me && !self.quorum.ring_members.contains(&primary) {
                self.persisted.orphan_away = Some(Away { primary, epoch });
            }
        }
    }

    /// An orphan back in this node's quorate ring after this node saw it
    /// out of it. While away, nobody heard its ticks: its server dropped
    /// whichever secondaries stopped hearing them, and now commits without
    /// them in a partition that counts. Their own losses were not recorded
    /// (the primary was not in their ring then: for all they knew it had
    /// lost power), so the generation is counted here, once for the
    /// return, above any announced for its epoch. Those that stayed
    /// attached (only its corosync was away) follow it there (seed
    /// 149806946: a primary stopped in maintenance mode as one-way loss cut
    /// it off came back into the ring with no secondary left, committed
    /// alone, was fenced, and a secondary was elected without those
    /// commits).
    fn count_orphans_return(&mut self, orphan: NodeId, epoch: u64, name: &str) {
        let back = self.persisted.orphan_away
            == Some(Away {
                primary: orphan,
                epoch,
            })
            && self.quorum.stable()
            && self.quorum.ring_members.contains(&orphan);
        if !back || self.sabotaged(Sabotage::IgnoreOrphansReturn) {
            return;
        }
        self.persisted.orphan_away = None;
        // Only a primary heard serving at that epoch: a promoter whose
        // `beprimary` may still be in flight is an orphan too, but had no
        // secondaries, and where the order never took, a generation of
        // that epoch is one nobody can ever hold.
        let Some(lineup) = self
            .persisted
            .lineup
            .as_ref()
            .filter(|l| l.primary == orphan && l.at.epoch == epoch)
        else {
            return;
        };
        let ahead = Fresh {
            epoch,
            gen: lineup.at.gen.max(self.orphan_generation_above(epoch)) + 1,
        };
        self.note_orphan_ahead(ahead);
        self.log(
            Level::Warn,
            format!(
                "orphaned primary {name} (epoch {epoch}) is back in the ring: while it was out nobody heard it, \
                 so its NSO/ConfD may have dropped its secondaries and commit without them now; a new primary \
                 needs freshness {ahead} (design §7)"
            ),
        );
    }

    /// After every step: an orphaned primary this node lost sync with is a
    /// generation ahead of it, and a secondary still in sync with an orphan
    /// is as fresh as anybody knows that orphan to be.
    pub(crate) fn account_for_orphan(&mut self) {
        let Some((orphan, epoch, name)) = self.orphan() else {
            return;
        };
        self.count_orphans_return(orphan, epoch, &name);
        self.note_orphans_lost_secondaries(orphan, epoch, &name);
        if let Some(lost) = self.persisted.lost_sync {
            if lost.primary == orphan
                && lost.at.epoch == epoch
                && lost.evidence == LossEvidence::PrimaryMayServe
            {
                self.persisted.lost_sync = None;
                let ahead = Fresh {
                    epoch,
                    gen: lost.at.gen.max(self.orphan_generation_above(epoch)) + 1,
                };
                let known = self.persisted.known_fresh;
                self.note_orphan_ahead(ahead);
                if self.persisted.known_fresh != known {
                    self.log(
                        Level::Warn,
                        format!(
                            "orphaned primary {name} (epoch {epoch}) went on without this node: it may hold \
                             commits nobody else has, so a new primary needs freshness {ahead} (design §7)"
                        ),
                    );
                }
            }
        }
        // Not while a loss is noted: a frozen server keeps its role as
        // last reported, but follows nobody.
        let in_sync = self.local.role.parent() == Some(orphan)
            && self.local.role.initialized()
            && self.local.role_epoch == epoch
            && self.local.health == Health::Ok
            && self.persisted.sync_loss == 0
            && self.persisted.lost_sync.is_none();
        let known = self.persisted.known_fresh;
        if !(in_sync && known.epoch == epoch && known > self.persisted.fresh) {
            self.orphan_follow = None;
            return;
        }
        // Replication keeps it at the orphan's data, whatever generation
        // the orphan has reached, as long as it stays attached. The last
        // status may predate the generation: the orphan may have dropped
        // this node on the way (it is an orphan: no coroha announces what
        // it lists), and a frozen server reports nothing until its poll
        // times out. So the server is asked again, and the generation is
        // followed only on an answer to a poll sent after it was known
        // that still shows this node attached (seed 98255579: a secondary
        // whose server froze and whose coroha missed the announcement
        // that dropped it, as its corosync restarted, followed the orphan
        // to a generation it had not been part of, and was elected
        // without the orphan's commits).
        if self.sabotaged(Sabotage::FollowOrphanOnStaleStatus) {
            self.persisted.fresh = known;
            return;
        }
        match self.orphan_follow {
            Some(follow) if follow.to == known => {
                if self.status_answered >= follow.asked_from {
                    self.persisted.fresh = known;
                    self.orphan_follow = None;
                }
            }
            _ => {
                self.orphan_follow = Some(OrphanFollow {
                    to: known,
                    asked_from: self.next_id,
                });
                // At the next idle moment of this very step.
                self.status_at = 0;
            }
        }
    }

    /// A generation the orphan may have reached that nobody else holds:
    /// known from now on, and announced, with no transaction id of its own.
    fn note_orphan_ahead(&mut self, ahead: Fresh) {
        self.note_known_mark(
            Mark {
                fresh: ahead,
                txid: None,
            },
            Mark::default(),
        );
    }

    /// The highest generation of the orphan's epoch anybody announced, that
    /// a new one must go above. Every departure from an orphan's lineup is
    /// one more generation of the same orphan, however many members count
    /// them: numbered from the lineup or from the node's own freshness
    /// alone, two departures got one number, and a secondary that followed
    /// the orphan to it (in sync as far as its server still said) and then
    /// dropped out itself met the need of the commits it missed (seed
    /// 143126423).
    fn orphan_generation_above(&self, epoch: u64) -> u64 {
        let known = self.persisted.known_fresh;
        if known.epoch == epoch && !self.sabotaged(Sabotage::CountOrphanGenerationsAlone) {
            known.gen
        } else {
            0
        }
    }

    /// The primary of an epoch made every commit of it: generations that
    /// others announced for it while its coroha was away (section 7 counts
    /// one for each secondary it may have dropped) stand for commits it
    /// made, or none. Out of the lineage at its final commit, its data ends
    /// there at any of them, so it announces the highest with that id, and
    /// a member at the same id holds it too. Otherwise a returned orphan
    /// that had in fact handed over, and is in standby, leaves everybody
    /// below a generation nobody else can reach, and nobody is elected
    /// (seed 147925839: its `benone` announcement was held in a breaking
    /// ring and its coroha restarted before it was delivered).
    pub(crate) fn hold_own_epoch(&mut self) {
        let known = self.persisted.known_fresh;
        let fresh = self.persisted.fresh;
        let leader = self.persisted.led_epoch == known.epoch && fresh.epoch == known.epoch;
        if !leader
            || known <= fresh
            || !self.txid_final()
            || self.sabotaged(Sabotage::LeaderBelowItsOwnEpoch)
        {
            return;
        }
        // Final, so the id read in the lineage is at this very freshness.
        let Some(txid) = self.announced_txid() else {
            return;
        };
        self.persisted.data.lineage = Some((known, txid));
        self.persisted.fresh = known;
        self.log(
            Level::Info,
            format!(
                "this node led epoch {} and its data ends at txid {txid}, out of the lineage: it holds \
                 every generation of that epoch, so it announces {known} (design §7)",
                known.epoch
            ),
        );
    }

    /// The orphaned primary this node knows of: remembered, or kept by the
    /// plan because another member remembers it.
    fn orphan(&self) -> Option<(NodeId, u64, std::sync::Arc<str>)> {
        let planned = self.plan.as_ref().and_then(|p| match &p.target {
            Some(Target::Orphan(k)) => Some(k),
            _ => None,
        });
        let remembered = match &self.persisted.known_primary {
            Some(RememberedPrimary::Orphaned(k)) => Some(k),
            _ => None,
        };
        remembered
            .or(planned)
            .map(|k| (k.node, k.epoch, k.name.clone()))
    }

    /// Attached again, or primary: whatever was lost is copied again or
    /// made here.
    pub(crate) fn forget_lost_sync(&mut self) {
        self.persisted.lost_sync = None;
    }
}
