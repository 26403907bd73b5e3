#!/usr/bin/env bash
# Records labelled traffic of real clients and servers for the classifier:
# a client and a server namespace joined by a veth pair; in the server
# nginx (HTTP and HTTPS with a self-signed certificate), sshd, dnsmasq,
# an FTP server (pyftpdlib, passive ports 60000-60019) and an SMTP server
# (Python's smtpd), and BitTorrent: opentracker and two seeders of a
# torrent of a random file (mktorrent), aria2c and transmission-cli; in
# the client curl, ssh, dig, curl ftp://, swaks and three leechers of the
# torrent: aria2c (MSE-obfuscated handshakes), transmission-cli over TCP
# (plain handshakes) and transmission-cli with uTP (DHT, LPD, PEX and port
# mapping off: the tracker alone names the peers), ROUNDS times each
# (default 5). tcpdump captures the client side; each flow is labelled by
# the server port of the service that answered it (`patronus-ml label`;
# BitTorrent peers listen on 6881-6889, TCP or uTP, whichever side
# connects; tracker announces are HTTP.BitTorrent as nDPI names them), in
# nDPI's result format:
#
#   OUT/pcap/recorded-<stamp>.pcap  OUT/result/recorded-<stamp>.pcap.out
#
# Use it with `patronus-ml eval|train --extra OUT`. Root; everything it
# creates (namespaces named rt<pid>c/rt<pid>s, processes) is removed on
# exit. Usage: sudo bash scripts/record_traffic.sh OUT [ROUNDS]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${1:?usage: record_traffic.sh OUT [ROUNDS]}"
ROUNDS="${2:-5}"
PY=/usr/bin/python3
C="rt$$c"
S="rt$$s"
WORK="$(mktemp -d /tmp/patronus-record.XXXXXX)"
CLIENT=10.77.0.1
SERVER=10.77.0.2
# The aria2c seeder's own address (transmission makes one connection per
# peer address).
SEEDER=10.77.0.3

for p in openssh-server python3-pyftpdlib swaks nginx dnsmasq-base bind9-dnsutils curl tcpdump openssl \
    opentracker aria2 mktorrent transmission-cli; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" >/dev/null
        # Debian's opentracker enables a service on every address of the
        # host: we want only the one in the server namespace.
        if [ "$p" = opentracker ] && [ -d /run/systemd/system ]; then
            systemctl disable --now opentracker.service >/dev/null 2>&1 || true
        fi
    fi
done

cleanup() {
    set +e
    for ns in "$C" "$S"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> building patronus-ml"
cargo build --release -q -p patronus-ml
LABEL="$ROOT/target/release/patronus-ml"

ip netns add "$C"
ip netns add "$S"
ip -n "$C" link add eth0 type veth peer name eth0 netns "$S"
for ns in "$C" "$S"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done
ip -n "$C" addr add "$CLIENT/24" dev eth0
ip -n "$S" addr add "$SERVER/24" dev eth0
ip -n "$S" addr add "$SEEDER/24" dev eth0

echo "==> servers in $S"
# Waits (10 s at most) until something listens on TCP port $1 in $S.
wait_port() {
    for _ in $(seq 100); do
        if ip netns exec "$S" ss -Hltn "sport = :$1" | grep -q .; then return; fi
        sleep 0.1
    done
}
# nginx: HTTP and HTTPS (self-signed, any name).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=records.test" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
mkdir -p "$WORK/www" && head -c 200000 /dev/urandom | base64 > "$WORK/www/file.txt"
echo hello > "$WORK/www/index.html"
cat > "$WORK/nginx.conf" <<EOF
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events {}
http {
    access_log off;
    server {
        listen $SERVER:80;
        listen $SERVER:443 ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/www;
    }
}
EOF
ip netns exec "$S" nginx -c "$WORK/nginx.conf" &
disown
# sshd with its own host key; the client logs in with a key of its own.
ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
mkdir -p /run/sshd
cat > "$WORK/sshd_config" <<EOF
ListenAddress $SERVER
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
PidFile $WORK/sshd.pid
EOF
ip netns exec "$S" /usr/sbin/sshd -D -f "$WORK/sshd_config" &
disown
# dnsmasq answering a few names.
ip netns exec "$S" dnsmasq --no-daemon --no-resolv --no-hosts --listen-address="$SERVER" \
    --bind-interfaces --address=/records.test/"$SERVER" --address=/example.org/"$SERVER" \
    --address=/mail.records.test/"$SERVER" --pid-file="$WORK/dnsmasq.pid" 2>/dev/null &
disown
# FTP (anonymous, read only) and SMTP (prints what it receives).
mkdir -p "$WORK/ftp" && head -c 300000 /dev/urandom > "$WORK/ftp/blob.bin"
ip netns exec "$S" "$PY" -m pyftpdlib -i "$SERVER" -p 21 -d "$WORK/ftp" -r 60000-60019 \
    > "$WORK/ftp.log" 2>&1 &
disown
ip netns exec "$S" "$PY" -W ignore -m smtpd -n -c DebuggingServer "$SERVER:25" \
    > "$WORK/smtp.log" 2>&1 &
disown

# BitTorrent: a tracker (opentracker, chrooted into its own directory,
# only the torrent's info hash whitelisted) and a seeder (aria2c, port
# 6881 on $SEEDER) in the server namespace. Leechers listen on 6882
# (aria2c), 6883 and 6885 (transmission-cli); peer connections of either
# side are labelled by those ports.
BT_PORTS=6881-6889
TRACKER_PORT=6969
BT_OFF=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false
    --enable-peer-exchange=false --disable-ipv6=true --console-log-level=warn
    --summary-interval=0 --file-allocation=none)
BT_FILE="blob-$$.bin"
mkdir -p "$WORK/bt/seed" "$WORK/tracker"
head -c 2000000 /dev/urandom > "$WORK/bt/seed/$BT_FILE"
mktorrent -a "http://$SERVER:$TRACKER_PORT/announce" -o "$WORK/bt/blob.torrent" \
    "$WORK/bt/seed/$BT_FILE" >/dev/null
aria2c -S "$WORK/bt/blob.torrent" | sed -n 's/^Info Hash: //p' > "$WORK/tracker/whitelist.txt"
chmod 755 "$WORK/tracker" && chmod 644 "$WORK/tracker/whitelist.txt"
ip netns exec "$S" opentracker -i "$SERVER" -p "$TRACKER_PORT" -P "$TRACKER_PORT" \
    -d "$WORK/tracker" -w /whitelist.txt -u nobody > "$WORK/tracker.log" 2>&1 &
disown
# The seeders' first announce must find the tracker (a failed one is
# retried only minutes later).
wait_port "$TRACKER_PORT"
ip netns exec "$S" aria2c "${BT_OFF[@]}" --dir="$WORK/bt/seed" --check-integrity=true \
    --interface="$SEEDER" --seed-ratio=0.0 --listen-port=6881 "$WORK/bt/blob.torrent" > "$WORK/seeder.log" 2>&1 &
disown
# A second seeder, transmission-cli (port 6884, uTP on, encryption
# preferred), started afresh for each round (see bt_round).
bt_settings() { # PORT UTP ENCRYPTION DOWNLOAD_DIR
    cat <<EOF
{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
 "utp-enabled": $2, "port-forwarding-enabled": false, "encryption": $3,
 "peer-port": $1, "rpc-enabled": false, "incomplete-dir-enabled": false,
 "download-dir": "$4", "message-level": 1}
EOF
}

# Wait for every service's port.
for port in 80 443 22 53 21 25 6881; do
    wait_port "$port"
done

STAMP="$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$OUT/pcap" "$OUT/result"
PCAP="$OUT/pcap/recorded-$STAMP.pcap"
ip netns exec "$C" tcpdump -q -i eth0 -s 0 -U -w "$PCAP" "host $SERVER or host $SEEDER" 2>/dev/null &
TCPDUMP=$!
sleep 1

cl() { ip netns exec "$C" "$@"; }

# One BitTorrent round: each leecher downloads the torrent from the two
# seeders into a fresh directory and leaves, announcing `stopped`: aria2c
# (port 6882), then transmission-cli over TCP only (6883), then
# transmission-cli with uTP (6885), each with a fresh configuration.
bt_round() {
    local d="$WORK/bt/round$1"
    mkdir -p "$d/aria2" "$d/trseed"
    # The transmission seeder of the last round would still hold the last
    # uTP leecher's connection (one per peer address): a fresh one.
    bt_settings 6884 true 1 "$WORK/bt/seed" > "$d/trseed/settings.json"
    ip netns exec "$S" env --default-signal=INT transmission-cli -v -M -p 6884 -g "$d/trseed" \
        -w "$WORK/bt/seed" "$WORK/bt/blob.torrent" > "$d/trseed.log" 2>&1 &
    local seed=$!
    wait_port 6884
    sleep 1 # its verification and first announce
    cl aria2c "${BT_OFF[@]}" --dir="$d/aria2" --seed-time=0 --listen-port=6882 \
        --bt-stop-timeout=60 "$WORK/bt/blob.torrent" > "$d/aria2.log" 2>&1 || true
    if ! cmp -s "$d/aria2/$BT_FILE" "$WORK/bt/seed/$BT_FILE"; then
        echo "aria2c round $1: no complete download" >&2
        tail -5 "$d/aria2.log" >&2
    fi
    tr_leech "$d/tcp" 6883 false
    # A port of its own each round: transmission with uTP does not
    # connect again from a port that a finished leecher used.
    tr_leech "$d/utp" $((6885 + ($1 - 1) % 5)) true
    stop "$seed"
}

# SIGINT (announce `stopped`), then after 3 s SIGKILL.
stop() {
    kill -INT "$1" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# transmission-cli leeching into DIR/dl on PORT, uTP on or off (-et:
# plain handshakes preferred), until the file is complete (60 s at most).
tr_leech() { # DIR PORT UTP
    mkdir -p "$1/dl" "$1/cfg"
    bt_settings "$2" "$3" 0 "$1/dl" > "$1/cfg/settings.json"
    # A background job of a script starts with SIGINT ignored: give it
    # back, SIGINT is what makes transmission-cli announce `stopped`.
    cl env --default-signal=INT transmission-cli -et -M -p "$2" -g "$1/cfg" -w "$1/dl" \
        "$WORK/bt/blob.torrent" > "$1/tr.log" 2>&1 &
    local tr=$! ok=""
    for _ in $(seq 600); do
        if cmp -s "$1/dl/$BT_FILE" "$WORK/bt/seed/$BT_FILE"; then ok=1; break; fi
        sleep 0.1
    done
    [ -n "$ok" ] || echo "transmission-cli $1: no complete download in 60 s" >&2
    stop "$tr"
}
echo "==> $ROUNDS rounds of clients in $C"
for r in $(seq "$ROUNDS"); do
    cl curl -s -o /dev/null "http://$SERVER/" -H "Host: www.records.test"
    cl curl -s -o /dev/null "http://$SERVER/file.txt" -H "Host: files.records.test"
    cl curl -s -k -o /dev/null --resolve "secure$r.records.test:443:$SERVER" "https://secure$r.records.test/"
    cl curl -s -k -o /dev/null --http1.1 --resolve "www.example.org:443:$SERVER" "https://www.example.org/file.txt"
    cl ssh -q -i "$WORK/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes "root@$SERVER" "echo round $r" >/dev/null
    cl dig +short +tries=1 "@$SERVER" "host$r.records.test" A >/dev/null
    cl dig +short +tries=1 "@$SERVER" example.org MX >/dev/null
    cl dig +short +tcp +tries=1 "@$SERVER" "tcp$r.records.test" A >/dev/null
    cl curl -s -o /dev/null "ftp://$SERVER/blob.bin"
    cl swaks --silent 2 --server "$SERVER" --to "user$r@records.test" \
        --from "sender@records.test" --body "round $r" >/dev/null
    bt_round "$r"
done
sleep 1
kill -INT "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null || true

"$LABEL" label "$PCAP" --out "$OUT/result/$(basename "$PCAP").out" \
    --port 80=HTTP --port 443=TLS --port 22=SSH --port 53=DNS \
    --port 21=FTP_CONTROL --port 60000-60019=FTP_DATA --port 20=FTP_DATA --port 25=SMTP \
    --port "$BT_PORTS=BitTorrent" --port "$TRACKER_PORT=HTTP.BitTorrent"
echo "==> $PCAP"
