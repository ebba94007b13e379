//! Before the loop starts: which configured node this is, checked
//! against corosync's own nodelist; where the control socket is.

use crate::corosync::{self, CorosyncNode, Totem};
use coroha_config::{key_offset, Config, ConfigError};
use coroha_policy::cluster::NodeId;
use std::time::Duration;
use tokio::time::Instant;

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

/// What corosync runs with against what the configuration assumes
/// (docs/design.md §13): errors that stop the daemon, and warnings.
pub fn check_totem(
    config: &Config,
    text: &str,
    file: &str,
    totem: &Totem,
) -> (Vec<ConfigError>, Vec<ConfigError>) {
    let err = |offset: usize, message: String| ConfigError::at(text, file, offset, message);
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    if totem.two_node && config.hooks.fence_node.is_empty() {
        errors.push(err(
            key_offset(text, "hooks", "fence_node"),
            "corosync runs with two_node: 1, where each half of a split is quorate on its own: \
             without [hooks] fence_node both halves elect a primary and the commits of one are lost. \
             Configure fence_node (the two nodes race to fence each other), or add a third node or a \
             quorum device"
                .into(),
        ));
    }
    if let Some(detect) = totem.detection() {
        // Unset, it is derived from this very sum (`lease_for`).
        let lease = config
            .policy
            .lease
            .map_or_else(|| coroha_config::lease_for(detect), |l| l.as_ms());
        if lease >= detect {
            errors.push(err(
                key_offset(text, "policy", "lease"),
                format!(
                    "[policy] lease = {lease} ms is not below corosync's runtime token + consensus \
                     ({detect} ms): a primary nobody hears would still take commits when the others \
                     elect; expected less than {detect} ms"
                ),
            ));
        } else if lease * 2 <= detect {
            warnings.push(err(
                key_offset(text, "policy", "lease"),
                format!(
                    "[policy] lease = {lease} ms: corosync's runtime token + consensus is {detect} ms, \
                     not below 2 leases, so a healthy primary can step down while corosync re-forms \
                     its ring after a secondary fails; a lease of {} ms or more avoids it",
                    detect / 2 + 1
                ),
            ));
        }
        let tick = config.ha.tick_timeout.as_ms();
        if 3 * tick <= detect {
            errors.push(err(
                key_offset(text, "ha", "tick_timeout"),
                format!(
                    "[ha] tick_timeout = {tick} ms: 3 NSO/ConfD ticks ({} ms) are not more than \
                     corosync's runtime token + consensus ({detect} ms): a primary cut off with a \
                     commit in flight acknowledges it alone after 3 ticks, before corosync has \
                     noticed the cut and coroha has stopped it, and the commit is lost \
                     (docs/design.md §6); expected NSO/ConfD's tick-timeout, and this, above {} ms",
                    3 * tick,
                    detect / 3
                ),
            ));
        }
        if config.policy.membership_detect.as_ms() < detect {
            warnings.push(err(
                key_offset(text, "policy", "membership_detect"),
                format!(
                    "[policy] membership_detect = {} ms is below corosync's runtime token + consensus \
                     ({detect} ms)",
                    config.policy.membership_detect.as_ms()
                ),
            ));
        }
    }
    (errors, warnings)
}

/// `coroha check-config --corosync`: the checks `run` makes against the
/// running corosync (its node list and its runtime timing), without
/// starting anything: errors and warnings, located in `path`.
pub fn check_against_corosync(
    config: &Config,
    path: &std::path::Path,
) -> Result<Vec<ConfigError>, Vec<ConfigError>> {
    let (text, file) = coroha_config::read_located(path)?;
    let unlocated = |e: String| vec![ConfigError::at(&text, &file, 0, e)];
    let (local, nodes, totem) = corosync::read_nodelist().map_err(unlocated)?;
    let mut errors = match check_nodes(config, &text, &file, local, &nodes) {
        Ok(_) => vec![],
        Err(e) => e,
    };
    let (totem_errors, warnings) = check_totem(config, &text, &file, &totem);
    errors.extend(totem_errors);
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}

/// `check-config` on this host: the HTTP listener's certificate and key
/// load as `run` loads them (`tls::acceptor`), located at `tls_cert`.
pub fn check_tls(config: &Config, path: &std::path::Path) -> Result<(), Vec<ConfigError>> {
    let (Some(cert), Some(key)) = (&config.http.tls_cert, &config.http.tls_key) else {
        return Ok(());
    };
    match super::tls::acceptor(cert, key) {
        Ok(_) => Ok(()),
        Err(e) => {
            let (text, file) = coroha_config::read_located(path)?;
            Err(vec![ConfigError::at(
                &text,
                &file,
                key_offset(&text, "http", "tls_cert"),
                e,
            )])
        }
    }
}

/// Read corosync's node list, waiting up to `wait` for corosync to start.
pub(super) async fn corosync_nodes(
    wait: Duration,
) -> Result<(NodeId, Vec<CorosyncNode>, Totem), String> {
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

    fn totem(token: u32, consensus: u32, two_node: bool) -> Totem {
        Totem {
            token: Some(token),
            consensus: Some(consensus),
            two_node,
        }
    }

    #[test]
    fn two_node_without_fencing_is_refused_and_with_it_accepted() {
        let c = Config::parse(CONFIG, "c.toml").unwrap();
        let (errors, _) = check_totem(&c, CONFIG, "c.toml", &totem(1000, 1200, true));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("two_node"), "{}", errors[0]);
        let text = format!(
            "{CONFIG}[hooks]\nfence_node = [\"stonith_admin\", \"--reboot\", \"{{node}}\"]\n"
        );
        let c = Config::parse(&text, "c.toml").unwrap();
        let (errors, _) = check_totem(&c, &text, "c.toml", &totem(1000, 1200, true));
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn the_lease_is_checked_against_the_runtime_token_and_consensus() {
        // 3 nodes, token 1000: runtime 1650 + 1980 = 3630 ms.
        let c = Config::parse(CONFIG, "c.toml").unwrap();
        let (errors, warnings) = check_totem(&c, CONFIG, "c.toml", &totem(1650, 1980, false));
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "{errors:?} {warnings:?}"
        );
        // 5 nodes, token 1000: 2950 + 3540 = 6490 ms; the lease derived
        // from it fits, a 1.8 s lease set by hand would demote a healthy
        // primary when a secondary fails.
        let (errors, warnings) = check_totem(&c, CONFIG, "c.toml", &totem(2950, 3540, false));
        assert!(errors.is_empty() && warnings.is_empty(), "{warnings:?}");
        let text = format!("{CONFIG}[policy]\nlease = \"1800ms\"\n");
        let c = Config::parse(&text, "c.toml").unwrap();
        let (errors, warnings) = check_totem(&c, &text, "c.toml", &totem(2950, 3540, false));
        assert!(errors.is_empty());
        assert!(
            warnings
                .iter()
                .any(|w| w.message.contains("3246 ms or more")),
            "{warnings:?}"
        );
        // A lease corosync's detection does not outlast.
        let text = format!("{CONFIG}[policy]\nlease = \"3s\"\nmembership_detect = \"4s\"\n");
        let c = Config::parse(&text, "c.toml").unwrap();
        let (errors, _) = check_totem(&c, &text, "c.toml", &totem(1000, 1200, false));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("not below"), "{}", errors[0]);
    }

    #[test]
    fn ticks_that_end_before_corosync_notices_a_cut_are_refused() {
        // PT2S on 3 nodes: 6 s of ticks against 3.63 s; on 5 nodes against
        // 6.49 s, a commit in flight would be acknowledged alone first (the
        // lab's 5-node run lost one so).
        let text = format!("{CONFIG}[ha]\ntick_timeout = \"2s\"\n");
        let c = Config::parse(&text, "c.toml").unwrap();
        let (errors, _) = check_totem(&c, &text, "c.toml", &totem(1650, 1980, false));
        assert!(errors.is_empty(), "{errors:?}");
        let (errors, _) = check_totem(&c, &text, "c.toml", &totem(2950, 3540, false));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("above 2163 ms"), "{}", errors[0]);
        assert!(
            errors[0]
                .to_string()
                .starts_with("c.toml:16:1: [ha] tick_timeout"),
            "{}",
            errors[0]
        );
        // NSO's default, PT20S, is far above either.
        let c = Config::parse(CONFIG, "c.toml").unwrap();
        let (errors, _) = check_totem(&c, CONFIG, "c.toml", &totem(2950, 3540, false));
        assert!(errors.is_empty(), "{errors:?}");
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
}
