//! `summarize.py` (run by `run.sh`) over a result directory written here:
//! the table's ratios and the ceiling of a store that syncs before it
//! answers: estimated from the baseline, the connection count and the
//! `fdatasync` probe, or measured by the `baseline-sync` scenario.

use std::path::Path;

fn round(dir: &Path, scenario: &str, max_rps: f64) {
    let summary = serde_json::json!({
        "scenario": scenario, "round": 1, "max_rps": max_rps,
        "closed_status": {"200": 1000}, "closed_errors": 0,
        "open_rate": max_rps / 2.0, "open_rps": max_rps / 2.0,
        "open_latency_ms": {"p50": 0.5, "p90": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0},
        "open_send_lag_ms": null, "open_status": {"200": 500},
        "peak_rss_mib": 10.0, "cpu_percent_closed": 100.0, "drain_s": null,
        "peak_rss_mib_after_sweep": 10.0, "sweep": [],
        "store_bytes_per_webhook": null, "audit_verify_entries_per_s": null,
        "accepted_closed": 1000,
    });
    std::fs::write(
        dir.join(format!("{scenario}.r1.summary.json")),
        summary.to_string(),
    )
    .unwrap();
}

fn summarize(dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("summarize.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn states_the_ceiling_of_a_store_that_syncs_before_it_answers() {
    let dir = std::env::temp_dir().join(format!("lt-summary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    round(&dir, "baseline", 100_000.0);
    round(&dir, "durable", 25_806.0);
    std::fs::write(
        dir.join("machine.txt"),
        "machine: 2 cores\ncommand: loadtest/run.sh baseline durable (ROUNDS=1 DURATION=8 OPEN_DURATION=8 CONNS=32)\n",
    )
    .unwrap();
    let without_probe = summarize(&dir);
    assert!(without_probe.contains("| durable | 1 | 25806 | 25806 | 0.26 | 1.00 |"));
    assert!(!without_probe.contains("Ceiling"), "{without_probe}");
    std::fs::write(
        dir.join("fsync.json"),
        r#"{"samples":2000,"bytes":4096,"p50_us":200,"p99_us":300,"max_us":900}"#,
    )
    .unwrap();
    // 32 connections / 100 000 req/s = 0.32 ms, plus 1.5 x 0.2 ms: 0.62 ms
    // a request, 32 / 0.62 ms = 51 613 req/s.
    let out = summarize(&dir);
    assert!(
        out.contains(
            "at 32 connections: the baseline's round trip (0.32 ms) plus 1.5 fdatasync p50 (0.30 ms) per request, \
             at zero CPU and without checkpoints: 51613 req/s (0.52x of the baseline); durable took 0.50 of it."
        ),
        "{out}"
    );
    // Measured, it takes the estimate's place.
    round(&dir, "baseline-sync", 51_612.0);
    let out = summarize(&dir);
    assert!(
        out.contains("| baseline-sync | 1 | 51612 | 51612 | 0.52 |  |"),
        "{out}"
    );
    assert!(
        out.contains(
            "in group commits; nothing else): 51612 req/s (0.52x of the baseline); durable took 0.50 of it."
        ),
        "{out}"
    );
    assert!(!out.contains("at zero CPU"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
