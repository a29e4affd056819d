"""Summarizes a loadtest/run.sh result directory as a Markdown table: medians over
rounds, throughput as a ratio to the baseline measured in the same run."""

import glob
import json
import os
import statistics
import sys

out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "*.summary.json"))):
    d = json.load(open(f))
    rows.setdefault(d["scenario"], []).append(d)

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

base = med([r["max_rps"] for r in rows.get("baseline", [])])
print(open(os.path.join(out, "machine.txt")).read())
print("| scenario | rounds | max req/s (closed) | ratio to baseline | open-loop rate | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | peak RSS MiB | CPU % (closed) | Kafka drain s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in ["baseline", "baseline-hmac", "durable", "durable-otel", "kafka"]:
    rs = rows.get(name)
    if not rs:
        continue
    mx = med([r["max_rps"] for r in rs])
    lat = lambda k: med([r["open_latency_ms"][k] for r in rs])
    ratio = f"{mx / base:.2f}" if base else "n/a"
    drain = med([r["kafka_drain_s"] for r in rs])
    print(f"| {name} | {len(rs)} | {mx:.0f} | {ratio} | {med([r['open_rate'] for r in rs]):.0f} | "
          f"{lat('p50'):.2f} | {lat('p90'):.2f} | {lat('p99'):.2f} | {lat('p999'):.2f} | {lat('max'):.2f} | "
          f"{max(r['peak_rss_mib'] for r in rs):.1f} | {med([r['cpu_percent_closed'] for r in rs]):.0f} | "
          f"{'' if drain is None else f'{drain:.2f}'} |")
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
