//! Whole messages: the typed [`Message`], its encoder, and the decoder that
//! checks the header and dispatches on the type.

use super::error::EncodeError;
use super::header::{msg_type, Header, HeaderError, HEADER_LEN, MAX_MESSAGE_LEN};
use super::notification::{code, header_subcode, Notification};
use super::open::{Open, RouteRefresh, SessionContext};
use super::update::{Update, UpdateOutcome};

/// A BGP message to send (or one received whole).
// UPDATE, the common message, is the large variant: boxing it would add an
// allocation per message to save stack bytes on the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// What a received message decodes to.
#[allow(clippy::large_enum_variant)] // as for `Message`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    Open(Open),
    /// Parsed, or what RFC 7606 says to do with it (which may be a
    /// session reset: [`UpdateOutcome::SessionReset`]).
    Update(UpdateOutcome),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Open(_) => msg_type::OPEN,
            Message::Update(_) => msg_type::UPDATE,
            Message::Notification(_) => msg_type::NOTIFICATION,
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }

    /// Appends the whole message (header included) to `out`; on error
    /// `out` is left as it was.
    pub fn encode(&self, ctx: &SessionContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_inner(ctx, out, start);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner(
        &self,
        ctx: &SessionContext,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), EncodeError> {
        out.resize(start + HEADER_LEN, 0);
        match self {
            Message::Open(o) => o.encode_body(out)?,
            Message::Update(u) => u.encode_body(ctx, out)?,
            Message::Notification(n) => n.encode_body(out),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => r.encode_body(out),
        }
        let len = out.len() - start;
        if len > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong);
        }
        let len = u16::try_from(len).map_err(|_| EncodeError::TooLong)?;
        Header::new_unchecked(&mut out[start..]).fill(len, self.msg_type());
        Ok(())
    }

    /// The message as a new byte vector.
    pub fn to_bytes(&self, ctx: &SessionContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(ctx, &mut out)?;
        Ok(out)
    }
}

/// Decodes one whole message (as [`super::frame`] cut it from the stream).
/// `Err` is the NOTIFICATION to send before closing: header errors
/// (RFC 4271 6.1), OPEN errors (6.2), a malformed ROUTE-REFRESH (RFC 7313).
/// UPDATE errors come as [`Received::Update`] with their RFC 7606 outcome.
pub fn decode_message(msg: &[u8], ctx: &SessionContext) -> Result<Received, Notification> {
    let header = Header::new_checked(msg).map_err(|e| {
        e.notification().unwrap_or_else(|| {
            // A truncated buffer given as a whole message: its length is bad.
            let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
            Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                len.to_be_bytes().to_vec(),
            )
        })
    })?;
    if usize::from(header.length()) != msg.len() {
        return Err(HeaderError::BadLength(header.length())
            .notification()
            .unwrap_or_else(|| Notification::new(code::MESSAGE_HEADER, 0, Vec::new())));
    }
    let body = header.body().unwrap_or_default();
    Ok(match header.msg_type() {
        msg_type::OPEN => Received::Open(Open::decode(body)?),
        msg_type::UPDATE => Received::Update(Update::decode(body, ctx)),
        msg_type::NOTIFICATION => Received::Notification(
            Notification::decode(body).ok_or_else(|| bad_length(header.length()))?,
        ),
        msg_type::KEEPALIVE => Received::Keepalive,
        msg_type::ROUTE_REFRESH => Received::RouteRefresh(RouteRefresh::decode(msg, body)?),
        t => return Err(bad_type(t)),
    })
}

fn bad_length(len: u16) -> Notification {
    Notification::new(
        code::MESSAGE_HEADER,
        header_subcode::BAD_MESSAGE_LENGTH,
        len.to_be_bytes().to_vec(),
    )
}

fn bad_type(t: u8) -> Notification {
    Notification::new(
        code::MESSAGE_HEADER,
        header_subcode::BAD_MESSAGE_TYPE,
        vec![t],
    )
}
