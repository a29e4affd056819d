//! Data minimisation: `redact` rules compiled once (JSON pointers with `*`
//! over array items and object members) and applied to an event as JSON.
//! Modes: `remove`, `mask` (a short hint), `hash` (hex HMAC-SHA-256 under
//! `[privacy] pepper`, stable across restarts). A path that matches nothing
//! changes nothing: payloads vary.
//!
//! Pure: no I/O. Sources apply their rules before anything is stored;
//! endpoints and routes apply theirs to what they send.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::config::{RedactMode, RedactRule};

#[cfg(test)]
pub(crate) mod tests;

/// One segment of a compiled pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    /// `*`: every item of an array, every member of an object.
    Any,
}

/// Why a rule's path is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    #[error("not a JSON pointer: it must start with `/`")]
    NoSlash,
    #[error("a bad escape: `~` must be followed by 0 or 1")]
    Escape,
    #[error(
        "a source may only redact `/payload/…`, `/signer`, `/signer/{{id,email,name,role}}` or `/document_id`"
    )]
    NotOnSource,
    #[error("`{0}` on `/signer` as a whole: only `remove` applies to an object")]
    WholeSigner(&'static str),
}

/// Parses an RFC 6901 pointer with `*` segments.
fn parse(path: &str) -> Result<Vec<Seg>, BadPath> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(BadPath::NoSlash);
    };
    rest.split('/')
        .map(|s| {
            if s == "*" {
                return Ok(Seg::Any);
            }
            let mut out = String::with_capacity(s.len());
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(BadPath::Escape),
                    },
                    c => out.push(c),
                }
            }
            Ok(Seg::Key(out))
        })
        .collect()
}

/// Checks a rule's path (`on_source`: the narrower set a source may touch,
/// so the event stays an event).
pub fn check(rule: &RedactRule, on_source: bool) -> Result<(), BadPath> {
    let segs = parse(&rule.path)?;
    if on_source {
        let key = |i: usize| match segs.get(i) {
            Some(Seg::Key(k)) => Some(k.as_str()),
            _ => None,
        };
        match (key(0), segs.len()) {
            (Some("payload"), n) if n >= 2 => {}
            (Some("document_id"), 1) => {}
            (Some("signer"), 1) if rule.mode == RedactMode::Remove => {}
            (Some("signer"), 1) => return Err(BadPath::WholeSigner(rule.mode.as_str())),
            (Some("signer"), 2) if matches!(key(1), Some("id" | "email" | "name" | "role")) => {}
            _ => return Err(BadPath::NotOnSource),
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Rule {
    path: String,
    segs: Vec<Seg>,
    mode: RedactMode,
}

/// Compiled rules; cheap to clone.
#[derive(Clone)]
pub struct Redactor {
    rules: Arc<[Rule]>,
    /// The HMAC key of `hash` rules.
    pepper: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// Compiles rules already [`check`]ed; `None` when there are none. A
    /// `hash` rule needs the pepper (config validation makes sure of it).
    pub fn new(rules: &[RedactRule], pepper: Option<&[u8]>) -> Option<Redactor> {
        let rules: Vec<Rule> = rules
            .iter()
            .filter_map(|r| {
                Some(Rule {
                    path: r.path.clone(),
                    segs: parse(&r.path).ok()?,
                    mode: r.mode,
                })
            })
            .collect();
        (!rules.is_empty()).then(|| Redactor {
            rules: rules.into(),
            pepper: pepper.map(Arc::from),
        })
    }

    /// Several sets of rules as one (a topic named by several routes).
    pub fn union<'a>(all: impl IntoIterator<Item = &'a Redactor>) -> Option<Redactor> {
        let mut rules = Vec::new();
        let mut pepper = None;
        for r in all {
            rules.extend(r.rules.iter().map(|x| Rule {
                path: x.path.clone(),
                segs: x.segs.clone(),
                mode: x.mode,
            }));
            pepper = pepper.or_else(|| r.pepper.clone());
        }
        (!rules.is_empty()).then(|| Redactor {
            rules: rules.into(),
            pepper,
        })
    }

    /// The rules as `path (mode)`, for `config check`.
    pub fn describe(&self) -> Vec<String> {
        (self.rules.iter())
            .map(|r| format!("{} ({})", r.path, r.mode.as_str()))
            .collect()
    }

    /// Applies every rule to `v`, in order.
    pub fn apply(&self, v: &mut Value) {
        for r in self.rules.iter() {
            self.walk(v, &r.segs, r.mode);
        }
    }

    /// Applies the rules to serialized JSON; `None` when it is not JSON.
    pub fn apply_bytes(&self, json: &[u8]) -> Option<Vec<u8>> {
        let mut v: Value = serde_json::from_slice(json).ok()?;
        self.apply(&mut v);
        serde_json::to_vec(&v).ok()
    }

    fn walk(&self, v: &mut Value, segs: &[Seg], mode: RedactMode) {
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        if rest.is_empty() {
            return self.last(v, first, mode);
        }
        match (first, v) {
            (Seg::Any, Value::Array(items)) => {
                items.iter_mut().for_each(|c| self.walk(c, rest, mode))
            }
            (Seg::Any, Value::Object(m)) => m.values_mut().for_each(|c| self.walk(c, rest, mode)),
            (Seg::Key(k), v) => {
                if let Some(c) = child(v, k) {
                    self.walk(c, rest, mode);
                }
            }
            _ => {}
        }
    }

    /// The last segment: acts on the parent `v`'s member(s).
    fn last(&self, v: &mut Value, seg: &Seg, mode: RedactMode) {
        match (mode, seg, v) {
            (RedactMode::Remove, Seg::Any, Value::Array(items)) => items.clear(),
            (RedactMode::Remove, Seg::Any, Value::Object(m)) => m.clear(),
            (RedactMode::Remove, Seg::Key(k), Value::Object(m)) => {
                m.remove(k);
            }
            (RedactMode::Remove, Seg::Key(k), Value::Array(items)) => {
                if let Some(i) = index(k, items.len()) {
                    items.remove(i);
                }
            }
            (_, Seg::Any, Value::Array(items)) => {
                items.iter_mut().for_each(|c| self.change(c, mode))
            }
            (_, Seg::Any, Value::Object(m)) => m.values_mut().for_each(|c| self.change(c, mode)),
            (_, Seg::Key(k), v) => {
                if let Some(c) = child(v, k) {
                    self.change(c, mode);
                }
            }
            _ => {}
        }
    }

    /// `mask` or `hash` of one value (`null` stays `null`: there is nothing to hide).
    fn change(&self, v: &mut Value, mode: RedactMode) {
        if v.is_null() {
            return;
        }
        *v = Value::String(match mode {
            RedactMode::Mask => mask(v),
            RedactMode::Hash => self.hash(v),
            RedactMode::Remove => return,
        });
    }

    fn hash(&self, v: &Value) -> String {
        let text;
        let bytes = match v {
            Value::String(s) => s.as_bytes(),
            other => {
                text = other.to_string();
                text.as_bytes()
            }
        };
        // Validation requires the pepper for `hash`; without one (a bug),
        // the value is removed from sight all the same.
        let Some(key) = &self.pepper else {
            return "***".to_owned();
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(bytes);
        hex::encode(mac.finalize().into_bytes())
    }
}

fn child<'v>(v: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    match v {
        Value::Object(m) => m.get_mut(key),
        Value::Array(items) => {
            let i = index(key, items.len())?;
            items.get_mut(i)
        }
        _ => None,
    }
}

/// An array index segment (decimal, no leading zeros), within `len`.
fn index(key: &str, len: usize) -> Option<usize> {
    let ok = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    let i: usize = key.parse().ok().filter(|_| ok)?;
    (i < len).then_some(i)
}

/// `jane@example.com` → `j***@example.com`; `Alice` → `A***`; anything
/// else → `***`.
pub fn mask(v: &Value) -> String {
    let Value::String(s) = v else {
        return "***".to_owned();
    };
    let first = s.chars().next();
    match (first, s.rsplit_once('@')) {
        (Some(c), Some((local, domain))) if !local.is_empty() && !domain.is_empty() => {
            format!("{c}***@{domain}")
        }
        (Some(c), _) if s.chars().count() > 1 => format!("{c}***"),
        _ => "***".to_owned(),
    }
}
