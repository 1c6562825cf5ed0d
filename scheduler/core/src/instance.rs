//! Instance conditions and goals, the mapping from Mesos task states, and the transition rule
//! that keeps stale or out-of-order status updates from moving an instance backwards.
//!
//! Marathon's sources: `core/condition/Condition.scala` (the conditions and their classes),
//! `core/task/TaskCondition.scala` with `core/task/state/TaskConditionMapping.scala` (Mesos state
//! → condition, TASK_LOST by reason), `core/instance/Goal.scala`, `docs/docs/task-handling.md`.
//!
//! This module holds plain data and pure functions: no clock, no I/O, no serialization.

use mesos_proto::v1::TaskState;
use mesos_proto::v1::task_status::Reason;

/// Where an instance stands, as Marathon reports it (`condition` in instance JSON, `state` as the
/// Mesos name in task JSON).
///
/// Two conditions are Marathon's own (Mesos has never heard of the task): [`Condition::Scheduled`]
/// and [`Condition::Provisioned`]. [`Condition::UnreachableInactive`] is Unreachable after the
/// app's `unreachableStrategy.inactiveAfterSeconds`. Marathon's `Reserved` and `Created` (resident
/// apps and a per-task detail) are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// Waiting for an offer; Mesos knows nothing about it.
    Scheduled,
    /// An offer was accepted for it, but Mesos has not reported the task yet.
    Provisioned,
    /// The master received the launch but the task has not started (TASK_STAGING).
    Staging,
    /// The executor is starting the task (TASK_STARTING).
    Starting,
    /// The task runs (TASK_RUNNING).
    Running,
    /// A kill was received and is in progress (TASK_KILLING).
    Killing,
    /// The task exited successfully (TASK_FINISHED). Terminal.
    Finished,
    /// The task exited with an error (TASK_FAILED). Terminal.
    Failed,
    /// The task was killed (TASK_KILLED). Terminal.
    Killed,
    /// The task description was invalid (TASK_ERROR). Terminal.
    Error,
    /// The launch failed for a transient reason (TASK_DROPPED). Terminal.
    Dropped,
    /// The agent the task ran on is gone (TASK_GONE, TASK_GONE_BY_OPERATOR). Terminal.
    Gone,
    /// The agent lost contact with the master; the task may still run (TASK_UNREACHABLE).
    Unreachable,
    /// Unreachable for longer than `inactiveAfterSeconds`: a replacement is launched, but this
    /// instance is not killed yet.
    UnreachableInactive,
    /// The master does not know the task (TASK_UNKNOWN). Terminal for Marathon.
    Unknown,
}

impl Condition {
    /// Every condition, in declaration order.
    pub const ALL: [Condition; 15] = [
        Condition::Scheduled,
        Condition::Provisioned,
        Condition::Staging,
        Condition::Starting,
        Condition::Running,
        Condition::Killing,
        Condition::Finished,
        Condition::Failed,
        Condition::Killed,
        Condition::Error,
        Condition::Dropped,
        Condition::Gone,
        Condition::Unreachable,
        Condition::UnreachableInactive,
        Condition::Unknown,
    ];

    /// Marathon's JSON string for the condition (`"Running"`, `"UnreachableInactive"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Condition::Scheduled => "Scheduled",
            Condition::Provisioned => "Provisioned",
            Condition::Staging => "Staging",
            Condition::Starting => "Starting",
            Condition::Running => "Running",
            Condition::Killing => "Killing",
            Condition::Finished => "Finished",
            Condition::Failed => "Failed",
            Condition::Killed => "Killed",
            Condition::Error => "Error",
            Condition::Dropped => "Dropped",
            Condition::Gone => "Gone",
            Condition::Unreachable => "Unreachable",
            Condition::UnreachableInactive => "UnreachableInactive",
            Condition::Unknown => "Unknown",
        }
    }

    /// Reads a condition from its name, ignoring case as Marathon does; `None` for other text.
    pub fn from_name(name: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The Mesos state name written as `state` in task JSON.
    ///
    /// As Marathon's `Condition.toMesosTaskStateOrStaging`: the conditions Mesos has no state for
    /// (Scheduled, Provisioned) read `TASK_STAGING`, and UnreachableInactive reads
    /// `TASK_UNREACHABLE`.
    pub fn mesos_state_name(self) -> &'static str {
        match self {
            Condition::Scheduled | Condition::Provisioned | Condition::Staging => "TASK_STAGING",
            Condition::Starting => "TASK_STARTING",
            Condition::Running => "TASK_RUNNING",
            Condition::Killing => "TASK_KILLING",
            Condition::Finished => "TASK_FINISHED",
            Condition::Failed => "TASK_FAILED",
            Condition::Killed => "TASK_KILLED",
            Condition::Error => "TASK_ERROR",
            Condition::Dropped => "TASK_DROPPED",
            Condition::Gone => "TASK_GONE",
            Condition::Unreachable | Condition::UnreachableInactive => "TASK_UNREACHABLE",
            Condition::Unknown => "TASK_UNKNOWN",
        }
    }

    /// Whether the task is over: Finished, Failed, Killed, Error, Dropped, Gone, Unknown
    /// (Marathon's `Condition.Terminal`). A terminal instance is expunged, and replaced when its
    /// goal is still Running.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Condition::Finished
                | Condition::Failed
                | Condition::Killed
                | Condition::Error
                | Condition::Dropped
                | Condition::Gone
                | Condition::Unknown
        )
    }

    /// Whether the instance counts as running for the app (Marathon's `Condition.Active`):
    /// Provisioned, Staging, Starting, Running, Killing, Unreachable.
    ///
    /// Scheduled is not active (nothing runs yet) and neither is UnreachableInactive (its
    /// replacement takes its place). Deployment decisions count Scheduled instances as launches
    /// in flight separately (see [`Condition::holds_slot`]).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Condition::Provisioned
                | Condition::Staging
                | Condition::Starting
                | Condition::Running
                | Condition::Killing
                | Condition::Unreachable
        )
    }

    /// Whether the instance takes one of the app's `instances` slots while a deployment counts:
    /// every non-terminal condition except UnreachableInactive. Unlike [`Condition::is_active`]
    /// this includes Scheduled, so launches already asked for are not asked for twice.
    pub fn holds_slot(self) -> bool {
        !self.is_terminal() && self != Condition::UnreachableInactive
    }

    /// Whether Mesos lost track of the task (Marathon's `isLost`): Gone, Unreachable, Unknown,
    /// Dropped. UnreachableInactive is not included, as in Marathon.
    pub fn is_lost(self) -> bool {
        matches!(self, Condition::Gone | Condition::Unreachable | Condition::Unknown | Condition::Dropped)
    }

    /// The position along a launch's normal course, for the conditions that have one:
    /// Scheduled < Provisioned < Staging < Starting < Running < Killing.
    fn progress(self) -> Option<u8> {
        match self {
            Condition::Scheduled => Some(0),
            Condition::Provisioned => Some(1),
            Condition::Staging => Some(2),
            Condition::Starting => Some(3),
            Condition::Running => Some(4),
            Condition::Killing => Some(5),
            _ => None,
        }
    }
}

/// What the scheduler wants for an instance (Marathon's `Goal`). Scale-downs, deletes and
/// upgrades first change the goal and then kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Goal {
    /// Keep it running: relaunch it when its task ends.
    Running,
    /// Stop it but keep its reservation (resident apps) or its record (app being stopped).
    Stopped,
    /// Kill it and forget it.
    Decommissioned,
}

impl Goal {
    /// Marathon's JSON string for the goal.
    pub fn name(self) -> &'static str {
        match self {
            Goal::Running => "Running",
            Goal::Stopped => "Stopped",
            Goal::Decommissioned => "Decommissioned",
        }
    }

    /// Whether the goal is to end the instance (Stopped or Decommissioned).
    pub fn is_terminal(self) -> bool {
        self != Goal::Running
    }
}

/// Reasons for which a TASK_LOST task might come back (Marathon's
/// `TaskConditionMapping.Unreachable`). A reconciliation answer hides the original reason, so
/// it is treated as "might come back" too.
fn lost_might_come_back(reason: Reason) -> bool {
    matches!(reason, Reason::Reconciliation | Reason::AgentDisconnected | Reason::AgentRemoved)
}

/// The start of the message Mesos sends when reconciliation finds no such task.
const RECONCILIATION_UNKNOWN_MESSAGE: &str = "Reconciliation: Task is unknown to the";

/// The condition a Mesos status update puts an instance in, as Marathon's `TaskCondition` maps it.
///
/// Every Mesos state maps to its condition (TASK_GONE_BY_OPERATOR to Gone). TASK_LOST, which
/// Marathon never reports, is read by its reason (`TaskConditionMapping`):
/// - `REASON_TASK_UNKNOWN` → Unknown;
/// - `REASON_RECONCILIATION`, `REASON_AGENT_DISCONNECTED`, `REASON_AGENT_REMOVED` → Unreachable;
/// - any other reason → Gone. A missing reason reads as the proto default
///   (`REASON_COMMAND_EXECUTOR_FAILED`), so it is Gone as well.
///
/// Use [`condition_from_status`] when the status message is at hand: it also recognizes the
/// reconciliation message for unknown tasks.
pub fn condition_from_mesos(state: TaskState, reason: Option<Reason>) -> Condition {
    condition_from_status(state, reason, "")
}

/// Like [`condition_from_mesos`], also reading the status message: a TASK_LOST whose message
/// starts with "Reconciliation: Task is unknown to the" is Unknown whatever its reason.
pub fn condition_from_status(state: TaskState, reason: Option<Reason>, message: &str) -> Condition {
    match state {
        TaskState::TaskStaging => Condition::Staging,
        TaskState::TaskStarting => Condition::Starting,
        TaskState::TaskRunning => Condition::Running,
        TaskState::TaskKilling => Condition::Killing,
        TaskState::TaskFinished => Condition::Finished,
        TaskState::TaskFailed => Condition::Failed,
        TaskState::TaskKilled => Condition::Killed,
        TaskState::TaskError => Condition::Error,
        TaskState::TaskDropped => Condition::Dropped,
        TaskState::TaskGone | TaskState::TaskGoneByOperator => Condition::Gone,
        TaskState::TaskUnreachable => Condition::Unreachable,
        TaskState::TaskUnknown => Condition::Unknown,
        TaskState::TaskLost => {
            let reason = reason.unwrap_or(Reason::CommandExecutorFailed);
            if message.starts_with(RECONCILIATION_UNKNOWN_MESSAGE) || reason == Reason::TaskUnknown {
                Condition::Unknown
            } else if lost_might_come_back(reason) {
                Condition::Unreachable
            } else {
                Condition::Gone
            }
        }
    }
}

/// The condition an instance moves to when an update reports `update` while it is in `current`;
/// `None` when the update must be ignored as stale or out of order.
///
/// The rules, in order:
/// 1. A terminal instance stays terminal: every update is refused (it was or will be expunged;
///    a late RUNNING must not revive it).
/// 2. A repeated condition is accepted unchanged (`Some(current)`), so the caller still takes
///    the update's other fields, such as a health result carried by TASK_RUNNING.
/// 3. A terminal update is always accepted: a task can end from any live condition.
/// 4. Unreachable is accepted from any launched condition (Provisioned through Killing).
///    UnreachableInactive is only reached from Unreachable (the scheduler decides it when
///    `inactiveAfterSeconds` pass), and a further TASK_UNREACHABLE leaves it inactive.
/// 5. From Unreachable or UnreachableInactive the task may come back: Staging, Starting, Running
///    and Killing are accepted.
/// 6. Otherwise the update must move forward along Scheduled → Provisioned → Staging → Starting
///    → Running → Killing; a step back (RUNNING after KILLING, STAGING after RUNNING) is stale.
pub fn next_condition(current: Condition, update: Condition) -> Option<Condition> {
    use Condition::{Killing, Provisioned, Running, Staging, Starting, Unreachable, UnreachableInactive};
    if current.is_terminal() {
        return None;
    }
    if current == update {
        return Some(current);
    }
    if update.is_terminal() {
        return Some(update);
    }
    match (current, update) {
        (UnreachableInactive, Unreachable) => Some(UnreachableInactive),
        (Unreachable, UnreachableInactive) => Some(UnreachableInactive),
        (_, UnreachableInactive) => None,
        (Provisioned | Staging | Starting | Running | Killing, Unreachable) => Some(Unreachable),
        (_, Unreachable) => None,
        (Unreachable | UnreachableInactive, Staging | Starting | Running | Killing) => Some(update),
        (Unreachable | UnreachableInactive, _) => None,
        _ => match (current.progress(), update.progress()) {
            (Some(from), Some(to)) if to > from => Some(update),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_marathon() {
        assert_eq!(Condition::UnreachableInactive.name(), "UnreachableInactive");
        assert_eq!(Condition::Running.mesos_state_name(), "TASK_RUNNING");
        assert_eq!(Condition::Scheduled.mesos_state_name(), "TASK_STAGING");
        assert_eq!(Condition::Provisioned.mesos_state_name(), "TASK_STAGING");
        assert_eq!(Condition::UnreachableInactive.mesos_state_name(), "TASK_UNREACHABLE");
        for c in Condition::ALL {
            assert_eq!(Condition::from_name(c.name()), Some(c));
            assert_eq!(Condition::from_name(&c.name().to_lowercase()), Some(c));
            assert!(c.mesos_state_name().starts_with("TASK_"));
        }
        assert_eq!(Condition::from_name("Lost"), None);
        assert_eq!(Goal::Decommissioned.name(), "Decommissioned");
        assert!(Goal::Stopped.is_terminal() && !Goal::Running.is_terminal());
    }

    #[test]
    fn condition_classes_follow_marathon() {
        let terminal: Vec<_> = Condition::ALL.into_iter().filter(|c| c.is_terminal()).collect();
        use Condition::*;
        assert_eq!(terminal, vec![Finished, Failed, Killed, Error, Dropped, Gone, Unknown]);
        let active: Vec<_> = Condition::ALL.into_iter().filter(|c| c.is_active()).collect();
        assert_eq!(active, vec![Provisioned, Staging, Starting, Running, Killing, Unreachable]);
        let lost: Vec<_> = Condition::ALL.into_iter().filter(|c| c.is_lost()).collect();
        assert_eq!(lost, vec![Dropped, Gone, Unreachable, Unknown]);
        assert!(Scheduled.holds_slot() && Killing.holds_slot() && Unreachable.holds_slot());
        assert!(!UnreachableInactive.holds_slot() && !Killed.holds_slot());
    }

    #[test]
    fn mesos_states_map_to_conditions() {
        let cases = [
            (TaskState::TaskStaging, Condition::Staging),
            (TaskState::TaskStarting, Condition::Starting),
            (TaskState::TaskRunning, Condition::Running),
            (TaskState::TaskKilling, Condition::Killing),
            (TaskState::TaskFinished, Condition::Finished),
            (TaskState::TaskFailed, Condition::Failed),
            (TaskState::TaskKilled, Condition::Killed),
            (TaskState::TaskError, Condition::Error),
            (TaskState::TaskDropped, Condition::Dropped),
            (TaskState::TaskGone, Condition::Gone),
            (TaskState::TaskGoneByOperator, Condition::Gone),
            (TaskState::TaskUnreachable, Condition::Unreachable),
            (TaskState::TaskUnknown, Condition::Unknown),
        ];
        for (state, condition) in cases {
            assert_eq!(condition_from_mesos(state, None), condition, "{state:?}");
            assert_eq!(condition_from_mesos(state, Some(Reason::TaskUnknown)), condition, "{state:?}");
        }
    }

    #[test]
    fn task_lost_is_read_by_reason() {
        let lost = |reason| condition_from_mesos(TaskState::TaskLost, reason);
        assert_eq!(lost(Some(Reason::TaskUnknown)), Condition::Unknown);
        assert_eq!(lost(Some(Reason::Reconciliation)), Condition::Unreachable);
        assert_eq!(lost(Some(Reason::AgentDisconnected)), Condition::Unreachable);
        assert_eq!(lost(Some(Reason::AgentRemoved)), Condition::Unreachable);
        assert_eq!(lost(Some(Reason::AgentRestarted)), Condition::Gone);
        assert_eq!(lost(Some(Reason::AgentUnknown)), Condition::Gone);
        assert_eq!(lost(Some(Reason::InvalidOffers)), Condition::Gone);
        assert_eq!(lost(Some(Reason::ExecutorTerminated)), Condition::Gone);
        assert_eq!(lost(None), Condition::Gone);
        let unknown_msg = "Reconciliation: Task is unknown to the agent";
        assert_eq!(condition_from_status(TaskState::TaskLost, Some(Reason::Reconciliation), unknown_msg), Condition::Unknown);
        assert_eq!(condition_from_status(TaskState::TaskRunning, None, unknown_msg), Condition::Running);
    }

    #[test]
    fn transitions_refuse_stale_updates() {
        use Condition::*;
        assert_eq!(next_condition(Staging, Running), Some(Running));
        assert_eq!(next_condition(Scheduled, Running), Some(Running));
        assert_eq!(next_condition(Running, Running), Some(Running));
        assert_eq!(next_condition(Running, Staging), None);
        assert_eq!(next_condition(Killing, Running), None);
        assert_eq!(next_condition(Running, Killing), Some(Killing));
        assert_eq!(next_condition(Running, Failed), Some(Failed));
        assert_eq!(next_condition(Scheduled, Killed), Some(Killed));
        assert_eq!(next_condition(Killed, Running), None);
        assert_eq!(next_condition(Killed, Killed), None);
        assert_eq!(next_condition(Finished, Failed), None);
        assert_eq!(next_condition(Running, Unreachable), Some(Unreachable));
        assert_eq!(next_condition(Scheduled, Unreachable), None);
        assert_eq!(next_condition(Unreachable, Running), Some(Running));
        assert_eq!(next_condition(Unreachable, UnreachableInactive), Some(UnreachableInactive));
        assert_eq!(next_condition(Running, UnreachableInactive), None);
        assert_eq!(next_condition(UnreachableInactive, Unreachable), Some(UnreachableInactive));
        assert_eq!(next_condition(UnreachableInactive, Running), Some(Running));
        assert_eq!(next_condition(UnreachableInactive, Gone), Some(Gone));
        assert_eq!(next_condition(Unreachable, Scheduled), None);
        assert_eq!(next_condition(Running, Scheduled), None);
        assert_eq!(next_condition(Running, Provisioned), None);
    }

    #[test]
    fn transitions_never_leave_terminal_and_are_total() {
        for current in Condition::ALL {
            for update in Condition::ALL {
                let next = next_condition(current, update);
                if current.is_terminal() {
                    assert_eq!(next, None);
                }
                if let Some(n) = next {
                    assert!(n == update || n == current, "{current:?} + {update:?} -> {n:?}");
                }
            }
        }
    }
}
