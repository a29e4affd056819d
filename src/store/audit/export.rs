//! Audit exports from a store (`countersign audit export`, `GET /v1/audit`):
//! the entries a filter selects, with the chain links between them shown by
//! digest, up to the checkpoint that covers the last one (the format:
//! [`crate::audit::export`]). Two passes over a read transaction: the first
//! finds the span and the events of the envelope, the second writes it.

use std::collections::HashSet;

use redb::{ReadableDatabase, ReadableTable};
use serde_json::{Value, json};

use super::{AUDIT, decode};
use crate::audit::chain::Entry;
use crate::audit::export::{FORMAT, Line};
use crate::store::StoreError;

/// Which entries an export shows in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// One envelope's trail (source, envelope id): its webhooks, state
    /// transitions, derived events and admin actions, and the Kafka and
    /// HTTP entries of those events.
    pub envelope: Option<(String, String)>,
    /// Entries at or after / at or before (ms since the epoch).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Entries up to this sequence only: a running gateway's export stops
    /// at the checkpoint it signed for it, so everything in it is covered.
    pub up_to: Option<u64>,
}

impl ExportFilter {
    /// The filter from its textual parts (`SOURCE/ENVELOPE_ID`, RFC 3339
    /// times), as `audit export` and `GET /v1/audit` take them; the error
    /// names the part (`since`, …) and the fix.
    pub fn parse(
        envelope: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<ExportFilter, String> {
        let time = |name: &str, v: Option<&str>| {
            v.map(|s| {
                crate::time::parse_rfc3339_ms(s).ok_or_else(|| {
                    format!("{name} `{s}` is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)")
                })
            })
            .transpose()
        };
        let envelope = envelope
            .map(|e| {
                e.split_once('/')
                    .filter(|(s, id)| !s.is_empty() && !id.is_empty())
                    .map(|(s, id)| (s.to_owned(), id.to_owned()))
                    .ok_or_else(|| {
                        format!(
                            "envelope `{e}`: give SOURCE/ENVELOPE_ID (the source id from the config, then the provider's envelope id)"
                        )
                    })
            })
            .transpose()?;
        Ok(ExportFilter {
            envelope,
            since_ms: time("since", since)?,
            until_ms: time("until", until)?,
            up_to: None,
        })
    }

    fn json(&self) -> Value {
        json!({
            "envelope": self.envelope.as_ref().map(|(s, e)| format!("{s}/{e}")),
            "since": self.since_ms.map(crate::time::format_ms),
            "until": self.until_ms.map(crate::time::format_ms),
        })
    }

    /// Whether the filter selects `e`; remembers the envelope's event
    /// sequences so their Kafka and HTTP entries follow.
    fn selects(&self, e: &Entry, events: &mut HashSet<u64>) -> bool {
        if self.since_ms.is_some_and(|s| e.at_ms < s) || self.until_ms.is_some_and(|u| e.at_ms > u)
        {
            return false;
        }
        let Some((source, id)) = &self.envelope else {
            return true;
        };
        let d = &e.data;
        if d["source"].as_str() == Some(source) && d["envelope_id"].as_str() == Some(id) {
            if let Some(seq) = d["event_seq"].as_u64() {
                events.insert(seq);
            }
            return true;
        }
        ["event_seq", "original_event_seq"]
            .iter()
            .any(|k| d[*k].as_u64().is_some_and(|s| events.contains(&s)))
    }
}

/// Writes the export of `filter` from `db` to `out`, line by line; returns
/// the number of entries shown in full. An export with nothing selected is
/// its header alone.
pub fn export(
    txn: &redb::ReadTransaction,
    filter: &ExportFilter,
    now_ms: i64,
    out: &mut dyn FnMut(&Line) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let t = txn.open_table(AUDIT)?;
    let entry = |row: Result<
        (redb::AccessGuard<u64>, redb::AccessGuard<&[u8]>),
        redb::StorageError,
    >|
     -> Result<Entry, StoreError> {
        let (k, v) = row?;
        decode(v.value()).map_err(|e| StoreError::Db(format!("audit entry {}: {e}", k.value())))
    };
    // Pass 1: the span.
    let mut events = HashSet::new();
    let (mut first, mut last) = (None, None);
    for row in t.range(..=filter.up_to.unwrap_or(u64::MAX))? {
        let e = entry(row)?;
        if filter.selects(&e, &mut events) {
            first.get_or_insert(e.seq);
            last = Some(e.seq);
        }
    }
    let mut cps = super::verify::checkpoints(txn).map_err(|e| StoreError::Db(e.to_string()))?;
    // Up to the checkpoint covering the last selected entry (or the head).
    let end = last.map(|l| {
        cps.range(l..).next().map_or_else(
            || t.last().ok().flatten().map_or(l, |(k, _)| k.value()),
            |(s, _)| *s,
        )
    });
    let io = |e: std::io::Error| StoreError::Db(format!("writing the export: {e}"));
    out(&Line::Header {
        format: FORMAT.into(),
        filter: filter.json(),
        first_seq: first,
        last_seq: end,
        exported_at: crate::time::format_ms(now_ms),
    })
    .map_err(io)?;
    let (Some(first), Some(end)) = (first, end) else {
        return Ok(0);
    };
    // Pass 2: the span, selected entries in full, the others as links.
    events.clear();
    let mut shown = 0;
    for row in t.range(first..=end)? {
        let e = entry(row)?;
        let line = if filter.selects(&e, &mut events) {
            shown += 1;
            Line::Entry(e)
        } else {
            Line::Link(e.link())
        };
        out(&line).map_err(io)?;
    }
    for (_, c) in std::mem::take(&mut cps)
        .into_iter()
        .filter(|(s, _)| (first..=end).contains(s))
    {
        out(&Line::Checkpoint(c)).map_err(io)?;
    }
    Ok(shown)
}

impl crate::store::Store {
    /// [`export`] from the running gateway's store, after signing a
    /// checkpoint of the head so the export is covered.
    pub async fn audit_export(
        &self,
        filter: ExportFilter,
        out: impl FnMut(&Line) -> std::io::Result<()> + Send + 'static,
    ) -> Result<u64, StoreError> {
        let mut filter = filter;
        filter.up_to = Some(self.audit_checkpoint().await?.unwrap_or(0));
        let now = self.inner.clock.now_ms();
        let db = self.inner.db.clone();
        let mut out = out;
        tokio::task::spawn_blocking(move || export(&db.begin_read()?, &filter, now, &mut out))
            .await
            .map_err(|e| StoreError::Db(e.to_string()))?
    }

    /// Signs a checkpoint of the audit chain's head, if entries follow the
    /// last one; returns the last sequence a checkpoint signs (`None`: none
    /// yet, the log is empty).
    pub async fn audit_checkpoint(&self) -> Result<Option<u64>, StoreError> {
        if !self.auditing() {
            return Ok(None);
        }
        self.call(|reply| crate::store::Command::Checkpoint { reply })
            .await
    }
}
