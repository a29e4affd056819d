//! CEL conditions: what they see, and what is a compile error where.

use serde_json::json;

use super::*;
use crate::event::{EnvelopeState, Progress};

fn event(payload: serde_json::Value) -> SignatureEvent {
    serde_json::from_value(json!({
        "schema_version": 1, "id": "evt-1", "source": "docusign-prod", "provider": "docusign",
        "provider_event_type": "envelope-completed", "kind": "completed",
        "envelope_id": "env-1", "received_at": "2026-12-01T00:00:00Z",
        "signer": { "email": "a@example.com" },
        "auth": { "method": "hmac_sha256", "covers_body": true },
        "payload": payload,
    }))
    .unwrap()
}

fn block(metadata: serde_json::Value) -> EnvelopeBlock {
    EnvelopeBlock {
        state: EnvelopeState::Completed,
        reference: Some("CRM-7".into()),
        metadata: Some(metadata),
        progress: Progress {
            expected: 3,
            viewed: 0,
            signed: 2,
            declined: 0,
        },
        signers: Vec::new(),
    }
}

fn holds(src: &str, e: &SignatureEvent, env: Option<&EnvelopeBlock>) -> Result<bool, String> {
    {
        let c = Condition::compile(src).unwrap();
        let input = Input::new(e, env);
        c.eval(&input).map_err(|_| c.error(&input))
    }
}

#[test]
fn numbers_strings_lists_and_has() {
    let e = event(json!({ "amount": 70000, "ratio": 0.5, "tags": ["lease", "b2b"] }));
    let env = block(json!({ "contract_value": 60000, "product": "leasing", "parties": [1, 2] }));
    for (src, want) in [
        ("envelope.metadata.contract_value > 50000", true),
        ("envelope.metadata.contract_value > 50000.5", true),
        ("envelope.metadata.contract_value + 1 == 60001", true),
        (
            "envelope.progress.signed + 1 == envelope.progress.expected",
            true,
        ),
        ("event.payload.ratio < 1", true),
        (
            "event.kind == \"completed\" && source == \"docusign-prod\"",
            true,
        ),
        ("envelope.metadata.product.startsWith(\"leas\")", true),
        ("\"lease\" in event.payload.tags", true),
        ("event.payload.tags.exists(t, t == \"b2b\")", true),
        ("size(envelope.metadata.parties) == 2", true),
        ("has(envelope.metadata.contract_value)", true),
        ("has(envelope.metadata.missing)", false),
        ("has(event.document_id)", false),
        ("event.signer.email.endsWith(\"@example.com\")", true),
        (
            "envelope.state == \"completed\" && envelope.reference == \"CRM-7\"",
            true,
        ),
    ] {
        assert_eq!(holds(src, &e, Some(&env)), Ok(want), "{src}");
    }
}

#[test]
fn a_missing_field_is_an_evaluation_error() {
    let e = event(json!({}));
    let env = block(json!({}));
    let err = holds("envelope.metadata.contract_value > 50000", &e, Some(&env)).unwrap_err();
    assert!(err.contains("contract_value"), "{err}");
    // No envelope: `envelope` is null.
    assert!(holds("envelope.state == \"open\"", &e, None).is_err());
    assert_eq!(holds("envelope == null", &e, None), Ok(true));
}

#[test]
fn compile_errors_say_where() {
    let err = Condition::compile("event.kind == ").unwrap_err();
    assert_eq!(err.line, 1, "{err:?}");
    assert!(err.column >= 14, "{err:?}");

    let err = Condition::compile("event.kind == \"x\" &&\n  evnt.source == \"y\"").unwrap_err();
    assert_eq!((err.line, err.column), (2, 3), "{err:?}");
    assert!(err.problem.contains("unknown variable `evnt`"), "{err:?}");

    let err = Condition::compile("envelope.metadata.size + 1").unwrap_err();
    assert!(err.problem.contains("not a bool"), "{err:?}");
    let err = Condition::compile("\"completed\"").unwrap_err();
    assert!(err.problem.contains("not a bool"), "{err:?}");

    // Comprehension variables are bound, not unknown.
    Condition::compile("event.payload.items.all(i, i.price > 0)").unwrap();
}

#[test]
fn envelope_use_is_known() {
    assert!(
        Condition::compile("envelope.state == \"completed\"")
            .unwrap()
            .uses_envelope
    );
    assert!(
        !Condition::compile("event.payload.x == 1")
            .unwrap()
            .uses_envelope
    );
}

/// A random expression over the test data, `depth` deep at most.
fn expr(depth: u32, rng: &mut fastrand::Rng) -> String {
    const ATOMS: &[&str] = &[
        "event.kind",
        "event.source",
        "event.envelope_id",
        "event.document_id",
        "event.signer.email",
        "event.signer.name",
        "event.payload.amount",
        "event.payload.ratio",
        "event.payload.neg",
        "event.payload.big",
        "event.payload.tags",
        "event.payload.nums",
        "event.payload.obj",
        "event.payload.obj.k",
        "event.payload.missing",
        "event.payload.nil",
        "event.payload.flag",
        "event.payload.name",
        "event.auth.method",
        "event.schema_version",
        "envelope.metadata.value",
        "envelope.metadata",
        "envelope.state",
        "envelope.progress.signed",
        "envelope.reference",
        "envelope.signers",
        "envelope",
        "source",
        "1",
        "0",
        "-1",
        "2u",
        "1.5",
        "0.0",
        "\"completed\"",
        "\"\"",
        "\"lease\"",
        "\"a@example.com\"",
        "true",
        "false",
        "null",
        "[1, 2]",
        "[\"lease\", \"x\"]",
        "[]",
        "0.5",
        "[0.0, 1u]",
    ];
    const HAS: &[&str] = &[
        "event.document_id",
        "event.signer",
        "event.signer.email",
        "event.payload.amount",
        "event.payload.missing",
        "event.payload.obj.k",
        "envelope.metadata.value",
        "envelope.reference",
        "event.envelope",
    ];
    if depth == 0 || rng.u32(..4) == 0 {
        return ATOMS[rng.usize(..ATOMS.len())].to_owned();
    }
    let mut x = || expr(depth - 1, rng);
    let (a, b) = (x(), x());
    match rng.u32(..26) {
        0 => format!("!({a})"),
        1 => format!("-({a})"),
        2 => format!("size({a})"),
        3 => format!("({a}).size()"),
        4 => format!("has({})", HAS[rng.usize(..HAS.len())]),
        5 => format!("({a}) == ({b})"),
        6 => format!("({a}) != ({b})"),
        7 => format!("({a}) < ({b})"),
        8 => format!("({a}) <= ({b})"),
        9 => format!("({a}) > ({b})"),
        10 => format!("({a}) >= ({b})"),
        11 => format!("({a}) + ({b})"),
        12 => format!("({a}) - ({b})"),
        13 => format!("({a}) * ({b})"),
        14 => format!("({a}) / ({b})"),
        15 => format!("({a}) % ({b})"),
        16 => format!("({a}) && ({b})"),
        17 => format!("({a}) || ({b})"),
        18 => format!("({a}) in ({b})"),
        19 => format!("({a})[{b}]"),
        20 => format!("({a}).startsWith({b})"),
        21 => format!("({a}).contains({b}) || ({b}).endsWith({a})"),
        22 => format!("({a}) ? ({b}) : ({})", expr(depth - 1, rng)),
        23 => format!("({a}).exists(v, v == ({b}))"),
        24 => format!("({a}).all(v, v > 0) || ({a}).exists_one(v, v == {b})"),
        _ => format!("size(({a}).map(v, v + 1)) == size(({a}).filter(v, v != ({b})))"),
    }
}

/// The direct evaluator and the `cel` interpreter agree on every condition
/// both run: the same bool, or an error from both.
#[test]
fn the_direct_evaluator_agrees_with_the_interpreter() {
    let events = [
        event(json!({
            "amount": 70000, "ratio": 0.5, "neg": -3, "big": 18446744073709551615u64,
            "tags": ["lease", "b2b"], "nums": [1, 2, 3], "obj": { "k": "v", "n": 1 },
            "nil": null, "flag": true, "name": "lease",
        })),
        event(json!({ "amount": 1.5, "tags": [], "nums": [0], "obj": {}, "flag": false })),
        event(json!([1, 2])),
    ];
    let mut bare = event(json!({}));
    bare.signer = None;
    bare.envelope_id = None;
    let envelopes = [
        Some(block(json!({ "value": 60000, "product": "leasing" }))),
        Some(block(json!({ "value": "x" }))),
        None,
    ];
    let seed = std::env::var("CS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut compared, mut fallback) = (0, 0);
    for _ in 0..4000 {
        let src = expr(3, &mut rng);
        let Ok(c) = Condition::compile(&src) else {
            continue;
        };
        for e in events.iter().chain([&bare]) {
            for env in &envelopes {
                let input = Input::new(e, env.as_ref());
                match c.both(&input) {
                    (Some(fast), slow) => {
                        compared += 1;
                        assert_eq!(fast, slow, "{src}\nevent {}\nenvelope {env:?}", e.payload);
                    }
                    (None, _) => fallback += 1,
                }
            }
        }
    }
    assert!(
        compared > 10_000,
        "{compared} compared, {fallback} interpreted"
    );
}
