//! The faults a schedule can inject, and how the timeline names them.

use crate::confd::Idx;
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
            Fault::CorosyncRestart(_) => "corosync_restart",
            Fault::CorosyncKill(..) => "corosync_kill",
            Fault::Switchover { .. } => "switchover",
            Fault::Standby { .. } => "standby",
            Fault::ConfirmDown { .. } => "confirm_down",
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
        }
    }
}
