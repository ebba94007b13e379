//! MAAPI (client type 7), the one request coroha needs: read-only mode
//! (`set_readonly_mode`), as a real ConfD 8.2.5 exchanged it
//! (`../shared/confd-ipc-wire/` §1–2). After the same 9-byte handshake as
//! the HA socket, a request is a frame of a 4-byte op and, here, one ETF
//! term; the reply echoes the op, or sets its top bit and carries an error
//! code and a reason with a trailing NUL. There is no request id: one
//! reply per request, in order.

use super::{decode_term, encode_term, int, Term, WireError};

/// The client type of a MAAPI connection.
pub const CLIENT_MAAPI: u8 = 7;
/// `set_readonly_mode`.
pub const OP_SET_READONLY: u32 = 229;
/// The top bit of a reply's op marks an error reply.
const ERROR_BIT: u32 = 0x8000_0000;

/// A MAAPI reply, as far as coroha reads one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaapiReply {
    /// The op, echoed: done.
    Ok { op: u32 },
    /// Refused, with ConfD's error code and reason (NUL dropped).
    Error { op: u32, code: u32, reason: String },
}

/// The frame that sets read-only mode (`on`) or clears it. The server
/// takes an integer: 0 clears, anything else sets.
pub fn set_readonly_request(on: bool) -> Vec<u8> {
    request(OP_SET_READONLY, &int(i32::from(on)))
}

/// A framed request: op, then one term.
pub fn request(op: u32, term: &Term) -> Vec<u8> {
    let payload = [op.to_be_bytes().as_slice(), &encode_term(term)].concat();
    super::frame(&payload)
}

/// Decode a reply's payload (the frame without its length).
pub fn decode_reply(payload: &[u8]) -> Result<MaapiReply, WireError> {
    let op = payload
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(WireError::Short {
            need: 4,
            have: payload.len(),
        })?;
    if op & ERROR_BIT == 0 {
        return Ok(MaapiReply::Ok { op });
    }
    let code = payload
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(WireError::Short {
            need: 8,
            have: payload.len(),
        })?;
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
    Ok(MaapiReply::Error {
        op: op & !ERROR_BIT,
        code,
        reason,
    })
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
    fn an_error_reply_carries_code_and_reason_without_its_nul() {
        let mut payload = vec![0x80, 0, 0, 0xe5, 0, 0, 0, 0x12, 0x83, 0x6d, 0, 0, 0, 3];
        payload.extend_from_slice(b"ab\0");
        assert_eq!(
            decode_reply(&payload).unwrap(),
            MaapiReply::Error {
                op: 229,
                code: 18,
                reason: "ab".into()
            }
        );
        assert_eq!(
            decode_reply(&[0, 0, 0, 0xe5]).unwrap(),
            MaapiReply::Ok { op: 229 }
        );
        assert!(decode_reply(&[0, 0]).is_err());
    }
}
