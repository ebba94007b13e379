//! The simulator's votequorum model must agree with corosync's own
//! votequorum simulator, corosync-vqsim (Debian package corosync-vqsim),
//! on quorate / not quorate for every node after every event.
//!
//! Needs root (vqsim always reads /etc/corosync/corosync.conf, so each run
//! bind-mounts its own directory over /etc/corosync inside a private mount
//! namespace). Set
//! COROHA_SKIP_VQSIM=1 to skip it explicitly; otherwise a missing vqsim is
//! a failure, not a silent pass.

use coroha_sim::votequorum::VoteQuorum;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

struct Case {
    name: &'static str,
    nodes: u32,
    quorum: &'static str,
    model: VoteQuorum,
    commands: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "three nodes: minority split, three-way split, heal",
            nodes: 3,
            quorum: "",
            model: VoteQuorum::new(3),
            commands: &["split 1:3", "join 0 1", "split 1:1 2:2", "join 0 1 2"],
        },
        Case {
            name: "five nodes: 3 | 2, then 2 | 2 | 1, heal, node down and back",
            nodes: 5,
            quorum: "",
            model: VoteQuorum::new(5),
            commands: &["split 1:4,5", "split 2:3", "join 0 1 2", "down 5", "up 0:5"],
        },
        Case {
            name: "expected_votes 5 with three nodes",
            nodes: 3,
            quorum: "    expected_votes: 5\n",
            model: VoteQuorum {
                expected_votes: Some(5),
                ..VoteQuorum::new(3)
            },
            commands: &["split 1:3", "join 0 1"],
        },
        Case {
            name: "two_node (implies wait_for_all)",
            nodes: 2,
            quorum: "    two_node: 1\n",
            model: VoteQuorum {
                two_node: true,
                ..VoteQuorum::new(2)
            },
            commands: &["split 1:2", "join 0 1", "down 2", "up 1:2", "join 0 1"],
        },
        Case {
            name: "wait_for_all with three nodes",
            nodes: 3,
            quorum: "    wait_for_all: 1\n",
            model: VoteQuorum {
                wait_for_all: Some(true),
                ..VoteQuorum::new(3)
            },
            commands: &["down 2", "up 1:2", "down 3", "up 1:3", "join 0 1"],
        },
        Case {
            name: "two_node with wait_for_all switched off",
            nodes: 2,
            quorum: "    two_node: 1\n    wait_for_all: 0\n",
            model: VoteQuorum {
                two_node: true,
                wait_for_all: Some(false),
                ..VoteQuorum::new(2)
            },
            commands: &["down 2", "up 1:2", "join 0 1"],
        },
    ]
}

/// What the model says: the simulator's bookkeeping of partitions and
/// wait_for_all, driven by the same commands vqsim gets.
struct ModelRun {
    q: VoteQuorum,
    partition: BTreeMap<u32, Option<u32>>,
    seen_all: BTreeMap<u32, bool>,
}

impl ModelRun {
    fn new(q: VoteQuorum, nodes: u32) -> ModelRun {
        let mut run = ModelRun {
            q,
            partition: (1..=nodes).map(|n| (n, Some(0))).collect(),
            seen_all: (1..=nodes).map(|n| (n, false)).collect(),
        };
        run.settle();
        run
    }

    fn groups(spec: &[&str]) -> Vec<(u32, Vec<u32>)> {
        spec.iter()
            .map(|g| {
                let (p, nodes) = g.split_once(':').expect("P:N[,N]");
                (
                    p.parse().unwrap(),
                    nodes.split(',').map(|n| n.parse().unwrap()).collect(),
                )
            })
            .collect()
    }

    fn apply(&mut self, command: &str) {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words[0] {
            "split" | "move" => {
                for (p, nodes) in Self::groups(&words[1..]) {
                    for n in nodes {
                        self.partition.insert(n, Some(p));
                    }
                }
            }
            "join" => {
                let into: u32 = words[1].parse().unwrap();
                let from: Vec<u32> = words[2..].iter().map(|w| w.parse().unwrap()).collect();
                for p in self.partition.values_mut().flatten() {
                    if from.contains(p) {
                        *p = into;
                    }
                }
            }
            "down" => {
                for n in words[1].split(',') {
                    let n: u32 = n.parse().unwrap();
                    self.partition.insert(n, None);
                    self.seen_all.insert(n, false);
                }
            }
            "up" => {
                for (p, nodes) in Self::groups(&words[1..]) {
                    for n in nodes {
                        self.partition.insert(n, Some(p));
                        self.seen_all.insert(n, false);
                    }
                }
            }
            other => panic!("unknown command {other}"),
        }
        self.settle();
    }

    fn votes(&self, p: u32) -> u32 {
        self.partition.values().filter(|x| **x == Some(p)).count() as u32
    }

    fn settle(&mut self) {
        for (n, p) in self.partition.clone() {
            if let Some(p) = p {
                if self.q.sees_all(self.votes(p)) {
                    self.seen_all.insert(n, true);
                }
            }
        }
    }

    fn quorate(&self) -> BTreeMap<u32, bool> {
        self.partition
            .iter()
            .filter_map(|(n, p)| p.map(|p| (*n, self.q.quorate(self.votes(p), self.seen_all[n]))))
            .collect()
    }
}

fn corosync_conf(nodes: u32, quorum: &str) -> String {
    let mut text = String::from("totem {\n    version: 2\n    cluster_name: vq\n}\nnodelist {\n");
    for n in 1..=nodes {
        text.push_str(&format!(
            "    node {{\n        nodeid: {n}\n        ring0_addr: 10.213.9.{n}\n    }}\n"
        ));
    }
    text.push_str(&format!(
        "}}\nquorum {{\n    provider: corosync_votequorum\n{quorum}}}\n"
    ));
    text
}

/// Run vqsim with `commands`, each followed by `show`; return the quorate
/// flag of every running node after each command.
fn run_vqsim(conf: &Path, commands: &[&str]) -> Vec<BTreeMap<u32, bool>> {
    // Our own directory over /etc/corosync, in a private mount namespace:
    // the host's configuration is neither read nor touched.
    let script = format!(
        "mount --bind {} /etc/corosync && exec corosync-vqsim",
        conf.parent().expect("config in a directory").display()
    );
    let mut child = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start corosync-vqsim through unshare");
    let mut stdin = child.stdin.take().unwrap();
    // vqsim runs ahead of its forked nodes if fed at once: pace it.
    std::thread::sleep(Duration::from_millis(500));
    for c in commands {
        writeln!(stdin, "{c}").unwrap();
        std::thread::sleep(Duration::from_millis(400));
        writeln!(stdin, "show").unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    writeln!(stdin, "exit").unwrap();
    drop(stdin);
    let out = child.wait_with_output().expect("vqsim output");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut shows = vec![];
    for block in text.split("#vqsim> ").skip(1) {
        let mut lines = block.lines();
        if lines.next().map(str::trim) != Some("show") {
            continue;
        }
        let mut state = BTreeMap::new();
        for line in lines {
            // "0:2: q=1 ring=[2.10] nodes=[2 1]"
            let mut parts = line.split_whitespace();
            let (Some(id), Some(q)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Some(node), Some(q)) = (id.split(':').nth(1), q.strip_prefix("q=")) else {
                continue;
            };
            if let Ok(node) = node.parse::<u32>() {
                state.insert(node, q == "1");
            }
        }
        shows.push(state);
    }
    shows
}

fn vqsim_available() -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("corosync-vqsim").exists()))
        .unwrap_or(false);
    if !found {
        return Err("corosync-vqsim not found: apt-get install corosync-vqsim (the README test command does)".into());
    }
    if !Path::new("/etc/corosync").is_dir() {
        return Err("/etc/corosync is missing: vqsim reads its config there (scripts/test.sh creates the empty directory)".into());
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.ok().as_deref() != Some("0") {
        return Err("needs root for a private mount namespace (unshare -m)".into());
    }
    Ok(())
}

#[test]
fn simulator_quorum_agrees_with_corosync_vqsim() {
    if std::env::var_os("COROHA_SKIP_VQSIM").is_some() {
        eprintln!("skipped on request (COROHA_SKIP_VQSIM)");
        return;
    }
    if let Err(why) = vqsim_available() {
        panic!("{why}; or set COROHA_SKIP_VQSIM=1 to skip this test");
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("coroha-vqsim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    let mut disagreements = vec![];
    for (k, case) in cases().iter().enumerate() {
        let case_dir = dir.join(format!("case{k}"));
        std::fs::create_dir_all(&case_dir).unwrap();
        let conf = case_dir.join("corosync.conf");
        std::fs::write(&conf, corosync_conf(case.nodes, case.quorum)).unwrap();
        let real = run_vqsim(&conf, case.commands);
        assert_eq!(
            real.len(),
            case.commands.len(),
            "{}: vqsim printed {} states for {} commands",
            case.name,
            real.len(),
            case.commands.len()
        );
        let mut model = ModelRun::new(case.model, case.nodes);
        for (command, real_state) in case.commands.iter().zip(real) {
            model.apply(command);
            let expected = model.quorate();
            checked += expected.len();
            if expected != real_state {
                disagreements.push(format!(
                    "{} after `{command}`: simulator {expected:?}, vqsim {real_state:?}",
                    case.name
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked > 40, "only {checked} node states compared");
    assert!(
        disagreements.is_empty(),
        "disagreements:\n{}",
        disagreements.join("\n")
    );
}
