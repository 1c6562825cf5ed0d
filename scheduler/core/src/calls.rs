//! Typed constructors of the scheduler's Mesos calls (ACCEPT, DECLINE, KILL, RECONCILE,
//! ACKNOWLEDGE, REVIVE, SUPPRESS), so that each is built one way, with the fields Mesos's
//! `scheduler.proto` asks for. The framework id is not set here: the client that posts a call
//! fills it in from its subscription.

use mesos_proto::v1::scheduler::{Call, call};
use mesos_proto::v1::{self, Filters};

/// A task to reconcile: its id, and its agent when known (Mesos answers faster with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The task id.
    pub task: String,
    /// The agent id, empty when unknown.
    pub agent: String,
}

fn agent(id: &str) -> Option<v1::AgentId> {
    (!id.is_empty()).then(|| v1::AgentId { value: id.to_string() })
}

/// ACCEPT of one offer with one LAUNCH of `task_infos`; what the offer has left is refused for
/// `refuse_seconds`.
pub fn accept_launch(offer: v1::OfferId, task_infos: Vec<v1::TaskInfo>, refuse_seconds: f64) -> Call {
    Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer],
            operations: vec![v1::offer::Operation {
                r#type: Some(v1::offer::operation::Type::Launch as i32),
                launch: Some(v1::offer::operation::Launch { task_infos }),
                ..Default::default()
            }],
            filters: Some(Filters { refuse_seconds: Some(refuse_seconds) }),
        }),
        ..Default::default()
    }
}

/// DECLINE of `offers`, refused for `refuse_seconds`.
pub fn decline(offer_ids: Vec<v1::OfferId>, refuse_seconds: f64) -> Call {
    Call {
        r#type: Some(call::Type::Decline as i32),
        decline: Some(call::Decline { offer_ids, filters: Some(Filters { refuse_seconds: Some(refuse_seconds) }) }),
        ..Default::default()
    }
}

/// KILL of a task (on `agent`, when known), with a kill policy when a grace period is given
/// (whole seconds, Marathon's `taskKillGracePeriodSeconds`).
pub fn kill(task: &str, agent_id: &str, grace_seconds: Option<u32>) -> Call {
    Call {
        r#type: Some(call::Type::Kill as i32),
        kill: Some(call::Kill {
            task_id: v1::TaskId { value: task.to_string() },
            agent_id: agent(agent_id),
            kill_policy: grace_seconds.map(|g| v1::KillPolicy {
                grace_period: Some(v1::DurationInfo { nanoseconds: i64::from(g).saturating_mul(1_000_000_000) }),
            }),
        }),
        ..Default::default()
    }
}

/// RECONCILE of these tasks; none asks about every task (implicit reconciliation).
pub fn reconcile(tasks: impl IntoIterator<Item = TaskRef>) -> Call {
    let tasks =
        tasks.into_iter().map(|t| call::reconcile::Task { task_id: v1::TaskId { value: t.task }, agent_id: agent(&t.agent) }).collect();
    Call { r#type: Some(call::Type::Reconcile as i32), reconcile: Some(call::Reconcile { tasks }), ..Default::default() }
}

/// ACKNOWLEDGE of a status update, if it asks for one (it carries a uuid and an agent id).
pub fn acknowledge(status: &v1::TaskStatus) -> Option<Call> {
    let (Some(uuid), Some(agent_id)) = (status.uuid.clone(), status.agent_id.clone()) else { return None };
    Some(Call {
        r#type: Some(call::Type::Acknowledge as i32),
        acknowledge: Some(call::Acknowledge { agent_id, task_id: status.task_id.clone(), uuid }),
        ..Default::default()
    })
}

/// REVIVE: offers again, and refusal filters cleared.
pub fn revive() -> Call {
    Call { r#type: Some(call::Type::Revive as i32), revive: Some(call::Revive::default()), ..Default::default() }
}

/// SUPPRESS: no more offers until the next REVIVE.
pub fn suppress() -> Call {
    Call { r#type: Some(call::Type::Suppress as i32), suppress: Some(call::Suppress::default()), ..Default::default() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_call_has_its_type_and_the_fields_mesos_asks_for() {
        let k = kill("t1", "", Some(3));
        assert_eq!(k.r#type(), call::Type::Kill);
        let body = k.kill.unwrap();
        assert_eq!((body.task_id.value.as_str(), body.agent_id), ("t1", None));
        assert_eq!(body.kill_policy.unwrap().grace_period.unwrap().nanoseconds, 3_000_000_000);
        assert!(kill("t1", "a1", None).kill.unwrap().kill_policy.is_none());

        let r = reconcile([TaskRef { task: "t".into(), agent: "a".into() }]);
        assert_eq!(r.r#type(), call::Type::Reconcile);
        assert_eq!(r.reconcile.as_ref().unwrap().tasks[0].agent_id.as_ref().unwrap().value, "a");
        assert!(reconcile([]).reconcile.unwrap().tasks.is_empty(), "implicit reconciliation names no task");

        let a = accept_launch(v1::OfferId { value: "o".into() }, vec![v1::TaskInfo::default()], 0.0);
        let body = a.accept.unwrap();
        assert_eq!(body.operations[0].r#type(), v1::offer::operation::Type::Launch);
        assert_eq!(body.filters.unwrap().refuse_seconds, Some(0.0));

        let d = decline(vec![v1::OfferId { value: "o".into() }], 120.0);
        assert_eq!((d.r#type(), d.decline.unwrap().filters.unwrap().refuse_seconds), (call::Type::Decline, Some(120.0)));
        assert_eq!(revive().r#type(), call::Type::Revive);
        assert_eq!(suppress().r#type(), call::Type::Suppress);
    }

    #[test]
    fn only_updates_with_a_uuid_and_an_agent_are_acknowledged() {
        let mut s = v1::TaskStatus { task_id: v1::TaskId { value: "t".into() }, ..Default::default() };
        assert!(acknowledge(&s).is_none(), "the master's own updates carry no uuid");
        s.uuid = Some(vec![1, 2, 3]);
        assert!(acknowledge(&s).is_none());
        s.agent_id = Some(v1::AgentId { value: "a".into() });
        let ack = acknowledge(&s).unwrap().acknowledge.unwrap();
        assert_eq!((ack.uuid.as_ref(), ack.agent_id.value.as_str()), (&[1u8, 2, 3][..], "a"));
    }
}
