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
    // Only keys Marathon 1.10 reports: marathon-python reads `marathon_config`,
    // `zookeeper_config` and `http_config` into classes that refuse any other key.
    let mut marathon_config = json!({
        "master": i.master,
        "framework_name": i.framework_name,
        "failover_timeout": i.failover_timeout,
        "mesos_role": i.role,
        "hostname": i.hostname,
        "checkpoint": true,
        "ha": i.zk.is_some(),
        "webui_url": Value::Null,
        "mesos_leader_ui_url": if snap.master.is_empty() { Value::Null } else { json!(format!("{}/", snap.master)) },
    });
    if let Some(m) = marathon_config.as_object_mut() {
        m.extend(i.config.clone());
    }
    let mut zookeeper_config = json!({});
    if let (Some(zk), Some(m)) = (&i.zk, zookeeper_config.as_object_mut()) {
        m.insert("zk".into(), json!(zk));
        m.extend(i.zookeeper.clone());
    }
    json_response(
        200,
        &json!({
            "name": "framework",
            "version": env!("CARGO_PKG_VERSION"),
            "buildref": "unknown",
            "elected": true,
            "leader": i.advertised,
            "frameworkId": snap.framework_id,
            "marathon_config": marathon_config,
            "zookeeper_config": zookeeper_config,
            "http_config": { "http_port": i.http_port, "https_port": Value::Null, "assets_path": Value::Null },
        }),
    )
}

/// GET /framework/mesos: not Marathon's. The subscription to Mesos as this leader sees it: the
/// master, whether subscribed, the framework id, and the ERROR events Mesos sent (counted, with
/// the last one). Kept out of /v2/info, whose keys marathon-python reads strictly.
pub async fn mesos_status(State(state): State<ApiState>) -> Response<Body> {
    let snap = state.actor.snapshot();
    let e = state.mesos_errors.borrow().clone();
    json_response(
        200,
        &json!({
            "master": if snap.master.is_empty() { Value::Null } else { json!(snap.master) },
            "connected": snap.connected,
            "frameworkId": snap.framework_id,
            "errors": {
                "count": e.count,
                "last_message": e.last.as_ref().map(|(m, _)| m),
                "last_at": e.last.as_ref().map(|(_, at)| at.to_string()),
            },
        }),
    )
}

/// GET /v2/leader
pub async fn leader(State(state): State<ApiState>) -> Response<Body> {
    json_response(200, &json!({ "leader": state.info.advertised }))
}

/// One metric: its Prometheus name, kind, help and value.
struct Metric {
    name: &'static str,
    counter: bool,
    help: &'static str,
    value: f64,
}

/// The metrics, read from the snapshot and the Mesos client.
fn collect(state: &ApiState) -> Vec<Metric> {
    let snap = state.actor.snapshot();
    let c = snap.counters;
    let gauge = |name, help, value: f64| Metric { name, counter: false, help, value };
    let counter = |name, help, value: u64| Metric { name, counter: true, help, value: value as f64 };
    let running = snap.instances.values().filter(|i| i.condition == framework_core::instance::Condition::Running).count();
    vec![
        gauge("marathon_apps_active_gauge", "Apps defined.", snap.apps.len() as f64),
        gauge("marathon_instances_gauge", "Instances known.", snap.instances.len() as f64),
        gauge("marathon_instances_running_gauge", "Instances whose task is running.", running as f64),
        gauge("marathon_deployments_active_gauge", "Deployments in progress.", snap.deployments.len() as f64),
        gauge("marathon_launch_queue_gauge", "Instances waiting for launch.", snap.queue.total() as f64),
        gauge("marathon_mesos_connected", "1 while subscribed to Mesos.", if snap.connected { 1.0 } else { 0.0 }),
        counter("marathon_mesos_offers_received_total", "Offers received.", c.offers_received),
        counter("marathon_mesos_offers_declined_total", "Offers declined.", c.offers_declined),
        counter("marathon_tasks_launched_total", "Tasks launched.", c.tasks_launched),
        counter("marathon_mesos_task_updates_total", "Task status updates received.", c.status_updates),
        counter("marathon_tasks_kills_total", "KILL calls sent.", c.kills_sent),
        counter("marathon_deployments_success_total", "Deployments finished.", c.deployments_succeeded),
        counter("marathon_deployments_cancelled_total", "Deployments cancelled.", c.deployments_cancelled),
        counter("marathon_mesos_subscriptions_total", "Mesos (re)subscriptions.", c.subscriptions),
        counter("marathon_mesos_errors_total", "ERROR events Mesos sent.", state.mesos_errors.borrow().count),
        counter("marathon_reconciliation_rounds_total", "Task reconciliation rounds completed.", c.reconciliation_rounds),
        counter(
            "marathon_reconciliation_retries_total",
            "Explicit reconciliation requests repeated for tasks that had not answered.",
            c.reconciliation_retries,
        ),
        gauge(
            "marathon_reconciliation_pending_gauge",
            "Tasks the reconciliation under way waits to hear about.",
            c.reconciliation_pending as f64,
        ),
    ]
}

/// GET /metrics in Marathon's JSON shape (Dropwizard's: `counters`, `gauges`, `histograms`,
/// `meters`, `timers`), with Marathon's dotted names (`marathon.apps.active.gauge`); the
/// Prometheus text is at /metrics/prometheus.
pub async fn metrics(State(state): State<ApiState>) -> Response<Body> {
    let mut counters = serde_json::Map::new();
    let mut gauges = serde_json::Map::new();
    for m in collect(&state) {
        let dotted = m.name.trim_end_matches("_total").replace('_', ".");
        if m.counter {
            counters.insert(dotted, json!({"count": m.value as u64}));
        } else {
            gauges.insert(dotted, json!({"value": m.value}));
        }
    }
    json_response(200, &json!({"version": "4.0.0", "counters": counters, "gauges": gauges, "histograms": {}, "meters": {}, "timers": {}}))
}

/// GET /metrics/prometheus in the Prometheus text format.
pub async fn metrics_prometheus(State(state): State<ApiState>) -> Response<Body> {
    let mut out = String::new();
    for m in collect(&state) {
        let kind = if m.counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {0} {1}\n# TYPE {0} {kind}\n{0} {2}", m.name, m.help, m.value);
    }
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

/// GET /v2/queue. Each item holds only the keys marathon-python's `MarathonQueueItem` takes
/// (the app carries its role).
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
