//! The node's history: role changes, decisions about the primary, operator
//! requests, fence runs and hook failures, each with its time, epoch and
//! cause, appended to `history.jsonl` in the state directory. It outlives
//! the daemon, and is bounded: past twice [`KEEP`] entries the file is
//! rewritten with the newest [`KEEP`].

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Entries kept when the file is trimmed.
pub const KEEP: usize = 1000;
const FILE: &str = "history.jsonl";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// This node's NSO/ConfD changed role.
    RoleChange,
    /// The primary this node plans for changed.
    Decision,
    /// An operator's request, taken or refused.
    Operator,
    /// The fence hook (this node's NSO/ConfD) or the fence_node hook.
    Fence,
    /// A hook failed or was killed at its time limit.
    HookFailed,
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix time, milliseconds.
    pub at: u64,
    pub node: String,
    pub epoch: u64,
    pub kind: Kind,
    pub text: String,
}

/// The history file of one daemon, shared with the tasks that run hooks.
#[derive(Clone)]
pub struct History {
    inner: Arc<Mutex<File>>,
}

struct File {
    path: PathBuf,
    lines: usize,
    /// The newest hook failure, for `coroha status`.
    last_hook_failure: Option<Entry>,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl History {
    /// The history in `state_dir` (created on the first entry).
    pub fn open(state_dir: &Path) -> History {
        let path = state_dir.join(FILE);
        let entries = read(&path);
        let last_hook_failure = entries
            .iter()
            .rev()
            .find(|e| e.kind == Kind::HookFailed)
            .cloned();
        History {
            inner: Arc::new(Mutex::new(File {
                path,
                lines: entries.len(),
                last_hook_failure,
            })),
        }
    }

    /// Append one entry, stamped now, and return it. A history that
    /// cannot be written is logged, and never stops the daemon.
    pub fn record(&self, node: &str, epoch: u64, kind: Kind, text: impl Into<String>) -> Entry {
        let entry = Entry {
            at: unix_ms(),
            node: node.to_string(),
            epoch,
            kind,
            text: text.into(),
        };
        let mut file = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.append(&entry) {
            tracing::warn!("history {}: {e}", file.path.display());
        }
        if kind == Kind::HookFailed {
            file.last_hook_failure = Some(entry.clone());
        }
        entry
    }

    /// The newest hook failure, kept or recorded since the daemon started.
    pub fn last_hook_failure(&self) -> Option<Entry> {
        let file = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        file.last_hook_failure.clone()
    }

    /// The newest entry of `kind`, if any is kept (read from the file: for
    /// a daemon that starts).
    pub fn last_of(&self, kind: Kind) -> Option<Entry> {
        self.last(KEEP).into_iter().rev().find(|e| e.kind == kind)
    }

    /// The newest `n` entries, oldest first.
    pub fn last(&self, n: usize) -> Vec<Entry> {
        let file = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = read(&file.path);
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
        all
    }
}

impl File {
    fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        self.lines += 1;
        if self.lines > 2 * KEEP {
            self.trim()?;
        }
        Ok(())
    }

    /// Keep the newest [`KEEP`] entries: written aside, then renamed over.
    fn trim(&mut self) -> std::io::Result<()> {
        let all = read(&self.path);
        let keep = &all[all.len().saturating_sub(KEEP)..];
        let aside = self.path.with_extension("jsonl.new");
        let mut out = Vec::new();
        for e in keep {
            out.extend(serde_json::to_vec(e)?);
            out.push(b'\n');
        }
        std::fs::write(&aside, out)?;
        std::fs::rename(&aside, &self.path)?;
        self.lines = keep.len();
        Ok(())
    }
}

/// Every entry of a history file that can be read; a line that cannot
/// (a torn last write) is skipped.
fn read(path: &Path) -> Vec<Entry> {
    let Ok(f) = std::fs::File::open(path) else {
        return vec![];
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coroha-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn entries_outlive_the_daemon_and_a_torn_line_is_skipped() {
        let d = dir("restart");
        let h = History::open(&d);
        h.record(
            "n1",
            3,
            Kind::RoleChange,
            "role none -> primary: n1 elected",
        );
        h.record("n1", 3, Kind::Operator, "switchover to n2 by uid 0: taken");
        drop(h);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.join(FILE))
            .unwrap();
        f.write_all(b"{\"at\":1,\"node\":").unwrap();
        let again = History::open(&d);
        let kinds: Vec<Kind> = again.last(10).iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![Kind::RoleChange, Kind::Operator]);
        assert_eq!(again.last(1)[0].text, "switchover to n2 by uid 0: taken");
    }

    #[test]
    fn the_file_is_bounded_and_keeps_the_newest() {
        let d = dir("bounded");
        let h = History::open(&d);
        for i in 0..(2 * KEEP + 1) {
            h.record("n1", i as u64, Kind::Decision, format!("decision {i}"));
        }
        let all = read(&d.join(FILE));
        assert_eq!(all.len(), KEEP);
        assert_eq!(all.last().unwrap().epoch, 2 * KEEP as u64);
        assert_eq!(all[0].epoch, (KEEP + 1) as u64);
    }
}
