"""Sequence-numbered UDP flows for the WAN tests (plain sockets, no scapy).

send DST PORT KIND PPS COUNT SIZE [SPORT]
    One socket (one 5-tuple), COUNT datagrams at PPS per second, then exits
    printing {"sent": N, "errors": E, "elapsed_s": S} as JSON (S: from the
    first datagram to the last, so N / S is the rate it sustained). Every
    datagram carries (sequence number u64, send time ns u64) in its data
    part. KIND:
      webrtc        a STUN binding request (RFC 5389, magic cookie) first,
                    then RTP (version 2, payload type 111, one SSRC,
                    sequence numbers +1, timestamps +960) with the data
                    part as RTP payload: what a WebRTC audio stream sends.
      bulk          a data part that no dissector recognises: a leading
                    0x3f, the numbers, then pseudo-random bytes.
      compressible  as bulk but the rest is repeated text (lz4 shrinks it);
                    the receiver checks every byte.
    SIZE is the UDP payload length.

recv PORT
    Until SIGINT: records each data datagram's sequence number and arrival
    time; then prints received, duplicates, highest, missing (below the
    highest), corrupt (a compressible payload that differs from what was
    sent), stun (STUN messages seen), the longest gap between two
    consecutive arrivals (seconds) and the sequence numbers around it, the
    UDP payload bytes of the distinct data datagrams ("bytes") and the time
    from the first of them to arrive to the last ("span_s").
"""
import json
import os
import random
import signal
import socket
import struct
import sys
import time

HDR = "!QQ"  # sequence number, send time (ns, CLOCK_REALTIME)
HDR_LEN = struct.calcsize(HDR)
BULK_TAG = 0x3F
COMP_TAG = 0x3E
TEXT = b"patronus wan compression test line; the same words again and again. "
RTP_PT = 111
RTP_HDR = 12
STUN_COOKIE = 0x2112A442

stop = False


def on_signal(_sig, _frame):
    global stop
    stop = True


signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)


def stun_binding_request():
    # Type 0x0001, length 0, magic cookie, 96-bit transaction id.
    return struct.pack("!HHI", 0x0001, 0, STUN_COOKIE) + os.urandom(12)


def compressible_body(seq, n):
    """The bytes after the header of compressible datagram `seq`."""
    line = b"%d " % seq + TEXT
    reps = n // len(line) + 1
    return (line * reps)[:n]


def datagram(kind, seq, size, ssrc, rng):
    data = struct.pack(HDR, seq, time.time_ns())
    if kind == "webrtc":
        rtp = struct.pack("!BBHII", 0x80, RTP_PT, seq & 0xFFFF, (seq * 960) & 0xFFFFFFFF, ssrc)
        body = rng.randbytes(max(0, size - RTP_HDR - HDR_LEN))
        return rtp + data + body
    if kind == "bulk":
        return bytes([BULK_TAG]) + data + rng.randbytes(max(0, size - 1 - HDR_LEN))
    if kind == "compressible":
        return bytes([COMP_TAG]) + data + compressible_body(seq, max(0, size - 1 - HDR_LEN))
    sys.exit("unknown kind " + kind)


def send(dst, port, kind, pps, count, size, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if sport:
        s.bind(("0.0.0.0", sport))
    s.connect((dst, port))
    rng = random.Random(port)
    ssrc = rng.getrandbits(32)
    errors = 0
    print("sending", flush=True, file=sys.stderr)
    if kind == "webrtc":
        s.send(stun_binding_request())
        time.sleep(0.02)
    period = 1.0 / pps
    next_t = time.monotonic()
    start = next_t
    last_sent = start
    seq = 0
    while seq < count and not stop:
        try:
            s.send(datagram(kind, seq, size, ssrc, rng))
            seq += 1
            last_sent = time.monotonic()
        except OSError:
            # A pending ICMP error fails this send and nothing goes out:
            # the same number goes next time.
            errors += 1
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(json.dumps({"sent": seq, "errors": errors, "elapsed_s": last_sent - start}), flush=True)


def parse(data):
    """(kind, seq, sent_ns, intact) of a data datagram, or a str for others."""
    if len(data) >= 20 and data[0] & 0xC0 == 0 and struct.unpack_from("!I", data, 4)[0] == STUN_COOKIE:
        return "stun"
    if len(data) >= RTP_HDR + HDR_LEN and data[0] == 0x80 and data[1] & 0x7F == RTP_PT:
        seq, ts = struct.unpack_from(HDR, data, RTP_HDR)
        return ("webrtc", seq, ts, True)
    if len(data) >= 1 + HDR_LEN and data[0] == BULK_TAG:
        seq, ts = struct.unpack_from(HDR, data, 1)
        return ("bulk", seq, ts, True)
    if len(data) >= 1 + HDR_LEN and data[0] == COMP_TAG:
        seq, ts = struct.unpack_from(HDR, data, 1)
        intact = data[1 + HDR_LEN:] == compressible_body(seq, len(data) - 1 - HDR_LEN)
        return ("compressible", seq, ts, intact)
    return "bad"


def recv(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.1)
    seen = set()
    st = {"received": 0, "duplicates": 0, "corrupt": 0, "stun": 0, "bad": 0,
          "highest": -1, "kinds": [], "max_gap_s": 0.0, "gap_after_seq": None,
          "gap_before_seq": None, "max_delay_ms": 0.0, "bytes": 0, "span_s": 0.0}
    last = None  # (arrival monotonic, seq)
    first = None  # arrival of the first data datagram (monotonic)
    print("listening", flush=True, file=sys.stderr)

    def record(data, now):
        nonlocal last, first
        p = parse(data)
        if isinstance(p, str):
            st[p] += 1
            return
        kind, seq, sent_ns, intact = p
        if kind not in st["kinds"]:
            st["kinds"].append(kind)
        if not intact:
            st["corrupt"] += 1
        if seq in seen:
            st["duplicates"] += 1
            return
        seen.add(seq)
        st["received"] += 1
        st["bytes"] += len(data)
        if first is None:
            first = now
        st["span_s"] = now - first
        st["highest"] = max(st["highest"], seq)
        st["max_delay_ms"] = max(st["max_delay_ms"], (time.time_ns() - sent_ns) / 1e6)
        if last is not None and now - last[0] > st["max_gap_s"]:
            st["max_gap_s"] = now - last[0]
            st["gap_after_seq"] = last[1]
            st["gap_before_seq"] = seq
        last = (now, seq)

    while not stop:
        try:
            data = s.recv(4096)
        except (socket.timeout, InterruptedError):
            continue
        record(data, time.monotonic())
    s.setblocking(False)
    while True:
        try:
            record(s.recv(4096), time.monotonic())
        except (BlockingIOError, InterruptedError):
            break
    st["missing"] = st["highest"] + 1 - st["received"]
    print(json.dumps(st), flush=True)


if __name__ == "__main__":
    a = sys.argv
    if len(a) >= 8 and a[1] == "send":
        send(a[2], int(a[3]), a[4], float(a[5]), int(a[6]), int(a[7]), int(a[8]) if len(a) > 8 else 0)
    elif len(a) == 3 and a[1] == "recv":
        recv(int(a[2]))
    else:
        sys.exit("usage: seq_udp.py send DST PORT KIND PPS COUNT SIZE [SPORT] | recv PORT")
