//! The export format (`countersign audit export`, `GET /v1/audit`): JSON
//! Lines, one object per line with a `type`:
//!
//! - `header`: `format` (`countersign-audit-export-v1`), the `filter`, the
//!   `first_seq`..`last_seq` the export spans, and `exported_at`;
//! - `entry`: an entry in full (`seq`, `at_ms`, `kind`, `prev`, `data`);
//! - `link`: an entry the filter does not select, shown by its data's digest
//!   only (`data_sha256` instead of `data`), so the chain through it checks
//!   without disclosing it;
//! - `checkpoint`: a signed checkpoint inside the span; `anchor`: the one
//!   just before it, when the span starts after a prune.
//!
//! An export runs from its first selected entry to the first checkpoint at
//! or after its last one, so every entry in it is covered by a signature and
//! the whole file verifies with the public key alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::{Entry, Link};
use super::checkpoint::Checkpoint;
use super::verify::{Failure, Report, Start, verify};

/// The `format` of an export's header.
pub const FORMAT: &str = "countersign-audit-export-v1";

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header {
        format: String,
        filter: Value,
        first_seq: Option<u64>,
        last_seq: Option<u64>,
        exported_at: String,
    },
    Entry(Entry),
    Link(Link),
    Checkpoint(Checkpoint),
}

/// Verifies an export read as lines: the chain through its entries and
/// links, and every checkpoint in it (signatures with `keys`). Every full
/// entry must be covered by a checkpoint when keys are given.
pub fn verify_lines<I>(lines: I, keys: &[ed25519_dalek::VerifyingKey]) -> Result<Report, Failure>
where
    I: IntoIterator<Item = Result<String, String>>,
{
    let mut links = Vec::new();
    let mut checkpoints = BTreeMap::new();
    let mut last_entry = None;
    let mut header = false;
    for (i, line) in lines.into_iter().enumerate() {
        let line = line.map_err(Failure::Input)?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .map_err(|e| Failure::Input(format!("line {}: not an export line: {e}", i + 1)))?;
        match parsed {
            Line::Header { format, .. } => {
                if format != FORMAT {
                    return Err(Failure::Input(format!(
                        "line {}: format `{format}`, this version reads `{FORMAT}`",
                        i + 1
                    )));
                }
                header = true;
            }
            Line::Entry(e) => {
                last_entry = Some(e.seq);
                links.push(Ok(e.link()));
            }
            Line::Link(l) => links.push(Ok(l)),
            Line::Checkpoint(c) => {
                checkpoints.insert(c.seq, c);
            }
        }
    }
    if !header {
        return Err(Failure::Input(format!(
            "no header line: not a `{FORMAT}` file"
        )));
    }
    let report = verify(links, &Start::AsGiven, &checkpoints, keys)?;
    if let Some(last) = last_entry
        && !keys.is_empty()
        && checkpoints.range(last..).next().is_none()
    {
        return Err(Failure::Checkpoint {
            seq: last,
            problem: "no signed checkpoint in the export covers this entry".into(),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::chain::GENESIS;
    use super::super::checkpoint::sign;
    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    #[test]
    fn an_export_with_links_verifies_and_edits_show() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let mut prev = GENESIS;
        let entries: Vec<Entry> = (1..=6)
            .map(|seq| {
                let e = Entry {
                    seq,
                    at_ms: seq as i64,
                    kind: "webhook.accepted".into(),
                    data: json!({ "envelope_id": if seq % 2 == 0 { "mine" } else { "other" } }),
                    prev,
                };
                prev = e.hash();
                e
            })
            .collect();
        let mut lines = vec![Line::Header {
            format: FORMAT.into(),
            filter: json!({ "envelope": "ds/mine" }),
            first_seq: Some(2),
            last_seq: Some(6),
            exported_at: "2026-12-01T00:00:00Z".into(),
        }];
        for e in &entries[1..] {
            lines.push(if e.seq % 2 == 0 {
                Line::Entry(e.clone())
            } else {
                Line::Link(e.link())
            });
        }
        lines.push(Line::Checkpoint(sign(&k, 6, &entries[5].hash(), 6)));
        let text: Vec<Result<String, String>> = lines
            .iter()
            .map(|l| Ok(serde_json::to_string(l).unwrap()))
            .collect();
        let r = verify_lines(text.clone(), &[k.verifying_key()]).unwrap();
        assert_eq!((r.links, r.checkpoints), (5, 1));

        // An edited entry in the file.
        let mut edited = text.clone();
        edited[1] = Ok(edited[1].clone().unwrap().replace("mine", "MINE"));
        assert!(matches!(
            verify_lines(edited, &[k.verifying_key()]),
            Err(Failure::Broken(_))
        ));
        // Without the covering checkpoint the entries are not proven.
        let mut cut = text.clone();
        cut.pop();
        assert!(matches!(
            verify_lines(cut, &[k.verifying_key()]),
            Err(Failure::Checkpoint { seq: 6, .. })
        ));
    }
}
