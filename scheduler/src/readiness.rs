//! Readiness checks: during deployments a new instance counts only once its readiness check
//! (an HTTP GET on one of its ports) answers with a ready status. Each check runs as a small task
//! that reports the first success to the actor and ends; the actor aborts checks of instances
//! that went away.

use std::time::Duration;

use framework_core::app::{AppDefinition, HttpScheme, NetworkMode};
use framework_core::ids::InstanceId;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::actor::Command;
use crate::state::Instance;

/// The URL the app's readiness check polls for `instance`, if the app has one and the port
/// it names exists.
pub fn check_url(app: &AppDefinition, instance: &Instance) -> Option<String> {
    let check = app.readiness_checks.first()?;
    let host_network = app.networks.first().is_none_or(|n| n.mode == NetworkMode::Host);
    let names: Vec<Option<&String>> = if host_network {
        app.port_definitions.iter().flatten().map(|p| p.name.as_ref()).collect()
    } else {
        app.container
            .as_ref()
            .and_then(|c| c.port_mappings.as_ref())
            .map(|m| m.iter().filter(|p| p.host_port.is_some()).map(|p| p.name.as_ref()).collect())
            .unwrap_or_default()
    };
    let index = names.iter().position(|n| n.is_some_and(|n| *n == check.port_name))?;
    let port = instance.ports.get(index)?;
    let scheme = if check.protocol == HttpScheme::Https { "https" } else { "http" };
    let path = if check.path.starts_with('/') { check.path.clone() } else { format!("/{}", check.path) };
    Some(format!("{scheme}://{}:{port}{path}", instance.host))
}

/// Starts polling `url` for `instance`; the first ready answer is sent to the actor.
pub fn spawn(
    app: &AppDefinition,
    instance: InstanceId,
    url: String,
    actor: mpsc::Sender<Command>,
    http: reqwest::Client,
) -> Option<AbortHandle> {
    let check = app.readiness_checks.first()?.clone();
    let interval = Duration::from_secs(u64::from(check.interval_seconds.max(1)));
    let timeout = Duration::from_secs(u64::from(check.timeout_seconds.max(1)));
    let task = tokio::spawn(async move {
        loop {
            if let Ok(Ok(resp)) = tokio::time::timeout(timeout, http.get(&url).send()).await
                && check.http_status_codes_for_ready.contains(&resp.status().as_u16())
            {
                let _ = actor.send(Command::Ready { instance }).await;
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    Some(task.abort_handle())
}
