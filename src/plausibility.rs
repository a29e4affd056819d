//! Plausibility: a source's `schema` (JSON Schema 2020-12 over the provider
//! payload) and `require` (normalized fields that must be present and well
//! formed, for every kind or for listed kinds), compiled once at start-up.
//! An event that fails is not rejected: the pipeline marks it
//! [`Quarantine`]d with the violations.
//!
//! Pure: the schema arrives as JSON (the loader reads the file).

use serde_json::Value;

use crate::config::Require;
use crate::event::{Kind, Quarantine, SignatureEvent, Violation};

/// The normalized fields `require` may name.
pub const FIELDS: [&str; 9] = [
    "envelope_id",
    "document_id",
    "occurred_at",
    "sandbox",
    "signer",
    "signer.id",
    "signer.email",
    "signer.name",
    "signer.role",
];

/// Most violations recorded per event (a payload can fail a schema in
/// thousands of places).
pub const MAX_VIOLATIONS: usize = 20;

/// A source's compiled checks.
pub struct Checks {
    schema: Option<jsonschema::Validator>,
    /// Fields (indexes into [`FIELDS`]) and the kinds they apply to (empty: all).
    require: Vec<(Vec<usize>, Vec<Kind>)>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("schema", &self.schema.is_some())
            .field("require", &self.require.len())
            .finish()
    }
}

/// Why `schema` or `require` cannot be used: the key's suffix, the problem, the fix.
pub type Problem = (String, String, String);

impl Checks {
    /// Compiles a source's checks; `None` when it has none.
    pub fn compile(schema: Option<&Value>, require: &[Require]) -> Result<Option<Checks>, Problem> {
        let schema = match schema {
            None => None,
            Some(s) => Some(
                jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(s)
                    .map_err(|e| {
                        (
                            "schema".to_owned(),
                            format!("not a usable JSON Schema 2020-12: {}", e.masked()),
                            "fix the schema file (a remote `$ref` cannot be fetched: inline it)"
                                .to_owned(),
                        )
                    })?,
            ),
        };
        let mut rules = Vec::with_capacity(require.len());
        for (i, r) in require.iter().enumerate() {
            let (fields, kinds) = r.parts();
            let mut idx = Vec::with_capacity(fields.len());
            for f in fields {
                let Some(n) = FIELDS.iter().position(|x| x == f) else {
                    return Err((
                        format!("require[{i}]"),
                        format!("`{f}` is not a normalized field"),
                        format!("use one of: {}", FIELDS.join(", ")),
                    ));
                };
                idx.push(n);
            }
            rules.push((idx, kinds.to_vec()));
        }
        Ok((schema.is_some() || !rules.is_empty()).then_some(Checks {
            schema,
            require: rules,
        }))
    }

    /// What `e` fails (nothing: it is sound), at most [`MAX_VIOLATIONS`].
    pub fn check(&self, e: &SignatureEvent) -> Vec<Violation> {
        let mut out = Vec::new();
        for (fields, kinds) in &self.require {
            if !kinds.is_empty() && !kinds.contains(&e.kind) {
                continue;
            }
            for &f in fields {
                if let Some(v) = field(e, f)
                    && !out.iter().any(|o: &Violation| o.pointer == v.pointer)
                {
                    out.push(v);
                }
            }
        }
        if let Some(schema) = &self.schema {
            for err in schema.iter_errors(&e.payload) {
                if out.len() >= MAX_VIOLATIONS {
                    break;
                }
                out.push(Violation {
                    pointer: format!("/payload{}", err.instance_path()),
                    message: err.masked().to_string(),
                });
            }
        }
        out.truncate(MAX_VIOLATIONS);
        out
    }

    /// The event with its `quarantined` block when it fails.
    pub fn screen(&self, e: &mut SignatureEvent) {
        let violations = self.check(e);
        if !violations.is_empty() {
            e.quarantine = Some(Quarantine {
                violations,
                released_by: None,
                released_at: None,
            });
        }
    }
}

/// The violation of required field `FIELDS[f]`, if any.
fn field(e: &SignatureEvent, f: usize) -> Option<Violation> {
    let name = FIELDS[f];
    let signer = e.signer.as_ref();
    let text = |v: Option<&String>| v.filter(|s| !s.trim().is_empty()).is_some();
    let missing = match name {
        "envelope_id" => !text(e.envelope_id.as_ref()),
        "document_id" => !text(e.document_id.as_ref()),
        "sandbox" => e.sandbox.is_none(),
        "signer" => signer.is_none(),
        "signer.id" => !text(signer.and_then(|s| s.id.as_ref())),
        "signer.name" => !text(signer.and_then(|s| s.name.as_ref())),
        "signer.role" => !text(signer.and_then(|s| s.role.as_ref())),
        "signer.email" => {
            let Some(m) = signer.and_then(|s| s.email.as_deref()) else {
                return Some(missing_field(name));
            };
            if !is_email(m) {
                return Some(Violation {
                    pointer: "/signer/email".to_owned(),
                    message: "is not an e-mail address".to_owned(),
                });
            }
            false
        }
        "occurred_at" => {
            let Some(t) = e.occurred_at.as_deref() else {
                return Some(missing_field(name));
            };
            if crate::time::parse_rfc3339_ms(t).is_none() {
                return Some(Violation {
                    pointer: "/occurred_at".to_owned(),
                    message: "is not an RFC 3339 time".to_owned(),
                });
            }
            false
        }
        _ => false,
    };
    missing.then(|| missing_field(name))
}

fn missing_field(name: &str) -> Violation {
    Violation {
        pointer: format!("/{}", name.replace('.', "/")),
        message: "is required but missing".to_owned(),
    }
}

/// A plausible e-mail address: one `@`, a local part, a domain with a dot
/// and no empty label, no whitespace or control characters.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let clean = |p: &str| !p.is_empty() && p.chars().all(|c| !c.is_whitespace() && !c.is_control());
    clean(local)
        && clean(domain)
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty())
        && s.len() <= 254
}

#[cfg(test)]
mod tests;
