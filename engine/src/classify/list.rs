//! A page of a worker's flows for the flow query (`flows.sock`): flows in
//! slot order from a cursor, filtered by class and host, as the records of
//! `patronus_shm::flow_query`. Runs between two batches when the link
//! thread asks; it allocates the page (outside the packet path).

use std::net::{Ipv4Addr, SocketAddrV4};

use patronus_shm::flow_query::FlowRecord;

use super::table::FlowMethod;
use super::Classifier;

/// Which flows a page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// A class label, or "pending".
    pub class: Option<String>,
    /// Either end.
    pub host: Option<Ipv4Addr>,
}

impl Classifier {
    /// Up to `limit` flows from slot `cursor` on that pass `filter`, and
    /// the slot the next page starts at (None: no more).
    pub fn page(
        &self,
        worker: u32,
        filter: &FlowFilter,
        cursor: usize,
        limit: usize,
        now: u64,
    ) -> (Vec<FlowRecord>, Option<usize>) {
        let t = self.table();
        let mut out = Vec::new();
        let host = filter.host.map(u32::from);
        for i in cursor..t.capacity() {
            let k = t.key(i);
            if k.is_empty() {
                continue;
            }
            if host.is_some_and(|h| k.a() != h && k.b() != h) {
                continue;
            }
            let f = t.flow(i);
            let class = if f.method == FlowMethod::Pending {
                "pending"
            } else {
                f.class.label()
            };
            if filter.class.as_deref().is_some_and(|c| c != class) {
                continue;
            }
            if out.len() == limit {
                return (out, Some(i));
            }
            let (a, b) = (
                SocketAddrV4::new(Ipv4Addr::from(k.a()), k.pa()),
                SocketAddrV4::new(Ipv4Addr::from(k.b()), k.pb()),
            );
            let (client, server) = if f.client_is_a { (a, b) } else { (b, a) };
            out.push(FlowRecord {
                worker,
                proto: match k.proto() {
                    6 => "tcp".to_string(),
                    17 => "udp".to_string(),
                    p => p.to_string(),
                },
                client,
                server,
                class: class.to_string(),
                app_name: t.name(i).map(|n| n.as_str().to_string()),
                method: f.method.label().to_string(),
                confidence: f.confidence,
                packets_orig: f.packets[0],
                packets_reply: f.packets[1],
                bytes_orig: f.bytes[0],
                bytes_reply: f.bytes[1],
                age_ms: now.saturating_sub(f.first_ns) / 1_000_000,
                idle_ms: now.saturating_sub(f.last_ns) / 1_000_000,
            });
        }
        (out, None)
    }
}
