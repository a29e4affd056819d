"""Summarizes a loadtest/run.sh result directory: a Markdown table (medians over
rounds, throughput as a ratio to the baseline measured in the same run), the
latency-against-load sweep as a table, and sweep.json for `loadtest chart`."""

import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "*.summary.json"))):
    d = json.load(open(f))
    rows.setdefault(d["scenario"], []).append(d)

ORDER = ["baseline", "baseline-hmac", "baseline-sync", "durable-before", "durable-nolog", "durable", "durable-audit", "durable-schema", "durable-envelopes", "durable-routes", "durable-rules", "durable-otel", "kafka", "http"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def lag(rs):
    """The open loop's send lag p99 (runs of a tool without it: blank)."""
    lags = [r["open_send_lag_ms"]["p99"] for r in rs if r.get("open_send_lag_ms")]
    return f"{med(lags):.2f}" if lags else ""


def drain(r):
    # Older result files call it kafka_drain_s.
    return r.get("drain_s", r.get("kafka_drain_s"))


base = med([r["max_rps"] for r in rows.get("baseline", [])])
durable = med([r["max_rps"] for r in rows.get("durable", [])])
machine = os.path.join(out, "machine.txt")
if os.path.exists(machine):
    print(open(machine).read())
for extra in ("wrk-check.txt", "fsync.txt"):
    path = os.path.join(out, extra)
    if os.path.exists(path):
        print(open(path).read())
print("| scenario | rounds | max req/s (closed, per round) | median | ratio to baseline | ratio to durable | open-loop rate | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | send lag p99 ms | peak RSS MiB | CPU % (closed) | CPU µs/req | sink drained s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in ORDER:
    rs = rows.get(name)
    if not rs:
        continue
    mx = med([r["max_rps"] for r in rs])
    lat = lambda k: med([r["open_latency_ms"][k] for r in rs])
    ratio = f"{mx / base:.2f}" if base else "n/a"
    to_durable = f"{mx / durable:.2f}" if durable and name not in ("baseline", "baseline-hmac", "baseline-sync") else ""
    d = med([drain(r) for r in rs])
    rss = max(max(r["peak_rss_mib"], r.get("peak_rss_mib_after_sweep", 0)) for r in rs)
    per_round = ", ".join(f"{r['max_rps']:.0f}" for r in sorted(rs, key=lambda r: r["round"]))
    print(f"| {name} | {len(rs)} | {per_round} | {mx:.0f} | {ratio} | {to_durable} | {med([r['open_rate'] for r in rs]):.0f} | "
          f"{lat('p50'):.2f} | {lat('p90'):.2f} | {lat('p99'):.2f} | {lat('p999'):.2f} | {lat('max'):.2f} | {lag(rs)} | "
          f"{rss:.1f} | {med([r['cpu_percent_closed'] for r in rs]):.0f} | "
          f"{med([r['cpu_percent_closed'] * 10000 / r['max_rps'] for r in rs]):.0f} | "
          f"{'' if d is None else f'{d:.2f}'} |")
# The most a store that syncs once before each answer could take at this
# connection count (issue 20's analysis). Measured when the run has
# `baseline-sync` (the baseline server answering only after a group commit of
# the bodies to a synced log: nothing else); estimated otherwise: each request
# needs the baseline's round trip, one fdatasync begun after its record was
# written, and on average half of the sync already running; no CPU, no
# checkpoints.
synced = med([r["max_rps"] for r in rows["baseline-sync"]]) if rows.get("baseline-sync") else None
fsync_path = os.path.join(out, "fsync.json")
conns = None
if os.path.exists(machine):
    m = re.search(r"CONNS=(\d+)", open(machine).read())
    conns = int(m.group(1)) if m else None
ceiling = None
if base and synced:
    ceiling = synced
    how = ("Floor of a store that syncs before it answers, measured (baseline-sync: the baseline server, answering "
           "once each body is appended to a log and synced, in group commits; nothing else)")
elif base and conns and os.path.exists(fsync_path):
    sync_ms = json.load(open(fsync_path))["p50_us"] / 1000
    round_trip_ms = conns / base * 1000
    ceiling = conns / ((round_trip_ms + 1.5 * sync_ms) / 1000)
    how = (f"Ceiling of a store that syncs before it answers, at {conns} connections: the baseline's round trip "
           f"({round_trip_ms:.2f} ms) plus 1.5 fdatasync p50 ({1.5 * sync_ms:.2f} ms) per request, at zero CPU and "
           f"without checkpoints")
if ceiling:
    reached = f"; durable took {durable / ceiling:.2f} of it" if durable else ""
    print(f"\n{how}: {ceiling:.0f} req/s ({ceiling / base:.2f}x of the baseline){reached}.")
# The store's size per accepted webhook, and `audit verify`'s speed.
store = [(n, med([r["store_bytes_per_webhook"] for r in rs]), [r.get("audit_verify_entries_per_s") for r in rs])
         for n in ORDER for rs in [rows.get(n, [])] if rs and rs[0].get("store_bytes_per_webhook")]
if store:
    print("\n| scenario | store bytes per webhook (median) | audit verify entries/s (per round) |")
    print("|---|---|---|")
    for n, b, v in store:
        print(f"| {n} | {b:.0f} | {', '.join(str(x) for x in v if x) or ''} |")
bad = [(n, r["round"], k, v) for n, rs in rows.items() for r in rs
       for k, v in {**r["closed_status"], **r["open_status"]}.items() if k != "200"]
if bad:
    print("\nNon-200 answers: " + "; ".join(f"{n} r{rnd} {k}: {v}" for n, rnd, k, v in bad))

# Latency against offered load: medians over the rounds per fraction of each
# round's own maximum.
series = []
for name in ORDER:
    rs = [r for r in rows.get(name, []) if r.get("sweep")]
    if not rs:
        continue
    fractions = sorted({p["fraction"] for r in rs for p in r["sweep"]})
    points = []
    for f in fractions:
        ps = [p for r in rs for p in r["sweep"] if p["fraction"] == f]
        points.append({"fraction": f, "offered": med([p["offered"] for p in ps]),
                       "achieved": med([p["achieved"] for p in ps]),
                       "p50": med([p["latency_ms"]["p50"] for p in ps]),
                       "p99": med([p["latency_ms"]["p99"] for p in ps]),
                       "p999": med([p["latency_ms"]["p999"] for p in ps])})
    series.append({"scenario": name, "points": points})
if series:
    stamp = os.path.basename(os.path.normpath(out))
    json.dump({"title": f"countersign: latency against offered load ({stamp}, medians of the rounds)",
               "series": series}, open(os.path.join(out, "sweep.json"), "w"), indent=1)
    print("\nLatency against offered load (open loop; load as a fraction of each scenario's own maximum; medians):\n")
    print("| scenario | load | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms |")
    print("|---|---|---|---|---|---|---|")
    for s in series:
        for p in s["points"]:
            print(f"| {s['scenario']} | {p['fraction']:.0%} | {p['offered']:.0f} | {p['achieved']:.0f} | "
                  f"{p['p50']:.2f} | {p['p99']:.2f} | {p['p999']:.2f} |")

outage = os.path.join(out, "outage.json")
if os.path.exists(outage):
    o = json.load(open(outage))
    print(f"\nKafka outage: {o['rate']} webhooks/s offered; after 60 s without a broker the backlog was "
          f"{o['backlog_after_60s']} messages (gateway RSS {o['rss_kib_during_outage'] / 1024:.1f} MiB); "
          f"{o['seconds_from_broker_back_to_drained']} s after the broker came back the outbox was empty.")
backlog = os.path.join(out, "http-backlog.json")
if os.path.exists(backlog):
    b = json.load(open(backlog))
    print(f"\nHTTP backlog: {b['offered_rate']:.0f} webhooks/s for {b['seconds']:.0f} s to a dead endpoint left "
          f"{b['backlog']} deliveries waiting (gateway RSS {b['rss_mib_while_waiting']} MiB, peak "
          f"{b['peak_rss_mib_while_waiting']} MiB); a fast local receiver then took {b['drained']} deliveries in "
          f"{b['drain_seconds']} s = {b['deliveries_per_s']:.0f} deliveries/s (gateway CPU {b['cpu_percent_drain']:.0f}%, "
          f"peak RSS {b['peak_rss_mib_after_drain']} MiB).")

panel_api = os.path.join(out, "panel.api.json")
if os.path.exists(panel_api):
    p = json.load(open(panel_api))
    print(f"\nStatus panel: the admin API with {p['envelopes']} envelopes stored ({p['registered']} registered with "
          f"references, newest to oldest; walking the whole listing 500 a page took {p['walk_seconds']:.1f} s):\n")
    print("| query | p50 ms | p99 ms | max ms | first answer | answers (ms) to the first match |")
    print("|---|---|---|---|---|---|")
    for q in p["queries"]:
        l = q["latency_ms"]
        m = q.get("to_first_match")
        reach = "–" if not q["path"].startswith("/v1/envelopes?") else (
            "no match" if m is None else f"{m[0]} ({m[1]:.0f} ms)")
        print(f"| {q['name']} | {l['p50']:.1f} | {l['p99']:.1f} | {l['max']:.1f} | {q['first_answer']} | {reach} |")
lives = sorted(glob.glob(os.path.join(out, "panel.live.*.json")),
               key=lambda f: int(f.rsplit(".", 2)[-2]))
if lives:
    print("\nStatus panel: the live envelopes page in headless Chromium while new envelopes arrive:\n")
    print("| webhooks/s | stream messages received/s | painted/s | coalesced | unpainted at the end | repaints/s | largest batch | arrival→paint p50/p99 ms | receipt→paint p50/p99 ms | browser CPU µs/message |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for f in lives:
        r = json.load(open(f))
        rate = f.rsplit(".", 2)[-2]
        a, w = r["arrival_to_paint_ms"], r["receipt_to_paint_ms"]
        print(f"| {rate} | {r['received_per_second']:.0f} | {r['painted_per_second']:.0f} | {r['coalesced']} | "
              f"{r['unpainted']} | {r['repaints_per_second']:.0f} | {r['max_batch']} | {a['p50']:.1f} / {a['p99']:.1f} | "
              f"{w['p50']:.1f} / {w['p99']:.1f} | {r['browser_cpu_us_per_message']:.0f} |")
