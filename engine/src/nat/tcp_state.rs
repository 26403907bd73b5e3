//! TCP connection tracking as far as NAT needs it: which of SYN, FIN and
//! RST were seen in which direction, and so which timeout applies
//! (RFC 5382 §5: established vs transitory).
//!
//! Flags are trusted as seen (no sequence-window check), like most NATs; a
//! forged RST can only shorten a session's idle timeout to the transitory one.

use super::timeouts::TimerClass;
use crate::wire::tcp::{ACK, FIN, RST, SYN};

const SYN_OUT: u8 = 1;
const SYN_IN: u8 = 2;
const FIN_OUT: u8 = 4;
const FIN_IN: u8 = 8;
const RESET: u8 = 16;

/// Flags seen on a TCP session, by direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpState(u8);

impl TcpState {
    /// Updates the state with a packet's TCP flags; `outbound` is the
    /// inside-to-outside direction.
    #[inline]
    pub fn on_packet(&mut self, flags: u8, outbound: bool) {
        if flags & RST != 0 {
            self.0 |= RESET;
            return;
        }
        if flags & SYN != 0 {
            // A fresh SYN on a closed or reset session reuses the 4-tuple
            // for a new connection: start over.
            if flags & ACK == 0 && self.0 & (RESET | FIN_OUT | FIN_IN) != 0 {
                self.0 = 0;
            }
            self.0 |= if outbound { SYN_OUT } else { SYN_IN };
        }
        if flags & FIN != 0 {
            self.0 |= if outbound { FIN_OUT } else { FIN_IN };
        }
    }

    /// The timer class the state implies: RST or FIN both ways ->
    /// transitory; SYN both ways -> established (a FIN one way keeps it
    /// established: a half-closed connection may live on); else initial.
    #[inline]
    pub fn class(self) -> TimerClass {
        let s = self.0;
        if s & RESET != 0 || s & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN {
            TimerClass::TcpTransitory
        } else if s & (SYN_OUT | SYN_IN) == SYN_OUT | SYN_IN {
            TimerClass::TcpEstablished
        } else {
            TimerClass::TcpInitial
        }
    }

    /// Name for listings.
    pub fn name(self) -> &'static str {
        let s = self.0;
        if s & RESET != 0 {
            "reset"
        } else if s & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN {
            "closing"
        } else if s & (FIN_OUT | FIN_IN) != 0 {
            "half-closed"
        } else if s & (SYN_OUT | SYN_IN) == SYN_OUT | SYN_IN {
            "established"
        } else if s & SYN_OUT != 0 {
            "syn-sent"
        } else if s & SYN_IN != 0 {
            "syn-received"
        } else {
            "no-syn"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::PSH;

    /// Packets as (TCP flags, outbound?).
    type Steps = &'static [(u8, bool)];

    fn run(steps: &[(u8, bool)]) -> TcpState {
        let mut s = TcpState::default();
        for &(f, out) in steps {
            s.on_packet(f, out);
        }
        s
    }

    #[test]
    fn transitions() {
        use TimerClass::*;
        let cases: &[(Steps, TimerClass, &str)] = &[
            (&[], TcpInitial, "no-syn"),
            (&[(ACK, true)], TcpInitial, "no-syn"),
            (&[(SYN, true)], TcpInitial, "syn-sent"),
            (&[(SYN, false)], TcpInitial, "syn-received"),
            (
                &[(SYN, true), (SYN | ACK, false)],
                TcpEstablished,
                "established",
            ),
            (
                &[(SYN, false), (SYN | ACK, true)],
                TcpEstablished,
                "established",
            ),
            (
                &[(SYN, true), (SYN | ACK, false), (ACK | PSH, true)],
                TcpEstablished,
                "established",
            ),
            (
                &[(SYN, true), (SYN | ACK, false), (FIN | ACK, true)],
                TcpEstablished,
                "half-closed",
            ),
            (
                &[(SYN, true), (SYN | ACK, false), (FIN | ACK, false)],
                TcpEstablished,
                "half-closed",
            ),
            (
                &[
                    (SYN, true),
                    (SYN | ACK, false),
                    (FIN | ACK, true),
                    (FIN | ACK, false),
                ],
                TcpTransitory,
                "closing",
            ),
            (
                &[(SYN, true), (SYN | ACK, false), (RST, true)],
                TcpTransitory,
                "reset",
            ),
            (&[(SYN, true), (RST | ACK, false)], TcpTransitory, "reset"),
            (
                &[(SYN, true), (SYN | ACK, false), (RST, false), (ACK, true)],
                TcpTransitory,
                "reset",
            ),
            // A new SYN after RST or a close reopens the tuple.
            (
                &[(SYN, true), (RST, false), (SYN, true)],
                TcpInitial,
                "syn-sent",
            ),
            (
                &[
                    (SYN, true),
                    (SYN | ACK, false),
                    (FIN, true),
                    (FIN, false),
                    (SYN, true),
                    (SYN | ACK, false),
                ],
                TcpEstablished,
                "established",
            ),
            // A SYN-ACK (retransmitted) does not reopen a closing session.
            (
                &[
                    (SYN, true),
                    (SYN | ACK, false),
                    (FIN, true),
                    (FIN, false),
                    (SYN | ACK, false),
                ],
                TcpTransitory,
                "closing",
            ),
        ];
        for (steps, class, name) in cases {
            let s = run(steps);
            assert_eq!(s.class(), *class, "{steps:?}");
            assert_eq!(s.name(), *name, "{steps:?}");
        }
    }
}
