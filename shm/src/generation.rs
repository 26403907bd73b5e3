//! A generation file: a `GenerationHeader` with a directory of tables, then
//! each table (header + payload) at a 64-byte aligned offset. Built by
//! `GenerationBuilder`, validated whole by `GenerationView::parse`.

use crate::error::ShmError;
use crate::layout::{
    GenerationHeader, TableDirEntry, TableEntry, TableKind, ABI_VERSION, GENERATION_MAGIC,
    MAX_TABLES, TABLE_ALIGN,
};
use crate::layout::{InterfaceEntry, NeighborEntry, RouteChange, RouteEntry};
use crate::lb::{LbBackendEntry, LbSettingsEntry, LbVipEntry};
use crate::nat::{NatForwardEntry, NatOneToOneEntry, NatPoolEntry, NatSettingsEntry};
use crate::pod::{bytes_of, check_align, read_prefix};
use crate::table::{TableBuilder, TableView};
use crate::wg::{WgAllowedIpEntry, WgPeerEntry, WgTunnelEntry};

/// Encodes one table given the generation number.
type EncodeFn = Box<dyn Fn(u64, &mut Vec<u8>) + Send + Sync>;

/// The tables of one generation, to be stamped with its number and written
/// by the publisher.
#[derive(Default)]
pub struct GenerationBuilder {
    tables: Vec<(TableKind, usize, EncodeFn)>,
    /// 0, or the generation the route changes apply to.
    delta_of: u64,
}

impl std::fmt::Debug for GenerationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<_> = self.tables.iter().map(|t| t.0).collect();
        f.debug_struct("GenerationBuilder")
            .field("tables", &kinds)
            .field("delta_of", &self.delta_of)
            .finish()
    }
}

impl GenerationBuilder {
    /// No tables yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks this generation as a delta (its [`RouteChange`] table applies
    /// to generation `base`); 0 = not a delta.
    pub fn set_delta_of(&mut self, base: u64) -> &mut Self {
        self.delta_of = base;
        self
    }

    /// The generation the changes apply to (0 = none).
    pub fn delta_of(&self) -> u64 {
        self.delta_of
    }

    /// True when a table of `kind` was added.
    pub fn has(&self, kind: TableKind) -> bool {
        self.tables.iter().any(|t| t.0 == kind)
    }

    /// Adds a table; each kind at most once.
    pub fn add<T: TableEntry + Send + Sync>(
        &mut self,
        table: TableBuilder<T>,
    ) -> Result<&mut Self, ShmError> {
        if self.tables.iter().any(|t| t.0 == T::KIND) {
            return Err(ShmError::DuplicateTable { kind: T::KIND });
        }
        if self.tables.len() >= MAX_TABLES {
            return Err(ShmError::BadDirectory {
                reason: "more tables than directory slots",
            });
        }
        let len = table.encoded_len();
        self.tables.push((
            T::KIND,
            len,
            Box::new(move |generation, out| table.encode_into(generation, out)),
        ));
        Ok(self)
    }

    /// The whole file for generation `generation`.
    pub fn encode(&self, generation: u64) -> Vec<u8> {
        let hdr_len = std::mem::size_of::<GenerationHeader>();
        let mut dir = [TableDirEntry::default(); MAX_TABLES];
        let mut offset = hdr_len;
        for (slot, (kind, len, _)) in dir.iter_mut().zip(&self.tables) {
            *slot = TableDirEntry {
                kind: *kind as u32,
                reserved: 0,
                offset: offset as u64,
                len: *len as u64,
            };
            offset = (offset + len).next_multiple_of(TABLE_ALIGN);
        }
        let header = GenerationHeader {
            magic: GENERATION_MAGIC,
            abi_version: ABI_VERSION,
            table_count: self.tables.len() as u32,
            generation,
            file_len: offset as u64,
            tables: dir,
            delta_of: self.delta_of,
            reserved: [0; 3],
        };
        let mut out = Vec::with_capacity(offset);
        out.extend_from_slice(bytes_of(&header));
        for (_, _, encode) in &self.tables {
            encode(generation, &mut out);
            out.resize(out.len().next_multiple_of(TABLE_ALIGN), 0);
        }
        debug_assert_eq!(out.len(), offset);
        out
    }
}

/// A validated generation over borrowed bytes: every table in the directory
/// has been parsed and checked.
#[derive(Clone, Copy, Debug)]
pub struct GenerationView<'a> {
    header: GenerationHeader,
    bytes: &'a [u8],
}

impl<'a> GenerationView<'a> {
    /// Parses and validates a whole generation file (8-byte aligned).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ShmError> {
        Self::parse_inner(bytes, true)
    }

    /// Structure only, for bytes already validated by `parse` (the same
    /// read-only mapping).
    pub(crate) fn parse_validated(bytes: &'a [u8]) -> Result<Self, ShmError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: &'a [u8], verify: bool) -> Result<Self, ShmError> {
        let header: GenerationHeader = read_prefix(bytes, "generation header")?;
        if header.magic != GENERATION_MAGIC {
            return Err(ShmError::BadMagic {
                what: "generation header",
                found: header.magic,
                expected: GENERATION_MAGIC,
            });
        }
        if header.abi_version != ABI_VERSION {
            return Err(ShmError::AbiVersion {
                what: "generation",
                found: header.abi_version,
                expected: ABI_VERSION,
            });
        }
        if header.file_len != bytes.len() as u64 {
            return Err(ShmError::Truncated {
                what: "generation file",
                need: header.file_len,
                have: bytes.len() as u64,
            });
        }
        check_align::<GenerationHeader>(bytes)?;
        if header.table_count as usize > MAX_TABLES {
            return Err(ShmError::BadDirectory {
                reason: "table count above directory size",
            });
        }
        if header.delta_of >= header.generation && header.delta_of != 0 {
            return Err(ShmError::BadDirectory {
                reason: "delta of a generation not older than this one",
            });
        }
        let has_changes = header.tables[..header.table_count as usize]
            .iter()
            .any(|e| e.kind == TableKind::RouteChange as u32);
        if has_changes != (header.delta_of != 0) {
            return Err(ShmError::BadDirectory {
                reason: "route changes without a base generation, or the reverse",
            });
        }
        let view = GenerationView { header, bytes };
        let used = &header.tables[..header.table_count as usize];
        let used = if verify { used } else { &[] };
        for (i, entry) in used.iter().enumerate() {
            if used[..i].iter().any(|e| e.kind == entry.kind) {
                let kind =
                    TableKind::from_u32(entry.kind).ok_or(ShmError::UnknownKind(entry.kind))?;
                return Err(ShmError::DuplicateTable { kind });
            }
            let slice = view.slice(entry)?;
            let generation = match TableKind::from_u32(entry.kind) {
                Some(TableKind::Route) => TableView::<RouteEntry>::parse(slice)?.generation(),
                Some(TableKind::Interface) => {
                    TableView::<InterfaceEntry>::parse(slice)?.generation()
                }
                Some(TableKind::Neighbor) => TableView::<NeighborEntry>::parse(slice)?.generation(),
                Some(TableKind::RouteChange) => {
                    TableView::<RouteChange>::parse(slice)?.generation()
                }
                Some(TableKind::NatSettings) => {
                    TableView::<NatSettingsEntry>::parse(slice)?.generation()
                }
                Some(TableKind::NatPool) => TableView::<NatPoolEntry>::parse(slice)?.generation(),
                Some(TableKind::NatForward) => {
                    TableView::<NatForwardEntry>::parse(slice)?.generation()
                }
                Some(TableKind::NatOneToOne) => {
                    TableView::<NatOneToOneEntry>::parse(slice)?.generation()
                }
                Some(TableKind::WgTunnel) => TableView::<WgTunnelEntry>::parse(slice)?.generation(),
                Some(TableKind::WgPeer) => TableView::<WgPeerEntry>::parse(slice)?.generation(),
                Some(TableKind::WgAllowedIp) => {
                    TableView::<WgAllowedIpEntry>::parse(slice)?.generation()
                }
                Some(TableKind::LbSettings) => {
                    TableView::<LbSettingsEntry>::parse(slice)?.generation()
                }
                Some(TableKind::LbVip) => TableView::<LbVipEntry>::parse(slice)?.generation(),
                Some(TableKind::LbBackend) => {
                    TableView::<LbBackendEntry>::parse(slice)?.generation()
                }
                Some(TableKind::Route6) => {
                    TableView::<crate::route6::Route6Entry>::parse(slice)?.generation()
                }
                None => return Err(ShmError::UnknownKind(entry.kind)),
            };
            if generation != header.generation {
                return Err(ShmError::BadDirectory {
                    reason: "table generation differs from the file's",
                });
            }
        }
        Ok(view)
    }

    fn slice(&self, entry: &TableDirEntry) -> Result<&'a [u8], ShmError> {
        let hdr_len = std::mem::size_of::<GenerationHeader>() as u64;
        let end = entry.offset.checked_add(entry.len);
        match end {
            Some(end)
                if entry.offset >= hdr_len
                    && end <= self.bytes.len() as u64
                    && entry.offset.is_multiple_of(TABLE_ALIGN as u64) =>
            {
                Ok(&self.bytes[entry.offset as usize..end as usize])
            }
            _ => Err(ShmError::BadDirectory {
                reason: "table outside the file or misaligned",
            }),
        }
    }

    /// The generation number.
    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    /// The header as read.
    pub fn header(&self) -> &GenerationHeader {
        &self.header
    }

    /// The table of `T`, or `None` when this generation has none.
    pub fn table<T: TableEntry>(&self) -> Option<TableView<'a, T>> {
        let entry = self.header.tables[..self.header.table_count as usize]
            .iter()
            .find(|e| e.kind == T::KIND as u32)?;
        // Checksums and entries were verified whole in `parse`.
        self.slice(entry)
            .ok()
            .and_then(|s| TableView::parse_validated(s).ok())
    }

    /// The generation this one's route changes apply to, for a delta.
    pub fn delta_of(&self) -> Option<u64> {
        (self.header.delta_of != 0).then_some(self.header.delta_of)
    }

    /// True when this generation holds the whole route table (a full or
    /// checkpoint generation); a pure delta holds only changes.
    pub fn has_full_routes(&self) -> bool {
        self.table::<RouteEntry>().is_some()
    }

    /// The route changes of a delta, in the order to apply them (empty when
    /// absent).
    pub fn route_changes(&self) -> &'a [RouteChange] {
        self.table::<RouteChange>().map_or(&[], |t| t.entries())
    }

    /// The routes (empty when absent).
    pub fn routes(&self) -> &'a [RouteEntry] {
        self.table::<RouteEntry>().map_or(&[], |t| t.entries())
    }

    /// The interfaces (empty when absent).
    pub fn interfaces(&self) -> &'a [InterfaceEntry] {
        self.table::<InterfaceEntry>().map_or(&[], |t| t.entries())
    }

    /// The neighbors (empty when absent).
    pub fn neighbors(&self) -> &'a [NeighborEntry] {
        self.table::<NeighborEntry>().map_or(&[], |t| t.entries())
    }
}
