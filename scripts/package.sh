#!/usr/bin/env bash
# Build coroha's Debian package: target/debian/coroha_<version>_amd64.deb
# (and its -dbgsym package). Needs cargo-deb (`cargo install cargo-deb`).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin coroha
# Man pages and completions come from the clap definitions the binary
# parses with, so they cannot drift from `--help`.
rm -rf target/deb-assets
target/release/coroha generate man-pages target/deb-assets/man >/dev/null
for shell in bash zsh fish; do
    target/release/coroha generate completions "$shell" target/deb-assets/completions >/dev/null
done
cargo deb --no-build --dbgsym "$@"
