//! `/v2/tasks` and task kills.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::Response;
use framework_core::ids::{AppId, TaskId};
use framework_core::instance::Condition;
use serde_json::{Value, json};

use super::{ApiState, Params, RequestBody, error, json_response, render};
use crate::actor::{Change, Command};
use crate::error::ApiError;

/// GET /v2/tasks (`status=running|staging`, also `status[]=`).
pub async fn list(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let wanted: Vec<String> = p.all("status").chain(p.all("status[]")).map(str::to_lowercase).collect();
    let snap = state.actor.snapshot();
    let tasks: Vec<Value> = snap
        .instances
        .values()
        .filter(|i| {
            wanted.is_empty()
                || wanted.iter().any(|w| match w.as_str() {
                    "running" => i.condition == Condition::Running,
                    "staging" => matches!(i.condition, Condition::Provisioned | Condition::Staging | Condition::Starting),
                    _ => false,
                })
        })
        .map(|i| render::task(i, snap.apps.get(&i.app_id).map(|a| a.as_ref()), &snap.role))
        .collect();
    json_response(200, &json!({ "tasks": tasks }))
}

/// POST /v2/tasks/delete with `{"ids": [...]}`.
pub async fn delete_many(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let ids: Vec<String> = match serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("ids").cloned()).map(serde_json::from_value)
    {
        Some(Ok(ids)) => ids,
        _ => return error(ApiError::new(400, "Please specify data in JSON format: {\"ids\": [\"<task id>\", ...]}")),
    };
    let mut tasks = Vec::new();
    let snap = state.actor.snapshot();
    for raw in ids {
        match TaskId::parse(&raw) {
            Ok(t) if snap.task(&t).is_some() => tasks.push(t),
            // As in Marathon, a well-formed id of a task that is gone is skipped.
            Ok(_) => {}
            Err(_) => return error(ApiError::new(400, format!("Invalid task id '{raw}'"))),
        }
    }
    kill(&state, tasks, &p, false).await
}

/// Kills `tasks`: replaced by new ones, or with `scale=true` the apps shrink by as many.
pub async fn kill(state: &ApiState, tasks: Vec<TaskId>, p: &Params, single: bool) -> Response<Body> {
    let scale = p.flag("scale", false);
    if scale && p.flag("wipe", false) {
        return error(ApiError::new(400, "You cannot use scale and wipe at the same time."));
    }
    if scale {
        let snap = state.actor.snapshot();
        let mut to_kill: BTreeMap<AppId, Vec<_>> = BTreeMap::new();
        for t in &tasks {
            if let Some(i) = snap.task(t) {
                to_kill.entry(i.app_id.clone()).or_default().push(i.id.clone());
            }
        }
        let mut put = Vec::new();
        for (app_id, killed) in &to_kill {
            if let Some(app) = snap.apps.get(app_id) {
                let mut app = (**app).clone();
                app.instances = app.instances.saturating_sub(killed.len() as u32);
                put.push(app);
            }
        }
        let change = Change { to_kill, ..Change::put(put) };
        let force = p.flag("force", false);
        return match state.actor.ask(|reply| Command::Deploy { change, force, reply }).await.and_then(|r| r) {
            Ok(d) => super::deployment_result(200, &d),
            Err(e) => error(e),
        };
    }
    match state.actor.ask(|reply| Command::KillTasks { tasks, reply }).await.and_then(|r| r) {
        Ok(killed) => {
            let snap = state.actor.snapshot();
            let rendered: Vec<Value> =
                killed.iter().map(|i| render::task(i, snap.apps.get(&i.app_id).map(|a| a.as_ref()), &snap.role)).collect();
            if single {
                json_response(200, &json!({ "task": rendered.into_iter().next() }))
            } else {
                json_response(200, &json!({ "tasks": rendered }))
            }
        }
        Err(e) => error(e),
    }
}
