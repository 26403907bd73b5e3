//! Capabilities carried in OPEN's optional parameter 2 (RFC 5492):
//! multiprotocol (RFC 4760), route refresh (RFC 2918), graceful restart
//! (RFC 4724), 4-octet AS (RFC 6793); any other kept as bytes.

use super::error::EncodeError;
use super::reader::Reader;
use crate::types::{Afi, SAFI_UNICAST};

/// Capability codes.
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// One address family a graceful-restart capability covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrFamily {
    pub afi: u16,
    pub safi: u8,
    /// Flags byte; bit 0x80 = forwarding state preserved.
    pub flags: u8,
}

impl GrFamily {
    pub const FORWARDING_PRESERVED: u8 = 0x80;

    pub fn forwarding_preserved(&self) -> bool {
        self.flags & Self::FORWARDING_PRESERVED != 0
    }
}

/// The graceful-restart capability (RFC 4724 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The 4 flag bits (0x8 = Restart State, 0x4 = Notification, RFC 8538).
    pub restart_flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time_secs: u16,
    pub families: Vec<GrFamily>,
}

impl GracefulRestart {
    pub const RESTART_STATE: u8 = 0x8;

    pub fn restart_state(&self) -> bool {
        self.restart_flags & Self::RESTART_STATE != 0
    }
}

/// A capability.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    RouteRefresh,
    FourOctetAs(u32),
    GracefulRestart(GracefulRestart),
    /// Not interpreted (or of a length its code does not allow): kept.
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    /// Multiprotocol capability for `afi` unicast.
    pub fn unicast(afi: Afi) -> Capability {
        Capability::Multiprotocol {
            afi: afi as u16,
            safi: SAFI_UNICAST,
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => cap_code::MULTIPROTOCOL,
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::FourOctetAs(_) => cap_code::FOUR_OCTET_AS,
            Capability::GracefulRestart(_) => cap_code::GRACEFUL_RESTART,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// One capability from its code and value; a known code with a value
    /// that does not fit is kept as `Unknown`.
    pub fn decode(code: u8, value: &[u8]) -> Capability {
        Self::decode_known(code, value).unwrap_or_else(|| Capability::Unknown {
            code,
            value: value.to_vec(),
        })
    }

    fn decode_known(code: u8, value: &[u8]) -> Option<Capability> {
        let mut r = Reader::new(value);
        let cap = match code {
            cap_code::MULTIPROTOCOL => {
                let afi = r.u16()?;
                let reserved = r.u8()?;
                let safi = r.u8()?;
                // A non-zero reserved byte stays raw so it re-encodes as sent.
                if reserved != 0 {
                    return None;
                }
                Capability::Multiprotocol { afi, safi }
            }
            cap_code::ROUTE_REFRESH => Capability::RouteRefresh,
            cap_code::FOUR_OCTET_AS => Capability::FourOctetAs(r.u32()?),
            cap_code::GRACEFUL_RESTART => {
                let word = r.u16()?;
                if r.remaining() % 4 != 0 {
                    return None;
                }
                let mut families = Vec::with_capacity(r.remaining() / 4);
                while !r.is_empty() {
                    families.push(GrFamily {
                        afi: r.u16()?,
                        safi: r.u8()?,
                        flags: r.u8()?,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_flags: (word >> 12) as u8,
                    restart_time_secs: word & 0x0fff,
                    families,
                })
            }
            _ => return None,
        };
        r.is_empty().then_some(cap)
    }

    /// Appends code, length and value.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.code());
        let len_at = out.len();
        out.push(0);
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.push(0);
                out.push(*safi);
            }
            Capability::RouteRefresh => {}
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::GracefulRestart(gr) => {
                let word =
                    (u16::from(gr.restart_flags & 0xf) << 12) | (gr.restart_time_secs & 0x0fff);
                out.extend_from_slice(&word.to_be_bytes());
                for f in &gr.families {
                    out.extend_from_slice(&f.afi.to_be_bytes());
                    out.push(f.safi);
                    out.push(f.flags);
                }
            }
            Capability::Unknown { value, .. } => out.extend_from_slice(value),
        }
        out[len_at] = u8::try_from(out.len() - len_at - 1).map_err(|_| EncodeError::TooLong)?;
        Ok(())
    }
}
