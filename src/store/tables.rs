//! Table layout of the store. Keys are ordered so that the sweeps and the admin
//! listing are range scans.

use redb::{Database, TableDefinition};

use super::{Record, StoreError};

/// seq → (received_ms, source, event id, event JSON).
pub const EVENTS: TableDefinition<u64, (i64, &str, &str, &[u8])> =
    TableDefinition::new("events_v1");
/// (event id, source) → (seq, dedup_expires_ms): the lookup by id and the dedup
/// claim in one entry. A claim blocks duplicates until `dedup_expires_ms`; the
/// entry itself lives as long as its event (retention ≥ dedup ttl).
pub const IDS: TableDefinition<(&str, &str), (u64, i64)> = TableDefinition::new("ids_v1");
/// (seq, topic) → (): the Kafka outbox, in the order events were accepted.
pub const KAFKA_QUEUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("kafka_queue_v1");
/// (seq, topic) → [`DoneRow`]: what became of each Kafka message.
pub type DoneRecord<'a> = (u8, i32, i64, i64, &'a str);

pub const KAFKA_DONE: TableDefinition<(u64, &str), DoneRecord> =
    TableDefinition::new("kafka_done_v1");
/// (seq, endpoint) → the state of one HTTP delivery (see [`DeliveryRow`]).
pub const HTTP_DELIVERIES: TableDefinition<(u64, &str), DeliveryRow> =
    TableDefinition::new("http_deliveries_v1");
/// (state, envelope, order, due_ms, tries, attempts, updated_ms, reason):
/// `order` is the key in [`HTTP_ORDER`]; `tries` counts attempts since the last
/// replay (against `max_attempts`), `attempts` all of them.
pub type DeliveryRow<'a> = (u8, &'a str, u64, i64, u32, u32, i64, &'a str);
/// (seq, endpoint, attempt number) → (at_ms, status or 0, latency_ms, error).
pub const HTTP_ATTEMPTS: TableDefinition<(u64, &str, u32), AttemptRow> =
    TableDefinition::new("http_attempts_v1");
pub type AttemptRow<'a> = (i64, u16, u64, &'a str);
/// (endpoint, envelope, order) → seq: the unfinished deliveries of each envelope,
/// oldest first. Only the first of an envelope is ever scheduled.
pub const HTTP_ORDER: TableDefinition<(&str, &str, u64), u64> =
    TableDefinition::new("http_order_v1");
/// (endpoint, due_ms, seq) → (): the scheduled deliveries, by due time.
pub const HTTP_DUE: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("http_due_v1");
/// (endpoint, seq) → (): dead letters not yet replayed or discarded.
pub const HTTP_DEAD: TableDefinition<(&str, u64), ()> = TableDefinition::new("http_dead_v1");
/// seq → W3C `traceparent` of the webhook's ingest span (or, with tracing off,
/// the one it arrived with); Kafka messages and HTTP deliveries continue it.
pub const TRACE: TableDefinition<u64, &str> = TableDefinition::new("trace_v1");
/// endpoint → (disabled_at_ms, reason): endpoints disabled by a 410 Gone.
pub const DISABLED: TableDefinition<&str, (i64, &str)> =
    TableDefinition::new("endpoints_disabled_v1");
/// Named counters. `next_seq` is a floor, written when sweeping removes events
/// and when replays take order numbers; at open the next sequence number is the
/// larger of it and the newest event's + 1, so numbers are never reused.
/// Quarantined events: sequence → (status code, when it was held or
/// decided, by whom); see `quarantine`.
pub const QUARANTINE: TableDefinition<u64, (u8, i64, &str)> = TableDefinition::new("quarantine_v1");

pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");

pub const NEXT_SEQ: &str = "next_seq";

/// Creates every table so read transactions never meet a missing one.
pub fn create_all(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(EVENTS)?;
    txn.open_table(IDS)?;
    txn.open_table(META)?;
    txn.open_table(KAFKA_QUEUE)?;
    txn.open_table(KAFKA_DONE)?;
    txn.open_table(HTTP_DELIVERIES)?;
    txn.open_table(HTTP_ATTEMPTS)?;
    txn.open_table(HTTP_ORDER)?;
    txn.open_table(HTTP_DUE)?;
    txn.open_table(HTTP_DEAD)?;
    txn.open_table(DISABLED)?;
    txn.open_table(TRACE)?;
    txn.open_table(super::audit::AUDIT)?;
    txn.open_table(super::audit::CHECKPOINTS)?;
    txn.open_table(super::envelopes::ENVELOPES)?;
    txn.open_table(super::envelopes::ENVELOPE_LOG)?;
    txn.open_table(super::envelopes::TIMERS)?;
    txn.open_table(super::envelopes::STATES)?;
    txn.open_table(super::envelopes::REFERENCES)?;
    txn.open_table(QUARANTINE)?;
    txn.commit()?;
    super::envelopes::build_indexes(db)
}

/// A row of [`EVENTS`], by name.
#[derive(Debug, Clone, Copy)]
pub struct EventRow<'a> {
    pub received_ms: i64,
    pub source: &'a str,
    pub id: &'a str,
    pub json: &'a [u8],
}

impl<'a> EventRow<'a> {
    pub fn from(v: (i64, &'a str, &'a str, &'a [u8])) -> EventRow<'a> {
        let (received_ms, source, id, json) = v;
        EventRow {
            received_ms,
            source,
            id,
            json,
        }
    }

    pub fn tuple(&self) -> (i64, &'a str, &'a str, &'a [u8]) {
        (self.received_ms, self.source, self.id, self.json)
    }

    pub fn record(&self, seq: u64) -> Record {
        Record {
            seq,
            received_ms: self.received_ms,
            source: self.source.to_owned(),
            id: self.id.to_owned(),
            json: self.json.to_vec(),
        }
    }
}

/// A value of [`IDS`]: the event the id names, and until when its dedup claim
/// blocks duplicates.
#[derive(Debug, Clone, Copy)]
pub struct IdEntry {
    pub seq: u64,
    pub dedup_expires_ms: i64,
}

impl IdEntry {
    pub fn from(v: (u64, i64)) -> IdEntry {
        IdEntry {
            seq: v.0,
            dedup_expires_ms: v.1,
        }
    }

    pub fn tuple(&self) -> (u64, i64) {
        (self.seq, self.dedup_expires_ms)
    }
}

/// What became of a Kafka message, as stored in [`KAFKA_DONE`]. The codes are
/// on disk: never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneStatus {
    Published = 0,
    DeadLettered = 1,
}

impl DoneStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A row of [`KAFKA_DONE`], by name.
#[derive(Debug, Clone, Copy)]
pub struct DoneRow<'a> {
    pub status: u8,
    pub partition: i32,
    pub offset: i64,
    pub at_ms: i64,
    pub reason: &'a str,
}

impl<'a> DoneRow<'a> {
    pub fn from(v: DoneRecord<'a>) -> DoneRow<'a> {
        let (status, partition, offset, at_ms, reason) = v;
        DoneRow {
            status,
            partition,
            offset,
            at_ms,
            reason,
        }
    }

    pub fn tuple(&self) -> DoneRecord<'a> {
        (
            self.status,
            self.partition,
            self.offset,
            self.at_ms,
            self.reason,
        )
    }

    /// The status; an unknown code is a database error, not a guess.
    pub fn status(&self) -> Result<DoneStatus, StoreError> {
        match self.status {
            0 => Ok(DoneStatus::Published),
            1 => Ok(DoneStatus::DeadLettered),
            c => Err(StoreError::Db(format!("unknown kafka status code {c}"))),
        }
    }
}
