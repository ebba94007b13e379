//! The HA client against the recorded server side of the ConfD 8.2.5
//! captures: a scripted peer replays each captured HA connection, checks
//! every byte the client sends against the capture, and answers with the
//! captured bytes; the client must return the captured replies, typed.

use confd_ha::client::{ClientError, ClientOptions, Endpoint, HaClient};
use confd_ha::wire::{decode_term, AccessCheck, Order, Reply};

use coroha_testkit::{bytes, cases, connections, Step};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

/// A listener on a free loopback port, and its address.
async fn local_peer() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// The next connection and the 9-byte handshake it opens with.
async fn accept_hello(listener: &TcpListener) -> (tokio::net::TcpStream, [u8; 9]) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut hello = [0u8; 9];
    s.read_exact(&mut hello).await.unwrap();
    (s, hello)
}

/// Our handshake: HA, proto 82, LIB_VSN 0x08020500, sizes 0/0.
const OUR_HELLO: &str = "110052080205000000";

fn options(endpoint: Endpoint, token: Vec<u8>) -> ClientOptions {
    ClientOptions {
        endpoint,
        token,
        protocol: None,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        besecondary_timeout: Duration::from_secs(2),
        access: None,
    }
}

/// One captured HA connection that our client could have made: it starts
/// with our handshake, accepted, and sends only canonical orders.
struct Conversation {
    name: String,
    steps: Vec<Step>,
    token: Vec<u8>,
    orders: Vec<Order>,
    access: Option<(AccessCheck, Vec<u8>)>,
}

fn conversations() -> Vec<Conversation> {
    let mut out = vec![];
    for case in cases() {
        for (conn, steps) in connections(&case) {
            // Our handshake, possibly asking for the access check (the
            // captures' secret is "s3cr3t\n").
            let access = match steps.first().map(|s| &s.hex[..2.min(s.hex.len())]) {
                Some("11") => None,
                Some("91") => Some((AccessCheck::Md5, b"s3cr3t\n".to_vec())),
                Some("d1") => Some((AccessCheck::Sha256, b"s3cr3t\n".to_vec())),
                _ => continue,
            };
            if steps.len() < 4 || steps[0].hex[2..] != OUR_HELLO[2..] {
                continue;
            }
            // After the access-check exchange: 0x0b, challenge, response, result.
            let skip = if access.is_some() { 4 } else { 0 };
            if steps.len() < 4 + skip
                || !steps[1 + skip].hex.starts_with("00")
                || steps[1 + skip].hex.len() != 18
            {
                continue;
            }
            let token_step = &steps[2 + skip];
            if token_step.dir != "c2s" || !token_step.decoded.starts_with("token") {
                continue;
            }
            let token = bytes(&token_step.hex)[4..].to_vec();
            let mut orders = vec![];
            let mut ok = true;
            for s in steps
                .iter()
                .skip(3 + skip)
                .filter(|s| s.dir == "c2s" && !s.hex.is_empty())
            {
                let b = bytes(&s.hex);
                match b
                    .get(4..)
                    .and_then(|p| decode_term(p).ok())
                    .and_then(|t| Order::from_term(&t).ok())
                {
                    Some(o) => orders.push(o),
                    None => ok = false,
                }
            }
            if ok && !orders.is_empty() {
                out.push(Conversation {
                    name: format!("{} / {conn}", case.name),
                    steps,
                    token,
                    orders,
                    access,
                });
            }
        }
    }
    out
}

/// Play the server side of `steps` on one accepted connection; return the
/// first difference between what the client sent and the capture.
async fn play<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    steps: Vec<Step>,
) -> Result<(), String> {
    for (k, step) in steps.iter().enumerate() {
        let want = bytes(&step.hex);
        if step.dir == "c2s" {
            let mut got = vec![0u8; want.len()];
            match tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut got)).await {
                Ok(Ok(_)) if got == want => {}
                Ok(Ok(_)) => {
                    return Err(format!(
                        "step {k}: client sent {got:02x?}, capture has {want:02x?} ({})",
                        step.decoded
                    ))
                }
                _ => {
                    return Err(format!(
                        "step {k}: client did not send {} ({})",
                        step.hex, step.decoded
                    ))
                }
            }
        } else if want.is_empty() {
            return Ok(()); // the server closed here
        } else {
            s.write_all(&want).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The replies the capture says the server gave, in order.
fn captured_replies(steps: &[Step]) -> Vec<Result<Reply, i32>> {
    steps
        .iter()
        .skip(2)
        .filter(|s| s.dir == "s2c" && !s.hex.is_empty())
        .filter_map(|s| {
            // Framed terms only (not the access-check bytes).
            let b = bytes(&s.hex);
            b.get(4..)
                .and_then(|p| decode_term(p).ok())
                .and_then(|t| Reply::from_term(&t).ok())
        })
        .map(|r| match r {
            Reply::Error(c) => Err(c),
            other => Ok(other),
        })
        .collect()
}

#[tokio::test]
async fn the_client_replays_every_captured_ha_conversation() {
    let convs = conversations();
    let n_convs = convs.len();
    let with_access = convs.iter().filter(|c| c.access.is_some()).count();
    assert!(
        with_access >= 2,
        "the MD5 and SHA-256 access checks are replayed"
    );
    assert!(n_convs >= 15, "only {n_convs} conversations");
    let mut orders_checked = 0;
    for conv in convs {
        let (listener, addr) = local_peer().await;
        let steps = conv.steps.clone();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            play(s, steps).await
        });
        let mut opts = options(Endpoint::Tcp(addr), conv.token.clone());
        opts.access = conv.access.clone();
        let mut client = HaClient::connect(opts)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", conv.name));
        let mut expected = captured_replies(&conv.steps).into_iter();
        for order in &conv.orders {
            let got = client.call(order).await;
            if !order.expects_reply() {
                assert!(
                    matches!(got, Ok(None)),
                    "{}: {order:?} -> {got:?}",
                    conv.name
                );
                continue;
            }
            match (expected.next(), got) {
                (Some(Ok(want)), Ok(Some(reply))) => {
                    assert_eq!(reply, want, "{}: {order:?}", conv.name)
                }
                (Some(Err(code)), Err(ClientError::Server(c))) => {
                    assert_eq!(c, code, "{}: {order:?}", conv.name)
                }
                (None, Err(ClientError::Closed | ClientError::Timeout)) => {}
                (want, got) => panic!(
                    "{}: {order:?}: captured {want:?}, client returned {got:?}",
                    conv.name
                ),
            }
            orders_checked += 1;
        }
        drop(client);
        server
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: {e}", conv.name));
    }
    eprintln!("replayed {n_convs} conversations ({with_access} with the access check), {orders_checked} orders with replies");
    assert!(orders_checked > 40, "only {orders_checked} orders checked");
}

#[tokio::test]
async fn a_rejected_version_is_retried_once_with_the_servers_own() {
    let (listener, addr) = local_peer().await;
    let server = tokio::spawn(async move {
        // First connection: refuse 82 and name 81 (the captured reject form).
        let (mut s, hello) = accept_hello(&listener).await;
        assert_eq!(hello, bytes(OUR_HELLO).as_slice());
        s.write_all(&bytes("010051080205000c04")).await.unwrap();
        drop(s);
        // Second: proto 81 accepted.
        let (mut s, hello) = accept_hello(&listener).await;
        assert_eq!(&hello[..3], &[0x11, 0x00, 0x51]);
        s.write_all(&bytes("000051080205000c04")).await.unwrap();
        let mut token = [0u8; 9];
        s.read_exact(&mut token).await.unwrap();
        assert_eq!(token, bytes("0000000570726f6265").as_slice());
    });
    let client = HaClient::connect(options(Endpoint::Tcp(addr), b"probe".to_vec()))
        .await
        .unwrap();
    assert_eq!(client.protocol, 81);
    server.await.unwrap();
}

#[tokio::test]
async fn a_pinned_version_is_not_renegotiated() {
    let (listener, addr) = local_peer().await;
    tokio::spawn(async move {
        let (mut s, _) = accept_hello(&listener).await;
        s.write_all(&bytes("010052080205000c04")).await.unwrap();
    });
    let mut opts = options(Endpoint::Tcp(addr), vec![]);
    opts.protocol = Some(87);
    let err = HaClient::connect(opts).await.err().expect("refused");
    assert!(
        matches!(
            err,
            ClientError::WrongVersion {
                sent: 87,
                server: 82
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn unix_socket_transport() {
    let dir = std::env::temp_dir().join(format!("coroha-ha-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nso-ipc");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let steps = vec![
        Step {
            dir: "c2s".into(),
            hex: OUR_HELLO.into(),
            decoded: "hello".into(),
            conn: "u".into(),
            t_ms: 0,
        },
        Step {
            dir: "s2c".into(),
            hex: "000052080205000c04".into(),
            decoded: "accepted".into(),
            conn: "u".into(),
            t_ms: 0,
        },
        Step {
            dir: "c2s".into(),
            hex: "0000000570726f6265".into(),
            decoded: "token".into(),
            conn: "u".into(),
            t_ms: 0,
        },
        Step {
            dir: "c2s".into(),
            hex: "000000058368016104".into(),
            decoded: "{4}".into(),
            conn: "u".into(),
            t_ms: 0,
        },
        Step {
            dir: "s2c".into(),
            hex: "0000000683680261016a".into(),
            decoded: "{1,[]}".into(),
            conn: "u".into(),
            t_ms: 0,
        },
    ];
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        play(s, steps).await
    });
    let mut client = HaClient::connect(options(Endpoint::Unix(path), b"probe".to_vec()))
        .await
        .unwrap();
    let reply = client.call(&Order::GetStatus).await.unwrap().unwrap();
    assert_eq!(
        reply,
        Reply::Status {
            state: 1,
            nodes: vec![]
        }
    );
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_missing_one_is_unreachable() {
    let (listener, addr) = local_peer().await;
    let hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s);
    });
    let mut opts = options(Endpoint::Tcp(addr.clone()), vec![]);
    opts.timeout = Duration::from_millis(200);
    let err = HaClient::connect(opts).await.err().unwrap();
    assert!(matches!(err, ClientError::Timeout), "{err}");
    hold.abort();
    // Nothing listens on a port that was just released.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let err = HaClient::connect(options(Endpoint::Tcp(free), vec![]))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err}");
}

/// Like `play`, but frames the client sends are compared as terms: the
/// capture's client wrote atoms as ATOM_EXT, libconfd and coroha as
/// SMALL_ATOM_UTF8_EXT, and the server accepts both.
async fn play_terms<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    steps: Vec<Step>,
) -> Result<(), String> {
    for (k, step) in steps.iter().enumerate() {
        let want = bytes(&step.hex);
        if step.dir == "c2s" {
            let is_frame = want.len() > 4 && want[4] == 131;
            if !is_frame {
                let mut got = vec![0u8; want.len()];
                tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut got))
                    .await
                    .map_err(|_| format!("step {k}: nothing"))?
                    .map_err(|e| e.to_string())?;
                if got != want {
                    return Err(format!(
                        "step {k}: client sent {got:02x?}, capture has {want:02x?}"
                    ));
                }
                continue;
            }
            let mut len = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut len))
                .await
                .map_err(|_| format!("step {k}: nothing"))?
                .map_err(|e| e.to_string())?;
            let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut payload)
                .await
                .map_err(|e| e.to_string())?;
            let (got, exp) = (
                decode_term(&payload).map_err(|e| e.to_string())?,
                decode_term(&want[4..]).unwrap(),
            );
            if got != exp {
                return Err(format!("step {k}: client sent {got}, capture has {exp}"));
            }
        } else if want.is_empty() {
            return Ok(());
        } else {
            s.write_all(&want).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_event_stream_replays_captured_notification_conversations() {
    let mut replayed = 0;
    let mut events_checked = 0;
    for case in cases() {
        for (conn, steps) in connections(&case) {
            // Our notification handshake and a plain HA_INFO subscription.
            let ours = steps.first().is_some_and(|s| s.hex == "0b0052080205000000")
                && steps
                    .get(2)
                    .is_some_and(|s| s.decoded.starts_with("{64,0,0,undefined,0}"));
            if !ours {
                continue;
            }
            let captured: Vec<confd_ha::wire::Event> = steps
                .iter()
                .filter(|s| s.dir == "s2c")
                .filter_map(|s| bytes(&s.hex).get(4..).and_then(|p| decode_term(p).ok()))
                .filter_map(|t| confd_ha::wire::Event::from_term(&t).ok())
                .collect();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = tokio::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                play_terms(s, steps).await
            });
            let opts = options(Endpoint::Tcp(addr), vec![]);
            let mut events = confd_ha::client::HaEvents::connect(&opts, false)
                .await
                .unwrap_or_else(|e| panic!("{} / {conn}: {e}", case.name));
            for want in &captured {
                let got = events
                    .next_event()
                    .await
                    .unwrap_or_else(|e| panic!("{} / {conn}: {e}", case.name));
                assert_eq!(&got, want, "{} / {conn}", case.name);
                events_checked += 1;
            }
            drop(events);
            server
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{} / {conn}: {e}", case.name));
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} notification conversations, {events_checked} events");
    assert!(
        replayed >= 5 && events_checked >= 20,
        "{replayed} conversations, {events_checked} events"
    );
}

#[tokio::test]
async fn sync_mode_acknowledges_each_event_with_ha_synced() {
    let (listener, addr) = local_peer().await;
    let server = tokio::spawn(async move {
        let (mut s, hello) = accept_hello(&listener).await;
        assert_eq!(hello[0], 11);
        s.write_all(&bytes("000052080205000c04")).await.unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.unwrap();
        let mut sub = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut sub).await.unwrap();
        assert!(
            decode_term(&sub)
                .unwrap()
                .to_string()
                .starts_with("{1048640,"),
            "HA_INFO | HA_INFO_SYNC"
        );
        s.write_all(&bytes("00000006836400026f6b")).await.unwrap(); // ok
        s.write_all(&bytes("0000000b8368026140680261056100"))
            .await
            .unwrap(); // IS_PRIMARY
        let mut ack = [0u8; 16];
        s.read_exact(&mut ack).await.unwrap();
        ack
    });
    let opts = options(Endpoint::Tcp(addr), vec![]);
    let mut events = confd_ha::client::HaEvents::connect(&opts, true)
        .await
        .unwrap();
    assert_eq!(
        events.next_event().await.unwrap(),
        confd_ha::wire::Event::IsPrimary(0)
    );
    let ack = server.await.unwrap();
    // The framed atom ha_synced, exactly as libconfd sends it
    // (libconfd_ha_sync_ack in the captures).
    assert_eq!(
        ack.as_slice(),
        bytes("0000000c83770968615f73796e636564").as_slice()
    );
}
