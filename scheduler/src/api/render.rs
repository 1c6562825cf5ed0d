//! Marathon's response JSON: AppInfo, Task, deployments.

use framework_core::app::AppDefinition;
use framework_core::instance::Condition;
use serde_json::{Value, json};

use crate::actor::{action_json, step_json};
use crate::state::{Deployment, Instance, Snapshot};

/// Which optional parts an AppInfo carries (`embed=`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Embed {
    /// `tasks`.
    pub tasks: bool,
    /// `lastTaskFailure`.
    pub last_task_failure: bool,
}

impl Embed {
    /// Reads `embed` values; the prefixes `apps.`, `app.` and `group.apps.` are ignored.
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Self {
        let mut e = Embed::default();
        for v in values {
            let v = v.trim_start_matches("group.").trim_start_matches("apps.").trim_start_matches("app.");
            match v {
                "tasks" => e.tasks = true,
                "lastTaskFailure" => e.last_task_failure = true,
                "failures" => {
                    e.tasks = true;
                    e.last_task_failure = true;
                }
                _ => {}
            }
        }
        e
    }
}

/// The Task JSON of an instance.
pub fn task(i: &Instance, app: Option<&AppDefinition>) -> Value {
    let has_checks = app.is_some_and(crate::spec::has_health_checks);
    let health: Vec<Value> = match (has_checks, i.healthy) {
        (true, Some(alive)) => vec![json!({
            "alive": alive, "consecutiveFailures": if alive { 0 } else { 1 }, "instanceId": i.id, "taskId": i.task_id,
            "firstSuccess": Value::Null, "lastSuccess": Value::Null, "lastFailure": Value::Null, "lastFailureCause": Value::Null,
        })],
        _ => vec![],
    };
    let service_ports = app.map(crate::spec::service_ports).unwrap_or_default();
    json!({
        "id": i.task_id,
        "appId": i.app_id,
        "host": i.host,
        "slaveId": i.agent_id,
        "state": i.mesos_state,
        "stagedAt": i.staged_at,
        "startedAt": i.started_at,
        "version": i.version,
        "ports": i.ports,
        "servicePorts": service_ports,
        "ipAddresses": i.ip_addresses.iter().map(|a| json!({"ipAddress": a, "protocol": "IPv4"})).collect::<Vec<_>>(),
        "healthCheckResults": health,
        "localVolumes": [],
        "region": i.region,
        "zone": i.zone,
    })
}

/// `tasksStaged`, `tasksRunning`, `tasksHealthy`, `tasksUnhealthy` of an app.
pub fn counts(snap: &Snapshot, app: &AppDefinition) -> (u32, u32, u32, u32) {
    let (mut staged, mut running, mut healthy, mut unhealthy) = (0, 0, 0, 0);
    for i in snap.instances_of(&app.id) {
        match i.condition {
            Condition::Running => running += 1,
            c if c.is_active() => staged += 1,
            _ => {}
        }
        match i.healthy {
            Some(true) if i.condition == Condition::Running => healthy += 1,
            Some(false) => unhealthy += 1,
            _ => {}
        }
    }
    (staged, running, healthy, unhealthy)
}

/// The AppInfo JSON: the definition plus counts, deployments and the requested embeds.
pub fn app_info(snap: &Snapshot, app: &AppDefinition, embed: Embed) -> Value {
    let mut v = serde_json::to_value(app).unwrap_or_else(|_| json!({}));
    let (staged, running, healthy, unhealthy) = counts(snap, app);
    v["tasksStaged"] = json!(staged);
    v["tasksRunning"] = json!(running);
    v["tasksHealthy"] = json!(healthy);
    v["tasksUnhealthy"] = json!(unhealthy);
    v["deployments"] = json!(snap.deployments_of(&app.id).iter().map(|d| json!({"id": d})).collect::<Vec<_>>());
    if embed.tasks {
        v["tasks"] = json!(snap.instances_of(&app.id).map(|i| task(i, Some(app))).collect::<Vec<_>>());
    }
    if embed.last_task_failure
        && let Some(f) = snap.failures.get(&app.id) {
            v["lastTaskFailure"] = serde_json::to_value(f).unwrap_or(Value::Null);
        }
    v
}

/// One item of GET /v2/deployments; current actions carry the readiness of their app's instances.
pub fn deployment(snap: &Snapshot, d: &Deployment) -> Value {
    let readiness = |app: &framework_core::ids::AppId| -> Vec<Value> {
        let Some(def) = snap.apps.get(app) else { return vec![] };
        let Some(check) = def.readiness_checks.first() else { return vec![] };
        snap.instances_of(app)
            .filter(|i| i.condition == Condition::Running && i.config_version == crate::spec::config_version(def))
            .map(|i| json!({"name": check.name, "taskId": i.task_id, "ready": i.ready, "lastResponse": Value::Null}))
            .collect()
    };
    let current = d
        .steps
        .get(d.current_step)
        .map(|s| {
            s.actions
                .iter()
                .map(|a| {
                    let mut j = action_json(a);
                    j["readinessCheckResults"] = json!(readiness(a.app()));
                    j
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    json!({
        "id": d.id,
        "version": d.version,
        "affectedApps": d.target.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        "affectedPods": [],
        "steps": (0..d.steps.len()).map(|i| step_json(d, i)).collect::<Vec<_>>(),
        "currentActions": current,
        "currentStep": (d.current_step + 1).min(d.steps.len()),
        "totalSteps": d.steps.len(),
    })
}
