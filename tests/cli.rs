//! The command line as an operator uses it: `coroha check-config` and
//! `coroha simulate`, run as a separate process.

use std::path::Path;
use std::process::Command;

fn coroha(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coroha"))
        .args(args)
        .output()
        .expect("run coroha");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("coroha-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn example_configs_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // Written for the cluster's machines: their token file and hooks
        // are not on this one.
        let (code, out, err) = coroha(&[
            "check-config",
            "--file-only",
            "--config",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{}: {err}", path.display());
        assert!(
            out.contains("[policy]"),
            "effective config printed with defaults"
        );
        n += 1;
    }
    assert!(n >= 3, "2-node, 3-node and 5-node examples");
}

#[test]
fn broken_config_names_file_line_column_and_what_was_expected() {
    let path = temp_file(
        "bad.toml",
        "[[node]]\nname = \"a\"\nid = 1\naddress = \"10.0.0.1\"\npriority = \"high\"\n",
    );
    let (code, _, err) = coroha(&["check-config", "--config", &path]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("{path}:5:12: ")), "{err}");
    assert!(err.contains("expected u32"), "{err}");
}

#[test]
fn effective_config_fills_defaults_and_hides_the_token() {
    let path = temp_file(
        "ok.toml",
        "[ha]\ntoken = \"s3cret-token\"\n[[node]]\nname = \"a\"\nid = 1\naddress = \"10.0.0.1\"\n",
    );
    let (code, out, _) = coroha(&["check-config", "--config", &path]);
    assert_eq!(code, 0);
    assert!(!out.contains("s3cret-token"), "token printed:\n{out}");
    assert!(
        out.contains("failback = \"never\""),
        "defaults filled in:\n{out}"
    );
    assert!(out.contains("besecondary_timeout = \"15s\""), "{out}");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let (code, _, err) = coroha(&["check-config", "--config", "/nonexistent/coroha.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/coroha.toml:1:1: cannot read"),
        "{err}"
    );
}

#[test]
fn the_demo_tells_the_failover_story() {
    let (code, out, err) = coroha(&["simulate"]);
    assert_eq!(code, 0, "{err}");
    for text in [
        "FAULT node n1 crashes",
        "n2   role secondary -> primary",
        "n1   role none -> secondary",
        ": held",
    ] {
        assert!(out.contains(text), "missing {text:?} in:\n{out}");
    }
}

#[test]
fn json_output_is_machine_readable() {
    let (code, out, _) = coroha(&["simulate", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(v["timeline"].as_array().is_some_and(|t| t.len() > 10));
    assert!(v["violation"].is_null());
    let (code, out, _) = coroha(&["simulate", "--random", "20", "--seed", "7", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["schedules"], 20);
    assert_eq!(v["violations"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_failed_expectation_exits_1() {
    let path = temp_file(
        "wrong.toml",
        "name = \"wrong\"\nduration = \"10s\"\n[[expect]]\nprimary = \"n3\"\n",
    );
    let (code, out, _) = coroha(&["simulate", &path]);
    assert_eq!(code, 1);
    assert!(
        out.contains("EXPECTATION FAILED: at 10.000s: expected primary n3"),
        "{out}"
    );
}

#[test]
fn a_broken_scenario_is_located() {
    let path = temp_file(
        "broken.toml",
        "name = \"x\"\n[[event]]\nat = \"5s\"\nactoin = \"crash\"\n",
    );
    let (code, _, err) = coroha(&["simulate", &path]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("{path}:4:1: unknown field `actoin`")),
        "{err}"
    );
}

/// A one-connection HA server on 127.0.0.1: accepts the handshake and the
/// token, reads one order and answers `reply` (bytes as the real server
/// writes them); returns the address and the order it received.
fn scripted_ha_server(reply: Vec<u8>) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 9];
        s.read_exact(&mut hello).unwrap();
        s.write_all(&[0, 0, 82, 8, 2, 5, 0, 12, 4]).unwrap();
        let frame = |s: &mut std::net::TcpStream| {
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut body).unwrap();
            body
        };
        let _token = frame(&mut s);
        let order = frame(&mut s);
        s.write_all(&reply).unwrap();
        order
    });
    (addr, handle)
}

#[test]
fn ha_status_shows_role_and_secondaries() {
    use confd_ha::wire::Reply;
    let bin = |s: &str| eetf::Term::from(eetf::Binary::from(s.as_bytes().to_vec()));
    let v4 = eetf::Term::from(eetf::Tuple::from(
        [127, 0, 0, 1]
            .iter()
            .map(|n| eetf::Term::from(eetf::FixInteger::from(*n)))
            .collect::<Vec<_>>(),
    ));
    let reply = Reply::Status {
        state: 3,
        nodes: vec![(bin("n5"), v4.clone()), (bin("n4"), v4)],
    };
    let (addr, server) = scripted_ha_server(reply.encode());
    let (code, out, err) = coroha(&[
        "ha",
        "--ipc",
        &addr,
        "--token",
        "probe",
        "--config",
        "/nonexistent",
        "status",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "role: primary\nsecondaries: n5 (127.0.0.1), n4 (127.0.0.1)\n"
    );
    let order = server.join().unwrap();
    assert_eq!(order, vec![131, 104, 1, 97, 4], "get_status is {{4}}");
}

#[test]
fn ha_errors_print_confd_name_and_code_and_exit_1() {
    let (addr, server) = scripted_ha_server(confd_ha::wire::Reply::Error(17).encode());
    let (code, _, err) = coroha(&[
        "ha",
        "--ipc",
        &addr,
        "--config",
        "/nonexistent",
        "beprimary",
        "n1",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("BADSTATE (17)"), "{err}");
    server.join().unwrap();
    let (addr, server) = scripted_ha_server(confd_ha::wire::Reply::Error(29).encode());
    let (code, out, _) = coroha(&[
        "ha",
        "--ipc",
        &addr,
        "--config",
        "/nonexistent",
        "--json",
        "besecondary",
        "n2",
        "n1",
        "10.0.0.1",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["name"], "HA_BADNAME");
    assert_eq!(v["error"]["code"], 29);
    // besecondary n2 -> n1 at 10.0.0.1, waiting for the reply: the exact order.
    let order = server.join().unwrap();
    let term = confd_ha::wire::decode_term(&order).unwrap();
    use confd_ha::wire::{Address, Order};
    let want = Order::BeSecondary {
        me: "n2".into(),
        primary: "n1".into(),
        address: Address::V4([10, 0, 0, 1]),
        wait: true,
    };
    assert_eq!(Order::from_term(&term).unwrap(), want);
}

#[test]
fn ha_without_a_server_is_a_clear_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, _, err) = coroha(&["ha", "--ipc", &free, "--config", "/nonexistent", "status"]);
    assert_eq!(code, 1);
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn check_config_loads_the_https_certificate_as_run_does() {
    let node = "[[node]]\nname = \"a\"\nid = 1\naddress = \"10.0.0.1\"\n";
    // Half a pair is refused from the file alone.
    let half = temp_file(
        "tls-half.toml",
        &format!("[http]\nlisten = \"127.0.0.1:9647\"\ntls_cert = \"/x.pem\"\n{node}"),
    );
    let (code, _, err) = coroha(&["check-config", "--file-only", "--config", &half]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{half}:3:1: [http] tls_cert needs tls_key")),
        "{err}"
    );
    // A pair that is not PEM is refused where tls_cert is.
    let junk = temp_file("junk.pem", "not a certificate\n");
    let bad = temp_file(
        "tls-bad.toml",
        &format!("[http]\nlisten = \"127.0.0.1:9647\"\ntls_cert = \"{junk}\"\ntls_key = \"{junk}\"\n[hooks]\nfence = [\"true\"]\n{node}"),
    );
    let (code, _, err) = coroha(&["check-config", "--config", &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{bad}:3:1: [http] tls_cert {junk}: no CERTIFICATE"
        )),
        "{err}"
    );
}

#[test]
fn ha_with_ipc_names_the_errors_of_a_config_file_that_is_there() {
    // The file would give the token and the access check: with --ipc it is
    // still read, and a broken one is named, not silently dropped.
    let config = temp_file(
        "ha-typo.toml",
        "[ha]\ntoken_flie = \"/etc/coroha/ha-token\"\n",
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, _, err) = coroha(&["ha", "--ipc", &free, "--config", &config, "status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{config}:2:1")), "{err}");
    assert!(err.contains("token_flie"), "{err}");
}

#[test]
fn ha_watch_with_json_prints_its_errors_as_json() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, out, err) = coroha(&[
        "ha",
        "--ipc",
        &free,
        "--config",
        "/nonexistent",
        "--json",
        "watch",
    ]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON on stdout");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unreachable")),
        "{v}"
    );
}

/// A unix socket where a test stands in for a running daemon: it answers
/// nothing and hands back the first request line it read.
fn standin_daemon(name: &str) -> (String, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let path = temp_file(name, "");
    std::fs::remove_file(&path).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        let _ = std::io::BufReader::new(stream).read_line(&mut line);
        line
    });
    (path, thread)
}

#[test]
fn check_config_checks_the_files_and_programs_run_needs_and_where_they_are_named() {
    let path = temp_file(
        "host.toml",
        "[ha]\ntoken_file = \"/nonexistent/ha-token\"\n[hooks]\nfence = [\"/nonexistent/fence\"]\n\
         [[node]]\nname = \"a\"\nid = 1\naddress = \"10.0.0.1\"\n",
    );
    let (code, _, err) = coroha(&["check-config", "--config", &path]);
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with(&format!(
        "{path}:2:1: [ha] token_file: /nonexistent/ha-token"
    )));
    assert!(lines[1].starts_with(&format!("{path}:4:1: [hooks] fence: ")));
    let (code, _, err) = coroha(&["check-config", "--file-only", "--config", &path]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn ha_orders_are_refused_beside_a_running_daemon_unless_forced() {
    let (socket, standin) = standin_daemon("guard.sock");
    let config = temp_file(
        "guard.toml",
        &format!("[control]\nsocket = \"{socket}\"\n[[node]]\nname = \"a\"\nid = 1\naddress = \"10.0.0.1\"\n"),
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let args = ["ha", "--ipc", &free, "--config", &config, "beprimary", "a"];
    let (code, _, err) = coroha(&args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refused: a coroha daemon runs on this node"),
        "{err}"
    );
    standin.join().unwrap();
    // Forced, the order is given: here nothing listens at --ipc.
    let (code, _, err) = coroha(&[&args[..5], &["--force"], &args[5..]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn status_finds_the_socket_of_a_config_with_a_typo_elsewhere() {
    let (socket, standin) = standin_daemon("typo.sock");
    let config = temp_file(
        "typo.toml",
        &format!("[control]\nsocket = \"{socket}\"\n[policy]\nfailbak = \"never\"\n"),
    );
    let (_, _, err) = coroha(&["status", "--config", &config]);
    assert!(
        err.contains(&format!("warning: {config} has errors")),
        "{err}"
    );
    let request = standin.join().unwrap();
    assert!(
        request.contains("status"),
        "the daemon was asked: {request}"
    );
}

/// The control socket as `coroha run` serves it, with a stand-in for the
/// daemon's loop that answers every request and hands back who asked.
fn serve_socket(
    path: &Path,
    group: Option<&str>,
) -> std::sync::mpsc::Receiver<(String, coroha::daemon::control::Caller)> {
    use coroha::control::{Reply, Request};
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (path, group) = (path.to_path_buf(), group.map(String::from));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = coroha::daemon::control::bind(&path, group.as_deref())
                .await
                .unwrap();
            let (asks_tx, mut asks) = tokio::sync::mpsc::channel(4);
            coroha::daemon::control::serve_control(listener, asks_tx, None);
            ready_tx.send(()).unwrap();
            while let Some((req, caller, answer)) = asks.recv().await {
                let req: Request = req;
                let _ = seen_tx.send((format!("{req:?}"), caller));
                let _ = answer.send(Reply::Refused("stand-in".into()));
            }
        });
    });
    ready.recv().unwrap();
    seen
}

#[test]
fn the_socket_group_may_ask_and_the_daemon_knows_who_asked() {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        nix::unistd::Uid::effective().as_raw(),
        0,
        "this test runs commands as another user: run it as root"
    );
    let socket = temp_file("group.sock", "");
    std::fs::remove_file(&socket).unwrap();
    let seen = serve_socket(Path::new(&socket), Some("nogroup"));
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, 65534));
    // nobody, in group nogroup: may connect; the daemon sees its uid and
    // that it may not change anything.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_coroha"))
        .args(["switchover", "--no-wait", "--socket", &socket])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (req, caller) = seen.recv().unwrap();
    assert_eq!(req, "Switchover { to: None }");
    assert_eq!((caller.uid, caller.may_change), (Some(65534), false));
    assert!(caller.pid.is_some());
    // Another group's member cannot even connect.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=100", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_coroha"))
        .args(["status", "--socket", &socket])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
}

#[test]
fn root_and_members_of_the_admin_group_may_change_the_cluster() {
    use coroha::daemon::control::may_change;
    assert!(may_change(0, 0, None));
    assert!(!may_change(65534, 65534, None));
    assert!(
        may_change(65534, 65534, Some("nogroup")),
        "by its primary group"
    );
    assert!(!may_change(65534, 65534, Some("root")));
    assert!(!may_change(65534, 65534, Some("no-such-group")));
}
