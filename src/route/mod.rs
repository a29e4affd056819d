//! Which Kafka topics and HTTP endpoints an event goes to. Routes match on
//! source, provider, kind and provider event type, and on an optional CEL
//! condition (`when`, see [`crate::condition`]); an event takes the topics
//! and endpoints of every route it matches, and `kafka.default_topic` when no
//! matching route names a topic. There is no default endpoint.
//!
//! Routing happens before the commit, so an accepted event's destinations
//! are durable with it. A condition that reads `envelope` needs the
//! envelope as of after the event, which only the store's writer knows: for
//! a provider event of a tracked envelope those routes are handed to the
//! writer as a [`Deferred`] and evaluated inside the accepting transaction.
//!
//! An evaluation error makes its route not match, is counted per route
//! (`countersign_route_errors_total{route}`) and logged at most once a
//! minute per route; it never fails a webhook.

mod explain;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::{IntCounterVec, Opts};

use crate::condition::{Condition, Input};
use crate::config::{Match, RouteConfig};
use crate::event::{EnvelopeBlock, SignatureEvent};
use crate::time::Clock;

pub use explain::explain;

/// How often one route's evaluation errors are logged, at most.
const LOG_EVERY_MS: i64 = 60_000;

/// Whether `m` matches `e`.
trait Matches {
    fn matches(&self, e: &SignatureEvent) -> bool;
}

impl Matches for Match {
    fn matches(&self, e: &SignatureEvent) -> bool {
        fn any<T: PartialEq>(list: &[T], v: &T) -> bool {
            list.is_empty() || list.contains(v)
        }
        any(&self.sources, &e.source)
            && (self.providers.is_empty()
                || self.providers.iter().any(|p| p.as_str() == e.provider))
            && any(&self.kinds, &e.kind)
            && any(&self.event_types, &e.provider_event_type)
    }
}

/// One configured route, its condition compiled.
struct Route {
    cfg: RouteConfig,
    label: String,
    cond: Option<Arc<Condition>>,
    /// When its last evaluation error was logged (ms; `i64::MIN`: never).
    logged_ms: AtomicI64,
}

impl Route {
    fn defers(&self) -> bool {
        self.cond.as_ref().is_some_and(|c| c.uses_envelope)
    }
}

struct Inner {
    routes: Vec<Route>,
    /// `None` when Kafka is off: no event gets a topic.
    default_topic: Option<String>,
    /// `route`: evaluation errors.
    errors: IntCounterVec,
    clock: Clock,
}

/// The routes' conditions (`routes[i].when`), compiled once at load, one per
/// route (`None`: no `when`, or it did not compile). Reports what is wrong
/// with them: syntax, unknown variables, a result that is not a bool,
/// `envelope` without envelope tracking.
pub fn compile(config: &crate::config::Config, r: &mut crate::config::Report) -> Conditions {
    let mut out = Vec::with_capacity(config.routes.len());
    for (i, route) in config.routes.iter().enumerate() {
        let Some(when) = &route.when else {
            out.push(None);
            continue;
        };
        match Condition::compile(when) {
            Err(e) => r.add(
                format!("routes[{i}].when"),
                format!("line {}, column {}: {}", e.line, e.column, e.problem),
                e.fix,
            ),
            Ok(c) if c.uses_envelope && !config.envelopes.enabled => r.add(
                format!("routes[{i}].when"),
                "uses `envelope`, but envelope tracking is off",
                "set [envelopes] enabled = true, or leave `envelope` out of the condition",
            ),
            Ok(c) => {
                out.push(Some(Arc::new(c)));
                continue;
            }
        }
        out.push(None);
    }
    out
}

/// Compiled conditions, one per route (see [`compile`]).
pub type Conditions = Vec<Option<Arc<Condition>>>;

/// An event's destinations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    pub topics: Vec<String>,
    pub endpoints: Vec<String>,
}

impl Routed {
    /// Adds the destinations of `r`, each name once, in order.
    fn add(&mut self, r: &RouteConfig) {
        for (from, to) in [
            (&r.topics, &mut self.topics),
            (&r.endpoints, &mut self.endpoints),
        ] {
            for name in from {
                if !to.contains(name) {
                    to.push(name.clone());
                }
            }
        }
    }
}

/// The routing table, built once from config.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.inner.routes.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// The routing table of `routes` with their `conditions` (compiled at
    /// load by [`compile`], in the same order).
    pub fn new(
        routes: Vec<RouteConfig>,
        conditions: Conditions,
        default_topic: Option<String>,
        clock: Clock,
    ) -> Router {
        let routes = (routes.into_iter().zip(conditions).enumerate())
            .map(|(i, (cfg, cond))| Route {
                label: cfg.label(i),
                cfg,
                cond,
                logged_ms: AtomicI64::new(i64::MIN),
            })
            .collect();
        let errors = IntCounterVec::new(
            Opts::new(
                "route_errors_total",
                "Route conditions (`when`) whose evaluation failed; the route did not match",
            ),
            &["route"],
        )
        .expect("valid metric");
        Router {
            inner: Arc::new(Inner {
                routes,
                default_topic,
                errors,
                clock,
            }),
        }
    }

    /// `countersign_route_errors_total`, to register with the gateway's metrics.
    pub fn errors(&self) -> &IntCounterVec {
        &self.inner.errors
    }

    /// Every destination of `e`, with its own `envelope` block (derived
    /// events carry theirs).
    pub fn route(&self, e: &SignatureEvent) -> Routed {
        let input = Input::new(e, e.envelope.as_ref());
        let mut out = Routed::default();
        for r in &self.inner.routes {
            if self.holds(r, &input) {
                out.add(&r.cfg);
            }
        }
        // The default topic is a normal destination: a held event has none.
        let held = e.held();
        self.default_topic(&mut out, held);
        out
    }

    /// The destinations of a provider event of a tracked envelope: what is
    /// known now, and the routes that wait for its envelope (if any).
    pub fn route_deferring(&self, e: &SignatureEvent) -> (Routed, Option<Deferred>) {
        let input = Input::new(e, None);
        let mut out = Routed::default();
        let mut later = Vec::new();
        for (i, r) in self.inner.routes.iter().enumerate() {
            if r.defers() {
                if r.cfg.quarantined == e.held() && r.cfg.filter.matches(e) {
                    later.push(i);
                }
            } else if self.holds(r, &input) {
                out.add(&r.cfg);
            }
        }
        if later.is_empty() {
            self.default_topic(&mut out, false);
            return (out, None);
        }
        let deferred = Deferred {
            router: self.clone(),
            event: Box::new(e.clone()),
            routes: later,
            has_topics: !out.topics.is_empty(),
        };
        (out, Some(deferred))
    }

    /// Adds the default topic when no route named one (and `others` did not).
    fn default_topic(&self, out: &mut Routed, others: bool) {
        if let Some(d) = &self.inner.default_topic
            && out.topics.is_empty()
            && !others
        {
            out.topics.push(d.clone());
        } else if self.inner.default_topic.is_none() {
            out.topics.clear();
        }
    }

    /// Whether route `r` takes the event: quarantine routes take held
    /// events only and every other route sound ones only; then its filters
    /// and its condition.
    fn holds(&self, r: &Route, input: &Input) -> bool {
        if r.cfg.quarantined != input.event().held() || !r.cfg.filter.matches(input.event()) {
            return false;
        }
        match &r.cond {
            None => true,
            Some(c) => self.check(r, c, input),
        }
    }

    /// The condition's result; an error counts, is logged (at most once a
    /// minute per route) and does not match.
    fn check(&self, r: &Route, c: &Condition, input: &Input) -> bool {
        match c.eval(input) {
            Ok(b) => b,
            Err(_) => {
                self.inner.errors.with_label_values(&[&r.label]).inc();
                if log_due(&r.logged_ms, self.inner.clock.now_ms()) {
                    let error = c.error(input);
                    tracing::warn!(route = %r.label, %error, "route condition failed; the route does not match (logged at most once a minute)");
                }
                false
            }
        }
    }
}

/// Whether an error logged last at `logged_ms` may be logged again at
/// `now` (and, if so, notes that it is).
fn log_due(logged_ms: &AtomicI64, now: i64) -> bool {
    let last = logged_ms.load(Ordering::Relaxed);
    now.saturating_sub(last) >= LOG_EVERY_MS
        && logged_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Routes whose condition reads `envelope`, for the store's writer to
/// evaluate with the envelope as of after the event.
pub struct Deferred {
    router: Router,
    event: Box<SignatureEvent>,
    /// Indexes of the routes (their filters matched).
    routes: Vec<usize>,
    /// Whether the routes evaluated before named a topic.
    has_topics: bool,
}

impl Deferred {
    /// The further destinations, given the envelope (the default topic when
    /// no route at all named one).
    pub fn route(&self, envelope: &EnvelopeBlock) -> Routed {
        let input = Input::new(&self.event, Some(envelope));
        let mut out = Routed::default();
        for &i in &self.routes {
            let r = &self.router.inner.routes[i];
            if let Some(c) = &r.cond
                && self.router.check(r, c, &input)
            {
                out.add(&r.cfg);
            }
        }
        self.router.default_topic(&mut out, self.has_topics);
        out
    }
}

#[cfg(test)]
mod tests;
