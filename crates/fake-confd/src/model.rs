//! The HA behaviour of one NSO/ConfD node as observed on ConfD 8.2.5, for
//! `fake-confd`. A pure state machine: an order, a link event or a join
//! attempt goes in; the replies, events and link actions come out in the
//! order the real server produced them (`beprimary` replies, then raises
//! IS_PRIMARY; `benone` raises IS_NONE first). The I/O (sockets, the links
//! between fake nodes, timers) lives in the `fake-confd` binary.
//!
//! Node ids and addresses are kept as the terms the orders gave: the real
//! server stores any term and echoes it verbatim (atoms, Erlang strings).

use confd_ha::code;
use confd_ha::wire::{as_int, as_tuple, decode_term, Event, Reply};
use eetf::Term;

pub const NONE: i32 = 1;
pub const SECONDARY: i32 = 2;
pub const PRIMARY: i32 = 3;
pub const RELAY: i32 = 4;

pub use confd_ha::wire::state_name;

/// A `besecondary` that needs a link to the primary.
#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    pub me: Term,
    pub primary: Term,
    /// As the order gave it: a 4- or 8-tuple, or a name to resolve.
    pub address: Term,
    pub wait: bool,
}

/// What the server does, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Reply(Reply),
    Event(Event),
    /// Close the HA control socket without a reply (the node's HA
    /// component restarts).
    CloseHaSocket,
    /// Connect to a primary and join it; the outcome goes to
    /// [`FakeNode::join_done`].
    Join(Join),
    /// Close the link to our primary (it sees SECONDARY_DIED).
    DropUplink,
    /// Close every link to our secondaries (each sees NOPRIMARY 26).
    DropDownlinks,
    /// Close the link to one secondary.
    DropDownlink(Term),
    /// Have the relay `relay` (a secondary of ours) drop `id`, which is
    /// attached behind it.
    DropBehind {
        relay: Term,
        id: Term,
    },
}

/// How the node answers a secondary asking to join it.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    Welcome,
    Refuse(i32),
    /// An integer node id knocks a real primary's HA over: it drops to
    /// NONE and closes its own HA socket; the joiner sees the link close.
    KnockedOver(Vec<Effect>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attached {
    pub id: Term,
    /// The source address of the secondary's link.
    pub addr: Term,
    /// The relay it joined through, if any.
    pub via: Option<Term>,
}

/// An order as the server reads it: ids and addresses may be any term.
#[derive(Clone, Debug, PartialEq)]
enum RawOrder {
    BePrimary(Term),
    BeSecondary(Join),
    BeNone,
    GetStatus,
    SecondaryDead(Term),
    BeRelay,
}

/// Why an order could not be read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Malformed {
    /// `{error, 21}`; the socket stays usable.
    Usage,
    /// WaitReply other than 0/1, or an address tuple of the wrong size:
    /// the real server closes the socket and its HA falls to NONE.
    KnocksOver,
}

fn read_order(payload: &[u8]) -> Result<RawOrder, Malformed> {
    let term = decode_term(payload).map_err(|_| Malformed::Usage)?;
    let items = as_tuple(&term).ok_or(Malformed::Usage)?;
    let kind = items.first().and_then(as_int).ok_or(Malformed::Usage)?;
    Ok(match (kind, items.len()) {
        (1, 2) => RawOrder::BePrimary(items[1].clone()),
        (2, 4) => {
            let Some([primary, address]) = as_tuple(&items[2]) else {
                return Err(Malformed::Usage);
            };
            let wait = match as_int(&items[3]) {
                Some(0) => false,
                Some(1) => true,
                _ => return Err(Malformed::KnocksOver),
            };
            match address {
                Term::Tuple(t) if t.elements.len() != 4 && t.elements.len() != 8 => {
                    return Err(Malformed::KnocksOver)
                }
                Term::Tuple(_) | Term::Binary(_) | Term::Atom(_) | Term::ByteList(_) => {}
                _ => return Err(Malformed::Usage),
            }
            RawOrder::BeSecondary(Join {
                me: items[1].clone(),
                primary: primary.clone(),
                address: address.clone(),
                wait,
            })
        }
        (3, 1) => RawOrder::BeNone,
        (4, 1) => RawOrder::GetStatus,
        (5, 2) => RawOrder::SecondaryDead(items[1].clone()),
        (6, 1) => RawOrder::BeRelay,
        _ => return Err(Malformed::Usage),
    })
}

#[derive(Clone, Debug)]
pub struct FakeNode {
    /// Start phase 0: only get_status works.
    pub phase0: bool,
    pub state: i32,
    /// The node id it was last given (a primary is not renamed by a second
    /// beprimary).
    pub id: Option<Term>,
    /// Our primary's id and address, as the besecondary order gave them.
    pub primary: Option<(Term, Term)>,
    /// Attached secondaries, newest first, including those behind a relay.
    pub secondaries: Vec<Attached>,
    /// The replicated write counter, which is also the CDB transaction id:
    /// each commit takes the wall clock in microseconds (or one more than
    /// the last, if the clock is behind), as the real server stamps a
    /// commit with its time. 0 is a node that never had data (`{0,0,0}`).
    pub txid: u64,
    /// The node id `cdb_get_txid` tags the txid with (confd-ipc-wire §6):
    /// `beprimary` tags an untagged one with the node's own id, a commit as
    /// primary with its own, a replicated one with its primary's; `benone`
    /// on a primary drops it; a joining secondary already at its primary's
    /// txid keeps its own form.
    pub txid_primary: Option<Term>,
    /// MAAPI read-only mode: commits are refused. Node-wide, not kept
    /// across a restart, cleared by `benone` on a primary (as captured,
    /// confd-ipc-wire §4).
    pub read_only: bool,
    /// Every state it had, in order.
    pub history: Vec<i32>,
}

impl FakeNode {
    pub fn new(phase0: bool, txid: u64) -> FakeNode {
        FakeNode {
            phase0,
            state: NONE,
            id: None,
            primary: None,
            secondaries: vec![],
            txid,
            txid_primary: None,
            read_only: false,
            history: vec![NONE],
        }
    }

    /// The CDB file's contents: the transaction id and the node id it is
    /// tagged with. A real server keeps both across a restart
    /// (confd-ipc-wire §6, "restart: unchanged, NodeId included").
    pub fn cdb_file(&self) -> String {
        match &self.txid_primary {
            Some(id) => format!("{} {}\n", self.txid, Reply::node_name(id)),
            None => format!("{}\n", self.txid),
        }
    }

    /// A node whose CDB file (see [`FakeNode::cdb_file`]) says `text`.
    pub fn from_cdb_file(phase0: bool, text: &str) -> FakeNode {
        let mut words = text.split_whitespace();
        let txid = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        let mut node = FakeNode::new(phase0, txid);
        node.txid_primary = words
            .next()
            .map(|id| Term::from(eetf::Binary::from(id.as_bytes().to_vec())));
        node
    }

    /// Commit one transaction as primary at wall-clock time `now_us`.
    pub fn commit(&mut self, now_us: u64) -> u64 {
        self.txid = (self.txid + 1).max(now_us);
        self.txid_primary = self.id.clone();
        self.txid
    }

    /// A commit replicated from our primary.
    pub fn replicated(&mut self, txid: u64) {
        if txid > self.txid {
            self.txid = txid;
            self.txid_primary = self.primary.as_ref().map(|(id, _)| id.clone());
        }
    }

    /// What `cdb_get_txid` answers.
    pub fn cdb_txid(&self) -> confd_ha::Txid {
        confd_ha::Txid {
            stamp: confd_ha::TxStamp::from_micros(self.txid),
            primary: self.txid_primary.as_ref().map(Reply::node_name),
        }
    }

    fn set_state(&mut self, state: i32) {
        self.state = state;
        if self.history.last() != Some(&state) {
            self.history.push(state);
        }
        if state != SECONDARY && state != RELAY {
            self.primary = None;
        }
        if state != PRIMARY && state != RELAY {
            self.secondaries.clear();
        }
    }

    /// The link actions that leave the current role.
    fn leave_role(&self) -> Vec<Effect> {
        let mut out = vec![];
        if matches!(self.state, SECONDARY | RELAY) {
            out.push(Effect::DropUplink);
        }
        if matches!(self.state, PRIMARY | RELAY) {
            out.push(Effect::DropDownlinks);
        }
        out
    }

    fn status(&self) -> Reply {
        let attached = self
            .secondaries
            .iter()
            .map(|s| (s.id.clone(), s.addr.clone()));
        let nodes = match self.state {
            PRIMARY => attached.collect(),
            SECONDARY => self.primary.iter().cloned().collect(),
            RELAY => self.primary.iter().cloned().chain(attached).collect(),
            _ => vec![],
        };
        Reply::Status {
            state: self.state,
            nodes,
        }
    }

    /// Serve one frame of the HA socket.
    pub fn frame(&mut self, payload: &[u8]) -> Vec<Effect> {
        match read_order(payload) {
            Ok(order) => self.order(order),
            Err(Malformed::KnocksOver) => {
                let mut out = self.leave_role();
                self.set_state(NONE);
                out.push(Effect::CloseHaSocket);
                out
            }
            Err(Malformed::Usage) => vec![Effect::Reply(Reply::Error(code::PROTOUSAGE))],
        }
    }

    fn order(&mut self, order: RawOrder) -> Vec<Effect> {
        if self.phase0 && order != RawOrder::GetStatus {
            return match order {
                RawOrder::BeSecondary(Join { wait: false, .. }) => {
                    vec![Effect::Event(Event::BeSecondaryResult(code::BADSTATE))]
                }
                _ => vec![Effect::Reply(Reply::Error(code::BADSTATE))],
            };
        }
        let ok = Effect::Reply(Reply::Ok);
        match order {
            RawOrder::GetStatus => vec![Effect::Reply(self.status())],
            RawOrder::BePrimary(me) => {
                if self.state == PRIMARY {
                    return vec![ok];
                }
                let mut out = self.leave_role();
                // A relay made primary starts with nobody: the secondaries
                // it relayed for are disconnected and may join it anew.
                self.secondaries.clear();
                if self.txid_primary.is_none() {
                    self.txid_primary = Some(me.clone());
                }
                self.id = Some(me);
                self.set_state(PRIMARY);
                out.extend([ok, Effect::Event(Event::IsPrimary(0))]);
                out
            }
            RawOrder::BeNone => {
                if self.state == PRIMARY {
                    self.read_only = false;
                    self.txid_primary = None;
                }
                let mut out = self.leave_role();
                self.set_state(NONE);
                out.extend([Effect::Event(Event::IsNone(0)), ok]);
                out
            }
            // A relay refuses it, whether or not it relays for anybody.
            RawOrder::SecondaryDead(_) if self.state == RELAY => {
                vec![Effect::Reply(Reply::Error(code::BADSTATE))]
            }
            RawOrder::SecondaryDead(id) => {
                if self.state != PRIMARY {
                    return vec![ok];
                }
                let mut out = self.drop_secondary(&id);
                out.push(ok);
                out
            }
            RawOrder::BeRelay => match self.state {
                SECONDARY | RELAY => {
                    self.set_state(RELAY);
                    vec![ok]
                }
                _ => vec![Effect::Reply(Reply::Error(code::BADSTATE))],
            },
            RawOrder::BeSecondary(join) => self.be_secondary(join),
        }
    }

    fn be_secondary(&mut self, join: Join) -> Vec<Effect> {
        let current = Some((join.primary.clone(), join.address.clone()));
        let same = matches!(self.state, SECONDARY | RELAY)
            && self.primary == current
            && self.id.as_ref() == Some(&join.me);
        if same {
            // Already there: answered at once. On a relay it stops relaying.
            let mut out = vec![];
            if self.state == RELAY {
                out.push(Effect::DropDownlinks);
                self.set_state(SECONDARY);
            }
            out.push(if join.wait {
                Effect::Reply(Reply::Ok)
            } else {
                Effect::Event(Event::BeSecondaryResult(0))
            });
            return out;
        }
        // Leave the current role first; this is also why besecondary to
        // itself fails with HA_CONNECT: it no longer accepts secondaries.
        let mut out = self.leave_role();
        self.set_state_quietly_none();
        out.push(Effect::Join(join));
        out
    }

    /// NONE while a join is under way, without the IS_NONE a real node
    /// only raises if the join fails.
    fn set_state_quietly_none(&mut self) {
        self.state = NONE;
        self.primary = None;
        self.secondaries.clear();
    }

    /// The outcome of a join: the primary's write counter, or an error code.
    pub fn join_done(&mut self, join: &Join, outcome: Result<u64, i32>) -> Vec<Effect> {
        match outcome {
            Ok(txid) => {
                self.id = Some(join.me.clone());
                if self.txid != txid {
                    self.txid_primary = Some(join.primary.clone());
                }
                self.txid = txid;
                self.set_state(SECONDARY);
                self.primary = Some((join.primary.clone(), join.address.clone()));
                let done = if join.wait {
                    Effect::Reply(Reply::Ok)
                } else {
                    Effect::Event(Event::BeSecondaryResult(0))
                };
                vec![done, Effect::Event(Event::SecondaryInitialized(1))]
            }
            Err(c) => {
                self.set_state(NONE);
                let failed = if join.wait {
                    Effect::Reply(Reply::Error(c))
                } else {
                    Effect::Event(Event::BeSecondaryResult(c))
                };
                vec![failed, Effect::Event(Event::IsNone(0))]
            }
        }
    }

    /// Our link to the primary closed (26) or stopped ticking (31).
    pub fn primary_lost(&mut self, code: i32) -> Vec<Effect> {
        if !matches!(self.state, SECONDARY | RELAY) {
            return vec![];
        }
        let mut out = vec![];
        if self.state == RELAY {
            out.push(Effect::DropDownlinks);
        }
        self.set_state(NONE);
        out.extend([
            Effect::Event(Event::NoPrimary(code)),
            Effect::Event(Event::IsNone(0)),
        ]);
        out
    }

    /// Drop secondary `id` on purpose (`secondary_dead`, or as a relay,
    /// our primary's word): no SECONDARY_DIED for it, since it sees its
    /// link close, but one for each node that was behind it (a relay).
    /// One behind a relay of ours is dropped by that relay.
    pub fn drop_secondary(&mut self, id: &Term) -> Vec<Effect> {
        let Some(entry) = self.secondaries.iter().find(|s| &s.id == id).cloned() else {
            return vec![];
        };
        let (behind, kept): (Vec<_>, Vec<_>) = self
            .secondaries
            .drain(..)
            .filter(|s| &s.id != id)
            .partition(|s| s.via.as_ref() == Some(id));
        self.secondaries = kept;
        let mut out = vec![match entry.via {
            None => Effect::DropDownlink(id.clone()),
            Some(relay) => Effect::DropBehind {
                relay,
                id: id.clone(),
            },
        }];
        if self.state == PRIMARY {
            out.extend(behind.into_iter().map(|s| {
                Effect::Event(Event::SecondaryDied {
                    id: s.id,
                    addr: s.addr,
                })
            }));
        }
        out
    }

    /// A secondary asks to join us: token first, then the names.
    pub fn admit(&mut self, token_matches: bool, primary: &Term, me: &Term) -> Admission {
        if !matches!(self.state, PRIMARY | RELAY) {
            return Admission::Refuse(code::HA_CONNECT);
        }
        if !token_matches {
            return Admission::Refuse(code::HA_BADTOKEN);
        }
        // A name already attached directly is taken. One listed behind a
        // relay may be that very node moving up to us before its relay
        // has told us it left (the real server takes it, 5 of 5 runs).
        let taken = self
            .secondaries
            .iter()
            .any(|s| &s.id == me && s.via.is_none());
        if self.id.as_ref() != Some(primary) || taken {
            return Admission::Refuse(code::HA_BADNAME);
        }
        if matches!(me, Term::FixInteger(_) | Term::BigInteger(_)) {
            let mut out = self.leave_role();
            self.set_state(NONE);
            out.extend([Effect::CloseHaSocket, Effect::Event(Event::IsNone(0))]);
            return Admission::KnockedOver(out);
        }
        Admission::Welcome
    }

    /// A secondary joined (directly, or behind the relay `via`). Only the
    /// top primary raises SECONDARY_ARRIVED; a relay passes it up.
    pub fn secondary_arrived(&mut self, id: Term, addr: Term, via: Option<Term>) -> Vec<Effect> {
        // It replaces what was listed for it behind a relay (it moved).
        self.secondaries.retain(|s| s.id != id);
        self.secondaries.insert(
            0,
            Attached {
                id: id.clone(),
                addr: addr.clone(),
                via,
            },
        );
        if self.state == PRIMARY {
            vec![Effect::Event(Event::SecondaryArrived { id, addr })]
        } else {
            vec![]
        }
    }

    /// A secondary's link closed or stopped ticking (`via`: the relay that
    /// reports it, or `None` for our own link); those that came through
    /// it (if it was a relay) are gone with it, after it: the real top
    /// primary raises SECONDARY_DIED for a relay first, then for the nodes
    /// behind it (6 of 6 runs).
    pub fn secondary_gone(&mut self, id: &Term, via: Option<&Term>) -> Vec<Effect> {
        let Some(k) = self
            .secondaries
            .iter()
            .position(|s| &s.id == id && s.via.as_ref() == via)
        else {
            // Already dropped, or it moved and is listed anew.
            return vec![];
        };
        let node = self.secondaries.remove(k);
        let (behind, kept): (Vec<_>, Vec<_>) = self
            .secondaries
            .drain(..)
            .partition(|s| s.via.as_ref() == Some(id));
        self.secondaries = kept;
        if self.state != PRIMARY {
            return vec![];
        }
        std::iter::once(node)
            .chain(behind)
            .map(|s| {
                Effect::Event(Event::SecondaryDied {
                    id: s.id,
                    addr: s.addr,
                })
            })
            .collect()
    }

    /// Leave start phase 0.
    pub fn start_phase1(&mut self) {
        self.phase0 = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confd_ha::wire::{bin, encode_term, int, tuple, Address, Order};

    fn order(node: &mut FakeNode, o: Order) -> Vec<Effect> {
        node.frame(&encode_term(&o.to_term()))
    }

    fn join(primary: &str, wait: bool) -> Order {
        Order::BeSecondary {
            me: "n4".into(),
            primary: primary.into(),
            address: Address::V4([127, 0, 0, 3]),
            wait,
        }
    }

    #[test]
    fn a_join_leaves_the_old_role_then_reports_its_outcome() {
        let mut n = FakeNode::new(false, 0);
        order(&mut n, Order::BePrimary { me: "n4".into() });
        let out = order(&mut n, join("n3", true));
        assert_eq!(out[0], Effect::DropDownlinks);
        let Effect::Join(j) = out[1].clone() else {
            panic!("{out:?}")
        };
        assert_eq!(n.state, NONE);
        let done = n.join_done(&j, Ok(7));
        assert_eq!(
            done,
            vec![
                Effect::Reply(Reply::Ok),
                Effect::Event(Event::SecondaryInitialized(1))
            ]
        );
        assert_eq!((n.state, n.txid), (SECONDARY, 7));
        assert_eq!(n.history, vec![NONE, PRIMARY, SECONDARY]);
        // The same order again is answered at once, with no link work.
        assert_eq!(
            order(&mut n, join("n3", true)),
            vec![Effect::Reply(Reply::Ok)]
        );
    }

    #[test]
    fn the_txid_tag_follows_the_captured_rules() {
        let mut n = FakeNode::new(false, 0);
        assert!(n.cdb_txid().stamp.is_empty(), "no data: {{0,0,0}}");
        order(&mut n, Order::BePrimary { me: "n1".into() });
        let first = n.commit(5_000_000);
        assert_eq!(n.commit(0), first + 1, "never backwards on a slow clock");
        assert_eq!(n.cdb_txid().primary.as_deref(), Some("n1"));
        order(&mut n, Order::BeNone);
        assert_eq!(n.cdb_txid().primary, None, "benone on a primary drops it");
        // Joined to n3 at another commit: n3's data and tag.
        let out = order(&mut n, join("n3", true));
        let Effect::Join(j) = out[0].clone() else {
            panic!("{out:?}")
        };
        n.join_done(&j, Ok(first + 7));
        assert_eq!(n.cdb_txid().primary.as_deref(), Some("n3"));
        assert_eq!(
            n.cdb_txid().stamp,
            confd_ha::TxStamp::from_micros(first + 7)
        );
        // Promoted: the replicated tag stays until its first commit.
        order(&mut n, Order::BeNone);
        order(&mut n, Order::BePrimary { me: "n1".into() });
        assert_eq!(n.cdb_txid().primary.as_deref(), Some("n3"));
    }

    #[test]
    fn a_restart_keeps_the_txid_and_its_tag() {
        // As captured: "restart (stop/start or SIGKILL/start): unchanged,
        // NodeId included". A secondary that copied n3's commit and is
        // restarted still says so.
        let mut n = FakeNode::new(false, 0);
        let out = order(&mut n, join("n3", true));
        let Effect::Join(j) = out[0].clone() else {
            panic!("{out:?}")
        };
        n.join_done(&j, Ok(42));
        let restarted = FakeNode::from_cdb_file(false, &n.cdb_file());
        assert_eq!(restarted.cdb_txid(), n.cdb_txid());
        assert_eq!(restarted.cdb_txid().primary.as_deref(), Some("n3"));
        let bare = FakeNode::from_cdb_file(false, "17\n");
        assert_eq!(
            (bare.txid, bare.cdb_txid().primary),
            (17, None),
            "a file of the earlier form"
        );
        assert_eq!(FakeNode::from_cdb_file(false, "").txid, 0, "no file");
    }

    #[test]
    fn a_failed_join_raises_is_none_after_its_result() {
        let mut n = FakeNode::new(false, 0);
        let out = order(&mut n, join("n3", false));
        let Effect::Join(j) = out[0].clone() else {
            panic!("{out:?}")
        };
        assert_eq!(
            n.join_done(&j, Err(code::HA_BADTOKEN)),
            vec![
                Effect::Event(Event::BeSecondaryResult(code::HA_BADTOKEN)),
                Effect::Event(Event::IsNone(0))
            ]
        );
    }

    #[test]
    fn admission_checks_the_token_before_the_names() {
        let mut n = FakeNode::new(false, 0);
        let me = bin("n4");
        assert_eq!(
            n.admit(true, &bin("n3"), &me),
            Admission::Refuse(code::HA_CONNECT)
        );
        order(&mut n, Order::BePrimary { me: "n3".into() });
        assert_eq!(
            n.admit(false, &bin("wrong"), &me),
            Admission::Refuse(code::HA_BADTOKEN)
        );
        assert_eq!(
            n.admit(true, &bin("wrong"), &me),
            Admission::Refuse(code::HA_BADNAME)
        );
        assert_eq!(n.admit(true, &bin("n3"), &me), Admission::Welcome);
        n.secondary_arrived(
            me.clone(),
            tuple(vec![int(127), int(0), int(0), int(1)]),
            None,
        );
        // A second node claiming the same id is refused by name.
        assert_eq!(
            n.admit(true, &bin("n3"), &me),
            Admission::Refuse(code::HA_BADNAME)
        );
        // An integer id knocks the primary over.
        let Admission::KnockedOver(out) = n.admit(true, &bin("n3"), &int(5)) else {
            panic!()
        };
        assert!(out.contains(&Effect::CloseHaSocket));
        assert_eq!(n.state, NONE);
    }

    #[test]
    fn a_relay_passes_arrivals_up_and_loses_them_with_its_link() {
        let mut top = FakeNode::new(false, 0);
        order(&mut top, Order::BePrimary { me: "n3".into() });
        let local = tuple(vec![int(127), int(0), int(0), int(1)]);
        top.secondary_arrived(bin("n4"), local.clone(), None);
        let ev = top.secondary_arrived(bin("n5"), local.clone(), Some(bin("n4")));
        assert_eq!(ev.len(), 1);
        let Reply::Status { nodes, .. } = top.status() else {
            panic!()
        };
        assert_eq!(nodes[0].0, bin("n5"), "newest first");
        assert_eq!(top.secondary_gone(&bin("n4"), None).len(), 2);
        assert!(top.secondaries.is_empty());
    }

    #[test]
    fn secondary_dead_drops_the_link_without_an_event() {
        let mut n = FakeNode::new(false, 0);
        order(&mut n, Order::BePrimary { me: "n3".into() });
        n.secondary_arrived(bin("n5"), bin("x"), None);
        assert_eq!(
            order(&mut n, Order::SecondaryDead { node: "n5".into() }),
            vec![Effect::DropDownlink(bin("n5")), Effect::Reply(Reply::Ok)]
        );
    }
}
