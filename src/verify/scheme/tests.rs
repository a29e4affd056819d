//! The published and computed test vectors from the provider reference, one table,
//! each checked through the real verifier (and tampered copies checked to fail).

use super::*;
use http::{HeaderMap, HeaderValue};

struct Case {
    name: &'static str,
    scheme: Scheme,
    secret: &'static [u8],
    headers: &'static [(&'static str, &'static str)],
    query: Option<&'static str>,
    body: &'static str,
    now: i64,
}

fn std_key(secret: &str) -> Vec<u8> {
    decode_base64(secret.strip_prefix("whsec_").unwrap()).unwrap()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "standard webhooks vector 1",
            scheme: Scheme::StandardWebhooks,
            secret: b"",
            headers: &[
                ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                ("webhook-timestamp", "1614265330"),
                (
                    "webhook-signature",
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                ),
            ],
            query: None,
            body: r#"{"test": 2432232314}"#,
            now: 1614265330,
        },
        Case {
            name: "standard webhooks vector 2, with a second stale entry",
            scheme: Scheme::StandardWebhooks,
            secret: b"",
            headers: &[
                ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
                ("webhook-timestamp", "1649367553"),
                (
                    "webhook-signature",
                    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
                ),
            ],
            query: None,
            body: r#"{"email":"test@example.com","username":"test_user"}"#,
            now: 1649367600,
        },
        Case {
            name: "github",
            scheme: Scheme::HeaderMac(HeaderMac::body(
                "x-hub-signature-256",
                "sha256=",
                Encoding::Hex,
            )),
            secret: b"It's a Secret to Everybody",
            headers: &[(
                "x-hub-signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )],
            query: None,
            body: "Hello, World!",
            now: 0,
        },
        Case {
            name: "zoho sign",
            scheme: Scheme::HeaderMac(HeaderMac::body(
                "x-zs-webhook-signature",
                "",
                Encoding::Base64,
            )),
            secret: b"thisisthesamplekeyfortestingpurposes",
            headers: &[(
                "x-zs-webhook-signature",
                "drbSrM4H816RYKpZiRBLddUa0yHaTrwjtY04sIZFZus=",
            )],
            query: None,
            body: r#"{{"requests":{"request_name":"Test Name"},"notifications":{"operation_type":"RequestSigningSuccess"}}"#,
            now: 0,
        },
        Case {
            name: "docusign",
            scheme: Scheme::DocuSign,
            secret: b"dskey",
            headers: &[
                (
                    "x-docusign-signature-1",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                (
                    "x-docusign-signature-2",
                    "8No8NR/h3uI3kRqualm32IKAsqwWxZEnIIF1U0LOrN8=",
                ),
            ],
            query: None,
            body: r#"{"event":"envelope-completed","data":{"envelopeId":"e1"}}"#,
            now: 0,
        },
        Case {
            name: "yousign",
            scheme: Scheme::HeaderMac(HeaderMac::body(
                "x-yousign-signature-256",
                "sha256=",
                Encoding::Hex,
            )),
            secret: b"keySecret",
            headers: &[(
                "x-yousign-signature-256",
                "sha256=b9f685eaab29cf702f5a70d1514d5d36d84d1211851d4b3ff0e37fc01e90480d",
            )],
            query: None,
            body: r#"{"event_id":"e1","event_name":"signer.done"}"#,
            now: 0,
        },
        Case {
            name: "boldsign",
            scheme: Scheme::BoldSign,
            secret: b"bskey",
            headers: &[(
                "x-boldsign-signature",
                "t=1668693823, s0=0bc11f3bbc9a307ae70ef17ee431db1e6b28b484207dad7dd42b93e2aece6406",
            )],
            query: None,
            body: r#"{"event":{"id":"e1","eventType":"Completed"}}"#,
            now: 1668693900,
        },
        Case {
            name: "docuseal",
            scheme: Scheme::DocuSeal,
            secret: b"whsec_test",
            headers: &[(
                "x-docuseal-signature",
                "1700000000.9904aa5843da90cce5ee8be1b332851a0b760615404a3cb553253ceaca3c27dd",
            )],
            query: None,
            body: r#"{"event_type":"form.completed"}"#,
            now: 1700000100,
        },
        Case {
            name: "stripe-style",
            scheme: Scheme::Stripe,
            secret: b"whsec_test_secret",
            headers: &[(
                "stripe-signature",
                "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a",
            )],
            query: None,
            body: r#"{"id":"evt_test_webhook","object":"event"}"#,
            now: 1492774600,
        },
        Case {
            name: "signnow (base64)",
            scheme: Scheme::HeaderMac(HeaderMac::body(
                "x-signnow-signature",
                "",
                Encoding::HexOrBase64,
            )),
            secret: b"snkey",
            headers: &[(
                "x-signnow-signature",
                "q/ju166jv2KMkRldNkWGGBjeJcmccZDE/RdS/nmN4JQ=",
            )],
            query: None,
            body: r#"{"meta":{"event":"document.complete"},"content":{"document_id":"d1"}}"#,
            now: 0,
        },
        Case {
            name: "pandadoc",
            scheme: Scheme::QueryMac { param: "signature" },
            secret: b"pdkey",
            headers: &[],
            query: Some(
                "signature=6b21736f052dfcd3eee04e425f87ec5a512560033269eca88cd44160f5e68dc6",
            ),
            body: r#"[{"event":"document_state_changed","data":{"id":"d1","status":"document.completed"}}]"#,
            now: 0,
        },
    ]
}

fn key_for(c: &Case) -> Key {
    match c.scheme {
        Scheme::StandardWebhooks if c.name.contains("vector 1") => {
            Key::new(std_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        }
        Scheme::StandardWebhooks => Key::new(std_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")),
        _ => Key::new(c.secret.to_vec()),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn run(c: &Case, keys: &[Key], body: &[u8], now: i64) -> Result<Verified, VerifyError> {
    let h = headers(c.headers);
    let req = Inbound {
        headers: &h,
        query: c.query,
        token: None,
        body,
        now,
    };
    verify(&c.scheme, keys, 300, &req)
}

#[test]
fn every_vector_verifies() {
    for c in cases() {
        let v = run(&c, &[key_for(&c)], c.body.as_bytes(), c.now);
        assert!(v.is_ok(), "{}: {v:?}", c.name);
        assert_eq!(v.unwrap().key_index(), Some(0), "{}", c.name);
    }
}

#[test]
fn rotated_key_reports_its_index() {
    for c in cases() {
        let keys = [Key::new(b"old-secret".to_vec()), key_for(&c)];
        let v = run(&c, &keys, c.body.as_bytes(), c.now).unwrap();
        assert_eq!(v.key_index(), Some(1), "{}", c.name);
    }
}

#[test]
fn tampered_body_fails() {
    for c in cases() {
        let mut body = c.body.as_bytes().to_vec();
        body.push(b' ');
        let v = run(&c, &[key_for(&c)], &body, c.now);
        assert_eq!(v, Err(VerifyError::NoMatch), "{}", c.name);
    }
}

#[test]
fn wrong_key_fails() {
    for c in cases() {
        let v = run(&c, &[Key::new(b"wrong".to_vec())], c.body.as_bytes(), c.now);
        assert_eq!(v, Err(VerifyError::NoMatch), "{}", c.name);
    }
}

#[test]
fn stale_timestamps_fail() {
    for c in cases().into_iter().filter(|c| {
        matches!(
            c.scheme,
            Scheme::StandardWebhooks | Scheme::BoldSign | Scheme::DocuSeal | Scheme::Stripe
        )
    }) {
        let v = run(&c, &[key_for(&c)], c.body.as_bytes(), c.now + 10_000);
        assert_eq!(v, Err(VerifyError::Stale), "{}", c.name);
    }
}

#[test]
fn stripe_accepts_future_but_standard_webhooks_does_not() {
    let all = cases();
    let stripe = all.iter().find(|c| c.name == "stripe-style").unwrap();
    assert!(
        run(
            stripe,
            &[key_for(stripe)],
            stripe.body.as_bytes(),
            1492774577 - 10_000
        )
        .is_ok()
    );
    let sw = &all[0];
    let v = run(sw, &[key_for(sw)], sw.body.as_bytes(), 1614265330 - 10_000);
    assert_eq!(v, Err(VerifyError::Stale));
}

#[test]
fn missing_credentials_are_reported() {
    for c in cases() {
        let h = HeaderMap::new();
        let req = Inbound {
            headers: &h,
            query: None,
            token: None,
            body: c.body.as_bytes(),
            now: c.now,
        };
        let err = verify(&c.scheme, &[key_for(&c)], 300, &req).unwrap_err();
        assert!(
            matches!(err, VerifyError::Missing(_)),
            "{}: {err:?}",
            c.name
        );
    }
}

#[test]
fn sign_then_verify_round_trips() {
    let generic = HeaderMac {
        header: HeaderName::from_static("x-sig"),
        prefix: "v1=".into(),
        encoding: Encoding::Base64,
        algorithm: Algorithm::Sha512,
        template: Template::parse("{id}:{timestamp}:{body}").unwrap(),
        timestamp_header: Some(HeaderName::from_static("x-ts")),
        id_header: Some(HeaderName::from_static("x-id")),
    };
    let schemes = [
        Scheme::StandardWebhooks,
        Scheme::Stripe,
        Scheme::BoldSign,
        Scheme::DocuSeal,
        Scheme::DocuSign,
        Scheme::HeaderMac(generic),
        Scheme::QueryMac { param: "signature" },
        Scheme::SharedSecretHeader {
            header: "x-documenso-secret",
        },
        Scheme::ClientId,
        Scheme::UrlToken,
    ];
    let key = Key::new(b"round-trip-key".to_vec());
    for s in schemes {
        let sig = sign(&s, &key, b"{\"a\":1}", 1_700_000_000, "evt_1");
        let h = headers(
            &sig.headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let req = Inbound {
            headers: &h,
            query: sig.query.as_deref(),
            token: sig.token.as_deref(),
            body: b"{\"a\":1}",
            now: 1_700_000_010,
        };
        let v = verify(&s, std::slice::from_ref(&key), 300, &req);
        assert!(v.is_ok(), "{s:?}: {v:?}");
    }
}

#[test]
fn dropbox_sign_vectors() {
    let key =
        Key::new(b"324e3b0840f065eb51f3fd63231d0d33daa35d4ed10d27718839e81737065782".to_vec());
    let ok = verify_event_hash(
        std::slice::from_ref(&key),
        "1348177752",
        "signature_request_sent",
        "08d45a6b7677492b78be030cef18cfeaece8fe67e163cc8e526ee638ad483756",
    )
    .unwrap();
    assert!(!ok.covers_body());
    assert!(
        verify_event_hash(
            std::slice::from_ref(&key),
            "1348177752",
            "account_confirmed",
            "6dc5b7aad93cf54915e0089d6c31d61b3833f66f51459171c69f8fa211308848",
        )
        .is_ok()
    );
    assert_eq!(
        verify_event_hash(
            std::slice::from_ref(&key),
            "1348177753",
            "account_confirmed",
            "6dc5b7aad93cf54915e0089d6c31d61b3833f66f51459171c69f8fa211308848",
        ),
        Err(VerifyError::NoMatch)
    );
    assert_eq!(
        sign_event_hash(&key, "1348177752", "signature_request_sent"),
        "08d45a6b7677492b78be030cef18cfeaece8fe67e163cc8e526ee638ad483756"
    );
}

#[test]
fn templates_parse_or_explain() {
    assert_eq!(
        Template::parse("{timestamp}.{body}").unwrap().0,
        vec![
            TemplatePart::Timestamp,
            TemplatePart::Literal(".".into()),
            TemplatePart::Body
        ]
    );
    assert!(
        Template::parse("{ts}.{body}")
            .unwrap_err()
            .contains("unknown placeholder")
    );
    assert!(
        Template::parse("{timestamp}")
            .unwrap_err()
            .contains("exactly once")
    );
    assert!(Template::parse("{body").unwrap_err().contains("unclosed"));
}
