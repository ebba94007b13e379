//! Arbitrary bytes from the HA socket, the notification socket or a fake
//! node's link: every decoder must return, never panic or exhaust memory.
#![no_main]

use fake_confd::link::LinkMsg;
use confd_ha::wire::{decode_term, Deframer, Event, Hello, HelloReply, Order, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Hello::decode(data);
    let _ = HelloReply::decode(data);
    let mut frames = Deframer::default();
    frames.push(data);
    while let Ok(Some(_)) = frames.next_frame() {}
    if let Ok(term) = decode_term(data) {
        let _ = Order::from_term(&term);
        let _ = Reply::from_term(&term);
        let _ = Event::from_term(&term);
    }
    let _ = LinkMsg::decode(data);
});
