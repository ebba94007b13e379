//! The simulated corosync 3.1.7: the physical network (power, links,
//! partitions), totem membership after token + consensus, CPG AGREED
//! delivery and virtual synchrony, votequorum notifications.

use crate::{timing, votequorum, Corosync, Ev, Fd, Idx, Sim};
use coroha_policy::cluster::{ClusterEvent, Member, NodeId, Reason, RingId};
use coroha_policy::message::Envelope;
use coroha_policy::Input;
use std::sync::Arc;

impl Sim {
    // ----- physical world --------------------------------------------------

    pub(crate) fn reachable(&self, a: Idx, b: Idx) -> bool {
        self.powered[a]
            && self.powered[b]
            && self.group[a] == self.group[b]
            && !self.cut(a)
            && !self.cut(b)
    }

    /// Nothing the node sends arrives: its packets are lost, or it is
    /// stopped. Either way nobody hears from it, and it hears from nobody
    /// in a ring (a ring needs its token back).
    pub(crate) fn cut(&self, i: Idx) -> bool {
        self.send_lost[i] || self.stopped[i].is_some()
    }

    /// The node stops being heard: the others form a ring without it
    /// after token + consensus; its own corosync keeps the old ring and
    /// delivers nothing (as measured under one-way loss).
    pub(crate) fn cut_off(&mut self, i: Idx) {
        self.cs[i].stuck = self.cs[i].up;
        self.topology_changed(timing::DETECT_LOSS);
    }

    /// The node is heard again: its corosync gives up the old ring at
    /// once (its token was lost long ago) and merges after a membership
    /// round, like after a heal.
    pub(crate) fn reconnect(&mut self, i: Idx) {
        if self.cut(i) {
            return;
        }
        self.cs[i].stuck = false;
        for (fd, ev) in std::mem::take(&mut self.cs[i].late) {
            self.push_fd(i, fd, ev);
        }
        self.schedule(self.now + 1, Ev::Reconfigure);
        self.schedule(self.now + timing::DETECT_MERGE, Ev::Reconfigure);
    }

    /// Nodes that corosync puts in one ring with `i` now: a lost link splits
    /// a ring only once it has been down for token + consensus, and a link
    /// that is back merges rings only after a membership round.
    pub(crate) fn component(&self, i: Idx) -> Vec<Idx> {
        let isolated = |k: Idx| self.merge_after[k] >= self.now;
        let alive = |k: Idx| self.cs[k].up && self.cs[k].ready;
        let together = |a: Idx, b: Idx| {
            let (up, since) = self.link[a][b];
            let same_ring = self.cs[a].ring.is_some() && self.cs[a].ring == self.cs[b].ring;
            let age = self.now.saturating_sub(since);
            let linked = if up {
                same_ring || age >= timing::DETECT_MERGE
            } else {
                same_ring && age < timing::DETECT_LOSS
            };
            alive(b) && !isolated(a) && !isolated(b) && linked
        };
        // Membership is transitive: the closure of the pairwise relation.
        let mut comp = vec![i];
        let mut k = 0;
        while k < comp.len() {
            let a = comp[k];
            for b in 0..self.names.len() {
                if !comp.contains(&b) && together(a, b) {
                    comp.push(b);
                }
            }
            k += 1;
        }
        comp.sort();
        comp
    }

    /// Note when each link went up or down.
    pub(crate) fn update_links(&mut self) {
        let n = self.names.len();
        for a in 0..n {
            for b in 0..n {
                let up = self.reachable(a, b);
                if self.link[a][b].0 != up {
                    self.link[a][b] = (up, self.now);
                }
            }
        }
    }

    pub(crate) fn crashed(&mut self, i: Idx, detect: u64) {
        self.merge_after[i] = self.now + detect;
        self.schedule(self.now + detect + 800, Ev::Reconfigure);
    }

    pub(crate) fn expected_votes(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn votequorum(&self) -> votequorum::VoteQuorum {
        votequorum::VoteQuorum {
            two_node: self.opts.two_node,
            wait_for_all: self.opts.wait_for_all.then_some(true),
            ..votequorum::VoteQuorum::new(self.expected_votes() as u32)
        }
    }

    /// votequorum's `quorum`: votes needed, one vote per node.
    pub(crate) fn votes_needed(&self) -> u32 {
        self.votequorum().needed()
    }

    /// Partitions, for the invariants, are corosync memberships (rings).
    /// Is `i` in a ring that has quorum?
    pub(crate) fn ring_quorate(&self, i: Idx) -> bool {
        self.cs[i].up && self.cs[i].ring.is_some() && self.vq_quorate(i)
    }

    /// In a quorate ring that is not in the middle of a membership change:
    /// a write acknowledged now is protected by invariant I2.
    pub(crate) fn stably_quorate(&self, i: Idx) -> bool {
        self.ring_quorate(i)
            && !self.cs[i]
                .ring
                .is_some_and(|r| self.frozen.get(&r).copied().unwrap_or(false))
    }

    /// Freeze the rings whose members can no longer all reach each other:
    /// totem holds their messages until the new membership forms.
    pub(crate) fn freeze_broken_rings(&mut self) {
        for i in 0..self.names.len() {
            if let Some(ring) = self.cs[i].ring {
                let members = self.cs[i].ring_members.clone();
                // A member whose corosync restarted is in another ring:
                // this one has lost that member's token for good.
                let broken = members.iter().any(|j| {
                    !(self.cs[*j].up && self.cs[*j].ring == Some(ring) && self.reachable(i, *j))
                });
                if broken {
                    self.frozen.insert(ring, true);
                }
            }
        }
    }

    pub(crate) fn topology_changed(&mut self, delay: u64) {
        self.freeze_broken_rings();
        self.schedule(self.now + delay, Ev::Reconfigure);
        self.schedule(self.now + 3 * self.opts.tick, Ev::LinkCheck);
    }

    // ----- corosync --------------------------------------------------------

    pub(crate) fn corosync_start(&mut self, i: Idx) {
        if !self.powered[i] || self.cs[i].up {
            return;
        }
        self.cs[i] = Corosync {
            up: true,
            ..Corosync::default()
        };
        self.schedule(self.now + timing::LONE_RING, Ev::CorosyncReady(i));
    }

    pub(crate) fn corosync_stop(&mut self, i: Idx, graceful: bool) {
        let member = self.coroha[i]
            .as_ref()
            .filter(|c| c.joined)
            .map(|c| Member {
                node: Self::id(i),
                pid: c.pid,
            });
        let ring = self.cs[i].ring;
        self.cs[i] = Corosync::default();
        let pid = self.coroha[i].as_ref().map(|c| c.pid);
        if let Some(pid) = pid {
            let at = self.now + if graceful { 53 } else { 13 };
            self.schedule(
                at,
                Ev::Dispatch {
                    node: i,
                    pid,
                    ev: Box::new(Input::Cluster(ClusterEvent::Disconnected)),
                },
            );
        }
        if graceful {
            // corosync disconnects its clients first (ProcDown), then leaves
            // the ring: a totem change with no CPG confchg follows.
            if let (Some(m), Some(_)) = (member, ring) {
                self.schedule(
                    self.now + 55,
                    Ev::ProcLeave {
                        member: m,
                        reason: Reason::ProcDown,
                    },
                );
            }
            self.schedule(self.now + 62, Ev::Reconfigure);
            self.schedule(self.now + 3 * self.opts.tick, Ev::LinkCheck);
        } else {
            self.crashed(i, timing::DETECT_LOSS + 100);
            self.topology_changed(timing::DETECT_LOSS + 100);
        }
    }

    pub(crate) fn reconfigure(&mut self) {
        let nodes: Vec<Idx> = (0..self.names.len())
            .filter(|i| self.cs[*i].up && self.cs[*i].ready && !self.cs[*i].stuck)
            .collect();
        self.reconfigure_nodes(&nodes);
    }

    /// Form new rings where the physical components differ from the rings.
    pub(crate) fn reconfigure_nodes(&mut self, nodes: &[Idx]) {
        let mut done = vec![false; self.names.len()];
        let mut changed: Vec<Vec<Idx>> = vec![];
        for &i in nodes {
            if done[i] {
                continue;
            }
            let comp: Vec<Idx> = self
                .component(i)
                .into_iter()
                .filter(|j| nodes.contains(j))
                .collect();
            for j in &comp {
                done[*j] = true;
            }
            let same = comp
                .iter()
                .all(|j| self.cs[*j].ring.is_some() && self.cs[*j].ring_members == comp);
            if !same {
                changed.push(comp);
            }
        }
        if changed.is_empty() {
            // The ring survived (a split healed before it was noticed):
            // totem resumes and delivers what it held, once every member
            // it was formed with is reachable again and still in it. A
            // member whose corosync restarted meanwhile is in a ring of
            // its own: the old ring never resumes, it is reformed.
            let whole = |s: &Sim, r: &RingId| {
                (0..s.names.len())
                    .filter(|k| s.cs[*k].ring == Some(*r))
                    .all(|a| {
                        s.cs[a]
                            .ring_members
                            .iter()
                            .all(|b| s.cs[*b].up && s.cs[*b].ring == Some(*r) && s.reachable(a, *b))
                    })
            };
            let healed: Vec<RingId> = self
                .frozen
                .keys()
                .copied()
                .filter(|r| whole(self, r))
                .collect();
            for r in healed {
                self.frozen.remove(&r);
            }
            let held = std::mem::take(&mut self.held);
            for (sender, message) in held {
                self.sequence(sender, message);
            }
            return;
        }
        self.ring_seq += 4;
        for comp in changed {
            let ring = RingId {
                rep: Self::id(comp[0]),
                seq: self.ring_seq,
            };
            if self.votequorum().sees_all(comp.len() as u32) {
                for j in &comp {
                    self.cs[*j].wfa_ok = true;
                }
            }
            for &j in &comp {
                let old = std::mem::replace(&mut self.cs[j].ring_members, comp.clone());
                if let Some(r) = self.cs[j].ring.replace(ring) {
                    self.frozen.remove(&r);
                }
                self.ring_changed(j, &old);
            }
        }
        // The rings just formed are whole; one that lost a member and was
        // not reformed yet stays frozen (its token is lost).
        self.frozen.clear();
        self.freeze_broken_rings();
        // Messages held during the change: delivered in the new
        // configuration, to the members that moved on with the sender.
        for (sender, message) in std::mem::take(&mut self.held) {
            self.sequence(sender, message);
        }
    }

    pub(crate) fn group_members(&self, ring_members: &[Idx]) -> Vec<Member> {
        let mut members: Vec<Member> = ring_members
            .iter()
            .filter_map(|j| {
                self.coroha[*j]
                    .as_ref()
                    .filter(|c| c.joined)
                    .map(|c| Member {
                        node: Self::id(*j),
                        pid: c.pid,
                    })
            })
            .collect();
        members.sort();
        members
    }

    pub(crate) fn vq_quorate(&self, j: Idx) -> bool {
        self.votequorum()
            .quorate(self.cs[j].ring_members.len() as u32, self.cs[j].wfa_ok)
    }

    /// The callbacks one node gets for a new ring, in corosync's order.
    pub(crate) fn ring_changed(&mut self, j: Idx, old_ring: &[Idx]) {
        self.i2_checked[j] = false;
        let Some(ring) = self.cs[j].ring else { return };
        let ids: Vec<NodeId> = self.cs[j]
            .ring_members
            .iter()
            .map(|k| Self::id(*k))
            .collect();
        let joined = self.coroha[j].as_ref().is_some_and(|c| c.joined);
        if joined {
            let new = self.group_members(&self.cs[j].ring_members.clone());
            let old = self.coroha[j]
                .as_ref()
                .map(|c| c.cpg_view.clone())
                .unwrap_or_default();
            if new != old {
                let left = old
                    .iter()
                    .filter(|m| !new.contains(m))
                    .map(|m| {
                        let gone_node = !ids.contains(&m.node);
                        (
                            *m,
                            if gone_node {
                                Reason::NodeDown
                            } else {
                                Reason::ProcDown
                            },
                        )
                    })
                    .collect();
                let joined_list = new
                    .iter()
                    .filter(|m| !old.contains(m))
                    .map(|m| {
                        let new_node = !old_ring.contains(&(m.node as Idx - 1));
                        (
                            *m,
                            if new_node {
                                Reason::NodeUp
                            } else {
                                Reason::Join
                            },
                        )
                    })
                    .collect();
                self.push_cpg(
                    j,
                    ClusterEvent::CpgConfChg {
                        members: new.clone(),
                        left,
                        joined: joined_list,
                    },
                );
            }
            self.push_cpg(
                j,
                ClusterEvent::CpgTotem {
                    ring,
                    members: ids.clone(),
                },
            );
        }
        if self.coroha[j].as_ref().is_some_and(|c| c.session) {
            let quorate = self.vq_quorate(j);
            let needed = self.votes_needed();
            self.push_vq(j, ClusterEvent::QuorumNodes { ring, members: ids });
            self.push_vq(j, ClusterEvent::Quorum { quorate, needed });
        }
    }

    pub(crate) fn push_fd(&mut self, j: Idx, fd: Fd, ev: Input) {
        // The group as this node's corosync will report it, delivered now
        // or late: the next change is computed from it.
        if let (Fd::Cpg, Input::Cluster(ClusterEvent::CpgConfChg { members, .. })) = (fd, &ev) {
            if let Some(c) = self.coroha[j].as_mut() {
                c.cpg_view = members.clone();
            }
        }
        if self.cs[j].stuck {
            // Nothing is delivered while its token is lost; if its ring
            // survives, corosync delivers it late.
            self.cs[j].late.push((fd, ev));
            return;
        }
        let Some(pid) = self.coroha[j].as_ref().map(|c| c.pid) else {
            return;
        };
        let jitter = match fd {
            Fd::Cpg => self.rng.range(0, 1),
            Fd::Vq => self.rng.range(0, 8),
        };
        let slot = fd as usize;
        let at = (self.now + jitter).max(self.cs[j].fd_last[slot]);
        self.cs[j].fd_last[slot] = at;
        self.schedule(
            at,
            Ev::Dispatch {
                node: j,
                pid,
                ev: Box::new(ev),
            },
        );
    }

    pub(crate) fn push_cpg(&mut self, j: Idx, ev: ClusterEvent) {
        self.push_fd(j, Fd::Cpg, Input::Cluster(ev));
    }

    pub(crate) fn push_vq(&mut self, j: Idx, ev: ClusterEvent) {
        self.push_fd(j, Fd::Vq, Input::Cluster(ev));
    }

    /// The total-order point of a multicast.
    pub(crate) fn sequence(&mut self, sender: Member, message: Arc<Envelope>) {
        let s = sender.node as Idx - 1;
        let Some(ring) = self.cs[s].ring else { return };
        if self.cs[s].stuck {
            // Its packets do not arrive now: retransmitted if its ring
            // survives, otherwise delivered in its next ring only.
            self.held.push((sender, message));
            return;
        }
        if self.frozen.get(&ring).copied().unwrap_or(false) {
            self.held.push((sender, message));
            return;
        }

        // A message already in totem is delivered even if its sender died
        // since (virtual synchrony); receivers judge it by its view stamp.
        for j in self.cs[s].ring_members.clone() {
            // Totem delivers within one ring (see `proc_change`).
            if self.cs[j].ring != Some(ring) {
                continue;
            }
            if self.coroha[j].as_ref().is_some_and(|c| c.joined) {
                let delivery = if self.opts.wire {
                    Input::Cluster(ClusterEvent::Deliver {
                        sender,
                        data: message.encode(),
                    })
                } else {
                    Input::Delivered {
                        sender,
                        message: message.clone(),
                    }
                };
                self.push_fd(j, Fd::Cpg, delivery);
            }
        }
    }

    /// A process joins or leaves the group without a ring change.
    pub(crate) fn proc_change(&mut self, member: Member, leave: Option<Reason>) {
        let i = member.node as Idx - 1;
        if self.cs[i].stuck {
            // Its corosync gets nothing out: the change goes round once
            // it is heard again.
            let ev = match leave {
                Some(reason) => Ev::ProcLeave { member, reason },
                None => Ev::ProcJoin { member },
            };
            self.schedule(self.now + 500, ev);
            return;
        }
        if leave.is_none() {
            let ok = self.coroha[i]
                .as_ref()
                .is_some_and(|c| c.pid == member.pid && c.session);
            if !ok || self.cs[i].ring.is_none() {
                return;
            }
            if let Some(c) = self.coroha[i].as_mut() {
                c.joined = true;
            }
        }
        let ring_members = if let Some(ring) = self.cs[i].ring {
            // Only those in that very ring: a node whose packets were
            // lost kept a ring the others left (one-way loss), and its
            // join reaches them only once a ring holds them all.
            self.cs[i]
                .ring_members
                .iter()
                .copied()
                .filter(|j| self.cs[*j].ring == Some(ring))
                .collect::<Vec<Idx>>()
        } else {
            // corosync on that node is gone: tell the ring it was in.
            (0..self.names.len())
                .filter(|j| {
                    self.coroha[*j]
                        .as_ref()
                        .is_some_and(|c| c.cpg_view.contains(&member))
                })
                .collect()
        };
        for j in ring_members {
            let Some(c) = self.coroha[j].as_ref().filter(|c| c.joined) else {
                continue;
            };
            let mut members = c.cpg_view.clone();
            let (left, joined) = match leave {
                Some(reason) => {
                    if !members.contains(&member) {
                        continue;
                    }
                    members.retain(|m| *m != member);
                    (vec![(member, reason)], vec![])
                }
                None => {
                    if members.contains(&member) {
                        continue;
                    }
                    members.push(member);
                    members.sort();
                    (vec![], vec![(member, Reason::Join)])
                }
            };
            if j == i && leave.is_none() {
                members = self.group_members(&self.cs[i].ring_members.clone());
            }
            self.push_cpg(
                j,
                ClusterEvent::CpgConfChg {
                    members,
                    left,
                    joined,
                },
            );
        }
    }
}
