//! The Marathon event bus behind `/v2/events`: the actor publishes, every SSE client gets a copy.
//!
//! Both the number of subscribers and what each may fall behind are bounded: at most
//! [`MAX_SUBSCRIBERS`] streams at once (the next one is refused), and a subscriber more than
//! [`BACKLOG`] events behind loses its subscription (its stream is closed, as Marathon does
//! for slow consumers) instead of having events buffered for it.

use std::sync::Arc;

use framework_core::ids::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

/// Events a subscriber may fall behind before it is dropped.
pub const BACKLOG: usize = 4096;
/// Event streams that may be open at once.
pub const MAX_SUBSCRIBERS: usize = 256;

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
    /// One permit per subscriber that may still join.
    slots: Arc<Semaphore>,
    /// The number of slots in all.
    max_subscribers: usize,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    /// The subscriber fell more than the backlog behind and was dropped.
    #[error("the subscriber fell {0} events behind and was dropped")]
    Lagged(u64),
    /// The bus is gone (the scheduler stops).
    #[error("the event bus closed")]
    Closed,
}

/// A subscription: events in publication order, holding one of the bus's slots until dropped.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<BusEvent>>,
    _slot: OwnedSemaphorePermit,
}

impl Subscription {
    /// The next event; after an error the subscription is over (drop it).
    pub async fn recv(&mut self) -> Result<Arc<BusEvent>, Ended> {
        self.rx.recv().await.map_err(|e| match e {
            RecvError::Lagged(n) => Ended::Lagged(n),
            RecvError::Closed => Ended::Closed,
        })
    }
}

impl EventBus {
    /// A bus with no subscribers, [`MAX_SUBSCRIBERS`] and [`BACKLOG`].
    pub fn new() -> Self {
        Self::with_limits(MAX_SUBSCRIBERS, BACKLOG)
    }

    /// A bus with room for `max_subscribers` streams, each at most `backlog` events behind
    /// (both at least 1).
    pub fn with_limits(max_subscribers: usize, backlog: usize) -> Self {
        let max_subscribers = max_subscribers.max(1);
        Self { tx: broadcast::channel(backlog.max(1)).0, slots: Arc::new(Semaphore::new(max_subscribers)), max_subscribers }
    }

    /// The number of streams that may be open at once.
    pub fn max_subscribers(&self) -> usize {
        self.max_subscribers
    }

    /// Whether anyone listens (callers can skip building events nobody receives).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes an event of `event_type` with the fields of `body` (an object).
    pub fn publish(&self, event_type: &'static str, body: Value, now: Timestamp) {
        // No subscribers is fine: events are not stored (and not even written out).
        if self.tx.receiver_count() == 0 {
            return;
        }
        let mut event = match body {
            Value::Object(map) => Value::Object(map),
            _ => json!({}),
        };
        event["eventType"] = json!(event_type);
        event["timestamp"] = json!(now.to_string());
        let data = event.to_string();
        let _ = self.tx.send(Arc::new(BusEvent { event_type, data }));
    }

    /// A new subscription, or `None` when every slot is taken.
    pub fn subscribe(&self) -> Option<Subscription> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(Subscription { rx: self.tx.subscribe(), _slot: slot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_are_bounded_and_slots_come_back() {
        let bus = EventBus::with_limits(2, 8);
        let a = bus.subscribe();
        let b = bus.subscribe();
        assert!(a.is_some() && b.is_some());
        assert!(bus.subscribe().is_none(), "a third subscriber is refused");
        drop(a);
        assert!(bus.subscribe().is_some(), "a closed stream frees its slot");
        assert_eq!(bus.max_subscribers(), 2);
    }

    #[tokio::test]
    async fn slow_subscribers_are_dropped_not_buffered() {
        let bus = EventBus::with_limits(4, 4);
        let mut slow = bus.subscribe().unwrap();
        let mut fast = bus.subscribe().unwrap();
        for i in 0..3 {
            bus.publish("e", json!({"i": i}), Timestamp(0));
            assert!(fast.recv().await.unwrap().data.contains(&format!("\"i\":{i}")));
        }
        for i in 3..10 {
            bus.publish("e", json!({"i": i}), Timestamp(0));
        }
        assert_eq!(slow.recv().await.unwrap_err(), Ended::Lagged(6));
        assert!(fast.recv().await.is_err(), "the fast one fell behind too once it stopped reading");
    }

    #[tokio::test]
    async fn events_carry_type_and_timestamp() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe().unwrap();
        bus.publish("deployment_success", json!({"id": "d"}), Timestamp(0));
        let ev = sub.recv().await.unwrap();
        assert_eq!(ev.event_type, "deployment_success");
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!((v["eventType"].as_str(), v["timestamp"].as_str()), (Some("deployment_success"), Some("1970-01-01T00:00:00.000Z")));
        drop(bus);
        assert_eq!(sub.recv().await.unwrap_err(), Ended::Closed);
    }
}
