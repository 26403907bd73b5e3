//! Allowed IPs of a tunnel's peers: a small binary trie doing longest-prefix
//! match from an IPv4 address to a peer index. Built at setup; a lookup
//! walks at most 32 nodes and allocates nothing. (The FIB's DIR-24-8 takes
//! 64 MB per table, far too much for a few prefixes per peer.)

use std::net::Ipv4Addr;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    child: [u32; 2],
    /// Peer index of the prefix ending here, or `NONE`.
    value: u32,
}

const EMPTY: Node = Node {
    child: [NONE, NONE],
    value: NONE,
};

/// Prefix → peer index, longest match wins.
#[derive(Clone, Debug)]
pub struct AllowedIps {
    nodes: Vec<Node>,
}

impl Default for AllowedIps {
    fn default() -> Self {
        Self::new()
    }
}

impl AllowedIps {
    pub fn new() -> Self {
        AllowedIps { nodes: vec![EMPTY] }
    }

    /// Inserts `addr/len` (host bits ignored) for `peer`. Returns the peer
    /// that held exactly this prefix before, if any. `len` must be ≤ 32.
    pub fn insert(&mut self, addr: Ipv4Addr, len: u8, peer: u32) -> Option<u32> {
        assert!(len <= 32, "prefix length above 32");
        let bits = u32::from(addr);
        let mut at = 0usize;
        for depth in 0..u32::from(len) {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            let next = self.nodes[at].child[bit];
            at = if next == NONE {
                self.nodes.push(EMPTY);
                let idx = (self.nodes.len() - 1) as u32;
                self.nodes[at].child[bit] = idx;
                idx as usize
            } else {
                next as usize
            };
        }
        let old = std::mem::replace(&mut self.nodes[at].value, peer);
        (old != NONE).then_some(old)
    }

    /// The peer of the longest prefix holding `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<u32> {
        let bits = u32::from(addr);
        let mut best = NONE;
        let mut at = 0usize;
        let mut depth = 0u32;
        loop {
            let node = &self.nodes[at];
            if node.value != NONE {
                best = node.value;
            }
            if depth == 32 {
                break;
            }
            let next = node.child[((bits >> (31 - depth)) & 1) as usize];
            if next == NONE {
                break;
            }
            at = next as usize;
            depth += 1;
        }
        (best != NONE).then_some(best)
    }
}
