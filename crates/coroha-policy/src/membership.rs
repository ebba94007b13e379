//! What corosync tells this daemon: sessions, configuration changes, the
//! ring, quorum, and the announcements and requests delivered in a view;
//! then the plan every member computes from the same delivered state.

use crate::cause::Cause;
use crate::cluster::{ClusterEvent, Member, NodeId, Reason};
use crate::elect::{self, elect, ElectParams, Target, View};
use crate::message::{
    Body, Envelope, Fresh, Hold, KnownPrimary, NodeState, RememberedPrimary, Request,
};
use crate::{fnv1a, Level, Policy, Quorum, Sabotage};

impl Policy {
    // ----- corosync --------------------------------------------------------

    pub(crate) fn on_cluster(&mut self, now: u64, ev: ClusterEvent) {
        match ev {
            ClusterEvent::Connected { local } => {
                self.quorum = Quorum {
                    local: Some(local),
                    ..self.quorum.next_session(true)
                };
                self.view = View::default();
                self.plan = None;
                self.log(
                    Level::Info,
                    format!("connected to corosync as {}/{}", local.node, local.pid),
                );
            }
            ClusterEvent::Disconnected => {
                let text = if self.quorum.connected {
                    "corosync connection lost: not quorate until it is back"
                } else {
                    "corosync is not reachable: not quorate until it is"
                };
                self.quorum = self.quorum.next_session(false);
                self.view = View::default();
                self.plan = None;
                self.hold_timer = None;
                self.log(Level::Warn, text);
            }
            ClusterEvent::CpgConfChg {
                members,
                left,
                joined,
            } => self.on_confchg(members, left, joined),
            ClusterEvent::CpgTotem { ring, members } => {
                self.quorum.totem = Some(ring);
                self.quorum.ring_members = members.clone();
                self.note_fellows_left_ring();
                self.forget_shed_returned();
                self.judge_known_primary();
            }
            ClusterEvent::Deliver { sender, data } => {
                self.on_deliver(now, sender, Envelope::decode(&data));
            }
            ClusterEvent::QuorumNodes { ring, members } => {
                self.quorum.vq_ring = Some(ring);
                self.quorum.ring_members = members;
                self.forget_shed_returned();
                self.judge_known_primary();
            }
            ClusterEvent::Quorum { quorate, needed } => {
                self.quorum.needed = needed;
                if let Some(ring) = self.quorum.vq_ring {
                    let was = self.quorum.quorate.map(|(_, q)| q);
                    self.quorum.quorate = Some((ring, quorate));
                    if was != Some(quorate) {
                        let text = if quorate { "quorate" } else { "not quorate" };
                        self.log(Level::Info, format!("ring {ring}: {text}"));
                    }
                }
                self.judge_known_primary();
            }
        }
    }

    pub(crate) fn on_confchg(
        &mut self,
        members: Vec<Member>,
        left: Vec<(Member, Reason)>,
        joined: Vec<(Member, Reason)>,
    ) {
        // A node that went down is out of the ring already; the totem
        // callback that says so follows on the same fd.
        for (m, reason) in &left {
            if *reason == Reason::NodeDown {
                self.quorum.ring_members.retain(|n| *n != m.node);
            }
        }
        self.promoters_gone_unseen(&members, &left);
        for (m, reason) in &left {
            let orphaned = self.orphan_if_promoting(m.node, *reason);
            if !orphaned {
                self.vanish_if_promoting(m.node, *reason);
            }
            // Handled once: what it intended is not judged again.
            self.intents.remove(&m.node);
            if orphaned {
                continue;
            }
            self.win_fence_race(m.node, *reason);
            if self.known_primary().is_some_and(|k| k.node == m.node) {
                match reason {
                    Reason::NodeDown => {
                        self.forget_primary_unless(|n| n != m.node, "its node left the membership")
                    }
                    _ => {
                        self.log(
                            Level::Warn,
                            format!("coroha on primary {} left ({reason:?}); its NSO/ConfD may still be primary", self.name(m.node)),
                        );
                        self.remember_orphaned();
                    }
                }
            }
        }
        let describe = |list: &[(Member, Reason)]| {
            list.iter()
                .map(|(m, r)| format!("{}:{r:?}", self.cfg.name(m.node)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text = format!(
            "configuration: {} members{}{}",
            members.len(),
            if left.is_empty() {
                String::new()
            } else {
                format!(", left {}", describe(&left))
            },
            if joined.is_empty() {
                String::new()
            } else {
                format!(", joined {}", describe(&joined))
            },
        );
        self.log(Level::Debug, text);
        let digest = members.iter().fold(fnv1a(b"view"), |h, m| {
            fnv1a(
                &[
                    h.to_le_bytes(),
                    u64::from(m.node).to_le_bytes(),
                    u64::from(m.pid).to_le_bytes(),
                ]
                .concat(),
            )
        });
        self.view = View {
            id: digest,
            members,
            ..View::default()
        };
        self.reset_backoff();
        self.plan = None;
        self.hold_timer = None;
        // Announce in every new view, even when nothing changed locally.
        self.last_announced = None;
    }

    /// A shed secondary whose node is back in the ring may attach again;
    /// if it then leaves again, it must be shed again.
    fn forget_shed_returned(&mut self) {
        let ring = &self.quorum.ring_members;
        self.secondary_dead_sent.retain(|n| !ring.contains(n));
    }

    /// Judge the known primary against the ring and the view, after every
    /// ring, quorum or view change.
    ///
    /// - Its node is in the ring but its coroha is not in a complete view:
    ///   an orphan, even if this daemon never saw its coroha leave (it was
    ///   down itself meanwhile).
    /// - Its node is not in the ring and its coroha is in the view: that
    ///   coroha demotes it on the quorum loss (rule 7), so it is gone.
    /// - Its node is not in a quorate, stable ring and its coroha was in
    ///   the group when last seen (before this daemon restarted): gone for
    ///   the same reason. Not before the ring is quorate: a booting
    ///   corosync forms a ring of its own first, and forgetting then would
    ///   lose the primary before the real ring shows it orphaned.
    /// - An orphan whose node left the ring: nothing tells whether its
    ///   NSO/ConfD still serves; keep waiting for evidence.
    pub(crate) fn judge_known_primary(&mut self) {
        self.note_orphan_away();
        self.vanished_back_in_ring();
        let Some(known) = self.persisted.known_primary.clone() else {
            return;
        };
        let k = known.primary();
        let ring_known = self.quorum.totem.is_some() || self.quorum.vq_ring.is_some();
        if k.node == self.cfg.me || !ring_known {
            // Its own announcements speak for this node; and before
            // corosync has named a ring, nobody has left one.
            return;
        }
        let in_ring = self.quorum.ring_members.contains(&k.node);
        let in_view = self.view.is_member(k.node);
        if in_ring {
            if !in_view && self.view.complete() {
                self.remember_orphaned();
            }
        } else if in_view {
            self.forget_primary_unless(|n| n != k.node, "its node left the ring");
        } else if !known.orphaned() && self.quorum.stable() {
            self.forget_primary_unless(|n| n != k.node, "its node is not in the quorate ring");
        } else if known.orphaned() && self.orphan_out_of_ring_warned != Some(k.clone()) {
            self.orphan_out_of_ring_warned = Some(k.clone());
            self.log(
                Level::Warn,
                format!(
                    "orphaned primary {}: its node left the ring too; cannot tell whether its NSO/ConfD still serves: not promoting ({})",
                    k.name,
                    if self.cfg.fence_node {
                        "fencing it first"
                    } else {
                        "start coroha there, or confirm it down"
                    }
                ),
            );
        }
    }

    /// A primary that vanished with its node is back in the quorate ring
    /// without its coroha: its NSO/ConfD may serve again, alone (a frozen
    /// node that resumed after its coroha died, seed 46069218). It is an
    /// orphan to wait for and attach to, not a node to fence: fencing it
    /// and electing another node lost what it committed since it resumed.
    fn vanished_back_in_ring(&mut self) {
        let Some((node, epoch)) = self.persisted.vanished else {
            return;
        };
        // Shown gone (its server did not take an attach): not an orphan.
        let back = self.quorum.stable()
            && self.quorum.ring_members.contains(&node)
            && self.view.complete()
            && !self.view.is_member(node)
            && !self.view.gone.contains(&(node, epoch));
        if !back
            || self.sabotaged(Sabotage::FenceVanishedBackInRing)
            || self.known_primary().is_some_and(|k| k.epoch >= epoch)
        {
            return;
        }
        let Some(n) = self.cfg.node(node) else {
            return;
        };
        let k = KnownPrimary {
            node,
            epoch,
            name: n.name.clone(),
            address: n.address.clone(),
            promotion_in_flight: false,
        };
        self.log(
            Level::Warn,
            format!(
                "primary {} (epoch {epoch}) is back in the ring without its coroha: its NSO/ConfD may \
                 serve alone; waiting for it as an orphan",
                k.name
            ),
        );
        self.persisted.known_primary = Some(RememberedPrimary::Orphaned(k));
        self.persisted.vanished = None;
        // The hold for it, and its fence, are called off with the plan
        // that waited on it, until the next decision (the orphan's).
        let for_it =
            |h: &Hold| matches!(h, Hold::PromotionDelay { primary, .. } if *primary == node);
        if self.hold_timer.as_ref().is_some_and(|t| for_it(t.hold())) {
            self.hold_timer = None;
        }
        if self
            .plan
            .as_ref()
            .is_some_and(|p| p.wait.as_ref().is_some_and(for_it))
        {
            self.plan = None;
        }
    }

    /// A member that announced it was promoting itself left the group, but
    /// not with its node: its `beprimary` may still be in flight on its
    /// NSO/ConfD (a hung server applies it when it resumes), so it is an
    /// orphan at that epoch until shown gone (design §12). A node that went
    /// down with it is not: its server went with it, or its coroha, cut off
    /// from quorum, demotes it (rule 7).
    fn orphan_if_promoting(&mut self, node: NodeId, reason: Reason) -> bool {
        if reason == Reason::NodeDown || self.sabotaged(Sabotage::IgnoreOrderInFlightOfLeaver) {
            return false;
        }
        let Some(epoch) = self.announced_intent(node) else {
            return false;
        };
        let Some(n) = self.cfg.node(node) else {
            return false;
        };
        if self.known_primary().is_some_and(|k| k.epoch > epoch) {
            return false;
        }
        let k = KnownPrimary {
            node,
            epoch,
            name: n.name.clone(),
            address: n.address.clone(),
            promotion_in_flight: true,
        };
        self.log(
            Level::Warn,
            format!(
                "coroha on {} left ({reason:?}) while promoting it (epoch {epoch}): its NSO/ConfD may become primary",
                k.name
            ),
        );
        self.persisted.known_primary = Some(RememberedPrimary::Orphaned(k));
        self.persisted.vanished = None;
        true
    }

    /// A member whose last announcement intended a promotion, missing from
    /// the new view although this daemon never saw it leave (its own
    /// corosync connection was down meanwhile), left as far as anybody can
    /// tell: the rules for a promoter that leaves apply now, an orphan at
    /// that epoch if its node is in the ring, vanished if not (seed
    /// 115927196: the promoter's coroha was killed 8 ms after its
    /// `beprimary` as this node's corosync restarted, and this node, back
    /// in a view without it, helped elect a second primary).
    fn promoters_gone_unseen(&mut self, members: &[Member], left: &[(Member, Reason)]) {
        if self.sabotaged(Sabotage::ForgetPromoterGoneUnseen) {
            return;
        }
        let me = self.cfg.me;
        let unseen: Vec<NodeId> = self
            .intents
            .keys()
            .copied()
            .filter(|n| {
                *n != me
                    && !members.iter().any(|m| m.node == *n)
                    && !left.iter().any(|(m, _)| m.node == *n)
            })
            .collect();
        for node in unseen {
            let reason = if self.quorum.ring_members.contains(&node) {
                Reason::ProcDown
            } else {
                Reason::NodeDown
            };
            if !self.orphan_if_promoting(node, reason) {
                self.vanish_if_promoting(node, reason);
            }
            self.intents.remove(&node);
        }
    }

    /// The promotion a member last announced it intends, in this view or
    /// an earlier one: a member cut off right after a view change never
    /// announces again, and its `beprimary` may still be applied (seed
    /// 1576617975: cut off by one-way loss, it was promoted on its stuck
    /// ring while the others, in a new view without its announcement,
    /// elected another node at once).
    fn announced_intent(&self, node: NodeId) -> Option<u64> {
        match self.view.states.get(&node) {
            Some(state) => state.promoting,
            None if self.sabotaged(Sabotage::ForgetIntentAcrossViews) => None,
            None => self.intents.get(&node).copied(),
        }
    }

    /// A member that announced it was promoting itself went down with its
    /// node: its `beprimary` may have been applied, and nothing tells
    /// whether its coroha could demote it (stopped, or cut off while its
    /// corosync still shows it a quorate ring). It vanished like a primary:
    /// nobody is promoted before its lease has surely run out, and before
    /// it is fenced where a `fence_node` hook is configured (design §13).
    fn vanish_if_promoting(&mut self, node: NodeId, reason: Reason) {
        let promoting = self.announced_intent(node);
        if let (Reason::NodeDown, Some(epoch)) = (reason, promoting) {
            if self.persisted.vanished.is_none_or(|(_, e)| e <= epoch) {
                self.persisted.vanished = Some((node, epoch));
            }
        }
    }

    /// Two nodes with corosync's `two_node`: after a split each is quorate
    /// alone, and the other one will fence this primary after its delay.
    /// The primary fences first, so that a split leaves it standing.
    fn win_fence_race(&mut self, node: NodeId, reason: Reason) {
        if self.cfg.two_node
            && self.cfg.fence_node
            && reason == Reason::NodeDown
            && self.local.role.is_primary()
        {
            self.log(
                Level::Warn,
                format!(
                    "{} left a two_node cluster: fencing it before it can fence this primary",
                    self.name(node)
                ),
            );
            self.out.push(crate::Output::FenceNode { node });
        }
    }

    /// The known primary's coroha is not in the group: from now on only
    /// evidence, or its coroha's return, forgets it.
    fn remember_orphaned(&mut self) {
        if let Some(RememberedPrimary::Attended(k)) = &self.persisted.known_primary {
            self.persisted.known_primary = Some(RememberedPrimary::Orphaned(k.clone()));
        }
    }

    /// Clear the known primary when its node is gone from the ring: a
    /// partitioned or crashed primary is not an orphan to wait for.
    pub(crate) fn forget_primary_unless(&mut self, keep: impl Fn(NodeId) -> bool, why: &str) {
        if let Some(k) = self.known_primary().cloned() {
            if !keep(k.node) {
                self.log(
                    Level::Info,
                    format!("primary {} (epoch {}) is gone: {why}", k.name, k.epoch),
                );
                self.persisted.vanished = Some((k.node, k.epoch));
                self.persisted.known_primary = None;
            }
        }
    }

    pub(crate) fn on_deliver(
        &mut self,
        now: u64,
        sender: Member,
        decoded: Result<Envelope, String>,
    ) {
        let envelope = match decoded {
            Ok(e) => e,
            Err(e) => {
                self.log(
                    Level::Warn,
                    format!("ignored message from node {}: {e}", sender.node),
                );
                return;
            }
        };
        if envelope.view != self.view.id || !self.view.members.contains(&sender) {
            self.log(
                Level::Debug,
                format!(
                    "ignored message from {} for another view",
                    self.name(sender.node)
                ),
            );
            return;
        }
        self.heard.insert(sender.node, now);
        match envelope.body {
            Body::Announce(state) => {
                // While a primary stays, the decision reads no transaction
                // id (design §6): a new one alone, the common announcement
                // under load, need not be decided on again.
                let txid_only = self
                    .view
                    .states
                    .get(&sender.node)
                    .is_some_and(|old| old.same_but_txid(&state));
                let stays = self.plan_stays();
                let seen = self
                    .role_seen
                    .entry(sender.node)
                    .or_insert((state.role, now));
                if seen.0 != state.role {
                    *seen = (state.role, now);
                }
                self.on_announce(sender.node, *state);
                if txid_only && stays {
                    return;
                }
            }
            Body::Request(r) => self.on_request(sender.node, r),
            Body::Heartbeat { sent_at, txid } => {
                if self.quorum.local == Some(sender) {
                    self.on_heartbeat(now, sent_at);
                }
                let moved = self.note_heartbeat_txid(sender.node, txid);
                // Otherwise changes nothing the plan reads.
                if !moved || self.plan_stays() {
                    return;
                }
            }
        }
        if self.view.complete() {
            self.replan();
        }
    }

    pub(crate) fn on_announce(&mut self, from: NodeId, state: NodeState) {
        self.adopt_pause(state.pause);
        if state.config_digest != self.cfg.digest && from != self.cfg.me {
            self.log(
                Level::Warn,
                format!(
                    "{} runs a different node table or policy (digest {:x})",
                    state.name, state.config_digest
                ),
            );
        }
        self.note_known_mark(state.mark(), state.known_mark());
        if state.is_primary() {
            let newer = self
                .known_primary()
                .is_none_or(|k| state.role_epoch >= k.epoch);
            if newer {
                self.persisted.known_primary = Some(RememberedPrimary::Attended(KnownPrimary {
                    node: from,
                    epoch: state.role_epoch,
                    name: state.name.clone(),
                    address: state.address.clone(),
                    promotion_in_flight: false,
                }));
                self.persisted.vanished = None;
            }
        } else if state.role.is_some()
            && (state.answered || self.sabotaged(Sabotage::TrustOrphanBackUnheard))
            && self.known_primary().is_some_and(|k| k.node == from)
        {
            // Its own server says it is not primary. Before that server has
            // answered, its coroha cannot say what it did while nobody
            // watched: an orphan stays one (design §7, seed 80563403).
            self.persisted.known_primary = None;
        }
        self.track_fellow(from, &state);
        self.note_lineup(from, &state);
        // Others' claims only: this node's own are in `max_epoch`, and
        // counting its own intent here would change what it announces
        // before it may act on it.
        if from != self.cfg.me && !self.sabotaged(Sabotage::ReuseEpochOfVanishedPromotion) {
            let claimed = state
                .max_epoch
                .max(state.role_epoch)
                .max(state.promoting.unwrap_or(0));
            self.persisted.seen_epoch = self.persisted.seen_epoch.max(claimed);
        }
        // A primary listing us as attached confirms our copy is in sync.
        let me = self.cfg.me;
        if self.reattach_block.is_some_and(|(n, e)| {
            n == from && (state.role_epoch != e || !state.attached.contains(&me))
        }) {
            self.reattach_block = None;
        }
        let following = state.is_primary()
            && self.local.role.parent() == Some(from)
            && self.local.role_epoch == state.role_epoch
            && self.local.role.initialized();
        // A primary bumps its generation when secondaries drop out, and
        // lists the ones still attached. Not listed at a generation above
        // this node's, it was dropped, whatever its own server last said:
        // a restarted server is only seen at the next status (seed
        // 62075938: a secondary took the generation its primary reached
        // alone, and was elected without its commits).
        if following
            && !state.attached.contains(&me)
            && self.listed_by == Some((from, state.role_epoch))
            && state.gen > self.persisted.fresh.gen
            && !self.sabotaged(Sabotage::KeepSyncWhenUnlisted)
        {
            let why = format!(
                "{} went on to generation {} without it",
                state.name, state.gen
            );
            self.note_sync_lost(&why, crate::lone::LossCause::Dropped);
        }
        if following && state.attached.contains(&me) {
            self.listed_by = Some((from, state.role_epoch));
            self.persisted.fresh = self.persisted.fresh.max(Fresh {
                epoch: state.role_epoch,
                gen: state.gen,
            });
            self.persisted.sync_loss = 0;
        }
        match state.promoting {
            Some(epoch) => self.intents.insert(from, epoch),
            None => self.intents.remove(&from),
        };
        self.view.states.insert(from, state);
    }

    pub(crate) fn on_request(&mut self, from: NodeId, request: Request) {
        let who = self.name(from);
        match request {
            Request::Switchover { to } => {
                // Resolve "the best other node" now, while the primary that
                // is to be replaced is known, so everybody holds one target.
                let current = self
                    .plan
                    .as_ref()
                    .and_then(|p| p.target.as_ref())
                    .map(Target::node);
                let target = to.or_else(|| elect::best_other(&self.view, current));
                match target {
                    Some(t) => {
                        let text = format!("switchover to {} requested by {who}", self.name(t));
                        self.log(Level::Info, text);
                        self.view.switchover = Some(t);
                    }
                    None => self.log(
                        Level::Warn,
                        format!("switchover requested by {who}: no other node can take over"),
                    ),
                }
            }
            Request::Standby { node, on } => {
                self.log(
                    Level::Info,
                    format!(
                        "standby {} for {} requested by {who}",
                        if on { "on" } else { "off" },
                        self.name(node)
                    ),
                );
                self.view.standby.insert(node, on);
                if node == self.cfg.me {
                    self.persisted.standby = on;
                }
            }
            Request::Release(hold) => {
                let held = match hold {
                    Hold::PromotionDelay { primary, epoch } => format!(
                        "the wait before replacing vanished primary {} (epoch {epoch})",
                        self.name(primary)
                    ),
                    Hold::OrphanGrace { primary, epoch } => format!(
                        "the grace for orphaned primary {} (epoch {epoch})",
                        self.name(primary)
                    ),
                    Hold::Failback { to, epoch } => format!(
                        "the failback delay before {} takes over (epoch {epoch})",
                        self.name(to)
                    ),
                };
                self.log(Level::Info, format!("{held} elapsed"));
                self.reset_backoff();
                if self.hold_timer.as_ref().is_some_and(|t| *t.hold() == hold) {
                    self.hold_timer = None;
                }
                self.view.released.insert(hold);
            }
            Request::PrimaryGone { node, epoch } => {
                self.log(
                    Level::Warn,
                    format!(
                        "{who} shows primary {} (epoch {epoch}) no longer serves",
                        self.name(node)
                    ),
                );
                self.view.gone.insert((node, epoch));
                if self
                    .known_primary()
                    .is_some_and(|k| k.node == node && k.epoch == epoch)
                {
                    self.persisted.known_primary = None;
                    self.persisted.vanished = Some((node, epoch));
                }
            }
            Request::Pause(pause) => {
                let what = if pause.on { "pause" } else { "resume" };
                self.log(Level::Warn, format!("cluster {what} requested by {who}"));
                self.adopt_pause(pause);
            }
        }
    }

    /// The newest word on the pause, heard in a request or an announcement.
    /// A request writes the generation after the one its node knows, so
    /// two made in two partitions can write the same one, a pause and a
    /// resume. The resume wins there, on every node alike: otherwise each
    /// side keeps its own word for good, and a node paused alone never
    /// follows the primary the others elected (seed 185334577: a pause
    /// taken only by a node cut off in a minority and later fenced, a
    /// resume taken by the others at the same generation; the node booted
    /// paused and never attached). It is also the state in which a lost
    /// primary is replaced.
    pub(crate) fn adopt_pause(&mut self, pause: crate::message::Pause) {
        let current = self.persisted.pause;
        let tie_resumes = pause.gen == current.gen
            && current.on
            && !pause.on
            && !self.sabotaged(Sabotage::KeepOwnPauseOnTie);
        if pause.gen > current.gen || tie_resumes {
            self.persisted.pause = pause;
        }
    }

    pub(crate) fn replan(&mut self) {
        self.judge_known_primary();
        let params = ElectParams {
            failback: self.cfg.failback,
            switchover_waits_for_vanished: !self.sabotaged(Sabotage::SwitchoverPastVanished),
            orphan_back_speaks_once_heard: !self.sabotaged(Sabotage::TrustOrphanBackUnheard),
        };
        let plan = elect(&self.view, params);
        let changed = self.plan.as_ref().is_none_or(|p| {
            p.target != plan.target || p.epoch != plan.epoch || p.cause != plan.cause
        });
        if changed {
            // A new decision may rest on this node's data: say where it is.
            self.want_txid();
            let who = match &plan.target {
                Some(t) => format!("{} (epoch {})", self.name(t.node()), plan.epoch),
                None => "none".into(),
            };
            self.log(
                Level::Info,
                format!("decision: primary {who}: {}", plan.cause),
            );
        }
        if let Some(Target::Member(t)) = &plan.target {
            if self.view.switchover.is_some()
                && self
                    .view
                    .states
                    .get(t)
                    .is_some_and(|s| s.is_primary() && s.role_epoch == plan.epoch)
            {
                // The switchover is done once its target is primary.
                if self.plan.as_ref().is_some_and(|p| p.target == plan.target)
                    && matches!(plan.cause, Cause::Stays { .. })
                {
                    self.view.switchover = None;
                }
            }
        }
        self.plan = Some(plan);
    }
}
