"""Sequence-numbered UDP flows (plain sockets, no scapy).

send DST PORT FLOWS PPS: one socket per flow (its own source port); every
datagram carries (flow id, sequence number), flows interleaved round-robin at
PPS datagrams per second in total, until SIGINT; then prints the number sent
per flow (and of sends refused by a pending ICMP error) as JSON.

recv PORT: records per flow which sequence numbers arrived in which order
until SIGINT, drains the socket, then prints per flow: received, highest,
duplicates, out-of-order arrivals, missing count, and the first anomalies.
"""
import json
import signal
import socket
import struct
import sys
import time

FMT = "!IQ"  # flow id, sequence number
stop = False


def on_sigint(_sig, _frame):
    global stop
    stop = True


signal.signal(signal.SIGINT, on_sigint)
signal.signal(signal.SIGTERM, on_sigint)


def send(dst, port, flows, pps):
    socks = []
    for _ in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((dst, port))
        socks.append(s)
    sent = [0] * flows
    errors = 0
    period = flows / pps  # one round of all flows
    pad = b"\0" * 32
    next_t = time.monotonic()
    print("sending", flush=True, file=sys.stderr)
    while not stop:
        for f, s in enumerate(socks):
            try:
                s.send(struct.pack(FMT, f, sent[f]) + pad)
            except OSError:
                # A pending ICMP error (e.g. unreachable) fails this send
                # and nothing goes out: the same number goes next round.
                errors += 1
                continue
            sent[f] += 1
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(json.dumps({"sent": sent, "errors": errors}), flush=True)


def recv(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    flows = {}
    print("listening", flush=True, file=sys.stderr)

    def record(data):
        if len(data) < struct.calcsize(FMT):
            flows.setdefault("bad", []).append(len(data))
            return
        f, seq = struct.unpack_from(FMT, data)
        st = flows.setdefault(f, {"next": 0, "seen": set(), "dup": 0, "ooo": 0, "anomalies": []})
        if seq in st["seen"]:
            st["dup"] += 1
            kind = "duplicate"
        elif seq < st["next"]:
            st["ooo"] += 1
            kind = "late"
        elif seq > st["next"]:
            kind = "gap"
        else:
            kind = None
        if kind and len(st["anomalies"]) < 20:
            st["anomalies"].append({"kind": kind, "seq": seq, "expected": st["next"]})
        st["seen"].add(seq)
        st["next"] = max(st["next"], seq + 1)

    while not stop:
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        record(data)
    s.setblocking(False)
    while True:
        try:
            record(s.recv(2048))
        except (BlockingIOError, InterruptedError):
            break
    out = {}
    for f, st in flows.items():
        if f == "bad":
            out["bad"] = st
            continue
        highest = st["next"] - 1
        out[str(f)] = {
            "received": len(st["seen"]),
            "highest": highest,
            "duplicates": st["dup"],
            "out_of_order": st["ooo"],
            "missing": highest + 1 - len(st["seen"]),
            "anomalies": st["anomalies"],
        }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "recv":
        recv(int(sys.argv[2]))
    else:
        sys.exit("usage: seqflow.py send DST PORT FLOWS PPS | recv PORT")
