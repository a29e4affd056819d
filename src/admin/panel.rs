//! The status panel: a web page served by the admin listener at `/`, its
//! scripts and styles under `/assets/`. The files are embedded in the binary
//! (no build step, nothing fetched at run time): plain ES modules and one
//! style sheet in `src/admin/panel/`.
//!
//! The page itself holds no data, so `/` and `/assets/*` are open; every
//! call it makes to the API sends the admin token as a bearer header (kept in
//! the tab's `sessionStorage`, never in a cookie, so no CSRF).
//!
//! Caching: the page and the modules name each asset with
//! `?v=<digest of all assets>`;
//! a request with the current digest is answered `immutable` for a year,
//! anything else (and the page) `no-cache` with an `ETag`, so a new binary's
//! assets are fetched at once and an unchanged page costs a 304.
//!
//! The security headers of every admin answer (`Content-Security-Policy`
//! without inline script or style, `nosniff`, no referrer, no framing) are
//! set by [`headers`] as tower-http layers.

use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use sha2::{Digest, Sha256};
use tower_http::set_header::SetResponseHeaderLayer;

use super::query::param;
use super::response::{self, AdminError};

/// The page and its assets: (name, content type, bytes).
const FILES: [(&str, &str, &[u8]); 7] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("panel/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("panel/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("panel/api.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_bytes!("panel/views.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_bytes!("panel/chart.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("panel/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("panel/icon.svg"),
    ),
];

/// What the browser may load: this origin's scripts, styles, images and API.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

struct Asset {
    content_type: &'static str,
    body: bytes::Bytes,
    etag: HeaderValue,
}

struct Assets {
    /// The digest of every file: the `v` the page asks for.
    version: String,
    page: Asset,
    files: Vec<(&'static str, Asset)>,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut all = Sha256::new();
        for (name, _, bytes) in FILES {
            all.update(name.as_bytes());
            all.update(bytes);
        }
        let version = hex::encode(&all.finalize()[..8]);
        let asset = |content_type: &'static str, body: Vec<u8>| {
            let tag = hex::encode(&Sha256::digest(&body)[..12]);
            Asset {
                content_type,
                etag: HeaderValue::from_str(&format!("\"{tag}\"")).expect("hex is a header value"),
                body: body.into(),
            }
        };
        // The page and the scripts name what they load with `?v={{v}}`.
        let versioned = |ty: &'static str, bytes: &[u8]| match ty.starts_with("image/") {
            true => asset(ty, bytes.to_vec()),
            false => asset(
                ty,
                String::from_utf8_lossy(bytes)
                    .replace("{{v}}", &version)
                    .into_bytes(),
            ),
        };
        let (_, page_type, page) = FILES[0];
        Assets {
            page: versioned(page_type, page),
            files: FILES[1..]
                .iter()
                .map(|(name, ty, bytes)| (*name, versioned(ty, bytes)))
                .collect(),
            version,
        }
    })
}

fn serve(a: &Asset, headers: &HeaderMap, immutable: bool) -> Response {
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == a.etag.as_bytes());
    if fresh {
        response::not_modified(a.etag.clone(), cache)
    } else {
        response::asset(a.content_type, a.etag.clone(), cache, a.body.clone())
    }
}

/// `GET /`: the page.
pub async fn page(headers: HeaderMap) -> Response {
    serve(&assets().page, &headers, false)
}

/// `GET /assets/{name}`: a script, the style sheet or the icon.
pub async fn asset(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let all = assets();
    let a = all
        .files
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a)
        .ok_or(AdminError::NotFound("no such asset"))?;
    let current = param(query.as_deref(), "v").is_some_and(|v| v == all.version);
    Ok(serve(a, &headers, current))
}

/// Whether `path` is the page or one of its assets (open without a token:
/// they hold no data).
pub fn is_static(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// The security headers every admin answer carries.
pub fn headers<S>(router: axum::Router<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let fixed = |name, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(fixed(CONTENT_SECURITY_POLICY, CSP))
        .layer(fixed(X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(fixed(REFERRER_POLICY, "no-referrer"))
        .layer(fixed(X_FRAME_OPTIONS, "DENY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_assets_by_the_current_version() {
        let a = assets();
        let page = std::str::from_utf8(&a.page.body).unwrap();
        assert!(!page.contains("{{v}}"));
        assert!(page.contains(&format!("/assets/app.js?v={}", a.version)));
        assert!(page.contains(&format!("/assets/style.css?v={}", a.version)));
        // No inline script or style: the CSP forbids them.
        assert!(!page.contains("<script>") && !page.contains("style="));
        assert!(!page.contains("<style"));
    }

    #[test]
    fn every_module_the_scripts_import_is_served() {
        for (_, ty, bytes) in FILES {
            if !ty.starts_with("text/javascript") {
                continue;
            }
            let text = std::str::from_utf8(bytes).unwrap();
            for spec in text.split(" from '").skip(1) {
                let path = spec.split('\'').next().unwrap();
                let name = path
                    .strip_prefix("./")
                    .unwrap_or_else(|| panic!("relative import expected: {path}"));
                assert!(
                    name.ends_with("?v={{v}}"),
                    "{name}: imports carry the version"
                );
                let name = name.split('?').next().unwrap();
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == name),
                    "{name} is not embedded"
                );
            }
        }
    }
}
