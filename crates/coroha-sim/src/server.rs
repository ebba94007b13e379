//! The simulated NSO/ConfD's HA behaviour as the cluster sees it: orders
//! served one at a time, attaching, links and ticks, stopping.

use crate::probe::Said;
use crate::{Ev, Idx, Rare, Sim};
use confd_ha::{code, HaEvent, HaFailure, HaOrder, HaReply, HaRole};
use coroha_policy::Input;

impl Sim {
    // ----- NSO/ConfD -------------------------------------------------------

    pub(crate) fn send_event(&mut self, i: Idx, ev: HaEvent) {
        if let Some(tap) = self.tap.as_mut() {
            tap.push((i, Said::Event(ev)));
            return;
        }
        if self.confd[i].hung {
            self.confd[i].owed.push(ev);
            return;
        }
        if let Some(pid) = self.coroha[i].as_ref().map(|c| c.pid) {
            self.schedule(
                self.now + 1,
                Ev::Dispatch {
                    node: i,
                    pid,
                    ev: Box::new(Input::HaEvent(ev)),
                },
            );
        }
    }

    pub(crate) fn reply(
        &mut self,
        i: Idx,
        pid: u32,
        id: u64,
        result: Result<HaReply, HaFailure>,
        delay: u64,
    ) {
        if let Some(tap) = self.tap.as_mut() {
            tap.push((i, Said::Reply(result)));
            return;
        }
        self.schedule(
            self.now + delay,
            Ev::Dispatch {
                node: i,
                pid,
                ev: Box::new(Input::HaReply { id, result }),
            },
        );
    }

    pub(crate) fn submit_order(&mut self, i: Idx, pid: u32, id: u64, order: HaOrder) {
        let c = &self.confd[i];
        if !c.running {
            self.reply(i, pid, id, Err(HaFailure::Unreachable), 1);
            return;
        }
        if c.hung {
            // Served after the resume, if ever; the coroha side times out.
            match order {
                HaOrder::BePrimary { .. } => self.reach(Rare::PromotionOnHungServer),
                HaOrder::BeNone => self.reach(Rare::DemotionOnHungServer),
                _ => {}
            }
            self.confd[i].stalled.push((pid, id, order));
            return;
        }
        let latency = match &order {
            HaOrder::GetStatus => 1,
            HaOrder::BePrimary { .. } => 10,
            HaOrder::BeNone | HaOrder::BeRelay => 5,
            HaOrder::SecondaryDead { .. } => 2,
            HaOrder::BeSecondary { primary, .. } => {
                match self.names.iter().position(|n| n == primary) {
                    // A frozen primary accepts the connection and is silent.
                    Some(p)
                        if self.confd[p].hung
                            && self.confd[p].listens()
                            && self.reachable(i, p) =>
                    {
                        10_000
                    }
                    Some(p) if !self.reachable(i, p) => 1000,
                    _ => 60,
                }
            }
        };
        let at = self.now.max(c.busy_until) + latency;
        self.confd[i].busy_until = at;
        self.schedule(
            at,
            Ev::OrderApply {
                node: i,
                pid,
                id,
                order,
            },
        );
    }

    pub(crate) fn set_confd_role(&mut self, i: Idx, role: HaRole) {
        let before = self.confd[i].role;
        self.confd[i].set_role(self.now, role);
        if before != role {
            self.role_changes.push((self.now, i, role));
            self.i2_checked[i] = false;
        }
    }

    pub(crate) fn apply_order(&mut self, i: Idx, pid: u32, id: u64, order: HaOrder) {
        if !self.confd[i].running {
            // Died while the order was queued.
            self.reply(i, pid, id, Err(HaFailure::Unreachable), 0);
            return;
        }
        if self.confd[i].hung {
            // Froze while it was queued: served after the resume.
            self.confd[i].stalled.push((pid, id, order));
            return;
        }
        let refused = self.confd[i].refusing && order != HaOrder::GetStatus;
        if refused {
            self.reach(Rare::RefusedOrder);
            self.reply(i, pid, id, Err(HaFailure::Error(code::BADSTATE)), 0);
            return;
        }
        let result = match order {
            HaOrder::GetStatus => {
                let c = &self.confd[i];
                // Its primary first, then every node attached below it,
                // through relays too, newest first.
                let mut below = self.subtree(i);
                below.sort_by_key(|k| std::cmp::Reverse(self.confd[*k].joined));
                let nodes = c
                    .parent
                    .iter()
                    .chain(&below)
                    .map(|k| self.names[*k].clone())
                    .collect();
                Ok(HaReply::Status {
                    role: c.role,
                    nodes,
                })
            }
            HaOrder::BePrimary { .. } => {
                if self.confd[i].role != HaRole::Primary {
                    self.confd[i].txid_tag.get_or_insert(i);
                    self.detach_from_parent(i);
                    // A relay made primary starts with nobody (as
                    // captured): those it relayed for may join it anew.
                    self.drop_children(i, code::HA_CLOSED);
                    self.set_confd_role(i, HaRole::Primary);
                    self.send_event(i, HaEvent::IsPrimary);
                }
                Ok(HaReply::Ok)
            }
            HaOrder::BeNone => {
                if self.confd[i].role == HaRole::Primary {
                    // As captured: benone on a primary clears read-only
                    // and the tag of its transaction id.
                    self.confd[i].read_only = false;
                    self.confd[i].txid_tag = None;
                }
                self.detach_from_parent(i);
                self.drop_children(i, code::HA_CLOSED);
                self.set_confd_role(i, HaRole::None);
                self.send_event(i, HaEvent::IsNone);
                Ok(HaReply::Ok)
            }
            HaOrder::BeRelay => {
                // As captured: ok on a secondary and again on a relay.
                if matches!(self.confd[i].role, HaRole::Secondary | HaRole::Relay) {
                    self.set_confd_role(i, HaRole::Relay);
                    Ok(HaReply::Ok)
                } else {
                    Err(HaFailure::Error(code::BADSTATE))
                }
            }
            // A relay refuses it, whether or not it relays for anybody (as
            // captured).
            HaOrder::SecondaryDead { .. } if self.confd[i].role == HaRole::Relay => {
                Err(HaFailure::Error(code::BADSTATE))
            }
            HaOrder::SecondaryDead { node } => {
                if let Some(k) = self.names.iter().position(|n| *n == node) {
                    if self.subtree(i).contains(&k) {
                        // No SECONDARY_DIED for the node named, which sees
                        // its link close; one for each node behind it (a
                        // relay's). One behind a relay is dropped by it.
                        for b in self.subtree(k) {
                            self.send_event(i, HaEvent::SecondaryDied(self.names[b].clone()));
                        }
                        let parent = self.confd[k].parent.unwrap_or(i);
                        self.break_link(parent, k, code::HA_CLOSED, false);
                    }
                }
                Ok(HaReply::Ok)
            }
            HaOrder::BeSecondary { primary, .. } => self.be_secondary(i, &primary),
        };
        self.reply(i, pid, id, result, 0);
    }

    pub(crate) fn be_secondary(&mut self, i: Idx, primary: &str) -> Result<HaReply, HaFailure> {
        let Some(p) = self.names.iter().position(|n| n == primary) else {
            return Err(HaFailure::Error(code::HA_BADNAME));
        };
        if self.confd[i].parent == Some(p)
            && matches!(self.confd[i].role, HaRole::Secondary | HaRole::Relay)
        {
            // Already there: answered at once; a relay stops relaying.
            self.drop_children(i, code::HA_CLOSED);
            self.set_confd_role(i, HaRole::Secondary);
            return Ok(HaReply::Ok);
        }
        // It leaves its role first (so its own relay no longer listens).
        self.detach_from_parent(i);
        self.drop_children(i, code::HA_CLOSED);
        // besecondary to itself fails with HA_CONNECT: it left its role
        // first. A frozen primary accepts the connection and says nothing.
        let failure = if p == i || !self.confd[p].listens() || !self.reachable(i, p) {
            Some(code::HA_CONNECT)
        } else if self.confd[p].hung {
            Some(code::HA_CLOSED)
        } else {
            None
        };
        if let Some(c) = failure {
            self.set_confd_role(i, HaRole::None);
            self.send_event(i, HaEvent::IsNone);
            return Err(HaFailure::Error(c));
        }
        if self.confd[i].txid != self.confd[p].txid {
            self.confd[i].txid_tag = self.confd[p].txid_tag;
        }
        self.confd[i].data = self.confd[p].data.clone();
        self.confd[i].txid = self.confd[p].txid;
        self.confd[i].silent_since = None;
        self.confd[i].parent = Some(p);
        self.confd[i].joined = self.confd.iter().map(|c| c.joined).max().unwrap_or(0) + 1;
        // A node is attached once: its new connection replaces a link the
        // primary still held (it had not yet missed three ticks from it).
        self.confd[p].children.retain(|k| *k != i);
        self.confd[p].children.push(i);
        self.set_confd_role(i, HaRole::Secondary);
        let top = self.top_primary(p);
        self.send_event(top, HaEvent::SecondaryArrived(self.names[i].clone()));
        self.send_event(i, HaEvent::SecondaryInitialized);
        Ok(HaReply::Ok)
    }

    /// The nodes attached to `i`, directly or through relays.
    fn subtree(&self, i: Idx) -> Vec<Idx> {
        let mut out = self.confd[i].children.clone();
        let mut k = 0;
        while k < out.len() {
            out.extend(self.confd[out[k]].children.iter().copied());
            k += 1;
        }
        out
    }

    pub(crate) fn top_primary(&self, mut p: Idx) -> Idx {
        while let Some(up) = self.confd[p].parent {
            p = up;
        }
        p
    }

    /// `i` leaves its parent. The top primary hears of it, then of every
    /// node attached below it (as captured: a relay first, then those
    /// behind it); call it before dropping `i`'s own children.
    pub(crate) fn detach_from_parent(&mut self, i: Idx) {
        if let Some(p) = self.confd[i].parent {
            self.confd[p].children.retain(|k| *k != i);
            let top = self.top_primary(p);
            self.secondaries_died(top, i);
            self.confd[i].parent = None;
        }
    }

    /// SECONDARY_DIED on `top` for `k`, then for every node below it.
    fn secondaries_died(&mut self, top: Idx, k: Idx) {
        for g in std::iter::once(k).chain(self.subtree(k)) {
            self.send_event(top, HaEvent::SecondaryDied(self.names[g].clone()));
        }
    }

    /// Children of `i` lose their primary (NOPRIMARY `code`, then NONE).
    /// A node that drops them itself raises no SECONDARY_DIED for them (as
    /// captured: benone on a primary); a relay's primary hears of them.
    pub(crate) fn drop_children(&mut self, i: Idx, code: i32) {
        let tell_primary = self.confd[i].parent.is_some();
        for k in self.confd[i].children.clone() {
            self.break_link(i, k, code, tell_primary);
        }
    }

    /// The HA link between parent `p` and child `k` is gone.
    pub(crate) fn break_link(&mut self, p: Idx, k: Idx, code: i32, tell_parent: bool) {
        self.confd[p].children.retain(|x| *x != k);
        if tell_parent && self.confd[p].running {
            let top = self.top_primary(p);
            self.secondaries_died(top, k);
        }
        if self.confd[k].parent == Some(p) {
            self.confd[k].parent = None;
            self.confd[k].silent_since = None;
            if self.confd[k].running {
                self.drop_children(k, code);
                self.set_confd_role(k, HaRole::None);
                self.send_event(k, HaEvent::NoPrimary(code));
                self.send_event(k, HaEvent::IsNone);
            }
        }
    }

    /// A frozen server carries on: what it owes its subscriber first, then
    /// the orders that reached it while frozen.
    pub(crate) fn confd_resume(&mut self, i: Idx) {
        if !(self.confd[i].running && self.confd[i].hung) {
            return;
        }
        self.confd[i].hung = false;
        // The caller gave up on it long ago (its client timed out); the
        // server applies it all the same.
        if let Some((_, on)) = self.confd[i].stalled_read_only.take() {
            self.confd[i].read_only = on;
        }
        for ev in std::mem::take(&mut self.confd[i].owed) {
            self.send_event(i, ev);
        }
        for (pid, id, order) in std::mem::take(&mut self.confd[i].stalled) {
            self.submit_order(i, pid, id, order);
        }
        self.confd[i].busy_until = self.confd[i].busy_until.max(self.now);
    }

    pub(crate) fn confd_stop(&mut self, i: Idx, why: &str) {
        if !self.confd[i].running {
            return;
        }
        self.record(Some(i), format!("NSO/ConfD stops: {why}"));
        // The process is gone: TCP connections close at once, and it says
        // nothing more itself.
        self.confd[i].running = false;
        self.detach_from_parent(i);
        self.drop_children(i, code::HA_CLOSED);
        self.confd[i].hung = false;
        self.confd[i].owed.clear();
        // Calls in progress see the connection close.
        for (pid, id, _) in std::mem::take(&mut self.confd[i].stalled) {
            self.reply(i, pid, id, Err(HaFailure::Unreachable), 0);
        }
        // A read-only call it never applied dies with it (its caller has
        // been told it failed).
        self.confd[i].stalled_read_only = None;
        self.set_confd_role(i, HaRole::None);
    }

    /// The transaction id a commit on `p` gets: its clock, in
    /// microseconds, skewed by its offset; one more than the last if that
    /// is not later (a commit changes the id).
    pub(crate) fn commit_stamp(&self, p: Idx) -> u64 {
        let clock = (self.now * 1000).saturating_add_signed(self.clock_offset_us(p));
        clock.max(self.confd[p].txid + 1)
    }

    fn clock_offset_us(&self, p: Idx) -> i64 {
        (p as i64 % 3 - 1) * self.opts.clock_skew_us as i64
    }

    /// CDB `cdb_get_txid`: answered at once by a serving server; a frozen
    /// one answers nothing (the client's timeout ends the call).
    pub(crate) fn read_txid(&mut self, i: Idx, pid: u32) {
        let c = &self.confd[i];
        let (answer, after) = match (c.running, c.hung) {
            (true, false) => {
                let txid = confd_ha::Txid {
                    stamp: confd_ha::TxStamp::from_micros(c.txid),
                    primary: c.txid_tag.map(|k| self.names[k].to_string()),
                };
                (Some(txid), 0)
            }
            (true, true) => (None, self.opts.config.ha.timeout.as_ms()),
            (false, _) => (None, 0),
        };
        self.schedule(
            self.now + after,
            Ev::Dispatch {
                node: i,
                pid,
                ev: Box::new(Input::TxidRead(answer)),
            },
        );
    }

    /// MAAPI `set_readonly_mode`, answered at once by a serving server. A
    /// frozen one keeps the request and applies it when it resumes; the
    /// daemon's client gives up after its timeout (the call failed), as
    /// the I/O edge does (`IpcSocket`'s bound).
    pub(crate) fn apply_read_only(&mut self, i: Idx, pid: u32, on: bool) {
        let ok = self.confd[i].running && !self.confd[i].hung;
        let mut after = 0;
        if self.confd[i].running && self.confd[i].hung {
            self.confd[i].stalled_read_only = Some((pid, on));
            after = self.opts.config.ha.timeout.as_ms();
        }
        if ok {
            self.confd[i].read_only = on;
        }
        self.schedule(
            self.now + after,
            Ev::Dispatch {
                node: i,
                pid,
                ev: Box::new(Input::ReadOnlyDone { on, ok }),
            },
        );
    }

    /// Start the process in NONE; in start phase 0 (`phase0`) it refuses
    /// every order but getstatus until it reaches phase 1.
    pub(crate) fn confd_start(&mut self, i: Idx, phase0: bool) {
        if self.powered[i] && !self.confd[i].running {
            self.confd[i].running = true;
            self.confd[i].hung = false;
            self.confd[i].refusing = phase0;
            self.confd[i].read_only = false;
            self.confd[i].busy_until = self.now;
            self.confd[i].set_role(self.now, HaRole::None);
        }
    }

    /// Ticks: links whose peer is unreachable, dead without a close, or
    /// frozen are dropped after three tick timeouts.
    pub(crate) fn link_check(&mut self) {
        for k in 0..self.names.len() {
            let Some(p) = self.confd[k].parent else {
                continue;
            };
            if !self.confd[p].children.contains(&k) {
                // A rebooted primary no longer knows the connection: reset.
                self.break_link(p, k, code::HA_CLOSED, true);
                continue;
            }
            let silent = !self.reachable(p, k)
                || !self.confd[p].running
                || !self.confd[k].running
                || self.confd[p].hung
                || self.confd[k].hung;
            if !silent {
                self.confd[k].silent_since = None;
                continue;
            }
            let since = *self.confd[k].silent_since.get_or_insert(self.now);
            let limit = since + 3 * self.opts.tick;
            if self.now >= limit {
                self.break_link(p, k, code::HA_NOTICK, true);
            } else {
                self.schedule(limit, Ev::LinkCheck);
            }
        }
    }
}
