//! The Kafka sink against a real broker (tansu), read back with a real consumer:
//! exactly-once per accepted event, CloudEvents headers, per-envelope order, a
//! broker outage, a `kill -9` of the gateway, and dead-lettering.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::common::kafka::{Broker, Storage, consume, consume_until};
use crate::common::*;
use countersign::admin::api::{EventView, KafkaDeliveryView, Ready};

const TOPIC: &str = "signature.events";
const TERMINAL: &str = "signature.terminal";
const DLQ: &str = "signature.events.dlq";

fn kafka_toml(broker: &Broker, extra: &str) -> String {
    format!(
        r#"
[kafka]
brokers = "{}"
default_topic = "{TOPIC}"
dlq_topic = "{DLQ}"
retry_backoff = "100ms"
retry_backoff_max = "1s"

[kafka.producer]
"topic.metadata.propagation.max.ms" = 2000
"linger.ms" = 2

[[routes]]
match = {{ kinds = ["completed", "declined"] }}
topics = ["{TERMINAL}"]

{extra}
"#,
        broker.addr()
    )
}

fn broker_with_topics(storage: Storage) -> Broker {
    let b = Broker::start(storage);
    for t in [TOPIC, TERMINAL, DLQ] {
        b.create_topic(t);
    }
    b
}

/// A gateway (in-process, port 0, fresh store) publishing to `broker`.
async fn kafka_gateway(broker: &Broker, extra: &str) -> Gateway {
    Gateway::start(&format!("{SOURCES}\n{}", kafka_toml(broker, extra))).await
}

/// Waits until the outbox is empty (every message acknowledged or dead-lettered).
async fn drained(admin: std::net::SocketAddr, timeout: Duration) {
    eventually("the outbox to drain", timeout, async || {
        let r: Ready = get(admin, "/readyz").await.body();
        (r.checks.kafka?.pending == Some(0)).then_some(())
    })
    .await
}

/// A Standard Webhooks event for envelope `env` with sequence number `n`.
fn sw_event(loaded: &countersign::app::Loaded, id: &str, kind: &str, env: &str, n: usize) -> Req {
    let body = format!(r#"{{"type":"envelope.{kind}","data":{{"envelope_id":"{env}","n":{n}}}}}"#);
    sign_for(
        loaded,
        "sw",
        body.as_bytes(),
        countersign::time::Clock::System.now_ms() / 1000,
        id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_accepted_event_is_published_once_with_cloudevents_headers() {
    let broker = broker_with_topics(Storage::Memory);
    let gw = kafka_gateway(&broker, "").await;
    let loaded = sources();
    let kinds = [
        "sent",
        "viewed",
        "completed",
        "declined",
        "signer_completed",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let req = sw_event(&loaded, &format!("msg_ce_{i}"), kind, "env-ce", i);
        assert_eq!(send(gw.public, &req).await.status, 200);
        // The provider's retry: answered, not published again.
        assert_eq!(
            send(gw.public, &req).await.header("countersign-duplicate"),
            Some("true")
        );
    }
    for f in FIXTURES
        .iter()
        .filter(|f| f.source == "docusign" || f.source == "yousign")
    {
        assert_eq!(send(gw.public, &signed(&loaded, f, "x")).await.status, 200);
    }
    drained(gw.admin, Duration::from_secs(60)).await;

    // Default topic: the three non-terminal events; terminal topic: the rest.
    let all = consume(&broker.addr(), TOPIC, 3, Duration::from_secs(30));
    let terminal = consume(&broker.addr(), TERMINAL, 4, Duration::from_secs(30));
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(terminal.len(), 4, "{terminal:?}");
    for m in all.iter().chain(&terminal) {
        let e = &m.value;
        assert_eq!(m.header("ce_specversion"), Some("1.0"));
        assert_eq!(m.header("ce_id"), e["id"].as_str());
        assert_eq!(
            m.header("ce_source"),
            Some(format!("/countersign/sources/{}", e["source"].as_str().unwrap()).as_str())
        );
        assert_eq!(
            m.header("ce_type"),
            Some(format!("countersign.signature.{}", e["kind"].as_str().unwrap()).as_str())
        );
        assert_eq!(m.header("ce_subject"), e["envelope_id"].as_str());
        assert!(m.header("ce_time").is_some());
        assert_eq!(m.header("content-type"), Some("application/json"));
        assert_eq!(Some(m.key.as_str()), e["envelope_id"].as_str());
    }
    // Nothing more arrives (no second copy of any event).
    assert_eq!(
        consume(&broker.addr(), TOPIC, 4, Duration::from_secs(3)).len(),
        3
    );
    let ids: HashSet<_> = terminal
        .iter()
        .map(|m| m.header("ce_id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);

    // The admin API says where each event went.
    let e: EventView = get(gw.admin, "/v1/events/msg_ce_2").await.body();
    let KafkaDeliveryView::Published { topic, offset, .. } = &e.state.kafka[0] else {
        panic!("not published: {e:?}");
    };
    assert_eq!(topic, TERMINAL);
    assert!(*offset >= 0);
    let ready: Ready = get(gw.admin, "/readyz").await.body();
    assert_eq!(ready.checks.kafka.unwrap().published, 7);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_envelope_order_holds_across_interleaved_envelopes() {
    let broker = broker_with_topics(Storage::Memory);
    let gw = kafka_gateway(&broker, "").await;
    let loaded = Arc::new(sources());
    let (envelopes, per) = (12, 15);
    let tasks: Vec<_> = (0..envelopes)
        .map(|e| {
            let (loaded, addr) = (loaded.clone(), gw.public);
            tokio::spawn(async move {
                for n in 0..per {
                    let req = sw_event(
                        &loaded,
                        &format!("msg_ord_{e}_{n}"),
                        "viewed",
                        &format!("env-{e}"),
                        n,
                    );
                    assert_eq!(send(addr, &req).await.status, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drained(gw.admin, Duration::from_secs(60)).await;
    let msgs = consume(
        &broker.addr(),
        TOPIC,
        envelopes * per,
        Duration::from_secs(30),
    );
    assert_eq!(msgs.len(), envelopes * per);
    let mut by_key: HashMap<String, Vec<(i32, i64, u64)>> = HashMap::new();
    for m in &msgs {
        by_key.entry(m.key.clone()).or_default().push((
            m.partition,
            m.offset,
            m.value["payload"]["data"]["n"].as_u64().unwrap(),
        ));
    }
    assert_eq!(by_key.len(), envelopes);
    for (key, mut list) in by_key {
        let partitions: HashSet<i32> = list.iter().map(|x| x.0).collect();
        assert_eq!(partitions.len(), 1, "{key} spread over partitions");
        list.sort_by_key(|x| x.1);
        let ns: Vec<u64> = list.iter().map(|x| x.2).collect();
        assert_eq!(
            ns,
            (0..per as u64).collect::<Vec<_>>(),
            "{key} out of order"
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_and_duplicates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut broker = broker_with_topics(Storage::Sqlite(data.path().to_path_buf()));
    let gw = kafka_gateway(&broker, "").await;
    let loaded = sources();
    assert_eq!(
        send(
            gw.public,
            &sw_event(&loaded, "msg_out_pre", "sent", "env-o", 0)
        )
        .await
        .status,
        200
    );
    drained(gw.admin, Duration::from_secs(60)).await;

    broker.stop();
    for n in 1..=20 {
        let r = send(
            gw.public,
            &sw_event(&loaded, &format!("msg_out_{n}"), "sent", "env-o", n),
        )
        .await;
        assert_eq!(r.status, 200, "webhooks are taken while Kafka is down");
    }
    let ready = get(gw.admin, "/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body::<Ready>().checks.kafka.unwrap().pending,
        Some(20)
    );

    broker.restart();
    drained(gw.admin, Duration::from_secs(120)).await;
    let msgs = consume(&broker.addr(), TOPIC, 22, Duration::from_secs(20));
    let ids: Vec<String> = msgs
        .iter()
        .map(|m| m.header("ce_id").unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 21, "{ids:?}");
    assert_eq!(unique.len(), 21);
    let ns: Vec<u64> = msgs
        .iter()
        .map(|m| m.value["payload"]["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ns,
        (0..=20).collect::<Vec<_>>(),
        "one envelope, one partition, in order"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_publishes_every_acknowledged_event() {
    let broker = broker_with_topics(Storage::Memory);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        config_text(
            &dir.path().join("store"),
            &format!("{SOURCES}\n{}", kafka_toml(&broker, "")),
        ),
    )
    .unwrap();
    let mut bin = Binary::start(&cfg);
    let loaded = sources();
    let acked = stream_then_kill9(&mut bin, 6, 60, move |w, n| {
        let id = format!("msg_k9_{w}_{n}");
        let req = sw_event(&loaded, &id, "sent", &format!("env-k9-{w}"), n);
        (id, req)
    })
    .await;

    let bin = Binary::start(&cfg);
    drained(bin.admin, Duration::from_secs(120)).await;
    // More than the acknowledged may arrive (stored, but killed before answering).
    let ids = |ms: &[crate::common::kafka::Consumed]| -> HashSet<String> {
        ms.iter()
            .filter_map(|m| m.header("ce_id").map(str::to_owned))
            .collect()
    };
    let msgs = consume_until(
        &broker.addr(),
        TOPIC,
        |got| acked.iter().all(|id| ids(got).contains(id)),
        Duration::from_secs(30),
    );
    let seen: HashSet<String> = msgs
        .iter()
        .map(|m| m.header("ce_id").unwrap().to_owned())
        .collect();
    for id in &acked {
        assert!(
            seen.contains(id),
            "acknowledged event {id} never reached Kafka"
        );
    }
    // At least once: any duplicate carries the same ce_id, so consumers can drop it.
    for m in &msgs {
        assert_eq!(m.header("ce_id"), m.value["id"].as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_errors_are_dead_lettered_in_the_store_and_the_dlq_topic() {
    let broker = broker_with_topics(Storage::Memory);
    // Declined events go to a topic that does not exist (no auto-create).
    let extra = "[[routes]]\nmatch = { kinds = [\"expired\"] }\ntopics = [\"no.such.topic\"]\n";
    let gw = kafka_gateway(&broker, extra).await;
    let loaded = sources();
    assert_eq!(
        send(
            gw.public,
            &sw_event(&loaded, "msg_dlq_1", "expired", "env-d", 0)
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            gw.public,
            &sw_event(&loaded, "msg_dlq_2", "sent", "env-d", 1)
        )
        .await
        .status,
        200
    );
    drained(gw.admin, Duration::from_secs(60)).await;

    let e = get(gw.admin, "/v1/events/msg_dlq_1").await.json();
    let k = &e["state"]["kafka"][0];
    assert_eq!(k["topic"], "no.such.topic");
    assert_eq!(k["status"], "dead_lettered", "{e}");
    assert!(k["reason"].as_str().unwrap().contains("unknown"), "{k}");
    let dlq = consume(&broker.addr(), DLQ, 1, Duration::from_secs(30));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].header("ce_id"), Some("msg_dlq_1"));
    assert_eq!(
        dlq[0].header("countersign_dlq_topic"),
        Some("no.such.topic")
    );
    assert!(
        dlq[0]
            .header("countersign_dlq_reason")
            .unwrap()
            .contains("unknown")
    );
    // The other event still flowed.
    assert_eq!(
        consume(&broker.addr(), TOPIC, 1, Duration::from_secs(30)).len(),
        1
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_is_dead_lettered() {
    let broker = broker_with_topics(Storage::Memory);
    let mut toml = kafka_toml(&broker, "");
    toml = toml.replace(
        "\"linger.ms\" = 2",
        "\"linger.ms\" = 2\n\"message.max.bytes\" = 1000",
    );
    let gw = Gateway::start(&format!("{SOURCES}\n{toml}")).await;
    let loaded = sources();
    let body = format!(
        r#"{{"type":"envelope.sent","data":{{"envelope_id":"env-big","pad":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let now = countersign::time::Clock::System.now_ms() / 1000;
    let req = sign_for(&loaded, "sw", body.as_bytes(), now, "msg_big");
    assert_eq!(send(gw.public, &req).await.status, 200);
    drained(gw.admin, Duration::from_secs(60)).await;
    let e = get(gw.admin, "/v1/events/msg_big").await.json();
    assert_eq!(e["state"]["kafka"][0]["status"], "dead_lettered", "{e}");
    assert!(
        e["state"]["kafka"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("too large")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_the_trace_and_the_kafka_metrics_move() {
    let broker = broker_with_topics(Storage::Memory);
    let toml = format!("{SOURCES}\n{}", kafka_toml(&broker, "")).replace(
        "\"linger.ms\" = 2",
        "\"linger.ms\" = 2\n\"statistics.interval.ms\" = 200",
    );
    let gw = Gateway::start(&toml).await;
    let before = crate::common::metrics::Scrape::take(gw.admin).await;
    let published = |m: &crate::common::metrics::Scrape| {
        m.get(
            "countersign_kafka_messages_total",
            &[("topic", TOPIC), ("outcome", "published")],
        )
    };
    assert_eq!(published(&before), 0.0);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut req = sw_event(&sources(), "msg_traced", "sent", "env-tr", 0);
    req.headers.push(("traceparent".into(), tp.into()));
    assert_eq!(send(gw.public, &req).await.status, 200);
    drained(gw.admin, Duration::from_secs(60)).await;
    let got = consume(&broker.addr(), TOPIC, 1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "{got:?}");
    // Tracing is off: the caller's trace continues, with a new parent id.
    let header = got[0].header("traceparent").expect("traceparent header");
    assert_eq!(&header[..36], &tp[..36], "{header}");
    assert_ne!(header, tp);
    assert_eq!(&header[52..], "-01");

    // librdkafka's statistics arrive every 200 ms.
    let m = eventually(
        "a broker round-trip time",
        Duration::from_secs(10),
        async || {
            let m = crate::common::metrics::Scrape::take(gw.admin).await;
            m.samples
                .iter()
                .any(|s| s.name == "countersign_kafka_broker_rtt_seconds" && s.value > 0.0)
                .then_some(m)
        },
    )
    .await;
    crate::common::metrics::promtool_check(&m.text);
    assert_eq!(published(&m), 1.0);
    assert_eq!(
        m.get("countersign_kafka_publish_lag_seconds_count", &[]),
        1.0
    );
    assert_eq!(m.get("countersign_kafka_pending_messages", &[]), 0.0);
    assert_eq!(
        m.get("countersign_kafka_oldest_pending_age_seconds", &[]),
        0.0
    );
    assert_eq!(m.get("countersign_kafka_connected", &[]), 1.0);
    assert_eq!(m.get("countersign_kafka_producer_queue_messages", &[]), 0.0);
    let rtt: Vec<_> = m
        .samples
        .iter()
        .filter(|s| s.name == "countersign_kafka_broker_rtt_seconds")
        .collect();
    assert!(
        rtt.iter().any(|s| s.value > 0.0 && s.value < 5.0),
        "broker round trips: {rtt:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_in_the_backlog_metrics() {
    let mut broker = broker_with_topics(Storage::Memory);
    let gw = kafka_gateway(&broker, "").await;
    broker.stop();
    let loaded = sources();
    for i in 0..3 {
        let req = sw_event(&loaded, &format!("msg_out_{i}"), "sent", "env-out", i);
        assert_eq!(send(gw.public, &req).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = crate::common::metrics::Scrape::take(gw.admin).await;
    assert_eq!(m.get("countersign_kafka_pending_messages", &[]), 3.0);
    assert!(m.get("countersign_kafka_oldest_pending_age_seconds", &[]) >= 1.0);
    gw.stop().await;
}
