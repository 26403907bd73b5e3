"""A UDP server that answers every datagram with its name, from the
address it is bound to (so a DSR backend bound to the VIP answers from
the VIP).

usage: udp_name_server.py ADDR PORT NAME
"""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
name = sys.argv[3].encode() + b"\n"
while True:
    _, peer = s.recvfrom(2048)
    s.sendto(name, peer)
