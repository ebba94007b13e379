//! fake-confd: a stand-in for one NSO/ConfD node's HA behaviour, answering
//! as a real ConfD 8.2.5 did in the captures (docs/ha-protocol.md lists
//! what it reproduces and what it does not). Several of them form a
//! cluster: a secondary links to its primary's HA port, with the token and
//! name checked, ticks both ways and a replicated write counter.

mod admin;
mod conn;
mod links;
mod server;
mod state;

use clap::{Parser, Subcommand};
use confd_ha::client::Endpoint;
use confd_ha::wire::{self, AccessCheck, Hello, HelloReply};
use conn::Conn;
use fake_confd::model::FakeNode;
use state::Server;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::timeout;

#[derive(Parser)]
#[command(
    name = "fake-confd",
    about = "A stand-in for an NSO/ConfD node's HA sockets and HA links",
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// HOST:PORT or unix:PATH to listen on for library connections (the
    /// HA control and notification sockets).
    #[arg(long, default_value = "127.0.0.1:4565")]
    ipc: String,
    /// IP:PORT to accept secondaries on. Its port is also the port this
    /// node connects to on a primary (a besecondary address has no port).
    #[arg(long, default_value = "127.0.0.1:4569")]
    ha_listen: String,
    /// The tick period in milliseconds (ConfD's tickTimeout); a link that
    /// is silent for 3 ticks is dead.
    #[arg(long, default_value_t = 2000)]
    tick_ms: u64,
    /// Start in start phase 0 (only get_status works) until the admin
    /// command `phase1`.
    #[arg(long)]
    phase0: bool,
    /// ha/enabled=false: HA control sockets are refused.
    #[arg(long)]
    ha_disabled: bool,
    /// Require the IPC access check, with this file's bytes as the secret.
    #[arg(long)]
    access_secret: Option<PathBuf>,
    /// Access-check challenges to send, in hex, comma-separated, one per
    /// checked connection in turn (then random): for replaying captures.
    #[arg(long, hide = true)]
    challenge: Option<String>,
    /// HOST:PORT or unix:PATH for test and operator queries (see `ctl`).
    #[arg(long)]
    admin: Option<String>,
    /// Append every HA state change ("<unix ms> <state>") to this file.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Keep the write counter in this file across restarts, like a CDB.
    #[arg(long)]
    cdb: Option<PathBuf>,
    /// How long a join takes once the primary admitted it, drawn evenly
    /// from MIN-MAX ("59ms-275ms": a real ConfD 8.2.5's waiting
    /// besecondary, docs/ha-protocol.md); without it, as fast as the
    /// links go (7-40 ms measured).
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_latency)]
    join_latency: Option<(Duration, Duration)>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Query or drive a running fake-confd through its --admin socket:
    /// `status` (role, write counter, history as JSON), `write` (commit one
    /// transaction on the primary, replicated to its secondaries), `phase1`.
    Ctl {
        /// The fake's --admin address.
        admin: String,
        command: String,
    },
}

fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    let (min, max) = text
        .split_once('-')
        .ok_or("expected MIN-MAX, e.g. 59ms-275ms")?;
    let parse = |t: &str| humantime::parse_duration(t.trim()).map_err(|e| format!("{t}: {e}"));
    let (min, max) = (parse(min)?, parse(max)?);
    if min > max {
        return Err(format!("{text}: MIN is above MAX"));
    }
    Ok((min, max))
}

/// What the tasks of one fake node need to know.
pub struct Settings {
    pub tick: Duration,
    pub ha_port: u16,
    pub history: Option<PathBuf>,
    pub cdb: Option<PathBuf>,
    /// `--join-latency`.
    pub join_latency: Option<(Duration, Duration)>,
    ha_disabled: bool,
    access: Option<Access>,
}

/// The IPC access check: the secret, and challenges fixed for replays
/// (kept reversed, so that `pop` takes them in order).
struct Access {
    secret: Vec<u8>,
    challenges: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// The server's own handshake values (ConfD 8.2.5 with its data models).
const SERVER: HelloReply = HelloReply {
    status: 0,
    proto: 82,
    vsn: 0x0802_0500,
    maxdepth: 12,
    maxkeylen: 4,
};

/// The real server answers handshakes one connection at a time.
static HANDSHAKES: AsyncMutex<()> = AsyncMutex::const_new(());

/// The handshake, the access check if configured, then the socket's role.
async fn serve(mut s: Box<dyn Conn>, server: Arc<Server>) {
    let kind = {
        let _one_at_a_time = HANDSHAKES.lock().await;
        match handshake(&mut s, &server.settings).await {
            Some(kind) => kind,
            None => return,
        }
    };
    match kind {
        wire::CLIENT_HA => server::ha_socket(s, server).await,
        wire::CLIENT_NOTIFICATIONS => server::notification_socket(s, server).await,
        wire::ipc::CLIENT_MAAPI | wire::ipc::CLIENT_CDB => server::ipc_socket(s, server).await,
        // Other accepted client types: read and ignore.
        _ => {
            let mut sink = [0u8; 512];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    }
}

/// Returns the client type if the connection goes on.
async fn handshake(s: &mut Box<dyn Conn>, settings: &Settings) -> Option<u8> {
    // The server waits 30 s for the 9 bytes.
    let mut hello = [0u8; 9];
    timeout(Duration::from_secs(30), s.read_exact(&mut hello))
        .await
        .ok()?
        .ok()?;
    let hello = Hello::decode(&hello).ok()?;
    let requested = match hello.kind & 0xC0 {
        0 => None,
        0x80 => Some(AccessCheck::Md5),
        0xC0 => Some(AccessCheck::Sha256),
        _ => return None, // bit 6 alone
    };
    match (&settings.access, requested) {
        (None, None) => {}
        // Asked for but not configured, or configured but not asked for:
        // reset, as the real server does.
        (None, Some(_)) | (Some(_), None) => {
            s.reset_on_close();
            return None;
        }
        (Some(Access { secret, challenges }), Some(check)) => {
            let next = challenges.lock().ok().and_then(|mut f| f.pop());
            let challenge = next.unwrap_or_else(|| random_bytes(check.challenge_len()));
            s.write_all(&[[0x0b].as_slice(), &challenge].concat())
                .await
                .ok()?;
            let expected = check.response(secret, &challenge);
            let mut answer = vec![0u8; expected.len()];
            timeout(Duration::from_secs(30), s.read_exact(&mut answer))
                .await
                .ok()?
                .ok()?;
            if answer != expected {
                let _ = s.write_all(&[0x03]).await;
                return None;
            }
            s.write_all(&[0x00]).await.ok()?;
        }
    }
    // Refused client types are reset, not closed (confd-ha-wire §1).
    let kind = hello.kind & 0x3F;
    match kind {
        4 => {
            let _ = s.write_all(&[0x0d]).await;
            s.reset_on_close();
            return None;
        }
        wire::CLIENT_HA if settings.ha_disabled => {
            s.reset_on_close();
            return None;
        }
        17 | 11 | 3 | 5 | 7 | 8 => {}
        _ => {
            s.reset_on_close();
            return None;
        }
    }
    let refuse = |status| HelloReply { status, ..SERVER }.encode();
    if !wire::PROTOCOL_VERSIONS.contains(&hello.proto) {
        let _ = s.write_all(&refuse(1)).await;
        return None;
    }
    let sizes_ok = (hello.maxdepth, hello.maxkeylen) == (0, 0)
        || (hello.maxdepth >= 12 && hello.maxkeylen >= 4);
    if !sizes_ok {
        let _ = s.write_all(&refuse(2)).await;
        return None;
    }
    s.write_all(&SERVER.encode()).await.ok()?;
    Some(kind)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read as _;
        let _ = f.read_exact(&mut out);
    }
    out
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&text[k..k + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("fake-confd: {what}");
    std::process::exit(2)
}

fn settings(args: &Args, ha_port: u16) -> Settings {
    let access = args.access_secret.as_ref().map(|path| {
        // The secret is the file's raw bytes, trailing newline included.
        let secret = std::fs::read(path)
            .unwrap_or_else(|e| fail(format!("--access-secret {}: {e}", path.display())));
        let challenges: Vec<Vec<u8>> = args
            .challenge
            .iter()
            .flat_map(|list| list.split(',').rev())
            .map(|h| hex(h).unwrap_or_else(|e| fail(format!("--challenge: {e}"))))
            .collect();
        Access {
            secret,
            challenges: std::sync::Mutex::new(challenges),
        }
    });
    Settings {
        tick: Duration::from_millis(args.tick_ms.max(1)),
        ha_port,
        history: args.history.clone(),
        cdb: args.cdb.clone(),
        join_latency: args.join_latency,
        ha_disabled: args.ha_disabled,
        access,
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Some(Command::Ctl { admin, command }) = &args.command {
        return runtime.block_on(admin::ctl(admin, command));
    }
    let endpoint = Endpoint::parse(&args.ipc).unwrap_or_else(|e| fail(format!("--ipc {e}")));
    let admin_endpoint = args
        .admin
        .as_deref()
        .map(|a| Endpoint::parse(a).unwrap_or_else(|e| fail(format!("--admin {e}"))));
    let cdb = args
        .cdb
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    runtime.block_on(async move {
        let ha = tokio::net::TcpListener::bind(&args.ha_listen)
            .await
            .unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", args.ha_listen)));
        let ha_port = ha.local_addr().map_or(4569, |a| a.port());
        let server = Arc::new(Server::new(
            settings(&args, ha_port),
            FakeNode::from_cdb_file(args.phase0, &cdb),
        ));
        tokio::spawn(links::listen(server.clone(), ha));
        if let Some(endpoint) = admin_endpoint {
            tokio::spawn(admin::listen(endpoint, server.clone()));
        }
        eprintln!(
            "fake-confd: library sockets on {}, HA port {}",
            args.ipc, args.ha_listen
        );
        let served = conn::accept(&endpoint, |s| {
            tokio::spawn(serve(s, server.clone()));
        });
        if let Err(e) = served.await {
            fail(e);
        }
    });
    std::process::ExitCode::SUCCESS
}
