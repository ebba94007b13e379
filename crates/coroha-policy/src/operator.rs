//! Operator requests (`coroha switchover`, `standby`, `stop`,
//! `confirm-down`) and the policy's timers.

use crate::cause::Unfit;
use crate::cluster::NodeId;
use crate::message::{Body, Hold, Request};
use crate::timers::OrphanFence;
use crate::timers::{HoldTimer, Stopping};
use crate::{Level, Operator, Output, Policy, Sabotage};

/// Why an operator request was refused: nothing was done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This node's corosync is not quorate: nothing decided here counts.
    NotQuorate,
    /// The coroha group here does not hold a quorum of daemons yet.
    NoGroupQuorum,
    UnknownNode(String),
    /// The node's coroha is not in the group: it could neither take over
    /// nor record its own standby flag, so the request would be lost.
    NotInGroup(String),
    AlreadyStandby(String),
    NotStandby(String),
    /// `confirm-down` for a node that is not an orphaned primary.
    NotOrphaned(String),
    SwitchoverInProgress {
        to: String,
    },
    NoPrimary,
    AlreadyPrimary(String),
    CannotTakeOver {
        node: String,
        why: Unfit,
    },
    /// A switchover without a target, and no other member can take over.
    NoCandidate {
        from: String,
        why: Vec<(String, Unfit)>,
    },
    /// The cluster is paused: nothing is moved until `coroha resume`.
    Paused,
}

impl Refusal {
    /// The cluster already is as asked: asking again changes nothing.
    pub fn as_asked(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownNode(_)
                | Refusal::AlreadyStandby(_)
                | Refusal::NotStandby(_)
                | Refusal::NotOrphaned(_)
                | Refusal::AlreadyPrimary(_)
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotQuorate => {
                f.write_str("this node's corosync is not quorate: the cluster could not act on it")
            }
            Refusal::NoGroupQuorum => {
                f.write_str("the coroha group here does not hold a quorum of daemons yet")
            }
            Refusal::UnknownNode(n) => write!(f, "no node named {n:?}"),
            Refusal::NotInGroup(n) => write!(
                f,
                "{n}'s coroha is not in the group here (stopped, or its node cut off)"
            ),
            Refusal::AlreadyStandby(n) => write!(f, "{n} is already in standby"),
            Refusal::NotStandby(n) => write!(f, "{n} is not in standby"),
            Refusal::NotOrphaned(n) => write!(
                f,
                "{n} is not an orphaned primary (a primary whose coroha left): there is nothing to confirm"
            ),
            Refusal::SwitchoverInProgress { to } => write!(
                f,
                "a switchover to {to} is in progress: wait for it (coroha status)"
            ),
            Refusal::NoPrimary => f.write_str(
                "there is no primary to switch over from: the cluster elects one by itself \
                 (coroha status says what it waits for)",
            ),
            Refusal::AlreadyPrimary(n) => write!(f, "{n} is already primary"),
            Refusal::CannotTakeOver { node, why } => write!(f, "{node} cannot take over: {why}"),
            Refusal::NoCandidate { from, why } if why.is_empty() => {
                write!(f, "no other node can take over from {from}: it is the only member")
            }
            Refusal::NoCandidate { from, why } => {
                let why: Vec<String> = why.iter().map(|(n, u)| format!("{n} {u}")).collect();
                write!(f, "no other node can take over from {from}: {}", why.join(", "))
            }
            Refusal::Paused => {
                f.write_str("the cluster is paused: nothing moves until `coroha resume`")
            }
        }
    }
}

impl Policy {
    // ----- operator --------------------------------------------------------

    /// Whether an operator request can take effect from here, and if not
    /// why. A request travels through the group and is applied where it is
    /// delivered: in a view without a quorum, or (standby) without the
    /// node that must record it, it would be lost while the operator was
    /// told it was taken (design §12).
    pub fn admit(&self, op: &Operator) -> Result<(), Refusal> {
        if self.sabotaged(Sabotage::AdmitEveryRequest) {
            return Ok(());
        }
        let quorate = || {
            if !self.quorum.stable() {
                Err(Refusal::NotQuorate)
            } else if self.coroha_minority() || !self.view.complete() {
                Err(Refusal::NoGroupQuorum)
            } else {
                Ok(())
            }
        };
        match op {
            Operator::Stop { .. } => Ok(()),
            Operator::Switchover { to } => {
                quorate()?;
                self.admit_switchover(to.as_deref())
            }
            Operator::ConfirmDown { node } => {
                quorate()?;
                if self.paused() {
                    return Err(Refusal::Paused);
                }
                match self.known_primary() {
                    Some(k) if *k.name == **node && !self.view.is_member(k.node) => Ok(()),
                    _ => Err(Refusal::NotOrphaned(node.clone())),
                }
            }
            // Always taken where quorate, even as it stands: a node cut off
            // by one-way loss still believes it is quorate, and what it
            // says of the pause may be stale. The command waits until the
            // request's own generation is shown (design §14).
            Operator::Pause { .. } => quorate(),
            Operator::Standby { node, on } => {
                quorate()?;
                let id = self
                    .cfg
                    .id_of(node)
                    .ok_or_else(|| Refusal::UnknownNode(node.clone()))?;
                let Some(s) = self.view.states.get(&id) else {
                    return Err(Refusal::NotInGroup(node.clone()));
                };
                match (self.view.standby(id, s), *on) {
                    (true, true) => Err(Refusal::AlreadyStandby(node.clone())),
                    (false, false) => Err(Refusal::NotStandby(node.clone())),
                    _ => Ok(()),
                }
            }
        }
    }

    /// A switchover needs a primary to move from, no other switchover in
    /// progress, and a node that can take over: the one named, or any.
    fn admit_switchover(&self, to: Option<&str>) -> Result<(), Refusal> {
        if self.paused() {
            return Err(Refusal::Paused);
        }
        if let Some(t) = self.view.switchover {
            return Err(Refusal::SwitchoverInProgress { to: self.name(t) });
        }
        let planned = self.brief().primary;
        let current = self
            .view
            .states
            .iter()
            .find(|(n, s)| s.is_primary() && planned == Some(**n))
            .map(|(n, _)| *n)
            .ok_or(Refusal::NoPrimary)?;
        let Some(to) = to else {
            if crate::elect::best_other(&self.view, Some(current)).is_some() {
                return Ok(());
            }
            let why = self
                .view
                .states
                .iter()
                .filter(|(n, _)| **n != current)
                .filter_map(|(n, s)| {
                    crate::elect::unfit_for_switchover(&self.view, *n, s)
                        .map(|u| (s.name.to_string(), u))
                })
                .collect();
            return Err(Refusal::NoCandidate {
                from: self.name(current),
                why,
            });
        };
        let id = self
            .cfg
            .id_of(to)
            .ok_or_else(|| Refusal::UnknownNode(to.into()))?;
        if id == current {
            return Err(Refusal::AlreadyPrimary(to.into()));
        }
        let Some(s) = self.view.states.get(&id) else {
            return Err(Refusal::NotInGroup(to.into()));
        };
        match crate::elect::unfit_for_switchover(&self.view, id, s) {
            Some(why) => Err(Refusal::CannotTakeOver {
                node: to.into(),
                why,
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn on_operator(&mut self, now: u64, op: Operator) {
        match op {
            Operator::Switchover { to } => {
                let to = match to {
                    Some(name) => match self.cfg.id_of(&name) {
                        Some(id) => Some(id),
                        None => {
                            self.log(Level::Error, format!("switchover: no node named {name}"));
                            return;
                        }
                    },
                    None => None,
                };
                self.multicast(Body::Request(Request::Switchover { to }));
            }
            Operator::Standby { node, on } => match self.cfg.id_of(&node) {
                Some(id) => self.multicast(Body::Request(Request::Standby { node: id, on })),
                None => self.log(Level::Error, format!("standby: no node named {node}")),
            },
            Operator::ConfirmDown { node } => {
                let known = self.known_primary().cloned().filter(|k| *k.name == *node);
                match known {
                    Some(k) => self.multicast(Body::Request(Request::PrimaryGone {
                        node: k.node,
                        epoch: k.epoch,
                    })),
                    None => self.log(
                        Level::Error,
                        format!("confirm-down: {node} is not an orphaned primary"),
                    ),
                }
            }
            Operator::Pause { on } => {
                let pause = crate::message::Pause {
                    gen: self.persisted.pause.gen + 1,
                    on,
                };
                self.multicast(Body::Request(Request::Pause(pause)));
            }
            Operator::Stop { handover } => {
                let primary = self.local.role.is_primary();
                if handover && primary {
                    self.log(Level::Info, "orderly stop: handing the primary role over");
                    self.leaving = Some(Stopping::Handover {
                        deadline: now + self.cfg.handover_timeout,
                    });
                } else {
                    let what = if handover {
                        "orderly stop"
                    } else {
                        "maintenance stop: roles stay as they are"
                    };
                    self.log(Level::Info, what);
                    // Not primary: nothing to hand over, so the handover's
                    // deadline is now.
                    self.leaving = Some(if handover {
                        Stopping::Handover { deadline: now }
                    } else {
                        Stopping::Maintenance
                    });
                    self.out.push(Output::Leave);
                }
            }
        }
    }

    // ----- timers ----------------------------------------------------------

    /// Multicast the end of a hold; it ends for everybody when delivered.
    fn release(&mut self, hold: Hold) {
        self.multicast(Body::Request(Request::Release(hold.clone())));
        self.hold_timer = Some(HoldTimer::ReleaseSent { hold });
    }

    /// The node a hold must fence before it ends: a vanished primary, when
    /// a `fence_node` hook is configured and it was not fenced yet.
    fn to_fence(&self, hold: &Hold) -> Option<NodeId> {
        match hold {
            Hold::PromotionDelay { primary, epoch }
                if self.cfg.fence_node
                    && *primary != self.cfg.me
                    && !self.view.is_member(*primary)
                    && !self.fenced.contains(&(*primary, *epoch))
                    && !self.sabotaged(Sabotage::PromoteWithoutFence) =>
            {
                Some(*primary)
            }
            _ => None,
        }
    }

    /// An orphaned primary whose node left the ring too: nothing shows
    /// whether its NSO/ConfD still serves, and without a `fence_node` hook
    /// only `coroha confirm-down` moves on. With one, the coordinator fences
    /// it once its orphan grace was released, and tells everybody it is
    /// gone, like the operator's confirmation would.
    pub(crate) fn fence_orphan_if_due(&mut self, now: u64) {
        let Some(plan) = self.plan.as_ref() else {
            return;
        };
        let Some(crate::elect::Target::Orphan(k)) = plan.target.clone() else {
            return;
        };
        let due = self.cfg.fence_node
            && self.quorum.stable()
            && self.view.coordinator() == Some(self.cfg.me)
            && plan.wait.is_none()
            && !self.quorum.ring_members.contains(&k.node)
            && !self.view.gone.contains(&(k.node, k.epoch));
        if !due {
            return;
        }
        let idle = match self.orphan_fence {
            None => true,
            Some(OrphanFence::RetryAt { at, .. }) => now >= at,
            // Delivered in a view that changed before it arrived: again.
            Some(OrphanFence::Done { node, epoch }) => (node, epoch) != (k.node, k.epoch),
            Some(OrphanFence::Running { .. }) => false,
        };
        if idle {
            self.log(
                Level::Warn,
                format!(
                    "fencing orphaned primary {}: its node left the ring, so nothing shows whether it still serves",
                    k.name
                ),
            );
            self.orphan_fence = Some(OrphanFence::Running {
                node: k.node,
                epoch: k.epoch,
            });
            self.out.push(Output::FenceNode { node: k.node });
        }
    }

    /// The `fence_node` hook finished. Success ends the hold; a failure
    /// is tried again after the back-off, and nobody is promoted meanwhile.
    pub(crate) fn on_fence_node_done(&mut self, now: u64, node: NodeId, ok: bool) {
        if let Some(OrphanFence::Running { node: n, epoch }) = self.orphan_fence {
            if n == node {
                if ok {
                    self.orphan_fence = Some(OrphanFence::Done { node, epoch });
                    // Gone, then vanished: no second fence for it.
                    self.fenced.insert((node, epoch));
                    self.log(
                        Level::Warn,
                        format!("orphaned primary {} fenced", self.name(node)),
                    );
                    self.multicast(Body::Request(Request::PrimaryGone { node, epoch }));
                } else {
                    self.log(
                        Level::Error,
                        format!(
                            "fence_node hook for orphaned primary {} failed: nobody is promoted until it succeeds (or `coroha confirm-down`); trying again in {} ms",
                            self.name(node),
                            self.cfg.retry_interval
                        ),
                    );
                    self.orphan_fence = Some(OrphanFence::RetryAt {
                        node,
                        epoch,
                        at: now + self.cfg.retry_interval,
                    });
                }
                return;
            }
        }
        let Some(HoldTimer::Fencing { hold }) = self.hold_timer.clone() else {
            // The view changed meanwhile, or it was the two_node race.
            let what = if ok { "succeeded" } else { "failed" };
            let level = if ok { Level::Warn } else { Level::Error };
            self.log(
                level,
                format!("fence_node hook for {} {what}", self.name(node)),
            );
            if ok {
                if let Some((n, e)) = self.persisted.vanished.filter(|(n, _)| *n == node) {
                    self.fenced.insert((n, e));
                }
            }
            return;
        };
        let Hold::PromotionDelay { primary, epoch } = hold else {
            return;
        };
        if primary != node {
            return;
        }
        if ok {
            self.log(
                Level::Warn,
                format!(
                    "{} fenced: its NSO/ConfD is no longer primary",
                    self.name(node)
                ),
            );
            self.fenced.insert((primary, epoch));
            self.release(hold);
        } else {
            self.log(
                Level::Error,
                format!(
                    "fence_node hook for {} failed: nobody is promoted until it succeeds; trying again in {} ms",
                    self.name(node),
                    self.cfg.retry_interval
                ),
            );
            self.hold_timer = Some(HoldTimer::Running {
                hold,
                until: now + self.cfg.retry_interval,
            });
        }
    }

    pub(crate) fn on_timer(&mut self, now: u64) {
        self.end_hold_if_due(now);
        if let Some(Stopping::Handover { deadline }) = self.leaving {
            if now >= deadline && !self.out.contains(&Output::Leave) {
                self.log(
                    Level::Warn,
                    "handover did not finish in time: leaving anyway",
                );
                self.leaving = Some(Stopping::HandedOver);
                self.out.push(Output::Leave);
            }
        }
    }

    /// A hold this node measures has run its time: fence what it must,
    /// or release it. Also right when it is armed, since a vanished
    /// primary's lease may have run out before the hold began.
    pub(crate) fn end_hold_if_due(&mut self, now: u64) {
        if let Some(HoldTimer::Running { hold, until }) = self.hold_timer.clone() {
            if now >= until {
                match self.to_fence(&hold) {
                    Some(node) => {
                        self.log(
                            Level::Warn,
                            format!(
                                "fencing {}: it vanished while it was or may have been primary",
                                self.name(node)
                            ),
                        );
                        self.out.push(Output::FenceNode { node });
                        self.hold_timer = Some(HoldTimer::Fencing { hold });
                    }
                    None => self.release(hold),
                }
            }
        }
    }
}
