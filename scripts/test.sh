#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need,
# then `cargo test`. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install Rust with rustup first" >&2
    exit 1
fi

cargo test --locked --all-targets "$@"
