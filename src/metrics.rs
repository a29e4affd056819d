//! Prometheus metrics: one registry per gateway, served by the admin listener's
//! `GET /metrics` in the text format.
//!
//! Event-driven metrics (webhooks, attempts, latencies) are counted where they
//! happen; state metrics (backlogs, dead letters, breaker states) are read from
//! the store and the workers when scraped ([`Metrics::refresh`]). Label values
//! come from the configuration only (source ids, endpoint ids, topics), never
//! from requests, so the series count is bounded; unknown sources count under
//! the source label `_unknown`.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

use crate::store::{Backlog, Store, StoreError};

/// Every outcome a webhook request can have, as counted.
pub const OUTCOMES: [&str; 12] = [
    "accepted",
    "duplicate",
    "handshake",
    "unauthorized",
    "invalid",
    "too_large",
    "unknown_source",
    "method_not_allowed",
    "timeout",
    "overloaded",
    "rate_limited",
    "error",
];

/// Source label for requests to a source that is not configured.
pub const UNKNOWN_SOURCE: &str = "_unknown";

/// Outcomes of one HTTP delivery attempt.
pub const ATTEMPT_OUTCOMES: [&str; 3] = ["success", "retryable", "permanent"];

/// The breaker states, as the `state` label of `countersign_http_breaker_state`.
pub const BREAKER_STATES: [&str; 3] = ["closed", "open", "half_open"];

pub struct Metrics {
    registry: Registry,
    /// `source`, `outcome`.
    pub webhooks: IntCounterVec,
    /// `source`: from the request head to the answer.
    pub ingest_seconds: HistogramVec,
    /// Webhook requests being handled on the public listener.
    pub requests_in_flight: IntGauge,
    /// `task`: long-running tasks started again after a panic.
    pub task_restarts: IntCounterVec,
    /// `listener` (`public`, `admin`): requests whose handling panicked
    /// (answered 500).
    pub request_panics: IntCounterVec,
    /// `topic`, `outcome` (`published`, `failed`, `dead_lettered`).
    pub kafka_messages: IntCounterVec,
    /// Received → acknowledged by the broker.
    pub kafka_publish_lag: Histogram,
    pub kafka_queue_messages: IntGauge,
    pub kafka_queue_bytes: IntGauge,
    /// `broker`: librdkafka's average round-trip time.
    pub kafka_broker_rtt: GaugeVec,
    kafka_connected: IntGauge,
    kafka_pending: IntGauge,
    kafka_oldest: Gauge,
    /// `endpoint`, `outcome` ([`ATTEMPT_OUTCOMES`]).
    pub http_attempts: IntCounterVec,
    /// `endpoint`, `outcome` (`delivered`, `dead_lettered`).
    pub http_deliveries: IntCounterVec,
    /// `endpoint`: one attempt, request to answer.
    pub http_request_seconds: HistogramVec,
    /// `endpoint`: received → delivered, retries included.
    pub http_delivery_lag: HistogramVec,
    /// `endpoint`: attempts a finished delivery took.
    pub http_attempts_per_delivery: HistogramVec,
    http_pending: IntGaugeVec,
    http_oldest: GaugeVec,
    http_dead_letters: IntGaugeVec,
    http_breaker: IntGaugeVec,
    http_disabled: IntGaugeVec,
    ready: IntGauge,
}

fn latency_buckets() -> Vec<f64> {
    // 100 µs … ~13 s.
    exponential_buckets(0.000_1, 2.0, 18).expect("valid buckets")
}

fn lag_buckets() -> Vec<f64> {
    // 1 ms … ~9 h: lags include retries and outages.
    exponential_buckets(0.001, 4.0, 13).expect("valid buckets")
}

/// Registers a freshly built metric in `registry` and hands it back. Names are
/// fixed in this file, so a bad or repeated one is a bug, not an input error.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

/// The `task` label of an endpoint's worker.
pub fn webhook_task(endpoint: &str) -> String {
    format!("webhook:{endpoint}")
}

impl Metrics {
    /// The metrics of a gateway with these sources, endpoints and topics; every
    /// series they name starts at zero, so alerts see it before the first event.
    pub fn new(sources: &[&str], endpoints: &[&str], topics: &[&str], kafka: bool) -> Metrics {
        let registry =
            Registry::new_custom(Some("countersign".into()), None).expect("valid registry prefix");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let opts = HistogramOpts::new(name, help).buckets(buckets);
            register(&registry, HistogramVec::new(opts, labels))
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, GaugeVec::new(Opts::new(name, help), labels))
        };
        let m = Metrics {
            webhooks: counter(
                "webhooks_received_total",
                "Webhook requests by source and outcome.",
                &["source", "outcome"],
            ),
            ingest_seconds: histogram(
                "ingest_duration_seconds",
                "Time from a webhook's request head to its answer, durable commit included.",
                &["source"],
                latency_buckets(),
            ),
            requests_in_flight: int_gauge(
                "requests_in_flight",
                "Webhook requests being handled.",
                &[],
            )
            .with_label_values::<&str>(&[]),
            task_restarts: counter(
                "task_restarts_total",
                "Long-running tasks (sink workers, health checks, sweeper) started again after a panic.",
                &["task"],
            ),
            request_panics: counter(
                "request_panics_total",
                "Requests whose handling panicked, by listener (answered 500).",
                &["listener"],
            ),
            kafka_messages: counter(
                "kafka_messages_total",
                "Kafka messages by topic and outcome: published (acknowledged), failed (a retryable failure; retried), dead_lettered.",
                &["topic", "outcome"],
            ),
            kafka_publish_lag: histogram(
                "kafka_publish_lag_seconds",
                "Time from a webhook's receipt to the broker's acknowledgement of its message.",
                &[],
                lag_buckets(),
            )
            .with_label_values::<&str>(&[]),
            kafka_queue_messages: int_gauge(
                "kafka_producer_queue_messages",
                "Messages in the Kafka producer's queue (librdkafka statistics).",
                &[],
            )
            .with_label_values::<&str>(&[]),
            kafka_queue_bytes: int_gauge(
                "kafka_producer_queue_bytes",
                "Bytes of messages in the Kafka producer's queue (librdkafka statistics).",
                &[],
            )
            .with_label_values::<&str>(&[]),
            kafka_broker_rtt: gauge(
                "kafka_broker_rtt_seconds",
                "Average round-trip time to each broker (librdkafka statistics).",
                &["broker"],
            ),
            kafka_connected: int_gauge(
                "kafka_connected",
                "1 while the Kafka brokers answer metadata requests.",
                &[],
            )
            .with_label_values::<&str>(&[]),
            kafka_pending: int_gauge(
                "kafka_pending_messages",
                "Kafka messages waiting in the store's outbox.",
                &[],
            )
            .with_label_values::<&str>(&[]),
            kafka_oldest: gauge(
                "kafka_oldest_pending_age_seconds",
                "Age of the oldest event waiting in the Kafka outbox (0 when empty).",
                &[],
            )
            .with_label_values::<&str>(&[]),
            http_attempts: counter(
                "http_attempts_total",
                "HTTP delivery attempts by endpoint and outcome: success (2xx), retryable, permanent.",
                &["endpoint", "outcome"],
            ),
            http_deliveries: counter(
                "http_deliveries_total",
                "Finished HTTP deliveries by endpoint and outcome: delivered, dead_lettered.",
                &["endpoint", "outcome"],
            ),
            http_request_seconds: histogram(
                "http_request_duration_seconds",
                "Time one delivery attempt takes, request to answer.",
                &["endpoint"],
                latency_buckets(),
            ),
            http_delivery_lag: histogram(
                "http_delivery_lag_seconds",
                "Time from a webhook's receipt to its successful delivery, retries included.",
                &["endpoint"],
                lag_buckets(),
            ),
            http_attempts_per_delivery: histogram(
                "http_delivery_attempts",
                "Attempts a finished delivery took (delivered or dead-lettered).",
                &["endpoint"],
                vec![1.0, 2.0, 3.0, 5.0, 8.0, 11.0, 16.0, 25.0],
            ),
            http_pending: int_gauge(
                "http_pending_deliveries",
                "Deliveries waiting for each endpoint (queued and scheduled for retry).",
                &["endpoint"],
            ),
            http_oldest: gauge(
                "http_oldest_pending_age_seconds",
                "Age of the oldest event waiting for each endpoint (0 when none).",
                &["endpoint"],
            ),
            http_dead_letters: int_gauge(
                "http_dead_letters",
                "Dead letters of each endpoint waiting for replay or discard.",
                &["endpoint"],
            ),
            http_breaker: int_gauge(
                "http_breaker_state",
                "Circuit breaker of each endpoint: 1 for its current state, 0 for the others.",
                &["endpoint", "state"],
            ),
            http_disabled: int_gauge(
                "http_endpoint_disabled",
                "1 while an endpoint is disabled (it answered 410 Gone).",
                &["endpoint"],
            ),
            ready: int_gauge(
                "ready",
                "1 while the gateway is ready to take webhooks.",
                &[],
            )
            .with_label_values::<&str>(&[]),
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new("build_info", "Always 1; labels name the build."),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m.registry.register(Box::new(build)).expect("unique metric");
        for s in sources.iter().copied().chain([UNKNOWN_SOURCE]) {
            for o in OUTCOMES {
                m.webhooks.with_label_values(&[s, o]);
            }
        }
        for l in ["public", "admin"] {
            m.request_panics.with_label_values(&[l]);
        }
        let mut tasks = vec!["sweeper".to_owned()];
        if kafka {
            tasks.extend(["kafka_sink".to_owned(), "kafka_health".to_owned()]);
        }
        tasks.extend(endpoints.iter().map(|e| webhook_task(e)));
        for t in &tasks {
            m.task_restarts.with_label_values(&[t.as_str()]);
        }
        if kafka {
            for t in topics {
                for o in ["published", "failed", "dead_lettered"] {
                    m.kafka_messages.with_label_values(&[*t, o]);
                }
            }
        }
        for e in endpoints {
            for o in ATTEMPT_OUTCOMES {
                m.http_attempts.with_label_values(&[*e, o]);
            }
            for o in ["delivered", "dead_lettered"] {
                m.http_deliveries.with_label_values(&[*e, o]);
            }
            m.http_pending.with_label_values(&[*e]);
            m.http_oldest.with_label_values(&[*e]);
            m.http_dead_letters.with_label_values(&[*e]);
            m.http_disabled.with_label_values(&[*e]);
            for s in BREAKER_STATES {
                m.http_breaker
                    .with_label_values(&[*e, s])
                    .set(i64::from(s == "closed"));
            }
        }
        m
    }

    /// Registers a collector owned elsewhere (the store's commit histograms).
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(c) {
            tracing::error!(error = %e, "cannot register a metric");
        }
    }

    /// The sum of `vec`'s series whose `label` is `value`, e.g. all
    /// published Kafka messages whatever their topic (for `/v1/stats`).
    pub fn total(vec: &IntCounterVec, label: &str, value: &str) -> u64 {
        use prometheus::core::Collector as _;
        vec.collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == label && l.value() == value)
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Counts one webhook request.
    pub fn webhook(&self, source: &str, outcome: &str) {
        self.webhooks.with_label_values(&[source, outcome]).inc();
    }

    /// The counter of one endpoint's attempts with `outcome`.
    pub fn attempts(&self, endpoint: &str, outcome: &str) -> IntCounter {
        self.http_attempts.with_label_values(&[endpoint, outcome])
    }

    /// The state gauges, read from the store and the workers. Blocking (store
    /// reads): call it on the blocking pool.
    pub fn refresh(&self, state: &Observed<'_>) -> Result<(), StoreError> {
        let now_ms = state.now_ms;
        let age = |b: &Backlog| {
            b.oldest_ms
                .map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0)
        };
        self.ready.set(i64::from(state.ready));
        if let Some(connected) = state.kafka_connected {
            self.kafka_connected.set(i64::from(connected));
            let b = state.store.kafka_backlog()?;
            self.kafka_pending.set(b.count as i64);
            self.kafka_oldest.set(age(&b));
        }
        for (id, breaker, disabled) in &state.endpoints {
            let b = state.store.http_backlog(id)?;
            self.http_pending
                .with_label_values(&[*id])
                .set(b.count as i64);
            self.http_oldest.with_label_values(&[*id]).set(age(&b));
            self.http_dead_letters
                .with_label_values(&[*id])
                .set(state.store.dead_letter_count(id)? as i64);
            self.http_disabled
                .with_label_values(&[*id])
                .set(i64::from(*disabled));
            for s in BREAKER_STATES {
                self.http_breaker
                    .with_label_values(&[*id, s])
                    .set(i64::from(s == *breaker));
            }
        }
        Ok(())
    }

    /// Everything registered, in the Prometheus text format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding to a Vec cannot fail");
        out
    }
}

/// What [`Metrics::refresh`] reads.
pub struct Observed<'a> {
    /// The clock's reading (ages are measured from it).
    pub now_ms: i64,
    pub store: &'a Store,
    pub ready: bool,
    /// Whether the Kafka brokers answer, when Kafka is on.
    pub kafka_connected: Option<bool>,
    /// (endpoint id, breaker state name, disabled).
    pub endpoints: Vec<(&'a str, &'a str, bool)>,
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_series_start_at_zero() {
        let m = Metrics::new(&["ds"], &["billing"], &["signature.events"], true);
        m.webhook("ds", "accepted");
        m.webhook("ds", "accepted");
        m.webhook(UNKNOWN_SOURCE, "accepted");
        m.webhook("ds", "invalid");
        assert_eq!(Metrics::total(&m.webhooks, "outcome", "accepted"), 3);
        assert_eq!(Metrics::total(&m.webhooks, "outcome", "error"), 0);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains(
                r#"countersign_webhooks_received_total{outcome="accepted",source="ds"} 2"#
            )
        );
        assert!(text.contains(
            r#"countersign_webhooks_received_total{outcome="invalid",source="_unknown"} 0"#
        ));
        assert!(
            text.contains(r#"countersign_http_breaker_state{endpoint="billing",state="closed"} 1"#)
        );
        assert!(text.contains(
            r#"countersign_kafka_messages_total{outcome="published",topic="signature.events"} 0"#
        ));
        assert!(text.contains("countersign_build_info{version="));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("countersign_"), "{line}");
        }
    }
}
