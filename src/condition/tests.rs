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
    Condition::compile(src).unwrap().eval(&Vars::new(e, env))
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
