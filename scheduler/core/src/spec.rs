//! Translation between Marathon app definitions and what the core and Mesos need: task
//! requests for matching, `TaskInfo`s to launch, planner inputs, version stamps. Plain
//! functions, no I/O.

use crate::app::{
    AppDefinition, ContainerType, DockerNetwork, HealthCheck, HealthCheckProtocol, NetworkMode, PortMapping, Protocol, ReadMode,
    VersionInfo, Volume,
};
use crate::deploy::{BackoffPolicy, KillSelection, PlannedApp};
use crate::ids::{TaskId, Timestamp};
use crate::matching::{Constraint, Matched, PortRequest, TaskRequest};
use mesos_proto::v1::{self, command_info, container_info, health_check, value};

/// The app's backoff settings.
pub fn backoff_policy(app: &AppDefinition) -> BackoffPolicy {
    BackoffPolicy {
        seconds: f64::from(app.backoff_seconds),
        factor: app.backoff_factor,
        max_seconds: f64::from(app.max_launch_delay_seconds),
    }
}

/// The app's kill selection.
pub fn kill_selection(app: &AppDefinition) -> KillSelection {
    match app.kill_selection {
        crate::app::KillSelection::OldestFirst => KillSelection::OldestFirst,
        crate::app::KillSelection::YoungestFirst => KillSelection::YoungestFirst,
    }
}

/// `(minimumHealthCapacity, maximumOverCapacity)`.
pub fn upgrade_strategy(app: &AppDefinition) -> (f64, f64) {
    (app.upgrade_strategy.minimum_health_capacity, app.upgrade_strategy.maximum_over_capacity)
}

/// Desired instances.
pub fn instances(app: &AppDefinition) -> u32 {
    app.instances
}

/// Whether tasks of the app report health (every health check is run by Mesos).
pub fn has_health_checks(app: &AppDefinition) -> bool {
    !app.health_checks.is_empty()
}

/// When the app's configuration last changed (instances launched before it are outdated).
pub fn config_version(app: &AppDefinition) -> Timestamp {
    app.version_info.as_ref().map(|v| v.last_config_change_at).or(app.version).unwrap_or_default()
}

/// Sets the version of a changed app: a scale-only change keeps the last configuration change.
pub fn stamp_version(app: &mut AppDefinition, old: Option<&AppDefinition>, version: Timestamp) {
    let last_config_change_at = match old {
        Some(o) if o.config_key() == app.config_key() => config_version(o),
        _ => version,
    };
    app.version = Some(version);
    app.version_info = Some(VersionInfo { last_scaling_at: version, last_config_change_at });
}

/// Sets the version of a restarted app: same configuration, but every instance is outdated.
pub fn stamp_restart(app: &mut AppDefinition, version: Timestamp) {
    app.version = Some(version);
    app.version_info = Some(VersionInfo { last_scaling_at: version, last_config_change_at: version });
}

/// Sets the version of an app rolled back to an earlier definition: instances of that
/// configuration stay current.
pub fn stamp_rollback(app: &mut AppDefinition, version: Timestamp) {
    let last_config_change_at = config_version(app);
    app.version = Some(version);
    app.version_info = Some(VersionInfo { last_scaling_at: version, last_config_change_at });
}

/// The planner's view of an app: a restart is needed when the configuration or the last
/// configuration change differs.
pub fn planned(app: &AppDefinition) -> PlannedApp {
    PlannedApp {
        id: app.id.clone(),
        instances: app.instances,
        dependencies: app.dependencies.clone(),
        config_key: format!("{}@{}", app.config_key(), config_version(app)),
    }
}

/// Whether the app uses host networking (the default).
fn host_networking(app: &AppDefinition) -> bool {
    app.networks.first().is_none_or(|n| n.mode == NetworkMode::Host)
}

/// The port mappings that ask for a host port, in order.
fn host_mappings(app: &AppDefinition) -> Vec<&PortMapping> {
    app.container
        .as_ref()
        .and_then(|c| c.port_mappings.as_ref())
        .map(|m| m.iter().filter(|p| p.host_port.is_some()).collect())
        .unwrap_or_default()
}

/// The host ports a task of the app needs, in the order of its port definitions or mappings.
pub fn port_requests(app: &AppDefinition) -> Vec<PortRequest> {
    if host_networking(app) {
        app.port_definitions
            .iter()
            .flatten()
            .map(|pd| if app.require_ports && pd.port != 0 { PortRequest::Exact(pd.port) } else { PortRequest::Any })
            .collect()
    } else {
        host_mappings(app)
            .into_iter()
            .map(|m| match m.host_port {
                Some(p) if p != 0 => PortRequest::Exact(p),
                _ => PortRequest::Any,
            })
            .collect()
    }
}

/// The service ports of the app (`servicePorts` in task JSON).
pub fn service_ports(app: &AppDefinition) -> Vec<u32> {
    if host_networking(app) {
        app.port_definitions.iter().flatten().map(|p| p.port).collect()
    } else {
        host_mappings(app).into_iter().map(|m| m.service_port).collect()
    }
}

/// What a task of the app needs from an offer.
pub fn task_request(app: &AppDefinition) -> TaskRequest {
    TaskRequest {
        cpus: app.cpus,
        mem: app.mem,
        disk: app.disk,
        gpus: app.gpus,
        host_ports: port_requests(app),
        // Apps are validated before they are stored, so every constraint parses.
        constraints: app.constraints.iter().filter_map(|c| Constraint::parse(c).ok()).collect(),
        accepted_roles: app.accepted_resource_roles.clone().unwrap_or_default(),
        keep_off_gpu_agents: false,
        home_region: None,
    }
}

/// Removes what a launch took from an offer, so the rest can be matched again.
#[allow(deprecated)] // `Resource.role` is deprecated but still how pre-refinement roles arrive.
pub fn subtract(offer: &mut v1::Offer, used: &[v1::Resource]) {
    for u in used {
        let same = |r: &v1::Resource| {
            r.name == u.name && r.reservations == u.reservations && r.allocation_info == u.allocation_info && r.role == u.role
        };
        if let Some(s) = &u.scalar {
            let mut left = s.value;
            for r in offer.resources.iter_mut().filter(|r| same(r)) {
                if let Some(rs) = r.scalar.as_mut() {
                    let take = rs.value.min(left);
                    rs.value -= take;
                    left -= take;
                }
            }
        }
        if let Some(used_ranges) = &u.ranges {
            for r in offer.resources.iter_mut().filter(|r| same(r)) {
                if let Some(rr) = r.ranges.as_mut() {
                    for ur in &used_ranges.range {
                        rr.range = rr
                            .range
                            .iter()
                            .flat_map(|x| {
                                let mut parts = Vec::new();
                                if ur.begin > x.begin {
                                    parts.push(value::Range { begin: x.begin, end: x.end.min(ur.begin - 1) });
                                }
                                if ur.end < x.end {
                                    parts.push(value::Range { begin: x.begin.max(ur.end + 1), end: x.end });
                                }
                                if ur.end < x.begin || ur.begin > x.end {
                                    parts = vec![*x];
                                }
                                parts
                            })
                            .collect();
                    }
                }
            }
        }
    }
    offer.resources.retain(|r| r.scalar.is_none_or(|s| s.value > 1e-9) && r.ranges.as_ref().is_none_or(|x| !x.range.is_empty()));
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Udp => "udp",
        _ => "tcp",
    }
}

/// The Mesos health check for the app's first health check (Mesos runs every check; Marathon's
/// HTTP/HTTPS/TCP checks become Mesos HTTP/TCP checks on the task's port).
fn health_check(app: &AppDefinition, ports: &[u32]) -> Option<v1::HealthCheck> {
    let hc: &HealthCheck = app.health_checks.first()?;
    let port = hc.port.or_else(|| ports.get(hc.port_index.unwrap_or(0) as usize).copied());
    // Marathon-level checks with maxConsecutiveFailures 0 never kill; Mesos needs a number.
    let failures = if hc.max_consecutive_failures == 0 && !hc.protocol.is_mesos() { u32::MAX } else { hc.max_consecutive_failures.max(1) };
    let mut check = v1::HealthCheck {
        delay_seconds: Some(f64::from(hc.delay_seconds)),
        interval_seconds: Some(f64::from(hc.interval_seconds)),
        timeout_seconds: Some(f64::from(hc.timeout_seconds)),
        consecutive_failures: Some(failures),
        grace_period_seconds: Some(f64::from(hc.grace_period_seconds)),
        ..Default::default()
    };
    match hc.protocol {
        HealthCheckProtocol::Command => {
            check.r#type = Some(health_check::Type::Command as i32);
            check.command =
                Some(v1::CommandInfo { shell: Some(true), value: hc.command.as_ref().map(|c| c.value.clone()), ..Default::default() });
        }
        HealthCheckProtocol::Tcp | HealthCheckProtocol::MesosTcp => {
            check.r#type = Some(health_check::Type::Tcp as i32);
            check.tcp = Some(health_check::TcpCheckInfo { port: port?, ..Default::default() });
        }
        HealthCheckProtocol::Http | HealthCheckProtocol::Https | HealthCheckProtocol::MesosHttp | HealthCheckProtocol::MesosHttps => {
            let https = matches!(hc.protocol, HealthCheckProtocol::Https | HealthCheckProtocol::MesosHttps);
            check.r#type = Some(health_check::Type::Http as i32);
            check.http = Some(health_check::HttpCheckInfo {
                scheme: https.then(|| "https".to_string()),
                port: port?,
                path: Some(hc.effective_path().to_string()),
                ..Default::default()
            });
        }
    }
    Some(check)
}

/// The app label that asks for `framework-executor` instead of the agent's Docker containerizer.
pub const EXECUTOR_LABEL: &str = "FRAMEWORK_EXECUTOR";
/// Its value.
pub const EXECUTOR_LABEL_VALUE: &str = "framework-executor";

/// How Docker tasks are run. By default as Marathon runs them: a TaskInfo with a DOCKER container
/// and the command, no executor, which the agent's Docker containerizer runs with nothing
/// installed. Our `framework-executor` only where asked for (`--docker-executor
/// framework-executor`, or the app label `FRAMEWORK_EXECUTOR: framework-executor`), found at a
/// path on the agent or fetched from a URI.
#[derive(Debug, Clone, Default)]
pub struct ExecutorSettings {
    /// Path of `framework-executor` on the agents.
    pub path: String,
    /// Where agents fetch it from, if not installed.
    pub uri: Option<String>,
    /// Every Docker app runs through `framework-executor`.
    pub always: bool,
}

impl ExecutorSettings {
    /// Whether `app`'s Docker tasks run through `framework-executor`.
    pub fn used_by(&self, app: &AppDefinition) -> bool {
        self.always || app.labels.get(EXECUTOR_LABEL).is_some_and(|v| v == EXECUTOR_LABEL_VALUE)
    }
}

/// How long an executor has to end after the agent asks it to shut down, beyond its task's kill
/// grace period (Mesos's default executor shutdown grace period).
const EXECUTOR_SHUTDOWN_MARGIN_SECS: i64 = 5;

/// The ExecutorInfo that runs one Docker task (one executor per task, named after it). Its
/// shutdown grace period covers the task's kill grace period, so that the agent does not kill
/// the executor while its task is still stopping gracefully.
fn docker_executor(task_id: &TaskId, offer: &v1::Offer, settings: &ExecutorSettings, kill_grace_secs: Option<u32>) -> v1::ExecutorInfo {
    let (value, uris) = match &settings.uri {
        Some(uri) => {
            let file = uri.rsplit('/').next().unwrap_or("framework-executor").to_string();
            (
                format!("./{file}"),
                vec![command_info::Uri { value: uri.clone(), executable: Some(true), extract: Some(false), ..Default::default() }],
            )
        }
        None => (settings.path.clone(), Vec::new()),
    };
    v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Custom as i32),
        executor_id: v1::ExecutorId { value: task_id.to_string() },
        framework_id: Some(offer.framework_id.clone()),
        name: Some("framework-executor".to_string()),
        shutdown_grace_period: Some(v1::DurationInfo {
            nanoseconds: (i64::from(kill_grace_secs.unwrap_or(3)) + EXECUTOR_SHUTDOWN_MARGIN_SECS) * 1_000_000_000,
        }),
        command: Some(v1::CommandInfo {
            shell: Some(false),
            value: Some(value.clone()),
            arguments: vec![value],
            uris,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Mesos task that runs one instance of `app` on `offer` with the matched resources. Docker
/// apps carry their command in `TaskInfo.command` for the agent's Docker containerizer, or, on
/// `framework-executor` ([`ExecutorSettings::used_by`]), in `TaskInfo.data` (Mesos allows no
/// `TaskInfo.command` next to an executor).
pub fn task_info(app: &AppDefinition, task_id: &TaskId, offer: &v1::Offer, m: &Matched, executor: &ExecutorSettings) -> v1::TaskInfo {
    let env = crate::app::task_env(app, task_id, &offer.hostname, &m.host_ports);
    let docker_image = app.container.as_ref().and_then(|c| c.docker.as_ref()).map(|d| d.image.clone());
    let is_docker = app.container.as_ref().is_some_and(|c| c.kind == ContainerType::Docker) && docker_image.is_some();
    let mut command = v1::CommandInfo {
        environment: Some(v1::Environment {
            variables: env
                .into_iter()
                .map(|(name, value)| v1::environment::Variable { name, value: Some(value), ..Default::default() })
                .collect(),
        }),
        user: app.user.clone(),
        uris: app
            .fetch
            .iter()
            .map(|a| command_info::Uri {
                value: a.uri.clone(),
                executable: Some(a.executable),
                extract: Some(a.extract),
                cache: Some(a.cache),
                output_file: a.dest_path.clone(),
            })
            .chain(app.uris.iter().map(|u| command_info::Uri { value: u.clone(), extract: Some(true), ..Default::default() }))
            .collect(),
        ..Default::default()
    };
    match (&app.cmd, app.args.as_slice()) {
        (Some(cmd), _) => {
            command.shell = Some(true);
            command.value = Some(cmd.clone());
        }
        (None, [first, ..]) => {
            command.shell = Some(false);
            if !is_docker {
                command.value = Some(first.clone());
            }
            command.arguments = app.args.clone();
        }
        (None, []) => command.shell = Some(false),
    }
    let container = app.container.as_ref().map(|c| {
        // Host volumes only: validation refuses the other kinds.
        let volumes = c
            .volumes
            .iter()
            .filter_map(|v| match v {
                Volume::Host { container_path, host_path, mode } => Some(v1::Volume {
                    mode: if *mode == ReadMode::Ro { v1::volume::Mode::Ro } else { v1::volume::Mode::Rw } as i32,
                    container_path: container_path.clone(),
                    host_path: Some(host_path.clone()),
                    ..Default::default()
                }),
                Volume::Other(_) => None,
            })
            .collect();
        let mut info = v1::ContainerInfo { volumes, ..Default::default() };
        match (c.kind, &c.docker) {
            (ContainerType::Docker, Some(d)) => {
                info.r#type = container_info::Type::Docker as i32;
                let network = match app.networks.first().map(|n| n.mode) {
                    Some(NetworkMode::ContainerBridge) => container_info::docker_info::Network::Bridge,
                    Some(NetworkMode::Container) => container_info::docker_info::Network::User,
                    _ => match d.network {
                        Some(DockerNetwork::Bridge) => container_info::docker_info::Network::Bridge,
                        Some(DockerNetwork::None) => container_info::docker_info::Network::None,
                        Some(DockerNetwork::User) => container_info::docker_info::Network::User,
                        _ => container_info::docker_info::Network::Host,
                    },
                };
                let port_mappings = if host_networking(app) {
                    Vec::new()
                } else {
                    host_mappings(app)
                        .into_iter()
                        .zip(&m.host_ports)
                        .map(|(pm, host)| container_info::docker_info::PortMapping {
                            host_port: *host,
                            container_port: if pm.container_port == 0 { *host } else { pm.container_port },
                            protocol: Some(protocol_name(pm.protocol).to_string()),
                        })
                        .collect()
                };
                info.docker = Some(container_info::DockerInfo {
                    image: d.image.clone(),
                    network: Some(network as i32),
                    port_mappings,
                    privileged: Some(d.privileged),
                    parameters: d.parameters.iter().map(|p| v1::Parameter { key: p.key.clone(), value: p.value.clone() }).collect(),
                    force_pull_image: Some(d.force_pull_image),
                    ..Default::default()
                });
            }
            (_, d) => {
                info.r#type = container_info::Type::Mesos as i32;
                info.mesos = Some(container_info::MesosInfo {
                    image: d.as_ref().map(|d| v1::Image {
                        r#type: v1::image::Type::Docker as i32,
                        docker: Some(v1::image::Docker { name: d.image.clone(), ..Default::default() }),
                        ..Default::default()
                    }),
                });
            }
        }
        info
    });
    let named_ports: Vec<(Option<String>, Protocol)> = if host_networking(app) {
        app.port_definitions.iter().flatten().map(|p| (p.name.clone(), p.protocol)).collect()
    } else {
        host_mappings(app).into_iter().map(|p| (p.name.clone(), p.protocol)).collect()
    };
    let (command, executor_info, data) = if is_docker && executor.used_by(app) {
        use prost::Message as _;
        (None, Some(docker_executor(task_id, offer, executor, app.task_kill_grace_period_seconds)), Some(command.encode_to_vec()))
    } else {
        (Some(command), None, None)
    };
    v1::TaskInfo {
        name: app.id.segments().iter().rev().cloned().collect::<Vec<_>>().join("."),
        task_id: v1::TaskId { value: task_id.to_string() },
        agent_id: offer.agent_id.clone(),
        resources: m.resources.clone(),
        command,
        executor: executor_info,
        data,
        container,
        health_check: health_check(app, &m.host_ports),
        kill_policy: app
            .task_kill_grace_period_seconds
            .map(|g| v1::KillPolicy { grace_period: Some(v1::DurationInfo { nanoseconds: i64::from(g) * 1_000_000_000 }) }),
        labels: (!app.labels.is_empty())
            .then(|| v1::Labels { labels: app.labels.iter().map(|(k, v)| v1::Label { key: k.clone(), value: Some(v.clone()) }).collect() }),
        discovery: Some(v1::DiscoveryInfo {
            visibility: v1::discovery_info::Visibility::Framework as i32,
            name: Some(app.id.segments().iter().rev().cloned().collect::<Vec<_>>().join(".")),
            ports: Some(v1::Ports {
                ports: m
                    .host_ports
                    .iter()
                    .zip(named_ports.iter().map(Some).chain(std::iter::repeat(None)))
                    .map(|(port, named)| v1::Port {
                        number: *port,
                        name: named.and_then(|(n, _)| n.clone()),
                        protocol: Some(named.map(|(_, p)| protocol_name(*p)).unwrap_or("tcp").to_string()),
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PathId;

    fn app(json: &str) -> AppDefinition {
        crate::app::parse_app(json.as_bytes(), &PathId::root()).expect("valid app")
    }

    fn offer(ports: (u64, u64)) -> v1::Offer {
        let scalar = |name: &str, v: f64| v1::Resource {
            name: name.into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value: v }),
            ..Default::default()
        };
        v1::Offer {
            id: v1::OfferId { value: "o1".into() },
            framework_id: v1::FrameworkId { value: "f".into() },
            agent_id: v1::AgentId { value: "a1".into() },
            hostname: "agent1".into(),
            resources: vec![
                scalar("cpus", 2.0),
                scalar("mem", 1024.0),
                v1::Resource {
                    name: "ports".into(),
                    r#type: value::Type::Ranges as i32,
                    ranges: Some(v1::value::Ranges { range: vec![value::Range { begin: ports.0, end: ports.1 }] }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn command_apps_become_shell_tasks_with_marathon_env_and_health() {
        let a = app(r#"{"id":"/shop/web","cmd":"python3 -m http.server $PORT0","cpus":0.5,"mem":64,
            "portDefinitions":[{"port":0,"name":"http"}],
            "healthChecks":[{"protocol":"HTTP","path":"/health","portIndex":0}],
            "labels":{"team":"a"},"taskKillGracePeriodSeconds":5}"#);
        let o = offer((31000, 31010));
        let out = crate::matching::match_offer(&o, &task_request(&a), &[], "*", 1);
        let m = out.launches.first().expect("fits");
        let id = crate::ids::InstanceId::new(&a.id, "u1").task_id(1);
        let t = task_info(&a, &id, &o, m, &ExecutorSettings::default());
        assert_eq!(t.name, "web.shop");
        let cmd = t.command.as_ref().expect("command");
        assert_eq!(cmd.shell, Some(true));
        let env: std::collections::BTreeMap<_, _> = cmd
            .environment
            .as_ref()
            .expect("env")
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(env.get("PORT0"), Some(&m.host_ports[0].to_string()));
        assert_eq!(env.get("MARATHON_APP_ID").map(String::as_str), Some("/shop/web"));
        let hc = t.health_check.as_ref().expect("health check");
        assert_eq!(hc.http.as_ref().map(|h| h.port), Some(m.host_ports[0]));
        assert_eq!(hc.http.as_ref().and_then(|h| h.path.clone()).as_deref(), Some("/health"));
        assert_eq!(t.kill_policy.and_then(|k| k.grace_period).map(|g| g.nanoseconds), Some(5_000_000_000));
        assert_eq!(t.discovery.and_then(|d| d.ports).map(|p| p.ports[0].name.clone()), Some(Some("http".to_string())));
    }

    #[test]
    fn docker_apps_are_sent_as_marathon_sends_them_for_the_agents_docker_containerizer() {
        let a = app(r#"{"id":"/web","args":["-g","daemon off;"],"cpus":0.1,"mem":64,
            "container":{"type":"DOCKER","docker":{"image":"127.0.0.1:5000/nginx:1","forcePullImage":true,"privileged":false,
              "parameters":[{"key":"log-driver","value":"none"}]},"portMappings":[{"containerPort":80,"hostPort":0,"protocol":"tcp"}]},
            "networks":[{"mode":"container/bridge"}]}"#);
        let o = offer((31000, 31010));
        let out = crate::matching::match_offer(&o, &task_request(&a), &[], "*", 1);
        let m = out.launches.first().expect("fits");
        let id = crate::ids::InstanceId::new(&a.id, "u1").task_id(1);
        let t = task_info(&a, &id, &o, m, &ExecutorSettings { path: "/opt/framework-executor".into(), ..ExecutorSettings::default() });
        assert!(t.executor.is_none() && t.data.is_none(), "no executor: the agent's Docker containerizer runs it");
        let cmd = t.command.as_ref().expect("the command in TaskInfo.command");
        assert_eq!(
            (cmd.shell, cmd.value.as_deref(), cmd.arguments.as_slice()),
            (Some(false), None, &["-g".to_string(), "daemon off;".to_string()][..])
        );
        let c = t.container.as_ref().expect("container");
        assert_eq!(c.r#type, container_info::Type::Docker as i32);
        let docker = c.docker.as_ref().expect("docker");
        assert_eq!(docker.image, "127.0.0.1:5000/nginx:1");
        assert_eq!(docker.force_pull_image, Some(true));
        assert_eq!(docker.network(), container_info::docker_info::Network::Bridge);
        assert_eq!((docker.port_mappings[0].container_port, docker.port_mappings[0].host_port), (80, m.host_ports[0]));
        assert_eq!(docker.parameters[0].key, "log-driver");

        // The label asks for framework-executor.
        let mut b = a.clone();
        b.labels.insert(EXECUTOR_LABEL.into(), EXECUTOR_LABEL_VALUE.into());
        let t = task_info(&b, &id, &o, m, &ExecutorSettings { path: "/opt/framework-executor".into(), ..ExecutorSettings::default() });
        assert!(t.executor.is_some() && t.command.is_none());
    }

    #[test]
    fn docker_apps_run_through_the_executor_with_their_command_in_data() {
        use prost::Message as _;
        let a = app(r#"{"id":"/web","cmd":"nginx -g 'daemon off;'","cpus":0.1,"mem":64,
            "container":{"type":"DOCKER","docker":{"image":"framework/nginx"},"portMappings":[{"containerPort":80,"hostPort":0}]},
            "networks":[{"mode":"container/bridge"}]}"#);
        let o = offer((31000, 31010));
        let out = crate::matching::match_offer(&o, &task_request(&a), &[], "*", 1);
        let m = out.launches.first().expect("fits");
        let id = crate::ids::InstanceId::new(&a.id, "u1").task_id(1);
        let settings = ExecutorSettings { path: "/opt/framework-executor".into(), uri: None, always: true };
        let t = task_info(&a, &id, &o, m, &settings);
        assert!(t.command.is_none());
        let e = t.executor.as_ref().expect("executor");
        assert_eq!(e.executor_id.value, id.to_string());
        assert_eq!(e.command.as_ref().and_then(|c| c.value.clone()).as_deref(), Some("/opt/framework-executor"));
        assert_eq!(e.shutdown_grace_period.map(|d| d.nanoseconds), Some(8_000_000_000), "Mesos's 3 s kill grace and 5 s to end");
        let mut graceful = a.clone();
        graceful.task_kill_grace_period_seconds = Some(60);
        let t2 = task_info(&graceful, &id, &o, m, &settings);
        assert_eq!(t2.executor.and_then(|e| e.shutdown_grace_period).map(|d| d.nanoseconds), Some(65_000_000_000), "covers the kill grace");
        let cmd = v1::CommandInfo::decode(t.data.as_deref().expect("data")).expect("CommandInfo");
        assert_eq!(cmd.value.as_deref(), Some("nginx -g 'daemon off;'"));
        let docker = t.container.as_ref().and_then(|c| c.docker.as_ref()).expect("docker");
        assert_eq!(docker.network(), container_info::docker_info::Network::Bridge);
        assert_eq!(docker.port_mappings[0].container_port, 80);
        assert_eq!(docker.port_mappings[0].host_port, m.host_ports[0]);
    }

    #[test]
    fn host_volumes_reach_the_task_with_their_mode() {
        let a = app(r#"{"id":"/db","cmd":"mariadbd","cpus":0.1,"mem":64,
            "container":{"type":"DOCKER","docker":{"image":"framework/mariadb","network":"HOST"},
            "volumes":[{"containerPath":"/var/lib/mysql","hostPath":"/srv/db","mode":"RW"},
                       {"containerPath":"/etc/conf","hostPath":"conf","mode":"RO"}]}}"#);
        let o = offer((31000, 31010));
        let out = crate::matching::match_offer(&o, &task_request(&a), &[], "*", 1);
        let m = out.launches.first().expect("fits");
        let id = crate::ids::InstanceId::new(&a.id, "u1").task_id(1);
        let t = task_info(&a, &id, &o, m, &ExecutorSettings::default());
        let v = &t.container.as_ref().expect("container").volumes;
        let got: Vec<_> = v.iter().map(|v| (v.container_path.as_str(), v.host_path.as_deref(), v.mode())).collect();
        assert_eq!(got, [("/var/lib/mysql", Some("/srv/db"), v1::volume::Mode::Rw), ("/etc/conf", Some("conf"), v1::volume::Mode::Ro)]);
    }

    #[test]
    fn subtracting_a_launch_leaves_the_rest() {
        let a = app(r#"{"id":"/a","cmd":"sleep 1","cpus":0.5,"mem":100,"portDefinitions":[{"port":0}]}"#);
        let mut o = offer((31000, 31002));
        let out = crate::matching::match_offer(&o, &task_request(&a), &[], "*", 1);
        let m = out.launches.first().expect("fits").clone();
        subtract(&mut o, &m.resources);
        let cpus = o.resources.iter().find(|r| r.name == "cpus").and_then(|r| r.scalar).map(|s| s.value);
        assert_eq!(cpus, Some(1.5));
        let ports: u64 = o.resources.iter().filter_map(|r| r.ranges.as_ref()).flat_map(|r| &r.range).map(|r| r.end - r.begin + 1).sum();
        assert_eq!(ports, 2);
        let again = crate::matching::match_offer(&o, &task_request(&a), &[], "*", 5);
        assert_eq!(again.launches.len(), 2, "two more fit: limited by ports");
    }

    #[test]
    fn versions_distinguish_scaling_from_configuration_changes() {
        let mut old = app(r#"{"id":"/a","cmd":"sleep 1"}"#);
        stamp_version(&mut old, None, Timestamp(1000));
        let mut scaled = old.clone();
        scaled.instances = 5;
        stamp_version(&mut scaled, Some(&old), Timestamp(2000));
        assert_eq!(config_version(&scaled), Timestamp(1000));
        assert_eq!(planned(&scaled).config_key, planned(&old).config_key);
        let mut changed = old.clone();
        changed.cmd = Some("sleep 2".into());
        stamp_version(&mut changed, Some(&old), Timestamp(3000));
        assert_eq!(config_version(&changed), Timestamp(3000));
        let mut restarted = old.clone();
        stamp_restart(&mut restarted, Timestamp(4000));
        assert_ne!(planned(&restarted).config_key, planned(&old).config_key);
        let mut back = old.clone();
        stamp_rollback(&mut back, Timestamp(5000));
        assert_eq!(planned(&back).config_key, planned(&old).config_key);
    }
}
