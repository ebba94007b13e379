//! Announcing this node's state, and choosing the one order to give the
//! local NSO/ConfD: the safety rules are applied here.

use crate::cluster::NodeId;
use crate::elect::Target;
use crate::message::{Body, Envelope, Health, Hold, KnownPrimary, NodeState};
use crate::{Failback, Level, Output, Pending, Policy, QuorumLossAction};
use confd_ha::{HaOrder, HaRole};

impl Policy {
    // ----- announcing ------------------------------------------------------

    pub(crate) fn settling_flag(&self) -> bool {
        self.started_at
            .map_or(true, |s| self.last_step_at < s + self.cfg.startup_settle)
    }

    /// What this node announces to the group now.
    pub fn my_state(&self) -> NodeState {
        let me = self.cfg.node(self.cfg.me);
        NodeState {
            name: self.name(self.cfg.me),
            address: me.map(|n| n.address.clone()).unwrap_or_default(),
            role: self.local.role,
            role_epoch: self.local.role_epoch,
            parent: self.local.parent,
            initialized: self.local.initialized,
            promoting: self.local.promoting,
            health: self.local.health,
            max_epoch: self.announced_max_epoch(),
            fresh: self.persisted.fresh,
            sync_loss: self.persisted.sync_loss,
            known_fresh: self.persisted.known_fresh,
            gen: self.local.gen,
            attached: self.local.attached.iter().copied().collect(),
            priority: me.map_or(0, |n| n.priority),
            can_primary: me.is_some_and(|n| n.can_primary),
            standby: self.persisted.standby,
            // A maintenance stop does not announce itself: the role stays,
            // and nobody should plan around this node going away.
            leaving: matches!(self.leaving, Some((true, _))),
            settling: self.settling_flag(),
            relay_via: me
                .and_then(|n| n.relay_via.as_deref())
                .and_then(|r| self.cfg.id_of(r)),
            known_primary: self
                .known_primary
                .clone()
                .or_else(|| self.parent_as_primary()),
            vanished: self.vanished,
            nodes: self.cfg.nodes.len() as u32,
            config_digest: self.cfg.digest,
        }
    }

    /// A secondary's own primary is a known primary even when nobody else
    /// remembers it (its coroha stopped before everybody else restarted):
    /// being attached to it proves it serves.
    pub(crate) fn parent_as_primary(&self) -> Option<KnownPrimary> {
        if !matches!(self.local.role, Some(HaRole::Secondary)) {
            return None;
        }
        let parent = self.cfg.node(self.local.parent?)?;
        if !self.quorum.ring_members.contains(&parent.id) {
            // Its node left: not an orphan, and its NSO/ConfD will drop us.
            return None;
        }
        Some(KnownPrimary {
            node: parent.id,
            epoch: self.local.role_epoch,
            name: parent.name.clone(),
            address: parent.address.clone(),
        })
    }

    pub(crate) fn announced_max_epoch(&self) -> u64 {
        match &self.pending {
            Some(p) if matches!(p.order, HaOrder::BePrimary { .. }) => p.prev_max_epoch,
            _ => self.persisted.max_epoch.max(self.local.role_epoch),
        }
    }

    pub(crate) fn announce_if_changed(&mut self) {
        if self.view.members.is_empty()
            || !self
                .quorum
                .local
                .is_some_and(|l| self.view.members.contains(&l))
        {
            return;
        }
        let state = self.my_state();
        if self.last_announced.as_ref() != Some(&state) {
            self.last_announced = Some(state.clone());
            self.multicast(Body::Announce(Box::new(state)));
        }
    }

    pub(crate) fn multicast(&mut self, body: Body) {
        let envelope = Envelope::new(self.view.id, body);
        self.out.push(Output::Multicast(envelope.encode()));
    }

    // ----- acting ----------------------------------------------------------

    /// Ask the edge to write the persistent state if it changed. Called
    /// before every order, so that what an order relies on is on disk first.
    pub(crate) fn flush_persisted(&mut self) {
        if self.persisted != self.written {
            self.written = self.persisted.clone();
            self.out.push(Output::Persist(self.persisted.clone()));
        }
    }

    pub(crate) fn order(
        &mut self,
        order: HaOrder,
        epoch: u64,
        parent: Option<NodeId>,
        cause: String,
    ) {
        self.flush_persisted();
        let id = self.next_id;
        self.next_id += 1;
        if !matches!(order, HaOrder::GetStatus) {
            self.log(Level::Info, format!("order {}: {cause}", order.verb()));
        }
        let prev_max_epoch = self.announced_max_epoch();
        self.pending = Some(Pending {
            id,
            order: order.clone(),
            epoch,
            parent,
            cause,
            prev_max_epoch,
        });
        self.out.push(Output::Order { id, order });
    }

    pub(crate) fn act(&mut self, now: u64) {
        self.last_step_at = now;
        self.arm_hold_timer(now);
        if self.pending.is_some() || self.fence_running {
            return;
        }
        let next = self.next_order(now).filter(|(order, ..)| {
            // Back off before repeating the order that just failed.
            now >= self.retry_at || self.failed_order.as_ref() != Some(order)
        });
        if let Some(order) = next {
            let (order, epoch, parent, cause) = order;
            let before = self.announced_max_epoch();
            if let HaOrder::BePrimary { .. } = order {
                self.persisted.max_epoch = self.persisted.max_epoch.max(epoch);
            }
            self.order(order, epoch, parent, cause);
            if let Some(p) = self.pending.as_mut() {
                p.prev_max_epoch = before;
            }
            return;
        }
        if now >= self.status_at {
            self.status_at = now + self.cfg.status_interval;
            self.order(HaOrder::GetStatus, 0, None, "health check".into());
        }
    }

    pub(crate) fn arm_hold_timer(&mut self, now: u64) {
        let wait = self.plan.as_ref().and_then(|p| p.wait.clone());
        let coordinator = self.view.coordinator() == Some(self.cfg.me);
        match (wait, coordinator) {
            (Some(hold), true) => {
                if self.hold_timer.as_ref().map(|(h, _)| h) != Some(&hold) {
                    let delay = match &hold {
                        Hold::PromotionDelay { .. } => self.cfg.promotion_delay,
                        Hold::OrphanGrace { .. } => self.cfg.orphan_grace,
                        Hold::Failback { .. } => match self.cfg.failback {
                            Failback::After(ms) => ms,
                            _ => 0,
                        },
                    };
                    self.hold_timer = Some((hold, now + delay));
                }
            }
            _ => self.hold_timer = None,
        }
    }

    /// The one order this node should give its NSO/ConfD now, if any.
    pub(crate) fn next_order(
        &mut self,
        now: u64,
    ) -> Option<(HaOrder, u64, Option<NodeId>, String)> {
        let me = self.cfg.me;
        let my_name = self.name(me);
        let primary = self.local.role == Some(HaRole::Primary);
        // Rule 7: quorum loss on the primary acts at once, whatever the plan.
        let gate = !self.sabotage.skip_quorum_gate;
        if gate && (self.quorum.lost() || self.coroha_minority()) {
            // An unknown role may be primary: benone is harmless in NONE.
            if self.maybe_primary() && now >= self.retry_at {
                return match self.cfg.on_quorum_loss {
                    QuorumLossAction::Benone => {
                        Some((HaOrder::BeNone, 0, None, "quorum lost".into()))
                    }
                    QuorumLossAction::Fence => {
                        self.fence_running = true;
                        self.out.push(Output::Fence);
                        self.log(Level::Warn, "quorum lost: fencing the local NSO/ConfD");
                        None
                    }
                };
            }
            return None;
        }
        if (gate && !self.quorum.stable()) || self.local.health != Health::Ok {
            return None;
        }
        let plan = self.plan.clone()?;
        if self.leaving_done() {
            return None;
        }
        // Act only on a plan that already includes this node's latest state:
        // everybody else has then decided on the same facts.
        if self.view.states.get(&me) != self.last_announced.as_ref() {
            return None;
        }
        let target_is_me = plan.target == Some(Target::Member(me));
        if self.local.promoting.is_some() && !target_is_me && !primary {
            self.local.promoting = None;
            self.log(Level::Info, "promotion called off: the decision changed");
            return None;
        }
        if plan.demote.contains(&me) && primary {
            let why = match &plan.target {
                Some(t) => format!(
                    "another primary has a newer epoch ({} at {}); writes accepted here since epoch {} may be lost",
                    self.name(t.node()),
                    plan.epoch,
                    self.local.role_epoch
                ),
                None => "diverged primary".into(),
            };
            self.log(
                Level::Warn,
                format!("demoting diverged primary {my_name}: {why}"),
            );
            return Some((HaOrder::BeNone, 0, None, why));
        }
        let target = plan.target.clone()?;
        match &target {
            Target::Member(t) if *t == me => {
                if primary {
                    return self.secondary_dead_order();
                }
                if plan.wait.is_some() {
                    return None;
                }
                let blocker = self
                    .view
                    .states
                    .iter()
                    .find(|(n, s)| **n != me && s.maybe_primary())
                    .map(|(n, _)| *n);
                if let Some(b) = blocker.filter(|_| !self.sabotage.skip_demote_first) {
                    self.log(
                        Level::Debug,
                        format!("waiting for {} to stop being primary", self.name(b)),
                    );
                    return None;
                }
                if self.local.promoting != Some(plan.epoch) {
                    // Announce the intent first; order once it is delivered.
                    self.local.promoting = Some(plan.epoch);
                    return None;
                }
                Some((
                    HaOrder::BePrimary { me: my_name },
                    plan.epoch,
                    None,
                    plan.cause.clone(),
                ))
            }
            _ => {
                if primary {
                    if let Target::Member(t) = &target {
                        let why = format!("handing over to {}: {}", self.name(*t), plan.cause);
                        return Some((HaOrder::BeNone, 0, None, why));
                    }
                    return None;
                }
                let parent = *plan.parent.get(&me)?;
                let ready = match &target {
                    Target::Orphan(k) => k.node == parent,
                    Target::Member(t) => self.view.states.get(&parent).is_some_and(|ps| {
                        ps.health == Health::Ok
                            && if parent == *t {
                                ps.is_primary() && ps.role_epoch == plan.epoch
                            } else {
                                ps.role == Some(HaRole::Relay)
                                    && ps.parent == Some(*t)
                                    && ps.role_epoch == plan.epoch
                            }
                    }),
                };
                if !ready {
                    return None;
                }
                let attached = matches!(
                    self.local.role,
                    Some(HaRole::Secondary) | Some(HaRole::Relay)
                ) && self.local.parent == Some(parent)
                    && self.local.role_epoch == plan.epoch;
                if !attached
                    && self.reattach_block == Some((parent, plan.epoch))
                    && matches!(target, Target::Member(_))
                {
                    return None;
                }
                if attached {
                    if plan.relays.contains(&me)
                        && self.local.role == Some(HaRole::Secondary)
                        && self.local.initialized
                    {
                        return Some((
                            HaOrder::BeRelay,
                            plan.epoch,
                            Some(parent),
                            format!("relay for its site, under {}", self.name(parent)),
                        ));
                    }
                    return None;
                }
                let (name, address) = match &target {
                    Target::Orphan(k) => (k.name.clone(), k.address.clone()),
                    Target::Member(_) => {
                        let ps = &self.view.states[&parent];
                        (ps.name.clone(), ps.address.clone())
                    }
                };
                let cause = match &target {
                    Target::Orphan(_) => format!("attach to {name}, whose coroha is gone"),
                    Target::Member(t) if *t == parent => {
                        format!("attach to primary {name} (epoch {})", plan.epoch)
                    }
                    Target::Member(_) => format!("attach through relay {name}"),
                };
                Some((
                    HaOrder::BeSecondary {
                        me: my_name,
                        primary: name,
                        address: confd_ha::wire::Address::parse(&address),
                        wait: true,
                    },
                    plan.epoch,
                    Some(parent),
                    cause,
                ))
            }
        }
    }

    /// Primary, or not known not to be (role unknown, server not down).
    pub(crate) fn maybe_primary(&self) -> bool {
        self.local.promoting.is_some()
            || match self.local.role {
                Some(role) => role == HaRole::Primary,
                None => !matches!(self.local.health, Health::Down | Health::Fenced),
            }
    }

    /// Corosync counts the votes of nodes whose coroha is not running, but
    /// only running daemons carry what the election knows (who is in sync).
    /// So that every future election overlaps with the knowledge of every
    /// past one, the CPG group itself must hold a quorum of daemons.
    pub(crate) fn coroha_minority(&self) -> bool {
        self.quorum.stable()
            && !self.view.members.is_empty()
            && (self.view.members.len() as u32) < self.quorum.needed
    }

    /// Rule 6: only a quorate primary sheds secondaries whose node left.
    pub(crate) fn secondary_dead_order(
        &mut self,
    ) -> Option<(HaOrder, u64, Option<NodeId>, String)> {
        if !self.cfg.secondary_dead {
            return None;
        }
        let gone = self.local.attached.iter().copied().find(|n| {
            !self.quorum.ring_members.contains(n) && !self.secondary_dead_sent.contains(n)
        })?;
        self.secondary_dead_sent.insert(gone);
        let node = self.name(gone);
        Some((
            HaOrder::SecondaryDead { node: node.clone() },
            0,
            None,
            format!("{node} left the membership"),
        ))
    }

    /// During an orderly stop: leave once the role is handed over.
    pub(crate) fn leaving_done(&mut self) -> bool {
        let Some((true, at)) = self.leaving else {
            return false;
        };
        if at == u64::MAX {
            return true;
        }
        let me = self.cfg.me;
        let announced_leaving = self.view.states.get(&me).is_some_and(|s| s.leaving);
        let attached = matches!(
            self.local.role,
            Some(HaRole::Secondary) | Some(HaRole::Relay)
        ) && self.local.initialized;
        let nobody_else = self.local.role == Some(HaRole::Primary)
            && self
                .plan
                .as_ref()
                .is_some_and(|p| p.target.is_none() || p.target == Some(Target::Member(me)));
        let handed_over = announced_leaving && (attached || nobody_else);
        if handed_over {
            let text = if self.local.role == Some(HaRole::Primary) {
                "no other node can take over: leaving with NSO/ConfD still primary"
            } else {
                "handover done: leaving"
            };
            self.log(Level::Info, text);
            self.leaving = Some((true, u64::MAX));
            self.out.push(Output::Leave);
            return true;
        }
        false
    }
}
