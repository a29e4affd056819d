//! Sinks: workers that drain the store's queues to their destinations. They read
//! only from the store, never from the request path.
//!
//! - [`kafka`]: the Kafka outbox → topics, with CloudEvents headers and a DLQ.
//! - [`webhook`]: the HTTP delivery queue → endpoints, signed per Standard
//!   Webhooks.
//! - [`retry`]: what an endpoint's answer means and what follows it (pure).
//! - [`breaker`]: the per-endpoint circuit breaker (pure).
//! - [`backoff`]: jittered exponential backoff for the Kafka sink.

pub mod backoff;
pub mod breaker;
pub mod kafka;
pub mod retry;
pub mod webhook;
