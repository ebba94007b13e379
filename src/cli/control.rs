//! The operator's commands against a running daemon: `coroha status`,
//! `switchover`, `standby`, `stop`, `confirm-down`.

use crate::daemon::control::{request, Request};
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// Send one request; print the answer (JSON or text). Exit code 0 on
/// success, 1 when the daemon refused, 2 when it could not be asked.
pub async fn run(socket: &Path, req: Request, json: bool) -> u8 {
    let answer = match request(socket, &req).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("coroha: {e}");
            return 2;
        }
    };
    if json {
        println!("{answer}");
    } else if let Some(error) = answer.get("error").and_then(Value::as_str) {
        eprintln!("coroha: {error}");
    } else if let Some(status) = answer.get("status") {
        print!("{}", render_status(status));
    } else {
        println!("ok");
    }
    if answer.get("ok") == Some(&Value::Bool(true)) {
        0
    } else {
        1
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    }
}

fn ring(v: &Value) -> String {
    match (v.get("rep"), v.get("seq").and_then(Value::as_u64)) {
        (Some(rep), Some(seq)) => format!("{rep}.{seq:x}"),
        _ => "-".into(),
    }
}

/// The status as an operator reads it at 3 a.m.
pub fn render_status(s: &Value) -> String {
    let p = &s["policy"];
    let c = &s["corosync"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}: {} (epoch {}), NSO/ConfD {}{}{}",
        text(&p["node"]),
        text(&p["role"]),
        p["epoch"],
        text(&p["health"]),
        if p["standby"] == Value::Bool(true) {
            ", standby"
        } else {
            ""
        },
        if p["stopping"] == Value::Bool(true) {
            ", stopping"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "primary: {}   plan: {}",
        text(&p["primary"]),
        p["plan"].as_str().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "corosync: {}, ring {} [{}], {} of {} expected votes needed, {} coroha daemons",
        if c["connected"] != Value::Bool(true) {
            "NOT CONNECTED"
        } else if p["quorate"] == Value::Bool(true) {
            "quorate"
        } else {
            "NOT QUORATE"
        },
        ring(&c["ring"]),
        c["ring_members"]
            .as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        c["quorum"],
        c["expected_votes"],
        c["group"].as_array().map_or(0, Vec::len),
    );
    if let Some(pending) = p["pending"].as_str() {
        let _ = writeln!(out, "order in flight: {pending}");
    }
    let _ = writeln!(out, "NODE         ROLE        EPOCH  PARENT     HEALTH");
    for m in p["members"].as_array().into_iter().flatten() {
        let mut flags = String::new();
        if m["standby"] == Value::Bool(true) {
            flags.push_str(" standby");
        }
        if m["leaving"] == Value::Bool(true) {
            flags.push_str(" leaving");
        }
        let line = format!(
            "{:<12} {:<10} {:>6}  {:<10} {:<10}{flags}",
            text(&m["name"]),
            text(&m["role"]),
            m["epoch"].to_string(),
            text(&m["parent"]),
            text(&m["health"]),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_renders_for_an_operator() {
        let status = json!({
            "policy": {"node": "n1", "role": "Primary", "epoch": 3, "health": "Ok", "standby": false,
                       "stopping": false, "primary": "n1", "plan": "n1 stays primary", "quorate": true,
                       "pending": null,
                       "members": [{"name": "n1", "role": "Primary", "epoch": 3, "parent": null, "health": "Ok",
                                    "standby": false, "leaving": false},
                                   {"name": "n2", "role": "Secondary", "epoch": 3, "parent": "n1", "health": "Ok",
                                    "standby": true, "leaving": false}]},
            "corosync": {"connected": true, "ring": {"rep": 1, "seq": 30}, "ring_members": [1, 2],
                         "quorum": 2, "expected_votes": 3, "group": [{"node": 1, "pid": 5}, {"node": 2, "pid": 6}]}
        });
        let text = render_status(&status);
        assert!(
            text.starts_with("node n1: primary (epoch 3), NSO/ConfD ok\n"),
            "{text}"
        );
        assert!(text.contains("corosync: quorate, ring 1.1e [1, 2], 2 of 3 expected votes needed, 2 coroha daemons"), "{text}");
        assert!(
            text.contains("n2           secondary       3  n1         ok         standby"),
            "{text}"
        );
    }
}
