//! The Prometheus metrics, kept with prometheus-client and served on
//! `GET /metrics` (OpenMetrics text). Counters and histograms count what
//! happens as it happens; the gauges are read from the status and the
//! corosync view at each scrape, so they are never older than the last
//! event. docs/operations.md lists them.

use crate::corosync::CorosyncView;
use confd_ha::HaRole;
use coroha_policy::freshness::DataState;
use coroha_policy::{Action, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    pub role: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleChangeLabels {
    pub from: &'static str,
    pub to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrderLabels {
    pub verb: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabel {
    pub verb: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    pub hook: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeStateLabels {
    pub node: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeRoleLabels {
    pub node: String,
    pub role: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Hook runs by hook and outcome, shared with the tasks that run them.
pub type HookRuns = Family<HookLabels, Counter>;

/// Count one hook run.
pub fn count_hook(runs: &HookRuns, hook: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    runs.get_or_create(&HookLabels {
        hook: hook.to_string(),
        outcome,
    })
    .inc();
}

const ROLES: [HaRole; 4] = [
    HaRole::None,
    HaRole::Secondary,
    HaRole::Primary,
    HaRole::Relay,
];

const DATA_STATES: [(DataState, &str); 4] = [
    (DataState::InSync, "in_sync"),
    (DataState::Behind, "behind"),
    (DataState::Diverged, "diverged"),
    (DataState::Unknown, "unknown"),
];

/// Every metric of the daemon, registered once.
pub struct Metrics {
    registry: Registry,
    // Counted as things happen.
    pub role_changes: Family<RoleChangeLabels, Counter>,
    pub orders: Family<OrderLabels, Counter>,
    pub order_seconds: Family<VerbLabel, Histogram>,
    pub failover_seconds: Histogram,
    pub decisions: Family<CauseLabel, Counter>,
    pub fences: Counter,
    pub hooks: HookRuns,
    pub ha_events: Counter,
    pub last_role_change: Gauge<f64, std::sync::atomic::AtomicU64>,
    // Read at each scrape.
    quorate: Gauge,
    writable: Gauge,
    epoch: Gauge,
    max_epoch: Gauge,
    corosync_connected: Gauge,
    ring_members: Gauge,
    group_members: Gauge,
    stopping: Gauge,
    paused: Gauge,
    actions_needed: Gauge,
    role: Family<RoleLabel, Gauge>,
    member_data: Family<NodeStateLabels, Gauge>,
    member_role: Family<NodeRoleLabels, Gauge>,
    node_in_group: Family<NodeLabel, Gauge>,
    config_differs: Family<NodeLabel, Gauge>,
    corosync_reconnects: Counter,
    mcast_retries: Counter,
}

fn histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            role_changes: Family::default(),
            orders: Family::default(),
            order_seconds: Family::new_with_constructor(histogram),
            failover_seconds: histogram(),
            decisions: Family::default(),
            fences: Counter::default(),
            hooks: Family::default(),
            ha_events: Counter::default(),
            last_role_change: Gauge::default(),
            quorate: Gauge::default(),
            writable: Gauge::default(),
            epoch: Gauge::default(),
            max_epoch: Gauge::default(),
            corosync_connected: Gauge::default(),
            ring_members: Gauge::default(),
            group_members: Gauge::default(),
            stopping: Gauge::default(),
            paused: Gauge::default(),
            actions_needed: Gauge::default(),
            role: Family::default(),
            member_data: Family::default(),
            member_role: Family::default(),
            node_in_group: Family::default(),
            config_differs: Family::default(),
            corosync_reconnects: Counter::default(),
            mcast_retries: Counter::default(),
            registry: Registry::default(),
        };
        // A gauge of 1, not OpenMetrics' `info` type: Prometheus rejects
        // that in some versions and setups (2.42 in the lab did).
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("coroha_build_info", "This coroha's version.", build);
        // Counters get their `_total` suffix from the library.
        r.register(
            "coroha_role_changes",
            "Role changes of the local NSO/ConfD, by the roles before and after.",
            m.role_changes.clone(),
        );
        r.register(
            "coroha_ha_orders",
            "HA orders by verb and outcome (ok, error, timeout, unreachable).",
            m.orders.clone(),
        );
        r.register(
            "coroha_ha_order_duration_seconds",
            "How long HA orders took to be answered, by verb.",
            m.order_seconds.clone(),
        );
        r.register(
            "coroha_failover_seconds",
            "From the moment this node's plan stopped naming another node as primary to this \
             node's promotion: what coroha adds to corosync's detection in a failover or a \
             switchover.",
            m.failover_seconds.clone(),
        );
        r.register(
            "coroha_decisions",
            "Changes of the planned primary, by the kind of decision (freshest, replaces, \
             switchover, failback, orphan_kept, ...).",
            m.decisions.clone(),
        );
        r.register("coroha_fences", "Fence hook runs.", m.fences.clone());
        r.register(
            "coroha_hook_runs",
            "Hook runs by hook and outcome (ok, failed: an error exit or the time limit).",
            m.hooks.clone(),
        );
        r.register(
            "coroha_ha_events",
            "HA notifications received.",
            m.ha_events.clone(),
        );
        r.register(
            "coroha_last_role_change_timestamp_seconds",
            "When the local NSO/ConfD last changed role (Unix time; 0: not since the history \
             began).",
            m.last_role_change.clone(),
        );
        let gauges = [
            (
                "coroha_quorate",
                "1 when this node may act: the view is stable and quorate.",
                &m.quorate,
            ),
            (
                "coroha_writable",
                "1 when the local NSO/ConfD takes commits: primary, with the lease and quorum.",
                &m.writable,
            ),
            ("coroha_epoch", "Epoch of the local role.", &m.epoch),
            (
                "coroha_max_epoch",
                "Highest election epoch seen (persisted).",
                &m.max_epoch,
            ),
            (
                "coroha_corosync_connected",
                "1 while connected to corosync.",
                &m.corosync_connected,
            ),
            (
                "coroha_ring_members",
                "Nodes in the corosync ring.",
                &m.ring_members,
            ),
            (
                "coroha_group_members",
                "coroha daemons in the CPG group.",
                &m.group_members,
            ),
            ("coroha_stopping", "1 during an orderly stop.", &m.stopping),
            (
                "coroha_paused",
                "1 while the cluster is paused (coroha pause): no role changes.",
                &m.paused,
            ),
            (
                "coroha_actions_needed",
                "What the cluster waits for the operator to do (coroha status says what).",
                &m.actions_needed,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        r.register(
            "coroha_role",
            "The local NSO/ConfD role (1 for the current one).",
            m.role.clone(),
        );
        r.register(
            "coroha_member_data",
            "Each member's data against the freshest anybody announced (CDB transaction id, \
             design §6): 1 for its current state.",
            m.member_data.clone(),
        );
        r.register(
            "coroha_member_role",
            "Each member's NSO/ConfD role as it announced it: 1 for the current one.",
            m.member_role.clone(),
        );
        r.register(
            "coroha_node_in_group",
            "Each configured node: 1 while its coroha is in the group here, 0 while it is \
             absent (stopped, or its node down or cut off).",
            m.node_in_group.clone(),
        );
        r.register(
            "coroha_config_differs",
            "1 for a member whose node table or policy differs from this node's.",
            m.config_differs.clone(),
        );
        r.register(
            "coroha_corosync_reconnects",
            "corosync sessions lost.",
            m.corosync_reconnects.clone(),
        );
        r.register(
            "coroha_cpg_mcast_retries",
            "Multicasts retried after TRY_AGAIN.",
            m.mcast_retries.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// An HA order answered after `took`.
    pub fn order(&self, verb: &'static str, outcome: &'static str, took: Duration) {
        self.orders
            .get_or_create(&OrderLabels { verb, outcome })
            .inc();
        self.order_seconds
            .get_or_create(&VerbLabel { verb })
            .observe(took.as_secs_f64());
    }

    /// The exposition, with the gauges read from `s` and `c` now.
    pub fn render(&self, s: &Status, c: &CorosyncView) -> String {
        self.quorate.set(i64::from(s.quorate));
        self.writable.set(i64::from(s.writable));
        self.epoch.set(s.epoch as i64);
        self.max_epoch.set(s.max_epoch as i64);
        self.corosync_connected.set(i64::from(c.connected));
        self.ring_members.set(c.ring_members.len() as i64);
        self.group_members.set(c.group.len() as i64);
        self.stopping.set(i64::from(s.stopping));
        self.paused.set(i64::from(s.paused));
        self.actions_needed.set(s.actions.len() as i64);
        for role in ROLES {
            let on = i64::from(s.role == Some(role));
            self.role
                .get_or_create(&RoleLabel { role: role.name() })
                .set(on);
        }
        // Members come and go: only the current ones are shown.
        self.member_data.clear();
        self.member_role.clear();
        self.node_in_group.clear();
        self.config_differs.clear();
        for m in &s.members {
            for (state, name) in DATA_STATES {
                let labels = NodeStateLabels {
                    node: m.name.clone(),
                    state: name,
                };
                self.member_data
                    .get_or_create(&labels)
                    .set(i64::from(m.data == state));
            }
            for role in ROLES {
                let labels = NodeRoleLabels {
                    node: m.name.clone(),
                    role: role.name(),
                };
                self.member_role
                    .get_or_create(&labels)
                    .set(i64::from(m.role == Some(role)));
            }
            let node = NodeLabel {
                node: m.name.clone(),
            };
            self.node_in_group.get_or_create(&node).set(1);
            self.config_differs.get_or_create(&node).set(0);
        }
        for a in &s.absent {
            let node = NodeLabel {
                node: a.name.clone(),
            };
            self.node_in_group.get_or_create(&node).set(0);
        }
        for action in &s.actions {
            if let Action::ConfigDiffers { node, .. } = action {
                let node = NodeLabel { node: node.clone() };
                self.config_differs.get_or_create(&node).set(1);
            }
        }
        // corosync's own counts only grow; the counters follow them.
        self.corosync_reconnects
            .inc_by(c.reconnects.saturating_sub(self.corosync_reconnects.get()));
        self.mcast_retries
            .inc_by(c.mcast_retries.saturating_sub(self.mcast_retries.get()));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            out = format!("# cannot encode the metrics: {e}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::samples::{member, status};

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn the_metrics_keep_their_names_and_show_every_node() {
        let m = Metrics::new();
        m.order("beprimary", "ok", Duration::from_millis(12));
        m.role_changes
            .get_or_create(&RoleChangeLabels {
                from: "none",
                to: "primary",
            })
            .inc();
        count_hook(&m.hooks, "on_primary", false);
        let mut s = status(
            "n1",
            vec![
                member("n1", HaRole::Primary, 3, None, false),
                member("n2", HaRole::Secondary, 3, Some("n1"), false),
            ],
        );
        s.absent = vec![coroha_policy::AbsentNode {
            id: 3,
            name: "n3".into(),
            presence: coroha_policy::Presence::Offline,
            orphaned_primary: None,
        }];
        s.actions = vec![Action::ConfigDiffers {
            node: "n2".into(),
            parts: vec![],
        }];
        let view = CorosyncView {
            connected: true,
            reconnects: 2,
            ..CorosyncView::default()
        };
        let text = m.render(&s, &view);
        let got = lines(&text);
        for line in [
            "coroha_quorate 1",
            "coroha_writable 1",
            "coroha_role{role=\"primary\"} 1",
            "coroha_role{role=\"none\"} 0",
            "coroha_member_data{node=\"n2\",state=\"in_sync\"} 1",
            "coroha_member_role{node=\"n2\",role=\"secondary\"} 1",
            "coroha_node_in_group{node=\"n1\"} 1",
            "coroha_node_in_group{node=\"n3\"} 0",
            "coroha_config_differs{node=\"n2\"} 1",
            "coroha_config_differs{node=\"n1\"} 0",
            "coroha_ha_orders_total{verb=\"beprimary\",outcome=\"ok\"} 1",
            "coroha_ha_order_duration_seconds_count{verb=\"beprimary\"} 1",
            "coroha_role_changes_total{from=\"none\",to=\"primary\"} 1",
            "coroha_hook_runs_total{hook=\"on_primary\",outcome=\"failed\"} 1",
            "coroha_corosync_reconnects_total 2",
            "# EOF",
        ] {
            assert!(got.contains(&line), "{line} in\n{text}");
        }
        let build = format!(
            "coroha_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(got.contains(&build.as_str()), "{build} in\n{text}");
        // A scrape later: the counters follow corosync's, not double them.
        let again = m.render(&s, &view);
        assert!(lines(&again).contains(&"coroha_corosync_reconnects_total 2"));
    }
}
