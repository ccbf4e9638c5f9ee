//! What every request passes before its handler, and what every answer
//! carries:
//! - without tokens (loopback mode) only a `Host` that names a loopback
//!   address or `localhost` is served (`421` otherwise), so a page on
//!   another domain that resolves to 127.0.0.1 (DNS rebinding) cannot use
//!   the API with the trust loopback mode gives;
//! - a request that changes state (any method but `GET`, `HEAD` and
//!   `OPTIONS`), and a WebSocket upgrade, from a browser must come from
//!   the service's own page: an
//!   `Origin` that is not this `Host`, or a `Sec-Fetch-Site` that is not
//!   `same-origin` (or `none`), is `403`, in every mode;
//! - every answer is `nosniff`, may not be framed and sends no referrer;
//!   the page has a Content-Security-Policy without inline script, and
//!   everything but the page's own files is `Cache-Control: no-store`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Api, ApiError, truncate};

/// The page's policy: its script and style are its own files, audio and
/// requests go to this origin only, and no one may frame it.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Everything else (JSON, audio, metrics) is never a document.
const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// The page's own files, which hold no recording data.
const PAGE_FILES: [&str; 4] = ["/", "/app.js", "/style.css", "/live-worklet.js"];

/// The middleware: checks, then the handler, then the headers.
pub(super) async fn guard(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let page = PAGE_FILES.contains(&request.uri().path());
    let checked = check_host(api.tokens.is_none(), request.headers())
        .and_then(|()| check_origin(request.method(), request.headers()));
    let mut response = match checked {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    };
    let headers = response.headers_mut();
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            if page { PAGE_POLICY } else { DATA_POLICY },
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !page {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// In loopback mode, `421` unless `Host` names a loopback address or
/// `localhost` (with or without a port). A request without `Host`
/// (HTTP/1.0) comes from no browser and passes.
fn check_host(loopback_mode: bool, headers: &HeaderMap) -> Result<(), ApiError> {
    if !loopback_mode {
        return Ok(());
    }
    let Some(value) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = String::from_utf8_lossy(value.as_bytes());
    if is_loopback_host(&host) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host {:?} is not a loopback name: without API tokens this service answers only \
                 requests for localhost, 127.0.0.1 or [::1]",
                truncate(&host)
            ),
        ))
    }
}

/// `localhost`, an address in 127.0.0.0/8 or `[::1]`, each with an
/// optional `:PORT`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let (loopback, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        let loopback = inside
            .parse::<core::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback());
        (loopback, port)
    } else {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        };
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<core::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback());
        (loopback, port)
    };
    loopback
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `403` for a state-changing request a browser sent from another page,
/// and for a WebSocket upgrade from one (a WebSocket is exempt from the
/// browser's same-origin policy: without this check any page a listener
/// visits could listen with their session cookie).
fn check_origin(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && !upgrade {
        return Ok(());
    }
    let what = if upgrade {
        "listen"
    } else {
        "change recordings"
    };
    let text = |name| {
        headers
            .get(name)
            .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" && site != "none" {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{method} from another site (Sec-Fetch-Site {:?}) is refused: only this \
                     service's own page may {what}",
                    truncate(&site)
                ),
            ));
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or_default();
        let own = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host.as_str()));
        if host.is_empty() || !own {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{method} from origin {:?} is refused: only this service's own page ({}) may \
                     {what}",
                    truncate(&origin),
                    if host.is_empty() {
                        "no Host given".to_owned()
                    } else {
                        format!("http://{}", truncate(&host))
                    }
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.9.8.7:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:8080",
            "[::2]:8080",
            "[::1]x",
            "[::1",
            "localhost:",
            "localhost:123456",
            "localhost:80:80",
            "::1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    proptest::proptest! {
        /// Every loopback name with any port is accepted; whatever is
        /// accepted is such a name (checked by a second, plainer reading).
        #[test]
        fn loopback_hosts_and_nothing_else(
            name in proptest::sample::select(vec!["localhost", "LocalHost", "127.0.0.1", "127.255.0.9", "[::1]", "[0:0:0:0:0:0:0:1]"]),
            port in proptest::option::of(0u32..100_000),
            any in "\\PC{0,24}",
        ) {
            let host = match port {
                Some(p) => format!("{name}:{p}"),
                None => name.to_owned(),
            };
            proptest::prop_assert_eq!(is_loopback_host(&host), port.is_none_or(|p| p.to_string().len() <= 5));
            if is_loopback_host(&any) {
                let (name, port) = if any.starts_with('[') {
                    let end = any.find(']').unwrap();
                    (&any[..=end], any[end + 1..].strip_prefix(':'))
                } else {
                    match any.rsplit_once(':') {
                        Some((n, p)) => (n, Some(p)),
                        None => (any.as_str(), None),
                    }
                };
                let ipv6 = name
                    .strip_prefix('[')
                    .and_then(|n| n.strip_suffix(']'))
                    .and_then(|n| n.parse::<core::net::Ipv6Addr>().ok());
                proptest::prop_assert!(
                    name.eq_ignore_ascii_case("localhost")
                        || name.parse::<core::net::Ipv4Addr>().is_ok_and(|a| a.octets()[0] == 127)
                        || ipv6 == Some(core::net::Ipv6Addr::LOCALHOST),
                    "{:?}", any
                );
                proptest::prop_assert!(port.is_none_or(|p| p.parse::<u32>().is_ok() && !p.starts_with('+')), "{:?}", any);
            }
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn state_changes_only_from_the_own_origin() {
        let delete = Method::DELETE;
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(check_origin(&delete, &own).is_ok());
        // A script or curl sends neither header.
        assert!(check_origin(&delete, &headers(&[("host", "127.0.0.1:8080")])).is_ok());
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9090"),
        ]);
        let refused = check_origin(&delete, &other).unwrap_err();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            refused.message().contains("\"http://127.0.0.1:9090\""),
            "{}",
            refused.message()
        );
        let cross = headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")]);
        assert!(check_origin(&Method::PUT, &cross).is_err());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(check_origin(&Method::POST, &null).is_err());
        // Reading is never refused for its origin (the audio element).
        assert!(check_origin(&Method::GET, &other).is_ok());
    }

    #[test]
    fn a_websocket_upgrade_only_from_the_own_origin() {
        let upgrade = |origin: &str| {
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", origin),
                ("upgrade", "WebSocket"),
            ])
        };
        assert!(check_origin(&Method::GET, &upgrade("http://127.0.0.1:8080")).is_ok());
        let refused = check_origin(&Method::GET, &upgrade("https://evil.example")).unwrap_err();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            refused.message().contains("\"https://evil.example\"")
                && refused.message().contains("may listen"),
            "{}",
            refused.message()
        );
    }
}
