//! `coroha ha`: give one HA order to a local NSO/ConfD, or watch its HA
//! events, in the spirit of `confd_cmd`. Human-readable output by default,
//! JSON for scripts; a ConfD error prints its name and code and exits 1.

use confd_ha::client::{ClientError, ClientOptions, Endpoint, HaClient, HaEvents};
use confd_ha::wire::{state_name, Address, Event, Order, Reply};
use coroha_config::Config;
use serde_json::json;

#[derive(Clone, Debug, clap::Subcommand)]
pub enum HaCommand {
    /// Show the HA role and the connected nodes.
    Status,
    /// Make this node primary under the HA node name NODE.
    Beprimary { node: String },
    /// Make this node (NODE) a secondary of PRIMARY reachable at ADDRESS.
    Besecondary {
        node: String,
        primary: String,
        address: String,
        /// Do not wait for the initial sync (WaitReply 0): no reply; the
        /// result arrives as an HA event.
        #[arg(long = "async")]
        asynchronous: bool,
    },
    /// Leave HA (NONE). NONE is writable in NSO/ConfD.
    Benone,
    /// Turn this secondary into a relay.
    Berelay,
    /// Tell this primary that secondary NODE is dead.
    SecondaryDead { node: String },
    /// Show which commit the running datastore is at (CDB `cdb_get_txid`):
    /// equal on a primary and its in-sync secondaries.
    Txid,
    /// Print HA events until interrupted.
    Watch {
        /// Subscribe with HA_INFO_SYNC and acknowledge each event.
        #[arg(long)]
        sync: bool,
    },
}

#[derive(Clone, Debug, clap::Args)]
pub struct HaArgs {
    /// HOST:PORT or unix:PATH of the IPC listener (default: from the config).
    #[arg(long)]
    pub ipc: Option<String>,
    /// The HA token (prefer --token-file: command lines are visible).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Configuration file for what is not given here.
    #[arg(long, default_value = "/etc/coroha/coroha.toml")]
    pub config: std::path::PathBuf,
    #[arg(long)]
    pub json: bool,
    /// Give a role-changing order although a coroha daemon runs on this
    /// node (it will act on what it then finds: a second primary is
    /// demoted again).
    #[arg(long)]
    pub force: bool,
    #[command(subcommand)]
    pub command: HaCommand,
}

/// The control socket of a coroha daemon running on this node, if one
/// answers there.
fn running_daemon(config: &std::path::Path) -> Option<std::path::PathBuf> {
    let (socket, _) = Config::control_socket(config);
    std::os::unix::net::UnixStream::connect(&socket)
        .is_ok()
        .then_some(socket)
}

fn options(args: &HaArgs) -> Result<ClientOptions, String> {
    // With --ipc the config file may be absent; one that is there is read,
    // and its errors are named: ignoring it would drop its token and access
    // check without a word.
    let config = match Config::load(&args.config) {
        Ok(c) => Some(c),
        Err(_) if args.ipc.is_some() && !args.config.exists() => None,
        Err(errors) => return Err(coroha_config::error_lines(&errors)),
    };
    let ha = config.as_ref().map(|c| c.ha.clone()).unwrap_or_default();
    let mut opts = crate::ha::client_options(&ha)?;
    if let Some(ipc) = &args.ipc {
        opts.endpoint = Endpoint::parse(ipc)?;
    }
    match (&args.token, &args.token_file) {
        (Some(t), _) => opts.token = t.clone().into_bytes(),
        (None, Some(f)) => opts.token = coroha_config::read_token(f)?,
        (None, None) => {}
    }
    Ok(opts)
}

fn address_text(t: &eetf::Term) -> String {
    match t {
        eetf::Term::Tuple(items) => {
            let n: Vec<String> = items.elements.iter().map(|e| e.to_string()).collect();
            if n.len() == 4 {
                n.join(".")
            } else {
                let words: Vec<u16> = items
                    .elements
                    .iter()
                    .map(|e| match e {
                        eetf::Term::FixInteger(i) => i.value as u16,
                        _ => 0,
                    })
                    .collect();
                words
                    .try_into()
                    .map(|w: [u16; 8]| std::net::Ipv6Addr::from(w).to_string())
                    .unwrap_or_default()
            }
        }
        other => Reply::node_name(other),
    }
}

fn event_json(e: &Event) -> serde_json::Value {
    match e {
        Event::NoPrimary(c) => {
            json!({"event": "no_primary", "code": c, "name": confd_ha::code::name(*c)})
        }
        Event::SecondaryDied { id, addr } => {
            json!({"event": "secondary_died", "node": Reply::node_name(id), "address": address_text(addr)})
        }
        Event::SecondaryArrived { id, addr } => {
            json!({"event": "secondary_arrived", "node": Reply::node_name(id), "address": address_text(addr)})
        }
        Event::SecondaryInitialized(v) => json!({"event": "secondary_initialized", "value": v}),
        Event::IsPrimary(_) => json!({"event": "is_primary"}),
        Event::IsNone(_) => json!({"event": "is_none"}),
        // 0 is success: the asynchronous besecondary joined.
        Event::BeSecondaryResult(0) => {
            json!({"event": "besecondary_result", "code": 0, "name": "OK"})
        }
        Event::BeSecondaryResult(c) => {
            json!({"event": "besecondary_result", "code": c, "name": confd_ha::code::name(*c)})
        }
    }
}

fn error_json(e: &ClientError) -> serde_json::Value {
    match e {
        ClientError::Server(c) => json!({"error": {"code": c, "name": confd_ha::code::name(*c)}}),
        other => json!({"error": {"message": other.to_string()}}),
    }
}

/// Run the command; returns the process exit code.
pub async fn run(args: HaArgs) -> i32 {
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("coroha ha: {e}");
            return 2;
        }
    };
    let order = match &args.command {
        HaCommand::Status => Order::GetStatus,
        HaCommand::Beprimary { node } => Order::BePrimary { me: node.clone() },
        HaCommand::Besecondary {
            node,
            primary,
            address,
            asynchronous,
        } => Order::BeSecondary {
            me: node.clone(),
            primary: primary.clone(),
            address: Address::parse(address),
            wait: !asynchronous,
        },
        HaCommand::Benone => Order::BeNone,
        HaCommand::Berelay => Order::BeRelay,
        HaCommand::SecondaryDead { node } => Order::SecondaryDead { node: node.clone() },
        HaCommand::Watch { sync } => return watch(&opts, *sync, args.json).await,
        HaCommand::Txid => return txid(&opts, args.json).await,
    };
    let changes_role = !matches!(order, Order::GetStatus);
    if changes_role && !args.force {
        if let Some(socket) = running_daemon(&args.config) {
            eprintln!(
                "coroha ha: {}: refused: a coroha daemon runs on this node ({} answers) and \
                 decides this server's role; an order given beside it is undone or fought \
                 (two primaries until it repairs them). Use `coroha switchover`, `coroha \
                 standby` or `coroha stop`, or give --force",
                order.verb(),
                socket.display()
            );
            return 2;
        }
    }
    let result = match HaClient::connect(opts).await {
        Ok(mut client) => client.call(&order).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(reply) => {
            print_reply(reply.as_ref(), args.json);
            0
        }
        Err(e) => {
            if args.json {
                println!("{}", error_json(&e));
            } else {
                eprintln!("coroha ha: {}: {e}", order.verb());
            }
            1
        }
    }
}

fn print_reply(reply: Option<&Reply>, as_json: bool) {
    match reply {
        Some(Reply::Status { state, nodes }) => {
            let nodes: Vec<(String, String)> = nodes
                .iter()
                .map(|(id, addr)| (Reply::node_name(id), address_text(addr)))
                .collect();
            if as_json {
                let list: Vec<_> = nodes
                    .iter()
                    .map(|(n, a)| json!({"node": n, "address": a}))
                    .collect();
                println!("{}", json!({"role": state_name(*state), "nodes": list}));
                return;
            }
            println!("role: {}", state_name(*state));
            let label = match state {
                2 => "primary",
                3 => "secondaries",
                _ => "nodes",
            };
            if !nodes.is_empty() {
                let list: Vec<String> = nodes.iter().map(|(n, a)| format!("{n} ({a})")).collect();
                println!("{label}: {}", list.join(", "));
            }
        }
        Some(_) => println!(
            "{}",
            if as_json {
                json!({"ok": true}).to_string()
            } else {
                "ok".into()
            }
        ),
        None => println!(
            "{}",
            if as_json {
                json!({"sent": true}).to_string()
            } else {
                "sent (no reply expected)".into()
            }
        ),
    }
}

async fn txid(opts: &ClientOptions, as_json: bool) -> i32 {
    let result = match confd_ha::client::Cdb::connect_cdb(opts).await {
        Ok(mut cdb) => cdb.txid().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(t) => {
            if as_json {
                println!(
                    "{}",
                    json!({"txid": t.stamp.to_string(), "primary": t.primary, "empty": t.stamp.is_empty()})
                );
            } else {
                match &t.primary {
                    Some(p) => println!("txid: {} (committed by {p})", t.stamp),
                    None => println!("txid: {}", t.stamp),
                }
            }
            0
        }
        Err(e) => {
            if as_json {
                println!("{}", error_json(&e));
            } else {
                eprintln!("coroha ha: cdb_get_txid: {e}");
            }
            1
        }
    }
}

/// A failure of `watch`: as JSON on stdout with --json, like every other
/// answer, else on stderr.
fn watch_failed(e: &ClientError, as_json: bool) -> i32 {
    if as_json {
        println!("{}", error_json(e));
    } else {
        eprintln!("coroha ha watch: {e}");
    }
    1
}

async fn watch(opts: &ClientOptions, sync: bool, as_json: bool) -> i32 {
    let mut events = match HaEvents::connect(opts, sync).await {
        Ok(e) => e,
        Err(e) => return watch_failed(&e, as_json),
    };
    loop {
        tokio::select! {
            ev = events.next_event() => match ev {
                Ok(e) => {
                    let v = event_json(&e);
                    if as_json {
                        println!("{v}");
                    } else {
                        let rest: Vec<String> = v.as_object().into_iter().flatten()
                            .filter(|(k, _)| *k != "event")
                            .map(|(k, x)| format!("{k}={}", x.as_str().map_or_else(|| x.to_string(), str::to_string)))
                            .collect();
                        println!("{} {}", v["event"].as_str().unwrap_or("?"), rest.join(" "));
                    }
                }
                Err(e) => return watch_failed(&e, as_json),
            },
            _ = tokio::signal::ctrl_c() => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asynchronous_besecondary_that_joined_is_ok_not_unknown() {
        let v = event_json(&Event::BeSecondaryResult(0));
        assert_eq!(
            (v["code"].as_i64(), v["name"].as_str()),
            (Some(0), Some("OK"))
        );
        let v = event_json(&Event::BeSecondaryResult(29));
        assert_eq!(v["name"], "HA_BADNAME");
    }
}
