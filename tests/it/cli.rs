//! The binary's subcommands: `config check`, `sign` and `health`, and the
//! README's flow (sign a body, send it, read it back from the admin API).

use crate::common::*;

fn example() -> String {
    format!("{}/config.example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn config_check_prints_the_effective_config_without_secrets() {
    let out = countersign(&["config", "check", "--config", &example()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"0.0.0.0:8080\""), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    for secret in [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "demo-docusign-connect-hmac-key",
        "demo-inhouse-secret",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    // The printed config is itself a valid config.
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("effective.toml");
    std::fs::write(
        &again,
        text.replace("[redacted]", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
    )
    .unwrap();
    assert!(
        countersign(&["config", "check", "--config", again.to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn config_errors_name_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[server]\nlisten = \"0.0.0.0:8080\"\nmax_body_byte = 5\n\n[[sources]]\nid = \"x\"\nprovider = \"docusign\"\nsecrets = [\"env:COUNTERSIGN_CLI_TEST_UNSET\"]\n").unwrap();
    let out = countersign(&["config", "check", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`server.max_body_byte`: unknown key"), "{err}");
    assert!(err.contains("max_body_bytes"), "{err}");
    // Figment stops at the first key error; fix it and the secret problem shows.
    std::fs::write(&p, "[[sources]]\nid = \"x\"\nprovider = \"docusign\"\nsecrets = [\"env:COUNTERSIGN_CLI_TEST_UNSET\"]\n").unwrap();
    let out = countersign(&["config", "check", "--config", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`sources[0].secrets[0]`"), "{err}");
    assert!(err.contains("export COUNTERSIGN_CLI_TEST_UNSET"), "{err}");
}

#[tokio::test]
async fn signed_with_the_cli_then_accepted_and_visible() {
    let gw = Gateway::start(SOURCES).await;
    let cfg = gw.dir().join("c.toml");
    std::fs::write(&cfg, &gw.toml).unwrap();
    for (source, body) in [
        (
            "sw",
            r#"{"type":"envelope.completed","data":{"envelope_id":"cli-env"}}"#,
        ),
        ("dropbox", fixture("dropbox").body),
        ("skribble", ""),
    ] {
        let url = format!("http://{}", gw.public);
        let out = countersign(&[
            "sign",
            "--config",
            cfg.to_str().unwrap(),
            "--source",
            source,
            "--data",
            body,
            "--url",
            &url,
            "--format",
            "json",
            "--id",
            "msg_cli_1",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let full_url = v["url"].as_str().unwrap();
        let mut path = full_url.strip_prefix(&url).unwrap().to_owned();
        if source == "skribble" {
            path.push_str("?event=SUCCESS&signature_request_id=sr-cli");
        }
        let headers = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let req = Req {
            method: "POST",
            path,
            headers,
            body: v["body"].as_str().unwrap().as_bytes().to_vec(),
        };
        let r = send(gw.public, &req).await;
        assert_eq!(r.status, 200, "{source}: {}", r.text());
    }
    let e = get(gw.admin, "/v1/events/msg_cli_1").await;
    assert_eq!(e.json()["event"]["envelope_id"], "cli-env");
    assert_eq!(event_count(gw.admin).await, 3);
    // The curl form carries the same headers.
    let out = countersign(&[
        "sign",
        "--config",
        cfg.to_str().unwrap(),
        "--source",
        "docusign",
        "--data",
        "{}",
    ]);
    let curl = String::from_utf8(out.stdout).unwrap();
    assert!(
        curl.starts_with("curl -sS -X POST 'http://127.0.0.1:0/hooks/docusign'"),
        "{curl}"
    );
    assert!(curl.contains("-H 'X-DocuSign-Signature-1: "), "{curl}");
    gw.stop().await;
}

/// Runs the binary off the runtime (the gateway under test shares it).
async fn countersign_async(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        countersign(&args)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn health_probes_the_admin_api() {
    let gw = Gateway::start(SOURCES).await;
    let admin = format!("http://{}", gw.admin);
    for extra in [None, Some("--ready")] {
        let mut args = vec!["health".to_owned(), "--admin".to_owned(), admin.clone()];
        args.extend(extra.map(str::to_owned));
        let out = countersign_async(args).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = if extra.is_some() {
            "/readyz"
        } else {
            "/healthz"
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("ok: {admin}{path}")
        );
    }
    gw.stop().await;
    // Nothing listens any more: exit 1 and say why.
    let out = countersign_async(vec!["health".into(), "--admin".into(), admin.clone()]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unhealthy") && err.contains(&admin), "{err}");
}
