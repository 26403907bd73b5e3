//! Fuzzes the BGP message decoder: the first byte picks the session
//! context (4-octet AS or not, IPv6 or not), the rest is a TCP byte stream
//! cut by `frame` and decoded message by message. Nothing may panic; what
//! decodes cleanly must encode again: OPEN, NOTIFICATION, KEEPALIVE and
//! ROUTE-REFRESH to the very same bytes, an UPDATE to one that decodes to
//! the same prefixes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patronus_bgp::wire::{decode_message, frame, Message, Received, SessionContext, UpdateOutcome};

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut stream)) = data.split_first() else {
        return;
    };
    let ctx = SessionContext {
        four_octet_as: head & 1 != 0,
        ipv4_unicast: head & 2 == 0,
        ipv6_unicast: head & 4 != 0,
    };
    // Also the whole rest as one message, whatever its length field says.
    let _ = decode_message(stream, &ctx);
    while let Ok(Some(len)) = frame(stream) {
        let (msg, rest) = stream.split_at(len);
        stream = rest;
        let Ok(received) = decode_message(msg, &ctx) else {
            continue;
        };
        let exact = match received {
            Received::Open(o) => Message::Open(o),
            Received::Notification(n) => Message::Notification(n),
            Received::Keepalive => Message::Keepalive,
            Received::RouteRefresh(r) => Message::RouteRefresh(r),
            Received::Update(UpdateOutcome::Parsed(u)) => {
                check_update(u, &ctx);
                continue;
            }
            Received::Update(_) => continue,
        };
        let again = exact.to_bytes(&ctx).expect("a decoded message encodes");
        assert_eq!(again, msg, "re-encoding changed the bytes");
    }
});

fn check_update(u: patronus_bgp::wire::Update, ctx: &SessionContext) {
    // Families the session did not negotiate are refused by the encoder.
    let Ok(bytes) = Message::Update(u.clone()).to_bytes(ctx) else {
        return;
    };
    match decode_message(&bytes, ctx) {
        Ok(Received::Update(UpdateOutcome::Parsed(q))) => {
            assert!(q.announced_prefixes().eq(u.announced_prefixes()));
            assert!(q.withdrawn_prefixes().eq(u.withdrawn_prefixes()));
            assert_eq!(
                q.mp_reach.map(|r| r.next_hop),
                u.mp_reach.map(|r| r.next_hop)
            );
        }
        other => panic!("re-encoded UPDATE decodes as {other:?}"),
    }
}
