//! The control socket (a unix socket, mode 0660: root and the socket's
//! group); the HTTP listener is `http.rs`. Both hand each request to the daemon's
//! main loop, which answers from the policy's own state, so an answer is
//! never older than the last event.
//!
//! The protocol itself is [`crate::control`].

use crate::control::{Reply, Request};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// A request, who asked, and where its answer goes.
pub type Ask = (Request, Caller, oneshot::Sender<Reply>);

/// Who sent a request: the peer's credentials on the control socket (the
/// HTTP listener only reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
    /// Root, this daemon's own user, or a member of `admin_group`.
    pub may_change: bool,
}

impl Caller {
    /// The HTTP listener: it reads, and changes nothing.
    pub const READER: Caller = Caller {
        uid: None,
        pid: None,
        may_change: false,
    };
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.uid, self.pid) {
            (Some(uid), Some(pid)) => write!(f, "uid {uid} (pid {pid})"),
            (Some(uid), None) => write!(f, "uid {uid}"),
            _ => f.write_str("the HTTP listener"),
        }
    }
}

/// May the user `uid` (primary group `gid`) change things? Root and the
/// daemon's own user may; so may members of `admin_group`.
pub fn may_change(uid: u32, gid: u32, admin_group: Option<&str>) -> bool {
    use nix::unistd::{Group, Uid, User};
    if uid == 0 || Uid::from_raw(uid) == Uid::effective() {
        return true;
    }
    let Some(Ok(Some(group))) = admin_group.map(Group::from_name) else {
        return false;
    };
    if group.gid.as_raw() == gid {
        return true;
    }
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => group.mem.contains(&user.name),
        _ => false,
    }
}

/// Bind the control socket: refuse when a daemon already answers there
/// or the path is not a socket (a mistyped path must not delete a file),
/// replace a stale socket otherwise.
pub async fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !m.file_type().is_socket() {
            return Err(format!(
                "{}: exists and is not a socket; refusing to replace it",
                path.display()
            ));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(format!(
                "{}: another coroha daemon is listening there",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    // Create it without any access for others, then open it to the group.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o077) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(name) = group {
        let gid = match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => g.gid,
            _ => return Err(format!("[control] group {name:?}: no such group")),
        };
        std::os::unix::fs::chown(path, None, Some(gid.as_raw()))
            .map_err(|e| format!("{}: chown to group {name}: {e}", path.display()))?;
    }
    Ok(listener)
}

pub fn serve_control(listener: UnixListener, asks: mpsc::Sender<Ask>, admin_group: Option<String>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let cred = stream.peer_cred().ok();
            let caller = Caller {
                uid: cred.map(|c| c.uid()),
                pid: cred.and_then(|c| c.pid()),
                may_change: cred
                    .is_some_and(|c| may_change(c.uid(), c.gid(), admin_group.as_deref())),
            };
            let asks = asks.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read.take(64 * 1024)).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = match serde_json::from_str::<Request>(&line) {
                        Ok(req) => ask(&asks, req, caller).await,
                        Err(e) => Reply::Refused(format!("bad request: {e}")),
                    };
                    if write.write_all(&answer.to_line()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// Hand `req` to the main loop and wait for its answer.
pub(super) async fn ask(asks: &mpsc::Sender<Ask>, req: Request, caller: Caller) -> Reply {
    let stopping = || Reply::Refused("the daemon is stopping".into());
    let (tx, rx) = oneshot::channel();
    if asks.send((req, caller, tx)).await.is_err() {
        return stopping();
    }
    rx.await.unwrap_or_else(|_| stopping())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_socket_is_closed_to_others_and_a_live_one_is_not_taken_over() {
        let dir = std::env::temp_dir().join(format!("coroha-ctl-{}", std::process::id()));
        let path = dir.join("control.sock");
        let listener = bind(&path, None).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let err = bind(&path, None).await.unwrap_err();
        assert!(
            err.contains("another coroha daemon is listening there"),
            "{err}"
        );
        drop(listener);
        // A stale socket file (nobody listening) is replaced.
        assert!(bind(&path, None).await.is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_refused_and_kept() {
        let dir = std::env::temp_dir().join(format!("coroha-ctl-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("coroha.toml");
        std::fs::write(&path, "[cluster]\n").unwrap();
        let err = bind(&path, None).await.unwrap_err();
        assert!(err.contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[cluster]\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
