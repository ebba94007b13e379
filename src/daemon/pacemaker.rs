//! This node's role as a Pacemaker node attribute (`[pacemaker]
//! role_attribute`, docs/pacemaker.md), for rules that follow coroha's
//! primary: a VIP's location rule, for instance.
//!
//! The attribute is transient (it goes with the node when Pacemaker loses
//! it, so a crashed primary's address is not kept there), which also
//! means Pacemaker forgets it when it restarts on this node. So it is
//! published at every role change and again every `refresh`; `attrd`
//! writes the CIB only when the value changes.

use super::history::{History, Kind};
use super::{hooks, metrics};
use confd_ha::HaRole;
use coroha_config::PacemakerConfig;
use std::time::Duration;
use tokio::sync::watch;

/// The name the metrics and the history give these runs.
const WHAT: &str = "pacemaker_attribute";

/// The `attrd_updater` command that publishes `role`: its name, or no
/// attribute at all for NONE, so that a rule on "primary" (or on the
/// attribute being defined) keeps resources away from it.
pub fn attribute_argv(name: &str, role: HaRole) -> Vec<String> {
    let mut argv: Vec<String> = ["attrd_updater", "--name", name].map(String::from).into();
    match role {
        HaRole::None => argv.push("--delete".into()),
        role => argv.extend(["--update".into(), role.name().into()]),
    }
    argv
}

/// Publish the role from `roles` (`None` while it is not known yet: a
/// restarting coroha leaves the attribute as it was until it has read its
/// server's role, so a VIP does not move for a restart). A run that fails
/// (Pacemaker is not running here, say) is counted in the metrics; the
/// first failure after a success goes to the history (and so to `coroha
/// status`) and the log, the recovery to the log; not each retry.
pub fn spawn_publisher(
    config: &PacemakerConfig,
    node: String,
    mut roles: watch::Receiver<Option<(HaRole, u64)>>,
    history: History,
    runs: metrics::HookRuns,
    limit: Duration,
) {
    let Some(name) = config.role_attribute.clone() else {
        return;
    };
    let refresh = config.refresh.0;
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            let known = *roles.borrow_and_update();
            if let Some((role, epoch)) = known {
                let argv = attribute_argv(&name, role);
                let ok = hooks::run_quietly(WHAT, &argv, limit).await;
                metrics::count_hook(&runs, WHAT, ok);
                if ok && failing {
                    tracing::info!(
                        target: "coroha::hook",
                        "node attribute {name} = {} published again",
                        role.name()
                    );
                } else if !ok && !failing {
                    let text = format!(
                        "node attribute {name} could not be published ({} failed, see the log): \
                         Pacemaker's rules on it do not follow this node's role; trying again \
                         every {} s",
                        argv[0],
                        refresh.as_secs()
                    );
                    tracing::warn!(target: "coroha::hook", "{text}");
                    history.record(&node, epoch, Kind::HookFailed, text);
                }
                failing = !ok;
            }
            tokio::select! {
                changed = roles.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(refresh) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_published_by_name_and_none_removes_the_attribute() {
        assert_eq!(
            attribute_argv("coroha-role", HaRole::Primary),
            [
                "attrd_updater",
                "--name",
                "coroha-role",
                "--update",
                "primary"
            ]
        );
        assert_eq!(
            attribute_argv("coroha-role", HaRole::Secondary),
            [
                "attrd_updater",
                "--name",
                "coroha-role",
                "--update",
                "secondary"
            ]
        );
        assert_eq!(
            attribute_argv("coroha-role", HaRole::None),
            ["attrd_updater", "--name", "coroha-role", "--delete"]
        );
    }
}
