#!/usr/bin/env bash
# Demo: h1 — patronus-engine — h2 in network namespaces, driven by the
# control process (REST API on localhost, its own temp database and runtime
# dir): `patronusctl status`, ping both ways and a 10 s iperf3 while the
# engine's counters are shown every 2 s, then a route added through the API
# while h1 pings an address only that route reaches, and `patronusctl route
# list`; last, h2 loses its route back and `patronusctl nat set` (source NAT
# to the engine's wan0 address) lets h1 reach it again (ping, iperf3, the
# session list). Before that, BIRD in h2 announces a network over BGP that
# the control's speaker installs in the engine (`patronusctl bgp ...`). Before NAT, a WireGuard tunnel made through the API
# (`patronusctl wg ...`, `route add ... tunnel wg0`) to wireguard-go in h2
# carries a ping to an address behind it. Then real clients in h1 (curl over
# HTTP and HTTPS, dig) talk to real servers in h2 through NAT, and
# `patronusctl flows` lists what the engine classified them as; a model is
# uploaded and promoted through the registry. Last, a VIP made through
# the API (`patronusctl lb ...`) balances curl from h1 over three web
# backends in h2, one of them then drained. Then two sites with a fibre and an
# LTE uplink each (`wan_demo`): `patronusctl wan paths|policies`, a webrtc call
# leaving lossy fibre while bulk stays, and failover when fibre goes down.
# Everything is torn down on exit or Ctrl-C. Without root (or with PATRONUS_DEMO_MEM=1)
# it runs the engine on in-memory ports instead (a generator and a sink, 5 s).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
PY=/usr/bin/python3
WORK="$(mktemp -d /tmp/patronus-demo.XXXXXX)"
ENGINE_PID=""
CONTROL_PID=""
NAMESPACES=()

cleanup() {
    set +e
    if [ -n "$CONTROL_PID" ] && kill -0 "$CONTROL_PID" 2>/dev/null; then
        kill -TERM "$CONTROL_PID"
        for _ in $(seq 30); do kill -0 "$CONTROL_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CONTROL_PID" 2>/dev/null
    fi
    if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
        kill -INT "$ENGINE_PID"
        for _ in $(seq 50); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ENGINE_PID" 2>/dev/null
    fi
    if [ -n "${WAN_PID:-}" ]; then
        # Interrupted: wan_demo's own clean-up did not run. Its namespaces
        # are named pt<pid>x...
        kill -KILL "$WAN_PID" 2>/dev/null
        for ns in $(ip netns list | awk -v p="pt${WAN_PID}x" 'index($1, p) == 1 {print $1}'); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        done
    fi
    for ns in "${NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    [ -n "${WG_IF:-}" ] && rm -f "/var/run/wireguard/$WG_IF.sock"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# True once the engine handles SIGUSR1 (before that the signal would kill it).
catches_usr1() {
    local mask
    mask="$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null)" || return 1
    [ -n "$mask" ] && (( (16#$mask >> 9) & 1 ))
}

# Asks the engine for its counters and prints them compactly.
show_stats() {
    local before=""
    [ -f "$WORK/stats.json" ] && before="$(cat "$WORK/stats.json")"
    catches_usr1 "$ENGINE_PID" || return 0
    kill -USR1 "$ENGINE_PID"
    for _ in $(seq 50); do
        if [ -f "$WORK/stats.json" ] && [ "$(cat "$WORK/stats.json")" != "$before" ]; then break; fi
        sleep 0.1
    done
    "$PY" - "$WORK/stats.json" <<'PYEOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
line = f"t={s.get('elapsed_secs', 0):6.1f}s"
for p in s.get("ports", []):
    line += f" | {p['name']}: rx {p['rx_packets']} tx {p['tx_packets']}"
print(line)
drops = {k: v for k, v in s.get("drops", {}).items() if v}
print(f"    drops {s.get('drops_total', 0)} {drops}  icmp_sent {s.get('icmp_sent', 0)}"
      f"  arp req/rep {s.get('arp_requests_sent', 0)}/{s.get('arp_replies_sent', 0)}")
PYEOF
}

wait_ready() {
    for _ in $(seq 100); do
        kill -0 "$ENGINE_PID" 2>/dev/null || { echo "engine exited:"; cat "$WORK/engine.log"; exit 1; }
        catches_usr1 "$ENGINE_PID" && return 0
        sleep 0.1
    done
    echo "engine did not start"; exit 1
}

echo "==> building the release engine and control"
cargo build --release -p patronus-engine -p patronus-control
ENGINE="$ROOT/target/release/patronus-engine"
CONTROL="$ROOT/target/release/patronus-control"
CTL_BIN="$ROOT/target/release/patronusctl"

# PATRONUS_DEMO_MEM=1 picks the in-memory demo even as root.
if [ "$(id -u)" -ne 0 ] || [ "${PATRONUS_DEMO_MEM:-0}" = 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "==> not root: cannot create network namespaces"
    fi
    echo "==> running the engine on mem ports for 5 s (generator gen0 -> sink sink0)"
    cat > "$WORK/engine.toml" <<EOF
[engine]
workers = 1

[[port]]
name = "gen0"
driver = "mem"
[port.generator]
flows = 64
sizes = [64]
src = "10.1.0.0/24"
dst = "10.2.0.0/24"

[[port]]
name = "sink0"
driver = "mem"

[[interface]]
port = "gen0"
address = "10.1.0.1/24"

[[interface]]
port = "sink0"
address = "10.9.0.1/24"

[[neighbor]]
port = "sink0"
address = "10.9.0.2"
mac = "02:00:00:00:09:02"

[[route]]
prefix = "10.2.0.0/24"
via = "10.9.0.2"
EOF
    "$ENGINE" --config "$WORK/engine.toml" --stats-json "$WORK/stats.json" --duration 5 \
        > "$WORK/engine.log" 2>&1 &
    ENGINE_PID=$!
    wait_ready
    while kill -0 "$ENGINE_PID" 2>/dev/null; do
        sleep 1
        kill -0 "$ENGINE_PID" 2>/dev/null && show_stats
    done
    wait "$ENGINE_PID"
    ENGINE_PID=""
    echo "==> final counters"
    cat "$WORK/engine.log"
    exit 0
fi

bash scripts/setup.sh >/dev/null
P="pd$$"
H1="${P}h1" R="${P}r" H2="${P}h2" M="${P}m"
for ns in "$H1" "$R" "$H2" "$M"; do
    ip netns add "$ns"
    NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
done
echo "==> namespaces $H1 — $R (engine) — $H2"
ip -n "$H1" link add eth0 type veth peer name lan0 netns "$R"
ip -n "$H2" link add eth0 type veth peer name wan0 netns "$R"
for i in lan0 wan0; do
    ip netns exec "$R" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
    ip -n "$R" link set "$i" up
done
ip -n "$H1" link set eth0 up
ip -n "$H2" link set eth0 up
ip -n "$H1" addr add 10.1.0.2/24 dev eth0
ip -n "$H1" route add default via 10.1.0.1
ip -n "$H2" addr add 10.2.0.2/24 dev eth0
ip -n "$H2" route add default via 10.2.0.1
ip -n "$H1" addr add 2001:db8:1::2/64 dev eth0 nodad
ip -n "$H1" -6 route add default via 2001:db8:1::1
ip -n "$H2" addr add 2001:db8:2::2/64 dev eth0 nodad
ip -n "$H2" -6 route add default via 2001:db8:2::1
# The control process runs in a management namespace (as on an appliance's
# management network): its API on that namespace's loopback, and a
# management link to h2 so its load-balancer health checks reach the
# backends there without the engine.
ip -n "$M" link add mgmt0 type veth peer name mgmt0 netns "$H2"
ip -n "$M" addr add 10.250.0.1/30 dev mgmt0
ip -n "$H2" addr add 10.250.0.2/30 dev mgmt0
ip -n "$M" link set mgmt0 up
ip -n "$H2" link set mgmt0 up
ip -n "$M" route add 10.2.0.0/24 via 10.250.0.2

cat > "$WORK/engine.toml" <<EOF
[engine]
workers = 1
poll = "adaptive"

[[port]]
name = "lan0"
driver = "afpacket"
iface = "lan0"

[[port]]
name = "wan0"
driver = "afpacket"
iface = "wan0"

[[interface]]
port = "lan0"
address = "10.1.0.1/24"

[[interface]]
port = "wan0"
address = "10.2.0.1/24"

[[interface]]
port = "lan0"
address = "2001:db8:1::1/64"

[[interface]]
port = "wan0"
address = "2001:db8:2::1/64"

[control]
runtime_dir = "$WORK/shm"

[classify]
flows = 65536
model = "$ROOT/models/flow-mlp.bin"
EOF
echo "==> engine config"
cat "$WORK/engine.toml"
ip netns exec "$R" "$ENGINE" --config "$WORK/engine.toml" --stats-json "$WORK/stats.json" \
    > "$WORK/engine.log" 2>&1 &
ENGINE_PID=$!
wait_ready

# The control process on free localhost ports (its API and /metrics).
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
API_PORT="$(free_port)"
METRICS_PORT="$(free_port)"
mkdir -p "$WORK/control"
ip netns exec "$M" "$CONTROL" --listen "127.0.0.1:$API_PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --db "$WORK/control/control.db" --runtime-dir "$WORK/shm" --bgp > "$WORK/control.log" 2>&1 &
CONTROL_PID=$!
ctl() {
    ip netns exec "$M" "$CTL_BIN" --api "http://127.0.0.1:$API_PORT" --token-file "$WORK/control/api-token" "$@"
}
for _ in $(seq 150); do
    kill -0 "$CONTROL_PID" 2>/dev/null || { echo "control exited:"; cat "$WORK/control.log"; exit 1; }
    [ -s "$WORK/control/api-token" ] && ctl status > /dev/null 2>&1 && break
    sleep 0.1
done
echo "==> control API on 127.0.0.1:$API_PORT, metrics on 127.0.0.1:$METRICS_PORT"
echo "\$ patronusctl status"
ctl status

echo "==> ping h1 -> h2"
ip netns exec "$H1" ping -n -c 3 -i 0.3 -W 2 10.2.0.2
echo "==> ping6 h1 -> h2 (IPv6 through the engine)"
ip netns exec "$H1" ping -6 -n -c 3 -i 0.3 -W 2 2001:db8:2::2
echo "==> ping h2 -> h1"
ip netns exec "$H2" ping -n -c 3 -i 0.3 -W 2 10.1.0.2
show_stats

echo "==> iperf3 TCP h1 -> h2, 10 s (counters every 2 s)"
ip netns exec "$H2" iperf3 -s -1 -p 5201 > "$WORK/iperf3-server.log" 2>&1 &
for _ in $(seq 50); do
    [ -n "$(ip netns exec "$H2" ss -Hltn 'sport = :5201')" ] && break
    sleep 0.1
done
ip netns exec "$H1" iperf3 -c 10.2.0.2 -p 5201 -t 10 > "$WORK/iperf3.log" 2>&1 &
IPERF_PID=$!
while kill -0 "$IPERF_PID" 2>/dev/null; do
    sleep 2
    show_stats
done
if ! wait "$IPERF_PID"; then
    echo "iperf3 failed:"
    cat "$WORK/iperf3.log"
    exit 1
fi
tail -n 4 "$WORK/iperf3.log"

# 10.9.0.1 lives on h2's loopback: only a route via h2 reaches it.
ip -n "$H2" addr add 10.9.0.1/32 dev lo
echo "==> h1 pings 10.9.0.1 every 0.2 s; no route yet (the engine answers unreachable)"
ip netns exec "$H1" ping -n -O -i 0.2 -c 30 -W 1 10.9.0.1 > "$WORK/ping-route.log" 2>&1 &
PING_PID=$!
sleep 2
echo "\$ patronusctl interface add wan0 10.2.0.1/24"
ctl interface add wan0 10.2.0.1/24
echo "\$ patronusctl route add 10.9.0.0/24 via 10.2.0.2"
ctl route add 10.9.0.0/24 via 10.2.0.2
wait "$PING_PID" || true
echo "==> the ping stream around the change:"
grep -E 'icmp_seq' "$WORK/ping-route.log" | awk '/bytes from/ {n++} n <= 3' | tail -n 6
tail -n 2 "$WORK/ping-route.log"
echo "\$ patronusctl route list"
ctl route list
echo "\$ patronusctl status"
ctl status
show_stats
grep 'generation' "$WORK/engine.log" | tail -n 2 || true

# BGP: BIRD in h2 (standing for a provider's router) peers with the
# control's speaker over the management link and announces 10.77.0.0/24
# (on h2's loopback) with h2's address on the engine's link as next hop;
# the speaker selects it and the control pushes it into the engine's FIB.
# (On an appliance the session would use the engine's own addresses
# through the punt path; tests/tests/bgp.rs runs it that way.)
ip -n "$H2" addr add 10.77.0.1/24 dev lo
cat > "$WORK/bird.conf" <<EOF
log "$WORK/bird.log" all;
router id 10.2.0.2;
protocol device {}
protocol static s4 { ipv4; route 10.77.0.0/24 blackhole; }
protocol bgp provider {
  local 10.250.0.2 as 65002;
  neighbor 10.250.0.1 as 65001;
  connect delay time 1;
  ipv4 { import all; export filter { bgp_next_hop = 10.2.0.2; accept; }; next hop keep; };
}
EOF
echo "==> BGP: BIRD in h2 (AS 65002) announces 10.77.0.0/24; h1 cannot reach it yet"
ip netns exec "$H2" bird -c "$WORK/bird.conf" -s "$WORK/bird.ctl"
ip netns exec "$H1" ping -n -c 1 -W 1 10.77.0.1 > /dev/null 2>&1 && { echo "10.77.0.1 reachable before BGP"; exit 1; }
echo '{"name": "all", "default": "accept"}' > "$WORK/policy-all.json"
echo "\$ patronusctl bgp set --asn 65001 --router-id 10.250.0.1"
ctl bgp set --asn 65001 --router-id 10.250.0.1
echo "\$ patronusctl bgp policy set all policy-all.json"
ctl bgp policy set all "$WORK/policy-all.json"
echo "\$ patronusctl bgp neighbor add 10.250.0.2 --remote-as 65002 --import all --export all --connect-retry 2"
ctl bgp neighbor add 10.250.0.2 --remote-as 65002 --import all --export all --connect-retry 2
echo "\$ patronusctl bgp network add 10.1.0.0/24"
ctl bgp network add 10.1.0.0/24
for _ in $(seq 300); do
    ip netns exec "$H1" ping -n -c 1 -W 1 10.77.0.1 > /dev/null 2>&1 && break
    sleep 0.2
done
echo "\$ patronusctl bgp summary"
ctl bgp summary
echo "\$ patronusctl bgp rib"
ctl bgp rib
echo "==> h1 -> 10.77.0.1 through the BGP route"
ip netns exec "$H1" ping -n -c 3 -i 0.3 -W 2 10.77.0.1
echo "==> what BIRD learnt from us"
ip netns exec "$H2" birdc -s "$WORK/bird.ctl" show route 10.1.0.0/24 all | head -n 8

# WireGuard: h2 also runs wireguard-go (standing for any standard
# WireGuard peer at a far site) with 10.99.0.2 behind its tunnel; the
# engine's tunnel, its peer and the route into it come from the API.
WG_IF="pdemo$$"
WG_IF="${WG_IF:0:15}"
echo "==> WireGuard: wireguard-go in h2 ($WG_IF, 10.99.0.2 behind it); the engine's side through the API"
rm -f "/var/run/wireguard/$WG_IF.sock"
ip netns exec "$H2" wireguard-go -f "$WG_IF" > "$WORK/wireguard-go.log" 2>&1 &
for _ in $(seq 50); do [ -S "/var/run/wireguard/$WG_IF.sock" ] && break; sleep 0.1; done
(umask 077; wg genkey > "$WORK/h2-wg.key")
H2_PUB="$(wg pubkey < "$WORK/h2-wg.key")"
echo "\$ patronusctl wg tunnel add wg0 --listen-port 51820    # the control process makes the key"
ctl wg tunnel add wg0 --listen-port 51820
ENGINE_PUB="$(ctl --json wg tunnel show wg0 | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["public_key"])')"
echo "\$ patronusctl wg peer add wg0 $H2_PUB --endpoint 10.2.0.2:51820 --allowed-ip 10.99.0.0/24"
ctl wg peer add wg0 "$H2_PUB" --endpoint 10.2.0.2:51820 --allowed-ip 10.99.0.0/24
echo "\$ patronusctl route add 10.99.0.0/24 tunnel wg0"
ctl route add 10.99.0.0/24 tunnel wg0
ip netns exec "$H2" wg set "$WG_IF" private-key "$WORK/h2-wg.key" listen-port 51820 \
    peer "$ENGINE_PUB" endpoint 10.2.0.1:51820 allowed-ips 10.1.0.0/24
ip -n "$H2" addr add 10.99.0.2/32 dev "$WG_IF"
ip -n "$H2" link set "$WG_IF" up
ip -n "$H2" route add 10.1.0.0/24 dev "$WG_IF" src 10.99.0.2
echo "==> h1 pings 10.99.0.2 through the tunnel; h2's wire carries only WireGuard (UDP 51820)"
ip netns exec "$H2" timeout 8 tcpdump -ni eth0 -c 4 'udp port 51820 or icmp' \
    > "$WORK/wg-wire.log" 2>/dev/null &
TCPDUMP_PID=$!
sleep 1
wg_ok=0
for _ in $(seq 10); do
    if ip netns exec "$H1" ping -n -c 3 -i 0.3 -W 1 10.99.0.2; then wg_ok=1; break; fi
done
[ "$wg_ok" = 1 ] || { echo "no ping through the tunnel"; cat "$WORK/engine.log"; exit 1; }
wait "$TCPDUMP_PID" || true
sed 's/^/    /' "$WORK/wg-wire.log"
echo "\$ patronusctl wg peer list wg0    # with the engine's counters"
ctl wg peer list wg0
echo "\$ wg show (in h2)"
ip netns exec "$H2" wg show "$WG_IF" | sed 's/^/    /'
# h2 goes back to reaching h1's subnet through its default route only.
ip -n "$H2" route del 10.1.0.0/24 dev "$WG_IF"

# NAT44: h2 forgets its way back to h1's subnet; source NAT to the
# engine's wan0 address makes h1 reach it again.
ip -n "$H2" route del default
echo "==> h2 has no route back to 10.1.0.0/24: h1 -> h2 goes unanswered"
if ip netns exec "$H1" ping -n -c 2 -i 0.3 -W 1 10.2.0.2 > "$WORK/ping-nonat.log" 2>&1; then
    echo "unexpected: h2 answered without NAT"; cat "$WORK/ping-nonat.log"; exit 1
fi
tail -n 2 "$WORK/ping-nonat.log"
echo "\$ patronusctl nat set --outside wan0 --pool 10.2.0.1"
ctl nat set --outside wan0 --pool 10.2.0.1
echo "==> ping and iperf3 h1 -> h2 through NAT (h2 sees 10.2.0.1)"
ok=""
for _ in $(seq 20); do
    if ip netns exec "$H1" ping -n -c 1 -W 1 10.2.0.2 > /dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || { echo "NAT did not take effect"; exit 1; }
ip netns exec "$H1" ping -n -c 3 -i 0.3 -W 2 10.2.0.2
ip netns exec "$H2" iperf3 -s -1 -p 5202 > "$WORK/iperf3-nat-server.log" 2>&1 &
for _ in $(seq 50); do
    [ -n "$(ip netns exec "$H2" ss -Hltn 'sport = :5202')" ] && break
    sleep 0.1
done
ip netns exec "$H1" iperf3 -c 10.2.0.2 -p 5202 -t 3 > "$WORK/iperf3-nat.log" 2>&1 || {
    echo "iperf3 through NAT failed:"; cat "$WORK/iperf3-nat.log"; exit 1
}
tail -n 4 "$WORK/iperf3-nat.log"
grep -m1 "Accepted connection from" "$WORK/iperf3-nat-server.log" || true
echo "\$ patronusctl nat show"
ctl nat show
echo "\$ patronusctl nat sessions"
ctl nat sessions

# Classification: real servers in h2 (a web server over HTTP and TLS, a DNS
# server), real clients in h1, through the engine (and its NAT).
echo "==> classification: curl (HTTP, HTTPS) and dig from h1 to servers in h2"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=demo.patronus.test" \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" > /dev/null 2>&1
ip netns exec "$H2" openssl s_server -quiet -accept 8443 -www \
    -cert "$WORK/tls.crt" -key "$WORK/tls.key" > "$WORK/s_server.log" 2>&1 &
mkdir -p "$WORK/www" && echo "hello from h2" > "$WORK/www/index.html"
ip netns exec "$H2" "$PY" -m http.server 8080 --bind 10.2.0.2 --directory "$WORK/www" \
    > "$WORK/http.log" 2>&1 &
ip netns exec "$H2" dnsmasq --no-daemon --no-resolv --no-hosts --listen-address=10.2.0.2 \
    --bind-interfaces --address=/demo.patronus.test/10.2.0.2 > "$WORK/dnsmasq.log" 2>&1 &
for port in 8443 8080; do
    for _ in $(seq 50); do
        [ -n "$(ip netns exec "$H2" ss -Hltn "sport = :$port")" ] && break
        sleep 0.1
    done
done
for _ in $(seq 50); do
    [ -n "$(ip netns exec "$H2" ss -Hlun 'sport = :53')" ] && break
    sleep 0.1
done
echo "\$ curl http://www.demo.patronus.test:8080/"
ip netns exec "$H1" curl -sS --resolve www.demo.patronus.test:8080:10.2.0.2 \
    http://www.demo.patronus.test:8080/
echo "\$ curl -k https://demo.patronus.test:8443/"
ip netns exec "$H1" curl -sSk -o /dev/null -w "HTTP %{http_code}\n" \
    --resolve demo.patronus.test:8443:10.2.0.2 https://demo.patronus.test:8443/
echo "\$ dig @10.2.0.2 demo.patronus.test"
ip netns exec "$H1" dig +short +time=2 +tries=3 @10.2.0.2 demo.patronus.test A
sleep 0.3
echo "\$ patronusctl flows --host 10.1.0.2"
ctl flows --host 10.1.0.2
echo "\$ patronusctl flows summary"
ctl flows summary
echo "\$ patronusctl model upload models/flow-mlp.bin --name demo; patronusctl model promote ID"
MODEL_ID="$(ctl --json model upload "$ROOT/models/flow-mlp.bin" --name demo \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
ctl model promote "$MODEL_ID"
ctl model list

# L4 load balancer: three web backends in h2 (one address each) behind a
# VIP that h1 reaches through the engine; NAT mode, so the backends send
# their replies to h1 through the engine again.
echo "==> load balancer: VIP 10.9.9.100:80 over three backends in h2 (weights 1, 2, 1)"
ip -n "$H2" route add 10.1.0.0/24 via 10.2.0.1
for i in 1 2 3; do
    ip -n "$H2" addr add "10.2.0.1$i/24" dev eth0
    mkdir -p "$WORK/www$i" && echo "backend $i" > "$WORK/www$i/index.html"
    ip netns exec "$H2" "$PY" -m http.server 80 --bind "10.2.0.1$i" --directory "$WORK/www$i" \
        > "$WORK/http$i.log" 2>&1 &
done
for i in 1 2 3; do
    for _ in $(seq 50); do
        [ -n "$(ip netns exec "$H2" ss -Hltn "src 10.2.0.1$i and sport = :80")" ] && break
        sleep 0.1
    done
done
echo "\$ patronusctl lb vip add web 10.9.9.100:80 --check http:/ --interval-ms 300 --rise 1 --fall 2"
ctl lb vip add web 10.9.9.100:80 --check http:/ --interval-ms 300 --timeout-ms 250 --rise 1 --fall 2
ctl lb backend add web 10.2.0.11:80 --weight 1
ctl lb backend add web 10.2.0.12:80 --weight 2
ctl lb backend add web 10.2.0.13:80 --weight 1
for _ in $(seq 50); do
    [ "$(ctl --json lb vip show web | "$PY" -c 'import json,sys; print(sum(b["health"] == "up" for b in json.load(sys.stdin)["backends"]))')" = 3 ] && break
    sleep 0.2
done
echo "\$ for i in \$(seq 40); do curl http://10.9.9.100/; done | sort | uniq -c"
for _ in $(seq 40); do ip netns exec "$H1" curl -sS --max-time 2 http://10.9.9.100/; done | sort | uniq -c
echo "\$ patronusctl lb backend set web 10.2.0.12:80 --weight 0    # drain"
ctl lb backend set web 10.2.0.12:80 --weight 0
sleep 0.3
for _ in $(seq 20); do ip netns exec "$H1" curl -sS --max-time 2 http://10.9.9.100/; done | sort | uniq -c
echo "\$ patronusctl lb vip show web"
ctl lb vip show web

echo "==> stopping the control and the engine"
kill -TERM "$CONTROL_PID"
wait "$CONTROL_PID" || true
CONTROL_PID=""
kill -INT "$ENGINE_PID"
status=0
wait "$ENGINE_PID" || status=$?
ENGINE_PID=""
cat "$WORK/engine.log"
echo "engine exit status $status"
[ "$status" = 0 ] || exit "$status"

# Two sites with two uplinks each: path probes, per-application steering,
# failover (tests/src/bin/wan_demo.rs; it removes its namespaces itself).
cargo build --release -p patronus-e2e --bin wan_demo
"$ROOT/target/release/wan_demo" &
WAN_PID=$!
wait "$WAN_PID"
WAN_PID=""
