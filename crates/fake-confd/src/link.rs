//! The link between fake nodes (the node-to-node HA port). The real
//! protocol on that port was not captured, so this one is fake-confd's own;
//! what it reproduces is what the HA sockets see: the same errors, events
//! and timings. Every message is one framed Erlang term, so node ids travel
//! verbatim.

use confd_ha::wire::{as_atom, as_bin, as_int, as_tuple, decode_term, encode_term, frame, int};
use eetf::{Atom, Binary, Term, Tuple};

/// Bumped when the link messages change; a mismatch refuses the join.
/// 2: a primary may tell a relay to drop a node behind it (`Drop`).
pub const LINK_VERSION: i32 = 2;

#[derive(Clone, Debug, PartialEq)]
pub enum LinkMsg {
    /// The primary speaks first (a secondary waits for it, as the real
    /// one does with a silent primary).
    Hello {
        version: i32,
    },
    Join {
        token: Vec<u8>,
        primary: Term,
        me: Term,
    },
    /// Admitted; the initial sync carries the primary's write counter.
    Welcome {
        txid: u64,
    },
    Refuse(i32),
    Tick,
    Commit(u64),
    Ack(u64),
    /// From a relay to its primary: a node joined or left behind it.
    Arrived {
        id: Term,
        addr: Term,
    },
    Died {
        id: Term,
    },
    /// From a primary to its relay: drop `id`, attached behind you (the
    /// primary was told `secondary_dead` for it).
    Drop {
        id: Term,
    },
}

fn atom(a: &str) -> Term {
    Term::from(Atom::from(a))
}

fn counter(v: u64) -> Term {
    Term::from(Binary::from(v.to_string().into_bytes()))
}

fn read_counter(t: &Term) -> Option<u64> {
    as_bin(t)?.parse().ok()
}

impl LinkMsg {
    pub fn encode(&self) -> Vec<u8> {
        let items = match self {
            LinkMsg::Hello { version } => vec![atom("fake_confd"), int(*version)],
            LinkMsg::Join { token, primary, me } => vec![
                atom("join"),
                Term::from(Binary::from(token.clone())),
                primary.clone(),
                me.clone(),
            ],
            LinkMsg::Welcome { txid } => vec![atom("welcome"), counter(*txid)],
            LinkMsg::Refuse(code) => vec![atom("refuse"), int(*code)],
            LinkMsg::Tick => vec![atom("tick")],
            LinkMsg::Commit(txid) => vec![atom("commit"), counter(*txid)],
            LinkMsg::Ack(txid) => vec![atom("ack"), counter(*txid)],
            LinkMsg::Arrived { id, addr } => vec![atom("arrived"), id.clone(), addr.clone()],
            LinkMsg::Died { id } => vec![atom("died"), id.clone()],
            LinkMsg::Drop { id } => vec![atom("drop"), id.clone()],
        };
        frame(&encode_term(&Term::from(Tuple::from(items))))
    }

    pub fn decode(payload: &[u8]) -> Option<LinkMsg> {
        let term = decode_term(payload).ok()?;
        let items = as_tuple(&term)?;
        let tag = as_atom(items.first()?)?;
        Some(match (tag, &items[1..]) {
            ("fake_confd", [v]) => LinkMsg::Hello {
                version: as_int(v)?,
            },
            ("join", [Term::Binary(token), primary, me]) => LinkMsg::Join {
                token: token.bytes.clone(),
                primary: primary.clone(),
                me: me.clone(),
            },
            ("welcome", [t]) => LinkMsg::Welcome {
                txid: read_counter(t)?,
            },
            ("refuse", [c]) => LinkMsg::Refuse(as_int(c)?),
            ("tick", []) => LinkMsg::Tick,
            ("commit", [t]) => LinkMsg::Commit(read_counter(t)?),
            ("ack", [t]) => LinkMsg::Ack(read_counter(t)?),
            ("arrived", [id, addr]) => LinkMsg::Arrived {
                id: id.clone(),
                addr: addr.clone(),
            },
            ("died", [id]) => LinkMsg::Died { id: id.clone() },
            ("drop", [id]) => LinkMsg::Drop { id: id.clone() },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confd_ha::wire::{bin, Deframer};

    #[test]
    fn every_message_decodes_to_itself() {
        let all = [
            LinkMsg::Hello {
                version: LINK_VERSION,
            },
            LinkMsg::Join {
                token: b"probe".to_vec(),
                primary: bin("n3"),
                me: atom("n5"),
            },
            LinkMsg::Welcome { txid: u64::MAX - 1 },
            LinkMsg::Refuse(28),
            LinkMsg::Tick,
            LinkMsg::Commit(9),
            LinkMsg::Ack(9),
            LinkMsg::Arrived {
                id: bin("n5"),
                addr: bin("127.0.0.1"),
            },
            LinkMsg::Died { id: bin("n5") },
            LinkMsg::Drop { id: bin("n5") },
        ];
        for m in all {
            let mut d = Deframer::default();
            d.push(&m.encode());
            let payload = d.next_frame().unwrap().unwrap();
            assert_eq!(LinkMsg::decode(&payload), Some(m));
        }
        assert_eq!(LinkMsg::decode(b"\x83\x61\x01"), None);
    }
}
