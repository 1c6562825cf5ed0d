//! `/v2/groups`: the group tree. Groups are stored on their own (an empty group exists); every
//! change is decided by the actor against the tree as it is when the change reaches it.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Response};
use framework_core::app::{self, GroupRequest};
use framework_core::ids::{PathId, Timestamp};
use framework_core::state::within;
use framework_core::tree::GroupVersion;
use serde_json::{Value, json};

use super::render::{self, Embed};
use super::{ApiState, Params, RequestBody, deployment_result, error, json_response};
use crate::actor::{Command, GroupOp, GroupOutcome, action_json, keys};
use crate::error::ApiError;
use crate::state::Snapshot;

fn group_id(raw: &str) -> Result<PathId, ApiError> {
    PathId::parse(raw.trim_end_matches('/')).map_err(|e| ApiError::new(400, format!("Invalid group id '{raw}': {e}")))
}

/// What a path below `/v2/groups/` names (Marathon's `ListApps`, `ListVersionsRE`,
/// `GetVersionRE` matchers).
#[derive(Debug, PartialEq)]
enum Target {
    Group(String),
    Apps(String),
    Versions(String),
    Version(String, String),
}

fn target(rest: &str) -> Target {
    let rest = rest.trim_matches('/');
    if rest == "apps" {
        return Target::Apps(String::new());
    }
    if let Some(g) = rest.strip_suffix("/apps") {
        return Target::Apps(g.to_string());
    }
    if rest == "versions" {
        return Target::Versions(String::new());
    }
    if let Some(g) = rest.strip_suffix("/versions") {
        return Target::Versions(g.to_string());
    }
    if let Some(v) = rest.strip_prefix("versions/") {
        return Target::Version(String::new(), v.to_string());
    }
    if let Some((g, v)) = rest.rsplit_once("/versions/") {
        return Target::Version(g.to_string(), v.to_string());
    }
    Target::Group(rest.to_string())
}

/// Marathon's group JSON: the group's own fields, its apps and its subgroups, recursively.
fn group_json(snap: &Snapshot, gid: &PathId, embed: Embed) -> Value {
    let node = snap.groups.get(gid);
    let apps: Vec<Value> = within(&snap.apps, gid)
        .filter(|(id, _)| !id.is_root() && &id.parent() == gid)
        .map(|(_, a)| render::app_info(snap, a, embed))
        .collect();
    let groups: Vec<Value> = within(&snap.groups, gid)
        .filter(|(id, _)| !id.is_root() && &id.parent() == gid)
        .map(|(id, _)| group_json(snap, id, embed))
        .collect();
    let mut group = json!({
        "id": gid,
        "apps": apps,
        "groups": groups,
        "pods": [],
        "dependencies": node.map(|n| n.dependencies.clone()).unwrap_or_default(),
        "version": node.map(|n| n.version),
    });
    // Only when set: marathon-python 0.13 reads groups into a class that refuses the key, so a
    // group that never asked for it reads as before enforceRole existed.
    if node.is_some_and(|n| n.enforce_role)
        && let Some(g) = group.as_object_mut()
    {
        g.insert("enforceRole".into(), json!(true));
    }
    group
}

async fn get_group(state: ApiState, rest: &str, q: Option<String>) -> Result<Response<Body>, ApiError> {
    let p = Params::parse(q.as_deref());
    let snap = state.actor.snapshot();
    let embed = Embed::parse(p.all("embed"));
    let body = match target(rest) {
        Target::Group(raw) => {
            let gid = group_id(&raw)?;
            if !snap.groups.contains_key(&gid) {
                return Err(ApiError::group_not_found(&gid));
            }
            group_json(&snap, &gid, embed)
        }
        Target::Apps(raw) => {
            // Every app within the group (an unknown group has none, as in Marathon).
            let gid = group_id(&raw)?;
            let apps: Vec<Value> = within(&snap.apps, &gid).map(|(_, a)| render::app_info(&snap, a, embed)).collect();
            json!(apps)
        }
        Target::Versions(raw) => {
            let gid = group_id(&raw)?;
            if !snap.groups.contains_key(&gid) {
                return Err(ApiError::group_not_found(&gid));
            }
            json!(super::stored_versions(&state, &keys::group_versions(&gid)).await?)
        }
        Target::Version(raw, v) => {
            let gid = group_id(&raw)?;
            let version: Timestamp = v.parse().map_err(|e: framework_core::ids::IdError| ApiError::new(400, e.to_string()))?;
            let stored = stored_version(&state, &gid, version).await?.ok_or_else(|| ApiError::group_not_found(&gid))?;
            serde_json::to_value(stored).map_err(|e| ApiError::new(500, e.to_string()))?
        }
    };
    Ok(json_response(200, &body))
}

/// A stored version of a group, if it is kept.
async fn stored_version(state: &ApiState, gid: &PathId, version: Timestamp) -> Result<Option<GroupVersion>, ApiError> {
    let Some(bytes) = state.store.get(&keys::group_version(gid, version)).await.map_err(ApiError::storage)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::new(500, format!("stored version {version} of group {gid} is unreadable: {e}")))
}

/// GET /v2/groups
pub async fn get_root(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response<Body>, ApiError> {
    get_group(state, "", q).await
}

/// GET /v2/groups/{gid}[/apps|/versions[/v]]
pub async fn get_any(State(state): State<ApiState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Result<Response<Body>, ApiError> {
    get_group(state, &rest, q).await
}

/// POST /v2/groups
pub async fn post_root(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    change_group(state, "/", q, body, true).await
}

/// POST /v2/groups/{gid}
pub async fn post_any(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    RequestBody(body): RequestBody,
) -> Response<Body> {
    change_group(state, &rest, q, body, true).await
}

/// PUT /v2/groups
pub async fn put_root(State(state): State<ApiState>, RawQuery(q): RawQuery, RequestBody(body): RequestBody) -> Response<Body> {
    change_group(state, "/", q, body, false).await
}

/// PUT /v2/groups/{gid}
pub async fn put_any(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    RequestBody(body): RequestBody,
) -> Response<Body> {
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

/// PATCH /v2/groups/{gid}: `{"enforceRole": bool}` on an existing group (no deployment; 200
/// with an empty body, as Marathon answers).
pub async fn patch_any(State(state): State<ApiState>, Path(rest): Path<String>, RequestBody(body): RequestBody) -> Response<Body> {
    let result = async {
        let gid = group_id(&rest)?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::from(app::AppError::Syntax { message: "Invalid JSON".into(), detail: "the body is not JSON".into() }))?;
        let enforce_role = match json.get("enforceRole") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(ApiError {
                    status: 422,
                    body: json!({"message": "Invalid JSON", "details": [{"path": "/enforceRole", "errors": ["error.expected.jsboolean"]}]}),
                });
            }
        };
        if gid.is_root() || gid.segments().len() != 1 {
            return Err(ApiError {
                status: 422,
                body: json!({"message": "Object is not valid", "details": [{"path": "/", "errors": ["Path needs to be top-level"]}]}),
            });
        }
        let snap = state.actor.snapshot();
        let node = snap.groups.get(&gid).ok_or_else(|| ApiError::group_not_found(&gid))?;
        let mut update = app::GroupDefinition::new(gid.clone());
        update.enforce_role = Some(enforce_role.unwrap_or(node.enforce_role));
        let op = GroupOp::Update { update, create: false, rollback: false };
        state.actor.ask(|reply| Command::Group { op, force: true, dry_run: false, reply }).await??;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => json_response(200, &json!({})),
        Err(e) => error(e),
    }
}

async fn delete_group(state: ApiState, raw: &str, q: Option<String>) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let result = async {
        let group = group_id(raw)?;
        let op = GroupOp::Delete { group };
        state.actor.ask(|reply| Command::Group { op, force: p.flag("force", false), dry_run: false, reply }).await?
    }
    .await;
    match result {
        Ok(GroupOutcome::Deployed(d)) => deployment_result(200, &d),
        Ok(GroupOutcome::DryRun(_)) => error(ApiError::new(500, "a delete is never a dry run")),
        Err(e) => error(e),
    }
}

async fn change_group(state: ApiState, raw: &str, q: Option<String>, body: Bytes, create: bool) -> Response<Body> {
    let p = Params::parse(q.as_deref());
    let result = async {
        let base = group_id(raw)?;
        let op = match app::parse_group_request(&body, &base)? {
            GroupRequest::Update(update) => GroupOp::Update { update, create, rollback: false },
            _ if create => {
                return Err(ApiError::new(
                    422,
                    "A new group takes apps and groups, not 'version' or 'scaleBy'; use PUT to change an existing group",
                ));
            }
            GroupRequest::ScaleBy(factor) => GroupOp::ScaleBy { group: group_in_body(&body, &base)?, factor },
            GroupRequest::Rollback(version) => {
                let group = group_in_body(&body, &base)?;
                let stored = stored_version(&state, &group, version).await?.ok_or_else(|| {
                    ApiError::new(
                        422,
                        format!(
                            "Group {group} not available in version {version}: GET /v2/groups{}/versions lists the kept versions",
                            if group.is_root() { String::new() } else { group.to_string() }
                        ),
                    )
                })?;
                GroupOp::Update { update: stored.into_update(), create: false, rollback: true }
            }
        };
        let gid = match &op {
            GroupOp::Update { update, .. } => update.id.clone(),
            GroupOp::ScaleBy { group, .. } | GroupOp::Delete { group } => group.clone(),
        };
        let outcome = state
            .actor
            .ask(|reply| Command::Group { op, force: p.flag("force", false), dry_run: p.flag("dryRun", false) && !create, reply })
            .await??;
        if let GroupOutcome::Deployed(d) = &outcome {
            state.app_json.warm(&state.actor.snapshot(), &d.apps);
        }
        Ok((gid, outcome))
    }
    .await;
    match result {
        Ok((gid, GroupOutcome::Deployed(d))) if create => {
            let mut resp = deployment_result(201, &d);
            if let Ok(v) = HeaderValue::from_str(&gid.to_string()) {
                resp.headers_mut().insert("Location", v);
            }
            resp
        }
        Ok((_, GroupOutcome::Deployed(d))) => deployment_result(200, &d),
        Ok((_, GroupOutcome::DryRun(steps))) => {
            let steps: Vec<Value> =
                steps.iter().map(|s| json!({"actions": s.actions.iter().map(action_json).collect::<Vec<_>>()})).collect();
            json_response(200, &json!({ "steps": steps }))
        }
        Err(e) => error(e),
    }
}

/// The group a `{"version"}` or `{"scaleBy"}` body names: its `id` relative to the URL's group,
/// or the URL's group itself.
fn group_in_body(body: &[u8], base: &PathId) -> Result<PathId, ApiError> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match json.get("id").and_then(Value::as_str) {
        Some(raw) => PathId::parse_relative(raw, base).map_err(|e| ApiError::new(422, format!("Invalid group id '{raw}': {e}"))),
        None => Ok(base.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_groups_are_split_like_marathon() {
        assert_eq!(target("a/b"), Target::Group("a/b".into()));
        assert_eq!(target(""), Target::Group(String::new()));
        assert_eq!(target("apps"), Target::Apps(String::new()));
        assert_eq!(target("a/apps"), Target::Apps("a".into()));
        assert_eq!(target("a/versions"), Target::Versions("a".into()));
        assert_eq!(target("versions"), Target::Versions(String::new()));
        assert_eq!(target("a/b/versions/2020-01-01T00:00:00.000Z"), Target::Version("a/b".into(), "2020-01-01T00:00:00.000Z".into()));
        assert_eq!(target("versions/2020-01-01T00:00:00.000Z"), Target::Version(String::new(), "2020-01-01T00:00:00.000Z".into()));
    }
}
