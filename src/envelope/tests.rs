//! The envelope rules: single cases, and the property that any order of a
//! consistent history (with duplicates) converges to the same state and the
//! same derived events, each once.

use std::collections::BTreeSet;

use super::derive::{Cause, id};
use super::*;
use crate::event::{Kind, Signer};

const MAX: usize = 50;

fn signer(i: usize) -> Signer {
    Signer {
        id: Some(format!("r{i}")),
        email: Some(format!("Signer{i}@Example.com")),
        name: Some(format!("Signer {i}")),
        role: None,
    }
}

fn env() -> Envelope {
    Envelope::new("ds", "env-1", "docusign", 1, 0)
}

fn registration(n: usize) -> Registration {
    Registration {
        reference: "CRM-1".into(),
        signers: (0..n)
            .map(|i| ExpectedSigner {
                // Registered by email, in another case than the events use.
                email: Some(format!("signer{i}@example.com")),
                ..ExpectedSigner::default()
            })
            .collect(),
        document_sha256: Some("ab".repeat(32)),
        ..Registration::default()
    }
}

fn kinds(steps: &[Step]) -> Vec<Kind> {
    steps
        .iter()
        .flat_map(|s| s.derived.iter().map(Derived::kind))
        .collect()
}

#[test]
fn a_late_view_after_completion_moves_nothing_back() {
    let mut e = env();
    let mut steps = vec![e.apply(Kind::Sent, None, MAX)];
    steps.push(e.apply(Kind::SignerCompleted, Some(&signer(0)), MAX));
    steps.push(e.apply(Kind::Completed, None, MAX));
    assert_eq!(
        kinds(&steps),
        [Kind::EnvelopeInSigning, Kind::EnvelopeAllSigned]
    );
    let late = e.apply(Kind::Viewed, Some(&signer(0)), MAX);
    assert_eq!(e.state, EnvelopeState::Completed);
    assert_eq!(e.signers[0].state, SignerState::Signed);
    assert!(!late.changed(), "{late:?}");
}

#[test]
fn contradictions_are_anomalies_never_applied() {
    let mut e = env();
    e.apply(Kind::Sent, None, MAX);
    let c = e.apply(Kind::Voided, None, MAX);
    assert_eq!(
        c.derived,
        [Derived::Cancelled {
            reason: CancelReason::Voided
        }]
    );
    let late = e.apply(Kind::Completed, None, MAX);
    assert_eq!(e.state, EnvelopeState::Cancelled);
    assert!(
        matches!(&late.derived[..], [Derived::Anomaly { what }] if what == "completed after cancelled")
    );
    assert_eq!(e.anomalies, 1);

    let mut e = env();
    e.apply(Kind::Completed, None, MAX);
    let late = e.apply(Kind::Declined, Some(&signer(1)), MAX);
    assert_eq!(e.state, EnvelopeState::Completed);
    assert!(matches!(&late.derived[..], [Derived::Anomaly { .. }]));
}

#[test]
fn expected_signers_complete_the_envelope_before_the_provider_does() {
    let mut e = env();
    e.register(registration(2), MAX);
    assert_eq!(e.progress().expected, 2);
    e.apply(Kind::SignerCompleted, Some(&signer(0)), MAX);
    assert_eq!(e.state, EnvelopeState::InSigning);
    let last = e.apply(Kind::SignerCompleted, Some(&signer(1)), MAX);
    assert_eq!(e.state, EnvelopeState::Completed);
    assert_eq!(
        last.derived,
        [Derived::AllSigned {
            by: CompletedBy::Signers
        }]
    );
    // The provider's own completion comes later and emits nothing.
    assert!(e.apply(Kind::Completed, None, MAX).derived.is_empty());
    assert_eq!(e.signers.len(), 2, "matched by email, case-insensitively");
}

#[test]
fn a_registration_after_every_signature_completes_at_once() {
    let mut e = env();
    e.apply(Kind::SignerCompleted, Some(&signer(0)), MAX);
    e.apply(Kind::SignerCompleted, Some(&signer(1)), MAX);
    assert_eq!(e.state, EnvelopeState::InSigning);
    let s = e.register(registration(2), MAX);
    assert_eq!(e.state, EnvelopeState::Completed);
    assert_eq!(kinds(&[s]), [Kind::EnvelopeAllSigned]);
    assert_eq!(e.reference(), Some("CRM-1"));
}

#[test]
fn archive_checks_the_registered_hash() {
    let mut e = env();
    assert_eq!(
        e.archive("00"),
        Err(ArchiveError::NotCompleted("open")),
        "only completed envelopes are archived"
    );
    e.register(registration(1), MAX);
    e.apply(Kind::Completed, None, MAX);
    let bad = e.archive(&"cd".repeat(32)).unwrap();
    assert!(matches!(
        &bad.derived[..],
        [Derived::DocumentMismatch { .. }]
    ));
    assert_eq!(e.state, EnvelopeState::Completed);
    let good = e.archive(&"AB".repeat(32)).unwrap();
    assert_eq!(kinds(&[good]), [Kind::EnvelopeArchived]);
    assert_eq!(e.state, EnvelopeState::Archived);
    assert!(
        !e.archive(&"ab".repeat(32)).unwrap().changed(),
        "idempotent"
    );
    assert!(matches!(
        e.archive(&"cd".repeat(32)),
        Err(ArchiveError::AlreadyArchived(_))
    ));
}

#[test]
fn signers_past_the_cap_are_not_tracked() {
    let mut e = env();
    for i in 0..5 {
        e.apply(Kind::Viewed, Some(&signer(i)), 3);
    }
    assert_eq!(e.signers.len(), 3);
}

/// One step of a history.
#[derive(Clone, Debug)]
enum Op {
    Event(Kind, Option<usize>),
    Register(usize),
}

/// A consistent history of 1–5 signers: sent, views and signatures, then
/// completion (by the provider, or by the registration alone), a decline
/// mid-way, or a void; sometimes a registration.
fn history(rng: &mut fastrand::Rng) -> Vec<Op> {
    let n = rng.usize(1..=5);
    let mut ops = vec![Op::Event(Kind::Sent, None)];
    let registered = rng.bool();
    if registered {
        ops.push(Op::Register(n));
    }
    let ending = rng.u8(0..4);
    let signing = match ending {
        0 | 1 => n,
        _ => rng.usize(0..n),
    };
    for i in 0..n {
        ops.push(Op::Event(Kind::Sent, Some(i)));
        if rng.bool() {
            ops.push(Op::Event(Kind::Viewed, Some(i)));
        }
        if i < signing {
            ops.push(Op::Event(Kind::SignerCompleted, Some(i)));
        }
    }
    match ending {
        0 => ops.push(Op::Event(Kind::Completed, Some(n - 1))),
        1 if !registered => ops.push(Op::Event(Kind::Completed, None)),
        1 => {}
        2 => {
            ops.push(Op::Event(Kind::Declined, Some(signing)));
            if rng.bool() {
                ops.push(Op::Event(Kind::Declined, None));
            }
        }
        _ => ops.push(Op::Event(Kind::Voided, None)),
    }
    ops
}

type Outcome = (
    EnvelopeState,
    Option<CancelReason>,
    Emitted,
    Vec<(Option<String>, bool, SignerState)>,
    BTreeSet<(Kind, String)>,
);

fn run(ops: &[Op]) -> (Outcome, Vec<Kind>) {
    let mut e = env();
    let mut derived = Vec::new();
    for op in ops {
        let step = match op {
            Op::Event(kind, s) => e.apply(*kind, s.map(signer).as_ref(), MAX),
            Op::Register(n) => e.register(registration(*n), MAX),
        };
        derived.extend(step.derived);
    }
    let cause = Cause {
        event_id: None,
        kind: None,
        occurred_at: None,
        received_at: "",
    };
    let ids = derived
        .iter()
        .map(|d| (d.kind(), id(&e, d, &cause).to_string()))
        .collect();
    let mut signers: Vec<_> = e
        .signers
        .iter()
        .map(|s| {
            (
                s.email.clone().map(|m| m.to_lowercase()),
                s.expected,
                s.state,
            )
        })
        .collect();
    signers.sort_by(|a, b| a.0.cmp(&b.0));
    let kinds = derived.iter().map(Derived::kind).collect();
    ((e.state, e.cancel_reason, e.emitted, signers, ids), kinds)
}

#[test]
fn every_order_with_duplicates_converges_and_emits_each_derived_event_once() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for case in 0..300 {
        let ops = history(&mut rng);
        let (expected, kinds) = run(&ops);
        let mut sorted = kinds.clone();
        sorted.sort_by_key(|k| k.as_str());
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            kinds.len(),
            "case {case}: {ops:?} emitted {kinds:?}"
        );
        assert!(
            !kinds.contains(&Kind::EnvelopeAnomaly),
            "case {case}: {ops:?}"
        );
        for _ in 0..100 {
            let mut shuffled = ops.clone();
            for _ in 0..rng.usize(0..4) {
                let dup = shuffled[rng.usize(..shuffled.len())].clone();
                shuffled.push(dup);
            }
            rng.shuffle(&mut shuffled);
            let (got, got_kinds) = run(&shuffled);
            assert_eq!(got, expected, "case {case}: {shuffled:?}");
            assert_eq!(got_kinds.len(), kinds.len(), "case {case}: {shuffled:?}");
        }
    }
}
