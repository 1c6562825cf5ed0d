//! `/v2/groups`: the group tree is derived from app ids; changes deploy the apps of a group.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::Response;
use framework_core::app::{self, AppDefinition};
use framework_core::deploy;
use framework_core::ids::{AppId, PathId};
use serde_json::{Value, json};

use super::render::{self, Embed};
use super::{ApiState, Params, RequestBody, deployment_result, error, json_response};
use crate::actor::{Change, Command, Deployed, action_json};
use crate::error::ApiError;
use crate::spec;
use crate::state::Snapshot;

fn group_id(raw: &str) -> Result<PathId, ApiError> {
    PathId::parse(raw.trim_end_matches('/')).map_err(|e| ApiError::new(400, format!("Invalid group id '{raw}': {e}")))
}

/// Every group id implied by the apps (all their ancestors).
fn groups_of(snap: &Snapshot) -> BTreeSet<PathId> {
    let mut out = BTreeSet::from([PathId::root()]);
    for id in snap.apps.keys() {
        let mut g = id.parent();
        while !g.is_root() {
            out.insert(g.clone());
            g = g.parent();
        }
    }
    out
}

fn group_json(snap: &Snapshot, all: &BTreeSet<PathId>, gid: &PathId, embed: Embed) -> Value {
    let apps: Vec<Value> = snap.apps.values().filter(|a| &a.id.parent() == gid).map(|a| render::app_info(snap, a, embed)).collect();
    let groups: Vec<Value> =
        all.iter().filter(|g| !g.is_root() && &g.parent() == gid).map(|g| group_json(snap, all, g, embed)).collect();
    let version = snap.apps.values().filter(|a| a.id.is_within(gid)).filter_map(|a| a.version).max();
    json!({ "id": gid, "apps": apps, "groups": groups, "pods": [], "dependencies": [], "version": version, "enforceRole": false })
}

async fn get_group(state: ApiState, raw: &str, q: Option<String>) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let gid = match group_id(raw) {
        Ok(g) => g,
        Err(e) => return error(e),
    };
    let snap = state.actor.snapshot();
    let all = groups_of(&snap);
    if !all.contains(&gid) {
        return error(ApiError::new(404, format!("Group '{gid}' does not exist")));
    }
    json_response(200, &group_json(&snap, &all, &gid, Embed::parse(p.all("embed"))))
}

/// GET /v2/groups
pub async fn get_root(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Response<Body> {
    get_group(state, "/", q).await
}

/// GET /v2/groups/{gid}
pub async fn get_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response<Body> {
    get_group(state, &rest, q).await
}

/// POST /v2/groups
pub async fn post_root(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    change_group(state, "/", q, body, true).await
}

/// POST /v2/groups/{gid}
pub async fn post_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    change_group(state, &rest, q, body, true).await
}

/// PUT /v2/groups
pub async fn put_root(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    change_group(state, "/", q, body, false).await
}

/// PUT /v2/groups/{gid}
pub async fn put_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    change_group(state, &rest, q, body, false).await
}

/// DELETE /v2/groups
pub async fn delete_root(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Response<Body> {
    delete_group(state, "/", q).await
}

/// DELETE /v2/groups/{gid}
pub async fn delete_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response<Body> {
    delete_group(state, &rest, q).await
}

async fn delete_group(state: ApiState, raw: &str, q: Option<String>) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let result = async {
        let gid = group_id(raw)?;
        let snap = state.actor.snapshot();
        if !groups_of(&snap).contains(&gid) {
            return Err(ApiError::new(404, format!("Group '{gid}' does not exist")));
        }
        let delete: Vec<AppId> = snap.apps.keys().filter(|id| id.is_within(&gid)).cloned().collect();
        let change = Change { put: vec![], delete, restart: vec![], to_kill: BTreeMap::new() };
        let force = p.flag("force", false);
        state.actor.ask(|reply| Command::Deploy { change, force, reply }).await?
    }
    .await;
    match result {
        Ok(d) => deployment_result(200, &d),
        Err(e) => error(e),
    }
}

async fn change_group(state: ApiState, raw: &str, q: Option<String>, body: Bytes, create: bool) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let result = async {
        let base = group_id(raw)?;
        let snap = state.actor.snapshot();
        let json: Value = serde_json::from_slice(&body).map_err(|_| ApiError::from(app::AppError::Syntax { message: "Invalid JSON".into(), detail: "the body is not JSON".into() }))?;
        // `{"scaleBy": f}`: multiply the instances of every app in the group.
        if !create
            && let Some(factor) = json.get("scaleBy").and_then(Value::as_f64) {
                if !(factor.is_finite() && factor >= 0.0) {
                    return Err(ApiError::new(422, "scaleBy must be a non-negative number"));
                }
                let put: Vec<AppDefinition> = snap
                    .apps
                    .values()
                    .filter(|a| a.id.is_within(&base))
                    .map(|a| {
                        let mut a = (**a).clone();
                        a.instances = (f64::from(a.instances) * factor).ceil().min(f64::from(u32::MAX)) as u32;
                        a
                    })
                    .collect();
                scale_within_limit(&put, factor)?;
                return Ok(Outcome::Deployed(deploy_apps(&state, put, vec![], p.flag("force", false)).await?));
            }
        let group = app::parse_group(&body, &base)?;
        let gid = group.id.clone();
        let existing: Vec<AppId> = snap.apps.keys().filter(|id| id.is_within(&gid)).cloned().collect();
        if create && (!existing.is_empty() || (gid.is_root() && !snap.apps.is_empty())) {
            return Err(ApiError::new(409, format!("Group {gid} is already created. Use PUT to change this group.")));
        }
        let put: Vec<AppDefinition> = group.all_apps().into_iter().cloned().collect();
        let keep: BTreeSet<&AppId> = put.iter().map(|a| &a.id).collect();
        let delete: Vec<AppId> = existing.iter().filter(|id| !keep.contains(id)).cloned().collect();
        if p.flag("dryRun", false) {
            let before: Vec<_> = snap.apps.values().filter(|a| a.id.is_within(&gid)).map(|a| spec::planned(a)).collect();
            let after: Vec<_> = put.iter().map(spec::planned).collect();
            let steps = deploy::plan(&before, &after, &BTreeMap::new()).map_err(|e| ApiError::new(422, e.to_string()))?;
            let steps: Vec<Value> = steps.iter().map(|s| json!({"actions": s.actions.iter().map(action_json).collect::<Vec<_>>()})).collect();
            return Ok(Outcome::DryRun(json!({ "steps": steps })));
        }
        Ok(Outcome::Deployed(deploy_apps(&state, put, delete, p.flag("force", false)).await?))
    }
    .await;
    match result {
        Ok(Outcome::Deployed(d)) => deployment_result(if create { 201 } else { 200 }, &d),
        Ok(Outcome::DryRun(v)) => json_response(200, &v),
        Err(e) => error(e),
    }
}

/// Refuses a `scaleBy` that takes any app past [`app::validate::MAX_INSTANCES`], as the
/// validator would refuse such an app body (422 `Object is not valid` at `/scaleBy`).
fn scale_within_limit(scaled: &[AppDefinition], factor: f64) -> Result<(), ApiError> {
    let max = app::validate::MAX_INSTANCES;
    let errors: Vec<String> = scaled
        .iter()
        .filter(|a| a.instances > max)
        .map(|a| format!("scaling {} by {factor} gives {} instances, expected {max} or less; use a smaller factor", a.id, a.instances))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError { status: 422, body: json!({"message": "Object is not valid", "details": [{"path": "/scaleBy", "errors": errors}]}) })
}

enum Outcome {
    Deployed(Deployed),
    DryRun(Value),
}

async fn deploy_apps(state: &ApiState, put: Vec<AppDefinition>, delete: Vec<AppId>, force: bool) -> Result<Deployed, ApiError> {
    super::deploy(state, Change { put, delete, restart: vec![], to_kill: BTreeMap::new() }, force).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_by_stays_within_the_instance_limit() {
        let mut a = AppDefinition::new(PathId::parse("/g/a").unwrap_or_default());
        a.instances = app::validate::MAX_INSTANCES;
        assert!(scale_within_limit(std::slice::from_ref(&a), 1.0).is_ok());
        a.instances += 1;
        let e = scale_within_limit(&[a], 2.0).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(e.body["message"], "Object is not valid");
        assert_eq!(e.body["details"][0]["path"], "/scaleBy");
        assert!(e.body["details"][0]["errors"][0].as_str().unwrap_or_default().contains("/g/a"), "{}", e.body);
    }
}
