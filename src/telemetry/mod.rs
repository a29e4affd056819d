//! Logs and traces.
//!
//! Logs: `tracing` to stderr, JSON or text, filtered by `telemetry.log_level`.
//! Traces: when `telemetry.otlp_endpoint` is set, countersign's spans are
//! exported over OTLP/HTTP (protobuf or JSON) by a batch processor with a
//! bounded queue. One trace follows a webhook: the `webhook` span (a child of
//! the caller's `traceparent`, if any) → `kafka.publish` per message and
//! `http.delivery` per attempt, whose own ids travel in the Kafka message's and
//! the outbound request's `traceparent`. With tracing off, the caller's
//! `traceparent` is passed on unchanged in trace id.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod traceparent;

use crate::config::{LogFormat, OtlpProtocol, Report, TelemetryConfig};

/// `[telemetry]` checked, with the OTLP headers' secret references resolved
/// once, at start-up.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub config: TelemetryConfig,
    /// Resolved header values: never logged or printed.
    headers: HashMap<String, String>,
}

impl Settings {
    /// Checks `t`; problems go to `r`.
    pub fn from_config(t: &TelemetryConfig, r: &mut Report) -> Settings {
        let mut headers = HashMap::new();

        // tracing-subscriber's directive parser slices the text by bytes and
        // panics inside a multi-byte character (found by the `config` fuzz
        // target): directives are ASCII, so anything else is refused first.
        if !t.log_level.is_ascii() {
            r.add(
                "telemetry.log_level",
                "contains characters other than ASCII",
                "use e.g. \"info\" or \"countersign=debug,info\"",
            );
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&t.log_level) {
            r.add(
                "telemetry.log_level",
                format!("invalid filter: {e}"),
                "use e.g. \"info\" or \"countersign=debug,info\"",
            );
        }
        if let Some(url) = &t.otlp_endpoint {
            let ok = url
                .parse::<http::Uri>()
                .ok()
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
            if ok.is_none() {
                r.add(
                    "telemetry.otlp_endpoint",
                    format!("{url:?} is not an http(s) URL"),
                    "give the collector's OTLP/HTTP address, e.g. \"http://otel-collector:4318\"",
                );
            }
        }
        for (name, value) in &t.otlp_headers {
            let k = format!("telemetry.otlp_headers.\"{name}\"");
            r.header_name(&k, name);
            match value.resolve() {
                Ok(v) => {
                    headers.insert(name.clone(), v);
                }
                Err((problem, fix)) => r.add(k, problem, fix),
            }
        }
        r.positive("telemetry.otlp_timeout", t.otlp_timeout);
        if !(0.0..=1.0).contains(&t.trace_sample_ratio) {
            r.add(
                "telemetry.trace_sample_ratio",
                format!("{} is out of range", t.trace_sample_ratio),
                "use a share from 0.0 (none) to 1.0 (all)",
            );
        }
        if t.service_name.trim().is_empty() {
            r.add(
                "telemetry.service_name",
                "is empty",
                "name the service, e.g. \"countersign\"",
            );
        }
        Settings {
            config: t.clone(),
            headers,
        }
    }
}

/// Largest collector answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Flushes exported spans when dropped or shut down.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what the batch processor still holds (within the export
    /// timeout). Blocking: call it outside the runtime's workers.
    pub fn shutdown(mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: traces not flushed: {e}");
        }
    }
}

/// Installs the global subscriber: logs, plus span export when
/// `otlp_endpoint` is set (then it must run inside a Tokio runtime, which
/// carries the export requests). Safe to call more than once (later calls are
/// ignored), so tests may run several gateways in one process.
pub fn init(settings: &Settings) -> Telemetry {
    let cfg = &settings.config;
    let filter = EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = match cfg.log_format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    }
    .with_filter(filter);
    let provider = match cfg.otlp_endpoint.as_deref().map(|e| provider(settings, e)) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("warning: traces are not exported: {e}");
            None
        }
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        // Spans only (log events stay in the log), of countersign's own code.
        let spans = tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.target().starts_with("countersign")
        });
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("countersign"))
            .with_filter(spans)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry { provider }
}

fn provider(settings: &Settings, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let cfg = &settings.config;
    let mut url = endpoint.trim_end_matches('/').to_owned();
    if url
        .parse::<http::Uri>()?
        .path()
        .trim_matches('/')
        .is_empty()
    {
        url.push_str("/v1/traces");
    }
    let headers = settings.headers.clone();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Exporter::new(cfg.otlp_timeout))
        .with_endpoint(url)
        .with_protocol(match cfg.otlp_protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        })
        .with_timeout(cfg.otlp_timeout)
        .with_headers(headers)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            cfg.trace_sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: hyper with TLS, run on the gateway's runtime
/// (the batch processor exports from its own thread).
#[derive(Debug, Clone)]
struct Exporter {
    client: crate::outbound::Https<Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl Exporter {
    fn new(timeout: Duration) -> Exporter {
        Exporter {
            client: crate::outbound::https_default(),
            runtime: tokio::runtime::Handle::current(),
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Exporter {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (client, timeout) = (self.client.clone(), self.timeout);
        let task = self.runtime.spawn(async move {
            let send = async {
                let resp = client.request(request.map(Full::new)).await?;
                let (parts, body) = resp.into_parts();
                let body = Limited::new(body, MAX_ANSWER_BYTES)
                    .collect()
                    .await?
                    .to_bytes();
                Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
            };
            match tokio::time::timeout(timeout, send).await {
                Ok(r) => r,
                Err(_) => Err("the collector did not answer in time".into()),
            }
        });
        task.await?
    }
}

/// Puts `span` in the trace of `parent` (a valid `traceparent`) and returns the
/// `traceparent` to pass on: the span's own when spans are recorded, else
/// `None`.
pub fn join(span: &Span, parent: Option<&str>) -> Option<String> {
    if let Some(sc) = parent.and_then(span_context) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The `traceparent` of a message or request sent on behalf of `span` for an
/// event taken in trace `stored`: the span's own when spans are recorded,
/// else a child of `stored` (same trace, new parent id).
pub fn outbound(span: &Span, stored: Option<&str>) -> Option<String> {
    join(span, stored).or_else(|| stored.map(traceparent::child))
}

fn span_context(tp: &str) -> Option<SpanContext> {
    let tp = traceparent::parse(tp)?;
    let trace = TraceId::from_hex(&tp[3..35]).ok()?;
    let span = SpanId::from_hex(&tp[36..52]).ok()?;
    let flags = u8::from_str_radix(&tp[53..55], 16).ok()?;
    Some(SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_tracer_the_callers_trace_is_passed_on() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = tracing::info_span!("test");
        assert_eq!(join(&span, Some(tp)), None);
        let out = outbound(&span, Some(tp)).unwrap();
        assert_eq!(&out[..36], &tp[..36]);
        assert_ne!(out, tp);
        assert_eq!(outbound(&span, None), None);
        assert!(span_context(tp).is_some_and(|s| s.is_sampled() && s.is_remote()));
    }
}
