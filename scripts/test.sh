#!/usr/bin/env bash
# Set up and run every test of coroha on Debian 12 (as root, for the
# packages and for the corosync-vqsim test's private mount namespace).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests need:
# - corosync's client libraries (-dev: rust-corosync links cpg, cfg, cmap,
#   quorum and votequorum at build time);
# - corosync itself and iproute2 for the lab (a real cluster in network
#   namespaces), corosync-vqsim for the votequorum model test;
# - erlang-base (term format cross-check), procps (kill -STOP/-CONT).
packages=(
    libcpg-dev libcfg-dev libcmap-dev libquorum-dev libvotequorum-dev libcorosync-common-dev
    corosync corosync-vqsim iproute2 util-linux erlang-base procps
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

# corosync-vqsim reads /etc/corosync/corosync.conf; the test mounts its own
# directory over /etc/corosync in a private namespace, so only the (empty)
# directory must exist. Debian's corosync package creates it too.
if [ ! -d /etc/corosync ] && [ "$(id -u)" -eq 0 ]; then
    mkdir -p /etc/corosync
fi

cargo fmt --all -- --check
cargo clippy --all-targets --release -- -D warnings
cargo test --release --no-fail-fast
