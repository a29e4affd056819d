#!/usr/bin/env bash
# Sidecar rehearsal: countersign and a downstream app side by side on loopback,
# as they share a pod's network namespace in sidecar mode (the app at
# 127.0.0.1:APP_PORT, countersign delivering to it, as in
# helm/countersign/examples/sidecar-app).
#
#   1. signed DocuSign webhooks go in; the app receives every event, verifying
#      countersign's Standard Webhooks signature on each;
#   2. with the app slowed down, more webhooks go in and countersign gets
#      SIGTERM at once: it turns unready, finishes the deliveries in flight,
#      records them and exits 0 within its shutdown deadline; what it had not
#      started stays queued in the store;
#   3. countersign starts again on the same store (a container restart) and
#      delivers the rest: every accepted event reached the app.
#
# Usage: deploy/sidecar-rehearsal.sh   (COUNTERSIGN_BIN: a built binary; else a
#        release build). Needs python3 and curl. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${COUNTERSIGN_BIN:-}" ]; then
    cargo build --release --locked -p countersign
    COUNTERSIGN_BIN="$ROOT/target/release/countersign"
fi
CS=$COUNTERSIGN_BIN
N=${N:-20}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz")" = 200 ] && return 0
        sleep 0.05
    done
    echo "countersign never became ready" >&2; cat "$WORK/countersign.log" >&2; return 1
}
delivered() { [ -f "$WORK/received.jsonl" ] && python3 -c "import json; print(len({json.loads(l)['webhook_id'] for l in open('$WORK/received.jsonl')}))" || echo 0; }
pending() { curl -s "http://127.0.0.1:$ADMIN/v1/endpoints" | python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoints"][0]["pending"])'; }
wait_delivered() {
    for _ in $(seq 1 600); do [ "$(delivered)" -ge "$1" ] && return 0; sleep 0.05; done
    echo "the app received $(delivered) of $1 events" >&2; return 1
}
arrived() { [ -f "$WORK/received.jsonl.arrived" ] && wc -l <"$WORK/received.jsonl.arrived" || echo 0; }
wait_arrived() {
    for _ in $(seq 1 200); do [ "$(arrived)" -ge "$1" ] && return 0; sleep 0.01; done
    echo "$(arrived) of $1 deliveries reached the app" >&2; return 1
}

APP_PORT=$(free_port); PUB=$(free_port); ADMIN=$(free_port)
APP_WHSEC="whsec_$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(24)).decode())')"
DOCUSIGN_HMAC_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
export APP_WHSEC DOCUSIGN_HMAC_KEY
cat >"$WORK/countersign.toml" <<TOML
[server]
listen = "127.0.0.1:$PUB"
admin_listen = "127.0.0.1:$ADMIN"
shutdown_timeout = "10s"

[store]
path = "$WORK/data"

[telemetry]
log_format = "text"

[[endpoints]]
id = "app"
url = "http://127.0.0.1:$APP_PORT/signature-events"
secret = "env:APP_WHSEC"
allow_private = true
max_in_flight = 4

[[routes]]
endpoints = ["app"]

[[sources]]
id = "docusign"
provider = "docusign"
secrets = ["env:DOCUSIGN_HMAC_KEY"]
TOML

start_app() {
    DELAY_MS=${1:-0} python3 deploy/rehearsal/app.py "$APP_PORT" "$APP_WHSEC" "$WORK/received.jsonl" & APP_PID=$!; PIDS+=("$APP_PID")
    # Listening before anything is sent: a refused connection would turn the
    # first deliveries into retries scheduled for later.
    for _ in $(seq 1 200); do
        curl -s -o /dev/null "http://127.0.0.1:$APP_PORT/" && return 0
        sleep 0.025
    done
    echo "the app never listened" >&2; return 1
}
start_countersign() {
    "$CS" serve --config "$WORK/countersign.toml" 2>>"$WORK/countersign.log" & CS_PID=$!; PIDS+=("$CS_PID")
    wait_ready
}
send() { python3 deploy/rehearsal/send.py "$CS" "$WORK/countersign.toml" docusign "http://127.0.0.1:$PUB" "$1" "$2"; }

echo "== 1. countersign and the app side by side on loopback"
start_app 0
start_countersign
send "$N" env-a
wait_delivered "$N"
echo "   the app received $(delivered) of $N events, each with a valid countersign signature"

echo "== 2. SIGTERM with deliveries in flight (the app answers in 1 s)"
kill "$APP_PID"; wait "$APP_PID" 2>/dev/null || true
start_app 1000
send "$N" env-b
# SIGTERM only once a delivery is in flight (the app holds it for 1 s), so the
# drain has something to finish.
wait_arrived $((N + 1))
before=$(delivered)
t0=$(date +%s.%N)
kill -TERM "$CS_PID"
# Unready at once, while the drain runs.
code=""
for _ in $(seq 1 40); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz" || true)
    [ "$code" != 200 ] && break
    sleep 0.025
done
rc=0; wait "$CS_PID" || rc=$?
took=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
after=$(delivered)
echo "   /readyz during the drain: ${code:-closed}; countersign exited with $rc after ${took}s (deadline 10s)"
echo "   delivered before SIGTERM: $((before - N)), by the drain: $((after - before)), left queued on disk: $((2 * N - after))"
[ "$rc" = 0 ] || { echo "countersign did not exit cleanly" >&2; cat "$WORK/countersign.log" >&2; exit 1; }
grep -q "shutting down" "$WORK/countersign.log" && grep -q "stopped" "$WORK/countersign.log" \
    || { echo "no shutdown in the log" >&2; cat "$WORK/countersign.log" >&2; exit 1; }
echo "   its log:"
grep -E "shutting down|stopped" "$WORK/countersign.log" | sed 's/^/     /'

echo "== 3. restart on the same store (a container restart): the rest goes out"
start_countersign
wait_delivered $((2 * N))
echo "   the app received $(delivered) of $((2 * N)) events; pending now: $(pending)"
kill -TERM "$CS_PID"; wait "$CS_PID" || true
echo "rehearsal ok: every accepted webhook reached the app; SIGTERM drained cleanly"
