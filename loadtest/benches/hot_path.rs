//! Criterion benchmark of the pure per-request work, per provider: authenticate
//! the raw bytes, normalize into a SignatureEvent, serialize it for the store.
//! Run with `cargo bench -p countersign-loadtest`.

use std::hint::black_box;

use countersign::app as config;
use countersign::verify::Inbound;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue};

const NOW: i64 = 1_700_000_000;

/// (provider, secret, body): realistic bodies of a few hundred bytes.
const CASES: &[(&str, &str, &str)] = &[
    (
        "standard_webhooks",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        r#"{"type":"envelope.completed","timestamp":"2026-01-01T00:00:00Z","data":{"envelope_id":"env-1","signer":{"email":"a@example.com","name":"A"}}}"#,
    ),
    (
        "docusign",
        "dskey",
        r#"{"event":"recipient-completed","apiVersion":"v2.1","retryCount":0,"generatedDateTime":"2024-03-04T10:15:30.477Z","data":{"accountId":"a1","envelopeId":"env-1","recipientId":"2","envelopeSummary":{"recipients":{"signers":[{"recipientId":"1","email":"a@example.com"},{"recipientId":"2","email":"b@example.com","roleName":"Lessee"}]}}}}"#,
    ),
    (
        "yousign",
        "keySecret",
        r#"{"event_id":"ev-1","event_name":"signer.done","event_time":"1658235419","sandbox":false,"data":{"signature_request":{"id":"sr-5"},"signer":{"id":"sg-1","info":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}}}}"#,
    ),
    (
        "boldsign",
        "bskey",
        r#"{"event":{"id":"bs-1","created":1700000000,"eventType":"Completed","environment":"Live"},"data":{"object":"document","documentId":"doc-1","signerDetails":[{"signerName":"S","signerEmail":"s@example.com"}]}}"#,
    ),
    (
        "dropbox_sign",
        "apikey",
        r#"{"event":{"event_time":"1700000000","event_type":"signature_request_signed","event_metadata":{"related_signature_id":"sig-2"}},"signature_request":{"signature_request_id":"sr-1","test_mode":false,"signatures":[{"signature_id":"sig-2","signer_email_address":"y@example.com"}]}}"#,
    ),
    (
        "pandadoc",
        "pdkey",
        r#"[{"event":"document_state_changed","data":{"id":"pd-1","status":"document.completed","date_modified":"2024-01-01T00:00:00Z","action_by":{"email":"r@example.com"}}}]"#,
    ),
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("authenticate+normalize+serialize");
    for (provider, secret, body) in CASES {
        let toml = format!(
            "[[sources]]\nid = \"s\"\nprovider = \"{provider}\"\nsecrets = [\"{secret}\"]\n"
        );
        let source = config::load_str(&toml).expect("config").sources.remove(0);
        let signed = source
            .sign(body.as_bytes(), NOW, "msg_bench")
            .expect("sign");
        let mut headers = HeaderMap::new();
        for (k, v) in &signed.signature.headers {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        group.bench_function(*provider, |b| {
            b.iter(|| {
                let req = Inbound {
                    headers: &headers,
                    query: signed.signature.query.as_deref(),
                    token: signed.signature.token.as_deref(),
                    body: black_box(&signed.body),
                    now: NOW,
                };
                let (verified, pre) = source.authenticate(&req).expect("authentic");
                let events = source
                    .normalize(&req, &verified, pre, NOW * 1000)
                    .expect("normal");
                black_box(serde_json::to_vec(&events[0]).expect("JSON"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
