//! The one retry policy of the scheduler's reconnect loops (Mesos subscription, ZooKeeper
//! election and master detection, the Consul registrar): exponential delays with full jitter,
//! so that several instances, or many schedulers, that lost the same server do not come back
//! in step. Built on `backon`; a loop starts over with [`Retry::reset`] once it got through.

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};

/// Delays between attempts: from `min`, doubling up to `max`, each with jitter, forever.
#[derive(Debug)]
pub struct Retry {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Retry {
    /// A policy from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let builder =
            ExponentialBuilder::default().with_min_delay(min).with_max_delay(max).with_factor(2.0).with_jitter().without_max_times();
        Self { delays: builder.build(), builder, max }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// Starts over from the shortest delay (after an attempt that got through).
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }

    /// Sleeps for the next delay.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_start_over() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut r = Retry::new(min, max);
        let delays: Vec<Duration> = (0..40).map(|_| r.next_delay()).collect();
        // Jitter adds up to one delay again to each: never below `min`, never above twice `max`.
        assert!(delays.iter().all(|d| *d >= min && *d <= max * 2), "{delays:?}");
        assert!(delays[30..].iter().all(|d| *d >= max), "capped once grown: {delays:?}");
        let distinct: std::collections::BTreeSet<Duration> = delays[30..].iter().copied().collect();
        assert!(distinct.len() > 1, "jittered, not in step: {delays:?}");
        r.reset();
        assert!(r.next_delay() <= min * 2, "starts over after a reset");
    }
}
