//! Redaction modes on nested and array paths, path checks, hash stability.

use serde_json::json;

use super::*;

/// A rule (also used by the pipeline's tests).
pub(crate) fn rule(path: &str, mode: RedactMode) -> RedactRule {
    RedactRule {
        path: path.into(),
        mode,
    }
}

fn event() -> Value {
    json!({
        "id": "e1",
        "signer": {"email": "jane@example.com", "name": "Jane Roe"},
        "payload": {
            "data": {"signer": {"email": "jane@example.com", "ip": "203.0.113.9"}},
            "recipients": [
                {"email": "a@example.com", "name": "A"},
                {"email": "b@example.org", "name": "Bo"},
                {"name": "no mail"}
            ],
            "value": 1200,
            "nothing": null
        }
    })
}

#[test]
fn remove_mask_and_hash_on_nested_and_array_paths() {
    let r = Redactor::new(
        &[
            rule("/payload/data/signer/ip", RedactMode::Remove),
            rule("/payload/recipients/*/email", RedactMode::Mask),
            rule("/signer/email", RedactMode::Hash),
            rule("/signer/name", RedactMode::Mask),
            rule("/payload/value", RedactMode::Mask),
            rule("/payload/nothing", RedactMode::Hash),
            rule("/payload/absent/deeper", RedactMode::Remove),
        ],
        Some(b"pepper"),
    )
    .unwrap();
    let mut v = event();
    r.apply(&mut v);
    assert_eq!(
        v["payload"]["data"]["signer"],
        json!({"email": "jane@example.com"})
    );
    assert_eq!(v["payload"]["recipients"][0]["email"], "a***@example.com");
    assert_eq!(v["payload"]["recipients"][1]["email"], "b***@example.org");
    assert_eq!(v["payload"]["recipients"][2], json!({"name": "no mail"}));
    assert_eq!(v["signer"]["name"], "J***");
    assert_eq!(v["payload"]["value"], "***");
    assert_eq!(v["payload"]["nothing"], Value::Null);
    let h = v["signer"]["email"].as_str().unwrap();
    assert_eq!(h.len(), 64);
    // HMAC-SHA-256("pepper", "jane@example.com"), computed independently.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"pepper").unwrap();
    mac.update(b"jane@example.com");
    assert_eq!(h, hex::encode(mac.finalize().into_bytes()));
    assert!(!v.to_string().contains("203.0.113.9"));
}

#[test]
fn the_same_pepper_gives_the_same_hash_and_another_does_not() {
    let rules = [rule("/signer/email", RedactMode::Hash)];
    let run = |pepper: &[u8]| {
        let mut v = event();
        Redactor::new(&rules, Some(pepper)).unwrap().apply(&mut v);
        v["signer"]["email"].clone()
    };
    assert_eq!(run(b"one"), run(b"one"));
    assert_ne!(run(b"one"), run(b"two"));
}

#[test]
fn remove_over_wildcards_and_indexes() {
    let r = Redactor::new(
        &[
            rule("/payload/recipients/0", RedactMode::Remove),
            rule("/payload/recipients/*/name", RedactMode::Remove),
            rule("/payload/data/*", RedactMode::Remove),
        ],
        None,
    )
    .unwrap();
    let mut v = event();
    r.apply(&mut v);
    assert_eq!(
        v["payload"]["recipients"],
        json!([{"email": "b@example.org"}, {}])
    );
    assert_eq!(v["payload"]["data"], json!({}));
}

#[test]
fn escapes_address_keys_with_slashes_and_tildes() {
    let r = Redactor::new(&[rule("/payload/a~1b/c~0d", RedactMode::Remove)], None).unwrap();
    let mut v = json!({"payload": {"a/b": {"c~d": 1, "e": 2}}});
    r.apply(&mut v);
    assert_eq!(v, json!({"payload": {"a/b": {"e": 2}}}));
}

#[test]
fn masks() {
    assert_eq!(mask(&json!("jane@example.com")), "j***@example.com");
    assert_eq!(mask(&json!("Alice")), "A***");
    assert_eq!(mask(&json!("A")), "***");
    assert_eq!(mask(&json!("@example.com")), "@***");
    assert_eq!(mask(&json!(42)), "***");
}

#[test]
fn bad_paths_are_named() {
    let bad = |p: &str, m, src| check(&rule(p, m), src).unwrap_err();
    assert_eq!(
        bad("payload/x", RedactMode::Remove, false),
        BadPath::NoSlash
    );
    assert_eq!(
        bad("/payload/a~2", RedactMode::Remove, false),
        BadPath::Escape
    );
    assert_eq!(bad("/id", RedactMode::Remove, true), BadPath::NotOnSource);
    assert_eq!(
        bad("/payload", RedactMode::Remove, true),
        BadPath::NotOnSource
    );
    assert_eq!(
        bad("/signer", RedactMode::Hash, true),
        BadPath::WholeSigner("hash")
    );
    for ok in ["/payload/x", "/signer/email", "/signer", "/document_id"] {
        check(&rule(ok, RedactMode::Remove), true).unwrap();
    }
    // Destinations may touch anything of the event.
    check(&rule("/envelope/metadata/iban", RedactMode::Hash), false).unwrap();
}
