//! The admin socket: one command per line, one JSON line back. It is how
//! tests read a fake node's role history and write counter, and how they
//! commit a transaction on the primary.

use crate::conn::{accept, Conn};
use crate::links;
use crate::state::Server;
use confd_ha::client::{open, Endpoint};
use confd_ha::wire::Reply;
use fake_confd::model::{state_name, PRIMARY};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

pub async fn listen(endpoint: Endpoint, server: Arc<Server>) {
    let served = accept(&endpoint, |s| {
        tokio::spawn(session(s, server.clone()));
    });
    if let Err(e) = served.await {
        // Tests find a fake by its admin socket: never run without it.
        eprintln!("fake-confd: --admin: {e}");
        std::process::exit(2);
    }
}

async fn session(s: Box<dyn Conn>, server: Arc<Server>) {
    let (rd, mut wr) = tokio::io::split(s);
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = command(&server, line.trim()).await;
        if wr
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn command(server: &Arc<Server>, line: &str) -> Value {
    match line {
        "status" => status(server),
        "write" => write(server).await,
        "phase1" => {
            server.with(|st| st.node.start_phase1());
            json!({"ok": true})
        }
        other => json!({"ok": false, "error": format!("unknown command {other:?}")}),
    }
}

fn status(server: &Server) -> Value {
    let st = server.lock();
    let n = &st.node;
    let name = |t: &eetf::Term| Reply::node_name(t);
    json!({
        "ok": true,
        "state": state_name(n.state),
        "id": n.id.as_ref().map(name),
        "primary": n.primary.as_ref().map(|(id, _)| name(id)),
        "secondaries": n.secondaries.iter().map(|s| name(&s.id)).collect::<Vec<_>>(),
        "txid": n.txid,
        "cdb_txid": n.cdb_txid().stamp.to_string(),
        "phase0": n.phase0,
        "read_only": n.read_only,
        "history": st.timeline.iter()
            .map(|(ms, s)| json!({"unix_ms": ms.to_string(), "state": state_name(*s)}))
            .collect::<Vec<_>>(),
    })
}

/// Commit one transaction: only a primary takes writes, and the write is
/// acknowledged once every secondary has it (or has been dropped).
async fn write(server: &Arc<Server>) -> Value {
    let txid = server.with(|st| match (st.node.state, st.node.read_only) {
        (PRIMARY, false) => Ok(st.node.commit(crate::state::unix_micros())),
        // As the real server refuses it (ecode 17, BADSTATE).
        (_, true) => Err("node is in read-only mode"),
        _ => Err("not primary"),
    });
    let txid = match txid {
        Ok(t) => t,
        Err(e) => return json!({"ok": false, "error": e}),
    };
    links::replicate(server, txid).await;
    json!({"ok": true, "txid": txid})
}

/// `fake-confd ctl ADMIN COMMAND`: print the answer; exit 1 if it failed.
pub async fn ctl(admin: &str, command: &str) -> std::process::ExitCode {
    let answer = async {
        let endpoint = Endpoint::parse(admin)?;
        let stream = open(&endpoint, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        ask(stream, command).await
    }
    .await;
    match answer {
        Ok(text) => {
            println!("{text}");
            let ok =
                serde_json::from_str::<Value>(&text).is_ok_and(|v| v["ok"] == Value::Bool(true));
            if ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("fake-confd ctl: {admin}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn ask<S: AsyncRead + AsyncWrite + Unpin>(s: S, command: &str) -> Result<String, String> {
    let (rd, mut wr) = tokio::io::split(s);
    wr.write_all(format!("{command}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(rd).lines();
    lines
        .next_line()
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "closed without an answer".to_string())
}
