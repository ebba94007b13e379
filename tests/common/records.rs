//! What the lab's records say after the fact: every fake-confd's role
//! history (promotions, changes, overlap of primaries: I1) and coroha's
//! JSON log.

use super::{rfc3339_ms, unix_ms, Lab};
use serde_json::Value;
use std::fs;

impl Lab {
    /// Every node's role history: (unix ms, state) in time order.
    pub fn histories(&self) -> Vec<(u32, Vec<(u64, String)>)> {
        self.nodes
            .iter()
            .map(|n| {
                let text = fs::read_to_string(n.dir.join("history")).unwrap_or_default();
                let h = text
                    .lines()
                    .filter_map(|l| {
                        let (t, s) = l.split_once(' ')?;
                        Some((t.parse().ok()?, s.to_string()))
                    })
                    .collect();
                (n.id, h)
            })
            .collect()
    }

    /// Times at which some node became primary, after `since`.
    pub fn promotions_since(&self, since: u64) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self
            .histories()
            .into_iter()
            .flat_map(|(id, h)| {
                h.into_iter()
                    .filter(move |(t, s)| *t >= since && s == "primary")
                    .map(move |(t, _)| (id, t))
            })
            .collect();
        v.sort_by_key(|(_, t)| *t);
        v
    }

    /// Role changes of any node after `since`.
    pub fn changes_since(&self, since: u64) -> Vec<(u32, u64, String)> {
        let mut v: Vec<(u32, u64, String)> = self
            .histories()
            .into_iter()
            .flat_map(|(id, h)| {
                h.into_iter()
                    .filter(move |(t, _)| *t >= since)
                    .map(move |(t, s)| (id, t, s))
            })
            .collect();
        v.sort_by_key(|(_, t, _)| *t);
        v
    }

    /// The longest time two nodes were primary at once, over the whole
    /// run, from the role histories (I1). A restart of fake-confd starts
    /// in "none"; a killed one is "dead".
    pub fn max_overlap_ms(&self) -> u64 {
        let now = unix_ms();
        let mut spans: Vec<(u32, u64, u64)> = vec![];
        for (id, h) in self.histories() {
            let mut since = None;
            for (t, s) in &h {
                match (s.as_str(), since) {
                    ("primary", None) => since = Some(*t),
                    ("primary", Some(_)) => {}
                    (_, Some(start)) => {
                        spans.push((id, start, *t));
                        since = None;
                    }
                    _ => {}
                }
            }
            if let Some(start) = since {
                spans.push((id, start, now));
            }
        }
        let mut worst = 0;
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.0 != b.0 {
                    let overlap = a.2.min(b.2).saturating_sub(a.1.max(b.1));
                    worst = worst.max(overlap);
                }
            }
        }
        worst
    }

    /// First line of a node's coroha log (JSON) after `since` whose message
    /// contains `needle`: its time in unix ms.
    pub fn log_time(&self, id: u32, since: u64, needle: &str) -> Option<u64> {
        let text = fs::read_to_string(self.node(id).dir.join("coroha.log")).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .filter_map(|v| v["timestamp"].as_str().and_then(rfc3339_ms))
            .find(|t| *t >= since)
    }

    /// First log message of a node after `since` that contains `needle`.
    pub fn log_line(&self, id: u32, since: u64, needle: &str) -> Option<String> {
        let text = fs::read_to_string(self.node(id).dir.join("coroha.log")).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["timestamp"]
                    .as_str()
                    .and_then(rfc3339_ms)
                    .is_some_and(|t| t >= since)
            })
            .find_map(|v| {
                let m = v["message"].as_str()?;
                m.contains(needle).then(|| format!("n{id}: {m}"))
            })
    }

    /// When one of `ids`' coroha logged, after `since`, that the node it
    /// fenced for a vanished primary no longer serves (its `fence_node`
    /// hook succeeded).
    pub fn fence_logged(&self, ids: &[u32], since: u64) -> Option<u64> {
        ids.iter()
            .find_map(|&id| self.log_time(id, since, "fenced: its NSO/ConfD is no longer primary"))
    }

    /// When node `id` was promoted after `since`.
    pub fn promoted_at(&self, id: u32, since: u64) -> Option<u64> {
        self.promotions_since(since)
            .into_iter()
            .find(|(k, _)| *k == id)
            .map(|(_, t)| t)
    }
}
