//! Config loading: layers, unknown keys, and errors that name the key and the fix.

use super::*;
use crate::config::*;
use std::path::Path;
use std::time::Duration;

#[test]
fn defaults_load_and_round_trip() {
    let l = load_str("").unwrap();
    assert_eq!(l.config, Config::default());
    assert!(l.sources.is_empty());
    let again = load_str(&l.config.to_toml()).unwrap();
    assert_eq!(again.config, l.config);
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let ps = problems("[server]\nlisen = \"0.0.0.0:1\"\n");
    assert!(has(&ps, "server.lisen", "unknown key"), "{ps:?}");
    assert!(has(&ps, "server.lisen", "listen"), "{ps:?}");
    let ps = problems(
        "[[sources]]\nid = \"a\"\nprovider = \"docusign\"\nsecrets = [\"k\"]\nsecret = \"x\"\n",
    );
    assert!(has(&ps, "sources[0].secret", "unknown key"), "{ps:?}");
    let ps = problems("[nope]\nx = 1\n");
    assert!(has(&ps, "nope", "unknown key"), "{ps:?}");
}

#[test]
fn bad_values_name_the_key() {
    let ps = problems("[[sources]]\nid = \"a\"\nprovider = \"docusignn\"\nsecrets = [\"k\"]\n");
    assert!(has(&ps, "sources[0].provider", "unknown value"), "{ps:?}");
    assert!(!format!("{ps:?}").contains("docusignn"), "{ps:?}");
    let ps = problems("[store]\ndedup_ttl = \"7 parsecs\"\n");
    assert!(has(&ps, "store.dedup_ttl", "invalid duration"), "{ps:?}");
    let ps = problems("[server]\nmax_body_bytes = 0\n");
    assert!(has(&ps, "server.max_body_bytes", "out of range"), "{ps:?}");
    let ps = problems("[telemetry]\nlog_level = \"[[[\"\n");
    assert!(has(&ps, "telemetry.log_level", "invalid filter"), "{ps:?}");
    // A multi-byte character inside a span directive made tracing-subscriber
    // panic (fuzzing found it): refused as a config error instead.
    let ps = problems("[telemetry]\nlog_level = \"i\u{fffd}||[{e=-shutd\u{fffd}\"\n");
    assert!(
        has(&ps, "telemetry.log_level", "other than ASCII"),
        "{ps:?}"
    );
}

#[test]
fn source_rules() {
    let ps = problems(
        r#"
[[sources]]
id = "bad id!"
provider = "docusign"

[[sources]]
id = "dup"
provider = "yousign"
secrets = ["env:COUNTERSIGN_TEST_SURELY_UNSET"]

[[sources]]
id = "dup"
provider = "yousign"
secrets = ["k"]
header = "X-Sig"

[[sources]]
id = "g"
provider = "generic_hmac"
secrets = ["k"]
template = "{timestamp}.{body}"

[[sources]]
id = "sw"
provider = "standard_webhooks"
secrets = ["whsec_!!notbase64"]

[[sources]]
id = "f"
provider = "docusign"
secrets = ["k"]
fields = { envelope_id = "data.envelopeId" }
"#,
    );
    assert!(has(&ps, "sources[0].id", "not a valid source id"), "{ps:?}");
    assert!(has(&ps, "sources[0].secrets", "no secret"), "{ps:?}");
    assert!(
        has(
            &ps,
            "sources[1].secrets[0]",
            "COUNTERSIGN_TEST_SURELY_UNSET"
        ),
        "{ps:?}"
    );
    assert!(has(&ps, "sources[2].id", "duplicate"), "{ps:?}");
    assert!(has(&ps, "sources[2].header", "generic_hmac"), "{ps:?}");
    assert!(has(&ps, "sources[3].header", "signature header"), "{ps:?}");
    assert!(
        has(&ps, "sources[4].secrets[0]", "Standard Webhooks"),
        "{ps:?}"
    );
    assert!(
        has(&ps, "sources[5].fields.envelope_id", "JSON pointer"),
        "{ps:?}"
    );
}

#[test]
fn generic_template_needs_its_headers() {
    let ps = problems(
        "[[sources]]\nid = \"g\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"X-Sig\"\ntemplate = \"{timestamp}.{body}\"\n",
    );
    assert!(
        has(&ps, "sources[0].timestamp_header", "no timestamp header"),
        "{ps:?}"
    );
    let ps = problems(
        "[[sources]]\nid = \"g\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"X-Sig\"\ntemplate = \"{ts}.{body}\"\n",
    );
    assert!(
        has(&ps, "sources[0].template", "unknown placeholder"),
        "{ps:?}"
    );
}

#[test]
fn effective_config_redacts_literal_secrets() {
    let l = load_str(
        "[[sources]]\nid = \"a\"\nprovider = \"docusign\"\nsecrets = [\"super-secret-value\", \"env:DS_KEY_2\"]\n",
    );
    // env:DS_KEY_2 is unset here, so loading fails, but never prints the literal.
    let text = format!("{}", l.unwrap_err());
    assert!(!text.contains("super-secret-value"));
    let l = load_str(
        "[[sources]]\nid = \"a\"\nprovider = \"docusign\"\nsecrets = [\"super-secret-value\"]\n",
    )
    .unwrap();
    let out = l.config.to_toml();
    assert!(!out.contains("super-secret-value"), "{out}");
    assert!(out.contains(secret::REDACTED), "{out}");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
fn environment_overrides_nested_keys_only() {
    // Figment's Jail isolates the environment of this test.
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "[server]\nlisten = \"127.0.0.1:1000\"\n")?;
        jail.set_env("COUNTERSIGN_SERVER__LISTEN", "127.0.0.1:2000");
        jail.set_env("COUNTERSIGN_STORE__MAX_BATCH", "7");
        jail.set_env("COUNTERSIGN_DOCUSIGN_SECRET", "not-a-config-key");
        let l = load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(l.config.server.listen.port(), 2000);
        assert_eq!(l.config.store.max_batch, 7);
        jail.set_env("COUNTERSIGN_SERVER__LISTN", "x");
        let e = load(Some(Path::new("c.toml"))).unwrap_err();
        assert!(e.0.iter().any(|p| p.key == "server.listn"), "{e}");
        Ok(())
    });
}

#[test]
fn missing_file_is_named() {
    let e = load(Some(Path::new("/nonexistent/countersign.toml"))).unwrap_err();
    assert_eq!(e.0[0].key, "--config");
}

#[test]
fn kafka_and_route_rules() {
    let ps = problems(
        r#"
[kafka]
brokers = " "
default_topic = "bad topic"
retry_backoff = "10s"
retry_backoff_max = "1s"

[kafka.producer]
"bootstrap.servers" = "x:1"

[[sources]]
id = "a"
provider = "docusign"
secrets = ["k"]

[[routes]]
match = { sources = ["b"], kinds = ["completed"] }
topics = []
"#,
    );
    assert!(has(&ps, "kafka.brokers", "is empty"), "{ps:?}");
    assert!(
        has(&ps, "kafka.default_topic", "not a valid topic"),
        "{ps:?}"
    );
    assert!(has(&ps, "kafka.retry_backoff_max", "shorter"), "{ps:?}");
    assert!(
        has(&ps, "kafka.producer.\"bootstrap.servers\"", "kafka.brokers"),
        "{ps:?}"
    );
    assert!(
        has(&ps, "routes[0].match.sources", "no source `b`"),
        "{ps:?}"
    );
    assert!(has(&ps, "routes[0]", "sends nowhere"), "{ps:?}");
    // Providers are parsed as such: a misspelt one is refused while reading,
    // naming the key and every provider id (but not the value: no config
    // error prints one).
    let ps = problems("[[routes]]\nmatch = { providers = [\"docusignn\"] }\ntopics = [\"t\"]\n");
    assert!(
        has(&ps, "routes[0].match.providers[0]", "unknown value"),
        "{ps:?}"
    );
    assert!(!format!("{ps:?}").contains("docusignn"), "{ps:?}");
    assert!(ps[0].fix.contains("docusign, dropbox_sign"), "{ps:?}");
}

const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn endpoint(lines: &str) -> String {
    format!("[[endpoints]]\nid = \"crm\"\n{lines}\n")
}

#[test]
fn endpoint_defaults_and_resolved_settings() {
    let l = load_str(&format!(
        "{}[[routes]]\nendpoints = [\"crm\"]\n",
        endpoint(&format!(
            "url = \"https://crm.example.com/hooks?t=1\"\nsecret = \"{WHSEC}\"\nheaders = {{ Authorization = \"Bearer abc\" }}"
        ))
    ))
    .unwrap();
    let e = &l.endpoints[0];
    assert_eq!(e.max_attempts, 11);
    assert_eq!(e.schedule, crate::config::DEFAULT_SCHEDULE);
    assert_eq!(e.timeout, Duration::from_secs(10));
    assert_eq!(e.max_in_flight, 32);
    assert_eq!(e.breaker.failures, 5);
    assert!(e.rate_limit.is_none());
    assert_eq!(e.headers["authorization"], "Bearer abc");
    assert_eq!(e.display_url(), "https://crm.example.com/hooks");
    // Secrets and header values print as references only.
    let out = l.config.to_toml();
    assert!(
        !out.contains("C2FVsBQ") && !out.contains("Bearer abc"),
        "{out}"
    );
    assert!(!format!("{e:?}").contains("Bearer"), "{e:?}");
}

#[test]
fn endpoint_problems_name_the_key() {
    let ps = problems(&format!(
        "{}{}{}[[routes]]\nendpoints = [\"nope\"]\n",
        endpoint(
            "url = \"http://127.0.0.1:9/x\"\nsecret = \"not-whsec!\"\nmax_attempts = 0\nretry_schedule = []\nheaders = { \"webhook-id\" = \"x\" }\nrate_limit = { per_second = 0 }"
        ),
        "[[endpoints]]\nid = \"crm\"\nurl = \"ftp://x\"\n",
        "[[endpoints]]\nid = \"b\"\nurl = \"https://user:pw@example.com/\"\nsecret = \"env:COUNTERSIGN_TEST_NO_SUCH_VAR\"\ntimeout = \"1h\"\n",
    ));
    for (key, text) in [
        ("endpoints[0].url", "private"),
        ("endpoints[0].secret", "not a Standard Webhooks secret"),
        ("endpoints[0].max_attempts", "out of range"),
        ("endpoints[0].retry_schedule", "empty"),
        ("endpoints[0].headers.\"webhook-id\"", "set by countersign"),
        ("endpoints[0].rate_limit.per_second", "out of range"),
        ("endpoints[1].id", "duplicate"),
        ("endpoints[1].url", "http:// or https://"),
        ("endpoints[1].secret", "no secret"),
        ("endpoints[2].url", "credentials"),
        ("endpoints[2].secret", "COUNTERSIGN_TEST_NO_SUCH_VAR"),
        ("endpoints[2].timeout", "longer than 5m"),
        ("routes[0].endpoints", "no endpoint `nope`"),
    ] {
        assert!(has(&ps, key, text), "{key}: {ps:?}");
    }
    for url in [
        "http://localhost:8080/",
        "http://[::1]/",
        "http://10.0.0.7/",
        "http://169.254.169.254/",
        // IPv4 reached through IPv6 literals: compatible, mapped (hex form),
        // translated, local-use NAT64, site-local.
        "http://[::127.0.0.1]/",
        "http://[::a9fe:a9fe]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:0:a00:7]/",
        "http://[64:ff9b:1::a00:7]/",
        "http://[fec0::1]/",
    ] {
        let ps = problems(&endpoint(&format!("url = \"{url}\"\nsecret = \"{WHSEC}\"")));
        assert!(
            has(&ps, "endpoints[0].url", "allow_private"),
            "{url}: {ps:?}"
        );
        let ok = load_str(&endpoint(&format!(
            "url = \"{url}\"\nsecret = \"{WHSEC}\"\nallow_private = true"
        )));
        assert!(ok.is_ok(), "{url}: {ok:?}");
    }
}

#[test]
fn librdkafka_rejects_unknown_producer_properties_by_name() {
    let ps = problems(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.producer]\n\"no.such.property\" = 1\n",
    );
    assert!(has(&ps, "kafka.producer", "no.such.property"), "{ps:?}");
    let ok = load_str(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.producer]\n\"compression.type\" = \"zstd\"\n\"linger.ms\" = 10\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn an_unknown_route_kind_names_the_key() {
    let ps = problems("[[routes]]\nmatch = { kinds = [\"finished\"] }\ntopics = [\"t\"]\n");
    assert!(
        ps.iter()
            .any(|p| p.key.starts_with("routes[0].match.kinds")
                && p.fix.contains("signer_completed")),
        "{ps:?}"
    );
}

#[test]
fn envelope_settings_name_the_key() {
    // A provider event may never take a derived kind; routes may match one.
    let ps = problems(
        "[[sources]]\nid = \"s\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"X-Sig\"\nkinds = { \"done\" = \"envelope.all_signed\" }\n\n[envelopes]\nretention = \"1d\"\nstream_buffer = 1\n",
    );
    assert!(has(&ps, "sources[0].kinds.done", "derived"), "{ps:?}");
    assert!(has(&ps, "envelopes.retention", "store.retention"), "{ps:?}");
    assert!(has(&ps, "envelopes.stream_buffer", "16"), "{ps:?}");
    let ok = load_str(
        "[envelopes]\nenabled = true\n[[routes]]\nmatch = { kinds = [\"envelope.all_signed\"] }\ntopics = [\"billing.triggers\"]\n",
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn kafka_credentials_are_redacted_and_references_resolved() {
    let l = load_str(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.producer]\n\"sasl.password\" = \"hunter2\"\n\"sasl.username\" = \"cs\"\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanisms\" = \"PLAIN\"\n",
    )
    .unwrap();
    let out = l.config.to_toml();
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("sasl.username"), "{out}");
    let c = l.kafka.as_ref().unwrap();
    assert_eq!(c.get("sasl.password"), Some("hunter2"));
    let ps = problems(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.producer]\n\"sasl.password\" = \"env:COUNTERSIGN_TEST_NO_SUCH_VAR\"\n",
    );
    assert!(
        has(
            &ps,
            "kafka.producer.\"sasl.password\"",
            "COUNTERSIGN_TEST_NO_SUCH_VAR"
        ),
        "{ps:?}"
    );
}

#[test]
fn retention_must_cover_the_dedup_window() {
    let ps = problems("[store]\ndedup_ttl = \"7d\"\nretention = \"1d\"\n");
    assert!(has(&ps, "store.retention", "dedup_ttl"), "{ps:?}");
}

#[test]
fn operating_keys_are_checked_and_named() {
    let e = load_str(
        r#"
[server]
max_requests_in_flight = 0
client_rate_limit = { per_second = 0, burst = 0 }
client_ip_header = "bad header"

[telemetry]
otlp_endpoint = "ftp://collector"
otlp_headers = { "x-api-key" = "env:COUNTERSIGN_TEST_NO_SUCH_VAR" }
trace_sample_ratio = 1.5

[[sources]]
id = "s"
provider = "standard_webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
rate_limit = { per_second = 1e9 }
"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "server.max_requests_in_flight",
        "server.client_rate_limit.per_second",
        "server.client_rate_limit.burst",
        "server.client_ip_header",
        "telemetry.otlp_endpoint",
        "telemetry.otlp_headers.\"x-api-key\"",
        "telemetry.trace_sample_ratio",
        "sources[0].rate_limit.per_second",
    ] {
        assert!(keys.contains(&k), "{k} not in {keys:?}");
    }
    assert!(e.0.iter().all(|p| !p.fix.is_empty()), "{e}");
    let ok = load_str(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\notlp_protocol = \"http/json\"\n",
    )
    .unwrap();
    assert_eq!(
        ok.config.telemetry.otlp_protocol,
        crate::config::OtlpProtocol::HttpJson
    );
}

/// A maximum below the 1 s minimum made `clamp` panic in the worker.
#[test]
fn retry_after_max_below_one_second_is_refused() {
    let url = "url = \"https://example.com/hook\"";
    let ps = problems(&endpoint(&format!(
        "{url}\nsecret = \"{WHSEC}\"\nretry_after_max = \"500ms\""
    )));
    assert!(
        has(&ps, "endpoints[0].retry_after_max", "at least \"1s\""),
        "{ps:?}"
    );
    let ok = load_str(&endpoint(&format!(
        "{url}\nsecret = \"{WHSEC}\"\nretry_after_max = \"1s\""
    )));
    assert!(ok.is_ok(), "{ok:?}");
}

/// No config error prints a value: a secret in the wrong shape, a TOML
/// syntax error on a secret's line, an unknown enum value, a duration.
#[test]
fn config_errors_never_print_the_value() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for toml in [
        format!(
            "[[sources]]\nid = \"s\"\nprovider = \"standard_webhooks\"\nsecrets = \"{secret}\"\n"
        ),
        format!(
            "[[sources]]\nid = \"s\"\nprovider = \"standard_webhooks\"\nsecrets = [\"{secret}\n"
        ),
        format!("[[sources]]\nid = \"s\"\nprovider = \"{secret}\"\nsecrets = [\"k\"]\n"),
        format!("[server]\nshutdown_timeout = \"{secret}\"\n"),
        format!("[server]\nlisten = \"{secret}\"\n"),
        format!(
            "[[sources]]\nid = \"s\"\nprovider = \"yousign\"\nsecrets = [\"k\"]\ntolerance = {{ a = \"{secret}\" }}\n"
        ),
    ] {
        let e = load_str(&toml).unwrap_err().to_string();
        assert!(!e.contains("MfKQ9r8GKYqr"), "{e}");
        assert!(!e.is_empty());
    }
    // The key is still named.
    let e = load_str(&format!(
        "[[sources]]\nid = \"s\"\nprovider = \"standard_webhooks\"\nsecrets = \"{secret}\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sources[0].secrets") && e.contains("a string"),
        "{e}"
    );
}

/// `config check` shows a producer property's value only when the key is
/// known to be harmless; a numeric password and an OAUTHBEARER config are
/// credentials too. librdkafka's refusals do not quote the value.
#[test]
fn kafka_properties_are_redacted_unless_known_harmless() {
    let l = load_str(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.producer]\n\"sasl.password\" = 73310977\n\"sasl.oauthbearer.config\" = \"clientId=a clientSecret=s3cr3t-9d\"\n\"linger.ms\" = 7\n",
    );
    let l = match l {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let out = l.config.to_toml();
    assert!(!out.contains("73310977"), "{out}");
    assert!(!out.contains("s3cr3t-9d"), "{out}");
    assert!(out.contains("\"linger.ms\" = 7"), "{out}");
    let e = problems(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.producer]\n\"linger.ms\" = \"s3cr3t-4e\"\n",
    );
    let text = format!("{e:?}");
    assert!(text.contains("linger.ms"), "{text}");
    assert!(!text.contains("s3cr3t-4e"), "{text}");
}

/// An admin listener other machines can reach needs a token (or an explicit
/// `admin_insecure`).
#[test]
fn a_reachable_admin_listener_needs_a_token() {
    let ps = problems("[server]\nadmin_listen = \"0.0.0.0:9090\"\n");
    assert!(has(&ps, "server.admin_token", "reachable"), "{ps:?}");
    for ok in [
        "[server]\nadmin_listen = \"0.0.0.0:9090\"\nadmin_token = \"adm-0123456789abcdef\"\n",
        "[server]\nadmin_listen = \"0.0.0.0:9090\"\nadmin_insecure = true\n",
        "[server]\nadmin_listen = \"127.0.0.1:9090\"\n",
        "[server]\nadmin_listen = \"[::1]:9090\"\n",
    ] {
        assert!(load_str(ok).is_ok(), "{ok}");
    }
    let ps = problems("[server]\nadmin_token = \"short\"\n");
    assert!(has(&ps, "server.admin_token", "16"), "{ps:?}");
}

#[test]
fn route_conditions_are_checked_at_load() {
    // A syntax error, with its position.
    let ps = problems("[[routes]]\nwhen = \"event.kind == \"\ntopics = [\"t\"]\n");
    assert!(has(&ps, "routes[0].when", "line 1, column"), "{ps:?}");
    // An unknown variable, where it is.
    let ps = problems(
        "[[routes]]\ntopics = [\"t\"]\n[[routes]]\nwhen = \"event.kind == 'x' && evt.id == 'y'\"\ntopics = [\"t\"]\n",
    );
    assert!(
        has(
            &ps,
            "routes[1].when",
            "line 1, column 22: unknown variable `evt`"
        ),
        "{ps:?}"
    );
    // Not a bool.
    let ps = problems("[[routes]]\nwhen = \"event.payload.amount * 2\"\ntopics = [\"t\"]\n");
    assert!(has(&ps, "routes[0].when", "not a bool"), "{ps:?}");
    // `envelope` needs envelope tracking.
    let ps = problems("[[routes]]\nwhen = \"envelope.state == 'completed'\"\ntopics = [\"t\"]\n");
    assert!(
        has(&ps, "routes[0].when", "envelope tracking is off"),
        "{ps:?}"
    );
    let ok = load_str(
        "[envelopes]\nenabled = true\n[[routes]]\nwhen = \"envelope.state == 'completed'\"\ntopics = [\"t\"]\n",
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    // Names are unique.
    let ps = problems(
        "[[routes]]\nname = \"a\"\ntopics = [\"t\"]\n[[routes]]\nname = \"a\"\ntopics = [\"u\"]\n",
    );
    assert!(has(&ps, "routes[1].name", "more than once"), "{ps:?}");
}

#[test]
fn timer_settings_name_the_key() {
    let ps = problems(
        "[[sources]]\nid = \"s\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"X-Sig\"\nreminders = [\"3d\", \"soon\"]\nexpire_after = \"30d\"\n",
    );
    assert!(
        has(&ps, "sources[0].reminders[1]", "not an offset"),
        "{ps:?}"
    );
    assert!(has(&ps, "sources[0]", "envelope tracking is off"), "{ps:?}");
    let ps = problems("[envelopes]\ntimer_batch = 0\ntimer_interval = \"0s\"\n");
    assert!(has(&ps, "envelopes.timer_batch", ""), "{ps:?}");
    assert!(has(&ps, "envelopes.timer_interval", ""), "{ps:?}");
    let ok = load_str(
        "[envelopes]\nenabled = true\n[[sources]]\nid = \"s\"\nprovider = \"generic_hmac\"\nsecrets = [\"k\"]\nheader = \"X-Sig\"\nreminders = [\"3d\", \"-1d\"]\nexpire_after = \"30d\"\nescalate_after = \"7d\"\n",
    )
    .unwrap();
    assert_eq!(l_policy(&ok).reminders.len(), 2);
}

fn l_policy(l: &Loaded) -> &crate::envelope::timers::Policy {
    &l.timer_policies["s"]
}

#[test]
fn audit_settings_name_the_key_and_the_key_stays_secret() {
    let key = "0707070707070707070707070707070707070707070707070707070707070707";
    let ps = problems("[audit]\nenabled = true\n");
    assert!(
        has(&ps, "audit.signing_key", "openssl rand -hex 32"),
        "{ps:?}"
    );
    let ps = problems("[audit]\nenabled = true\nsigning_key = \"abc\"\n");
    assert!(has(&ps, "audit.signing_key", "64 hex digits"), "{ps:?}");
    let ps = problems(&format!(
        "[audit]\nenabled = true\nsigning_key = \"{key}\"\ncheckpoint_every = 0\ncheckpoint_interval = \"10ms\"\nretention = \"1h\"\nkafka_topic = \"audit\"\n"
    ));
    assert!(has(&ps, "audit.checkpoint_every", "is 0"), "{ps:?}");
    assert!(has(&ps, "audit.checkpoint_interval", "1s"), "{ps:?}");
    assert!(has(&ps, "audit.retention", "one day"), "{ps:?}");
    assert!(has(&ps, "audit.kafka_topic", "kafka.brokers"), "{ps:?}");
    let ps = problems("[audit]\nenable = true\n");
    assert!(has(&ps, "audit.enable", "unknown key"), "{ps:?}");

    // Off, nothing is needed; on with a key, it loads, and the effective
    // config never shows the key.
    assert!(load_str("[audit]\ncheckpoint_every = 0\n").is_ok());
    let l = load_str(&format!(
        "[audit]\nenabled = true\nsigning_key = \"{key}\"\n"
    ))
    .unwrap();
    assert!(l.audit_public_key().is_some());
    assert!(!l.config.to_toml().contains(key), "{}", l.config.to_toml());
    assert_eq!(
        l.config.audit.retention,
        Duration::from_secs(3_652 * 86_400)
    );
}

#[test]
fn write_ahead_log_settings_name_the_key() {
    let ps = problems(
        "[store]\nwal_checkpoint_interval = \"0s\"\nwal_checkpoint_idle = \"5s\"\nwal_max_bytes = 1000\n",
    );
    assert!(has(&ps, "store.wal_checkpoint_interval", "0"), "{ps:?}");
    assert!(
        has(&ps, "store.wal_checkpoint_interval", "wal_checkpoint_idle"),
        "{ps:?}"
    );
    assert!(has(&ps, "store.wal_max_bytes", "1048576"), "{ps:?}");
    let ok = load_str("[store]\nwal = false\nwal_checkpoint_interval = \"200ms\"\n");
    assert!(ok.is_ok(), "{ok:?}");
}
