//! Sinks: workers that drain the store's queues to their destinations. They read
//! only from the store, never from the request path.
//!
//! - [`kafka`]: the Kafka outbox → topics, with CloudEvents headers and a DLQ.
//! - [`backoff`]: jittered exponential backoff shared by the sinks.

pub mod backoff;
pub mod kafka;
