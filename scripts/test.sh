#!/usr/bin/env bash
# The whole check: packages, format, lints, release build, unit and
# end-to-end tests, and a bounded fuzz run. Fails on the first failing step.
# Run as root (the end-to-end tests create network namespaces).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "setup (Debian packages)"
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings
# The DPDK port is a cargo feature (a default build needs no DPDK).
cargo clippy -p patronus-engine -p patronus-dpdk-sys -p patronus-e2e --all-targets \
    --features patronus-engine/dpdk,patronus-e2e/dpdk -- -D warnings

step "cargo build --release (engine with the dpdk feature)"
cargo build --release
cargo build --release -p patronus-engine --features dpdk

step "unit tests"
# --workspace includes bindings/dpdk-sys and its EAL smoke test.
cargo test --workspace --exclude patronus-e2e
cargo test -p patronus-engine --features dpdk --lib dpdk

step "end-to-end tests (release engine, one test at a time)"
# The namespace tests are heavy (iperf3, 10 s streams); on 2 cores they run
# one by one. Names are unique per process anyway.
PATRONUS_ENGINE="$PWD/target/release/patronus-engine" \
    cargo test -p patronus-e2e --features dpdk -- --test-threads=1

if [ -d engine/fuzz/fuzz_targets ]; then
    step "fuzz (30 s per target)"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    shopt -s nullglob
    targets=(engine/fuzz/fuzz_targets/*.rs)
    if [ "${#targets[@]}" -eq 0 ]; then
        echo "engine/fuzz has no targets" >&2
        exit 1
    fi
    for t in "${targets[@]}"; do
        name="$(basename "$t" .rs)"
        step "fuzz $name"
        # New inputs go to a scratch directory; the committed seeds are read only.
        scratch="$(mktemp -d)"
        (cd engine && cargo fuzz run -s none "$name" "$scratch" "fuzz/corpus/$name" -- -max_total_time=30)
        rm -rf "$scratch"
    done
    # The BGP decoder (its own fuzz workspace under bgp/).
    for t in bgp/fuzz/fuzz_targets/*.rs; do
        name="$(basename "$t" .rs)"
        step "fuzz $name"
        scratch="$(mktemp -d)"
        (cd bgp && cargo fuzz run -s none "$name" "$scratch" "fuzz/corpus/$name" -- -max_total_time=30)
        rm -rf "$scratch"
    done
fi

# Test namespaces are named pt<pid>x<n>…; any whose process is gone was
# left behind.
leftover=""
for ns in $(ip netns list | awk '/^pt[0-9]+x/ {print $1}'); do
    pid="${ns#pt}"
    pid="${pid%%x*}"
    if [ ! -d "/proc/$pid" ]; then
        leftover="$leftover $ns"
    fi
done
if [ -n "$leftover" ]; then
    echo "namespaces left behind by the tests:$leftover" >&2
    exit 1
fi

step "all checks passed"
