//! What a step decision sees of one app's instances ([`InstanceView`]), what it answers
//! ([`Decision`]), and the order in which surplus instances are chosen for killing.
//!
//! The words used by the decisions, defined once here:
//! - *gone*: terminal, or still Scheduled after its goal became terminal (never launched, nothing
//!   to wait for);
//! - *holds a slot*: not gone and not UnreachableInactive. Launches in flight (Scheduled,
//!   Provisioned, Staging…) and instances being killed hold slots until they end;
//! - *doomed*: its goal is no longer Running, or it is Killing. Doomed instances are never killed
//!   again, which keeps decisions idempotent;
//! - *alive*: holds a slot and is not doomed;
//! - *serving*: alive, Running, healthy (`healthy == Some(true)` with health checks, else not
//!   `Some(false)`) and ready.

use std::collections::BTreeSet;

use crate::ids::{InstanceId, Timestamp};
use crate::instance::{Condition, Goal};

/// One instance of the app a decision is about, as the shell sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// The instance.
    pub id: InstanceId,
    /// Whether it runs the target config version (the app's current `config_key`).
    pub config_key_current: bool,
    /// Its condition.
    pub condition: Condition,
    /// The latest health result; `None` without health checks or while unknown.
    pub healthy: Option<bool>,
    /// Whether the app defines health checks.
    pub has_health_checks: bool,
    /// Whether its readiness checks passed (`true` when the app has none).
    pub ready: bool,
    /// What the scheduler wants for it.
    pub goal: Goal,
    /// When its task was staged (for Scheduled instances: when it was scheduled).
    pub staged_at: Timestamp,
}

impl InstanceView {
    /// Terminal, or Scheduled with a terminal goal (it never launched, so nothing remains).
    pub fn is_gone(&self) -> bool {
        self.condition.is_terminal() || (self.condition == Condition::Scheduled && self.goal.is_terminal())
    }

    /// Whether it takes one of the app's slots: not gone and not UnreachableInactive.
    pub fn holds_slot(&self) -> bool {
        !self.is_gone() && self.condition != Condition::UnreachableInactive
    }

    /// Whether it still holds a slot once the kills in `kill` are applied: a Scheduled instance
    /// being killed never launched, so it is gone at once; any other keeps its slot until it ends.
    pub(crate) fn holds_slot_after(&self, kill: &KillList) -> bool {
        self.holds_slot() && !(self.condition == Condition::Scheduled && kill.contains(&self.id))
    }

    /// Whether it is already on its way out: its goal is not Running, or it is Killing.
    pub fn is_doomed(&self) -> bool {
        self.goal != Goal::Running || self.condition == Condition::Killing
    }

    /// Holds a slot and is not doomed.
    pub fn is_alive(&self) -> bool {
        self.holds_slot() && !self.is_doomed()
    }

    /// Whether a decision may still kill it: not gone and not doomed.
    pub fn is_killable(&self) -> bool {
        !self.is_gone() && !self.is_doomed()
    }

    /// Its health passes: `Some(true)` when the app has health checks, anything but
    /// `Some(false)` when it has none (Marathon: without health checks, running is healthy).
    pub fn health_ok(&self) -> bool {
        if self.has_health_checks { self.healthy == Some(true) } else { self.healthy != Some(false) }
    }

    /// Alive, Running, healthy and ready: it counts toward a finished step.
    pub fn is_serving(&self) -> bool {
        self.is_alive() && self.condition == Condition::Running && self.health_ok() && self.ready
    }
}

/// What to do next for one app: kill these, launch that many more, or nothing because the
/// action is complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Instances to kill now (set their goal, then kill their tasks); never one already doomed.
    pub kill: Vec<InstanceId>,
    /// New instances to schedule now.
    pub launch: u32,
    /// Whether the action is complete: nothing to kill or launch, and the app is as wanted.
    pub done: bool,
}

/// Which instances die first on scale-down when they are otherwise alike (`killSelection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KillSelection {
    /// The most recently staged first (Marathon's default).
    #[default]
    YoungestFirst,
    /// The earliest staged first.
    OldestFirst,
}

impl KillSelection {
    /// Marathon's JSON string (`YOUNGEST_FIRST`, `OLDEST_FIRST`).
    pub fn name(self) -> &'static str {
        match self {
            KillSelection::YoungestFirst => "YOUNGEST_FIRST",
            KillSelection::OldestFirst => "OLDEST_FIRST",
        }
    }

    /// Reads Marathon's JSON string; `None` for anything else.
    pub fn from_name(name: &str) -> Option<KillSelection> {
        match name {
            "YOUNGEST_FIRST" => Some(KillSelection::YoungestFirst),
            "OLDEST_FIRST" => Some(KillSelection::OldestFirst),
            _ => None,
        }
    }
}

/// How early an instance is chosen for killing, lowest first: unreachable, not launched yet,
/// Staging, Starting, unhealthy, health unknown or not ready, then serving ones. This extends
/// Marathon's `ScalingProposition.sortByConditionAndDate` (Unreachable < Staging < Starting <
/// Running) with health and with Scheduled/Provisioned, which nothing runs for yet.
fn kill_rank(v: &InstanceView) -> u8 {
    match v.condition {
        Condition::Unreachable | Condition::UnreachableInactive => 0,
        Condition::Scheduled | Condition::Provisioned => 1,
        Condition::Staging => 2,
        Condition::Starting => 3,
        Condition::Running if v.healthy == Some(false) => 4,
        Condition::Running if !(v.health_ok() && v.ready) => 5,
        Condition::Running => 6,
        _ => 7,
    }
}

/// Sorts `candidates` into kill order: by [`kill_rank`], then by `selection` on `staged_at`,
/// then by id so the order is total and decisions are repeatable.
pub(crate) fn sort_for_kill(candidates: &mut [&InstanceView], selection: KillSelection) {
    candidates.sort_by(|a, b| {
        let by_age = match selection {
            KillSelection::YoungestFirst => b.staged_at.cmp(&a.staged_at),
            KillSelection::OldestFirst => a.staged_at.cmp(&b.staged_at),
        };
        kill_rank(a).cmp(&kill_rank(b)).then(by_age).then_with(|| a.id.cmp(&b.id))
    });
}

/// The instances a decision kills, without duplicates (a view may list an id twice).
#[derive(Debug, Default)]
pub(crate) struct KillList {
    ids: Vec<InstanceId>,
    seen: BTreeSet<InstanceId>,
}

impl KillList {
    /// Adds `id`; `false` when it was already there.
    pub(crate) fn push(&mut self, id: &InstanceId) -> bool {
        if self.seen.insert(id.clone()) {
            self.ids.push(id.clone());
            true
        } else {
            false
        }
    }

    /// Whether `id` is on the list.
    pub(crate) fn contains(&self, id: &InstanceId) -> bool {
        self.seen.contains(id)
    }

    /// How many are to be killed.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is to be killed.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, in the order they were chosen.
    pub(crate) fn into_ids(self) -> Vec<InstanceId> {
        self.ids
    }
}

/// Test helpers shared by the decision tests and the simulations.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::ids::AppId;

    /// An instance id numbered `n`.
    pub(crate) fn id(n: u32) -> InstanceId {
        let app = AppId::parse("/app").unwrap_or_default();
        InstanceId::new(&app, &format!("{n:08}"))
    }

    /// A view of instance `n`: Running, healthy, ready, goal Running, staged at `n` seconds.
    pub(crate) fn running(n: u32, current: bool) -> InstanceView {
        InstanceView {
            id: id(n),
            config_key_current: current,
            condition: Condition::Running,
            healthy: None,
            has_health_checks: false,
            ready: true,
            goal: Goal::Running,
            staged_at: Timestamp(i64::from(n) * 1000),
        }
    }

    /// The same view in condition `c`.
    pub(crate) fn with(mut v: InstanceView, c: Condition) -> InstanceView {
        v.condition = c;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn predicates_follow_the_definitions() {
        let r = running(1, true);
        assert!(r.holds_slot() && r.is_alive() && r.is_serving() && r.is_killable());
        let killing = with(running(2, true), Condition::Killing);
        assert!(killing.holds_slot() && killing.is_doomed() && !killing.is_alive() && !killing.is_killable());
        let mut decommissioned = running(3, true);
        decommissioned.goal = Goal::Decommissioned;
        assert!(decommissioned.holds_slot() && !decommissioned.is_alive());
        let mut never_launched = with(running(4, true), Condition::Scheduled);
        never_launched.goal = Goal::Decommissioned;
        assert!(never_launched.is_gone() && !never_launched.holds_slot());
        let inactive = with(running(5, false), Condition::UnreachableInactive);
        assert!(!inactive.holds_slot() && inactive.is_killable());
        let mut unknown = running(6, true);
        unknown.has_health_checks = true;
        assert!(!unknown.is_serving());
        unknown.healthy = Some(true);
        assert!(unknown.is_serving());
        unknown.ready = false;
        assert!(!unknown.is_serving());
    }

    #[test]
    fn kill_order_prefers_not_serving_then_age() {
        let mut unhealthy = running(1, true);
        unhealthy.healthy = Some(false);
        let views = [
            running(10, true),
            running(20, true),
            with(running(3, true), Condition::Staging),
            with(running(4, true), Condition::Scheduled),
            with(running(5, true), Condition::Unreachable),
            unhealthy,
        ];
        let mut young: Vec<&InstanceView> = views.iter().collect();
        sort_for_kill(&mut young, KillSelection::YoungestFirst);
        let order: Vec<_> = young.iter().map(|v| v.id.clone()).collect();
        assert_eq!(order, vec![id(5), id(4), id(3), id(1), id(20), id(10)]);
        let mut old: Vec<&InstanceView> = views.iter().collect();
        sort_for_kill(&mut old, KillSelection::OldestFirst);
        assert_eq!(old[4].id, id(10));
        assert_eq!(KillSelection::from_name(KillSelection::OldestFirst.name()), Some(KillSelection::OldestFirst));
        assert_eq!(KillSelection::from_name("oldest"), None);
    }
}
