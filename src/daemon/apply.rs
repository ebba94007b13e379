//! Carrying out one policy step: persist, multicast, order, hooks, in the
//! order the policy gave them; signals and SIGHUP reload.

use super::event_loop::log_membership;
use super::ha_tasks::{IpcRequest, SLOW_ORDER};
use super::history::Kind;
use super::{hooks, metrics, notify, Daemon};
use confd_ha::{HaFailure, HaReply, HaRole};
use coroha_config::Config;
use coroha_policy::cluster::ClusterEvent;
use coroha_policy::{Input, Level, Operator, Output, Persisted};
use tokio::time::Instant;

impl Daemon {
    pub(super) fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// One policy step and its outputs, in order. True when the daemon
    /// should leave. A state that cannot be made durable stops the daemon
    /// before the order that relies on it is sent.
    pub(super) fn step(&mut self, input: Input) -> Result<bool, String> {
        let connected = matches!(input, Input::Cluster(ClusterEvent::Connected { .. }));
        if let Input::Cluster(ev) = &input {
            log_membership(ev);
        }
        let ready = self.policy.step(self.now(), input);
        let outputs = ready.persist_then(|state| self.persist(state))?;
        let mut leave = false;
        for out in outputs {
            match out {
                Output::Multicast(message) => self.corosync.multicast(message.encode()),
                Output::Order { id, order } => {
                    tracing::debug!(target: "coroha::ha", "order {id}: {}", order.verb());
                    self.in_flight.insert(id, (order.verb(), Instant::now()));
                    let _ = self.orders.send((id, order));
                }
                Output::Fence => self.fence(),
                Output::ReadOnly(on) => {
                    let _ = self.read_only.send(IpcRequest::ReadOnly(on));
                }
                Output::ReadTxid => {
                    let _ = self.txid.send(IpcRequest::Txid);
                }
                Output::FenceNode { node } => self.fence_node(node),
                Output::RoleChanged { from, to, cause } => self.role_changed(from, to, cause),
                Output::Log { level, text } => match level {
                    Level::Debug => tracing::debug!(target: "coroha::policy", "{text}"),
                    Level::Info => tracing::info!(target: "coroha::policy", "{text}"),
                    Level::Warn => tracing::warn!(target: "coroha::policy", "{text}"),
                    Level::Error => tracing::error!(target: "coroha::policy", "{text}"),
                },
                Output::Leave => leave = true,
            }
        }
        self.record_decision();
        if connected && !self.ready {
            self.ready = true;
            notify(&[sd_notify::NotifyState::Ready]);
        }
        self.update_systemd_status();
        Ok(leave)
    }

    /// Write and fsync the election state; the step's outputs wait for it.
    fn persist(&mut self, state: &Persisted) -> Result<(), String> {
        let started = Instant::now();
        self.state.store(state).map_err(|e| {
            format!(
                "cannot persist the election state to {}: {e}; stopping before acting on it",
                self.state.path().display()
            )
        })?;
        let took = started.elapsed();
        if took > SLOW_ORDER {
            tracing::warn!(
                "persisting the election state took {} ms (the disk delays failover)",
                took.as_millis()
            );
        } else {
            tracing::debug!("election state persisted in {} us", took.as_micros());
        }
        Ok(())
    }

    pub(super) fn count_reply(&mut self, id: u64, result: &Result<HaReply, HaFailure>) {
        let Some((verb, sent)) = self.in_flight.remove(&id) else {
            return;
        };
        let outcome = match result {
            Ok(_) => "ok",
            Err(HaFailure::Error(_)) => "error",
            Err(HaFailure::Timeout) => "timeout",
            Err(HaFailure::Unreachable) => "unreachable",
        };
        self.metrics.order(verb, outcome, sent.elapsed());
    }

    pub(super) fn role_changed(&mut self, from: Option<HaRole>, to: HaRole, cause: String) {
        let before = from.map_or("unknown", HaRole::name);
        self.metrics
            .role_changes
            .get_or_create(&metrics::RoleChangeLabels {
                from: before,
                to: to.name(),
            })
            .inc();
        if to == HaRole::Primary {
            if let Some(seen) = self.other_primary_seen.take() {
                self.metrics
                    .failover_seconds
                    .observe(seen.elapsed().as_secs_f64());
            }
        }
        let epoch = self.policy.brief().epoch;
        // Named as the hooks' environment: the journal shows COROHA_ROLE,
        // COROHA_PREVIOUS_ROLE, COROHA_EPOCH, COROHA_CAUSE, COROHA_NODE.
        tracing::info!(
            target: "coroha::role",
            node = %self.name,
            previous_role = before,
            role = to.name(),
            epoch,
            cause = %cause,
            "role {before} -> {}: {cause}",
            to.name()
        );
        let change = self.history.record(
            &self.name,
            epoch,
            Kind::RoleChange,
            format!("role {before} -> {}: {cause}", to.name()),
        );
        self.metrics.last_role_change.set(change.at as f64 / 1000.0);
        self.last_change = Some(change);
        let change = hooks::RoleChange {
            node: self.name.clone(),
            from,
            to,
            cause,
            epoch,
        };
        self.published_role.send_replace(Some((change.to, epoch)));
        let _ = self.role_hooks.send((change, self.config.hooks.clone()));
    }

    /// A new primary in the plan: a decision for the history.
    fn record_decision(&mut self) {
        let brief = self.policy.brief();
        if brief.quorate && brief.primary.is_some_and(|p| p != self.me) {
            self.other_primary_seen = Some(Instant::now());
        }
        if !brief.quorate || brief.primary == self.recorded_primary || brief.primary.is_none() {
            return;
        }
        self.recorded_primary = brief.primary;
        if let Some(plan) = self.policy.plan() {
            let cause = plan.cause.kind();
            self.metrics
                .decisions
                .get_or_create(&metrics::CauseLabel { cause })
                .inc();
        }
        let (cause, epoch) = self
            .policy
            .plan()
            .map_or((None, 0), |p| (Some(p.cause.to_string()), p.epoch));
        let primary = brief.primary.and_then(|id| self.config.node_by_id(id));
        self.history.record(
            &self.name,
            epoch,
            Kind::Decision,
            format!(
                "primary {}: {}",
                primary.map_or("?", |n| n.name.as_str()),
                cause.as_deref().unwrap_or("-")
            ),
        );
    }

    pub(super) fn fence(&mut self) {
        self.metrics.fences.inc();
        let runs = self.metrics.hooks.clone();
        let hooks = self.config.hooks.clone();
        let done = self.done.clone();
        let env = vec![("COROHA_NODE", self.name.clone())];
        tracing::warn!("running the fence hook");
        let (history, node, epoch) = self.history_context();
        history.record(
            &node,
            epoch,
            Kind::Fence,
            "fence hook: stopping this node's NSO/ConfD",
        );
        tokio::spawn(async move {
            let ok = if hooks.fence.is_empty() {
                tracing::error!("fence requested but [hooks] fence is empty");
                false
            } else {
                hooks::run("fence", &hooks.fence, &env, hooks.timeout.0).await
            };
            metrics::count_hook(&runs, "fence", ok);
            if !ok {
                history.record(
                    &node,
                    epoch,
                    Kind::HookFailed,
                    "fence hook failed (see the log)",
                );
            }
            let _ = done.send(Input::FenceDone { ok });
        });
    }

    /// What a task needs to write to the history later.
    fn history_context(&self) -> (super::history::History, String, u64) {
        (
            self.history.clone(),
            self.name.clone(),
            self.policy.brief().epoch,
        )
    }

    /// The `fence_node` hook against another node: its name replaces an
    /// argument `{node}` and is in COROHA_FENCE_NODE.
    pub(super) fn fence_node(&mut self, node: coroha_policy::cluster::NodeId) {
        let runs = self.metrics.hooks.clone();
        let hooks = self.config.hooks.clone();
        let done = self.done.clone();
        let target = self
            .config
            .node_by_id(node)
            .map_or_else(|| format!("node{node}"), |n| n.name.clone());
        let argv = hooks::fence_node_argv(&hooks.fence_node, &target);
        let env = vec![
            ("COROHA_NODE", self.name.clone()),
            ("COROHA_FENCE_NODE", target.clone()),
        ];
        tracing::warn!("running the fence_node hook against {target}");
        let (history, me, epoch) = self.history_context();
        history.record(
            &me,
            epoch,
            Kind::Fence,
            format!("fence_node hook against {target}"),
        );
        tokio::spawn(async move {
            let ok = if argv.is_empty() {
                tracing::error!("fence_node requested but [hooks] fence_node is empty");
                false
            } else {
                hooks::run("fence_node", &argv, &env, hooks.timeout.0).await
            };
            metrics::count_hook(&runs, "fence_node", ok);
            if !ok {
                let text = format!("fence_node hook against {target} failed (see the log)");
                history.record(&me, epoch, Kind::HookFailed, text);
            }
            let _ = done.send(Input::FenceNodeDone { node, ok });
        });
    }

    pub(super) fn stop_signal(&mut self, which: &str) -> Option<Input> {
        if self.policy.stopping() {
            tracing::info!("{which}: already stopping (bounded by policy.handover_timeout)");
            return None;
        }
        tracing::info!("{which}: orderly stop");
        notify(&[sd_notify::NotifyState::Stopping]);
        Some(Input::Operator(Operator::Stop { handover: true }))
    }

    pub(super) fn reload(&mut self) {
        tracing::info!("SIGHUP: reloading {}", self.config_path.display());
        let mut new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(errors) => {
                for e in errors {
                    tracing::error!("reload refused, the running configuration stays: {e}");
                }
                return;
            }
        };
        if new.policy.lease.is_none() {
            // Derived from corosync's runtime timing at start: unchanged.
            new.policy.lease = self.config.policy.lease;
        }
        let r = self.config.reload(&new);
        for what in &r.needs_restart {
            tracing::warn!("reload: {what} changed; not applied until coroha restarts");
        }
        if r.applied.is_empty() {
            tracing::info!("reload: nothing to apply");
            return;
        }
        tracing::info!("reload: applied {}", r.applied.join(", "));
        self.config = r.config;
        let mut settings = self.config.settings(self.me);
        settings.two_node = self.two_node;
        self.policy.reload(settings);
    }
}
