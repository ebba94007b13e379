//! Why a plan is what it is: typed, so that the policy can act on the kind
//! of decision (a switchover is done once its target simply stays primary)
//! and operators read the same sentence in the log, in `coroha status` and
//! in the hooks' `COROHA_CAUSE`. The `Display` text is the interface that
//! operators and the golden timelines see; change it only on purpose.

use crate::message::{Fresh, Health, Mark, NodeState};
use std::fmt;
use std::sync::Arc;

/// The reason of one [`crate::elect::Plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The current primary is eligible and nothing moves it.
    Stays { primary: Arc<str> },
    /// The plan follows a primary whose coroha left while its node is still
    /// a corosync member: it may still be serving.
    OrphanKept { primary: Arc<str>, epoch: u64 },
    /// An operator asked to move the role from a healthy primary.
    Switchover { from: Arc<str>, to: Arc<str> },
    /// An operator asked for a node while there is no eligible primary.
    SwitchoverTo { to: Arc<str> },
    /// A node of higher priority, in sync, takes the role back.
    Failback {
        to: Arc<str>,
        priority: u32,
        over: u32,
    },
    /// A new primary replaces one that may no longer serve.
    Replaces {
        elected: Arc<str>,
        primary: Arc<str>,
        why: Unfit,
    },
    /// A new primary where there was none.
    Freshest {
        elected: Arc<str>,
        fresh: Fresh,
        priority: u32,
    },
    /// Not every configured node has joined yet and none is primary.
    Settling,
    /// Nobody may be primary; why, for each node that could be, in the
    /// order of their text.
    NoCandidate(Vec<Unqualified>),
}

impl Cause {
    /// The kind of decision, as one lowercase word (a metric's label).
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::Stays { .. } => "stays",
            Cause::OrphanKept { .. } => "orphan_kept",
            Cause::Switchover { .. } | Cause::SwitchoverTo { .. } => "switchover",
            Cause::Failback { .. } => "failback",
            Cause::Replaces { .. } => "replaces",
            Cause::Freshest { .. } => "freshest",
            Cause::Settling => "settling",
            Cause::NoCandidate(_) => "no_candidate",
        }
    }
}

/// A node that could be primary but may not be now, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unqualified {
    pub name: Arc<str>,
    pub why: Unfit,
}

impl fmt::Display for Unqualified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Unqualified { name, why } = self;
        match why {
            // "n2 is behind (…)" reads better than "n2: behind (…)".
            Unfit::Behind { .. } => write!(f, "{name} is {why}"),
            _ => write!(f, "{name}: {why}"),
        }
    }
}

/// Why a node may not be primary now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    Stopping,
    Standby,
    CannotPrimary,
    Health(Health),
    /// It has older data than somebody has seen.
    Behind {
        fresh: Mark,
        need: Mark,
    },
    /// Its data changed outside the lineage (design §6).
    Diverged,
}

impl Unfit {
    /// Why `s`, which does not qualify, is not eligible.
    pub(crate) fn of(s: &NodeState) -> Unfit {
        if s.leaving {
            Unfit::Stopping
        } else if s.standby {
            Unfit::Standby
        } else if !s.can_primary {
            Unfit::CannotPrimary
        } else {
            Unfit::Health(s.health)
        }
    }
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfit::Stopping => f.write_str("stopping"),
            Unfit::Standby => f.write_str("standby"),
            Unfit::CannotPrimary => f.write_str("can_primary = false"),
            Unfit::Health(h) => write!(f, "{}", format!("NSO/ConfD {h:?}").to_lowercase()),
            Unfit::Behind { fresh, need } => write!(f, "behind ({fresh} < {need})"),
            Unfit::Diverged => f.write_str("diverged (its data changed outside the lineage)"),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Stays { primary } => write!(f, "{primary} stays primary"),
            Cause::OrphanKept { primary, epoch } => write!(
                f,
                "primary {primary} (epoch {epoch}) has no coroha in the group and may still serve: keeping it"
            ),
            Cause::Switchover { from, to } => write!(f, "operator switchover from {from} to {to}"),
            Cause::SwitchoverTo { to } => write!(f, "operator switchover to {to}"),
            Cause::Failback { to, priority, over } => {
                write!(f, "failback to {to} (priority {priority} > {over})")
            }
            Cause::Replaces {
                elected,
                primary,
                why,
            } => write!(f, "{elected} elected: primary {primary} is not eligible ({why})"),
            Cause::Freshest {
                elected,
                fresh,
                priority,
            } => write!(
                f,
                "{elected} elected: freshest data ({fresh}), priority {priority}"
            ),
            Cause::Settling => f.write_str(
                "waiting for the startup settle time: not every configured node has joined",
            ),
            Cause::NoCandidate(nodes) => {
                f.write_str("no eligible up-to-date node: ")?;
                for (i, node) in nodes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{node}")?;
                }
                Ok(())
            }
        }
    }
}

impl Cause {
    /// Nobody may be primary: `nodes` in the order of their text, as
    /// operators have always seen them.
    pub(crate) fn no_candidate(mut nodes: Vec<Unqualified>) -> Cause {
        nodes.sort_by_cached_key(Unqualified::to_string);
        Cause::NoCandidate(nodes)
    }
}
