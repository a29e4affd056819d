//! The admin API's bodies as types: what the handlers serialize, and what the
//! `dlq`/`health` CLI and the tests deserialize. One definition, so a renamed
//! field breaks the build instead of a dashboard.
//!
//! Times are RFC 3339 strings in UTC with milliseconds
//! (`2026-11-23T16:55:49.123Z`). Optional values are `null` when unknown
//! (`pending` when the store could not be read) and absent when they do not
//! apply (`next_attempt_at` of a delivered delivery).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /healthz`: the process is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz`: 200 when taking webhooks (serving, with a working store),
/// else 503 with the same body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// `ready` or `not ready`.
    pub status: String,
    pub checks: ReadyChecks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyChecks {
    pub serving: bool,
    pub store: bool,
    /// Reported when Kafka is configured; never makes the gateway unready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaCheck>,
    /// With Kafka off: outbox entries left from when it was on (they are
    /// kept, and keep their events from being swept, until Kafka is back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_without_kafka: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaCheck {
    pub connected: bool,
    /// Outbox entries not yet acknowledged.
    pub pending: Option<u64>,
    pub published: u64,
    pub dead_lettered: u64,
}

/// `GET /v1/stats`: counters since start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Webhooks by outcome (every outcome of `countersign_webhooks_total`).
    pub webhooks: BTreeMap<String, u64>,
    pub store: StoreStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    pub commits: u64,
    pub events_stored: u64,
    pub duplicates: u64,
    pub largest_batch: u64,
    pub events_swept: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaStats {
    pub published: u64,
    pub dead_lettered: u64,
    /// Times the sink went back to the start of the outbox after a failure.
    pub rewinds: u64,
}

/// `GET /v1/events/{id}` (and each item of the list): the stored event as it
/// was normalized, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    /// The `SignatureEvent` JSON as stored.
    pub event: Value,
    pub state: EventState,
    /// The `[[routes]]` (by name, else `routes[i]`) the event matches under
    /// the configuration running now (`GET /v1/events/{id}` only; where it
    /// went when it was accepted is `state.kafka` and `state.http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventState {
    /// The store's sequence number (the order events were accepted in).
    pub sequence: u64,
    pub stored_at: String,
    /// `stored`.
    pub status: String,
    /// One entry per Kafka topic the event was routed to.
    pub kafka: Vec<KafkaDeliveryView>,
    /// One entry per HTTP endpoint the event was routed to.
    pub http: Vec<HttpDeliveryView>,
    /// Present when the event was quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineState>,
}

/// Where a quarantined event stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineState {
    /// `held`, `released` or `rejected`.
    pub status: String,
    /// When it was held, or when it was decided.
    pub at: String,
    /// Who released or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `GET /v1/quarantine`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineList {
    pub events: Vec<QuarantinedView>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// A quarantined event in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedView {
    pub sequence: u64,
    pub id: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_id: Option<String>,
    pub received_at: String,
    #[serde(flatten)]
    pub state: QuarantineState,
    /// What failed (pointer and message).
    pub violations: Value,
}

/// `POST /v1/events/{id}/release` and `/reject`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub id: String,
    pub source: String,
    pub sequence: u64,
    /// `released` or `rejected`.
    pub status: String,
}

/// An event's message to one Kafka topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KafkaDeliveryView {
    Pending {
        topic: String,
    },
    Published {
        topic: String,
        partition: i32,
        offset: i64,
        at: String,
    },
    DeadLettered {
        topic: String,
        reason: String,
        at: String,
    },
}

/// An event's delivery to one HTTP endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpDeliveryView {
    pub endpoint: String,
    /// `waiting`, `scheduled`, `delivered`, `dead_lettered` or `discarded`.
    pub status: String,
    /// Attempts counted against `max_attempts`.
    pub attempts: u32,
    pub history: Vec<AttemptView>,
    /// When a scheduled delivery is tried next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Why a dead-lettered (or discarded) delivery gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptView {
    pub at: String,
    /// The receiver's status; `null` when it did not answer.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong (a status line and snippet, or the transport error).
    pub error: Option<String>,
}

/// `GET /v1/events?limit=N&before=SEQ`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<EventView>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<u64>,
}

/// A dead letter as listed. Its id is `{endpoint}:{sequence}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterSummary {
    pub id: String,
    pub endpoint: String,
    pub event_id: String,
    pub source: String,
    pub envelope: String,
    pub sequence: u64,
    pub dead_lettered_at: String,
    pub reason: String,
    pub attempts: u32,
}

/// `GET /v1/dead-letters?endpoint=ID&limit=N&after=ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetterSummary>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// `GET /v1/dead-letters/{id}`: the summary, every attempt, and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub summary: DeadLetterSummary,
    pub history: Vec<AttemptView>,
    pub event: Value,
}

/// `POST /v1/dead-letters/{id}/replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayed {
    pub replayed: String,
}

/// `DELETE /v1/dead-letters/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discarded {
    pub discarded: String,
}

/// `POST /v1/dead-letters/replay?endpoint=ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayedAll {
    pub endpoint: String,
    pub replayed: u64,
}

/// `GET /v1/endpoints`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// An HTTP endpoint and its worker's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: String,
    /// The URL without credentials or query.
    pub url: String,
    /// `disabled`, `paused`, or the breaker's state.
    pub state: String,
    /// `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Set after a 410 Gone, until enabled again.
    pub disabled: Option<Disabled>,
    /// A `Retry-After` pause.
    pub paused_until: Option<String>,
    pub in_flight: usize,
    pub pending: Option<u64>,
    pub dead_letters: Option<u64>,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disabled {
    pub at: String,
    pub reason: String,
}

/// `DELETE /v1/endpoints/{id}/deliveries`: an endpoint no longer in the
/// config loses its waiting deliveries and dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purged {
    pub endpoint: String,
    pub purged: u64,
}

/// `POST /v1/endpoints/{id}/enable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enabled {
    pub enabled: String,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    /// With 409 on `/v1/events/{id}`: the sources that used the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
}

/// `PUT /v1/envelopes/{source}/{envelope_id}` and `GET` (with `history`),
/// and the answer to `POST …/archived`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeView {
    pub source: String,
    pub envelope_id: String,
    pub provider: String,
    /// `open`, `in_signing`, `completed`, `archived` or `cancelled`.
    pub state: String,
    /// `declined`, `voided`, `expired` or `deleted`, once cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// `provider` or `signers` (every expected signer signed), once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_by: Option<String>,
    /// The registration; absent while the envelope is not registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_sha256: Option<String>,
    pub progress: ProgressView,
    pub signers: Vec<SignerView>,
    /// The once-only derived events emitted so far (`envelope.in_signing`,
    /// `envelope.all_signed`, `envelope.cancelled`, `envelope.archived`).
    pub emitted: Vec<String>,
    pub anomalies: u32,
    /// Events of this envelope accepted.
    pub events: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The listing's cursor: pass as `before` to list older envelopes.
    pub sequence: u64,
    /// The deadline in force (RFC 3339): set by `POST …/deadline`, the
    /// registration's, or the source's `expire_after` after sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Timers still to fire, soonest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerView>,
    /// Derived events this request emitted (PUT, POST …/archived, …/remind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<DerivedRef>,
    /// The history, oldest first (`GET` of one envelope only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// A pending timer of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerView {
    /// `reminder`, `overdue` or `escalated`.
    pub kind: String,
    /// The reminder's index in its `reminders` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<u32>,
    pub due_at: String,
}

/// `POST /v1/envelopes/{source}/{envelope_id}/deadline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineRequest {
    /// RFC 3339.
    pub deadline: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressView {
    pub expected: u32,
    pub signed: u32,
    pub viewed: u32,
    pub declined: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignerView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// Named by the registration (false: seen in events only).
    #[serde(default)]
    pub expected: bool,
    /// `pending`, `viewed`, `signed` or `declined`.
    pub state: String,
}

/// A derived event: its kind and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedRef {
    pub kind: String,
    pub id: String,
}

/// One history entry of an envelope, and one message of `/v1/stream` and
/// `/v1/stream/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The store sequence (SSE `id`): resume after it with `Last-Event-ID`
    /// or `since=`.
    pub seq: u64,
    pub source: String,
    pub envelope_id: String,
    /// The envelope's own sequence (its creation: its place in the
    /// newest-first listing, the `sequence` of its view); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The event's kind, or `registered` / `archive` for admin actions.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `provider`, `countersign` (a derived event) or `admin`.
    pub origin: String,
    pub at: String,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<Value>,
    pub changed: bool,
    pub progress: ProgressView,
}

/// `GET /v1/envelopes?state=&source=&limit=&before=`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeList {
    pub envelopes: Vec<EnvelopeView>,
    /// Pass as `before` for the next page; absent at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
    /// The stream's newest sequence when the page was read (in the same
    /// read): subscribe to `/v1/stream` with it as `Last-Event-ID` to get
    /// every change after this page, none twice.
    #[serde(default)]
    pub log_head: u64,
}

/// `POST /v1/envelopes/{source}/{envelope_id}/archived`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// SHA-256 (64 hex digits) of the archived document.
    pub document_sha256: String,
}

/// 409 of `POST …/archived` when the hash differs from the registered one:
/// `envelope.document_mismatch` was emitted and the state stays `completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentMismatch {
    /// `document_mismatch`.
    pub error: String,
    pub expected_sha256: String,
    pub got_sha256: String,
    /// The `envelope.document_mismatch` event.
    pub event_id: String,
    pub envelope: EnvelopeView,
}

/// `GET /v1/overview` (and each message of `/v1/overview/stream`): what the
/// status panel's overview shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// When it was taken (RFC 3339).
    pub at: String,
    /// The webhook outcomes, in the order of every sample's `counts`.
    pub outcomes: Vec<String>,
    /// Webhook requests by outcome since start (all sources), sampled every
    /// second, oldest first: the last five minutes in `/v1/overview` and in
    /// a stream's first message, the samples since the previous message after.
    pub samples: Vec<OverviewSample>,
    /// Absent when Kafka is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<OverviewKafka>,
    pub endpoints: Vec<OverviewEndpoint>,
    /// Envelopes by state; absent when envelope tracking is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelopes: Option<BTreeMap<String, u64>>,
    /// Quarantined events waiting for a decision.
    pub quarantined: u64,
}

/// Cumulative webhook counts at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewSample {
    /// Milliseconds since the epoch.
    pub t: i64,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewKafka {
    pub connected: bool,
    /// Messages in the outbox.
    pub outbox: u64,
    /// How long the oldest has waited (seconds).
    pub oldest_seconds: f64,
}

/// An endpoint with its delivery lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// How long its oldest waiting delivery has waited (seconds).
    pub lag_seconds: f64,
}

/// `GET /v1/audit/verify`: an export's entries and whether it verifies with
/// the gateway's public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditVerified {
    pub verified: bool,
    /// The first broken link or checkpoint, when it does not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Links checked (entries and entries shown by digest).
    pub links: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// Whether signatures were checked.
    pub signed: bool,
    /// Entries after the last checkpoint (chain checked, not signed yet).
    pub unsigned_tail: u64,
    /// The entries the filter selects, as exported.
    pub entries: Vec<Value>,
}
