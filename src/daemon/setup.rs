//! Before the loop starts: which configured node this is, checked
//! against corosync's own nodelist; where the control socket is.

use crate::corosync::{self, CorosyncNode};
use coroha_config::{error_lines, key_offset, Config, ConfigError};
use coroha_policy::cluster::NodeId;
use std::path::{Path, PathBuf};
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

/// Read corosync's node list, waiting up to `wait` for corosync to start.
pub(super) async fn corosync_nodes(wait: Duration) -> Result<(NodeId, Vec<CorosyncNode>), String> {
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
}
