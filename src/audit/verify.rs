//! Checking a run of chain links against each other and against the signed
//! checkpoints among them: the one procedure behind `audit verify` on a
//! store, on an export, and the admin view. Pure.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use super::chain::{Broken, GENESIS, Hash, Link};
use super::checkpoint::Checkpoint;

/// Where the checked run starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// The chain's first entry (seq 1, `prev` = 32 zero bytes).
    Genesis,
    /// After a prune: the first entry links to the checkpoint that signs
    /// the entry before it (kept by the prune), so the new start is signed.
    Anchor(Checkpoint),
    /// An export: the first link's `prev` is taken as given; everything
    /// from there on checks, up to the checkpoints that cover it.
    AsGiven,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Links checked (entries and, in exports, entries shown by digest).
    pub links: u64,
    /// The first and last checked sequence, and the last hash.
    pub first: Option<u64>,
    pub head: Option<(u64, Hash)>,
    /// Signed checkpoints checked (the anchor included).
    pub checkpoints: usize,
    /// Whether signatures were checked (public keys were given).
    pub signed: bool,
    /// Entries after the last checkpoint: their chain holds, no signature
    /// covers them yet.
    pub unsigned_tail: u64,
}

/// Why a verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("the chain is broken at {0}")]
    Broken(Broken),
    #[error("checkpoint {seq}: {problem}")]
    Checkpoint { seq: u64, problem: String },
    #[error("{0}")]
    Input(String),
}

/// Checks `links` (in order) from `start`, and every checkpoint in
/// `checkpoints` (by the sequence it signs) against the chain and, when
/// `keys` are given, its signature. A checkpoint beyond the last link means
/// entries were removed.
pub fn verify<I>(
    links: I,
    start: &Start,
    checkpoints: &BTreeMap<u64, Checkpoint>,
    keys: &[VerifyingKey],
) -> Result<Report, Failure>
where
    I: IntoIterator<Item = Result<Link, String>>,
{
    let mut report = Report {
        signed: !keys.is_empty(),
        ..Report::default()
    };
    let signature = |c: &Checkpoint, actual: &Hash| -> Result<(), Failure> {
        let problem = match c.verify(keys, actual) {
            Ok(()) => return Ok(()),
            // Without keys only the heads are compared.
            Err(super::checkpoint::Bad::UnknownKey(_)) if keys.is_empty() => {
                if c.head == hex::encode(actual) {
                    return Ok(());
                }
                format!(
                    "it signs head {}, but the chain's entry has hash {} (the chain was rewritten)",
                    c.head,
                    hex::encode(actual)
                )
            }
            Err(b) => b.to_string(),
        };
        Err(Failure::Checkpoint {
            seq: c.seq,
            problem,
        })
    };
    let mut links = links.into_iter().peekable();
    let mut expect: Option<(u64, Hash)> = match start {
        Start::Genesis => Some((1, GENESIS)),
        Start::Anchor(c) => {
            let head = parse_hash(&c.head).ok_or_else(|| Failure::Checkpoint {
                seq: c.seq,
                problem: "its head is not 64 hex digits".into(),
            })?;
            signature(c, &head)?;
            report.checkpoints += 1;
            Some((c.seq + 1, head))
        }
        Start::AsGiven => None,
    };
    let mut covered = match start {
        Start::Anchor(c) => c.seq,
        _ => 0,
    };
    for link in links.by_ref() {
        let link = link.map_err(Failure::Input)?;
        let (want_seq, prev) = expect.unwrap_or((link.seq, link.prev));
        if link.seq != want_seq {
            return Err(Failure::Broken(Broken {
                seq: link.seq,
                problem: "out of sequence (an entry missing or moved)".into(),
                expected: want_seq.to_string(),
                found: link.seq.to_string(),
            }));
        }
        if link.prev != prev {
            return Err(Failure::Broken(Broken {
                seq: link.seq,
                problem: "its link does not match the previous entry (that entry or this one was changed)".into(),
                expected: hex::encode(prev),
                found: hex::encode(link.prev),
            }));
        }
        let hash = link.hash();
        if let Some(c) = checkpoints.get(&link.seq) {
            signature(c, &hash)?;
            report.checkpoints += 1;
            covered = link.seq;
        }
        report.first.get_or_insert(link.seq);
        report.head = Some((link.seq, hash));
        report.links += 1;
        expect = Some((link.seq + 1, hash));
    }
    let last = report.head.map_or(0, |h| h.0);
    if let Some((&seq, _)) = checkpoints.range(last + 1..).next() {
        return Err(Failure::Checkpoint {
            seq,
            problem: format!(
                "signs an entry the chain does not have (it ends at {last}): entries were removed"
            ),
        });
    }
    if let Some(first) = report.first
        && let Some((&seq, _)) = checkpoints.range(..first.saturating_sub(1)).next_back()
        && !matches!(start, Start::AsGiven)
    {
        return Err(Failure::Checkpoint {
            seq,
            problem: format!(
                "signs an entry before the chain's start ({first}): entries were removed"
            ),
        });
    }
    report.unsigned_tail = last.saturating_sub(covered.max(report.first.map_or(0, |f| f - 1)));
    Ok(report)
}

/// A hash from its 64 hex digits.
pub fn parse_hash(s: &str) -> Option<Hash> {
    hex::decode(s).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::super::chain::Entry;
    use super::super::checkpoint::sign;
    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    fn ok(c: &[Entry]) -> Vec<Result<Link, String>> {
        c.iter().map(|e| Ok(e.link())).collect()
    }

    #[test]
    fn checkpoints_cover_the_chain_and_anchor_a_pruned_start() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let keys = [k.verifying_key()];
        let c = super::super::chain::sample(10);
        let cps: BTreeMap<u64, Checkpoint> = [4, 8]
            .into_iter()
            .map(|s| (s, sign(&k, s, &c[s as usize - 1].hash(), 0)))
            .collect();
        let r = verify(ok(&c), &Start::Genesis, &cps, &keys).unwrap();
        assert_eq!((r.links, r.checkpoints, r.unsigned_tail), (10, 2, 2));

        // Pruned up to 4: checkpoint 4 is the signed start.
        let rest: BTreeMap<_, _> = cps.range(5..).map(|(s, c)| (*s, c.clone())).collect();
        let anchor = Start::Anchor(cps[&4].clone());
        let r = verify(ok(&c[4..]), &anchor, &rest, &keys).unwrap();
        assert_eq!((r.first, r.checkpoints), (Some(5), 2));
        // The anchor must sign what the first entry links to.
        let wrong = Start::Anchor(sign(&k, 4, &[9; 32], 0));
        assert!(matches!(
            verify(ok(&c[4..]), &wrong, &rest, &keys),
            Err(Failure::Broken(Broken { seq: 5, .. }))
        ));
        // A forged anchor.
        let forged = Start::Anchor(sign(&SigningKey::from_bytes(&[2; 32]), 4, &c[3].hash(), 0));
        assert!(matches!(
            verify(ok(&c[4..]), &forged, &rest, &keys),
            Err(Failure::Checkpoint { seq: 4, .. })
        ));

        // The tail cut off: checkpoint 8 signs an entry that is gone.
        assert!(matches!(
            verify(ok(&c[..6]), &Start::Genesis, &cps, &keys),
            Err(Failure::Checkpoint { seq: 8, .. })
        ));
        // A rewritten tail with a recomputed chain, but no key.
        let mut rewritten = c.clone();
        rewritten[6].data = json!({ "n": 70 });
        for i in 7..10 {
            rewritten[i].prev = rewritten[i - 1].hash();
        }
        assert!(matches!(
            verify(ok(&rewritten), &Start::Genesis, &cps, &keys),
            Err(Failure::Checkpoint { seq: 8, .. })
        ));
        // Without keys the heads are still compared.
        assert!(matches!(
            verify(ok(&rewritten), &Start::Genesis, &cps, &[]),
            Err(Failure::Checkpoint { seq: 8, .. })
        ));
        // An export: a middle run, its first link as given.
        let r = verify(ok(&c[2..8]), &Start::AsGiven, &cps, &keys).unwrap();
        assert_eq!(
            (r.first, r.head.unwrap().0, r.unsigned_tail),
            (Some(3), 8, 0)
        );
    }

    /// `c` through the one chain check there is (`audit::verify`), from
    /// the genesis; the broken link, if any.
    fn check(c: &[Entry]) -> Result<Report, Broken> {
        let links = c.iter().map(|e| Ok(e.link()));
        match verify(links, &Start::Genesis, &Default::default(), &[]) {
            Ok(r) => Ok(r),
            Err(Failure::Broken(b)) => Err(b),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn a_good_chain_checks_and_any_change_is_found() {
        let c = super::super::chain::sample(5);
        let r = check(&c).unwrap();
        assert_eq!((r.head, r.links), (Some((5, c[4].hash())), 5));

        // A changed byte of data: the next entry's link breaks.
        let mut edited = c.clone();
        edited[2].data["source"] = json!("dx");
        let b = check(&edited).unwrap_err();
        assert_eq!(b.seq, 4);
        assert_eq!(b.expected, hex::encode(edited[2].hash()));
        assert_eq!(b.found, hex::encode(c[2].hash()));
        // A missing entry, two swapped.
        let mut missing = c.clone();
        missing.remove(1);
        assert_eq!(check(&missing).unwrap_err().seq, 3);
        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert_eq!(check(&swapped).unwrap_err().seq, 3);
        // JSON round trip keeps the hash.
        let back: Entry = serde_json::from_str(&serde_json::to_string(&c[0]).unwrap()).unwrap();
        assert_eq!(back.hash(), c[0].hash());
    }
}
