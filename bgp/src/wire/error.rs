//! Errors of the encoders, and the per-attribute faults an UPDATE decode
//! reports (RFC 7606) as `Copy` values a caller can count.

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message (or a length field inside it) would exceed its limit.
    #[error("message too long")]
    TooLong,
    /// Prefixes of a family the session has not negotiated.
    #[error("address family {0:?} not negotiated")]
    FamilyNotNegotiated(crate::types::Afi),
    /// An IPv6 NEXT_HOP in the IPv4 attribute, an IPv4 prefix in an IPv6
    /// MP_REACH, or similar.
    #[error("next hop or prefix of the wrong family")]
    WrongFamily,
    /// IPv4 NLRI without a NEXT_HOP.
    #[error("missing NEXT_HOP")]
    MissingNextHop,
    /// NLRI without path attributes.
    #[error("NLRI without path attributes")]
    MissingAttributes,
}

/// What was wrong with one attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrFault {
    /// Flags disagree with the attribute's category.
    Flags,
    /// Length not allowed for the attribute.
    Length,
    /// Value not allowed (ORIGIN > 2, bad AS_PATH segment, ...).
    Value,
    /// Second and later copies (discarded, RFC 7606 3 g).
    Duplicate,
    /// A mandatory well-known attribute is absent (RFC 7606 3 d).
    Missing,
    /// The attribute runs past the path-attributes field (RFC 7606 4).
    Overrun,
    /// Attribute of an address family this codec does not carry.
    UnsupportedFamily,
}

/// One attribute's fault: the type code and what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttrError {
    pub type_code: u8,
    pub fault: AttrFault,
}
