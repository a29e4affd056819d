//! The integration tests: one binary (one link of librdkafka, OpenSSL and redb),
//! a module per area. `common` starts gateways, brokers and receivers.

mod common;

mod admin;
mod audit;
mod cli;
mod delivery;
mod deploy;
mod durability;
mod envelopes;
mod ingest;
mod kafka;
mod operations;
mod panel;
mod privacy;
mod rules;
mod style;
mod telemetry;
