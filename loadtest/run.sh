#!/usr/bin/env bash
# Benchmarks countersign against the baseline on this machine, interleaved so the
# ratios are fair on a noisy machine. Builds release binaries, then per round:
#   baseline            minimal hyper server (read body, 200)
#   baseline-hmac       the same, verifying one Standard Webhooks HMAC
#   baseline-sync       the same, answering only once the body is appended to a
#                       log file on the stores' filesystem and synced, in group
#                       commits (`loadtest baseline --sync-dir`): the floor of
#                       any store that syncs before it answers, on this disk
#   durable             countersign accepting into the durable store (no sinks)
#   kafka               countersign with the Kafka sink to a local tansu broker
#   http                countersign with one HTTP endpoint (every event routed to
#                       it) delivering to a fast local receiver (a baseline server)
#   durable-otel        `durable` exporting every span over OTLP/HTTP to a local
#                       sink (a baseline server answering 200); not in the default set
#   durable-before      `durable` with the binary BEFORE_BIN (e.g. a release build
#                       of an earlier commit), for before/after comparisons in
#                       one interleaved run; not in the default set
#   durable-nolog       `durable` with the write-ahead log off ([store] wal =
#                       false: every group commit syncs the database's pages
#                       itself, as before issue 20's log); not in the default set
#   durable-envelopes   `durable` with envelope tracking on ([envelopes]
#                       enabled): every event updates its envelope, derived
#                       events are stored; not in the default set (use
#                       LT_ARGS="--signers 2 --signers-max 5")
#   durable-routes      `durable` with 50 [[routes]] (filters, topics; no
#                       `when`): the reference of durable-rules
#   durable-rules       the same 50 routes, each with a CEL `when` over the
#                       event and its source (issue 16: >= 0.9x of
#                       durable-routes); neither is in the default set
#   durable-audit       `durable` with the audit log on ([audit] enabled: one
#                       hash-chained entry per webhook, signed checkpoints;
#                       issue 17: >= 0.9x of durable); also reports the store's
#                       bytes per accepted webhook (for durable too) and
#                       `audit verify` entries/s; not in the default set
#   durable-schema      `durable` with a JSON Schema on every source that
#                       walks the whole payload (issue 19: >= 0.9x of
#                       durable); not in the default set
#   stream              envelope tracking on and SUBSCRIBERS (1000) clients of
#                       /v1/stream, open loop at each of STREAM_RATES webhooks/s:
#                       delivery latency (arrival minus the webhook's receipt)
#                       and whether every subscriber got every change;
#                       stream.<rate>.json
# Each scenario: closed loop (max throughput) with peak RSS and CPU of the
# server, and for the sinks the seconds until the sink's queue is empty; then
# open loop at 50% of that maximum (latency); then a sweep of open-loop runs at
# SWEEP fractions of the maximum (latency against offered load). Results go to
# loadtest/results/<date>/ as JSON, summary.md, sweep.json and latency.png.
#
# Usage: loadtest/run.sh [scenario ...]   (default: all of the above; `outage`
#        runs only the Kafka outage measurement, `timers` only the durable
#        timers' (TIMERS_N envelopes, TIMERS_RATE/s, due TIMERS_DUE s after
#        sending: memory with them pending, firing throughput after a restart
#        across their due time; TIMERS_LOAD_RATE webhooks/s for 10 s while they
#        fire, if set: timers.during.json; TIMERS_BATCH sets
#        envelopes.timer_batch), `panel` only the status panel's (PANEL_N
#        envelopes seeded at PANEL_SEED_RATE/s; the admin API's answers to
#        the panel's pages; the live envelopes page in headless Chromium at
#        each of PANEL_RATES new envelopes/s), `http-backlog` only the HTTP
#        sink's: memory with a backlog on a dead endpoint, then deliveries/s
#        draining it into a fast local receiver)
# Env: ROUNDS (2), DURATION seconds per closed run (15), OPEN_DURATION (15),
#      CONNS (32), SWEEP ("0.1 0.25 0.5 0.75 0.9 1.0"; empty: no sweep),
#      SWEEP_DURATION seconds per sweep point (6), OUTAGE=1 also runs the 60 s Kafka outage drain measurement;
#      BACKLOG_RATE (5000) x BACKLOG_SECONDS (20) webhooks for http-backlog,
#      BACKLOG_IN_FLIGHT (64) the endpoint's max_in_flight;
#      LT_ARGS extra arguments of every `loadtest run` (e.g. "--signers 2 --signers-max 5");
#      WRK_CHECK=0 skips the load generator's check against wrk (run first);
#      PIN=1 pins the server under test to SERVER_CPUS (1) and the load
#      generator (and wrk) to LOAD_CPUS (0) with taskset, for steadier
#      latency figures (the scenarios' runs and the wrk check; the sinks'
#      broker and receiver stay unpinned).
#      Every run also measures one 4 KiB append + fdatasync on the stores'
#      filesystem (`loadtest fsync`; fsync.json), the floor under each
#      acknowledgement.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15}
OPEN_DURATION=${OPEN_DURATION:-15}
CONNS=${CONNS:-32}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(baseline baseline-hmac baseline-sync durable kafka http)
SWEEP=${SWEEP-0.1 0.25 0.5 0.75 0.9 1.0}
SWEEP_DURATION=${SWEEP_DURATION:-6}
read -r -a LT_EXTRA <<<"${LT_ARGS:-}"
SUBSCRIBERS=${SUBSCRIBERS:-1000}
# PIN: commands prefixed with these run pinned (empty: unpinned).
SRV=()
LD=()
PINNED=""
if [ -n "${PIN:-}" ] && [ "$PIN" != 0 ]; then
    SRV=(taskset -c "${SERVER_CPUS:-1}")
    LD=(taskset -c "${LOAD_CPUS:-0}")
    PINNED=" PIN=1 SERVER_CPUS=${SERVER_CPUS:-1} LOAD_CPUS=${LOAD_CPUS:-0}"
fi
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT="$ROOT/loadtest/results/$STAMP"
mkdir -p "$OUT"
TANSU=${TANSU:-$HOME/.cargo/bin/tansu}

echo "== building release binaries"
cargo build --release --locked -p countersign -p countersign-loadtest
LT="$ROOT/target/release/loadtest"
CS="$ROOT/target/release/countersign"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }
wait_port() { for _ in $(seq 1 200); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# The gateway's [server], [store] and [telemetry] for $PORT, $ADMIN and $WORK;
# [telemetry] comes last, so a caller may add keys to it.
gateway_config() {
    printf '[server]\nlisten = "127.0.0.1:%s"\nadmin_listen = "127.0.0.1:%s"\n' "$PORT" "$ADMIN"
    # Every connection of the load comes from one address: let them all in
    # (the default of 64 at once per client would answer 429 at CONNS=256).
    printf 'max_requests_per_client = %s\n' "$((CONNS * 2))"
    printf '[store]\npath = "%s/data"\n' "$WORK"
    [ "${1:-}" != durable-nolog ] || printf 'wal = false\n'
    printf '[telemetry]\nlog_level = "warn"\n'
}

# One endpoint `bench` at 127.0.0.1:$1 every event is routed to; further
# arguments are extra lines of its table.
bench_endpoint() {
    printf '[[endpoints]]\nid = "bench"\nurl = "http://127.0.0.1:%s/hooks"\nallow_private = true\n' "$1"
    printf 'secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"\n'
    shift
    [ $# -eq 0 ] || printf '%s\n' "$@"
    printf '[[routes]]\nendpoints = ["bench"]\n'
}

# 50 routes, each to its own topic (Kafka is off: routing is computed, no
# outbox is written); with $1 = when, each has a CEL condition over the event
# and its source, some true for some of the load's events, most false.
bench_routes() {
    local i
    for i in $(seq 0 49); do
        printf '[[routes]]\nname = "r%s"\ntopics = ["rules.%s"]\n' "$i" "$i"
        [ "$1" = when ] || continue
        case $((i % 5)) in
            0) printf "when = 'event.kind == \"completed\" && source.startsWith(\"lt-\")'\n" ;;
            1) printf "when = 'source == \"lt-src-%s\" || event.provider == \"none-%s\"'\n" "$i" "$i" ;;
            2) printf "when = 'has(event.signer) && has(event.signer.email) && event.signer.email.endsWith(\"@example%s.com\")'\n" "$i" ;;
            3) printf "when = 'event.provider_event_type.startsWith(\"x%s\") || event.kind in [\"declined\", \"voided\"]'\n" "$i" ;;
            4) printf "when = 'has(event.envelope_id) && size(event.envelope_id) > %s'\n" "$i" ;;
        esac
    done
}

# A schema every load-test payload passes, that still visits every value of
# it (a recursive `anyOf` over the whole document) and checks a contract value.
bench_schema() {
    cat <<'JSON'
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$defs": {
    "node": {
      "anyOf": [
        { "type": ["string", "number", "boolean", "null"] },
        { "type": "array", "items": { "$ref": "#/$defs/node" } },
        { "type": "object", "additionalProperties": { "$ref": "#/$defs/node" } }
      ]
    }
  },
  "$ref": "#/$defs/node",
  "properties": {
    "data": {
      "properties": {
        "contract_value": { "type": "number", "minimum": 0 },
        "email": { "type": "string", "format": "email" }
      }
    }
  }
}
JSON
}

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts tansu on BROKER_PORT with BROKER_ENGINE in $WORK (exec, so the PID is
# the broker's own and `kill` stops it).
spawn_broker() {
    (cd "$WORK" && exec "$TANSU" broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" --storage-engine "$BROKER_ENGINE") \
        >>"$WORK/tansu.log" 2>&1 &
    BROKER_PID=$!; PIDS+=("$BROKER_PID")
}

start_broker() {
    BROKER_PORT=$(free_port)
    BROKER_ENGINE=${1:-memory://tansu/}
    spawn_broker
    wait_port "$BROKER_PORT"
    for _ in $(seq 1 50); do
        "$TANSU" topic create --broker "tcp://127.0.0.1:$BROKER_PORT" --partitions 3 signature.events >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "cannot create topic" >&2; return 1
}

# Starts the server of a scenario; sets SERVER_PID, PORT, ADMIN.
start_server() {
    WORK=$(mktemp -d)
    PORT=$(free_port)
    case "$1" in
        baseline) "${SRV[@]}" "$LT" baseline --listen "127.0.0.1:$PORT" >/dev/null & SERVER_PID=$! ;;
        baseline-hmac) "${SRV[@]}" "$LT" baseline --listen "127.0.0.1:$PORT" --verify-whsec whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw >/dev/null & SERVER_PID=$! ;;
        baseline-sync) "${SRV[@]}" "$LT" baseline --listen "127.0.0.1:$PORT" --sync-dir "$WORK" >/dev/null & SERVER_PID=$! ;;
        durable|kafka|http|durable-otel|durable-before|durable-nolog|durable-envelopes|durable-routes|durable-rules|durable-audit|durable-schema|stream)
            local bin="$CS"
            if [ "$1" = durable-before ]; then
                bin="${BEFORE_BIN:?durable-before needs BEFORE_BIN=/path/to/countersign}"
            fi
            ADMIN=$(free_port)
            {
                gateway_config "$1"
                if [ "$1" = durable-otel ]; then
                    OTLP_PORT=$(free_port)
                    "$LT" baseline --listen "127.0.0.1:$OTLP_PORT" >/dev/null & PIDS+=($!); OTLP_PID=$!
                    printf 'otlp_endpoint = "http://127.0.0.1:%s"\n' "$OTLP_PORT"
                fi
                if [ "$1" = durable-audit ]; then
                    printf '[audit]\nenabled = true\nsigning_key = "%s"\n' 0707070707070707070707070707070707070707070707070707070707070707
                fi
                if [ "$1" = durable-routes ]; then bench_routes plain; fi
                if [ "$1" = durable-rules ]; then bench_routes when; fi
                if [ "$1" = durable-envelopes ] || [ "$1" = stream ]; then
                    printf '[envelopes]\nenabled = true\nstream_max_subscribers = %s\n' "$((SUBSCRIBERS * 2 + 16))"
                fi
                if [ "$1" = kafka ]; then
                    start_broker
                    printf '[kafka]\nbrokers = "127.0.0.1:%s"\n' "$BROKER_PORT"
                fi
                if [ "$1" = http ]; then
                    # The receiver: the baseline server (reads the body, answers 200).
                    RECV_PORT=$(free_port)
                    "$LT" baseline --listen "127.0.0.1:$RECV_PORT" >/dev/null & RECV_PID=$!; PIDS+=("$RECV_PID")
                    wait_port "$RECV_PORT"
                    bench_endpoint "$RECV_PORT"
                fi
                if [ "$1" = durable-schema ]; then
                    bench_schema >"$WORK/schema.json"
                    "$LT" sources | sed "s|^provider = .*|&\nschema = \"$WORK/schema.json\"|"
                else
                    "$LT" sources
                fi
            } >"$WORK/countersign.toml"
            "${SRV[@]}" "$bin" serve --config "$WORK/countersign.toml" 2>"$WORK/countersign.log" & SERVER_PID=$!
            ;;
    esac
    PIDS+=("$SERVER_PID")
    wait_port "$PORT"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
    if [ -n "${RECV_PID:-}" ]; then kill "$RECV_PID" 2>/dev/null || true; wait "$RECV_PID" 2>/dev/null || true; RECV_PID=; fi
    if [ -n "${OTLP_PID:-}" ]; then kill "$OTLP_PID" 2>/dev/null || true; wait "$OTLP_PID" 2>/dev/null || true; OTLP_PID=; fi
    if [ -n "${BROKER_PID:-}" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=; fi
    rm -rf "$WORK"
}

# Messages countersign's Kafka outbox holds; deliveries its endpoints have pending.
kafka_pending() { curl -s "http://127.0.0.1:$ADMIN/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checks"]["kafka"]["pending"])'; }
http_pending() { endpoint_counts | cut -d' ' -f1; }

# The bench endpoint's counters from countersign's admin API: "<pending> <delivered>".
endpoint_counts() {
    curl -s "http://127.0.0.1:$ADMIN/v1/endpoints" | python3 -c 'import json,sys; e=json.load(sys.stdin)["endpoints"][0]; print(e["pending"], e["delivered"])'
}

# Seconds until the sink's queue (kafka_pending or http_pending) is empty.
drain_seconds() {
    local t0; t0=$(date +%s.%N)
    while [ "$("$1")" != 0 ]; do sleep 0.1; done
    python3 -c "print(round($(date +%s.%N) - $t0, 2))"
}

run_scenario() {
    local name=$1 round=$2 base="$OUT/$1.r$2"
    start_server "$name"
    local t0 c0; t0=$(date +%s.%N); c0=$(cpu_ticks "$SERVER_PID")
    # The HMAC baseline verifies Standard Webhooks only, so it gets only those.
    local mix=("${LT_EXTRA[@]}")
    [ "$name" = baseline-hmac ] && mix+=(--providers standard_webhooks)
    "${LD[@]}" "$LT" run --target "127.0.0.1:$PORT" "${mix[@]}" --connections "$CONNS" --duration "$DURATION" --out "$base.closed.json" >/dev/null 2>"$base.closed.progress"
    local drained=""
    case "$name" in
        kafka) drained=$(drain_seconds kafka_pending) ;;
        http) drained=$(drain_seconds http_pending) ;;
    esac
    local c1 t1; c1=$(cpu_ticks "$SERVER_PID"); t1=$(date +%s.%N)
    local max; max=$(json "$base.closed.json" "d['throughput_rps']")
    local rate; rate=$(python3 -c "print(round($max * 0.5, 1))")
    "${LD[@]}" "$LT" run --target "127.0.0.1:$PORT" "${mix[@]}" --connections "$CONNS" --rate "$rate" --duration "$OPEN_DURATION" --out "$base.open.json" >/dev/null 2>"$base.open.progress"
    local rss; rss=$(peak_rss_kib "$SERVER_PID")
    local cpu; cpu=$(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0) * 100, 1))")
    # Latency against offered load: short open-loop runs at fractions of the maximum.
    local f
    for f in $SWEEP; do
        local r; r=$(python3 -c "print(round($max * $f, 1))")
        "${LD[@]}" "$LT" run --target "127.0.0.1:$PORT" "${mix[@]}" --connections "$CONNS" --rate "$r" --duration "$SWEEP_DURATION" --out "$base.sweep-$f.json" >/dev/null 2>/dev/null
    done
    local rss_sweep; rss_sweep=$(peak_rss_kib "$SERVER_PID")
    # The store's size per webhook it took, and for the audit log how fast
    # `audit verify` checks it (the gateway stopped first: verify reads a
    # stopped gateway's store).
    local bytes_per="" verify_rate=""
    case "$name" in
        durable|durable-nolog|durable-audit)
            kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
            local db="$WORK/data/countersign.redb" taken
            taken=$(python3 - "$base" $SWEEP <<'PY'
import json, sys
base = sys.argv[1]
n = sum(json.load(open(f"{base}.{k}.json"))["status"].get("200", 0) for k in ("closed", "open"))
n += sum(json.load(open(f"{base}.sweep-{f}.json"))["status"].get("200", 0) for f in sys.argv[2:])
print(n)
PY
)
            bytes_per=$(python3 -c "print(round($(stat -c %s "$db") / max($taken, 1), 1))")
            if [ "$name" = durable-audit ]; then
                verify_rate=$("$CS" audit verify --store "$WORK/data" | sed -n 's/.* \([0-9]*\) entries\/s$/\1/p')
            fi
            ;;
    esac
    python3 - "$base" "$name" "$round" "$rss" "$cpu" "$drained" "$rss_sweep" "$bytes_per" "$verify_rate" $SWEEP <<'EOF'
import json, sys
base, name, rnd, rss, cpu, drained, rss_sweep, bytes_per, verify_rate = sys.argv[1:10]
sweep = []
for f in sys.argv[10:]:
    s = json.load(open(f"{base}.sweep-{f}.json"))
    sweep.append({"fraction": float(f), "offered": s["offered_rate"], "achieved": s["throughput_rps"],
                  "latency_ms": s["latency_ms"], "status": s["status"], "errors": s["errors"]})
c = json.load(open(base + ".closed.json")); o = json.load(open(base + ".open.json"))
json.dump({"scenario": name, "round": int(rnd), "max_rps": c["throughput_rps"],
           "closed_status": c["status"], "closed_errors": c["errors"],
           "open_rate": o["offered_rate"], "open_rps": o["throughput_rps"], "open_latency_ms": o["latency_ms"],
           "open_send_lag_ms": o.get("send_lag_ms"),
           "open_status": o["status"], "peak_rss_mib": round(int(rss) / 1024, 1), "cpu_percent_closed": float(cpu),
           "drain_s": float(drained) if drained else None,
           "peak_rss_mib_after_sweep": round(int(rss_sweep) / 1024, 1), "sweep": sweep,
           "store_bytes_per_webhook": float(bytes_per) if bytes_per else None,
           "audit_verify_entries_per_s": int(verify_rate) if verify_rate else None,
           "accepted_closed": c["status"].get("200", 0)}, open(base + ".summary.json", "w"), indent=1)
EOF
    echo "   $name round $round: max $(printf %.0f "$max")/s, drained ${drained:-n/a}s, rss ${rss}KiB, cpu ${cpu}%${bytes_per:+, ${bytes_per} store bytes/webhook}${verify_rate:+, verify ${verify_rate} entries/s}"
    stop_server
}

outage() {
    # Open loop at a fixed rate; the broker is down from t=10 s to t=70 s. Reports
    # how long the backlog takes to drain once the broker is back.
    local rate=${OUTAGE_RATE:-500}
    WORK=$(mktemp -d)
    start_broker "sqlite://tansu.db"
    PORT=$(free_port); ADMIN=$(free_port)
    { gateway_config
      printf '[kafka]\nbrokers = "127.0.0.1:%s"\n' "$BROKER_PORT"
      # tansu 0.6's SQLite storage panics resuming an idempotent producer after an
      # unclean stop under load (idempotent_message_check); see BENCHMARKS.md.
      printf '[kafka.producer]\n"enable.idempotence" = false\n'
      "$LT" sources; } >"$WORK/countersign.toml"
    "$CS" serve --config "$WORK/countersign.toml" 2>"$WORK/countersign.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$PORT"
    "$LT" run --target "127.0.0.1:$PORT" --rate "$rate" --connections 16 --duration 80 --out "$OUT/outage.load.json" >/dev/null 2>"$OUT/outage.progress" &
    local load=$!
    sleep 10; kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true
    sleep 60
    local backlog; backlog=$(kafka_pending)
    local rss_during; rss_during=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    spawn_broker; wait_port "$BROKER_PORT"
    local t0; t0=$(date +%s.%N)
    wait "$load"
    local drained; drained=$(drain_seconds kafka_pending)
    local total; total=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
    echo "{\"rate\": $rate, \"backlog_after_60s\": $backlog, \"rss_kib_during_outage\": $rss_during, \"seconds_from_broker_back_to_drained\": $total}" | tee "$OUT/outage.json"
    stop_server
}

http_backlog() {
    # HTTP sink: BACKLOG_RATE webhooks/s for BACKLOG_SECONDS while the endpoint is
    # dead (nothing listens on its port): memory with the backlog waiting. Then a
    # fast receiver (the baseline server) comes up: deliveries/s while draining.
    local rate=${BACKLOG_RATE:-5000} secs=${BACKLOG_SECONDS:-20}
    WORK=$(mktemp -d)
    PORT=$(free_port); ADMIN=$(free_port); local rport; rport=$(free_port)
    { gateway_config
      bench_endpoint "$rport" "max_in_flight = ${BACKLOG_IN_FLIGHT:-64}" "max_attempts = 1000" \
          'retry_schedule = ["1s"]' 'breaker = { failures = 5, cooldown = "1s" }'
      "$LT" sources; } >"$WORK/countersign.toml"
    "$CS" serve --config "$WORK/countersign.toml" 2>"$WORK/countersign.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$PORT"
    "$LT" run --target "127.0.0.1:$PORT" --rate "$rate" --connections 32 --duration "$secs" --out "$OUT/http-backlog.load.json" >/dev/null 2>"$OUT/http-backlog.progress"
    local counts; counts=$(endpoint_counts)
    local backlog=${counts% *}
    local rss_waiting; rss_waiting=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    local hwm_waiting; hwm_waiting=$(peak_rss_kib "$SERVER_PID")
    "$LT" baseline --listen "127.0.0.1:$rport" >/dev/null & local recv=$!; PIDS+=("$recv")
    wait_port "$rport"
    # The breaker's probe may wait out a grown cool-down: time from the first delivery.
    while [ "$(endpoint_counts | cut -d' ' -f2)" = 0 ]; do sleep 0.05; done
    local t0 c0; t0=$(date +%s.%N); c0=$(cpu_ticks "$SERVER_PID")
    local first; first=$(endpoint_counts | cut -d' ' -f2)
    while [ "$(http_pending)" != 0 ]; do sleep 0.1; done
    local t1 c1; t1=$(date +%s.%N); c1=$(cpu_ticks "$SERVER_PID")
    local delivered; delivered=$(endpoint_counts | cut -d' ' -f2)
    local hwm_drain; hwm_drain=$(peak_rss_kib "$SERVER_PID")
    python3 - "$OUT/http-backlog.json" "$rate" "$secs" "$backlog" "$rss_waiting" "$hwm_waiting" "$first" "$delivered" "$t0" "$t1" "$hwm_drain" "$c0" "$c1" "$(getconf CLK_TCK)" <<'EOF2'
import json, sys
out, rate, secs, backlog, rss_w, hwm_w, first, delivered, t0, t1, hwm_d, c0, c1, tck = sys.argv[1:]
el = float(t1) - float(t0); n = int(delivered) - int(first)
r = {"offered_rate": float(rate), "seconds": float(secs), "backlog": int(backlog),
     "rss_mib_while_waiting": round(int(rss_w) / 1024, 1), "peak_rss_mib_while_waiting": round(int(hwm_w) / 1024, 1),
     "drained": n, "drain_seconds": round(el, 2), "deliveries_per_s": round(n / el, 1),
     "peak_rss_mib_after_drain": round(int(hwm_d) / 1024, 1),
     "cpu_percent_drain": round((int(c1) - int(c0)) / int(tck) / el * 100, 1)}
json.dump(r, open(out, "w"), indent=1); print(json.dumps(r))
EOF2
    kill "$recv" 2>/dev/null || true
    stop_server
}

panel_bench() {
    # The status panel (issue 18): PANEL_N envelopes sent out (one `sent`
    # webhook each, open loop at PANEL_SEED_RATE/s), 1 000 of them registered
    # with references from newest to oldest; then the admin API's answer
    # times for the panel's pages (`loadtest panel`: panel.api.json). Then
    # the envelopes page in headless Chromium while new envelopes arrive at
    # each of PANEL_RATES webhooks/s (each makes 2 stream messages: sent and
    # envelope.in_signing): does the live list keep up (`loadtest
    # panel-live`: panel.live.<rate>.json)?
    local n=${PANEL_N:-100000} rate=${PANEL_SEED_RATE:-5000}
    WORK=$(mktemp -d)
    PORT=$(free_port); ADMIN=$(free_port)
    { gateway_config; printf '[envelopes]\nenabled = true\n'; "$LT" sources; } >"$WORK/countersign.toml"
    "$CS" serve --config "$WORK/countersign.toml" 2>"$WORK/countersign.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$PORT"
    local secs; secs=$(python3 -c "print($n / $rate)")
    "$LT" run --target "127.0.0.1:$PORT" --providers standard_webhooks --only-sent --rate "$rate" --connections 32 \
        --duration "$secs" --out "$OUT/panel.seed.json" >/dev/null 2>"$OUT/panel.seed.progress"
    "$LT" panel --admin "127.0.0.1:$ADMIN" --register 1000 --rounds "${PANEL_ROUNDS:-20}" --out "$OUT/panel.api.json" >/dev/null
    for r in ${PANEL_RATES:-100 200 400}; do
        "$LT" panel-live --admin "127.0.0.1:$ADMIN" --duration 20 --out "$OUT/panel.live.$r.json" >/dev/null & local live=$!
        sleep 4
        "$LT" run --target "127.0.0.1:$PORT" --providers standard_webhooks --only-sent --rate "$r" --connections 8 \
            --duration 18 --out "$OUT/panel.load.$r.json" >/dev/null 2>&1
        wait "$live"
    done
    stop_server
}

timers_bench() {
    # Durable timers at scale: TIMERS_N envelopes sent out (one `sent` webhook
    # each, open loop at TIMERS_RATE/s), every one with a reminder due
    # TIMERS_DUE seconds after sending: pending timers and memory. Then the
    # gateway stops, the reminders fall due while it is down, and it starts
    # again on the same store: all TIMERS_N are due at once; firing throughput
    # (reminders fired per second until none is pending) and memory.
    local n=${TIMERS_N:-100000} rate=${TIMERS_RATE:-4000} due=${TIMERS_DUE:-60}
    WORK=$(mktemp -d)
    PORT=$(free_port); ADMIN=$(free_port)
    { gateway_config
      printf '[envelopes]\nenabled = true\n'
      [ -z "${TIMERS_BATCH:-}" ] || printf 'timer_batch = %s\n' "$TIMERS_BATCH"
      "$LT" sources | awk -v d="$due" '{print} /^provider = / {printf "reminders = [\"%ss\"]\n", d}'
    } >"$WORK/countersign.toml"
    "$CS" serve --config "$WORK/countersign.toml" 2>"$WORK/countersign.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$PORT"
    local secs; secs=$(python3 -c "print($n / $rate)")
    local t_send; t_send=$(date +%s)
    "$LT" run --target "127.0.0.1:$PORT" --only-sent --rate "$rate" --connections 32 --duration "$secs" \
        --out "$OUT/timers.load.json" >/dev/null 2>"$OUT/timers.progress"
    local pending; pending=$(metric countersign_envelope_timers_pending)
    local rss_pending; rss_pending=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    local hwm_pending; hwm_pending=$(peak_rss_kib "$SERVER_PID")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    # Down until every reminder is due.
    local wake=$((t_send + ${secs%.*} + due + 2)); while [ "$(date +%s)" -lt "$wake" ]; do sleep 1; done
    "$CS" serve --config "$WORK/countersign.toml" 2>>"$WORK/countersign.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    local t0 c0; t0=$(date +%s.%N)
    wait_port "$ADMIN"; c0=$(cpu_ticks "$SERVER_PID")
    # Optionally webhooks keep coming while the timers fire: their latency.
    local load=
    if [ -n "${TIMERS_LOAD_RATE:-}" ]; then
        wait_port "$PORT"
        "$LT" run --target "127.0.0.1:$PORT" --rate "$TIMERS_LOAD_RATE" --connections 32 --duration 10 \
            --out "$OUT/timers.during.json" >/dev/null 2>"$OUT/timers.during.progress" & load=$!
    fi
    while [ "$(metric countersign_envelope_timers_pending)" != 0 ]; do sleep 0.1; done
    local t1 c1; t1=$(date +%s.%N); c1=$(cpu_ticks "$SERVER_PID")
    [ -z "$load" ] || wait "$load"
    local fired; fired=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '$1 ~ /^countersign_envelope_timers_fired_total/ {s += $2} END {print s}')
    local hwm_fire; hwm_fire=$(peak_rss_kib "$SERVER_PID")
    local lateness; lateness=$(metric countersign_envelope_timer_lateness_seconds_sum)
    python3 - "$OUT/timers.json" "$n" "$rate" "$pending" "$rss_pending" "$hwm_pending" "$fired" "$t0" "$t1" "$hwm_fire" "$c0" "$c1" "$(getconf CLK_TCK)" "$lateness" <<'EOF2'
import json, sys
out, n, rate, pending, rss_p, hwm_p, fired, t0, t1, hwm_f, c0, c1, tck, late = sys.argv[1:]
el = float(t1) - float(t0); f = int(float(fired))
r = {"envelopes_sent": int(n), "send_rate": float(rate), "timers_pending": int(float(pending)),
     "rss_mib_with_timers_pending": round(int(rss_p) / 1024, 1), "peak_rss_mib_while_sending": round(int(hwm_p) / 1024, 1),
     "fired_after_restart": f, "seconds_from_start_to_none_pending": round(el, 2), "fired_per_s": round(f / el, 1),
     "peak_rss_mib_while_firing": round(int(hwm_f) / 1024, 1),
     "cpu_percent_firing": round((int(c1) - int(c0)) / int(tck) / el * 100, 1),
     "cpu_us_per_timer": round((int(c1) - int(c0)) / int(tck) * 1e6 / max(f, 1), 1),
     "mean_lateness_s": round(float(late) / max(f, 1), 1)}
json.dump(r, open(out, "w"), indent=1); print(json.dumps(r))
EOF2
    stop_server
}

metric() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

stream_bench() {
    # Envelope tracking with SUBSCRIBERS clients of /v1/stream, at each of
    # STREAM_RATES webhooks/s (open loop, OPEN_DURATION seconds): a fresh set
    # of subscribers per rate measures each message's delivery latency
    # (arrival minus the webhook's receipt) and counts what each one got
    # against the changes the gateway committed (countersign_envelope_changes_total).
    start_server stream
    local rate
    for rate in ${STREAM_RATES:-100 200 400 800 1600}; do
        local ch0; ch0=$(metric countersign_envelope_changes_total)
        "$LT" subscribe --admin "127.0.0.1:$ADMIN" --subscribers "$SUBSCRIBERS" --duration "$((OPEN_DURATION + 8))" \
            --out "$OUT/stream.$rate.subscribers.json" >/dev/null 2>&1 & local sub=$!
        sleep 3
        local t0 c0; t0=$(date +%s.%N); c0=$(cpu_ticks "$SERVER_PID")
        "$LT" run --target "127.0.0.1:$PORT" "${LT_EXTRA[@]}" --connections "$CONNS" --rate "$rate" --duration "$OPEN_DURATION" \
            --out "$OUT/stream.$rate.open.json" >/dev/null 2>"$OUT/stream.$rate.open.progress"
        local t1 c1; t1=$(date +%s.%N); c1=$(cpu_ticks "$SERVER_PID")
        wait "$sub"
        local ch1; ch1=$(metric countersign_envelope_changes_total)
        python3 - "$OUT" "$rate" "$ch0" "$ch1" "$c0" "$c1" "$t0" "$t1" "$(getconf CLK_TCK)" <<'EOF2'
import json, sys
out, rate, ch0, ch1, c0, c1, t0, t1, tck = sys.argv[1:]
o = json.load(open(f"{out}/stream.{rate}.open.json")); s = json.load(open(f"{out}/stream.{rate}.subscribers.json"))
changes = int(float(ch1)) - int(float(ch0)); el = float(t1) - float(t0)
cpu = (int(c1) - int(c0)) / int(tck)
r = {"subscribers": s["subscribers"], "rate": float(rate), "open_rps": o["throughput_rps"], "open_status": o["status"],
     "webhook_latency_ms": o["latency_ms"], "changes": changes, "changes_per_s": round(changes / el, 1),
     "connected_to_the_end": s["connected"], "closed_by_gateway": s["closed_by_gateway"],
     "messages_per_subscriber_min": s["messages_per_subscriber_min"], "messages_per_subscriber_max": s["messages_per_subscriber_max"],
     "every_subscriber_got_every_change": s["messages_per_subscriber_min"] == s["messages_per_subscriber_max"] == changes,
     "delivery_latency_ms": s["latency_ms"], "messages_delivered_per_s": round(s["messages_total"] / el, 1),
     "server_cpu_percent": round(cpu / el * 100, 1)}
json.dump(r, open(f"{out}/stream.{rate}.json", "w"), indent=1)
print(f"   stream {rate}/s: changes {changes}, every subscriber got every change: {r['every_subscriber_got_every_change']}, "
      f"lagged {s['closed_by_gateway'].get('lagged', 0)}, delivery p50 {s['latency_ms']['p50']} ms p99 {s['latency_ms']['p99']} ms, "
      f"webhook p99 {o['latency_ms']['p99']} ms, server cpu {r['server_cpu_percent']}%")
EOF2
    done
    stop_server
}

{
    echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
    echo "date: $STAMP"
    echo "command: loadtest/run.sh ${SCENARIOS[*]} (ROUNDS=$ROUNDS DURATION=$DURATION OPEN_DURATION=$OPEN_DURATION CONNS=$CONNS$PINNED)"
} | tee "$OUT/machine.txt"

# The load generator checked against an independent one: wrk and `loadtest
# run` against the same baseline server, minutes apart, same connections and
# duration. Below 0.8x of wrk, the tool is the bottleneck of its own baseline
# and the run says so (the ratios to the baseline would be compressed).
# WRK_CHECK=0 skips it.
wrk_check() {
    if ! command -v wrk >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            apt-get install -y -qq wrk >/dev/null 2>&1 || true
        fi
    fi
    if ! command -v wrk >/dev/null 2>&1; then
        echo "WARNING: wrk is not installed (Debian package wrk): the load generator is not checked" | tee "$OUT/wrk-check.txt"
        return 0
    fi
    WORK=$(mktemp -d)
    PORT=$(free_port)
    "${SRV[@]}" "$LT" baseline --listen "127.0.0.1:$PORT" >/dev/null & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$PORT"
    python3 -c "import json; print(json.dumps({'type': 'envelope.completed', 'data': {'envelope_id': 'env-wrk', 'pad': 'x' * 900}}))" >"$WORK/body.json"
    cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$WORK/body.json"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
    local wrk_rps tool_rps
    wrk_rps=$("${LD[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$WORK/post.lua" "http://127.0.0.1:$PORT/hooks/lt-sw" | awk '/Requests\/sec/ {print $2}')
    "${LD[@]}" "$LT" run --target "127.0.0.1:$PORT" --providers standard_webhooks --payload-bytes 1024 --connections "$CONNS" --duration "$DURATION" --out "$OUT/wrk-check.tool.json" >/dev/null 2>&1
    tool_rps=$(json "$OUT/wrk-check.tool.json" "d['throughput_rps']")
    stop_server
    python3 - "$wrk_rps" "$tool_rps" "$OUT" <<'PY' | tee "$OUT/wrk-check.txt"
import json, sys
wrk, tool, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
r = tool / wrk if wrk else 0.0
json.dump({"wrk_rps": wrk, "tool_rps": tool, "ratio": round(r, 3)}, open(out + "/wrk-check.json", "w"))
verdict = "ok" if r >= 0.8 else "WARNING: below 0.8x: the load generator is the bottleneck of the baseline"
print(f"load generator check: wrk {wrk:.0f} req/s, loadtest {tool:.0f} req/s against the same baseline server: {r:.2f}x ({verdict})")
PY
}
[ "${WRK_CHECK:-1}" = 0 ] || { echo "== load generator check (wrk)"; wrk_check; }

# The disk's floor under every acknowledgement: one 4 KiB append +
# fdatasync on the filesystem the stores live on (mktemp -d), measured in
# the same run so latency targets can be read against it.
echo "== fdatasync probe"
FSYNC_DIR=$(mktemp -d)
"$LT" fsync --dir "$FSYNC_DIR" --count 2000 --bytes 4096 >"$OUT/fsync.json"
rmdir "$FSYNC_DIR"
python3 - "$OUT/fsync.json" <<'PY' | tee "$OUT/fsync.txt"
import json, sys
d = json.load(open(sys.argv[1]))
print(f"fdatasync of a {d['bytes']} B append on the store's filesystem: p50 {d['p50_us'] / 1000:.2f} ms, p99 {d['p99_us'] / 1000:.2f} ms, max {d['max_us'] / 1000:.2f} ms ({d['samples']} samples)")
PY

for round in $(seq 1 "$ROUNDS"); do
    for s in "${SCENARIOS[@]}"; do
        [ "$s" = outage ] || [ "$s" = http-backlog ] || [ "$s" = stream ] || [ "$s" = timers ] || [ "$s" = panel ] && continue
        echo "== round $round: $s"
        run_scenario "$s" "$round"
    done
done
if [ "${OUTAGE:-0}" = 1 ] || [[ " ${SCENARIOS[*]} " == *" outage "* ]]; then echo "== kafka outage"; outage; fi

if [[ " ${SCENARIOS[*]} " == *" http-backlog "* ]]; then echo "== http backlog"; http_backlog; fi

if [[ " ${SCENARIOS[*]} " == *" stream "* ]]; then echo "== stream subscribers"; stream_bench; fi

if [[ " ${SCENARIOS[*]} " == *" timers "* ]]; then echo "== envelope timers"; timers_bench; fi

if [[ " ${SCENARIOS[*]} " == *" panel "* ]]; then echo "== status panel"; panel_bench; fi

python3 "$ROOT/loadtest/summarize.py" "$OUT" | tee "$OUT/summary.md"
if [ -f "$OUT/sweep.json" ]; then "$LT" chart --input "$OUT/sweep.json" --out "$OUT/latency.png"; fi
