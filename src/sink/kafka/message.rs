//! A stored event as a Kafka message: key = envelope id (so one envelope stays
//! in one partition, in order), value = the event JSON, headers = the
//! CloudEvents Kafka binding in binary mode, read from the event's head.

use rdkafka::message::{Header, OwnedHeaders};

use crate::event::EventHead;

/// CloudEvents 1.0, Kafka protocol binding, binary content mode.
pub fn headers(m: &EventHead) -> OwnedHeaders {
    let ce_type = m.kind.cloudevents_type();
    let ce_source = format!("/countersign/sources/{}", m.source);
    let time: &str = m.occurred_at.as_deref().unwrap_or(&m.received_at);
    let mut h = OwnedHeaders::new_with_capacity(8);
    for (key, value) in [
        ("ce_specversion", "1.0"),
        ("ce_id", &*m.id),
        ("ce_source", ce_source.as_str()),
        ("ce_type", ce_type.as_str()),
        ("ce_time", time),
        ("content-type", "application/json"),
    ] {
        h = h.insert(Header {
            key,
            value: Some(value),
        });
    }
    if let Some(subject) = &m.envelope_id {
        h = h.insert(Header {
            key: "ce_subject",
            value: Some(&**subject),
        });
    }
    if let Some(reference) = m.reference() {
        h = h.insert(Header {
            key: REFERENCE_HEADER,
            value: Some(reference),
        });
    }
    h
}

/// The header naming a registered envelope's internal process id.
pub const REFERENCE_HEADER: &str = "countersign_reference";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn header(h: &OwnedHeaders, k: &str) -> Option<String> {
        use rdkafka::message::Headers;
        h.iter()
            .find(|x| x.key == k)
            .and_then(|x| x.value)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn cloudevents_headers() {
        let m = EventHead {
            id: "evt-1".into(),
            source: "ds".into(),
            kind: Kind::Completed,
            envelope_id: Some("env-1".into()),
            occurred_at: None,
            received_at: "2026-01-01T00:00:00.000Z".into(),
            envelope: None,
        };
        let h = headers(&m);
        let get = |k: &str| header(&h, k);
        assert_eq!(get("ce_specversion").as_deref(), Some("1.0"));
        assert_eq!(get("ce_id").as_deref(), Some("evt-1"));
        assert_eq!(
            get("ce_type").as_deref(),
            Some("countersign.signature.completed")
        );
        assert_eq!(get("ce_source").as_deref(), Some("/countersign/sources/ds"));
        assert_eq!(get("ce_subject").as_deref(), Some("env-1"));
        assert_eq!(get("ce_time").as_deref(), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(get("content-type").as_deref(), Some("application/json"));
        assert_eq!(get(REFERENCE_HEADER), None);

        let derived = EventHead {
            kind: Kind::EnvelopeAllSigned,
            envelope: Some(crate::event::HeadEnvelope {
                reference: Some("CRM-7".into()),
            }),
            ..m
        };
        let h = headers(&derived);
        let get = |k: &str| header(&h, k);
        assert_eq!(
            get("ce_type").as_deref(),
            Some("countersign.envelope.all_signed")
        );
        assert_eq!(get(REFERENCE_HEADER).as_deref(), Some("CRM-7"));
    }
}
