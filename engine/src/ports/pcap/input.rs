//! Reading a capture file (pcap or pcapng, told apart by the magic number)
//! one record at a time, straight into a caller's buffer.
//!
//! Records are taken raw from `pcap-file` (`next_raw_packet`,
//! `next_raw_block`): its validated packet types reject legitimate truncated
//! records (`orig_len > snaplen`) and parse pcapng options into a `Vec` per
//! packet, so the few fixed fields are read here instead.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{DataLink, Endianness};

/// libpcap's largest snapshot length; a record claiming more is corrupt.
const MAX_RECORD_LEN: u32 = 262_144;

/// Link type number of Ethernet (DLT_EN10MB).
pub(super) const LINKTYPE_ETHERNET: u32 = 1;

/// What reading one record gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Record {
    /// An Ethernet frame of this many bytes, copied to the output buffer.
    Frame(usize),
    /// A frame of another link type (skipped).
    NotEthernet,
    /// A frame larger than the output buffer (skipped).
    Oversize,
    /// A block that holds no packet (pcapng statistics, names, ...).
    NoPacket,
    /// End of file.
    End,
    /// The file is damaged here; nothing after it can be trusted.
    Corrupt,
}

/// An open capture.
pub(super) enum Capture {
    Pcap(PcapReader<File>),
    PcapNg(NgReader),
}

/// A pcapng reader and a copy of its interface table (link type, snaplen).
/// The copy is needed because a block borrows the reader while it is looked
/// at; it is refreshed after section and interface blocks, the only ones
/// that change the table, and reuses its storage.
pub(super) struct NgReader {
    reader: PcapNgReader<File>,
    ifaces: Vec<(u32, u32)>,
    stale: bool,
}

/// A packet record's fields common to both formats.
struct Raw<'a> {
    linktype: u32,
    data: &'a [u8],
}

fn u32_at(b: &[u8], at: usize, e: Endianness) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(match e {
        Endianness::Big => u32::from_be_bytes(v),
        Endianness::Little => u32::from_le_bytes(v),
    })
}

fn u16_at(b: &[u8], at: usize, e: Endianness) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(match e {
        Endianness::Big => u16::from_be_bytes(v),
        Endianness::Little => u16::from_le_bytes(v),
    })
}

/// Describes a link type for error messages: "113 (LINUX_SLL)".
pub(super) fn linktype_name(lt: u32) -> String {
    format!("{lt} ({:?})", DataLink::from(lt))
}

impl Capture {
    /// Opens `path`, telling pcap from pcapng by its first four bytes.
    pub(super) fn open(path: &Path) -> Result<Self, String> {
        let mut f = File::open(path).map_err(|e| e.to_string())?;
        let mut magic = [0u8; 4];
        f.read_exact(&mut magic)
            .map_err(|_| "too short to be a pcap or pcapng file".to_string())?;
        // Reopen rather than seek so the readers see the file from its start.
        let f = File::open(path).map_err(|e| e.to_string())?;
        match u32::from_be_bytes(magic) {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => PcapReader::new(f)
                .map(Capture::Pcap)
                .map_err(|e| format!("bad pcap header: {e}")),
            0x0a0d_0d0a => PcapNgReader::new(f)
                .map(|reader| {
                    Capture::PcapNg(NgReader {
                        reader,
                        ifaces: Vec::new(),
                        stale: true,
                    })
                })
                .map_err(|e| format!("bad pcapng section header: {e}")),
            m => Err(format!("not a pcap or pcapng file (magic {m:#010x})")),
        }
    }

    /// The link type of a pcap file (pcapng has one per interface).
    pub(super) fn pcap_linktype(&self) -> Option<u32> {
        match self {
            Capture::Pcap(r) => Some(r.header().datalink.into()),
            Capture::PcapNg(_) => None,
        }
    }

    /// Reads the next record; copies an Ethernet frame that fits into `out`.
    pub(super) fn next_into(&mut self, out: &mut [u8]) -> Record {
        self.next_with(|raw| {
            if raw.linktype != LINKTYPE_ETHERNET {
                Record::NotEthernet
            } else if raw.data.len() > out.len() {
                Record::Oversize
            } else {
                out[..raw.data.len()].copy_from_slice(raw.data);
                Record::Frame(raw.data.len())
            }
        })
    }

    /// Reads the next record without copying: `Ok(linktype)` for a packet.
    pub(super) fn next_linktype(&mut self) -> Result<u32, Record> {
        let mut lt = 0;
        match self.next_with(|raw| {
            lt = raw.linktype;
            Record::Frame(0)
        }) {
            Record::Frame(_) => Ok(lt),
            other => Err(other),
        }
    }

    fn next_with(&mut self, mut on_packet: impl FnMut(Raw<'_>) -> Record) -> Record {
        match self {
            Capture::Pcap(r) => {
                let linktype = r.header().datalink.into();
                match r.next_raw_packet() {
                    None => Record::End,
                    Some(Err(_)) => Record::Corrupt,
                    Some(Ok(p)) if p.incl_len > MAX_RECORD_LEN => Record::Corrupt,
                    Some(Ok(p)) => on_packet(Raw {
                        linktype,
                        data: &p.data,
                    }),
                }
            }
            Capture::PcapNg(ng) => {
                if ng.stale {
                    ng.ifaces.clear();
                    ng.ifaces.extend(
                        ng.reader
                            .interfaces()
                            .iter()
                            .map(|i| (u32::from(i.linktype), i.snaplen)),
                    );
                    ng.stale = false;
                }
                // A section header changes the byte order only for the blocks
                // after it, so reading it before the block is right.
                let e = ng.reader.section().endianness;
                let block = match ng.reader.next_raw_block() {
                    None => return Record::End,
                    Some(Err(_)) => return Record::Corrupt,
                    Some(Ok(b)) => b,
                };
                let body: &[u8] = &block.body;
                let ifaces = &ng.ifaces;
                // (interface, captured bytes) of the packet blocks.
                let packet = match block.type_ {
                    ENHANCED_PACKET_BLOCK => u32_at(body, 0, e)
                        .zip(u32_at(body, 12, e))
                        .and_then(|(ifc, cap)| Some((ifc, body.get(20..20 + cap as usize)?))),
                    PACKET_BLOCK => {
                        u16_at(body, 0, e)
                            .zip(u32_at(body, 12, e))
                            .and_then(|(ifc, cap)| {
                                Some((u32::from(ifc), body.get(20..20 + cap as usize)?))
                            })
                    }
                    SIMPLE_PACKET_BLOCK => u32_at(body, 0, e).and_then(|orig| {
                        // The captured part is the original length, cut at the
                        // interface's snaplen and at the block's end (padding).
                        let snap = ifaces.first().map_or(0, |i| i.1);
                        let mut cap = orig as usize;
                        if snap != 0 {
                            cap = cap.min(snap as usize);
                        }
                        let data = body.get(4..)?;
                        Some((0, &data[..cap.min(data.len())]))
                    }),
                    SECTION_HEADER_BLOCK | INTERFACE_DESCRIPTION_BLOCK => {
                        ng.stale = true;
                        return Record::NoPacket;
                    }
                    _ => return Record::NoPacket,
                };
                let Some((ifc, data)) = packet else {
                    return Record::Corrupt;
                };
                if data.len() > MAX_RECORD_LEN as usize {
                    return Record::Corrupt;
                }
                match ifaces.get(ifc as usize) {
                    // A packet of an interface never described: skip it.
                    None => Record::NotEthernet,
                    Some(&(linktype, _)) => on_packet(Raw { linktype, data }),
                }
            }
        }
    }
}

/// Checks that a capture holds Ethernet frames: a pcap must declare link type
/// 1; a pcapng is scanned until its first packet on an Ethernet interface.
/// A capture with no packets at all is accepted (it just ends at once).
pub(super) fn check_ethernet(path: &Path) -> Result<(), String> {
    let mut cap = Capture::open(path)?;
    if let Some(lt) = cap.pcap_linktype() {
        if lt != LINKTYPE_ETHERNET {
            return Err(format!(
                "link type {} is not Ethernet ({LINKTYPE_ETHERNET}); only Ethernet captures are supported",
                linktype_name(lt)
            ));
        }
        return Ok(());
    }
    let mut seen: Vec<u32> = Vec::new();
    loop {
        match cap.next_linktype() {
            Ok(LINKTYPE_ETHERNET) => return Ok(()),
            Ok(lt) => {
                if !seen.contains(&lt) {
                    seen.push(lt);
                }
            }
            Err(Record::NoPacket | Record::NotEthernet) => {}
            Err(_) => break,
        }
    }
    if seen.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = seen.into_iter().map(linktype_name).collect();
    Err(format!(
        "no Ethernet frames: packets have link type {}; only Ethernet ({LINKTYPE_ETHERNET}) is supported",
        names.join(", ")
    ))
}
