//! What an operator's request is done with, as the status of the daemon
//! that took it shows it: the commands wait for that, and print it.

use crate::control::Request;
use confd_ha::HaRole;
use coroha_policy::Status;

/// The outcome a taken request waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Awaited {
    /// A primary other than `old`, at a newer epoch than `old_epoch`: the
    /// one named (`to`), or any.
    NewPrimary {
        old: Option<String>,
        old_epoch: u64,
        to: Option<String>,
    },
    /// `node`'s standby flag is `on`; a primary put in standby has handed
    /// its role over too.
    Standby {
        node: String,
        on: bool,
        was_primary: bool,
    },
    /// The cluster is paused (`on`) or resumed, by this request: at its
    /// generation or a later one.
    Pause { on: bool, gen: u64 },
    /// The daemon asked has exited.
    Exit,
}

/// The primary a status shows: the plan's, whose server reports primary.
pub fn primary_of(s: &Status) -> Option<(&str, u64)> {
    let name = s.primary.as_deref()?;
    s.members
        .iter()
        .find(|m| m.name == name && m.role == Some(HaRole::Primary))
        .map(|m| (name, m.epoch))
}

impl Awaited {
    /// What `req`, taken while the daemon showed `before`, waits for.
    pub fn of(req: &Request, before: &Status) -> Option<Awaited> {
        let old = primary_of(before);
        match req {
            Request::Switchover { to } => Some(Awaited::NewPrimary {
                old: old.map(|(n, _)| n.to_string()),
                old_epoch: old.map_or(0, |(_, e)| e),
                to: to.clone(),
            }),
            Request::ConfirmDown { .. } => Some(Awaited::NewPrimary {
                old: None,
                old_epoch: before.max_epoch,
                to: None,
            }),
            Request::Standby { node, on } => Some(Awaited::Standby {
                node: node.clone(),
                on: *on,
                was_primary: old.is_some_and(|(n, _)| n == node),
            }),
            Request::Stop { .. } => Some(Awaited::Exit),
            Request::Pause { on } => Some(Awaited::Pause {
                on: *on,
                gen: before.pause_gen + 1,
            }),
            Request::Status | Request::Metrics | Request::History { .. } => None,
        }
    }

    /// The outcome, in words, once `now` shows it.
    pub fn seen(&self, now: &Status) -> Option<String> {
        let primary = primary_of(now);
        match self {
            Awaited::NewPrimary { old, old_epoch, to } => {
                let (p, epoch) = primary?;
                let moved = old.as_deref() != Some(p) && epoch > *old_epoch;
                let wanted = to.as_deref().is_none_or(|t| t == p);
                (moved && wanted).then(|| format!("{p} is primary (epoch {epoch})"))
            }
            Awaited::Standby {
                node,
                on,
                was_primary,
            } => {
                let member = now.members.iter().find(|m| m.name == *node)?;
                if member.standby != *on {
                    return None;
                }
                if !on {
                    return Some(format!("{node} is out of standby"));
                }
                if !was_primary {
                    return Some(format!("{node} is in standby"));
                }
                match primary {
                    Some((p, epoch)) if p != node => Some(format!(
                        "{node} is in standby; {p} is primary (epoch {epoch})"
                    )),
                    _ => None,
                }
            }
            Awaited::Pause { on, gen } if now.pause_gen >= *gen && now.paused == *on => Some(
                format!("the cluster is {}", if *on { "paused" } else { "resumed" }),
            ),
            Awaited::Pause { .. } | Awaited::Exit => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::samples::{member, status};

    fn n1_primary() -> Status {
        status(
            "n1",
            vec![
                member("n1", HaRole::Primary, 3, None, false),
                member("n2", HaRole::Secondary, 3, None, false),
            ],
        )
    }

    #[test]
    fn a_switchover_is_done_when_the_target_serves_at_a_newer_epoch() {
        let req = Request::Switchover {
            to: Some("n2".into()),
        };
        let awaited = Awaited::of(&req, &n1_primary()).unwrap();
        assert_eq!(awaited.seen(&n1_primary()), None);
        // Planned but not yet primary: not done.
        let planned = status(
            "n2",
            vec![
                member("n1", HaRole::None, 3, None, false),
                member("n2", HaRole::Secondary, 3, None, false),
            ],
        );
        assert_eq!(awaited.seen(&planned), None);
        let done = status(
            "n2",
            vec![
                member("n1", HaRole::Secondary, 4, None, false),
                member("n2", HaRole::Primary, 4, None, false),
            ],
        );
        assert_eq!(
            awaited.seen(&done).as_deref(),
            Some("n2 is primary (epoch 4)")
        );
    }

    #[test]
    fn a_primary_put_in_standby_is_done_once_another_node_serves() {
        let req = Request::Standby {
            node: "n1".into(),
            on: true,
        };
        let awaited = Awaited::of(&req, &n1_primary()).unwrap();
        let flagged = status(
            "n1",
            vec![
                member("n1", HaRole::Primary, 3, None, true),
                member("n2", HaRole::Secondary, 3, None, false),
            ],
        );
        assert_eq!(awaited.seen(&flagged), None, "still primary");
        let done = status(
            "n2",
            vec![
                member("n1", HaRole::Secondary, 4, None, true),
                member("n2", HaRole::Primary, 4, None, false),
            ],
        );
        assert_eq!(
            awaited.seen(&done).as_deref(),
            Some("n1 is in standby; n2 is primary (epoch 4)")
        );
        let off = Awaited::of(
            &Request::Standby {
                node: "n1".into(),
                on: false,
            },
            &done,
        )
        .unwrap();
        assert_eq!(off.seen(&done), None);
        assert_eq!(
            off.seen(&n1_primary()).as_deref(),
            Some("n1 is out of standby")
        );
    }
}
