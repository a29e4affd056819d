//! The panel's pages in a real browser against a real gateway: the overview
//! counts move, an envelope's row changes live, a dead letter is replayed
//! from the page, a wrong token is refused, and the live link survives a
//! restart of the gateway.

use std::time::Duration;

use countersign::admin::api::EndpointList;
use serde_json::json;

use super::cdp::Browser;
use super::{billing, check_page, live};
use crate::common::kafka::free_port;
use crate::common::receiver::{Receiver, Reply};
use crate::common::*;
use crate::envelopes::hooks::{TRACKING, docusign, hook, register};

const TOKEN: &str = "adm-0123456789abcdef";
/// The audit trail on, signed with a fixed test key.
const AUDIT: &str = "[audit]\nenabled = true\nsigning_key = \"0707070707070707070707070707070707070707070707070707070707070707\"\n";

fn now() -> i64 {
    countersign::time::Clock::System.now_ms() / 1000
}

/// Clicks `button`, waits for the confirmation dialog, and confirms it (or
/// cancels it).
async fn confirm(b: &Browser, button: &str, ok: bool) {
    b.click(button).await;
    b.present("#confirm[open]", "the confirmation").await;
    b.click(if ok { "#confirm-ok" } else { "#confirm-cancel" })
        .await;
}

fn url(gw: &Gateway, route: &str) -> String {
    format!("http://{}/{route}", gw.admin)
}

/// The number a tile of the overview shows.
async fn tile(b: &Browser, id: &str) -> u64 {
    let v = b
        .wait(
            &format!("document.querySelector('#{id} .value')?.textContent"),
            id,
        )
        .await;
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_overview_counts_move_and_an_envelope_row_changes_live() {
    // A named route for the trigger (Kafka off: routing is computed and
    // shown, nothing is published).
    let route = "[[routes]]\nname = \"billing-trigger\"\nmatch.kinds = [\"envelope.all_signed\"]\ntopics = [\"billing\"]\n";
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}\n{AUDIT}\n{route}")).await;
    let l = gw.loaded();
    let b = Browser::launch().await;
    b.open(&url(&gw, "")).await;
    live(&b).await;
    let before = tile(&b, "total-accepted").await;
    for i in 0..3 {
        hook(gw.public, &sw_hook(&l, &format!("msg_panel_{i}"))).await;
    }
    b.wait(
        &format!(
            "Number(document.querySelector('#total-accepted .value').textContent) >= {}",
            before + 3
        ),
        "the accepted count to move by 3",
    )
    .await;
    check_page(&b, "overview").await;

    let r = register(
        gw.admin,
        "docusign",
        "env-live",
        json!({"reference": "LEASE-7", "signers": [{"email": "a@example.com"}, {"email": "b@example.com"}],
               "metadata": {"contract_value": 1200}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    b.open(&url(&gw, "#/envelopes")).await;
    let row = "document.querySelector('#envelope-rows tr[data-source=\"docusign\"][data-envelope=\"env-live\"]')";
    b.wait(
        &format!("{row}?.dataset.state === 'open'"),
        "the registered envelope's row",
    )
    .await;
    live(&b).await;
    let t = now();
    hook(
        gw.public,
        &docusign(&l, "envelope-sent", "env-live", None, t),
    )
    .await;
    b.wait(
        &format!("{row}.dataset.state === 'in_signing'"),
        "in_signing",
    )
    .await;
    // Signer `n` (e-mail `email`) signs, `dt` seconds after sending.
    let signs = |n: &'static str, email: &'static str, dt: i64| {
        docusign(
            &l,
            "recipient-completed",
            "env-live",
            Some((n, email)),
            t + dt,
        )
    };
    hook(gw.public, &signs("1", "a@example.com", 1)).await;
    b.wait(
        &format!("{row}.querySelector('.progress').textContent === '1/2 signed'"),
        "1/2 signed",
    )
    .await;
    // The last signature completes it, live, without a reload.
    b.eval("window.__same_page = true").await;
    hook(gw.public, &signs("2", "b@example.com", 2)).await;
    b.wait(
        &format!("{row}.dataset.state === 'completed' && {row}.classList.contains('changed')"),
        "the row to turn completed and be marked",
    )
    .await;
    assert_eq!(b.eval("window.__same_page").await, true, "no reload");
    // A new envelope appears on top, in creation order.
    hook(
        gw.public,
        &docusign(&l, "envelope-sent", "env-new", None, t + 3),
    )
    .await;
    b.wait(
        "document.querySelector('#envelope-rows tr:first-child')?.dataset.envelope === 'env-new'",
        "the new envelope on top",
    )
    .await;
    b.wait(
        "window.countersignPanel.received === window.countersignPanel.painted + window.countersignPanel.coalesced",
        "every message painted (or replaced by a newer one of its envelope)",
    )
    .await;
    check_page(&b, "envelopes").await;

    // A filter change; the detail page with registration, timeline, deliveries.
    b.open(&url(&gw, "#/envelopes?state=cancelled")).await;
    b.wait(
        "document.querySelector('#list-status')?.textContent === 'No envelopes match.'",
        "an empty filter",
    )
    .await;
    b.open(&url(&gw, "#/envelopes/docusign/env-live")).await;
    b.present("#timeline tbody tr", "the timeline").await;
    b.present("#deliveries .routes", "the routes an event matches")
        .await;
    for want in [
        "billing-trigger",
        "LEASE-7",
        "contract_value",
        "envelope.all_signed",
        "a@example.com",
        "2/2 signed",
    ] {
        let seen = format!("document.querySelector('main').innerText.includes({want:?})");
        b.wait(&seen, want).await;
    }
    b.present("#deliveries article", "the events' routing")
        .await;
    let verdict = b
        .wait(
            "document.querySelector('#audit-verdict')?.textContent",
            "the audit verdict",
        )
        .await;
    assert!(
        verdict.as_str().unwrap().starts_with("Verified: "),
        "{verdict}"
    );
    b.present("#audit table tbody tr", "the audit entries")
        .await;
    check_page(&b, "envelope").await;

    // Search by reference and by event id.
    b.fill("#search-q", "LEASE-7").await;
    b.click("#search button").await;
    b.present("#envelope-results tbody tr", "the reference found")
        .await;
    b.fill("#search-q", "msg_panel_1").await;
    b.click("#search button").await;
    b.present("#event-results tbody tr", "the event found")
        .await;
    check_page(&b, "search").await;

    gw.stop().await;
}

#[tokio::test]
async fn a_dead_letter_is_replayed_from_the_page() {
    let rx = Receiver::start(countersign::time::Clock::System, |_, _| Reply::Status(500)).await;
    let extra = format!("{SOURCES}\n{}", billing(&rx, "max_attempts = 1"));
    let gw = Gateway::start(&extra).await;
    let l = gw.loaded();
    let b = Browser::launch().await;
    b.open(&url(&gw, "#/dead-letters")).await;
    b.present("#dead-letters .notice", "no dead letters yet")
        .await;
    live(&b).await;
    // They appear while the page is open: it follows the overview stream.
    hook(gw.public, &sw_hook(&l, "msg_dead_1")).await;
    hook(gw.public, &sw_hook(&l, "msg_dead_2")).await;
    b.wait(
        "document.querySelectorAll('#dead-letter-table tbody tr[data-id]').length === 2",
        "two dead letters, without a reload",
    )
    .await;
    // The attempt history, then a screenshot with it open.
    b.click("#dead-letter-table tbody tr[data-id] .attempts-toggle")
        .await;
    b.present(".detail:not([hidden]) .attempts li", "the attempts")
        .await;
    check_page(&b, "dead-letters").await;

    rx.set(|_, _| Reply::Status(200));
    let id = b
        .eval("document.querySelector('#dead-letter-table tbody tr[data-id]').dataset.id")
        .await;
    let id = id.as_str().unwrap().to_owned();
    b.click(&format!("tr[data-id='{id}'] .replay")).await;
    b.present("#confirm[open]", "the confirmation").await;
    assert_eq!(rx.hits().len(), 2, "nothing is sent before it is confirmed");
    b.click("#confirm-ok").await;
    b.wait(
        &format!("!document.querySelector(\"tr[data-id='{id}']\")"),
        "the replayed row to go",
    )
    .await;
    let hits = rx.wait_hits(3).await;
    assert_eq!(hits.len(), 3);
    assert!(b.text("#outcome").await.starts_with("Replayed"));

    // Cancelling the confirmation changes nothing.
    confirm(&b, "#replay-all", false).await;
    rx.assert_stays_at(3).await;
    assert_eq!(
        b.eval("document.querySelectorAll('#dead-letter-table tbody tr[data-id]').length")
            .await,
        1
    );

    // Discarding the other one, confirmed: gone from the page, never sent.
    confirm(&b, "#dead-letter-table tbody tr[data-id] .discard", true).await;
    b.wait(
        "!document.querySelector('#dead-letter-table tbody tr[data-id]')",
        "the discarded row to go",
    )
    .await;
    assert!(b.text("#outcome").await.starts_with("Discarded"));
    rx.assert_stays_at(3).await;

    // A 410 Gone disables the endpoint; the page re-enables it, and the
    // delivery that met the 410 goes out.
    rx.set(|_, earlier| {
        if earlier.len() == 3 {
            Reply::Status(410)
        } else {
            Reply::Status(200)
        }
    });
    hook(gw.public, &sw_hook(&l, "msg_gone")).await;
    rx.wait_hits(4).await;
    eventually(
        "the endpoint disabled",
        Duration::from_secs(10),
        async || {
            let list: EndpointList = get(gw.admin, "/v1/endpoints").await.body();
            (list.endpoints[0].state == "disabled").then_some(())
        },
    )
    .await;
    b.open(&url(&gw, "#/dead-letters?endpoint=billing")).await;
    b.present("#enable", "the re-enable button").await;
    assert!(b.text("main").await.contains("Disabled since"));
    confirm(&b, "#enable", true).await;
    b.wait(
        "document.querySelector('#outcome')?.textContent === 'billing is enabled again.'",
        "enabled",
    )
    .await;
    assert!(b.eval("!document.querySelector('#enable')").await == true);
    let hits = rx.wait_hits(5).await;
    assert_eq!(hits[4].header("webhook-id"), hits[3].header("webhook-id"));
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    gw.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_right_one_kept_for_the_tab() {
    let gw = Gateway::start_with_server_keys(
        &format!("{SOURCES}\n{TRACKING}"),
        &format!("admin_token = \"{TOKEN}\"\n"),
    )
    .await;
    let b = Browser::launch().await;
    b.open(&url(&gw, "")).await;
    b.present("#login #token", "the sign-in form").await;
    check_page(&b, "sign-in").await;
    b.fill("#token", "adm-wrong-wrong-wrong").await;
    b.click("#login button").await;
    b.present("#login-error", "the refusal").await;
    assert_eq!(b.text("#login-error").await, "The token was refused.");
    assert!(b.eval("!document.querySelector('#totals')").await == true);

    b.fill("#token", TOKEN).await;
    b.click("#login button").await;
    b.present("#total-accepted", "the overview").await;
    // Kept in this tab's session, never in a cookie.
    assert_eq!(b.eval("document.cookie").await, "");
    assert_eq!(
        b.eval("sessionStorage.getItem('countersign.token')").await,
        TOKEN
    );
    b.open(&url(&gw, "#/envelopes")).await;
    b.present("#list-status", "the list with the kept token")
        .await;
    b.click("#logout").await;
    b.present("#login #token", "signed out").await;
    assert_eq!(
        b.eval("sessionStorage.getItem('countersign.token')").await,
        json!(null)
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_page_says_reconnecting_and_resumes_after_the_stream_is_cut() {
    let port = free_port();
    let gw = Gateway::start_with(
        |dir| {
            config_text(dir, &format!("{SOURCES}\n{TRACKING}")).replace(
                "admin_listen = \"127.0.0.1:0\"",
                &format!("admin_listen = \"127.0.0.1:{port}\""),
            )
        },
        countersign::time::Clock::System,
    )
    .await;
    let l = gw.loaded();
    let t = now();
    hook(
        gw.public,
        &docusign(&l, "envelope-sent", "env-cut", None, t),
    )
    .await;
    let b = Browser::launch().await;
    b.open(&url(&gw, "#/envelopes")).await;
    let row = "document.querySelector('#envelope-rows tr[data-source=\"docusign\"][data-envelope=\"env-cut\"]')";
    b.wait(&format!("{row}?.dataset.state === 'in_signing'"), "the row")
        .await;
    live(&b).await;

    let stopped = gw.stop().await;
    b.wait(
        "document.querySelector('#link').textContent === 'reconnecting…'",
        "reconnecting…",
    )
    .await;
    let gw = stopped.start().await;
    assert_eq!(gw.admin.port(), port);
    // Committed while the page is still reconnecting: replayed on resume.
    let public = gw.public;
    hook(
        public,
        &docusign(&l, "envelope-voided", "env-cut", None, t + 1),
    )
    .await;
    live(&b).await;
    b.wait(
        &format!("{row}.dataset.state === 'cancelled'"),
        "the change made during the cut",
    )
    .await;
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    gw.stop().await;
}

#[tokio::test]
async fn the_live_list_keeps_200_rows_and_pages_on_from_the_rows_it_let_go() {
    let gw = Gateway::start(&format!("{SOURCES}\n{TRACKING}")).await;
    let l = gw.loaded();
    let t = now();
    let sent = |i: usize| docusign(&l, "envelope-sent", &format!("env-{i:03}"), None, t);
    for i in 0..60 {
        hook(gw.public, &sent(i)).await;
    }
    let b = Browser::launch().await;
    b.open(&url(&gw, "#/envelopes")).await;
    live(&b).await;
    let rows = "document.querySelectorAll('#envelope-rows tr').length";
    let row =
        |id: &str| format!("!!document.querySelector('#envelope-rows tr[data-envelope=\"{id}\"]')");
    b.wait(&format!("{rows} === 50"), "the first page").await;
    assert_eq!(
        b.eval(&row("env-010")).await,
        true,
        "the oldest of the first page"
    );
    for i in 60..220 {
        hook(gw.public, &sent(i)).await;
    }
    b.wait(&format!("{rows} === 200"), "200 rows at most").await;
    b.present(
        "#envelope-rows tr[data-envelope=\"env-219\"]",
        "the newest on top",
    )
    .await;
    assert_eq!(b.eval(&row("env-010")).await, false, "the oldest let go");
    b.click("#more").await;
    b.wait(&row("env-010"), "the rows let go, back").await;
    b.wait(&row("env-000"), "and the older ones").await;
    let order = b
        .eval("[...document.querySelectorAll('#envelope-rows tr')].map((r) => r.dataset.envelope).join(',')")
        .await;
    let order: Vec<String> = order
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "newest first, no gap, no duplicate");
    assert_eq!(order.len(), 220);
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    gw.stop().await;
}
