//! Failover on a real corosync cluster (network namespaces, root): every
//! node runs corosync 3, fake-confd and `coroha run`. Each scenario checks
//! I1 (never two primaries at once) from every fake-confd's role history,
//! and I3 (one primary, every other node its secondary) at the end.
//! Issue 11's faults (a frozen primary, one-way loss, `two_node`, another
//! HA client, the chaos run) are in `lab_faults.rs`.
//!
//! The failover latency benchmarks of docs/benchmarks.md are in
//! `lab_latency.rs`.

#[path = "common/client.rs"]
mod client;
#[path = "common/lab.rs"]
mod lab;
#[path = "common/run.rs"]
mod run;

use lab::{unix_ms, wait_for, Lab, Proc};
use run::*;
use std::time::{Duration, Instant};

#[test]
fn first_election_3() {
    let Some((_g, lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    assert_eq!(
        lab.promotions_since(0).len(),
        1,
        "one promotion: {:?}",
        lab.changes_since(0)
    );
    no_overlap(&lab);
    let out = lab.coroha_cmd(p, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("node n{p}: primary")), "{text}");
    assert!(text.contains("quorate"), "{text}");
}

fn primary_isolated(n: u32) {
    let Some((_g, lab)) = lab(n) else { return };
    let p = lab.wait_settled(&all(n), SETTLE);
    lab.link(p, false);
    // A load balancer asking `/primary` never sees two nodes answer 200:
    // the isolated primary says 503 (its lease lapsed) before any other
    // node says 200.
    let cut = Instant::now();
    let mut old_says_no = None;
    let q = loop {
        assert!(cut.elapsed() < SETTLE, "no new primary answers /primary");
        if old_says_no.is_none() && lab.http_get(p, "/primary").is_some_and(|(c, _)| c == 503) {
            old_says_no = Some(cut.elapsed());
        }
        let new = without(n, p)
            .into_iter()
            .find(|id| lab.http_get(*id, "/primary").is_some_and(|(c, _)| c == 200));
        if let Some(q) = new {
            let no = old_says_no.expect("the old primary still answered 200 on /primary");
            eprintln!(
                "/primary: n{p} answered 503 {} ms after the cut, n{q} 200 at {} ms",
                no.as_millis(),
                cut.elapsed().as_millis()
            );
            break q;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The majority elects a new primary; the isolated one applies the
    // quorum-loss action (benone).
    assert_eq!(lab.wait_settled(&without(n, p), SETTLE), q);
    assert_ne!(q, p);
    wait_state(&lab, p, "none", SETTLE);
    // Demoted and cut off, it takes no commit (MAAPI read-only mode); the
    // new primary does.
    wait_for(SETTLE, &format!("n{p} read-only"), || {
        let s = lab.fake_status(p)?;
        (s["read_only"] == true).then_some(())
    });
    wait_for(SETTLE, &format!("n{q} writable"), || {
        let s = lab.fake_status(q)?;
        (s["read_only"] == false).then_some(())
    });
    let overlap = lab.max_overlap_ms();
    assert!(
        overlap <= QUORUM_LOSS_BOUND_MS,
        "old primary stayed primary {overlap} ms beside the new one"
    );
    eprintln!("isolated primary n{p}: n{q} took over; overlap across the partition {overlap} ms");
    // After healing, the old primary rejoins as a secondary of the new one.
    lab.link(p, true);
    assert_eq!(lab.wait_settled(&all(n), SETTLE), q);
}

#[test]
fn primary_isolated_3() {
    primary_isolated(3);
}

#[test]
fn primary_isolated_5() {
    primary_isolated(5);
}

/// A load balancer that checks `/primary` (HAProxy, as in
/// docs/haproxy.cfg) sends new connections to the new primary after a
/// switchover and after the primary's node crashes. What it reaches here is
/// each node's own HTTP listener, whose `/primary` names the node.
#[test]
fn haproxy_follows_the_primary() {
    let Some((_g, mut lab)) = lab_with(3, Lab::http_on_node_address) else {
        return;
    };
    let p = lab.wait_settled(&all(3), SETTLE);
    let proxy = lab.haproxy();
    let reaches = |id: u32, what: &str| {
        let want = format!("n{id}: primary\n");
        wait_for(SETTLE, what, || {
            (proxy.get("/primary")? == (200, want.clone())).then_some(())
        });
    };
    reaches(p, "HAProxy sends to the primary");
    let to = without(3, p)[0];
    let out = lab.coroha_cmd(p, &["switchover", "--to", &format!("n{to}")]);
    assert!(out.status.success(), "{out:?}");
    let t = Instant::now();
    reaches(to, "HAProxy follows the switchover");
    eprintln!(
        "HAProxy followed the switchover in {} ms",
        t.elapsed().as_millis()
    );
    lab.crash(to);
    let t = Instant::now();
    let q = lab.wait_settled(&without(3, to), SETTLE);
    reaches(q, "HAProxy follows the failover");
    eprintln!(
        "HAProxy followed the failover in {} ms",
        t.elapsed().as_millis()
    );
    no_overlap(&lab);
}

#[test]
fn primary_node_crash() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    lab.crash(p);
    let q = lab.wait_settled(&without(3, p), SETTLE);
    assert_ne!(q, p);
    no_overlap(&lab);
    // The node comes back and joins as a secondary: the primary stays put.
    rejoins_under(&mut lab, p, q);
}

#[test]
fn nso_dies_on_primary() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    lab.signal(p, Proc::Fake, "KILL");
    let q = lab.wait_settled(&without(3, p), SETTLE);
    assert_ne!(q, p);
    no_overlap(&lab);
    // NSO/ConfD comes back (in none): its coroha attaches it.
    lab.start_fake(p);
    assert_eq!(lab.wait_settled(&all(3), SETTLE), q);
    no_overlap(&lab);
}

#[test]
fn coroha_killed_on_primary() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    let t0 = unix_ms();
    lab.signal(p, Proc::Coroha, "KILL");
    // Its NSO/ConfD still serves: beyond the orphan grace (3 s here)
    // nothing moves (docs/design.md, section 7).
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(lab.changes_since(t0), vec![], "no role change");
    assert_eq!(lab.settled_primary(&all(3)), Some(p));
    // Now NSO/ConfD dies too: the failed attachments are the evidence, and
    // the others elect a new primary.
    lab.signal(p, Proc::Fake, "KILL");
    let q = lab.wait_settled(&without(3, p), SETTLE);
    assert_ne!(q, p);
    no_overlap(&lab);
    lab.start_fake(p);
    lab.start_coroha(p);
    assert_eq!(lab.wait_settled(&all(3), SETTLE), q);
    no_overlap(&lab);
}

fn sigterm_handover(n: u32) {
    // Role hooks take a second: the stop waits for the last one.
    let Some((_g, mut lab)) = lab_with(n, Lab::slow_role_hooks) else {
        return;
    };
    let p = lab.wait_settled(&all(n), SETTLE);
    let t0 = unix_ms();
    lab.signal(p, Proc::Coroha, "TERM");
    // An orderly stop: the primary moves, and this node's NSO/ConfD is
    // left as a secondary of the new primary.
    let q = lab.wait_settled(&all(n), SETTLE);
    assert_ne!(q, p);
    no_overlap(&lab);
    // The hook of its last role change ran before coroha exited.
    wait_for(SETTLE, &format!("n{p}'s coroha to exit"), || {
        (!lab.running(p, Proc::Coroha)).then_some(())
    });
    let hooks = std::fs::read_to_string(lab.node(p).dir.join("hooks.log")).unwrap();
    let last = hooks.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("secondary "),
        "last role hook on n{p}: {hooks:?}"
    );
    let promoted = lab.promotions_since(t0);
    eprintln!(
        "SIGTERM on n{p}: n{q} primary after {} ms",
        promoted[0].1 - t0
    );
    // Started again, it stays a secondary: the primary stays put.
    let t1 = unix_ms();
    lab.start_coroha(p);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lab.settled_primary(&all(n)), Some(q));
    assert!(lab.promotions_since(t1).is_empty());
}

#[test]
fn sigterm_handover_3() {
    sigterm_handover(3);
}

#[test]
fn sigterm_handover_5() {
    sigterm_handover(5);
}

#[test]
fn maintenance_stop_keeps_roles() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    let t0 = unix_ms();
    let out = lab.coroha_cmd(p, &["stop", "--keep-roles"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lab.wait_exit(p, Proc::Coroha, Duration::from_secs(10)), 0);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        lab.changes_since(t0),
        vec![],
        "no role change while stopped"
    );
    // The others still list it: its node is up, its coroha is not, and its
    // NSO/ConfD may serve as the primary it was.
    let out = lab.coroha_cmd(without(3, p)[0], &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let absent = &status["status"]["policy"]["absent"];
    assert_eq!(absent[0]["name"], format!("n{p}"), "{status}");
    assert_eq!(absent[0]["presence"], "coroha_stopped", "{status}");
    assert!(absent[0]["orphaned_primary"].is_u64(), "{status}");
    lab.start_coroha(p);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        lab.changes_since(t0),
        vec![],
        "no role change after the restart"
    );
    assert_eq!(lab.settled_primary(&all(3)), Some(p));
    let out = lab.coroha_cmd(p, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["status"]["policy"]["role"], "primary", "{status}");
    // Its history outlived the stop: the request that stopped it, then
    // the role it adopted when it came back.
    let out = lab.coroha_cmd(p, &["history", "--json"]);
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = reply["history"].as_array().expect("history entries");
    let texts: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["text"].as_str().unwrap()))
        .collect();
    let stop = texts
        .iter()
        .position(|(k, t)| {
            *k == "operator"
                && t.starts_with("stop --keep-roles by uid 0 (pid ")
                && t.ends_with(": taken")
        })
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert!(
        texts[stop..]
            .iter()
            .any(|(k, t)| *k == "role_change" && t.starts_with("role unknown -> primary")),
        "{texts:?}"
    );
}

#[test]
fn coroha_sigkill_and_restart_within_grace() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    let t0 = unix_ms();
    lab.signal(p, Proc::Coroha, "KILL");
    std::thread::sleep(Duration::from_millis(1000));
    lab.start_coroha(p);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(lab.changes_since(t0), vec![], "no role change");
    assert_eq!(lab.settled_primary(&all(3)), Some(p));
}

#[test]
fn corosync_restart_on_a_secondary() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    let s = without(3, p)[0];
    let t0 = unix_ms();
    lab.signal(s, Proc::Corosync, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    lab.start_corosync(s);
    lab.wait_ring(&all(3), SETTLE);
    assert_eq!(lab.wait_settled(&all(3), SETTLE), p);
    assert!(
        lab.promotions_since(t0).is_empty(),
        "{:?}",
        lab.changes_since(t0)
    );
    // Its coroha reconnected by itself and is back in the group.
    wait_for(SETTLE, "n{s} reconnected", || {
        let out = lab.coroha_cmd(s, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let c = &v["status"]["corosync"];
        (c["connected"] == true && c["reconnects"] == 1 && c["group"].as_array()?.len() == 3)
            .then_some(())
    });
}

#[test]
fn rolling_restart_of_all_nodes() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    // Secondaries first, the primary last, as an operator would.
    let mut order = without(3, p);
    order.push(p);
    for id in order {
        lab.signal(id, Proc::Coroha, "TERM");
        lab.signal(id, Proc::Fake, "KILL");
        lab.signal(id, Proc::Corosync, "TERM");
        lab.start_corosync(id);
        lab.wait_ring(&all(3), SETTLE);
        lab.start_fake(id);
        lab.start_coroha(id);
        lab.wait_settled(&all(3), SETTLE);
        no_overlap(&lab);
    }
    let q = lab.wait_settled(&all(3), SETTLE);
    assert_ne!(q, p, "the primary moved away from the last node restarted");
}

/// What an operator touches on a real node: sd_notify, role hooks, the
/// health endpoints and metrics, SIGHUP reload (applied, refused, needs a restart),
/// and the refusal to start with a node corosync does not know.
#[test]
fn daemon_interfaces() {
    let mut notify = None;
    let Some((_g, mut lab)) = lab_with(3, |lab| {
        let path = lab.node(1).dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        notify = Some(socket);
        lab.nodes[0].coroha_env = format!("NOTIFY_SOCKET={}", path.display());
    }) else {
        return;
    };
    let notify = notify.expect("set up");
    let p = lab.wait_settled(&all(3), SETTLE);

    // systemd: READY, then a STATUS naming the role and quorum.
    let mut said = vec![];
    let mut buf = [0u8; 4096];
    let seen = |said: &[String]| {
        said.iter().any(|m| m.contains("READY=1"))
            && said
                .iter()
                .any(|m| m.contains("STATUS=") && m.contains(", quorate,"))
    };
    while !seen(&said) {
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{e}; so far {said:?}"));
        said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }

    // Role hooks, with the roles in their environment.
    for id in all(3) {
        let want = if id == p {
            "primary none"
        } else {
            "secondary none"
        };
        let path = lab.node(id).dir.join("hooks.log");
        wait_for(SETTLE, &format!("n{id}'s role hook"), || {
            let text = std::fs::read_to_string(&path).ok()?;
            text.lines().any(|l| l == want).then_some(())
        });
    }

    // Health endpoints: a load balancer finds the primary by its status
    // code; every node is healthy and ready.
    for id in all(3) {
        let code = |path| lab.http_get(id, path).map(|(code, _)| code);
        let (primary, secondary) = if id == p { (200, 503) } else { (503, 200) };
        assert_eq!(code("/primary"), Some(primary), "n{id} /primary");
        assert_eq!(code("/secondary"), Some(secondary), "n{id} /secondary");
        assert_eq!(code("/health"), Some(200), "n{id} /health");
        assert_eq!(code("/readiness"), Some(200), "n{id} /readiness");
        assert_eq!(code("/"), Some(404), "n{id} /");
    }

    // Prometheus text on the HTTP listener.
    let (code, text) = lab.http_get(p, "/metrics").expect("an answer");
    assert_eq!(code, 200, "{text}");
    for line in [
        "coroha_role{role=\"primary\"} 1",
        "coroha_quorate 1",
        "coroha_group_members 3",
        "coroha_ha_orders_total{verb=\"beprimary\",outcome=\"ok\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }

    // A real Prometheus scrapes the OpenMetrics text and reads it back.
    let prometheus = lab.prometheus(p);
    let deadline = Instant::now() + SETTLE;
    let role = "coroha_role{role=\"primary\"}";
    while prometheus.query(role).as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "Prometheus never read the primary role; its scrape: {}",
            prometheus.target_health()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(prometheus.query("up").as_deref(), Some("1"));
    let orders = "coroha_ha_orders_total{verb=\"beprimary\",outcome=\"ok\"}";
    assert_eq!(prometheus.query(orders).as_deref(), Some("1"));
    drop(prometheus);

    // CDB transaction ids: a commit on the primary reaches every node's
    // status as that commit's id, each node in sync.
    let commit = lab.fake_ctl(p, "write").expect("write on the primary");
    let micros = commit["txid"].as_u64().expect("a txid");
    let want = serde_json::json!({
        "mega": micros / 1_000_000_000_000,
        "secs": micros / 1_000_000 % 1_000_000,
        "micros": micros % 1_000_000,
    });
    for id in all(3) {
        wait_for(SETTLE, &format!("n{id}'s status shows the commit"), || {
            let out = lab.coroha_cmd(id, &["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let members = v["status"]["policy"]["members"].as_array()?.clone();
            (members.len() == 3
                && members
                    .iter()
                    .all(|m| m["txid"] == want && m["data"] == "in_sync"))
            .then_some(())
        });
    }
    let out = lab.coroha_cmd(p, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches(" in-sync ").count(), 3, "{text}");

    // SIGHUP: a priority is applied, a group change waits for a restart,
    // and a broken file is refused with its position.
    let config = lab.node(p).dir.join("coroha.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    let changed = good
        .replacen("[cluster]\n", "[cluster]\ngroup = \"elsewhere\"\n", 1)
        .replacen(
            &format!("id = {p}\n"),
            &format!("id = {p}\npriority = 150\n"),
            1,
        );
    std::fs::write(&config, changed).unwrap();
    let t0 = unix_ms();
    lab.signal(p, Proc::Coroha, "HUP");
    wait_for(SETTLE, "the reload", || {
        lab.log_time(p, t0, &format!("reload: applied node n{p}"))
    });
    assert!(lab
        .log_time(
            p,
            t0,
            "reload: [cluster] changed; not applied until coroha restarts"
        )
        .is_some());
    std::fs::write(&config, good.replacen("[policy]", "[policy\n", 1)).unwrap();
    let t1 = unix_ms();
    lab.signal(p, Proc::Coroha, "HUP");
    wait_for(SETTLE, "the refused reload", || {
        lab.log_time(p, t1, "reload refused, the running configuration stays")
    });
    std::fs::write(&config, &good).unwrap();
    assert_eq!(lab.changes_since(t0), vec![], "a reload moves nothing");

    // A planned switchover to a named node, asked on another node; demote
    // before promote, so no overlap.
    let to = without(3, p)[1];
    let out = lab.coroha_cmd(without(3, p)[0], &["switchover", "--to", &format!("n{to}")]);
    assert!(out.status.success(), "{out:?}");
    // The command waits until the asked node shows the new primary.
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.starts_with(&format!("n{to} is primary (epoch ")),
        "{said}"
    );
    lab.wait_settled_on(&all(3), to, SETTLE);
    no_overlap(&lab);
    // An unknown node, the primary itself, or a node in standby: refused
    // with the reason, exit status 1, nothing moves.
    let t1 = unix_ms();
    let (name_to, name_p) = (format!("n{to}"), format!("n{p}"));
    let refusals = [
        (
            vec!["switchover", "--to", "n42"],
            "no node named \"n42\"".to_string(),
        ),
        (
            vec!["switchover", "--to", &name_to],
            format!("{name_to} is already primary"),
        ),
    ];
    for (args, why) in refusals {
        let out = lab.coroha_cmd(p, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&why),
            "{out:?}"
        );
    }
    let out = lab.coroha_cmd(p, &["standby", &name_p]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).split(',').next(),
        Some(format!("n{p} is in standby").as_str()),
        "{out:?}"
    );
    let out = lab.coroha_cmd(to, &["switchover", "--to", &name_p]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("n{p} cannot take over: standby")),
        "{out:?}"
    );
    assert_eq!(lab.changes_since(t1), vec![], "a refusal moves nothing");
    let out = lab.coroha_cmd(p, &["standby", "--off", &name_p]);
    assert!(out.status.success(), "{out:?}");

    // A node corosync does not know: refused before joining.
    let bad = lab.node(1).dir.join("bad.toml");
    std::fs::write(
        &bad,
        good.replace(
            "[control]",
            "[[node]]\nname = \"n9\"\nid = 9\naddress = \"10.213.0.9\"\n\n[control]",
        ),
    )
    .unwrap();
    let out = lab.in_node(
        1,
        &format!(
            "{} run --config {} --wait-corosync 0",
            lab::COROHA,
            bad.display()
        ),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("node \"n9\": id 9 is not in corosync's nodelist (it has ids 1, 2, 3)"),
        "{err}"
    );
    assert!(err.contains(&format!("{}:", bad.display())), "{err}");
    // check-config --corosync makes the same check, without starting.
    let out = lab.in_node(
        1,
        &format!(
            "{} check-config --corosync --config {}",
            lab::COROHA,
            bad.display()
        ),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("id 9 is not in corosync's nodelist"), "{err}");
    let good_path = lab.node(1).dir.join("coroha.toml");
    let out = lab.in_node(
        1,
        &format!(
            "{} check-config --corosync --config {}",
            lab::COROHA,
            good_path.display()
        ),
    );
    assert!(out.status.success(), "{out:?}");
}

/// `coroha pause`, then the primary crashes: nobody is promoted while
/// paused; `coroha resume` elects a new primary at once.
#[test]
fn pause_holds_every_role_through_a_crash_and_resume_decides() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    let rest = without(3, p);
    let out = lab.coroha_cmd(rest[0], &["pause"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.starts_with("the cluster is paused, "), "{out:?}");
    let t0 = unix_ms();
    lab.crash(p);
    // Well past corosync's detection and the promotion delay.
    std::thread::sleep(Duration::from_secs(10));
    let promoted: Vec<u32> = lab
        .changes_since(t0)
        .into_iter()
        .filter(|(_, _, role)| role == "primary")
        .map(|(node, _, _)| node)
        .collect();
    assert_eq!(promoted, Vec::<u32>::new(), "nobody promoted while paused");
    let out = lab.coroha_cmd(rest[1], &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["status"]["policy"]["paused"], true, "{status}");
    let out = lab.coroha_cmd(rest[1], &["resume"]);
    assert!(out.status.success(), "{out:?}");
    let q = lab.wait_settled(&rest, SETTLE);
    assert!(rest.contains(&q));
    no_overlap(&lab);
    rejoins_under(&mut lab, p, q);
}

/// The outputs docs/operations.md shows, from a real run: a healthy
/// cluster, refusals, a pause, and an orphan whose node is gone.
#[test]
#[ignore = "transcript for docs/operations.md: cargo test --release --test lab -- --ignored transcript --nocapture"]
fn transcript() {
    let Some((_g, mut lab)) = lab(3) else { return };
    let p = lab.wait_settled(&all(3), SETTLE);
    let rest = without(3, p);
    let show = |lab: &lab::Lab, on: u32, args: &[&str]| {
        let out = lab.coroha_cmd(on, args);
        println!("$ coroha {}   # on n{on}", args.join(" "));
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        println!("(exit {})\n", out.status.code().unwrap_or(-1));
    };
    show(&lab, p, &["status"]);
    let to = format!("n{}", rest[0]);
    show(&lab, rest[1], &["switchover", "--to", &to]);
    show(&lab, rest[1], &["switchover", "--to", &to]);
    show(&lab, p, &["standby", &format!("n{p}")]);
    show(&lab, rest[1], &["switchover", "--to", &format!("n{p}")]);
    show(&lab, p, &["standby", "--off", &format!("n{p}")]);
    show(&lab, p, &["pause"]);
    show(&lab, p, &["status"]);
    show(&lab, p, &["resume"]);
    let q = lab.wait_settled(&all(3), SETTLE);
    // The primary's coroha stopped for maintenance, then its node lost.
    show(&lab, q, &["stop", "--keep-roles"]);
    lab.crash(q);
    std::thread::sleep(Duration::from_secs(8));
    let other = without(3, q)[0];
    show(&lab, other, &["status"]);
    show(&lab, other, &["confirm-down", &format!("n{q}")]);
    show(&lab, other, &["status"]);
    show(&lab, other, &["history", "-n", "12"]);
}
