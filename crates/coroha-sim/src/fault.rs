//! The faults a schedule can inject, and how the timeline names them.

use crate::confd::Idx;
use crate::{timing, Corosync, Ev, Rare, Sim, Stopped, OPERATOR_TRIES};
use confd_ha::HaRole;
use coroha_policy::cluster::Reason;
use coroha_policy::{Input, Operator};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Fault {
    /// Power loss: corosync, coroha and NSO/ConfD die; peers notice late.
    Crash(Idx),
    /// Power back: corosync, coroha and NSO/ConfD (in NONE) start.
    Boot(Idx),
    /// Network split into groups (nodes not named stay together).
    Partition(Vec<Vec<Idx>>),
    Heal,
    /// coroha SIGKILLed / started again.
    KillCoroha(Idx),
    StartCoroha(Idx),
    /// SIGTERM (orderly stop with handover) and maintenance stop.
    StopCoroha(Idx),
    MaintenanceStop(Idx),
    /// NSO/ConfD process dies / is started again (in NONE).
    ConfdStop(Idx),
    ConfdStart(Idx),
    ConfdHang(Idx),
    ConfdResume(Idx),
    /// NSO/ConfD is restarted in start phase 0, where it refuses every
    /// order but getstatus with BADSTATE (or it reaches phase 1 and accepts
    /// orders again). The captured ConfD 8.2.5 refuses orders only in phase
    /// 0, which it enters only by starting, so never as a primary
    /// (`confd-ha-wire/README.md` §6).
    ConfdRefuse(Idx, bool),
    /// The whole node stops (SIGSTOP of corosync, coroha and NSO/ConfD, or
    /// a paused VM) / continues. Peers see its node leave after token +
    /// consensus; it notices nothing while stopped, and on resume its
    /// NSO/ConfD carries on in the role it had.
    Freeze(Idx),
    Thaw(Idx),
    /// Every packet the node sends is lost (`true`) / gets through again.
    /// As measured on corosync 3.1.7: its corosync delivers no new
    /// configuration at all, its ring stays the old one while the others
    /// form one without it; nothing it multicasts is delivered.
    SendLoss(Idx, bool),
    /// An operator's `confd_cmd -c ha_status` (or any other HA client)
    /// connects to the node's NSO/ConfD: the server closes coroha's HA
    /// socket and takes the other client's token; no role changes
    /// (confd-ha-wire §4.4). coroha's edge reconnects at once.
    ForeignHaClient(Idx),
    /// corosync SIGTERM then start, or SIGKILL then start after `after` ms.
    CorosyncRestart(Idx),
    CorosyncKill(Idx, u64),
    Switchover {
        at: Idx,
        to: Option<Idx>,
    },
    Standby {
        at: Idx,
        node: Idx,
        on: bool,
    },
    /// The operator vouches that `node`'s NSO/ConfD is down.
    ConfirmDown {
        at: Idx,
        node: Idx,
    },
    /// `coroha pause` (`on`) or `coroha resume`, asked on `at`.
    Pause {
        at: Idx,
        on: bool,
    },
}

impl Fault {
    /// The kind of fault, for coverage counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "crash",
            Fault::Boot(_) => "boot",
            Fault::Partition(_) => "partition",
            Fault::Heal => "heal",
            Fault::KillCoroha(_) => "kill_coroha",
            Fault::StartCoroha(_) => "start_coroha",
            Fault::StopCoroha(_) => "stop_coroha",
            Fault::MaintenanceStop(_) => "maintenance_stop",
            Fault::ConfdStop(_) => "confd_stop",
            Fault::ConfdStart(_) => "confd_start",
            Fault::ConfdHang(_) => "confd_hang",
            Fault::ConfdResume(_) => "confd_resume",
            Fault::ConfdRefuse(_, true) => "confd_phase0",
            Fault::ConfdRefuse(_, false) => "confd_phase1",
            Fault::Freeze(_) => "freeze",
            Fault::Thaw(_) => "thaw",
            Fault::SendLoss(_, true) => "send_loss",
            Fault::SendLoss(_, false) => "send_loss_end",
            Fault::ForeignHaClient(_) => "foreign_ha_client",
            Fault::CorosyncRestart(_) => "corosync_restart",
            Fault::CorosyncKill(..) => "corosync_kill",
            Fault::Switchover { .. } => "switchover",
            Fault::Standby { .. } => "standby",
            Fault::ConfirmDown { .. } => "confirm_down",
            Fault::Pause { on: true, .. } => "pause",
            Fault::Pause { on: false, .. } => "resume",
        }
    }

    pub fn describe(&self, names: &[String]) -> String {
        let n = |i: &Idx| names[*i].clone();
        match self {
            Fault::Crash(i) => format!("FAULT node {} crashes (power off)", n(i)),
            Fault::Boot(i) => format!("FAULT node {} boots", n(i)),
            Fault::Partition(groups) => format!(
                "FAULT network partition: {}",
                groups
                    .iter()
                    .map(|g| format!("[{}]", g.iter().map(n).collect::<Vec<_>>().join(" ")))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            Fault::Heal => "FAULT network healed".into(),
            Fault::KillCoroha(i) => format!("FAULT coroha on {} killed (SIGKILL)", n(i)),
            Fault::StartCoroha(i) => format!("OPERATOR coroha on {} started", n(i)),
            Fault::StopCoroha(i) => format!("OPERATOR coroha on {} stopped (SIGTERM)", n(i)),
            Fault::MaintenanceStop(i) => {
                format!("OPERATOR coroha on {} stopped in maintenance mode", n(i))
            }
            Fault::ConfdStop(i) => format!("FAULT NSO/ConfD on {} dies", n(i)),
            Fault::ConfdStart(i) => format!("OPERATOR NSO/ConfD on {} started", n(i)),
            Fault::ConfdHang(i) => format!("FAULT NSO/ConfD on {} hangs", n(i)),
            Fault::ConfdResume(i) => format!("FAULT NSO/ConfD on {} resumes", n(i)),
            Fault::ConfdRefuse(i, true) => format!(
                "FAULT NSO/ConfD on {} restarted in start phase 0: refuses orders",
                n(i)
            ),
            Fault::ConfdRefuse(i, false) => format!(
                "OPERATOR NSO/ConfD on {} reaches start phase 1: accepts orders",
                n(i)
            ),
            Fault::Freeze(i) => format!("FAULT node {} freezes (every process stopped)", n(i)),
            Fault::Thaw(i) => format!("FAULT node {} resumes", n(i)),
            Fault::SendLoss(i, true) => {
                format!("FAULT every packet {} sends is lost (one-way loss)", n(i))
            }
            Fault::SendLoss(i, false) => format!("FAULT {}'s packets get through again", n(i)),
            Fault::ForeignHaClient(i) => {
                format!(
                    "OPERATOR confd_cmd -c ha_status on {} (another HA client)",
                    n(i)
                )
            }
            Fault::CorosyncRestart(i) => format!("OPERATOR corosync on {} restarted", n(i)),
            Fault::CorosyncKill(i, after) => {
                format!("FAULT corosync on {} killed, back after {after} ms", n(i))
            }
            Fault::Switchover { at, to } => {
                format!(
                    "OPERATOR switchover to {} (asked on {})",
                    to.as_ref().map_or("best other node".into(), n),
                    n(at)
                )
            }
            Fault::ConfirmDown { at, node } => {
                format!("OPERATOR confirms {} down (asked on {})", n(node), n(at))
            }
            Fault::Standby { at, node, on } => {
                format!(
                    "OPERATOR standby {} {} (asked on {})",
                    if *on { "on" } else { "off" },
                    n(node),
                    n(at)
                )
            }
            Fault::Pause { at, on } => format!(
                "OPERATOR {} the cluster (asked on {})",
                if *on { "pause" } else { "resume" },
                n(at)
            ),
        }
    }
}

/// What a fault does to the simulated world.
impl Sim {
    pub(crate) fn fault(&mut self, f: Fault) {
        // On a stopped node nothing runs: what an operator or a process
        // there would do happens when it resumes. Power, the network and
        // SIGKILL act at once.
        let waits = match &f {
            Fault::StartCoroha(i)
            | Fault::StopCoroha(i)
            | Fault::MaintenanceStop(i)
            | Fault::ConfdStart(i)
            | Fault::ConfdHang(i)
            | Fault::ConfdResume(i)
            | Fault::ConfdRefuse(i, _)
            | Fault::CorosyncRestart(i)
            | Fault::CorosyncKill(i, _) => Some(*i),
            Fault::Switchover { at, .. }
            | Fault::Standby { at, .. }
            | Fault::ConfirmDown { at, .. } => Some(*at),
            _ => None,
        };
        if let Some(stopped) = waits.and_then(|i| self.stopped[i].as_mut()) {
            stopped.events.push(Ev::Fault(f));
            return;
        }
        if !matches!(f, Fault::Boot(_)) || self.now > 0 {
            let text = f.describe(&self.names);
            self.record(None, text);
        }
        match f {
            Fault::Crash(i) => {
                if !self.powered[i] {
                    return;
                }
                self.powered[i] = false;
                self.stopped[i] = None;
                self.cs[i] = Corosync::default();
                self.coroha[i] = None;
                self.crashed(i, timing::DETECT_LOSS);
                // The process vanishes with the machine: no TCP close, so
                // peers notice only after their ticks.
                self.confd[i].running = false;
                self.confd[i].hung = false;
                self.confd[i].owed.clear();
                self.confd[i].stalled.clear();
                self.confd[i].stalled_read_only = None;
                self.topology_changed(timing::DETECT_LOSS);
            }
            Fault::Boot(i) => {
                if self.powered[i] {
                    return;
                }
                self.powered[i] = true;
                self.confd[i] = self.confd[i].restarted(true);
                self.confd[i].set_role(self.now, HaRole::None);
                // Peers' connections to the old process are reset on their
                // next tick.
                let tick = self.now + self.opts.tick;
                self.schedule(tick, Ev::LinkCheck);
                self.schedule(self.now, Ev::CorosyncStart(i));
                self.start_coroha(i);
            }
            Fault::Partition(groups) => {
                let handing_over = self
                    .coroha
                    .iter()
                    .flatten()
                    .any(|c| c.policy.promoting().is_some() || c.policy.stopping());
                if handing_over {
                    self.reach(Rare::PartitionDuringHandover);
                }
                for g in self.group.iter_mut() {
                    *g = 0;
                }
                for (k, g) in groups.iter().enumerate() {
                    for i in g {
                        self.group[*i] = k as u32 + 1;
                    }
                }
                self.topology_changed(timing::DETECT_LOSS);
            }
            Fault::Heal => {
                for g in self.group.iter_mut() {
                    *g = 0;
                }
                self.schedule(self.now + timing::DETECT_MERGE, Ev::Reconfigure);
                // Held messages flow as soon as the ring is whole again.
                self.schedule(self.now + 1, Ev::Reconfigure);
            }
            Fault::KillCoroha(i) => self.kill_coroha(i, Reason::ProcDown, timing::PROC_DOWN),
            Fault::StartCoroha(i) => {
                let stopping = self.coroha[i].as_ref().is_some_and(|c| c.policy.stopping());
                if stopping {
                    // Like systemd: start again once the stop has finished.
                    self.schedule(self.now + 1000, Ev::Fault(Fault::StartCoroha(i)));
                } else if self.powered[i] && self.coroha[i].is_none() {
                    self.start_coroha(i);
                }
            }
            Fault::StopCoroha(i) => self.operator(i, Operator::Stop { handover: true }),
            Fault::MaintenanceStop(i) => self.operator(i, Operator::Stop { handover: false }),
            Fault::ConfdStop(i) => self.confd_stop(i, "process died"),
            Fault::ConfdStart(i) => self.confd_start(i, false),
            Fault::ConfdHang(i) => {
                if self.confd[i].running {
                    self.confd[i].hung = true;
                    self.schedule(self.now + 3 * self.opts.tick, Ev::LinkCheck);
                }
            }
            // On a stopped node it waits for the node (seed 117840933: a
            // hang that ended while its node was stopped was dropped, and
            // the server stayed hung for good after the node resumed).
            Fault::ConfdResume(i) => self.confd_resume(i),
            Fault::Freeze(i) => {
                if !self.powered[i] || self.stopped[i].is_some() {
                    return;
                }
                let confd_was_serving = self.confd[i].serving();
                self.confd[i].hung |= self.confd[i].running;
                self.stopped[i] = Some(Stopped {
                    events: vec![],
                    confd_was_serving,
                });
                self.cut_off(i);
            }
            Fault::Thaw(i) => {
                let Some(stopped) = self.stopped[i].take() else {
                    return;
                };
                // Everything resumes at once: its NSO/ConfD in the role it
                // had, its coroha with what queued up (timers late).
                if stopped.confd_was_serving {
                    self.confd_resume(i);
                }
                for ev in stopped.events {
                    self.schedule(self.now, ev);
                }
                self.reconnect(i);
            }
            Fault::SendLoss(i, true) => {
                if !self.send_lost[i] {
                    self.send_lost[i] = true;
                    self.cut_off(i);
                }
            }
            Fault::SendLoss(i, false) => {
                if self.send_lost[i] {
                    self.send_lost[i] = false;
                    self.reconnect(i);
                }
            }
            Fault::ConfdRefuse(i, true) => {
                // Only a start enters phase 0: a running server is
                // restarted, and comes back in NONE.
                self.confd_stop(i, "restarted in start phase 0");
                self.confd_start(i, true);
            }
            Fault::ConfdRefuse(i, false) => self.confd[i].refusing = false,
            Fault::ForeignHaClient(i) => {
                // The server runs: coroha's socket is closed and taken
                // back within a round trip; the role stays.
                let pid = self.coroha[i].as_ref().map(|c| c.pid);
                if let (Some(pid), true) = (pid, self.confd[i].serving()) {
                    let ev = Box::new(Input::HaSocketReplaced);
                    self.schedule(self.now + 2, Ev::Dispatch { node: i, pid, ev });
                }
            }
            Fault::CorosyncRestart(i) => {
                if self.cs[i].up {
                    self.corosync_stop(i, true);
                    self.schedule(self.now + 1000, Ev::CorosyncStart(i));
                }
            }
            Fault::CorosyncKill(i, after) => {
                if self.cs[i].up {
                    self.corosync_stop(i, false);
                    self.schedule(self.now + after, Ev::CorosyncStart(i));
                }
            }
            request @ (Fault::Switchover { .. }
            | Fault::Standby { .. }
            | Fault::ConfirmDown { .. }
            | Fault::Pause { .. }) => self.operator_request(request, 0),
        }
    }

    /// An operator runs a command on one node. Refused, they try again
    /// every second, as after the command's non-zero exit. (A request
    /// taken but lost in a view change in flight is not noticed: the
    /// commands do not wait for the outcome yet.)
    pub(crate) fn operator_request(&mut self, request: Fault, tries: u32) {
        if let Fault::Standby { node, on, .. } = request {
            if tries == 0 {
                self.standby_wanted[node] = Some(on);
            } else if self.standby_wanted[node] != Some(on) {
                return;
            }
        }
        if let Fault::Pause { at, on } = request {
            return self.operator_pause(at, on, tries);
        }
        if tries > 0 {
            let text = request.describe(&self.names);
            self.record(None, format!("{text}, again (try {})", tries + 1));
        }
        let (i, op) = match &request {
            Fault::Switchover { at, to } => (
                *at,
                Operator::Switchover {
                    to: to.map(|t| self.names[t].clone()),
                },
            ),
            Fault::Standby { at, node, on } => (
                *at,
                Operator::Standby {
                    node: self.names[*node].clone(),
                    on: *on,
                },
            ),
            Fault::ConfirmDown { at, node } => (
                *at,
                Operator::ConfirmDown {
                    node: self.names[*node].clone(),
                },
            ),
            other => unreachable!("not an operator request: {other:?}"),
        };
        let admitted = match self.coroha[i].as_ref() {
            None => Err(SimRefusal::NoDaemon),
            Some(c) => c.policy.admit(&op).map_err(SimRefusal::Policy),
        };
        match admitted {
            // Nothing to do: an operator reads the answer and stops.
            Err(why) if why.as_asked() => {
                self.record(Some(i), format!("operator request refused: {why}"));
            }
            Err(why) if tries < OPERATOR_TRIES => {
                self.reach(Rare::OperatorRefused);
                self.record(Some(i), format!("operator request refused: {why}"));
                let tries = tries + 1;
                self.schedule(self.now + 1000, Ev::OperatorRetry { request, tries });
            }
            Err(why) => {
                self.record(Some(i), format!("operator gives up: {why}"));
            }
            Ok(()) => self.operator(i, op),
        }
    }

    /// `coroha pause` / `resume` as one operator runs them: one at a time,
    /// each until a daemon shows the generation the request wrote (or a
    /// later one) with the state asked for, as the command waits; on a
    /// node whose daemon answers, asking again after a refusal or a
    /// request lost (a view change, a node that cannot be heard).
    fn operator_pause(&mut self, at: Idx, on: bool, tries: u32) {
        let n = self.names.len();
        let answers = |k: Idx| self.coroha[k].is_some() && self.stopped[k].is_none();
        let at = (0..n)
            .map(|k| (at + k) % n)
            .find(|k| answers(*k))
            .unwrap_or(at);
        let request = Fault::Pause { at, on };
        if tries == 0 {
            match self.pause_running {
                // The command before it still waits: this one comes after.
                Some((running, _)) if running != on => {
                    self.schedule(self.now + 1000, Ev::OperatorRetry { request, tries });
                    return;
                }
                _ => self.pause_running = Some((on, None)),
            }
        } else {
            let text = request.describe(&self.names);
            self.record(None, format!("{text}, again (try {})", tries + 1));
        }
        let status = self.coroha[at].as_ref().map(|c| c.policy.status());
        if let (Some(s), Some((_, Some(gen)))) = (&status, self.pause_running) {
            if s.pause_gen >= gen && s.paused == on {
                self.record(
                    Some(at),
                    format!(
                        "operator sees the cluster {}",
                        if on { "paused" } else { "resumed" }
                    ),
                );
                self.pause_running = None;
                return;
            }
        }
        let admitted = match self.coroha[at].as_ref() {
            None => Err(SimRefusal::NoDaemon),
            Some(c) => c
                .policy
                .admit(&Operator::Pause { on })
                .map_err(SimRefusal::Policy),
        };
        match (admitted, status) {
            (Ok(()), Some(s)) => {
                self.pause_running = Some((on, Some(s.pause_gen + 1)));
                self.operator(at, Operator::Pause { on });
            }
            (Err(why), _) => {
                self.reach(Rare::OperatorRefused);
                self.record(Some(at), format!("operator request refused: {why}"));
            }
            (Ok(()), None) => unreachable!("admitted by a daemon that runs"),
        }
        if tries < OPERATOR_TRIES {
            let tries = tries + 1;
            self.schedule(self.now + 1000, Ev::OperatorRetry { request, tries });
        } else {
            self.record(Some(at), "operator gives up".into());
            self.pause_running = None;
        }
    }

    fn operator(&mut self, i: Idx, op: Operator) {
        if self.coroha[i].is_some() {
            self.step_policy(i, Input::Operator(op));
        } else {
            self.record(
                Some(i),
                "operator request ignored: coroha is not running".into(),
            );
        }
    }
}

/// Why the simulated operator's command did nothing.
enum SimRefusal {
    /// No daemon to ask: the command cannot reach the control socket.
    NoDaemon,
    Policy(coroha_policy::Refusal),
}

impl SimRefusal {
    fn as_asked(&self) -> bool {
        matches!(self, SimRefusal::Policy(r) if r.as_asked())
    }
}

impl std::fmt::Display for SimRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimRefusal::NoDaemon => f.write_str("coroha is not running on this node"),
            SimRefusal::Policy(r) => r.fmt(f),
        }
    }
}
