//! The accept loop shared by both listeners: a connection cap, a header read
//! timeout and a head size limit, and graceful shutdown (stop accepting, let
//! in-flight requests finish within the deadline).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::shutdown::Shutdown;

/// Connection-level limits of a listener.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
}

impl Limits {
    pub fn from_config(c: &ServerConfig) -> Limits {
        Limits {
            max_connections: c.max_connections,
            max_header_bytes: c.max_header_bytes,
            header_read_timeout: c.header_read_timeout,
        }
    }
}

/// Serves `handler` on `listener` until the shutdown, then lets requests in
/// flight finish until its deadline. A request whose handling panics is
/// answered with `on_panic()` (which counts it); the connection and the
/// listener carry on.
pub async fn serve<H, F, B, P>(
    listener: TcpListener,
    limits: Limits,
    handler: H,
    on_panic: P,
    mut shutdown: Shutdown,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    P: Fn() -> Response<B> + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.begun() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.begun() => break,
        };
        let _ = stream.set_nodelay(true);
        let (h, p) = (handler.clone(), on_panic.clone());
        let svc = service_fn(move |req| {
            let fut = AssertUnwindSafe(h(req, peer)).catch_unwind();
            let p = p.clone();
            async move {
                Ok::<_, Infallible>(fut.await.unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(panic = %what, "request handling panicked; answered 500");
                    p()
                }))
            }
        });
        // With upgrades (the admin stream's WebSocket); an upgraded
        // connection leaves hyper and is its handler's to end.
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = sd.begun() => {
                    // Finish the request in flight, take no further one.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let deadline = shutdown
        .deadline()
        .unwrap_or_else(tokio::time::Instant::now);
    // Every connection holds a permit until it ends: all permits back means
    // every connection is done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout_at(deadline, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown deadline passed with connections still open");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::shutdown::Trigger;

    /// A handler that panics costs its request a 500 (counted), not the
    /// connection, the listener or the process.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_connection_goes_on() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (trigger, shutdown) = Trigger::new(Duration::from_secs(1));
        let panics = Arc::new(AtomicUsize::new(0));
        let p = panics.clone();
        let limits = Limits {
            max_connections: 4,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(5),
        };
        let server = tokio::spawn(serve(
            l,
            limits,
            |req: Request<Incoming>, _| async move {
                assert_ne!(req.uri().path(), "/boom", "a bug");
                Response::new(Full::new(bytes::Bytes::from_static(b"fine")))
            },
            move || {
                p.fetch_add(1, Ordering::SeqCst);
                let mut r = Response::new(Full::new(bytes::Bytes::from_static(b"oops")));
                *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                r
            },
            shutdown,
        ));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let first = exchange(&mut s, "/boom").await;
        assert!(first.starts_with("HTTP/1.1 500"), "{first}");
        assert!(first.ends_with("oops"), "{first}");
        let second = exchange(&mut s, "/ok").await;
        assert!(second.starts_with("HTTP/1.1 200"), "{second}");
        assert_eq!(panics.load(Ordering::SeqCst), 1);
        trigger.begin();
        server.await.unwrap();
    }

    /// One GET on an open connection; the answer as text.
    async fn exchange(s: &mut tokio::net::TcpStream, path: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}
