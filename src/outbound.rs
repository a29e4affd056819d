//! Outbound HTTP: the one place hyper's client is built, for the three that
//! call out — the webhook sink (to endpoints, with its own resolver refusing
//! private addresses), the OTLP exporter (to the collector) and the `dlq` /
//! `health` CLI (to the admin API).

use std::net::SocketAddr;
use std::time::Duration;

use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;

/// A client for `http://` and `https://` URLs, resolving names through `R`.
pub type Https<B, R = GaiResolver> = Client<HttpsConnector<HttpConnector<R>>, B>;

/// A client for `http://` URLs only.
pub type Plain<B> = Client<HttpConnector, B>;

/// Connection settings of an HTTPS-capable client.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Cut a connect attempt off after this long.
    pub connect_timeout: Option<Duration>,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: None,
            max_idle_per_host: usize::MAX,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// An HTTP/HTTPS client resolving names with `resolver`; TCP_NODELAY on.
pub fn https<B, R>(resolver: R, o: Options) -> Https<B, R>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    R: tower_service::Service<Name> + Clone + Send + Sync + 'static,
    R::Response: Iterator<Item = SocketAddr>,
    R::Future: Send,
    R::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(o.connect_timeout);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(o.max_idle_per_host)
        .pool_idle_timeout(o.idle_timeout)
        .build(HttpsConnector::new_with_connector(http))
}

/// An HTTP/HTTPS client with the system resolver and default options.
pub fn https_default<B>() -> Https<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    https(GaiResolver::new(), Options::default())
}

/// A plain-HTTP client (the CLI talking to the admin listener).
pub fn plain<B>() -> Plain<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new()).build_http()
}
