//! What a killed corosync leaves in `/dev/shm`. libqb keeps every IPC
//! connection's rings in a `qb-<server pid>-<client pid>-…` directory and
//! corosync its flight recorder in `qb-corosync-<pid>-blackbox-*`; a
//! process that is killed (the lab's crashes, and its teardown) removes
//! neither. `/dev/shm` is memory: a day of lab runs on one machine left
//! 24 GiB there, and the next test run was killed by the kernel for want
//! of memory. So a lab notes what was there when it began, and at the end
//! removes what libqb left since on behalf of processes that are gone:
//! nothing it did not see appear, nothing of a live process.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::Path;

const SHM: &str = "/dev/shm";

/// The entries of `/dev/shm` when the lab began.
pub struct ShmBefore(BTreeSet<OsString>);

impl ShmBefore {
    pub fn now() -> ShmBefore {
        ShmBefore(entries().collect())
    }

    /// Remove libqb's leftovers that appeared since, whose process is gone.
    pub fn sweep(&self) {
        for name in entries().filter(|n| !self.0.contains(n)) {
            let Some(pid) = name.to_str().and_then(owner) else {
                continue;
            };
            if alive(pid) {
                continue;
            }
            let path = Path::new(SHM).join(&name);
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

fn entries() -> impl Iterator<Item = OsString> {
    fs::read_dir(SHM)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
}

/// Running, or stopped: not exited. A zombie has exited; nothing reaps
/// it at once where the init process is slow to.
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself hold any character.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The process a libqb name belongs to: corosync's for its blackbox, the
/// server's for an IPC connection; `None` for anything else.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("qb-")?;
    let pid = match rest.strip_prefix("corosync-") {
        Some(blackbox) => blackbox.split('-').next()?,
        None => rest.split('-').next()?,
    };
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{alive, owner};
    use std::process::Command;
    use std::time::Duration;

    #[test]
    fn a_zombie_counts_as_gone() {
        assert!(alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        // Exited but not yet reaped: a zombie.
        let pid = child.id();
        let zombie = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !alive(pid)
        });
        assert!(zombie, "an exited, unreaped child still counts as alive");
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn owners_of_libqb_names() {
        assert_eq!(owner("qb-corosync-10036-blackbox-data"), Some(10036));
        assert_eq!(owner("qb-10036-10038-29-TuD2Mo"), Some(10036));
        assert_eq!(owner("qb-corosync-x-blackbox-data"), None);
        assert_eq!(owner("sem.something"), None);
        assert_eq!(owner("qbx-1-2"), None);
    }
}
