//! `coroha run`: the edges around the policy. corosync events, HA replies
//! and notifications, signals, operator requests and timers go in; the
//! policy's outputs come out as CPG multicasts, HA orders, fsynced state,
//! hooks and log lines. Nothing here decides anything.

pub mod cli;
pub mod control;
pub mod hooks;
pub mod state;

use crate::cluster::corosync::{self, Corosync, CorosyncNode};
use crate::cluster::{ClusterEvent, NodeId};
use crate::config::{error_lines, key_offset, Config, ConfigError};
use crate::ha::client::ClientOptions;
use crate::ha::session::{Backoff, HaNotices, HaSession, Notice};
use crate::ha::{HaEvent, HaFailure, HaOrder, HaReply, HaRole};
use crate::policy::{Brief, Input, Level, Operator, Output, Policy, Settings};
use control::{Ask, Request};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub log_format: LogFormat,
    /// How long to wait for corosync at start before giving up.
    pub wait_corosync: Duration,
}

/// Set up logging: `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

pub fn main(opts: RunOptions) -> ExitCode {
    init_logging(opts.log_format);
    let config = match Config::load(&opts.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coroha run: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(opts, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("coroha run: {e}");
            notify(&[sd_notify::NotifyState::Status(&format!("failed: {e}"))]);
            ExitCode::from(1)
        }
    }
}

fn notify(state: &[sd_notify::NotifyState]) {
    // Not under systemd: NOTIFY_SOCKET is unset and this is a no-op.
    let _ = sd_notify::notify(false, state);
}

/// Which configured node this is; refuses config nodes corosync does not
/// know, with the position of the offending table.
pub fn check_nodes(
    config: &Config,
    text: &str,
    file: &str,
    local: NodeId,
    corosync: &[CorosyncNode],
) -> Result<NodeId, Vec<ConfigError>> {
    let err = |offset: usize, message: String| ConfigError::at(text, file, offset, message);
    let known: Vec<String> = corosync.iter().map(|n| n.id.to_string()).collect();
    let mut errors = Vec::new();
    for node in &config.nodes {
        let n = node.get_ref();
        if !corosync.iter().any(|c| c.id == n.id) {
            errors.push(err(
                node.span().start,
                format!(
                    "node {:?}: id {} is not in corosync's nodelist (it has ids {}): expected the nodeid of a corosync node",
                    n.name,
                    n.id,
                    known.join(", ")
                ),
            ));
        }
    }
    let me = match &config.cluster.node {
        Some(name) => match config.node_by_name(name) {
            Some(n) if n.id == local => Some(n.id),
            Some(n) => {
                errors.push(err(
                    key_offset(text, "cluster", "node"),
                    format!(
                        "[cluster] node = {name:?} has id {}, but the local corosync is node {local}",
                        n.id
                    ),
                ));
                None
            }
            None => None, // already refused by Config::parse
        },
        None => match config.node_by_id(local) {
            Some(n) => Some(n.id),
            None => {
                errors.push(err(
                    0,
                    format!("the local corosync is node {local}, and no [[node]] has id = {local}: expected this node in the configuration"),
                ));
                None
            }
        },
    };
    match me {
        Some(me) if errors.is_empty() => Ok(me),
        _ => Err(errors),
    }
}

/// Read corosync's node list, waiting up to `wait` for corosync to start.
async fn corosync_nodes(wait: Duration) -> Result<(NodeId, Vec<CorosyncNode>), String> {
    let until = Instant::now() + wait;
    let mut said = false;
    loop {
        match corosync::read_nodelist() {
            Ok(x) => return Ok(x),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(e) => {
                if !said {
                    tracing::warn!("{e}; waiting up to {} s", wait.as_secs());
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Counters for the metrics.
#[derive(Default)]
struct Counters {
    role_changes: u64,
    orders: BTreeMap<(&'static str, &'static str), u64>,
    fences: u64,
    ha_events: u64,
}

struct Daemon {
    config: Config,
    config_path: PathBuf,
    me: NodeId,
    name: String,
    policy: Policy,
    state: state::StateDir,
    corosync: Corosync,
    start: Instant,
    orders: mpsc::UnboundedSender<(u64, HaOrder)>,
    in_flight: BTreeMap<u64, &'static str>,
    role_hooks: mpsc::UnboundedSender<(hooks::RoleChange, crate::config::HooksConfig)>,
    fence_done: mpsc::UnboundedSender<bool>,
    counters: Counters,
    ready: bool,
    /// What systemd was last told.
    systemd_status: Option<Brief>,
}

async fn run(opts: RunOptions, config: Config) -> Result<(), String> {
    let (text, file) = crate::config::read_located(&opts.config).map_err(|e| e[0].to_string())?;
    let (local, corosync_nodes) = corosync_nodes(opts.wait_corosync).await?;
    let me = check_nodes(&config, &text, &file, local, &corosync_nodes)
        .map_err(|errors| error_lines(&errors))?;
    for c in &corosync_nodes {
        if config.node_by_id(c.id).is_none() {
            tracing::warn!(
                "corosync node {} ({}) is not in the configuration: its vote counts, but it can hold no HA role",
                c.id,
                c.name.as_deref().unwrap_or("unnamed")
            );
        }
    }
    let name = config
        .node_by_id(me)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let mut state = state::StateDir::open(&config.cluster.state_dir)?;
    let persisted = state.load()?;
    let ha_opts = ClientOptions::from_config(&config.ha)?;
    let control = control::bind(&config.control.socket).await?;
    let metrics = match &config.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("[metrics] listen {addr}: {e}"))?,
        ),
        None => None,
    };
    tracing::info!(
        "coroha {} starting as node {name} (corosync node {me}); epoch {} from {}",
        env!("CARGO_PKG_VERSION"),
        persisted.max_epoch,
        state.path().display()
    );

    let (asks_tx, mut asks) = mpsc::channel::<Ask>(16);
    control::serve_control(control, asks_tx.clone());
    if let Some(listener) = metrics {
        control::serve_metrics(listener, asks_tx.clone());
    }
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let orders = spawn_ha_orders(ha_opts.clone(), replies_tx);
    let (events_tx, mut ha_events) = mpsc::unbounded_channel();
    spawn_ha_notices(ha_opts, events_tx);
    let (fence_done, mut fences) = mpsc::unbounded_channel();
    let ids = config.nodes.iter().map(|n| n.get_ref().id).collect();
    let (corosync, mut cluster_events) = Corosync::start(config.cluster.group.clone(), ids)
        .map_err(|e| format!("cannot start the corosync thread: {e}"))?;

    let settings = Settings::from_config(&config, me);
    let mut d = Daemon {
        policy: Policy::new(settings, persisted),
        config,
        config_path: opts.config.clone(),
        me,
        name,
        state,
        corosync,
        start: Instant::now(),
        orders,
        in_flight: BTreeMap::new(),
        role_hooks: hooks::spawn_role_runner(),
        fence_done,
        counters: Counters::default(),
        ready: false,
        systemd_status: None,
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| {
        let mut t = tokio::time::interval(Duration::from_micros(usec / 2));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut watchdog = watchdog;

    loop {
        let deadline = d
            .policy
            .next_deadline()
            .map(|ms| d.start + Duration::from_millis(ms));
        let input = tokio::select! {
            ev = cluster_events.recv() => match ev {
                Some(ev) => Some(Input::Cluster(ev)),
                None => return Err("the corosync thread ended".into()),
            },
            Some((id, result)) = replies.recv() => {
                d.count_reply(id, &result);
                Some(Input::HaReply { id, result })
            }
            Some(ev) = ha_events.recv() => {
                d.counters.ha_events += 1;
                tracing::info!(target: "coroha::ha", "HA event: {ev:?}");
                Some(Input::HaEvent(ev))
            }
            Some(ok) = fences.recv() => Some(Input::FenceDone { ok }),
            Some((req, answer)) = asks.recv() => {
                let (input, reply) = d.request(req);
                let _ = answer.send(reply);
                input
            }
            _ = sigterm.recv() => d.stop_signal("SIGTERM"),
            _ = sigint.recv() => d.stop_signal("SIGINT"),
            _ = sighup.recv() => { d.reload(); Some(Input::Timer) }
            _ = sleep_until(deadline) => Some(Input::Timer),
            _ = tick(&mut watchdog) => { notify(&[sd_notify::NotifyState::Watchdog]); None }
        };
        let Some(input) = input else { continue };
        if d.step(input)? {
            break;
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("leaving the CPG group");
    d.corosync.leave();
    // Let the answer to a `coroha stop` request reach the operator.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = std::fs::remove_file(&d.config.control.socket);
    tracing::info!("stopped");
    Ok(())
}

/// corosync's membership as this daemon receives it: one line per change
/// (the lab measures failover from these lines).
fn log_membership(ev: &ClusterEvent) {
    let pids = |l: &[(crate::cluster::Member, crate::cluster::Reason)]| {
        l.iter()
            .map(|(m, r)| format!("{}/{} {r:?}", m.node, m.pid))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match ev {
        ClusterEvent::CpgConfChg {
            members,
            left,
            joined,
        } => tracing::info!(
            target: "coroha::corosync",
            "CPG group: {} daemons; left [{}]; joined [{}]",
            members.len(),
            pids(left),
            pids(joined)
        ),
        ClusterEvent::QuorumNodes { ring, members } => {
            tracing::info!(target: "coroha::corosync", "ring {ring}: nodes {members:?}")
        }
        ClusterEvent::Quorum { quorate, needed } => tracing::info!(
            target: "coroha::corosync",
            "quorum: {} ({needed} votes needed)",
            if *quorate { "quorate" } else { "NOT quorate" }
        ),
        ClusterEvent::CpgTotem { ring, members } => {
            tracing::debug!(target: "coroha::corosync", "totem ring {ring}: {members:?}")
        }
        _ => {}
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// An HA order slower than this is logged: every order, the periodic
/// status probe included, holds up the next one (the server serves one HA
/// socket, in order), so a slow server slows failover.
const SLOW_ORDER: Duration = Duration::from_millis(50);

/// The HA control socket: orders run one at a time, in the order given,
/// like the server runs them.
fn spawn_ha_orders(
    opts: ClientOptions,
    replies: mpsc::UnboundedSender<(u64, Result<HaReply, HaFailure>)>,
) -> mpsc::UnboundedSender<(u64, HaOrder)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, HaOrder)>();
    tokio::spawn(async move {
        let mut session = HaSession::new(opts, Backoff::default());
        let mut unreachable = false;
        while let Some((id, order)) = rx.recv().await {
            let sent = Instant::now();
            let answer = session.call(&order).await;
            let took = sent.elapsed();
            if took > SLOW_ORDER {
                tracing::warn!(target: "coroha::ha", "order {id} ({}) took {} ms", order.verb(), took.as_millis());
            } else {
                tracing::trace!(target: "coroha::ha", "order {id} ({}) took {} us", order.verb(), took.as_micros());
            }
            let result = match answer {
                Ok(reply) => {
                    if unreachable {
                        tracing::info!(target: "coroha::ha", "NSO/ConfD answers again");
                        unreachable = false;
                    }
                    HaReply::from_wire(reply.as_ref())
                }
                Err(e) => {
                    let failure = e.failure();
                    if failure != HaFailure::Unreachable || !unreachable {
                        tracing::warn!(target: "coroha::ha", "{}: {e}", order.verb());
                    }
                    unreachable = failure == HaFailure::Unreachable;
                    Err(failure)
                }
            };
            if replies.send((id, result)).is_err() {
                return;
            }
        }
    });
    tx
}

fn spawn_ha_notices(opts: ClientOptions, events: mpsc::UnboundedSender<HaEvent>) {
    tokio::spawn(async move {
        let mut notices = HaNotices::new(opts, false, Backoff::default());
        let mut lost = false;
        loop {
            match notices.next().await {
                Notice::Event(e) => {
                    if events.send(HaEvent::from_wire(&e)).is_err() {
                        return;
                    }
                }
                Notice::Subscribed => {
                    tracing::info!(target: "coroha::ha", "subscribed to HA notifications");
                    lost = false;
                }
                Notice::Lost(e) => {
                    if !lost {
                        tracing::warn!(target: "coroha::ha", "HA notifications: {e}; resubscribing");
                    }
                    lost = true;
                }
            }
        }
    });
}

impl Daemon {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// One policy step and its outputs, in order. True when the daemon
    /// should leave. A state that cannot be made durable stops the daemon
    /// before the order that relies on it is sent.
    fn step(&mut self, input: Input) -> Result<bool, String> {
        let connected = matches!(input, Input::Cluster(ClusterEvent::Connected { .. }));
        if let Input::Cluster(ev) = &input {
            log_membership(ev);
        }
        let outputs = self.policy.step(self.now(), input);
        let mut leave = false;
        for out in outputs {
            match out {
                Output::Multicast(data) => self.corosync.multicast(data),
                Output::Order { id, order } => {
                    tracing::debug!(target: "coroha::ha", "order {id}: {}", order.verb());
                    self.in_flight.insert(id, order.verb());
                    let _ = self.orders.send((id, order));
                }
                Output::Persist(p) => {
                    let started = Instant::now();
                    self.state.store(&p).map_err(|e| {
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
                }
                Output::Fence => self.fence(),
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
        if connected && !self.ready {
            self.ready = true;
            notify(&[sd_notify::NotifyState::Ready]);
        }
        self.update_systemd_status();
        Ok(leave)
    }

    fn count_reply(&mut self, id: u64, result: &Result<HaReply, HaFailure>) {
        let verb = self.in_flight.remove(&id).unwrap_or("unknown");
        let outcome = match result {
            Ok(_) => "ok",
            Err(HaFailure::Error(_)) => "error",
            Err(HaFailure::Timeout) => "timeout",
            Err(HaFailure::Unreachable) => "unreachable",
        };
        *self.counters.orders.entry((verb, outcome)).or_default() += 1;
    }

    fn role_changed(&mut self, from: Option<HaRole>, to: HaRole, cause: String) {
        self.counters.role_changes += 1;
        let before = from.map_or("unknown", HaRole::name);
        let epoch = self.policy.brief().epoch;
        tracing::info!(
            target: "coroha::role",
            node = %self.name,
            from = before,
            to = to.name(),
            epoch,
            cause = %cause,
            "role {before} -> {}: {cause}",
            to.name()
        );
        let change = hooks::RoleChange {
            node: self.name.clone(),
            from,
            to,
            cause,
            epoch,
        };
        let _ = self.role_hooks.send((change, self.config.hooks.clone()));
    }

    fn fence(&mut self) {
        self.counters.fences += 1;
        let hooks = self.config.hooks.clone();
        let done = self.fence_done.clone();
        let env = vec![("COROHA_NODE", self.name.clone())];
        tracing::warn!("running the fence hook");
        tokio::spawn(async move {
            let ok = if hooks.fence.is_empty() {
                tracing::error!("fence requested but [hooks] fence is empty");
                false
            } else {
                hooks::run("fence", &hooks.fence, &env, hooks.timeout.0).await
            };
            let _ = done.send(ok);
        });
    }

    fn stop_signal(&mut self, which: &str) -> Option<Input> {
        if self.policy.stopping() {
            tracing::info!("{which}: already stopping (bounded by policy.handover_timeout)");
            return None;
        }
        tracing::info!("{which}: orderly stop");
        notify(&[sd_notify::NotifyState::Stopping]);
        Some(Input::Operator(Operator::Stop { handover: true }))
    }

    fn reload(&mut self) {
        tracing::info!("SIGHUP: reloading {}", self.config_path.display());
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(errors) => {
                for e in errors {
                    tracing::error!("reload refused, the running configuration stays: {e}");
                }
                return;
            }
        };
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
        self.policy
            .reload(Settings::from_config(&self.config, self.me));
    }

    fn known_node(&self, name: &str) -> Result<(), serde_json::Value> {
        match self.config.node_by_name(name) {
            Some(_) => Ok(()),
            None => Err(
                json!({"ok": false, "error": format!("no node named {name:?} in the configuration")}),
            ),
        }
    }

    /// Answer an operator request; some become policy inputs.
    fn request(&mut self, req: Request) -> (Option<Input>, serde_json::Value) {
        let ok = json!({"ok": true});
        let op = |o: Operator| Some(Input::Operator(o));
        match req {
            Request::Status => (None, json!({"ok": true, "status": self.status_json()})),
            Request::Metrics => (None, serde_json::Value::String(self.metrics())),
            Request::Switchover { to } => {
                if let Some(Err(e)) = to.as_deref().map(|n| self.known_node(n)) {
                    return (None, e);
                }
                tracing::info!(
                    "operator: switchover to {}",
                    to.as_deref().unwrap_or("the best other node")
                );
                (op(Operator::Switchover { to }), ok)
            }
            Request::Standby { node, on } => match self.known_node(&node) {
                Err(e) => (None, e),
                Ok(()) => {
                    tracing::info!("operator: standby {node} {}", if on { "on" } else { "off" });
                    (op(Operator::Standby { node, on }), ok)
                }
            },
            Request::ConfirmDown { node } => match self.known_node(&node) {
                Err(e) => (None, e),
                Ok(()) => {
                    tracing::warn!("operator confirms that {node}'s NSO/ConfD is down");
                    (op(Operator::ConfirmDown { node }), ok)
                }
            },
            Request::Stop { keep_roles } => {
                if keep_roles {
                    tracing::info!("operator: maintenance stop, every role stays as it is");
                    (op(Operator::Stop { handover: false }), ok)
                } else {
                    (self.stop_signal("operator stop"), ok)
                }
            }
        }
    }

    fn status_json(&self) -> serde_json::Value {
        json!({
            "policy": self.policy.status(),
            "corosync": *self.corosync.view.borrow(),
        })
    }

    /// systemd STATUS, sent when what it says changes (checked after every
    /// step, so only the cheap brief is compared).
    fn update_systemd_status(&mut self) {
        let b = self.policy.brief();
        if self.systemd_status == Some(b) {
            return;
        }
        self.systemd_status = Some(b);
        let primary = b.primary.and_then(|id| self.config.node_by_id(id));
        let text = format!(
            "{} (epoch {}), {}, primary {}",
            b.role.map_or("unknown", HaRole::name),
            b.epoch,
            if b.quorate { "quorate" } else { "not quorate" },
            primary.map_or("none", |n| n.name.as_str())
        );
        notify(&[sd_notify::NotifyState::Status(&text)]);
    }

    /// Prometheus text exposition.
    fn metrics(&self) -> String {
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

/// The control socket named by a config file (for the operator commands).
pub fn control_socket(config: &Path) -> Result<PathBuf, String> {
    Config::load(config)
        .map(|c| c.control.socket)
        .map_err(|errors| error_lines(&errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"[[node]]
name = "n1"
id = 1
address = "10.0.0.1"

[[node]]
name = "n2"
id = 2
address = "10.0.0.2"

[[node]]
name = "n4"
id = 4
address = "10.0.0.4"
"#;

    fn corosync(ids: &[u32]) -> Vec<CorosyncNode> {
        ids.iter()
            .map(|&id| CorosyncNode {
                id,
                name: Some(format!("n{id}")),
            })
            .collect()
    }

    #[test]
    fn a_node_corosync_does_not_know_is_refused_at_its_position() {
        let c = Config::parse(CONFIG, "c.toml").unwrap();
        let errors = check_nodes(&c, CONFIG, "c.toml", 1, &corosync(&[1, 2, 3])).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = errors[0].to_string();
        assert!(
            e.starts_with(
                "c.toml:11:1: node \"n4\": id 4 is not in corosync's nodelist (it has ids 1, 2, 3)"
            ),
            "{e}"
        );
    }

    #[test]
    fn this_node_is_found_by_its_corosync_id() {
        let c = Config::parse(CONFIG, "c.toml").unwrap();
        assert_eq!(
            check_nodes(&c, CONFIG, "c.toml", 2, &corosync(&[1, 2, 4])),
            Ok(2)
        );
        let errors = check_nodes(&c, CONFIG, "c.toml", 3, &corosync(&[1, 2, 3, 4])).unwrap_err();
        assert!(
            errors[0]
                .message
                .contains("the local corosync is node 3, and no [[node]] has id = 3"),
            "{errors:?}"
        );
    }

    #[test]
    fn cluster_node_must_be_the_local_corosync_node() {
        let text = format!("[cluster]\nnode = \"n2\"\n\n{CONFIG}");
        let c = Config::parse(&text, "c.toml").unwrap();
        let errors = check_nodes(&c, &text, "c.toml", 1, &corosync(&[1, 2, 4])).unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (2, 1));
        assert!(
            errors[0]
                .message
                .contains("has id 2, but the local corosync is node 1"),
            "{errors:?}"
        );
    }

    #[test]
    fn status_renders_for_an_operator() {
        let status = json!({
            "policy": {"node": "n1", "role": "Primary", "epoch": 3, "health": "Ok", "standby": false,
                       "stopping": false, "primary": "n1", "plan": "n1 stays primary", "quorate": true,
                       "pending": null,
                       "members": [{"name": "n1", "role": "Primary", "epoch": 3, "parent": null, "health": "Ok",
                                    "standby": false, "leaving": false},
                                   {"name": "n2", "role": "Secondary", "epoch": 3, "parent": "n1", "health": "Ok",
                                    "standby": true, "leaving": false}]},
            "corosync": {"connected": true, "ring": {"rep": 1, "seq": 30}, "ring_members": [1, 2],
                         "quorum": 2, "expected_votes": 3, "group": [{"node": 1, "pid": 5}, {"node": 2, "pid": 6}]}
        });
        let text = cli::render_status(&status);
        assert!(
            text.starts_with("node n1: primary (epoch 3), NSO/ConfD ok\n"),
            "{text}"
        );
        assert!(text.contains("corosync: quorate, ring 1.1e [1, 2], 2 of 3 expected votes needed, 2 coroha daemons"), "{text}");
        assert!(
            text.contains("n2           secondary       3  n1         ok         standby"),
            "{text}"
        );
    }
}
