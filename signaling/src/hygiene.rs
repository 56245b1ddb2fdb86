//! What every HTTP response carries, and which `Host` names are answered.
//!
//! - Security headers on every response: a Content-Security-Policy the web client passes (its
//!   scripts, styles and connections all come from its own origin), no framing, `nosniff`, no
//!   referrer, a Permissions-Policy that allows camera, microphone and screen capture for this
//!   origin only, and HSTS when the request came over TLS or `public_url` is `https`.
//! - `Cache-Control: no-store` on the API and `/metrics`: answers carry tokens and keys' results.
//! - A `Host` allow-list against DNS rebinding (a hostile name resolving to this server, letting
//!   a page on that name read the answers): IP literals, the host of `public_url`, the
//!   `allowed_hosts`, and `localhost` when a listener is on loopback or a wildcard address.
//!   Other names get 421, except on `/healthz`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::listener::OverTls;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
    font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Camera, microphone and screen capture for this origin only; nothing else a classroom needs.
pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), \
    fullscreen=(self), autoplay=(self), geolocation=(), payment=(), usb=(), serial=(), \
    bluetooth=(), hid=()";

/// The `Host` names this server answers, and whether HSTS is sent on plain HTTP (behind a proxy
/// that terminates TLS).
#[derive(Debug, Clone)]
pub struct HostPolicy {
    names: Vec<String>,
    localhost: bool,
    https_public_url: bool,
}

impl HostPolicy {
    /// From the public URL, the extra `allowed_hosts` and the addresses actually listened on.
    pub fn new(public_url: &str, allowed_hosts: &[String], listening: &[SocketAddr]) -> Self {
        let mut names: Vec<String> = allowed_hosts.iter().map(|h| normalize(h)).collect();
        if let Some(host) = url_host(public_url) {
            names.push(normalize(host));
        }
        HostPolicy {
            names,
            localhost: listening
                .iter()
                .any(|a| a.ip().is_loopback() || a.ip().is_unspecified()),
            https_public_url: public_url.starts_with("https://"),
        }
    }

    /// Whether a `Host` header value (`name`, `name:port`, `[v6]:port`) is answered.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host);
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalize(name);
        if self.localhost && (name == "localhost" || name.ends_with(".localhost")) {
            return true;
        }
        self.names.contains(&name)
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `name` of `name:port`, the address of `[v6]:port`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The host of `scheme://host[:port][/path]`.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    Some(strip_port(authority)).filter(|h| !h.is_empty())
}

/// Middleware: refuses unknown hosts and adds the headers.
pub async fn guard(State(policy): State<Arc<HostPolicy>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let over_tls = req.extensions().get::<OverTls>().is_some_and(|t| t.0);
    let no_store = {
        let path = req.uri().path();
        path.starts_with("/api/") || path == "/metrics"
    };
    // `/healthz` answers any name (a container health check uses its service name) and tells a
    // rebinding page nothing.
    let health = req.uri().path() == "/healthz";
    let mut response = match host {
        Some(host) if !health && !policy.allows(&host) => {
            tracing::debug!(host, "refused: unknown Host");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "this server does not answer for that host name (see allowed_hosts)",
            )
                .into_response()
        }
        _ => next.run(req).await,
    };
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    headers.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if over_tls || policy.https_public_url {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000",
        );
    }
    if no_store {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_answered() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let lan: SocketAddr = "192.168.1.5:8080".parse().unwrap();
        let p = HostPolicy::new(
            "https://Aula.School.example/",
            &["alt.example".into()],
            &[loopback],
        );
        for ok in [
            "aula.school.example",
            "aula.school.example:443",
            "AULA.school.example.",
            "alt.example:8080",
            "localhost:8080",
            "127.0.0.1:8080",
            "192.168.1.5",
            "[::1]:8080",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "aula.school.example.evil",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        let p = HostPolicy::new("http://192.168.1.5:8080", &[], &[lan]);
        assert!(!p.allows("localhost:8080"), "not listening on loopback");
        assert!(p.allows("192.168.1.5:8080"));
    }
}
