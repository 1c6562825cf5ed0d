//! Normalization: turning an app as read (possibly using deprecated fields) into Marathon's
//! canonical form, as `AppNormalization.forDeprecated` and `forPostValidation` do in 1.10.
//!
//! - `uris` become `fetch` entries (`extract` when the name ends in an archive suffix).
//! - `container.docker.network` becomes `networks`: BRIDGE → `container/bridge`, USER →
//!   `container`, HOST → `host`; NONE is refused, as in Marathon.
//! - `container.docker.portMappings` move to `container.portMappings`.
//! - `ports` become `portDefinitions`.
//! - Host networking (also: no `networks`): `portDefinitions` default to Marathon 1.10's
//!   `[{port: 0, protocol: tcp, name: "default"}]` (`Apps.DefaultPortDefinitions`; an explicit
//!   `[]` stays empty) and `container.portMappings` are dropped.
//! - Other networking: `portDefinitions` are dropped; `container.portMappings` default to
//!   `[{containerPort: 0, name: "default"}]` (an explicit `[]` stays empty) and grow with unnamed
//!   mappings up to the number of given port definitions; an app without a container gets an
//!   empty MESOS container; bridge mappings without `hostPort` get `hostPort: 0`;
//!   `requirePorts` becomes false.
//! - `networks` default to `[{mode: host}]`.
//! - Health checks other than COMMAND that name neither `port` nor `portIndex` get
//!   `portIndex: 0` when the app has ports. (Marathon looks at the *given* port definitions
//!   here, so a body relying on the default port definition keeps no index until its next
//!   update; we use the normalized ports so that normalizing twice changes nothing.)
//! - Readiness checks with no status codes get `[200]`.
//!
//! Normalization is idempotent. Conflicts Marathon only finds while normalizing (it answers
//! them with HTTP 500) are returned as violations here.

use super::definition::*;
use super::error::{Violation, Violations};

/// Archive suffixes the Mesos fetcher extracts (Marathon's `FetchUri.isExtract`).
const ARCHIVES: &[&str] = &[".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"];

/// Brings `app` into Marathon's canonical form (see the module docs).
pub fn normalize(mut app: AppDefinition) -> Result<AppDefinition, Vec<Violation>> {
    let mut e = Violations::default();

    // Deprecated `uris`.
    if !app.uris.is_empty() {
        if app.fetch.is_empty() {
            app.fetch = app
                .uris
                .iter()
                .map(|uri| Artifact { extract: ARCHIVES.iter().any(|s| uri.ends_with(s)), ..Artifact::new(uri.clone()) })
                .collect();
        } else {
            e.add("/", "cannot specify both uris and fetch fields");
        }
        app.uris.clear();
    }

    // Deprecated `container.docker.network`.
    let docker_network = app.container.as_ref().and_then(|c| c.docker.as_ref()).and_then(|d| d.network);
    match docker_network {
        Some(_) if !app.networks.is_empty() => e.add("/", "cannot mix deprecated and canonical network APIs"),
        Some(DockerNetwork::None) => {
            e.add("/container/docker/network", "unsupported docker network type NONE");
        }
        Some(net) => {
            let mode = match net {
                DockerNetwork::Bridge => NetworkMode::ContainerBridge,
                DockerNetwork::User => NetworkMode::Container,
                DockerNetwork::Host | DockerNetwork::None => NetworkMode::Host,
            };
            app.networks = vec![Network::of(mode)];
        }
        None => {}
    }
    let non_host = app.has_non_host_networking();

    // Deprecated `ports`, and the default port definition.
    let migrated = app.port_definitions.take().or_else(|| {
        app.ports.take().map(|ports| ports.into_iter().map(|port| PortDefinition { port, ..PortDefinition::default() }).collect())
    });
    app.ports = None;
    let migrated_count = migrated.as_ref().map_or(0, Vec::len);
    app.port_definitions = if non_host { None } else { Some(migrated.unwrap_or_else(|| vec![default_port_definition()])) };

    // The container's port mappings (the rule order matters, as Marathon warns).
    if let Some(c) = app.container.as_mut() {
        if let Some(docker) = c.docker.as_mut() {
            if let Some(legacy) = docker.port_mappings.take() {
                // Marathon tests `container.portMappings` for presence, not for content.
                match (c.port_mappings.is_some(), legacy.is_empty()) {
                    (true, false) => e.add("/", "cannot specify both portMappings and docker.portMappings"),
                    (true, true) => {}
                    (false, _) => c.port_mappings = Some(legacy),
                }
            }
            docker.network = None;
        }
        if non_host {
            let mappings = c.port_mappings.get_or_insert_with(|| vec![default_port_mapping()]);
            while mappings.len() < migrated_count {
                mappings.push(PortMapping::default());
            }
        } else {
            c.port_mappings = None;
        }
    }

    // Post-validation defaults.
    if app.networks.is_empty() {
        app.networks = vec![Network::host()];
    }
    if non_host {
        app.require_ports = false;
        let container = app
            .container
            .get_or_insert_with(|| Container { port_mappings: Some(vec![default_port_mapping()]), ..Container::of(ContainerType::Mesos) });
        if app.networks.iter().any(|n| n.mode == NetworkMode::ContainerBridge) {
            for m in container.port_mappings.iter_mut().flatten() {
                m.host_port.get_or_insert(0);
            }
        }
    }

    // Health and readiness checks.
    if app.port_count() > 0 {
        for check in &mut app.health_checks {
            if check.protocol != HealthCheckProtocol::Command && check.port.is_none() && check.port_index.is_none() {
                check.port_index = Some(0);
            }
        }
    }
    for check in &mut app.readiness_checks {
        if check.http_status_codes_for_ready.is_empty() {
            check.http_status_codes_for_ready = vec![200];
        }
    }

    e.into_result().map(|()| app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::read::read_app;
    use crate::ids::PathId;
    use serde_json::{Value, json};

    fn norm(v: Value) -> AppDefinition {
        normalize(read_app(&v, "", &PathId::root()).unwrap()).unwrap()
    }

    fn norm_err(v: Value) -> Vec<Violation> {
        normalize(read_app(&v, "", &PathId::root()).unwrap()).unwrap_err()
    }

    #[test]
    fn plain_app_gets_host_network_and_default_port() {
        let a = norm(json!({"id": "/a", "cmd": "x"}));
        assert_eq!(a, AppDefinition { cmd: Some("x".into()), ..AppDefinition::new(PathId::parse("/a").unwrap()) });
        let a = norm(json!({"id": "/a", "cmd": "x", "portDefinitions": []}));
        assert_eq!(a.port_definitions, Some(vec![]));
    }

    #[test]
    fn legacy_bridge_docker_app() {
        let a = norm(json!({
            "id": "/a",
            "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "protocol": "tcp", "name": "http"}]}},
            "ports": [0, 0]
        }));
        assert_eq!(a.networks, vec![Network::of(NetworkMode::ContainerBridge)]);
        assert_eq!(a.port_definitions, None);
        assert!(a.ports.is_none());
        let c = a.container.unwrap();
        let d = c.docker.unwrap();
        assert!(d.network.is_none() && d.port_mappings.is_none());
        let pm = c.port_mappings.unwrap();
        assert_eq!(pm.len(), 2, "grown to the number of legacy ports");
        assert_eq!(pm[0].container_port, 80);
        assert_eq!(pm[0].host_port, Some(0), "bridge host ports default to 0");
        assert_eq!(pm[1], PortMapping { host_port: Some(0), ..PortMapping::default() });
    }

    #[test]
    fn legacy_user_and_host_networks() {
        let a = norm(json!({"id": "/a", "container": {"docker": {"image": "i", "network": "USER"}}}));
        assert_eq!(a.networks, vec![Network::of(NetworkMode::Container)]);
        let c = a.container.unwrap();
        assert_eq!(c.port_mappings, Some(vec![default_port_mapping()]), "container mode keeps hostPort unset");
        let a = norm(json!({"id": "/a", "container": {"docker": {"image": "i", "network": "HOST",
            "portMappings": [{"containerPort": 1}]}}, "ports": [8080]}));
        assert_eq!(a.networks, vec![Network::host()]);
        assert_eq!(a.container.unwrap().port_mappings, None, "host networking drops mappings");
        assert_eq!(a.port_definitions, Some(vec![PortDefinition { port: 8080, ..PortDefinition::default() }]));
    }

    #[test]
    fn non_host_network_without_container_gets_mesos_container() {
        let a = norm(json!({"id": "/a", "cmd": "x", "networks": [{"mode": "container/bridge"}], "requirePorts": true}));
        let c = a.container.unwrap();
        assert_eq!(c.kind, ContainerType::Mesos);
        assert_eq!(c.port_mappings, Some(vec![PortMapping { host_port: Some(0), ..default_port_mapping() }]));
        assert!(!a.require_ports);
        let a = norm(json!({"id": "/a", "networks": [{"mode": "container", "name": "n"}],
            "container": {"docker": {"image": "i"}, "portMappings": []}}));
        assert_eq!(a.container.unwrap().port_mappings, Some(vec![]), "explicit [] stays empty");
    }

    #[test]
    fn uris_become_fetch_and_checks_get_defaults() {
        let a = norm(json!({"id": "/a", "cmd": "x", "uris": ["http://h/a.tar.gz", "http://h/b.bin"],
            "healthChecks": [{"protocol": "HTTP"}, {"protocol": "COMMAND", "command": {"value": "true"}}, {"port": 80}]}));
        assert!(a.uris.is_empty());
        assert_eq!(a.fetch, vec![Artifact::new("http://h/a.tar.gz"), Artifact { extract: false, ..Artifact::new("http://h/b.bin") }]);
        assert_eq!(a.health_checks[0].port_index, Some(0));
        assert_eq!(a.health_checks[1].port_index, None);
        assert_eq!(a.health_checks[2].port_index, None);
    }

    #[test]
    fn conflicts_found_while_normalizing() {
        let e = norm_err(json!({"id": "/a", "container": {"docker": {"image": "i", "network": "NONE"}}}));
        assert_eq!(e, vec![Violation::new("/container/docker/network", "unsupported docker network type NONE")]);
        let e = norm_err(json!({"id": "/a", "networks": [{"mode": "container/bridge"}], "container": {
            "portMappings": [{"containerPort": 1}], "docker": {"image": "i", "portMappings": [{"containerPort": 2}]}}}));
        assert_eq!(e, vec![Violation::new("/", "cannot specify both portMappings and docker.portMappings")]);
    }

    #[test]
    fn idempotent() {
        for body in [
            json!({"id": "/a", "cmd": "x"}),
            json!({"id": "/a", "container": {"docker": {"image": "i", "network": "BRIDGE"}}, "ports": [0, 0, 0]}),
            json!({"id": "/a", "cmd": "x", "networks": [{"mode": "container", "name": "n"}], "healthChecks": [{}]}),
        ] {
            let once = norm(body);
            assert_eq!(normalize(once.clone()).unwrap(), once);
        }
    }
}
