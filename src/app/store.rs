//! Opening the store as the gateway does: envelope tracking whose derived
//! events are routed by the running routes, and the audit log signed by the
//! configured key. The offline tools open it the same way to replay a
//! write-ahead log a crash left behind.

use std::sync::Arc;

use crate::route::Router;
use crate::store::{AuditSigning, Store, StoreError, Tracking};
use crate::time::Clock;

use super::Loaded;

/// The router the config's routes make (derived events, deliveries and
/// `route test` use it).
pub(crate) fn router(loaded: &Loaded, clock: Clock) -> Router {
    let cfg = &loaded.config;
    Router::new(
        cfg.routes.clone(),
        loaded.conditions.clone(),
        loaded
            .kafka
            .is_some()
            .then(|| cfg.kafka.default_topic.clone()),
        clock,
    )
}

/// Opens the store under `store.path` (replaying its write-ahead log, if a
/// crash left one).
pub(super) fn open(loaded: &Loaded, router: &Router, clock: Clock) -> Result<Store, StoreError> {
    let cfg = &loaded.config;
    let tracking = cfg.envelopes.enabled.then(|| {
        let r = router.clone();
        let route: crate::store::RouteFn = Arc::new(move |e| {
            let routed = r.route(e);
            (routed.topics, routed.endpoints)
        });
        Tracking {
            max_signers: cfg.envelopes.max_signers,
            max_history: cfg.envelopes.max_history,
            cache_envelopes: cfg.envelopes.cache_envelopes,
            retention_ms: cfg.envelopes.retention.as_millis().min(i64::MAX as u128) as i64,
            stream_buffer: cfg.envelopes.stream_buffer,
            route,
            policies: Arc::new(loaded.timer_policies.clone()),
        }
    });
    let audit = loaded.audit_key.clone().map(|key| AuditSigning {
        key,
        every: cfg.audit.checkpoint_every,
        retention_ms: cfg.audit.retention.as_millis().min(i64::MAX as u128) as i64,
    });
    Store::open_full(&cfg.store, clock, tracking, audit)
}

/// Opens the store in `dir` with `loaded`'s settings, which replays the
/// commits its write-ahead log holds beyond the database, and closes it
/// (a checkpoint). Returns how many it replayed. For a stopped gateway's
/// store only: a running gateway holds the database's lock.
pub fn replay(mut loaded: Loaded, dir: &std::path::Path) -> anyhow::Result<u64> {
    loaded.config.store.path = dir.to_path_buf();
    let router = router(&loaded, Clock::System);
    let store = open(&loaded, &router, Clock::System)?;
    let replayed = store.stats().wal_replayed.get();
    tokio::runtime::Builder::new_current_thread()
        .build()?
        .block_on(store.close());
    Ok(replayed)
}
