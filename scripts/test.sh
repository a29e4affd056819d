#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need
# (the tansu Kafka-protocol broker, started per test by the tests themselves),
# then `cargo test`. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The broker the Kafka tests start on loopback ports. Built once, then cached in
# ~/.cargo/bin (about 7 minutes on a fresh machine).
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install Rust with rustup first" >&2
    exit 1
fi

tansu_bin="${TANSU:-$HOME/.cargo/bin/tansu}"
if [ ! -x "$tansu_bin" ] && command -v tansu >/dev/null 2>&1; then
    tansu_bin="$(command -v tansu)"
fi
if [ ! -x "$tansu_bin" ]; then
    echo "== installing tansu $TANSU_VERSION (test broker; cached after the first run)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
    tansu_bin="$HOME/.cargo/bin/tansu"
fi
export TANSU="$tansu_bin"

cargo test --locked --all-targets "$@"
