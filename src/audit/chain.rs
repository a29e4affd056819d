//! The audit log's hash chain: one entry per fact, each holding the SHA-256
//! of the previous one, over a canonical serialization that is stable across
//! versions (ARCHITECTURE.md documents it):
//!
//! ```text
//! countersign-audit-v1 LF seq LF at_ms LF kind LF hex(prev) LF hex(SHA-256(canonical-json(data)))
//! ```
//!
//! `seq` and `at_ms` in decimal, `kind` as is (`[a-z_.]+`), `hex` lowercase,
//! and canonical JSON: no whitespace, object keys sorted by their UTF-8
//! bytes, strings escaped as RFC 8259 requires and nothing more (`"`, `\`,
//! control characters as `\n`, `\t`… or `\u00XX`), integers in decimal
//! (entries hold no floating-point numbers). The first entry's `prev` is 32
//! zero bytes. The data enters through its digest, so an export can show an
//! entry of someone else's envelope as a [`Link`] (its digest, not its data)
//! and the chain through it still checks.
//!
//! Pure: building entries and hashing them (the verify module checks a run
//! of them).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The domain tag of an entry's hashed bytes.
const TAG: &str = "countersign-audit-v1";

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev` of the first entry.
pub const GENESIS: Hash = [0; 32];

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: i64,
    /// `webhook.accepted`, `webhook.duplicate`, `envelope.transition`, …
    pub kind: String,
    pub data: Value,
    /// The previous entry's hash (hex in JSON).
    #[serde(with = "hex_hash")]
    pub prev: Hash,
}

impl Entry {
    /// SHA-256 of the data's canonical JSON.
    pub fn data_digest(&self) -> Hash {
        let mut out = Vec::with_capacity(256);
        canonical_json(&self.data, &mut out);
        Sha256::digest(&out).into()
    }

    /// The entry without its data: what the chain needs of it.
    pub fn link(&self) -> Link {
        Link {
            seq: self.seq,
            at_ms: self.at_ms,
            kind: self.kind.clone(),
            prev: self.prev,
            data_sha256: self.data_digest(),
        }
    }

    /// The bytes the hash covers.
    pub fn canonical(&self) -> Vec<u8> {
        canonical(
            self.seq,
            self.at_ms,
            &self.kind,
            &self.prev,
            &self.data_digest(),
        )
    }

    pub fn hash(&self) -> Hash {
        Sha256::digest(self.canonical()).into()
    }
}

/// An entry as the chain sees it: everything but the data, which enters
/// through its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub seq: u64,
    pub at_ms: i64,
    pub kind: String,
    #[serde(with = "hex_hash")]
    pub prev: Hash,
    #[serde(with = "hex_hash")]
    pub data_sha256: Hash,
}

impl Link {
    pub fn hash(&self) -> Hash {
        Sha256::digest(canonical(
            self.seq,
            self.at_ms,
            &self.kind,
            &self.prev,
            &self.data_sha256,
        ))
        .into()
    }
}

/// An entry from its data already in canonical JSON (`data`; the writer's
/// path, which builds no `Value`): its hash and the JSON it is stored as,
/// the same hash [`Entry::hash`] gives and JSON that reads back as the
/// [`Entry`]. `kind` is `[a-z_.]+` (no escaping).
pub fn seal(seq: u64, at_ms: i64, kind: &str, prev: &Hash, data: &[u8]) -> (Hash, Vec<u8>) {
    let digest: Hash = Sha256::digest(data).into();
    let mut head = [0u8; 256];
    let hash = Sha256::digest(canonical_into(seq, at_ms, kind, prev, &digest, &mut head)).into();
    let mut json = Vec::with_capacity(data.len() + 128 + kind.len());
    json.extend_from_slice(b"{\"seq\":");
    json.extend_from_slice(seq.to_string().as_bytes());
    json.extend_from_slice(b",\"at_ms\":");
    json.extend_from_slice(at_ms.to_string().as_bytes());
    json.extend_from_slice(b",\"kind\":\"");
    json.extend_from_slice(kind.as_bytes());
    json.extend_from_slice(b"\",\"prev\":\"");
    let mut hex = [0u8; 64];
    hex::encode_to_slice(prev, &mut hex).expect("64 digits");
    json.extend_from_slice(&hex);
    json.extend_from_slice(b"\",\"data\":");
    json.extend_from_slice(data);
    json.push(b'}');
    (hash, json)
}

fn canonical(seq: u64, at_ms: i64, kind: &str, prev: &Hash, data: &Hash) -> Vec<u8> {
    let mut buf = [0u8; 256];
    canonical_into(seq, at_ms, kind, prev, data, &mut buf).to_vec()
}

/// The hashed bytes of an entry, written into `buf` (no allocation; kinds
/// are short, so 256 bytes hold them).
fn canonical_into<'b>(
    seq: u64,
    at_ms: i64,
    kind: &str,
    prev: &Hash,
    data: &Hash,
    buf: &'b mut [u8; 256],
) -> &'b [u8] {
    use std::io::Write as _;
    let mut w = &mut buf[..];
    let _ = write!(w, "{TAG}\n{seq}\n{at_ms}\n{kind}\n");
    let room = w.len();
    let used = 256 - room;
    let (mut p, mut d) = ([0u8; 64], [0u8; 64]);
    hex::encode_to_slice(prev, &mut p).expect("64 digits");
    hex::encode_to_slice(data, &mut d).expect("64 digits");
    assert!(used + 129 <= 256, "audit entry kind `{kind}` too long");
    buf[used..used + 64].copy_from_slice(&p);
    buf[used + 64] = b'\n';
    buf[used + 65..used + 129].copy_from_slice(&d);
    &buf[..used + 129]
}

/// `v` as canonical JSON (see the module doc).
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(k, out);
                out.push(b':');
                canonical_json(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(x, out);
            }
            out.push(b']');
        }
        Value::String(s) => string(s, out),
        // null, booleans and numbers: serde_json's shortest form.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The entry at which the chain stops holding.
    pub seq: u64,
    pub problem: String,
    /// What the link should have been, and what was found (hex).
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "entry {}: {} (expected {}, found {})",
            self.seq, self.problem, self.expected, self.found
        )
    }
}

pub(crate) mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &super::Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<super::Hash, D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes (64 hex digits)"))
    }
}

/// A valid chain of `n` entries, for tests.
#[cfg(test)]
pub(crate) fn sample(n: u64) -> Vec<Entry> {
    let mut prev = GENESIS;
    (1..=n)
        .map(|seq| {
            let e = Entry {
                seq,
                at_ms: 1_000 * seq as i64,
                kind: "webhook.accepted".into(),
                data: serde_json::json!({ "source": "ds", "event_ids": [format!("e{seq}")], "z": 1, "a": "é\n" }),
                prev,
            };
            prev = e.hash();
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_is_fixed() {
        let e = Entry {
            seq: 7,
            at_ms: 42,
            kind: "webhook.accepted".into(),
            data: json!({ "b": [1, 2, null, true], "a": { "y": "\"q\"\t", "x": -3 } }),
            prev: GENESIS,
        };
        let json = r#"{"a":{"x":-3,"y":"\"q\"\t"},"b":[1,2,null,true]}"#;
        let text = String::from_utf8(e.canonical()).unwrap();
        assert_eq!(
            text,
            format!(
                "countersign-audit-v1\n7\n42\nwebhook.accepted\n{}\n{}",
                "0".repeat(64),
                hex::encode(Sha256::digest(json.as_bytes()))
            )
        );
        // Known digests: the format may never change under existing logs
        // (tools/audit_verify.py's self-test checks the same two).
        assert_eq!(
            hex::encode(e.data_digest()),
            "396a67cb4bb7682a552ae7ec1699ff84933db3de6f795e970ef3e1a3424f33db"
        );
        assert_eq!(
            hex::encode(e.hash()),
            "baa1bf5672048f237a4c4f667020394ffa027c390df3fc39cad10e2e1d52498f"
        );
        assert_eq!(e.link().hash(), e.hash());
    }

    #[test]
    fn sealing_canonical_bytes_equals_the_entry_path_and_serde_escapes_canonically() {
        // serde_json's output of sorted fields is canonical JSON: the same
        // escaping, every control character included.
        let nasty: String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
        let data = json!({ "a": nasty, "b": [1, -2, null, true], "c": { "x": "\"\\" } });
        let mut canon = Vec::new();
        canonical_json(&data, &mut canon);
        assert_eq!(serde_json::to_vec(&data).unwrap(), canon);
        let e = Entry {
            seq: 9,
            at_ms: -5,
            kind: "webhook.accepted".into(),
            data,
            prev: [7; 32],
        };
        let (hash, json) = seal(e.seq, e.at_ms, &e.kind, &e.prev, &canon);
        assert_eq!(hash, e.hash());
        let back: Entry = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, e);
    }
}
