//! `require` per kind, e-mail and time plausibility, schema violations with
//! pointers and without the offending values, compile errors.

use serde_json::json;

use super::*;
use crate::config::RequireRule;
use crate::event::Signer;

fn event(kind: Kind, payload: Value) -> SignatureEvent {
    serde_json::from_value(json!({
        "schema_version": 1, "id": "e1", "source": "s", "provider": "generic_hmac",
        "provider_event_type": kind.as_str(), "kind": kind.as_str(),
        "envelope_id": "env-1", "received_at": "2026-12-01T00:00:00Z",
        "auth": {"method": "hmac_sha256", "covers_body": true},
        "payload": payload
    }))
    .unwrap()
}

fn pointers(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.pointer.as_str()).collect()
}

#[test]
fn require_applies_to_its_kinds_only() {
    let checks = Checks::compile(
        None,
        &[
            Require::Field("envelope_id".into()),
            Require::Rule(RequireRule {
                fields: vec!["signer.email".into(), "occurred_at".into()],
                kinds: vec![Kind::SignerCompleted],
            }),
        ],
    )
    .unwrap()
    .unwrap();
    let mut viewed = event(Kind::Viewed, json!({}));
    assert!(checks.check(&viewed).is_empty());
    viewed.envelope_id = Some("  ".into());
    assert_eq!(pointers(&checks.check(&viewed)), ["/envelope_id"]);

    let mut signed = event(Kind::SignerCompleted, json!({}));
    assert_eq!(
        pointers(&checks.check(&signed)),
        ["/signer/email", "/occurred_at"]
    );
    signed.signer = Some(Signer {
        email: Some("not-an-address".into()),
        ..Signer::default()
    });
    signed.occurred_at = Some("yesterday".into());
    let v = checks.check(&signed);
    assert_eq!(v[0].message, "is not an e-mail address");
    assert_eq!(v[1].message, "is not an RFC 3339 time");
    assert!(!format!("{v:?}").contains("not-an-address"));
    signed.signer.as_mut().unwrap().email = Some("jane@example.com".into());
    signed.occurred_at = Some("2026-12-01T10:00:00Z".into());
    assert!(checks.check(&signed).is_empty());
}

#[test]
fn schema_violations_point_into_the_payload_and_quote_no_value() {
    let schema = json!({
        "type": "object",
        "required": ["contract"],
        "properties": {
            "contract": {
                "type": "object",
                "required": ["value"],
                "properties": {
                    "value": {"type": "number", "minimum": 0},
                    "email": {"type": "string", "format": "email"}
                }
            }
        }
    });
    let checks = Checks::compile(Some(&schema), &[]).unwrap().unwrap();
    let mut e = event(Kind::Completed, json!({"contract": {"value": 1200}}));
    assert!(checks.check(&e).is_empty());
    e.payload = json!({"contract": {"value": -5, "email": "secret-person"}});
    let v = checks.check(&e);
    let mut p = pointers(&v);
    p.sort();
    assert_eq!(p, ["/payload/contract/email", "/payload/contract/value"]);
    let text = format!("{v:?}");
    assert!(
        !text.contains("secret-person") && !text.contains("-5"),
        "{text}"
    );
    e.payload = json!({});
    assert_eq!(pointers(&checks.check(&e)), ["/payload"]);

    checks.screen(&mut e);
    let q = e.quarantine.as_ref().unwrap();
    assert_eq!(q.violations.len(), 1);
    assert!(q.released_by.is_none());
}

#[test]
fn many_failures_are_capped() {
    let schema = json!({"type": "array", "items": {"type": "string"}});
    let checks = Checks::compile(Some(&schema), &[]).unwrap().unwrap();
    let e = event(Kind::Completed, json!((0..100).collect::<Vec<_>>()));
    assert_eq!(checks.check(&e).len(), MAX_VIOLATIONS);
}

#[test]
fn compile_errors_name_the_key() {
    let (key, problem, _) =
        Checks::compile(None, &[Require::Field("signer_mail".into())]).unwrap_err();
    assert_eq!(key, "require[0]");
    assert!(problem.contains("signer_mail"));
    let (key, _, _) = Checks::compile(Some(&json!({"type": 12})), &[]).unwrap_err();
    assert_eq!(key, "schema");
    assert!(Checks::compile(None, &[]).unwrap().is_none());
}

#[test]
fn emails() {
    for ok in ["a@example.com", "j.doe+x@mail.example.org"] {
        assert!(is_email(ok), "{ok}");
    }
    for bad in [
        "",
        "a",
        "@example.com",
        "a@",
        "a@b",
        "a@@b.c",
        "a b@c.de",
        "a@b..c",
        "a@.b",
    ] {
        assert!(!is_email(bad), "{bad}");
    }
}
