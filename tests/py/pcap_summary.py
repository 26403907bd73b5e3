"""Prints the frames of a pcap/pcapng file as a JSON list of small dicts.

usage: pcap_summary.py FILE
"""
import json
import sys

from scapy.all import ARP, ICMP, IP, UDP, Ether, rdpcap  # noqa: E402

out = []
for p in rdpcap(sys.argv[1]):
    d = {"len": len(p)}
    if Ether in p:
        d.update(eth_src=p[Ether].src, eth_dst=p[Ether].dst, type=p[Ether].type)
    if ARP in p:
        a = p[ARP]
        d.update(proto="arp", op=a.op, hwsrc=a.hwsrc, psrc=a.psrc, hwdst=a.hwdst, pdst=a.pdst)
    elif IP in p:
        ip = p[IP]
        hdr = bytes(ip)[: ip.ihl * 4]
        fixed = IP(hdr)
        del fixed.chksum
        d.update(
            proto="ipv4",
            src=ip.src,
            dst=ip.dst,
            ttl=ip.ttl,
            ip_proto=ip.proto,
            chksum_ok=IP(bytes(fixed)).chksum == ip.chksum,
        )
        if ICMP in p:
            d.update(icmp_type=p[ICMP].type, icmp_code=p[ICMP].code)
        if UDP in p:
            d.update(dport=p[UDP].dport)
    out.append(d)
print(json.dumps(out))
