//! Which Kafka topics and HTTP endpoints an event goes to. Routes match on
//! source, provider, kind and provider event type; an event takes the topics and
//! endpoints of every route it matches, and `kafka.default_topic` when no
//! matching route names a topic. There is no default endpoint.

use crate::config::{Match, RouteConfig};
use crate::event::SignatureEvent;

/// Whether `m` matches `e`.
trait Matches {
    fn matches(&self, e: &SignatureEvent) -> bool;
}

impl Matches for Match {
    fn matches(&self, e: &SignatureEvent) -> bool {
        fn any<T: PartialEq>(list: &[T], v: &T) -> bool {
            list.is_empty() || list.contains(v)
        }
        any(&self.sources, &e.source)
            && (self.providers.is_empty()
                || self.providers.iter().any(|p| p.as_str() == e.provider))
            && any(&self.kinds, &e.kind)
            && any(&self.event_types, &e.provider_event_type)
    }
}

/// The routing table, built once from config.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<RouteConfig>,
    /// `None` when Kafka is off: no event gets a topic.
    default_topic: Option<String>,
}

impl Router {
    pub fn new(routes: Vec<RouteConfig>, default_topic: Option<String>) -> Router {
        Router {
            routes,
            default_topic,
        }
    }

    /// The topics for `e`, each once, in route order.
    pub fn topics(&self, e: &SignatureEvent) -> Vec<String> {
        let Some(default) = &self.default_topic else {
            return Vec::new();
        };
        let mut out = self.collect(e, |r| &r.topics);
        if out.is_empty() {
            out.push(default.clone());
        }
        out
    }

    /// The endpoints for `e`, each once, in route order. No route, no endpoint.
    pub fn endpoints(&self, e: &SignatureEvent) -> Vec<String> {
        self.collect(e, |r| &r.endpoints)
    }

    /// The `field` lists of the routes `e` matches, each name once, in order.
    fn collect(
        &self,
        e: &SignatureEvent,
        field: impl Fn(&RouteConfig) -> &Vec<String>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self
            .routes
            .iter()
            .filter(|r| r.when.matches(e))
            .flat_map(field)
        {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Auth, EventId, Kind};

    fn event(source: &str, kind: Kind, ty: &str) -> SignatureEvent {
        SignatureEvent {
            schema_version: 1,
            id: EventId::parse("e").unwrap(),
            source: source.into(),
            provider: "docusign".into(),
            provider_event_type: ty.into(),
            kind,
            envelope_id: None,
            document_id: None,
            signer: None,
            occurred_at: None,
            received_at: String::new(),
            sandbox: None,
            auth: Auth {
                method: "hmac_sha256".into(),
                key_index: None,
                covers_body: true,
            },
            payload: serde_json::Value::Null,
            origin: None,
            cause: None,
            envelope: None,
        }
    }

    fn route(when: Match, topics: &[&str]) -> RouteConfig {
        RouteConfig {
            when,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn matches_union_and_default() {
        let r = Router::new(
            vec![
                route(
                    Match {
                        sources: vec!["ds".into()],
                        kinds: vec![Kind::Completed, Kind::Declined],
                        ..Match::default()
                    },
                    &["terminal"],
                ),
                route(
                    Match {
                        kinds: vec![Kind::Completed],
                        ..Match::default()
                    },
                    &["billing", "terminal"],
                ),
                route(
                    Match {
                        event_types: vec!["envelope-voided".into()],
                        ..Match::default()
                    },
                    &[],
                ),
            ],
            Some("all".into()),
        );
        assert_eq!(
            r.topics(&event("ds", Kind::Completed, "envelope-completed")),
            vec!["terminal", "billing"]
        );
        assert_eq!(
            r.topics(&event("ds", Kind::Declined, "x")),
            vec!["terminal"]
        );
        assert_eq!(
            r.topics(&event("other", Kind::Completed, "x")),
            vec!["billing", "terminal"]
        );
        assert_eq!(r.topics(&event("other", Kind::Sent, "x")), vec!["all"]);
        // A matching route without topics leaves the default in place.
        assert_eq!(
            r.topics(&event("ds", Kind::Voided, "envelope-voided")),
            vec!["all"]
        );
    }

    #[test]
    fn endpoints_are_the_union_of_matching_routes() {
        let mut a = route(
            Match {
                kinds: vec![Kind::Completed],
                ..Match::default()
            },
            &[],
        );
        a.endpoints = vec!["billing".into(), "crm".into()];
        let mut b = route(Match::default(), &["t"]);
        b.endpoints = vec!["crm".into(), "audit".into()];
        let r = Router::new(vec![a, b], Some("all".into()));
        assert_eq!(
            r.endpoints(&event("ds", Kind::Completed, "x")),
            vec!["billing", "crm", "audit"]
        );
        assert_eq!(
            r.endpoints(&event("ds", Kind::Sent, "x")),
            vec!["crm", "audit"]
        );
        assert_eq!(r.topics(&event("ds", Kind::Completed, "x")), vec!["t"]);
    }

    #[test]
    fn kafka_off_means_no_topics() {
        let r = Router::new(vec![route(Match::default(), &["t"])], None);
        assert!(r.topics(&event("ds", Kind::Completed, "x")).is_empty());
    }
}
