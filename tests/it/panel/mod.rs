//! The status panel end to end: a gateway started by the test, webhooks sent
//! through real sockets, and the page in headless Chromium ([`cdp`]). Each
//! page is checked with axe-core (no serious or critical violation, light
//! and dark, desktop and phone width) and saved as a screenshot under
//! `target/panel-screenshots/`.

mod api;
mod cdp;
mod pages;

use std::path::PathBuf;

use cdp::Browser;

/// Endpoint `billing` at the receiver, every event routed to it; `extra`
/// adds keys to the endpoint.
fn billing(rx: &crate::common::receiver::Receiver, extra: &str) -> String {
    format!(
        r#"
[[endpoints]]
id = "billing"
url = "http://{}/hooks"
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
allow_private = true
{extra}

[[routes]]
endpoints = ["billing"]
"#,
        rx.addr
    )
}

/// Waits until the page's live link is up.
async fn live(b: &Browser) {
    b.wait(
        "document.querySelector('#link').dataset.state === 'up'",
        "the live link",
    )
    .await;
}

/// Where the screenshots go: `target/panel-screenshots/`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("panel-screenshots")
}

/// axe-core's script: `$AXE_CORE`, else where `scripts/test.sh` caches it.
fn axe_source() -> String {
    let path = std::env::var_os("AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/countersign/axe-core-4.10.3/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing at {} ({e}): run scripts/test.sh (it fetches it from npm) or set AXE_CORE",
            path.display()
        )
    })
}

/// Runs axe-core on the page: the serious and critical violations.
async fn axe(b: &Browser) -> Vec<String> {
    if b.eval("typeof window.axe").await != "object" {
        b.eval(&axe_source()).await;
    }
    let v = b
        .eval(
            "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations
                .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))",
        )
        .await;
    serde_json::from_value(v).unwrap()
}

/// Checks the page with axe-core in light and dark at 1 280 px, and in light
/// at phone width (where the page must not be wider than the screen), and
/// saves a screenshot of each as `{name}.png`, `{name}-dark.png` and
/// `{name}-phone.png`.
async fn check_page(b: &Browser, name: &str) {
    for (dark, phone) in [(false, false), (true, false), (false, true)] {
        b.scheme(dark).await;
        if phone {
            b.viewport(390, 844, true).await;
            let fits = b
                .eval("document.documentElement.scrollWidth <= window.innerWidth")
                .await;
            assert_eq!(fits, true, "{name} is wider than a phone");
        }
        let bad = axe(b).await;
        assert!(
            bad.is_empty(),
            "{name} (dark: {dark}, phone: {phone}): {bad:#?}"
        );
        let file = match (dark, phone) {
            (true, _) => format!("{name}-dark.png"),
            (_, true) => format!("{name}-phone.png"),
            _ => format!("{name}.png"),
        };
        b.screenshot(&screenshots().join(file)).await;
    }
    b.scheme(false).await;
    b.viewport(1280, 900, false).await;
    assert!(b.errors().is_empty(), "script errors: {:?}", b.errors());
}
