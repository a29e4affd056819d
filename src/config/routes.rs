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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(rename = "match", default)]
    pub when: Match,
    #[serde(default)]
    pub topics: Vec<String>,
    /// `[[endpoints]]` ids the matching events are delivered to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}
