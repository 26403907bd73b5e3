//! What the control process sees of the engine through shared memory: which
//! workers are alive and which table generation they acknowledged (from the
//! control file) and their counters and poll-latency histograms (from the
//! counters file). Feeds `/metrics` and the status and counters API (both
//! through [`EngineSource`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use patronus_shm::{monotonic_ms, CounterReader};

/// Name of the engine's poll-latency histogram in the counters file.
pub const POLL_LATENCY_HISTOGRAM: &str = "poll_latency_ns";

use crate::metrics::engine::{EngineSnapshot, EngineSource, PortCounters, WorkerSnapshot};
use crate::push::SharedPublisher;

/// The engine as seen through the runtime directory.
/// The engine's gauge: the `route6.bin` number every worker acknowledged.
pub const ROUTE6_GENERATION: &str = "route6.generation";

#[derive(Debug)]
pub struct ShmEngine {
    dir: PathBuf,
    publisher: SharedPublisher,
    reader: Mutex<Option<CounterReader>>,
}

impl ShmEngine {
    /// A view over `dir`, sharing the control process's publisher.
    pub fn new(dir: PathBuf, publisher: SharedPublisher) -> Self {
        ShmEngine {
            dir,
            publisher,
            reader: Mutex::new(None),
        }
    }
}

impl EngineSource for ShmEngine {
    fn nat_socket(&self) -> Option<PathBuf> {
        Some(self.dir.join(patronus_shm::runtime_dir::NAT_SOCKET))
    }

    fn flows_socket(&self) -> Option<PathBuf> {
        Some(self.dir.join(patronus_shm::runtime_dir::FLOWS_SOCKET))
    }

    fn lb_socket(&self) -> Option<PathBuf> {
        Some(self.dir.join(patronus_shm::runtime_dir::LB_SOCKET))
    }

    fn snapshot(&self) -> Option<EngineSnapshot> {
        let (generation, workers) = {
            let p = self.publisher.lock().ok()?;
            (p.current_generation(), p.workers_at(monotonic_ms()))
        };
        let live: Vec<_> = workers.iter().filter(|w| w.live).collect();
        if live.is_empty() {
            return None;
        }
        let acked = live.iter().map(|w| w.acked_generation).min().unwrap_or(0);
        let status = |i: usize| workers.iter().find(|w| w.index == i);
        let mut reader = self.reader.lock().ok()?;
        // The engine recreates the counters file when it restarts.
        if reader.as_ref().is_none_or(|r| r.replaced()) {
            *reader = CounterReader::open(&self.dir).ok();
        }
        let reader = reader.as_ref()?;
        let snap = reader.snapshot();
        let latency = reader
            .histogram_names()
            .iter()
            .position(|n| n == POLL_LATENCY_HISTOGRAM);
        let mut ports: BTreeMap<String, PortCounters> = BTreeMap::new();
        let mut drops = Vec::new();
        let mut nat = Vec::new();
        let mut wg = Vec::new();
        let mut classify = Vec::new();
        let mut wan = Vec::new();
        let mut route6_generation = None;
        let mut per_worker: Vec<WorkerSnapshot> = (0..snap.values.len())
            .map(|i| WorkerSnapshot {
                index: i as u32,
                acked_generation: status(i).map_or(0, |w| w.acked_generation),
                live: status(i).is_some_and(|w| w.live),
                poll_latency_ns: latency
                    .and_then(|h| reader.histogram(i, h))
                    .unwrap_or_default(),
                ..Default::default()
            })
            .collect();
        // Counter `c` combined over the workers by `pick` (gauges: the
        // newest, the largest, the smallest).
        let across = |c: usize, pick: fn(u64, u64) -> u64| {
            snap.values
                .iter()
                .map(|w| w.get(c).copied().unwrap_or(0))
                .reduce(pick)
                .unwrap_or(0)
        };
        for (c, name) in snap.names.iter().enumerate() {
            let total: u64 = snap
                .values
                .iter()
                .map(|w| w.get(c).copied().unwrap_or(0))
                .sum();
            if let Some(rest) = name.strip_prefix("port.") {
                let Some((port, key)) = rest.rsplit_once('.') else {
                    continue;
                };
                let pc = ports
                    .entry(port.to_string())
                    .or_insert_with(|| PortCounters {
                        name: port.to_string(),
                        ..Default::default()
                    });
                match key {
                    "rx_packets" => pc.rx_packets = total,
                    "rx_bytes" => pc.rx_bytes = total,
                    "tx_packets" => pc.tx_packets = total,
                    "tx_bytes" => pc.tx_bytes = total,
                    "rx_missed" => pc.rx_missed = total,
                    "rx_errors" => pc.rx_errors = total,
                    "tx_errors" => pc.tx_errors = total,
                    _ => {}
                }
                for (w, ws) in per_worker.iter_mut().enumerate() {
                    let v = snap.values[w].get(c).copied().unwrap_or(0);
                    match key {
                        "rx_packets" => ws.rx_packets += v,
                        "tx_packets" => ws.tx_packets += v,
                        _ => {}
                    }
                }
            } else if let Some(reason) = name.strip_prefix("drop.") {
                drops.push((reason.to_string(), total));
            } else if let Some(counter) = name.strip_prefix("nat.") {
                nat.push((counter.to_string(), total));
            } else if let Some(counter) = name.strip_prefix(crate::wg::counters::PREFIX) {
                let value = if crate::wg::counters::is_max(counter) {
                    across(c, u64::max)
                } else {
                    total
                };
                wg.push((counter.to_string(), value));
            } else if let Some(counter) = name.strip_prefix(crate::flows::summary::PREFIX) {
                let value = if crate::flows::summary::combines_by_min(counter) {
                    across(c, u64::min)
                } else {
                    total
                };
                classify.push((counter.to_string(), value));
            } else if let Some(counter) = name.strip_prefix(crate::wan::counters::PREFIX) {
                let value = if crate::wan::counters::is_gauge(counter) {
                    across(c, u64::max)
                } else {
                    total
                };
                wan.push((counter.to_string(), value));
            } else if name == ROUTE6_GENERATION {
                route6_generation = snap.values.iter().filter_map(|w| w.get(c).copied()).min();
            // adopted by every worker
            } else if name == "busy_polls" || name == "idle_polls" {
                for (w, ws) in per_worker.iter_mut().enumerate() {
                    let v = snap.values[w].get(c).copied().unwrap_or(0);
                    if name == "busy_polls" {
                        ws.busy_polls = v;
                    } else {
                        ws.idle_polls = v;
                    }
                }
            }
        }
        Some(EngineSnapshot {
            ports: ports.into_values().collect(),
            drops,
            workers: per_worker,
            table_generation: generation,
            table_generation_acked: acked,
            nat,
            wg,
            classify,
            route6_generation,
            wan,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use patronus_shm::{CounterBlock, CounterSpec, Subscriber};

    use super::*;
    use crate::push::Pusher;
    use crate::store::Store;

    /// A runtime directory removed on drop.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn snapshot_reads_acks_counters_and_poll_latency_from_shared_memory() {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "patronus-engine-view-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )));
        let mut pusher = Pusher::open(&dir.0).unwrap();
        let view = ShmEngine::new(dir.0.clone(), pusher.publisher());
        assert_eq!(view.snapshot(), None, "no engine yet");

        // What the engine's link thread sets up.
        let sub = Subscriber::open(&dir.0).unwrap();
        let w0 = sub.worker(0).unwrap();
        let _w1 = sub.worker(1).unwrap();
        let block = CounterBlock::create(
            &dir.0,
            &CounterSpec {
                workers: 2,
                counters: &[
                    "port.lan0.rx_packets",
                    "port.lan0.tx_packets",
                    "drop.no_route",
                    "busy_polls",
                    "idle_polls",
                    "nat.sessions_created",
                    "nat.sessions_active",
                    "classify.flows_created",
                    "classify.model_generation",
                    "classify.class.tls.flows",
                ],
                histograms: &[POLL_LATENCY_HISTOGRAM],
            },
        )
        .unwrap();
        let c0 = block.take_worker(0).unwrap();
        let c1 = block.take_worker(1).unwrap();
        for (i, v) in [10, 9, 2, 4, 6, 8, 3, 5, 7, 1].into_iter().enumerate() {
            c0.set(i, v);
            c1.set(i, v * 100);
        }
        c0.record(0, 1500);
        c0.record(0, 700);

        let g = pusher.push(&mut Store::open_in_memory().unwrap()).unwrap();
        w0.ack(g);
        let s = view.snapshot().expect("attached");
        assert_eq!(s.table_generation, g);
        assert_eq!(s.table_generation_acked, 0, "worker 1 has not acked");
        assert_eq!(s.ports.len(), 1);
        assert_eq!((s.ports[0].rx_packets, s.ports[0].tx_packets), (1010, 909));
        assert_eq!(s.drops, vec![("no_route".to_string(), 202)]);
        assert_eq!(
            s.nat,
            vec![
                ("sessions_created".to_string(), 808),
                ("sessions_active".to_string(), 303)
            ]
        );
        // Summed, except the model generation: the one every worker runs.
        assert_eq!(
            s.classify,
            vec![
                ("flows_created".to_string(), 505),
                ("model_generation".to_string(), 7),
                ("class.tls.flows".to_string(), 101)
            ]
        );
        let w = &s.workers[0];
        assert_eq!((w.index, w.acked_generation, w.live), (0, g, true));
        assert_eq!((w.busy_polls, w.idle_polls), (4, 6));
        assert_eq!((w.rx_packets, w.tx_packets), (10, 9));
        assert_eq!(w.poll_latency_ns.count, 2);
        assert_eq!(w.poll_latency_ns.buckets[11], 1, "1500 ns");
        assert_eq!(w.poll_latency_ns.buckets[10], 1, "700 ns");
        assert_eq!(s.workers[1].acked_generation, 0);
        assert_eq!(s.workers[1].poll_latency_ns.count, 0);
    }

    #[test]
    fn wan_counters_are_summed_and_gauges_take_the_largest() {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "patronus-engine-view-wan-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )));
        let mut pusher = Pusher::open(&dir.0).unwrap();
        let view = ShmEngine::new(dir.0.clone(), pusher.publisher());
        let sub = Subscriber::open(&dir.0).unwrap();
        let w0 = sub.worker(0).unwrap();
        let w1 = sub.worker(1).unwrap();
        let names = [
            "wan.path.lte.state",
            "wan.path.lte.rtt_us",
            "wan.path.lte.tx_packets",
            "wan.policy.voice.path.lte.packets",
            "wan.policy.voice.moves",
            "wan.compress_in_bytes",
            "wan.some_future_counter",
        ];
        let block = CounterBlock::create(
            &dir.0,
            &CounterSpec {
                workers: 2,
                counters: &names,
                histograms: &[POLL_LATENCY_HISTOGRAM],
            },
        )
        .unwrap();
        let c0 = block.take_worker(0).unwrap();
        let c1 = block.take_worker(1).unwrap();
        // Worker 0 owns the prober (state, RTT); both steer traffic.
        for (i, (a, b)) in [
            (1, 0),
            (48_000, 0),
            (10, 5),
            (7, 3),
            (1, 2),
            (900, 100),
            (4, 4),
        ]
        .into_iter()
        .enumerate()
        {
            c0.set(i, a);
            c1.set(i, b);
        }
        let g = pusher.push(&mut Store::open_in_memory().unwrap()).unwrap();
        w0.ack(g);
        w1.ack(g);
        let s = view.snapshot().expect("attached");
        let wan: Vec<(&str, u64)> = s.wan.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(
            wan,
            [
                ("path.lte.state", 1),
                ("path.lte.rtt_us", 48_000),
                ("path.lte.tx_packets", 15),
                ("policy.voice.path.lte.packets", 10),
                ("policy.voice.moves", 3),
                ("compress_in_bytes", 1000),
                ("some_future_counter", 8),
            ]
        );
        assert!(s.nat.is_empty() && s.classify.is_empty());
    }
}
