//! `/v2/events`: the event bus as server-sent events (`axum::response::sse`), with a comment
//! frame every [`KEEP_ALIVE`] so that clients and proxies see a quiet stream is alive
//! (marathon-lb gives up on a stream silent for 300 s).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use serde_json::json;
use tokio::sync::mpsc::Sender;

use super::{ApiState, Params, error};
use crate::actor::now;
use crate::error::ApiError;
use crate::events::{Ended, EventBus, Subscription};

/// How often a quiet stream carries a comment frame.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// GET /v2/events (`Accept: text/event-stream`; `event_type=` filters, repeatable).
pub async fn stream(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    if !accept.contains("text/event-stream") && !accept.contains("*/*") {
        return error(ApiError::new(406, "The event stream is only available as text/event-stream; send 'Accept: text/event-stream'."));
    }
    let p = Params::parse(q.as_deref());
    let filter: Vec<String> = p.all("event_type").map(str::to_string).collect();
    let wanted = move |t: &str| filter.is_empty() || filter.iter().any(|f| f == t);
    let Some(sub) = state.bus.subscribe() else {
        return error(ApiError::new(
            503,
            format!(
                "Too many event stream subscribers ({} are connected, the most this server allows); close unused /v2/events connections or retry later.",
                state.bus.max_subscribers()
            ),
        ));
    };
    // As in Marathon, attaching and detaching are events on the bus: every subscriber (this one
    // first of all) sees them.
    let remote = peer.ip().to_string();
    state.bus.publish("event_stream_attached", json!({"remoteAddress": remote}), now());
    let bus = state.bus.clone();
    let events = async_stream(move |tx| async move {
        let ended = forward(sub, wanted, &tx, SLOW_CONSUMER).await;
        tracing::debug!(%peer, %ended, "event stream closed");
        detached(&bus, &remote);
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("")).into_response()
}

/// Announces a stream that ended.
fn detached(bus: &EventBus, remote: &str) {
    bus.publish("event_stream_detached", json!({"remoteAddress": remote}), now());
}

/// How long a client may leave the stream unread while events wait for it before it is
/// dropped (a client that stops reading would otherwise hold its slot forever).
const SLOW_CONSUMER: Duration = Duration::from_secs(30);

/// Why [`forward`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum StreamEnd {
    /// The client went away.
    #[error("the client disconnected")]
    Gone,
    /// The client did not take an event within the deadline.
    #[error("the client read nothing for {0:?} and was dropped")]
    TooSlow(Duration),
    /// The bus dropped the subscription (the client lagged) or closed.
    #[error("{0}")]
    Bus(Ended),
}

/// Sends the wanted events of `sub` as SSE events into `tx` until the client goes away, falls
/// behind the bus backlog, or leaves an event untaken for `deadline`.
async fn forward(mut sub: Subscription, wanted: impl Fn(&str) -> bool, tx: &Sender<Event>, deadline: Duration) -> StreamEnd {
    loop {
        let ev = tokio::select! {
            ev = sub.recv() => match ev {
                Ok(ev) => ev,
                Err(ended) => return StreamEnd::Bus(ended),
            },
            // Noticed at once, not at the next event: the detach is announced promptly.
            () = tx.closed() => return StreamEnd::Gone,
        };
        if !wanted(ev.event_type) {
            continue;
        }
        match tokio::time::timeout(deadline, tx.send(Event::default().event(ev.event_type).data(&ev.data))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return StreamEnd::Gone,
            Err(_) => return StreamEnd::TooSlow(deadline),
        }
    }
}

/// A stream fed by a spawned task through a small channel (ends when the task ends or the
/// client goes away).
fn async_stream<F, Fut>(producer: F) -> impl futures_util::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(producer(tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBus;
    use framework_core::ids::Timestamp;

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped() {
        let bus = EventBus::with_limits(1, 64);
        let sub = bus.subscribe().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let task = tokio::spawn(async move { forward(sub, |t| t != "skipped", &tx, Duration::from_millis(50)).await });
        tokio::task::yield_now().await;
        for _ in 0..5 {
            bus.publish("skipped", json!({}), Timestamp(0));
            bus.publish("wanted", json!({}), Timestamp(0));
        }
        assert_eq!(task.await.unwrap(), StreamEnd::TooSlow(Duration::from_millis(50)));
        assert!(rx.recv().await.is_some(), "the wanted events before the deadline were sent");
        assert!(bus.subscribe().is_some(), "the dropped client's slot is free again");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_ends_the_stream() {
        let bus = EventBus::with_limits(1, 64);
        let sub = bus.subscribe().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let task = tokio::spawn(async move { forward(sub, |_| true, &tx, Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        bus.publish("e", json!({}), Timestamp(0));
        assert_eq!(task.await.unwrap(), StreamEnd::Gone);
    }
}
