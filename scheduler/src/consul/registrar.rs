//! Keeps Consul in step with the running tasks: whenever the state changes, and every few
//! seconds anyway (anti-entropy), the registrations Consul has from us are compared with those
//! the running tasks call for; missing ones are added and stale ones removed. Consul being down
//! only delays this: the desired set always comes from our state, so nothing is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use framework_core::app::{AppDefinition, HealthCheckProtocol};
use framework_core::instance::{Condition, Goal};
use serde_json::json;
use tokio::sync::watch;

use super::client::{Consul, Registration};
use crate::state::{Instance, Snapshot};

/// Meta key marking our registrations (value: the framework name).
pub const META_FRAMEWORK: &str = "framework";

/// The Consul service name of an app: its `consul.name` label, or its id with `/` → `-`.
pub fn service_name(app: &AppDefinition) -> String {
    app.labels.get("consul.name").cloned().unwrap_or_else(|| app.id.segments().join("-"))
}

/// The Consul check for port `index` of `instance`, from the app's first HTTP/TCP health check
/// on that port.
fn check(app: &AppDefinition, instance: &Instance, index: usize) -> Option<serde_json::Value> {
    let hc = app.health_checks.first()?;
    if hc.port_index.unwrap_or(0) as usize != index || hc.port.is_some() {
        return None;
    }
    let port = instance.ports.get(index)?;
    let interval = format!("{}s", hc.interval_seconds.max(1));
    let timeout = format!("{}s", hc.timeout_seconds.max(1));
    match hc.protocol {
        HealthCheckProtocol::Http | HealthCheckProtocol::MesosHttp => Some(
            json!({"HTTP": format!("http://{}:{port}{}", instance.host, hc.effective_path()), "Interval": interval, "Timeout": timeout}),
        ),
        HealthCheckProtocol::Https | HealthCheckProtocol::MesosHttps => Some(
            json!({"HTTP": format!("https://{}:{port}{}", instance.host, hc.effective_path()), "Interval": interval, "Timeout": timeout, "TLSSkipVerify": true}),
        ),
        HealthCheckProtocol::Tcp | HealthCheckProtocol::MesosTcp => {
            Some(json!({"TCP": format!("{}:{port}", instance.host), "Interval": interval, "Timeout": timeout}))
        }
        HealthCheckProtocol::Command => None,
    }
}

/// The registrations the running tasks call for: one per task and host port (the first port
/// under the service name, further ports as `<name>-<port name or index>`).
pub fn desired(snap: &Snapshot, framework: &str) -> BTreeMap<String, Registration> {
    let mut out = BTreeMap::new();
    for i in snap.instances.values() {
        if i.condition != Condition::Running || i.goal != Goal::Running {
            continue;
        }
        let Some(app) = snap.apps.get(&i.app_id) else { continue };
        let base = service_name(app);
        let names: Vec<Option<String>> = app.port_definitions.iter().flatten().map(|p| p.name.clone()).collect();
        let mut tags: Vec<String> = app
            .labels
            .get("consul.tags")
            .map(|t| t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        tags.extend(app.labels.iter().filter(|(k, _)| !k.starts_with("consul.")).map(|(k, v)| format!("{k}={v}")));
        for (index, port) in i.ports.iter().enumerate() {
            let name = if index == 0 {
                base.clone()
            } else {
                format!("{base}-{}", names.get(index).cloned().flatten().unwrap_or_else(|| index.to_string()))
            };
            let id = format!("{}-{index}", i.task_id);
            let meta = BTreeMap::from([
                (META_FRAMEWORK.to_string(), framework.to_string()),
                ("task_id".to_string(), i.task_id.to_string()),
                ("app_id".to_string(), i.app_id.to_string()),
                ("app_version".to_string(), i.version.to_string()),
            ]);
            out.insert(
                id.clone(),
                Registration { id, name, tags: tags.clone(), address: i.host.to_string(), port: *port, meta, check: check(app, i, index) },
            );
        }
    }
    out
}

/// Runs until aborted (it belongs to a leadership term).
pub async fn run(consul: Consul, framework: String, mut snapshots: watch::Receiver<Arc<Snapshot>>, interval: Duration) {
    let mut retry = crate::retry::Retry::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut resolved: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let snap = snapshots.borrow_and_update().clone();
        let mut wanted = desired(&snap, &framework);
        // Consul gets addresses, not host names (a name may resolve to IPv6 first, or differently
        // on the load balancer); IPv4 is preferred.
        for r in wanted.values_mut() {
            if r.address.parse::<std::net::IpAddr>().is_ok() {
                continue;
            }
            if !resolved.contains_key(&r.address)
                && let Ok(addrs) = tokio::net::lookup_host((r.address.as_str(), 0)).await
            {
                let addrs: Vec<std::net::SocketAddr> = addrs.collect();
                if let Some(a) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
                    resolved.insert(r.address.clone(), a.ip().to_string());
                }
            }
            if let Some(ip) = resolved.get(&r.address) {
                let host = std::mem::replace(&mut r.address, ip.clone());
                if let Some(check) = r.check.as_mut() {
                    for key in ["HTTP", "TCP"] {
                        if let Some(v) = check.get(key).and_then(|v| v.as_str()).map(|v| v.replacen(&host, ip, 1)) {
                            check[key] = serde_json::Value::String(v);
                        }
                    }
                }
            }
        }
        let result: Result<(), super::client::ConsulError> = async {
            let current = consul.agent_services().await?;
            for (id, s) in &current {
                let ours = s.meta.as_ref().and_then(|m| m.get(META_FRAMEWORK)).is_some_and(|f| *f == framework);
                if ours && !wanted.contains_key(id) {
                    tracing::info!(service = %s.service, %id, "deregistering from Consul");
                    consul.deregister(id).await?;
                }
            }
            for (id, r) in &wanted {
                let same = current.get(id).is_some_and(|s| s.port == r.port && s.address == r.address && s.service == r.name);
                if !same {
                    tracing::info!(service = %r.name, %id, port = r.port, "registering in Consul");
                    consul.register(r).await?;
                }
            }
            Ok(())
        }
        .await;
        let pause = match result {
            Ok(()) => {
                retry.reset();
                interval
            }
            Err(e) => {
                tracing::warn!(error = %e, "Consul is not in step yet; retrying");
                retry.next_delay()
            }
        };
        tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return;
                }
                // Let a burst of changes settle into one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            () = tokio::time::sleep(pause) => {}
        }
    }
}
