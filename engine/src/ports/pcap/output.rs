//! Writing sent frames to a pcap file (Ethernet, microsecond timestamps)
//! through `pcap-file`'s `PcapWriter` over a buffered file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// Snapshot length written in the header; every frame of a buffer fits.
const SNAPLEN: u32 = 65_535;

/// Bytes of file buffer (a few bursts of full-size frames).
const FILE_BUF: usize = 1 << 20;

/// The buffered file under the `PcapWriter`. `PcapWriter` 2.0 cannot lend
/// its writer out, so [`CaptureOut::flush`] takes the file back, flushes it
/// and wraps it again; `swallow` drops the header the new wrapper writes
/// (the file already has one).
struct OutFile {
    file: BufWriter<File>,
    swallow: usize,
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.swallow > 0 {
            let n = buf.len().min(self.swallow);
            self.swallow -= n;
            return Ok(n);
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// An output capture file.
pub(super) struct CaptureOut {
    writer: Option<PcapWriter<OutFile>>,
}

fn header() -> PcapHeader {
    PcapHeader {
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    }
}

impl CaptureOut {
    /// Creates (truncates) `path` and writes the pcap header.
    pub(super) fn create(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| e.to_string())?;
        let out = OutFile {
            file: BufWriter::with_capacity(FILE_BUF, file),
            swallow: 0,
        };
        let writer = PcapWriter::with_header(out, header()).map_err(|e| e.to_string())?;
        Ok(CaptureOut {
            writer: Some(writer),
        })
    }

    /// Appends one frame stamped `ts` (time since the Unix epoch).
    pub(super) fn write(&mut self, ts: Duration, frame: &[u8]) -> bool {
        let Some(w) = &mut self.writer else {
            return false;
        };
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, frame))
            .is_ok()
    }

    /// Writes everything buffered to the file.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        let Some(w) = self.writer.take() else {
            return Err(io::Error::other("output closed after an earlier error"));
        };
        let mut out = w.into_writer();
        let res = out.flush();
        // The header the new wrapper writes is swallowed, so this cannot fail.
        out.swallow = header().write_to(&mut io::sink()).unwrap_or(0);
        self.writer = PcapWriter::with_header(out, header()).ok();
        res
    }
}
