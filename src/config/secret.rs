//! Secret references in config: `env:NAME`, `file:/path` or a literal. Resolved
//! once at start-up; printed only as the reference (a literal prints as redacted).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const REDACTED: &str = "[redacted]";

#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    Literal(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> SecretRef {
        if let Some(name) = s.strip_prefix("env:") {
            SecretRef::Env(name.to_owned())
        } else if let Some(path) = s.strip_prefix("file:") {
            SecretRef::File(PathBuf::from(path))
        } else {
            SecretRef::Literal(s.to_owned())
        }
    }

    /// The secret's value. Errors say what is missing and never contain a value.
    pub fn resolve(&self) -> Result<String, (String, String)> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                (
                    format!("environment variable {name} is not set (or not UTF-8)"),
                    format!("export {name}=<secret>, or give the secret as file:/path"),
                )
            })?,
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| {
                    (
                        format!("cannot read secret file {}: {e}", path.display()),
                        "point file: at a readable file holding only the secret".to_owned(),
                    )
                })?,
            SecretRef::Literal(s) => s.clone(),
        };
        if value.is_empty() {
            return Err((
                "secret is empty".to_owned(),
                "set a non-empty secret".to_owned(),
            ));
        }
        Ok(value)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Literal(_) => f.write_str(REDACTED),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(SecretRef::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_never_print() {
        let s = SecretRef::parse("hunter2");
        assert_eq!(s.to_string(), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(SecretRef::parse("env:X").to_string(), "env:X");
    }

    #[test]
    fn resolves_files_and_reports_missing_env() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc\n").unwrap();
        let r = SecretRef::parse(&format!("file:{}", p.display()));
        assert_eq!(r.resolve().unwrap(), "abc");
        let (problem, fix) = SecretRef::parse("env:COUNTERSIGN_TEST_UNSET_VAR_X")
            .resolve()
            .unwrap_err();
        assert!(problem.contains("COUNTERSIGN_TEST_UNSET_VAR_X"));
        assert!(fix.contains("export"));
    }
}
