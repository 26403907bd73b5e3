//! Fuzzes every wire parser: `parse_l2` and each view's `new_checked` plus
//! all getters on arbitrary bytes must never panic, and checksum helpers
//! must agree with themselves (fill then verify, incremental TTL update).
//! IPv6: the header view, the extension-header walk, ICMPv6 and ND.
#![no_main]

use std::hint::black_box;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use patronus_engine::wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp};

fuzz_target!(|data: &[u8]| {
    // Each view over the raw input, then the L3/L4 views where the headers
    // say they start.
    if let Ok(f) = ethernet::EthernetFrame::new_checked(data) {
        black_box((f.dst(), f.src(), f.ethertype(), f.payload()));
    }
    views_at(data);
    if let Ok(l2) = ethernet::parse_l2(data) {
        assert!(l2.l3_offset <= data.len());
        assert!(l2.vlan.is_none_or(|vid| vid <= 0x0fff));
        views_at(&data[l2.l3_offset..]);
    }
});

fn views_at(l3: &[u8]) {
    if let Ok(a) = arp::ArpPacket::new_checked(l3) {
        black_box((
            a.operation(),
            a.sender_hw(),
            a.sender_ip(),
            a.target_hw(),
            a.target_ip(),
        ));
    }
    if let Ok(ip) = ipv4::Ipv4Packet::new_checked(l3) {
        black_box((
            ip.version(),
            ip.header_len(),
            ip.tos(),
            ip.total_len(),
            ip.ident(),
            ip.dont_frag(),
            ip.more_frags(),
            ip.frag_offset(),
            ip.ttl(),
            ip.protocol(),
            ip.checksum(),
            ip.src_addr(),
            ip.dst_addr(),
            ip.options(),
            ip.verify_checksum(),
        ));
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        l4_views(ip.payload(), src, dst);
        ipv4_mutations(l3);
    }
    // L4 views straight over the input too, so they see every byte pattern.
    l4_views(l3, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::UNSPECIFIED);
    ipv6_views(l3);
}

/// The IPv6 views: header, extension-header walk, ICMPv6 and ND parsing.
fn ipv6_views(l3: &[u8]) {
    if let Ok(ip) = ipv6::Ipv6Packet::new_checked(l3) {
        black_box((
            ip.version(),
            ip.traffic_class(),
            ip.flow_label(),
            ip.payload_len(),
            ip.next_header(),
            ip.hop_limit(),
            ip.src_addr(),
            ip.dst_addr(),
            ip.payload(),
        ));
        if let Ok(up) = ip.upper_layer() {
            black_box(up);
        }
        black_box(icmpv6::parse_nd(&ip).ok());
        black_box(icmpv6::error_allowed(l3, icmpv6::TYPE_TIME_EXCEEDED, 0));
    }
    if let Ok(i) = icmpv6::Icmpv6Packet::new_checked(l3) {
        black_box((
            i.msg_type(),
            i.code(),
            i.checksum(),
            i.ident(),
            i.seq_no(),
            i.rest_of_header(),
            i.data(),
            i.verify_checksum(
                std::net::Ipv6Addr::LOCALHOST,
                std::net::Ipv6Addr::UNSPECIFIED,
            ),
        ));
    }
    black_box(icmpv6::link_layer_option(l3, 1).ok());
}

fn l4_views(l4: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
    if let Ok(i) = icmpv4::Icmpv4Packet::new_checked(l4) {
        black_box((
            i.msg_type(),
            i.code(),
            i.checksum(),
            i.ident(),
            i.seq_no(),
            i.rest_of_header(),
            i.next_hop_mtu(),
            i.data(),
            i.verify_checksum(),
            icmpv4::is_error(i.msg_type()),
        ));
        let mut buf = [0u8; 2048];
        let n = l4.len().min(buf.len());
        buf[..n].copy_from_slice(&l4[..n]);
        let mut m = icmpv4::Icmpv4Packet::new_checked(&mut buf[..n]).unwrap();
        m.fill_checksum();
        assert!(m.verify_checksum());
    }
    if let Ok(u) = udp::UdpPacket::new_checked(l4) {
        black_box((
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum(),
            u.payload(),
            u.verify_checksum(src, dst),
        ));
        let mut buf = [0u8; 2048];
        let n = l4.len().min(buf.len());
        buf[..n].copy_from_slice(&l4[..n]);
        if let Ok(mut m) = udp::UdpPacket::new_checked(&mut buf[..n]) {
            m.fill_checksum(src, dst);
            assert_ne!(m.checksum(), 0);
            assert!(m.verify_checksum(src, dst));
        }
    }
    if let Ok(t) = tcp::TcpPacket::new_checked(l4) {
        black_box((
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
            t.flags(),
            t.window(),
            t.checksum(),
            t.urgent(),
            t.options(),
            t.payload(),
            t.verify_checksum(src, dst),
        ));
        let mut buf = [0u8; 2048];
        let n = l4.len().min(buf.len());
        buf[..n].copy_from_slice(&l4[..n]);
        if let Ok(mut m) = tcp::TcpPacket::new_checked(&mut buf[..n]) {
            m.fill_checksum(src, dst);
            assert!(m.verify_checksum(src, dst));
        }
    }
}

/// On a mutable copy: filling the checksum verifies, and an incremental TTL
/// decrement keeps it equal to a full recomputation.
fn ipv4_mutations(l3: &[u8]) {
    let mut buf = [0u8; 2048];
    let n = l3.len().min(buf.len());
    buf[..n].copy_from_slice(&l3[..n]);
    let Ok(mut ip) = ipv4::Ipv4Packet::new_checked(&mut buf[..n]) else {
        return;
    };
    ip.fill_checksum();
    assert!(ip.verify_checksum());
    let ttl = ip.ttl();
    ip.decrement_ttl();
    assert_eq!(ip.ttl(), ttl.saturating_sub(1));
    assert!(ip.verify_checksum());
    let incremental = ip.checksum();
    ip.fill_checksum();
    assert_eq!(incremental, ip.checksum());
    black_box(ip.payload_mut());
}
