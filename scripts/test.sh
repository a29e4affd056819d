#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need
# (the tansu Kafka-protocol broker, started per test by the tests themselves,
# and promtool for the metrics lint),
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

# C toolchain and headers the bundled librdkafka build needs (present on the
# project's machines; installed here if a machine lacks them).
missing=()
for pkg in g++ make pkg-config libssl-dev zlib1g-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing build dependencies: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# promtool lints the /metrics output (Debian package `prometheus`).
if ! command -v promtool >/dev/null 2>&1; then
    as_root=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && as_root="sudo -n"; }
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$as_root" ]; }; then
        echo "== installing promtool (Debian package prometheus)"
        $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends prometheus
    else
        echo "warning: promtool is missing and cannot be installed here; the metrics lint is skipped outside CI" >&2
    fi
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
