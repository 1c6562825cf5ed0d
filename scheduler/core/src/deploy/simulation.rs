//! Seeded simulations of the step decisions against a toy cluster, checked at every tick.
//!
//! The cluster applies a decision the way the shell does (a kill sets the goal to
//! Decommissioned, a launch adds a Scheduled instance), then random events happen: launches make
//! progress (Staging, Starting, Running, healthy, ready) or fail before serving, killed
//! instances report Killing and then end. Instances that serve never fail on their own, and old
//! instances never fail: every loss of health is then the decision's doing, which is what the
//! invariants check.
//!
//! Also here: a property that every decision is idempotent on any view at all.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::restart::{restart_bounds, restart_decision};
use super::scale::{scale_decision, stop_decision};
use super::view::fixtures::id;
use super::view::{Decision, InstanceView, KillSelection};
use crate::ids::{InstanceId, Timestamp};
use crate::instance::{Condition, Goal};

/// A small deterministic generator (splitmix64), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// True with probability `1/n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// The toy cluster of one app.
struct Cluster {
    instances: Vec<InstanceView>,
    next_id: u32,
    now: i64,
    has_health_checks: bool,
    has_readiness: bool,
    /// How many more launches may fail (keeps every run finite).
    failures_left: u32,
    rng: Rng,
}

impl Cluster {
    fn new(seed: u64, has_health_checks: bool, has_readiness: bool) -> Self {
        Self { instances: Vec::new(), next_id: 1, now: 0, has_health_checks, has_readiness, failures_left: 6, rng: Rng(seed) }
    }

    /// Adds an instance in `condition`, serving if Running.
    fn add(&mut self, current: bool, condition: Condition) {
        let serving = condition == Condition::Running;
        self.instances.push(InstanceView {
            id: id(self.next_id),
            config_key_current: current,
            condition,
            healthy: (serving && self.has_health_checks).then_some(true),
            has_health_checks: self.has_health_checks,
            ready: serving || !self.has_readiness,
            goal: Goal::Running,
            staged_at: Timestamp(self.now - i64::from(self.next_id)),
        });
        self.next_id += 1;
    }

    /// Applies a decision as the shell would.
    fn apply(&mut self, d: &Decision) {
        let kill: BTreeSet<&InstanceId> = d.kill.iter().collect();
        for v in self.instances.iter_mut().filter(|v| kill.contains(&v.id)) {
            v.goal = Goal::Decommissioned;
        }
        // Never-launched instances are expunged at once.
        self.instances.retain(|v| !v.is_gone());
        for _ in 0..d.launch {
            self.now += 1;
            self.add(true, Condition::Scheduled);
            if let Some(v) = self.instances.last_mut() {
                v.staged_at = Timestamp(self.now);
            }
        }
    }

    /// One random event on one random instance.
    fn event(&mut self) {
        self.now += 1;
        let i = self.rng.below(self.instances.len());
        let fail = self.failures_left > 0 && self.rng.one_in(6);
        let has_hc = self.has_health_checks;
        let Some(v) = self.instances.get_mut(i) else { return };
        if v.is_doomed() {
            if v.condition == Condition::Killing || self.rng.one_in(2) {
                self.instances.remove(i);
            } else {
                v.condition = Condition::Killing;
            }
            return;
        }
        if !v.config_key_current || v.is_serving() {
            return;
        }
        if fail {
            self.failures_left -= 1;
            self.instances.remove(i);
            return;
        }
        match v.condition {
            Condition::Scheduled => v.condition = Condition::Provisioned,
            Condition::Provisioned => v.condition = Condition::Staging,
            Condition::Staging => v.condition = Condition::Starting,
            Condition::Starting => {
                v.condition = Condition::Running;
                v.staged_at = Timestamp(self.now);
            }
            Condition::Running if has_hc && v.healthy != Some(true) => v.healthy = Some(true),
            Condition::Running if !has_hc && v.healthy == Some(false) => v.healthy = None,
            Condition::Running => v.ready = true,
            _ => {}
        }
    }

    fn occupied(&self) -> u64 {
        self.instances.iter().filter(|v| v.holds_slot()).count() as u64
    }

    /// The instances counting as healthy during a restart, defined independently of the code
    /// under test: old ones alive, Running and not known unhealthy; new ones serving.
    fn restart_healthy(&self) -> u64 {
        let counts = |v: &&InstanceView| {
            if v.config_key_current {
                v.is_alive() && v.condition == Condition::Running && v.ready && v.health_ok()
            } else {
                v.is_alive() && v.condition == Condition::Running && v.healthy != Some(false)
            }
        };
        self.instances.iter().filter(counts).count() as u64
    }
}

/// At most this many decisions per run; every run must finish well before.
const MAX_TICKS: usize = 20_000;

/// Runs a rolling restart to the end, checking Marathon's guarantees at every tick:
/// - the instances counting as healthy never drop below `min(min_healthy, healthy at start)`
///   (with `old == target` that is `min_healthy` itself);
/// - the instances holding slots never exceed `max(max_capacity (+1 when
///   min_healthy == max_capacity), held at start)`;
/// - every decision is idempotent: asked again right after it was applied, it answers nothing;
/// - at the end exactly `target` instances hold slots, all new and serving, and no old one is left.
fn run_restart(seed: u64, old: u32, target: u32, min: f64, over: f64, hc: bool, ready: bool) -> Result<(), TestCaseError> {
    let mut c = Cluster::new(seed, hc, ready);
    for _ in 0..old {
        c.add(false, Condition::Running);
    }
    let bounds = restart_bounds(target, min, over);
    let floor = bounds.min_healthy.min(c.restart_healthy());
    let ceiling = (bounds.max_capacity + u64::from(bounds.needs_over_capacity())).max(c.occupied());
    for _ in 0..MAX_TICKS {
        let d = restart_decision(target, min, over, &c.instances);
        if d.done {
            prop_assert_eq!(c.occupied(), u64::from(target));
            prop_assert!(c.instances.iter().filter(|v| v.holds_slot()).all(|v| v.config_key_current && v.is_serving()));
            prop_assert!(c.instances.iter().all(|v| v.config_key_current || v.is_gone()));
            return Ok(());
        }
        c.apply(&d);
        prop_assert!(c.restart_healthy() >= floor, "healthy {} < {} after {:?}", c.restart_healthy(), floor, d);
        prop_assert!(c.occupied() <= ceiling, "{} instances hold slots, more than {}", c.occupied(), ceiling);
        let again = restart_decision(target, min, over, &c.instances);
        prop_assert!(again.kill.is_empty() && again.launch == 0, "not idempotent: {:?} then {:?}", d, again);
        for _ in 0..1 + c.rng.below(3) {
            c.event();
        }
        prop_assert!(c.restart_healthy() >= floor);
    }
    Err(TestCaseError::fail(format!("restart not done after {MAX_TICKS} ticks: {:?}", c.instances)))
}

/// Runs a scale to the end: slots never exceed `max(target, held at start)`, every named
/// instance dies, decisions are idempotent, and at the end exactly `target` instances hold
/// slots, all serving.
fn run_scale(
    seed: u64,
    initial: &[Condition],
    target: u32,
    to_kill: &[u32],
    selection: KillSelection,
    hc: bool,
) -> Result<(), TestCaseError> {
    let mut c = Cluster::new(seed, hc, false);
    for &condition in initial {
        c.add(true, condition);
    }
    let named: Vec<InstanceId> = to_kill.iter().map(|&n| id(n)).collect();
    let ceiling = u64::from(target).max(c.occupied());
    for _ in 0..MAX_TICKS {
        let d = scale_decision(target, &c.instances, &named, selection);
        if d.done {
            prop_assert_eq!(c.occupied(), u64::from(target));
            prop_assert!(c.instances.iter().filter(|v| v.holds_slot()).all(InstanceView::is_serving));
            prop_assert!(c.instances.iter().all(|v| !named.contains(&v.id)));
            return Ok(());
        }
        c.apply(&d);
        prop_assert!(c.occupied() <= ceiling, "{} instances hold slots, more than {}", c.occupied(), ceiling);
        let again = scale_decision(target, &c.instances, &named, selection);
        prop_assert!(again.kill.is_empty() && again.launch == 0, "not idempotent: {:?} then {:?}", d, again);
        for _ in 0..1 + c.rng.below(3) {
            c.event();
        }
    }
    Err(TestCaseError::fail(format!("scale not done after {MAX_TICKS} ticks: {:?}", c.instances)))
}

/// Capacities worth covering: the usual ones (including 0.6 × 5 and the 1/0 corner), plus any.
fn capacity() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(0.5), Just(0.6), Just(0.75), Just(0.85), Just(1.0), 0.0f64..=1.0,]
}

fn any_condition() -> impl Strategy<Value = Condition> {
    proptest::sample::select(Condition::ALL.to_vec())
}

fn any_goal() -> impl Strategy<Value = Goal> {
    proptest::sample::select(vec![Goal::Running, Goal::Stopped, Goal::Decommissioned])
}

/// Any view at all, with unique ids `1..=n`.
fn any_views() -> impl Strategy<Value = Vec<InstanceView>> {
    proptest::collection::vec(
        (any::<bool>(), any_condition(), proptest::option::of(any::<bool>()), any::<bool>(), any::<bool>(), any_goal(), -5i64..5),
        0..12,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .zip(1u32..)
            .map(|((current, condition, healthy, hc, ready, goal, staged), n)| InstanceView {
                id: id(n),
                config_key_current: current,
                condition,
                healthy,
                has_health_checks: hc,
                ready,
                goal,
                staged_at: Timestamp(staged),
            })
            .collect()
    })
}

/// `views` after `d` was applied the way the shell applies it (launches show up as Scheduled).
fn applied(views: &[InstanceView], d: &Decision, current: bool) -> Vec<InstanceView> {
    let mut out: Vec<InstanceView> = views.to_vec();
    for v in out.iter_mut().filter(|v| d.kill.contains(&v.id)) {
        v.goal = Goal::Decommissioned;
    }
    for n in 0..d.launch {
        out.push(InstanceView {
            id: id(1000 + n),
            config_key_current: current,
            condition: Condition::Scheduled,
            healthy: None,
            has_health_checks: false,
            ready: true,
            goal: Goal::Running,
            staged_at: Timestamp(0),
        });
    }
    out
}

/// A decision kills only killable instances, each once, and is "nothing to do" when done.
fn well_formed(views: &[InstanceView], d: &Decision) -> Result<(), TestCaseError> {
    let unique: BTreeSet<&InstanceId> = d.kill.iter().collect();
    prop_assert_eq!(unique.len(), d.kill.len());
    for k in &d.kill {
        prop_assert!(views.iter().any(|v| &v.id == k && v.is_killable()), "killed {} which is not killable", k);
    }
    if d.done {
        prop_assert!(d.kill.is_empty() && d.launch == 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rolling_restart_from_target_old_instances(
        seed in any::<u64>(), target in 1u32..9, min in capacity(), over in capacity(),
        hc in any::<bool>(), ready in any::<bool>(),
    ) {
        run_restart(seed, target, target, min, over, hc, ready)?;
    }

    #[test]
    fn rolling_restart_with_changed_instance_count(
        seed in any::<u64>(), old in 0u32..9, target in 0u32..9, min in capacity(), over in capacity(),
        hc in any::<bool>(),
    ) {
        run_restart(seed, old, target, min, over, hc, false)?;
    }

    #[test]
    fn scale_reaches_exactly_the_target(
        seed in any::<u64>(),
        initial in proptest::collection::vec(
            proptest::sample::select(vec![Condition::Scheduled, Condition::Staging, Condition::Starting, Condition::Running]),
            0..9,
        ),
        target in 0u32..9,
        to_kill in proptest::collection::btree_set(1u32..10, 0..4),
        oldest in any::<bool>(), hc in any::<bool>(),
    ) {
        let selection = if oldest { KillSelection::OldestFirst } else { KillSelection::YoungestFirst };
        // Kill-and-scale names existing instances only (ids 1..=initial.len()).
        let to_kill: Vec<u32> = to_kill.into_iter().filter(|&n| n as usize <= initial.len()).collect();
        run_scale(seed, &initial, target, &to_kill, selection, hc)?;
    }

    #[test]
    fn decisions_are_idempotent_on_any_view(
        views in any_views(), target in 0u32..12,
        min in proptest::num::f64::ANY, over in proptest::num::f64::ANY,
        to_kill in proptest::collection::btree_set(1u32..14, 0..4),
    ) {
        let named: Vec<InstanceId> = to_kill.into_iter().map(id).collect();
        let d = restart_decision(target, min, over, &views);
        well_formed(&views, &d)?;
        let again = restart_decision(target, min, over, &applied(&views, &d, true));
        prop_assert!(again.kill.is_empty() && again.launch == 0, "restart: {:?} then {:?}", d, again);

        let d = scale_decision(target, &views, &named, KillSelection::YoungestFirst);
        well_formed(&views, &d)?;
        let again = scale_decision(target, &applied(&views, &d, true), &named, KillSelection::YoungestFirst);
        prop_assert!(again.kill.is_empty() && again.launch == 0, "scale: {:?} then {:?}", d, again);

        let d = stop_decision(&views);
        well_formed(&views, &d)?;
        prop_assert_eq!(d.launch, 0);
        prop_assert!(stop_decision(&applied(&views, &d, true)).kill.is_empty());
    }
}

#[test]
fn documented_restart_corner_keeps_full_health() {
    // minimumHealthCapacity 1 with maximumOverCapacity 0: one extra instance, never fewer healthy.
    for seed in 0..50 {
        let result = run_restart(seed, 3, 3, 1.0, 0.0, true, true);
        assert!(result.is_ok(), "{result:?}");
    }
}
