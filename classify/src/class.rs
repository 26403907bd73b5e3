//! The classes the classifier tells apart (those of the nDPI corpus
//! README), and how nDPI's protocol labels map onto them.

use serde::{Deserialize, Serialize};

/// An application class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Http,
    Tls,
    Ssh,
    Ftp,
    Dns,
    Smtp,
    Quic,
    Webrtc,
    Bittorrent,
    /// Identified, but none of the above.
    Other,
    /// Not identified.
    Unknown,
}

impl Class {
    /// Every class, in a stable order (model outputs follow it).
    pub const ALL: [Class; 11] = [
        Class::Http,
        Class::Tls,
        Class::Ssh,
        Class::Ftp,
        Class::Dns,
        Class::Smtp,
        Class::Quic,
        Class::Webrtc,
        Class::Bittorrent,
        Class::Other,
        Class::Unknown,
    ];
    /// The nine named classes (macro-F1 is taken over these).
    pub const NAMED: [Class; 9] = [
        Class::Http,
        Class::Tls,
        Class::Ssh,
        Class::Ftp,
        Class::Dns,
        Class::Smtp,
        Class::Quic,
        Class::Webrtc,
        Class::Bittorrent,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Class::Http => "http",
            Class::Tls => "tls",
            Class::Ssh => "ssh",
            Class::Ftp => "ftp",
            Class::Dns => "dns",
            Class::Smtp => "smtp",
            Class::Quic => "quic",
            Class::Webrtc => "webrtc",
            Class::Bittorrent => "bittorrent",
            Class::Other => "other",
            Class::Unknown => "unknown",
        }
    }

    pub fn from_label(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.label() == s)
    }

    /// The class of an nDPI master protocol name, if it is one of ours.
    fn of_ndpi_protocol(name: &str) -> Option<Class> {
        Some(match name {
            "HTTP" | "HTTP_Proxy" | "HTTP_Connect" => Class::Http,
            "TLS" => Class::Tls,
            "SSH" => Class::Ssh,
            "FTP_CONTROL" | "FTP_DATA" => Class::Ftp,
            "DNS" => Class::Dns,
            "SMTP" => Class::Smtp,
            "QUIC" => Class::Quic,
            "STUN" | "DTLS" | "RTP" | "RTCP" | "SRTP" => Class::Webrtc,
            "BitTorrent" => Class::Bittorrent,
            _ => return None,
        })
    }

    /// The class of an nDPI label `MASTER` or `MASTER.APP` (as in
    /// `[proto: 91.178/TLS.Amazon]`, the part after the slash): the master
    /// decides; where it is not one of ours the application does
    /// (`X.DNS` is dns); `Unknown` is unknown; anything else is other.
    pub fn from_ndpi(label: &str) -> Class {
        let (master, app) = match label.split_once('.') {
            Some((m, a)) => (m, Some(a)),
            None => (label, None),
        };
        if master == "Unknown" && app.is_none() {
            return Class::Unknown;
        }
        Class::of_ndpi_protocol(master)
            .or_else(|| app.and_then(Class::of_ndpi_protocol))
            .unwrap_or(Class::Other)
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndpi_labels_map_as_the_corpus_readme_says() {
        assert_eq!(Class::from_ndpi("TLS.Amazon"), Class::Tls);
        assert_eq!(Class::from_ndpi("HTTP_Proxy"), Class::Http);
        assert_eq!(Class::from_ndpi("FTP_DATA"), Class::Ftp);
        assert_eq!(Class::from_ndpi("STUN.WhatsApp"), Class::Webrtc);
        assert_eq!(Class::from_ndpi("RTCP"), Class::Webrtc);
        assert_eq!(Class::from_ndpi("DNScrypt"), Class::Other);
        assert_eq!(Class::from_ndpi("AVASTSecureDNS.DNS"), Class::Dns);
        assert_eq!(Class::from_ndpi("Unknown"), Class::Unknown);
        assert_eq!(Class::from_ndpi("NTP"), Class::Other);
        for c in Class::ALL {
            assert_eq!(Class::from_label(c.label()), Some(c));
        }
    }
}
