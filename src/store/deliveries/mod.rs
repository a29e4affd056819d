//! The HTTP delivery queue: one durable delivery per (event, endpoint), written
//! in the same transaction as its event, with its schedule, attempt history and
//! dead letters.
//!
//! Order per envelope: the unfinished deliveries of an (endpoint, envelope) are
//! kept in `HTTP_ORDER`, and only the first of them is scheduled (`HTTP_DUE`).
//! When it is delivered or dead-lettered, the next one is scheduled. Different
//! envelopes never wait for each other. A replayed dead letter joins the back of
//! its envelope's queue.

mod queue;

pub(super) use queue::Tables;

use redb::{ReadableDatabase, ReadableTable};

use super::tables::{
    AttemptRow, DISABLED, DeliveryRow, EVENTS, EventRow, HTTP_ATTEMPTS, HTTP_DEAD, HTTP_DELIVERIES,
    HTTP_DUE, HTTP_ORDER, TRACE,
};
use super::{Actor, Backlog, Command, Store, StoreError};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Behind an earlier delivery of its envelope.
    Waiting = 0,
    /// Due at its `due_ms` (the first try, or a retry).
    Scheduled = 1,
    Delivered = 2,
    DeadLettered = 3,
    /// A dead letter an operator discarded.
    Discarded = 4,
}

impl DeliveryState {
    /// The stored code. The codes are on disk: never renumber them.
    pub(super) fn code(self) -> u8 {
        self as u8
    }

    /// The state of a stored code; an unknown code is a database error.
    pub(super) fn from_code(c: u8) -> Result<DeliveryState, StoreError> {
        Ok(match c {
            0 => DeliveryState::Waiting,
            1 => DeliveryState::Scheduled,
            2 => DeliveryState::Delivered,
            3 => DeliveryState::DeadLettered,
            4 => DeliveryState::Discarded,
            c => return Err(StoreError::Db(format!("unknown delivery state code {c}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Waiting => "waiting",
            DeliveryState::Scheduled => "scheduled",
            DeliveryState::Delivered => "delivered",
            DeliveryState::DeadLettered => "dead_lettered",
            DeliveryState::Discarded => "discarded",
        }
    }

    pub fn unfinished(self) -> bool {
        matches!(self, DeliveryState::Waiting | DeliveryState::Scheduled)
    }
}

/// One delivery's state, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDelivery {
    pub endpoint: String,
    pub state: DeliveryState,
    pub envelope: String,
    pub(super) order: u64,
    /// When it is due (scheduled) or was last due.
    pub due_ms: i64,
    /// Attempts since the last replay, counted against `max_attempts`.
    pub tries: u32,
    /// All attempts.
    pub attempts: u32,
    pub updated_ms: i64,
    /// Why it was dead-lettered.
    pub reason: String,
}

impl HttpDelivery {
    pub(super) fn from_row(endpoint: &str, r: DeliveryRow) -> Result<HttpDelivery, StoreError> {
        Ok(HttpDelivery {
            endpoint: endpoint.to_owned(),
            state: DeliveryState::from_code(r.0)?,
            envelope: r.1.to_owned(),
            order: r.2,
            due_ms: r.3,
            tries: r.4,
            attempts: r.5,
            updated_ms: r.6,
            reason: r.7.to_owned(),
        })
    }

    pub(super) fn row(&self) -> DeliveryRow<'_> {
        (
            self.state.code(),
            &self.envelope,
            self.order,
            self.due_ms,
            self.tries,
            self.attempts,
            self.updated_ms,
            &self.reason,
        )
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at_ms: i64,
    /// The receiver's status; `None` when there was no answer.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong (empty on success).
    pub error: String,
}

impl Attempt {
    fn from_row(r: AttemptRow) -> Attempt {
        Attempt {
            at_ms: r.0,
            status: (r.1 != 0).then_some(r.1),
            latency_ms: r.2,
            error: r.3.to_owned(),
        }
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Due again at `due_ms`. `counts = false` leaves `tries` alone (410 Gone:
    /// the endpoint is disabled, the delivery waits without using up attempts).
    Retry {
        due_ms: i64,
        counts: bool,
    },
    DeadLetter {
        reason: String,
    },
}

/// A change to a delivery, applied by the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOp {
    /// The result of an attempt.
    Attempted {
        seq: u64,
        endpoint: String,
        attempt: Attempt,
        next: Next,
    },
    /// A dead letter goes back into its envelope's queue, with fresh tries.
    Replay { seq: u64, endpoint: String },
    /// A dead letter is dropped (its history stays with the event).
    Discard { seq: u64, endpoint: String },
    /// A delivery to an endpoint no longer in the config is dropped, whether
    /// waiting, scheduled or dead-lettered (its history stays).
    Purge { seq: u64, endpoint: String },
}

/// A delivery that is due, with what to send.
#[derive(Debug, Clone)]
pub struct Due {
    pub seq: u64,
    /// The event's id: the `webhook-id` of the delivery.
    pub event_id: String,
    /// The trace the webhook arrived in, if any.
    pub traceparent: Option<String>,
    pub envelope: String,
    pub tries: u32,
    pub received_ms: i64,
    pub json: Vec<u8>,
}

/// A dead letter, as the admin API lists it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub seq: u64,
    pub delivery: HttpDelivery,
    /// The event's id and source (from the stored event).
    pub event_id: String,
    pub source: String,
}

/// A dead letter as the admin API shows it alone.
#[derive(Debug, Clone)]
pub struct DeadLetterDetail {
    pub letter: DeadLetter,
    pub history: Vec<Attempt>,
    /// The event's JSON.
    pub json: Vec<u8>,
}

impl Store {
    /// Up to `limit` deliveries of `endpoint` due at `now_ms`, earliest first,
    /// leaving out those `skip` names (in flight or already taken).
    pub fn due(
        &self,
        endpoint: &str,
        now_ms: i64,
        limit: usize,
        skip: impl Fn(u64) -> bool,
    ) -> Result<Vec<Due>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let due = txn.open_table(HTTP_DUE)?;
        let deliveries = txn.open_table(HTTP_DELIVERIES)?;
        let events = txn.open_table(EVENTS)?;
        let trace = txn.open_table(TRACE)?;
        let mut out = Vec::new();
        for entry in due.range((endpoint, i64::MIN, 0)..=(endpoint, now_ms, u64::MAX))? {
            if out.len() == limit {
                break;
            }
            let seq = entry?.0.value().2;
            if skip(seq) {
                continue;
            }
            let (Some(d), Some(e)) = (deliveries.get((seq, endpoint))?, events.get(seq)?) else {
                continue;
            };
            let d = HttpDelivery::from_row(endpoint, d.value())?;
            let e = EventRow::from(e.value());
            out.push(Due {
                seq,
                event_id: e.id.to_owned(),
                traceparent: trace.get(seq)?.map(|t| t.value().to_owned()),
                envelope: d.envelope,
                tries: d.tries,
                received_ms: e.received_ms,
                json: e.json.to_vec(),
            });
        }
        Ok(out)
    }

    /// The earliest due time of `endpoint` after `after_ms`, if any.
    pub fn next_due(&self, endpoint: &str, after_ms: i64) -> Result<Option<i64>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let due = txn.open_table(HTTP_DUE)?;
        let first = due
            .range((endpoint, after_ms.saturating_add(1), 0)..=(endpoint, i64::MAX, u64::MAX))?
            .next()
            .transpose()?;
        Ok(first.map(|(k, _)| k.value().1))
    }

    /// Records attempt results, replays and discards (one group commit with
    /// whatever else is queued). One flag per op: false if it did not apply (the
    /// delivery is gone, or not in a state the op applies to).
    pub async fn http(&self, ops: Vec<HttpOp>) -> Result<Vec<bool>, StoreError> {
        self.call(|reply| Command::Http {
            ops,
            by: None,
            reply,
        })
        .await
    }

    /// [`Store::http`] for an admin action: the audit log names `by`.
    pub async fn http_by(&self, ops: Vec<HttpOp>, by: Actor) -> Result<Vec<bool>, StoreError> {
        self.call(|reply| Command::Http {
            ops,
            by: Some(by),
            reply,
        })
        .await
    }

    /// Disables `endpoint` (a 410 Gone), or enables it again with `None`;
    /// `by` names who asked (an admin), for the audit log.
    pub async fn set_disabled(
        &self,
        endpoint: &str,
        disabled: Option<(i64, String)>,
        by: Option<Actor>,
    ) -> Result<(), StoreError> {
        let endpoint = endpoint.to_owned();
        self.call(|reply| Command::Disable {
            endpoint,
            disabled,
            by,
            reply,
        })
        .await
    }

    /// When and why `endpoint` was disabled, if it is.
    pub fn disabled(&self, endpoint: &str) -> Result<Option<(i64, String)>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let t = txn.open_table(DISABLED)?;
        Ok(t.get(endpoint)?.map(|g| {
            let (at, reason) = g.value();
            (at, reason.to_owned())
        }))
    }

    /// Unfinished deliveries of `endpoint` (waiting and scheduled).
    /// Endpoints with deliveries that are not in `configured`: (endpoint,
    /// unfinished deliveries, dead letters). A scan of the queues, for the
    /// start-up report.
    pub fn unknown_endpoints(
        &self,
        configured: &[&str],
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let mut found = std::collections::BTreeMap::<String, (u64, u64)>::new();
        for entry in txn.open_table(HTTP_ORDER)?.iter()? {
            let (k, _) = entry?;
            let ep = k.value().0;
            if !configured.contains(&ep) {
                found.entry(ep.to_owned()).or_default().0 += 1;
            }
        }
        for entry in txn.open_table(HTTP_DEAD)?.iter()? {
            let (k, _) = entry?;
            let ep = k.value().0;
            if !configured.contains(&ep) {
                found.entry(ep.to_owned()).or_default().1 += 1;
            }
        }
        Ok(found.into_iter().map(|(e, (u, d))| (e, u, d)).collect())
    }

    /// Drops every unfinished delivery and dead letter of `endpoint` (one no
    /// longer in the config), a page at a time; returns how many.
    pub async fn purge_endpoint(&self, endpoint: &str, by: Actor) -> Result<u64, StoreError> {
        let mut purged = 0u64;
        loop {
            let ep = endpoint.to_owned();
            let seqs = self
                .read(move |s| {
                    let txn = s.inner.db.begin_read()?;
                    let mut seqs = Vec::new();
                    for entry in txn.open_table(HTTP_ORDER)?.range((ep.as_str(), "", 0)..)? {
                        let (k, v) = entry?;
                        if k.value().0 != ep || seqs.len() >= 1000 {
                            break;
                        }
                        seqs.push(v.value());
                    }
                    for entry in txn.open_table(HTTP_DEAD)?.range((ep.as_str(), 0)..)? {
                        let (k, _) = entry?;
                        if k.value().0 != ep || seqs.len() >= 2000 {
                            break;
                        }
                        seqs.push(k.value().1);
                    }
                    Ok(seqs)
                })
                .await?;
            if seqs.is_empty() {
                return Ok(purged);
            }
            let ops = seqs
                .into_iter()
                .map(|seq| HttpOp::Purge {
                    seq,
                    endpoint: endpoint.to_owned(),
                })
                .collect();
            let done = self.http_by(ops, by.clone()).await?;
            let n = done.iter().filter(|ok| **ok).count() as u64;
            if n == 0 {
                return Ok(purged);
            }
            purged += n;
        }
    }

    /// Unfinished deliveries of `endpoint` and when the oldest was received
    /// (a scan of the endpoint's queue).
    pub fn http_backlog(&self, endpoint: &str) -> Result<Backlog, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let order = txn.open_table(HTTP_ORDER)?;
        let (mut count, mut oldest) = (0, None::<u64>);
        for entry in order.range((endpoint, "", 0)..)? {
            let (k, seq) = entry?;
            if k.value().0 != endpoint {
                break;
            }
            count += 1;
            oldest = Some(oldest.map_or(seq.value(), |o| o.min(seq.value())));
        }
        let oldest_ms = match oldest {
            Some(seq) => {
                (txn.open_table(EVENTS)?.get(seq)?).map(|e| EventRow::from(e.value()).received_ms)
            }
            None => None,
        };
        Ok(Backlog { count, oldest_ms })
    }

    /// Dead letters of `endpoint` waiting for replay or discard.
    pub fn dead_letter_count(&self, endpoint: &str) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let dead = txn.open_table(HTTP_DEAD)?;
        let mut n = 0;
        for entry in dead.range((endpoint, 0)..=(endpoint, u64::MAX))? {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    /// The HTTP deliveries of event `seq`, each with its attempts.
    pub fn http_deliveries(
        &self,
        seq: u64,
    ) -> Result<Vec<(HttpDelivery, Vec<Attempt>)>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let deliveries = txn.open_table(HTTP_DELIVERIES)?;
        let attempts = txn.open_table(HTTP_ATTEMPTS)?;
        let mut out = Vec::new();
        for entry in deliveries.range((seq, "")..(seq + 1, ""))? {
            let (k, v) = entry?;
            let d = HttpDelivery::from_row(k.value().1, v.value())?;
            let history = history(&attempts, seq, &d.endpoint)?;
            out.push((d, history));
        }
        Ok(out)
    }

    /// Dead letters, by endpoint then sequence, after the `after` cursor.
    pub fn dead_letters(
        &self,
        endpoint: Option<&str>,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let dead = txn.open_table(HTTP_DEAD)?;
        let deliveries = txn.open_table(HTTP_DELIVERIES)?;
        let events = txn.open_table(EVENTS)?;
        let start = match (after, endpoint) {
            (Some((ep, seq)), _) => (ep, seq.saturating_add(1)),
            (None, Some(ep)) => (ep, 0),
            (None, None) => ("", 0),
        };
        let mut out = Vec::new();
        for entry in dead.range(start..)? {
            let key = entry?.0;
            let (ep, seq) = key.value();
            if endpoint.is_some_and(|e| e != ep) || out.len() == limit {
                break;
            }
            out.extend(dead_letter(&deliveries, &events, ep, seq)?);
        }
        Ok(out)
    }

    /// One dead letter with its attempts and its event's JSON.
    pub fn dead_letter(
        &self,
        endpoint: &str,
        seq: u64,
    ) -> Result<Option<DeadLetterDetail>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        if txn.open_table(HTTP_DEAD)?.get((endpoint, seq))?.is_none() {
            return Ok(None);
        }
        let events = txn.open_table(EVENTS)?;
        let deliveries = txn.open_table(HTTP_DELIVERIES)?;
        let Some(d) = dead_letter(&deliveries, &events, endpoint, seq)? else {
            return Ok(None);
        };
        let history = history(&txn.open_table(HTTP_ATTEMPTS)?, seq, endpoint)?;
        let json = (events.get(seq)?)
            .map(|e| EventRow::from(e.value()).json.to_vec())
            .unwrap_or_default();
        Ok(Some(DeadLetterDetail {
            letter: d,
            history,
            json,
        }))
    }
}

/// The attempts of one delivery, oldest first.
fn history(
    attempts: &impl ReadableTable<(u64, &'static str, u32), AttemptRow<'static>>,
    seq: u64,
    endpoint: &str,
) -> Result<Vec<Attempt>, StoreError> {
    let mut out = Vec::new();
    for a in attempts.range((seq, endpoint, 0)..=(seq, endpoint, u32::MAX))? {
        out.push(Attempt::from_row(a?.1.value()));
    }
    Ok(out)
}

/// The dead letter of (`endpoint`, `seq`) with its event's id and source.
fn dead_letter(
    deliveries: &impl ReadableTable<(u64, &'static str), DeliveryRow<'static>>,
    events: &impl ReadableTable<u64, (i64, &'static str, &'static str, &'static [u8])>,
    endpoint: &str,
    seq: u64,
) -> Result<Option<DeadLetter>, StoreError> {
    let (Some(d), Some(e)) = (deliveries.get((seq, endpoint))?, events.get(seq)?) else {
        return Ok(None);
    };
    let e = EventRow::from(e.value());
    Ok(Some(DeadLetter {
        seq,
        delivery: HttpDelivery::from_row(endpoint, d.value())?,
        event_id: e.id.to_owned(),
        source: e.source.to_owned(),
    }))
}
