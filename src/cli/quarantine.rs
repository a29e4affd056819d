//! `countersign quarantine list|release|reject`: a small client of the admin
//! API's quarantine routes, like `dlq`.

use http::Method;

use crate::admin::api::{Decided, QuarantineList};
use crate::dlq::call;

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    List {
        /// `held` (default), `released`, `rejected` or `all`.
        status: Option<String>,
        source: Option<String>,
        limit: usize,
        before: Option<u64>,
        json: bool,
    },
    /// Release (`true`) or reject an event, by id (and source when several
    /// sources used the id).
    Decide {
        id: String,
        source: Option<String>,
        release: bool,
    },
}

/// Runs `action` against the admin API at `base`; returns what to print.
pub async fn run(base: &str, token: Option<&str>, action: Action) -> anyhow::Result<String> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    match action {
        Action::List {
            status,
            source,
            limit,
            before,
            json,
        } => {
            let mut q = format!("limit={limit}");
            if let Some(s) = status {
                q.push_str(&format!("&status={}", enc(&s)));
            }
            if let Some(s) = source {
                q.push_str(&format!("&source={}", enc(&s)));
            }
            if let Some(b) = before {
                q.push_str(&format!("&before={b}"));
            }
            let list: QuarantineList =
                call(base, token, Method::GET, &format!("/v1/quarantine?{q}")).await?;
            Ok(if json {
                serde_json::to_string_pretty(&list)?
            } else {
                table(&list)
            })
        }
        Action::Decide {
            id,
            source,
            release,
        } => {
            let verb = if release { "release" } else { "reject" };
            let mut path = format!("/v1/events/{}/{verb}", enc(&id));
            if let Some(s) = source {
                path.push_str(&format!("?source={}", enc(&s)));
            }
            let d: Decided = call(base, token, Method::POST, &path).await?;
            Ok(format!(
                "{} {} (source {}, sequence {})",
                d.status, d.id, d.source, d.sequence
            ))
        }
    }
}

fn table(list: &QuarantineList) -> String {
    let mut out = format!(
        "{:>8} {:<36} {:<16} {:<18} {:<9}  VIOLATIONS\n",
        "SEQ", "EVENT", "SOURCE", "KIND", "STATUS"
    );
    for e in &list.events {
        let violations: Vec<String> = e
            .violations
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| {
                        format!(
                            "{} {}",
                            v["pointer"].as_str().unwrap_or(""),
                            v["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let text: String = violations.join("; ").chars().take(100).collect();
        out.push_str(&format!(
            "{:>8} {:<36} {:<16} {:<18} {:<9}  {text}\n",
            e.sequence,
            e.id,
            e.source,
            e.kind.as_deref().unwrap_or(""),
            e.state.status,
        ));
    }
    out.push_str(&format!("{} event(s)", list.events.len()));
    if let Some(next) = list.next_before {
        out.push_str(&format!("; more with --before {next}"));
    }
    out
}
