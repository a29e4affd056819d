//! `GET /v1/audit?envelope=SOURCE/ID&since=&until=`: an audit export
//! (JSON Lines, [`crate::audit::export`]) from the running gateway, after a
//! checkpoint of the head so everything in it is covered by a signature.
//! Streamed: the store is read in a blocking task that hands lines over a
//! bounded channel; a client that goes away stops the read.

use std::convert::Infallible;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;

use super::Shared;
use super::query::param;
use super::response::{self, AdminError};
use crate::store::AuditFilter;

/// Lines buffered between the store reader and the response at most.
const CHUNKS: usize = 16;
/// Bytes gathered into one chunk of the response.
const CHUNK_BYTES: usize = 64 * 1024;

pub async fn export(
    State(admin): Shared,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    if !admin.store.auditing() {
        return Err(AdminError::Conflict(
            "the audit log is off (audit.enabled = false)",
        ));
    }
    let q = query.as_deref();
    let filter = AuditFilter::parse(
        param(q, "envelope").as_deref(),
        param(q, "since").as_deref(),
        param(q, "until").as_deref(),
    )
    .map_err(AdminError::BadRequest)?;
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
