//! `/v2/apps` and everything below it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderValue, Response};
use framework_core::app::{self, AppDefinition};
use framework_core::ids::{AppId, PathId, TaskId, Timestamp};
use framework_core::state::within;
use serde_json::{Value, json};

use super::render::{self, Embed};
use super::{ApiState, Params, RequestBody, deploy, deployment_result, error, json_response};
use crate::actor::{Change, Deployed, keys, now};
use crate::error::ApiError;

/// What a path below `/v2/apps/` names.
#[derive(Debug, PartialEq)]
enum Target {
    App(String),
    Restart(String),
    Tasks(String),
    Task(String, String),
    Versions(String),
    Version(String, String),
}

/// Splits `rest` (everything after `/v2/apps/`) into the app id and what below it is meant.
fn target(rest: &str) -> Target {
    let rest = rest.trim_end_matches('/');
    if let Some(app) = rest.strip_suffix("/restart") {
        return Target::Restart(app.to_string());
    }
    if let Some(app) = rest.strip_suffix("/tasks") {
        return Target::Tasks(app.to_string());
    }
    if let Some(app) = rest.strip_suffix("/versions") {
        return Target::Versions(app.to_string());
    }
    if let Some((app, task)) = rest.rsplit_once("/tasks/") {
        return Target::Task(app.to_string(), task.to_string());
    }
    if let Some((app, v)) = rest.rsplit_once("/versions/") {
        return Target::Version(app.to_string(), v.to_string());
    }
    Target::App(rest.to_string())
}

/// The group part of Marathon's `{group}/*` (`*` alone is the root), if `raw` is one.
fn group_wildcard(raw: &str) -> Option<&str> {
    if raw == "*" { Some("/") } else { raw.strip_suffix("/*") }
}

/// The existing group a `{group}/*` names (404 with Marathon's message when there is none).
fn wildcard_group(snap: &framework_core::state::Snapshot, raw: &str) -> Result<PathId, ApiError> {
    let group = group_wildcard(raw).unwrap_or("/");
    let gid = PathId::parse(group).map_err(|e| ApiError::new(400, format!("Invalid group id '{group}': {e}")))?;
    if snap.groups.contains_key(&gid) { Ok(gid) } else { Err(ApiError::group_not_found(&gid)) }
}

fn app_id(raw: &str) -> Result<AppId, ApiError> {
    PathId::parse(raw).map_err(|e| ApiError::new(400, format!("Invalid app id '{raw}': {e}")))
}

fn deployment_headers(mut resp: Response<Body>, d: &Deployed) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&d.deployment_id.0) {
        resp.headers_mut().insert("Marathon-Deployment-Id", v);
    }
    resp
}

/// Announces an accepted app definition (`api_post_event`).
fn announce(state: &ApiState, peer: SocketAddr, uri: &str, d: &Deployed) {
    for app in &d.apps {
        let body = json!({"clientIp": peer.ip().to_string(), "uri": uri, "appDefinition": app.as_ref()});
        state.bus.publish("api_post_event", body, now());
    }
}

/// GET /v2/apps
pub async fn list(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let snap = state.actor.snapshot();
    let embed = Embed::parse(p.all("embed"));
    let cmd = p.get("cmd").map(str::to_lowercase);
    let id = p.get("id").map(str::to_lowercase);
    let label = p.get("label").map(LabelSelector::parse);
    let apps: Vec<Arc<AppDefinition>> = snap
        .apps
        .values()
        .filter(|a| cmd.as_ref().is_none_or(|c| a.cmd.as_deref().is_some_and(|x| x.to_lowercase().contains(c.as_str()))))
        .filter(|a| id.as_ref().is_none_or(|i| a.id.to_string().contains(i.as_str())))
        .filter(|a| label.as_ref().is_none_or(|l| l.matches(&a.labels)))
        .cloned()
        .collect();
    render::streamed_apps(snap, apps, embed, state.app_json.clone())
}

/// Marathon's label selector: `key`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`,
/// comma-separated (all must hold).
#[derive(Debug)]
struct LabelSelector(Vec<(String, String, Vec<String>)>);

impl LabelSelector {
    fn parse(raw: &str) -> Self {
        let mut out = Vec::new();
        let mut rest = raw;
        while !rest.trim().is_empty() {
            let (part, tail) = match (rest.find(','), rest.find('(')) {
                (Some(c), Some(p)) if p < c => {
                    let close = rest.find(')').unwrap_or(rest.len() - 1);
                    let end = rest[close..].find(',').map(|i| close + i).unwrap_or(rest.len());
                    (&rest[..end], rest.get(end + 1..).unwrap_or(""))
                }
                (Some(c), _) => (&rest[..c], &rest[c + 1..]),
                (None, _) => (rest, ""),
            };
            rest = tail;
            let part = part.trim();
            let sel = if let Some((k, v)) = part.split_once("==") {
                (k.trim().to_string(), "==".to_string(), vec![v.trim().to_string()])
            } else if let Some((k, v)) = part.split_once("!=") {
                (k.trim().to_string(), "!=".to_string(), vec![v.trim().to_string()])
            } else if let Some((k, v)) = part.split_once(" notin ") {
                (k.trim().to_string(), "notin".to_string(), set_values(v))
            } else if let Some((k, v)) = part.split_once(" in ") {
                (k.trim().to_string(), "in".to_string(), set_values(v))
            } else {
                (part.to_string(), "exists".to_string(), vec![])
            };
            out.push(sel);
        }
        Self(out)
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, op, vals)| {
            let v = labels.get(k);
            match op.as_str() {
                "==" | "in" => v.is_some_and(|v| vals.contains(v)),
                "!=" | "notin" => v.is_none_or(|v| !vals.contains(v)),
                _ => v.is_some(),
            }
        })
    }
}

fn set_values(raw: &str) -> Vec<String> {
    raw.trim().trim_start_matches('(').trim_end_matches(')').split(',').map(|s| s.trim().to_string()).collect()
}

/// POST /v2/apps
pub async fn create(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    RequestBody(body): RequestBody,
) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let app = match app::parse_app(&body, &PathId::root()) {
        Ok(app) => app,
        Err(e) => return error(e.into()),
    };
    let id = app.id.clone();
    // Whether the app exists is decided by the actor, which owns the state: of concurrent
    // creations of one id exactly one gets 201.
    let change = Change { create_only: true, ..Change::put(vec![app]) };
    match deploy(&state, change, p.flag("force", false)).await {
        Ok(d) => {
            announce(&state, peer, "/v2/apps", &d);
            let snap = state.actor.snapshot();
            let stored = d.apps.first().cloned();
            let mut body = stored.map(|a| render::app_info(&snap, &a, Embed::default())).unwrap_or_else(|| json!({}));
            body["deployments"] = json!([{ "id": d.deployment_id }]);
            let mut resp = deployment_headers(json_response(201, &body), &d);
            if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
                resp.headers_mut().insert("Location", v);
            }
            resp
        }
        Err(e) => error(e),
    }
}

/// GET /v2/apps/{id}[/tasks|/versions[/v]]
pub async fn get_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let snap = state.actor.snapshot();
    let result = async {
        match target(&rest) {
            // Marathon's `{group}/*`: every app within the group (`{"*": [...]}`), or their tasks.
            Target::App(raw) if group_wildcard(&raw).is_some() => {
                let gid = wildcard_group(&snap, &raw)?;
                let mut embed = Embed::parse(p.all("embed"));
                embed.tasks = true;
                embed.last_task_failure = true;
                Ok(json!({ "*": within(&snap.apps, &gid).map(|(_, a)| render::app_info(&snap, a, embed)).collect::<Vec<_>>() }))
            }
            Target::Tasks(raw) if group_wildcard(&raw).is_some() => {
                let gid = wildcard_group(&snap, &raw)?;
                let tasks: Vec<Value> = within(&snap.apps, &gid)
                    .flat_map(|(id, a)| snap.instances_of(id).map(|i| render::task(i, Some(a), &snap.role)))
                    .collect();
                Ok(json!({ "tasks": tasks }))
            }
            Target::App(raw) => {
                let id = app_id(&raw)?;
                let app = snap.apps.get(&id).ok_or_else(|| ApiError::app_not_found(&id))?;
                let mut embed = Embed::parse(p.all("embed"));
                embed.tasks = true;
                embed.last_task_failure = true;
                Ok(json!({ "app": render::app_info(&snap, app, embed) }))
            }
            Target::Tasks(raw) => {
                let id = app_id(&raw)?;
                let app = snap.apps.get(&id).ok_or_else(|| ApiError::app_not_found(&id))?;
                Ok(json!({ "tasks": snap.instances_of(&id).map(|i| render::task(i, Some(app), &snap.role)).collect::<Vec<_>>() }))
            }
            Target::Versions(raw) => {
                let id = app_id(&raw)?;
                if !snap.apps.contains_key(&id) {
                    return Err(ApiError::app_not_found(&id));
                }
                Ok(json!({ "versions": super::stored_versions(&state, &keys::app_versions(&id)).await? }))
            }
            Target::Version(raw, v) => {
                let id = app_id(&raw)?;
                let stored = stored_version(&state, &id, &v).await?;
                serde_json::to_value(stored).map_err(|e| ApiError::new(500, e.to_string()))
            }
            Target::Restart(_) | Target::Task(_, _) => Err(ApiError::new(405, "Method not allowed")),
        }
    }
    .await;
    match result {
        Ok(v) => json_response(200, &v),
        Err(e) => error(e),
    }
}

async fn stored_version(state: &ApiState, id: &AppId, v: &str) -> Result<AppDefinition, ApiError> {
    let version: Timestamp = v.parse().map_err(|e: framework_core::ids::IdError| ApiError::new(400, e.to_string()))?;
    let bytes = state
        .store
        .get(&keys::app_version(id, version))
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::new(404, format!("App '{id}' does not exist in version {version}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::new(500, format!("stored version is unreadable: {e}")))
}

/// PUT /v2/apps/{id}: update (partially by default), create if absent, or roll back to a version.
pub async fn put_any(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    RequestBody(body): RequestBody,
) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let Target::App(raw) = target(&rest) else { return error(ApiError::new(405, "Method not allowed")) };
    let result = async {
        let id = app_id(&raw)?;
        let current = state.actor.snapshot().apps.get(&id).cloned();
        let app = updated_app(&state, &id, current.as_deref(), &body, p.flag("partialUpdate", true)).await?;
        let d = deploy(&state, Change::put(vec![app]), p.flag("force", false)).await?;
        announce(&state, peer, &format!("/v2/apps/{raw}"), &d);
        Ok((d.created.contains(&id), d))
    }
    .await;
    match result {
        Ok((true, d)) => {
            let mut resp = deployment_result(201, &d);
            if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps/{}", raw.trim_start_matches('/'))) {
                resp.headers_mut().insert("Location", v);
            }
            resp
        }
        Ok((false, d)) => deployment_result(200, &d),
        Err(e) => error(e),
    }
}

/// The app a PUT or PATCH body asks for, given the current one.
async fn updated_app(
    state: &ApiState,
    id: &AppId,
    current: Option<&AppDefinition>,
    body: &[u8],
    partial: bool,
) -> Result<AppDefinition, ApiError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::from(app::AppError::Syntax { message: "Invalid JSON".into(), detail: "the body is not JSON".into() }))?;
    if let Some(v) = app::is_version_only(&json) {
        return stored_version(state, id, &v.to_string()).await;
    }
    app::check_version_rule(&json)?;
    let mut app = match (current, partial) {
        (Some(cur), true) => app::apply_patch(cur, body, &id.parent())?,
        _ => {
            let mut obj = json;
            if let Some(map) = obj.as_object_mut() {
                map.insert("id".into(), json!(id.to_string()));
            }
            let bytes = serde_json::to_vec(&obj).unwrap_or_default();
            app::parse_app(&bytes, &PathId::root())?
        }
    };
    app.id = id.clone();
    Ok(app)
}

/// PATCH /v2/apps/{id}: partial update of an existing app.
pub async fn patch_any(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    RequestBody(body): RequestBody,
) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let Target::App(raw) = target(&rest) else { return error(ApiError::new(405, "Method not allowed")) };
    let result = async {
        let id = app_id(&raw)?;
        let current = state.actor.snapshot().apps.get(&id).cloned().ok_or_else(|| ApiError::app_not_found(&id))?;
        let mut app = app::apply_patch(&current, &body, &id.parent())?;
        app.id = id;
        let d = deploy(&state, Change::put(vec![app]), p.flag("force", false)).await?;
        announce(&state, peer, &format!("/v2/apps/{raw}"), &d);
        Ok(d)
    }
    .await;
    match result {
        Ok(d) => deployment_result(200, &d),
        Err(e) => error(e),
    }
}

/// PUT /v2/apps: create or update many apps in one deployment.
pub async fn put_many(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    many(state, q, body, false).await
}

/// PATCH /v2/apps: partially update many existing apps in one deployment.
pub async fn patch_many(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    many(state, q, body, true).await
}

async fn many(state: ApiState, q: Option<String>, body: Bytes, existing_only: bool) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let result = async {
        let items: Vec<Value> = serde_json::from_slice(&body)
            .map_err(|_| ApiError::from(app::AppError::Syntax { message: "Invalid JSON".into(), detail: "the body is not JSON".into() }))?;
        let snap = state.actor.snapshot();
        let mut apps = Vec::new();
        for item in items {
            let raw = item.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let id = app_id(&raw)?;
            let current = snap.apps.get(&id).cloned();
            if existing_only && current.is_none() {
                return Err(ApiError::app_not_found(&id));
            }
            let bytes = serde_json::to_vec(&item).unwrap_or_default();
            apps.push(updated_app(&state, &id, current.as_deref(), &bytes, p.flag("partialUpdate", true)).await?);
        }
        deploy(&state, Change::put(apps), p.flag("force", false)).await
    }
    .await;
    match result {
        Ok(d) => deployment_result(200, &d),
        Err(e) => error(e),
    }
}

/// POST /v2/apps/{id}/restart
pub async fn post_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let Target::Restart(raw) = target(&rest) else { return error(ApiError::new(405, "Method not allowed")) };
    let result = async {
        let id = app_id(&raw)?;
        let change = Change { restart: vec![id], ..Change::default() };
        deploy(&state, change, p.flag("force", false)).await
    }
    .await;
    match result {
        Ok(d) => deployment_result(200, &d),
        Err(e) => error(e),
    }
}

/// DELETE /v2/apps/{id}, /v2/apps/{id}/tasks, /v2/apps/{id}/tasks/{taskId}
pub async fn delete_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    match target(&rest) {
        Target::App(raw) => {
            let result = async {
                let id = app_id(&raw)?;
                let change = Change { delete: vec![id], ..Change::default() };
                // Marathon 1.10 deletes with force=true unless told otherwise.
                deploy(&state, change, p.flag("force", true)).await
            }
            .await;
            match result {
                Ok(d) => deployment_result(200, &d),
                Err(e) => error(e),
            }
        }
        Target::Tasks(raw) => {
            let result = async {
                let id = app_id(&raw)?;
                let snap = state.actor.snapshot();
                if !snap.apps.contains_key(&id) {
                    return Err(ApiError::app_not_found(&id));
                }
                // `host=<agent>` kills the tasks on that agent, `host=*` (as in Marathon) on any.
                let host = p.get("host");
                let tasks: Vec<TaskId> =
                    snap.instances_of(&id).filter(|i| host.is_none_or(|h| h == "*" || h == &*i.host)).map(|i| i.task_id.clone()).collect();
                Ok(tasks)
            }
            .await;
            match result {
                Ok(tasks) => super::tasks::kill(&state, tasks, &p, false).await,
                Err(e) => error(e),
            }
        }
        Target::Task(raw, task) => {
            let result = async {
                let id = app_id(&raw)?;
                let snap = state.actor.snapshot();
                if !snap.apps.contains_key(&id) {
                    return Err(ApiError::app_not_found(&id));
                }
                let task_id = TaskId::parse(&task).map_err(|_| ApiError::new(404, format!("Task '{task}' does not exist")))?;
                if snap.task(&task_id).is_none_or(|i| i.app_id != id) {
                    return Err(ApiError::new(404, format!("Task '{task}' does not exist")));
                }
                Ok(task_id)
            }
            .await;
            match result {
                Ok(task_id) => super::tasks::kill(&state, vec![task_id], &p, true).await,
                Err(e) => error(e),
            }
        }
        _ => error(ApiError::new(405, "Method not allowed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_apps_are_split_like_marathon() {
        assert_eq!(target("a/b"), Target::App("a/b".into()));
        assert_eq!(target("a/b/restart"), Target::Restart("a/b".into()));
        assert_eq!(target("a/tasks"), Target::Tasks("a".into()));
        assert_eq!(target("a/tasks/t.instance-1._app.1"), Target::Task("a".into(), "t.instance-1._app.1".into()));
        assert_eq!(target("a/versions"), Target::Versions("a".into()));
        assert_eq!(target("a/versions/2020-01-01T00:00:00.000Z"), Target::Version("a".into(), "2020-01-01T00:00:00.000Z".into()));
    }

    #[test]
    fn label_selectors() {
        let labels: BTreeMap<String, String> = [("env".to_string(), "prod".to_string()), ("tier".to_string(), "web".to_string())].into();
        assert!(LabelSelector::parse("env==prod").matches(&labels));
        assert!(!LabelSelector::parse("env!=prod").matches(&labels));
        assert!(LabelSelector::parse("env in (prod, dev),tier").matches(&labels));
        assert!(!LabelSelector::parse("env notin (prod)").matches(&labels));
        assert!(!LabelSelector::parse("owner").matches(&labels));
    }
}
