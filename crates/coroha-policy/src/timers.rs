//! The policy's timers, as a table: each [`Timer`] has a typed state in
//! [`Policy`] and [`Policy::deadline`] says when it is due; the earliest is
//! what the I/O edge sleeps until. No sentinel values: a timer that is not
//! running has no deadline.

use crate::cluster::{NodeId, RingId};
use crate::message::Hold;
use crate::Policy;

/// Everything the policy may want to be woken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Probe the local NSO/ConfD with `get_status`.
    Status,
    /// Give an order that failed again, after the back-off.
    Retry,
    /// A hold (promotion delay, orphan grace, failback delay) measured by
    /// this node as coordinator.
    Hold,
    /// The startup settle time ends.
    Settle,
    /// An orderly stop gives up waiting for the handover.
    Handover,
    /// Evidence against an orphan has stood for corosync's detection time.
    Evidence,
    /// A heartbeat is due, or the lease lapses.
    Lease,
}

impl Timer {
    pub const ALL: [Timer; 7] = [
        Timer::Status,
        Timer::Retry,
        Timer::Hold,
        Timer::Settle,
        Timer::Handover,
        Timer::Evidence,
        Timer::Lease,
    ];
}

/// A hold this node measures for the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HoldTimer {
    Running {
        hold: Hold,
        until: u64,
    },
    /// Elapsed, and the vanished primary is being fenced (`fence_node`);
    /// `Release` follows its success.
    Fencing {
        hold: Hold,
    },
    /// Elapsed and `Release` multicast; the hold ends for everybody when
    /// that is delivered.
    ReleaseSent {
        hold: Hold,
    },
}

impl HoldTimer {
    pub(crate) fn hold(&self) -> &Hold {
        match self {
            HoldTimer::Running { hold, .. }
            | HoldTimer::Fencing { hold }
            | HoldTimer::ReleaseSent { hold } => hold,
        }
    }
}

/// An attach found nothing listening at an orphan's HA address while its
/// node was in `ring`. It becomes evidence that the orphan stopped serving
/// once the node has stayed in that ring for corosync's detection time: a
/// partition corosync has not noticed yet fails to connect too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Evidence {
    pub(crate) gone: (NodeId, u64),
    pub(crate) ring: RingId,
    pub(crate) stands_at: u64,
}

/// Fencing an orphaned primary whose node left the ring (`fence_node`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrphanFence {
    /// The hook runs.
    Running { node: NodeId, epoch: u64 },
    /// It failed; try again at `at`.
    RetryAt { node: NodeId, epoch: u64, at: u64 },
    /// It succeeded and `PrimaryGone` is on its way.
    Done { node: NodeId, epoch: u64 },
}

/// An operator stop in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stopping {
    /// SIGTERM: hand the primary role over, or give up at `deadline`. (A
    /// node that is not primary has nothing to hand over: its deadline is
    /// the moment of the stop.)
    Handover { deadline: u64 },
    /// The handover is done or given up: `Leave` was emitted.
    HandedOver,
    /// `coroha stop --keep-roles`: leave at once, announce nothing, every
    /// role stays.
    Maintenance,
}

impl Stopping {
    /// An orderly stop is announced so that nobody plans around this node;
    /// a maintenance stop is not.
    pub(crate) fn announced(self) -> bool {
        !matches!(self, Stopping::Maintenance)
    }
}

impl Policy {
    /// When `timer` is due, if it is running.
    pub fn deadline(&self, timer: Timer) -> Option<u64> {
        // An order in flight holds the probe and the retry: the server
        // serves one order at a time.
        let idle = self.pending.is_none();
        match timer {
            Timer::Status => idle.then_some(self.status_at),
            Timer::Retry => self.retry_at.filter(|_| idle),
            Timer::Hold => match (&self.hold_timer, self.orphan_fence) {
                (Some(HoldTimer::Running { until, .. }), _) => Some(*until),
                (_, Some(OrphanFence::RetryAt { at, .. })) => Some(at),
                _ => None,
            },
            Timer::Settle => match (self.started_at, self.settling_flag()) {
                (Some(start), true) => Some(start + self.cfg.startup_settle),
                _ => None,
            },
            Timer::Handover => match self.leaving {
                Some(Stopping::Handover { deadline }) => Some(deadline),
                _ => None,
            },
            Timer::Evidence => self.evidence.as_ref().map(|e| e.stands_at),
            Timer::Lease => self.lease_deadline(),
        }
    }

    /// The earliest time at which `step(_, Input::Timer)` has work to do.
    pub fn next_deadline(&self) -> Option<u64> {
        // A deadline already past was not acted on because something else
        // blocks it (an order in flight, a plan not yet complete); the next
        // input re-evaluates it, so it is not a reason to wake now.
        Timer::ALL
            .iter()
            .filter_map(|t| self.deadline(*t))
            .filter(|d| *d > self.last_step_at)
            .min()
    }
}
