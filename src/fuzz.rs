//! Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the
//! docs). Each takes arbitrary bytes and must never panic; what they return
//! is ignored.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::providers::Source;
use crate::verify::Inbound;

/// Every provider's source, and `generic_hmac` variants, built once.
fn sources() -> &'static [Source] {
    static S: OnceLock<Vec<Source>> = OnceLock::new();
    S.get_or_init(|| {
        let mut toml = String::new();
        for (i, (provider, secret)) in [
            ("standard_webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("stripe", "k"),
            ("github", "k"),
            ("docusign", "k"),
            ("dropbox_sign", "k"),
            ("adobe_sign", "k"),
            ("yousign", "k"),
            ("boldsign", "k"),
            ("docuseal", "k"),
            ("zoho_sign", "k"),
            ("signnow", "k"),
            ("pandadoc", "k"),
            ("opensign", "k"),
            ("documenso", "k"),
            ("skribble", "token-0123456789ab"),
            ("signius", "token-0123456789ab"),
        ]
        .iter()
        .enumerate()
        {
            toml.push_str(&format!(
                "[[sources]]\nid = \"s{i}\"\nprovider = \"{provider}\"\nsecrets = [\"{secret}\"]\n"
            ));
        }
        toml.push_str(
            "[[sources]]\nid = \"g1\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"x-sig\"\nprefix = \"v1=\"\nencoding = \"base64\"\nalgorithm = \"sha512\"\ntemplate = \"{id}:{timestamp}:{body}\"\nid_header = \"x-id\"\ntimestamp_header = \"x-ts\"\n",
        );
        toml.push_str(
            "[[sources]]\nid = \"g2\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"x-sig\"\n[sources.fields]\nevent_type = \"/a/0/b\"\nenvelope_id = \"/~1x/~0y\"\nevent_id = \"/id\"\nsigner_email = \"/s/e\"\noccurred_at = \"/t\"\nsandbox = \"/sb\"\n",
        );
        crate::app::load_str(&toml)
            .expect("the fuzz sources load")
            .sources
    })
}

/// Header names the schemes read, all set to the fuzzed value.
const SIGNATURE_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "stripe-signature",
    "x-hub-signature-256",
    "x-docusign-signature-1",
    "x-docusign-signature-2",
    "x-adobesign-clientid",
    "x-yousign-signature-256",
    "x-boldsign-signature",
    "x-docuseal-signature",
    "x-zs-webhook-signature",
    "x-signnow-signature",
    "x-webhook-signature",
    "x-documenso-secret",
    "x-sig",
    "x-id",
    "x-ts",
    "content-type",
];

/// Splits `data` at the first NUL: (a header-ish value, the rest).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Every signature parser: the first part of `data` as every signature
/// header, the query and the URL token; the rest as the body.
pub fn signature_headers(data: &[u8]) {
    let (value, body) = split(data);
    let text = String::from_utf8_lossy(value);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(value) {
        for name in SIGNATURE_HEADERS {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let req = Inbound {
        headers: &headers,
        query: Some(&text),
        token: Some(&text),
        body,
        now: 1_700_000_000,
    };
    for s in sources() {
        let _ = s.authenticate(&req);
        let _ = s.handshake(&req, true);
        let _ = s.handshake(&req, false);
    }
}

/// The multipart/form reader: the first part of `data` as the content type.
pub fn multipart(data: &[u8]) {
    let (ct, body) = split(data);
    let ct = String::from_utf8_lossy(ct);
    let _ = crate::providers::multipart::form_field(&ct, body, "json");
}

/// Every normalizer (and the generic JSON-pointer mapping) on `data` as the
/// body: signed with each source's own key, so authentication passes and the
/// normalizer sees the bytes.
pub fn normalize(data: &[u8]) {
    for s in sources() {
        let Ok(signed) = s.sign(data, 1_700_000_000, "msg_fuzz") else {
            continue;
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &signed.signature.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.append(k, v);
            }
        }
        let req = Inbound {
            headers: &headers,
            query: signed.signature.query.as_deref(),
            token: signed.signature.token.as_deref(),
            body: &signed.body,
            now: 1_700_000_000,
        };
        if let Ok((verified, pre)) = s.authenticate(&req) {
            let _ = s.normalize(&req, &verified, pre, 1_700_000_000_000);
        }
    }
}

/// The config loader on arbitrary TOML (layers, validation, every
/// component's `from_config`); errors must never print a value or panic.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::app::load_str(&text).map_err(|e| e.to_string());
}

/// The admin API's query and path parsing, and its `Host` check.
pub fn admin_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let q = Some(text.as_ref());
    for name in ["limit", "before", "after", "endpoint", "source"] {
        let _ = crate::admin::query::param(q, name);
        let _ = crate::admin::query::number(q, name);
    }
    let _ = crate::admin::query::limit(q, 50, 1000);
    let _ = crate::admin::views::parse_dead_letter_id(&text);
    let _ = crate::admin::Guard::default().host_allowed(&text);
}

/// Redaction rules on arbitrary JSON: the first part of `data` holds the
/// rules' paths, one per line (modes in turn: remove, mask, hash), the rest
/// the document. Paths are checked as a source's and a destination's would
/// be; every accepted rule is applied. Also the e-mail plausibility check.
pub fn redact(data: &[u8]) {
    use crate::config::{RedactMode, RedactRule};
    let (paths, doc) = split(data);
    let paths = String::from_utf8_lossy(paths);
    let modes = [RedactMode::Remove, RedactMode::Mask, RedactMode::Hash];
    let rules: Vec<RedactRule> = (paths.lines().enumerate())
        .map(|(i, p)| RedactRule {
            path: p.to_owned(),
            mode: modes[i % 3],
        })
        .filter(|r| {
            let _ = crate::privacy::check(r, true);
            crate::privacy::check(r, false).is_ok()
        })
        .collect();
    let _ = crate::plausibility::is_email(&paths);
    if let Some(r) = crate::privacy::Redactor::new(&rules, Some(b"fuzz-pepper-0123")) {
        let _ = r.apply_bytes(doc);
    }
}

#[cfg(test)]
mod tests {
    /// The entry points run on a few inputs (the fuzzer runs them on many).
    #[test]
    fn entry_points_take_any_bytes() {
        for data in [
            &b""[..],
            b"\0",
            b"t=1,v1=abc\0{\"type\":\"x.completed\"}",
            b"multipart/form-data; boundary=x\0--x\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{}\r\n--x--",
            b"[server]\nlisten = 1",
            b"limit=99999999999999999999999&after=a:b:c",
            b"/payload/*/a\n/payload/0\n/*/*\n/~\0{\"payload\":[{\"a\":1},[2,3],\"x@y.z\"]}",
            &[0xff, 0xfe, 0, 0x80],
        ] {
            super::signature_headers(data);
            super::multipart(data);
            super::normalize(data);
            super::config(data);
            super::admin_query(data);
            super::redact(data);
        }
    }

    /// Inputs that once crashed (kept in `fuzz/regressions/<target>/`) stay
    /// fixed.
    #[test]
    fn regressions_stay_fixed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 6] = [
            ("signature_headers", super::signature_headers),
            ("multipart", super::multipart),
            ("normalize", super::normalize),
            ("config", super::config),
            ("admin_query", super::admin_query),
            ("redact", super::redact),
        ];
        let mut ran = 0;
        for (name, run) in targets {
            let Ok(dir) = std::fs::read_dir(root.join(name)) else {
                continue;
            };
            for f in dir {
                run(&std::fs::read(f.unwrap().path()).unwrap());
                ran += 1;
            }
        }
        assert!(ran >= 4, "the kept inputs were found ({ran})");
    }
}
