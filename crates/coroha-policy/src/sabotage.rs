//! Safety rules that tests switch off one at a time, to show that the
//! simulator's checks fail without each of them.

use serde::{Deserialize, Serialize};

/// A safety rule switched off on purpose, only to prove that the
/// simulator's invariant checks can fail without it. Never set outside
/// tests.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sabotage {
    /// Act on elections without a quorate, stable view (rule 1).
    SkipQuorumGate,
    /// Promote without waiting for the old primary to demote (rule 3).
    SkipDemoteFirst,
    /// Take any failed attach to an orphan as proof that it stopped
    /// serving, not only HA_CONNECT (design §12).
    AnyAttachFailureProvesOrphanGone,
    /// Start without the remembered primary, as if it were not persisted
    /// (design §12).
    ForgetKnownPrimaryOnRestart,
    /// Forget a member that left the group while promoting itself, as if
    /// its `beprimary` could not still be in flight (design §12).
    IgnoreOrderInFlightOfLeaver,
    /// Take NOPRIMARY as the role while the server has not yet answered
    /// the status query (design §12).
    RoleFromEventBeforeStatus,
    /// Rank the primary of an epoch like its secondaries at equal
    /// freshness, as if it could not hold writes they missed (design §12).
    IgnoreLineageLeader,
    /// Claim nothing for a `beprimary` that timed out, as if a hung server
    /// could not apply it later (design §12).
    ForgetUnknownPromotion,
    /// Take every operator request, also where it cannot take effect
    /// (design §12).
    AdmitEveryRequest,
    /// Keep a secondary in sync when its primary announces a generation
    /// without it (design §12).
    KeepSyncWhenUnlisted,
    /// Do not count fellow secondaries that drop out while this node stays
    /// in sync (design §12).
    IgnoreFellowDrops,
    /// Choose new epochs from the current view only, as if a promotion
    /// announced by a node that then vanished had not used its epoch
    /// (design §12).
    ReuseEpochOfVanishedPromotion,
    /// Take any answer to get_status as the end of a refusal (design §12).
    RefusingEndsOnAnyAnswer,
    /// Record a loss of sync only from NOPRIMARY, not from the local
    /// server freezing or being found in another role (design §12).
    IgnoreOwnSilentLoss,
    /// Take a failed attach to an orphan as evidence at once, without
    /// waiting for corosync to have noticed a partition (design §12).
    EvidenceWithoutRingConfirm,
    /// Hold no lease: a primary stays writable and primary while nothing
    /// it sends comes back (design §13).
    IgnoreLease,
    /// Promote after a primary vanished without fencing it first, although
    /// a `fence_node` hook is configured (design §13).
    PromoteWithoutFence,
    /// Keep no record of losing sync with a primary whose coroha is gone,
    /// as if an orphan could not commit alone after its last secondary
    /// dropped out (design §7).
    IgnoreOrphanLoneCommits,
    /// Know a member's promotion intent only from its announcement in the
    /// current view (design §12).
    ForgetIntentAcrossViews,
    /// Let an operator's switchover promote while a primary that vanished
    /// may still hold its lease (design §12).
    SwitchoverPastVanished,
    /// Know nothing of the ring while the local corosync restarts, as if
    /// a secondary that loses sync then could not tell that the primary
    /// was in its quorate ring (design §7).
    ForgetAcrossCorosyncRestart,
    /// Keep the first transaction id read outside the lineage after the
    /// node is back in it, as if its data could not change there
    /// (design §6).
    KeepOutsideReadAcrossLineage,
    /// End an orderly stop's handover as soon as this node is attached,
    /// before its new primary lists it (design §9).
    LeaveBeforeListed,
    /// Never announce a transaction id as final, as if a node at the very
    /// commit the freshest data ends with could lack some of it
    /// (design §6).
    IgnoreFinalCommit,
    /// Measure holds, and fence the primary a hold is for, also where
    /// this node's ring is not quorate (design §13).
    FenceWithoutQuorum,
    /// Keep fencing a primary that vanished with its node when its node
    /// is back in the quorate ring without its coroha (design §12).
    FenceVanishedBackInRing,
    /// Take an orphaned primary's coroha back in the group as speaking for
    /// its data before its NSO/ConfD has answered (design §7).
    TrustOrphanBackUnheard,
    /// Count a secondary as dropped only once `secondary_dead` is
    /// answered, as if a hung server could not apply it before (design
    /// §12).
    BumpAfterSecondaryDead,
    /// Start without the primary that vanished, as if it were not
    /// persisted (design §13).
    ForgetVanishedOnRestart,
    /// Make a primary writable once its own announcement came back, before
    /// a quorum of members has announced knowing its epoch (design §13).
    WritableOnOwnEcho,
    /// Leave a transaction id read outside the lineage unknown when
    /// nothing was read in it at that freshness, also where it equals the
    /// freshest id read there (design §6).
    IgnoreOutsideReadAtKnownCommit,
    /// Keep the lead a timed-out `beprimary` claimed after the server was
    /// restarted and shows it committed nothing at that epoch (design §6).
    KeepLeadOfDeadPromotion,
    /// Let a secondary in sync with an orphan follow it to a generation
    /// on the last status its server gave before it learned of it
    /// (design §7).
    FollowOrphanOnStaleStatus,
    /// Forget a promoter that left while this daemon's corosync connection
    /// was down, as if it had not intended a promotion (design §12).
    ForgetPromoterGoneUnseen,
    /// Let an orphan's secondary leave the ring unremarked, as if the
    /// orphan's server could not go on committing without it (design §7).
    IgnoreOrphansLostSecondary,
    /// Number an orphan's next generation from the lineup or the loss
    /// alone, as if no other member had already announced one above it
    /// (design §7, "One orphan, one count").
    CountOrphanGenerationsAlone,
    /// Keep the leader of an epoch, out of the lineage at its final
    /// commit, below the generations others announced for it (design §7,
    /// "The leader holds its whole epoch").
    LeaderBelowItsOwnEpoch,
    /// Take an orphan back in the ring for the one that left it, as if its
    /// server could not have dropped the secondaries that stopped hearing
    /// it meanwhile (design §7, "An orphan back in the ring").
    IgnoreOrphansReturn,
    /// Judge a loss of the local server by the ring when it is noticed, as
    /// if the primary could not have dropped this node while its node was
    /// still in the ring (design §7, "A loss dates from the server's last
    /// word").
    JudgeLocalLossAtNotice,
    /// Keep this node's own pause or resume when another of the same
    /// generation is heard, as if two partitions could not write one
    /// (design §14).
    KeepOwnPauseOnTie,
}

impl Sabotage {
    /// Every rule that can be switched off, for tests that go through
    /// them all (add a new one here too).
    pub const ALL: [Sabotage; 40] = [
        Sabotage::SkipQuorumGate,
        Sabotage::SkipDemoteFirst,
        Sabotage::AnyAttachFailureProvesOrphanGone,
        Sabotage::ForgetKnownPrimaryOnRestart,
        Sabotage::IgnoreOrderInFlightOfLeaver,
        Sabotage::RoleFromEventBeforeStatus,
        Sabotage::IgnoreLineageLeader,
        Sabotage::ForgetUnknownPromotion,
        Sabotage::AdmitEveryRequest,
        Sabotage::KeepSyncWhenUnlisted,
        Sabotage::IgnoreFellowDrops,
        Sabotage::ReuseEpochOfVanishedPromotion,
        Sabotage::RefusingEndsOnAnyAnswer,
        Sabotage::IgnoreOwnSilentLoss,
        Sabotage::EvidenceWithoutRingConfirm,
        Sabotage::IgnoreLease,
        Sabotage::PromoteWithoutFence,
        Sabotage::IgnoreOrphanLoneCommits,
        Sabotage::ForgetIntentAcrossViews,
        Sabotage::SwitchoverPastVanished,
        Sabotage::ForgetAcrossCorosyncRestart,
        Sabotage::KeepOutsideReadAcrossLineage,
        Sabotage::LeaveBeforeListed,
        Sabotage::IgnoreFinalCommit,
        Sabotage::FenceWithoutQuorum,
        Sabotage::FenceVanishedBackInRing,
        Sabotage::TrustOrphanBackUnheard,
        Sabotage::BumpAfterSecondaryDead,
        Sabotage::IgnoreOutsideReadAtKnownCommit,
        Sabotage::ForgetVanishedOnRestart,
        Sabotage::WritableOnOwnEcho,
        Sabotage::KeepLeadOfDeadPromotion,
        Sabotage::FollowOrphanOnStaleStatus,
        Sabotage::ForgetPromoterGoneUnseen,
        Sabotage::IgnoreOrphansLostSecondary,
        Sabotage::CountOrphanGenerationsAlone,
        Sabotage::LeaderBelowItsOwnEpoch,
        Sabotage::IgnoreOrphansReturn,
        Sabotage::JudgeLocalLossAtNotice,
        Sabotage::KeepOwnPauseOnTie,
    ];
}
