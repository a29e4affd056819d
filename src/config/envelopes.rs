//! `[envelopes]`: envelope tracking (state, derived events, registration) and
//! the live stream of its changes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dur;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvelopesConfig {
    /// Track envelopes: state per (source, envelope id), `envelope.*` derived
    /// events, registration and the stream. Off by default, so upgrading
    /// publishes nothing new to anyone's topics; off, events are only
    /// forwarded and the envelope API answers 409.
    pub enabled: bool,
    /// An envelope (with its history) is kept this long after its last
    /// change. At least `store.retention`, so an envelope outlives its events.
    #[serde(with = "dur")]
    pub retention: Duration,
    /// Signers one envelope tracks at most (registered and seen in events);
    /// further signers seen in events are recorded in the history only.
    pub max_signers: usize,
    /// History entries one envelope keeps at most; past it, events that change
    /// nothing are no longer added (changes always are).
    pub max_history: usize,
    /// Envelopes the store's writer keeps in memory (recently used first):
    /// one group commit writes each changed envelope once.
    pub cache_envelopes: usize,
    /// Largest registration body (`PUT /v1/envelopes/{source}/{id}`).
    pub max_registration_bytes: usize,
    /// Stream subscribers (`/v1/stream`, `/v1/stream/ws`) at once at most;
    /// beyond it 503.
    pub stream_max_subscribers: usize,
    /// Messages a stream subscriber may fall behind; past it the subscriber
    /// is disconnected (it resumes from its last message id).
    pub stream_buffer: usize,
    /// Messages replayed on resume at most; a subscriber further behind is
    /// told to page the history through the API instead.
    pub stream_max_replay: usize,
    /// A keep-alive comment (SSE) or ping (WebSocket) this often.
    #[serde(with = "dur")]
    pub stream_keepalive: Duration,
    /// Changes that commit within this window of the first one go to each
    /// subscriber in one wake-up and one write: subscribers wake at most once
    /// per window, however fast changes come, and each change is at most this
    /// much later. `0s` sends every commit's changes at once.
    #[serde(with = "dur")]
    pub stream_coalesce: Duration,
    /// How often due timers (reminders, deadlines, escalations) are looked
    /// for; a timer fires at most this late while the gateway runs.
    #[serde(with = "dur")]
    pub timer_interval: Duration,
    /// Timers one transaction fires at most (more due: the next goes at once).
    /// Webhooks wait at most one such transaction while many timers fall due
    /// at once (after a restart): small keeps their latency, large fires
    /// faster (BENCHMARKS.md).
    pub timer_batch: usize,
}

impl Default for EnvelopesConfig {
    fn default() -> Self {
        EnvelopesConfig {
            enabled: false,
            retention: Duration::from_secs(400 * 86_400),
            max_signers: 50,
            max_history: 1_000,
            cache_envelopes: 16_384,
            max_registration_bytes: 64 * 1024,
            stream_max_subscribers: 2_048,
            stream_buffer: 4_096,
            stream_max_replay: 100_000,
            stream_keepalive: Duration::from_secs(15),
            stream_coalesce: Duration::from_millis(10),
            timer_interval: Duration::from_secs(1),
            timer_batch: 100,
        }
    }
}
