//! The ceiling: a minimal hyper server that reads the body and answers 200, and
//! two variants: one that also verifies one Standard Webhooks HMAC, and one
//! that answers only once the body is in a log file and synced (`--sync-dir`:
//! a group commit, the least any store that syncs before it answers must do).
//! Same runtime, same HTTP stack as countersign, nothing else.

use std::convert::Infallible;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Verifies `webhook-signature` over `id.timestamp.body` with one key.
fn verify(key: &[u8], req: &http::request::Parts, body: &[u8]) -> bool {
    let h = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(h("webhook-id").as_bytes());
    mac.update(b".");
    mac.update(h("webhook-timestamp").as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    h("webhook-signature")
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| {
            base64::engine::general_purpose::STANDARD
                .decode(sig)
                .is_ok_and(|got| bool::from(got.as_slice().ct_eq(expected.as_slice())))
        })
}

/// How many requests one group commit of the synced baseline takes at most.
const SYNC_MAX_BATCH: usize = 1024;
/// The synced baseline's log is written over from its start past this size
/// (like the store's log after a checkpoint: no file growth, so `fdatasync`
/// syncs data only once the file has reached it).
const SYNC_LOG_BYTES: u64 = 64 << 20;

/// One request waiting for its group commit: its body and whom to tell.
pub type Waiter = (Bytes, oneshot::Sender<()>);

/// Starts the group commit thread of the synced baseline: it takes every
/// request queued (up to [`SYNC_MAX_BATCH`]), appends their bodies to
/// `dir/baseline-sync.log` in one write, syncs it (`fdatasync`) and only then
/// lets them be answered. No index, no database, no checkpoints: the floor
/// under countersign's durable path on this disk.
pub fn sync_log(dir: &Path) -> anyhow::Result<mpsc::Sender<Waiter>> {
    let path = dir.join("baseline-sync.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    // Allocated up front, so a sync never has to write the file's size.
    let zeros = vec![0u8; 1 << 20];
    for at in (0..SYNC_LOG_BYTES).step_by(zeros.len()) {
        file.write_all_at(&zeros, at)?;
    }
    file.sync_all()?;
    let (tx, mut rx) = mpsc::channel::<Waiter>(4096);
    std::thread::Builder::new()
        .name("baseline-sync".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(SYNC_MAX_BATCH);
            let mut buf = Vec::new();
            let mut at = 0u64;
            while let Some(first) = rx.blocking_recv() {
                batch.push(first);
                while batch.len() < SYNC_MAX_BATCH {
                    match rx.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                buf.clear();
                for (body, _) in &batch {
                    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
                    buf.extend_from_slice(body);
                }
                if at + buf.len() as u64 > SYNC_LOG_BYTES {
                    at = 0;
                }
                if let Err(e) = file.write_all_at(&buf, at).and_then(|()| file.sync_data()) {
                    eprintln!("baseline-sync: {e}");
                    std::process::exit(1);
                }
                at += buf.len() as u64;
                for (_, done) in batch.drain(..) {
                    let _ = done.send(());
                }
            }
        })?;
    Ok(tx)
}

/// Serves until the listener fails: verifies with `key` if given, and waits
/// for `sync`'s group commit before answering if given.
pub async fn serve(
    listener: TcpListener,
    key: Option<Vec<u8>>,
    sync: Option<mpsc::Sender<Waiter>>,
) -> anyhow::Result<()> {
    let key = std::sync::Arc::new(key);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let key = key.clone();
        let sync = sync.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let key = key.clone();
                let sync = sync.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let ok = key
                        .as_ref()
                        .as_ref()
                        .is_none_or(|k| verify(k, &parts, &body));
                    let mut resp =
                        Response::new(Full::new(Bytes::from_static(b"{\"status\":\"accepted\"}")));
                    if !ok {
                        *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
                    } else if let Some(sync) = sync {
                        let (done, synced) = oneshot::channel();
                        let logged = sync.send((body, done)).await.is_ok() && synced.await.is_ok();
                        if !logged {
                            *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
