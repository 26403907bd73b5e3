"""Writes the input capture of the pcap-in -> pcap-out test; prints {kind: count}.

usage: make_pcap.py OUT.pcap ENGINE_LAN_MAC HOST_MAC
Host 10.1.0.2 (HOST_MAC) sends to the engine's lan0 (10.1.0.1).
"""
import json
import sys

from scapy.all import ARP, ICMP, IP, UDP, Ether, Raw, wrpcap  # noqa: E402

out, engine_mac, host_mac = sys.argv[1], sys.argv[2], sys.argv[3]
H1 = "10.1.0.2"
payload = Raw(b"patronus-pcap-test" + bytes(14))


def to_engine(ip):
    return Ether(src=host_mac, dst=engine_mac) / ip


def udp(dst, ttl=64, dport=7777):
    return to_engine(IP(src=H1, dst=dst, ttl=ttl) / UDP(sport=5555, dport=dport) / payload)


def bad_checksum():
    b = bytearray(bytes(IP(src=H1, dst="203.0.113.7") / UDP(sport=5555, dport=7777) / payload))
    b[10] ^= 0x5A
    return Ether(src=host_mac, dst=engine_mac, type=0x0800) / Raw(bytes(b))


kinds = {
    "arp_request": [Ether(src=host_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=host_mac, psrc=H1, pdst="10.1.0.1")],
    "udp_resolved": [udp("203.0.113.7") for _ in range(5)],
    "udp_unresolved": [udp("198.51.100.7") for _ in range(3)],
    "udp_no_route": [udp("192.0.2.1")],
    "udp_ttl1": [udp("203.0.113.7", ttl=1)],
    "echo_request": [to_engine(IP(src=H1, dst="10.1.0.1") / ICMP(type=8, id=7, seq=1) / payload)],
    "ipv4_bad_checksum": [bad_checksum() for _ in range(2)],
    "ipv4_bad_version": [to_engine(IP(src=H1, dst="203.0.113.7", version=6) / UDP() / payload) for _ in range(2)],
    "ipv4_truncated": [Ether(src=host_mac, dst=engine_mac, type=0x0800) / Raw(bytes(IP(dst="203.0.113.7"))[:12]) for _ in range(2)],
    "ipv4_bad_ihl": [to_engine(IP(src=H1, dst="203.0.113.7", ihl=4) / UDP() / payload) for _ in range(2)],
    # Shorter than an Ethernet header: only a capture can carry these.
    "eth_truncated": [Raw(bytes.fromhex("0200000000") + bytes(5)) for _ in range(2)],
}
frames = [f for fs in kinds.values() for f in fs]
wrpcap(out, frames, linktype=1)  # DLT_EN10MB, also for the raw short frames
print(json.dumps({k: len(v) for k, v in kinds.items()}))
