//! A real corosync cluster on one machine: one network namespace per node,
//! joined by a bridge in one more namespace (docs/lab.md). Every node runs
//! corosync 3, `fake-confd` and `coroha run`. Namespace names carry a
//! per-run suffix, and `Drop` tears everything down, also when a test
//! fails (the logs are kept then, and their place is printed).

#![allow(dead_code)]

use crate::client::{ctl, Writer};
use serde_json::Value;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "http.rs"]
mod http;
#[path = "pacemaker.rs"]
pub mod pacemaker;
#[path = "records.rs"]
mod records;
#[path = "setup.rs"]
mod setup;
#[path = "shm.rs"]
mod shm;

/// Labs run one at a time: two corosync clusters on two cores would blur
/// each other's timing.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub const COROHA: &str = env!("CARGO_BIN_EXE_coroha");
/// Longer than corosync needs to notice a loss with the lab's token of
/// 1 s (token + consensus, about 2.2 s, and a round to form the ring).
pub const STABLE: Duration = Duration::from_secs(4);
/// fake-confd, built by the workspace beside coroha.
pub fn fake_confd() -> String {
    coroha_testkit::workspace_bin(COROHA, "fake-confd")
        .display()
        .to_string()
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why the lab cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Some("the lab needs root (network namespaces)".into());
    }
    for tool in ["ip", "corosync", "unshare", "corosync-quorumtool"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "{tool} is not installed (scripts/test.sh installs it)"
            ));
        }
    }
    None
}

/// Skip only when asked to; otherwise a lab that cannot run fails.
pub fn require() -> bool {
    if let Some(why) = unavailable() {
        if std::env::var_os("COROHA_SKIP_LAB").is_some() {
            eprintln!("lab skipped (COROHA_SKIP_LAB): {why}");
            return false;
        }
        panic!("{why}; set COROHA_SKIP_LAB=1 to skip the lab");
    }
    true
}

pub(crate) fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("sh runs")
}

fn must(cmd: &str) {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Node {
    pub id: u32,
    pub ns: String,
    pub veth: String,
    pub dir: PathBuf,
    pub corosync: Option<Child>,
    pub coroha: Option<Child>,
    pub fake: Option<Child>,
    pub pacemaker: Option<Child>,
    /// Extra environment for this node's coroha (`NAME=value ...`).
    pub coroha_env: String,
}

pub struct Lab {
    pub tag: String,
    pub dir: PathBuf,
    pub bridge: String,
    pub nodes: Vec<Node>,
    /// Extra lines for every node's coroha.toml `[policy]`.
    pub policy: String,
    /// Extra lines for every node's coroha.toml `[hooks]`.
    pub hooks: String,
    /// Extra lines for every node's corosync.conf `quorum` section.
    pub quorum: String,
    /// Where every node's coroha answers HTTP (`[http] listen`).
    pub http_listen: String,
    /// Shell words every role hook runs before it notes the change in
    /// `hooks.log` (`"sleep 1; "`: a slow hook).
    pub hook_delay: String,
    /// Nodes that attach through a relay: (node, relay).
    pub relayed: Vec<(u32, u32)>,
    /// Pacemaker beside coroha ([`Lab::with_pacemaker`]).
    pub pacemaker: Option<pacemaker::PacemakerSetup>,
    /// `/dev/shm` before the lab began: what libqb leaves there for the
    /// processes the lab kills is removed at the end.
    shm_before: shm::ShmBefore,
}

pub fn addr(id: u32) -> String {
    format!("10.213.0.{id}")
}

impl Lab {
    /// Namespaces, bridge and configuration for `n` nodes; nothing runs yet.
    pub fn new(n: u32, policy: &str) -> Lab {
        let tag = format!(
            "{:05x}",
            (std::process::id() ^ (unix_ms() as u32)) & 0xfffff
        );
        let dir = std::env::temp_dir().join(format!("coroha-lab-{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let bridge = format!("crh{tag}b");
        let mut lab = Lab {
            tag: tag.clone(),
            dir: dir.clone(),
            bridge: bridge.clone(),
            nodes: vec![],
            policy: policy.to_string(),
            hooks: String::new(),
            quorum: String::new(),
            http_listen: "127.0.0.1:9647".into(),
            hook_delay: String::new(),
            relayed: vec![],
            pacemaker: None,
            shm_before: shm::ShmBefore::now(),
        };
        must(&format!("ip netns add {bridge}"));
        must(&format!(
            "ip netns exec {bridge} ip link add br0 type bridge"
        ));
        must(&format!("ip netns exec {bridge} ip link set br0 up"));
        for id in 1..=n {
            let ns = format!("crh{tag}n{id}");
            let veth = format!("v{tag}{id}");
            let node_dir = dir.join(format!("n{id}"));
            fs::create_dir_all(node_dir.join("run")).unwrap();
            fs::create_dir_all(node_dir.join("cs-state")).unwrap();
            lab.nodes.push(Node {
                id,
                ns: ns.clone(),
                veth: veth.clone(),
                dir: node_dir,
                corosync: None,
                coroha: None,
                fake: None,
                pacemaker: None,
                coroha_env: String::new(),
            });
            must(&format!("ip netns add {ns}"));
            must(&format!(
                "ip link add {veth} type veth peer name eth0 netns {ns}"
            ));
            must(&format!("ip link set {veth} netns {bridge}"));
            must(&format!(
                "ip netns exec {bridge} ip link set {veth} master br0"
            ));
            must(&format!("ip netns exec {bridge} ip link set {veth} up"));
            must(&format!("ip netns exec {ns} ip link set lo up"));
            must(&format!(
                "ip netns exec {ns} ip addr add {}/24 dev eth0",
                addr(id)
            ));
            must(&format!("ip netns exec {ns} ip link set eth0 up"));
        }
        for i in 0..lab.nodes.len() {
            lab.write_configs(i);
        }
        lab
    }

    fn write_configs(&self, i: usize) {
        let node = &self.nodes[i];
        let d = node.dir.display();
        let mut nodelist = String::new();
        let mut coroha_nodes = String::new();
        for n in &self.nodes {
            nodelist.push_str(&format!(
                "  node {{\n    nodeid: {id}\n    name: n{id}\n    ring0_addr: {a}\n  }}\n",
                id = n.id,
                a = addr(n.id)
            ));
            let relay = match self.relayed.iter().find(|(k, _)| *k == n.id) {
                Some((_, r)) => format!("relay_via = \"n{r}\"\ncan_primary = false\n"),
                None => String::new(),
            };
            coroha_nodes.push_str(&format!(
                "[[node]]\nname = \"n{id}\"\nid = {id}\naddress = \"{a}\"\n{relay}\n",
                id = n.id,
                a = addr(n.id)
            ));
        }
        fs::write(
            node.dir.join("corosync.conf"),
            format!(
                "totem {{\n  version: 2\n  cluster_name: lab{tag}\n  transport: knet\n  token: 1000\n  crypto_cipher: none\n  crypto_hash: none\n}}\n\
                 logging {{\n  to_logfile: yes\n  logfile: {d}/corosync.log\n  to_syslog: no\n  to_stderr: no\n  timestamp: hires\n  blackbox: off\n}}\n\
                 quorum {{\n  provider: corosync_votequorum\n{quorum}}}\n\
                 system {{\n  state_dir: {d}/cs-state\n}}\n\
                 nodelist {{\n{nodelist}}}\n",
                tag = self.tag,
                quorum = self.quorum
            ),
        )
        .unwrap();
        fs::write(
            node.dir.join("coroha.toml"),
            format!(
                "[cluster]\nstate_dir = \"{d}/coroha-state\"\n\n\
                 [ha]\nipc = \"127.0.0.1:4565\"\ntimeout = \"1s\"\nstatus_interval = \"500ms\"\ntick_timeout = \"{tick}ms\"\n\n\
                 [policy]\nstartup_settle = \"5s\"\norphan_grace = \"3s\"\n{policy}\n\n\
                 [control]\nsocket = \"{d}/control.sock\"\n\n\
                 [http]\nlisten = \"{http}\"\n\n\
                 [hooks]\non_primary = [\"sh\", \"-c\", \"{delay}echo $COROHA_ROLE $COROHA_PREVIOUS_ROLE >> {d}/hooks.log\"]\n\
                 on_secondary = [\"sh\", \"-c\", \"{delay}echo $COROHA_ROLE $COROHA_PREVIOUS_ROLE >> {d}/hooks.log\"]\n\
                 on_none = [\"sh\", \"-c\", \"{delay}echo $COROHA_ROLE $COROHA_PREVIOUS_ROLE >> {d}/hooks.log\"]\n{hooks}\n\
                 {pacemaker}\
                 {coroha_nodes}",
                policy = self.policy,
                tick = self.tick_ms(),
                hooks = self.hooks,
                http = self.http_listen,
                delay = self.hook_delay,
                pacemaker = if self.pacemaker.is_some() {
                    pacemaker::COROHA_SECTION
                } else {
                    ""
                },
            ),
        )
        .unwrap();
    }

    /// fake-confd's HA tick: ConfD's PT2S of the captures, but 2.5 s from
    /// 5 nodes on, where corosync's token + consensus (6.5 s with token
    /// 1000) outlasts 3 ticks of 2 s, which `coroha run` refuses (a commit
    /// in flight on a cut-off primary would be acknowledged alone before
    /// anybody noticed the cut; docs/design.md §6).
    pub fn tick_ms(&self) -> u64 {
        if self.nodes.len() >= 5 {
            2500
        } else {
            2000
        }
    }

    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize - 1]
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    fn spawn(&self, id: u32, log: &str, program: &str) -> Child {
        let node = self.node(id);
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join(log))
            .unwrap();
        Command::new("ip")
            .args(["netns", "exec", &node.ns, "sh", "-c", program])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    }

    pub fn start_corosync(&mut self, id: u32) {
        let d = self.node(id).dir.display().to_string();
        // A private /run: corosync's pid file is at a fixed path there.
        let child = self.spawn(
            id,
            "corosync.out",
            &format!("exec unshare -m sh -c 'mount --bind {d}/run /run && exec corosync -f -c {d}/corosync.conf'"),
        );
        self.node_mut(id).corosync = Some(child);
    }

    pub fn start_fake(&mut self, id: u32) {
        let d = self.node(id).dir.display().to_string();
        let a = addr(id);
        let child = self.spawn(
            id,
            "fake-confd.log",
            &format!(
                "exec {} --ipc 127.0.0.1:4565 --ha-listen {a}:4570 --admin unix:{d}/admin.sock --history {d}/history --cdb {d}/cdb --tick-ms {}",
                fake_confd(),
                self.tick_ms()
            ),
        );
        self.node_mut(id).fake = Some(child);
        let admin = self.node(id).dir.join("admin.sock");
        wait_for(Duration::from_secs(10), "fake-confd admin socket", || {
            admin.exists().then_some(())
        });
    }

    pub fn start_coroha(&mut self, id: u32) {
        let d = self.node(id).dir.display().to_string();
        let child = self.spawn(
            id,
            "coroha.log",
            &format!(
                "{} RUST_LOG=info,coroha=debug,coroha::corosync=trace,coroha::ha=trace exec {COROHA} run --config {d}/coroha.toml --log-format json",
                self.node(id).coroha_env
            ),
        );
        self.node_mut(id).coroha = Some(child);
    }

    /// Start corosync everywhere and wait for a quorate ring of all nodes,
    /// then the fakes and the daemons.
    pub fn start_all(&mut self) {
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        for &id in &ids {
            self.start_corosync(id);
        }
        self.wait_ring(&ids, Duration::from_secs(30));
        if let Some(setup) = self.pacemaker {
            self.start_pacemaker_cluster(setup);
            if setup.manager == pacemaker::Manager::Stateful {
                // Pacemaker alone decides: no coroha, no fake-confd.
                return;
            }
        }
        for &id in &ids {
            self.start_fake(id);
        }
        for &id in &ids {
            self.start_coroha(id);
        }
    }

    /// Wait until node `ids[0]`'s corosync reports a quorate ring of `ids`.
    pub fn wait_ring(&self, ids: &[u32], limit: Duration) {
        let ns = &self.node(ids[0]).ns;
        let want = ids.len();
        wait_for(limit, &format!("a quorate ring of {ids:?}"), || {
            let out = sh(&format!("ip netns exec {ns} corosync-quorumtool -s"));
            let text = String::from_utf8_lossy(&out.stdout);
            let members = text
                .lines()
                .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
                .filter(|l| l.contains(" n"))
                .count();
            (text.contains("Quorate:          Yes") && members == want).then_some(())
        });
    }

    fn slot(&mut self, id: u32, which: Proc) -> &mut Option<Child> {
        let node = self.node_mut(id);
        match which {
            Proc::Corosync => &mut node.corosync,
            Proc::Coroha => &mut node.coroha,
            Proc::Fake => &mut node.fake,
            Proc::Pacemaker => &mut node.pacemaker,
        }
    }

    /// Whether a process of a node runs (stopped counts); one that exited,
    /// killed by a fence hook for instance, is forgotten.
    pub fn running(&mut self, id: u32, which: Proc) -> bool {
        let slot = self.slot(id, which);
        let exited = match slot.as_mut() {
            None => return false,
            Some(child) => !matches!(child.try_wait(), Ok(None)),
        };
        if exited {
            *slot = None;
        }
        !exited
    }

    /// Start whichever of a node's processes is not running (after a crash,
    /// a fence, a kill): corosync, then fake-confd, then coroha.
    pub fn revive(&mut self, id: u32) {
        if !self.running(id, Proc::Corosync) {
            self.start_corosync(id);
        }
        if self.pacemaker.is_some() && !self.running(id, Proc::Pacemaker) {
            self.start_pacemaker(id);
        }
        if self
            .pacemaker
            .is_some_and(|s| s.manager == pacemaker::Manager::Stateful)
        {
            return;
        }
        if !self.running(id, Proc::Fake) {
            self.start_fake(id);
        }
        if !self.running(id, Proc::Coroha) {
            self.start_coroha(id);
        }
    }

    /// Send a signal to a process of a node (and forget it for SIGKILL and
    /// SIGTERM, after it exited).
    pub fn signal(&mut self, id: u32, which: Proc, sig: &str) {
        let slot = self.slot(id, which);
        let Some(child) = slot.as_mut() else {
            panic!("n{id} {which:?} is not running");
        };
        if sig == "KILL" {
            // std's `kill` is kill(2) itself, with no shell in between, so
            // the death is stamped within microseconds of the signal: a
            // failover takes ~15 ms, and a stamp taken after a shell ran
            // once counted the dead server as primary beside the new one
            // for 12 ms.
            let mut child = slot.take().unwrap();
            let _ = child.kill();
            let killed_at = unix_ms();
            let _ = child.wait();
            if which == Proc::Fake {
                // A dead server is not primary: say so in its history.
                self.mark_dead(id, killed_at);
            }
            return;
        }
        must(&format!("kill -{sig} {}", child.id()));
        if sig == "TERM" {
            let mut child = slot.take().unwrap();
            let _ = child.wait();
        }
    }

    /// A node crash as the others see a power cut: the node vanishes from
    /// the network, and corosync, coroha and fake-confd die together (one
    /// `kill`, so no goodbye leaks out). Its link comes back for a restart.
    pub fn crash(&mut self, id: u32) {
        self.link(id, false);
        let node = self.node_mut(id);
        let mut children: Vec<Child> = [
            &mut node.corosync,
            &mut node.coroha,
            &mut node.fake,
            &mut node.pacemaker,
        ]
        .into_iter()
        .filter_map(Option::take)
        .collect();
        // Every process of the namespace, also those the children started
        // (Pacemaker's daemons).
        let pids = sh(&format!("ip netns pids {}", node.ns));
        let pids = String::from_utf8_lossy(&pids.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        must(&format!("kill -KILL {pids}"));
        // Every signal was sent when `kill` returned: that is the death.
        let killed_at = unix_ms();
        for c in &mut children {
            let _ = c.wait();
        }
        self.mark_dead(id, killed_at);
        self.link(id, true);
    }

    fn mark_dead(&self, id: u32, at: u64) {
        let history = self.node(id).dir.join("history");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(history)
            .unwrap();
        std::io::Write::write_all(&mut f, format!("{at} dead\n").as_bytes()).unwrap();
    }

    /// Wait for a child to exit by itself; its exit code.
    pub fn wait_exit(&mut self, id: u32, which: Proc, limit: Duration) -> i32 {
        let slot = self.slot(id, which);
        let child = slot.as_mut().expect("running");
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                slot.take();
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < until, "n{id} {which:?} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn link(&self, id: u32, up: bool) {
        must(&format!(
            "ip netns exec {} ip link set {} {}",
            self.bridge,
            self.node(id).veth,
            if up { "up" } else { "down" }
        ));
    }

    /// Every packet node `id` sends to its peers is lost, silently, as on a
    /// real network: it sends them to a hardware address nobody has (a
    /// blackhole route would fail its sends at once, which its NSO/ConfD
    /// takes for dead peers, not for loss). It still hears them.
    pub fn send_loss(&self, id: u32, lost: bool) {
        for peer in self.nodes.iter().map(|n| n.id).filter(|p| *p != id) {
            let a = addr(peer);
            self.in_node(
                id,
                &if lost {
                    format!("ip neigh replace {a} lladdr 02:00:00:00:00:fe dev eth0 nud permanent")
                } else {
                    format!("ip neigh del {a} dev eth0")
                },
            );
        }
    }

    /// fake-confd's own answer to `status`.
    pub fn fake_status(&self, id: u32) -> Option<Value> {
        self.fake_ctl(id, "status")
    }

    /// fake-confd's answer to an admin command (`status`, `write`).
    pub fn fake_ctl(&self, id: u32, command: &str) -> Option<Value> {
        ctl(&self.node(id).dir.join("admin.sock"), command)
    }

    /// A client committing on node `id` from now on (see [`Writer`]).
    pub fn writer(&self, id: u32) -> Writer {
        Writer::start(self.node(id).dir.join("admin.sock"))
    }

    /// A shell command inside a node's network namespace.
    pub fn in_node(&self, id: u32, cmd: &str) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.node(id).ns, "bash", "-c", cmd])
            .output()
            .unwrap()
    }

    pub fn coroha_cmd(&self, id: u32, args: &[&str]) -> std::process::Output {
        let d = self.node(id).dir.display().to_string();
        Command::new(COROHA)
            .args(args)
            .args(["--config", &format!("{d}/coroha.toml")])
            .output()
            .unwrap()
    }

    /// The node whose fake-confd is primary with every other running fake
    /// attached to it as a secondary (I3), if the cluster is there.
    ///
    /// A node set up to attach through a relay ([`Lab::relayed`]) counts
    /// as settled behind that relay when the relay is expected and serves
    /// as one, and attached to the primary directly when it is not.
    pub fn settled_primary(&self, expect: &[u32]) -> Option<u32> {
        let mut primary = None;
        let mut followers = vec![];
        for &id in expect {
            let s = self.fake_status(id)?;
            match s["state"].as_str()? {
                "primary" => {
                    if primary.replace(id).is_some() {
                        return None;
                    }
                }
                "secondary" | "relay" => followers.push((
                    id,
                    s["state"].as_str()?.to_string(),
                    s["primary"].as_str()?.to_string(),
                )),
                _ => return None,
            }
        }
        let p = primary?;
        let relay_of = |id: u32| {
            self.relayed
                .iter()
                .find(|(k, r)| *k == id && expect.contains(r) && *r != p)
                .map(|(_, r)| *r)
        };
        let relays: Vec<u32> = self.relayed.iter().map(|(_, r)| *r).collect();
        followers
            .iter()
            .all(|(id, state, parent)| {
                let want = relay_of(*id).unwrap_or(p);
                let serves_its_site = relays.contains(id)
                    && self
                        .relayed
                        .iter()
                        .any(|(k, r)| r == id && expect.contains(k));
                *parent == format!("n{want}")
                    && (state == "relay") == (serves_its_site && *parent == format!("n{p}"))
            })
            .then_some(p)
    }

    /// Wait until every node is settled, starting again whatever a fence
    /// or a fault killed meanwhile (as systemd's `Restart=` would: a local
    /// fence on quorum loss kills NSO/ConfD, and a fence_node hook every
    /// process of a node, at any time during the settling); the primary.
    ///
    /// Settled means the same primary with everybody attached for
    /// [`STABLE`]: after a short cut the servers still show the old
    /// primary with its secondaries while corosync is about to split the
    /// ring, and that primary is fenced a moment later.
    pub fn wait_settled_reviving(&mut self, limit: Duration) -> u32 {
        let all: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        let until = Instant::now() + limit;
        let mut settled: Option<(u32, Instant)> = None;
        loop {
            for &id in &all {
                self.revive(id);
            }
            settled = match (self.settled_primary(&all), settled) {
                (Some(p), Some((q, since))) if p == q => Some((q, since)),
                (Some(p), _) => Some((p, Instant::now())),
                (None, _) => None,
            };
            if let Some((p, since)) = settled {
                if since.elapsed() >= STABLE {
                    return p;
                }
            }
            assert!(
                Instant::now() < until,
                "timed out after {limit:?} waiting for one primary with {all:?} attached"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Wait until `expect` are settled (one primary, the rest its
    /// secondaries); the primary.
    pub fn wait_settled(&self, expect: &[u32], limit: Duration) -> u32 {
        wait_for(
            limit,
            &format!("one primary with {expect:?} attached"),
            || self.settled_primary(expect),
        )
    }

    /// Wait until `primary` is the one primary with `expect` attached: for
    /// a change that was asked for, whose old state is settled too.
    pub fn wait_settled_on(&self, expect: &[u32], primary: u32, limit: Duration) {
        wait_for(
            limit,
            &format!("n{primary} primary with {expect:?} attached"),
            || self.settled_primary(expect).filter(|p| *p == primary),
        );
    }

    /// Print where the logs are (on failure).
    pub fn keep_logs(&self) {
        eprintln!("lab logs kept in {}", self.dir.display());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    Corosync,
    Coroha,
    Fake,
    Pacemaker,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            for child in [
                &mut node.coroha,
                &mut node.fake,
                &mut node.pacemaker,
                &mut node.corosync,
            ]
            .into_iter()
            .flatten()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
            // What the children started (Pacemaker's daemons).
            let _ = sh(&format!("ip netns pids {} | xargs -r kill -KILL", node.ns));
        }
        // SIGKILL lands later; a process is out of its namespace once it
        // has exited (a zombie is). Until then its /dev/shm is in use.
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until
            && self
                .nodes
                .iter()
                .any(|n| !sh(&format!("ip netns pids {}", n.ns)).stdout.is_empty())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for node in &self.nodes {
            let _ = sh(&format!("ip netns del {}", node.ns));
        }
        let _ = sh(&format!("ip netns del {}", self.bridge));
        self.shm_before.sweep();
        if std::thread::panicking() || std::env::var_os("COROHA_LAB_KEEP").is_some() {
            self.keep_logs();
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Poll `f` every 50 ms until it gives a value; panic after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `2026-11-22T10:00:00.123456Z` → unix ms.
/// Milliseconds since the epoch of an RFC 3339 time stamp (the JSON log's).
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// Sorted figures: (median, p95, max).
pub fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), *v.last().unwrap())
}
