//! The state directory: the persisted election state (epoch, freshness,
//! standby), made durable before the order that relies on it is sent, and
//! a lock that keeps a second daemon out.
//!
//! The state is written to one of two slot files in turn (`state.a`,
//! `state.b`), each a record with a sequence number and a checksum, padded
//! to a fixed size. Overwriting a block of a file whose size does not change
//! needs only `fdatasync`, with no journal commit. The rename-and-fsync
//! idiom needs two flushes and waits for the file system's journal: on the
//! lab's ext4, under log traffic, that took 90–100 ms, and it sat on the
//! failover path (docs/benchmarks.md). A write torn by a crash fails its
//! checksum, and the other slot still holds the previous state. No order
//! ever relied on the torn one, because orders wait for the write to
//! complete.

use coroha_config::fnv1a;
use coroha_policy::Persisted;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Slot size: a record is padded to this (or a multiple of it, if ever
/// larger) so that rewriting it never changes the file's size.
const SLOT: usize = 4096;
const SLOTS: [&str; 2] = ["state.a", "state.b"];
const MAGIC: &str = "coroha-state 1";

pub struct StateDir {
    dir: PathBuf,
    slots: [File; 2],
    /// Sequence number of the newest record written or loaded.
    seq: u64,
    /// Held (flock) for the daemon's lifetime.
    _lock: File,
}

/// One decoded slot.
struct Record {
    seq: u64,
    state: Persisted,
}

impl StateDir {
    /// Create the directory (0700) and the slot files if needed, and take
    /// the lock.
    pub fn open(dir: &Path) -> Result<StateDir, String> {
        let ctx = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
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
            .map_err(|e| ctx(&lock_path, e))?;
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "{}: another coroha daemon uses this state directory",
                lock_path.display()
            ));
        }
        let mut created = false;
        let mut open_slot = |name: &str| -> Result<File, String> {
            let path = dir.join(name);
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| ctx(&path, e))?;
            let len = f.metadata().map_err(|e| ctx(&path, e))?.len();
            if len < SLOT as u64 {
                // Allocate the whole slot once, durably, so that later
                // writes are plain overwrites.
                f.set_len(SLOT as u64).map_err(|e| ctx(&path, e))?;
                f.sync_all().map_err(|e| ctx(&path, e))?;
                created = true;
            }
            Ok(f)
        };
        let slots = [open_slot(SLOTS[0])?, open_slot(SLOTS[1])?];
        if created {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ctx(dir, e))?;
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
            slots,
            seq: 0,
            _lock: lock,
        })
    }

    /// Where the state lives, for messages.
    pub fn path(&self) -> PathBuf {
        self.dir.join("state.{a,b}")
    }

    /// The newest intact record; none at all is a first start. A slot that
    /// fails its checksum beside an intact one is a write torn by a crash
    /// (logged). When records exist but none is intact, that is an error:
    /// starting from epoch 0 could let a stale node win an election, so the
    /// operator decides.
    pub fn load(&mut self) -> Result<Persisted, String> {
        let mut best: Option<Record> = None;
        let mut damaged = Vec::new();
        for (name, file) in SLOTS.iter().zip(&self.slots) {
            let path = self.dir.join(name);
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &*file, &mut bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            match decode(&bytes) {
                Ok(None) => {}
                Ok(Some(r)) => {
                    if best.as_ref().is_none_or(|b| r.seq > b.seq) {
                        best = Some(r);
                    }
                }
                Err(why) => damaged.push(format!("{}: {why}", path.display())),
            }
        }
        match best {
            Some(r) => {
                for d in &damaged {
                    tracing::warn!("{d}; using the other slot (a write torn by a crash)");
                }
                self.seq = r.seq;
                Ok(r.state)
            }
            None if damaged.is_empty() => Ok(Persisted::default()),
            None => Err(format!(
                "{}; no intact election state: fix or remove the files (removing them forgets the election epoch)",
                damaged.join("; ")
            )),
        }
    }

    /// Write the next record over the older slot and wait until it is on
    /// the disk. After this returns the state survives a power cut.
    pub fn store(&mut self, state: &Persisted) -> std::io::Result<()> {
        let seq = self.seq + 1;
        let record = encode(seq, state)?;
        let file = &self.slots[(seq % 2) as usize];
        let grew = record.len() as u64 > file.metadata()?.len();
        file.write_all_at(&record, 0)?;
        if grew {
            file.sync_all()?;
        } else {
            file.sync_data()?;
        }
        self.seq = seq;
        Ok(())
    }
}

fn encode(seq: u64, state: &Persisted) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    let mut out = format!("{MAGIC} {seq} {:016x} {}\n", fnv1a(&json), json.len()).into_bytes();
    out.extend_from_slice(&json);
    out.push(b'\n');
    let size = out.len().div_ceil(SLOT) * SLOT;
    out.resize(size, 0);
    Ok(out)
}

/// `Ok(None)`: an empty (never written) slot.
fn decode(bytes: &[u8]) -> Result<Option<Record>, String> {
    if bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no record header")?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| "bad record header")?;
    let rest = header
        .strip_prefix(MAGIC)
        .ok_or("not a coroha state record")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [seq, sum, len] = fields[..] else {
        return Err("bad record header".into());
    };
    let seq: u64 = seq.parse().map_err(|_| "bad sequence number")?;
    let len: usize = len.parse().map_err(|_| "bad length")?;
    let json = bytes
        .get(end + 1..end + 1 + len)
        .ok_or("record cut short")?;
    if format!("{:016x}", fnv1a(json)) != sum {
        return Err("checksum mismatch".into());
    }
    let state = serde_json::from_slice(json)
        .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))?;
    Ok(Some(Record { seq, state }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coroha-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn state(epoch: u64) -> Persisted {
        Persisted {
            max_epoch: epoch,
            role_epoch: epoch,
            ..Persisted::default()
        }
    }

    #[test]
    fn state_round_trips_across_restarts_and_a_second_daemon_is_refused() {
        let d = temp_dir("rt");
        let mut s = StateDir::open(&d).unwrap();
        assert_eq!(s.load().unwrap(), Persisted::default());
        for epoch in 1..=5 {
            s.store(&state(epoch)).unwrap();
        }
        let err = StateDir::open(&d).err().unwrap();
        assert!(err.contains("another coroha daemon"), "{err}");
        drop(s);
        let mut s = StateDir::open(&d).unwrap();
        assert_eq!(s.load().unwrap(), state(5));
        // Writing on after a restart keeps the newest on top.
        s.store(&state(6)).unwrap();
        drop(s);
        assert_eq!(StateDir::open(&d).unwrap().load().unwrap(), state(6));
        // Both slots stay one block: rewrites never change a file's size.
        for name in SLOTS {
            assert_eq!(fs::metadata(d.join(name)).unwrap().len(), SLOT as u64);
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_torn_write_falls_back_to_the_previous_state() {
        let d = temp_dir("torn");
        let mut s = StateDir::open(&d).unwrap();
        s.store(&state(1)).unwrap(); // slot b (seq 1)
        s.store(&state(2)).unwrap(); // slot a (seq 2)
        drop(s);
        // Tear the newest record: flip a byte of its JSON.
        let mut bytes = fs::read(d.join("state.a")).unwrap();
        let at = bytes.iter().position(|b| *b == b'{').unwrap() + 3;
        bytes[at] ^= 0x20;
        fs::write(d.join("state.a"), &bytes).unwrap();
        assert_eq!(StateDir::open(&d).unwrap().load().unwrap(), state(1));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn no_intact_state_is_an_error_not_a_fresh_start() {
        let d = temp_dir("bad");
        let mut s = StateDir::open(&d).unwrap();
        s.store(&state(3)).unwrap();
        drop(s);
        fs::write(d.join("state.b"), b"garbage\n").unwrap();
        let err = StateDir::open(&d).unwrap().load().unwrap_err();
        assert!(err.contains("state.b: not a coroha state record"), "{err}");
        assert!(err.contains("forgets the election epoch"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }
}
