//! `/v2/deployments`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::Response;
use framework_core::ids::DeploymentId;
use serde_json::Value;

use super::{ApiState, Params, error, json_response, render};
use crate::actor::Command;

/// GET /v2/deployments
pub async fn list(State(state): State<ApiState>) -> Response<Body> {
    let snap = state.actor.snapshot();
    let items: Vec<Value> = snap.deployments.iter().map(|d| render::deployment(&snap, d)).collect();
    json_response(200, &Value::Array(items))
}

/// DELETE /v2/deployments/{id}: roll back (default) or, with `force=true`, just stop it.
pub async fn cancel(State(state): State<ApiState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response<Body> {
    let force = Params::parse(q.as_deref()).flag("force", false);
    let id = DeploymentId(id);
    match state.actor.ask(|reply| Command::CancelDeployment { id, force, reply }).await.and_then(|r| r) {
        Ok(Some(d)) => super::deployment_result(200, &d),
        Ok(None) => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = axum::http::StatusCode::ACCEPTED;
            resp
        }
        Err(e) => error(e),
    }
}
