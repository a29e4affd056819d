//! Traces and secrets, against the real binary: one trace follows a webhook
//! from the provider's call through the Kafka message and the downstream POST
//! (exported over OTLP to a collector on loopback), and no secret shows up in
//! the log, the metrics, the exported spans or `config check`.

use std::time::Duration;

use crate::common::kafka::{Broker, Storage, consume};
use crate::common::metrics::Scrape;
use crate::common::receiver::{Hit, Receiver};
use crate::common::*;
use countersign::time::Clock;
use serde_json::Value;

const TOPIC: &str = "signature.events";
const OUT_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Every span the collector received: (name, trace id, span id, parent id,
/// attributes as `key=value` strings).
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attributes: Vec<String>,
}

fn spans(hits: &[Hit]) -> Vec<Span> {
    let mut out = Vec::new();
    for h in hits {
        assert_eq!(h.path, "/v1/traces");
        assert_eq!(h.header("content-type"), "application/json");
        let v: Value = serde_json::from_slice(&h.body).unwrap();
        for rs in v["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().unwrap() {
                    let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                    out.push(Span {
                        name: text("name"),
                        trace: text("traceId"),
                        id: text("spanId"),
                        parent: text("parentSpanId"),
                        attributes: s["attributes"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .map(|kv| format!("{}={}", kv["key"], kv["value"]))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    });
                }
            }
        }
    }
    out
}

/// Every source, spans exported as OTLP/JSON to `collector`, and every event
/// delivered to endpoint `crm` at `rx`; `telemetry` and `endpoint` add keys.
fn traced(collector: &Receiver, rx: &Receiver, telemetry: &str, endpoint: &str) -> String {
    format!(
        r#"{SOURCES}
[telemetry]
otlp_endpoint = "http://{}"
otlp_protocol = "http/json"
{telemetry}

[[endpoints]]
id = "crm"
url = "http://{}/in"
secret = "{OUT_SECRET}"
allow_private = true
{endpoint}

[[routes]]
endpoints = ["crm"]
"#,
        collector.addr, rx.addr
    )
}

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("countersign.toml");
    std::fs::write(&path, config_text(&dir.join("store"), extra)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_webhook_into_kafka_and_the_endpoint() {
    let broker = Broker::start(Storage::Memory);
    broker.create_topic(TOPIC);
    let collector = Receiver::ok(Clock::System).await;
    let rx = Receiver::ok(Clock::System).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[kafka]\nbrokers = \"{}\"\ndefault_topic = \"{TOPIC}\"\n",
        traced(&collector, &rx, "service_name = \"countersign-test\"", ""),
        broker.addr(),
    );
    let mut bin = Binary::start(&write_config(dir.path(), &extra));
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = r#"{"type":"envelope.completed","data":{"envelope_id":"env-t"}}"#;
    let mut req = sign_for(
        &sources(),
        "sw",
        body.as_bytes(),
        countersign::time::Clock::System.now_ms() / 1000,
        "msg_trace",
    );
    req.headers.push(("traceparent".into(), caller.into()));
    assert_eq!(send(bin.public, &req).await.status, 200);

    let hit = rx.wait_hits(1).await.remove(0);
    let broker_addr = broker.addr();
    let msgs = tokio::task::spawn_blocking(move || {
        consume(&broker_addr, TOPIC, 1, Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert_eq!(msgs.len(), 1);
    // SIGTERM flushes the spans still queued for export.
    assert!(bin.sigterm().success());
    let spans = spans(&collector.hits());
    let one = |name: &str| {
        let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "{name}: {spans:#?}");
        found[0].clone()
    };
    let webhook = one("webhook");
    let publish = one("kafka.publish");
    let delivery = one("http.delivery");
    let commit = one("store.commit");
    let trace = &caller[3..35];
    // The caller's trace, continued: the webhook span is its child.
    assert_eq!(webhook.trace, trace);
    assert_eq!(webhook.parent, &caller[36..52]);
    assert!(
        webhook
            .attributes
            .contains(&r#""source"={"stringValue":"sw"}"#.to_owned()),
        "{webhook:?}"
    );
    assert!(
        webhook.attributes.iter().any(|a| a.contains("accepted")),
        "{webhook:?}"
    );
    assert_eq!(
        (commit.trace.as_str(), commit.parent.as_str()),
        (trace, webhook.id.as_str())
    );
    // Publish and delivery are children of the webhook span, and what went out
    // names them as parents.
    for (span, header) in [
        (&publish, msgs[0].header("traceparent").unwrap()),
        (&delivery, hit.header("traceparent")),
    ] {
        assert_eq!(span.trace, trace, "{span:?}");
        assert_eq!(span.parent, webhook.id, "{span:?}");
        assert_eq!(header, format!("00-{trace}-{}-01", span.id), "{span:?}");
    }
    assert!(
        delivery
            .attributes
            .iter()
            .any(|a| a.contains("http.response.status_code"))
    );
}

/// Each secret's literal value in the loaded config.
fn literal_secrets(toml: &str) -> Vec<String> {
    let loaded = countersign::app::load_str(toml).unwrap();
    let mut out = Vec::new();
    for s in &loaded.config.sources {
        out.extend(s.secrets.iter().map(|r| r.resolve().unwrap()));
    }
    for e in &loaded.config.endpoints {
        out.extend(e.secret.iter().map(|r| r.resolve().unwrap()));
        out.extend(e.headers.values().map(|r| r.resolve().unwrap()));
    }
    out.extend(
        loaded
            .config
            .telemetry
            .otlp_headers
            .values()
            .map(|r| r.resolve().unwrap()),
    );
    out
}

/// `config check` of `path`, which must pass: everything it printed.
fn config_check(path: &std::path::Path) -> String {
    let check = countersign(&["config", "check", "--config", path.to_str().unwrap()]);
    assert!(check.status.success(), "{check:?}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    )
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    assert!(!text.is_empty(), "{what} is empty");
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} contains the secret {s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_metrics_traces_or_config_check() {
    let collector = Receiver::ok(Clock::System).await;
    let rx = Receiver::ok(Clock::System).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = traced(
        &collector,
        &rx,
        "log_level = \"trace\"\notlp_headers = { \"x-api-key\" = \"otlp-key-5b1f0c\" }",
        "headers = { Authorization = \"Bearer endpoint-token-9d2e7a\" }",
    );
    let toml = config_text(&dir.path().join("store"), &extra);
    let secrets = literal_secrets(&toml);
    assert!(secrets.len() > FIXTURES.len(), "{secrets:?}");
    let cfg = write_config(dir.path(), &extra);
    let mut bin = Binary::start(&cfg);

    // Every source: a valid webhook, a tampered one, and one for a source
    // whose token or signature is wrong.
    let loaded = sources();
    let mut accepted = 0;
    for (i, f) in FIXTURES.iter().enumerate() {
        let req = signed(&loaded, f, &format!("msg_secret_{i}"));
        let r = send(bin.public, &req).await;
        assert_eq!(r.status, 200, "{}: {}", f.source, r.text());
        if r.header("countersign-duplicate").is_none() {
            accepted += 1;
        }
        let mut bad = req.clone();
        tamper(&mut bad);
        assert_eq!(send(bin.public, &bad).await.status, 401, "{}", f.source);
        // A valid credential with a broken payload: refused after
        // authentication, and logged (URL tokens included in the path).
        let mut broken = req.clone();
        broken.body = b"{not json".to_vec();
        if f.source == "skribble" || f.source == "signius" {
            assert_eq!(send(bin.public, &broken).await.status, 400, "{}", f.source);
        }
    }
    assert!(accepted > 0);
    rx.wait_hits(1).await;
    let metrics = Scrape::take(bin.admin).await.text;
    let check_out = config_check(&cfg);
    assert!(bin.sigterm().success());
    let traces: String = collector
        .hits()
        .iter()
        .map(|h| String::from_utf8_lossy(&h.body).into_owned())
        .collect();

    assert_no_secret("the log", &bin.log_text(), &secrets);
    assert_no_secret("the metrics", &metrics, &secrets);
    assert_no_secret("the exported spans", &traces, &secrets);
    assert_no_secret("config check", &check_out, &secrets);
    // The log did record the rejections, so the check above looked at them.
    assert!(bin.log_text().contains("authentication failed"));

    // Kafka credentials in `config check`.
    let kafka = format!(
        "{extra}\n[kafka]\nbrokers = \"127.0.0.1:1\"\n[kafka.producer]\n\"sasl.password\" = \"kafka-pass-77c1\"\n\"ssl.key.password\" = \"key-pass-31aa\"\n"
    );
    let kafka_cfg = write_config(dir.path(), &kafka);
    let out = config_check(&kafka_cfg);
    assert!(out.contains("sasl.password"), "{out}");
    assert_no_secret(
        "config check with Kafka",
        &out,
        &["kafka-pass-77c1".into(), "key-pass-31aa".into()],
    );
}
