//! The simulated coroha processes: each runs the real policy, fed the
//! events its corosync and NSO/ConfD produce, its outputs carried out.

use crate::{timing, Coroha, Ev, Idx, Rare, Sim};
use confd_ha::{HaOrder, HaRole};
use coroha_policy::cluster::{ClusterEvent, Member, Reason};
use coroha_policy::{Input, Level, Output, Policy};

impl Sim {
    // ----- coroha ----------------------------------------------------------

    pub(crate) fn start_coroha(&mut self, i: Idx) {
        self.next_pid += 1;
        let mut settings = self.opts.config.settings(Self::id(i));
        settings.two_node = self.opts.two_node;
        settings.read_txid = self.opts.txid;
        let mut policy = Policy::new(settings, self.disk[i].clone());
        for rule in &self.opts.sabotage {
            policy.sabotage(*rule);
        }
        self.coroha[i] = Some(Coroha {
            pid: self.next_pid,
            policy,
            session: false,
            joined: false,
            cpg_view: vec![],
            timer: None,
            timer_gen: 0,
            pending_order: None,
        });
        self.step_policy(i, Input::Timer);
        if self.cs[i].ready {
            self.start_session(i);
        } else {
            // The first connection attempt fails: corosync is not there.
            self.step_policy(i, Input::Cluster(ClusterEvent::Disconnected));
        }
    }

    /// coroha connects to corosync: votequorum first, then the CPG join.
    pub(crate) fn start_session(&mut self, i: Idx) {
        if self.cs[i].stuck {
            // A join needs the token round: it completes once the node is
            // heard again.
            self.schedule(self.now + 500, Ev::Session(i));
            return;
        }
        let Some(c) = self.coroha[i].as_mut() else {
            return;
        };
        if c.session || !self.cs[i].ready {
            return;
        }
        c.session = true;
        let member = Member {
            node: Self::id(i),
            pid: c.pid,
        };
        self.step_policy(i, Input::Cluster(ClusterEvent::Connected { local: member }));
        if let Some(ring) = self.cs[i].ring {
            let ids = self.cs[i]
                .ring_members
                .iter()
                .map(|k| Self::id(*k))
                .collect();
            let quorate = self.vq_quorate(i);
            let needed = self.votes_needed();
            self.push_vq(i, ClusterEvent::QuorumNodes { ring, members: ids });
            self.push_vq(i, ClusterEvent::Quorum { quorate, needed });
        }
        self.schedule(self.now + 1, Ev::ProcJoin { member });
    }

    pub(crate) fn kill_coroha(&mut self, i: Idx, reason: Reason, delay: u64) {
        let Some(c) = self.coroha[i].take() else {
            return;
        };
        if self.confd[i].running && self.confd[i].role == HaRole::Primary {
            self.reach(Rare::Orphan);
        }
        if c.joined {
            let member = Member {
                node: Self::id(i),
                pid: c.pid,
            };
            self.schedule(self.now + delay, Ev::ProcLeave { member, reason });
        }
    }

    pub(crate) fn deliver(&mut self, node: Idx, pid: u32, input: Input) {
        let Some(c) = self.coroha[node].as_mut().filter(|c| c.pid == pid) else {
            return;
        };
        match &input {
            Input::Cluster(ClusterEvent::Disconnected) => {
                c.session = false;
                c.joined = false;
                c.cpg_view.clear();
            }
            Input::Cluster(ClusterEvent::Connected { .. }) => {}
            _ if !c.session && matches!(input, Input::Cluster(_) | Input::Delivered { .. }) => {
                return
            }
            _ => {}
        }
        self.step_policy(node, input);
        // After a lost session, reconnect once corosync is back.
        if self.coroha[node].as_ref().is_some_and(|c| !c.session) && self.cs[node].ready {
            self.start_session(node);
        }
    }

    pub(crate) fn step_policy(&mut self, i: Idx, input: Input) {
        let now = self.now;
        let Some(c) = self.coroha[i].as_mut() else {
            return;
        };
        if let Input::HaReply { id, .. } = &input {
            if c.pending_order != Some(*id) {
                return;
            }
            c.pending_order = None;
        }
        let ready = c.policy.step(now, input);
        // The simulated disk never fails, and a step is atomic here: the
        // state is on disk before any output.
        let disk = &mut self.disk[i];
        let Ok(outputs) = ready.persist_then(|state| {
            *disk = state.clone();
            Ok::<(), std::convert::Infallible>(())
        });
        let pid = c.pid;
        for out in outputs {
            self.output(i, pid, out);
        }
        self.rearm_timer(i);
    }

    pub(crate) fn rearm_timer(&mut self, i: Idx) {
        let Some(c) = self.coroha[i].as_mut() else {
            return;
        };
        let Some(at) = c.policy.next_deadline() else {
            return;
        };
        let at = at.max(self.now);
        if c.timer.map(|(t, _)| t) == Some(at) {
            return;
        }
        c.timer_gen += 1;
        c.timer = Some((at, c.timer_gen));
        let (pid, gen) = (c.pid, c.timer_gen);
        self.schedule(at, Ev::Timer { node: i, pid, gen });
    }

    pub(crate) fn output(&mut self, i: Idx, pid: u32, out: Output) {
        match out {
            Output::Multicast(message) => {
                let joined = self.coroha[i].as_ref().is_some_and(|c| c.joined);
                if joined {
                    let sender = Member {
                        node: Self::id(i),
                        pid,
                    };
                    self.schedule(self.now + timing::MCAST, Ev::Sequence { sender, message });
                }
            }
            Output::Order { id, order } => {
                let timeout = match order {
                    HaOrder::BeSecondary { .. } => self.opts.config.ha.besecondary_timeout.as_ms(),
                    _ => self.opts.config.ha.timeout.as_ms(),
                };
                if let Some(c) = self.coroha[i].as_mut() {
                    c.pending_order = Some(id);
                }
                self.schedule(self.now + timeout, Ev::OrderTimeout { node: i, pid, id });
                self.submit_order(i, pid, id, order);
            }
            Output::ReadOnly(on) => {
                self.schedule(self.now + 1, Ev::ReadOnly { node: i, pid, on });
            }
            Output::ReadTxid => {
                self.schedule(self.now + 1, Ev::ReadTxid { node: i, pid });
            }
            Output::FenceNode { node } => {
                self.reach(Rare::FenceNode);
                let target = node as Idx - 1;
                self.schedule(
                    self.now + 300,
                    Ev::FenceNodeDone {
                        node: i,
                        pid,
                        target,
                    },
                );
            }
            Output::Fence => {
                self.reach(Rare::Fence);
                self.record(Some(i), "fence hook: restarting NSO/ConfD".into());
                self.schedule(self.now + 100, Ev::FenceDone { node: i, pid });
            }
            Output::RoleChanged { from, to, cause } => {
                if cause.trim().is_empty() {
                    self.violate(
                        "I4",
                        format!("{} changed role without a cause", self.names[i]),
                    );
                }
                let from = from.map_or("unknown", |r| r.name());
                self.record(Some(i), format!("role {from} -> {} ({cause})", to.name()));
            }
            Output::Log { level, text } => {
                if level >= Level::Info || self.opts.verbose {
                    self.record(Some(i), text);
                }
            }
            Output::Leave => {
                self.record(Some(i), "coroha leaves the group and exits".into());
                self.kill_coroha(i, Reason::Leave, 1);
            }
        }
    }
}
