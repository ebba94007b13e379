//! The Prometheus text exposition of the daemon's state.

use super::Daemon;
use confd_ha::HaRole;
use coroha_policy::freshness::DataState;

impl Daemon {
    /// Prometheus text exposition.
    pub(super) fn metrics(&self) -> String {
        use std::fmt::Write;
        let s = self.policy.status();
        let c = self.corosync.view.borrow();
        let mut out = String::new();
        let metric = |out: &mut String, kind: &str, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let mut gauge =
            |name: &str, help: &str, value: u64| metric(&mut out, "gauge", name, help, value);
        gauge(
            "coroha_quorate",
            "1 when this node may act: the view is stable and quorate.",
            u64::from(s.quorate),
        );
        gauge("coroha_epoch", "Epoch of the local role.", s.epoch);
        gauge(
            "coroha_max_epoch",
            "Highest election epoch seen (persisted).",
            s.max_epoch,
        );
        gauge(
            "coroha_corosync_connected",
            "1 while connected to corosync.",
            u64::from(c.connected),
        );
        gauge(
            "coroha_ring_members",
            "Nodes in the corosync ring.",
            c.ring_members.len() as u64,
        );
        gauge(
            "coroha_group_members",
            "coroha daemons in the CPG group.",
            c.group.len() as u64,
        );
        gauge(
            "coroha_stopping",
            "1 during an orderly stop.",
            u64::from(s.stopping),
        );
        gauge(
            "coroha_paused",
            "1 while the cluster is paused (coroha pause): no role changes.",
            u64::from(s.paused),
        );
        gauge(
            "coroha_actions_needed",
            "What the cluster waits for the operator to do (coroha status says what).",
            s.actions.len() as u64,
        );
        let _ = writeln!(out, "# HELP coroha_role The local NSO/ConfD role (1 for the current one).\n# TYPE coroha_role gauge");
        for role in [
            HaRole::None,
            HaRole::Secondary,
            HaRole::Primary,
            HaRole::Relay,
        ] {
            let _ = writeln!(
                out,
                "coroha_role{{role=\"{}\"}} {}",
                role.name(),
                u64::from(s.role == Some(role))
            );
        }
        let _ = writeln!(out, "# HELP coroha_member_data Each member's data against the freshest anybody announced (CDB transaction id, design §6): 1 for its current state.\n# TYPE coroha_member_data gauge");
        for m in &s.members {
            for (state, name) in [
                (DataState::InSync, "in_sync"),
                (DataState::Behind, "behind"),
                (DataState::Diverged, "diverged"),
                (DataState::Unknown, "unknown"),
            ] {
                let _ = writeln!(
                    out,
                    "coroha_member_data{{node=\"{}\",state=\"{name}\"}} {}",
                    m.name,
                    u64::from(m.data == state)
                );
            }
        }
        let mut counter =
            |name: &str, help: &str, value: u64| metric(&mut out, "counter", name, help, value);
        counter(
            "coroha_role_changes_total",
            "Role changes of the local NSO/ConfD.",
            self.counters.role_changes,
        );
        counter(
            "coroha_fences_total",
            "Fence hook runs.",
            self.counters.fences,
        );
        counter(
            "coroha_ha_events_total",
            "HA notifications received.",
            self.counters.ha_events,
        );
        counter(
            "coroha_corosync_reconnects_total",
            "corosync sessions lost.",
            c.reconnects,
        );
        counter(
            "coroha_cpg_mcast_retries_total",
            "Multicasts retried after TRY_AGAIN.",
            c.mcast_retries,
        );
        let _ = writeln!(out, "# HELP coroha_ha_orders_total HA orders by verb and outcome.\n# TYPE coroha_ha_orders_total counter");
        for ((verb, outcome), n) in &self.counters.orders {
            let _ = writeln!(
                out,
                "coroha_ha_orders_total{{verb=\"{verb}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out
    }
}
