//! Neighbors (ARP).
