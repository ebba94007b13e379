//! The TOML configuration: schema, safe defaults, and validation whose every
//! error names file:line:column and what was expected.

mod checks;
mod error;
mod host;
mod values;

pub use error::{error_lines, from_toml, key_offset, line_col, read_located, ConfigError};
pub use host::{read_token, Checks};
pub use values::{Dur, Failback, Secret};

pub use coroha_policy::{fnv1a, QuorumLossAction};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub ha: HaConfig,
    #[serde(rename = "node", default)]
    pub nodes: Vec<Spanned<NodeConfig>>,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub pacemaker: PacemakerConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// CPG group joined by every coroha daemon of the cluster.
    #[serde(default = "default_group")]
    pub group: String,
    /// This node's HA name; by default the node whose `id` is the local
    /// corosync node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Where the election epoch and data freshness are persisted.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

fn default_group() -> String {
    "coroha".into()
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/coroha")
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            group: default_group(),
            node: None,
            state_dir: default_state_dir(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// `host:port` (ConfD 4565, NSO 4569) or `unix:/path` (NSO 6.7 local IPC).
    #[serde(default = "default_ipc")]
    pub ipc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// IPC access check (`confdIpcAccessCheck`): "md5" (as libconfd) or
    /// "sha256"; needs `access_secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_check: Option<confd_ha::wire::AccessCheck>,
    /// The access file; its raw bytes, trailing newline included, are the
    /// secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_secret_file: Option<PathBuf>,
    /// Library protocol version; unset means negotiate (try 82, then the
    /// version the server's reject reply names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u16>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Bound on every call but besecondary: a server that does not answer
    /// in this time is considered hung.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Bound on besecondary: against a silent primary a real server takes up
    /// to max(10 s, 3 ticks) to fail, so keep this above that.
    #[serde(default = "default_besecondary_timeout")]
    pub besecondary_timeout: Dur,
    /// How often the local server is asked for its status (health check).
    #[serde(default = "default_status_interval")]
    pub status_interval: Dur,
    /// NSO/ConfD's own HA tick timeout, as set in its configuration
    /// (`/ncs-config/ha/tick-timeout`, NSO's default PT20S). A primary cut
    /// off with a commit in flight acknowledges it alone once it has
    /// missed 3 ticks from its secondaries: that must come after corosync
    /// has noticed the cut (token + consensus), when coroha demotes or
    /// fences it (docs/design.md §6).
    #[serde(default = "default_tick_timeout")]
    pub tick_timeout: Dur,
}

/// The HA tick timeout NSO and ConfD use when none is configured.
fn default_tick_timeout() -> Dur {
    Dur::ms(20_000)
}

fn default_ipc() -> String {
    "127.0.0.1:4565".into()
}
fn default_connect_timeout() -> Dur {
    Dur::ms(2000)
}
fn default_besecondary_timeout() -> Dur {
    Dur::ms(15_000)
}
fn default_status_interval() -> Dur {
    Dur::ms(1000)
}
fn default_timeout() -> Dur {
    Dur::ms(3000)
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            ipc: default_ipc(),
            token: None,
            token_file: None,
            access_check: None,
            access_secret_file: None,
            protocol: None,
            connect_timeout: default_connect_timeout(),
            timeout: default_timeout(),
            besecondary_timeout: default_besecondary_timeout(),
            status_interval: default_status_interval(),
            tick_timeout: default_tick_timeout(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// HA node name, as NSO/ConfD knows it.
    pub name: String,
    /// corosync node id.
    pub id: u32,
    /// Address the secondaries use to reach this node's HA port.
    pub address: String,
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// false: this node is only ever a secondary (e.g. a DR site).
    #[serde(default = "default_true")]
    pub can_primary: bool,
    /// Attach through this node (a relay) instead of the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_via: Option<String>,
}

fn default_priority() -> u32 {
    100
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// What happens when a better (higher priority) node becomes available
    /// while another is primary.
    #[serde(default = "default_failback")]
    pub failback: Failback,
    #[serde(default = "default_quorum_loss")]
    pub on_quorum_loss: QuorumLossAction,
    /// After start, wait this long for every configured node before the
    /// first election, so that a stale node booting first does not win.
    #[serde(default = "default_startup_settle")]
    pub startup_settle: Dur,
    /// Extra wait before promoting when the primary vanished without a
    /// goodbye (its node left the membership).
    #[serde(default = "default_zero")]
    pub promotion_delay: Dur,
    /// The primary's coroha died but its node is still a member: keep
    /// treating its NSO/ConfD as primary this long before acting on
    /// evidence that it is gone.
    #[serde(default = "default_orphan_grace")]
    pub orphan_grace: Dur,
    /// How long corosync takes to notice a lost node: at least its
    /// runtime `totem.token` + `totem.consensus` (`corosync-cmapctl -g
    /// runtime.config.totem.token`), which grow with the node count: 3.6 s
    /// on 3 nodes and 6.5 s on 5 with `token: 1000`. An attach that finds nothing
    /// listening at an orphan's address counts as evidence only if the
    /// orphan's node is still in the same ring this long afterwards: a
    /// partition corosync has not noticed yet also fails to connect.
    #[serde(default = "default_membership_detect")]
    pub membership_detect: Dur,
    /// The primary's lease (docs/design.md §13): it stays writable only
    /// this long after its last heartbeat came back through corosync, and
    /// primary only 2.5 times as long. It must be below corosync's runtime
    /// `token + consensus` (a cut-off primary is read-only before the
    /// others elect), and 2 leases must exceed it (a healthy primary is
    /// not demoted while corosync re-forms its ring after a secondary
    /// fails). Unset: 60 % of the runtime token + consensus, read from
    /// corosync at start (2.2 s for token 1000 on 3 nodes, 3.9 s on 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Dur>,
    /// With corosync's `two_node` and a `fence_node` hook, both halves of
    /// a split fence each other: the primary's side fences at once, the
    /// other waits this much longer, so the primary survives (Pacemaker's
    /// `priority-fencing-delay`). It delays failover after a real crash of
    /// the primary in a two-node cluster by as much.
    #[serde(default = "default_fence_race_delay")]
    pub fence_race_delay: Dur,
    /// Send `secondary_dead` for secondaries whose node left the membership.
    #[serde(default = "default_true")]
    pub secondary_dead: bool,
    /// Fence (hook) the local NSO/ConfD when it hangs while primary, so the
    /// cluster can promote another node. Without it a hung primary blocks
    /// promotion until it recovers or dies.
    #[serde(default)]
    pub fence_hung_primary: bool,
    /// SIGTERM on the primary: how long to wait for the handover.
    #[serde(default = "default_handover_timeout")]
    pub handover_timeout: Dur,
    /// Consecutive failed orders before the node calls itself ineligible.
    #[serde(default = "default_max_failures")]
    pub max_order_failures: u32,
}

fn default_failback() -> Failback {
    Failback::Never
}
fn default_quorum_loss() -> QuorumLossAction {
    QuorumLossAction::Benone
}
fn default_startup_settle() -> Dur {
    Dur::ms(10_000)
}
fn default_zero() -> Dur {
    Dur::ms(0)
}
fn default_orphan_grace() -> Dur {
    Dur::ms(5000)
}
fn default_membership_detect() -> Dur {
    Dur::ms(7000)
}
fn default_fence_race_delay() -> Dur {
    Dur::ms(5000)
}

/// The lease where corosync's runtime timing is not known (the
/// simulator's 3.5 s detection, or `check-config`): suits token 1000 on 3
/// nodes.
pub const DEFAULT_LEASE_MS: u64 = 1800;

/// The lease for corosync's runtime token + consensus (`detection`, ms):
/// 60 %, between the two bounds of design §13 (above a half, below the
/// whole, with a margin of a fifth of `detection` on either side).
pub fn lease_for(detection: u64) -> u64 {
    detection * 3 / 5
}
fn default_handover_timeout() -> Dur {
    Dur::ms(10_000)
}
fn default_max_failures() -> u32 {
    3
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            failback: default_failback(),
            on_quorum_loss: default_quorum_loss(),
            startup_settle: default_startup_settle(),
            promotion_delay: default_zero(),
            orphan_grace: default_orphan_grace(),
            membership_detect: default_membership_detect(),
            lease: None,
            fence_race_delay: default_fence_race_delay(),
            secondary_dead: true,
            fence_hung_primary: false,
            handover_timeout: default_handover_timeout(),
            max_order_failures: default_max_failures(),
        }
    }
}

/// Commands run on role changes, as argv lists (no shell). The new role and
/// the cause are passed in the environment (COROHA_ROLE, COROHA_CAUSE).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_primary: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_secondary: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_none: Vec<String>,
    /// Must leave the local NSO/ConfD not primary (e.g. stop it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fence: Vec<String>,
    /// Fences another node: run by one node for a primary that vanished
    /// (its node left the membership) before anybody else is promoted.
    /// Must exit 0 only once that node's NSO/ConfD cannot serve (powered
    /// off or rebooted: `stonith_admin --reboot`, IPMI, `virsh destroy`).
    /// The node's name is in COROHA_FENCE_NODE, and replaces any argument
    /// that is exactly `{node}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fence_node: Vec<String>,
    #[serde(default = "default_hook_timeout")]
    pub timeout: Dur,
}

fn default_hook_timeout() -> Dur {
    Dur::ms(30_000)
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            on_primary: vec![],
            on_secondary: vec![],
            on_none: vec![],
            fence: vec![],
            fence_node: vec![],
            timeout: default_hook_timeout(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Unix socket for `coroha status`, switchover, standby. Mode 0660.
    #[serde(default = "default_control_socket")]
    pub socket: PathBuf,
    /// The socket's group: its members may read (`status`, `history`).
    /// Unset: root only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Members may also change things (`switchover`, `standby`, `stop`,
    /// `confirm-down`); root always may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_group: Option<String>,
}

fn default_control_socket() -> PathBuf {
    PathBuf::from("/run/coroha/control.sock")
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_control_socket(),
            group: None,
            admin_group: None,
        }
    }
}

/// The HTTP listener: health endpoints for load balancers, the status
/// and the metrics.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `ip:port`; unset means no listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// A file holding the bearer token that `/status` and `/metrics`
    /// require (`Authorization: Bearer ...`); the health endpoints, which
    /// tell only yes or no, answer without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Connections served at once; more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Serve HTTPS with this certificate chain (PEM), with `tls_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

fn default_max_connections() -> usize {
    32
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: None,
            token_file: None,
            max_connections: default_max_connections(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Pacemaker on the same corosync (docs/pacemaker.md): this node's role
/// published as a transient node attribute that Pacemaker's rules can
/// follow (a VIP with a location rule, for instance).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PacemakerConfig {
    /// The attribute's name (e.g. `coroha-role`), set with `attrd_updater`
    /// to `primary`, `secondary` or `relay`, and deleted in NONE; unset,
    /// nothing is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_attribute: Option<String>,
    /// How often the attribute is published again besides each role
    /// change: Pacemaker forgets a node's transient attributes when it
    /// restarts there.
    #[serde(default = "default_attribute_refresh")]
    pub refresh: Dur,
}

fn default_attribute_refresh() -> Dur {
    Dur::ms(10_000)
}

impl Default for PacemakerConfig {
    fn default() -> Self {
        PacemakerConfig {
            role_attribute: None,
            refresh: default_attribute_refresh(),
        }
    }
}

/// A configuration error located in its file.
impl Config {
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let (text, name) = read_located(path)?;
        Config::parse(&text, &name)
    }

    /// The control socket a config file names, for the operator commands,
    /// which need nothing else of it: a file the daemon would refuse (a
    /// typo in another table) still names its socket, and without a
    /// readable `[control]` table the default is used. The note says what
    /// was wrong with the file, for the operator to fix.
    pub fn control_socket(path: &Path) -> (PathBuf, Option<String>) {
        let default = default_control_socket();
        let (text, file) = match read_located(path) {
            Ok(read) => read,
            Err(e) => return (default, Some(error_lines(&e))),
        };
        if let Ok(c) = Config::parse(&text, &file) {
            return (c.control.socket, None);
        }
        let problem = format!("{file} has errors (see `coroha check-config --config {file}`)");
        let named = toml::from_str::<toml::Table>(&text).ok().and_then(|t| {
            let socket = t.get("control")?.get("socket")?.as_str()?;
            Some(PathBuf::from(socket))
        });
        match named {
            Some(socket) => (socket, Some(problem)),
            None => (
                default,
                Some(format!("{problem}; trying the default control socket")),
            ),
        }
    }

    /// Parse and validate. `file` only names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
        let at = |offset: usize, message: String| ConfigError::at(text, file, offset, message);
        let config: Config = from_toml(text, file)?;
        let errors: Vec<ConfigError> = config
            .problems(text)
            .into_iter()
            .map(|(offset, message)| at(offset, message))
            .collect();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    pub fn node_by_name(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes
            .iter()
            .map(|n| n.get_ref())
            .find(|n| n.name == name)
    }

    pub fn node_by_id(&self, id: u32) -> Option<&NodeConfig> {
        self.nodes.iter().map(|n| n.get_ref()).find(|n| n.id == id)
    }

    /// The effective configuration as TOML, defaults filled in, token redacted.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// A stable digest of what must agree across nodes (node table and
    /// policy), announced so that drifting configurations are noticed.
    pub fn digest(&self) -> u64 {
        let nodes: Vec<&NodeConfig> = self.nodes.iter().map(|n| n.get_ref()).collect();
        let text = serde_json::to_string(&(&nodes, &self.policy)).unwrap_or_default();
        fnv1a(text.as_bytes())
    }

    /// The same, part by part (each `[[node]]` by its name, and
    /// `[policy]`), so that a node can say which part of another's
    /// configuration differs from its own.
    pub fn digest_parts(&self) -> std::sync::Arc<[(std::sync::Arc<str>, u64)]> {
        fn digest<T: Serialize>(part: &T) -> u64 {
            fnv1a(serde_json::to_string(part).unwrap_or_default().as_bytes())
        }
        let nodes = self.nodes.iter().map(|n| n.get_ref());
        nodes
            .map(|n| (format!("[[node]] {}", n.name).into(), digest(n)))
            .chain([("[policy]".into(), digest(&self.policy))])
            .collect()
    }
}

/// What a SIGHUP reload did: the configuration now in force, what changed,
/// and what changed in the file but needs a restart (not applied).
#[derive(Debug)]
pub struct Reload {
    pub config: Config,
    pub applied: Vec<String>,
    pub needs_restart: Vec<String>,
}

impl Config {
    /// Apply a re-read file to a running daemon. Reloadable: `[policy]`,
    /// `[hooks]`, `ha.status_interval`, and each node's `priority`,
    /// `can_primary` and `relay_via`. Everything that names things (the
    /// node table's names, ids and addresses, the CPG group, this node, the
    /// state directory), how the HA socket is reached, and the listeners
    /// keep their running values until a restart.
    pub fn reload(&self, new: &Config) -> Reload {
        let mut config = self.clone();
        let mut applied = Vec::new();
        let mut needs_restart = Vec::new();
        if json(&self.policy) != json(&new.policy) {
            config.policy = new.policy.clone();
            applied.push("[policy]".to_string());
        }
        if json(&self.hooks) != json(&new.hooks) {
            config.hooks = new.hooks.clone();
            applied.push("[hooks]".to_string());
        }
        if self.ha.status_interval != new.ha.status_interval {
            config.ha.status_interval = new.ha.status_interval;
            applied.push("ha.status_interval".to_string());
        }
        let mut other_ha = new.ha.clone();
        other_ha.status_interval = self.ha.status_interval;
        if json(&self.ha) != json(&other_ha) || self.ha.token != new.ha.token {
            needs_restart.push("[ha] (connection settings)".to_string());
        }
        for (table, old, changed) in [
            ("[cluster]", json(&self.cluster), json(&new.cluster)),
            ("[control]", json(&self.control), json(&new.control)),
            ("[http]", json(&self.http), json(&new.http)),
        ] {
            if old != changed {
                needs_restart.push(table.to_string());
            }
        }
        let identity = |c: &Config| {
            let mut v: Vec<(String, u32, String)> = c
                .nodes
                .iter()
                .map(|n| {
                    let n = n.get_ref();
                    (n.name.clone(), n.id, n.address.clone())
                })
                .collect();
            v.sort();
            v
        };
        if identity(self) != identity(new) {
            needs_restart.push("[[node]] names, ids or addresses".to_string());
        } else {
            for node in &mut config.nodes {
                let node = node.get_mut();
                if let Some(n) = new.node_by_name(&node.name) {
                    if node != n {
                        applied.push(format!("node {}", node.name));
                        node.clone_from(n);
                    }
                }
            }
        }
        Reload {
            config,
            applied,
            needs_restart,
        }
    }
}

/// Tables compare through their serialized form (not all derive PartialEq,
/// and the serialized form is what the operator wrote).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// FNV-1a, 64 bit: a stable, dependency-free digest for short texts.
impl Failback {
    fn to_policy(self) -> coroha_policy::Failback {
        match self {
            Failback::Never => coroha_policy::Failback::Never,
            Failback::Immediately => coroha_policy::Failback::Immediately,
            Failback::After(d) => coroha_policy::Failback::After(d.as_ms()),
        }
    }
}

impl NodeConfig {
    fn to_policy(&self) -> coroha_policy::Node {
        coroha_policy::Node {
            name: self.name.as_str().into(),
            id: self.id,
            address: self.address.as_str().into(),
            priority: self.priority,
            can_primary: self.can_primary,
            relay_via: self.relay_via.clone(),
        }
    }
}

impl Config {
    /// The policy's settings for node `me`.
    pub fn settings(&self, me: u32) -> coroha_policy::Settings {
        let p = &self.policy;
        coroha_policy::Settings {
            me,
            nodes: self.nodes.iter().map(|n| n.get_ref().to_policy()).collect(),
            failback: p.failback.to_policy(),
            on_quorum_loss: p.on_quorum_loss,
            startup_settle: p.startup_settle.as_ms(),
            promotion_delay: p.promotion_delay.as_ms(),
            orphan_grace: p.orphan_grace.as_ms(),
            membership_detect: p.membership_detect.as_ms(),
            lease: p.lease.map_or(DEFAULT_LEASE_MS, |l| l.as_ms()).max(1),
            fence_node: !self.hooks.fence_node.is_empty(),
            // Known from corosync only: the daemon and the simulator set it.
            two_node: false,
            fence_race_delay: p.fence_race_delay.as_ms(),
            read_txid: true,
            secondary_dead: p.secondary_dead,
            fence_hung_primary: p.fence_hung_primary,
            has_fence: !self.hooks.fence.is_empty(),
            handover_timeout: p.handover_timeout.as_ms(),
            max_order_failures: p.max_order_failures.max(1),
            status_interval: self.ha.status_interval.as_ms().max(1),
            retry_interval: 1000,
            digest: self.digest(),
            digest_parts: self.digest_parts(),
        }
    }
}

#[cfg(test)]
mod tests;
