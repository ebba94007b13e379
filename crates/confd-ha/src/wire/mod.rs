//! The NSO/ConfD library protocol as used on the HA and notification
//! sockets, without I/O: the 9-byte handshake, 4-byte length framing, and
//! typed HA orders, replies and HA_INFO events over the Erlang external term
//! format (via `eetf`). Byte layouts follow the captures of a real ConfD 8.2.5
//! in `crates/coroha-testkit/data/confd-8.2.5-ha-vectors.json`.
//!
//! Orders are typed so that the forms that knock a real node's HA into NONE
//! (a WaitReply other than 0/1, an address tuple of the wrong size, a
//! non-binary node id) cannot be built, and `Order::from_term` accepts only
//! the canonical forms.

pub use eetf::Term;
use eetf::{Atom, Binary, FixInteger, List, Tuple};
use std::fmt;

/// Client type byte of the handshake.
pub const CLIENT_HA: u8 = 17;
pub const CLIENT_NOTIFICATIONS: u8 = 11;
/// LIB_PROTO_VSN values a ConfD 8.2.5 accepts; 82 is tried first.
pub const PROTOCOL_VERSIONS: [u16; 2] = [82, 81];
/// LIB_VSN sent with the handshake (not checked by the server).
pub const LIB_VSN: u32 = 0x0802_0500;
/// Largest frame accepted from a peer.
pub const MAX_FRAME: usize = 16 << 20;
/// HA_INFO bit of the notification mask, and HA_INFO_SYNC.
pub const MASK_HA_INFO: u32 = 1 << 6;
pub const MASK_HA_INFO_SYNC: u32 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    Short { need: usize, have: usize },
    FrameTooLarge(usize),
    NotEtf(String),
    Unexpected(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Short { need, have } => write!(f, "need {need} bytes, have {have}"),
            WireError::FrameTooLarge(n) => {
                write!(f, "frame of {n} bytes is larger than {MAX_FRAME}")
            }
            WireError::NotEtf(e) => write!(f, "not an Erlang term: {e}"),
            WireError::Unexpected(what) => write!(f, "unexpected term: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

/// The 9-byte library handshake, sent by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Client type, with the access-check bits (0x80 MD5, 0xC0 SHA-256).
    pub kind: u8,
    pub proto: u16,
    pub vsn: u32,
    pub maxdepth: u8,
    pub maxkeylen: u8,
}

impl Hello {
    /// What coroha sends: maxdepth/maxkeylen 0/0 skips the server's size
    /// check (the econfd style), LIB_VSN is not checked.
    pub fn new(kind: u8, proto: u16) -> Hello {
        Hello {
            kind,
            proto,
            vsn: LIB_VSN,
            maxdepth: 0,
            maxkeylen: 0,
        }
    }

    pub fn encode(&self) -> [u8; 9] {
        let p = self.proto.to_be_bytes();
        let v = self.vsn.to_be_bytes();
        [
            self.kind,
            p[0],
            p[1],
            v[0],
            v[1],
            v[2],
            v[3],
            self.maxdepth,
            self.maxkeylen,
        ]
    }

    pub fn decode(b: &[u8]) -> Result<Hello, WireError> {
        let b: &[u8; 9] = b
            .get(..9)
            .and_then(|s| s.try_into().ok())
            .ok_or(WireError::Short {
                need: 9,
                have: b.len(),
            })?;
        Ok(Hello {
            kind: b[0],
            proto: u16::from_be_bytes([b[1], b[2]]),
            vsn: u32::from_be_bytes([b[3], b[4], b[5], b[6]]),
            maxdepth: b[7],
            maxkeylen: b[8],
        })
    }
}

/// The IPC access check, asked for in the handshake's type byte. The
/// server then sends 0x0b and a challenge; the client answers 0x0c and
/// H(secret ‖ challenge), the secret being the access file's raw bytes
/// (trailing newline included); one result byte follows (0 ok, 3 wrong).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessCheck {
    /// 0x80, 16-byte challenge (libconfd).
    Md5,
    /// 0xC0, 32-byte challenge (the Java library).
    Sha256,
}

impl AccessCheck {
    pub fn type_bits(self) -> u8 {
        match self {
            AccessCheck::Md5 => 0x80,
            AccessCheck::Sha256 => 0xC0,
        }
    }

    pub fn challenge_len(self) -> usize {
        match self {
            AccessCheck::Md5 => 16,
            AccessCheck::Sha256 => 32,
        }
    }

    /// 0x0c followed by the digest of secret ‖ challenge.
    pub fn response(self, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
        use md5::Digest as _;
        let digest: Vec<u8> = match self {
            AccessCheck::Md5 => md5::Md5::new()
                .chain_update(secret)
                .chain_update(challenge)
                .finalize()
                .to_vec(),
            AccessCheck::Sha256 => sha2::Sha256::new()
                .chain_update(secret)
                .chain_update(challenge)
                .finalize()
                .to_vec(),
        };
        [vec![0x0c], digest].concat()
    }
}

/// The server's 9-byte answer; the last fields are always its own values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloReply {
    /// 0 accepted, 1 wrong LIB_PROTO_VSN, 2 maxdepth/maxkeylen too small.
    pub status: u8,
    pub proto: u16,
    pub vsn: u32,
    pub maxdepth: u8,
    pub maxkeylen: u8,
}

impl HelloReply {
    pub fn encode(&self) -> [u8; 9] {
        Hello {
            kind: self.status,
            proto: self.proto,
            vsn: self.vsn,
            maxdepth: self.maxdepth,
            maxkeylen: self.maxkeylen,
        }
        .encode()
    }

    pub fn decode(b: &[u8]) -> Result<HelloReply, WireError> {
        let h = Hello::decode(b)?;
        Ok(HelloReply {
            status: h.kind,
            proto: h.proto,
            vsn: h.vsn,
            maxdepth: h.maxdepth,
            maxkeylen: h.maxkeylen,
        })
    }

    pub fn accepted(&self) -> bool {
        self.status == 0
    }
}

/// A 4-byte big-endian length, then the payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a byte stream into frames.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let Some(len) = self
            .buf
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return Ok(None);
        };
        if len > MAX_FRAME {
            return Err(WireError::FrameTooLarge(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(payload))
    }
}

/// Decode one framed payload as an Erlang term. The structure is checked
/// first: eetf panics on some tags and sizes its allocations from length
/// fields, so a crafted frame could otherwise abort the process.
pub fn decode_term(payload: &[u8]) -> Result<Term, WireError> {
    check_etf(payload)?;
    let decoded = std::panic::catch_unwind(|| Term::decode(std::io::Cursor::new(payload)));
    match decoded {
        Ok(result) => result.map_err(|e| WireError::NotEtf(e.to_string())),
        Err(_) => Err(WireError::NotEtf("the decoder failed on it".into())),
    }
}

/// Walk the external term format with only the tags the HA and
/// notification sockets use, every count bounded by the bytes that remain.
fn check_etf(b: &[u8]) -> Result<(), WireError> {
    fn need(b: &[u8], at: usize, n: usize) -> Result<(), WireError> {
        if b.len() < at + n {
            Err(WireError::Short {
                need: at + n,
                have: b.len(),
            })
        } else {
            Ok(())
        }
    }
    fn u16_at(b: &[u8], at: usize) -> Result<usize, WireError> {
        need(b, at, 2)?;
        Ok(usize::from(u16::from_be_bytes([b[at], b[at + 1]])))
    }
    fn u32_at(b: &[u8], at: usize) -> Result<usize, WireError> {
        need(b, at, 4)?;
        Ok(u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize)
    }
    fn term(b: &[u8], at: usize, depth: usize) -> Result<usize, WireError> {
        if depth > 64 {
            return Err(WireError::NotEtf("nested too deep".into()));
        }
        need(b, at, 1)?;
        let elements = |count: usize, first: usize| -> Result<usize, WireError> {
            if count > b.len().saturating_sub(first) {
                return Err(WireError::NotEtf(format!("{count} elements cannot fit")));
            }
            (0..count).try_fold(first, |pos, _| term(b, pos, depth + 1))
        };
        let sized = |len: usize, first: usize| need(b, first, len).map(|_| first + len);
        match b[at] {
            97 => sized(1, at + 1),
            98 => sized(4, at + 1),
            70 => sized(8, at + 1),
            100 | 118 => sized(u16_at(b, at + 1)?, at + 3),
            115 | 119 => {
                need(b, at, 2)?;
                sized(usize::from(b[at + 1]), at + 2)
            }
            107 => sized(u16_at(b, at + 1)?, at + 3),
            109 => sized(u32_at(b, at + 1)?, at + 5),
            110 => {
                need(b, at, 2)?;
                sized(usize::from(b[at + 1]) + 1, at + 2)
            }
            104 => {
                need(b, at, 2)?;
                elements(usize::from(b[at + 1]), at + 2)
            }
            105 => elements(u32_at(b, at + 1)?, at + 5),
            106 => Ok(at + 1),
            108 => {
                let end = elements(u32_at(b, at + 1)?, at + 5)?;
                term(b, end, depth + 1)
            }
            tag => Err(WireError::NotEtf(format!("unsupported tag {tag}"))),
        }
    }
    need(b, 0, 1)?;
    if b[0] != 131 {
        return Err(WireError::NotEtf(format!(
            "version byte {} is not 131",
            b[0]
        )));
    }
    let end = term(b, 1, 0)?;
    if end != b.len() {
        return Err(WireError::NotEtf(format!(
            "{} bytes after the term",
            b.len() - end
        )));
    }
    Ok(())
}

/// Encode as libconfd does (atoms as SMALL_ATOM_UTF8_EXT).
pub fn encode_term(term: &Term) -> Vec<u8> {
    let mut out = Vec::new();
    term.encode(&mut out).expect("writing to a Vec cannot fail");
    out
}

/// Encode as the server (OTP 25) does: atoms as ATOM_EXT. Covers the terms
/// that appear on the HA and notification sockets.
pub fn encode_term_otp25(term: &Term) -> Vec<u8> {
    fn put(t: &Term, out: &mut Vec<u8>) {
        match t {
            Term::Atom(a) => {
                out.push(100);
                out.extend_from_slice(&(a.name.len() as u16).to_be_bytes());
                out.extend_from_slice(a.name.as_bytes());
            }
            Term::FixInteger(i) if (0..=255).contains(&i.value) => {
                out.extend_from_slice(&[97, i.value as u8])
            }
            Term::FixInteger(i) => {
                out.push(98);
                out.extend_from_slice(&i.value.to_be_bytes());
            }
            Term::Binary(b) => {
                out.push(109);
                out.extend_from_slice(&(b.bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(&b.bytes);
            }
            Term::ByteList(l) => {
                out.push(107);
                out.extend_from_slice(&(l.bytes.len() as u16).to_be_bytes());
                out.extend_from_slice(&l.bytes);
            }
            Term::Tuple(t) => {
                if t.elements.len() < 256 {
                    out.extend_from_slice(&[104, t.elements.len() as u8]);
                } else {
                    out.push(105);
                    out.extend_from_slice(&(t.elements.len() as u32).to_be_bytes());
                }
                for e in &t.elements {
                    put(e, out);
                }
            }
            Term::List(l) if l.elements.is_empty() => out.push(106),
            Term::List(l) => {
                out.push(108);
                out.extend_from_slice(&(l.elements.len() as u32).to_be_bytes());
                for e in &l.elements {
                    put(e, out);
                }
                out.push(106);
            }
            other => {
                // Not produced by the server on these sockets; eetf's form.
                let mut tmp = Vec::new();
                other
                    .encode(&mut tmp)
                    .expect("writing to a Vec cannot fail");
                out.extend_from_slice(&tmp[1..]);
            }
        }
    }
    let mut out = vec![131];
    put(term, &mut out);
    out
}

/// Term helpers (also used by fake-confd).
pub fn int(v: i32) -> Term {
    Term::from(FixInteger::from(v))
}

pub fn bin(s: &str) -> Term {
    Term::from(Binary::from(s.as_bytes().to_vec()))
}

pub fn tuple(items: Vec<Term>) -> Term {
    Term::from(Tuple::from(items))
}

pub fn as_int(t: &Term) -> Option<i32> {
    match t {
        Term::FixInteger(i) => Some(i.value),
        _ => None,
    }
}

pub fn as_bin(t: &Term) -> Option<String> {
    match t {
        Term::Binary(b) => String::from_utf8(b.bytes.clone()).ok(),
        _ => None,
    }
}

pub fn as_tuple(t: &Term) -> Option<&[Term]> {
    match t {
        Term::Tuple(t) => Some(&t.elements),
        _ => None,
    }
}

pub fn as_atom(t: &Term) -> Option<&str> {
    match t {
        Term::Atom(a) => Some(&a.name),
        _ => None,
    }
}

/// Where a secondary finds its primary. The port is the server's own HA port.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Address {
    V4([u8; 4]),
    V6([u16; 8]),
    /// A host name or address text, resolved by the server (libconfd's
    /// AF_UNSPEC form).
    Name(String),
}

impl Address {
    /// An IPv4/IPv6 literal becomes a tuple, anything else a name.
    pub fn parse(text: &str) -> Address {
        match text.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => Address::V4(a.octets()),
            Ok(std::net::IpAddr::V6(a)) => Address::V6(a.segments()),
            Err(_) => Address::Name(text.to_string()),
        }
    }

    fn to_term(&self) -> Term {
        match self {
            Address::V4(o) => tuple(o.iter().map(|b| int(i32::from(*b))).collect()),
            Address::V6(s) => tuple(s.iter().map(|w| int(i32::from(*w))).collect()),
            Address::Name(n) => bin(n),
        }
    }

    fn from_term(t: &Term) -> Option<Address> {
        if let Some(name) = as_bin(t) {
            return Some(Address::Name(name));
        }
        let items = as_tuple(t)?;
        let nums: Option<Vec<i32>> = items.iter().map(as_int).collect();
        let nums = nums?;
        match nums.len() {
            4 if nums.iter().all(|n| (0..=255).contains(n)) => Some(Address::V4([
                nums[0] as u8,
                nums[1] as u8,
                nums[2] as u8,
                nums[3] as u8,
            ])),
            8 if nums.iter().all(|n| (0..=65535).contains(n)) => {
                let mut s = [0u16; 8];
                for (k, n) in nums.iter().enumerate() {
                    s[k] = *n as u16;
                }
                Some(Address::V6(s))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::V4(o) => write!(f, "{}", std::net::Ipv4Addr::from(*o)),
            Address::V6(s) => write!(f, "{}", std::net::Ipv6Addr::from(*s)),
            Address::Name(n) => f.write_str(n),
        }
    }
}

/// An HA order as it goes on the wire.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Order {
    BePrimary {
        me: String,
    },
    /// `wait`: reply after the initial sync (WaitReply 1); otherwise no
    /// reply, the result comes as a BESECONDARY_RESULT event.
    BeSecondary {
        me: String,
        primary: String,
        address: Address,
        wait: bool,
    },
    BeNone,
    GetStatus,
    SecondaryDead {
        node: String,
    },
    BeRelay,
}

impl Order {
    pub fn to_term(&self) -> Term {
        match self {
            Order::BePrimary { me } => tuple(vec![int(1), bin(me)]),
            Order::BeSecondary {
                me,
                primary,
                address,
                wait,
            } => tuple(vec![
                int(2),
                bin(me),
                tuple(vec![bin(primary), address.to_term()]),
                int(i32::from(*wait)),
            ]),
            Order::BeNone => tuple(vec![int(3)]),
            Order::GetStatus => tuple(vec![int(4)]),
            Order::SecondaryDead { node } => tuple(vec![int(5), bin(node)]),
            Order::BeRelay => tuple(vec![int(6)]),
        }
    }

    /// The framed bytes, exactly as libconfd sends them.
    pub fn encode(&self) -> Vec<u8> {
        frame(&encode_term(&self.to_term()))
    }

    /// The order's name, as operators know it.
    pub fn verb(&self) -> &'static str {
        match self {
            Order::BePrimary { .. } => "beprimary",
            Order::BeSecondary { .. } => "besecondary",
            Order::BeNone => "benone",
            Order::GetStatus => "get_status",
            Order::SecondaryDead { .. } => "secondary_dead",
            Order::BeRelay => "berelay",
        }
    }

    /// Does the server answer this order on the HA socket?
    pub fn expects_reply(&self) -> bool {
        !matches!(self, Order::BeSecondary { wait: false, .. })
    }

    /// Accept only the canonical forms (what `fake-confd` serves; anything
    /// else is what a real server answers with PROTOUSAGE or worse).
    pub fn from_term(t: &Term) -> Result<Order, WireError> {
        let bad = || WireError::Unexpected(format!("not an HA order: {t}"));
        let items = as_tuple(t).ok_or_else(bad)?;
        let op = items.first().and_then(as_int).ok_or_else(bad)?;
        let order = match (op, items.len()) {
            (1, 2) => Order::BePrimary {
                me: as_bin(&items[1]).ok_or_else(bad)?,
            },
            (2, 4) => {
                let target = as_tuple(&items[2])
                    .filter(|p| p.len() == 2)
                    .ok_or_else(bad)?;
                let wait = match as_int(&items[3]) {
                    Some(0) => false,
                    Some(1) => true,
                    _ => return Err(bad()),
                };
                Order::BeSecondary {
                    me: as_bin(&items[1]).ok_or_else(bad)?,
                    primary: as_bin(&target[0]).ok_or_else(bad)?,
                    address: Address::from_term(&target[1]).ok_or_else(bad)?,
                    wait,
                }
            }
            (3, 1) => Order::BeNone,
            (4, 1) => Order::GetStatus,
            (5, 2) => Order::SecondaryDead {
                node: as_bin(&items[1]).ok_or_else(bad)?,
            },
            (6, 1) => Order::BeRelay,
            _ => return Err(bad()),
        };
        Ok(order)
    }
}

/// The name of a `get_status` state code.
pub fn state_name(state: i32) -> &'static str {
    match state {
        1 => "none",
        2 => "secondary",
        3 => "primary",
        4 => "relay",
        _ => "unknown",
    }
}

/// A reply on the HA socket.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Ok,
    /// `{error, Code}`; the 3-tuple with a reason appears on the
    /// notification socket only.
    Error(i32),
    /// `{State, [{NodeId, Addr}]}`: ids and addresses are echoed as the
    /// orders gave them, so they are kept as terms.
    Status {
        state: i32,
        nodes: Vec<(Term, Term)>,
    },
}

impl Reply {
    pub fn to_term(&self) -> Term {
        match self {
            Reply::Ok => Term::from(Atom::from("ok")),
            Reply::Error(code) => tuple(vec![Term::from(Atom::from("error")), int(*code)]),
            Reply::Status { state, nodes } => tuple(vec![
                int(*state),
                Term::from(List::from(
                    nodes
                        .iter()
                        .map(|(n, a)| tuple(vec![n.clone(), a.clone()]))
                        .collect::<Vec<_>>(),
                )),
            ]),
        }
    }

    /// The framed bytes as the server writes them.
    pub fn encode(&self) -> Vec<u8> {
        frame(&encode_term_otp25(&self.to_term()))
    }

    pub fn from_term(t: &Term) -> Result<Reply, WireError> {
        let bad = || WireError::Unexpected(format!("not an HA reply: {t}"));
        if as_atom(t) == Some("ok") {
            return Ok(Reply::Ok);
        }
        let items = as_tuple(t).ok_or_else(bad)?;
        match items {
            [tag, code] if as_atom(tag) == Some("error") => {
                Ok(Reply::Error(as_int(code).ok_or_else(bad)?))
            }
            [state, Term::List(list)] => {
                let state = as_int(state).ok_or_else(bad)?;
                let mut nodes = vec![];
                for item in &list.elements {
                    match as_tuple(item) {
                        Some([id, addr]) => nodes.push((id.clone(), addr.clone())),
                        _ => return Err(bad()),
                    }
                }
                Ok(Reply::Status { state, nodes })
            }
            _ => Err(bad()),
        }
    }

    /// A node id of a status entry as text (binaries as they are).
    pub fn node_name(id: &Term) -> String {
        as_bin(id)
            .or_else(|| as_atom(id).map(str::to_string))
            .unwrap_or_else(|| id.to_string())
    }
}

/// An HA_INFO notification: `{64, {Type, Data}}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    NoPrimary(i32),
    SecondaryDied { id: Term, addr: Term },
    SecondaryArrived { id: Term, addr: Term },
    SecondaryInitialized(i32),
    IsPrimary(i32),
    IsNone(i32),
    BeSecondaryResult(i32),
}

impl Event {
    pub fn to_term(&self) -> Term {
        let (kind, data) = match self {
            Event::NoPrimary(c) => (1, int(*c)),
            Event::SecondaryDied { id, addr } => (2, tuple(vec![id.clone(), addr.clone()])),
            Event::SecondaryArrived { id, addr } => (3, tuple(vec![id.clone(), addr.clone()])),
            Event::SecondaryInitialized(v) => (4, int(*v)),
            Event::IsPrimary(v) => (5, int(*v)),
            Event::IsNone(v) => (6, int(*v)),
            Event::BeSecondaryResult(c) => (7, int(*c)),
        };
        tuple(vec![int(MASK_HA_INFO as i32), tuple(vec![int(kind), data])])
    }

    pub fn encode(&self) -> Vec<u8> {
        frame(&encode_term_otp25(&self.to_term()))
    }

    pub fn from_term(t: &Term) -> Result<Event, WireError> {
        let bad = || WireError::Unexpected(format!("not an HA event: {t}"));
        let [mask, body] = as_tuple(t).ok_or_else(bad)? else {
            return Err(bad());
        };
        if as_int(mask) != Some(MASK_HA_INFO as i32) {
            return Err(bad());
        }
        let [kind, data] = as_tuple(body).ok_or_else(bad)? else {
            return Err(bad());
        };
        let pair = || match as_tuple(data) {
            Some([id, addr]) => Ok((id.clone(), addr.clone())),
            _ => Err(bad()),
        };
        let value = || as_int(data).ok_or_else(bad);
        Ok(match as_int(kind).ok_or_else(bad)? {
            1 => Event::NoPrimary(value()?),
            2 => {
                let (id, addr) = pair()?;
                Event::SecondaryDied { id, addr }
            }
            3 => {
                let (id, addr) = pair()?;
                Event::SecondaryArrived { id, addr }
            }
            4 => Event::SecondaryInitialized(value()?),
            5 => Event::IsPrimary(value()?),
            6 => Event::IsNone(value()?),
            7 => Event::BeSecondaryResult(value()?),
            _ => return Err(bad()),
        })
    }
}

/// The notification subscription `{Mask, HeartbeatMs, HealthCheckMs,
/// undefined, ProgressVerbosity}`.
pub fn subscription(mask: u32) -> Vec<u8> {
    let t = tuple(vec![
        int(mask as i32),
        int(0),
        int(0),
        Term::from(Atom::from("undefined")),
        int(0),
    ]);
    frame(&encode_term(&t))
}

/// The acknowledgement of an HA_INFO_SYNC event.
pub fn sync_ack() -> Vec<u8> {
    frame(&encode_term(&Term::from(Atom::from("ha_synced"))))
}

pub mod ipc;

#[cfg(test)]
mod tests;
