//! The BGP-4 message codec: typed messages and attributes, decoded from
//! bytes without panics on any input and encoded for a session whose
//! negotiated context ([`SessionContext`]) is passed explicitly.
//!
//! - [`frame`] cuts messages from the TCP stream; [`decode_message`] turns
//!   one into a [`Received`]; [`Message::encode`] writes one.
//! - UPDATE errors follow RFC 7606 ([`UpdateOutcome`]); header and OPEN
//!   errors give the RFC 4271 [`Notification`] to send.

mod attributes;
mod capability;
mod error;
mod header;
mod message;
mod nlri;
mod notification;
mod open;
mod reader;
mod update;

#[cfg(test)]
mod tests;

pub use attributes::{attr_type, flag, passed_on_flags, AS_SEQUENCE, AS_SET};
pub use capability::{cap_code, Capability, GrFamily, GracefulRestart};
pub use error::{AttrError, AttrFault, EncodeError};
pub use header::{frame, msg_type, Header, HeaderError, HEADER_LEN, MARKER_LEN, MAX_MESSAGE_LEN};
pub use message::{decode_message, Message, Received};
pub use nlri::{decode_prefixes, encode_prefixes, BadNlri};
pub use notification::{
    cease_subcode, code, code_name, header_subcode, open_subcode, route_refresh_subcode,
    subcode_name, update_subcode, Notification,
};
pub use open::{Open, RouteRefresh, SessionContext, AS_TRANS, BGP_VERSION, PARAM_CAPABILITIES};
pub use update::{MpReach, MpUnreach, Update, UpdateOutcome};
