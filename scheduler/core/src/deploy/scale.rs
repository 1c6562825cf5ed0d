//! ScaleApplication and StopApplication, one decision at a time: which instances to kill and how
//! many to launch so the app gets to its target count.
//!
//! Marathon's sources: `core/deployment/ScalingProposition.scala` (who dies and how many start),
//! `core/deployment/impl/DeploymentActor.scala` (`scaleRunnable` kills first and waits for the
//! kills, then starts; `stopRunnable`), `TaskStartActor`/`StartingBehavior` (a scale-up is
//! complete when the instances it started are healthy and ready).
//!
//! The functions are pure and idempotent: called again on the view that results from applying
//! a decision (killed instances doomed, launches showing up as Scheduled instances), they answer
//! "nothing more to do".

use std::collections::BTreeSet;

use crate::ids::InstanceId;

use super::view::{Decision, InstanceView, KillList, KillSelection, sort_for_kill};

/// The next move of a ScaleApplication to `target` instances.
///
/// - Kills: the alive instances named in `to_kill` (kill-and-scale), then, while more than
///   `target` instances are alive, the surplus in kill order: unreachable, not yet launched,
///   Staging, Starting, unhealthy, not yet healthy or ready, serving; equal ones by
///   `kill_selection`. As in Marathon, the number killed is
///   `max(alive − target, alive ∩ to_kill)`.
/// - Launches: `target − instances holding a slot` (after this decision's kills). Instances being
///   killed keep their slot until they end (except never-launched Scheduled ones), so replacements start only once the kills are through (Marathon kills first, then
///   starts). Unreachable instances hold their slot; UnreachableInactive ones do not, so they are
///   replaced but left alone.
/// - Done: nothing to kill or launch, exactly `target` instances hold slots and all of them are
///   serving (Running, healthy, ready). This is slightly stricter than Marathon, whose scale step
///   only waits for the instances it started itself.
pub fn scale_decision(target: u32, instances: &[InstanceView], to_kill: &[InstanceId], kill_selection: KillSelection) -> Decision {
    let target_count = usize::try_from(target).unwrap_or(usize::MAX);
    let sentenced: BTreeSet<&InstanceId> = to_kill.iter().collect();
    let mut named: Vec<&InstanceView> = Vec::new();
    let mut others: Vec<&InstanceView> = Vec::new();
    for v in instances.iter().filter(|v| v.is_alive()) {
        if sentenced.contains(&v.id) { named.push(v) } else { others.push(v) }
    }
    let alive = named.len() + others.len();
    let decommission = alive.saturating_sub(target_count).max(named.len());
    named.sort_by(|a, b| a.id.cmp(&b.id));
    sort_for_kill(&mut others, kill_selection);

    let mut kill = KillList::default();
    for v in named.iter().chain(others.iter()) {
        if kill.len() >= decommission {
            break;
        }
        kill.push(&v.id);
    }

    let occupied = instances.iter().filter(|v| v.holds_slot_after(&kill)).count();
    let launch = u32::try_from(target_count.saturating_sub(occupied)).unwrap_or(target);
    let done = kill.is_empty()
        && launch == 0
        && occupied == target_count
        && instances.iter().filter(|v| v.holds_slot()).all(InstanceView::is_serving);
    Decision { kill: kill.into_ids(), launch, done }
}

/// The next move of a StopApplication: kill every instance not already on its way out
/// (UnreachableInactive ones included, so they are decommissioned), launch nothing; done once no
/// instance holds a slot.
pub fn stop_decision(instances: &[InstanceView]) -> Decision {
    let mut kill = KillList::default();
    for v in instances.iter().filter(|v| v.is_killable()) {
        kill.push(&v.id);
    }
    let done = kill.is_empty() && !instances.iter().any(InstanceView::holds_slot);
    Decision { kill: kill.into_ids(), launch: 0, done }
}

#[cfg(test)]
mod tests {
    use super::super::view::fixtures::*;
    use super::*;
    use crate::ids::Timestamp;
    use crate::instance::{Condition, Goal};

    fn kill_ids(d: &Decision) -> Vec<InstanceId> {
        d.kill.clone()
    }

    #[test]
    fn scale_up_launches_the_missing_instances() {
        let views = vec![running(1, true), running(2, true)];
        let d = scale_decision(5, &views, &[], KillSelection::YoungestFirst);
        assert_eq!(d, Decision { kill: vec![], launch: 3, done: false });
        // Launches in flight count: nothing more is asked for.
        let mut more = views.clone();
        more.extend((3..6).map(|n| with(running(n, true), Condition::Scheduled)));
        assert_eq!(scale_decision(5, &more, &[], KillSelection::YoungestFirst), Decision::default());
    }

    #[test]
    fn scale_down_kills_surplus_not_serving_first_then_by_selection() {
        let mut unhealthy = running(2, true);
        unhealthy.healthy = Some(false);
        let views = vec![running(1, true), unhealthy, running(3, true), running(4, true)];
        let d = scale_decision(2, &views, &[], KillSelection::YoungestFirst);
        assert_eq!(kill_ids(&d), vec![id(2), id(4)]);
        assert_eq!(d.launch, 0);
        assert!(!d.done);
        let d = scale_decision(2, &views, &[], KillSelection::OldestFirst);
        assert_eq!(kill_ids(&d), vec![id(2), id(1)]);
    }

    #[test]
    fn explicit_to_kill_goes_first_and_can_exceed_the_surplus() {
        let views: Vec<_> = (1..=5).map(|n| running(n, true)).collect();
        // Kill-and-scale: 5 → 4 killing instance 1.
        let d = scale_decision(4, &views, &[id(1)], KillSelection::YoungestFirst);
        assert_eq!(kill_ids(&d), vec![id(1)]);
        // Two named but only one fewer: both die, and one replacement comes once they ended.
        let d = scale_decision(4, &views, &[id(1), id(2)], KillSelection::YoungestFirst);
        assert_eq!(kill_ids(&d), vec![id(1), id(2)]);
        assert_eq!(d.launch, 0);
        let mut after: Vec<_> = views.clone();
        after.retain(|v| v.id != id(1) && v.id != id(2));
        let d = scale_decision(4, &after, &[id(1), id(2)], KillSelection::YoungestFirst);
        assert_eq!(d, Decision { kill: vec![], launch: 1, done: false });
        // Unknown ids in to_kill are ignored.
        let d = scale_decision(5, &views, &[id(99)], KillSelection::YoungestFirst);
        assert_eq!(d, Decision { kill: vec![], launch: 0, done: true });
    }

    #[test]
    fn kills_in_progress_hold_their_slots_and_are_not_repeated() {
        let mut views: Vec<_> = (1..=3).map(|n| running(n, true)).collect();
        views[2].goal = Goal::Decommissioned;
        views[2].condition = Condition::Killing;
        let d = scale_decision(2, &views, &[], KillSelection::YoungestFirst);
        assert_eq!(d, Decision { kill: vec![], launch: 0, done: false });
        views.pop();
        assert!(scale_decision(2, &views, &[], KillSelection::YoungestFirst).done);
    }

    #[test]
    fn done_waits_for_health_and_readiness() {
        let mut v = running(1, true);
        v.has_health_checks = true;
        assert!(!scale_decision(1, &[v.clone()], &[], KillSelection::YoungestFirst).done);
        v.healthy = Some(true);
        assert!(scale_decision(1, &[v.clone()], &[], KillSelection::YoungestFirst).done);
        v.ready = false;
        assert!(!scale_decision(1, &[v], &[], KillSelection::YoungestFirst).done);
        assert!(scale_decision(0, &[], &[], KillSelection::YoungestFirst).done);
    }

    #[test]
    fn unreachable_inactive_instances_are_replaced_but_not_killed() {
        let views = vec![running(1, true), with(running(2, true), Condition::UnreachableInactive)];
        let d = scale_decision(2, &views, &[], KillSelection::YoungestFirst);
        assert_eq!(d, Decision { kill: vec![], launch: 1, done: false });
        // Plain Unreachable keeps its slot: no replacement yet.
        let views = vec![running(1, true), with(running(2, true), Condition::Unreachable)];
        assert_eq!(scale_decision(2, &views, &[], KillSelection::YoungestFirst).launch, 0);
    }

    #[test]
    fn stop_kills_everything_once_and_waits_for_the_end() {
        let mut killing = running(3, true);
        killing.goal = Goal::Decommissioned;
        killing.condition = Condition::Killing;
        let views = vec![
            running(1, true),
            with(running(2, false), Condition::UnreachableInactive),
            killing,
            with(running(4, true), Condition::Finished),
        ];
        let d = stop_decision(&views);
        assert_eq!(kill_ids(&d), vec![id(1), id(2)]);
        assert!(!d.done && d.launch == 0);
        let mut dying = running(1, true);
        dying.goal = Goal::Decommissioned;
        assert!(!stop_decision(&[dying]).done);
        let mut inactive = with(running(2, false), Condition::UnreachableInactive);
        inactive.goal = Goal::Decommissioned;
        assert!(stop_decision(&[inactive]).done);
        assert!(stop_decision(&[]).done);
    }

    #[test]
    fn duplicate_ids_are_killed_once() {
        let mut a = running(1, true);
        a.staged_at = Timestamp(5);
        let views = vec![a.clone(), a, running(2, true)];
        let d = stop_decision(&views);
        assert_eq!(kill_ids(&d), vec![id(1), id(2)]);
    }
}
