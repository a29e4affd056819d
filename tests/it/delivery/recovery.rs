//! Deliveries across a restart, under a rate limit, and through the `dlq` CLI.

use super::*;
use countersign::admin::api::DeadLetterList;

#[tokio::test]
async fn a_restart_resumes_a_retry_sequence_with_its_attempts_and_due_time() {
    let s = setup(r#"retry_schedule = ["1h"]"#, |_, earlier| {
        if earlier.len() < 2 {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    s.hook("env-1", "completed", "msg_s").await;
    s.recorded("msg_s", 1).await;
    s.advance_to_next("msg_s").await;
    let before = s.recorded("msg_s", 2).await;
    let due = ms(&before.next_attempt_at);
    let mut s = s;
    // Same store, same clock: the delivery is still due at the same time.
    s.gw = s.gw.restart().await;
    let after = s.delivery("msg_s").await;
    assert_eq!(after.attempts, 2);
    assert_eq!(ms(&after.next_attempt_at), due);
    s.rx.assert_stays_at(2).await;
    s.advance_to_next("msg_s").await;
    let d = s.recorded("msg_s", 3).await;
    assert_eq!(d.status, "delivered");
    assert_eq!(d.history.len(), 3);
    s.gw.stop().await;
}

#[tokio::test]
async fn the_rate_limit_spaces_deliveries() {
    let s = setup("rate_limit = { per_second = 2, burst = 1 }", |_, _| {
        Reply::Status(200)
    })
    .await;
    for i in 0..4 {
        s.hook(&format!("env-{i}"), "completed", &format!("msg_{i}"))
            .await;
    }
    s.rx.wait_hits(1).await;
    for n in 1..4 {
        s.rx.assert_stays_at(n).await;
        s.manual.advance(Duration::from_millis(500));
        s.rx.wait_hits(n + 1).await;
    }
    let hits = s.rx.hits();
    for w in hits.windows(2) {
        assert!(
            w[1].at_ms - w[0].at_ms >= 500,
            "{} ms apart",
            w[1].at_ms - w[0].at_ms
        );
    }
    s.gw.stop().await;
}

/// Runs the real binary off the runtime's thread (the gateway answers meanwhile).
async fn cli(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn the_dlq_cli_lists_replays_and_discards_through_the_admin_api() {
    let s = setup("", |_, _| Reply::Status(422)).await;
    for id in ["msg_1", "msg_2"] {
        s.hook(&format!("env-{id}"), "completed", id).await;
        s.recorded(id, 1).await;
    }
    // The admin address comes from the config file's server.admin_listen.
    let cfg = s.gw.dir().join("cli.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nadmin_listen = \"{}\"\n", s.gw.admin),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (ok, out) = cli(&["dlq", "list", "--config", cfg, "--endpoint", "crm"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("msg_1") && out.contains("msg_2") && out.contains("HTTP 422"),
        "{out}"
    );
    assert!(out.contains("2 dead letter(s)"), "{out}");
    let list: DeadLetterList = get(s.gw.admin, "/v1/dead-letters").await.body();
    let id = |i: usize| list.dead_letters[i].id.clone();
    let admin = format!("http://{}", s.gw.admin);

    s.rx.set(|_, _| Reply::Status(200));
    let (ok, out) = cli(&["dlq", "replay", "--admin", &admin, &id(0)]).await;
    assert!(ok && out.contains("replayed"), "{out}");
    assert_eq!(s.recorded("msg_1", 2).await.status, "delivered");
    let (ok, out) = cli(&["dlq", "discard", "--admin", &admin, &id(1)]).await;
    assert!(ok && out.contains("discarded"), "{out}");
    assert_eq!(s.delivery("msg_2").await.status, "discarded");
    let (ok, out) = cli(&["dlq", "discard", "--admin", &admin, &id(1)]).await;
    assert!(!ok && out.contains("no such dead letter"), "{out}");
    let (ok, out) = cli(&["dlq", "list", "--admin", &admin, "--json"]).await;
    assert!(ok, "{out}");
    let listed: DeadLetterList = serde_json::from_str(&out).unwrap();
    assert!(listed.dead_letters.is_empty());
    s.gw.stop().await;
}
