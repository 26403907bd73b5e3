//! Packet buffers (a preallocated per-worker pool), their metadata and batches.

mod batch;
mod meta;
mod pool;

pub use batch::{Batch, BATCH_SIZE};
pub use meta::{Disposition, PacketMeta};
pub use pool::{
    ExternalBuffers, Packet, PacketPool, RawPacket, BUF_DATA_ROOM, BUF_HEADROOM, BUF_META_ROOM,
    BUF_SIZE,
};
