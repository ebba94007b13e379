#!/usr/bin/env bash
# Set up (Debian 12: corosync's client libraries, as root) and run the
# simulated 3-node failover demo. Extra arguments go to `coroha simulate`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_packages "${BUILD_PACKAGES[@]}"
exec cargo run --release -- simulate "$@"
