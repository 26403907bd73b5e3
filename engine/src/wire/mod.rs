//! Zero-copy typed views over packet bytes (filled in by the wire work).
