//! The envelope API's answers: archive confirmation against the registered
//! document (match, mismatch, too early, idempotent), the history it leaves,
//! and bad requests that change nothing.

use countersign::admin::api::DocumentMismatch;
use serde_json::json;

use super::hooks::*;
use super::now;
use crate::common::*;

#[tokio::test]
async fn archive_confirmation_checks_the_registered_document() {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}")).await;
    let l = gw.loaded();
    let sha = "ab".repeat(32);
    let r = register(
        gw.admin,
        "docusign",
        "env-arch",
        json!({"reference": "LEASE-2", "document_sha256": sha, "deadline": "2026-12-31T17:00:00Z"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let early = archive(gw.admin, "docusign", "env-arch", &sha).await;
    assert_eq!(early.status, 409, "not completed yet: {}", early.text());
    hook(
        gw.public,
        &docusign(&l, "envelope-completed", "env-arch", None, now()),
    )
    .await;

    let bad = archive(gw.admin, "docusign", "env-arch", &"cd".repeat(32)).await;
    assert_eq!(bad.status, 409);
    let m: DocumentMismatch = bad.body();
    assert_eq!(m.error, "document_mismatch");
    assert_eq!(
        (m.expected_sha256.as_str(), m.got_sha256.as_str()),
        (sha.as_str(), "cd".repeat(32).as_str())
    );
    assert_eq!(m.envelope.state, "completed", "a mismatch leaves the state");
    let ev = get(gw.admin, &format!("/v1/events/{}", m.event_id)).await;
    assert_eq!(ev.status, 200);
    assert_eq!(ev.json()["event"]["kind"], "envelope.document_mismatch");

    let ok = archive(gw.admin, "docusign", "env-arch", &sha.to_uppercase()).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let v: countersign::admin::api::EnvelopeView = ok.body();
    assert_eq!(v.state, "archived");
    assert_eq!(v.derived.len(), 1);
    assert_eq!(v.derived[0].kind, "envelope.archived");
    let again = archive(gw.admin, "docusign", "env-arch", &sha).await;
    assert_eq!(again.status, 200, "idempotent");
    assert!(
        again
            .body::<countersign::admin::api::EnvelopeView>()
            .derived
            .is_empty()
    );

    let full = envelope(gw.admin, "docusign", "env-arch").await;
    let kinds: Vec<&str> = full.history.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "completed",
            "envelope.in_signing",
            "envelope.all_signed",
            "archive",
            "envelope.document_mismatch",
            "archive",
            "envelope.archived"
        ]
    );
    assert_eq!(
        full.registration.unwrap()["deadline"],
        "2026-12-31T17:00:00Z"
    );
    gw.stop().await;
}

#[tokio::test]
async fn bad_envelope_requests_change_nothing() {
    let gw = Gateway::start(&format!(
        "{SOURCES}\n[envelopes]\nenabled = true\nmax_signers = 2\nmax_registration_bytes = 2048\n"
    ))
    .await;
    let cases = [
        ("sw", json!({"reference": ""}), 400, "reference"),
        (
            "sw",
            json!({"reference": "x", "signers": [{"name": "no id"}]}),
            400,
            "signers[0]",
        ),
        (
            "sw",
            json!({"reference": "x", "signers": [{"id": "1"}, {"id": "2"}, {"id": "3"}]}),
            400,
            "max_signers",
        ),
        (
            "sw",
            json!({"reference": "x", "document_sha256": "abc"}),
            400,
            "SHA-256",
        ),
        (
            "sw",
            json!({"reference": "x", "deadline": "tomorrow"}),
            400,
            "RFC 3339",
        ),
        (
            "sw",
            json!({"reference": "x", "colour": "red"}),
            400,
            "unknown field",
        ),
        (
            "sw",
            json!({"reference": "x", "metadata": "y".repeat(4000)}),
            413,
            "2048",
        ),
        ("nope", json!({"reference": "x"}), 404, "no such source"),
    ];
    for (source, body, status, says) in cases {
        let r = register(gw.admin, source, "env-bad", body).await;
        assert_eq!(r.status, status, "{}", r.text());
        assert!(r.text().contains(says), "{} should say {says}", r.text());
    }
    assert_eq!(get(gw.admin, "/v1/envelopes/sw/env-bad").await.status, 404);
    assert_eq!(
        archive(gw.admin, "sw", "env-bad", &"ab".repeat(32))
            .await
            .status,
        404
    );
    assert_eq!(archive(gw.admin, "sw", "env-bad", "zz").await.status, 400);
    assert_eq!(get(gw.admin, "/v1/envelopes?state=done").await.status, 400);
    gw.stop().await;

    // Tracking off: the API says how to turn it on.
    let off = Gateway::start(SOURCES).await;
    let r = get(off.admin, "/v1/envelopes").await;
    assert_eq!(r.status, 409);
    assert!(r.text().contains("envelopes.enabled"), "{}", r.text());
    off.stop().await;
}
