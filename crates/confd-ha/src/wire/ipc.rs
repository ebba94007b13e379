//! The request sockets beside the HA socket, MAAPI (client type 7) and CDB
//! (client type 5), as a real ConfD 8.2.5 exchanged them
//! (`../shared/confd-ipc-wire/` §1, §2, §5). After the same 9-byte
//! handshake as the HA socket, a request is a frame of a 4-byte op and at
//! most one ETF term; the reply echoes the op, with the value as one term
//! when there is one, or sets the op's top bit and carries an error code
//! and a reason with a trailing NUL. There is no request id: one reply per
//! request, in order, and the socket stays usable after an error.
//!
//! coroha asks two things: MAAPI `set_readonly_mode` and CDB `cdb_get_txid`.

use super::{decode_term, encode_term, int, Term, WireError};
use crate::TxStamp;

/// The client type of a MAAPI connection.
pub const CLIENT_MAAPI: u8 = 7;
/// The client type of a CDB connection (a read socket).
pub const CLIENT_CDB: u8 = 5;
/// MAAPI `set_readonly_mode`.
pub const OP_SET_READONLY: u32 = 229;
/// CDB `cdb_get_txid`.
pub const OP_GET_TXID: u32 = 66;
/// The top bit of a reply's op marks an error reply.
const ERROR_BIT: u32 = 0x8000_0000;

/// A reply on a MAAPI or CDB socket.
#[derive(Clone, Debug, PartialEq)]
pub enum IpcReply {
    /// The op, echoed, and the value if the op returns one.
    Ok { op: u32, value: Option<Term> },
    /// Refused, with ConfD's error code and reason (NUL dropped).
    Error { op: u32, code: u32, reason: String },
}

/// The frame that sets read-only mode (`on`) or clears it. The server
/// takes an integer: 0 clears, anything else sets.
pub fn set_readonly_request(on: bool) -> Vec<u8> {
    request(OP_SET_READONLY, Some(&int(i32::from(on))))
}

/// The frame that asks for the transaction id: the op alone. libconfd
/// sends two frames without replies first (client name and `pid/fd`); the
/// server answers without them just as well (captured).
pub fn get_txid_request() -> Vec<u8> {
    request(OP_GET_TXID, None)
}

/// A framed request: op, then the term if there is one.
pub fn request(op: u32, term: Option<&Term>) -> Vec<u8> {
    let mut payload = op.to_be_bytes().to_vec();
    if let Some(t) = term {
        payload.extend_from_slice(&encode_term(t));
    }
    super::frame(&payload)
}

/// A reply's payload (without the frame length) for an op that succeeded.
pub fn ok_reply(op: u32, value: Option<&Term>) -> Vec<u8> {
    let mut payload = op.to_be_bytes().to_vec();
    if let Some(t) = value {
        payload.extend_from_slice(&encode_term(t));
    }
    payload
}

/// A reply's payload for a refused op, as the server builds it.
pub fn error_reply(op: u32, code: u32, reason: &str) -> Vec<u8> {
    let reason = encode_term(&super::bin(&format!("{reason}\0")));
    [
        (op | ERROR_BIT).to_be_bytes().as_slice(),
        &code.to_be_bytes(),
        &reason,
    ]
    .concat()
}

fn word(payload: &[u8], at: usize) -> Result<u32, WireError> {
    payload
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(WireError::Short {
            need: at + 4,
            have: payload.len(),
        })
}

/// Decode a reply's payload (the frame without its length).
pub fn decode_reply(payload: &[u8]) -> Result<IpcReply, WireError> {
    let op = word(payload, 0)?;
    if op & ERROR_BIT == 0 {
        let value = match &payload[4..] {
            [] => None,
            rest => Some(decode_term(rest)?),
        };
        return Ok(IpcReply::Ok { op, value });
    }
    let code = word(payload, 4)?;
    let reason = match payload.get(8..) {
        Some(rest) if !rest.is_empty() => {
            let term = decode_term(rest)?;
            super::as_bin(&term)
                .unwrap_or_default()
                .trim_end_matches('\0')
                .to_string()
        }
        _ => String::new(),
    };
    Ok(IpcReply::Error {
        op: op & !ERROR_BIT,
        code,
        reason,
    })
}

/// The value of a `cdb_get_txid` reply: `{S1,S2,S3}`, or
/// `{PrimaryName,{S1,S2,S3}}` on a node that has been in HA. Only the
/// triple says which commit the data is at; the name is kept for the
/// operator (two nodes with equal data can carry different names).
pub fn txid_from_term(term: &Term) -> Result<crate::Txid, WireError> {
    let bad = || WireError::Unexpected(format!("transaction id {term}"));
    let items = super::as_tuple(term).ok_or_else(bad)?;
    let (primary, triple) = match items {
        [name, inner] => (Some(super::as_bin(name).ok_or_else(bad)?), inner),
        [_, _, _] => (None, term),
        _ => return Err(bad()),
    };
    let parts = super::as_tuple(triple).ok_or_else(bad)?;
    let field = |i: usize| {
        parts
            .get(i)
            .and_then(super::as_int)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(bad)
    };
    if parts.len() != 3 {
        return Err(bad());
    }
    Ok(crate::Txid {
        stamp: TxStamp {
            mega: field(0)?,
            secs: field(1)?,
            micros: field(2)?,
        },
        primary,
    })
}

/// The term a server answers `cdb_get_txid` with (fake-confd).
pub fn txid_to_term(txid: &crate::Txid) -> Term {
    let s = txid.stamp;
    let triple = super::tuple(vec![
        int(s.mega as i32),
        int(s.secs as i32),
        int(s.micros as i32),
    ]);
    match &txid.primary {
        Some(name) => super::tuple(vec![super::bin(name), triple]),
        None => triple,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_readonly_is_op_229_with_a_small_integer() {
        let on = set_readonly_request(true);
        assert_eq!(on, [0, 0, 0, 7, 0, 0, 0, 0xe5, 0x83, 0x61, 1]);
        let off = set_readonly_request(false);
        assert_eq!(off, [0, 0, 0, 7, 0, 0, 0, 0xe5, 0x83, 0x61, 0]);
    }

    #[test]
    fn get_txid_is_op_66_alone() {
        assert_eq!(get_txid_request(), [0, 0, 0, 4, 0, 0, 0, 0x42]);
    }

    #[test]
    fn an_error_reply_carries_code_and_reason_without_its_nul() {
        let payload = error_reply(229, 18, "ab");
        assert_eq!(
            decode_reply(&payload).unwrap(),
            IpcReply::Error {
                op: 229,
                code: 18,
                reason: "ab".into()
            }
        );
        assert_eq!(
            decode_reply(&[0, 0, 0, 0xe5]).unwrap(),
            IpcReply::Ok {
                op: 229,
                value: None
            }
        );
        assert!(decode_reply(&[0, 0]).is_err());
    }

    #[test]
    fn a_txid_round_trips_in_both_forms_and_other_shapes_are_refused() {
        for primary in [None, Some("n1".to_string())] {
            let txid = crate::Txid {
                stamp: TxStamp {
                    mega: 1796,
                    secs: 229333,
                    micros: 0,
                },
                primary,
            };
            assert_eq!(txid_from_term(&txid_to_term(&txid)).unwrap(), txid);
        }
        assert!(txid_from_term(&int(3)).is_err());
        assert!(txid_from_term(&super::super::tuple(vec![int(1), int(2)])).is_err());
        assert!(txid_from_term(&super::super::tuple(vec![int(1), int(-2), int(3)])).is_err());
    }
}
