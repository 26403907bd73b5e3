"""Clients of the load-balancer tests, run in the client namespace.

usage: lb_client.py http ADDR PORT SECONDS [MAX]
         GET / on a new TCP connection each time, one after another, for
         SECONDS (or MAX requests); prints a JSON list of
         {"t": start (epoch s), "ok": bool, "backend": body or null,
          "status": HTTP status or null, "err": text or null,
          "port": the client's source port or null}
       lb_client.py udp ADDR PORT COUNT
         one datagram from each of COUNT fresh sockets (so COUNT flows);
         prints a JSON list of {"ok", "backend", "from": "ip:port", "err"}
"""
import json
import socket
import sys
import time

TIMEOUT = 2.0


def http_once(addr, port, local):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((addr, port))
        local.append(s.getsockname()[1])
        s.sendall(b"GET / HTTP/1.0\r\nHost: lb\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace").strip()


def http(addr, port, seconds, most):
    out = []
    end = time.time() + seconds
    while time.time() < end and len(out) < most:
        t = time.time()
        local = []
        try:
            status, body = http_once(addr, port, local)
            out.append(dict(t=t, ok=status == 200, backend=body, status=status, err=None,
                            port=local[0]))
        except Exception as e:  # noqa: BLE001 - every failure is a result
            out.append(dict(t=t, ok=False, backend=None, status=None, err=repr(e),
                            port=(local or [None])[0]))
    return out


def udp(addr, port, count):
    out = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        try:
            s.sendto(b"who %d" % i, (addr, port))
            data, frm = s.recvfrom(2048)
            out.append(dict(ok=True, backend=data.decode().strip(), err=None,
                            **{"from": "%s:%d" % frm}))
        except Exception as e:  # noqa: BLE001
            out.append(dict(ok=False, backend=None, err=repr(e), **{"from": None}))
        finally:
            s.close()
    return out


def main():
    kind, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "http":
        most = int(sys.argv[5]) if len(sys.argv) > 5 else 1 << 60
        res = http(addr, port, float(sys.argv[4]), most)
    elif kind == "udp":
        res = udp(addr, port, int(sys.argv[4]))
    else:
        raise SystemExit("unknown kind " + kind)
    print(json.dumps(res))


main()
