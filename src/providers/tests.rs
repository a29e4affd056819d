//! Table-driven normalizer tests: one realistic payload per provider (and the
//! quirks worth a test), each signed, verified, normalized and schema-checked.

use super::testkit::{Failure, run, run_signed_by, source};
use crate::event::{Kind, SignatureEvent};

struct Expect {
    kind: Kind,
    event_type: &'static str,
    envelope: Option<&'static str>,
    /// `Some("cs_")` checks a derived id; otherwise the exact id.
    id: &'static str,
    signer_email: Option<&'static str>,
    method: &'static str,
    covers_body: bool,
}

struct Case {
    name: &'static str,
    source: &'static str,
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
    query: Option<&'static str>,
    expect: Expect,
}

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

const fn ex(
    kind: Kind,
    event_type: &'static str,
    envelope: Option<&'static str>,
    id: &'static str,
    signer_email: Option<&'static str>,
    method: &'static str,
    covers_body: bool,
) -> Expect {
    Expect {
        kind,
        event_type,
        envelope,
        id,
        signer_email,
        method,
        covers_body,
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "docusign recipient-completed finds the recipient",
            source: r#"provider = "docusign"
secrets = ["dskey"]"#,
            body: r#"{"event":"recipient-completed","apiVersion":"v2.1","retryCount":0,"generatedDateTime":"2024-03-04T10:15:30.4770000Z","data":{"accountId":"a1","envelopeId":"env-1","recipientId":"2","envelopeSummary":{"recipients":{"signers":[{"recipientId":"1","email":"a@example.com","name":"A"},{"recipientId":"2","email":"b@example.com","name":"B","roleName":"Lessee"}]}}}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "recipient-completed",
                Some("env-1"),
                "cs_",
                Some("b@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "docusign envelope-completed",
            source: r#"provider = "docusign"
secrets = ["dskey"]"#,
            body: r#"{"event":"envelope-completed","generatedDateTime":"2024-03-04T10:16:00Z","data":{"envelopeId":"env-1"}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "envelope-completed",
                Some("env-1"),
                "cs_",
                None,
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "dropbox sign signed, from multipart, body not covered",
            source: r#"provider = "dropbox_sign"
secrets = ["324e3b0840f065eb51f3fd63231d0d33daa35d4ed10d27718839e81737065782"]"#,
            body: r#"{"event":{"event_time":"1348177752","event_type":"signature_request_signed","event_metadata":{"related_signature_id":"sig-2","reported_for_account_id":"acc"}},"signature_request":{"signature_request_id":"sr-1","test_mode":true,"signatures":[{"signature_id":"sig-1","signer_email_address":"x@example.com"},{"signature_id":"sig-2","signer_email_address":"y@example.com","signer_name":"Y","signer_role":"Guarantor"}]}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "signature_request_signed",
                Some("sr-1"),
                "cs_",
                Some("y@example.com"),
                "event_hash",
                false,
            ),
        },
        Case {
            name: "dropbox sign callback_test has no envelope",
            source: r#"provider = "dropbox_sign"
secrets = ["apikey"]"#,
            body: r#"{"event":{"event_time":"1348177752","event_type":"callback_test","event_metadata":{}}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Test,
                "callback_test",
                None,
                "cs_",
                None,
                "event_hash",
                false,
            ),
        },
        Case {
            name: "adobe sign workflow completed",
            source: r#"provider = "adobe_sign"
secrets = ["client-123"]"#,
            body: r#"{"webhookId":"w1","webhookNotificationId":"n-77","event":"AGREEMENT_WORKFLOW_COMPLETED","eventDate":"2019-01-09T12:41:39Z","participantUserEmail":"p@example.com","participantRole":"SIGNER","agreement":{"id":"agr-9","status":"SIGNED"}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "AGREEMENT_WORKFLOW_COMPLETED",
                Some("agr-9"),
                "n-77",
                Some("p@example.com"),
                "client_id",
                false,
            ),
        },
        Case {
            name: "yousign signer.done",
            source: r#"provider = "yousign"
secrets = ["keySecret"]"#,
            body: r#"{"event_id":"ev-1","event_name":"signer.done","event_time":"1658235419","sandbox":true,"data":{"signature_request":{"id":"sr-5"},"signer":{"id":"sg-1","info":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}}}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "signer.done",
                Some("sr-5"),
                "ev-1",
                Some("ada@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "boldsign completed",
            source: r#"provider = "boldsign"
secrets = ["bskey"]"#,
            body: r#"{"event":{"id":"bs-1","created":1668693823,"eventType":"Completed","environment":"Test"},"data":{"object":"document","documentId":"doc-1","signerDetails":[{"signerName":"S","signerEmail":"s@example.com"}]}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "Completed",
                Some("doc-1"),
                "bs-1",
                Some("s@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "docuseal form.completed uses the submission as envelope",
            source: r#"provider = "docuseal"
secrets = ["whsec_test"]"#,
            body: r#"{"event_type":"form.completed","timestamp":"2023-09-24T13:48:36Z","data":{"id":11,"email":"f@example.com","name":"F","role":"Tenant","submission":{"id":500}}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "form.completed",
                Some("500"),
                "cs_",
                Some("f@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "docuseal submission.completed",
            source: r#"provider = "docuseal"
secrets = ["whsec_test"]"#,
            body: r#"{"event_type":"submission.completed","timestamp":"2023-09-24T13:50:00Z","data":{"id":500}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "submission.completed",
                Some("500"),
                "cs_",
                None,
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "zoho numeric request id",
            source: r#"provider = "zoho_sign"
secrets = ["zkey"]"#,
            body: r#"{"requests":{"request_id":1234567890,"request_name":"Lease"},"notifications":{"operation_type":"RequestSigningSuccess","performed_by_email":"z@example.com","performed_at":1555062604837,"action_id":"act-1"}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "RequestSigningSuccess",
                Some("1234567890"),
                "cs_",
                Some("z@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "signnow complete",
            source: r#"provider = "signnow"
secrets = ["snkey"]"#,
            body: r#"{"meta":{"timestamp":1590000000,"event":"document.complete","access_token":"SECRET-TOKEN-123"},"content":{"document_id":"d1","signer":"n@example.com"}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "document.complete",
                Some("d1"),
                "cs_",
                Some("n@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "opensign completed",
            source: r#"provider = "opensign"
secrets = ["oskey"]"#,
            body: r#"{"event":"completed","objectId":"o-1","name":"Lease","signer":{"email":"o@example.com"}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "completed",
                Some("o-1"),
                "cs_",
                Some("o@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "documenso signed",
            source: r#"provider = "documenso"
secrets = ["dm-secret"]"#,
            body: r#"{"event":"DOCUMENT_SIGNED","payload":{"id":7,"envelopeId":"envelope_abc","updatedAt":"2025-01-01T10:00:00.000Z","recipients":[{"id":3,"email":"d@example.com","name":"D"}]},"createdAt":"2025-01-01T10:00:01.000Z"}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "DOCUMENT_SIGNED",
                Some("envelope_abc"),
                "cs_",
                Some("d@example.com"),
                "shared_secret",
                false,
            ),
        },
        Case {
            name: "skribble success via URL placeholders",
            source: r#"provider = "skribble"
secrets = ["tok-sk-1"]"#,
            body: "",
            headers: &[],
            query: Some("event=SUCCESS&signature_request_id=sr-77&document_id=doc-77"),
            expect: ex(
                Kind::Completed,
                "SUCCESS",
                Some("sr-77"),
                "cs_",
                None,
                "url_token",
                false,
            ),
        },
        Case {
            name: "signius in progress (spelled as sent)",
            source: r#"provider = "signius"
secrets = ["tok-sg-1"]"#,
            body: r#"{"documentId":"sg-doc","presentSignee":"p@example.com","nextSignee":"q@example.com","documentStatus":"SIGNING_IN_PROGESS"}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::SignerCompleted,
                "SIGNING_IN_PROGESS",
                Some("sg-doc"),
                "cs_",
                Some("p@example.com"),
                "url_token",
                false,
            ),
        },
        Case {
            name: "standard webhooks: id from webhook-id, kind from type",
            source: r#"provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]"#,
            body: r#"{"type":"envelope.completed","timestamp":"2024-05-01T00:00:00Z","data":{"envelope_id":"sw-env","signer":{"email":"w@example.com"}}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "envelope.completed",
                Some("sw-env"),
                "msg_test_1",
                Some("w@example.com"),
                "standard_webhooks",
                true,
            ),
        },
        Case {
            name: "stripe-style: id from the body",
            source: r#"provider = "stripe"
secrets = ["whsec_test_secret"]"#,
            body: r#"{"id":"evt_1","type":"signature.declined","data":{"envelope_id":"st-env"}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Declined,
                "signature.declined",
                Some("st-env"),
                "evt_1",
                None,
                "stripe",
                true,
            ),
        },
        Case {
            name: "github-style: type and id from headers",
            source: r#"provider = "github"
secrets = ["It's a Secret to Everybody"]"#,
            body: r#"{"envelope_id":"gh-env"}"#,
            headers: &[("x-github-event", "sent"), ("x-github-delivery", "del-1")],
            query: None,
            expect: ex(
                Kind::Sent,
                "sent",
                Some("gh-env"),
                "del-1",
                None,
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "generic hmac with template, field map and kind table",
            source: r#"provider = "generic_hmac"
secrets = ["gkey"]
header = "X-Sig"
prefix = "v1="
encoding = "base64"
template = "{timestamp}.{body}"
timestamp_header = "X-Ts"
kinds = { "contract.fully_signed" = "completed" }
fields = { event_type = "/what", envelope_id = "/contract/ref", event_id = "/uid", signer_email = "/by" }"#,
            body: r#"{"uid":"g-1","what":"contract.fully_signed","contract":{"ref":"c-9"},"by":"g@example.com"}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Completed,
                "contract.fully_signed",
                Some("c-9"),
                "g-1",
                Some("g@example.com"),
                "hmac_sha256",
                true,
            ),
        },
        Case {
            name: "an unknown event type is kept as other",
            source: r#"provider = "yousign"
secrets = ["keySecret"]"#,
            body: r#"{"event_id":"ev-2","event_name":"signature_request.brand_new_thing","data":{"signature_request":{"id":"sr-6"}}}"#,
            headers: &[],
            query: None,
            expect: ex(
                Kind::Other,
                "signature_request.brand_new_thing",
                Some("sr-6"),
                "ev-2",
                None,
                "hmac_sha256",
                true,
            ),
        },
    ]
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
    assert_eq!(events[0].id.as_str(), "hook-1-0");
    assert_eq!(events[0].kind, Kind::Completed);
    assert_eq!(
        events[0].provider_event_type,
        "document_state_changed:document.completed"
    );
    assert_eq!(events[1].id.as_str(), "hook-1-1");
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
