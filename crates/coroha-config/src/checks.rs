//! What a configuration must satisfy on its own, wherever it is read:
//! errors that refuse it and warnings about safety assumptions it gives
//! up. Checks against the host it runs on are in `host.rs`.

use crate::{key_offset, Config, NodeConfig, QuorumLossAction};
use confd_ha::Endpoint;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

/// A real ConfD 8.2.5 fails an attach to a silent primary after 10 s with
/// tickTimeout PT2S (../shared/confd-ha-wire, "silent primary").
pub const MIN_BESECONDARY_TIMEOUT_MS: u64 = 10_000;

impl Config {
    /// Assumptions given up, each with the byte offset it refers to.
    pub(crate) fn warnings(&self, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        if self.hooks.fence.is_empty() {
            out.push((
                key_offset(text, "hooks", "fence"),
                "no [hooks] fence: a primary whose NSO/ConfD cannot be demoted (hung, or refusing) \
                 cannot be stopped, so a cut-off primary may serve in its minority until it \
                 answers, and a hung one is never replaced (docs/design.md §10)"
                    .into(),
            ));
        }
        if self.hooks.fence_node.is_empty() {
            out.push((
                key_offset(text, "hooks", "fence_node"),
                "no [hooks] fence_node: a primary that vanishes uncleanly (a frozen node, its \
                 coroha and corosync dead together) is not fenced before another node is \
                 promoted, and the commit it takes when it resumes is lost (docs/design.md §13, \
                 docs/benchmarks.md)"
                    .into(),
            ));
        }
        let beyond_loopback = self
            .http
            .listen
            .as_ref()
            .and_then(|l| l.parse::<SocketAddr>().ok())
            .is_some_and(|a| !a.ip().is_loopback());
        if beyond_loopback && self.http.token_file.is_some() && self.http.tls_cert.is_none() {
            out.push((
                key_offset(text, "http", "token_file"),
                "[http] token_file without tls_cert on a listener reachable beyond this host: \
                 the bearer token crosses the network in clear text with every scrape"
                    .into(),
            ));
        }
        if beyond_loopback && self.http.token_file.is_none() {
            out.push((
                key_offset(text, "http", "listen"),
                "[http] listen is reachable beyond this host and no [http] token_file is set: \
                 anyone who can reach it reads /status and /metrics (the cluster's nodes, \
                 roles and data state)"
                    .into(),
            ));
        }
        if self.policy.on_quorum_loss == QuorumLossAction::Benone {
            out.push((
                key_offset(text, "policy", "on_quorum_loss"),
                "on_quorum_loss = \"benone\": a commit in flight on a primary cut off from \
                 quorum can be acknowledged as its server steps down, and is lost; \
                 on_quorum_loss = \"fence\" kills the server instead (docs/design.md §13, \
                 docs/benchmarks.md)"
                    .into(),
            ));
        }
        out
    }

    /// Semantic checks, each with the byte offset it refers to.
    pub(crate) fn problems(&self, text: &str) -> Vec<(usize, String)> {
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
            if n.address.parse::<IpAddr>().is_err() {
                out.push((
                    at,
                    format!(
                        "node {:?}: address {:?}: expected the IPv4 or IPv6 address that \
                         secondaries reach its HA port on, without a port (NSO/ConfD's \
                         besecondary takes an IP address; the port is the server's ha port)",
                        n.name, n.address
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
        let besecondary = self.ha.besecondary_timeout.as_ms();
        if besecondary > 0 && besecondary < MIN_BESECONDARY_TIMEOUT_MS {
            out.push((
                at("ha", "besecondary_timeout"),
                format!(
                    "[ha] besecondary_timeout = {besecondary} ms: expected at least \
                     {MIN_BESECONDARY_TIMEOUT_MS} ms: against a silent primary NSO/ConfD itself \
                     takes 10 s (tickTimeout PT2S, 3 ticks with a longer one) to fail the \
                     attach, and a shorter bound takes a server that is still waiting for hung"
                ),
            ));
        }
        if let Some(listen) = &self.http.listen {
            if listen.parse::<SocketAddr>().is_err() {
                out.push((
                    at("http", "listen"),
                    format!("[http] listen = {listen:?}: expected an IP address and a port, e.g. \"127.0.0.1:9647\""),
                ));
            }
        }
        match (&self.http.tls_cert, &self.http.tls_key) {
            (Some(_), None) => out.push((
                at("http", "tls_cert"),
                "[http] tls_cert needs tls_key, the certificate's private key".into(),
            )),
            (None, Some(_)) => out.push((
                at("http", "tls_key"),
                "[http] tls_key needs tls_cert, the certificate chain".into(),
            )),
            _ => {}
        }
        if let Some(name) = &self.pacemaker.role_attribute {
            let fits = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !fits {
                out.push((
                    at("pacemaker", "role_attribute"),
                    format!(
                        "[pacemaker] role_attribute = {name:?}: expected a node attribute name \
                         (letters, digits, '-', '_', '.'), e.g. \"coroha-role\""
                    ),
                ));
            }
        }
        if self.pacemaker.refresh.as_ms() < 1000 {
            out.push((
                at("pacemaker", "refresh"),
                "[pacemaker] refresh: expected at least 1s (each refresh runs attrd_updater)"
                    .into(),
            ));
        }
        if self.http.max_connections == 0 {
            out.push((
                at("http", "max_connections"),
                "[http] max_connections = 0: expected at least 1".into(),
            ));
        }
        if self.policy.on_quorum_loss == QuorumLossAction::Fence && self.hooks.fence.is_empty() {
            out.push((
                at("policy", "on_quorum_loss"),
                "[policy] on_quorum_loss = \"fence\" needs [hooks] fence = [\"command\", ...]"
                    .into(),
            ));
        }
        if let Some(lease) = self.policy.lease.map(|l| l.as_ms()) {
            let detect = self.policy.membership_detect.as_ms();
            if lease == 0 || lease >= detect {
                out.push((
                    at("policy", "lease"),
                    format!(
                        "[policy] lease = {lease} ms: expected more than 0 and less than membership_detect \
                         ({detect} ms): a cut-off primary must be read-only before the others notice it is gone"
                    ),
                ));
            }
        }
        if self.policy.fence_hung_primary && self.hooks.fence.is_empty() {
            out.push((
                at("policy", "fence_hung_primary"),
                "[policy] fence_hung_primary = true needs [hooks] fence".into(),
            ));
        }
        out
    }
}
