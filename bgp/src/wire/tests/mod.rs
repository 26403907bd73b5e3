//! Codec tests: golden bytes captured from BIRD 2 and FRR, RFC 7606 error
//! cases, header/OPEN errors, and property round trips.

mod errors;
mod golden;
mod roundtrip;

use super::*;

/// Bytes from a hex string (whitespace ignored).
pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

/// The received message as the `Message` that would send it (UPDATEs only
/// when parsed cleanly).
pub(super) fn as_message(r: Received) -> Option<Message> {
    Some(match r {
        Received::Open(o) => Message::Open(o),
        Received::Update(UpdateOutcome::Parsed(u)) => Message::Update(u),
        Received::Update(_) => return None,
        Received::Notification(n) => Message::Notification(n),
        Received::Keepalive => Message::Keepalive,
        Received::RouteRefresh(r) => Message::RouteRefresh(r),
    })
}

/// Decodes `bytes`, checks it equals `want`, and that `want` encodes back
/// to exactly `bytes`.
pub(super) fn golden(bytes: &[u8], ctx: &SessionContext, want: &Message) {
    assert_eq!(frame(bytes), Ok(Some(bytes.len())));
    let got = decode_message(bytes, ctx).expect("decodes");
    assert_eq!(as_message(got).as_ref(), Some(want));
    assert_eq!(want.to_bytes(ctx).expect("encodes"), bytes);
}

/// Decodes an UPDATE that must parse cleanly.
pub(super) fn parsed(bytes: &[u8], ctx: &SessionContext) -> Update {
    match decode_message(bytes, ctx) {
        Ok(Received::Update(UpdateOutcome::Parsed(u))) => u,
        other => panic!("not a clean UPDATE: {other:?}"),
    }
}

/// An UPDATE message from a body: header added.
pub(super) fn update_msg(body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(body.len() + 19).unwrap().to_be_bytes());
    m.push(msg_type::UPDATE);
    m.extend_from_slice(body);
    m
}
