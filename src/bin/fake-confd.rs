//! fake-confd: a stand-in for one NSO/ConfD node's HA control and
//! notification sockets, answering as a real ConfD 8.2.5 did in the
//! captures (see src/ha/fake.rs for what it does not do yet).

use clap::Parser;
use coroha::ha::client::Endpoint;
use coroha::ha::fake::{Effect, FakeNode};
use coroha::ha::wire::{self, Event, Hello, HelloReply, Reply};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

#[derive(Parser, Clone)]
#[command(
    name = "fake-confd",
    about = "A stand-in for an NSO/ConfD node's HA sockets"
)]
struct Args {
    /// HOST:PORT or unix:PATH to listen on for library connections.
    #[arg(long, default_value = "127.0.0.1:4565")]
    ipc: String,
    /// Start phase 0: only get_status works.
    #[arg(long)]
    phase0: bool,
    /// Append every HA state change ("<unix ms> <state>") to this file.
    #[arg(long)]
    history: Option<PathBuf>,
}

/// The server's own handshake values (ConfD 8.2.5 with its data models).
const SERVER: HelloReply = HelloReply {
    status: 0,
    proto: 82,
    vsn: 0x0802_0500,
    maxdepth: 12,
    maxkeylen: 4,
};

struct Shared {
    node: FakeNode,
    /// Closes the current HA socket when a new one sends its token.
    ha_socket: Option<oneshot::Sender<()>>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
    history: Option<PathBuf>,
}

impl Shared {
    fn record_history(&self, before: usize) {
        let Some(path) = &self.history else { return };
        let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        else {
            return;
        };
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        for state in &self.node.history[before..] {
            let _ = writeln!(
                f,
                "{ms} {}",
                ["?", "none", "secondary", "primary", "relay"][(*state as usize).min(4)]
            );
        }
    }
}

trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let len = u32::from_be_bytes(len) as usize;
    if len > wire::MAX_FRAME {
        return None;
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

async fn serve(mut s: Box<dyn Conn>, shared: Arc<Mutex<Shared>>) {
    // The server waits 30 s for the handshake.
    let mut hello = [0u8; 9];
    if timeout(Duration::from_secs(30), s.read_exact(&mut hello))
        .await
        .map_or(true, |r| r.is_err())
    {
        return;
    }
    let Ok(hello) = Hello::decode(&hello) else {
        return;
    };
    if hello.kind & 0xC0 != 0 {
        return; // access check requested but not configured: closed
    }
    match hello.kind {
        4 => {
            let _ = s.write_all(&[0x0d]).await;
            return;
        }
        17 | 11 | 3 | 5 | 7 | 8 => {}
        _ => return,
    }
    let refuse = |status| HelloReply { status, ..SERVER }.encode();
    if !wire::PROTOCOL_VERSIONS.contains(&hello.proto) {
        let _ = s.write_all(&refuse(1)).await;
        return;
    }
    let sizes_ok = (hello.maxdepth, hello.maxkeylen) == (0, 0)
        || (hello.maxdepth >= 12 && hello.maxkeylen >= 4);
    if !sizes_ok {
        let _ = s.write_all(&refuse(2)).await;
        return;
    }
    if s.write_all(&SERVER.encode()).await.is_err() {
        return;
    }
    match hello.kind {
        17 => ha_socket(s, shared).await,
        11 => notification_socket(s, shared).await,
        _ => while read_frame(&mut s).await.is_some() {},
    }
}

async fn ha_socket(mut s: Box<dyn Conn>, shared: Arc<Mutex<Shared>>) {
    // No token within 2 s: closed.
    let Ok(Some(_token)) = timeout(Duration::from_secs(2), read_frame(&mut s)).await else {
        return;
    };
    let (replaced_tx, mut replaced) = oneshot::channel();
    if let Ok(mut sh) = shared.lock() {
        if let Some(old) = sh.ha_socket.replace(replaced_tx) {
            let _ = old.send(());
        }
    }
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut s) => f,
            _ = &mut replaced => return,
        };
        let Some(frame) = frame else { return };
        let effects = {
            let Ok(mut sh) = shared.lock() else { return };
            let before = sh.node.history.len();
            let effects = sh.node.frame(&frame);
            sh.record_history(before);
            for e in &effects {
                if let Effect::Event(ev) = e {
                    sh.subscribers.retain(|tx| tx.send(ev.clone()).is_ok());
                }
            }
            effects
        };
        for e in effects {
            match e {
                Effect::Reply(r) => {
                    if s.write_all(&r.encode()).await.is_err() {
                        return;
                    }
                }
                Effect::Event(_) => {}
                Effect::Close => return,
            }
        }
    }
}

async fn notification_socket(mut s: Box<dyn Conn>, shared: Arc<Mutex<Shared>>) {
    let Some(frame) = read_frame(&mut s).await else {
        return;
    };
    // Not a term at all: closed without a word; a term of the wrong shape:
    // {error, 18, <<"Bad subscription data">>}, then closed.
    let Ok(term) = wire::decode_term(&frame) else {
        return;
    };
    let mask = Some(term).and_then(|t| match t {
        eetf::Term::Tuple(t) if t.elements.len() == 5 => match &t.elements[0] {
            eetf::Term::FixInteger(i) => Some(i.value as u32),
            _ => None,
        },
        _ => None,
    });
    let Some(mask) = mask else {
        let bad = eetf::Term::from(eetf::Tuple::from(vec![
            eetf::Term::from(eetf::Atom::from("error")),
            eetf::Term::from(eetf::FixInteger::from(18)),
            eetf::Term::from(eetf::Binary::from(b"Bad subscription data".to_vec())),
        ]));
        let _ = s
            .write_all(&wire::frame(&wire::encode_term_otp25(&bad)))
            .await;
        return;
    };
    if s.write_all(&Reply::Ok.encode()).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    if mask & wire::MASK_HA_INFO != 0 {
        if let Ok(mut sh) = shared.lock() {
            sh.subscribers.push(tx);
        }
    }
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => if s.write_all(&ev.encode()).await.is_err() { return },
                None => return,
            },
            // Acknowledgements and anything else the client sends.
            n = s.read(&mut scratch) => if matches!(n, Ok(0) | Err(_)) { return },
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let endpoint = match Endpoint::parse(&args.ipc) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("fake-confd: --ipc {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let shared = Arc::new(Mutex::new(Shared {
            node: FakeNode::new(args.phase0),
            ha_socket: None,
            subscribers: vec![],
            history: args.history.clone(),
        }));
        match endpoint {
            Endpoint::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .unwrap_or_else(|e| {
                        eprintln!("fake-confd: cannot listen on {addr}: {e}");
                        std::process::exit(1)
                    });
                eprintln!(
                    "fake-confd: listening on {}",
                    listener.local_addr().map_or(addr, |a| a.to_string())
                );
                while let Ok((s, _)) = listener.accept().await {
                    let _ = s.set_nodelay(true);
                    tokio::spawn(serve(Box::new(s), shared.clone()));
                }
            }
            Endpoint::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let listener = tokio::net::UnixListener::bind(&path).unwrap_or_else(|e| {
                    eprintln!("fake-confd: cannot listen on {}: {e}", path.display());
                    std::process::exit(1)
                });
                while let Ok((s, _)) = listener.accept().await {
                    tokio::spawn(serve(Box::new(s), shared.clone()));
                }
            }
        }
    });
    std::process::ExitCode::SUCCESS
}
