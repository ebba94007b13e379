//! When a random schedule may end early: the cluster is whole and idle.
//!
//! A random schedule ends with 45 s of quiet after its last fault, for the
//! liveness check. Most clusters are back to their steady state a few
//! seconds into it, and from then on the simulation only repeats itself:
//! heartbeats, status polls and client writes that every node applies.
//! Those seconds were most of a schedule's events. [`Sim::settled`] names
//! the steady state strictly enough that nothing is left to happen in it,
//! and the random runs stop once it has held for [`SETTLED_FOR`]; the
//! option `--whole-quiet` simulates the whole quiet period instead, and
//! `tests/settle.rs` checks that both find the same violations.

use crate::{Ev, Sim};
use confd_ha::{HaOrder, HaRole};
use coroha_policy::message::Health;
use coroha_policy::{Input, Timer};

/// How long the steady state must hold before a schedule ends (ms): two
/// rounds of the daemons' status polls and heartbeats, so that a message
/// in flight when it was first seen has been delivered and acted on.
pub const SETTLED_FOR: u64 = 2000;

impl Sim {
    /// The cluster is whole and idle: every node is up in one ring with
    /// its coroha in the group, one serving primary has every other node
    /// attached with the same data, every daemon agrees on it with nothing
    /// in flight, failing, paused or waiting for the operator, and no
    /// fault, fence, membership change or operator request is pending.
    pub fn settled(&self) -> bool {
        self.unsettled().is_none()
    }

    /// What keeps the cluster from being [`settled`](Sim::settled).
    pub fn unsettled(&self) -> Option<&'static str> {
        let n = self.names.len();
        let all: Vec<usize> = (0..n).collect();
        let whole = (0..n).all(|i| {
            self.powered[i]
                && !self.cut(i)
                && self.cs[i].up
                && self.cs[i].ready
                && !self.cs[i].stuck
                && self.cs[i].late.is_empty()
                && self.cs[i].ring == self.cs[0].ring
                && self.cs[i].ring_members == all
                && (0..n).all(|k| self.link[i][k].0 || i == k)
        });
        if !whole {
            return Some("a node is down, cut off or in another ring");
        }
        if !self.held.is_empty() || self.frozen.values().any(|f| *f) {
            return Some("a membership change is under way");
        }
        if self.pause_running.is_some() {
            return Some("the operator's pause or resume is running");
        }
        let [p] = self.primaries()[..] else {
            return Some("not one primary");
        };
        let servers_idle = (0..n).all(|i| {
            let c = &self.confd[i];
            c.serving()
                && !c.refusing
                && c.stalled.is_empty()
                && c.owed.is_empty()
                && c.stalled_read_only.is_none()
                && c.silent_since.is_none()
                && c.data == self.confd[p].data
                && (i == p) == (c.role == HaRole::Primary)
                && (i == p || c.role == HaRole::Secondary)
        });
        if !servers_idle || self.secondaries_of(p).len() != n - 1 {
            return Some("a server is not an attached, up-to-date secondary of the primary");
        }
        let primary = &self.names[p];
        let daemons_agree = self.coroha.iter().enumerate().all(|(i, c)| {
            let Some(c) = c else { return false };
            let s = c.policy.status();
            c.session
                && c.joined
                && s.role == Some(self.confd[i].role)
                && s.quorate
                && s.health == Health::Ok
                && s.primary.as_ref() == Some(primary)
                // A status poll is part of the round; an order is not.
                && s.pending.as_deref().is_none_or(|o| o == HaOrder::GetStatus.verb())
                && s.failing.is_none()
                && !s.stopping
                && !s.paused
                && s.members.len() == n
                && s.absent.is_empty()
                && s.actions.is_empty()
                && Timer::ALL.iter().all(|t| {
                    matches!(t, Timer::Status | Timer::Lease) || c.policy.deadline(*t).is_none()
                })
        });
        if !daemons_agree {
            return Some("a daemon has something to do");
        }
        if self.anything_pending() {
            return Some("an event is pending");
        }
        None
    }

    /// An event in the queue that is not part of the steady state's round:
    /// a fault, a fence, a membership change, an order, an operator's retry.
    fn anything_pending(&self) -> bool {
        self.queue.iter().any(|e| {
            let (_, _, slot) = e.0;
            match &self.events[slot] {
                // The only order in flight is a status poll (checked
                // before): its reply is part of the round too.
                Some(Ev::Dispatch { ev, .. }) => !matches!(
                    **ev,
                    Input::Delivered { .. }
                        | Input::TxidRead(_)
                        | Input::ReadOnlyDone { .. }
                        | Input::HaReply { .. }
                ),
                Some(Ev::OrderApply { order, .. }) => *order != HaOrder::GetStatus,
                Some(
                    Ev::Sequence { .. }
                    | Ev::Timer { .. }
                    | Ev::Write
                    | Ev::LinkCheck
                    | Ev::ReadTxid { .. }
                    | Ev::OrderTimeout { .. },
                )
                | None => false,
                Some(_) => true,
            }
        })
    }

    /// Run until `end`, or, once `quiet_from` has passed, until the cluster
    /// has been [`settled`](Sim::settled) for [`SETTLED_FOR`]: the
    /// simulation of the rest would repeat the steady state. Returns when
    /// it stopped.
    pub fn run_until_settled(&mut self, quiet_from: u64, end: u64) -> u64 {
        self.run_until(quiet_from.min(end));
        let mut since: Option<u64> = None;
        let mut t = quiet_from;
        while t < end && self.violation.is_none() {
            if self.settled() {
                let first = *since.get_or_insert(t);
                if t - first >= SETTLED_FOR {
                    return t;
                }
            } else {
                since = None;
            }
            t = (t + 1000).min(end);
            self.run_until(t);
        }
        end
    }
}
