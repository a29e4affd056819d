//! Signed webhooks for every provider: the sources' config, one realistic body
//! each, signing through the gateway's own configuration, and tampering.

use countersign::app::{self as config, Loaded};

use super::Req;

/// Every provider with a realistic body: (source id, config lines, body, extra
/// headers, extra query).
pub const SOURCES: &str = r#"
[[sources]]
id = "docusign"
provider = "docusign"
secrets = ["dskey-old", "dskey"]

[[sources]]
id = "dropbox"
provider = "dropbox_sign"
secrets = ["dbx-api-key"]

[[sources]]
id = "adobe"
provider = "adobe_sign"
secrets = ["adobe-client-1"]

[[sources]]
id = "yousign"
provider = "yousign"
secrets = ["keySecret"]

[[sources]]
id = "boldsign"
provider = "boldsign"
secrets = ["bskey"]

[[sources]]
id = "docuseal"
provider = "docuseal"
secrets = ["whsec_test"]

[[sources]]
id = "zoho"
provider = "zoho_sign"
secrets = ["zkey"]

[[sources]]
id = "signnow"
provider = "signnow"
secrets = ["snkey"]

[[sources]]
id = "pandadoc"
provider = "pandadoc"
secrets = ["pdkey"]

[[sources]]
id = "opensign"
provider = "opensign"
secrets = ["oskey"]

[[sources]]
id = "documenso"
provider = "documenso"
secrets = ["dm-secret"]

[[sources]]
id = "skribble"
provider = "skribble"
secrets = ["sk-token-1"]

[[sources]]
id = "signius"
provider = "signius"
secrets = ["sg-token-1"]

[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]

[[sources]]
id = "stripe"
provider = "stripe"
secrets = ["whsec_test_secret"]

[[sources]]
id = "github"
provider = "github"
secrets = ["It's a Secret to Everybody"]

[[sources]]
id = "generic"
provider = "generic_hmac"
secrets = ["gkey"]
header = "X-Sig"
prefix = "sha256="
template = "{timestamp}.{body}"
timestamp_header = "X-Ts"
"#;

pub struct Fixture {
    pub source: &'static str,
    pub body: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub query: Option<&'static str>,
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        source: "docusign",
        body: r#"{"event":"envelope-completed","generatedDateTime":"2024-03-04T10:16:00Z","data":{"envelopeId":"env-ds"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "dropbox",
        body: r#"{"event":{"event_time":"1348177752","event_type":"signature_request_all_signed","event_metadata":{}},"signature_request":{"signature_request_id":"sr-dbx"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "adobe",
        body: r#"{"webhookNotificationId":"adobe-n-1","event":"AGREEMENT_WORKFLOW_COMPLETED","agreement":{"id":"agr-1"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "yousign",
        body: r#"{"event_id":"ys-1","event_name":"signature_request.done","data":{"signature_request":{"id":"sr-ys"}}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "boldsign",
        body: r#"{"event":{"id":"bs-1","eventType":"Completed"},"data":{"documentId":"doc-bs"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "docuseal",
        body: r#"{"event_type":"submission.completed","timestamp":"2024-01-01T00:00:00Z","data":{"id":77}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "zoho",
        body: r#"{"requests":{"request_id":99},"notifications":{"operation_type":"RequestCompleted","performed_at":1555062604837}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "signnow",
        body: r#"{"meta":{"event":"document.complete","timestamp":1590000000,"access_token":"SN-ACCESS-TOKEN-SECRET"},"content":{"document_id":"d-sn"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "pandadoc",
        body: r#"[{"event":"document_state_changed","data":{"id":"pd-1","status":"document.completed"}}]"#,
        headers: &[("X-PandaDoc-Webhook-Event-Id", "pd-hook-1")],
        query: None,
    },
    Fixture {
        source: "opensign",
        body: r#"{"event":"completed","objectId":"os-1"}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "documenso",
        body: r#"{"event":"DOCUMENT_COMPLETED","payload":{"id":5,"envelopeId":"envelope_dm"},"createdAt":"2025-01-01T00:00:00Z"}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "skribble",
        body: "",
        headers: &[],
        query: Some("event=SUCCESS&signature_request_id=sr-sk&document_id=doc-sk"),
    },
    Fixture {
        source: "signius",
        body: r#"{"documentId":"sg-1","documentStatus":"SIGNED"}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "sw",
        body: r#"{"type":"envelope.completed","data":{"envelope_id":"env-sw"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "stripe",
        body: r#"{"id":"evt_st_1","type":"envelope.completed","data":{"envelope_id":"env-st"}}"#,
        headers: &[],
        query: None,
    },
    Fixture {
        source: "github",
        body: r#"{"envelope_id":"env-gh"}"#,
        headers: &[
            ("X-GitHub-Event", "completed"),
            ("X-GitHub-Delivery", "gh-del-1"),
        ],
        query: None,
    },
    Fixture {
        source: "generic",
        body: r#"{"id":"gen-1","type":"envelope.completed","data":{"envelope_id":"env-gen"}}"#,
        headers: &[],
        query: None,
    },
];

/// The sources of [`SOURCES`], loaded through the real config code.
pub fn sources() -> Loaded {
    config::load_str(SOURCES).unwrap_or_else(|e| panic!("{e}"))
}

/// Signs a fixture the way its provider would, with `id` as the message id.
pub fn signed(loaded: &Loaded, f: &Fixture, id: &str) -> Req {
    let now = countersign::time::Clock::System.now_ms() / 1000;
    let mut req = sign_for(loaded, f.source, f.body.as_bytes(), now, id);
    if let Some(q) = f.query {
        let sep = if req.path.contains('?') { '&' } else { '?' };
        req.path = format!("{}{sep}{q}", req.path);
    }
    req.headers.extend(
        f.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    req
}

/// The Standard Webhooks fixture signed now with event id `id`, posted to
/// `/hooks/sw` (without the fixture's extra query).
pub fn sw_hook(loaded: &Loaded, id: &str) -> Req {
    let mut req = signed(loaded, fixture("sw"), id);
    req.path = "/hooks/sw".into();
    req
}

/// Signs `body` for `source` at unix time `at`, as its provider would: headers,
/// a URL token or a query signature (in the path), and the body to send.
pub fn sign_for(loaded: &Loaded, source: &str, body: &[u8], at: i64, id: &str) -> Req {
    let src = loaded
        .sources
        .iter()
        .find(|s| s.id == source)
        .expect("configured source");
    let s = src.sign(body, at, id).expect("sign");
    let mut path = format!("/hooks/{source}");
    if let Some(t) = &s.signature.token {
        path = format!("{path}/{t}");
    }
    if let Some(q) = &s.signature.query {
        path = format!("{path}?{q}");
    }
    let mut headers = s.signature.headers;
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Req {
        method: "POST",
        path,
        headers,
        body: s.body,
    }
}

pub fn fixture(source: &str) -> &'static Fixture {
    FIXTURES.iter().find(|f| f.source == source).unwrap()
}

/// Breaks the request's credentials in the way that fits its scheme.
pub fn tamper(req: &mut Req) {
    if req.path.starts_with("/hooks/skribble/") || req.path.starts_with("/hooks/signius/") {
        req.path = req.path.replacen("-token-1", "-token-2", 1);
    } else if req.path.starts_with("/hooks/adobe") || req.path.starts_with("/hooks/documenso") {
        for (k, v) in &mut req.headers {
            if k.eq_ignore_ascii_case("X-AdobeSign-ClientId")
                || k.eq_ignore_ascii_case("x-documenso-secret")
            {
                v.push('x');
            }
        }
    } else if req.path.starts_with("/hooks/dropbox") {
        // The hash covers event_time + event_type: change the type.
        let text = String::from_utf8(req.body.clone()).unwrap();
        req.body = text
            .replacen("signature_request_all_signed", "signature_request_sent", 1)
            .into_bytes();
    } else {
        // Every MAC scheme covers the body: change one byte of it.
        let pos = req
            .body
            .iter()
            .rposition(|b| *b == b'}' || *b == b']')
            .unwrap_or(0);
        req.body.insert(pos, b' ');
    }
}
