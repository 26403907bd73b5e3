//! The 19-byte message header as a zero-copy view (RFC 4271 4.1), and
//! framing of a TCP byte stream into messages.

use super::notification::{code, header_subcode, Notification};

pub const MARKER_LEN: usize = 16;
pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;

const LENGTH: usize = 16;
const TYPE: usize = 18;

/// Message type codes.
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Why a header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than a header (or than the length field says): wait for more.
    #[error("truncated message")]
    Truncated,
    #[error("marker is not all ones")]
    BadMarker,
    #[error("bad message length {0}")]
    BadLength(u16),
    #[error("bad message type {0}")]
    BadType(u8),
}

impl HeaderError {
    /// The NOTIFICATION RFC 4271 6.1 asks for (None for `Truncated`).
    pub fn notification(self) -> Option<Notification> {
        let n = match self {
            HeaderError::Truncated => return None,
            HeaderError::BadMarker => Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ),
            HeaderError::BadLength(len) => Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                len.to_be_bytes().to_vec(),
            ),
            HeaderError::BadType(t) => Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_TYPE,
                vec![t],
            ),
        };
        Some(n)
    }
}

/// The least length each type may have (ROUTE-REFRESH's exact length is
/// checked by its decoder: it has its own error code, RFC 7313).
fn min_len(t: u8) -> Option<usize> {
    match t {
        msg_type::OPEN => Some(29),
        msg_type::UPDATE => Some(23),
        msg_type::NOTIFICATION => Some(21),
        msg_type::KEEPALIVE | msg_type::ROUTE_REFRESH => Some(HEADER_LEN),
        _ => None,
    }
}

/// A view of a message header over a buffer of at least 19 bytes.
#[derive(Clone, Copy, Debug)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// A view that checks nothing but the buffer's size (accessors never
    /// panic: a short buffer reads as zeros).
    pub fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Validates marker, length (19..=4096, at least the type's minimum,
    /// exactly 19 for KEEPALIVE) and type. The buffer may hold less than
    /// the whole message.
    pub fn new_checked(buffer: T) -> Result<Header<T>, HeaderError> {
        let h = Header { buffer };
        let b = h.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(HeaderError::Truncated);
        }
        if b[..MARKER_LEN].iter().any(|&m| m != 0xff) {
            return Err(HeaderError::BadMarker);
        }
        let len = h.length();
        let t = h.msg_type();
        if usize::from(len) < HEADER_LEN || usize::from(len) > MAX_MESSAGE_LEN {
            return Err(HeaderError::BadLength(len));
        }
        let min = min_len(t).ok_or(HeaderError::BadType(t))?;
        if usize::from(len) < min || (t == msg_type::KEEPALIVE && usize::from(len) != HEADER_LEN) {
            return Err(HeaderError::BadLength(len));
        }
        Ok(h)
    }

    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        match b.get(LENGTH..LENGTH + 2) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref().get(TYPE).copied().unwrap_or(0)
    }

    /// The body when the buffer holds the whole message.
    pub fn body(&self) -> Option<&[u8]> {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..usize::from(self.length()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Writes marker, length and type (a buffer under 19 bytes is left alone).
    pub fn fill(&mut self, len: u16, t: u8) {
        if let Some(h) = self.buffer.as_mut().get_mut(..HEADER_LEN) {
            h[..MARKER_LEN].fill(0xff);
            h[LENGTH..LENGTH + 2].copy_from_slice(&len.to_be_bytes());
            h[TYPE] = t;
        }
    }
}

/// The length of the first whole message at the front of `stream`,
/// `Ok(None)` when more bytes are needed, or the NOTIFICATION to send when
/// the header is bad.
pub fn frame(stream: &[u8]) -> Result<Option<usize>, Notification> {
    match Header::new_checked(stream) {
        Ok(h) => {
            let len = usize::from(h.length());
            Ok((stream.len() >= len).then_some(len))
        }
        Err(e) => match e.notification() {
            None => Ok(None),
            Some(n) => Err(n),
        },
    }
}
