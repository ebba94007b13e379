//! The control protocol between a running daemon and the operator's
//! commands (`coroha status`, `switchover`, …): one JSON object per line
//! each way over the control socket, typed on both ends by the same
//! [`Request`] and [`Reply`].
//!
//! `{"cmd":"status"}` → `{"ok":true,"status":{"policy":…,"corosync":…}}`;
//! a request that was taken → `{"ok":true}`; a refusal →
//! `{"ok":false,"error":"…"}`. `coroha status --json` prints the reply as
//! it came, so these field names are an interface.

use crate::corosync::CorosyncView;
use coroha_policy::Status;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    /// Move the primary role (to the best other node when `to` is unset).
    Switchover {
        #[serde(default)]
        to: Option<String>,
    },
    Standby {
        node: String,
        on: bool,
    },
    /// Stop the daemon: hand the primary role over first, or (keep_roles)
    /// leave every role as it is, for upgrading coroha itself.
    Stop {
        #[serde(default)]
        keep_roles: bool,
    },
    /// The operator vouches that this node's NSO/ConfD is down.
    ConfirmDown {
        node: String,
    },
    /// Pause (`on`) or resume the whole cluster.
    Pause {
        on: bool,
    },
    /// Prometheus text (what `GET /metrics` serves).
    Metrics,
    /// The newest `last` entries of the node's history.
    History {
        #[serde(default = "default_history")]
        last: usize,
    },
}

fn default_history() -> usize {
    50
}

impl Request {
    /// A request that changes something, in words for the history; none
    /// for the ones that only read.
    pub fn describe(&self) -> Option<String> {
        match self {
            Request::Status | Request::Metrics | Request::History { .. } => None,
            Request::Switchover { to: Some(to) } => Some(format!("switchover to {to}")),
            Request::Switchover { to: None } => Some("switchover".into()),
            Request::Standby { node, on: true } => Some(format!("standby {node}")),
            Request::Standby { node, on: false } => Some(format!("standby {node} --off")),
            Request::Stop { keep_roles: true } => Some("stop --keep-roles".into()),
            Request::Stop { keep_roles: false } => Some("stop".into()),
            Request::ConfirmDown { node } => Some(format!("confirm-down {node}")),
            Request::Pause { on: true } => Some("pause".into()),
            Request::Pause { on: false } => Some("resume".into()),
        }
    }
}

/// The daemon's answer to one [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "WireReply", try_from = "WireReply")]
pub enum Reply {
    /// The request was taken (it became an input of the policy).
    Taken,
    Status(Box<StatusReport>),
    Metrics(String),
    History(Vec<crate::daemon::history::Entry>),
    /// Nothing was done, and why.
    Refused(String),
}

/// What `coroha status` shows: the policy's view and corosync's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub policy: Status,
    pub corosync: CorosyncView,
    /// This node's last role change, from its history.
    #[serde(default)]
    pub last_change: Option<crate::daemon::history::Entry>,
    /// The newest failure of a hook on this node (a role hook, `fence`,
    /// `fence_node`), from its history.
    #[serde(default)]
    pub last_hook_failure: Option<crate::daemon::history::Entry>,
}

/// [`Reply`] as it travels: `ok` plus the one field that goes with it.
#[derive(Serialize, Deserialize)]
struct WireReply {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Box<StatusReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metrics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history: Option<Vec<crate::daemon::history::Entry>>,
}

impl From<Reply> for WireReply {
    fn from(reply: Reply) -> WireReply {
        let mut wire = WireReply {
            ok: true,
            error: None,
            status: None,
            metrics: None,
            history: None,
        };
        match reply {
            Reply::Taken => {}
            Reply::Status(s) => wire.status = Some(s),
            Reply::Metrics(m) => wire.metrics = Some(m),
            Reply::History(h) => wire.history = Some(h),
            Reply::Refused(e) => {
                wire.ok = false;
                wire.error = Some(e);
            }
        }
        wire
    }
}

impl TryFrom<WireReply> for Reply {
    type Error = String;

    fn try_from(wire: WireReply) -> Result<Reply, String> {
        match wire {
            WireReply {
                ok: false, error, ..
            } => Ok(Reply::Refused(
                error.unwrap_or_else(|| "refused without a reason".into()),
            )),
            WireReply {
                status: Some(s), ..
            } => Ok(Reply::Status(s)),
            WireReply {
                metrics: Some(m), ..
            } => Ok(Reply::Metrics(m)),
            WireReply {
                history: Some(h), ..
            } => Ok(Reply::History(h)),
            WireReply { error: Some(e), .. } => Err(format!("ok, but with an error: {e}")),
            WireReply { .. } => Ok(Reply::Taken),
        }
    }
}

impl Reply {
    /// One line of the protocol, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|e| {
            // Only a non-string map key could fail here; say so rather
            // than leave the client waiting.
            format!(r#"{{"ok":false,"error":"cannot encode the reply: {e}"}}"#).into_bytes()
        });
        line.push(b'\n');
        line
    }
}

/// Client side: one request, one answer.
pub async fn request(path: &Path, req: &Request) -> Result<Reply, String> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| format!("{}: {e} (is coroha running?)", path.display()))?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    write
        .write_all(line.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(read).lines();
    match lines.next_line().await {
        Ok(Some(answer)) => serde_json::from_str(&answer)
            .map_err(|e| format!("the daemon's answer is not understood: {e}")),
        Ok(None) => Err("the daemon closed the connection".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_each() {
        let r: Request = serde_json::from_str(r#"{"cmd":"switchover","to":"n2"}"#).unwrap();
        assert_eq!(
            r,
            Request::Switchover {
                to: Some("n2".into())
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"stop"}"#).unwrap();
        assert_eq!(r, Request::Stop { keep_roles: false });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
    }

    #[test]
    fn replies_keep_their_wire_form() {
        let line = |r: Reply| String::from_utf8(r.to_line()).unwrap();
        assert_eq!(line(Reply::Taken), "{\"ok\":true}\n");
        assert_eq!(
            line(Reply::Refused("no node named \"n9\"".into())),
            "{\"ok\":false,\"error\":\"no node named \\\"n9\\\"\"}\n"
        );
        let back: Reply = serde_json::from_str(r#"{"ok":false,"error":"stopping"}"#).unwrap();
        assert!(matches!(back, Reply::Refused(e) if e == "stopping"));
        let back: Reply = serde_json::from_str(r#"{"ok":true}"#).unwrap();
        assert!(matches!(back, Reply::Taken));
        let back: Reply = serde_json::from_str(r##"{"ok":true,"metrics":"# x\n"}"##).unwrap();
        assert!(matches!(back, Reply::Metrics(m) if m == "# x\n"));
    }
}
