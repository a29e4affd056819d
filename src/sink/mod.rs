//! Sinks: workers that drain the store's queues to their destinations. They read
//! only from the store, never from the request path.
//!
//! - [`kafka`]: the Kafka outbox → topics, with CloudEvents headers and a DLQ.
//! - [`http`]: the HTTP delivery queue → endpoints, signed per Standard Webhooks.
//! - [`retry`]: what an HTTP answer means, and the retry schedule.
//! - [`breaker`]: the per-endpoint circuit breaker (pure).
//! - [`backoff`]: jittered exponential backoff for the Kafka sink.
//! - [`clock`]: the time the HTTP sink schedules by (manual in tests).

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod http;
pub mod kafka;
pub mod retry;
