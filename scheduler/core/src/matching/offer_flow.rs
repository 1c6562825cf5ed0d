//! When to ask the master for offers (REVIVE) and when to stop them (SUPPRESS): a pure policy
//! over the scheduler's launch demand and the clock.

/// What the scheduler remembers about the offer flow between two decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferFlow {
    /// SUPPRESS was sent and no REVIVE since: the master sends no offers.
    pub suppressed: bool,
    /// A (re)subscription happened: filters a previous incarnation left behind must be cleared
    /// as soon as anything waits for launch.
    pub must_revive: bool,
    /// When the last REVIVE was sent, in ms.
    pub last_revive_ms: i64,
    /// An app started waiting after the last REVIVE; one follows once the interval allows.
    pub revive_due: bool,
}

impl Default for OfferFlow {
    /// A fresh subscription: offers flow, and the first demand revives at once.
    fn default() -> Self {
        Self { suppressed: false, must_revive: true, last_revive_ms: i64::MIN / 2, revive_due: false }
    }
}

/// The call the policy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowCall {
    /// Ask for offers again, clearing filters.
    Revive,
    /// Stop offers.
    Suppress,
}

impl OfferFlow {
    /// Decides after a change of demand. `wants`: some app waits for launch; `newly_wanted`: an
    /// app started waiting in this change. A REVIVE goes out at once when offers are suppressed or
    /// a subscription's filters must be cleared; for new demand while offers already flow, at
    /// most once per `min_interval_ms` (each REVIVE makes the master offer every agent again).
    /// SUPPRESS goes out once nothing waits.
    pub fn decide(&mut self, wants: bool, newly_wanted: bool, now_ms: i64, min_interval_ms: i64) -> Option<FlowCall> {
        self.revive_due |= newly_wanted;
        let interval_over = now_ms.saturating_sub(self.last_revive_ms) >= min_interval_ms;
        if wants && (self.suppressed || self.must_revive || (self.revive_due && interval_over)) {
            *self = Self { suppressed: false, must_revive: false, last_revive_ms: now_ms, revive_due: false };
            Some(FlowCall::Revive)
        } else if !wants && !self.suppressed {
            self.suppressed = true;
            self.must_revive = false;
            self.revive_due = false;
            Some(FlowCall::Suppress)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INTERVAL: i64 = 5_000;

    #[test]
    fn a_burst_of_new_apps_revives_once_then_once_more_after_the_interval() {
        let mut flow = OfferFlow::default();
        assert_eq!(flow.decide(true, true, 0, INTERVAL), Some(FlowCall::Revive), "first demand after subscribing");
        for t in (100..5_000).step_by(100) {
            assert_eq!(flow.decide(true, true, t, INTERVAL), None, "no REVIVE at {t} ms");
        }
        assert_eq!(flow.decide(true, false, 5_000, INTERVAL), Some(FlowCall::Revive), "the due REVIVE, without new demand");
        assert_eq!(flow.decide(true, false, 20_000, INTERVAL), None, "nothing new: no REVIVE");
    }

    #[test]
    fn suppression_ends_at_once_and_starts_when_nothing_waits() {
        let mut flow = OfferFlow { must_revive: false, ..OfferFlow::default() };
        assert_eq!(flow.decide(false, false, 0, INTERVAL), Some(FlowCall::Suppress));
        assert_eq!(flow.decide(false, false, 10, INTERVAL), None, "suppressed once");
        flow.last_revive_ms = 0;
        assert_eq!(flow.decide(true, true, 20, INTERVAL), Some(FlowCall::Revive), "suppressed offers are revived within the interval");
    }

    proptest! {
        /// Whatever the demand, REVIVEs for new demand while offers flow are at least the interval
        /// apart, and no new demand stays without a REVIVE after it for longer than the interval.
        #[test]
        fn revives_are_spaced_and_none_is_lost(steps in prop::collection::vec((any::<bool>(), 1i64..3_000), 1..200)) {
            let mut flow = OfferFlow { must_revive: false, ..OfferFlow::default() };
            let mut now = 0;
            let mut last_revive: Option<i64> = None;
            let mut waiting_since: Option<i64> = None;
            for (new_app, dt) in steps {
                now += dt;
                if new_app && waiting_since.is_none() {
                    waiting_since = Some(now);
                }
                match flow.decide(true, new_app, now, INTERVAL) {
                    Some(FlowCall::Revive) => {
                        if let Some(last) = last_revive {
                            prop_assert!(now - last >= INTERVAL);
                        }
                        last_revive = Some(now);
                        waiting_since = None;
                    }
                    Some(FlowCall::Suppress) => prop_assert!(false, "demand never ends here"),
                    None => {
                        if let Some(since) = waiting_since {
                            prop_assert!(now - since < INTERVAL + 3_000, "new demand waited {} ms", now - since);
                        }
                    }
                }
            }
        }
    }
}
