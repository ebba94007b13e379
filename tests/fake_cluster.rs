//! Two fake-confd nodes driven through `coroha ha`, the operator's tool:
//! primary, a secondary attaches, status on both, a replicated write, the
//! primary killed (the secondary reports no primary and falls to none),
//! benone, and secondary-dead dropping a secondary.

use coroha_testkit::free_ports;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-token";

struct Node {
    ip: &'static str,
    ports: [u16; 3],
    fake: Option<Child>,
    /// More fake-confd flags.
    flags: &'static [&'static str],
}

impl Node {
    fn ipc(&self) -> String {
        format!("{}:{}", self.ip, self.ports[0])
    }
    fn admin(&self) -> String {
        format!("{}:{}", self.ip, self.ports[2])
    }

    fn start(&mut self) {
        let child = Command::new(coroha_testkit::workspace_bin(
            env!("CARGO_BIN_EXE_coroha"),
            "fake-confd",
        ))
        .args(["--ipc", &self.ipc()])
        .args(["--ha-listen", &format!("{}:{}", self.ip, self.ports[1])])
        .args(["--admin", &self.admin()])
        .args(["--tick-ms", "300"])
        .args(self.flags)
        .stderr(Stdio::null())
        .spawn()
        .expect("start fake-confd");
        self.fake = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.admin()).is_err() {
            assert!(Instant::now() < deadline, "fake-confd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.fake.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `coroha ha --json ...` against this node: (exit code, JSON answer).
    fn ha(&self, args: &[&str]) -> (i32, Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_coroha"))
            .args(["ha", "--ipc", &self.ipc(), "--token", TOKEN, "--json"])
            .args(args)
            .output()
            .expect("run coroha ha");
        let text = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), v)
    }

    fn ctl(&self, command: &str) -> Value {
        let out = Command::new(coroha_testkit::workspace_bin(
            env!("CARGO_BIN_EXE_coroha"),
            "fake-confd",
        ))
        .args(["ctl", &self.admin(), command])
        .output()
        .expect("run fake-confd ctl");
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `coroha ha watch --json` on a node, its events as they arrive.
struct Watch {
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Watch {
    fn start(node: &Node) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coroha"))
            .args(["ha", "--ipc", &node.ipc(), "--token", TOKEN, "--json"])
            .arg("watch")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run coroha ha watch");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        // The subscription is in place once a status answers after it.
        std::thread::sleep(Duration::from_millis(200));
        Watch { child, events }
    }

    /// The next event, or panic after a while.
    fn next(&self) -> Value {
        self.events
            .recv_timeout(Duration::from_secs(10))
            .expect("an HA event")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two running fakes on their own loopback addresses, same ports.
fn started_pair(ip_a: &'static str, ip_b: &'static str) -> (Node, Node) {
    let ports = free_ports();
    let mut a = Node {
        ip: ip_a,
        ports,
        fake: None,
        flags: &[],
    };
    let mut b = Node {
        ip: ip_b,
        ports,
        fake: None,
        flags: &[],
    };
    a.start();
    b.start();
    (a, b)
}

#[test]
fn two_fake_nodes_through_coroha_ha() {
    let (mut a, b) = started_pair("127.0.1.1", "127.0.1.2");

    assert_eq!(
        a.ha(&["beprimary", "a"]),
        (0, serde_json::json!({"ok": true}))
    );
    let watch_a = Watch::start(&a);
    let watch_b = Watch::start(&b);
    assert_eq!(
        b.ha(&["besecondary", "b", "a", a.ip]),
        (0, serde_json::json!({"ok": true}))
    );
    let arrived = watch_a.next();
    assert_eq!(
        (&arrived["event"], &arrived["node"]),
        (&"secondary_arrived".into(), &"b".into())
    );
    assert_eq!(watch_b.next()["event"], "secondary_initialized");

    let (code, status) = a.ha(&["status"]);
    assert_eq!(code, 0);
    assert_eq!(status["role"], "primary");
    assert_eq!(status["nodes"][0]["node"], "b");
    let (_, status) = b.ha(&["status"]);
    assert_eq!(status["role"], "secondary");
    assert_eq!(status["nodes"][0]["node"], "a");
    assert_eq!(status["nodes"][0]["address"], a.ip);

    // A write on the primary is acknowledged once the secondary has it.
    let w = a.ctl("write");
    assert_eq!(w["ok"], true);
    assert_eq!(b.ctl("status")["txid"], w["txid"]);
    assert_eq!(b.ctl("write")["ok"], false, "a secondary takes no writes");
    // CDB's txid: the secondary is at its primary's commit, tagged with it.
    let (code, txid_a) = a.ha(&["txid"]);
    assert_eq!(code, 0);
    assert_eq!(txid_a["primary"], "a");
    assert_eq!(txid_a["empty"], false);
    assert_eq!(b.ha(&["txid"]).1, txid_a);

    // The primary dies: the secondary reports it and falls to none.
    a.kill();
    let lost = watch_b.next();
    assert_eq!(lost["event"], "no_primary");
    assert_eq!(lost["name"], "HA_CLOSED");
    assert_eq!(watch_b.next()["event"], "is_none");
    assert_eq!(b.ha(&["status"]).1["role"], "none");
    assert_eq!(b.ha(&["benone"]).0, 0);

    // The survivor takes over with the data it had; the old primary comes
    // back and joins it, and is then declared dead by secondary-dead.
    assert_eq!(b.ha(&["beprimary", "b"]).0, 0);
    a.start();
    let watch_a = Watch::start(&a);
    assert_eq!(a.ha(&["besecondary", "a", "b", b.ip]).0, 0);
    assert_eq!(a.ctl("status")["txid"], w["txid"]);
    // Same triple, and a secondary that already had it keeps its own tag.
    assert_eq!(a.ha(&["txid"]).1["txid"], txid_a["txid"]);
    assert_eq!(b.ha(&["status"]).1["nodes"][0]["node"], "a");
    assert_eq!(watch_a.next()["event"], "secondary_initialized");
    assert_eq!(
        b.ha(&["secondary-dead", "a"]),
        (0, serde_json::json!({"ok": true}))
    );
    let dropped = watch_a.next();
    assert_eq!(dropped["event"], "no_primary");
    assert_eq!(watch_a.next()["event"], "is_none");
    assert_eq!(b.ha(&["status"]).1["nodes"], serde_json::json!([]));

    // A wrong token is refused by the primary, as ConfD does.
    let out = Command::new(env!("CARGO_BIN_EXE_coroha"))
        .args(["ha", "--ipc", &a.ipc(), "--token", "wrong", "--json"])
        .args(["besecondary", "a", "b", b.ip])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["name"], "HA_BADTOKEN");

    // The role history of each node, as the fake recorded it.
    let history = |n: &Node| -> Vec<String> {
        n.ctl("status")["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["state"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(history(&b), ["none", "secondary", "none", "primary"]);
    assert_eq!(history(&a), ["none", "secondary", "none"]);
}

#[test]
fn a_frozen_primary_is_reported_as_no_ticks() {
    let (a, b) = started_pair("127.0.1.3", "127.0.1.4");
    assert_eq!(a.ha(&["beprimary", "a"]).0, 0);
    let watch_b = Watch::start(&b);
    assert_eq!(b.ha(&["besecondary", "b", "a", a.ip]).0, 0);
    assert_eq!(watch_b.next()["event"], "secondary_initialized");
    let pid = a.fake.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let lost = watch_b.next();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    assert_eq!(lost["event"], "no_primary");
    assert_eq!(lost["name"], "HA_NOTICK");
}

/// n1 primary, n2 its secondary turned relay, n3 a secondary of the relay:
/// the setup in which a real ConfD 8.2.5 and fake-confd were compared
/// (issue 17, docs/ha-protocol.md "Relays").
fn relay_chain(ips: [&'static str; 3]) -> [Node; 3] {
    let ports = free_ports();
    let mut nodes = ips.map(|ip| Node {
        ip,
        ports,
        fake: None,
        flags: &[],
    });
    for n in &mut nodes {
        n.start();
    }
    let [n1, n2, n3] = &nodes;
    assert_eq!(n1.ha(&["beprimary", "n1"]).0, 0);
    assert_eq!(n2.ha(&["besecondary", "n2", "n1", n1.ip]).0, 0);
    assert_eq!(n2.ha(&["berelay"]).0, 0);
    assert_eq!(n3.ha(&["besecondary", "n3", "n2", n2.ip]).0, 0);
    wait_for_listing(n1, &["n3", "n2"]);
    nodes
}

/// The nodes a node's status lists, newest first.
fn listed(node: &Node) -> Vec<String> {
    node.ha(&["status"]).1["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["node"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until `node` lists exactly `want` (a relay passes arrivals up
/// asynchronously).
fn wait_for_listing(node: &Node, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = listed(node);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} lists {now:?}, not {want:?}",
            node.ip
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_relay_refuses_secondary_dead_and_the_top_primary_drops_a_node_behind_it() {
    let [n1, n2, n3] = relay_chain(["127.0.1.5", "127.0.1.6", "127.0.1.7"]);
    // On the relay, with or without a node behind it: BADSTATE.
    for name in ["n3", "n9"] {
        let (code, v) = n2.ha(&["secondary-dead", name]);
        assert_eq!((code, &v["error"]["code"]), (1, &17.into()), "{v}");
    }
    // On the top primary, for the node behind the relay: it is
    // disconnected, and listed again, through the relay, once it rejoins.
    let watch_n3 = Watch::start(&n3);
    assert_eq!(n1.ha(&["secondary-dead", "n3"]).0, 0);
    let lost = watch_n3.next();
    assert_eq!(
        (&lost["event"], &lost["code"]),
        (&"no_primary".into(), &26.into())
    );
    assert_eq!(watch_n3.next()["event"], "is_none");
    wait_for_listing(&n1, &["n2"]);
    wait_for_listing(&n2, &["n1"]);
    assert_eq!(n3.ha(&["besecondary", "n3", "n2", n2.ip]).0, 0);
    wait_for_listing(&n1, &["n3", "n2"]);
    // Moving up to the top primary and back works every time (the real
    // server took it 5 of 5 times; fake-confd used to say HA_BADNAME).
    for _ in 0..5 {
        assert_eq!(
            n3.ha(&["besecondary", "n3", "n1", n1.ip]),
            (0, serde_json::json!({"ok": true}))
        );
        wait_for_listing(&n1, &["n3", "n2"]);
        wait_for_listing(&n2, &["n1"]);
        assert_eq!(n3.ha(&["besecondary", "n3", "n2", n2.ip]).0, 0);
        wait_for_listing(&n2, &["n1", "n3"]);
    }
}

#[test]
fn secondary_dead_of_a_relay_takes_the_nodes_behind_it_with_it() {
    let [n1, _n2, _n3] = relay_chain(["127.0.1.8", "127.0.1.9", "127.0.1.10"]);
    let watch_n1 = Watch::start(&n1);
    assert_eq!(n1.ha(&["secondary-dead", "n2"]).0, 0);
    let died = watch_n1.next();
    assert_eq!(
        (&died["event"], &died["node"]),
        (&"secondary_died".into(), &"n3".into())
    );
    wait_for_listing(&n1, &[]);
}

#[test]
fn a_relay_that_goes_away_dies_before_the_nodes_behind_it() {
    let [n1, mut n2, n3] = relay_chain(["127.0.1.11", "127.0.1.12", "127.0.1.13"]);
    let watch_n1 = Watch::start(&n1);
    let died = |w: &Watch| {
        let v = w.next();
        assert_eq!(v["event"], "secondary_died", "{v}");
        v["node"].as_str().unwrap_or("?").to_string()
    };
    // The relay made primary: it starts with nobody, and the node it
    // relayed for may join it.
    assert_eq!(n2.ha(&["beprimary", "n2"]).0, 0);
    assert_eq!([died(&watch_n1), died(&watch_n1)], ["n2", "n3"]);
    wait_for_listing(&n2, &[]);
    assert_eq!(n3.ha(&["besecondary", "n3", "n2", n2.ip]).0, 0);
    wait_for_listing(&n2, &["n3"]);
    // Back to the chain, and the relay killed: the same order.
    assert_eq!(n2.ha(&["besecondary", "n2", "n1", n1.ip]).0, 0);
    assert_eq!(n2.ha(&["berelay"]).0, 0);
    assert_eq!(n3.ha(&["besecondary", "n3", "n2", n2.ip]).0, 0);
    wait_for_listing(&n1, &["n3", "n2"]);
    let watch_n1 = Watch::start(&n1);
    n2.kill();
    assert_eq!([died(&watch_n1), died(&watch_n1)], ["n2", "n3"]);
}

#[test]
fn a_join_takes_as_long_as_a_real_servers_with_join_latency() {
    let ports = free_ports();
    let mut nodes = ["127.0.1.14", "127.0.1.15"].map(|ip| Node {
        ip,
        ports,
        fake: None,
        flags: &["--join-latency", "150ms-250ms"],
    });
    for n in &mut nodes {
        n.start();
    }
    let [a, b] = &nodes;
    assert_eq!(a.ha(&["beprimary", "a"]).0, 0);
    let started = Instant::now();
    assert_eq!(b.ha(&["besecondary", "b", "a", a.ip]).0, 0);
    // A lower bound only: the delay is the fake's own sleep.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}
