//! The write-ahead log's record contents: what one group commit's requests
//! were (webhooks' events, Kafka acknowledgements, HTTP delivery records), in
//! a plain length-prefixed binary form. Strings and bytes are `u32` length +
//! bytes, integers little-endian, options and variants a tag byte.

use super::super::deliveries::{Attempt, HttpOp, Next};
use super::super::envelopes::Facts;
use super::super::{Ack, AuditFacts, NewEvent};

/// One request of a logged group commit, read back.
#[derive(Debug)]
pub enum Entry {
    Events(Vec<NewEvent>),
    Acks(Vec<Ack>),
    Http(Vec<HttpOp>),
}

/// One request of a logged group commit, to write.
#[derive(Debug, Clone, Copy)]
pub enum EntryRef<'a> {
    Events(&'a [NewEvent]),
    Acks(&'a [Ack]),
    Http(&'a [HttpOp]),
}

/// Appends `e` to `b`.
pub fn encode(b: &mut Vec<u8>, e: EntryRef) {
    match e {
        EntryRef::Events(events) => {
            b.push(0);
            put_u32(b, events.len());
            events.iter().for_each(|e| encode_event(b, e));
        }
        EntryRef::Acks(acks) => {
            b.push(1);
            put_u32(b, acks.len());
            for a in acks {
                match a {
                    Ack::Published {
                        seq,
                        topic,
                        partition,
                        offset,
                    } => {
                        b.push(0);
                        b.extend_from_slice(&seq.to_le_bytes());
                        put_bytes(b, topic.as_bytes());
                        b.extend_from_slice(&partition.to_le_bytes());
                        b.extend_from_slice(&offset.to_le_bytes());
                    }
                    Ack::DeadLettered { seq, topic, reason } => {
                        b.push(1);
                        b.extend_from_slice(&seq.to_le_bytes());
                        put_bytes(b, topic.as_bytes());
                        put_bytes(b, reason.as_bytes());
                    }
                }
            }
        }
        EntryRef::Http(ops) => {
            b.push(2);
            put_u32(b, ops.len());
            ops.iter().for_each(|op| encode_op(b, op));
        }
    }
}

fn encode_op(b: &mut Vec<u8>, op: &HttpOp) {
    let (tag, seq, endpoint) = match op {
        HttpOp::Attempted { seq, endpoint, .. } => (0, seq, endpoint),
        HttpOp::Replay { seq, endpoint } => (1, seq, endpoint),
        HttpOp::Discard { seq, endpoint } => (2, seq, endpoint),
        HttpOp::Purge { seq, endpoint } => (3, seq, endpoint),
    };
    b.push(tag);
    b.extend_from_slice(&seq.to_le_bytes());
    put_bytes(b, endpoint.as_bytes());
    if let HttpOp::Attempted { attempt, next, .. } = op {
        b.extend_from_slice(&attempt.at_ms.to_le_bytes());
        b.extend_from_slice(&attempt.status.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&attempt.latency_ms.to_le_bytes());
        put_bytes(b, attempt.error.as_bytes());
        match next {
            Next::Delivered => b.push(0),
            Next::Retry { due_ms, counts } => {
                b.push(1);
                b.extend_from_slice(&due_ms.to_le_bytes());
                b.push(u8::from(*counts));
            }
            Next::DeadLetter { reason } => {
                b.push(2);
                put_bytes(b, reason.as_bytes());
            }
        }
    }
}

/// Reads what [`encode`] wrote; `None` on anything malformed.
pub(super) fn decode(r: &mut Reader) -> Option<Entry> {
    match r.u8()? {
        0 => Some(Entry::Events(r.many(decode_event)?)),
        1 => Some(Entry::Acks(r.many(decode_ack)?)),
        2 => Some(Entry::Http(r.many(decode_op)?)),
        _ => None,
    }
}

fn decode_ack(r: &mut Reader) -> Option<Ack> {
    let tag = r.u8()?;
    let seq = r.u64()?;
    let topic = r.string()?;
    Some(match tag {
        0 => Ack::Published {
            seq,
            topic,
            partition: i32::from_le_bytes(r.take(4)?.try_into().ok()?),
            offset: r.u64()? as i64,
        },
        1 => Ack::DeadLettered {
            seq,
            topic,
            reason: r.string()?,
        },
        _ => return None,
    })
}

fn decode_op(r: &mut Reader) -> Option<HttpOp> {
    let tag = r.u8()?;
    let seq = r.u64()?;
    let endpoint = r.string()?;
    Some(match tag {
        0 => {
            let at_ms = r.u64()? as i64;
            let status = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
            let attempt = Attempt {
                at_ms,
                status: (status != 0).then_some(status),
                latency_ms: r.u64()?,
                error: r.string()?,
            };
            let next = match r.u8()? {
                0 => Next::Delivered,
                1 => Next::Retry {
                    due_ms: r.u64()? as i64,
                    counts: r.flag()?,
                },
                2 => Next::DeadLetter {
                    reason: r.string()?,
                },
                _ => return None,
            };
            HttpOp::Attempted {
                seq,
                endpoint,
                attempt,
                next,
            }
        }
        1 => HttpOp::Replay { seq, endpoint },
        2 => HttpOp::Discard { seq, endpoint },
        3 => HttpOp::Purge { seq, endpoint },
        _ => return None,
    })
}

pub(super) fn put_u32(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    put_u32(b, s.len());
    b.extend_from_slice(s);
}

fn put_opt(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            b.push(1);
            put_bytes(b, s.as_bytes());
        }
        None => b.push(0),
    }
}

fn put_list(b: &mut Vec<u8>, l: &[String]) {
    put_u32(b, l.len());
    for s in l {
        put_bytes(b, s.as_bytes());
    }
}

fn encode_event(b: &mut Vec<u8>, e: &NewEvent) {
    put_bytes(b, e.source.as_bytes());
    put_bytes(b, e.id.as_bytes());
    b.extend_from_slice(&e.received_ms.to_le_bytes());
    put_bytes(b, &e.json);
    put_list(b, &e.topics);
    put_list(b, &e.endpoints);
    put_bytes(b, e.envelope.as_bytes());
    put_opt(b, e.traceparent.as_deref());
    b.push(u8::from(e.held));
    match &e.facts {
        Some(f) => {
            b.push(1);
            put_bytes(b, f.envelope_id.as_bytes());
            put_bytes(b, f.provider.as_bytes());
            let kind = serde_json::to_string(&f.kind).expect("a kind serializes");
            put_bytes(b, kind.as_bytes());
            match &f.signer {
                Some(s) => {
                    b.push(1);
                    for field in [&s.id, &s.email, &s.name, &s.role] {
                        put_opt(b, field.as_deref());
                    }
                }
                None => b.push(0),
            }
            put_opt(b, f.occurred_at.as_deref());
            put_bytes(b, f.received_at.as_bytes());
        }
        None => b.push(0),
    }
    match &e.audit {
        Some(a) => {
            b.push(1);
            let (head, tail) = a.parts();
            put_bytes(b, head);
            put_bytes(b, tail);
        }
        None => b.push(0),
    }
}

/// Reads what [`encode`] wrote; `None` on anything malformed.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
    fn list(&mut self) -> Option<Vec<String>> {
        self.many(Reader::string)
    }
    /// A `u32` count, then that many of what `item` reads.
    pub(super) fn many<T>(&mut self, item: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.u32()?;
        // The count is read from the file: room for what can be there.
        let mut out = Vec::with_capacity(n.min(self.0.len()));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Some(out)
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

fn decode_event(r: &mut Reader) -> Option<NewEvent> {
    let source = r.string()?;
    let id = r.string()?;
    let received_ms = r.u64()? as i64;
    let json = r.bytes()?.to_vec();
    let topics = r.list()?;
    let endpoints = r.list()?;
    let envelope = r.string()?;
    let traceparent = r.opt()?;
    let held = r.flag()?;
    let facts = match r.flag()? {
        false => None,
        true => Some(Facts {
            envelope_id: r.string()?,
            provider: r.string()?,
            kind: serde_json::from_slice(r.bytes()?).ok()?,
            signer: match r.flag()? {
                false => None,
                true => Some(crate::event::Signer {
                    id: r.opt()?,
                    email: r.opt()?,
                    name: r.opt()?,
                    role: r.opt()?,
                }),
            },
            occurred_at: r.opt()?,
            received_at: r.string()?,
            late_route: None,
        }),
    };
    let audit = match r.flag()? {
        false => None,
        true => {
            let head = r.bytes()?.to_vec();
            Some(AuditFacts::from_parts(head, r.bytes()?.to_vec()))
        }
    };
    Some(NewEvent {
        source,
        id,
        received_ms,
        json,
        topics,
        endpoints,
        envelope,
        traceparent,
        facts,
        audit,
        held,
    })
}
