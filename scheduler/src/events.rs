//! The Marathon event bus behind `/v2/events`: the actor publishes, every SSE client gets a copy.
//! A client that falls too far behind loses events and is told so (its stream is closed), as
//! Marathon does for slow consumers.

use std::sync::Arc;

use framework_core::ids::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Events a subscriber may fall behind before it is dropped.
const BACKLOG: usize = 4096;

/// One published event.
#[derive(Debug, Clone)]
pub struct BusEvent {
    /// Marathon's `eventType`.
    pub event_type: &'static str,
    /// The whole event as one line of JSON (with `eventType` and `timestamp`).
    pub data: String,
}

/// Publisher handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<BusEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0 }
    }

    /// Publishes an event of `event_type` with the fields of `body` (an object).
    pub fn publish(&self, event_type: &'static str, body: Value, now: Timestamp) {
        let mut event = match body {
            Value::Object(map) => Value::Object(map),
            _ => json!({}),
        };
        event["eventType"] = json!(event_type);
        event["timestamp"] = json!(now.to_string());
        let data = event.to_string();
        // No subscribers is fine: events are not stored.
        let _ = self.tx.send(Arc::new(BusEvent { event_type, data }));
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }
}
