//! The public listener: `/hooks/{source}[/{token}]`, on hyper directly (the
//! hot path; see BENCHMARKS.md).
//!
//! - [`ingest`]: route → limits → read the body → the pipeline → the answer.
//! - [`limit`]: load shedding and the per-client rate limit.
//! - [`response`]: the one place the public listener chooses status codes,
//!   including each provider's expected answer.

pub mod ingest;
pub mod limit;
pub mod response;
