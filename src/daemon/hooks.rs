//! Hooks: argv lists run without a shell, with the role change in the
//! environment and a time limit. Role hooks run one at a time in the order
//! of the role changes (a VIP must not be added after a later removal);
//! the fence hook runs at once, beside them.

use super::history::{History, Kind};
use confd_ha::HaRole;
use coroha_config::HooksConfig;
use std::time::Duration;
use tokio::sync::mpsc;

/// One role change to report to the hooks.
#[derive(Clone, Debug)]
pub struct RoleChange {
    pub node: String,
    pub from: Option<HaRole>,
    pub to: HaRole,
    pub cause: String,
    pub epoch: u64,
}

/// Run `argv` with `env`; true when it exits 0 within `limit`. Its output
/// goes to coroha's log.
pub async fn run(what: &str, argv: &[String], env: &[(&str, String)], limit: Duration) -> bool {
    let Some((program, args)) = argv.split_first() else {
        return true;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(Ok(out)) => {
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
            {
                tracing::info!(target: "coroha::hook", "{what} hook: {line}");
            }
            if out.status.success() {
                tracing::info!(target: "coroha::hook", "{what} hook {program:?} succeeded");
                true
            } else {
                tracing::error!(target: "coroha::hook", "{what} hook {program:?} failed: {}", out.status);
                false
            }
        }
        Ok(Err(e)) => {
            tracing::error!(target: "coroha::hook", "{what} hook {program:?} could not run: {e}");
            false
        }
        Err(_) => {
            tracing::error!(target: "coroha::hook", "{what} hook {program:?} killed after {} ms", limit.as_millis());
            false
        }
    }
}

/// The `fence_node` command for `node`: an argument that is exactly
/// `{node}` becomes its name (no shell, so nothing else is expanded).
pub fn fence_node_argv(argv: &[String], node: &str) -> Vec<String> {
    argv.iter()
        .map(|a| {
            if a == "{node}" {
                node.to_string()
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The hook for a role (a relay is a secondary for the hooks).
fn role_hook(hooks: &HooksConfig, role: HaRole) -> &[String] {
    match role {
        HaRole::Primary => &hooks.on_primary,
        HaRole::Secondary | HaRole::Relay => &hooks.on_secondary,
        HaRole::None => &hooks.on_none,
    }
}

pub fn role_env(c: &RoleChange) -> Vec<(&'static str, String)> {
    vec![
        ("COROHA_NODE", c.node.clone()),
        ("COROHA_ROLE", c.to.name().to_string()),
        (
            "COROHA_PREVIOUS_ROLE",
            c.from.map_or("unknown", HaRole::name).to_string(),
        ),
        ("COROHA_CAUSE", c.cause.clone()),
        ("COROHA_EPOCH", c.epoch.to_string()),
    ]
}

/// The serial runner of role hooks. Each message carries the hooks
/// configuration current when the change happened (SIGHUP may change it).
/// A failed hook goes to `history` too.
pub fn spawn_role_runner(
    history: History,
    runs: super::metrics::HookRuns,
) -> mpsc::UnboundedSender<(RoleChange, HooksConfig)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(RoleChange, HooksConfig)>();
    tokio::spawn(async move {
        while let Some((change, hooks)) = rx.recv().await {
            let argv = role_hook(&hooks, change.to);
            if !argv.is_empty() {
                let what = format!("on_{}", change.to.name());
                let ok = run(&what, argv, &role_env(&change), hooks.timeout.0).await;
                super::metrics::count_hook(&runs, &what, ok);
                if !ok {
                    history.record(
                        &change.node,
                        change.epoch,
                        Kind::HookFailed,
                        format!("{what} hook {:?} failed (see the log)", argv[0]),
                    );
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    #[test]
    fn fence_node_names_the_node_only_where_asked() {
        let argv: Vec<String> = ["stonith_admin", "--reboot", "{node}", "x{node}"]
            .map(String::from)
            .into();
        assert_eq!(
            super::fence_node_argv(&argv, "nso2"),
            ["stonith_admin", "--reboot", "nso2", "x{node}"]
        );
    }
}
