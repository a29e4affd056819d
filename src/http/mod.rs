//! The only module that knows hyper and HTTP status codes.
//!
//! - [`server`]: accept loop, connection limits, timeouts, graceful drain.
//! - [`ingest`]: the public `/hooks/...` endpoint.
//! - [`admin`]: health, readiness and the events API on the admin listener.
//! - [`response`]: the one mapping from outcomes and errors to responses.

pub mod admin;
pub mod deliveries;
pub mod ingest;
pub mod limit;
pub mod response;
pub mod server;
