use super::*;

#[test]
fn orders_have_the_bytes_of_the_traces() {
    let hex = |o: &Order| {
        o.encode()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        hex(&Order::BePrimary { me: "n3".into() }),
        "0000000c83680261016d000000026e33"
    );
    assert_eq!(hex(&Order::BeNone), "000000058368016103");
    assert_eq!(
        hex(&Order::BeSecondary {
            me: "n4".into(),
            primary: "n3".into(),
            address: Address::parse("127.0.0.3"),
            wait: true
        }),
        "0000002183680461026d000000026e3468026d000000026e336804617f6100610061036101"
    );
}

#[test]
fn deframer_handles_partial_and_joined_frames() {
    let mut d = Deframer::default();
    let both = [Order::GetStatus.encode(), Order::BeNone.encode()].concat();
    d.push(&both[..3]);
    assert_eq!(d.next_frame(), Ok(None));
    d.push(&both[3..]);
    assert_eq!(
        d.next_frame().unwrap().unwrap(),
        encode_term(&Order::GetStatus.to_term())
    );
    assert_eq!(
        d.next_frame().unwrap().unwrap(),
        encode_term(&Order::BeNone.to_term())
    );
    assert_eq!(d.next_frame(), Ok(None));
    d.push(&[0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(d.next_frame(), Err(WireError::FrameTooLarge(_))));
}

#[test]
fn access_check_response_of_the_libconfd_capture() {
    let challenge: Vec<u8> = (0..16)
        .map(|i| {
            u8::from_str_radix(&"cd0550b7b516948b028dfc72a8020ad9"[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    let hex: String = AccessCheck::Md5
        .response(b"s3cr3t\n", &challenge)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, "0cb68c1035ffa9cbcc06f5e3f3021f7cee");
}

#[test]
fn address_forms() {
    assert_eq!(Address::parse("::1"), Address::V6([0, 0, 0, 0, 0, 0, 0, 1]));
    assert_eq!(
        Address::parse("nso1.example"),
        Address::Name("nso1.example".into())
    );
    assert_eq!(Address::parse("10.0.0.1").to_string(), "10.0.0.1");
}
