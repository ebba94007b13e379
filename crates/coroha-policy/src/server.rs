//! The local NSO/ConfD: replies to orders, HA notifications, the fence
//! hook's result, and the role, health and freshness they imply.

use crate::cluster::NodeId;
use crate::elect::{Plan, Target};
use crate::local::LocalRole;
use crate::lone::LossCause;
use crate::message::{Body, Fresh, Health, NodeState, Request};
use crate::timers::Evidence;
use crate::{Fellows, Level, Outlived, Output, Pending, Policy, Sabotage};
use confd_ha::{HaEvent, HaFailure, HaOrder, HaReply, HaRole};
use std::collections::BTreeSet;

impl Policy {
    // ----- NSO/ConfD -------------------------------------------------------

    pub(crate) fn set_role(&mut self, role: HaRole, cause: &str) {
        let from = self.local.role.ha_role();
        self.want_txid();
        if role != HaRole::None {
            self.handed_over.clear();
            self.forget_unanswered_lead();
            // Back in the lineage: what was read while outside it is no
            // longer the mark its data must keep (seed 20757687: a node that
            // was NONE once, then primary or secondary, was taken as
            // diverged for the commits it took or copied in the lineage).
            if !self.sabotaged(Sabotage::KeepOutsideReadAcrossLineage) {
                self.persisted.data.outside = None;
            }
        }
        if from != Some(role) {
            self.out.push(Output::RoleChanged {
                from,
                to: role,
                cause: cause.to_string(),
            });
        }
        let before = std::mem::replace(&mut self.local.role, LocalRole::Unknown);
        self.local.role = before.became(role);
        if from != Some(role) {
            self.listed_by = None;
        }
    }

    pub(crate) fn set_health(&mut self, health: Health, why: &str) {
        if self.local.health != health {
            let level = match (self.local.health, health) {
                (Health::Starting, Health::Ok) => Level::Debug,
                (_, Health::Ok) => Level::Info,
                _ => Level::Warn,
            };
            self.log(
                level,
                format!(
                    "local NSO/ConfD health {:?} -> {health:?}: {why}",
                    self.local.health
                ),
            );
            self.local.answered |= matches!(health, Health::Ok | Health::Refusing);
            if matches!(health, Health::Down | Health::Fenced) {
                self.note_server_stopped();
            }
            if health == Health::Ok {
                // A restarted server forgot its read-only mode.
                self.read_only_unknown();
                self.want_txid();
            }
            self.local.health = health;
        }
    }

    pub(crate) fn on_reply(&mut self, now: u64, id: u64, result: Result<HaReply, HaFailure>) {
        let Some(p) = self.pending.take().filter(|p| p.id == id) else {
            self.log(Level::Warn, format!("reply to unknown order {id} ignored"));
            return;
        };
        match result {
            Ok(reply) => {
                if !matches!(p.order, HaOrder::GetStatus) {
                    self.local.failures = 0;
                    self.retry_at = None;
                    self.failed_order = None;
                    self.repeats = 0;
                    self.failing = None;
                }
                let still_refusing = self.local.health == Health::Refusing
                    && matches!(p.order, HaOrder::GetStatus)
                    && self.local.refusing_until.is_some_and(|t| now < t)
                    && !self.sabotaged(Sabotage::RefusingEndsOnAnyAnswer);
                if !matches!(p.order, HaOrder::GetStatus) {
                    self.local.refusing_until = None;
                }
                // An answer to get_status says nothing of the start phase.
                if !still_refusing
                    && (self.local.health != Health::Fenced
                        || matches!(p.order, HaOrder::GetStatus))
                {
                    self.set_health(Health::Ok, "answered");
                }
                self.on_success(now, p, reply);
            }
            Err(failure) => self.on_failure(now, p, failure),
        }
    }

    pub(crate) fn on_success(&mut self, now: u64, p: Pending, reply: HaReply) {
        match (&p.order, reply) {
            (HaOrder::GetStatus, HaReply::Status { role, nodes }) => {
                self.on_status(role, nodes);
                self.status_answered = p.id;
                self.note_attached_in_ring();
            }
            (HaOrder::BePrimary { .. }, _) => {
                self.local.promoting = None;
                self.local.role_epoch = p.epoch;
                self.local.gen = 0;
                self.persisted.sync_loss = 0;
                self.persisted.role_epoch = p.epoch;
                self.forget_lost_sync();
                self.claim_lead(p.epoch);
                self.set_role(HaRole::Primary, &p.cause);
                // A new term: nobody is attached to it yet.
                self.local.role = LocalRole::Primary {
                    attached: BTreeSet::new(),
                };
            }
            (HaOrder::BeSecondary { .. }, _) => {
                self.set_role(HaRole::Secondary, &p.cause);
                self.local.role.follow(p.parent, true);
                self.local.role_epoch = p.epoch;
                self.persisted.role_epoch = p.epoch;
                self.persisted.sync_loss = 0;
                self.forget_lost_sync();
                self.adopt_fresh_from_parent();
            }
            (HaOrder::BeNone, _) => {
                // The server answers orders one at a time, also across a
                // new connection (confd-ha-wire §4.4): a beprimary that timed
                // out before this benone was applied or dropped by now, and
                // is no longer in flight. Its epoch stays claimed in
                // max_epoch. (Kept, it made a node out of quorum repeat
                // benone every step, scenario 57.)
                self.local.promoting = None;
                // benone on a primary clears read-only mode (as captured).
                self.read_only_unknown();
                // Only a handover passes the lead on; a `benone` on quorum
                // loss or lease loss does not (its secondaries may have
                // dropped out unseen).
                self.handed_over = if p.parent.is_some() {
                    self.local.role.attached()
                } else {
                    Vec::new()
                };
                self.set_role(HaRole::None, &p.cause);
                if self.leaving.is_some() {
                    self.log(Level::Info, "demoted for the handover");
                }
            }
            (HaOrder::BeRelay, _) => self.set_role(HaRole::Relay, &p.cause),
            (HaOrder::SecondaryDead { node }, _) => {
                // The server raises no SECONDARY_DIED for it: it was
                // counted when the order went out.
                let node = node.clone();
                if let Some(id) = self.cfg.id_of(&node) {
                    if self.sabotaged(Sabotage::BumpAfterSecondaryDead) {
                        self.shed(id);
                    }
                }
                self.log(
                    Level::Info,
                    format!(
                        "told NSO/ConfD that secondary {node} is dead (sync generation {})",
                        self.local.gen
                    ),
                );
            }
            (HaOrder::GetStatus, HaReply::Ok) => {}
        }
        self.status_at = self.status_at.max(now + self.cfg.status_interval);
    }

    /// The local server is, or may be, primary at `epoch`: it holds every
    /// write of that epoch from now on.
    pub(crate) fn claim_lead(&mut self, epoch: u64) {
        self.persisted.fresh = self.persisted.fresh.max(Fresh { epoch, gen: 0 });
        self.persisted.sync_loss = 0;
        self.persisted.led_epoch = self.persisted.led_epoch.max(epoch);
    }

    /// The server is told, or has said, that secondary `id` is gone: a new
    /// generation if it was attached.
    pub(crate) fn shed(&mut self, id: NodeId) {
        if self.local.role.detach(id) {
            self.bump_gen();
        }
    }

    /// A secondary dropped out: from now on only the primary and the
    /// secondaries still attached have every write.
    pub(crate) fn bump_gen(&mut self) {
        self.local.gen += 1;
        self.persist_attachment();
    }

    /// The primary's claim to the freshest data follows its sync generation
    /// only while it is quorate: only then can it acknowledge a write that
    /// invariant I2 protects, and outside quorum it is about to step down.
    pub(crate) fn claim_fresh(&mut self) {
        // A generation somebody announced for this primary's epoch (a
        // secondary that dropped out while its coroha was gone speaks for
        // it, design §7) is one it has reached: its next bump goes above
        // it, or two different sets of commits would share one number
        // (seed 21038709).
        let known = self.persisted.known_fresh;
        if self.local.role.is_primary() && known.epoch == self.local.role_epoch {
            self.local.gen = self.local.gen.max(known.gen);
        }
        if self.local.role.is_primary() && self.quorum.stable() && !self.coroha_minority() {
            let fresh = Fresh {
                epoch: self.local.role_epoch,
                gen: self.local.gen,
            };
            self.persisted.fresh = self.persisted.fresh.max(fresh);
        }
        self.hold_own_epoch();
    }

    pub(crate) fn persist_attachment(&mut self) {
        let attached = self.local.role.attached();
        if self.persisted.attached != attached || self.persisted.gen != self.local.gen {
            self.persisted.attached = attached;
            self.persisted.gen = self.local.gen;
        }
    }

    /// The local copy stopped following a primary that, as far as the
    /// delivered state shows, still serves: it may fall behind.
    pub(crate) fn note_sync_lost(&mut self, why: &str, cause: LossCause) {
        let Some(parent) = self.local.role.parent() else {
            return;
        };
        // A primary that the plan replaces steps down on purpose: no loss.
        let replaced = self
            .plan
            .as_ref()
            .is_some_and(|p| p.target.as_ref().map(Target::node) != Some(parent));
        if self.serves(parent) && !replaced && self.persisted.sync_loss == 0 {
            let fresh = self.persisted.fresh;
            let seen = self
                .view
                .states
                .values()
                .filter(|s| s.fresh == fresh)
                .map(|s| s.sync_loss)
                .max()
                .unwrap_or(0);
            self.persisted.sync_loss = seen + 1;
            self.record_lost_sync(parent, cause);
            let text = format!(
                "no longer in sync with primary {} ({why}; loss #{})",
                self.name(parent),
                seen + 1
            );
            self.log(Level::Info, text);
        }
    }

    /// Whether `primary`, the node this one follows, still serves as far as
    /// the delivered state shows: a member announcing itself primary of our
    /// epoch, or the orphan of that epoch the plan keeps.
    /// Not a member: the orphan the plan keeps, or the primary this node
    /// remembers; a view that a restart of the local corosync emptied says
    /// nothing about it (seed 20461367).
    fn serves(&self, primary: NodeId) -> bool {
        let epoch = self.local.role_epoch;
        if self.view.is_member(primary) {
            self.view
                .states
                .get(&primary)
                .is_some_and(|s| s.is_primary() && s.health == Health::Ok && s.role_epoch == epoch)
        } else {
            let remembered = !self.sabotaged(Sabotage::ForgetAcrossCorosyncRestart)
                && self
                    .known_primary()
                    .is_some_and(|k| k.node == primary && k.epoch == epoch);
            remembered
                || self.plan.as_ref().is_some_and(|p| {
                    matches!(&p.target, Some(Target::Orphan(k)) if k.node == primary && k.epoch == epoch)
                })
        }
    }

    /// After a ring change: the fellow secondaries whose nodes are no
    /// longer in the ring. Judged on the ring, not on the group's view: an
    /// orphaned primary has no coroha in the group, and only the ring says
    /// whether its node went with them.
    pub(crate) fn note_fellows_left_ring(&mut self) {
        let gone: Vec<NodeId> = self
            .fellows
            .nodes
            .iter()
            .copied()
            .filter(|n| !self.quorum.ring_members.contains(n))
            .collect();
        for fellow in gone {
            self.fellows.nodes.remove(&fellow);
            self.note_fellow_dropped(fellow);
        }
    }

    /// A fellow secondary's node left the ring while this node stayed in
    /// sync with a primary that still serves: from now on this node holds
    /// writes that one lacks, whether or not anybody's coroha bumps the
    /// primary's generation (nobody does for an orphan, design §12).
    fn note_fellow_dropped(&mut self, fellow: NodeId) {
        let Some(parent) = self.local.role.parent() else {
            return;
        };
        let epoch = self.local.role_epoch;
        // The set was taken for this primary at this freshness.
        let fellow_in_sync =
            self.fellows.parent == Some(parent) && self.fellows.fresh == self.persisted.fresh;
        // Its coroha may have left just before, so that no plan names it
        // an orphan yet: what this node remembers of it counts too.
        let orphan_serves = self.persisted.known_primary.as_ref().is_some_and(|r| {
            r.orphaned() && r.primary().node == parent && r.primary().epoch == epoch
        });
        // Its primary's node leaving in the same change ends this node's
        // sync too: it outlived nobody.
        let parent_in_ring = self.quorum.ring_members.contains(&parent);
        if fellow == parent
            || !parent_in_ring
            || !self.local.role.initialized()
            || !fellow_in_sync
            || !(self.serves(parent) || orphan_serves)
            || self.sabotaged(Sabotage::IgnoreFellowDrops)
        {
            return;
        }
        let fresh = self.persisted.fresh;
        let before = Some(self.persisted.outlived)
            .filter(|w| w.at == fresh)
            .map_or(0, |w| w.drops);
        self.persisted.outlived = Outlived {
            at: fresh,
            drops: before + 1,
        };
        let text = format!(
            "secondary {} dropped out while this node stayed in sync ({} at {fresh})",
            self.name(fellow),
            before + 1
        );
        self.log(Level::Info, text);
    }

    /// Keep track of which other nodes follow the same primary at the
    /// same freshness as this one (for [`Policy::note_fellow_dropped`]).
    pub(crate) fn track_fellow(&mut self, from: NodeId, state: &NodeState) {
        let parent = self.local.role.parent();
        let fresh = self.persisted.fresh;
        if self.fellows.parent != parent || self.fellows.fresh != fresh {
            self.fellows = Fellows {
                parent,
                fresh,
                nodes: BTreeSet::new(),
            };
        }
        let in_sync = parent.is_some()
            && state.parent == parent
            && state.initialized
            && state.role_epoch == self.local.role_epoch
            && state.fresh == fresh;
        if in_sync && from != self.cfg.me {
            self.fellows.nodes.insert(from);
        } else {
            self.fellows.nodes.remove(&from);
        }
    }

    /// A freshly attached secondary may already be listed by its primary.
    pub(crate) fn adopt_fresh_from_parent(&mut self) {
        if let Some(parent) = self.local.role.parent() {
            if let Some(ps) = self.view.states.get(&parent) {
                if ps.is_primary()
                    && ps.role_epoch == self.local.role_epoch
                    && ps.attached.contains(&self.cfg.me)
                {
                    self.persisted.fresh = self.persisted.fresh.max(Fresh {
                        epoch: ps.role_epoch,
                        gen: ps.gen,
                    });
                }
            }
        }
    }

    pub(crate) fn on_status(&mut self, role: HaRole, nodes: Vec<String>) {
        let ids: Vec<NodeId> = nodes.iter().filter_map(|n| self.cfg.id_of(n)).collect();
        match (self.local.role.ha_role(), role) {
            (None, _) => {
                // Restart adoption (rule 8): take over the role the server has.
                if role == HaRole::Primary && self.persisted.max_epoch > self.persisted.role_epoch {
                    // The promotion this node persisted before ordering it
                    // was applied after all (its reply was lost with the
                    // previous daemon): the role has that epoch.
                    self.persisted.role_epoch = self.persisted.max_epoch;
                    self.local.role_epoch = self.persisted.max_epoch;
                }
                let text = format!(
                    "adopting existing role {} (epoch {})",
                    role.name(),
                    self.persisted.role_epoch
                );
                let level = if role == HaRole::None {
                    Level::Debug
                } else {
                    Level::Info
                };
                self.log(level, text);
                self.set_role(role, "adopted at start");
                if role == HaRole::Primary {
                    self.local.role = LocalRole::Primary {
                        attached: self.persisted.attached.iter().copied().collect(),
                    };
                    self.local.gen = self.persisted.gen;
                    self.persisted.led_epoch = self.persisted.led_epoch.max(self.local.role_epoch);
                }
                // A secondary found running has its copy.
                self.local.role.follow(ids.first().copied(), true);
            }
            (Some(old), new) if old != new => {
                if !self.sabotaged(Sabotage::IgnoreOwnSilentLoss) {
                    // A restart into NONE raises no NOPRIMARY: the status
                    // answer is where this node learns it lost sync.
                    self.note_sync_lost(
                        &format!("NSO/ConfD reports {}", new.name()),
                        LossCause::Local,
                    );
                }
                self.set_role(new, &format!("observed: NSO/ConfD reports {}", new.name()));
                let initialized = self.local.role.initialized();
                self.local.role.follow(ids.first().copied(), initialized);
            }
            _ => {}
        }
        if let LocalRole::Primary { attached } = &mut self.local.role {
            let now_attached: BTreeSet<NodeId> = ids.into_iter().collect();
            let lost = attached.iter().any(|n| !now_attached.contains(n));
            *attached = now_attached;
            if lost {
                self.bump_gen();
            } else {
                self.persist_attachment();
            }
        }
    }

    pub(crate) fn on_failure(&mut self, now: u64, p: Pending, failure: HaFailure) {
        let verb = p.order.verb();
        if let HaOrder::SecondaryDead { node } = &p.order {
            // Not told after all: shed it again, after the back-off.
            if let Some(id) = self.cfg.id_of(node) {
                self.secondary_dead_sent.remove(&id);
            }
        }
        if matches!(p.order, HaOrder::BePrimary { .. }) && failure == HaFailure::Unreachable {
            // It did not become primary: nothing runs there. A timeout
            // leaves that open; a refusal (start phase 0) keeps the intent
            // and its epoch for the next try, so that retries do not climb
            // the epoch (the plan calls the intent off once the node is
            // Refusing and another node is chosen).
            self.local.promoting = None;
        }
        match failure {
            HaFailure::Timeout => {
                if self.local.health != Health::Hung
                    && !self.sabotaged(Sabotage::IgnoreOwnSilentLoss)
                {
                    // A frozen server takes no replication: its primary
                    // blocks commits for three ticks, then drops it and
                    // goes on without it. Its own NOPRIMARY comes only when
                    // it resumes, after secondaries that lost sync later.
                    self.note_sync_lost("NSO/ConfD does not answer", LossCause::Local);
                }
                if matches!(p.order, HaOrder::BePrimary { .. })
                    && !self.sabotaged(Sabotage::ForgetUnknownPromotion)
                {
                    // A hung server applies the order when it resumes and
                    // acknowledges commits until it is demoted or fenced
                    // (design §12): count it as done for freshness. That
                    // is sound even if it never happens: the node was
                    // elected as the freshest, and nobody else has been
                    // primary since (it counts as primary while promoting).
                    self.claim_lead(p.epoch);
                    self.note_unanswered_lead(Fresh {
                        epoch: p.epoch,
                        gen: 0,
                    });
                }
                self.set_health(Health::Hung, &format!("{verb} timed out"));
                if self.maybe_primary() && self.cfg.fence_hung_primary && !self.fence_running {
                    self.log(
                        Level::Warn,
                        "fencing the hung primary so that another node can take over",
                    );
                    self.fence_running = true;
                    self.out.push(Output::Fence);
                }
            }
            HaFailure::Unreachable => {
                self.note_sync_lost("NSO/ConfD is not running", LossCause::Local);
                self.set_health(Health::Down, &format!("{verb}: nothing listening"));
                if self.local.role != LocalRole::None {
                    self.set_role(HaRole::None, "NSO/ConfD is not running");
                }
            }
            HaFailure::Error(code) => {
                self.local.failures += 1;
                self.log(
                    Level::Warn,
                    format!(
                        "{verb} failed: {failure} ({} in a row)",
                        self.local.failures
                    ),
                );
                if matches!(p.order, HaOrder::BeSecondary { .. }) {
                    self.settle_lost_sync(p.parent, code);
                    self.on_attach_failed(now, p.parent, code);
                }
                let refused = self.local.failures >= self.cfg.max_order_failures;
                if refused && matches!(p.order, HaOrder::BePrimary { .. }) {
                    // Not a candidate any more: the intent goes, so that
                    // the next node elected need not wait for it.
                    self.local.promoting = None;
                    let hold = self.cfg.startup_settle.max(self.cfg.status_interval);
                    self.local.refusing_until = Some(now + hold);
                    self.set_health(
                        Health::Refusing,
                        &format!("{verb} refused {} times", self.local.failures),
                    );
                }
                if refused && p.order == HaOrder::BeNone && self.local.role.is_primary() {
                    // It will not stop being primary: escalate.
                    if self.cfg.has_fence && !self.fence_running {
                        self.log(
                            Level::Error,
                            "NSO/ConfD refuses to stop being primary: fencing it",
                        );
                        self.fence_running = true;
                        self.out.push(Output::Fence);
                    } else if !self.cfg.has_fence {
                        self.log(Level::Error, "NSO/ConfD refuses to stop being primary and no fence hook is configured");
                    }
                }
                // The server told us what it is now: ask.
                self.status_at = now;
            }
        }
        if !matches!(p.order, HaOrder::GetStatus) {
            // The same order failing again waits longer each time (1, 2,
            // 4, 8, 16 s): a cause that does not go away is not hammered
            // on, and what keeps failing is in the status.
            let again = self.failed_order.as_ref() == Some(&p.order);
            self.repeats = if again { self.repeats + 1 } else { 1 };
            let backoff = self.cfg.retry_interval << (self.repeats - 1).min(4);
            self.retry_at = Some(now + backoff);
            self.failing = Some(Failing::new(&p.order, failure, self.repeats));
            if let (HaFailure::Error(confd_ha::code::HA_BADTOKEN), 1) = (failure, self.repeats) {
                self.log(
                    Level::Error,
                    format!(
                        "{verb} refused with HA_BADTOKEN: this node's HA token differs from the one its \
                         primary was given; a configuration error, not a transient: check [ha] token or \
                         token_file on every node (retrying with back-off)"
                    ),
                );
            }
            self.failed_order = Some(p.order);
        }
        self.status_at = self.status_at.min(now + self.cfg.status_interval);
    }

    /// After a view change or a released hold, an order that kept failing
    /// is tried again at once: what it waits for may have changed (an
    /// orphan's grace is over, and its failure is now evidence).
    pub(crate) fn reset_backoff(&mut self) {
        self.repeats = 0;
        self.retry_at = None;
    }

    /// A failed attach to an orphaned primary, once its grace is over, is
    /// evidence that it no longer serves.
    pub(crate) fn on_attach_failed(&mut self, now: u64, parent: Option<NodeId>, code: i32) {
        let Some(Plan {
            target: Some(Target::Orphan(k)),
            wait: None,
            ..
        }) = &self.plan
        else {
            return;
        };
        // Only "nothing listens there" says the orphan stopped serving. Its
        // own server refusing the order (BADSTATE), a frozen orphan that
        // accepts and stays silent (HA_CLOSED), or one that answers with a
        // token or name error (it listens: it is still primary) prove
        // nothing about it. Nor does it while the orphan's own `beprimary`
        // may be in flight: a hung server listens once it resumes and
        // applies it.
        let evidence = (code == confd_ha::code::HA_CONNECT && !k.promotion_in_flight)
            || self.sabotaged(Sabotage::AnyAttachFailureProvesOrphanGone);
        if parent != Some(k.node) || !evidence {
            return;
        }
        let Some(ring) = self.quorum.vq_ring else {
            return;
        };
        if !self.quorum.ring_members.contains(&k.node) {
            // Unreachable is no evidence when its node is not with us.
            return;
        }
        let gone = (k.node, k.epoch);
        if self
            .evidence
            .as_ref()
            .is_some_and(|e| e.gone == gone && e.ring == ring)
        {
            return;
        }
        let wait = if self.sabotaged(Sabotage::EvidenceWithoutRingConfirm) {
            0
        } else {
            self.cfg.membership_detect
        };
        self.evidence = Some(Evidence {
            gone,
            ring,
            stands_at: now + wait,
        });
        self.confirm_evidence(now);
    }

    /// Evidence stands once the orphan's node has stayed in the same ring
    /// for corosync's detection time; a new ring voids it.
    pub(crate) fn confirm_evidence(&mut self, now: u64) {
        let Some(e) = self.evidence.clone() else {
            return;
        };
        let same_ring = self.quorum.vq_ring == Some(e.ring)
            && self.quorum.ring_members.contains(&e.gone.0)
            && self.quorum.totem.is_none_or(|t| t == e.ring);
        if !same_ring {
            self.evidence = None;
            return;
        }
        if now < e.stands_at {
            return;
        }
        self.evidence = None;
        if self.gone_reported.insert(e.gone) {
            self.multicast(Body::Request(Request::PrimaryGone {
                node: e.gone.0,
                epoch: e.gone.1,
            }));
        }
    }

    pub(crate) fn on_ha_event(&mut self, ev: HaEvent) {
        // Whoever caused it (another HA client too) may have changed the
        // server's read-only mode.
        self.read_only_unknown();
        match ev {
            HaEvent::NoPrimary(code) => {
                let cause = if code == confd_ha::code::HA_CLOSED {
                    LossCause::Closed
                } else {
                    LossCause::NoTick
                };
                self.note_sync_lost(&format!("NOPRIMARY {}", confd_ha::code::name(code)), cause);
                if let Some(parent) = self.local.role.parent() {
                    let me = self.cfg.me;
                    let epoch = self.local.role_epoch;
                    let still_listed = self
                        .view
                        .states
                        .get(&parent)
                        .is_none_or(|s| s.attached.contains(&me));
                    if still_listed {
                        self.reattach_block = Some((parent, epoch));
                    }
                }
                // While the role is unknown the status answer settles it:
                // the server answers it only after any order still pending
                // from a previous coroha (a `beprimary` a hung server
                // applies when it resumes), and this event may predate it.
                if self.local.role != LocalRole::Unknown
                    || self.sabotaged(Sabotage::RoleFromEventBeforeStatus)
                {
                    let why = format!("lost its primary ({})", confd_ha::code::name(code));
                    self.set_role(HaRole::None, &why);
                }
            }
            HaEvent::IsNone => {
                if self.local.role != LocalRole::Unknown {
                    self.set_role(HaRole::None, "NSO/ConfD reports none");
                }
            }
            HaEvent::IsPrimary => {}
            HaEvent::SecondaryDied(name) => {
                if let Some(id) = self.cfg.id_of(&name) {
                    if self.local.role.detach(id) {
                        self.bump_gen();
                        self.log(
                            Level::Info,
                            format!(
                                "secondary {name} detached (sync generation {})",
                                self.local.gen
                            ),
                        );
                    }
                }
            }
            HaEvent::SecondaryArrived(name) => {
                if let Some(id) = self.cfg.id_of(&name) {
                    if let LocalRole::Primary { attached } = &mut self.local.role {
                        attached.insert(id);
                        self.persist_attachment();
                    }
                }
            }
            HaEvent::SecondaryInitialized => {
                let parent = self.local.role.parent();
                self.local.role.follow(parent, true);
            }
            HaEvent::BeSecondaryResult(_) => {}
        }
    }

    pub(crate) fn on_fence_done(&mut self, ok: bool) {
        self.fence_running = false;
        if ok {
            self.set_health(Health::Fenced, "fence hook succeeded");
            self.set_role(HaRole::None, "fenced");
        } else {
            self.log(
                Level::Error,
                "fence hook failed; the local NSO/ConfD may still be primary",
            );
        }
    }
}

/// What keeps failing, for `coroha status`.
/// An order that keeps failing: what, why, how often in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failing {
    verb: &'static str,
    why: String,
    pub(crate) times: u32,
}

impl Failing {
    fn new(order: &HaOrder, failure: HaFailure, times: u32) -> Failing {
        let why = match failure {
            HaFailure::Error(confd_ha::code::HA_BADTOKEN) => {
                "HA_BADTOKEN: the HA token differs between nodes (a configuration error)"
                    .to_string()
            }
            HaFailure::Error(code) => confd_ha::code::name(code).to_string(),
            HaFailure::Timeout => "no answer in time".into(),
            HaFailure::Unreachable => "NSO/ConfD not reachable".into(),
        };
        Failing {
            verb: order.verb(),
            why,
            times,
        }
    }

    /// What the other nodes are told: it stays the same while the same
    /// order fails for the same reason, however often.
    pub(crate) fn reason(&self) -> String {
        format!("{}: {}", self.verb, self.why)
    }
}

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Failing { verb, why, times } = self;
        write!(f, "{verb} failed {times} time(s) in a row: {why}")
    }
}
