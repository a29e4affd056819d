//! The expectation table: one realistic payload per provider (and the quirks
//! worth a test), each with what its normalized event must say.

use crate::event::Kind;

pub struct Expect {
    pub kind: Kind,
    pub event_type: &'static str,
    pub envelope: Option<&'static str>,
    /// `Some("cs_")` checks a derived id; otherwise the exact id.
    pub id: &'static str,
    pub signer_email: Option<&'static str>,
    pub method: &'static str,
    pub covers_body: bool,
}

pub struct Case {
    pub name: &'static str,
    pub source: &'static str,
    pub body: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub query: Option<&'static str>,
    pub expect: Expect,
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "docusign recipient-completed finds the recipient",
            source: r#"provider = "docusign"
secrets = ["dskey"]"#,
            body: r#"{"event":"recipient-completed","apiVersion":"v2.1","retryCount":0,"generatedDateTime":"2024-03-04T10:15:30.4770000Z","data":{"accountId":"a1","envelopeId":"env-1","recipientId":"2","envelopeSummary":{"recipients":{"signers":[{"recipientId":"1","email":"a@example.com","name":"A"},{"recipientId":"2","email":"b@example.com","name":"B","roleName":"Lessee"}]}}}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "recipient-completed",
                envelope: Some("env-1"),
                id: "cs_",
                signer_email: Some("b@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "docusign envelope-completed",
            source: r#"provider = "docusign"
secrets = ["dskey"]"#,
            body: r#"{"event":"envelope-completed","generatedDateTime":"2024-03-04T10:16:00Z","data":{"envelopeId":"env-1"}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "envelope-completed",
                envelope: Some("env-1"),
                id: "cs_",
                signer_email: None,
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "dropbox sign signed, from multipart, body not covered",
            source: r#"provider = "dropbox_sign"
secrets = ["324e3b0840f065eb51f3fd63231d0d33daa35d4ed10d27718839e81737065782"]"#,
            body: r#"{"event":{"event_time":"1348177752","event_type":"signature_request_signed","event_metadata":{"related_signature_id":"sig-2","reported_for_account_id":"acc"}},"signature_request":{"signature_request_id":"sr-1","test_mode":true,"signatures":[{"signature_id":"sig-1","signer_email_address":"x@example.com"},{"signature_id":"sig-2","signer_email_address":"y@example.com","signer_name":"Y","signer_role":"Guarantor"}]}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "signature_request_signed",
                envelope: Some("sr-1"),
                id: "cs_",
                signer_email: Some("y@example.com"),
                method: "event_hash",
                covers_body: false,
            },
        },
        Case {
            name: "dropbox sign callback_test has no envelope",
            source: r#"provider = "dropbox_sign"
secrets = ["apikey"]"#,
            body: r#"{"event":{"event_time":"1348177752","event_type":"callback_test","event_metadata":{}}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Test,
                event_type: "callback_test",
                envelope: None,
                id: "cs_",
                signer_email: None,
                method: "event_hash",
                covers_body: false,
            },
        },
        Case {
            name: "adobe sign workflow completed",
            source: r#"provider = "adobe_sign"
secrets = ["client-123"]"#,
            body: r#"{"webhookId":"w1","webhookNotificationId":"n-77","event":"AGREEMENT_WORKFLOW_COMPLETED","eventDate":"2019-01-09T12:41:39Z","participantUserEmail":"p@example.com","participantRole":"SIGNER","agreement":{"id":"agr-9","status":"SIGNED"}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "AGREEMENT_WORKFLOW_COMPLETED",
                envelope: Some("agr-9"),
                id: "n-77",
                signer_email: Some("p@example.com"),
                method: "client_id",
                covers_body: false,
            },
        },
        Case {
            name: "yousign signer.done",
            source: r#"provider = "yousign"
secrets = ["keySecret"]"#,
            body: r#"{"event_id":"ev-1","event_name":"signer.done","event_time":"1658235419","sandbox":true,"data":{"signature_request":{"id":"sr-5"},"signer":{"id":"sg-1","info":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}}}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "signer.done",
                envelope: Some("sr-5"),
                id: "ev-1",
                signer_email: Some("ada@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "boldsign completed",
            source: r#"provider = "boldsign"
secrets = ["bskey"]"#,
            body: r#"{"event":{"id":"bs-1","created":1668693823,"eventType":"Completed","environment":"Test"},"data":{"object":"document","documentId":"doc-1","signerDetails":[{"signerName":"S","signerEmail":"s@example.com"}]}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "Completed",
                envelope: Some("doc-1"),
                id: "bs-1",
                signer_email: Some("s@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "docuseal form.completed uses the submission as envelope",
            source: r#"provider = "docuseal"
secrets = ["whsec_test"]"#,
            body: r#"{"event_type":"form.completed","timestamp":"2023-09-24T13:48:36Z","data":{"id":11,"email":"f@example.com","name":"F","role":"Tenant","submission":{"id":500}}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "form.completed",
                envelope: Some("500"),
                id: "cs_",
                signer_email: Some("f@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "docuseal submission.completed",
            source: r#"provider = "docuseal"
secrets = ["whsec_test"]"#,
            body: r#"{"event_type":"submission.completed","timestamp":"2023-09-24T13:50:00Z","data":{"id":500}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "submission.completed",
                envelope: Some("500"),
                id: "cs_",
                signer_email: None,
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "zoho numeric request id",
            source: r#"provider = "zoho_sign"
secrets = ["zkey"]"#,
            body: r#"{"requests":{"request_id":1234567890,"request_name":"Lease"},"notifications":{"operation_type":"RequestSigningSuccess","performed_by_email":"z@example.com","performed_at":1555062604837,"action_id":"act-1"}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "RequestSigningSuccess",
                envelope: Some("1234567890"),
                id: "cs_",
                signer_email: Some("z@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "signnow complete",
            source: r#"provider = "signnow"
secrets = ["snkey"]"#,
            body: r#"{"meta":{"timestamp":1590000000,"event":"document.complete","access_token":"SECRET-TOKEN-123"},"content":{"document_id":"d1","signer":"n@example.com"}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "document.complete",
                envelope: Some("d1"),
                id: "cs_",
                signer_email: Some("n@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "opensign completed",
            source: r#"provider = "opensign"
secrets = ["oskey"]"#,
            body: r#"{"event":"completed","objectId":"o-1","name":"Lease","signer":{"email":"o@example.com"}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "completed",
                envelope: Some("o-1"),
                id: "cs_",
                signer_email: Some("o@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "documenso signed",
            source: r#"provider = "documenso"
secrets = ["dm-secret"]"#,
            body: r#"{"event":"DOCUMENT_SIGNED","payload":{"id":7,"envelopeId":"envelope_abc","updatedAt":"2025-01-01T10:00:00.000Z","recipients":[{"id":3,"email":"d@example.com","name":"D"}]},"createdAt":"2025-01-01T10:00:01.000Z"}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "DOCUMENT_SIGNED",
                envelope: Some("envelope_abc"),
                id: "cs_",
                signer_email: Some("d@example.com"),
                method: "shared_secret",
                covers_body: false,
            },
        },
        Case {
            name: "skribble success via URL placeholders",
            source: r#"provider = "skribble"
secrets = ["tok-sk-1"]"#,
            body: "",
            headers: &[],
            query: Some("event=SUCCESS&signature_request_id=sr-77&document_id=doc-77"),
            expect: Expect {
                kind: Kind::Completed,
                event_type: "SUCCESS",
                envelope: Some("sr-77"),
                id: "cs_",
                signer_email: None,
                method: "url_token",
                covers_body: false,
            },
        },
        Case {
            name: "signius in progress (spelled as sent)",
            source: r#"provider = "signius"
secrets = ["tok-sg-1"]"#,
            body: r#"{"documentId":"sg-doc","presentSignee":"p@example.com","nextSignee":"q@example.com","documentStatus":"SIGNING_IN_PROGESS"}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::SignerCompleted,
                event_type: "SIGNING_IN_PROGESS",
                envelope: Some("sg-doc"),
                id: "cs_",
                signer_email: Some("p@example.com"),
                method: "url_token",
                covers_body: false,
            },
        },
        Case {
            name: "standard webhooks: id from webhook-id, kind from type",
            source: r#"provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]"#,
            body: r#"{"type":"envelope.completed","timestamp":"2024-05-01T00:00:00Z","data":{"envelope_id":"sw-env","signer":{"email":"w@example.com"}}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Completed,
                event_type: "envelope.completed",
                envelope: Some("sw-env"),
                id: "msg_test_1",
                signer_email: Some("w@example.com"),
                method: "standard_webhooks",
                covers_body: true,
            },
        },
        Case {
            name: "stripe-style: id from the body",
            source: r#"provider = "stripe"
secrets = ["whsec_test_secret"]"#,
            body: r#"{"id":"evt_1","type":"signature.declined","data":{"envelope_id":"st-env"}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Declined,
                event_type: "signature.declined",
                envelope: Some("st-env"),
                id: "evt_1",
                signer_email: None,
                method: "stripe",
                covers_body: true,
            },
        },
        Case {
            name: "github-style: type from a header, id derived (the delivery header is not signed)",
            source: r#"provider = "github"
secrets = ["It's a Secret to Everybody"]"#,
            body: r#"{"envelope_id":"gh-env"}"#,
            headers: &[("x-github-event", "sent"), ("x-github-delivery", "del-1")],
            query: None,
            expect: Expect {
                kind: Kind::Sent,
                event_type: "sent",
                envelope: Some("gh-env"),
                id: "cs_",
                signer_email: None,
                method: "hmac_sha256",
                covers_body: true,
            },
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
            expect: Expect {
                kind: Kind::Completed,
                event_type: "contract.fully_signed",
                envelope: Some("c-9"),
                id: "g-1",
                signer_email: Some("g@example.com"),
                method: "hmac_sha256",
                covers_body: true,
            },
        },
        Case {
            name: "an unknown event type is kept as other",
            source: r#"provider = "yousign"
secrets = ["keySecret"]"#,
            body: r#"{"event_id":"ev-2","event_name":"signature_request.brand_new_thing","data":{"signature_request":{"id":"sr-6"}}}"#,
            headers: &[],
            query: None,
            expect: Expect {
                kind: Kind::Other,
                event_type: "signature_request.brand_new_thing",
                envelope: Some("sr-6"),
                id: "ev-2",
                signer_email: None,
                method: "hmac_sha256",
                covers_body: true,
            },
        },
    ]
}
