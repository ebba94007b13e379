//! A client of fake-confd's admin socket: one command, or commits every
//! 50 ms on a thread of its own.

#![allow(dead_code)]

use crate::lab::fake_confd;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A command on a fake-confd's admin socket, and its JSON answer.
pub fn ctl(admin: &std::path::Path, command: &str) -> Option<Value> {
    let out = Command::new(fake_confd())
        .args(["ctl", &format!("unix:{}", admin.display()), command])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// A client that commits on one node's NSO/ConfD every 50 ms, on a thread
/// of its own, until it is stopped; it keeps the transaction id of every
/// commit acknowledged.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl Writer {
    pub fn start(admin: PathBuf) -> Writer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut acked = vec![];
            while !stopped.load(Ordering::Relaxed) {
                if let Some(v) = ctl(&admin, "write") {
                    if v["ok"] == true {
                        acked.extend(v["txid"].as_u64());
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            acked
        });
        Writer { stop, thread }
    }

    /// Stop committing: the ids acknowledged, oldest first.
    pub fn stop(self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("writer thread")
    }
}
