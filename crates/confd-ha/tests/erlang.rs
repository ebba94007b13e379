//! Every kind of term coroha writes on the HA and notification sockets is
//! decoded by Erlang's own `binary_to_term` (erl from Debian's erlang-base,
//! installed by scripts/test.sh) and must come out as the term we meant.
//! Set COROHA_SKIP_ERLANG=1 to skip it explicitly; a missing erl is a
//! failure, not a silent pass.

use confd_ha::wire::{
    encode_term, encode_term_otp25, subscription, sync_ack, Address, Event, Order, Reply,
    MASK_HA_INFO, MASK_HA_INFO_SYNC,
};
use eetf::{Binary, FixInteger, Term, Tuple};
use std::process::Command;

fn v4() -> Term {
    Term::from(Tuple::from(
        [127, 0, 0, 1]
            .iter()
            .map(|n| Term::from(FixInteger::from(*n)))
            .collect::<Vec<_>>(),
    ))
}

fn bin(s: &str) -> Term {
    Term::from(Binary::from(s.as_bytes().to_vec()))
}

/// (what we meant, the bytes we send) for every kind of term we write.
fn samples() -> Vec<(Term, Vec<u8>)> {
    let mut out = vec![];
    let orders = [
        Order::BePrimary { me: "nso1".into() },
        Order::BeSecondary {
            me: "n2".into(),
            primary: "n1".into(),
            address: Address::parse("10.0.0.1"),
            wait: true,
        },
        Order::BeSecondary {
            me: "n2".into(),
            primary: "n1".into(),
            address: Address::parse("fd00::1"),
            wait: false,
        },
        Order::BeSecondary {
            me: "n2".into(),
            primary: "n1".into(),
            address: Address::parse("nso1.example"),
            wait: true,
        },
        Order::BeNone,
        Order::GetStatus,
        Order::SecondaryDead { node: "n3".into() },
        Order::BeRelay,
    ];
    for o in orders {
        let t = o.to_term();
        out.push((t.clone(), encode_term(&t)));
    }
    for frame in [
        subscription(MASK_HA_INFO),
        subscription(MASK_HA_INFO | MASK_HA_INFO_SYNC),
        sync_ack(),
    ] {
        let payload = frame[4..].to_vec();
        out.push((confd_ha::wire::decode_term(&payload).unwrap(), payload));
    }
    // What fake-confd will write, as the server does (ATOM_EXT).
    let replies = [
        Reply::Ok,
        Reply::Error(29),
        Reply::Status {
            state: 3,
            nodes: vec![(bin("n5"), v4()), (bin("n4"), v4())],
        },
        Reply::Status {
            state: 1,
            nodes: vec![],
        },
    ];
    for r in replies {
        let t = r.to_term();
        out.push((t.clone(), encode_term_otp25(&t)));
    }
    let events = [
        Event::NoPrimary(26),
        Event::SecondaryDied {
            id: bin("n5"),
            addr: v4(),
        },
        Event::SecondaryArrived {
            id: bin("n5"),
            addr: v4(),
        },
        Event::SecondaryInitialized(1),
        Event::IsPrimary(0),
        Event::IsNone(0),
        Event::BeSecondaryResult(25),
    ];
    for e in events {
        let t = e.to_term();
        out.push((t.clone(), encode_term_otp25(&t)));
    }
    out
}

/// A term as Erlang's `~w` prints it: eetf's display, with the quotes
/// dropped from atoms that do not need them (`'ok'` is `ok`).
fn erlang_text(t: &Term) -> String {
    let text = t.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find('\'') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('\'').expect("closing quote");
        let name = &after[..end];
        let plain = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
        if plain {
            out.push_str(name);
        } else {
            out.push_str(&format!("'{name}'"));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn erlang_decodes_every_term_we_write_as_the_term_we_meant() {
    if std::env::var_os("COROHA_SKIP_ERLANG").is_some() {
        eprintln!("skipped on request (COROHA_SKIP_ERLANG)");
        return;
    }
    let samples = samples();
    let dir = std::env::temp_dir().join(format!("coroha-erl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("terms.hex");
    let hex: Vec<String> = samples
        .iter()
        .map(|(_, b)| b.iter().map(|x| format!("{x:02X}")).collect())
        .collect();
    std::fs::write(&input, hex.join("\n") + "\n").unwrap();
    let program = format!(
        "{{ok, Bin}} = file:read_file(\"{}\"), \
         [io:format(\"~w~n\", [binary_to_term(binary:decode_hex(L))]) || L <- binary:split(Bin, <<\"\\n\">>, [global, trim_all])], \
         halt().",
        input.display()
    );
    let out = Command::new("erl")
        .args(["-noshell", "-eval", &program])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("cannot run erl ({e}): apt-get install erlang-base (scripts/test.sh does), or set COROHA_SKIP_ERLANG=1"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        samples.len(),
        "erl printed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for ((meant, bytes), erlang) in samples.iter().zip(lines) {
        assert_eq!(erlang, erlang_text(meant), "bytes {bytes:02x?}");
    }
}
