//! The Marathon-compatible REST API (`/v2/...`, `/ping`, `/metrics`): a thin shell that parses
//! requests, reads the published snapshot or asks the actor, and renders Marathon's JSON.

mod apps;
mod deployments;
mod events;
mod groups;
mod render;
mod system;
mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::routing::{any, delete, get, post};

use crate::actor::ActorHandle;
use crate::error::ApiError;
use crate::events::EventBus;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The scheduler actor.
    pub actor: ActorHandle,
    /// The event bus.
    pub bus: EventBus,
    /// The state store (for stored app versions).
    pub store: crate::store::Store,
    /// Static facts for /v2/info.
    pub info: Arc<Info>,
    /// Each app definition's JSON, kept for `GET /v2/apps`.
    pub app_json: Arc<render::AppJsonCache>,
    /// The ERROR events Mesos sent this leader's subscription.
    pub mesos_errors: tokio::sync::watch::Receiver<crate::mesos::MesosErrors>,
}

/// Facts about this process shown by /v2/info and /v2/leader.
#[derive(Debug, Clone)]
pub struct Info {
    /// `host:port` other clients reach this API on.
    pub advertised: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The configured master (`local`, a URL or zk://).
    pub master: String,
    /// The `--zk` URL, when running with HA.
    pub zk: Option<String>,
    /// The framework name.
    pub framework_name: String,
    /// The failover timeout in seconds.
    pub failover_timeout: f64,
    /// Mesos role.
    pub role: String,
    /// Hostname we advertise to Mesos.
    pub hostname: String,
    /// The HTTP port.
    pub http_port: u16,
    /// More of `marathon_config` (the flags Marathon reports there).
    pub config: serde_json::Map<String, serde_json::Value>,
    /// `zookeeper_config` beyond `zk`.
    pub zookeeper: serde_json::Map<String, serde_json::Value>,
}

/// The largest request body the API reads (8 MiB: a group of hundreds of apps fits easily).
/// Followers proxy at most this much to the leader too.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// The 413 answer for a body over [`MAX_BODY_BYTES`], in Marathon's error shape.
pub fn body_too_large() -> Response<Body> {
    let message = format!(
        "Request body too large: the limit is {MAX_BODY_BYTES} bytes ({} MiB); split the change into several requests",
        MAX_BODY_BYTES >> 20
    );
    json_response(413, &serde_json::json!({ "message": message }))
}

/// A request body read whole, at most [`MAX_BODY_BYTES`] of it; too large a body is refused
/// with [`body_too_large`], one that cannot be read with 400, both as Marathon-style JSON.
#[derive(Debug)]
pub struct RequestBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RequestBody {
    type Rejection = Response<Body>;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(body_too_large()),
            Err(e) => Err(json_response(
                400,
                &serde_json::json!({ "message": format!("The request body could not be read ({}); send it again", e.body_text()) }),
            )),
        }
    }
}

/// The router of the whole API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v2/apps", get(apps::list).post(apps::create).put(apps::put_many).patch(apps::patch_many))
        .route(
            "/v2/apps/{*rest}",
            get(apps::get_any).put(apps::put_any).patch(apps::patch_any).delete(apps::delete_any).post(apps::post_any),
        )
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::delete_many))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/deployments/{id}", delete(deployments::cancel))
        .route("/v2/groups", get(groups::get_root).post(groups::post_root).put(groups::put_root).delete(groups::delete_root))
        .route(
            "/v2/groups/{*rest}",
            get(groups::get_any).post(groups::post_any).put(groups::put_any).delete(groups::delete_any).patch(groups::patch_any),
        )
        .route("/v2/queue", get(system::queue))
        .route("/v2/queue/{*rest}", delete(system::reset_delay))
        .route("/v2/events", get(events::stream))
        .route("/v2/info", get(system::info))
        .route("/v2/leader", get(system::leader))
        .route("/framework/mesos", get(system::mesos_status))
        .route("/metrics", get(system::metrics))
        .route("/metrics/prometheus", get(system::metrics_prometheus))
        // Pods are not supported: every pods route answers 404, which is how clients (the
        // Marathon UI, marathon-python, DC/OS tooling) learn that a Marathon has no pods.
        .route("/v2/pods", any(no_pods))
        .route("/v2/pods/{*rest}", any(no_pods))
        .route("/v2/plugins", get(system::plugins))
        // Marathon answers unknown routes with 500 and this message; clients may rely on it.
        .fallback(|| async { error(ApiError::new(500, "URI not found")) })
        // A known route with a method it does not take: 405 with Marathon's JSON body.
        .method_not_allowed_fallback(|| async { error(ApiError::new(405, "HTTP 405 Method Not Allowed")) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response_with_state(state.clone(), common_headers))
        .with_state(state)
}

/// The answer of every `/v2/pods` route.
async fn no_pods() -> Response<Body> {
    error(ApiError::new(404, "Pods are not supported by this server; run the containers as apps"))
}

/// Headers Marathon puts on every response.
async fn common_headers(axum::extract::State(state): axum::extract::State<ApiState>, mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{}://{}", state.info.scheme, state.info.advertised)) {
        h.insert("X-Marathon-Leader", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    resp
}

/// A JSON response.
pub fn json_response(status: u16, body: &impl serde::Serialize) -> Response<Body> {
    let mut resp = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// Hands an app change to the actor; once it is published, renders the changed definitions'
/// JSON for the next `GET /v2/apps` (see [`render::AppJsonCache::warm`]).
async fn deploy(state: &ApiState, change: crate::actor::Change, force: bool) -> Result<crate::actor::Deployed, ApiError> {
    let deployed = state.actor.ask(|reply| crate::actor::Command::Deploy { change, force, reply }).await??;
    state.app_json.warm(&state.actor.snapshot(), &deployed.apps);
    Ok(deployed)
}

/// The versions stored under `folder` (an app's or a group's), newest first. Only the keys are
/// read: version keys sort as their timestamps do.
async fn stored_versions(state: &ApiState, folder: &str) -> Result<Vec<String>, ApiError> {
    let keys = state.store.keys(folder).await.map_err(ApiError::storage)?;
    let mut versions: Vec<String> = keys.into_iter().filter_map(|k| k.rsplit('/').next().map(str::to_string)).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    Ok(versions)
}

/// Marathon's answer to a deployment-creating call: `{"deploymentId", "version"}` with the
/// `Marathon-Deployment-Id` header.
pub fn deployment_result(status: u16, d: &crate::actor::Deployed) -> Response<Body> {
    let mut resp = json_response(status, &serde_json::json!({"deploymentId": d.deployment_id, "version": d.version}));
    if let Ok(v) = HeaderValue::from_str(&d.deployment_id.0) {
        resp.headers_mut().insert("Marathon-Deployment-Id", v);
    }
    resp
}

/// An error response in Marathon's shape.
pub fn error(e: ApiError) -> Response<Body> {
    axum::response::IntoResponse::into_response(e)
}

/// Query parameters as pairs (keys may repeat: `embed`, `event_type`, `status[]`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string (undecodable input gives no parameters).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(raw.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as Marathon (JAX-RS `Boolean.valueOf`) reads it: "true" in any case
    /// is true, any other value false, absent → `default`.
    pub fn flag(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    async fn send(body: Body) -> (StatusCode, serde_json::Value) {
        let app: Router = Router::new()
            .route("/", post(|RequestBody(b): RequestBody| async move { json_response(200, &serde_json::json!({"len": b.len()})) }))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
        let req = Request::builder().method("POST").uri("/").body(body).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies_over_the_limit_get_marathon_style_413() {
        let (status, v) = send(Body::from(vec![b' '; MAX_BODY_BYTES])).await;
        assert_eq!((status, v["len"].as_u64()), (StatusCode::OK, Some(MAX_BODY_BYTES as u64)));
        let (status, v) = send(Body::from(vec![b' '; MAX_BODY_BYTES + 1])).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(v["message"].as_str().unwrap().contains("the limit is 8388608 bytes"), "{v}");
        // Without a Content-Length (chunked) the limit holds while reading.
        let chunks = (0..9).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1 << 20])));
        let (status, _) = send(Body::from_stream(futures_util::stream::iter(chunks))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn flags_parse_like_marathon() {
        let p = Params::parse(Some("force=True&scale=false&wipe=yes&embed=a&embed=b"));
        assert!(p.flag("force", false));
        assert!(!p.flag("scale", true));
        assert!(!p.flag("wipe", true));
        assert!(p.flag("missing", true));
        assert_eq!(p.all("embed").collect::<Vec<_>>(), ["a", "b"]);
        assert!(Params::parse(Some("%%%")).get("x").is_none());
    }
}
