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
    };
    let mut b = Node {
        ip: ip_b,
        ports,
        fake: None,
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
