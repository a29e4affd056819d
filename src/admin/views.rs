//! Store rows as the admin API shows them ([`api`](super::api) types).

use serde_json::Value;

use super::api::{
    AttemptView, DeadLetterSummary, EventState, EventView, HttpDeliveryView, KafkaDeliveryView,
};
use crate::store::{
    Attempt, DeadLetter, DeliveryState, HttpDelivery, KafkaDelivery, Record, Store,
};
use crate::time::format_ms;

/// A dead letter's id: `{endpoint}:{sequence}` (endpoint ids cannot contain
/// `:`, and the sequence names the event).
pub fn dead_letter_id(endpoint: &str, seq: u64) -> String {
    format!("{endpoint}:{seq}")
}

/// `billing:42` → (`billing`, 42).
pub fn parse_dead_letter_id(id: &str) -> Option<(String, u64)> {
    id.rsplit_once(':')
        .and_then(|(ep, seq)| Some((ep.to_owned(), seq.parse().ok()?)))
}

pub fn attempt(a: &Attempt) -> AttemptView {
    AttemptView {
        at: format_ms(a.at_ms),
        status: a.status,
        latency_ms: a.latency_ms,
        error: (!a.error.is_empty()).then(|| a.error.clone()),
    }
}

pub fn summary(d: &DeadLetter) -> DeadLetterSummary {
    DeadLetterSummary {
        id: dead_letter_id(&d.delivery.endpoint, d.seq),
        endpoint: d.delivery.endpoint.clone(),
        event_id: d.event_id.clone(),
        source: d.source.clone(),
        envelope: d.delivery.envelope.clone(),
        sequence: d.seq,
        dead_lettered_at: format_ms(d.delivery.updated_ms),
        reason: d.delivery.reason.clone(),
        attempts: d.delivery.attempts,
    }
}

/// A delivery with its attempts.
pub fn delivery(d: &HttpDelivery, history: &[Attempt]) -> HttpDeliveryView {
    HttpDeliveryView {
        endpoint: d.endpoint.clone(),
        status: d.state.as_str().into(),
        attempts: d.attempts,
        history: history.iter().map(attempt).collect(),
        next_attempt_at: (d.state == DeliveryState::Scheduled).then(|| format_ms(d.due_ms)),
        reason: matches!(
            d.state,
            DeliveryState::DeadLettered | DeliveryState::Discarded
        )
        .then(|| d.reason.clone()),
    }
}

fn kafka(d: KafkaDelivery) -> KafkaDeliveryView {
    match d {
        KafkaDelivery::Pending { topic } => KafkaDeliveryView::Pending { topic },
        KafkaDelivery::Published {
            topic,
            partition,
            offset,
            at_ms,
        } => KafkaDeliveryView::Published {
            topic,
            partition,
            offset,
            at: format_ms(at_ms),
        },
        KafkaDelivery::DeadLettered {
            topic,
            reason,
            at_ms,
        } => KafkaDeliveryView::DeadLettered {
            topic,
            reason,
            at: format_ms(at_ms),
        },
    }
}

/// The stored event and its state, with its Kafka and HTTP deliveries
/// (blocking: store reads).
pub fn event(store: &Store, r: &Record) -> EventView {
    let event: Value = serde_json::from_slice(&r.json).unwrap_or(Value::Null);
    EventView {
        event,
        state: EventState {
            sequence: r.seq,
            stored_at: format_ms(r.received_ms),
            status: "stored".into(),
            kafka: store
                .kafka_deliveries(r.seq)
                .unwrap_or_default()
                .into_iter()
                .map(kafka)
                .collect(),
            http: store
                .http_deliveries(r.seq)
                .unwrap_or_default()
                .iter()
                .map(|(d, history)| delivery(d, history))
                .collect(),
            quarantine: store.held(r.seq).ok().flatten().map(|h| quarantine(&h)),
        },
        routes: None,
    }
}

/// A quarantine row as the API shows it.
pub fn quarantine(h: &crate::store::Held) -> super::api::QuarantineState {
    super::api::QuarantineState {
        status: h.status.as_str().to_owned(),
        at: format_ms(h.at_ms),
        by: (!h.by.is_empty()).then(|| h.by.clone()),
    }
}
