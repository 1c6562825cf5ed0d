//! Marathon's response JSON: AppInfo, Task, deployments.

use framework_core::app::AppDefinition;
use framework_core::ids::{AppId, DeploymentId};
use framework_core::instance::Condition;
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};

use crate::actor::{action_json, step_json};
use crate::state::{Deployment, DeploymentKey, Instance, Snapshot, TaskCounts, TaskFailure};

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
pub fn task(i: &Instance, app: Option<&AppDefinition>, framework_role: &str) -> Value {
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
        "role": app.and_then(|a| a.role.as_deref()).unwrap_or(framework_role),
    })
}

/// The AppInfo JSON of an app: the definition plus counts, deployments and the requested embeds,
/// serialized straight from the definition (`GET /v2/apps` writes thousands of them; building a
/// JSON tree of each first cost several times more).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo<'a> {
    #[serde(flatten)]
    app: &'a AppDefinition,
    #[serde(flatten)]
    status: AppStatus<'a>,
}

/// What an AppInfo adds to the definition: counts, deployments and the requested embeds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppStatus<'a> {
    tasks_staged: u32,
    tasks_running: u32,
    tasks_healthy: u32,
    tasks_unhealthy: u32,
    deployments: Vec<DeploymentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_task_failure: Option<&'a TaskFailure>,
}

/// `{"id": ...}` of a deployment in an AppInfo.
#[derive(Debug, Serialize)]
struct DeploymentRef {
    id: DeploymentId,
}

impl<'a> AppInfo<'a> {
    /// The AppInfo of `app` in `snap`.
    pub fn new(snap: &'a Snapshot, app: &'a AppDefinition, embed: Embed) -> Self {
        Self::with(snap, app, snap.instances.counts(&app.id), snap.deploying.get(&app.id), embed)
    }

    /// The AppInfo of `app` in `snap`, given its counts and the deployment it is part of.
    fn with(snap: &'a Snapshot, app: &'a AppDefinition, counts: TaskCounts, deployment: Option<&DeploymentKey>, embed: Embed) -> Self {
        AppInfo {
            app,
            status: AppStatus {
                tasks_staged: counts.staged,
                tasks_running: counts.running,
                tasks_healthy: counts.healthy,
                tasks_unhealthy: counts.unhealthy,
                deployments: deployment.map(|(_, id)| DeploymentRef { id: id.clone() }).into_iter().collect(),
                tasks: embed.tasks.then(|| snap.instances_of(&app.id).map(|i| task(i, Some(app), &snap.role)).collect()),
                last_task_failure: if embed.last_task_failure { snap.failures.get(&app.id) } else { None },
            },
        }
    }
}

/// Apps rendered per chunk of a streamed `{"apps": [...]}` answer.
const APPS_PER_CHUNK: usize = 256;

/// The JSON of each app definition as last rendered, reused while the definition is the same
/// `Arc` (an app's definition is replaced, never changed in place). `GET /v2/apps` then writes
/// each app's definition as stored bytes and only its counts and deployments anew: serializing
/// every definition on every request cost about 7 µs per app.
///
/// Entries are keyed by the definition's address, which stays its own while the entry holds the
/// definition weakly (the allocation outlives its last strong reference until the weak one goes).
#[derive(Debug, Default)]
pub struct AppJsonCache(std::sync::Mutex<CacheEntries>);

/// Cached JSON by the address of the definition it was rendered from.
type CacheEntries = std::collections::HashMap<usize, CachedJson>;

/// The definition a JSON was rendered from (held weakly) and that JSON without its closing brace.
type CachedJson = (std::sync::Weak<AppDefinition>, std::sync::Arc<[u8]>);

impl AppJsonCache {
    /// The definition's JSON object without its closing brace.
    fn open_object(entries: &mut CacheEntries, app: &std::sync::Arc<AppDefinition>) -> std::sync::Arc<[u8]> {
        let key = std::sync::Arc::as_ptr(app) as usize;
        if let Some((_, json)) = entries.get(&key) {
            return json.clone();
        }
        let mut json = serde_json::to_vec(&**app).unwrap_or_else(|_| b"{}".to_vec());
        json.pop();
        let json: std::sync::Arc<[u8]> = json.into();
        entries.insert(key, (std::sync::Arc::downgrade(app), json.clone()));
        json
    }

    /// Renders the definitions of `changed` apps now, so that the next `GET /v2/apps` finds them
    /// (the write that changed them pays for this once, instead of the first reader paying for
    /// every app changed since the last read). `snap` is the snapshot after the change.
    pub fn warm(&self, snap: &Snapshot, changed: &[std::sync::Arc<AppDefinition>]) {
        let mut entries = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::prune_entries(&mut entries, snap);
        for app in changed {
            Self::open_object(&mut entries, app);
        }
    }

    /// Drops the entries of definitions that nothing holds any more, once there are more than
    /// twice as many entries as apps in `snap` (so a prune, which visits every entry, comes at
    /// most once per that many changes).
    fn prune(&self, snap: &Snapshot) {
        Self::prune_entries(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner), snap);
    }

    fn prune_entries(entries: &mut CacheEntries, snap: &Snapshot) {
        if entries.len() > 2 * snap.apps.len() + 64 {
            entries.retain(|_, (def, _)| def.strong_count() > 0);
        }
    }

    /// Writes `info` of `app`: the same JSON as serializing it.
    fn write_app_info(entries: &mut CacheEntries, out: &mut Vec<u8>, app: &std::sync::Arc<AppDefinition>, info: &AppInfo) {
        let start = out.len();
        let open = Self::open_object(entries, app);
        out.extend_from_slice(&open);
        let status = out.len();
        if serde_json::to_writer(&mut *out, &info.status).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"{}");
            return;
        }
        // The status is an object: its opening brace becomes the comma after the definition's
        // fields (or goes, if the definition has none).
        if open.len() > 1 {
            out[status] = b',';
        } else {
            out.remove(status);
        }
    }
}

/// Looks values up in a map sorted by app id, for app ids asked in ascending order: one merge
/// step per app instead of a search from the root (`GET /v2/apps` asks for every app in order).
struct InOrder<'a, V: Clone> {
    entries: std::iter::Peekable<imbl::ordmap::Iter<'a, AppId, V, imbl::shared_ptr::DefaultSharedPtr>>,
}

impl<'a, V: Clone> InOrder<'a, V> {
    fn new(map: &'a imbl::OrdMap<AppId, V>) -> Self {
        Self { entries: map.iter().peekable() }
    }

    /// The value of `id`, which must not be below any id asked before.
    fn get(&mut self, id: &AppId) -> Option<&'a V> {
        while let Some((k, v)) = self.entries.peek() {
            match (*k).cmp(id) {
                std::cmp::Ordering::Less => {
                    self.entries.next();
                }
                std::cmp::Ordering::Equal => return Some(v),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

/// `{"apps": [AppInfo, ...]}` of `apps` (in app id order) in `snap`, written while it is sent, a
/// chunk of [`APPS_PER_CHUNK`] apps at a time: at 20,000 apps the whole answer is about 30 MB,
/// which the process would otherwise hold (twice, while its buffer grows) for every concurrent
/// request.
pub fn streamed_apps(
    snap: std::sync::Arc<Snapshot>,
    apps: Vec<std::sync::Arc<AppDefinition>>,
    embed: Embed,
    cache: std::sync::Arc<AppJsonCache>,
) -> axum::response::Response<axum::body::Body> {
    use axum::http::{HeaderValue, header};
    cache.prune(&snap);
    let chunks = apps.len().div_ceil(APPS_PER_CHUNK).max(1);
    // The counts and deployments of every app, found by merging in order (the snapshot's maps
    // and `apps` are all sorted by app id).
    let status: Vec<(TaskCounts, Option<DeploymentKey>)> = {
        let (mut counts, mut deploying) = (InOrder::new(snap.instances.all_counts()), InOrder::new(&snap.deploying));
        apps.iter().map(|a| (counts.get(&a.id).copied().unwrap_or_default(), deploying.get(&a.id).cloned())).collect()
    };
    let body = futures_util::stream::iter(0..chunks).map(move |n| {
        let from = n * APPS_PER_CHUNK;
        let part = apps.get(from..(from + APPS_PER_CHUNK).min(apps.len())).unwrap_or_default();
        let mut out = Vec::with_capacity(part.len() * 1024 + 16);
        if n == 0 {
            out.extend_from_slice(br#"{"apps":["#);
        }
        let mut entries = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, app) in part.iter().enumerate() {
            if n > 0 || i > 0 {
                out.push(b',');
            }
            let (counts, deployment) = &status[from + i];
            let info = AppInfo::with(&snap, app, *counts, deployment.as_ref(), embed);
            AppJsonCache::write_app_info(&mut entries, &mut out, app, &info);
        }
        drop(entries);
        if n + 1 == chunks {
            out.extend_from_slice(b"]}");
        }
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(out))
    });
    let mut resp = axum::response::Response::new(axum::body::Body::from_stream(body));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// The AppInfo JSON as a tree, for answers that add to it.
pub fn app_info(snap: &Snapshot, app: &AppDefinition, embed: Embed) -> Value {
    serde_json::to_value(AppInfo::new(snap, app, embed)).unwrap_or_else(|_| json!({}))
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

#[cfg(test)]
mod tests {
    use super::*;
    use framework_core::ids::AppId;
    use http_body_util::BodyExt as _;

    /// A snapshot of `apps` apps in which every third app runs an instance and is being
    /// deployed, and every fifth has a staging one too; the streamed `GET /v2/apps` answer of it.
    async fn listed(apps: usize) -> (Snapshot, Value) {
        let mut snap = Snapshot::default();
        let mut list = Vec::new();
        for n in 0..apps {
            let body = format!(r#"{{"id": "/app-{n:04}", "cmd": "sleep 1", "instances": 2}}"#);
            let app = std::sync::Arc::new(framework_core::app::parse_app(body.as_bytes(), &AppId::root()).unwrap());
            snap.apps.insert(app.id.clone(), app.clone());
            if n % 3 == 0 {
                snap.instances.insert(std::sync::Arc::new(crate::state::instance(&format!("/app-{n:04}"), "running")));
                snap.deploying.insert(app.id.clone(), (framework_core::ids::Timestamp(1), DeploymentId(format!("deployment-{n}"))));
            }
            if n % 5 == 0 {
                let mut staging = crate::state::instance(&format!("/app-{n:04}"), "staging");
                staging.condition = Condition::Staging;
                snap.instances.insert(std::sync::Arc::new(staging));
            }
            list.push(app);
        }
        let snap = std::sync::Arc::new(snap);
        let resp = streamed_apps(snap.clone(), list, Embed::default(), std::sync::Arc::default());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (std::sync::Arc::unwrap_or_clone(snap), serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn streamed_app_lists_are_one_json_document_in_order() {
        assert_eq!(listed(0).await.1, json!({"apps": []}));
        let (snap, doc) = listed(APPS_PER_CHUNK * 2 + 3).await;
        let apps = doc["apps"].as_array().unwrap();
        assert_eq!(apps.len(), APPS_PER_CHUNK * 2 + 3, "every chunk is there");
        for (n, (got, app)) in apps.iter().zip(snap.apps.values()).enumerate() {
            assert_eq!(got["id"], json!(format!("/app-{n:04}")));
            assert_eq!(got, &app_info(&snap, app, Embed::default()), "app {n}: counts and deployments as looked up one by one");
            assert_eq!(got["tasksRunning"], json!(u32::from(n % 3 == 0)));
            assert_eq!(got["tasksStaged"], json!(u32::from(n % 5 == 0)));
            assert_eq!(got["deployments"].as_array().unwrap().len(), usize::from(n % 3 == 0));
        }
    }

    #[test]
    fn cached_app_json_is_what_serializing_the_app_info_gives() {
        let bodies = [
            r#"{"id": "/web", "cmd": "sleep 1", "instances": 3, "labels": {"team": "a"}, "env": {"A": "1"}}"#,
            r#"{"id": "/shop/api", "container": {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": [{"containerPort": 80, "hostPort": 0}]}, "networks": [{"mode": "container/bridge"}], "healthChecks": [{"protocol": "HTTP", "path": "/"}], "upgradeStrategy": {"minimumHealthCapacity": 0.5}}"#,
        ];
        let cache = AppJsonCache::default();
        let mut snap = Snapshot::default();
        for body in bodies {
            let app = std::sync::Arc::new(framework_core::app::parse_app(body.as_bytes(), &AppId::root()).unwrap());
            snap.apps.insert(app.id.clone(), app.clone());
            for embed in [Embed::default(), Embed { tasks: true, last_task_failure: true }] {
                let expected = serde_json::to_value(AppInfo::new(&snap, &app, embed)).unwrap();
                for round in 0..2 {
                    let mut out = Vec::new();
                    AppJsonCache::write_app_info(&mut cache.0.lock().unwrap(), &mut out, &app, &AppInfo::new(&snap, &app, embed));
                    let got: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
                    assert_eq!(got, expected, "round {round} of {body}");
                }
            }
            // A new definition of the same app is rendered anew, not taken from the cache.
            let mut changed = (*app).clone();
            changed.instances = 7;
            let changed = std::sync::Arc::new(changed);
            snap.apps.insert(changed.id.clone(), changed.clone());
            let mut out = Vec::new();
            AppJsonCache::write_app_info(
                &mut cache.0.lock().unwrap(),
                &mut out,
                &changed,
                &AppInfo::new(&snap, &changed, Embed::default()),
            );
            let got: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(got["instances"], json!(7));
        }
        // Definitions rendered ahead of reads are found by them; once nothing holds them, they
        // leave the cache.
        let before = cache.0.lock().unwrap().len();
        let written: Vec<_> = (0..100)
            .map(|n| {
                std::sync::Arc::new(
                    framework_core::app::parse_app(format!(r#"{{"id": "/w{n}", "cmd": "sleep 1"}}"#).as_bytes(), &AppId::root()).unwrap(),
                )
            })
            .collect();
        cache.warm(&snap, &written);
        assert_eq!(cache.0.lock().unwrap().len(), before + 100, "each written definition is rendered");
        for app in &written {
            let mut out = Vec::new();
            AppJsonCache::write_app_info(&mut cache.0.lock().unwrap(), &mut out, app, &AppInfo::new(&snap, app, Embed::default()));
            assert_eq!(serde_json::from_slice::<Value>(&out).unwrap()["id"], json!(app.id.to_string()));
        }
        assert_eq!(cache.0.lock().unwrap().len(), before + 100, "reads find what writes rendered");
        drop((snap, written));
        cache.prune(&Snapshot::default());
        assert!(cache.0.lock().unwrap().is_empty(), "definitions that nothing holds leave the cache");
    }
}
