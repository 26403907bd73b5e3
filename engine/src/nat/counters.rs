//! NAT counters of one worker: plain integers (the worker is the only
//! writer); the pipeline copies them into the shared counters per batch.

/// Sessions created/expired/refused and packets translated/dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatCounters {
    pub sessions_created: u64,
    pub sessions_expired: u64,
    /// New session refused: no free port on any pool address.
    pub refused_pool_exhausted: u64,
    /// New session refused: the inside host holds its limit of sessions.
    pub refused_host_limit: u64,
    /// New session refused: this worker's session table is full.
    pub refused_table_full: u64,
    pub translated_out: u64,
    pub translated_in: u64,
    /// Packets translated both ways through the outside address (hairpin).
    pub hairpinned: u64,
    /// ICMP errors whose embedded packet was translated (both directions).
    pub icmp_errors_translated: u64,
    /// Non-first fragments translated with their first fragment's state.
    pub fragments_translated: u64,
    /// Inbound packets to an outside address with no session or mapping.
    pub dropped_no_session: u64,
    /// Inbound packets refused by address-and-port-dependent filtering.
    pub dropped_filtered: u64,
    /// Non-first fragments that arrived without state from a first one.
    pub dropped_fragment: u64,
    /// Packets too short for their L4 header, or unusable ICMP errors.
    pub dropped_malformed: u64,
    /// Protocols (or ICMP types) NAT cannot translate.
    pub dropped_unsupported: u64,
    /// Sessions removed by a live reconfiguration (their pool address or
    /// port forward went away, or a new forward took their port).
    pub sessions_flushed: u64,
}

impl NatCounters {
    /// All refusals of new sessions.
    pub fn refused(&self) -> u64 {
        self.refused_pool_exhausted + self.refused_host_limit + self.refused_table_full
    }
}

/// Names of [`NatCounters::values`], in order (exported as `nat.NAME`).
pub const NAT_COUNTER_NAMES: [&str; 16] = [
    "sessions_created",
    "sessions_expired",
    "refused_pool_exhausted",
    "refused_host_limit",
    "refused_table_full",
    "translated_out",
    "translated_in",
    "hairpinned",
    "icmp_errors_translated",
    "fragments_translated",
    "dropped_no_session",
    "dropped_filtered",
    "dropped_fragment",
    "dropped_malformed",
    "dropped_unsupported",
    "sessions_flushed",
];

impl NatCounters {
    /// The counters in [`NAT_COUNTER_NAMES`] order.
    pub fn values(&self) -> [u64; 16] {
        [
            self.sessions_created,
            self.sessions_expired,
            self.refused_pool_exhausted,
            self.refused_host_limit,
            self.refused_table_full,
            self.translated_out,
            self.translated_in,
            self.hairpinned,
            self.icmp_errors_translated,
            self.fragments_translated,
            self.dropped_no_session,
            self.dropped_filtered,
            self.dropped_fragment,
            self.dropped_malformed,
            self.dropped_unsupported,
            self.sessions_flushed,
        ]
    }
}
