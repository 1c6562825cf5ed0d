//! `/v2/info`, `/v2/leader`, `/ping`, `/metrics`, `/v2/queue`.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Response, header};
use framework_core::ids::PathId;
use serde_json::{Value, json};

use super::{ApiState, Params, error, json_response};
use crate::actor::{Command, now};
use crate::error::ApiError;

/// GET /v2/info
pub async fn info(State(state): State<ApiState>) -> Response<Body> {
    let snap = state.actor.snapshot();
    let i = &state.info;
    json_response(
        200,
        &json!({
            "name": "framework",
            "version": env!("CARGO_PKG_VERSION"),
            "buildref": "unknown",
            "elected": true,
            "leader": i.advertised,
            "frameworkId": snap.framework_id,
            "marathon_config": {
                "master": i.master,
                "framework_name": i.framework_name,
                "failover_timeout": i.failover_timeout,
                "mesos_role": i.role,
                "hostname": i.hostname,
                "checkpoint": true,
                "local_port_min": i.local_ports.0,
                "local_port_max": i.local_ports.1,
                "mesos_leader_ui_url": if snap.master.is_empty() { Value::Null } else { json!(format!("{}/", snap.master)) },
                // Not Marathon's: the ERROR events Mesos sent (kept in marathon_config, which
                // clients read as a map, so that no client meets an unknown top-level key).
                "mesos_errors": mesos_errors(&state.mesos_errors.borrow()),
            },
            "zookeeper_config": match &i.zk {
                Some(zk) => json!({"zk": zk}),
                None => json!({}),
            },
            "http_config": { "http_port": i.http_port, "https_port": Value::Null },
        }),
    )
}

/// The ERROR events Mesos sent, for /v2/info.
fn mesos_errors(e: &crate::mesos::MesosErrors) -> Value {
    json!({
        "count": e.count,
        "last_message": e.last.as_ref().map(|(m, _)| m),
        "last_at": e.last.as_ref().map(|(_, at)| at.to_string()),
    })
}

/// GET /v2/leader
pub async fn leader(State(state): State<ApiState>) -> Response<Body> {
    json_response(200, &json!({ "leader": state.info.advertised }))
}

/// GET /metrics in the Prometheus text format.
pub async fn metrics(State(state): State<ApiState>) -> Response<Body> {
    let snap = state.actor.snapshot();
    let c = snap.counters;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric("marathon_apps_active_gauge", "gauge", "Apps defined.", snap.apps.len() as f64);
    metric("marathon_instances_gauge", "gauge", "Instances known.", snap.instances.len() as f64);
    metric(
        "marathon_instances_running_gauge",
        "gauge",
        "Instances whose task is running.",
        snap.instances.values().filter(|i| i.condition == framework_core::instance::Condition::Running).count() as f64,
    );
    metric("marathon_deployments_active_gauge", "gauge", "Deployments in progress.", snap.deployments.len() as f64);
    metric("marathon_launch_queue_gauge", "gauge", "Instances waiting for launch.", snap.queue.total() as f64);
    metric("marathon_mesos_connected", "gauge", "1 while subscribed to Mesos.", if snap.connected { 1.0 } else { 0.0 });
    metric("marathon_mesos_offers_received_total", "counter", "Offers received.", c.offers_received as f64);
    metric("marathon_mesos_offers_declined_total", "counter", "Offers declined.", c.offers_declined as f64);
    metric("marathon_tasks_launched_total", "counter", "Tasks launched.", c.tasks_launched as f64);
    metric("marathon_mesos_task_updates_total", "counter", "Task status updates received.", c.status_updates as f64);
    metric("marathon_tasks_kills_total", "counter", "KILL calls sent.", c.kills_sent as f64);
    metric("marathon_deployments_success_total", "counter", "Deployments finished.", c.deployments_succeeded as f64);
    metric("marathon_deployments_cancelled_total", "counter", "Deployments cancelled.", c.deployments_cancelled as f64);
    metric("marathon_mesos_subscriptions_total", "counter", "Mesos (re)subscriptions.", c.subscriptions as f64);
    metric("marathon_mesos_errors_total", "counter", "ERROR events Mesos sent.", state.mesos_errors.borrow().count as f64);
    metric("marathon_reconciliation_rounds_total", "counter", "Task reconciliation rounds completed.", c.reconciliation_rounds as f64);
    metric(
        "marathon_reconciliation_retries_total",
        "counter",
        "Explicit reconciliation requests repeated for tasks that had not answered.",
        c.reconciliation_retries as f64,
    );
    metric(
        "marathon_reconciliation_pending_gauge",
        "gauge",
        "Tasks the reconciliation under way waits to hear about.",
        c.reconciliation_pending as f64,
    );
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

/// GET /v2/queue
pub async fn queue(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Response<Body> {
    let _ = Params::parse(q.as_deref());
    let snap = state.actor.snapshot();
    let now = now();
    let items: Vec<Value> = snap
        .queue
        .entries(&snap.apps, now)
        .iter()
        .map(|e| {
            let s = &e.stats;
            json!({
                "app": super::render::app_info(&snap, &e.app, super::render::Embed::default()),
                "count": e.count,
                "role": e.app.role.clone().unwrap_or_else(|| state.info.role.clone()),
                "delay": { "timeLeftSeconds": (e.delay_left_ms.max(0) + 999) / 1000, "overdue": e.delay_left_ms <= 0 && now.0 - e.since.0 > 60_000 },
                "since": e.since,
                "processedOffersSummary": {
                    "processedOffersCount": s.processed_offers_count,
                    "unusedOffersCount": s.unused_offers_count,
                    "lastUnusedOfferAt": s.last_unused_offer_at,
                    "lastUsedOfferAt": s.last_used_offer_at,
                    "rejectSummaryLastOffers": s.rejections.iter().map(|(reason, n)| json!({"reason": reason, "declined": n, "processed": s.processed_offers_count})).collect::<Vec<_>>(),
                    "rejectSummaryLaunchAttempt": s.rejections.iter().map(|(reason, n)| json!({"reason": reason, "declined": n, "processed": s.processed_offers_count})).collect::<Vec<_>>(),
                },
            })
        })
        .collect();
    json_response(200, &json!({ "queue": items }))
}

/// DELETE /v2/queue/{appId}/delay
pub async fn reset_delay(State(state): State<ApiState>, Path(rest): Path<String>) -> Response<Body> {
    let Some(raw) = rest.strip_suffix("/delay") else { return error(ApiError::new(404, "URI not found")) };
    let app = match PathId::parse(raw) {
        Ok(id) => id,
        Err(e) => return error(ApiError::new(400, format!("Invalid app id '{raw}': {e}"))),
    };
    if !state.actor.snapshot().apps.contains_key(&app) {
        return error(ApiError::app_not_found(&app));
    }
    match state.actor.ask(|reply| Command::ResetDelay { app: app.clone(), reply }).await {
        // Marathon answers 204 No Content.
        Ok(true) => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = axum::http::StatusCode::NO_CONTENT;
            resp
        }
        Ok(false) => error(ApiError::new(404, format!("Application {app} not found in tasks queue."))),
        Err(e) => error(e),
    }
}

/// GET /v2/plugins: Marathon's plugin list; this server has no plugins.
pub async fn plugins() -> Response<Body> {
    super::json_response(200, &serde_json::json!({ "plugins": [] }))
}
