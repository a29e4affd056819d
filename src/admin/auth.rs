//! Who may use the admin API. With `server.admin_token` set, every route but
//! the probes (`/healthz`, `/readyz`), `/metrics` and the status panel's
//! static page and assets (they hold no data) needs
//! `Authorization: Bearer <token>` (compared in constant time), else 401.
//! Every request's `Host` must be an IP address, `localhost` or one of
//! `server.admin_hosts`, else 403: a web page whose name an attacker points
//! at the gateway (DNS rebinding) cannot use the API from a browser.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, HOST};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::response::AdminError;
use crate::config::{Report, ServerConfig};
use crate::verify::Key;
use crate::verify::mac::secret_eq;

/// Routes open without a token: orchestrator probes and the Prometheus scrape.
const OPEN: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The admin listener's access rules, resolved from `[server]`.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    token: Option<Key>,
    hosts: Vec<String>,
}

impl Guard {
    /// Resolves `server.admin_token`; problems go to `r`.
    pub fn from_config(s: &ServerConfig, r: &mut Report) -> Guard {
        let token = s.admin_token.as_ref().and_then(|t| match t.resolve() {
            Ok(v) if v.len() >= 16 => Some(Key::new(v.into_bytes())),
            Ok(_) => {
                r.add(
                    "server.admin_token",
                    "is shorter than 16 characters",
                    "use a random token of at least 16 characters",
                );
                None
            }
            Err((problem, fix)) => {
                r.add("server.admin_token", problem, fix);
                None
            }
        });
        let hosts = s
            .admin_hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        Guard { token, hosts }
    }

    /// Whether `host` (a `Host` header value) names this listener.
    pub(crate) fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // `[v6]` or `[v6]:port`: an IP literal.
            Some(rest) => return rest.contains(']'),
            None => match host.rsplit_once(':') {
                Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
                _ => host,
            },
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || self.hosts.contains(&name)
    }

    fn authorized(&self, header: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        header
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|given| secret_eq(given.trim().as_bytes(), token.bytes()))
    }
}

/// The peer of an admin request (put in its extensions by the listener).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// The middleware in front of every admin route. It leaves the caller's
/// identity (an [`Actor`](crate::store::Actor)) in the request for the
/// audit log: its address and how it authenticated.
pub async fn guard(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| !g.host_allowed(h)) {
        return AdminError::Forbidden("this host name is not served (server.admin_hosts)")
            .into_response();
    }
    if !OPEN.contains(&req.uri().path()) && !super::panel::is_static(req.uri().path()) {
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        if !g.authorized(auth) {
            return AdminError::Unauthorized.into_response();
        }
    }
    let actor = crate::store::Actor {
        client: req.extensions().get::<Peer>().map(|p| p.0.ip()),
        credential: if g.token.is_some() {
            "admin_token"
        } else {
            "none"
        },
    };
    req.extensions_mut().insert(actor);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(toml: &str) -> Guard {
        let l = crate::app::load_str(toml).unwrap();
        Guard::from_config(&l.config.server, &mut Report::new())
    }

    #[test]
    fn hosts_are_ip_literals_localhost_or_configured_names() {
        let g = guard("[server]\nadmin_hosts = [\"countersign-admin.ops.svc\"]\n");
        for ok in [
            "127.0.0.1:9090",
            "10.1.2.3",
            "[::1]:9090",
            "[fd00::1]",
            "localhost:9090",
            "LOCALHOST",
            "countersign-admin.ops.svc:9090",
            "countersign-admin.ops.svc.",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:9090",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn the_token_is_required_only_when_set() {
        let open = guard("");
        assert!(open.authorized(None));
        let g = guard("[server]\nadmin_token = \"adm-0123456789abcdef\"\n");
        assert!(g.authorized(Some("Bearer adm-0123456789abcdef")));
        assert!(!g.authorized(Some("Bearer adm-0123456789abcdeX")));
        assert!(!g.authorized(Some("adm-0123456789abcdef")));
        assert!(!g.authorized(None));
    }
}
