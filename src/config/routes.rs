//! `[[routes]]`: which topics and endpoints events go to, by what they match.

use serde::{Deserialize, Serialize};

use crate::event::{Kind, Provider};

/// What a route matches; an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Match {
    pub sources: Vec<String>,
    pub providers: Vec<Provider>,
    pub kinds: Vec<Kind>,
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's label in metrics, logs and `route test` (default
    /// `routes[<index>]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "match", default)]
    pub filter: Match,
    /// A CEL condition over `event`, `envelope` and `source` that must also
    /// hold (compiled by the router at load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    /// `[[endpoints]]` ids the matching events are delivered to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// The route takes only quarantined events (a review topic or
    /// endpoint); every other route takes only sound ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quarantined: bool,
    /// Redactions of what this route's Kafka topics receive (a topic named
    /// by several routes gets the rules of all of them). The stored event
    /// stays complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<super::RedactRule>,
}

impl RouteConfig {
    /// The route's label: its `name`, else `routes[<index>]`.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("routes[{index}]"))
    }
}
