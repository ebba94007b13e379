//! The client workload and the invariant checks (I1-I3) after every step.

use crate::{secs, Idx, Sim};
use confd_ha::HaRole;

impl Sim {
    // ----- workload and invariants ------------------------------------------

    pub(crate) fn descendants(&self, p: Idx, out: &mut Vec<Idx>) {
        for k in &self.confd[p].children {
            out.push(*k);
            self.descendants(*k, out);
        }
    }

    /// The client writes to every node whose NSO/ConfD is a serving primary;
    /// a write is acknowledged once every attached secondary has it.
    pub(crate) fn write(&mut self) {
        for p in 0..self.names.len() {
            if !(self.confd[p].serving() && self.confd[p].role == HaRole::Primary) {
                continue;
            }
            let mut tree = vec![];
            self.descendants(p, &mut tree);
            let blocked = self.confd[p].read_only
                || tree
                    .iter()
                    .any(|k| !self.confd[*k].serving() || !self.reachable(p, *k));
            if blocked {
                self.writes_failed += 1;
                continue;
            }
            let w = self.next_write;
            self.next_write += 1;
            let txid = self.commit_stamp(p);
            self.confd[p].data.push(w);
            self.confd[p].txid = txid;
            self.confd[p].txid_tag = Some(p);
            for k in tree {
                self.confd[k].data.push(w);
                self.confd[k].txid = txid;
                self.confd[k].txid_tag = Some(p);
            }
            self.writes_acked += 1;
            if self.stably_quorate(p) {
                self.acked.push(w);
                // Acknowledged beside the primary of a quorate partition
                // that does not have it: no later primary will (a stale
                // primary that resumed, or one nobody hears).
                let elsewhere = (0..self.names.len()).find(|q| {
                    *q != p
                        && self.confd[*q].serving()
                        && self.confd[*q].role == HaRole::Primary
                        && self.ring_quorate(*q)
                        && !self.cut(*q)
                        && self.cs[*q].ring != self.cs[p].ring
                });
                if let Some(q) = elsewhere {
                    let text = format!(
                        "write #{w} acknowledged by {} while {} is primary of a quorate partition without it",
                        self.names[p], self.names[q]
                    );
                    self.violate("I2", text);
                }
            }
        }
    }

    pub(crate) fn check_safety(&mut self) {
        let n = self.names.len();
        // I1: one primary per quorate partition (corosync membership).
        for i in 0..n {
            if !self.ring_quorate(i) {
                continue;
            }
            let ring = self.cs[i].ring;
            // A frozen server serves nobody; it counts again on resume.
            let serving_primary = |k: &Idx| {
                self.cs[*k].ring == ring
                    && self.confd[*k].serving()
                    && self.confd[*k].role == HaRole::Primary
            };
            if (0..n).filter(serving_primary).nth(1).is_some() {
                let primaries: Vec<Idx> = (0..n).filter(serving_primary).collect();
                let list = primaries
                    .iter()
                    .map(|k| self.names[*k].clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.violate(
                    "I1",
                    format!("two primaries in one quorate partition: {list}"),
                );
                return;
            }
        }
        // I2: a primary serving a quorate partition has every write that
        // was acknowledged by a quorate primary before.
        for i in 0..n {
            let serving_primary = self.confd[i].serving() && self.confd[i].role == HaRole::Primary;
            if !self.i2_checked[i] && serving_primary && self.ring_quorate(i) {
                self.i2_checked[i] = true;
                if let Err(missing) = self.confd[i].has_all(&self.acked) {
                    let text = format!("{} is primary in a quorate partition without acknowledged write #{missing}", self.names[i]);
                    self.violate("I2", text);
                    return;
                }
            }
        }
        // I1: a primary without quorum stops within the bound. Only coroha
        // can make it stop: a node whose coroha is not running (killed, or
        // stopped in maintenance mode) is unmanaged and exempt.
        // A node nobody hears (one-way loss) is in no quorate partition,
        // whatever its own corosync still says. A frozen server serves
        // nobody and a stopped node cannot act: the bound runs from when
        // they resume (section 10 of the design).
        for i in 0..n {
            let primary = self.confd[i].serving()
                && self.confd[i].role == HaRole::Primary
                && self.coroha[i].is_some()
                && self.stopped[i].is_none();
            if primary && (!self.ring_quorate(i) || self.cut(i)) {
                let since = *self.nonquorate_primary_since[i].get_or_insert(self.now);
                if self.now - since > self.opts.quorum_loss_bound {
                    self.violate(
                        "I1",
                        format!(
                            "{} is still primary {} after losing quorum",
                            self.names[i],
                            secs(self.now - since)
                        ),
                    );
                    return;
                }
            } else {
                self.nonquorate_primary_since[i] = None;
            }
        }
    }

    /// I3: after the last fault has settled, every quorate partition with an
    /// eligible node has one primary and every other healthy node follows it.
    pub fn check_liveness(&mut self) {
        if self.violation.is_some() {
            return;
        }
        let n = self.names.len();
        let mut seen = vec![false; n];
        for i in 0..n {
            if seen[i] || !self.ring_quorate(i) {
                continue;
            }
            let comp = self.component(i);
            for k in &comp {
                seen[*k] = true;
            }
            let managed = |s: &Sim, k: Idx| {
                s.coroha[k].is_some() && s.confd[k].serving() && !s.confd[k].refusing
            };
            let eligible: Vec<Idx> = comp
                .iter()
                .copied()
                .filter(|k| {
                    let node = self.opts.config.nodes[*k].get_ref();
                    let standby = self.coroha[*k]
                        .as_ref()
                        .is_some_and(|c| c.policy.persisted().standby);
                    managed(self, *k)
                        && node.can_primary
                        && !standby
                        && self.confd[*k].has_all(&self.acked).is_ok()
                })
                .collect();
            let primaries: Vec<Idx> = comp
                .iter()
                .copied()
                .filter(|k| self.confd[*k].running && self.confd[*k].role == HaRole::Primary)
                .collect();
            let names = |v: &[Idx]| {
                v.iter()
                    .map(|k| self.names[*k].clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // Only a running coroha carries what the election knows: without
            // a quorum of daemons nobody may be promoted (policy rule).
            let daemons = comp.iter().filter(|k| self.coroha[**k].is_some()).count() as u32;
            if eligible.is_empty() || daemons < self.votes_needed() {
                continue;
            }
            if primaries.len() != 1 {
                let text = format!(
                    "partition [{}] has {} primaries ({}) although {} could be primary",
                    names(&comp),
                    primaries.len(),
                    names(&primaries),
                    names(&eligible)
                );
                self.violate("I3", text);
                return;
            }
            let p = primaries[0];
            let mut tree = vec![];
            self.descendants(p, &mut tree);
            let strays: Vec<Idx> = comp
                .iter()
                .copied()
                .filter(|k| *k != p && managed(self, *k) && !tree.contains(k))
                .collect();
            if !strays.is_empty() {
                let text = format!(
                    "{} not attached to primary {}",
                    names(&strays),
                    self.names[p]
                );
                self.violate("I3", text);
                return;
            }
        }
    }

    /// Who is primary now (serving NSO/ConfD), for expectations.
    pub fn primaries(&self) -> Vec<Idx> {
        (0..self.names.len())
            .filter(|k| self.confd[*k].running && self.confd[*k].role == HaRole::Primary)
            .collect()
    }

    pub fn secondaries_of(&self, p: Idx) -> Vec<Idx> {
        let mut tree = vec![];
        self.descendants(p, &mut tree);
        tree.sort();
        tree
    }
}
