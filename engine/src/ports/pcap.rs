//! The `pcap` driver: receives the frames of a capture file (pcap or pcapng)
//! and writes every frame sent to a pcap file.
//!
//! - Input (`input`): only queue 0 reads it (other queues receive nothing and
//!   report exhausted at once), lazily, burst by burst, one frame per pool
//!   buffer. Only Ethernet (link type 1) frames are delivered; frames of other
//!   link types and frames larger than a buffer's data room are skipped and
//!   counted in `rx_errors`; a capture without any Ethernet frame is refused
//!   at open. Truncated records (caplen < origlen) are delivered as captured.
//!   A damaged file stops the input with one `rx_errors`.
//! - Output (`output`): queue 0 writes exactly `output`; queue `k > 0` writes
//!   `output` with `.qK` appended (`out.pcap.q1`, ...), so workers never share
//!   a file. Ethernet link type, microsecond timestamps from the wall clock
//!   (read once per burst), buffered; [`Port::flush`] writes it out.

mod input;
mod output;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use self::input::{Capture, Record};
use self::output::CaptureOut;
use super::mem::port_mac;
use super::{LinkInfo, Port, PortError, PortStats, TxDone};
use crate::buffer::{Batch, PacketPool, BUF_DATA_ROOM};
use crate::config::PortConfig;

/// One queue of a `pcap` port.
pub struct PcapPort {
    name: String,
    mac: [u8; 6],
    mtu: u16,
    input: Option<Capture>,
    output: Option<CaptureOut>,
    stats: PortStats,
}

/// The output file of queue `queue`: `output` itself for queue 0, else
/// `output` + `.q<queue>`.
pub fn output_path(output: &Path, queue: usize) -> PathBuf {
    if queue == 0 {
        return output.to_path_buf();
    }
    let mut s = OsString::from(output.as_os_str());
    s.push(format!(".q{queue}"));
    PathBuf::from(s)
}

impl PcapPort {
    /// Opens queue `queue` of `nqueues`: the input (queue 0 only) after
    /// checking it holds Ethernet frames, and this queue's output file.
    pub fn open(cfg: &PortConfig, queue: usize, _nqueues: usize) -> Result<Self, PortError> {
        let file_err = |path: &Path, msg: String| PortError::File {
            port: cfg.name.clone(),
            path: path.display().to_string(),
            msg,
        };
        let input = match &cfg.input {
            Some(path) if queue == 0 => {
                input::check_ethernet(path).map_err(|m| file_err(path, m))?;
                Some(Capture::open(path).map_err(|m| file_err(path, m))?)
            }
            _ => None,
        };
        let output = match &cfg.output {
            Some(path) => {
                let path = output_path(path, queue);
                Some(CaptureOut::create(&path).map_err(|m| file_err(&path, m))?)
            }
            None => None,
        };
        Ok(PcapPort {
            name: cfg.name.clone(),
            mac: port_mac(cfg)?,
            mtu: cfg.mtu.unwrap_or(1500),
            input,
            output,
            stats: PortStats::default(),
        })
    }
}

impl Port for PcapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let Some(cap) = &mut self.input else {
            return 0;
        };
        let mut got = 0;
        // A buffer is taken before a record is read, so an empty pool never
        // costs a frame; a skipped record leaves the buffer for the next one.
        let mut spare = None;
        while batch.space() > 0 {
            let mut p = match spare.take().or_else(|| pool.alloc()) {
                Some(p) => p,
                None => break,
            };
            let room = p.room_mut();
            let room_len = room.len().min(BUF_DATA_ROOM);
            match cap.next_into(&mut room[..room_len]) {
                Record::Frame(len) => {
                    // `len <= room_len`, so this cannot fail.
                    if p.set_len(len).is_none() || batch.push(p).is_err() {
                        self.stats.rx_errors += 1;
                        continue;
                    }
                    got += 1;
                }
                Record::NoPacket => spare = Some(p),
                Record::NotEthernet | Record::Oversize => {
                    self.stats.rx_errors += 1;
                    spare = Some(p);
                }
                Record::End => {
                    self.input = None;
                    break;
                }
                Record::Corrupt => {
                    self.stats.rx_errors += 1;
                    self.input = None;
                    break;
                }
            }
        }
        got
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        let Some(out) = &mut self.output else {
            // Nowhere to write: every frame is a failed send.
            self.stats.tx_errors += batch.len() as u64;
            batch.clear();
            return TxDone::default();
        };
        if batch.is_empty() {
            return TxDone::default();
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut sent = TxDone::default();
        for p in batch.drain() {
            if out.write(ts, p.data()) {
                sent.packets += 1;
                sent.bytes += p.len() as u64;
            } else {
                self.stats.tx_errors += 1;
            }
        }
        sent
    }

    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: true,
            mtu: self.mtu,
            mac: self.mac,
            speed_mbps: None,
        }
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    /// True once the input is read to its end (or stopped at damage); a
    /// queue without input (queues > 0, output-only ports) is exhausted from
    /// the start.
    fn rx_exhausted(&self) -> bool {
        self.input.is_none()
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.output {
            if out.flush().is_err() {
                self.stats.tx_errors += 1;
            }
        }
    }
}

impl Drop for PcapPort {
    fn drop(&mut self) {
        self.flush();
    }
}
