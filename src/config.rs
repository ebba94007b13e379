//! The TOML configuration: schema, safe defaults, and validation whose every
//! error names file:line:column and what was expected.

use crate::ha::client::Endpoint;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A duration written as `"500ms"`, `"5s"`, `"2m"` or `"1h"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn ms(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub fn as_ms(self) -> u64 {
        self.0.as_millis() as u64
    }
    pub fn parse(text: &str) -> Option<Dur> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().ok()?;
        let scale = match unit.trim() {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        let ms = number * scale;
        (ms.is_finite() && ms >= 0.0).then(|| Dur::ms(ms.round() as u64))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_ms();
        if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Dur::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid duration {text:?}: expected a number and a unit, like \"500ms\", \"5s\", \"2m\" or \"1h\""
            ))
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The HA token. It is never printed: `Debug` and serialization redact it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

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
    pub metrics: MetricsConfig,
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
    pub access_check: Option<crate::ha::wire::AccessCheck>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    Never,
    Immediately,
    After(Dur),
}

impl<'de> Deserialize<'de> for Failback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "never" => Ok(Failback::Never),
            "immediately" => Ok(Failback::Immediately),
            other => other
                .strip_prefix("after ")
                .and_then(Dur::parse)
                .map(Failback::After)
                .ok_or_else(|| {
                    de::Error::custom(format!(
                        "invalid failback {text:?}: expected \"never\", \"immediately\" or \"after DURATION\" (e.g. \"after 5m\")"
                    ))
                }),
        }
    }
}

impl Serialize for Failback {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Failback::Never => s.serialize_str("never"),
            Failback::Immediately => s.serialize_str("immediately"),
            Failback::After(d) => s.serialize_str(&format!("after {d}")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuorumLossAction {
    /// Order `benone`. NSO/ConfD in NONE is writable: writes there are lost
    /// when the node rejoins as a secondary.
    Benone,
    /// Run the fence hook (e.g. stop NSO), then consider the node demoted.
    Fence,
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
}

fn default_control_socket() -> PathBuf {
    PathBuf::from("/run/coroha/control.sock")
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_control_socket(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` for Prometheus metrics; unset means off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// A configuration error located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    /// An error at a byte offset of `text`, read from `file`.
    pub fn at(text: &str, file: &str, offset: usize, message: String) -> ConfigError {
        let (line, column) = line_col(text, offset);
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Errors as lines, for a message that carries them all.
pub fn error_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read a file for parsing; an unreadable file is an error at 1:1.
pub fn read_located(path: &Path) -> Result<(String, String), Vec<ConfigError>> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, name)),
        Err(e) => Err(vec![ConfigError {
            file: name,
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Deserialize TOML, locating an error at its file:line:column.
pub fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, Vec<ConfigError>> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        vec![ConfigError {
            file: file.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }]
    })
}

/// Byte offset of `key` in `[table]` (or `[[table]]`), for errors found
/// after parsing; the table header, or the start, when not written.
pub(crate) fn key_offset(text: &str, table: &str, key: &str) -> usize {
    let mut offset = 0;
    let mut current = String::new();
    let mut header = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == table && header.is_none() {
                header = Some(offset);
            }
        } else if current == table {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return offset + (line.len() - line.trim_start().len());
                }
            }
        }
        offset += line.len();
    }
    header.unwrap_or(0)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let (text, name) = read_located(path)?;
        Config::parse(&text, &name)
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

    /// Semantic checks, each with the byte offset it refers to.
    fn problems(&self, text: &str) -> Vec<(usize, String)> {
        let at = |table: &str, key: &str| key_offset(text, table, key);
        let mut out = Vec::new();
        if self.nodes.is_empty() {
            out.push((
                0,
                "no [[node]] tables: expected at least one node".to_string(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for node in &self.nodes {
            let at = node.span().start;
            let n = node.get_ref();
            if n.name.is_empty() || n.name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                out.push((
                    at,
                    format!(
                        "node name {:?}: expected a non-empty name without spaces",
                        n.name
                    ),
                ));
            }
            if !names.insert(n.name.as_str()) {
                out.push((
                    at,
                    format!("node {:?} is defined twice: expected unique names", n.name),
                ));
            }
            if n.id == 0 {
                out.push((
                    at,
                    format!(
                        "node {:?}: id 0 is not a corosync node id: expected 1 or more",
                        n.name
                    ),
                ));
            }
            if !ids.insert(n.id) {
                out.push((
                    at,
                    format!(
                        "node {:?}: id {} is used twice: expected unique ids",
                        n.name, n.id
                    ),
                ));
            }
            if n.address.is_empty() {
                out.push((
                    at,
                    format!(
                        "node {:?}: expected an address that secondaries can reach",
                        n.name
                    ),
                ));
            }
        }
        let by_name: BTreeMap<&str, &NodeConfig> = self
            .nodes
            .iter()
            .map(|n| (n.get_ref().name.as_str(), n.get_ref()))
            .collect();
        for node in &self.nodes {
            let n = node.get_ref();
            if let Some(parent) = &n.relay_via {
                match by_name.get(parent.as_str()) {
                    None => out.push((
                        node.span().start,
                        format!("node {:?}: relay_via {parent:?} is not a configured node", n.name),
                    )),
                    Some(p) if p.name == n.name => out.push((
                        node.span().start,
                        format!("node {:?}: relay_via names the node itself", n.name),
                    )),
                    Some(p) if p.relay_via.is_some() => out.push((
                        node.span().start,
                        format!("node {:?}: relay {parent:?} attaches through a relay itself; only one level is supported", n.name),
                    )),
                    _ => {}
                }
            }
        }
        if !self.nodes.is_empty() && !self.nodes.iter().any(|n| n.get_ref().can_primary) {
            out.push((
                key_offset(text, "node", "can_primary"),
                "no node has can_primary = true: expected at least one possible primary".into(),
            ));
        }
        if let Some(me) = &self.cluster.node {
            if !by_name.contains_key(me.as_str()) {
                out.push((
                    at("cluster", "node"),
                    format!("[cluster] node = {me:?} is not one of the [[node]] names"),
                ));
            }
        }
        if self.ha.token.is_some() && self.ha.token_file.is_some() {
            out.push((
                at("ha", "token_file"),
                "[ha] has both token and token_file: expected one of them".into(),
            ));
        }
        if self.ha.access_check.is_some() != self.ha.access_secret_file.is_some() {
            let key = if self.ha.access_check.is_some() {
                "access_check"
            } else {
                "access_secret_file"
            };
            out.push((
                at("ha", key),
                "[ha] access_check and access_secret_file go together".into(),
            ));
        }
        if let Err(e) = Endpoint::parse(&self.ha.ipc) {
            out.push((at("ha", "ipc"), format!("[ha] ipc: {e}")));
        }
        if self.ha.timeout.as_ms() == 0 || self.ha.besecondary_timeout.as_ms() == 0 {
            let key = if self.ha.timeout.as_ms() == 0 {
                "timeout"
            } else {
                "besecondary_timeout"
            };
            out.push((
                at("ha", key),
                format!("[ha] {key} must be greater than zero"),
            ));
        }
        if self.policy.on_quorum_loss == QuorumLossAction::Fence && self.hooks.fence.is_empty() {
            out.push((
                at("policy", "on_quorum_loss"),
                "[policy] on_quorum_loss = \"fence\" needs [hooks] fence = [\"command\", ...]"
                    .into(),
            ));
        }
        if self.policy.fence_hung_primary && self.hooks.fence.is_empty() {
            out.push((
                at("policy", "fence_hung_primary"),
                "[policy] fence_hung_primary = true needs [hooks] fence".into(),
            ));
        }
        out
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
            ("[metrics]", json(&self.metrics), json(&new.metrics)),
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
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[node]]
name = "n1"
id = 1
address = "10.0.0.1"
"#;

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = Config::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(c.cluster.group, "coroha");
        assert_eq!(c.ha.ipc, "127.0.0.1:4565");
        assert_eq!(c.policy.failback, Failback::Never);
        assert_eq!(c.policy.on_quorum_loss, QuorumLossAction::Benone);
        assert!(c.policy.secondary_dead);
        assert_eq!(c.nodes[0].get_ref().priority, 100);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let text = format!("{MINIMAL}colour = \"red\"\n");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].column), (6, 1), "{}", e[0]);
        assert!(e[0].message.contains("unknown field `colour`"), "{}", e[0]);
        assert!(e[0].to_string().starts_with("x.toml:6:1: "));
    }

    #[test]
    fn bad_duration_says_what_was_expected() {
        let text = format!("[policy]\nstartup_settle = \"soon\"\n{MINIMAL}");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert_eq!(e[0].line, 2, "{}", e[0]);
        assert!(
            e[0].message.contains("expected a number and a unit"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn duplicate_ids_point_at_the_second_node() {
        let text = format!("{MINIMAL}\n[[node]]\nname = \"n2\"\nid = 1\naddress = \"a\"\n");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 7, "{}", e[0]);
        assert!(e[0].message.contains("id 1 is used twice"));
    }

    #[test]
    fn relay_must_name_a_node() {
        let text = format!("{MINIMAL}relay_via = \"n9\"\n");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert!(
            e[0].message
                .contains("relay_via \"n9\" is not a configured node"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn fence_action_needs_a_fence_hook() {
        let text = format!("[policy]\non_quorum_loss = \"fence\"\n{MINIMAL}");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert!(e[0].message.contains("needs [hooks] fence"), "{}", e[0]);
        assert_eq!(
            (e[0].line, e[0].column),
            (2, 1),
            "points at the key: {}",
            e[0]
        );
    }

    #[test]
    fn token_and_token_file_together_point_at_token_file() {
        let text = format!("[ha]\ntoken = \"a\"\n  token_file = \"/f\"\n{MINIMAL}");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert_eq!((e[0].line, e[0].column), (3, 3), "{}", e[0]);
    }

    #[test]
    fn failback_forms() {
        for (text, want) in [
            ("never", Failback::Never),
            ("immediately", Failback::Immediately),
            ("after 5m", Failback::After(Dur::ms(300_000))),
        ] {
            let c =
                Config::parse(&format!("[policy]\nfailback = \"{text}\"\n{MINIMAL}"), "t").unwrap();
            assert_eq!(c.policy.failback, want);
        }
        let e = Config::parse(
            &format!("[policy]\nfailback = \"sometimes\"\n{MINIMAL}"),
            "t",
        )
        .unwrap_err();
        assert!(e[0].message.contains("expected \"never\""));
    }

    #[test]
    fn access_check_needs_its_secret_file_and_ipc_is_checked() {
        let text = format!("[ha]\naccess_check = \"sha256\"\nipc = \"localhost\"\n{MINIMAL}");
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].message.contains("go together") && e[0].line == 2,
            "{}",
            e[0]
        );
        assert!(
            e[1].message.contains("expected host:port or unix:/path") && e[1].line == 3,
            "{}",
            e[1]
        );
        let ok = format!("[ha]\nipc = \"unix:/tmp/nso/nso-ipc\"\naccess_check = \"md5\"\naccess_secret_file = \"/etc/ipc\"\n{MINIMAL}");
        assert!(Config::parse(&ok, "x.toml").is_ok());
    }

    #[test]
    fn token_is_never_rendered() {
        let text = format!("[ha]\ntoken = \"hunter2\"\n{MINIMAL}");
        let c = Config::parse(&text, "t").unwrap();
        assert!(!c.to_toml().contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::parse(MINIMAL, "t").unwrap();
        let again = Config::parse(&c.to_toml(), "t").unwrap();
        assert_eq!(again.to_toml(), c.to_toml());
    }

    #[test]
    fn syntax_error_is_located() {
        let e = Config::parse("[cluster\ngroup = 1\n", "s.toml").unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(e[0].column > 1);
    }

    #[test]
    fn reload_applies_policy_hooks_and_priorities_and_names_what_needs_a_restart() {
        let old = Config::parse(MINIMAL, "t.toml").unwrap();
        let text = "[cluster]\ngroup = \"other\"\n\n[policy]\nfailback = \"immediately\"\n\n[hooks]\non_primary = [\"/bin/true\"]\n\n[[node]]\nname = \"n1\"\nid = 1\naddress = \"10.0.0.1\"\npriority = 7\n";
        let new = Config::parse(text, "t.toml").unwrap();
        let r = old.reload(&new);
        assert_eq!(r.applied, ["[policy]", "[hooks]", "node n1"]);
        assert_eq!(r.needs_restart, ["[cluster]"]);
        assert_eq!(r.config.policy.failback, Failback::Immediately);
        assert_eq!(r.config.nodes[0].get_ref().priority, 7);
        assert_eq!(r.config.cluster.group, "coroha", "the running group stays");
        let moved = Config::parse(&MINIMAL.replace("10.0.0.1", "10.0.0.9"), "t.toml").unwrap();
        let r = old.reload(&moved);
        assert!(r.applied.is_empty());
        assert_eq!(r.needs_restart, ["[[node]] names, ids or addresses"]);
        assert_eq!(r.config.nodes[0].get_ref().address, "10.0.0.1");
    }
}
