//! MAC primitives: HMAC over message parts, decoding, constant-time comparison,
//! timestamp windows.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::Key;
use serde::{Deserialize, Serialize};

/// Hash function of an HMAC scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
}

/// HMAC of the concatenation of `parts` under `key`.
pub fn hmac(alg: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Algorithm::Sha256 => {
            let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha512 => {
            let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// Constant-time equality. Lengths are not secret (a MAC's length is public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Constant-time equality of two secrets that hides their lengths too: both are
/// hashed first, so comparing a token reveals nothing about its size.
pub fn secret_eq(given: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected);
    bool::from(a.ct_eq(&b))
}

/// Tries every key against every candidate MAC; returns the index of the first key
/// that matches any candidate.
pub fn match_any(
    keys: &[Key],
    candidates: &[Vec<u8>],
    compute: impl Fn(&[u8]) -> Vec<u8>,
) -> Option<usize> {
    keys.iter().position(|key| {
        let expected = compute(key.bytes());
        candidates.iter().any(|c| ct_eq(c, &expected))
    })
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim()).ok()
}

pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s.trim()).ok()
}

pub fn encode_base64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// Reads a unix timestamp; values above 10^11 are taken as milliseconds.
pub fn parse_unix(s: &str) -> Option<i64> {
    let v: i64 = s.trim().parse().ok()?;
    Some(if v > 100_000_000_000 { v / 1000 } else { v })
}

/// Whether `ts` lies in the window around `now`. With `past_only`, timestamps in
/// the future are accepted (Stripe's rule); otherwise the window is symmetric.
pub fn within(ts: i64, now: i64, tolerance_secs: i64, past_only: bool) -> bool {
    let age = now.saturating_sub(ts);
    if past_only {
        age <= tolerance_secs
    } else {
        age.abs() <= tolerance_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_vector() {
        let mac = hmac(
            Algorithm::Sha256,
            b"It's a Secret to Everybody",
            &[b"Hello, World!"],
        );
        assert_eq!(
            hex::encode(mac),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn parts_are_concatenated() {
        let whole = hmac(Algorithm::Sha256, b"k", &[b"abc.def"]);
        let split = hmac(Algorithm::Sha256, b"k", &[b"abc", b".", b"def"]);
        assert_eq!(whole, split);
    }

    #[test]
    fn comparisons() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(secret_eq(b"tok", b"tok"));
        assert!(!secret_eq(b"tok", b"tok2"));
    }

    #[test]
    fn windows() {
        assert!(within(1000, 1300, 300, false));
        assert!(!within(1000, 1301, 300, false));
        assert!(!within(1301, 1000, 300, false));
        assert!(within(5000, 1000, 300, true));
        assert!(!within(699, 1000, 300, true));
    }

    #[test]
    fn unix_millis() {
        assert_eq!(parse_unix("1555062604837"), Some(1555062604));
        assert_eq!(parse_unix("1348177752"), Some(1348177752));
        assert_eq!(parse_unix("x"), None);
    }
}
