#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 30; the closing
# figures of a change come from longer local runs, e.g. `scripts/fuzz.sh 600`).
# Needs the nightly toolchain; installs cargo-fuzz when missing. A crash stops
# the script with the target's name and leaves the input in
# fuzz/artifacts/<target>/: add it to fuzz/regressions/<target>/ so the unit
# test `fuzz::tests::regressions_stay_fixed` keeps it fixed.
# `-s none`: no AddressSanitizer. The Kafka client's C libraries do not build
# with it (librdkafka's configure links test programs without the ASan
# runtime), and the Rust under test is memory-safe: the targets look for
# panics, which libFuzzer catches with coverage instrumentation alone.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-30}"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "== installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build -O -s none
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${SECONDS_EACH}s"
    mkdir -p "fuzz/corpus/$target"
    seeds=()
    [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
    cargo +nightly fuzz run -O -s none "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 2>&1 |
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==[0-9]+==ERROR|SUMMARY)" || true
    # A slow unit is reported, not failed: on a busy machine any input can
    # take long once (the ones seen ran in 0 ms again); crashes, leaks,
    # timeouts and out-of-memory inputs fail the run.
    for slow in fuzz/artifacts/"$target"/slow-unit-*; do
        [ -e "$slow" ] && echo "note: $target reported a slow input: $slow" >&2 && rm -f "$slow"
    done
    if [ -n "$(ls -A "fuzz/artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target crashed; inputs in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
