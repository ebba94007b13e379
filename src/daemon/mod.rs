//! `coroha run`: the edges around the policy. corosync events, HA replies
//! and notifications, signals, operator requests and timers go in; the
//! policy's outputs come out as CPG multicasts, HA orders, fsynced state,
//! hooks and log lines. Nothing here decides anything.

mod apply;
pub mod control;
mod event_loop;
mod ha_tasks;
pub mod history;
pub mod hooks;
mod http;
mod metrics;
mod pacemaker;
mod requests;
mod setup;
pub mod state;
pub mod tls;

use event_loop::run;
pub use setup::{check_against_corosync, check_nodes, check_tls};

use crate::corosync::Corosync;
use confd_ha::HaOrder;
use coroha_config::Config;
use coroha_policy::cluster::NodeId;
use coroha_policy::{Brief, Policy};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// The journal when systemd started coroha (`JOURNAL_STREAM` is set),
    /// text otherwise.
    Auto,
    /// One human-readable line per event, on stderr.
    Text,
    /// One JSON object per line, on stderr (for log shippers).
    Json,
    /// Straight to journald, with priorities and fields (`COROHA_ROLE`,
    /// `COROHA_EPOCH`, `COROHA_CAUSE`, ...).
    Journal,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub log_format: LogFormat,
    /// How long to wait for corosync at start before giving up.
    pub wait_corosync: Duration,
}

/// Set up logging: `COROHA_LOG` (as set in `/etc/default/coroha`), else
/// `RUST_LOG`, filters: a level (`debug`) or tracing's directives
/// (`info,coroha::daemon=debug`); `info` when neither is set.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("COROHA_LOG")
            .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let journal = match format {
        LogFormat::Journal => true,
        LogFormat::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
        LogFormat::Text | LogFormat::Json => false,
    };
    if journal {
        // Event fields become journal fields with this prefix: `role`
        // is COROHA_ROLE.
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer.with_field_prefix(Some("COROHA".into()));
                let _ = tracing_subscriber::registry()
                    .with(filter())
                    .with(layer)
                    .try_init();
                return;
            }
            Err(e) => eprintln!("coroha: journald is not reachable ({e}); logging to stderr"),
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        _ => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

pub fn main(opts: RunOptions) -> ExitCode {
    init_logging(opts.log_format);
    let config = match Config::load_checked(&opts.config, coroha_config::Checks::FileAndHost) {
        Ok((c, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            c
        }
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
            // Logged once: stderr is the log outside the journal.
            tracing::error!("coroha run: {e}");
            notify(&[sd_notify::NotifyState::Status(&format!("failed: {e}"))]);
            ExitCode::from(1)
        }
    }
}

fn notify(state: &[sd_notify::NotifyState]) {
    // Not under systemd: NOTIFY_SOCKET is unset and this is a no-op.
    let _ = sd_notify::notify(false, state);
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
    /// Orders sent and not yet answered: their verb and when they went.
    in_flight: BTreeMap<u64, (&'static str, Instant)>,
    role_hooks: mpsc::UnboundedSender<(hooks::RoleChange, coroha_config::HooksConfig)>,
    /// This node's role and epoch, for the Pacemaker attribute publisher
    /// (`None` until the role is known).
    published_role: tokio::sync::watch::Sender<Option<(confd_ha::HaRole, u64)>>,
    /// Where hooks and the read-only task report back (as policy inputs).
    done: mpsc::UnboundedSender<coroha_policy::Input>,
    /// Read-only mode requests for the MAAPI task.
    /// MAAPI read-only calls and CDB txid reads, each on its own socket.
    read_only: mpsc::UnboundedSender<ha_tasks::IpcRequest>,
    txid: mpsc::UnboundedSender<ha_tasks::IpcRequest>,
    /// corosync's `quorum.two_node`, read at start.
    two_node: bool,
    metrics: metrics::Metrics,
    /// When this node's plan last named another node as primary (for
    /// `coroha_failover_seconds`).
    other_primary_seen: Option<Instant>,
    history: history::History,
    /// The primary of the last decision written to the history.
    recorded_primary: Option<NodeId>,
    /// This node's last role change (for `coroha status`).
    last_change: Option<history::Entry>,
    ready: bool,
    /// What systemd was last told.
    systemd_status: Option<Brief>,
}
