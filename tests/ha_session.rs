//! The daemon's view of the HA sockets against a fake-confd that dies,
//! freezes and comes back: a dead server is Down, a frozen one Hung, and
//! both the control session and the notification stream reconnect after
//! their back-off.

use confd_ha::client::{ClientError, ClientOptions, Endpoint};
use confd_ha::wire::{Event, Order, Reply};
use coroha::ha::session::{HaNotices, HaSession, Health, Notice};
use coroha::retry::Backoff;
use coroha_testkit::free_ports;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Fake(Child);

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_fake(ipc: &str, ha: &str) -> Fake {
    let child = Command::new(coroha_testkit::workspace_bin(
        env!("CARGO_BIN_EXE_coroha"),
        "fake-confd",
    ))
    .args(["--ipc", ipc, "--ha-listen", ha])
    .stderr(Stdio::null())
    .spawn()
    .expect("start fake-confd");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(ipc).is_err() {
        assert!(Instant::now() < deadline, "fake-confd did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Fake(child)
}

fn signal(fake: &Fake, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &fake.0.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn addresses() -> (String, String) {
    let [ipc, ha] = free_ports();
    (format!("127.0.0.1:{ipc}"), format!("127.0.0.1:{ha}"))
}

fn options(ipc: &str) -> ClientOptions {
    ClientOptions {
        endpoint: Endpoint::parse(ipc).unwrap(),
        token: b"t".to_vec(),
        protocol: None,
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(500),
        besecondary_timeout: Duration::from_secs(2),
        access: None,
    }
}

fn quick() -> Backoff {
    Backoff::new(Duration::from_millis(50), Duration::from_millis(200))
}

#[tokio::test]
async fn a_dead_server_is_down_a_frozen_one_hung_and_both_are_reconnected() {
    let (ipc, ha) = addresses();
    let mut session = HaSession::new(options(&ipc), quick());

    // Nothing listens: Down, and the next attempt waits for the back-off.
    assert!(matches!(
        session.probe().await,
        Health::Down(ClientError::Unreachable(_))
    ));
    assert!(session.retry_at().is_some());
    assert!(matches!(
        session.call(&Order::GetStatus).await,
        Err(ClientError::Unreachable(m)) if m.starts_with("reconnecting in")
    ));

    let fake = start_fake(&ipc, &ha);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(
        session.probe().await,
        Health::Up(Reply::Status { state: 1, .. })
    ));
    assert!(session.connected());

    // A ConfD error keeps the connection.
    assert!(matches!(
        session.call(&Order::BeRelay).await,
        Err(ClientError::Server(17))
    ));
    assert!(session.connected());

    // Frozen: connected but silent.
    signal(&fake, "-STOP");
    assert!(matches!(session.probe().await, Health::Hung));
    assert!(!session.connected());
    signal(&fake, "-CONT");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(session.probe().await, Health::Up(_)));

    // Killed: the open socket closes.
    drop(fake);
    assert!(matches!(session.probe().await, Health::Down(_)));
    assert!(!session.connected());
}

#[tokio::test]
async fn notifications_come_back_with_the_server() {
    let (ipc, ha) = addresses();
    let mut notices = HaNotices::new(options(&ipc), false, quick());
    assert!(matches!(notices.next().await, Notice::Lost(_)));

    let fake = start_fake(&ipc, &ha);
    assert!(matches!(notices.next().await, Notice::Subscribed));
    let mut session = HaSession::new(options(&ipc), quick());
    session
        .call(&Order::BePrimary { me: "n1".into() })
        .await
        .unwrap();
    assert!(matches!(
        notices.next().await,
        Notice::Event(Event::IsPrimary(0))
    ));

    drop(fake);
    assert!(matches!(
        notices.next().await,
        Notice::Lost(ClientError::Closed)
    ));
    let fake = start_fake(&ipc, &ha);
    // It resubscribes by itself (perhaps after a failed attempt or two).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match notices.next().await {
            Notice::Subscribed => break,
            Notice::Lost(_) => assert!(Instant::now() < deadline, "no resubscription"),
            other => panic!("{other:?}"),
        }
    }
    drop(fake);
}

/// Another HA client (Tail-f's `confd_cmd`) connecting to the same server
/// replaces coroha's HA socket, as the real server does when the new
/// token arrives. The session notices the close while idle, and an order
/// given after the replacement is answered over a new connection instead
/// of being reported as a dead server.
#[tokio::test]
async fn a_foreign_ha_client_replaces_the_socket_and_the_session_takes_it_back() {
    let (ipc, ha) = addresses();
    let _fake = start_fake(&ipc, &ha);
    let mut session = HaSession::new(options(&ipc), quick());
    assert!(matches!(session.probe().await, Health::Up(_)));

    let foreign = ClientOptions {
        token: b"confd_cmd".to_vec(),
        ..options(&ipc)
    };
    let mut other = confd_ha::client::HaClient::connect(foreign.clone())
        .await
        .unwrap();
    assert!(other.call(&Order::GetStatus).await.is_ok());
    // The server closes coroha's idle socket.
    tokio::time::timeout(Duration::from_secs(2), session.closed())
        .await
        .expect("the replaced socket is closed");
    assert!(!session.connected());
    session.reconnect().await.unwrap();
    assert!(matches!(session.probe().await, Health::Up(_)));

    // Replaced again, and this time an order comes first: it is answered.
    let mut other = confd_ha::client::HaClient::connect(foreign).await.unwrap();
    assert!(other.call(&Order::GetStatus).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (answer, replaced) = session.call_reconnecting(&Order::GetStatus).await;
    assert!(
        matches!(answer, Ok(Some(Reply::Status { .. }))),
        "{answer:?}"
    );
    assert!(replaced, "the replacement is reported");
}
