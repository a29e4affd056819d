//! Building a run-time [`Source`] from its `[[sources]]` entry: the id, the
//! secrets resolved into keys, and the scheme (built in, or assembled from the
//! `generic_hmac` keys). Problems go to the shared config report.

use std::collections::HashMap;

use super::Source;
use crate::config::{Report, SourceConfig};
use crate::verify::{HeaderMac, Key, Scheme, Template, TemplatePart};

impl Source {
    /// The run-time source of `sources[i]` (`key`), secrets resolved; problems
    /// go to `r` (and then there is no source).
    pub fn from_config(
        key: &str,
        s: &SourceConfig,
        default_body: usize,
        r: &mut Report,
    ) -> Option<Source> {
        let before = r.len();
        r.id(key, "source", &s.id);
        if s.secrets.is_empty() {
            r.add(
                format!("{key}.secrets"),
                "no secret given",
                super::behaviour(s.provider).secrets_hint(),
            );
        }
        if let Some(rl) = &s.rate_limit {
            r.rate_limit(&format!("{key}.rate_limit"), rl);
        }
        if let Some(b) = s.max_body_bytes {
            r.range(
                &format!("{key}.max_body_bytes"),
                b,
                1,
                crate::config::MAX_BODY_LIMIT,
            );
        }
        for (k, p) in s.fields.pointers() {
            if !p.is_empty() && !p.starts_with('/') {
                r.add(
                    format!("{key}.fields.{k}"),
                    format!("`{p}` is not a JSON pointer"),
                    "write it like \"/data/envelope_id\"",
                );
            }
        }
        let keys = resolve_keys(key, s, r);
        let url_token = url_token(key, s, r);
        let scheme = scheme(key, s, r);
        if r.len() > before {
            return None;
        }
        Some(Source {
            id: s.id.clone(),
            provider: s.provider,
            scheme: scheme?,
            keys,
            url_token,
            tolerance_secs: s.tolerance.as_secs() as i64,
            max_body_bytes: s.max_body_bytes.unwrap_or(default_body),
            rate_limit: s.rate_limit,
            kinds: s
                .kinds
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect::<HashMap<_, _>>(),
            fields: s.fields.clone(),
        })
    }
}

/// The source's `url_token`, resolved; a warning where a provider's own
/// scheme is weak and none is set.
fn url_token(key: &str, s: &SourceConfig, r: &mut Report) -> Option<Key> {
    let behaviour = super::behaviour(s.provider);
    let k = format!("{key}.url_token");
    let Some(sref) = &s.url_token else {
        if let Some(why) = behaviour.weak_scheme() {
            r.warn(
                k,
                format!("not set, and {why}"),
                "set url_token (e.g. \"env:NAME\") and register the callback as /hooks/{id}/{token}",
            );
        }
        return None;
    };
    if matches!(behaviour.scheme(), Some(Scheme::UrlToken)) {
        r.add(
            k,
            "this provider is authenticated by a URL token already",
            "list the token in secrets instead",
        );
        return None;
    }
    match sref.resolve() {
        Ok(v) if v.len() >= 16 => Some(Key::new(v.into_bytes())),
        Ok(_) => {
            r.add(
                k,
                "is shorter than 16 characters",
                "use a random token of at least 16 characters",
            );
            None
        }
        Err((problem, fix)) => {
            r.add(k, problem, fix);
            None
        }
    }
}

fn resolve_keys(key: &str, s: &SourceConfig, r: &mut Report) -> Vec<Key> {
    let mut keys = Vec::new();
    for (j, sref) in s.secrets.iter().enumerate() {
        let k = format!("{key}.secrets[{j}]");
        match sref.resolve() {
            Ok(v) if super::behaviour(s.provider).whsec_keys() => match Key::from_whsec(&v) {
                Some(k) => keys.push(k),
                None => r.add(
                    k,
                    "not a Standard Webhooks secret",
                    "use the whsec_<base64> secret as issued",
                ),
            },
            Ok(v) => keys.push(Key::new(v.into_bytes())),
            Err((problem, fix)) => r.add(k, problem, fix),
        }
    }
    keys
}

/// The scheme: built in, or assembled from the `generic_hmac` keys.
fn scheme(key: &str, s: &SourceConfig, r: &mut Report) -> Option<Scheme> {
    let generic_keys = [
        ("header", s.header.is_some()),
        ("prefix", s.prefix.is_some()),
        ("encoding", s.encoding.is_some()),
        ("algorithm", s.algorithm.is_some()),
        ("template", s.template.is_some()),
        ("timestamp_header", s.timestamp_header.is_some()),
        ("id_header", s.id_header.is_some()),
    ];
    if let Some(builtin) = s.provider.scheme() {
        for (k, _) in generic_keys.iter().filter(|(_, set)| *set) {
            r.add(
                format!("{key}.{k}"),
                format!(
                    "only applies to provider = \"generic_hmac\", not \"{}\"",
                    s.provider.as_str()
                ),
                "remove it",
            );
        }
        return Some(builtin);
    }
    let Some(header) = &s.header else {
        r.add(
            format!("{key}.header"),
            "generic_hmac needs the signature header",
            "set header = \"X-Signature\" (or the provider's)",
        );
        return None;
    };
    let header = r.header_name(&format!("{key}.header"), header)?;
    let template = Template::parse(s.template.as_deref().unwrap_or("{body}"))
        .map_err(|e| {
            r.add(
                format!("{key}.template"),
                e,
                "e.g. template = \"{timestamp}.{body}\"",
            )
        })
        .ok()?;
    let opt_header = |name: &str, v: &Option<String>, r: &mut Report| match v {
        Some(v) => r.header_name(&format!("{key}.{name}"), v).map(Some),
        None => Some(None),
    };
    let timestamp_header = opt_header("timestamp_header", &s.timestamp_header, r)?;
    let id_header = opt_header("id_header", &s.id_header, r)?;
    let needs = |part| template.0.contains(&part);
    if needs(TemplatePart::Timestamp) && timestamp_header.is_none() {
        r.add(
            format!("{key}.timestamp_header"),
            "template uses {timestamp} but no timestamp header is set",
            "set timestamp_header",
        );
        return None;
    }
    if needs(TemplatePart::Id) && id_header.is_none() {
        r.add(
            format!("{key}.id_header"),
            "template uses {id} but no id header is set",
            "set id_header",
        );
        return None;
    }
    // A header the MAC does not cover is the sender's word, not the
    // provider's: an unsigned timestamp makes the freshness window
    // meaningless, an unsigned id lets one signed body be stored again under
    // any id (defeating dedup).
    for (name, set, part, placeholder) in [
        (
            "timestamp_header",
            timestamp_header.is_some(),
            TemplatePart::Timestamp,
            "{timestamp}",
        ),
        ("id_header", id_header.is_some(), TemplatePart::Id, "{id}"),
    ] {
        if set && !needs(part) {
            r.add(
                format!("{key}.{name}"),
                format!("is not signed: the template does not use {placeholder}"),
                format!(
                    "add {placeholder} to the template as the provider signs it, or remove {name}"
                ),
            );
            return None;
        }
    }
    Some(Scheme::HeaderMac(HeaderMac {
        header,
        prefix: s.prefix.clone().unwrap_or_default(),
        encoding: s.encoding.unwrap_or_default(),
        algorithm: s.algorithm.unwrap_or_default(),
        template,
        timestamp_header,
        id_header,
    }))
}
