#!/usr/bin/env bash
# Demo: h1 — patronus-engine — h2 in network namespaces; ping both ways and
# a 10 s iperf3 while the engine's counters are shown every 2 s. Everything
# is torn down on exit or Ctrl-C. Without root (or with PATRONUS_DEMO_MEM=1)
# it runs the engine on in-memory ports instead (a generator and a sink, 5 s).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
PY=/usr/bin/python3
WORK="$(mktemp -d /tmp/patronus-demo.XXXXXX)"
ENGINE_PID=""
NAMESPACES=()

cleanup() {
    set +e
    if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
        kill -INT "$ENGINE_PID"
        for _ in $(seq 50); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ENGINE_PID" 2>/dev/null
    fi
    for ns in "${NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
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

echo "==> building the release engine"
cargo build --release -p patronus-engine
ENGINE="$ROOT/target/release/patronus-engine"

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
H1="${P}h1" R="${P}r" H2="${P}h2"
for ns in "$H1" "$R" "$H2"; do
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
EOF
echo "==> engine config"
cat "$WORK/engine.toml"
ip netns exec "$R" "$ENGINE" --config "$WORK/engine.toml" --stats-json "$WORK/stats.json" \
    > "$WORK/engine.log" 2>&1 &
ENGINE_PID=$!
wait_ready

echo "==> ping h1 -> h2"
ip netns exec "$H1" ping -n -c 3 -i 0.3 -W 2 10.2.0.2
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

echo "==> stopping the engine"
kill -INT "$ENGINE_PID"
status=0
wait "$ENGINE_PID" || status=$?
ENGINE_PID=""
cat "$WORK/engine.log"
echo "engine exit status $status"
exit "$status"
