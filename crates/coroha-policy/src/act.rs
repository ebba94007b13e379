//! Announcing this node's state, and choosing the one order to give the
//! local NSO/ConfD: the safety rules are applied here.

use crate::cluster::NodeId;
use crate::elect::Target;
use crate::local::LocalRole;
use crate::message::{Body, Envelope, Health, Hold, KnownPrimary, NodeState};
use crate::timers::{HoldTimer, Stopping};
use crate::{Failback, Level, Output, Pending, Policy, QuorumLossAction, Sabotage};
use confd_ha::{HaOrder, HaRole};

impl Policy {
    // ----- announcing ------------------------------------------------------

    pub(crate) fn settling_flag(&self) -> bool {
        self.started_at
            .is_none_or(|s| self.last_step_at < s + self.cfg.startup_settle)
    }

    /// What this node announces to the group now.
    pub fn my_state(&self) -> NodeState {
        let me = self.cfg.node(self.cfg.me);
        NodeState {
            name: me.map_or_else(|| self.name(self.cfg.me).into(), |n| n.name.clone()),
            address: me.map_or_else(|| "".into(), |n| n.address.clone()),
            role: self.local.role.ha_role(),
            role_epoch: self.local.role_epoch,
            parent: self.local.role.parent(),
            initialized: self.local.role.initialized(),
            promoting: self.local.promoting,
            health: self.local.health,
            answered: self.local.answered,
            max_epoch: self.announced_max_epoch(),
            fresh: self.persisted.fresh,
            sync_loss: self.persisted.sync_loss,
            known_fresh: self.persisted.known_fresh,
            txid: self.announced_txid(),
            known_txid: self.persisted.known_txid,
            diverged: self.persisted.data.diverged.is_some(),
            txid_final: self.txid_final() && !self.sabotaged(Sabotage::IgnoreFinalCommit),
            outlived: match self.persisted.outlived {
                w if w.at == self.persisted.fresh => w.drops,
                _ => 0,
            },
            led_epoch: if self.sabotaged(Sabotage::IgnoreLineageLeader) {
                0
            } else {
                self.persisted.led_epoch
            },
            gen: self.local.gen,
            attached: self.local.role.attached(),
            handed_over: self.handed_over.clone(),
            priority: me.map_or(0, |n| n.priority),
            can_primary: me.is_some_and(|n| n.can_primary),
            standby: self.persisted.standby,
            // A maintenance stop does not announce itself: the role stays,
            // and nobody should plan around this node going away.
            leaving: self.leaving.is_some_and(Stopping::announced),
            settling: self.settling_flag(),
            relay_via: me
                .and_then(|n| n.relay_via.as_deref())
                .and_then(|r| self.cfg.id_of(r)),
            known_primary: self
                .known_primary()
                .cloned()
                .or_else(|| self.parent_as_primary()),
            vanished: self.persisted.vanished,
            nodes: self.cfg.nodes.len() as u32,
            config_digest: self.cfg.digest,
            pause: self.persisted.pause,
            failing: self.failing.as_ref().map(|f| f.reason()),
            config_parts: self.cfg.digest_parts.clone(),
        }
    }

    /// A secondary's own primary is a known primary even when nobody else
    /// remembers it (its coroha stopped before everybody else restarted):
    /// being attached to it proves it serves.
    pub(crate) fn parent_as_primary(&self) -> Option<KnownPrimary> {
        let LocalRole::Secondary {
            parent: Some(parent),
            ..
        } = self.local.role
        else {
            return None;
        };
        let parent = self.cfg.node(parent)?;
        if !self.quorum.ring_members.contains(&parent.id) {
            // Its node left: not an orphan, and its NSO/ConfD will drop us.
            return None;
        }
        Some(KnownPrimary {
            node: parent.id,
            epoch: self.local.role_epoch,
            name: parent.name.clone(),
            address: parent.address.clone(),
            promotion_in_flight: false,
        })
    }

    pub(crate) fn announced_max_epoch(&self) -> u64 {
        match &self.pending {
            Some(p) if matches!(p.order, HaOrder::BePrimary { .. }) => p.prev_max_epoch,
            _ => self
                .persisted
                .max_epoch
                .max(self.local.role_epoch)
                .max(self.persisted.seen_epoch),
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
        // While a primary stays, a new transaction id alone is not
        // announced: the primary's travels with its heartbeats, the others'
        // with their next announcement (a view change makes everybody
        // announce), or every commit would cost a round of messages
        // (design §6).
        let quiet = self.plan_stays()
            && self
                .last_announced
                .as_ref()
                .is_some_and(|last| last.same_but_txid(&state));
        if self.last_announced.as_ref() != Some(&state) && !quiet {
            self.last_announced = Some(state.clone());
            self.multicast(Body::Announce(Box::new(state)));
        }
    }

    pub(crate) fn multicast(&mut self, body: Body) {
        let envelope = Envelope::new(self.view.id, body);
        self.out
            .push(Output::Multicast(std::sync::Arc::new(envelope)));
    }

    // ----- acting ----------------------------------------------------------

    pub(crate) fn order(
        &mut self,
        order: HaOrder,
        epoch: u64,
        parent: Option<NodeId>,
        cause: String,
    ) {
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

    /// The cluster is paused (`coroha pause`): see [`Policy::next_order`].
    pub(crate) fn paused(&self) -> bool {
        self.persisted.pause.on
    }

    pub(crate) fn act(&mut self, now: u64) {
        self.last_step_at = now;
        self.arm_hold_timer(now);
        if !self.paused() {
            self.fence_orphan_if_due(now);
        }
        if self.pending.is_some() || self.fence_running {
            return;
        }
        let order = match self.next_order(now) {
            Next::Idle => None,
            Next::Waiting(why) => {
                self.log(Level::Debug, why);
                None
            }
            Next::Fence => {
                self.fence_running = true;
                self.out.push(Output::Fence);
                self.log(Level::Warn, "quorum lost: fencing the local NSO/ConfD");
                None
            }
            Next::Leave(text) => {
                self.log(Level::Info, text);
                self.leaving = Some(Stopping::HandedOver);
                self.out.push(Output::Leave);
                None
            }
            Next::CallOffPromotion => {
                self.local.promoting = None;
                self.log(Level::Info, "promotion called off: the decision changed");
                None
            }
            Next::AnnouncePromotion { epoch } => {
                // Announce the intent first; order once it is delivered.
                self.local.promoting = Some(epoch);
                None
            }
            Next::DemoteDiverged { why } => {
                let my_name = self.name(self.cfg.me);
                self.log(
                    Level::Warn,
                    format!("demoting diverged primary {my_name}: {why}"),
                );
                Some(NextOrder::plain(HaOrder::BeNone, why))
            }
            Next::ShedSecondary { node } => {
                let node = self.name(node);
                Some(NextOrder::new(
                    HaOrder::SecondaryDead { node: node.clone() },
                    0,
                    None,
                    format!("{node} left the membership"),
                ))
            }
            Next::Order(order) => Some(order),
        };
        let next = order.filter(|next| {
            // Back off before repeating the order that just failed.
            self.retry_at.is_none_or(|at| now >= at)
                || self.failed_order.as_ref() != Some(&next.order)
        });
        if let Some(order) = next {
            let NextOrder {
                order,
                epoch,
                parent,
                cause,
            } = order;
            let before = self.announced_max_epoch();
            if let HaOrder::BePrimary { .. } = order {
                self.persisted.max_epoch = self.persisted.max_epoch.max(epoch);
            }
            if let HaOrder::SecondaryDead { node } = &order {
                // Told once while it is out of the ring; a failure or its
                // return to the ring clears this (`forget_shed_returned`).
                if let Some(id) = self.cfg.id_of(node) {
                    self.secondary_dead_sent.insert(id);
                    // The server may drop it and commit alone from the
                    // moment the order is on its way, however late the
                    // answer: a hung server applies it when it resumes
                    // (seed 78888438). The new generation goes out with
                    // the order, not after it.
                    if !self.sabotaged(Sabotage::BumpAfterSecondaryDead) {
                        self.shed(id);
                    }
                }
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
            // While a primary stays, only its own id is news (it travels
            // with its heartbeats); otherwise everybody's may decide.
            if self.local.role.is_primary() || !self.plan_stays() {
                self.want_txid();
            }
        }
    }

    pub(crate) fn arm_hold_timer(&mut self, now: u64) {
        let wait = self.plan.as_ref().and_then(|p| p.wait.clone());
        // Only a quorate coordinator measures holds: ending a vanished
        // primary's hold may fence it, and a node cut off alone must not
        // fence the primary the majority still has (seen in the lab's
        // chaos run: an isolated secondary fenced the primary).
        let quorate = self.quorum.stable() || self.sabotaged(Sabotage::FenceWithoutQuorum);
        let coordinator = self.view.coordinator() == Some(self.cfg.me) && quorate;
        match (wait, coordinator) {
            (Some(hold), true) => {
                if self.hold_timer.as_ref().map(HoldTimer::hold) != Some(&hold) {
                    let until = match &hold {
                        Hold::PromotionDelay { primary, .. } => {
                            let race = if self.cfg.two_node && self.cfg.fence_node {
                                // Let the primary's side fence this one first.
                                self.cfg.fence_race_delay
                            } else {
                                0
                            };
                            (now + self.cfg.promotion_delay + race)
                                .max(self.lease_surely_over(*primary, now) + race)
                        }
                        Hold::OrphanGrace { .. } => now + self.cfg.orphan_grace,
                        Hold::Failback { .. } => match self.cfg.failback {
                            Failback::After(ms) => now + ms,
                            _ => now,
                        },
                    };
                    self.hold_timer = Some(HoldTimer::Running { hold, until });
                    self.end_hold_if_due(now);
                }
            }
            _ => self.hold_timer = None,
        }
    }

    /// What this node should do about its NSO/ConfD now: at most one
    /// order, or a step towards one. Reads the state only; [`Policy::act`]
    /// carries the answer out.
    fn next_order(&self, now: u64) -> Next {
        let me = self.cfg.me;
        let primary = self.local.role.is_primary();
        // Rule 7: quorum loss on the primary acts at once, whatever the plan.
        let gate = !self.sabotaged(Sabotage::SkipQuorumGate);
        let lease_lost = self.lease_lost(now);
        if gate && (self.quorum.lost() || self.coroha_minority() || lease_lost) {
            // An unknown role may be primary: benone is harmless in NONE.
            if self.maybe_primary() && self.retry_at.is_none_or(|at| now >= at) {
                let why = if lease_lost && !self.quorum.lost() {
                    "lease lost: nothing this node sends comes back"
                } else {
                    "quorum lost"
                };
                return match self.cfg.on_quorum_loss {
                    QuorumLossAction::Benone => {
                        Next::Order(NextOrder::plain(HaOrder::BeNone, why.into()))
                    }
                    QuorumLossAction::Fence => Next::Fence,
                };
            }
            return Next::Idle;
        }
        if (gate && !self.quorum.stable()) || self.local.health != Health::Ok {
            return Next::Idle;
        }
        let Some(plan) = self.plan.as_ref() else {
            return Next::Idle;
        };
        match self.leaving {
            Some(Stopping::HandedOver) => return Next::Idle,
            Some(Stopping::Handover { .. }) => {
                if let Some(text) = self.handover_complete() {
                    return Next::Leave(text);
                }
            }
            Some(Stopping::Maintenance) | None => {}
        }
        // Act only on a plan that already includes this node's latest state:
        // everybody else has then decided on the same facts.
        if self.view.states.get(&me) != self.last_announced.as_ref() {
            return Next::Idle;
        }
        let target_is_me = plan.target == Some(Target::Member(me));
        if self.local.promoting.is_some() && !target_is_me && !primary {
            return Next::CallOffPromotion;
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
            return Next::DemoteDiverged { why };
        }
        // Paused: nobody is elected, promoted, attached or handed over to.
        // The rules above stay: they keep data safe, and move no primary
        // anywhere else.
        if self.paused() {
            return Next::Waiting("cluster paused: no role changes until `coroha resume`".into());
        }
        let Some(target) = plan.target.as_ref() else {
            return Next::Idle;
        };
        match target {
            Target::Member(t) if *t == me => {
                if primary {
                    return self
                        .secondary_to_shed()
                        .map_or(Next::Idle, |node| Next::ShedSecondary { node });
                }
                if plan.wait.is_some() {
                    return Next::Idle;
                }
                let blocker = self
                    .view
                    .states
                    .iter()
                    .find(|(n, s)| **n != me && s.maybe_primary())
                    .map(|(n, _)| *n);
                if let Some(b) = blocker.filter(|_| !self.sabotaged(Sabotage::SkipDemoteFirst)) {
                    return Next::Waiting(format!(
                        "waiting for {} to stop being primary",
                        self.name(b)
                    ));
                }
                if self.local.promoting != Some(plan.epoch) {
                    return Next::AnnouncePromotion { epoch: plan.epoch };
                }
                if !self.lease_valid(now) {
                    return Next::Waiting(
                        "waiting for a heartbeat to come back before promoting".into(),
                    );
                }
                Next::Order(NextOrder::new(
                    HaOrder::BePrimary { me: self.name(me) },
                    plan.epoch,
                    None,
                    plan.cause.to_string(),
                ))
            }
            _ => {
                if primary {
                    if let Target::Member(t) = target {
                        let why = format!("handing over to {}: {}", self.name(*t), plan.cause);
                        // `parent` names whom it hands over to: only this
                        // `benone` makes the secondaries attached now the
                        // holders of every commit (`handed_over`).
                        return Next::Order(NextOrder::new(HaOrder::BeNone, 0, Some(*t), why));
                    }
                    return Next::Idle;
                }
                let Some(&parent) = plan.parent.get(&me) else {
                    return Next::Idle;
                };
                let ready = match target {
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
                    return Next::Idle;
                }
                let attached =
                    self.local.role.parent() == Some(parent) && self.local.role_epoch == plan.epoch;
                if !attached
                    && self.reattach_block == Some((parent, plan.epoch))
                    && matches!(target, Target::Member(_))
                {
                    return Next::Idle;
                }
                if attached {
                    if plan.relays.contains(&me)
                        && matches!(
                            self.local.role,
                            LocalRole::Secondary {
                                initialized: true,
                                ..
                            }
                        )
                    {
                        return Next::Order(NextOrder::new(
                            HaOrder::BeRelay,
                            plan.epoch,
                            Some(parent),
                            format!("relay for its site, under {}", self.name(parent)),
                        ));
                    }
                    return Next::Idle;
                }
                let (name, address) = match target {
                    Target::Orphan(k) => (k.name.clone(), k.address.clone()),
                    Target::Member(_) => {
                        let ps = &self.view.states[&parent];
                        (ps.name.clone(), ps.address.clone())
                    }
                };
                let cause = match target {
                    Target::Orphan(_) => format!("attach to {name}, whose coroha is gone"),
                    Target::Member(t) if *t == parent => {
                        format!("attach to primary {name} (epoch {})", plan.epoch)
                    }
                    Target::Member(_) => format!("attach through relay {name}"),
                };
                Next::Order(NextOrder::new(
                    HaOrder::BeSecondary {
                        me: self.name(me),
                        primary: name.to_string(),
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

    /// When the lease of `node`, which vanished, has surely run out on its
    /// own clock: its last heartbeat to come back was sent before its last
    /// message was delivered here, so its lease ended `lease` after that,
    /// plus a tenth for clocks that run at different rates (design §13).
    /// Never heard from in this daemon's life: a whole lease from now.
    fn lease_surely_over(&self, node: NodeId, now: u64) -> u64 {
        let margin = self.cfg.lease + self.cfg.lease / 10;
        self.heard.get(&node).map_or(now, |t| *t) + margin
    }

    /// Primary, or not known not to be (role unknown, server not down).
    pub(crate) fn maybe_primary(&self) -> bool {
        self.local.promoting.is_some()
            || match self.local.role {
                LocalRole::Unknown => !matches!(self.local.health, Health::Down | Health::Fenced),
                ref known => known.is_primary(),
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

    /// Rule 6: only a quorate primary sheds secondaries whose node left;
    /// the first such secondary not yet told about.
    fn secondary_to_shed(&self) -> Option<NodeId> {
        if !self.cfg.secondary_dead {
            return None;
        }
        self.local.role.attached().into_iter().find(|n| {
            !self.quorum.ring_members.contains(n) && !self.secondary_dead_sent.contains(n)
        })
    }

    /// During an orderly stop: the handover is done (or nobody can take
    /// over), so leave; what to log.
    fn handover_complete(&self) -> Option<&'static str> {
        let me = self.cfg.me;
        let announced_leaving = self.view.states.get(&me).is_some_and(|s| s.leaving);
        // A secondary or relay with its copy, listed by its primary: the
        // role is handed over, and the persisted lineage position says
        // this node has the new primary's data (leaving before it is
        // listed left it a whole epoch behind its own data, seed
        // 20757687). The handover's deadline bounds the wait.
        let listed = self.persisted.fresh.epoch >= self.local.role_epoch
            || self.sabotaged(Sabotage::LeaveBeforeListed);
        let attached = self.local.role.initialized() && listed;
        let nobody_else = self.local.role.is_primary()
            && self
                .plan
                .as_ref()
                .is_some_and(|p| p.target.is_none() || p.target == Some(Target::Member(me)));
        if !(announced_leaving && (attached || nobody_else)) {
            return None;
        }
        Some(if self.local.role.is_primary() {
            "no other node can take over: leaving with NSO/ConfD still primary"
        } else {
            "handover done: leaving"
        })
    }
}

/// What [`Policy::next_order`] found to do about the local NSO/ConfD.
enum Next {
    /// Nothing now: waiting for a quorum, a plan, a peer, or nothing to do.
    Idle,
    /// Nothing now, and why (a debug line).
    Waiting(String),
    /// `on_quorum_loss = "fence"`: run the fence hook.
    Fence,
    /// The orderly stop's handover is done: leave, saying this.
    Leave(&'static str),
    /// The plan no longer makes this node primary: withdraw the intent.
    CallOffPromotion,
    /// Announce the intent to promote at `epoch` (the order follows once
    /// everybody has delivered it).
    AnnouncePromotion {
        epoch: u64,
    },
    /// A primary with an older claim than the plan's steps down, warning
    /// that writes it took may be lost.
    DemoteDiverged {
        why: String,
    },
    /// Tell NSO/ConfD that this secondary's node left (`secondary_dead`).
    ShedSecondary {
        node: NodeId,
    },
    Order(NextOrder),
}

/// The one order [`Policy::next_order`] chose, with what its success will
/// be recorded as.
pub(crate) struct NextOrder {
    order: HaOrder,
    /// The epoch of the role the order gives (0 for orders that give none).
    epoch: u64,
    /// A secondary's or relay's primary (or relay) to attach to.
    parent: Option<NodeId>,
    /// Why: logged, and the cause of the role change it brings (I4).
    cause: String,
}

impl NextOrder {
    fn new(order: HaOrder, epoch: u64, parent: Option<NodeId>, cause: String) -> NextOrder {
        NextOrder {
            order,
            epoch,
            parent,
            cause,
        }
    }

    /// An order that gives no epoch and attaches to nobody.
    fn plain(order: HaOrder, cause: String) -> NextOrder {
        NextOrder::new(order, 0, None, cause)
    }
}
