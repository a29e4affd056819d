//! `countersign route test`: which routes an event matches, and why. Each
//! route's filters and its condition's result, for people writing rules.

use std::fmt::Write as _;

use crate::condition::Input;
use crate::config::Match;
use crate::event::{EnvelopeBlock, SignatureEvent};

use super::{Matches, Routed, Router};

/// One route's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub label: String,
    /// Each non-empty filter (`match.kinds = [...]`) and whether it held.
    pub filters: Vec<(String, bool)>,
    /// The condition and its result (`None`: not evaluated, a filter failed).
    pub when: Option<(String, Option<Result<bool, String>>)>,
    pub matched: bool,
}

/// The non-empty filters of `m`, each with whether `e` passes it alone.
fn filters(m: &Match, e: &SignatureEvent) -> Vec<(String, bool)> {
    let any = Match::default;
    let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    let parts = [
        (
            "sources",
            m.sources.clone(),
            Match {
                sources: m.sources.clone(),
                ..any()
            },
        ),
        (
            "providers",
            names(m.providers.iter().map(|p| p.as_str()).collect()),
            Match {
                providers: m.providers.clone(),
                ..any()
            },
        ),
        (
            "kinds",
            names(m.kinds.iter().map(|k| k.as_str()).collect()),
            Match {
                kinds: m.kinds.clone(),
                ..any()
            },
        ),
        (
            "event_types",
            m.event_types.clone(),
            Match {
                event_types: m.event_types.clone(),
                ..any()
            },
        ),
    ];
    parts
        .into_iter()
        .filter(|(_, listed, _)| !listed.is_empty())
        .map(|(key, listed, only)| (format!("match.{key} = {listed:?}"), only.matches(e)))
        .collect()
}

/// Every route's verdict on `e` (with `envelope`, else the event's own
/// block), and the destinations. Evaluation errors here are not counted.
pub fn explain(
    router: &Router,
    e: &SignatureEvent,
    envelope: Option<&EnvelopeBlock>,
) -> (Vec<Explained>, Routed) {
    let input = Input::new(e, envelope.or(e.envelope.as_ref()));
    let mut routed = Routed::default();
    let verdicts = router
        .inner
        .routes
        .iter()
        .map(|r| {
            let filters = filters(&r.cfg.filter, e);
            let pass = r.cfg.filter.matches(e);
            let result = r
                .cond
                .as_ref()
                .filter(|_| pass)
                .map(|c| c.eval(&input).map_err(|_| c.error(&input)));
            let matched = pass && result.as_ref().is_none_or(|x| *x == Ok(true));
            if matched {
                routed.add(&r.cfg);
            }
            Explained {
                label: r.label.clone(),
                filters,
                when: r.cfg.when.clone().map(|w| (w, result)),
                matched,
            }
        })
        .collect();
    router.default_topic(&mut routed, false);
    (verdicts, routed)
}

impl Explained {
    /// As the CLI prints it.
    pub fn render(&self, out: &mut String) {
        let verdict = if self.matched { "MATCH" } else { "no match" };
        let _ = writeln!(out, "{}: {verdict}", self.label);
        if self.filters.is_empty() {
            let _ = writeln!(out, "  match: (any event)");
        }
        for (f, ok) in &self.filters {
            let _ = writeln!(out, "  {f}: {}", if *ok { "yes" } else { "no" });
        }
        if let Some((src, result)) = &self.when {
            let r = match result {
                None => "not evaluated (a filter did not match)".to_owned(),
                Some(Ok(b)) => b.to_string(),
                Some(Err(e)) => format!("error: {e} (the route does not match)"),
            };
            let _ = writeln!(out, "  when `{src}`: {r}");
        }
    }
}
