#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need, if missing.
# Idempotent and quick when everything is there. Rust (rustup/cargo) is
# assumed to be installed already.
set -euo pipefail

PACKAGES=(
    iproute2 iputils-ping nftables iperf3 tcpdump tshark python3-scapy
    ethtool procps clang libpcap-dev prometheus curl pkg-config
    libdpdk-dev dpdk dpdk-dev libbpf-dev libxdp-dev xdp-tools m4 libelf-dev zlib1g-dev
    # The NAT suite's outside servers and DNS client (tests/tests/nat.rs).
    nginx dnsmasq-base bind9-dnsutils
    # The WireGuard suite's reference sites (tests/tests/wireguard.rs).
    wireguard-go wireguard-tools
    # The classifier's baseline (perf classify-pcap) and mergecap.
    libndpi-bin wireshark-common
    # The classification suite's servers and clients (tests/tests/classify.rs;
    # nginx, dnsmasq, dig and curl are listed above): sshd and ssh, and
    # openssl for the HTTPS server's self-signed certificate.
    openssh-server openssh-client openssl
    # The load-balancer suite's load generator (tests/tests/lb.rs; its nginx
    # backends and the clang that builds tests/bpf/decap.c are listed above).
    wrk
    # BGP peers for the codec's golden captures and the BGP suites (issue 9).
    bird2 frr
)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: not root; checking packages only" >&2
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup.sh: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
