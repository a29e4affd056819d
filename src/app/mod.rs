//! Wiring: `run(config, listeners, shutdown)`, used by `main` and by the tests.
//!
//! Start: open the store → metrics → build the pipeline → serve the public and
//! admin listeners, start the sinks → mark ready. Stop (when `shutdown`
//! resolves): mark unready → stop accepting, drain in-flight requests and let
//! the sinks settle what they have in flight, all by one deadline
//! (`server.shutdown_timeout`) → let the store writer finish its queue and
//! exit → close the admin listener (it answers `/readyz` 503 until then).
//!
//! The admin listener runs on a runtime of its own ([`AdminRuntime`],
//! `server.admin_threads`), everything else on the caller's.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::ServerConfig;
mod load;
mod screen;
mod store;

pub use load::{Loaded, build, load, load_str};
pub use store::replay as replay_store;
pub(crate) use store::router;

use crate::admin;
use crate::ingress::ingest;
use crate::ingress::limit::Ingress;
use crate::listener;
use crate::metrics::Metrics;
use crate::metrics::webhook_task;
use crate::pipeline::Pipeline;
use crate::shutdown::{Shutdown, Trigger};
use crate::sink::kafka::KafkaSink;
use crate::sink::webhook::{EndpointStatus, Worker};
use crate::store::Store;
use crate::supervise::supervise;
use crate::time::Clock;

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

/// A long-running task, boxed so tasks of different kinds share one supervisor.
type Task = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the gateway until `shutdown` resolves, then drains and returns.
pub async fn run(
    loaded: Loaded,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_clock(loaded, listeners, shutdown, Clock::System).await
}

/// [`run`] with the clock every component reads: ingest stamps `received_at`
/// and checks webhook timestamps by it, the store stamps its records, the
/// sweeper expires by it, the sinks schedule retries, pauses, breaker
/// cool-downs and rate limits by it (tests pass a manual one).
pub async fn run_with_clock(
    loaded: Loaded,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    clock: Clock,
) -> anyhow::Result<()> {
    let router = store::router(&loaded, clock.clone());
    let (loaded, store) = {
        let (store_clock, router) = (clock.clone(), router.clone());
        tokio::task::spawn_blocking(move || {
            let opened = store::open(&loaded, &router, store_clock);
            (loaded, opened)
        })
        .await?
    };
    let cfg = loaded.config;
    let kafka_on = loaded.kafka.is_some();
    let store = store.with_context(|| {
        format!(
            "cannot open the store at store.path = {}",
            cfg.store.path.display()
        )
    })?;
    for w in &loaded.warnings {
        tracing::warn!(key = %w.key, problem = %w.problem, fix = %w.fix, "configuration warning");
    }
    let (public_addr, admin_addr) = listeners.addrs()?;
    let sources: Vec<&str> = loaded.sources.iter().map(|s| s.id.as_str()).collect();
    tracing::info!(public = %public_addr, admin = %admin_addr, ?sources, "listening");

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
    let configured: Vec<String> = endpoint_ids.iter().map(|s| s.to_string()).collect();
    let metrics = Arc::new(Metrics::new(&sources, &endpoint_ids, &topics, kafka_on));
    metrics.register(Box::new(store.stats().commit_seconds.clone()));
    metrics.register(Box::new(store.stats().commit_batch.clone()));
    metrics.register(Box::new(store.stats().errors.clone()));
    metrics.register(Box::new(store.stats().derived_events.clone()));
    metrics.register(Box::new(store.stats().anomalies.clone()));
    metrics.register(Box::new(store.stats().quarantined.clone()));
    for s in &sources {
        // Every source's series exists from the start.
        store.stats().quarantined.with_label_values(&[*s]);
    }
    metrics.register(Box::new(store.stats().changes.clone()));
    metrics.register(Box::new(store.stats().wal_checkpoints.clone()));
    metrics.register(Box::new(store.stats().wal_checkpoint_seconds.clone()));
    metrics.register(Box::new(store.stats().wal_replayed.clone()));
    metrics.register(Box::new(router.errors().clone()));
    if cfg.audit.enabled {
        metrics.register(Box::new(store.stats().audit_entries.clone()));
        metrics.register(Box::new(store.stats().audit_checkpoints.clone()));
        metrics.register(Box::new(store.stats().audit_pruned.clone()));
    }
    if cfg.envelopes.enabled {
        metrics.register(Box::new(store.stats().timers_pending.clone()));
        metrics.register(Box::new(store.stats().timers_fired.clone()));
        metrics.register(Box::new(store.stats().timer_lateness.clone()));
    }
    let source_providers = loaded
        .sources
        .iter()
        .map(|s| (s.id.clone(), s.provider.as_str().to_owned()))
        .collect();
    let limits = Ingress::new(&cfg.server, clock.clone());
    let pipeline = Arc::new(Pipeline::new(
        loaded.sources,
        loaded.screens.sources,
        store.clone(),
        router.clone(),
        clock.clone(),
    ));
    let ready = Arc::new(AtomicBool::new(false));
    // One shutdown for the public listener, the sinks and the housekeeping, by
    // one deadline; the admin listener has its own, begun once the store is
    // closed (it answers /readyz 503 until then).
    let (trigger, stop) = Trigger::new(cfg.server.shutdown_timeout);
    let (admin_trigger, admin_shutdown) = Trigger::new(cfg.server.shutdown_timeout);
    let conn_limits = listener::Limits::from_config(&cfg.server);

    let ing = Arc::new(ingest::Ingest {
        pipeline,
        body_read_timeout: cfg.server.body_read_timeout,
        metrics: metrics.clone(),
        limits,
        clock: clock.clone(),
    });
    // Every long-running task runs supervised: started again after a panic,
    // counted in countersign_task_restarts_total{task}.
    let restarts = metrics.task_restarts.clone();
    let supervised = |task: String, make: Box<dyn FnMut() -> Task + Send>| {
        let restarts = restarts.with_label_values(&[task.as_str()]);
        tokio::spawn(supervise(task, restarts, stop.clone(), make))
    };
    let public = tokio::spawn(listener::serve(
        listeners.public,
        conn_limits.clone(),
        move |req, peer| ingest::handle(ing.clone(), req, peer),
        {
            let panics = metrics.request_panics.with_label_values(&["public"]);
            move || {
                panics.inc();
                crate::ingress::response::internal_error()
            }
        },
        stop.clone(),
    ));
    let mut kafka_status = None;
    let mut sink_tasks = Vec::new();
    let audit_client = loaded.kafka.clone();
    if let Some(client) = loaded.kafka {
        let sink = KafkaSink::new(
            cfg.kafka.clone(),
            client,
            store.clone(),
            metrics.clone(),
            clock.clone(),
        )
        .context("cannot create the kafka producer (kafka.producer)")?
        .with_views(loaded.screens.topics);
        kafka_status = Some(sink.status());
        let (s, st) = (sink.clone(), stop.clone());
        sink_tasks.push(supervised(
            "kafka_health".into(),
            Box::new(move || Box::pin(s.health(std::time::Duration::from_secs(5), st.clone()))),
        ));
        let st = stop.clone();
        sink_tasks.push(supervised(
            "kafka_sink".into(),
            Box::new(move || Box::pin(sink.clone().run(st.clone()))),
        ));
        tracing::info!(
            brokers = cfg.kafka.brokers.as_deref().unwrap_or(""),
            "kafka sink started"
        );
    }
    if let (Some(topic), Some(client)) = (&cfg.audit.kafka_topic, audit_client.as_ref())
        && cfg.audit.enabled
    {
        let lag = prometheus::IntGauge::new(
            "audit_kafka_lag",
            "Audit entries not yet copied to audit.kafka_topic.",
        )
        .expect("valid gauge");
        metrics.register(Box::new(lag.clone()));
        let copy = Arc::new(
            crate::sink::kafka::audit::AuditCopy::new(
                client,
                topic.clone(),
                store.clone(),
                (cfg.kafka.retry_backoff, cfg.kafka.retry_backoff_max),
                lag,
            )
            .context("cannot create the producer of audit.kafka_topic")?,
        );
        let st = stop.clone();
        sink_tasks.push(supervised(
            "audit_kafka_copy".into(),
            Box::new(move || Box::pin(copy.clone().run(st.clone()))),
        ));
    }
    if cfg.audit.enabled {
        let (store, every, st) = (store.clone(), cfg.audit.checkpoint_interval, stop.clone());
        sink_tasks.push(supervised(
            "audit_checkpoints".into(),
            Box::new(move || Box::pin(checkpoint_loop(store.clone(), every, st.clone()))),
        ));
    }
    let mut endpoints = Vec::new();
    for ep in loaded.endpoints {
        let ep = Arc::new(ep);
        let status = Arc::new(EndpointStatus::new(&metrics, &ep.id));
        endpoints.push((ep.clone(), status.clone()));
        let (store, clock, metrics, st) =
            (store.clone(), clock.clone(), metrics.clone(), stop.clone());
        sink_tasks.push(supervised(
            webhook_task(&ep.id),
            Box::new(move || {
                let w = Worker::new(
                    ep.clone(),
                    store.clone(),
                    clock.clone(),
                    &metrics,
                    status.clone(),
                );
                Box::pin(w.run(st.clone()))
            }),
        ));
    }
    if !endpoints.is_empty() {
        let ids: Vec<&str> = endpoints.iter().map(|(e, _)| e.id.as_str()).collect();
        tracing::info!(endpoints = ?ids, "http sink started");
    }
    let admin_panics = metrics.request_panics.with_label_values(&["admin"]);
    // The admin listener, the panel's sampler and the stream's pacer run on a
    // runtime of their own (server.admin_threads): admin work queues behind
    // admin work, never in front of a webhook.
    let admin_rt = AdminRuntime::start(cfg.server.admin_threads)?;
    let streams = admin::stream::Streams::new(&cfg.envelopes, stop.clone());
    {
        let _rt = admin_rt.enter();
        streams.start(&store);
    }
    metrics.register(Box::new(streams.subscribers.clone()));
    metrics.register(Box::new(streams.disconnects.clone()));
    let adm = Arc::new(admin::Admin {
        store: store.clone(),
        ready: ready.clone(),
        kafka: kafka_status,
        endpoints,
        metrics,
        clock: clock.clone(),
        guard: loaded.admin,
        max_response_bytes: cfg.server.admin_max_response_bytes,
        sources: source_providers,
        envelopes: cfg.envelopes.clone(),
        streams,
        router,
        history: Default::default(),
        audit_key: loaded.audit_key.as_ref().map(|k| k.verifying_key()),
    });
    let sampler = admin_rt.spawn(admin::overview::sample_until(adm.clone(), stop.clone()));
    // The bound listener moves to the admin runtime's I/O driver.
    let admin_listener = {
        let _rt = admin_rt.enter();
        TcpListener::from_std(listeners.admin.into_std()?)
            .context("cannot move the admin listener to its runtime")?
    };
    let admin_task = admin_rt.spawn(listener::serve(
        admin_listener,
        conn_limits,
        admin::handler(admin::router(adm)),
        move || {
            admin_panics.inc();
            admin::response::internal_error()
        },
        admin_shutdown,
    ));
    let sweeper = {
        let (store, interval, clock, st) = (
            store.clone(),
            cfg.store.sweep_interval,
            clock.clone(),
            stop.clone(),
        );
        supervised(
            "sweeper".into(),
            Box::new(move || {
                Box::pin(sweep_loop(
                    store.clone(),
                    interval,
                    clock.clone(),
                    st.clone(),
                ))
            }),
        )
    };
    let timers = cfg.envelopes.enabled.then(|| {
        let (store, interval, batch, clock, st) = (
            store.clone(),
            cfg.envelopes.timer_interval,
            cfg.envelopes.timer_batch,
            clock.clone(),
            stop.clone(),
        );
        supervised(
            "timers".into(),
            Box::new(move || {
                Box::pin(timer_loop(
                    store.clone(),
                    interval,
                    batch,
                    clock.clone(),
                    st.clone(),
                ))
            }),
        )
    });
    report_leftovers(&store, &configured, kafka_on).await;
    ready.store(true, Ordering::SeqCst);

    // A store whose writes fail (a full disk, a failed fsync) cannot recover
    // in this process (redb refuses every later transaction): answer 503
    // (readiness is off at once), drain, and exit non-zero so the
    // orchestrator starts the gateway again on the same files. Nothing
    // acknowledged is lost; nothing unacknowledged was claimed.
    let store_failed = tokio::select! {
        _ = shutdown => None,
        cause = store.failed() => {
            tracing::error!(cause, "the store failed; shutting down to start again");
            Some(cause)
        }
    };
    tracing::info!(
        deadline = ?cfg.server.shutdown_timeout,
        "shutting down: unready, refusing new connections, draining in-flight requests and deliveries"
    );
    ready.store(false, Ordering::SeqCst);
    // One deadline for everything: requests in flight finish while the sinks
    // settle what they have in flight and record it; whatever is still
    // unsettled at the deadline stays queued on disk for the next start.
    trigger.begin();
    let _ = public.await;
    let _ = sweeper.await;
    let _ = sampler.await;
    if let Some(t) = timers {
        let _ = t.await;
    }
    for t in sink_tasks {
        let _ = t.await;
    }
    store.close().await;
    admin_trigger.begin();
    let _ = admin_task.await;
    if let Some(cause) = store_failed {
        anyhow::bail!(
            "the store failed ({cause}); exiting so the gateway is started again (free disk space if it is full)"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// The admin listener's runtime (`server.admin_threads` workers, threads
/// named `admin`). Shut down without waiting when dropped, so dropping it
/// inside the main runtime (at the end of `run`, or on an early error) never
/// blocks.
struct AdminRuntime(Option<tokio::runtime::Runtime>);

impl AdminRuntime {
    fn start(threads: usize) -> anyhow::Result<AdminRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("admin")
            .enable_all()
            .build()
            .context("cannot start the admin listener's runtime")?;
        Ok(AdminRuntime(Some(rt)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("running until dropped").handle()
    }

    fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle().enter()
    }

    fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(f)
    }
}

impl Drop for AdminRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Says what the store holds for destinations the config no longer has:
/// deliveries of removed endpoints (purge them with `DELETE
/// /v1/endpoints/{id}/deliveries` or `countersign dlq purge`), and outbox
/// entries while Kafka is off (also in `/readyz`).
async fn report_leftovers(store: &Store, endpoints: &[String], kafka_on: bool) {
    let (s, eps) = (store.clone(), endpoints.to_vec());
    let found = tokio::task::spawn_blocking(move || {
        let ids: Vec<&str> = eps.iter().map(String::as_str).collect();
        let unknown = s.unknown_endpoints(&ids);
        let outbox = if kafka_on { Ok(0) } else { s.pending_count() };
        (unknown, outbox)
    })
    .await;
    let Ok((unknown, outbox)) = found else { return };
    for (endpoint, waiting, dead) in unknown.unwrap_or_default() {
        tracing::warn!(
            endpoint,
            waiting,
            dead_letters = dead,
            "the store holds deliveries of an endpoint that is no longer configured; they are kept (and keep their events) until purged: countersign dlq purge --endpoint ID"
        );
    }
    if let Ok(n) = outbox
        && n > 0
    {
        tracing::warn!(
            pending = n,
            "Kafka is off but the outbox holds messages from when it was on; they are kept (and keep their events) until Kafka is configured again"
        );
    }
}

/// Fires envelope timers as they fall due: looks at the soonest due time
/// (a read), sleeps until then or `interval` (new timers may come sooner),
/// and fires in batches of `batch` while timers are due. A timer due while
/// the gateway was down fires at the first look after start.
async fn timer_loop(
    store: Store,
    interval: std::time::Duration,
    batch: usize,
    clock: Clock,
    mut shutdown: Shutdown,
) {
    let step = interval.as_millis().clamp(1, i64::MAX as u128) as i64;
    loop {
        let now = clock.now_ms();
        let next = match store.next_timer_due() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the envelope timers");
                None
            }
        };
        if next.is_some_and(|due| due <= now) {
            match store.fire_timers(batch).await {
                Ok(n) if n > 0 => {
                    tracing::debug!(fired = n, "envelope timers fired");
                    if shutdown.deadline().is_some() {
                        return;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "firing envelope timers failed"),
            }
        }
        let wake = next
            .filter(|d| *d > now)
            .map_or(now + step, |d| d.min(now + step));
        tokio::select! {
            _ = clock.sleep_until(wake) => {}
            _ = shutdown.begun() => return,
        }
    }
}

/// Signs a checkpoint of the audit log every `every` (when entries came in
/// since the last one); the writer signs the last one at shutdown.
async fn checkpoint_loop(store: Store, every: std::time::Duration, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.begun() => return,
        }
        if let Err(e) = store.audit_checkpoint().await {
            tracing::warn!(error = %e, "signing an audit checkpoint failed");
        }
    }
}

/// Sweeps expired dedup keys and old events every `interval`; repeats at once
/// while a sweep still found a full batch.
async fn sweep_loop(
    store: Store,
    interval: std::time::Duration,
    clock: Clock,
    mut shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.begun() => return,
        }
        loop {
            match store.sweep(clock.now_ms()).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "swept store"),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "store sweep failed");
                    break;
                }
            }
            if shutdown.deadline().is_some() {
                return;
            }
        }
    }
}
