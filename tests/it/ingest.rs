//! End-to-end ingest through real sockets: every provider accepted when signed and
//! refused (with no state change) when not; duplicates; limits; malformed bodies;
//! provider-specific answers.

use crate::common::*;
use countersign::admin::api::Stats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn gateway(extra: &str) -> Gateway {
    Gateway::start(&format!("{SOURCES}\n{extra}")).await
}

#[tokio::test]
async fn every_provider_is_accepted_and_stored() {
    let gw = gateway("").await;
    let loaded = sources();
    for f in FIXTURES {
        let resp = send(gw.public, &signed(&loaded, f, &format!("msg_{}", f.source))).await;
        assert_eq!(resp.status, 200, "{}: {}", f.source, resp.text());
        assert_eq!(resp.header("countersign-duplicate"), None, "{}", f.source);
    }
    assert_eq!(event_count(gw.admin).await, FIXTURES.len());
    // Each stored event is the normalized one, readable by id.
    let list = get(gw.admin, "/v1/events?limit=1000").await.json();
    for item in list["events"].as_array().unwrap() {
        let id = item["event"]["id"].as_str().unwrap();
        let one = get(gw.admin, &format!("/v1/events/{id}")).await;
        assert_eq!(one.status, 200, "{id}");
        assert_eq!(one.json()["event"], item["event"]);
        assert_eq!(one.json()["state"]["status"], "stored");
    }
    // A credential in a payload is not stored.
    let all = get(gw.admin, "/v1/events?limit=1000").await.text();
    assert!(!all.contains("SN-ACCESS-TOKEN-SECRET"));
    gw.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_refused_and_change_nothing() {
    let gw = gateway("").await;
    let loaded = sources();
    for f in FIXTURES {
        let good = signed(&loaded, f, &format!("msg_bad_{}", f.source));
        let mut bad = good.clone();
        tamper(&mut bad);
        let resp = send(gw.public, &bad).await;
        assert_eq!(resp.status, 401, "{}: {}", f.source, resp.text());
        assert_eq!(resp.json(), serde_json::json!({"error": "unauthorized"}));
        // Unsigned entirely.
        let mut bare = good.clone();
        bare.headers = vec![("Content-Type".into(), "application/json".into())];
        bare.path = format!("/hooks/{}", f.source);
        bare.body = f.body.as_bytes().to_vec(); // Dropbox Sign's hash lives in the body
        assert_eq!(
            send(gw.public, &bare).await.status,
            401,
            "{} unsigned",
            f.source
        );
    }
    assert_eq!(
        event_count(gw.admin).await,
        0,
        "no failed request stored anything"
    );
    // No dedup claim was taken either: the genuine requests are accepted afterwards.
    for f in FIXTURES {
        let resp = send(
            gw.public,
            &signed(&loaded, f, &format!("msg_bad_{}", f.source)),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", f.source);
        assert_eq!(resp.header("countersign-duplicate"), None, "{}", f.source);
    }
    let stats: Stats = get(gw.admin, "/v1/stats").await.body();
    let n = FIXTURES.len() as u64;
    assert_eq!(stats.webhooks["unauthorized"], 2 * n, "{stats:?}");
    assert_eq!(stats.webhooks["accepted"], n, "{stats:?}");
    gw.stop().await;
}

#[tokio::test]
async fn stale_timestamps_are_refused() {
    let gw = gateway("").await;
    let loaded = sources();
    let old = countersign::time::Clock::System.now_ms() / 1000 - 3600;
    let req = sign_for(&loaded, "sw", fixture("sw").body.as_bytes(), old, "msg_old");
    assert_eq!(send(gw.public, &req).await.status, 401);
    assert_eq!(event_count(gw.admin).await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn duplicates_are_answered_but_not_stored_again() {
    let gw = gateway("").await;
    let loaded = sources();
    let req = signed(&loaded, fixture("yousign"), "m1");
    let first = send(gw.public, &req).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["status"], "accepted");
    let again = send(gw.public, &req).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("countersign-duplicate"), Some("true"));
    assert_eq!(again.json()["status"], "duplicate");
    // A retry re-signed later (new timestamp, same event) is still a duplicate.
    let docusign = signed(&loaded, fixture("docusign"), "m2");
    assert_eq!(send(gw.public, &docusign).await.status, 200);
    let resigned = signed(&loaded, fixture("docusign"), "m3");
    assert_eq!(
        send(gw.public, &resigned)
            .await
            .header("countersign-duplicate"),
        Some("true")
    );
    assert_eq!(event_count(gw.admin).await, 2);
    let stats: Stats = get(gw.admin, "/v1/stats").await.body();
    assert_eq!(stats.webhooks["accepted"], 2, "{stats:?}");
    assert_eq!(stats.webhooks["duplicate"], 2, "{stats:?}");
    assert_eq!(stats.store.events_stored, 2, "{stats:?}");
    gw.stop().await;
}

#[tokio::test]
async fn concurrent_copies_store_exactly_one() {
    let gw = gateway("").await;
    let loaded = sources();
    let req = signed(&loaded, fixture("boldsign"), "m1");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let req = req.clone();
            let addr = gw.public;
            tokio::spawn(async move { send(addr, &req).await })
        })
        .collect();
    let mut accepted = 0;
    let mut duplicates = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200);
        match r.header("countersign-duplicate") {
            Some("true") => duplicates += 1,
            _ => accepted += 1,
        }
    }
    assert_eq!((accepted, duplicates), (1, 31));
    assert_eq!(event_count(gw.admin).await, 1);
    gw.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_without_being_read() {
    let gw = gateway("").await;
    let limit = 1024 * 1024;
    // Declared too large: answered at once, before the body is sent.
    let mut s = TcpStream::connect(gw.public).await.unwrap();
    let head = format!(
        "POST /hooks/sw HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        limit + 1
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked, so only counting can catch it.
    let body = vec![b'a'; limit + 10];
    let req = Req {
        method: "POST",
        path: "/hooks/sw".into(),
        headers: vec![],
        body,
    };
    let chunked = send_chunked(gw.public, &req).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert_eq!(event_count(gw.admin).await, 0);
    let stats: Stats = get(gw.admin, "/v1/stats").await.body();
    assert_eq!(stats.webhooks["too_large"], 2, "{stats:?}");
    gw.stop().await;
}

/// Sends a body with chunked transfer encoding and returns the raw answer head.
async fn send_chunked(addr: std::net::SocketAddr, req: &Req) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        req.path
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in req.body.chunks(64 * 1024) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if s.write_all(&frame).await.is_err() {
            break; // the server may close once the limit is passed
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = vec![0u8; 512];
    let n = s.read(&mut buf).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn per_source_body_limit() {
    let extra = "[[sources]]\nid = \"tiny\"\nprovider = \"yousign\"\nsecrets = [\"k\"]\nmax_body_bytes = 64\n";
    let gw = Gateway::start(extra).await;
    let req = Req {
        method: "POST",
        path: "/hooks/tiny".into(),
        headers: vec![],
        body: vec![b'x'; 65],
    };
    let r = send(gw.public, &req).await;
    assert_eq!(r.status, 413);
    assert!(r.text().contains("64 bytes"), "{}", r.text());
    gw.stop().await;
}

#[tokio::test]
async fn malformed_payloads_after_a_valid_signature_get_400() {
    let gw = gateway("").await;
    let loaded = sources();
    for body in ["{not json", "[1,2,3]", r#"{"event_name":"signer.done"}"#] {
        let req = sign_for(&loaded, "yousign", body.as_bytes(), 0, "x");
        let r = send(gw.public, &req).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed payload")
        );
    }
    assert_eq!(event_count(gw.admin).await, 0);
    // Refused, stored nowhere, and counted.
    let stats: Stats = get(gw.admin, "/v1/stats").await.body();
    assert_eq!(stats.webhooks["invalid"], 3, "{stats:?}");
    assert_eq!(stats.webhooks["accepted"], 0, "{stats:?}");
    gw.stop().await;
}

#[tokio::test]
async fn unknown_sources_and_paths_get_404_and_methods_405() {
    let gw = gateway("").await;
    let r = send(
        gw.public,
        &Req {
            method: "POST",
            path: "/hooks/nope".into(),
            headers: vec![],
            body: b"{}".to_vec(),
        },
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "unknown source");
    assert_eq!(get(gw.public, "/").await.status, 404);
    let r = send(
        gw.public,
        &Req {
            method: "PUT",
            path: "/hooks/sw".into(),
            headers: vec![],
            body: vec![],
        },
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // GET is only for handshakes.
    assert_eq!(get(gw.public, "/hooks/sw").await.status, 405);
    gw.stop().await;
}

#[tokio::test]
async fn dropbox_sign_gets_its_exact_answer() {
    let gw = gateway("").await;
    let req = signed(&sources(), fixture("dropbox"), "x");
    let r = send(gw.public, &req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello API Event Received");
    let dup = send(gw.public, &req).await;
    assert_eq!(dup.text(), "Hello API Event Received");
    assert_eq!(dup.header("countersign-duplicate"), Some("true"));
    let stored = get(gw.admin, "/v1/events?limit=1").await.json();
    assert_eq!(stored["events"][0]["event"]["auth"]["covers_body"], false);
    gw.stop().await;
}

#[tokio::test]
async fn adobe_sign_intent_and_echo() {
    let gw = gateway("").await;
    let intent = |id: &str| Req {
        method: "GET",
        path: "/hooks/adobe".into(),
        headers: vec![("X-AdobeSign-ClientId".into(), id.into())],
        body: vec![],
    };
    let ok = send(gw.public, &intent("adobe-client-1")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-adobesign-clientid"), Some("adobe-client-1"));
    assert_eq!(ok.json()["xAdobeSignClientId"], "adobe-client-1");
    assert_eq!(send(gw.public, &intent("someone-else")).await.status, 401);
    let post = send(gw.public, &signed(&sources(), fixture("adobe"), "x")).await;
    assert_eq!(post.status, 200);
    assert_eq!(post.header("x-adobesign-clientid"), Some("adobe-client-1"));
    assert_eq!(
        event_count(gw.admin).await,
        1,
        "the intent check stored nothing"
    );
    gw.stop().await;
}

#[tokio::test]
async fn boldsign_verification_is_acknowledged_without_storing() {
    let gw = gateway("").await;
    // Sent when the webhook is created, before its secret exists: unsigned.
    let body = br#"{"event":{"id":"7c872a5b","created":1617180024,"eventType":"Verification","environment":"Test"}}"#;
    let req = Req {
        method: "POST",
        path: "/hooks/boldsign".into(),
        headers: vec![],
        body: body.to_vec(),
    };
    let r = send(gw.public, &req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(event_count(gw.admin).await, 0);
    // Anything else unsigned is still refused.
    let other = Req {
        body: br#"{"event":{"id":"1","eventType":"Completed"}}"#.to_vec(),
        ..req
    };
    assert_eq!(send(gw.public, &other).await.status, 401);
    gw.stop().await;
}

#[tokio::test]
async fn pandadoc_arrays_store_each_event() {
    let gw = gateway("").await;
    let loaded = sources();
    let body = br#"[{"event":"recipient_completed","data":{"id":"pd-2"}},{"event":"document_state_changed","data":{"id":"pd-2","status":"document.completed"}}]"#;
    let mut req = sign_for(&loaded, "pandadoc", body, 0, "x");
    req.headers
        .push(("X-PandaDoc-Webhook-Event-Id".into(), "hook-9".into()));
    let r = send(gw.public, &req).await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned().leak() as &str)
        .collect();
    // The unsigned header does not name them: ids derive from the signed body.
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id.starts_with("cs_")), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    assert_eq!(event_count(gw.admin).await, 2);
    // The same body under another header id is the same two events.
    let mut again = sign_for(&loaded, "pandadoc", body, 0, "x");
    again
        .headers
        .push(("X-PandaDoc-Webhook-Event-Id".into(), "hook-10".into()));
    let r = send(gw.public, &again).await;
    assert_eq!(r.header("countersign-duplicate"), Some("true"));
    assert_eq!(event_count(gw.admin).await, 2);
    gw.stop().await;
}
