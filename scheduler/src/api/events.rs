//! `/v2/events`: the event bus as server-sent events.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Response, header};
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiState, Params, error};
use crate::actor::now;
use crate::error::ApiError;

/// GET /v2/events (`Accept: text/event-stream`; `event_type=` filters, repeatable).
pub async fn stream(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response<Body> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    if !accept.contains("text/event-stream") && !accept.contains("*/*") {
        return error(ApiError::new(406, "The event stream is only available as text/event-stream; send 'Accept: text/event-stream'."));
    }
    let p = Params::parse(q.as_deref());
    let filter: Vec<String> = p.all("event_type").map(str::to_string).collect();
    let wanted = move |t: &str| filter.is_empty() || filter.iter().any(|f| f == t);
    let mut rx = state.bus.subscribe();
    let attached = json!({"remoteAddress": peer.ip().to_string(), "eventType": "event_stream_attached", "timestamp": now().to_string()});
    let first = wanted("event_stream_attached").then(|| format!("event: event_stream_attached\ndata: {attached}\n\n"));
    let events = async_stream(move |tx| async move {
        if let Some(first) = first
            && tx.send(first).await.is_err() {
                return;
            }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if wanted(ev.event_type) && tx.send(format!("event: {}\ndata: {}\n\n", ev.event_type, ev.data)).await.is_err() {
                        return;
                    }
                }
                // A consumer that fell behind is disconnected rather than silently missing events.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
            }
        }
    });
    let body = Body::from_stream(events.map(|s| Ok::<_, Infallible>(Bytes::from(s))));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    resp
}

/// A stream fed by a spawned task through a small channel (ends when the task ends or the
/// client goes away).
fn async_stream<F, Fut>(producer: F) -> impl futures_util::Stream<Item = String>
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(producer(tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
