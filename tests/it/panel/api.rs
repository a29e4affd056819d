//! What the panel stands on, over real sockets: the embedded page and its
//! caching and security headers, open while the API behind it needs the
//! token; `/v1/overview` and its stream; the listing's filters; the audit
//! verdict.

use std::time::Duration;

use countersign::admin::api::{AuditVerified, EnvelopeList, Overview};
use serde_json::json;

use super::billing;
use crate::common::receiver::{Receiver, Reply};
use crate::common::*;
use crate::envelopes::hooks::{TRACKING, docusign, hook, register};

const TOKEN: &str = "adm-0123456789abcdef";

fn with_header(path: &str, name: &str, value: &str) -> Req {
    Req {
        method: "GET",
        path: path.into(),
        headers: vec![(name.into(), value.into())],
        body: vec![],
    }
}

#[tokio::test]
async fn the_page_is_open_cached_and_locked_down_while_the_api_needs_the_token() {
    let gw = Gateway::start_with_server_keys("", &format!("admin_token = \"{TOKEN}\"\n")).await;
    let page = get(gw.admin, "/").await;
    assert_eq!(page.status, 200, "the page holds no data: no token needed");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    // The page names its assets by version: those answers are immutable.
    let html = page.text();
    let app = html
        .split('"')
        .find(|s| s.starts_with("/assets/app.js?v="))
        .expect("the page loads app.js by version");
    let js = get(gw.admin, app).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(js.header("content-security-policy").is_some());
    // Another (old) version, or none: revalidated by its tag.
    let stale = get(gw.admin, "/assets/app.js?v=0000").await;
    assert_eq!(stale.header("cache-control"), Some("no-cache"));
    let etag = stale.header("etag").unwrap().to_owned();
    let again = send(
        gw.admin,
        &with_header("/assets/app.js", "if-none-match", &etag),
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let page_tag = page.header("etag").unwrap().to_owned();
    assert_eq!(
        send(gw.admin, &with_header("/", "if-none-match", &page_tag))
            .await
            .status,
        304
    );
    assert_eq!(get(gw.admin, "/assets/nope.js").await.status, 404);
    assert_eq!(
        get(gw.admin, "/assets/style.css")
            .await
            .header("content-type"),
        Some("text/css; charset=utf-8")
    );

    // The API the page calls: the token, as a bearer header only.
    for path in [
        "/v1/overview",
        "/v1/overview/stream",
        "/v1/envelopes",
        "/v1/audit/verify",
    ] {
        let r = get(gw.admin, path).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("content-security-policy").is_some(), "{path}");
    }
    let authed = send(
        gw.admin,
        &with_header("/v1/overview", "authorization", &format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(authed.status, 200, "{}", authed.text());
    gw.stop().await;
}

#[tokio::test]
async fn the_overview_counts_outcomes_envelopes_endpoints_and_streams_every_second() {
    let rx = Receiver::start(countersign::time::Clock::System, |_, _| Reply::Status(503)).await;
    let extra = format!(
        "{SOURCES}\n{TRACKING}\n{}",
        billing(&rx, r#"retry_schedule = ["1h"]"#)
    );
    let gw = Gateway::start(&extra).await;
    let l = gw.loaded();
    let mut sse = sse::connect(gw.admin, "/v1/overview/stream", None, None).await;
    assert_eq!(sse.status, 200);
    let first = sse
        .next(Duration::from_secs(5))
        .await
        .expect("a snapshot at once");
    assert_eq!(first.event.as_deref(), Some("overview"));
    let first: Overview = serde_json::from_str(&first.data).unwrap();

    let t = countersign::time::Clock::System.now_ms() / 1000;
    hook(gw.public, &docusign(&l, "envelope-sent", "env-o1", None, t)).await;
    hook(gw.public, &docusign(&l, "envelope-sent", "env-o2", None, t)).await;
    hook(
        gw.public,
        &docusign(&l, "envelope-voided", "env-o2", None, t + 1),
    )
    .await;
    let dup = docusign(&l, "envelope-sent", "env-o1", None, t);
    assert_eq!(send(gw.public, &dup).await.status, 200);
    let mut bad = docusign(&l, "envelope-sent", "env-o3", None, t);
    tamper(&mut bad);
    assert_eq!(send(gw.public, &bad).await.status, 401);
    register(gw.admin, "docusign", "env-o4", json!({"reference": "R-4"})).await;

    let o: Overview = eventually(
        "the overview to count them",
        Duration::from_secs(10),
        async || {
            let o: Overview = get(gw.admin, "/v1/overview").await.body();
            let last = o.samples.last()?;
            let n = |name: &str| last.counts[o.outcomes.iter().position(|x| x == name).unwrap()];
            // The provider events and the derived ones, retried in an hour.
            let rx_tried = o.endpoints[0].endpoint.pending >= Some(3);
            (n("accepted") == 3 && n("duplicate") == 1 && n("unauthorized") == 1 && rx_tried)
                .then_some(o)
        },
    )
    .await;
    let states = o.envelopes.as_ref().unwrap();
    assert_eq!(states["open"], 1, "registered, no webhook yet");
    assert_eq!(states["in_signing"], 1);
    assert_eq!(states["cancelled"], 1);
    assert_eq!(states["completed"], 0);
    assert_eq!(o.quarantined, 0);
    assert!(o.kafka.is_none(), "Kafka is off");
    let ep = &o.endpoints[0];
    assert_eq!(ep.endpoint.id, "billing");
    assert!(o.samples.len() >= first.samples.len(), "the kept history");

    // The stream goes on, a message a second, with the new samples only.
    let mut seen = first.samples.last().map_or(0, |s| s.t);
    for _ in 0..2 {
        let m = sse
            .next(Duration::from_secs(5))
            .await
            .expect("a message a second");
        let m: Overview = serde_json::from_str(&m.data).unwrap();
        assert!(m.samples.iter().all(|s| s.t > seen), "no sample twice");
        seen = m.samples.last().map_or(seen, |s| s.t);
    }
    eventually("a delivery lag", Duration::from_secs(10), async || {
        let o: Overview = get(gw.admin, "/v1/overview").await.body();
        (o.endpoints[0].lag_seconds > 0.0).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn the_listing_filters_by_reference_and_text_and_gives_the_stream_head() {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}")).await;
    let l = gw.loaded();
    let t = countersign::time::Clock::System.now_ms() / 1000;
    for env in ["lease-100", "lease-200", "claim-300"] {
        hook(gw.public, &docusign(&l, "envelope-sent", env, None, t)).await;
    }
    register(gw.admin, "docusign", "claim-300", json!({"reference": "INS-9", "signers": [{"email": "Dana@Example.com", "name": "Dana Roe"}]})).await;
    let ids = async |q: &str| {
        let r = get(gw.admin, &format!("/v1/envelopes?{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let list: EnvelopeList = r.body();
        list.envelopes
            .into_iter()
            .map(|e| e.envelope_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("reference=INS-9").await, ["claim-300"]);
    assert_eq!(
        ids("q=LEASE").await,
        ["lease-200", "lease-100"],
        "newest first"
    );
    assert_eq!(ids("q=ins-").await, ["claim-300"]);
    assert_eq!(ids("q=dana%20roe").await, ["claim-300"], "a signer's name");
    assert_eq!(
        ids("q=dana@example.com&state=completed").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids("q=%20%20").await.len(),
        3,
        "a blank search is no filter"
    );
    let long = get(gw.admin, &format!("/v1/envelopes?q={}", "x".repeat(201))).await;
    assert_eq!(long.status, 400);

    // The head: resuming the stream from it gives what came after, only.
    let list: EnvelopeList = get(gw.admin, "/v1/envelopes").await.body();
    hook(
        gw.public,
        &docusign(&l, "envelope-voided", "lease-100", None, t + 1),
    )
    .await;
    let mut s = sse::connect(gw.admin, "/v1/stream", Some(list.log_head), None).await;
    let m = s
        .next(Duration::from_secs(5))
        .await
        .expect("the change after the page");
    let m = m.json();
    assert_eq!(
        (m["envelope_id"].as_str(), m["to"].as_str()),
        (Some("lease-100"), Some("cancelled"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_audit_verdict_of_an_envelope() {
    let key = "0707070707070707070707070707070707070707070707070707070707070707";
    let gw = Gateway::start(&format!(
        "{SOURCES}\n{TRACKING}\n[audit]\nenabled = true\nsigning_key = \"{key}\"\n"
    ))
    .await;
    let l = gw.loaded();
    let t = countersign::time::Clock::System.now_ms() / 1000;
    hook(gw.public, &docusign(&l, "envelope-sent", "env-a", None, t)).await;
    hook(gw.public, &docusign(&l, "envelope-sent", "env-b", None, t)).await;
    let r = get(gw.admin, "/v1/audit/verify?envelope=docusign/env-a").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: AuditVerified = r.body();
    assert!(v.verified, "{v:?}");
    assert!(v.signed && v.checkpoints >= 1, "{v:?}");
    assert!(!v.entries.is_empty());
    let text = serde_json::to_string(&v.entries).unwrap();
    assert!(text.contains("env-a") && !text.contains("env-b"), "{text}");
    let bad = get(gw.admin, "/v1/audit/verify?envelope=no-slash").await;
    assert_eq!(bad.status, 400);
    gw.stop().await;

    let off = Gateway::start(&format!("{SOURCES}\n{TRACKING}")).await;
    assert_eq!(get(off.admin, "/v1/audit/verify").await.status, 409);
    off.stop().await;
}
