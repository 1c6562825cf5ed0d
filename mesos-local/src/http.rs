//! The HTTP shells: the master's `/api/v1/scheduler` and `/master/state`, and each agent's
//! `/api/v1/executor`. They check methods and media types with Mesos's status codes, decode the
//! call, hand it to the owning actor and stream events back as RecordIO.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::StreamExt;
use mesos_proto::codec::{self, Encoding};
use mesos_proto::recordio;
use mesos_proto::v1::{executor, scheduler};
use tokio::sync::{mpsc, oneshot};

use crate::agent::AgentMsg;
use crate::protocol::{ApiError, MasterMsg};

/// The header carrying a scheduler subscription's id.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.message).into_response()
    }
}

/// State shared by the master's routes.
#[derive(Clone)]
pub struct MasterHttp {
    /// The master actor.
    pub master: mpsc::UnboundedSender<MasterMsg>,
    /// `host:port` of this master, for `/master/redirect`.
    pub advertised: String,
    /// With `Some`, frameworks must authenticate (HTTP basic, principal → secret), as a Mesos
    /// master started with `--authenticate_http_frameworks` and `--credentials`.
    pub framework_credentials: Option<std::sync::Arc<std::collections::BTreeMap<String, String>>>,
}

/// The principal a request authenticates as: `Ok(None)` when authentication is off, a 401
/// (with the challenge) when it is on and the request's credentials are missing or wrong.
fn authenticate(st: &MasterHttp, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let Some(known) = &st.framework_credentials else { return Ok(None) };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((principal, secret)) = presented.as_deref().and_then(|p| p.split_once(':'))
        && known.get(principal).is_some_and(|s| s == secret)
    {
        return Ok(Some(principal.to_string()));
    }
    let mut resp = (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "").into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mesos\""));
    Err(Box::new(resp))
}

/// The master's routes.
pub fn master_router(state: MasterHttp) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler_api))
        .route("/master/api/v1/scheduler", any(scheduler_api))
        .route("/master/state", get(master_state))
        .route("/state", get(master_state))
        .route("/master/state.json", get(master_state))
        .route("/master/redirect", get(redirect))
        .route("/redirect", get(redirect))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/master/health", get(|| async { StatusCode::OK }))
        // Mesos buffers whole call bodies; a large ACCEPT (thousands of tasks) must fit.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

/// The body encoding of a request, from its exact `Content-Type`.
fn request_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::bad_request("Expecting 'Content-Type' to be present"));
    };
    let text = value.to_str().unwrap_or_default();
    Encoding::from_content_type(text).ok_or_else(|| ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: format!("Expecting 'Content-Type' of application/json or application/x-protobuf; got '{text}'"),
    })
}

/// The stream encoding the client accepts: JSON wins when acceptable (no header, `*/*`), then
/// protobuf; anything else is 406.
fn response_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let accept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|part| part.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .collect();
    let accepts = |t: &str| accept.is_empty() || accept.iter().any(|a| a == t || a == "*/*" || a == "application/*");
    if accepts("application/json") {
        Ok(Encoding::Json)
    } else if accepts("application/x-protobuf") {
        Ok(Encoding::Protobuf)
    } else {
        Err(ApiError {
            status: StatusCode::NOT_ACCEPTABLE,
            message: "Expecting 'Accept' to allow application/json or application/x-protobuf".into(),
        })
    }
}

fn decode_call<M: prost::Message + prost::Name + Default>(body: &[u8], encoding: Encoding) -> Result<M, ApiError> {
    codec::decode(body, encoding).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A streaming 200 response whose body is the RecordIO framing of `events`.
/// What the stream writes for an event: the event, or a fault in its place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    /// The event itself.
    Event,
    /// A well-framed record that does not decode.
    Malformed,
    /// Half a record, then the end of the stream.
    Cut,
}

fn event_stream<E, G>(events: mpsc::Receiver<E>, encoding: Encoding, guard: G, fault: fn(&E) -> Written) -> Response
where
    E: prost::Message + prost::Name + Send + 'static,
    G: Send + 'static,
{
    let stream = futures_util::stream::unfold(Some((events, guard)), move |state| async move {
        let (mut rx, guard) = state?;
        let ev = rx.recv().await?;
        let full = recordio::encode(&codec::encode(&ev, encoding));
        let (framed, next) = match fault(&ev) {
            Written::Event => (full, Some((rx, guard))),
            // Well framed, but the record itself does not decode: JSON cut off mid-object, or a
            // protobuf field that claims more bytes than follow.
            Written::Malformed => (
                recordio::encode(match encoding {
                    Encoding::Json => br#"{"type":"OFFERS","offers":{"offers":[{"id":"#,
                    _ => &[0x1a, 0x7f, 0x0a][..],
                }),
                Some((rx, guard)),
            ),
            Written::Cut => (full.slice(..full.len() / 2), None),
        };
        Some((Ok::<Bytes, std::convert::Infallible>(framed), next))
    });
    let mut resp = Response::new(Body::from_stream(stream.boxed()));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    resp
}

/// Tells the master when a subscription's HTTP body is dropped (client gone).
struct StreamGuard {
    master: mpsc::UnboundedSender<MasterMsg>,
    framework_id: String,
    stream_id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = self.master.send(MasterMsg::StreamClosed {
            framework_id: std::mem::take(&mut self.framework_id),
            stream_id: std::mem::take(&mut self.stream_id),
        });
    }
}

async fn scheduler_api(State(st): State<MasterHttp>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    match scheduler_api_inner(st, method, headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn scheduler_api_inner(st: MasterHttp, method: Method, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    if method != Method::POST {
        return Err(ApiError { status: StatusCode::METHOD_NOT_ALLOWED, message: format!("Expecting 'POST', received '{method}'") });
    }
    let principal = match authenticate(&st, &headers) {
        Ok(p) => p,
        Err(challenge) => return Ok(*challenge),
    };
    let encoding = request_encoding(&headers)?;
    let call: scheduler::Call = decode_call(&body, encoding)?;
    let stream_id = headers.get(STREAM_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let unavailable = || ApiError::unavailable("Master is shutting down");
    if call.r#type() == scheduler::call::Type::Subscribe {
        if stream_id.is_some() {
            return Err(ApiError::bad_request("Expecting 'Mesos-Stream-Id' header to be absent for SUBSCRIBE"));
        }
        if let Some(principal) = &principal {
            let claimed = call.subscribe.as_ref().and_then(|s| s.framework_info.principal.as_deref());
            if claimed != Some(principal.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Authenticated principal '{principal}' does not match principal '{}' set in `FrameworkInfo`",
                    claimed.unwrap_or_default()
                )));
            }
        }
        let out = response_encoding(&headers)?;
        let framework_id = call.framework_id.as_ref().map(|f| f.value.clone());
        let (reply, rx) = oneshot::channel();
        st.master.send(MasterMsg::Subscribe { call: Box::new(call), reply }).map_err(|_| unavailable())?;
        let sub = rx.await.map_err(|_| unavailable())??;
        let mut events = sub.events;
        // The first event names the framework (SUBSCRIBED) or refuses it (ERROR).
        let first = events.recv().await;
        let fid =
            first.as_ref().and_then(|e| e.subscribed.as_ref()).map(|s| s.framework_id.value.clone()).or(framework_id).unwrap_or_default();
        let (tx, rx) = mpsc::channel(1);
        let guard = StreamGuard { master: st.master.clone(), framework_id: fid, stream_id: sub.stream_id.clone() };
        // Re-chain the first event in front of the rest.
        let forward = async move {
            if let Some(first) = first
                && tx.send(first).await.is_err()
            {
                return;
            }
            while let Some(ev) = events.recv().await {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        };
        tokio::spawn(forward);
        let mut resp = event_stream(rx, out, guard, |e: &scheduler::Event| match e.error.as_ref().map(|err| err.message.as_str()) {
            Some(crate::protocol::MALFORMED_EVENT_MARK) => Written::Malformed,
            Some(crate::protocol::CUT_STREAM_MARK) => Written::Cut,
            _ => Written::Event,
        });
        resp.headers_mut().insert(STREAM_ID_HEADER, HeaderValue::from_str(&sub.stream_id).map_err(|_| unavailable())?);
        return Ok(resp);
    }
    let (reply, rx) = oneshot::channel();
    st.master.send(MasterMsg::Call { call: Box::new(call), stream_id, reply }).map_err(|_| unavailable())?;
    rx.await.map_err(|_| unavailable())??;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn master_state(State(st): State<MasterHttp>) -> Response {
    let (tx, rx) = oneshot::channel();
    if st.master.send(MasterMsg::State(tx)).is_err() {
        return ApiError::unavailable("Master is shutting down").into_response();
    }
    match rx.await {
        Ok(state) => axum::Json(state).into_response(),
        Err(_) => ApiError::unavailable("Master is shutting down").into_response(),
    }
}

async fn redirect(State(st): State<MasterHttp>) -> Response {
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, format!("//{}", st.advertised))]).into_response()
}

/// An agent's routes.
pub fn agent_router(agent: mpsc::UnboundedSender<AgentMsg>) -> Router {
    Router::new()
        .route("/api/v1/executor", any(executor_api))
        .route("/slave(1)/api/v1/executor", any(executor_api))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(agent)
}

async fn executor_api(State(agent): State<mpsc::UnboundedSender<AgentMsg>>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        if method != Method::POST {
            return Err(ApiError { status: StatusCode::METHOD_NOT_ALLOWED, message: format!("Expecting 'POST', received '{method}'") });
        }
        let encoding = request_encoding(&headers)?;
        let call: executor::Call = decode_call(&body, encoding)?;
        let gone = || ApiError::unavailable("Agent is shutting down");
        // `Authorization: Bearer <MESOS_EXECUTOR_AUTHENTICATION_TOKEN>`, checked by the agent.
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        if call.r#type() == executor::call::Type::Subscribe {
            let out = response_encoding(&headers)?;
            let (reply, rx) = oneshot::channel();
            agent.send(AgentMsg::ExecutorSubscribe { call: Box::new(call), token, reply }).map_err(|_| gone())?;
            let events = rx.await.map_err(|_| gone())??;
            return Ok(event_stream(events, out, (), |_| Written::Event));
        }
        let (reply, rx) = oneshot::channel();
        agent.send(AgentMsg::ExecutorCall { call: Box::new(call), token, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())??;
        Ok(StatusCode::ACCEPTED.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
