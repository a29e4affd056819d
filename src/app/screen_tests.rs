//! Loading plausibility checks and redactions: every problem names its key
//! and the fix; `config check`'s per-destination report.

use crate::app::load::{has, problems};
use crate::app::load_str;

const SOURCE: &str = "[[sources]]\nid = \"sw\"\nprovider = \"standard_webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n";

#[test]
fn bad_paths_and_missing_pepper_name_their_keys() {
    let ps = problems(&format!(
        "{SOURCE}redact = [{{ path = \"/payload/x\", mode = \"hash\" }}, {{ path = \"payload/y\", mode = \"remove\" }}, {{ path = \"/id\", mode = \"remove\" }}]\n"
    ));
    assert!(has(&ps, "privacy.pepper", "needs a pepper"), "{ps:?}");
    assert!(
        has(&ps, "sources[0].redact[1].path", "must start with `/`"),
        "{ps:?}"
    );
    assert!(
        has(&ps, "sources[0].redact[2].path", "a source may only redact"),
        "{ps:?}"
    );

    let ps = problems(
        "[[endpoints]]\nid = \"e\"\nurl = \"https://example.com/\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\nredact = [{ path = \"/a/~9\", mode = \"mask\" }]\n",
    );
    assert!(
        has(&ps, "endpoints[0].redact[0].path", "bad escape"),
        "{ps:?}"
    );

    let ps = problems(
        "[[routes]]\nendpoints = []\nredact = [{ path = \"/payload/x\", mode = \"remove\" }]\n",
    );
    assert!(has(&ps, "routes[0].redact", "names none"), "{ps:?}");

    let ps = problems("[privacy]\npepper = \"short\"\n");
    assert!(
        has(&ps, "privacy.pepper", "shorter than 16 bytes"),
        "{ps:?}"
    );
    assert!(
        !format!("{ps:?}").contains("short\""),
        "the pepper is never shown"
    );

    let ps = problems(&format!(
        "{SOURCE}redact = [{{ path = \"/payload/x\", mode = \"blur\" }}]\n"
    ));
    assert!(
        ps.iter().any(|p| p.key.starts_with("sources[0].redact")),
        "{ps:?}"
    );
}

#[test]
fn bad_schemas_and_require_rules_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let ps = problems(&format!("{SOURCE}schema = \"{}\"\n", missing.display()));
    assert!(has(&ps, "sources[0].schema", "cannot read"), "{ps:?}");

    let not_json = dir.path().join("bad.json");
    std::fs::write(&not_json, "{ \"type\": ").unwrap();
    let ps = problems(&format!("{SOURCE}schema = \"{}\"\n", not_json.display()));
    assert!(has(&ps, "sources[0].schema", "is not JSON"), "{ps:?}");

    let bad_schema = dir.path().join("schema.json");
    std::fs::write(&bad_schema, r#"{"type": "contract"}"#).unwrap();
    let ps = problems(&format!("{SOURCE}schema = \"{}\"\n", bad_schema.display()));
    assert!(
        has(&ps, "sources[0].schema", "not a usable JSON Schema"),
        "{ps:?}"
    );

    let ps = problems(&format!(
        "{SOURCE}require = [\"envelope_id\", \"signer_mail\"]\n"
    ));
    assert!(has(&ps, "sources[0].require[1]", "signer.email"), "{ps:?}");
    let ps = problems(&format!(
        "{SOURCE}require = [{{ fields = [\"envelope_id\"], kinds = [\"finished\"] }}]\n"
    ));
    assert!(
        ps.iter().any(|p| p.key.starts_with("sources[0].require")),
        "{ps:?}"
    );
}

#[test]
fn config_check_lists_what_each_destination_receives_redacted() {
    let toml = format!(
        r#"{SOURCE}redact = [{{ path = "/signer/email", mode = "hash" }}]

[privacy]
pepper = "0123456789abcdef0123"

[kafka]
brokers = "127.0.0.1:9092"

[[endpoints]]
id = "crm"
url = "https://example.com/"
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
redact = [{{ path = "/payload/recipients/*/email", mode = "mask" }}]

[[routes]]
topics = ["billing", "archive"]
redact = [{{ path = "/payload/iban", mode = "remove" }}]

[[routes]]
topics = ["billing"]
redact = [{{ path = "/signer/name", mode = "mask" }}]
endpoints = ["crm"]
"#
    );
    let l = load_str(&toml).unwrap_or_else(|e| panic!("{e}"));
    let report = l.redaction_report();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            "redacted fields, per destination:",
            "  source sw (stored): /signer/email (hash)",
            "  topic archive: /payload/iban (remove)",
            "  topic billing: /payload/iban (remove), /signer/name (mask)",
            "  endpoint crm: /payload/recipients/*/email (mask)",
        ],
        "{report}"
    );
    assert!(!report.contains("0123456789abcdef"));
    assert_eq!(load_str(SOURCE).unwrap().redaction_report(), "");
}
