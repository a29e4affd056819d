//! Test harness: a gateway on 127.0.0.1:0 (in-process through `app::run`, or the
//! real binary), a small HTTP/1.1 client, signed webhooks for every provider,
//! and the one wait helper.

mod client;
mod fixtures;
mod gateway;
pub mod kafka;
pub mod metrics;
pub mod receiver;
pub mod sse;

use std::time::Duration;

pub use client::{Req, Resp, get, send, try_send};
pub use fixtures::{FIXTURES, SOURCES, fixture, sign_for, signed, sources, sw_hook, tamper};
pub use gateway::{
    Binary, Gateway, config_text, countersign, event_count, stream_then_kill9, with_server_keys,
    with_store_keys,
};

/// Polls `check` every 10 ms until it yields a value; panics naming `what` if
/// none came `within` (real time). The one wait helper of the tests: they
/// assert on what the gateway does eventually, never on how fast.
pub async fn eventually<T>(
    what: impl std::fmt::Display,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let until = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
