//! Replays every step of the byte-exact conversations captured from a real
//! ConfD 8.2.5 (crates/coroha-testkit/data/confd-8.2.5-ha-vectors.json, a copy of
//! crates/coroha-testkit/data/confd-8.2.5-ha-vectors.json) through the wire layer: each
//! handshake, order, reply and event must decode to a typed value and encode
//! back to the very same bytes; the malformed orders of the traces must be
//! refused.

use confd_ha::wire::{decode_term, Event, Hello, HelloReply, Order, Reply};

use coroha_testkit::{bytes, cases};

/// A framed ETF payload (4-byte length, then 131 ...), if the step is one.
fn etf_payload(b: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    (b.len() == 4 + len && b.get(4) == Some(&131)).then(|| &b[4..])
}

#[derive(Default, Debug)]
struct Counts {
    hellos: usize,
    hello_replies: usize,
    orders: usize,
    replies: usize,
    events: usize,
    refused_orders: usize,
}

#[test]
fn every_captured_step_round_trips_byte_for_byte() {
    let mut n = Counts::default();
    let mut failures = vec![];
    for case in cases() {
        for (k, step) in case.steps.iter().enumerate() {
            let b = bytes(&step.hex);
            let at = format!(
                "{} step {k} ({}, {}): {}",
                case.name, step.dir, step.conn, step.decoded
            );
            if step.decoded.starts_with("handshake type") {
                let h = Hello::decode(&b).unwrap();
                if h.encode().as_slice() != b.as_slice() {
                    failures.push(format!("{at}: hello re-encodes differently"));
                }
                n.hellos += 1;
            } else if step.decoded.starts_with("handshake reply") {
                let r = HelloReply::decode(&b).unwrap();
                if r.encode().as_slice() != b.as_slice() {
                    failures.push(format!("{at}: reply re-encodes differently"));
                }
                n.hello_replies += 1;
            } else if let Some(payload) = etf_payload(&b) {
                let term = decode_term(payload).unwrap_or_else(|e| panic!("{at}: {e}"));
                if step.dir == "c2s" {
                    match Order::from_term(&term) {
                        Ok(order) => {
                            if order.encode() != b {
                                failures.push(format!("{at}: order re-encodes differently"));
                            }
                            n.orders += 1;
                        }
                        Err(_) => n.refused_orders += 1,
                    }
                } else if let Ok(reply) = Reply::from_term(&term) {
                    if reply.encode() != b {
                        failures.push(format!("{at}: reply re-encodes as {:02x?}", reply.encode()));
                    }
                    n.replies += 1;
                } else if let Ok(event) = Event::from_term(&term) {
                    if event.encode() != b {
                        failures.push(format!("{at}: event re-encodes as {:02x?}", event.encode()));
                    }
                    n.events += 1;
                } else if !step.decoded.contains("error,18") {
                    failures.push(format!("{at}: neither a reply nor an event"));
                }
            }
        }
    }
    eprintln!("{n:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n.hellos > 60 && n.hello_replies > 50, "{n:?}");
    assert!(n.orders > 100 && n.replies > 100 && n.events > 50, "{n:?}");
}

#[test]
fn the_orders_that_knock_a_real_node_over_are_refused() {
    let hazards = [
        "{2,<<\"n5\">>,{<<\"n3\">>,{127,0,0,3}},true}",
        "{2,<<\"n5\">>,{<<\"n3\">>,{127,0,0,3}},2}",
        "{2,<<\"n5\">>,{<<\"n3\">>,{127,0,0,3,1}},1}",
        "{2,5,{<<\"n3\">>,{127,0,0,3}},1}",
        "{2,n5,{<<\"n3\">>,{127,0,0,3}},1}",
        "{1,5}",
        "{4,1}",
        "{99}",
    ];
    let mut seen = 0;
    for case in cases() {
        for step in case.steps.iter().filter(|s| s.dir == "c2s") {
            let text = step.decoded.split("  %%").next().unwrap().trim();
            if hazards.contains(&text) {
                let b = bytes(&step.hex);
                let term = decode_term(etf_payload(&b).unwrap()).unwrap();
                assert!(Order::from_term(&term).is_err(), "{text} was accepted");
                seen += 1;
            }
        }
    }
    assert!(
        seen >= hazards.len(),
        "only {seen} hazardous orders found in the traces"
    );
}

#[test]
fn huge_counts_and_unsupported_tags_are_refused_not_allocated() {
    // A list claiming 4 billion elements, a binary claiming 4 GiB, an atom
    // cache reference and a distribution header (eetf panics on those two).
    for bad in [
        vec![131, 108, 0xff, 0xff, 0xff, 0xff, 106],
        vec![131, 109, 0xff, 0xff, 0xff, 0xff, 1],
        vec![131, 105, 0xff, 0xff, 0xff, 0xff],
        vec![131, 82, 0],
        vec![131, 68, 0],
    ] {
        assert!(decode_term(&bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn the_decoder_survives_arbitrary_bytes() {
    let mut x: u64 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 64) as usize;
        let mut data = vec![131u8];
        let mut y = x;
        for _ in 0..len {
            y = y
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            data.push((y >> 56) as u8);
        }
        if let Ok(t) = decode_term(&data) {
            let _ = (
                Order::from_term(&t),
                Reply::from_term(&t),
                Event::from_term(&t),
            );
        }
    }
}

#[test]
fn mutated_captures_never_panic_the_decoder() {
    let payloads: Vec<Vec<u8>> = cases()
        .iter()
        .flat_map(|c| c.steps.iter())
        .filter_map(|s| etf_payload(&bytes(&s.hex)).map(<[u8]>::to_vec))
        .collect();
    let mut x: u64 = 42;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut decoded = 0;
    for round in 0..50_000 {
        let mut p = payloads[(next() as usize) % payloads.len()].clone();
        for _ in 0..1 + round % 4 {
            let i = (next() as usize) % p.len();
            match next() % 3 {
                0 => p[i] ^= 1 << (next() % 8),
                1 => p[i] = next() as u8,
                _ => p.truncate(i.max(1)),
            }
        }
        if let Ok(t) = decode_term(&p) {
            decoded += 1;
            let _ = (
                Order::from_term(&t),
                Reply::from_term(&t),
                Event::from_term(&t),
            );
        }
    }
    assert!(
        decoded > 1000,
        "mutations too destructive to exercise the decoders: {decoded}"
    );
}

/// The read-only requests and replies captured from the real server: the
/// client's requests are byte for byte what libconfd sent, and every reply
/// decodes to what the server meant (ok, or ecode 18 with its reason).
#[test]
fn captured_read_only_requests_and_replies_match() {
    use confd_ha::wire::ipc::{decode_reply, set_readonly_request, IpcReply};
    let mut requests = 0;
    let mut replies = 0;
    for case in coroha_testkit::maapi_read_only_cases() {
        for step in &case.steps {
            let b = bytes(&step.hex);
            if !step.decoded.contains("SET_READONLY") || b.is_empty() {
                continue;
            }
            if step.dir == "c2s" {
                // The integer forms are the ones a client should send.
                if step.decoded.ends_with("term 1") {
                    assert_eq!(set_readonly_request(true), b, "{}", step.decoded);
                    requests += 1;
                } else if step.decoded.ends_with("term 0") {
                    assert_eq!(set_readonly_request(false), b, "{}", step.decoded);
                    requests += 1;
                }
            } else {
                let reply = decode_reply(&b[4..]).unwrap();
                if step.decoded.starts_with("ERROR") {
                    assert!(
                        matches!(
                            &reply,
                            IpcReply::Error {
                                op: 229,
                                code: 18,
                                ..
                            }
                        ),
                        "{reply:?}"
                    );
                } else {
                    assert_eq!(
                        reply,
                        IpcReply::Ok {
                            op: 229,
                            value: None
                        }
                    );
                }
                replies += 1;
            }
        }
    }
    assert!(
        requests >= 6 && replies >= 8,
        "{requests} requests, {replies} replies"
    );
}

/// Every `cdb_get_txid` the real server answered: the request is byte for
/// byte ours, and every reply decodes to the triple (and node id) the
/// capture's own decoder printed, in both integer encodings and both forms.
#[test]
fn captured_txid_requests_and_replies_match() {
    use confd_ha::wire::ipc::{decode_reply, get_txid_request, txid_from_term, IpcReply};
    let (mut requests, mut bare, mut tagged, mut empty) = (0, 0, 0, 0);
    for case in coroha_testkit::cdb_txid_cases() {
        for step in &case.steps {
            let b = bytes(&step.hex);
            if !step.decoded.contains("GET_TXID") || b.is_empty() {
                continue;
            }
            if step.dir == "c2s" {
                assert_eq!(get_txid_request(), b, "{}", step.decoded);
                requests += 1;
                continue;
            }
            let IpcReply::Ok {
                op: 66,
                value: Some(term),
            } = decode_reply(&b[4..]).unwrap()
            else {
                panic!("{}: not a txid reply", step.decoded);
            };
            let txid = txid_from_term(&term).unwrap();
            let s = txid.stamp;
            let triple = format!("{{{},{},{}}}", s.mega, s.secs, s.micros);
            let expected = match &txid.primary {
                Some(name) => format!("term {{<<\"{name}\">>,{triple}}}"),
                None => format!("term {triple}"),
            };
            assert!(
                step.decoded.ends_with(&expected),
                "{} decoded as {expected}",
                step.decoded
            );
            match (&txid.primary, s.is_empty()) {
                (_, true) => empty += 1,
                (Some(_), false) => tagged += 1,
                (None, false) => bare += 1,
            }
        }
    }
    assert!(
        requests >= 50 && bare >= 10 && tagged >= 20 && empty >= 1,
        "{requests} requests, {bare} bare, {tagged} tagged, {empty} empty"
    );
}
