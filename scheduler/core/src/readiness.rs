//! Readiness checks: during a deployment a new instance counts only once an HTTP GET on one of
//! its ports answers with a ready status. This module decides where a check polls; the shell
//! polls (see `framework::readiness`).

use crate::app::{AppDefinition, HttpScheme, NetworkMode, ReadinessCheck};
use crate::ids::InstanceId;
use crate::state::Instance;

/// A readiness check to start: which instance, the URL to poll, and the app's check (interval,
/// timeout, statuses meaning ready).
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The instance checked.
    pub instance: InstanceId,
    /// What to GET.
    pub url: String,
    /// The app's first readiness check.
    pub check: ReadinessCheck,
}

/// The URL the app's readiness check polls for `instance`, if the app has one and the port it
/// names exists (a port definition's in host networking, else a port mapping with a host port).
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

/// The probe for `instance` of `app`, if its check has somewhere to poll.
pub fn probe(app: &AppDefinition, instance: &Instance) -> Option<Probe> {
    let url = check_url(app, instance)?;
    Some(Probe { instance: instance.id.clone(), url, check: app.readiness_checks.first()?.clone() })
}
