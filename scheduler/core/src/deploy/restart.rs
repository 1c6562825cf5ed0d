//! RestartApplication (rolling upgrade), one decision at a time: replace instances running an
//! old config version by new ones within the app's upgrade strategy.
//!
//! Marathon's source is `core/deployment/impl/TaskReplaceActor.scala` (1.10):
//! `computeRestartStrategy` gives `minHealthy = ceil(instances × minimumHealthCapacity)` and
//! `maxCapacity = floor(instances × (1 + maximumOverCapacity))`; the actor kills
//! `healthy − minHealthy` old instances at once (unhealthy first), launches up to
//! `maxCapacity − old − started`, kills one more old instance each time a new one becomes
//! healthy and ready, and is done when `instances` new ones are healthy and ready and no old one
//! is left. When `minHealthy == maxCapacity ≤ healthy` no kill and no launch would be possible;
//! Marathon then allows one instance of over-capacity (`maxCapacity + 1`) for ordinary apps, and
//! kills one instance below `minHealthy` only for resident apps (persistent volumes), which this
//! framework does not run.
//!
//! Marathon keeps counters in an actor; here the same rules are recomputed from the view on every
//! call, which makes them idempotent and lets a new leader pick up a restart where it was.

use crate::ids::InstanceId;
use crate::instance::Condition;

use super::view::{Decision, InstanceView, KillList, KillSelection, sort_for_kill};

/// The arithmetic of an upgrade strategy for one target count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBounds {
    /// The fewest healthy instances the restart may leave: `ceil(target × minimumHealthCapacity)`.
    pub min_healthy: u64,
    /// The most instances that may hold slots at once:
    /// `floor(target × (1 + maximumOverCapacity))`, before the over-capacity allowance.
    pub max_capacity: u64,
}

impl RestartBounds {
    /// Whether the bounds leave no room to move (`min_healthy == max_capacity`, for a non-zero
    /// target), in which case one instance of over-capacity is allowed while at least
    /// `max_capacity` instances are healthy.
    pub fn needs_over_capacity(&self) -> bool {
        self.max_capacity > 0 && self.min_healthy == self.max_capacity
    }
}

/// A capacity fraction clamped to `[0, 1]`; NaN reads as `default` (Marathon's default is 1 for
/// both fractions).
fn fraction(x: f64, default: f64) -> f64 {
    if x.is_nan() { default } else { x.clamp(0.0, 1.0) }
}

/// A slack for products like `5 × 0.6 = 3.0000000000000004`: a few units in the last place of
/// `x`, more than the rounding of the fraction, of `1 + fraction` and of the product together.
fn slack(x: f64) -> f64 {
    8.0 * f64::EPSILON * x.abs().max(1.0)
}

/// The restart bounds for `target` instances. Capacities outside `[0, 1]` are clamped, and the
/// products are rounded with a small relative slack so that `5 × 0.6` gives 3, not 4, and
/// `10 × 1.7` gives 17, not 16.
pub fn restart_bounds(target: u32, min_health_capacity: f64, max_over_capacity: f64) -> RestartBounds {
    let t = f64::from(target);
    let min = t * fraction(min_health_capacity, 1.0);
    let max = t * (1.0 + fraction(max_over_capacity, 1.0));
    let target = u64::from(target);
    // `as` saturates; both products are finite and within [0, 2 × u32::MAX].
    let min_healthy = ((min - slack(min)).ceil().max(0.0) as u64).min(target);
    let max_capacity = ((max + slack(max)).floor() as u64).clamp(target, target.saturating_mul(2));
    RestartBounds { min_healthy, max_capacity }
}

/// Whether `v` counts toward `min_healthy`: alive and Running, and for a new instance also
/// healthy and ready. Old instances count unless known unhealthy (`healthy == Some(false)`): an
/// unknown result, as right after a failover, must not expose them all to immediate kills.
fn counts_healthy(v: &InstanceView) -> bool {
    if v.config_key_current { v.is_serving() } else { v.is_alive() && v.condition == Condition::Running && v.healthy != Some(false) }
}

/// The next move of a RestartApplication to `target` instances of the current config, under
/// the upgrade strategy `(min_health_capacity, max_over_capacity)`.
///
/// With `H` the instances counting as healthy (see below) and the bounds of [`restart_bounds`]:
/// - Kills, in this order:
///   1. every old instance that does not count as healthy (not Running, known unhealthy,
///      UnreachableInactive): killing it costs no health;
///   2. new instances beyond `target` that do not count as healthy;
///   3. while `H − min_healthy` allows, healthy old instances, then healthy surplus new ones,
///      each in kill order (youngest first among equals).
///
///   Step 3 is Marathon's "kill `healthy − minHealthy` at once, then one per new healthy and
///   ready instance", since each new instance that turns healthy and ready raises `H` by one.
/// - Launches: `min(target − alive new instances, capacity − instances holding a slot)`, where
///   capacity is `max_capacity`, plus one when `min_healthy == max_capacity ≤ H` (Marathon's
///   over-capacity allowance). Old instances being killed hold their slot until they end.
/// - Done: nothing to kill or launch, no old instance left that is not gone, and exactly
///   `target` instances hold slots, all new and serving (Running, healthy, ready).
///
/// Old instances count as healthy when alive, Running and not known unhealthy; new ones when
/// alive, Running, healthy and ready. What this guarantees, given that instances do not fail on
/// their own: the healthy count never drops below `min(min_healthy, H at the start)` because of
/// a kill, and instances holding slots never exceed `max(max_capacity, held at the start)`, plus
/// one when [`RestartBounds::needs_over_capacity`].
pub fn restart_decision(target: u32, min_health_capacity: f64, max_over_capacity: f64, instances: &[InstanceView]) -> Decision {
    let bounds = restart_bounds(target, min_health_capacity, max_over_capacity);
    let target_count = u64::from(target);
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let healthy = count(instances.iter().filter(|v| counts_healthy(v)).count());

    let mut old: Vec<&InstanceView> = instances.iter().filter(|v| !v.config_key_current && v.is_killable()).collect();
    let mut new: Vec<&InstanceView> = instances.iter().filter(|v| v.config_key_current && v.is_alive()).collect();
    sort_for_kill(&mut old, KillSelection::YoungestFirst);
    sort_for_kill(&mut new, KillSelection::YoungestFirst);

    let mut kill = KillList::default();
    let mut surplus = count(new.len()).saturating_sub(target_count);
    let mut new_killed = 0u64;
    // 1. and 2.: kills that cost no health.
    for v in old.iter().filter(|v| !counts_healthy(v)) {
        kill.push(&v.id);
    }
    for v in new.iter().filter(|v| !counts_healthy(v)) {
        if surplus == 0 {
            break;
        }
        if kill.push(&v.id) {
            surplus -= 1;
            new_killed += 1;
        }
    }
    // 3.: kills within the health budget.
    let mut budget = healthy.saturating_sub(bounds.min_healthy);
    for v in old.iter().filter(|v| counts_healthy(v)) {
        if budget == 0 {
            break;
        }
        if kill.push(&v.id) {
            budget -= 1;
        }
    }
    for v in new.iter().filter(|v| counts_healthy(v)) {
        if budget == 0 || surplus == 0 {
            break;
        }
        if kill.push(&v.id) {
            surplus -= 1;
            new_killed += 1;
            budget -= 1;
        }
    }

    let over = u64::from(bounds.needs_over_capacity() && bounds.max_capacity <= healthy);
    let capacity = bounds.max_capacity.saturating_add(over);
    let occupied = count(instances.iter().filter(|v| v.holds_slot_after(&kill)).count());
    let new_left = count(new.len()).saturating_sub(new_killed);
    let launch = target_count.saturating_sub(new_left).min(capacity.saturating_sub(occupied));
    let launch = u32::try_from(launch).unwrap_or(target);

    let old_left = instances.iter().any(|v| !v.config_key_current && !v.is_gone());
    let done = kill.is_empty()
        && launch == 0
        && !old_left
        && occupied == target_count
        && instances.iter().filter(|v| v.holds_slot()).all(|v| v.config_key_current && v.is_serving());
    Decision { kill: kill.into_ids(), launch, done }
}

/// The ids of `instances` that run an old config version and are not gone yet (for progress
/// reports such as `/v2/deployments`).
pub fn old_instances(instances: &[InstanceView]) -> Vec<InstanceId> {
    instances.iter().filter(|v| !v.config_key_current && !v.is_gone()).map(|v| v.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::view::fixtures::*;
    use super::*;
    use crate::instance::Goal;

    fn bounds(t: u32, min: f64, over: f64) -> (u64, u64) {
        let b = restart_bounds(t, min, over);
        (b.min_healthy, b.max_capacity)
    }

    #[test]
    fn bounds_round_despite_floating_point() {
        assert_eq!(bounds(5, 0.6, 0.0), (3, 5));
        assert_eq!(bounds(10, 0.7, 0.7), (7, 17));
        assert_eq!(bounds(3, 1.0, 0.0), (3, 3));
        assert_eq!(bounds(3, 0.5, 0.5), (2, 4));
        assert_eq!(bounds(10, 0.1, 0.3), (1, 13));
        assert_eq!(bounds(1, 0.0, 1.0), (0, 2));
        assert_eq!(bounds(0, 1.0, 1.0), (0, 0));
        assert_eq!(bounds(4, 2.0, -1.0), (4, 4));
        assert_eq!(bounds(4, f64::NAN, f64::NAN), (4, 8));
        assert_eq!(bounds(u32::MAX, 1.0, 1.0), (u64::from(u32::MAX), 2 * u64::from(u32::MAX)));
        for t in 0..200u32 {
            for k in 0..=20u32 {
                let f = f64::from(k) / 20.0;
                let (min, max) = bounds(t, f, f);
                assert_eq!(min, (u64::from(t) * u64::from(k)).div_ceil(20), "{t} × {f}");
                assert_eq!(max, u64::from(t) + u64::from(t) * u64::from(k) / 20, "{t} × (1 + {f})");
            }
        }
    }

    #[test]
    fn default_strategy_adds_before_removing() {
        // minimumHealthCapacity 1, maximumOverCapacity 1: launch all new, keep every old one.
        let old: Vec<_> = (1..=3).map(|n| running(n, false)).collect();
        let d = restart_decision(3, 1.0, 1.0, &old);
        assert_eq!(d, Decision { kill: vec![], launch: 3, done: false });
        // One new instance turns healthy: one old instance goes (the youngest).
        let mut views = old.clone();
        views.push(running(10, true));
        views.extend((11..=12).map(|n| with(running(n, true), Condition::Staging)));
        let d = restart_decision(3, 1.0, 1.0, &views);
        assert_eq!(d, Decision { kill: vec![id(3)], launch: 0, done: false });
    }

    #[test]
    fn half_capacity_kills_at_once_down_to_min_healthy() {
        let old: Vec<_> = (1..=4).map(|n| running(n, false)).collect();
        let d = restart_decision(4, 0.5, 0.0, &old);
        assert_eq!(d.kill, vec![id(4), id(3)]);
        assert_eq!(d.launch, 0, "the killed ones still hold their slots");
        let mut views = old.clone();
        for v in views.iter_mut().skip(2) {
            v.goal = Goal::Decommissioned;
            v.condition = Condition::Killing;
        }
        assert_eq!(restart_decision(4, 0.5, 0.0, &views), Decision::default());
        views.truncate(2);
        assert_eq!(restart_decision(4, 0.5, 0.0, &views), Decision { kill: vec![], launch: 2, done: false });
    }

    #[test]
    fn unhealthy_and_unlaunched_old_instances_die_first_and_for_free() {
        let mut unhealthy = running(2, false);
        unhealthy.healthy = Some(false);
        let views = vec![
            running(1, false),
            unhealthy,
            with(running(3, false), Condition::Staging),
            with(running(4, false), Condition::UnreachableInactive),
        ];
        let d = restart_decision(3, 1.0, 0.0, &views);
        assert_eq!(d.kill, vec![id(4), id(3), id(2)]);
        // Slots held: 1, 2, 3 (UnreachableInactive holds none); capacity 3.
        assert_eq!(d.launch, 0);
    }

    #[test]
    fn full_health_without_over_capacity_allows_one_extra_instance() {
        // minHealthy == maxCapacity == 3: Marathon allows a fourth instance.
        let old: Vec<_> = (1..=3).map(|n| running(n, false)).collect();
        let d = restart_decision(3, 1.0, 0.0, &old);
        assert_eq!(d, Decision { kill: vec![], launch: 1, done: false });
        let mut views = old.clone();
        views.push(running(10, true));
        let d = restart_decision(3, 1.0, 0.0, &views);
        assert_eq!(d, Decision { kill: vec![id(3)], launch: 0, done: false });
        // With a healthy instance missing there is room without the allowance.
        let mut short = old.clone();
        short[0].healthy = Some(false);
        short[0].condition = Condition::Starting;
        let d = restart_decision(3, 1.0, 0.0, &short);
        assert_eq!(d.kill, vec![id(1)]);
        assert_eq!(d.launch, 0);
    }

    #[test]
    fn new_instances_count_only_when_healthy_and_ready() {
        let mut old: Vec<_> = (1..=2).map(|n| running(n, false)).collect();
        for v in &mut old {
            v.has_health_checks = true;
        }
        let mut new = running(10, true);
        new.has_health_checks = true;
        let views = [old.clone(), vec![new.clone()]].concat();
        // Old ones with unknown health are protected; the new one is not healthy yet.
        assert_eq!(restart_decision(2, 1.0, 0.5, &views), Decision::default());
        new.healthy = Some(true);
        new.ready = false;
        let views = [old.clone(), vec![new.clone()]].concat();
        assert_eq!(restart_decision(2, 1.0, 0.5, &views), Decision::default());
        new.ready = true;
        let views = [old, vec![new]].concat();
        assert_eq!(restart_decision(2, 1.0, 0.5, &views).kill, vec![id(2)]);
    }

    #[test]
    fn done_only_with_target_new_serving_and_no_old_left() {
        let new: Vec<_> = (1..=2).map(|n| running(n, true)).collect();
        assert!(restart_decision(2, 1.0, 1.0, &new).done);
        let mut dying = running(9, false);
        dying.goal = Goal::Decommissioned;
        dying.condition = Condition::Killing;
        let views = [new.clone(), vec![dying]].concat();
        assert_eq!(restart_decision(2, 1.0, 1.0, &views), Decision::default());
        assert_eq!(old_instances(&views), vec![id(9)]);
        let views = [new.clone(), vec![with(running(9, false), Condition::Killed)]].concat();
        assert!(restart_decision(2, 1.0, 1.0, &views).done);
        assert!(restart_decision(0, 1.0, 1.0, &[]).done);
    }

    #[test]
    fn surplus_new_instances_are_killed_not_serving_first() {
        let views = vec![running(1, true), running(2, true), with(running(3, true), Condition::Staging)];
        let d = restart_decision(2, 1.0, 1.0, &views);
        assert_eq!(d, Decision { kill: vec![id(3)], launch: 0, done: false });
        let views = vec![running(1, true), running(2, true), running(3, true)];
        assert_eq!(restart_decision(2, 0.5, 0.0, &views).kill, vec![id(3)]);
        // A shrunk target with minimumHealthCapacity 1 keeps `target` healthy ones.
        assert_eq!(restart_decision(1, 1.0, 0.0, &views).kill, vec![id(3), id(2)]);
    }

    #[test]
    fn zero_target_kills_all_old() {
        let views: Vec<_> = (1..=3).map(|n| running(n, false)).collect();
        let d = restart_decision(0, 1.0, 0.0, &views);
        assert_eq!(d.kill.len(), 3);
        assert_eq!(d.launch, 0);
    }
}
