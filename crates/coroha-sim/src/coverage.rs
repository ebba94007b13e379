//! What a random run exercised: how many schedules injected each kind of
//! fault and how many reached each rare state. A "0 violations" claim is
//! only as good as these counts.

use crate::fault::Fault;
use serde::Serialize;
use std::collections::BTreeMap;

/// The rare states one schedule can reach (each counted once per
/// schedule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rare {
    /// A primary's coroha stopped (killed or maintenance) while its
    /// NSO/ConfD stayed primary: an orphan.
    Orphan,
    /// A `beprimary` reached a frozen NSO/ConfD: it applies it on resume.
    PromotionOnHungServer,
    /// A `benone` reached a frozen NSO/ConfD: the demotion cannot happen.
    DemotionOnHungServer,
    /// NSO/ConfD in start phase 0 refused an order.
    RefusedOrder,
    /// The network split while a handover was under way (an orderly stop,
    /// or a node announcing its promotion).
    PartitionDuringHandover,
    /// coroha ran the fence hook.
    Fence,
    /// The `fence_node` hook fenced a vanished primary.
    FenceNode,
    /// The operator was refused and tried again.
    OperatorRefused,
}

impl Rare {
    /// The name in reports (as in the JSON form).
    pub fn name(self) -> &'static str {
        match self {
            Rare::Orphan => "orphan",
            Rare::PromotionOnHungServer => "promotion_on_hung_server",
            Rare::DemotionOnHungServer => "demotion_on_hung_server",
            Rare::RefusedOrder => "refused_order",
            Rare::PartitionDuringHandover => "partition_during_handover",
            Rare::Fence => "fence",
            Rare::FenceNode => "fence_node",
            Rare::OperatorRefused => "operator_refused",
        }
    }
}

/// Counts over the schedules of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Schedules that injected a fault of this kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Schedules that reached this state.
    pub states: BTreeMap<Rare, u64>,
}

impl Coverage {
    /// Count one schedule: the faults it was given, the states it reached.
    pub fn add(&mut self, faults: &[(u64, Fault)], reached: &[Rare]) {
        let mut kinds: Vec<&'static str> = faults.iter().map(|(_, f)| f.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for k in kinds {
            *self.faults.entry(k).or_default() += 1;
        }
        for r in reached {
            *self.states.entry(*r).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Coverage) {
        for (k, n) in other.faults {
            *self.faults.entry(k).or_default() += n;
        }
        for (k, n) in other.states {
            *self.states.entry(k).or_default() += n;
        }
    }
}
