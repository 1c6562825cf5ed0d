//! The HTTP front door of every `framework` process. The leader serves the API itself;
//! followers proxy to the leader (and redirect `/v2/events` to it, as Marathon does); without a
//! leader the API answers 503. `/ping` is always answered locally (it says the process lives).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt as _;

use crate::api::{MAX_BODY_BYTES, body_too_large, json_response};

/// Who serves the API right now.
#[derive(Clone)]
pub enum Mode {
    /// We lead: our own API router.
    Leader(Router),
    /// Another process leads; its advertised `host:port`.
    Follower(String),
    /// Nobody (yet); why.
    NoLeader(String),
}

/// What the front door needs.
#[derive(Clone)]
pub struct Front {
    /// The current mode.
    pub mode: watch::Receiver<Mode>,
    /// Our advertised `host:port` (for loop detection and `X-Marathon-Via`).
    pub me: String,
    /// Where `DELETE /v2/leader` asks the leader to step down (None without HA).
    pub abdicate: Option<mpsc::Sender<()>>,
    /// Client for proxying.
    pub http: reqwest::Client,
    /// `http` or `https`: how every instance serves the API (they share one configuration).
    pub scheme: &'static str,
    /// Who may use the API.
    pub auth: crate::auth::Auth,
    /// Origins whose browsers may call the API (`--access-control-allow-origin`; `*`: any).
    pub cors: Vec<String>,
}

/// The front router: everything goes through [`dispatch`].
pub fn router(front: Front) -> Router {
    Router::new().fallback(dispatch).with_state(front)
}

/// The request with one trailing slash taken off its path (`/v2/apps/` is `/v2/apps`, as
/// Marathon's JAX-RS routes read it; Prometheus's Marathon discovery asks for `/v2/apps/`).
fn without_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Headers that belong to one connection and are not forwarded.
const HOP_BY_HOP: [&str; 8] = ["connection", "host", "content-length", "transfer-encoding", "keep-alive", "upgrade", "te", "trailer"];

/// CORS as Marathon's `--access_control_allow_origin` does it: an allowed origin gets
/// `Access-Control-Allow-Origin` on every answer, and a preflight (OPTIONS with
/// `Access-Control-Request-Method`) is answered here, before authentication (browsers send no
/// credentials with it).
async fn dispatch(State(front): State<Front>, peer: ConnectInfo<SocketAddr>, req: Request) -> Response<Body> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let allowed = origin
        .filter(|o| front.cors.iter().any(|a| a == "*" || a == o))
        .map(|o| if front.cors.iter().any(|a| a == "*") { "*".to_owned() } else { o });
    let Some(allowed) = allowed else { return dispatch_inner(front, peer, req).await };
    let preflight = req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let requested_headers = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    let mut resp = if preflight {
        let mut r = Response::new(Body::empty());
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS, POST, PUT, DELETE, PATCH"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested_headers.unwrap_or(HeaderValue::from_static("Content-Type, Authorization, Accept")),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        r
    } else {
        dispatch_inner(front, peer, req).await
    };
    if let Ok(v) = HeaderValue::from_str(&allowed) {
        resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        resp.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

async fn dispatch_inner(front: Front, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/ping" {
        let mut resp = Response::new(Body::from("pong"));
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        return resp;
    }
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !front.auth.accepts(authorization) {
        let mut resp = json_response(401, &json!({"message": "Invalid username or password."}));
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"framework\""));
        return resp;
    }
    let mode = front.mode.borrow().clone();
    match mode {
        Mode::Leader(router) => {
            if req.method() == Method::DELETE && path == "/v2/leader" {
                return match &front.abdicate {
                    Some(tx) => {
                        let _ = tx.try_send(());
                        json_response(200, &json!({"message": "Leadership abdicated"}))
                    }
                    None => {
                        json_response(400, &json!({"message": "This instance runs without --zk, so there is no leadership to abdicate."}))
                    }
                };
            }
            match router.oneshot(without_trailing_slash(req)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
        Mode::Follower(leader) => {
            if path.starts_with("/v2/events") {
                let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/v2/events");
                let mut resp = Response::new(Body::empty());
                *resp.status_mut() = StatusCode::FOUND;
                if let Ok(v) = HeaderValue::from_str(&format!("{}://{leader}{pq}", front.scheme)) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                return resp;
            }
            proxy(&front, &leader, peer, req).await
        }
        Mode::NoLeader(why) => {
            json_response(503, &json!({"message": format!("There is no leader right now ({why}); retry in a few seconds.")}))
        }
    }
}

/// Forwards a request to the leader and its answer back.
async fn proxy(front: &Front, leader: &str, peer: SocketAddr, req: Request) -> Response<Body> {
    let via = req.headers().get_all("X-Marathon-Via").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    if via.split(',').any(|hop| hop.trim().ends_with(&front.me)) || leader == front.me {
        return json_response(502, &json!({"message": "Detected proxying loop."}));
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) if too_large(&e) => return body_too_large(),
        Err(e) => return json_response(400, &json!({"message": format!("The request body could not be read ({e}); send it again.")})),
    };
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != "x-marathon-via" {
            headers.append(name.clone(), value.clone());
        }
    }
    let hop = if via.is_empty() { format!("1.1 {}", front.me) } else { format!("{via},1.1 {}", front.me) };
    if let Ok(v) = HeaderValue::from_str(&hop) {
        headers.insert("X-Marathon-Via", v);
    }
    if let Ok(v) = HeaderValue::from_str(&peer.ip().to_string()) {
        headers.insert("X-Forwarded-For", v);
    }
    let sent = front.http.request(parts.method, format!("{}://{leader}{pq}", front.scheme)).headers(headers).body(body).send().await;
    let upstream = match sent {
        Ok(r) => r,
        Err(e) => return json_response(502, &json!({"message": format!("Could not reach the leader at {leader}: {e}")})),
    };
    let status = upstream.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out_headers.append(name.clone(), value.clone());
        }
    }
    let Ok(bytes) = upstream.bytes().await else {
        return json_response(502, &json!({"message": format!("The leader at {leader} broke off its answer.")}));
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = out_headers;
    if let Ok(v) = HeaderValue::from_str(&format!("1.1 {}", front.me)) {
        resp.headers_mut().insert("X-Marathon-Via", v);
    }
    resp
}

/// Whether reading a body failed because it is over the limit.
fn too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// A client for proxying with Marathon's timeouts (connect 5 s, whole request 10 s), trusting
/// the CA file `ca` when given.
pub fn proxy_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, crate::tls::TlsError> {
    let builder = crate::tls::client_builder(ca)?;
    Ok(builder
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|_| reqwest::Client::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_over_the_limit_are_told_apart() {
        let big = Body::from(vec![b'x'; MAX_BODY_BYTES + 1]);
        let e = axum::body::to_bytes(big, MAX_BODY_BYTES).await.unwrap_err();
        assert!(too_large(&e), "{e}");
        let resp = body_too_large();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["message"].as_str().unwrap().contains("8388608 bytes"), "{v}");
        assert!(axum::body::to_bytes(Body::from("ok"), MAX_BODY_BYTES).await.is_ok());
    }
}
