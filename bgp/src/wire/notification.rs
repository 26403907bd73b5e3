//! NOTIFICATION messages (RFC 4271 4.5, 6): error codes, subcodes, their
//! names, and the message body's codec.

use super::reader::Reader;

/// Error codes (RFC 4271 4.5, RFC 7313 for code 7).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
}

/// Message Header Error subcodes.
pub mod header_subcode {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271, RFC 5492 for 7).
pub mod open_subcode {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// UPDATE Message Error subcodes.
pub mod update_subcode {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Cease subcodes (RFC 4486).
pub mod cease_subcode {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
}

/// Route-Refresh Message Error subcode (RFC 7313).
pub mod route_refresh_subcode {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// A NOTIFICATION: received from the peer, or to send before closing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("NOTIFICATION {code}/{subcode} ({}: {}), {} data bytes", code_name(*.code), subcode_name(*.code, *.subcode), .data.len())]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// The body after the header: code, subcode, data. Never fails: the
    /// header check guarantees the two bytes (a shorter body gives None).
    pub fn decode(body: &[u8]) -> Option<Notification> {
        let mut r = Reader::new(body);
        let code = r.u8()?;
        let subcode = r.u8()?;
        Some(Notification::new(code, subcode, r.rest().to_vec()))
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }

    pub fn subcode_name(&self) -> &'static str {
        subcode_name(self.code, self.subcode)
    }
}

/// The RFC name of an error code.
pub fn code_name(c: u8) -> &'static str {
    match c {
        code::MESSAGE_HEADER => "Message Header Error",
        code::OPEN_MESSAGE => "OPEN Message Error",
        code::UPDATE_MESSAGE => "UPDATE Message Error",
        code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
        code::FSM => "Finite State Machine Error",
        code::CEASE => "Cease",
        code::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH Message Error",
        _ => "unknown error code",
    }
}

/// The RFC name of a subcode under its code.
pub fn subcode_name(c: u8, s: u8) -> &'static str {
    match (c, s) {
        (_, 0) => "Unspecific",
        (code::MESSAGE_HEADER, 1) => "Connection Not Synchronized",
        (code::MESSAGE_HEADER, 2) => "Bad Message Length",
        (code::MESSAGE_HEADER, 3) => "Bad Message Type",
        (code::OPEN_MESSAGE, 1) => "Unsupported Version Number",
        (code::OPEN_MESSAGE, 2) => "Bad Peer AS",
        (code::OPEN_MESSAGE, 3) => "Bad BGP Identifier",
        (code::OPEN_MESSAGE, 4) => "Unsupported Optional Parameter",
        (code::OPEN_MESSAGE, 6) => "Unacceptable Hold Time",
        (code::OPEN_MESSAGE, 7) => "Unsupported Capability",
        (code::UPDATE_MESSAGE, 1) => "Malformed Attribute List",
        (code::UPDATE_MESSAGE, 2) => "Unrecognized Well-known Attribute",
        (code::UPDATE_MESSAGE, 3) => "Missing Well-known Attribute",
        (code::UPDATE_MESSAGE, 4) => "Attribute Flags Error",
        (code::UPDATE_MESSAGE, 5) => "Attribute Length Error",
        (code::UPDATE_MESSAGE, 6) => "Invalid ORIGIN Attribute",
        (code::UPDATE_MESSAGE, 8) => "Invalid NEXT_HOP Attribute",
        (code::UPDATE_MESSAGE, 9) => "Optional Attribute Error",
        (code::UPDATE_MESSAGE, 10) => "Invalid Network Field",
        (code::UPDATE_MESSAGE, 11) => "Malformed AS_PATH",
        (code::CEASE, 1) => "Maximum Number of Prefixes Reached",
        (code::CEASE, 2) => "Administrative Shutdown",
        (code::CEASE, 3) => "Peer De-configured",
        (code::CEASE, 4) => "Administrative Reset",
        (code::CEASE, 5) => "Connection Rejected",
        (code::CEASE, 6) => "Other Configuration Change",
        (code::CEASE, 7) => "Connection Collision Resolution",
        (code::CEASE, 8) => "Out of Resources",
        (code::ROUTE_REFRESH_MESSAGE, 1) => "Invalid Message Length",
        _ => "unknown subcode",
    }
}
