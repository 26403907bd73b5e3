"""Sends malformed frames to a MAC out of an interface; prints {kind: count} as JSON.

usage: malformed.py IFACE DST_MAC SRC_IP DST_IP COUNT_PER_KIND
Each kind has exactly one fault; the key names the drop reason the engine
should count it under ("random_*" kinds only count as some drop).
"""
import json
import random
import sys

from scapy.all import IP, UDP, Ether, Raw, conf, sendp  # noqa: E402

conf.verb = 0
iface, dst_mac, src_ip, dst_ip, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
rng = random.Random(1)
payload = Raw(b"patronus-malformed" + bytes(22))


def eth(type_=0x0800):
    return Ether(dst=dst_mac, type=type_)


def good_ip(**kw):
    return IP(src=src_ip, dst=dst_ip, ttl=64, **kw)


def bad_checksum():
    p = good_ip() / UDP(sport=4000, dport=9999) / payload
    b = bytearray(bytes(p))
    b[10] ^= 0x5A  # corrupt the (valid) header checksum
    return eth() / Raw(bytes(b))


def kinds():
    udp = UDP(sport=4000, dport=9999) / payload
    return {
        # Only 10 bytes of an IPv4 header.
        "ipv4_truncated": lambda: eth() / Raw(bytes(good_ip() / udp)[:10]),
        "ipv4_bad_checksum": bad_checksum,
        # IHL 4: a header shorter than the minimum.
        "ipv4_bad_ihl": lambda: eth() / good_ip(ihl=4) / udp,
        # IHL 15 (60 bytes) in a packet of 20 + 48 bytes whose total length
        # covers only 28: the header runs past the packet, and the total length
        # is below the header, so either reason fits.
        "ipv4_bad_ihl_or_length": lambda: eth() / Raw(bytes(good_ip(ihl=15, len=28) / UDP(sport=4000, dport=9999))),
        # Total length 1000 in a 68-byte packet.
        "ipv4_bad_length": lambda: eth() / good_ip(len=1000) / udp,
        # Version 6 under the IPv4 EtherType.
        "ipv4_bad_version": lambda: eth() / good_ip(version=6) / udp,
        # Random bytes after an IPv4 EtherType.
        "random_ipv4": lambda: eth() / Raw(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))),
        # Random EtherType and bytes after our MAC.
        "random_frame": lambda: Ether(dst=dst_mac, type=rng.getrandbits(16))
        / Raw(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))),
    }


counts = {}
for name, make in kinds().items():
    frames = [make() for _ in range(n)]
    sendp(frames, iface=iface)
    counts[name] = len(frames)
print(json.dumps(counts))
