//! The write side of the HTTP delivery queue, inside the writer's
//! transaction: enqueue with the event, apply attempts, replays and discards,
//! keep each envelope's order, and remove an event's records when it is swept.

use redb::{ReadableTable, Table, WriteTransaction};

use super::{Attempt, DeliveryState, HttpDelivery, HttpOp, Next};
use crate::store::StoreError;
use crate::store::tables::{
    AttemptRow, DeliveryRow, HTTP_ATTEMPTS, HTTP_DEAD, HTTP_DELIVERIES, HTTP_DUE, HTTP_ORDER,
};

/// The delivery tables, open in one write transaction.
pub(in crate::store) struct Tables<'txn> {
    deliveries: Table<'txn, (u64, &'static str), DeliveryRow<'static>>,
    attempts: Table<'txn, (u64, &'static str, u32), AttemptRow<'static>>,
    order: Table<'txn, (&'static str, &'static str, u64), u64>,
    due: Table<'txn, (&'static str, i64, u64), ()>,
    dead: Table<'txn, (&'static str, u64), ()>,
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>, StoreError> {
        Ok(Tables {
            deliveries: txn.open_table(HTTP_DELIVERIES)?,
            attempts: txn.open_table(HTTP_ATTEMPTS)?,
            order: txn.open_table(HTTP_ORDER)?,
            due: txn.open_table(HTTP_DUE)?,
            dead: txn.open_table(HTTP_DEAD)?,
        })
    }

    /// Queues a new event for `endpoint`: scheduled at `now_ms` if it is the
    /// first unfinished delivery of its envelope there, else waiting.
    pub fn enqueue(
        &mut self,
        seq: u64,
        endpoint: &str,
        envelope: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let first = self.first_of(endpoint, envelope)?.is_none();
        self.order.insert((endpoint, envelope, seq), seq)?;
        let mut d = HttpDelivery {
            endpoint: endpoint.to_owned(),
            state: DeliveryState::Waiting,
            envelope: envelope.to_owned(),
            order: seq,
            due_ms: 0,
            tries: 0,
            attempts: 0,
            updated_ms: now_ms,
            reason: String::new(),
        };
        if first {
            self.schedule(seq, &mut d, now_ms)?;
        }
        self.deliveries.insert((seq, endpoint), d.row())?;
        Ok(first)
    }

    /// Applies one op; `next_order` hands out order keys for replays.
    pub fn apply(
        &mut self,
        op: &HttpOp,
        now_ms: i64,
        next_order: &mut u64,
    ) -> Result<bool, StoreError> {
        let (seq, endpoint) = match op {
            HttpOp::Attempted { seq, endpoint, .. }
            | HttpOp::Replay { seq, endpoint }
            | HttpOp::Discard { seq, endpoint }
            | HttpOp::Purge { seq, endpoint } => (*seq, endpoint.as_str()),
        };
        let Some(mut d) = self.get(seq, endpoint)? else {
            return Ok(false);
        };
        let applies = match op {
            HttpOp::Attempted { attempt, next, .. } if d.state == DeliveryState::Scheduled => {
                self.attempted(seq, &mut d, attempt, next, now_ms)?;
                true
            }
            HttpOp::Replay { .. } if d.state == DeliveryState::DeadLettered => {
                self.dead.remove((endpoint, seq))?;
                d.order = *next_order;
                *next_order += 1;
                d.tries = 0;
                d.reason.clear();
                d.state = DeliveryState::Waiting;
                if self.first_of(endpoint, &d.envelope)?.is_none() {
                    self.schedule(seq, &mut d, now_ms)?;
                }
                self.order
                    .insert((endpoint, d.envelope.as_str(), d.order), seq)?;
                true
            }
            HttpOp::Discard { .. } if d.state == DeliveryState::DeadLettered => {
                self.dead.remove((endpoint, seq))?;
                d.state = DeliveryState::Discarded;
                true
            }
            HttpOp::Purge { .. }
                if d.state.unfinished() || d.state == DeliveryState::DeadLettered =>
            {
                self.dead.remove((endpoint, seq))?;
                self.order
                    .remove((endpoint, d.envelope.as_str(), d.order))?;
                if d.state == DeliveryState::Scheduled {
                    self.due.remove((endpoint, d.due_ms, seq))?;
                }
                d.state = DeliveryState::Discarded;
                d.reason = "purged: the endpoint is no longer configured".into();
                true
            }
            _ => false,
        };
        if applies {
            d.updated_ms = now_ms;
            self.deliveries.insert((seq, endpoint), d.row())?;
        }
        Ok(applies)
    }

    fn attempted(
        &mut self,
        seq: u64,
        d: &mut HttpDelivery,
        a: &Attempt,
        next: &Next,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ep = d.endpoint.clone();
        let row = (
            a.at_ms,
            a.status.unwrap_or(0),
            a.latency_ms,
            a.error.as_str(),
        );
        self.attempts.insert((seq, ep.as_str(), d.attempts), row)?;
        d.attempts += 1;
        if !matches!(next, Next::Retry { counts: false, .. }) {
            d.tries += 1;
        }
        self.due.remove((ep.as_str(), d.due_ms, seq))?;
        match next {
            Next::Retry { due_ms, .. } => {
                d.due_ms = *due_ms;
                self.due.insert((ep.as_str(), *due_ms, seq), ())?;
                return Ok(());
            }
            Next::Delivered => d.state = DeliveryState::Delivered,
            Next::DeadLetter { reason } => {
                d.state = DeliveryState::DeadLettered;
                d.reason = reason.clone();
                self.dead.insert((ep.as_str(), seq), ())?;
            }
        }
        self.order
            .remove((ep.as_str(), d.envelope.as_str(), d.order))?;
        self.advance(&ep, &d.envelope, now_ms)
    }

    /// Schedules the next waiting delivery of an envelope, if any.
    fn advance(&mut self, endpoint: &str, envelope: &str, now_ms: i64) -> Result<(), StoreError> {
        let Some(seq) = self.first_of(endpoint, envelope)? else {
            return Ok(());
        };
        if let Some(mut d) = self.get(seq, endpoint)?
            && d.state == DeliveryState::Waiting
        {
            self.schedule(seq, &mut d, now_ms)?;
            self.deliveries.insert((seq, endpoint), d.row())?;
        }
        Ok(())
    }

    fn schedule(&mut self, seq: u64, d: &mut HttpDelivery, due_ms: i64) -> Result<(), StoreError> {
        d.state = DeliveryState::Scheduled;
        d.due_ms = due_ms;
        self.due.insert((d.endpoint.as_str(), due_ms, seq), ())?;
        Ok(())
    }

    fn first_of(&self, endpoint: &str, envelope: &str) -> Result<Option<u64>, StoreError> {
        let first = self
            .order
            .range((endpoint, envelope, 0)..=(endpoint, envelope, u64::MAX))?
            .next()
            .transpose()?;
        Ok(first.map(|(_, v)| v.value()))
    }

    fn get(&self, seq: u64, endpoint: &str) -> Result<Option<HttpDelivery>, StoreError> {
        (self.deliveries.get((seq, endpoint))?)
            .map(|g| HttpDelivery::from_row(endpoint, g.value()))
            .transpose()
    }

    /// Whether event `seq` still has unfinished deliveries (sweeping keeps it).
    pub fn unfinished(&self, seq: u64) -> Result<bool, StoreError> {
        for entry in self.deliveries.range((seq, "")..(seq + 1, ""))? {
            if DeliveryState::from_code(entry?.1.value().0)?.unfinished() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes every delivery record of event `seq` (sweeping).
    pub fn remove_event(&mut self, seq: u64) -> Result<(), StoreError> {
        let mut dead = Vec::new();
        for entry in self.deliveries.range((seq, "")..(seq + 1, ""))? {
            let (k, v) = entry?;
            if DeliveryState::from_code(v.value().0)? == DeliveryState::DeadLettered {
                dead.push(k.value().1.to_owned());
            }
        }
        for ep in dead {
            self.dead.remove((ep.as_str(), seq))?;
        }
        self.deliveries
            .retain_in((seq, "")..(seq + 1, ""), |_, _| false)?;
        self.attempts
            .retain_in((seq, "", 0)..(seq + 1, "", 0), |_, _| false)?;
        Ok(())
    }
}
