//! A history entry as stored: compact binary (a group commit writes one per
//! event, so its size is ingest's cost), rendered as a [`LogEntry`] on read
//! with the signer's details from its envelope.
//!
//! Layout (little-endian): version `1`; flags (bit 0 changed, bit 1 the
//! envelope's first entry, bit 2 a signer change); origin; from; to; `at` in
//! ms (i64); progress (4 × u32); if a signer changed: its index (u32), from
//! (255: first seen), to; then the strings kind, event id, source, envelope id,
//! reference, each a u16 length (`u16::MAX`: none) and UTF-8.

use super::{LogEntry, SignerEntry};
use crate::envelope::Envelope;
use crate::event::{EnvelopeState, Progress, SignerState};
use crate::store::StoreError;

const VERSION: u8 = 1;
const NONE: u16 = u16::MAX;

/// One history entry, compact.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::store) struct LogRow {
    pub changed: bool,
    /// The envelope's first entry (its creation: the listing's and the
    /// sweep's index).
    pub first: bool,
    pub origin: Origin,
    pub from: EnvelopeState,
    pub to: EnvelopeState,
    pub at_ms: i64,
    pub progress: Progress,
    /// (signer index, from, to).
    pub signer: Option<(u32, Option<SignerState>, SignerState)>,
    pub kind: String,
    pub event_id: Option<String>,
    pub source: String,
    pub envelope_id: String,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Origin {
    Provider = 0,
    Countersign = 1,
    Admin = 2,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Provider => "provider",
            Origin::Countersign => "countersign",
            Origin::Admin => "admin",
        }
    }
}

fn state_code(s: EnvelopeState) -> u8 {
    EnvelopeState::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

const SIGNER_STATES: [SignerState; 4] = [
    SignerState::Pending,
    SignerState::Viewed,
    SignerState::Signed,
    SignerState::Declined,
];

fn signer_code(s: SignerState) -> u8 {
    SIGNER_STATES.iter().position(|x| *x == s).unwrap_or(0) as u8
}

fn bad(what: &str) -> StoreError {
    StoreError::Db(format!("envelope log row: {what}"))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self) -> Result<Option<String>, StoreError> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
        if n == NONE {
            return Ok(None);
        }
        let b = self.take(n as usize)?;
        Ok(Some(
            String::from_utf8(b.to_vec()).map_err(|_| bad("not UTF-8"))?,
        ))
    }
    fn state(&mut self) -> Result<EnvelopeState, StoreError> {
        let c = self.u8()? as usize;
        EnvelopeState::ALL
            .get(c)
            .copied()
            .ok_or_else(|| bad("unknown state code"))
    }
    fn signer(&mut self) -> Result<Option<SignerState>, StoreError> {
        match self.u8()? {
            255 => Ok(None),
            c => SIGNER_STATES
                .get(c as usize)
                .copied()
                .map(Some)
                .ok_or_else(|| bad("unknown signer state code")),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        // Longer strings are cut at a character boundary (ids are ≤ 200 bytes).
        Some(s) => {
            let mut n = s.len().min(NONE as usize - 1);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.extend_from_slice(&s.as_bytes()[..n]);
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

impl LogRow {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.kind.len() + self.envelope_id.len() * 2);
        let flags = u8::from(self.changed)
            | u8::from(self.first) << 1
            | u8::from(self.signer.is_some()) << 2;
        out.extend_from_slice(&[
            VERSION,
            flags,
            self.origin as u8,
            state_code(self.from),
            state_code(self.to),
        ]);
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        let p = &self.progress;
        for n in [p.expected, p.signed, p.viewed, p.declined] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        if let Some((i, from, to)) = self.signer {
            out.extend_from_slice(&i.to_le_bytes());
            out.push(from.map_or(255, signer_code));
            out.push(signer_code(to));
        }
        put_str(&mut out, Some(&self.kind));
        put_str(&mut out, self.event_id.as_deref());
        put_str(&mut out, Some(&self.source));
        put_str(&mut out, Some(&self.envelope_id));
        put_str(&mut out, self.reference.as_deref());
        out
    }

    pub fn decode(b: &[u8]) -> Result<LogRow, StoreError> {
        let mut r = Reader(b);
        if r.u8()? != VERSION {
            return Err(bad("unknown version"));
        }
        let flags = r.u8()?;
        let origin = match r.u8()? {
            0 => Origin::Provider,
            1 => Origin::Countersign,
            2 => Origin::Admin,
            _ => return Err(bad("unknown origin code")),
        };
        let (from, to, at_ms) = (r.state()?, r.state()?, r.i64()?);
        let progress = Progress {
            expected: r.u32()?,
            signed: r.u32()?,
            viewed: r.u32()?,
            declined: r.u32()?,
        };
        let signer = if flags & 4 != 0 {
            let i = r.u32()?;
            let f = r.signer()?;
            let t = r
                .signer()?
                .ok_or_else(|| bad("signer change without a state"))?;
            Some((i, f, t))
        } else {
            None
        };
        let need = |s: Option<String>| s.ok_or_else(|| bad("missing string"));
        Ok(LogRow {
            changed: flags & 1 != 0,
            first: flags & 2 != 0,
            origin,
            from,
            to,
            at_ms,
            progress,
            signer,
            kind: need(r.str()?)?,
            event_id: r.str()?,
            source: need(r.str()?)?,
            envelope_id: need(r.str()?)?,
            reference: r.str()?,
        })
    }

    /// The entry as the API shows it, under `seq`; the signer's id, email and
    /// name from `env` (its signers only ever grow, so the index holds).
    pub fn render(&self, seq: u64, env: Option<&Envelope>) -> LogEntry {
        LogEntry {
            seq,
            source: self.source.clone(),
            envelope_id: self.envelope_id.clone(),
            envelope_seq: match (env, self.first) {
                (_, true) => seq,
                (Some(e), false) => e.created_seq,
                (None, false) => 0,
            },
            reference: self.reference.clone(),
            kind: self.kind.clone(),
            event_id: self.event_id.clone(),
            origin: self.origin.as_str().to_owned(),
            at: crate::time::format_ms(self.at_ms),
            from: self.from,
            to: self.to,
            signer: self.signer.map(|(i, from, to)| {
                let s = env.and_then(|e| e.signers.get(i as usize));
                SignerEntry {
                    id: s.and_then(|s| s.id.clone()),
                    email: s.and_then(|s| s.email.clone()),
                    name: s.and_then(|s| s.name.clone()),
                    from,
                    to,
                }
            }),
            changed: self.changed,
            progress: self.progress,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let row = LogRow {
            changed: true,
            first: true,
            origin: Origin::Countersign,
            from: EnvelopeState::InSigning,
            to: EnvelopeState::Completed,
            at_ms: 1_767_225_600_123,
            progress: Progress {
                expected: 3,
                signed: 3,
                viewed: 1,
                declined: 0,
            },
            signer: Some((2, None, SignerState::Signed)),
            kind: "envelope.all_signed".into(),
            event_id: Some("cs_abc".into()),
            source: "ds".into(),
            envelope_id: "env-ü".into(),
            reference: None,
        };
        assert_eq!(LogRow::decode(&row.encode()).unwrap(), row);
        let plain = LogRow {
            signer: None,
            event_id: None,
            reference: Some("CRM-1".into()),
            ..row
        };
        assert_eq!(LogRow::decode(&plain.encode()).unwrap(), plain);
        assert!(LogRow::decode(&plain.encode()[..10]).is_err());
        assert!(LogRow::decode(&[9]).is_err(), "unknown version");
    }
}
