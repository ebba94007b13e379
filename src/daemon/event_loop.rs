//! The select loop: every input (corosync, HA replies and notifications,
//! fence results, operator requests, signals, the policy's deadline) becomes
//! one policy step; leaving the group and exiting once it says so.

use super::control::Ask;
use super::ha_tasks::{spawn_ha_notices, spawn_ha_orders, spawn_ipc};
use super::setup::{check_nodes, check_totem, corosync_nodes};
use super::{control, history, hooks, http, metrics, notify, state, Daemon, RunOptions};
use crate::corosync::Corosync;
use crate::retry::sleep_until;
use coroha_config::{error_lines, Config};
use coroha_policy::cluster::ClusterEvent;
use coroha_policy::{Input, Policy};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(super) async fn run(opts: RunOptions, config: Config) -> Result<(), String> {
    let (text, file) = coroha_config::read_located(&opts.config).map_err(|e| e[0].to_string())?;
    let (local, corosync_nodes, totem) = corosync_nodes(opts.wait_corosync).await?;
    let me = check_nodes(&config, &text, &file, local, &corosync_nodes)
        .map_err(|errors| error_lines(&errors))?;
    let mut config = config;
    if let (None, Some(detect)) = (config.policy.lease, totem.detection()) {
        let lease = coroha_config::lease_for(detect);
        tracing::info!(
            "lease {lease} ms: 60 % of corosync's runtime token + consensus ({detect} ms)"
        );
        config.policy.lease = Some(coroha_config::Dur::ms(lease));
    }
    let (errors, warnings) = check_totem(&config, &text, &file, &totem);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if !errors.is_empty() {
        return Err(error_lines(&errors));
    }
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
    let history = history::History::open(&config.cluster.state_dir);
    let persisted = state.load()?;
    let ha_opts = crate::ha::client_options(&config.ha)?;
    let control = control::bind(&config.control.socket, config.control.group.as_deref()).await?;
    let http_listener = match &config.http.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("[http] listen {addr}: {e}"))?,
        ),
        None => None,
    };
    let http_tls = match (&config.http.tls_cert, &config.http.tls_key) {
        (Some(cert), Some(key)) => Some(super::tls::acceptor(cert, key)?),
        _ => None,
    };
    let http_token = match &config.http.token_file {
        Some(f) => {
            Some(coroha_config::read_token(f).map_err(|e| format!("[http] token_file: {e}"))?)
        }
        None => None,
    };
    tracing::info!(
        "coroha {} starting as node {name} (corosync node {me}); epoch {} from {}",
        env!("CARGO_PKG_VERSION"),
        persisted.max_epoch,
        state.path().display()
    );

    let (asks_tx, mut asks) = mpsc::channel::<Ask>(16);
    control::serve_control(control, asks_tx.clone(), config.control.admin_group.clone());
    if let Some(listener) = http_listener {
        let routes = http::router(asks_tx.clone(), http_token);
        http::serve(listener, routes, config.http.max_connections, http_tls);
    }
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let (done, mut finished) = mpsc::unbounded_channel();
    let orders = spawn_ha_orders(ha_opts.clone(), replies_tx, done.clone());
    let (events_tx, mut ha_events) = mpsc::unbounded_channel();
    let read_only = spawn_ipc(ha_opts.clone(), false, done.clone());
    let txid = spawn_ipc(ha_opts.clone(), true, done.clone());
    spawn_ha_notices(ha_opts, events_tx, done.clone());
    let ids = config.nodes.iter().map(|n| n.get_ref().id).collect();
    let (corosync, mut cluster_events) = Corosync::start(config.cluster.group.clone(), ids)
        .map_err(|e| format!("cannot start the corosync thread: {e}"))?;

    let mut settings = config.settings(me);
    settings.two_node = totem.two_node;
    let metrics = metrics::Metrics::new();
    let (role_hooks, role_hook_runner) =
        hooks::spawn_role_runner(history.clone(), metrics.hooks.clone());
    let (published_role, roles) = tokio::sync::watch::channel(None);
    super::pacemaker::spawn_publisher(
        &config.pacemaker,
        name.clone(),
        roles,
        history.clone(),
        metrics.hooks.clone(),
        config.hooks.timeout.0,
    );
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
        role_hooks,
        published_role,
        done,
        read_only,
        txid,
        two_node: totem.two_node,
        metrics,
        other_primary_seen: None,
        last_change: history.last_of(history::Kind::RoleChange),
        history,
        recorded_primary: None,
        ready: false,
        systemd_status: None,
    };
    if let Some(change) = &d.last_change {
        d.metrics.last_role_change.set(change.at as f64 / 1000.0);
    }
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
                d.metrics.ha_events.inc();
                tracing::info!(target: "coroha::ha", "HA event: {ev}");
                Some(Input::HaEvent(ev))
            }
            Some(input) = finished.recv() => Some(input),
            Some((req, caller, answer)) = asks.recv() => {
                let (input, reply) = d.request(req, caller);
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
    // The role hooks still queued run before the daemon exits (the last
    // one moves a VIP away, say), each within its time limit.
    let Daemon {
        role_hooks, config, ..
    } = d;
    drop(role_hooks);
    if let Err(e) = role_hook_runner.await {
        tracing::warn!("role hooks: {e}");
    }
    // Let the answer to a `coroha stop` request reach the operator.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = std::fs::remove_file(&config.control.socket);
    tracing::info!("stopped");
    Ok(())
}

/// corosync's membership as this daemon receives it: one line per change
/// (the lab measures failover from these lines).
pub(super) fn log_membership(ev: &ClusterEvent) {
    let pids = |l: &[(
        coroha_policy::cluster::Member,
        coroha_policy::cluster::Reason,
    )]| {
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

async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
