//! Operator requests (`coroha switchover`, `standby`, `stop`,
//! `confirm-down`) and the policy's timers.

use crate::message::{Body, Request};
use crate::timers::{HoldTimer, Stopping};
use crate::{Level, Operator, Output, Policy};

impl Policy {
    // ----- operator --------------------------------------------------------

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
                let known = self.known_primary().cloned().filter(|k| k.name == node);
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

    pub(crate) fn on_timer(&mut self, now: u64) {
        if let Some(HoldTimer::Running { hold, until }) = self.hold_timer.clone() {
            if now >= until {
                self.multicast(Body::Request(Request::Release(hold.clone())));
                // Sent; the hold ends for everybody when it is delivered.
                self.hold_timer = Some(HoldTimer::ReleaseSent { hold });
            }
        }
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
}
