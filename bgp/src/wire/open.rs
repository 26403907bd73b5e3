//! OPEN (RFC 4271 4.2) with its capability parameters (RFC 5492), and the
//! session context both OPENs negotiate.

use std::net::Ipv4Addr;

use super::capability::Capability;
use super::error::EncodeError;
use super::notification::{code, open_subcode, Notification};
use super::reader::Reader;
use crate::types::{Afi, SAFI_UNICAST};

pub const BGP_VERSION: u8 = 4;
/// The 2-octet stand-in for a 4-octet AS number (RFC 6793).
pub const AS_TRANS: u16 = 23456;
/// Optional parameter type "Capabilities".
pub const PARAM_CAPABILITIES: u8 = 2;

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS for a 4-octet
    /// AS); [`Open::asn`] gives the real one.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// One entry per Capabilities optional parameter, as they came (some
    /// speakers put each capability in its own parameter).
    pub capability_params: Vec<Vec<Capability>>,
}

fn open_error(subcode: u8, data: Vec<u8>) -> Notification {
    Notification::new(code::OPEN_MESSAGE, subcode, data)
}

impl Open {
    /// An OPEN for AS `asn`, all capabilities in one parameter. Put
    /// `Capability::FourOctetAs(asn)` in `caps` to speak 4-octet AS.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, caps: Vec<Capability>) -> Open {
        Open {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capability_params: if caps.is_empty() {
                Vec::new()
            } else {
                vec![caps]
            },
        }
    }

    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.capability_params.iter().flatten()
    }

    /// The AS from the 4-octet AS capability, if sent.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The speaker's AS number.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// True when the capability (by code and, for multiprotocol, family)
    /// was announced.
    pub fn has(&self, cap: &Capability) -> bool {
        self.capabilities().any(|c| match (c, cap) {
            (Capability::Multiprotocol { .. }, Capability::Multiprotocol { .. }) => c == cap,
            _ => c.code() == cap.code(),
        })
    }

    /// Whether `afi` unicast is announced: any multiprotocol capability
    /// lists it, or none is sent and `afi` is IPv4 (RFC 4760 8).
    pub fn announces_unicast(&self, afi: Afi) -> bool {
        let any_mp = self
            .capabilities()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }));
        if !any_mp {
            return afi == Afi::Ipv4;
        }
        self.has(&Capability::unicast(afi))
    }

    /// The body after the header. Errors are the NOTIFICATION to send
    /// (RFC 4271 6.2): version, hold time, identifier, AS 0, parameters.
    pub fn decode(body: &[u8]) -> Result<Open, Notification> {
        let unspecific = || open_error(open_subcode::UNSPECIFIC, Vec::new());
        let mut r = Reader::new(body);
        let version = r.u8().ok_or_else(unspecific)?;
        let my_as = r.u16().ok_or_else(unspecific)?;
        let hold_time = r.u16().ok_or_else(unspecific)?;
        let bgp_id = r.ipv4().ok_or_else(unspecific)?;
        let opt_len = r.u8().ok_or_else(unspecific)?;
        if version != BGP_VERSION {
            return Err(open_error(
                open_subcode::UNSUPPORTED_VERSION_NUMBER,
                u16::from(BGP_VERSION).to_be_bytes().to_vec(),
            ));
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(open_error(open_subcode::UNACCEPTABLE_HOLD_TIME, Vec::new()));
        }
        if bgp_id.is_unspecified() {
            return Err(open_error(open_subcode::BAD_BGP_IDENTIFIER, Vec::new()));
        }
        let params = r.take(usize::from(opt_len)).ok_or_else(unspecific)?;
        if !r.is_empty() {
            return Err(unspecific());
        }
        let mut pr = Reader::new(params);
        let mut capability_params = Vec::new();
        while !pr.is_empty() {
            let ptype = pr.u8().ok_or_else(unspecific)?;
            let plen = pr.u8().ok_or_else(unspecific)?;
            let pval = pr.take(usize::from(plen)).ok_or_else(unspecific)?;
            if ptype != PARAM_CAPABILITIES {
                return Err(open_error(
                    open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                ));
            }
            let mut cr = Reader::new(pval);
            let mut caps = Vec::new();
            while !cr.is_empty() {
                let ccode = cr.u8().ok_or_else(unspecific)?;
                let clen = cr.u8().ok_or_else(unspecific)?;
                let cval = cr.take(usize::from(clen)).ok_or_else(unspecific)?;
                caps.push(Capability::decode(ccode, cval));
            }
            capability_params.push(caps);
        }
        let open = Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capability_params,
        };
        // AS 0 is never valid (RFC 7607).
        if open.asn() == 0 || my_as == 0 {
            return Err(open_error(
                open_subcode::BAD_PEER_AS,
                my_as.to_be_bytes().to_vec(),
            ));
        }
        Ok(open)
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let opt_at = out.len();
        out.push(0);
        for caps in &self.capability_params {
            out.push(PARAM_CAPABILITIES);
            let len_at = out.len();
            out.push(0);
            for c in caps {
                c.encode(out)?;
            }
            out[len_at] = u8::try_from(out.len() - len_at - 1).map_err(|_| EncodeError::TooLong)?;
        }
        out[opt_at] = u8::try_from(out.len() - opt_at - 1).map_err(|_| EncodeError::TooLong)?;
        Ok(())
    }
}

/// What the session negotiated, passed to every encode and decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionContext {
    /// Both sides sent the 4-octet AS capability.
    pub four_octet_as: bool,
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
}

impl SessionContext {
    /// A classic session: 2-octet AS, IPv4 unicast only.
    pub const CLASSIC: SessionContext = SessionContext {
        four_octet_as: false,
        ipv4_unicast: true,
        ipv6_unicast: false,
    };

    /// 4-octet AS with IPv4 and IPv6 unicast.
    pub const MODERN: SessionContext = SessionContext {
        four_octet_as: true,
        ipv4_unicast: true,
        ipv6_unicast: true,
    };

    /// What the two OPENs have in common.
    pub fn negotiated(local: &Open, remote: &Open) -> SessionContext {
        let both = |afi| local.announces_unicast(afi) && remote.announces_unicast(afi);
        SessionContext {
            four_octet_as: local.four_octet_as().is_some() && remote.four_octet_as().is_some(),
            ipv4_unicast: both(Afi::Ipv4),
            ipv6_unicast: both(Afi::Ipv6),
        }
    }

    pub fn carries(&self, afi: Afi) -> bool {
        match afi {
            Afi::Ipv4 => self.ipv4_unicast,
            Afi::Ipv6 => self.ipv6_unicast,
        }
    }
}

/// A ROUTE-REFRESH message (RFC 2918; the subtype byte is RFC 7313's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub afi: u16,
    /// 0 = normal request (1/2 = BoRR/EoRR, RFC 7313).
    pub subtype: u8,
    pub safi: u8,
}

impl RouteRefresh {
    pub fn unicast(afi: Afi) -> RouteRefresh {
        RouteRefresh {
            afi: afi as u16,
            subtype: 0,
            safi: SAFI_UNICAST,
        }
    }

    /// The family, when it is one this codec carries.
    pub fn afi(&self) -> Option<Afi> {
        match (self.afi, self.safi) {
            (1, SAFI_UNICAST) => Some(Afi::Ipv4),
            (2, SAFI_UNICAST) => Some(Afi::Ipv6),
            _ => None,
        }
    }

    /// `message` is the whole message (its copy goes in the error's data).
    pub(crate) fn decode(message: &[u8], body: &[u8]) -> Result<RouteRefresh, Notification> {
        match *body {
            [a0, a1, subtype, safi] => Ok(RouteRefresh {
                afi: u16::from_be_bytes([a0, a1]),
                subtype,
                safi,
            }),
            _ => Err(Notification::new(
                code::ROUTE_REFRESH_MESSAGE,
                super::notification::route_refresh_subcode::INVALID_MESSAGE_LENGTH,
                message.to_vec(),
            )),
        }
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.afi.to_be_bytes());
        out.push(self.subtype);
        out.push(self.safi);
    }
}
