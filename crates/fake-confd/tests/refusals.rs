//! Connections the real server refuses outright are reset (RST), not
//! closed (FIN): an access check configured on one side only (issue 17),
//! and the client types it does not serve (confd-ha-wire §1). A client
//! sees the difference as ECONNRESET instead of end of file.

use coroha_testkit::free_ports;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Fake(Child, String);

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(extra: &[&str]) -> Fake {
    let [ipc, ha] = free_ports();
    let ipc = format!("127.0.0.1:{ipc}");
    let child = Command::new(env!("CARGO_BIN_EXE_fake-confd"))
        .args(["--ipc", &ipc, "--ha-listen", &format!("127.0.0.1:{ha}")])
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .expect("start fake-confd");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&ipc).is_err() {
        assert!(Instant::now() < deadline, "fake-confd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Fake(child, ipc)
}

/// Send a 9-byte handshake of client type byte `kind` (libconfd's values
/// otherwise) and read until the server ends the connection: the bytes it
/// sent, and how it ended.
fn handshake(fake: &Fake, kind: u8) -> (Vec<u8>, ErrorKind) {
    let mut s = TcpStream::connect(&fake.1).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[kind, 0x00, 0x52, 0x08, 0x02, 0x05, 0x00, 0x14, 0x09])
        .unwrap();
    let mut got = vec![];
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, ErrorKind::UnexpectedEof),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, e.kind()),
        }
    }
}

#[test]
fn an_access_check_on_one_side_only_is_reset() {
    // Asked for (MD5 bit on an HA client) where none is configured.
    let plain = start(&[]);
    assert_eq!(
        handshake(&plain, 0x91),
        (vec![], ErrorKind::ConnectionReset)
    );
    // Configured, and a client that does not ask.
    let dir = std::env::temp_dir().join(format!("fake-confd-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("access");
    std::fs::write(&secret, b"s3cr3t\n").unwrap();
    let checking = start(&["--access-secret", secret.to_str().unwrap()]);
    assert_eq!(
        handshake(&checking, 0x11),
        (vec![], ErrorKind::ConnectionReset)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn client_types_the_server_does_not_serve_are_reset() {
    let fake = start(&[]);
    assert_eq!(handshake(&fake, 18), (vec![], ErrorKind::ConnectionReset));
    assert_eq!(handshake(&fake, 0), (vec![], ErrorKind::ConnectionReset));
    // The CLI type gets one byte first.
    assert_eq!(
        handshake(&fake, 4),
        (vec![0x0d], ErrorKind::ConnectionReset)
    );
    // A wrong protocol version is answered, then closed normally.
    let mut s = TcpStream::connect(&fake.1).unwrap();
    s.write_all(&[0x11, 0x00, 0x57, 0x08, 0x02, 0x05, 0x00, 0x14, 0x09])
        .unwrap();
    let mut reply = vec![];
    s.read_to_end(&mut reply).expect("a clean close");
    assert_eq!(reply[0], 1, "status 1: wrong version");
}
