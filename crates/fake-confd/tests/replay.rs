//! fake-confd against the recorded client side of the ConfD 8.2.5
//! captures. One fake runs per node of a case (node nK on 127.0.0.K, as in
//! the lab), linked to each other over their HA ports; a test peer sends
//! exactly what the capture's clients sent, on the same connections in the
//! same order, carries out the capture's timeline (SIGKILL, SIGSTOP,
//! SIGCONT, start phases, clients closing), and every byte fake-confd
//! answers must be the byte the real server answered.
//!
//! Where a case began from a cluster the capture does not show (n3 already
//! primary, n5 already its secondary), `Setup::before` builds that state
//! through the HA sockets first.

use confd_ha::wire::{self, Address, Hello, Order};
use coroha_testkit::{bytes, cases, free_ports, Case};
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The state a case starts from.
#[derive(Clone, Copy)]
enum Prep {
    Primary(&'static str),
    /// (secondary, primary)
    Secondary(&'static str, &'static str),
    /// A primary whose HA socket token is not the captures' `probe`.
    PrimaryWithToken(&'static str, &'static str),
}

#[derive(Clone, Copy)]
struct Setup {
    case: &'static str,
    /// The node of connections whose label names none.
    default_node: &'static str,
    before: &'static [Prep],
    /// Extra flags per node.
    flags: &'static [(&'static str, &'static [&'static str])],
    /// A primary that accepts the TCP connection and says nothing, at
    /// 127.0.0.9 (the captures' `fake` primary).
    silent_primary: bool,
}

const fn case(name: &'static str) -> Setup {
    Setup {
        case: name,
        default_node: "n5",
        before: &[],
        flags: &[],
        silent_primary: false,
    }
}

/// The state most captures start from: n3 primary, n4 and n5 its
/// secondaries.
const N3_WITH_N4_N5: &[Prep] = &[
    Prep::Primary("n3"),
    Prep::Secondary("n4", "n3"),
    Prep::Secondary("n5", "n3"),
];

const ACCESS: &[&str] = &["--access-secret", "SECRET"];

/// Every case fake-confd replays, with the state it starts from.
const REPLAYED: &[Setup] = &[
    case("handshake_versions"),
    case("handshake_client_types"),
    case("handshake_and_token_timeouts"),
    case("ha_socket_in_none_state"),
    case("beprimary_and_benone_with_events"),
    case("second_ha_socket_closes_first"),
    case("ha_info_sync"),
    case("ha_info_sync_never_acked"),
    case("ha_info_sync_subscriber_closes"),
    case("ha_info_sync_only_mask"),
    case("notification_subscription_variants"),
    case("libconfd_notifications_subscribe"),
    case("besecondary_wait1_ok"),
    Setup {
        before: &[Prep::Primary("n3"), Prep::Secondary("n4", "n3")],
        ..case("besecondary_wait0_ok")
    },
    Setup {
        before: &[Prep::Primary("n3")],
        ..case("besecondary_errors_wait1")
    },
    Setup {
        before: &[Prep::Primary("n3")],
        ..case("besecondary_errors_wait0")
    },
    Setup {
        before: N3_WITH_N4_N5,
        ..case("secondary_dead")
    },
    Setup {
        before: &[Prep::Primary("n3"), Prep::Secondary("n4", "n3")],
        ..case("berelay")
    },
    case("ipv6_primary_address"),
    case("role_transitions_and_edge_cases"),
    Setup {
        silent_primary: true,
        ..case("ha_socket_takeover_while_besecondary_pending")
    },
    Setup {
        before: N3_WITH_N4_N5,
        ..case("kill_secondary_sigkill")
    },
    Setup {
        before: N3_WITH_N4_N5,
        ..case("freeze_secondary_sigstop")
    },
    Setup {
        before: N3_WITH_N4_N5,
        ..case("kill_primary_sigkill")
    },
    Setup {
        before: N3_WITH_N4_N5,
        ..case("freeze_primary_sigstop")
    },
    Setup {
        before: &[Prep::Primary("n3")],
        ..case("ha_info_sync_ordering")
    },
    Setup {
        flags: &[
            ("n9", &["--tick-ms", "7000"]),
            ("n10", &["--tick-ms", "7000"]),
        ],
        silent_primary: true,
        ..case("timeouts_with_tickTimeout_PT7S")
    },
    Setup {
        before: &[Prep::Primary("n3")],
        flags: &[("n7", &["--phase0"])],
        ..case("start_phase0")
    },
    Setup {
        flags: &[("n11", &["--ha-disabled"])],
        ..case("ha_disabled_node")
    },
    Setup {
        before: &[
            Prep::Primary("n3"),
            Prep::PrimaryWithToken("n1", "confd_cmd"),
        ],
        ..case("malformed_orders")
    },
    Setup {
        before: &[Prep::Primary("n3")],
        silent_primary: true,
        ..case("non_binary_node_ids")
    },
    Setup {
        silent_primary: true,
        ..case("besecondary_silent_primary")
    },
    Setup {
        before: &[
            Prep::Primary("n3"),
            Prep::PrimaryWithToken("n1", "confd_cmd"),
        ],
        ..case("libconfd_confd_cmd_orders")
    },
    case("libconfd_confd_cmd_cluster"),
    Setup {
        flags: &[("n8", ACCESS)],
        ..case("ipc_access_check")
    },
    Setup {
        flags: &[("n8", ACCESS)],
        ..case("ipc_access_check_before_version_check")
    },
    Setup {
        default_node: "n8",
        flags: &[("n8", ACCESS)],
        ..case("libconfd_access_check_md5")
    },
];

/// How long a read waits for the fake's answer (a silent primary takes
/// 10 s to give up, a frozen one 6 s).
const PATIENCE: Duration = Duration::from_secs(25);

fn node_of(label: &str, default: &str) -> String {
    match label.split_once('@') {
        Some((_, rest)) => rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect(),
        None => default.to_string(),
    }
}

/// The lab's addresses: nK on 127.0.0.K, but n9 and n10 (the PT7S pair)
/// on 127.0.0.19 and .20, since .9 is the silent primary.
fn ip(node: &str) -> String {
    match node {
        "n9" => "127.0.0.19".to_string(),
        "n10" => "127.0.0.20".to_string(),
        _ => format!("127.0.0.{}", &node[1..]),
    }
}

struct Fake {
    child: Child,
    ipc: String,
    admin: String,
}

struct Cluster {
    fakes: HashMap<String, Fake>,
    _silent: Option<TcpListener>,
    _secret: tempfile_lite::Dir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for f in self.fakes.values_mut() {
            let _ = Command::new("kill")
                .args(["-CONT", &f.child.id().to_string()])
                .status();
            let _ = f.child.kill();
            let _ = f.child.wait();
        }
    }
}

/// A scratch directory removed on drop (no extra crate for one test).
mod tempfile_lite {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "coroha-fake-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The challenges the real server sent, in order (so the fake can send
/// the same ones and the recorded answers match).
fn challenges(case: &Case) -> String {
    case.steps
        .iter()
        .filter(|s| s.dir == "s2c" && s.decoded.contains("challenge"))
        .map(|s| bytes(&s.hex))
        .filter(|b| [16, 17, 32, 33].contains(&b.len()))
        .map(|b| {
            let b = if b.len() == 17 || b.len() == 33 {
                &b[1..]
            } else {
                &b[..]
            };
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn start_cluster(case: &Case, setup: &Setup) -> Cluster {
    let mut nodes: BTreeSet<String> = case
        .steps
        .iter()
        .map(|s| node_of(&s.conn, setup.default_node))
        .collect();
    for p in setup.before {
        match p {
            Prep::Primary(n) | Prep::PrimaryWithToken(n, _) => nodes.insert(n.to_string()),
            Prep::Secondary(s, p) => nodes.insert(s.to_string()) | nodes.insert(p.to_string()),
        };
    }
    let dir = tempfile_lite::Dir::new(&case.name);
    let secret = dir.0.join("access");
    std::fs::write(&secret, b"s3cr3t\n").unwrap();
    // The ports are free on 127.0.0.1 but may be taken on 127.0.0.K by a
    // case running beside this one: a fake that cannot listen exits, and
    // the whole set starts again on other ports.
    let mut attempts = 0;
    let (fakes, ha) = loop {
        let [ipc, ha, admin] = free_ports();
        let mut fakes: HashMap<String, Fake> = HashMap::new();
        for node in &nodes {
            let ha_listen = if node == "n6" {
                format!("[::1]:{ha}")
            } else {
                format!("{}:{ha}", ip(node))
            };
            let fake = Fake {
                child: Command::new(env!("CARGO_BIN_EXE_fake-confd"))
                    .args(["--ipc", &format!("{}:{ipc}", ip(node))])
                    .args(["--ha-listen", &ha_listen])
                    .args(["--admin", &format!("{}:{admin}", ip(node))])
                    .args(
                        setup
                            .flags
                            .iter()
                            .filter(|(n, _)| n == node)
                            .flat_map(|(_, f)| f.iter())
                            .map(|f| {
                                if *f == "SECRET" {
                                    secret.display().to_string()
                                } else {
                                    f.to_string()
                                }
                            }),
                    )
                    .args(
                        setup
                            .flags
                            .iter()
                            .any(|(n, f)| n == node && f == &ACCESS)
                            .then(|| ["--challenge".to_string(), challenges(case)])
                            .into_iter()
                            .flatten(),
                    )
                    .stderr(if std::env::var_os("FAKE_STDERR").is_some() {
                        Stdio::inherit()
                    } else {
                        Stdio::null()
                    })
                    .spawn()
                    .expect("start fake-confd"),
                ipc: format!("{}:{ipc}", ip(node)),
                admin: format!("{}:{admin}", ip(node)),
            };
            fakes.insert(node.clone(), fake);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listening = fakes.values_mut().all(|f| loop {
            if TcpStream::connect(&f.admin).is_ok() {
                break true;
            }
            if Instant::now() > deadline || f.child.try_wait().ok().flatten().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        });
        if listening {
            break (fakes, ha);
        }
        for f in fakes.values_mut() {
            let _ = f.child.kill();
            let _ = f.child.wait();
        }
        attempts += 1;
        assert!(attempts < 5, "fake-confd did not listen");
    };
    let silent = setup
        .silent_primary
        .then(|| TcpListener::bind(format!("127.0.0.9:{ha}")).unwrap());
    let cluster = Cluster {
        fakes,
        _silent: silent,
        _secret: dir,
    };
    for p in setup.before {
        let (node, token, order) = match *p {
            Prep::Primary(n) => (n, "probe", Order::BePrimary { me: n.into() }),
            Prep::PrimaryWithToken(n, t) => (n, t, Order::BePrimary { me: n.into() }),
            Prep::Secondary(s, p) => (
                s,
                "probe",
                Order::BeSecondary {
                    me: s.into(),
                    primary: p.into(),
                    address: Address::parse(&ip(p)),
                    wait: true,
                },
            ),
        };
        let answer = order_on(&cluster.fakes[node].ipc, token, &order);
        assert_eq!(answer, wire::Reply::Ok.encode(), "{}: {order:?}", case.name);
    }
    cluster
}

/// One order on a fresh HA socket; the framed answer.
fn order_on(ipc: &str, token: &str, order: &Order) -> Vec<u8> {
    let mut s = TcpStream::connect(ipc).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&Hello::new(wire::CLIENT_HA, 82).encode())
        .unwrap();
    let mut reply = [0u8; 9];
    s.read_exact(&mut reply).unwrap();
    s.write_all(&wire::frame(token.as_bytes())).unwrap();
    s.write_all(&order.encode()).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    [len.to_vec(), body].concat()
}

fn signal(fake: &Fake, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &fake.child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig}");
}

/// Carry out an off-the-wire action of the capture's timeline.
fn act(note: &str, cluster: &mut Cluster, conns: &mut HashMap<String, TcpStream>) {
    let words: Vec<&str> = note.split_whitespace().collect();
    match words.as_slice() {
        ["SIGKILL", node, ..] => {
            let f = cluster.fakes.get_mut(*node).expect("node");
            let _ = f.child.kill();
            let _ = f.child.wait();
        }
        ["SIGSTOP", node, ..] => signal(&cluster.fakes[*node], "-STOP"),
        ["SIGCONT", node, ..] => signal(&cluster.fakes[*node], "-CONT"),
        [node, "in", "start", "phase", "1"] => {
            let mut s = TcpStream::connect(&cluster.fakes[*node].admin).unwrap();
            s.write_all(b"phase1\n").unwrap();
            let mut answer = [0u8; 64];
            let _ = s.read(&mut answer);
        }
        _ => {
            if let Some(conn) = note.strip_suffix(": client closes socket") {
                if let Some(c) = conns.remove(conn) {
                    let _ = c.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

fn replay(case: &Case, setup: &Setup) -> Vec<String> {
    let mut cluster = start_cluster(case, setup);
    let mut conns: HashMap<String, TcpStream> = HashMap::new();
    let mut failures = vec![];
    let mut notes = case.timeline.iter().peekable();
    let mut simultaneous_until = 0;
    for (k, step) in case.steps.iter().enumerate() {
        // Times are whole milliseconds: a client's close logged in the
        // same millisecond as a step comes after it, unless that step
        // reopens the connection.
        let due = |n: &&coroha_testkit::Note| {
            let reopens = step.dir == "c2s"
                && step.decoded.starts_with("handshake")
                && n.note == format!("{}: client closes socket", step.conn);
            n.t_ms < step.t_ms
                || (n.t_ms == step.t_ms && (reopens || !n.note.ends_with("client closes socket")))
        };
        while let Some(n) = notes.next_if(due) {
            act(&n.note, &mut cluster, &mut conns);
        }
        let at = format!(
            "{} step {k} ({} {}): {}",
            case.name, step.dir, step.conn, step.decoded
        );
        let data = bytes(&step.hex);
        if step.dir == "c2s" {
            if data.is_empty() {
                if let Some(c) = conns.remove(&step.conn) {
                    let _ = c.shutdown(Shutdown::Write);
                }
                continue;
            }
            // A handshake on a label already in use is a new socket.
            if step.decoded.starts_with("handshake") {
                conns.remove(&step.conn);
            }
            let ipc = &cluster.fakes[&node_of(&step.conn, setup.default_node)].ipc;
            let conn = conns.entry(step.conn.clone()).or_insert_with(|| {
                // A fake restarted by the case may not listen yet on a
                // loaded machine: give it a moment, as a client would.
                let mut tries = 0;
                let c = loop {
                    match TcpStream::connect(ipc) {
                        Ok(c) => break c,
                        Err(_) if tries < 100 => {
                            tries += 1;
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        Err(e) => panic!("{ipc}: {e}"),
                    }
                };
                c.set_read_timeout(Some(PATIENCE)).unwrap();
                c
            });
            if conn.write_all(&data).is_err() {
                failures.push(format!("{at}: the connection is closed"));
            }
        } else if let Some(conn) = conns.get_mut(&step.conn) {
            if data.is_empty() {
                let mut one = [0u8; 1];
                if matches!(conn.read(&mut one), Ok(n) if n > 0) {
                    failures.push(format!(
                        "{at}: expected the server to close, got {:02x}",
                        one[0]
                    ));
                }
                conns.remove(&step.conn);
                continue;
            }
            // Events logged in the same millisecond on one socket (two
            // secondaries found dead at once) may come in either order.
            let same_moment = |s: &coroha_testkit::Step| {
                s.dir == "s2c"
                    && s.conn == step.conn
                    && s.t_ms == step.t_ms
                    && s.decoded.starts_with("{64,")
            };
            let mut expected = vec![data];
            if same_moment(step) && simultaneous_until <= k {
                let more = case.steps[k + 1..].iter().take_while(|s| same_moment(s));
                expected.extend(more.map(|s| bytes(&s.hex)));
                simultaneous_until = k + expected.len();
            } else if k < simultaneous_until {
                continue;
            }
            let mut got = vec![0u8; expected.iter().map(Vec::len).sum()];
            match conn.read_exact(&mut got) {
                Ok(()) if got == expected.concat() || same_frames(&got, &expected) => {}
                Ok(()) => failures.push(format!("{at}: fake-confd sent {got:02x?}")),
                Err(e) => failures.push(format!("{at}: nothing ({e})")),
            }
        }
    }
    failures
}

/// The same framed messages, in any order.
fn same_frames(got: &[u8], expected: &[Vec<u8>]) -> bool {
    let mut frames = vec![];
    let mut rest = got;
    while rest.len() >= 4 {
        let len = 4 + u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > rest.len() {
            return false;
        }
        frames.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    let mut want = expected.to_vec();
    frames.sort();
    want.sort();
    rest.is_empty() && frames == want
}

fn replay_named(setup: &Setup) -> Vec<String> {
    let all = cases();
    let case = all
        .iter()
        .find(|c| c.name == setup.case)
        .expect("case in the captures");
    replay(case, setup)
}

/// Run the cases a few at a time: most of their time is waiting for the
/// fake's timers, not the CPU.
fn replay_all(setups: &[&Setup]) -> Vec<String> {
    let mut failures = vec![];
    for chunk in setups.chunks(8) {
        let results: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|setup| s.spawn(|| replay_named(setup)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        failures.extend(results.into_iter().flatten());
    }
    failures
}

#[test]
fn fake_confd_answers_the_captured_clients_byte_for_byte() {
    let failures = replay_all(&REPLAYED.iter().collect::<Vec<_>>());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A diagnostic, not a check: where does each case stand? Set
/// FAKE_CASE=name to run one.
#[test]
#[ignore]
fn survey_which_cases_replay() {
    let only = std::env::var("FAKE_CASE").ok();
    for case in cases() {
        if only.as_ref().is_some_and(|o| *o != case.name) {
            continue;
        }
        let fallback = case_by_name(&case.name);
        let f = replay(&case, &fallback);
        eprintln!(
            "{:45} {}",
            case.name,
            if f.is_empty() {
                "OK".to_string()
            } else {
                format!("{} failures; first: {}", f.len(), f[0])
            }
        );
    }
}

fn case_by_name(name: &str) -> Setup {
    REPLAYED
        .iter()
        .find(|s| s.case == name)
        .copied()
        .unwrap_or(case("unlisted"))
}
