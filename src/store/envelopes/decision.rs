//! A quarantine decision in its envelope's history: `quarantine.released`
//! or `quarantine.rejected`, by an admin, naming the event. It changes no
//! state (a release's event is applied on its own, before this entry).

use std::sync::Arc;

use super::apply::{Cache, Tables, row};
use super::row::Origin;
use super::{StreamMsg, Tracking};
use crate::envelope::Step;
use crate::store::StoreError;

impl Tables<'_> {
    /// Records the decision on the envelope of `source`/`envelope_id`, if
    /// there is one, under a fresh sequence number; returns whether it did.
    #[allow(clippy::too_many_arguments)]
    pub fn on_decision(
        &mut self,
        cache: &mut Cache,
        (source, envelope_id, event_id): (&str, &str, &str),
        released: bool,
        next_seq: &mut u64,
        now_ms: i64,
        t: &Tracking,
        stream: &mut Vec<Arc<StreamMsg>>,
    ) -> Result<bool, StoreError> {
        let Some(env) = self.load_mut(cache, source, envelope_id)? else {
            return Ok(false);
        };
        let seq = *next_seq;
        *next_seq += 1;
        env.updated_ms = now_ms;
        let kind = if released {
            "quarantine.released"
        } else {
            "quarantine.rejected"
        };
        let mut log = row(env, kind, Origin::Admin, now_ms, &Step::at(env.state));
        log.event_id = Some(event_id.to_owned());
        // Shown like a change (the stream and the history always carry it).
        log.changed = true;
        self.record(env, seq, &log, t.max_history, stream)?;
        Ok(true)
    }
}
