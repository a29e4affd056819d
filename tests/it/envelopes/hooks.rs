//! Signed webhooks of multi-signer sequences, in each provider's own format
//! (the provider reference's field names), and the admin calls of envelopes.

use std::net::SocketAddr;

use countersign::admin::api::EnvelopeView;
use countersign::app::Loaded;
use serde_json::json;

use crate::common::*;

/// Turns envelope tracking on.
pub const TRACKING: &str = "[envelopes]\nenabled = true\n";

/// A signer: (provider id, email).
pub type Who<'a> = (&'a str, &'a str);

fn iso(secs: i64) -> String {
    countersign::time::format_ms(secs * 1000)
}

/// DocuSign Connect: `envelope-sent`, `recipient-completed` (with the
/// recipient in `envelopeSummary`), `envelope-completed`, `recipient-declined`.
pub fn docusign(l: &Loaded, event: &str, env: &str, who: Option<Who>, at: i64) -> Req {
    let mut data = json!({ "envelopeId": env });
    if let Some((id, email)) = who {
        data["recipientId"] = json!(id);
        data["envelopeSummary"] = json!({
            "recipients": { "signers": [{ "recipientId": id, "email": email, "name": id }] }
        });
    }
    let body = json!({ "event": event, "generatedDateTime": iso(at), "data": data });
    sign_for(l, "docusign", body.to_string().as_bytes(), at, "")
}

/// Dropbox Sign: `signature_request_sent`, `signature_request_signed`,
/// `signature_request_all_signed` (the event time is the retry-stable `at`).
pub fn dropbox(l: &Loaded, event: &str, env: &str, who: Option<Who>, at: i64) -> Req {
    let mut body = json!({
        "event": { "event_type": event, "event_metadata": {} },
        "signature_request": { "signature_request_id": env, "signatures": [] }
    });
    if let Some((id, email)) = who {
        body["event"]["event_metadata"]["related_signature_id"] = json!(id);
        body["signature_request"]["signatures"] =
            json!([{ "signature_id": id, "signer_email_address": email }]);
    }
    sign_for(l, "dropbox", body.to_string().as_bytes(), at, "")
}

/// Yousign v3: `signature_request.activated`, `signer.done`,
/// `signature_request.done`; `event_id` is the provider's.
pub fn yousign(l: &Loaded, id: &str, event: &str, env: &str, who: Option<Who>, at: i64) -> Req {
    let mut body = json!({
        "event_id": id, "event_name": event, "event_time": at.to_string(),
        "data": { "signature_request": { "id": env } }
    });
    if let Some((sid, email)) = who {
        body["data"]["signer"] = json!({ "id": sid, "info": { "email": email } });
    }
    sign_for(l, "yousign", body.to_string().as_bytes(), at, id)
}

/// Zoho Sign: `RequestSubmitted`, `RequestSigningSuccess`, `RequestCompleted`
/// (fired together with the last signature, for the same action).
pub fn zoho(l: &Loaded, event: &str, env: &str, who: Option<Who>, at: i64) -> Req {
    let mut n = json!({ "operation_type": event, "performed_at": at * 1000 });
    if let Some((action, email)) = who {
        n["action_id"] = json!(action);
        n["performed_by_email"] = json!(email);
    }
    let body = json!({ "requests": { "request_id": env }, "notifications": n });
    sign_for(l, "zoho", body.to_string().as_bytes(), at, "")
}

/// Skribble: the event is in the callback URL (`INITIATE`, `UPDATE`,
/// `SUCCESS`, `DECLINED`), the body empty.
pub fn skribble(l: &Loaded, event: &str, env: &str, signature: Option<&str>) -> Req {
    let mut req = sign_for(l, "skribble", b"", 0, "");
    let mut q = format!("event={event}&signature_request_id={env}");
    if let Some(s) = signature {
        q.push_str(&format!("&signature_id={s}"));
    }
    req.path = format!("{}?{q}", req.path);
    req
}

/// Sends `req` and asserts it was taken.
pub async fn hook(gw: SocketAddr, req: &Req) {
    let r = send(gw, req).await;
    assert_eq!(r.status, 200, "{} {}", req.path, r.text());
}

fn json_req(method: &'static str, path: String, body: serde_json::Value) -> Req {
    Req {
        method,
        path,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// `PUT /v1/envelopes/{source}/{env}`.
pub async fn register(admin: SocketAddr, source: &str, env: &str, body: serde_json::Value) -> Resp {
    send(
        admin,
        &json_req("PUT", format!("/v1/envelopes/{source}/{env}"), body),
    )
    .await
}

/// `POST /v1/envelopes/{source}/{env}/archived`.
pub async fn archive(admin: SocketAddr, source: &str, env: &str, sha: &str) -> Resp {
    let body = json!({ "document_sha256": sha });
    send(
        admin,
        &json_req(
            "POST",
            format!("/v1/envelopes/{source}/{env}/archived"),
            body,
        ),
    )
    .await
}

/// `GET /v1/envelopes/{source}/{env}`.
pub async fn envelope(admin: SocketAddr, source: &str, env: &str) -> EnvelopeView {
    let r = get(admin, &format!("/v1/envelopes/{source}/{env}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.body()
}
