//! The operator's commands against a running daemon: `coroha status`,
//! `switchover`, `standby`, `stop`, `confirm-down`.

use super::outcome::Awaited;
use crate::control::{request, Reply, Request, StatusReport};
use crate::daemon::history::Entry;
use confd_ha::HaRole;
use coroha_policy::cluster::RingId;
use coroha_policy::freshness::DataState;
use coroha_policy::message::Health;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Whether a command that changes something waits for the outcome.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Return once the daemon took the request.
    No,
    /// Poll the daemon's status until it shows the outcome, this long.
    Until(Duration),
    /// `coroha status --watch`: show it again every interval, until
    /// interrupted or the daemon cannot be asked.
    Watch(Duration),
}

/// How often a waiting command asks for the status: often at first (a
/// switchover takes tens of milliseconds, and the time printed is the
/// time it was seen), then less.
fn poll_interval(waited: Duration) -> Duration {
    if waited < Duration::from_secs(1) {
        Duration::from_millis(5)
    } else {
        Duration::from_millis(100)
    }
}

/// Exit codes: 0 done (or shown), 1 refused (nothing was done), 2 the
/// daemon could not be asked, 3 taken but the outcome not seen in time.
pub const TIMED_OUT: u8 = 3;

/// Send one request and, for a change, wait for its outcome (see
/// [`Wait`]); print the answer (JSON or text) and return the exit code.
pub async fn run_and_wait(socket: &Path, req: Request, json: bool, wait: Wait) -> u8 {
    let limit = match wait {
        Wait::No => return run(socket, req, json).await,
        Wait::Watch(every) => loop {
            if !json {
                // Clear the terminal and start at the top.
                print!("\x1b[2J\x1b[H");
            }
            let code = run(socket, req.clone(), json).await;
            if code == 2 {
                return code;
            }
            tokio::time::sleep(every).await;
        },
        Wait::Until(limit) => limit,
    };
    let Some(before) = awaitable(socket, &req).await else {
        return run(socket, req, json).await;
    };
    let started = Instant::now();
    match request(socket, &req).await {
        Ok(Reply::Taken) => {}
        Ok(other) => return print_reply(other, json),
        Err(e) => {
            eprintln!("coroha: {e}");
            return 2;
        }
    }
    let outcome = wait_for(socket, &before, started + limit).await;
    let ms = started.elapsed().as_millis();
    match outcome {
        Ok(text) if json => println!(
            "{}",
            serde_json::json!({"ok": true, "outcome": text, "ms": ms})
        ),
        Ok(text) => println!("{text}, {ms} ms"),
        Err(last) => {
            let text = format!("timed out after {} s: {last}", limit.as_secs());
            if json {
                println!("{}", serde_json::json!({"ok": false, "error": text}));
            } else {
                eprintln!("coroha: {text}");
            }
            return TIMED_OUT;
        }
    }
    0
}

/// For a request with an outcome to wait for: what it waits for.
async fn awaitable(socket: &Path, req: &Request) -> Option<Awaited> {
    match request(socket, &Request::Status).await {
        Ok(Reply::Status(s)) => Awaited::of(req, &s.policy),
        _ => None,
    }
}

/// Poll until `awaited` is seen: its outcome, or what the status said
/// last when `deadline` passed.
async fn wait_for(socket: &Path, awaited: &Awaited, deadline: Instant) -> Result<String, String> {
    let mut last = "no status read".to_string();
    let started = Instant::now();
    while Instant::now() < deadline {
        match request(socket, &Request::Status).await {
            Ok(Reply::Status(s)) => {
                if let Some(done) = awaited.seen(&s.policy) {
                    return Ok(done);
                }
                last = format!(
                    "primary {}, plan: {}",
                    or_dash(&s.policy.primary),
                    or_dash(&s.policy.plan)
                );
            }
            // The daemon asked to stop is gone: that is its outcome.
            Err(_) if *awaited == Awaited::Exit => return Ok("coroha stopped".into()),
            Err(e) => last = e,
            Ok(other) => last = format!("unexpected answer {other:?}"),
        }
        tokio::time::sleep(poll_interval(started.elapsed())).await;
    }
    Err(last)
}

/// Send one request; print the answer (JSON or text). Exit code 0 when the
/// daemon did what was asked, 1 when it refused, 2 when it could not be
/// asked.
pub async fn run(socket: &Path, req: Request, json: bool) -> u8 {
    let reply = match request(socket, &req).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coroha: {e}");
            return 2;
        }
    };
    print_reply(reply, json)
}

fn print_reply(reply: Reply, json: bool) -> u8 {
    if json {
        print!("{}", String::from_utf8_lossy(&reply.to_line()));
    }
    match reply {
        Reply::Refused(error) => {
            if !json {
                eprintln!("coroha: {error}");
            }
            1
        }
        Reply::Status(status) if !json => {
            let text = render_status(&status);
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                print!("{}", highlight(&text));
            } else {
                print!("{text}");
            }
            0
        }
        Reply::Metrics(text) if !json => {
            print!("{text}");
            0
        }
        Reply::History(entries) if !json => {
            print!("{}", render_history(&entries));
            0
        }
        Reply::Taken if !json => {
            println!("ok");
            0
        }
        _ => 0,
    }
}

fn role(r: Option<HaRole>) -> &'static str {
    r.map_or("-", HaRole::name)
}

fn health(h: Health) -> String {
    format!("{h:?}").to_lowercase()
}

fn or_dash(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

fn ring(r: Option<RingId>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{}.{:x}", r.rep, r.seq))
}

/// What needs the eye, in colour on a terminal: red for what the operator
/// must act on or a node that cannot act, yellow for a pause.
fn highlight(text: &str) -> String {
    const RED: &str = "\x1b[1;31m";
    const YELLOW: &str = "\x1b[1;33m";
    const RESET: &str = "\x1b[0m";
    text.lines()
        .map(|line| {
            let colour = if line.starts_with("ACTION NEEDED")
                || line.starts_with("failing")
                || line.contains("NOT QUORATE")
                || line.contains("NOT CONNECTED")
            {
                Some(RED)
            } else if line.starts_with("PAUSED") {
                Some(YELLOW)
            } else {
                None
            };
            match colour {
                Some(c) => format!("{c}{line}{RESET}\n"),
                None => format!("{line}\n"),
            }
        })
        .collect()
}

/// The history, oldest first: UTC time, node, epoch, kind, what.
pub fn render_history(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(e.at);
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {:<8} epoch {:<4} {:<12} {}",
            humantime::format_rfc3339_millis(at),
            e.node,
            e.epoch,
            kind,
            e.text
        );
    }
    out
}

/// The status as an operator reads it at 3 a.m.
pub fn render_status(s: &StatusReport) -> String {
    let (p, c) = (&s.policy, &s.corosync);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}: {} (epoch {}), NSO/ConfD {}{}{}{}",
        p.node,
        role(p.role),
        p.epoch,
        health(p.health),
        if p.role == Some(HaRole::Primary) && !p.writable {
            ", READ-ONLY (no quorum or lease: takes no commits)"
        } else {
            ""
        },
        if p.standby { ", standby" } else { "" },
        if p.stopping { ", stopping" } else { "" },
    );
    let dated = |label: &str, e: &crate::daemon::history::Entry| {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(e.at);
        let ago = std::time::SystemTime::now()
            .duration_since(at)
            .map(|d| Duration::from_secs(d.as_secs()))
            .unwrap_or_default();
        format!(
            "{label} {} ({} ago): {}",
            humantime::format_rfc3339_seconds(at),
            humantime::format_duration(ago),
            e.text
        )
    };
    if let Some(change) = &s.last_change {
        let _ = writeln!(out, "{}", dated("last change", change));
    }
    if let Some(failure) = &s.last_hook_failure {
        let _ = writeln!(out, "{}", dated("HOOK FAILED", failure));
    }
    let primary = match (&p.primary, p.quorate) {
        (Some(name), _) => name.as_str(),
        (None, true) => "none",
        (None, false) => "none known (this node is not quorate)",
    };
    let _ = writeln!(out, "primary: {primary}   plan: {}", or_dash(&p.plan));
    if p.paused {
        let _ = writeln!(
            out,
            "PAUSED: nobody is elected, promoted or attached until `coroha resume`"
        );
    }
    for action in &p.actions {
        let _ = writeln!(out, "ACTION NEEDED: {action}");
    }
    let members: Vec<String> = c.ring_members.iter().map(u32::to_string).collect();
    let _ = writeln!(
        out,
        "corosync: {}, ring {} [{}], {} of {} expected votes needed, {} coroha daemons",
        match (c.connected, p.quorate) {
            (false, _) => "NOT CONNECTED",
            (true, true) => "quorate",
            (true, false) => "NOT QUORATE",
        },
        ring(c.ring),
        members.join(", "),
        c.quorum,
        c.expected_votes,
        c.group.len(),
    );
    if let Some(failing) = &p.failing {
        let _ = writeln!(out, "failing: {failing}");
    }
    if let Some(pending) = &p.pending {
        let _ = writeln!(out, "order in flight: {pending}");
    }
    let _ = writeln!(
        out,
        "NODE         ROLE        EPOCH  IN ROLE    PARENT     HEALTH     DATA      TXID"
    );
    for m in &p.members {
        let mut flags = String::new();
        if m.standby {
            flags.push_str(" standby");
        }
        if m.leaving {
            flags.push_str(" leaving");
        }
        let data = match m.data {
            DataState::InSync => "in-sync",
            DataState::Behind => "behind",
            DataState::Diverged => "diverged",
            DataState::Unknown => "-",
        };
        let txid = m.txid.map_or_else(|| "-".to_string(), |t| t.to_string());
        let health = match &m.failing {
            Some(_) => "failing".to_string(),
            None => health(m.health),
        };
        let in_role = m.role_for_ms.map_or_else(
            || "-".to_string(),
            |ms| humantime::format_duration(Duration::from_secs(ms / 1000)).to_string(),
        );
        let line = format!(
            "{:<12} {:<10} {:>6}  {:<10} {:<10} {:<10} {:<9} {:<18}{flags}",
            m.name,
            role(m.role),
            m.epoch,
            in_role,
            or_dash(&m.parent),
            health,
            data,
            txid,
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for m in p.members.iter().filter(|m| m.name != p.node) {
        if let Some(why) = &m.failing {
            let _ = writeln!(out, "failing on {}: {why}", m.name);
        }
    }
    for a in &p.absent {
        let what = match a.orphaned_primary {
            Some(epoch) => format!(
                "{} (orphaned primary, epoch {epoch}: its NSO/ConfD may still serve)",
                a.presence.name()
            ),
            None => a.presence.name().to_string(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>6}  {:<10} {what}",
            a.name, "-", "-", "-"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::samples::{member, status};
    use crate::corosync::CorosyncView;
    use coroha_policy::cluster::Member;
    use coroha_policy::{AbsentNode, Action, MemberStatus, Presence, Status};

    fn report() -> StatusReport {
        let ring = RingId { rep: 1, seq: 30 };
        StatusReport {
            policy: Status {
                role: Some(HaRole::Primary),
                writable: true,
                ring: Some(ring),
                plan: Some("n1 stays primary".into()),
                absent: vec![AbsentNode {
                    id: 3,
                    name: "n3".into(),
                    presence: Presence::CorohaStopped,
                    orphaned_primary: None,
                }],
                actions: vec![Action::ConfigDiffers {
                    node: "n2".into(),
                    parts: vec!["[[node]] n3".into(), "[policy]".into()],
                }],
                members: vec![
                    MemberStatus {
                        txid: Some(confd_ha::TxStamp {
                            mega: 1796,
                            secs: 229333,
                            micros: 823989,
                        }),
                        role_for_ms: Some(3_665_400),
                        ..member("n1", HaRole::Primary, 3, None, false)
                    },
                    MemberStatus {
                        data: DataState::Behind,
                        failing: Some("besecondary: HA_BADTOKEN".into()),
                        ..member("n2", HaRole::Secondary, 3, Some("n1"), true)
                    },
                ],
                ..status("n1", vec![])
            },
            corosync: CorosyncView {
                connected: true,
                ring: Some(ring),
                ring_members: vec![1, 2],
                quorate: true,
                expected_votes: 3,
                quorum: 2,
                group: vec![Member { node: 1, pid: 5 }, Member { node: 2, pid: 6 }],
                ..CorosyncView::default()
            },
            last_change: None,
            last_hook_failure: None,
        }
    }

    #[test]
    fn a_failed_hook_is_shown_with_its_time() {
        let mut r = report();
        r.last_hook_failure = Some(crate::daemon::history::Entry {
            at: 1_796_229_333_000,
            node: "n1".into(),
            epoch: 3,
            kind: crate::daemon::history::Kind::HookFailed,
            text: "on_primary hook \"/usr/local/bin/vip\" failed (see the log)".into(),
        });
        let text = render_status(&r);
        let line = text.lines().find(|l| l.starts_with("HOOK FAILED")).unwrap();
        assert!(line.starts_with("HOOK FAILED 2026-12-02T"), "{line}");
        assert!(
            line.ends_with("ago): on_primary hook \"/usr/local/bin/vip\" failed (see the log)"),
            "{line}"
        );
    }

    #[test]
    fn a_primary_that_takes_no_commits_is_shown_read_only() {
        let mut r = report();
        r.policy.writable = false;
        let first = render_status(&r).lines().next().unwrap().to_string();
        assert_eq!(
            first,
            "node n1: primary (epoch 3), NSO/ConfD ok, READ-ONLY (no quorum or lease: takes no commits)"
        );
    }

    #[test]
    fn status_renders_for_an_operator() {
        let lines: Vec<String> = render_status(&report())
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "node n1: primary (epoch 3), NSO/ConfD ok",
                "primary: n1   plan: n1 stays primary",
                "ACTION NEEDED: n2 runs a different configuration ([[node]] n3, [policy] differ from this node's): make coroha.toml the same on every node",
                "corosync: quorate, ring 1.1e [1, 2], 2 of 3 expected votes needed, 2 coroha daemons",
                "NODE         ROLE        EPOCH  IN ROLE    PARENT     HEALTH     DATA      TXID",
                "n1           primary         3  1h 1m 5s   -          ok         in-sync   1796-229333-823989",
                "n2           secondary       3  -          n1         failing    behind    -                  standby",
                "failing on n2: besecondary: HA_BADTOKEN",
                "n3           -               -  -          coroha stopped",
            ]
        );
    }

    #[test]
    fn history_renders_one_line_an_entry_in_utc() {
        use crate::daemon::history::Kind;
        let entries = [Entry {
            at: 1_796_608_800_269,
            node: "n2".into(),
            epoch: 14,
            kind: Kind::RoleChange,
            text: "role none -> primary: n2 elected".into(),
        }];
        assert_eq!(
            render_history(&entries),
            "2026-12-07T02:00:00.269Z  n2       epoch 14   role_change  role none -> primary: n2 elected\n"
        );
    }

    #[test]
    fn what_needs_the_eye_is_coloured_and_the_rest_is_not() {
        let text = "node n1: none (epoch 3), NSO/ConfD ok\nACTION NEEDED: do it\nPAUSED: wait\n";
        assert_eq!(
            highlight(text),
            "node n1: none (epoch 3), NSO/ConfD ok\n\x1b[1;31mACTION NEEDED: do it\x1b[0m\n\x1b[1;33mPAUSED: wait\x1b[0m\n"
        );
    }

    #[test]
    fn a_status_reply_comes_back_as_it_was_sent() {
        let line = Reply::Status(Box::new(report())).to_line();
        let back: Reply = serde_json::from_slice(&line).unwrap();
        match back {
            Reply::Status(s) => {
                assert_eq!(s.policy, report().policy);
                assert_eq!(s.corosync, report().corosync);
            }
            other => panic!("{other:?}"),
        }
    }
}
