//! Table-driven normalizer tests: one realistic payload per provider (and the
//! quirks worth a test), each signed, verified, normalized and schema-checked.

mod cases;
mod weak;

use super::testkit::{Failure, run, run_signed_by, source};
use crate::event::{Kind, SignatureEvent};
use cases::{Case, cases};

fn check(c: &Case, e: &SignatureEvent) {
    let x = &c.expect;
    assert_eq!(e.kind, x.kind, "{}: kind", c.name);
    assert_eq!(e.provider_event_type, x.event_type, "{}: type", c.name);
    assert_eq!(e.envelope_id.as_deref(), x.envelope, "{}: envelope", c.name);
    if x.id == "cs_" {
        assert!(
            e.id.as_str().starts_with("cs_") && e.id.as_str().len() == 35,
            "{}: id {}",
            c.name,
            e.id
        );
    } else {
        assert_eq!(e.id.as_str(), x.id, "{}: id", c.name);
    }
    assert_eq!(
        e.signer.as_ref().and_then(|s| s.email.as_deref()),
        x.signer_email,
        "{}: signer",
        c.name
    );
    assert_eq!(e.auth.method, x.method, "{}: auth method", c.name);
    assert_eq!(e.auth.covers_body, x.covers_body, "{}: covers_body", c.name);
    assert_eq!(e.source, "s");
    assert_eq!(e.received_at, "2023-11-14T22:13:20.000Z");
}

#[test]
fn every_provider_normalizes() {
    for c in cases() {
        let src = source(c.source);
        let events =
            run(&src, c.body, c.headers, c.query).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        assert_eq!(events.len(), 1, "{}", c.name);
        check(&c, &events[0]);
    }
}

#[test]
fn pandadoc_array_becomes_several_events() {
    let src = source("provider = \"pandadoc\"\nsecrets = [\"pdkey\"]");
    let body = r#"[{"event":"document_state_changed","data":{"id":"pd-1","status":"document.completed","date_modified":"2024-01-01T00:00:00Z"}},{"event":"recipient_completed","data":{"id":"pd-1","action_by":{"email":"r@example.com","first_name":"R"}}}]"#;
    let events = run(
        &src,
        body,
        &[("x-pandadoc-webhook-event-id", "hook-1")],
        None,
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    // The header id is not signed: ids are derived from the signed body.
    assert!(events[0].id.as_str().starts_with("cs_"));
    assert_eq!(events[0].kind, Kind::Completed);
    assert_eq!(
        events[0].provider_event_type,
        "document_state_changed:document.completed"
    );
    assert_ne!(events[0].id, events[1].id);
    assert_eq!(events[1].kind, Kind::SignerCompleted);
    assert_eq!(
        events[1].signer.as_ref().unwrap().email.as_deref(),
        Some("r@example.com")
    );
    // Without the header the ids are derived, stable and distinct.
    let a = run(&src, body, &[], None).unwrap();
    let b = run(&src, body, &[], None).unwrap();
    assert_eq!(a[0].id, b[0].id);
    assert_ne!(a[0].id, a[1].id);
}

#[test]
fn zoho_last_signature_yields_two_distinct_events() {
    let src = source("provider = \"zoho_sign\"\nsecrets = [\"zkey\"]");
    let mk = |op: &str| {
        format!(
            r#"{{"requests":{{"request_id":42}},"notifications":{{"operation_type":"{op}","performed_at":1555062604837,"action_id":"a1"}}}}"#
        )
    };
    let signed = run(&src, &mk("RequestSigningSuccess"), &[], None).unwrap();
    let done = run(&src, &mk("RequestCompleted"), &[], None).unwrap();
    assert_eq!(signed[0].kind, Kind::SignerCompleted);
    assert_eq!(done[0].kind, Kind::Completed);
    assert_ne!(signed[0].id, done[0].id);
}

#[test]
fn derived_ids_ignore_per_attempt_fields() {
    // DocuSign's retryCount and Documenso's createdAt change per attempt.
    let ds = source("provider = \"docusign\"\nsecrets = [\"k\"]");
    let a = run(&ds, r#"{"event":"envelope-sent","retryCount":0,"generatedDateTime":"2024-01-01T00:00:00Z","data":{"envelopeId":"e"}}"#, &[], None).unwrap();
    let b = run(&ds, r#"{"event":"envelope-sent","retryCount":3,"generatedDateTime":"2024-01-01T00:00:00Z","data":{"envelopeId":"e"}}"#, &[], None).unwrap();
    assert_eq!(a[0].id, b[0].id);
    let dm = source("provider = \"documenso\"\nsecrets = [\"k\"]");
    let mk = |created: &str| {
        format!(r#"{{"event":"DOCUMENT_OPENED","payload":{{"id":1}},"createdAt":"{created}"}}"#)
    };
    let a = run(&dm, &mk("2025-01-01T00:00:00Z"), &[], None).unwrap();
    let b = run(&dm, &mk("2025-01-01T00:05:00Z"), &[], None).unwrap();
    assert_eq!(a[0].id, b[0].id);
}

#[test]
fn signnow_access_token_is_not_kept() {
    let src = source("provider = \"signnow\"\nsecrets = [\"snkey\"]");
    let body = r#"{"meta":{"event":"document.open","access_token":"SECRET-TOKEN-123"},"content":{"document_id":"d1"}}"#;
    let events = run(&src, body, &[], None).unwrap();
    let json = serde_json::to_string(&events[0]).unwrap();
    assert!(!json.contains("SECRET-TOKEN-123"), "{json}");
}

#[test]
fn kinds_override_applies_to_any_provider() {
    let src = source(
        "provider = \"docusign\"\nsecrets = [\"k\"]\nkinds = { \"recipient-finish-later\" = \"updated\" }",
    );
    let events = run(
        &src,
        r#"{"event":"recipient-finish-later","data":{"envelopeId":"e"}}"#,
        &[],
        None,
    )
    .unwrap();
    assert_eq!(events[0].kind, Kind::Updated);
}

#[test]
fn authentic_but_malformed_payloads_are_reported() {
    let bad: &[(&str, &str, Option<&str>)] = &[
        (
            "provider = \"docusign\"\nsecrets = [\"k\"]",
            "{not json",
            None,
        ),
        ("provider = \"docusign\"\nsecrets = [\"k\"]", "[1,2]", None),
        (
            "provider = \"docusign\"\nsecrets = [\"k\"]",
            r#"{"data":{}}"#,
            None,
        ),
        (
            "provider = \"yousign\"\nsecrets = [\"k\"]",
            r#"{"event_name":"signer.done"}"#,
            None,
        ),
        (
            "provider = \"pandadoc\"\nsecrets = [\"k\"]",
            r#"{"event":"x"}"#,
            None,
        ),
        ("provider = \"pandadoc\"\nsecrets = [\"k\"]", "[]", None),
        (
            "provider = \"skribble\"\nsecrets = [\"t\"]",
            "",
            Some("signature_request_id=1"),
        ),
        (
            "provider = \"standard_webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]",
            r#"{"data":{}}"#,
            None,
        ),
        (
            "provider = \"yousign\"\nsecrets = [\"k\"]",
            r#"{"event_id":"has space","event_name":"signer.done"}"#,
            None,
        ),
    ];
    for (src, body, query) in bad {
        let r = run(&source(src), body, &[], *query);
        assert!(
            matches!(r, Err(Failure::Malformed(_))),
            "{src} {body}: {r:?}"
        );
    }
}

#[test]
fn wrong_secret_fails_authentication_for_every_provider() {
    for c in cases() {
        let good = source(c.source);
        let mut wrong = good.clone();
        wrong.keys = vec![crate::verify::Key::new(b"not-the-secret".to_vec())];
        // Sign with the wrong key, verify with the right one.
        let r = run_signed_by(&wrong, &good, c.body, c.headers, c.query);
        assert!(matches!(r, Err(Failure::Auth(_))), "{}: {r:?}", c.name);
    }
}

/// Dates no formatter can show (year 10000, offsets that overflow) leave
/// `occurred_at` unknown; the event is still taken.
#[test]
fn out_of_range_dates_become_unknown_not_a_panic() {
    let adobe = source("provider = \"adobe_sign\"\nsecrets = [\"client-123\"]");
    for date in [
        "253402300800000",
        "\"253402300800000\"",
        "\"9999-12-31T23:59:59-05:00\"",
        "\"2019-01-09T12:41:39+99999999999999:00\"",
        "-1",
        "9223372036854775807",
    ] {
        let body = format!(
            r#"{{"webhookNotificationId":"n-1","event":"AGREEMENT_WORKFLOW_COMPLETED","eventDate":{date},"agreement":{{"id":"agr-9"}}}}"#
        );
        let events = run(&adobe, &body, &[], None).unwrap_or_else(|e| panic!("{date}: {e:?}"));
        assert_eq!(events[0].occurred_at, None, "{date}");
    }
}

/// One signed body replayed with different unsigned id headers is one event
/// (GitHub's `X-GitHub-Delivery`, PandaDoc's `X-PandaDoc-Webhook-Event-Id`).
#[test]
fn unsigned_id_headers_do_not_name_events() {
    let cases = [
        (
            "provider = \"github\"\nsecrets = [\"ghkey\"]",
            r#"{"action":"completed","envelope_id":"e-1"}"#,
            "x-github-delivery",
            vec![("x-github-event", "envelope")],
        ),
        (
            "provider = \"pandadoc\"\nsecrets = [\"pdkey\"]",
            r#"[{"event":"recipient_completed","data":{"id":"pd-1"}}]"#,
            "x-pandadoc-webhook-event-id",
            vec![],
        ),
    ];
    for (src, body, header, extra) in cases {
        let src = source(src);
        let ids: std::collections::HashSet<String> = ["d-1", "d-2", "d-3", "d-4"]
            .iter()
            .map(|id| {
                let mut h = extra.clone();
                h.push((header, id));
                run(&src, body, &h, None).unwrap()[0].id.as_str().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "{header}: {ids:?}");
    }
}

/// `generic_hmac` headers the template does not sign are config errors.
#[test]
fn generic_hmac_refuses_unsigned_id_and_timestamp_headers() {
    let base = "provider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"x-sig\"";
    for (extra, key) in [
        ("id_header = \"x-id\"", "sources[0].id_header"),
        ("timestamp_header = \"x-ts\"", "sources[0].timestamp_header"),
    ] {
        let e = crate::app::load_str(&format!("[[sources]]\nid = \"s\"\n{base}\n{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains("not signed"), "{e}");
    }
    let ok = crate::app::load_str(&format!(
        "[[sources]]\nid = \"s\"\n{base}\nid_header = \"x-id\"\ntimestamp_header = \"x-ts\"\ntemplate = \"{{id}}.{{timestamp}}.{{body}}\"\n"
    ));
    assert!(ok.is_ok(), "{ok:?}");
}

/// Every provider's sample, screened by a schema built from its own shape
/// (passes), by one that asks for a field no sample carries (fails at
/// `/payload`), and by `require = ["envelope_id"]` (fails exactly when the
/// provider gave no envelope id).
#[test]
fn every_provider_sample_passes_or_fails_its_plausibility_checks() {
    use crate::config::Require;
    use crate::plausibility::Checks;
    use serde_json::{Value, json};
    for c in cases() {
        let events = run(&source(c.source), c.body, c.headers, c.query)
            .unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        let e = &events[0];
        let own = match &e.payload {
            Value::Object(m) => {
                json!({ "type": "object", "required": m.keys().collect::<Vec<_>>() })
            }
            Value::Array(_) => json!({ "type": "array" }),
            _ => json!({}),
        };
        let pass = Checks::compile(Some(&own), &[]).unwrap().unwrap();
        assert!(pass.check(e).is_empty(), "{}: {:?}", c.name, pass.check(e));

        let strict = json!({ "type": "object", "required": ["contract_value_eur"] });
        let fail = Checks::compile(Some(&strict), &[]).unwrap().unwrap();
        let v = fail.check(e);
        assert_eq!(v.len(), 1, "{}: {v:?}", c.name);
        assert_eq!(v[0].pointer, "/payload", "{}", c.name);

        let require = [Require::Field("envelope_id".into())];
        let needs = Checks::compile(None, &require).unwrap().unwrap();
        assert_eq!(
            needs.check(e).is_empty(),
            c.expect.envelope.is_some(),
            "{}",
            c.name
        );
    }
}
