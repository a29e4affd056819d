//! Wiring: `run(config, listeners, shutdown)`, used by `main` and by the tests.
//!
//! Start: open the store → metrics → build the pipeline → serve the public and
//! admin listeners, start the sinks → mark ready. Stop (when `shutdown`
//! resolves): mark unready → stop accepting, drain in-flight requests and let
//! the sinks settle what they have in flight, all by one deadline
//! (`server.shutdown_timeout`) → let the store writer finish its queue and
//! exit → close the admin listener (it answers `/readyz` 503 until then).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServerConfig;
mod load;

pub use load::{Loaded, build, load, load_str};

use crate::http::limit::Ingress;
use crate::http::{admin, ingest, server};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::route::Router;
use crate::sink::clock::Clock;
use crate::sink::http::Worker;
use crate::sink::kafka::KafkaSink;
use crate::store::Store;

/// The two bound listeners (bound by the caller, so tests can use port 0).
pub struct Listeners {
    pub public: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(cfg: &ServerConfig) -> anyhow::Result<Listeners> {
        let public = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on server.listen = {}", cfg.listen))?;
        let admin = TcpListener::bind(cfg.admin_listen).await.with_context(|| {
            format!(
                "cannot listen on server.admin_listen = {}",
                cfg.admin_listen
            )
        })?;
        Ok(Listeners { public, admin })
    }

    pub fn addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.public.local_addr()?, self.admin.local_addr()?))
    }
}

/// Runs the gateway until `shutdown` resolves, then drains and returns.
pub async fn run(
    loaded: Loaded,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_clock(loaded, listeners, shutdown, Clock::System).await
}

/// [`run`] with the clock the HTTP sink schedules retries, breaker cool-downs and
/// rate limits by (tests pass a manual one).
pub async fn run_with_clock(
    loaded: Loaded,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    clock: Clock,
) -> anyhow::Result<()> {
    let cfg = loaded.config;
    let store_cfg = cfg.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&store_cfg))
        .await?
        .with_context(|| {
            format!(
                "cannot open the store at store.path = {}",
                cfg.store.path.display()
            )
        })?;
    let (public_addr, admin_addr) = listeners.addrs()?;
    let sources: Vec<&str> = loaded.sources.iter().map(|s| s.id.as_str()).collect();
    tracing::info!(public = %public_addr, admin = %admin_addr, ?sources, "listening");

    let kafka_on = loaded.kafka.is_some();
    let router = Router::new(
        cfg.routes.clone(),
        kafka_on.then(|| cfg.kafka.default_topic.clone()),
    );
    let mut topics: Vec<&str> = cfg
        .routes
        .iter()
        .flat_map(|r| r.topics.iter().map(String::as_str))
        .chain([cfg.kafka.default_topic.as_str()])
        .chain(cfg.kafka.dlq_topic.as_deref())
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let endpoint_ids: Vec<&str> = loaded.endpoints.iter().map(|e| e.id.as_str()).collect();
    let metrics = Arc::new(Metrics::new(&sources, &endpoint_ids, &topics, kafka_on));
    metrics.register(Box::new(store.stats().commit_seconds.clone()));
    metrics.register(Box::new(store.stats().commit_batch.clone()));
    let limits = Ingress::new(&cfg.server);
    let pipeline = Arc::new(Pipeline::new(loaded.sources, store.clone(), router));
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let conn_limits = server::Limits::from_config(&cfg.server);

    let ing = Arc::new(ingest::Ingest {
        pipeline,
        body_read_timeout: cfg.server.body_read_timeout,
        metrics: metrics.clone(),
        limits,
    });
    let tidy = tokio::spawn(
        ing.clone()
            .tidy(std::time::Duration::from_secs(60), stop_rx.clone()),
    );
    let public = tokio::spawn(server::serve(
        listeners.public,
        conn_limits.clone(),
        move |req, peer| ingest::handle(ing.clone(), req, peer),
        stop_rx.clone(),
    ));
    let (sink_stop_tx, sink_stop_rx) = watch::channel(false);
    let mut kafka_status = None;
    let mut sink_tasks = Vec::new();
    if let Some(client) = loaded.kafka {
        let sink = KafkaSink::new(cfg.kafka.clone(), client, store.clone(), metrics.clone())
            .context("cannot create the kafka producer (kafka.producer)")?;
        kafka_status = Some(sink.status());
        sink_tasks.push(sink.spawn_health(std::time::Duration::from_secs(5), sink_stop_rx.clone()));
        sink_tasks.push(tokio::spawn(
            sink.run(sink_stop_rx.clone(), cfg.server.shutdown_timeout),
        ));
        tracing::info!(
            brokers = cfg.kafka.brokers.as_deref().unwrap_or(""),
            "kafka sink started"
        );
    }
    let mut endpoints = Vec::new();
    for ep in loaded.endpoints {
        let worker = Worker::new(ep, store.clone(), clock.clone(), &metrics);
        endpoints.push((worker.endpoint(), worker.status()));
        sink_tasks.push(tokio::spawn(
            worker.run(sink_stop_rx.clone(), cfg.server.shutdown_timeout),
        ));
    }
    if !endpoints.is_empty() {
        let ids: Vec<&str> = endpoints.iter().map(|(e, _)| e.id.as_str()).collect();
        tracing::info!(endpoints = ?ids, "http sink started");
    }
    let adm = Arc::new(admin::Admin {
        store: store.clone(),
        ready: ready.clone(),
        kafka: kafka_status,
        endpoints,
        metrics,
    });
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let admin_task = tokio::spawn(server::serve(
        listeners.admin,
        conn_limits,
        move |req, _| admin::handle(adm.clone(), req),
        admin_stop_rx,
    ));
    let sweeper = tokio::spawn(sweep_loop(store.clone(), cfg.store.sweep_interval, stop_rx));
    ready.store(true, Ordering::SeqCst);

    shutdown.await;
    tracing::info!(
        deadline = ?cfg.server.shutdown_timeout,
        "shutting down: unready, refusing new connections, draining in-flight requests and deliveries"
    );
    ready.store(false, Ordering::SeqCst);
    // One deadline for everything: requests in flight finish while the sinks
    // settle what they have in flight and record it; whatever is still
    // unsettled at the deadline stays queued on disk for the next start.
    let _ = stop_tx.send(true);
    let _ = sink_stop_tx.send(true);
    let _ = public.await;
    let _ = sweeper.await;
    let _ = tidy.await;
    for t in sink_tasks {
        let _ = t.await;
    }
    store.close().await;
    let _ = admin_stop_tx.send(true);
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Sweeps expired dedup keys and old events every `interval`; repeats at once
/// while a sweep still found a full batch.
async fn sweep_loop(store: Store, interval: std::time::Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        loop {
            match store.sweep(crate::time::now_ms()).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "swept store"),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "store sweep failed");
                    break;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
