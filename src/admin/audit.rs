//! `GET /v1/audit?envelope=SOURCE/ID&since=&until=`: an audit export
//! (JSON Lines, [`crate::audit::export`]) from the running gateway, after a
//! checkpoint of the head so everything in it is covered by a signature.
//! Streamed: the store is read in a blocking task that hands lines over a
//! bounded channel; a client that goes away stops the read.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::Shared;
use super::api::AuditVerified;
use super::query::param;
use super::response::{self, AdminError};
use crate::store::AuditFilter;

/// Lines buffered between the store reader and the response at most.
const CHUNKS: usize = 16;
/// Bytes gathered into one chunk of the response.
const CHUNK_BYTES: usize = 64 * 1024;

/// The export filter of `envelope=`, `since=` and `until=`; 409 when the
/// audit log is off.
fn filter(admin: &super::Admin, q: Option<&str>) -> Result<AuditFilter, AdminError> {
    if !admin.store.auditing() {
        return Err(AdminError::Conflict(
            "the audit log is off (audit.enabled = false)",
        ));
    }
    AuditFilter::parse(
        param(q, "envelope").as_deref(),
        param(q, "since").as_deref(),
        param(q, "until").as_deref(),
    )
    .map_err(AdminError::BadRequest)
}

pub async fn export(
    State(admin): Shared,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let filter = filter(&admin, query.as_deref())?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS);
    let store = admin.store.clone();
    tokio::spawn(async move {
        let mut chunks = Chunks {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        let done = store
            .audit_export(filter, move |line| {
                serde_json::to_writer(&mut chunks.buf, line)?;
                chunks.buf.push(b'\n');
                if chunks.buf.len() >= CHUNK_BYTES {
                    chunks.flush()?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "audit export stopped");
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok(response::ndjson(axum::body::Body::from_stream(body)))
}

/// The response's chunks, handed over as they fill; the rest when the
/// export is done (dropped in the reading task).
struct Chunks {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Chunks {
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `GET /v1/audit/verify?envelope=SOURCE/ID&since=&until=`: the export of
/// that filter, verified here with the gateway's own public key, and its
/// entries (the status panel's "verify"). At most
/// `server.admin_max_response_bytes` of export (413 beyond: export it and
/// run `countersign audit verify` instead).
pub async fn verify(
    State(admin): Shared,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let filter = filter(&admin, query.as_deref())?;
    let max = admin.max_response_bytes;
    // (lines, their bytes); the bytes pass `max` only when it was too long.
    let lines = Arc::new(Mutex::new((Vec::<String>::new(), 0usize)));
    let sink = lines.clone();
    let done = admin
        .store
        .audit_export(filter, move |line| {
            let text = serde_json::to_string(line)?;
            let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
            l.1 += text.len() + 1;
            if l.1 > max {
                return Err(std::io::Error::other("over the response limit"));
            }
            l.0.push(text);
            Ok(())
        })
        .await;
    let (lines, bytes) = std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner()));
    if bytes > max {
        return Err(AdminError::TooLarge(max));
    }
    done?;
    let entries = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "entry")
        .collect();
    let keys: Vec<_> = admin.audit_key.iter().copied().collect();
    let verdict = crate::audit::export::verify_lines(lines.into_iter().map(Ok), &keys);
    Ok(response::ok(match verdict {
        Ok(r) => AuditVerified {
            verified: true,
            failure: None,
            links: r.links,
            checkpoints: r.checkpoints as u64,
            signed: r.signed,
            unsigned_tail: r.unsigned_tail,
            entries,
        },
        Err(f) => AuditVerified {
            verified: false,
            failure: Some(f.to_string()),
            links: 0,
            checkpoints: 0,
            signed: false,
            unsigned_tail: 0,
            entries,
        },
    }))
}
