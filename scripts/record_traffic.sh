#!/usr/bin/env bash
# Records labelled traffic of real clients and servers for the classifier:
# a client and a server namespace joined by a veth pair; in the server
# nginx (HTTP and HTTPS with a self-signed certificate), sshd, dnsmasq,
# an FTP server (pyftpdlib, passive ports 60000-60019) and an SMTP server
# (Python's smtpd); in the client curl, ssh, dig, curl ftp:// and swaks,
# ROUNDS times each (default 5). tcpdump captures the client side; each
# flow is labelled by the server port of the service that answered it
# (`patronus-ml label`), in nDPI's result format:
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

for p in openssh-server python3-pyftpdlib swaks nginx dnsmasq-base bind9-dnsutils curl tcpdump openssl; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        apt-get install -y -q --no-install-recommends "$p" >/dev/null
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

echo "==> servers in $S"
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

# Wait for every service's port.
for port in 80 443 22 53 21 25; do
    for _ in $(seq 100); do
        if ip netns exec "$S" ss -Hltn "sport = :$port" | grep -q .; then break; fi
        sleep 0.1
    done
done

STAMP="$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$OUT/pcap" "$OUT/result"
PCAP="$OUT/pcap/recorded-$STAMP.pcap"
ip netns exec "$C" tcpdump -q -i eth0 -s 0 -U -w "$PCAP" "host $SERVER" 2>/dev/null &
TCPDUMP=$!
sleep 1

cl() { ip netns exec "$C" "$@"; }
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
done
sleep 1
kill -INT "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null || true

"$LABEL" label "$PCAP" --out "$OUT/result/$(basename "$PCAP").out" \
    --port 80=HTTP --port 443=TLS --port 22=SSH --port 53=DNS \
    --port 21=FTP_CONTROL --port 60000-60019=FTP_DATA --port 20=FTP_DATA --port 25=SMTP
echo "==> $PCAP"
