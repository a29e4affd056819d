//! Routing: filters, conditions, the default topic, deferred envelope routes.

use super::*;
use crate::event::{Auth, EventId, Kind};
use crate::time::Clock;

fn event(source: &str, kind: Kind, ty: &str) -> SignatureEvent {
    SignatureEvent {
        schema_version: 1,
        id: EventId::parse("e").unwrap(),
        source: source.into(),
        provider: "docusign".into(),
        provider_event_type: ty.into(),
        kind,
        envelope_id: None,
        document_id: None,
        signer: None,
        occurred_at: None,
        received_at: String::new(),
        sandbox: None,
        auth: Auth {
            method: "hmac_sha256".into(),
            key_index: None,
            covers_body: true,
        },
        payload: serde_json::Value::Null,
        origin: None,
        cause: None,
        envelope: None,
        quarantine: None,
    }
}

fn route(filter: Match, topics: &[&str]) -> RouteConfig {
    RouteConfig {
        filter,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ..RouteConfig::default()
    }
}

fn router(routes: Vec<RouteConfig>, default: Option<&str>) -> Router {
    let conditions = routes
        .iter()
        .map(|r| (r.when.as_deref()).map(|w| Arc::new(Condition::compile(w).unwrap())))
        .collect();
    Router::new(
        routes,
        conditions,
        default.map(str::to_owned),
        Clock::default(),
    )
}

#[test]
fn matches_union_and_default() {
    let r = router(
        vec![
            route(
                Match {
                    sources: vec!["ds".into()],
                    kinds: vec![Kind::Completed, Kind::Declined],
                    ..Match::default()
                },
                &["terminal"],
            ),
            route(
                Match {
                    kinds: vec![Kind::Completed],
                    ..Match::default()
                },
                &["billing", "terminal"],
            ),
            route(
                Match {
                    event_types: vec!["envelope-voided".into()],
                    ..Match::default()
                },
                &[],
            ),
        ],
        Some("all"),
    );
    assert_eq!(
        r.route(&event("ds", Kind::Completed, "envelope-completed"))
            .topics,
        vec!["terminal", "billing"]
    );
    assert_eq!(
        r.route(&event("ds", Kind::Declined, "x")).topics,
        vec!["terminal"]
    );
    assert_eq!(
        r.route(&event("other", Kind::Completed, "x")).topics,
        vec!["billing", "terminal"]
    );
    assert_eq!(
        r.route(&event("other", Kind::Sent, "x")).topics,
        vec!["all"]
    );
    // A matching route without topics leaves the default in place.
    assert_eq!(
        r.route(&event("ds", Kind::Voided, "envelope-voided"))
            .topics,
        vec!["all"]
    );
}

#[test]
fn endpoints_are_the_union_of_matching_routes() {
    let mut a = route(
        Match {
            kinds: vec![Kind::Completed],
            ..Match::default()
        },
        &[],
    );
    a.endpoints = vec!["billing".into(), "crm".into()];
    let mut b = route(Match::default(), &["t"]);
    b.endpoints = vec!["crm".into(), "audit".into()];
    let r = router(vec![a, b], Some("all"));
    assert_eq!(
        r.route(&event("ds", Kind::Completed, "x")).endpoints,
        vec!["billing", "crm", "audit"]
    );
    assert_eq!(
        r.route(&event("ds", Kind::Sent, "x")).endpoints,
        vec!["crm", "audit"]
    );
    assert_eq!(
        r.route(&event("ds", Kind::Completed, "x")).topics,
        vec!["t"]
    );
}

#[test]
fn kafka_off_means_no_topics() {
    let r = router(vec![route(Match::default(), &["t"])], None);
    assert!(
        r.route(&event("ds", Kind::Completed, "x"))
            .topics
            .is_empty()
    );
}

fn when(src: &str, topics: &[&str]) -> RouteConfig {
    RouteConfig {
        when: Some(src.into()),
        ..route(Match::default(), topics)
    }
}

fn with_envelope(mut e: SignatureEvent, metadata: serde_json::Value) -> SignatureEvent {
    e.envelope = Some(EnvelopeBlock {
        state: crate::event::EnvelopeState::Completed,
        reference: Some("R-1".into()),
        metadata: Some(metadata),
        progress: Default::default(),
        signers: Vec::new(),
    });
    e
}

#[test]
fn conditions_select_routes_and_errors_do_not_match() {
    let r = router(
        vec![
            when("envelope.metadata.contract_value > 50000", &["insurance"]),
            when("event.kind == \"envelope.all_signed\"", &["billing"]),
            RouteConfig {
                name: Some("leasing".into()),
                ..when(
                    "envelope.metadata.product == \"leasing\"",
                    &["payment-plans"],
                )
            },
        ],
        Some("all"),
    );
    let big = with_envelope(
        event("ds", Kind::EnvelopeAllSigned, "envelope.all_signed"),
        serde_json::json!({ "contract_value": 60000, "product": "car" }),
    );
    assert_eq!(r.route(&big).topics, vec!["insurance", "billing"]);
    // No contract value, no product: two evaluation errors, counted per route.
    let bare = with_envelope(
        event("ds", Kind::EnvelopeAllSigned, "envelope.all_signed"),
        serde_json::json!({}),
    );
    assert_eq!(r.route(&bare).topics, vec!["billing"]);
    assert_eq!(r.errors().with_label_values(&["routes[0]"]).get(), 1);
    assert_eq!(r.errors().with_label_values(&["leasing"]).get(), 1);
    // No route names a topic: the default.
    let other = with_envelope(
        event("ds", Kind::Sent, "x"),
        serde_json::json!({ "contract_value": 1, "product": "car" }),
    );
    assert_eq!(r.route(&other).topics, vec!["all"]);
}

#[test]
fn envelope_routes_wait_for_the_writer() {
    let r = router(
        vec![
            when("envelope.progress.signed >= 1", &["progress"]),
            route(
                Match {
                    kinds: vec![Kind::Completed],
                    ..Match::default()
                },
                &["done"],
            ),
        ],
        Some("all"),
    );
    let (now, later) = r.route_deferring(&event("ds", Kind::Viewed, "x"));
    assert!(now.topics.is_empty(), "{now:?}");
    let later = later.expect("an envelope route");
    let mut b = with_envelope(event("ds", Kind::Viewed, "x"), serde_json::json!({}))
        .envelope
        .unwrap();
    // Nothing signed yet: no route named a topic, so the default.
    assert_eq!(later.route(&b).topics, vec!["all"]);
    b.progress.signed = 1;
    assert_eq!(later.route(&b).topics, vec!["progress"]);
    // A route that named a topic before keeps the default out.
    let (now, later) = r.route_deferring(&event("ds", Kind::Completed, "x"));
    assert_eq!(now.topics, vec!["done"]);
    b.progress.signed = 0;
    assert!(later.unwrap().route(&b).topics.is_empty());
    // No envelope route: nothing deferred.
    let plain = router(vec![route(Match::default(), &["t"])], Some("all"));
    assert!(
        plain
            .route_deferring(&event("ds", Kind::Sent, "x"))
            .1
            .is_none()
    );
}

#[test]
fn explain_says_why() {
    let r = router(
        vec![
            RouteConfig {
                when: Some("envelope.metadata.contract_value > 50000".into()),
                ..route(
                    Match {
                        kinds: vec![Kind::EnvelopeAllSigned],
                        ..Match::default()
                    },
                    &["insurance"],
                )
            },
            route(
                Match {
                    sources: vec!["other".into()],
                    ..Match::default()
                },
                &["x"],
            ),
        ],
        Some("all"),
    );
    let e = with_envelope(
        event("ds", Kind::EnvelopeAllSigned, "envelope.all_signed"),
        serde_json::json!({ "contract_value": 70000 }),
    );
    let (verdicts, routed) = explain(&r, &e, None);
    assert_eq!(routed.topics, vec!["insurance"]);
    let mut out = String::new();
    verdicts.iter().for_each(|v| v.render(&mut out));
    assert!(out.contains("routes[0]: MATCH"), "{out}");
    assert!(
        out.contains("match.kinds = [\"envelope.all_signed\"]: yes"),
        "{out}"
    );
    assert!(
        out.contains("when `envelope.metadata.contract_value > 50000`: true"),
        "{out}"
    );
    assert!(out.contains("routes[1]: no match"), "{out}");
    assert!(out.contains("match.sources = [\"other\"]: no"), "{out}");
    // Evaluation errors in an explanation are not counted.
    let e = with_envelope(e, serde_json::json!({}));
    let (verdicts, _) = explain(&r, &e, None);
    assert!(matches!(&verdicts[0].when, Some((_, Some(Err(_))))));
    assert_eq!(r.errors().with_label_values(&["routes[0]"]).get(), 0);
}

#[test]
fn errors_are_logged_at_most_once_a_minute_per_route() {
    let at = AtomicI64::new(i64::MIN);
    assert!(log_due(&at, 0));
    assert!(!log_due(&at, 59_999));
    assert!(log_due(&at, 60_000));
    assert!(!log_due(&at, 60_001));
}
