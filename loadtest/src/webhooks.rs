//! Realistic signed webhooks: envelopes with several signers going through sent →
//! viewed → signed (per signer) → completed, for Standard Webhooks, DocuSign,
//! Yousign and BoldSign, each signed with countersign's own signer for that
//! provider, with unique event ids, a duplicate ratio and a target payload size.

use std::collections::VecDeque;

use countersign::app::{self as config, Loaded};
use serde_json::json;

/// The providers the generator speaks, with the source ids and secrets that
/// `countersign_config` writes.
pub const PROVIDERS: &[(&str, &str, &str)] = &[
    (
        "standard_webhooks",
        "lt-sw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    ("docusign", "lt-docusign", "loadtest-docusign-key"),
    ("yousign", "lt-yousign", "loadtest-yousign-key"),
    ("boldsign", "lt-boldsign", "loadtest-boldsign-key"),
];

/// `[[sources]]` for the providers above, to append to a countersign config.
pub fn countersign_sources() -> String {
    PROVIDERS
        .iter()
        .map(|(p, id, secret)| {
            format!("[[sources]]\nid = \"{id}\"\nprovider = \"{p}\"\nsecrets = [\"{secret}\"]\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One request, ready to send any number of times.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub providers: Vec<String>,
    pub duplicate_ratio: f64,
    pub payload_bytes: usize,
    pub signers: usize,
    /// With it, each envelope has `signers..=signers_max` signers (uniform).
    pub signers_max: Option<usize>,
    /// Distinguishes runs so event ids never collide with an earlier run's.
    pub run_id: String,
    /// Every webhook sends a new envelope out (its `sent` event only):
    /// envelopes that stay out for signing, e.g. to load timers.
    pub only_sent: bool,
}

/// Produces webhooks in envelope order; keeps recent ones to replay as duplicates.
pub struct Generator {
    cfg: GenConfig,
    loaded: Loaded,
    counter: u64,
    step: usize,
    envelope: u64,
    provider_idx: usize,
    /// Signers of the current envelope.
    n: usize,
    recent: VecDeque<Webhook>,
}

/// The steps of one envelope's life with `n` signers.
fn step_name(step: usize, n: usize) -> Option<(&'static str, Option<usize>)> {
    match step {
        0 => Some(("sent", None)),
        s if s <= n => Some(("viewed", Some(s - 1))),
        s if s <= 2 * n => Some(("signed", Some(s - n - 1))),
        s if s == 2 * n + 1 => Some(("completed", None)),
        _ => None,
    }
}

impl Generator {
    pub fn new(cfg: GenConfig) -> anyhow::Result<Generator> {
        let loaded =
            config::load_str(&countersign_sources()).map_err(|e| anyhow::anyhow!("{e}"))?;
        for p in &cfg.providers {
            anyhow::ensure!(
                PROVIDERS.iter().any(|(name, ..)| name == p),
                "unknown provider {p}"
            );
        }
        Ok(Generator {
            cfg,
            loaded,
            counter: 0,
            step: 0,
            envelope: 0,
            provider_idx: 0,
            n: 0,
            recent: VecDeque::new(),
        })
        .map(|mut g| {
            g.n = g.signers_for_next();
            g
        })
    }

    /// The next webhook: a duplicate with probability `duplicate_ratio`.
    pub fn next(&mut self) -> Webhook {
        if !self.recent.is_empty() && fastrand::f64() < self.cfg.duplicate_ratio {
            let i = fastrand::usize(..self.recent.len());
            return self.recent[i].clone();
        }
        let w = self.fresh();
        self.recent.push_back(w.clone());
        if self.recent.len() > 256 {
            self.recent.pop_front();
        }
        w
    }

    fn signers_for_next(&self) -> usize {
        let lo = self.cfg.signers.max(1);
        match self.cfg.signers_max {
            Some(hi) if hi > lo => fastrand::usize(lo..=hi),
            _ => lo,
        }
    }

    fn fresh(&mut self) -> Webhook {
        let step = if self.cfg.only_sent && self.step > 0 {
            usize::MAX
        } else {
            self.step
        };
        let (stage, signer) = match step_name(step, self.n) {
            Some(s) => s,
            None => {
                self.step = 0;
                self.envelope += 1;
                self.n = self.signers_for_next();
                self.provider_idx = (self.provider_idx + 1) % self.cfg.providers.len();
                step_name(0, self.n).unwrap()
            }
        };
        self.step += 1;
        self.counter += 1;
        let provider = self.cfg.providers[self.provider_idx].clone();
        let env = format!("env-{}-{}", self.cfg.run_id, self.envelope);
        let id = format!("evt-{}-{}", self.cfg.run_id, self.counter);
        let signer_id = signer.map(|s| s + 1);
        let mut body = payload(&provider, stage, &env, &id, signer_id);
        pad(&mut body, self.cfg.payload_bytes);
        let body = serde_json::to_vec(&body).expect("JSON");
        let (_, source_id, _) = PROVIDERS.iter().find(|(p, ..)| *p == provider).unwrap();
        let source = self
            .loaded
            .sources
            .iter()
            .find(|s| s.id == *source_id)
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signed = source.sign(&body, now, &id).expect("sign");
        let mut headers = signed.signature.headers;
        headers.push(("content-type".into(), "application/json".into()));
        Webhook {
            path: format!("/hooks/{source_id}"),
            headers,
            body: signed.body.into(),
        }
    }
}

/// A provider-shaped body for one step of an envelope.
fn payload(
    provider: &str,
    stage: &str,
    env: &str,
    id: &str,
    signer: Option<usize>,
) -> serde_json::Value {
    let email = signer.map(|s| format!("signer{s}@example.com"));
    match provider {
        "docusign" => {
            let event = match stage {
                "sent" => "envelope-sent",
                "viewed" => "recipient-delivered",
                "signed" => "recipient-completed",
                _ => "envelope-completed",
            };
            json!({"event": event, "apiVersion": "v2.1", "retryCount": 0, "generatedDateTime": id,
                   "data": {"envelopeId": env, "recipientId": signer.map(|s| s.to_string())}})
        }
        "yousign" => {
            let event = match stage {
                "sent" => "signature_request.activated",
                "viewed" => "signer.link_opened",
                "signed" => "signer.done",
                _ => "signature_request.done",
            };
            json!({"event_id": id, "event_name": event, "event_time": "1700000000", "sandbox": false,
                   "data": {"signature_request": {"id": env}, "signer": {"id": signer.map(|s| s.to_string()), "info": {"email": email}}}})
        }
        "boldsign" => {
            let event = match stage {
                "sent" => "Sent",
                "viewed" => "Viewed",
                "signed" => "Signed",
                _ => "Completed",
            };
            json!({"event": {"id": id, "created": 1700000000, "eventType": event, "environment": "Live"},
                   "data": {"object": "document", "documentId": env, "signerDetails": [{"signerEmail": email}]}})
        }
        _ => {
            let kind = if stage == "signed" {
                "signer_completed"
            } else {
                stage
            };
            json!({"type": format!("envelope.{kind}"), "timestamp": "2026-01-01T00:00:00Z",
                   "data": {"envelope_id": env, "signer": {"email": email}}})
        }
    }
}

/// Adds a `padding` field so the serialized body is about `target` bytes.
fn pad(v: &mut serde_json::Value, target: usize) {
    let len = v.to_string().len();
    if target > len + 14 {
        v["padding"] = serde_json::Value::String("x".repeat(target - len - 14));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_walk_their_steps() {
        let names: Vec<_> = (0..8).map(|s| step_name(s, 3).map(|x| x.0)).collect();
        assert_eq!(
            names,
            vec![
                Some("sent"),
                Some("viewed"),
                Some("viewed"),
                Some("viewed"),
                Some("signed"),
                Some("signed"),
                Some("signed"),
                Some("completed")
            ]
        );
        assert_eq!(step_name(8, 3), None);
    }

    #[test]
    fn padding_reaches_the_target_size() {
        let mut v = json!({"a": 1});
        pad(&mut v, 1000);
        let len = v.to_string().len();
        assert!((990..=1010).contains(&len), "{len}");
    }

    #[test]
    fn generates_every_provider() {
        let cfg = GenConfig {
            providers: PROVIDERS.iter().map(|p| p.0.to_string()).collect(),
            duplicate_ratio: 0.0,
            payload_bytes: 0,
            signers: 2,
            signers_max: Some(5),
            run_id: "t".into(),
            only_sent: false,
        };
        let mut g = Generator::new(cfg).unwrap();
        let paths: std::collections::HashSet<String> = (0..40).map(|_| g.next().path).collect();
        assert_eq!(paths.len(), 4);
    }

    #[test]
    fn only_sent_sends_a_new_envelope_each_time() {
        let cfg = GenConfig {
            providers: vec!["standard_webhooks".into()],
            duplicate_ratio: 0.0,
            payload_bytes: 0,
            signers: 2,
            signers_max: None,
            run_id: "t".into(),
            only_sent: true,
        };
        let mut g = Generator::new(cfg).unwrap();
        for i in 0..5 {
            let body = String::from_utf8(g.next().body.to_vec()).unwrap();
            assert!(body.contains("envelope.sent"), "{body}");
            assert!(body.contains(&format!("env-t-{i}\"")), "{body}");
        }
    }
}
