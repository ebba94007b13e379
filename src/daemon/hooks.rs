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
/// goes to coroha's log. It runs in a process group of its own, and at the
/// limit the whole group is killed: what the hook started in the
/// background (and what still holds its output open) does not outlive it.
pub async fn run(what: &str, argv: &[String], env: &[(&str, String)], limit: Duration) -> bool {
    run_logging(what, argv, env, limit, true).await
}

/// As [`run`], for a command repeated on a timer: its output and its
/// success are logged at debug level only (failures as always).
pub async fn run_quietly(what: &str, argv: &[String], limit: Duration) -> bool {
    run_logging(what, argv, &[], limit, false).await
}

async fn run_logging(
    what: &str,
    argv: &[String],
    env: &[(&str, String)],
    limit: Duration,
    loud: bool,
) -> bool {
    let Some((program, args)) = argv.split_first() else {
        return true;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(target: "coroha::hook", "{what} hook {program:?} could not run: {e}");
            return false;
        }
    };
    let group = child.id();
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
            {
                if loud || !out.status.success() {
                    tracing::info!(target: "coroha::hook", "{what} hook: {line}");
                } else {
                    tracing::debug!(target: "coroha::hook", "{what} hook: {line}");
                }
            }
            if out.status.success() {
                if loud {
                    tracing::info!(target: "coroha::hook", "{what} hook {program:?} succeeded");
                } else {
                    tracing::debug!(target: "coroha::hook", "{what} hook {program:?} succeeded");
                }
                true
            } else {
                tracing::error!(target: "coroha::hook", "{what} hook {program:?} failed: {}", out.status);
                false
            }
        }
        Ok(Err(e)) => {
            tracing::error!(target: "coroha::hook", "{what} hook {program:?} could not be waited for: {e}");
            false
        }
        Err(_) => {
            if let Some(pid) = group {
                use nix::sys::signal::{killpg, Signal};
                let _ = killpg(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            tracing::error!(target: "coroha::hook", "{what} hook {program:?} killed after {} ms, with every process it started", limit.as_millis());
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

/// A failed role hook is run again after these pauses, then given up
/// (`None`), unless a later role change is queued: its hook runs instead,
/// since the earlier one no longer describes the node.
const ROLE_HOOK_RETRIES: [Option<Duration>; 4] = [
    Some(Duration::from_secs(1)),
    Some(Duration::from_secs(2)),
    Some(Duration::from_secs(4)),
    None,
];

/// The serial runner of role hooks. Each message carries the hooks
/// configuration current when the change happened (SIGHUP may change it).
/// A failed hook goes to `history` and the metrics too. The runner ends
/// when the sender is dropped and every queued hook has run: an orderly
/// stop waits for it, so the hook of its last role change runs.
pub fn spawn_role_runner(
    history: History,
    runs: super::metrics::HookRuns,
) -> (
    mpsc::UnboundedSender<(RoleChange, HooksConfig)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(RoleChange, HooksConfig)>();
    let runner = tokio::spawn(async move {
        while let Some((change, hooks)) = rx.recv().await {
            let argv = role_hook(&hooks, change.to);
            if argv.is_empty() {
                continue;
            }
            let what = format!("on_{}", change.to.name());
            for (attempt, pause) in ROLE_HOOK_RETRIES.iter().enumerate() {
                let ok = run(&what, argv, &role_env(&change), hooks.timeout.0).await;
                super::metrics::count_hook(&runs, &what, ok);
                if ok {
                    break;
                }
                let tries = attempt + 1;
                let superseded = !rx.is_empty();
                let next = match pause {
                    Some(pause) if !superseded => {
                        format!("; trying again in {} s", pause.as_secs())
                    }
                    Some(_) => "; a later role change's hook runs instead".to_string(),
                    None => "; giving up".to_string(),
                };
                history.record(
                    &change.node,
                    change.epoch,
                    Kind::HookFailed,
                    format!(
                        "{what} hook {:?} failed (try {tries}, see the log){next}",
                        argv[0]
                    ),
                );
                match pause {
                    Some(pause) if !superseded => tokio::time::sleep(*pause).await,
                    _ => break,
                }
            }
        }
    });
    (tx, runner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn a_hook_past_its_limit_is_killed_with_what_it_started() {
        let dir = std::env::temp_dir().join(format!("coroha-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pids = dir.join("pids");
        // The hook starts a background sleep, notes both pids, and waits.
        let script = format!("sleep 30 & echo $$ $! > {}; wait", pids.display());
        let started = std::time::Instant::now();
        let ok = run(
            "test",
            &argv(&["sh", "-c", &script]),
            &[],
            Duration::from_millis(300),
        )
        .await;
        assert!(!ok, "a hook killed at its limit has failed");
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = std::fs::read_to_string(&pids).unwrap();
        let alive = |pid: &str| {
            let pid: i32 = pid.parse().unwrap();
            // Gone, or a zombie nobody has reaped yet: dead either way.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        };
        // SIGKILL is delivered at once, the exit takes a moment.
        for pid in text.split_whitespace() {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while alive(pid) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!alive(pid), "process {pid} outlived its hook");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failed_role_hook_is_tried_again_and_recorded() {
        let dir = std::env::temp_dir().join(format!("coroha-hook-retry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mark = dir.join("failed-once");
        // Fails the first time, succeeds the next.
        let script = format!(
            "[ -f {m} ] && exit 0; touch {m}; exit 1",
            m = mark.display()
        );
        let history = History::open(&dir);
        let runs = super::super::metrics::HookRuns::default();
        let (tx, runner) = spawn_role_runner(history.clone(), runs.clone());
        let hooks = HooksConfig {
            on_primary: argv(&["sh", "-c", &script]),
            ..HooksConfig::default()
        };
        let change = RoleChange {
            node: "n1".into(),
            from: Some(HaRole::Secondary),
            to: HaRole::Primary,
            cause: "test".into(),
            epoch: 2,
        };
        tx.send((change, hooks)).unwrap();
        drop(tx);
        runner.await.unwrap();
        let count = |outcome| {
            runs.get_or_create(&super::super::metrics::HookLabels {
                hook: "on_primary".into(),
                outcome,
            })
            .get()
        };
        assert_eq!((count("failed"), count("ok")), (1, 1));
        let failure = history.last_hook_failure().expect("recorded");
        assert_eq!(failure.kind, Kind::HookFailed);
        assert!(
            failure.text.ends_with("trying again in 1 s"),
            "{}",
            failure.text
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_hook_that_exits_is_judged_by_its_status() {
        assert!(run("test", &argv(&["true"]), &[], Duration::from_secs(5)).await);
        assert!(!run("test", &argv(&["false"]), &[], Duration::from_secs(5)).await);
        let missing = argv(&["/nonexistent/hook"]);
        assert!(!run("test", &missing, &[], Duration::from_secs(5)).await);
    }

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
