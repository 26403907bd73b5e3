"""Prints the IPv4 frames of a pcap as a JSON list: outer src/dst/proto,
and for IP-in-IP (protocol 4) the inner src/dst/proto; ports when TCP/UDP.

usage: ipip_summary.py FILE
"""
import json
import sys

from scapy.all import IP, TCP, UDP, rdpcap  # noqa: E402


def ports(ip):
    if TCP in ip:
        return ip[TCP].sport, ip[TCP].dport
    if UDP in ip:
        return ip[UDP].sport, ip[UDP].dport
    return None, None


out = []
for p in rdpcap(sys.argv[1]):
    if IP not in p:
        continue
    ip = p[IP]
    d = dict(src=ip.src, dst=ip.dst, proto=ip.proto)
    if ip.proto == 4 and isinstance(ip.payload, IP):
        inner = ip.payload
        d.update(inner_src=inner.src, inner_dst=inner.dst, inner_proto=inner.proto)
        d["inner_sport"], d["inner_dport"] = ports(inner)
    else:
        d["sport"], d["dport"] = ports(ip)
    out.append(d)
print(json.dumps(out))
