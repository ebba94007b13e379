//! The state directory: the persisted election state (epoch, freshness,
//! standby), written atomically and fsynced before the order that relies on
//! it is sent, and a lock that keeps a second daemon out.

use crate::policy::Persisted;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub struct StateDir {
    dir: PathBuf,
    /// Held (flock) for the daemon's lifetime.
    _lock: File,
}

const STATE: &str = "state.json";

impl StateDir {
    /// Create the directory (0700) if needed and take its lock.
    pub fn open(dir: &Path) -> Result<StateDir, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "{}: another coroha daemon uses this state directory",
                lock_path.display()
            ));
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE)
    }

    /// The persisted state; a missing file is a first start. A file that
    /// does not parse is an error: starting from epoch 0 could let a stale
    /// node win an election, so the operator decides.
    pub fn load(&self) -> Result<Persisted, String> {
        let path = self.path();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}:{}:{}: {e}; fix or remove the file (removing it forgets the election epoch)",
                    path.display(),
                    e.line(),
                    e.column()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Persisted::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Write, fsync, rename over the old file, fsync the directory: after
    /// this returns the state survives a power cut.
    pub fn store(&self, state: &Persisted) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{STATE}.tmp"));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        f.write_all(&text)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, self.path())?;
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coroha-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn state_round_trips_and_a_second_daemon_is_refused() {
        let d = temp_dir("rt");
        let s = StateDir::open(&d).unwrap();
        assert_eq!(s.load().unwrap(), Persisted::default());
        let p = Persisted {
            max_epoch: 7,
            role_epoch: 7,
            standby: true,
            ..Persisted::default()
        };
        s.store(&p).unwrap();
        assert_eq!(s.load().unwrap(), p);
        let err = StateDir::open(&d).err().unwrap();
        assert!(err.contains("another coroha daemon"), "{err}");
        drop(s);
        assert!(StateDir::open(&d).is_ok());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_with_its_position() {
        let d = temp_dir("bad");
        let s = StateDir::open(&d).unwrap();
        fs::write(s.path(), "{\n  \"max_epoch\": x\n}").unwrap();
        let err = s.load().unwrap_err();
        assert!(err.contains("state.json:2:"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }
}
