//! Launch backoff per app: how long to wait before launching again after tasks failed.
//!
//! Marathon's `core/launchqueue/impl/RateLimiter.scala` (1.10) and
//! `core/task/update/impl/steps/NotifyRateLimiterStep.scala`:
//! - the first failure sets the delay to `backoffSeconds` (capped by `maxLaunchDelaySeconds`);
//!   every further failure multiplies it by `backoffFactor`, capped again. After `n ≥ 1`
//!   failures the delay is therefore `min(max, seconds × factor^(n−1))`;
//! - the deadline is the time of the last failure (or advance) plus the delay;
//! - a delay is forgotten once `maxLaunchDelaySeconds` passed since that time without another
//!   failure (`cleanUpOverdueDelays`), so a later failure starts again at `backoffSeconds`;
//! - Failed, Finished, Error, Dropped and Gone increase it ([`increases_backoff`]); Killed does
//!   not. The caller also calls [`Backoff::on_failure`] for health-check kills;
//! - Provisioned, Staging, Starting and Running advance it ([`advances_backoff`]): the delay
//!   stays, counted from now;
//! - it is reset when a new app version is deployed, a restart begins, or
//!   `DELETE /v2/queue/{id}/delay` is called.
//!
//! All arithmetic saturates: no input (NaN, infinities, factor 1e9, 10 000 failures) overflows
//! or yields NaN.

use crate::ids::Timestamp;
use crate::instance::Condition;

/// An app's backoff settings: `backoffSeconds`, `backoffFactor`, `maxLaunchDelaySeconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The delay after the first failure, in seconds (`backoffSeconds`).
    pub seconds: f64,
    /// The factor the delay grows by with each further failure (`backoffFactor`).
    pub factor: f64,
    /// The largest delay, in seconds (`maxLaunchDelaySeconds`); also the quiet period after
    /// which the delay is forgotten.
    pub max_seconds: f64,
}

impl Default for BackoffPolicy {
    /// Marathon 1.10's defaults: 1 s, factor 1.15, at most 300 s.
    fn default() -> Self {
        Self { seconds: 1.0, factor: 1.15, max_seconds: 300.0 }
    }
}

/// `s` seconds as whole milliseconds, rounding; NaN and negatives read as 0, and values beyond
/// `u64` saturate.
fn seconds_to_ms(s: f64) -> u64 {
    if s > 0.0 {
        // `as` saturates (and maps +inf to u64::MAX).
        (s * 1000.0).round() as u64
    } else {
        0
    }
}

/// `ms` added to `at`, saturating at the ends of the timestamp range.
fn plus_ms(at: Timestamp, ms: u64) -> Timestamp {
    Timestamp(at.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)))
}

impl BackoffPolicy {
    /// The largest delay in milliseconds (NaN or negative reads as 0).
    pub fn max_delay_ms(&self) -> u64 {
        seconds_to_ms(self.max_seconds)
    }

    /// The delay in milliseconds after `failures` consecutive failures: 0 for none, else
    /// `min(max_seconds, seconds × factor^(failures − 1))`.
    ///
    /// Inputs Marathon's validation refuses are read leniently instead of failing: a NaN or
    /// negative `seconds` or `max_seconds` counts as 0, a NaN or negative `factor` as 1.
    pub fn delay_after(&self, failures: u32) -> u64 {
        if failures == 0 {
            return 0;
        }
        let max = if self.max_seconds > 0.0 { self.max_seconds } else { 0.0 };
        let first = if self.seconds > 0.0 { self.seconds.min(max) } else { 0.0 };
        if first <= 0.0 {
            return 0;
        }
        let factor = if self.factor >= 0.0 { self.factor } else { 1.0 };
        let exponent = i32::try_from(failures - 1).unwrap_or(i32::MAX);
        let grown = first * factor.powi(exponent);
        // `first` is positive and at most `max`; only inf × 0 can give NaN, and then the
        // growth is unbounded one way and zero the other: take the cap.
        let delay = if grown.is_nan() { max } else { grown.min(max) };
        seconds_to_ms(delay)
    }
}

/// Whether a task ending in `condition` increases its app's backoff (Marathon's
/// `limitWorthy`): Failed, Finished, Error, Dropped, Gone. Killed does not.
pub fn increases_backoff(condition: Condition) -> bool {
    matches!(condition, Condition::Failed | Condition::Finished | Condition::Error | Condition::Dropped | Condition::Gone)
}

/// Whether a task reaching `condition` advances its app's backoff (Marathon's `advanceWorthy`):
/// Provisioned, Staging, Starting, Running.
pub fn advances_backoff(condition: Condition) -> bool {
    matches!(condition, Condition::Provisioned | Condition::Staging | Condition::Starting | Condition::Running)
}

/// The launch backoff of one app: the number of recent failures and when the last one happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The app's settings.
    policy: BackoffPolicy,
    /// Consecutive failures since the last reset (0: no delay).
    failures: u32,
    /// When the delay was last set or advanced; the deadline is this plus the delay.
    since: Option<Timestamp>,
}

impl Backoff {
    /// No delay yet, under `policy`.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self { policy, failures: 0, since: None }
    }

    /// The settings in use.
    pub fn policy(&self) -> BackoffPolicy {
        self.policy
    }

    /// Uses `policy` from now on; the failure count is kept (call [`Backoff::reset`] too when the
    /// app's version changed, as Marathon keys delays by config version).
    pub fn set_policy(&mut self, policy: BackoffPolicy) {
        self.policy = policy;
    }

    /// The delay in milliseconds after `failures` failures under this app's policy.
    pub fn delay_after(&self, failures: u32) -> u64 {
        self.policy.delay_after(failures)
    }

    /// When the delay in force was set, if one is in force at `now`: there were failures and
    /// the quiet period (`max_seconds` since then) has not passed.
    fn in_force(&self, now: Timestamp) -> Option<Timestamp> {
        let since = self.since.filter(|_| self.failures > 0)?;
        (now <= plus_ms(since, self.policy.max_delay_ms())).then_some(since)
    }

    /// The failures counted at `now` (0 once the quiet period has passed).
    pub fn failures(&self, now: Timestamp) -> u32 {
        if self.in_force(now).is_some() { self.failures } else { 0 }
    }

    /// The delay in force at `now`, in milliseconds (0 when none).
    pub fn current_delay_ms(&self, now: Timestamp) -> u64 {
        self.delay_after(self.failures(now))
    }

    /// The earliest time the app may launch again: the deadline of the delay in force at `now`
    /// (possibly already past), or `now` when there is none.
    pub fn next_launch_at(&self, now: Timestamp) -> Timestamp {
        match self.in_force(now) {
            Some(since) => plus_ms(since, self.delay_after(self.failures)),
            None => now,
        }
    }

    /// Milliseconds until the app may launch again (`timeLeftSeconds × 1000` in `/v2/queue`);
    /// 0 when it may launch now.
    pub fn time_left_ms(&self, now: Timestamp) -> i64 {
        self.next_launch_at(now).0.saturating_sub(now.0).max(0)
    }

    /// Whether a delay is in force and its deadline has passed (`overdue` in `/v2/queue`).
    pub fn overdue(&self, now: Timestamp) -> bool {
        self.in_force(now).is_some() && self.next_launch_at(now) < now
    }

    /// Records a failure at `now` and returns the new deadline. A delay whose quiet period has
    /// passed is forgotten first, so the delay restarts at `seconds`.
    pub fn on_failure(&mut self, now: Timestamp) -> Timestamp {
        self.failures = self.failures(now).saturating_add(1);
        self.since = Some(now);
        plus_ms(now, self.delay_after(self.failures))
    }

    /// A task of the app got going at `now`: a delay in force keeps its length but counts from
    /// now (Marathon's `advanceDelay`), which also restarts its quiet period.
    pub fn advance(&mut self, now: Timestamp) {
        if self.in_force(now).is_some() {
            self.since = Some(now);
        }
    }

    /// Forgets all failures: the app may launch at once.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(seconds: f64, factor: f64, max_seconds: f64) -> BackoffPolicy {
        BackoffPolicy { seconds, factor, max_seconds }
    }

    #[test]
    fn delays_grow_by_the_factor_from_the_first_failure() {
        let p = policy(1.0, 2.0, 300.0);
        assert_eq!(p.delay_after(0), 0);
        assert_eq!(p.delay_after(1), 1000);
        assert_eq!(p.delay_after(2), 2000);
        assert_eq!(p.delay_after(3), 4000);
        assert_eq!(p.delay_after(9), 256_000);
        assert_eq!(p.delay_after(10), 300_000);
        assert_eq!(p.delay_after(u32::MAX), 300_000);
        let d = BackoffPolicy::default();
        assert_eq!(d.delay_after(1), 1000);
        assert_eq!(d.delay_after(2), 1150);
        assert!((1322..=1323).contains(&d.delay_after(3)));
        // The first delay is capped too.
        assert_eq!(policy(10.0, 2.0, 3.0).delay_after(1), 3000);
    }

    #[test]
    fn extreme_and_invalid_inputs_saturate() {
        assert_eq!(policy(1.0, 1e9, 300.0).delay_after(10_000), 300_000);
        assert_eq!(policy(1e300, 1e9, 1e300).delay_after(10_000), u64::MAX);
        assert_eq!(policy(f64::INFINITY, 0.0, f64::INFINITY).delay_after(5), u64::MAX);
        assert_eq!(policy(f64::NAN, 2.0, 300.0).delay_after(3), 0);
        assert_eq!(policy(1.0, f64::NAN, 300.0).delay_after(3), 1000);
        assert_eq!(policy(1.0, -3.0, 300.0).delay_after(3), 1000);
        assert_eq!(policy(1.0, 2.0, f64::NAN).delay_after(3), 0);
        assert_eq!(policy(-1.0, 2.0, 300.0).delay_after(3), 0);
        assert_eq!(policy(0.0, f64::INFINITY, 300.0).delay_after(3), 0);
        let mut b = Backoff::new(policy(1e300, 1e9, 1e300));
        for _ in 0..10_000 {
            b.on_failure(Timestamp(i64::MAX - 5));
        }
        assert_eq!(b.next_launch_at(Timestamp(i64::MAX - 5)), Timestamp(i64::MAX));
        assert_eq!(b.time_left_ms(Timestamp(i64::MIN)), i64::MAX);
    }

    #[test]
    fn backoff_tracks_failures_deadline_and_reset() {
        let mut b = Backoff::new(policy(1.0, 2.0, 10.0));
        let t0 = Timestamp(1_000_000);
        assert_eq!(b.next_launch_at(t0), t0);
        assert_eq!(b.time_left_ms(t0), 0);
        assert!(!b.overdue(t0));
        assert_eq!(b.on_failure(t0), Timestamp(1_001_000));
        assert_eq!(b.time_left_ms(t0), 1000);
        assert_eq!(b.on_failure(Timestamp(1_000_500)), Timestamp(1_002_500));
        assert_eq!(b.failures(Timestamp(1_000_500)), 2);
        assert_eq!(b.current_delay_ms(Timestamp(1_000_500)), 2000);
        assert!(!b.overdue(Timestamp(1_002_500)));
        assert!(b.overdue(Timestamp(1_002_501)));
        assert_eq!(b.time_left_ms(Timestamp(1_003_000)), 0);
        b.reset();
        assert_eq!(b.time_left_ms(Timestamp(1_000_600)), 0);
        assert_eq!(b.on_failure(Timestamp(1_000_600)), Timestamp(1_001_600));
    }

    #[test]
    fn quiet_period_forgets_the_delay_and_advance_restarts_it() {
        let mut b = Backoff::new(policy(1.0, 2.0, 10.0));
        let t0 = Timestamp(0);
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!(b.current_delay_ms(t0), 4000);
        // Still in force exactly at the end of the quiet period, forgotten after it.
        assert_eq!(b.failures(Timestamp(10_000)), 3);
        assert_eq!(b.failures(Timestamp(10_001)), 0);
        assert!(!b.overdue(Timestamp(10_001)));
        // A task started at 9 s: the 4 s delay counts from there and the quiet period restarts.
        b.advance(Timestamp(9_000));
        assert_eq!(b.next_launch_at(Timestamp(9_000)), Timestamp(13_000));
        assert_eq!(b.failures(Timestamp(19_000)), 3);
        // After the quiet period a failure starts again at `seconds`.
        assert_eq!(b.on_failure(Timestamp(30_000)), Timestamp(31_000));
        // Advancing with no delay in force changes nothing.
        let mut idle = Backoff::new(policy(1.0, 2.0, 10.0));
        idle.advance(t0);
        assert_eq!(idle, Backoff::new(policy(1.0, 2.0, 10.0)));
    }

    #[test]
    fn which_conditions_move_the_backoff() {
        use Condition::*;
        for c in [Failed, Finished, Error, Dropped, Gone] {
            assert!(increases_backoff(c), "{c:?}");
        }
        for c in [Killed, Killing, Running, Unknown, Unreachable] {
            assert!(!increases_backoff(c), "{c:?}");
        }
        for c in [Provisioned, Staging, Starting, Running] {
            assert!(advances_backoff(c), "{c:?}");
        }
        assert!(!advances_backoff(Scheduled) && !advances_backoff(Killed));
    }

    proptest! {
        #[test]
        fn delays_are_monotone_and_capped(
            seconds in 0.0f64..1e6, factor in 1.0f64..1e9, max in 0.0f64..1e7, n in 0u32..20_000,
        ) {
            let p = policy(seconds, factor, max);
            let d = p.delay_after(n);
            prop_assert!(d <= p.max_delay_ms());
            prop_assert!(p.delay_after(n.saturating_add(1)) >= d);
        }

        #[test]
        fn any_policy_and_time_is_total(
            seconds in proptest::num::f64::ANY, factor in proptest::num::f64::ANY,
            max in proptest::num::f64::ANY, n in any::<u32>(), now in any::<i64>(),
        ) {
            let p = policy(seconds, factor, max);
            let _ = p.delay_after(n);
            let mut b = Backoff::new(p);
            b.on_failure(Timestamp(now));
            b.advance(Timestamp(now));
            prop_assert!(b.time_left_ms(Timestamp(now)) >= 0);
            let _ = b.overdue(Timestamp(now));
        }
    }
}
