//! Providers whose own scheme is weak: Dropbox Sign's `event_hash` (fresh
//! `event_time`, multipart only, the hash not kept), Adobe Sign's public
//! client id, and the `url_token` every source can require on top.

use super::super::testkit::{NOW, authenticate_at, run, source};
use crate::verify::VerifyError;

const DROPBOX: &str = "provider = \"dropbox_sign\"\nsecrets = [\"dbx-api-key\"]";
const BODY: &str = r#"{"event":{"event_time":"1","event_type":"signature_request_all_signed","event_metadata":{"related_signature_id":"sig-1"}},"signature_request":{"signature_request_id":"sr-1"}}"#;

#[test]
fn dropbox_sign_needs_a_fresh_event_time() {
    let src = source(DROPBOX);
    let old = src.sign(BODY.as_bytes(), NOW - 3600, "i").unwrap();
    assert_eq!(
        authenticate_at(&src, &old, NOW, None, None).err(),
        Some(VerifyError::Stale),
        "a seen hash an hour old is refused"
    );
    let fresh = src.sign(BODY.as_bytes(), NOW - 10, "i").unwrap();
    assert!(authenticate_at(&src, &fresh, NOW, None, None).is_ok());
}

#[test]
fn dropbox_sign_takes_only_its_form_post() {
    let src = source(DROPBOX);
    let signed = src.sign(BODY.as_bytes(), NOW, "i").unwrap();
    // The JSON the form carries, posted as a plain JSON body.
    let mut plain = signed.clone();
    plain.body = signed.form_field.clone().unwrap().1;
    let r = authenticate_at(&src, &plain, NOW, None, Some("application/json"));
    assert_eq!(r.err(), Some(VerifyError::Missing("json form field")));
}

#[test]
fn dropbox_sign_event_hash_is_neither_stored_nor_forwarded() {
    let events = run(&source(DROPBOX), BODY, &[], None).unwrap();
    let e = &events[0];
    assert_eq!(
        e.payload["event"]["event_type"],
        "signature_request_all_signed"
    );
    assert!(
        e.payload["event"].get("event_hash").is_none(),
        "{}",
        e.payload
    );
}

#[test]
fn a_url_token_is_required_when_set() {
    let token = "tok-0123456789abcdef";
    for provider in [
        DROPBOX,
        "provider = \"adobe_sign\"\nsecrets = [\"client-1\"]",
    ] {
        let src = source(&format!("{provider}\nurl_token = \"{token}\""));
        let body = if provider == DROPBOX {
            BODY
        } else {
            r#"{"webhookNotificationId":"n-1","event":"AGREEMENT_WORKFLOW_COMPLETED","agreement":{"id":"a"}}"#
        };
        let signed = src.sign(body.as_bytes(), NOW, "i").unwrap();
        assert_eq!(
            signed.signature.token.as_deref(),
            Some(token),
            "sign puts it in the path"
        );
        assert!(
            authenticate_at(&src, &signed, NOW, None, None).is_ok(),
            "{provider}"
        );
        assert_eq!(
            authenticate_at(&src, &signed, NOW, Some(None), None).err(),
            Some(VerifyError::Missing("URL token")),
            "{provider}"
        );
        assert_eq!(
            authenticate_at(&src, &signed, NOW, Some(Some("tok-0123456789abcdeX")), None).err(),
            Some(VerifyError::NoMatch),
            "{provider}"
        );
    }
}

#[test]
fn a_url_token_where_none_is_set_is_refused_not_ignored() {
    let src = source("provider = \"adobe_sign\"\nsecrets = [\"client-1\"]");
    let body = r#"{"webhookNotificationId":"n-1","event":"AGREEMENT_WORKFLOW_COMPLETED","agreement":{"id":"a"}}"#;
    let signed = src.sign(body.as_bytes(), NOW, "i").unwrap();
    assert!(authenticate_at(&src, &signed, NOW, None, None).is_ok());
    assert_eq!(
        authenticate_at(&src, &signed, NOW, Some(Some("anything-at-all-1")), None).err(),
        Some(VerifyError::Unexpected("URL token"))
    );
}

#[test]
fn the_adobe_handshake_needs_the_url_token_too() {
    let src = source(
        "provider = \"adobe_sign\"\nsecrets = [\"client-1\"]\nurl_token = \"tok-0123456789abcdef\"",
    );
    let mut headers = http::HeaderMap::new();
    headers.insert("x-adobesign-clientid", "client-1".parse().unwrap());
    let req = |token| crate::verify::Inbound {
        headers: &headers,
        query: None,
        token,
        body: b"",
        now: NOW,
    };
    assert!(matches!(
        src.handshake(&req(Some("tok-0123456789abcdef")), true),
        Some(Ok(_))
    ));
    assert!(matches!(src.handshake(&req(None), true), Some(Err(_))));
}

#[test]
fn url_token_config_is_checked_and_weak_providers_warn_without_it() {
    let load = |extra: &str| crate::app::load_str(&format!("[[sources]]\nid = \"s\"\n{extra}\n"));
    let e = load("provider = \"skribble\"\nsecrets = [\"tok-0123456789abcdef\"]\nurl_token = \"tok-0123456789abcdef\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sources[0].url_token") && e.contains("already"),
        "{e}"
    );
    let e = load(&format!("{DROPBOX}\nurl_token = \"short\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sources[0].url_token") && e.contains("16"),
        "{e}"
    );
    for weak in [DROPBOX, "provider = \"adobe_sign\"\nsecrets = [\"c\"]"] {
        let l = load(weak).unwrap();
        assert!(
            l.warnings.iter().any(|w| w.key == "sources[0].url_token"),
            "{weak}: {:?}",
            l.warnings
        );
        let l = load(&format!("{weak}\nurl_token = \"tok-0123456789abcdef\"")).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }
    let l = load("provider = \"yousign\"\nsecrets = [\"k\"]").unwrap();
    assert!(l.warnings.is_empty(), "a MAC over the body needs no token");
}
