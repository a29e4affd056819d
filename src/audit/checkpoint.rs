//! Signed checkpoints: the chain's head hash at a sequence number, signed
//! with the gateway's Ed25519 key, so a rewrite of the whole chain by someone
//! with the disk but not the key shows. The signed message is fixed:
//!
//! ```text
//! countersign-audit-checkpoint-v1 LF seq LF hex(head) LF at_ms LF key_id
//! ```
//!
//! `key_id` is the first 8 bytes (16 hex digits) of SHA-256 over the public
//! key, so a verifier with several public keys (after a rotation) picks the
//! right one.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::Hash;

const TAG: &str = "countersign-audit-checkpoint-v1";

/// A signed head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    /// The hash of entry `seq` (hex).
    pub head: String,
    pub at_ms: i64,
    pub key_id: String,
    /// Ed25519 over the message above (hex).
    pub signature: String,
}

fn message(seq: u64, head: &str, at_ms: i64, key_id: &str) -> Vec<u8> {
    format!("{TAG}\n{seq}\n{head}\n{at_ms}\n{key_id}").into_bytes()
}

/// A signing key from its 64 hex digits (the 32-byte seed).
pub fn signing_key(hex_seed: &str) -> Result<SigningKey, String> {
    let bytes = hex::decode(hex_seed.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or("an Ed25519 key is 64 hex digits (its 32-byte seed)")?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A public key from its 64 hex digits.
pub fn verifying_key(hex_key: &str) -> Result<VerifyingKey, String> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| format!("`{hex_key}` is not an Ed25519 public key (64 hex digits)"))
}

/// The id of a public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Signs the head `head` of entry `seq`.
pub fn sign(key: &SigningKey, seq: u64, head: &Hash, at_ms: i64) -> Checkpoint {
    let head = hex::encode(head);
    let key_id = key_id(&key.verifying_key());
    let signature = key.sign(&message(seq, &head, at_ms, &key_id));
    Checkpoint {
        seq,
        head,
        at_ms,
        key_id,
        signature: hex::encode(signature.to_bytes()),
    }
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    /// No public key with its key id.
    UnknownKey(String),
    /// The signature does not verify (the checkpoint or its head was changed,
    /// or another key made it).
    Signature,
    /// It signs another head than the chain has at its sequence.
    Head { expected: String, found: String },
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::UnknownKey(id) => write!(
                f,
                "signed with key {id}, which is not among the public keys given"
            ),
            Bad::Signature => f.write_str("its signature does not verify"),
            Bad::Head { expected, found } => write!(
                f,
                "it signs head {found}, but the chain's entry has hash {expected} (the chain was rewritten)"
            ),
        }
    }
}

impl Checkpoint {
    /// Checks the signature with one of `keys`, and that the chain's entry
    /// `seq` has hash `actual`.
    pub fn verify(&self, keys: &[VerifyingKey], actual: &Hash) -> Result<(), Bad> {
        let key = keys
            .iter()
            .find(|k| key_id(k) == self.key_id)
            .ok_or_else(|| Bad::UnknownKey(self.key_id.clone()))?;
        let sig = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or(Bad::Signature)?;
        key.verify(
            &message(self.seq, &self.head, self.at_ms, &self.key_id),
            &sig,
        )
        .map_err(|_| Bad::Signature)?;
        let expected = hex::encode(actual);
        if self.head != expected {
            return Err(Bad::Head {
                expected,
                found: self.head.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    #[test]
    fn a_checkpoint_verifies_and_every_change_shows() {
        let k = key(7);
        let head = [3u8; 32];
        let c = sign(&k, 41, &head, 1_000);
        let keys = [key(1).verifying_key(), k.verifying_key()];
        assert_eq!(c.verify(&keys, &head), Ok(()));
        // The chain was rewritten: another head at that sequence.
        assert!(matches!(c.verify(&keys, &[4u8; 32]), Err(Bad::Head { .. })));
        // The checkpoint itself was edited to match a rewritten chain.
        let mut forged = c.clone();
        forged.head = hex::encode([4u8; 32]);
        assert_eq!(forged.verify(&keys, &[4u8; 32]), Err(Bad::Signature));
        // Re-signed with a key the verifier does not trust.
        let other = sign(&key(9), 41, &[4u8; 32], 1_000);
        assert!(matches!(
            other.verify(&keys, &[4u8; 32]),
            Err(Bad::UnknownKey(_))
        ));
        let mut moved = c.clone();
        moved.seq = 42;
        assert_eq!(moved.verify(&keys, &head), Err(Bad::Signature));
    }
}
