//! The HA behaviour of one NSO/ConfD node as observed on ConfD 8.2.5, for
//! `fake-confd`. A pure state machine: an order term in, the replies and
//! events out, in the order the real server emits them (e.g. `beprimary`
//! replies, then raises IS_PRIMARY; `benone` raises IS_NONE first).
//!
//! Not yet: links between fake nodes (`besecondary` to another fake, ticks,
//! replication), so `besecondary` fails as if nothing listened.

use super::code;
use super::wire::{Event, Order, Reply};
use eetf::Term;

pub const NONE: i32 = 1;
pub const SECONDARY: i32 = 2;
pub const PRIMARY: i32 = 3;
pub const RELAY: i32 = 4;

/// What the server does in answer to one frame, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Reply(Reply),
    Event(Event),
    /// Close the HA socket without a reply (the orders that knock a real
    /// node's HA over).
    Close,
}

#[derive(Clone, Debug)]
pub struct FakeNode {
    /// Start phase 0: only get_status works.
    pub phase0: bool,
    pub state: i32,
    /// The node id it was last given (kept as given: a primary is not
    /// renamed by a second beprimary).
    pub id: Option<Term>,
    pub primary: Option<(Term, Term)>,
    /// Attached secondaries, newest first.
    pub secondaries: Vec<(Term, Term)>,
    /// Every state it had, with a sequence number of the order that set it.
    pub history: Vec<i32>,
}

impl FakeNode {
    pub fn new(phase0: bool) -> FakeNode {
        FakeNode {
            phase0,
            state: NONE,
            id: None,
            primary: None,
            secondaries: vec![],
            history: vec![NONE],
        }
    }

    fn set_state(&mut self, state: i32) {
        if self.state != state {
            self.state = state;
            self.history.push(state);
        }
        if state != SECONDARY && state != RELAY {
            self.primary = None;
        }
        if state != PRIMARY && state != RELAY {
            self.secondaries.clear();
        }
    }

    fn status(&self) -> Reply {
        let nodes = match self.state {
            PRIMARY => self.secondaries.clone(),
            SECONDARY => self.primary.iter().cloned().collect(),
            RELAY => self
                .primary
                .iter()
                .cloned()
                .chain(self.secondaries.iter().cloned())
                .collect(),
            _ => vec![],
        };
        Reply::Status {
            state: self.state,
            nodes,
        }
    }

    /// Serve one frame of the HA socket.
    pub fn frame(&mut self, payload: &[u8]) -> Vec<Effect> {
        let usage = vec![Effect::Reply(Reply::Error(code::PROTOUSAGE))];
        let Ok(term) = super::wire::decode_term(payload) else {
            return usage;
        };
        match Order::from_term(&term) {
            Ok(order) => self.order(order, &term),
            Err(_) if knocks_over(&term) => {
                // The real server's HA component restarts: NONE, socket closed.
                self.set_state(NONE);
                vec![Effect::Close]
            }
            Err(_) => usage,
        }
    }

    fn order(&mut self, order: Order, term: &Term) -> Vec<Effect> {
        if self.phase0 && order != Order::GetStatus {
            return match order {
                Order::BeSecondary { wait: false, .. } => {
                    vec![Effect::Event(Event::BeSecondaryResult(code::BADSTATE))]
                }
                _ => vec![Effect::Reply(Reply::Error(code::BADSTATE))],
            };
        }
        let ok = Effect::Reply(Reply::Ok);
        match order {
            Order::GetStatus => vec![Effect::Reply(self.status())],
            Order::BePrimary { .. } => {
                if self.state == PRIMARY {
                    return vec![ok];
                }
                self.id = tuple_item(term, 1);
                self.set_state(PRIMARY);
                vec![ok, Effect::Event(Event::IsPrimary(0))]
            }
            Order::BeNone => {
                self.set_state(NONE);
                vec![Effect::Event(Event::IsNone(0)), ok]
            }
            Order::SecondaryDead { .. } => {
                let id = tuple_item(term, 1);
                self.secondaries.retain(|(s, _)| Some(s) != id.as_ref());
                vec![ok]
            }
            Order::BeRelay => {
                if self.state == SECONDARY {
                    self.set_state(RELAY);
                    vec![ok]
                } else {
                    vec![Effect::Reply(Reply::Error(code::BADSTATE))]
                }
            }
            Order::BeSecondary { wait, .. } => {
                // No links between fake nodes yet: as if nothing listened.
                self.set_state(NONE);
                let failed = Effect::Event(Event::IsNone(0));
                if wait {
                    vec![Effect::Reply(Reply::Error(code::HA_CONNECT)), failed]
                } else {
                    vec![
                        Effect::Event(Event::BeSecondaryResult(code::HA_CONNECT)),
                        failed,
                    ]
                }
            }
        }
    }
}

fn tuple_item(t: &Term, k: usize) -> Option<Term> {
    match t {
        Term::Tuple(t) => t.elements.get(k).cloned(),
        _ => None,
    }
}

/// besecondary with a WaitReply other than 0/1, or an address tuple of the
/// wrong size: a real node closes the socket and its HA falls to NONE.
fn knocks_over(t: &Term) -> bool {
    let Term::Tuple(t) = t else { return false };
    let items = &t.elements;
    if items.len() != 4 || !matches!(&items[0], Term::FixInteger(i) if i.value == 2) {
        return false;
    }
    let bad_wait = !matches!(&items[3], Term::FixInteger(i) if i.value == 0 || i.value == 1);
    let bad_address = match &items[2] {
        Term::Tuple(p) if p.elements.len() == 2 => {
            matches!(&p.elements[1], Term::Tuple(a) if a.elements.len() != 4 && a.elements.len() != 8)
        }
        _ => false,
    };
    bad_wait || bad_address
}
