//! From a Mesos `TaskInfo` to the Docker container that runs it: a pure translation, no I/O.
//!
//! The scheduler gives the task's own command in `TaskInfo.data` as a protobuf `CommandInfo`
//! (Mesos forbids `TaskInfo.command` next to `TaskInfo.executor`), and the container in
//! `TaskInfo.container` (type DOCKER).

use std::collections::HashMap;

use mesos_proto::v1::{CommandInfo, TaskInfo, container_info, volume};
use prost::Message as _;
use thiserror::Error;

/// Label that marks containers started by this executor (value: the executor id).
pub const LABEL_EXECUTOR: &str = "framework.executor";
/// Label holding the executor's process id (orphans are containers whose executor is dead).
pub const LABEL_EXECUTOR_PID: &str = "framework.executor.pid";
/// Label holding the task id.
pub const LABEL_TASK: &str = "framework.task";

/// Why a task cannot become a container.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    /// No DOCKER container with an image.
    #[error("the task has no Docker image: set container.type DOCKER and container.docker.image")]
    NoImage,
    /// `data` is not a CommandInfo.
    #[error("TaskInfo.data is not a protobuf CommandInfo: {0}")]
    BadCommand(String),
    /// A Docker parameter this executor cannot apply, or a value it cannot read.
    #[error("docker parameter {key}={value}: {why}")]
    BadParameter {
        /// The parameter's key (a `docker run` option without its dashes).
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        why: String,
    },
}

/// Docker `parameters` (the `docker run` options Marathon passes through) as Engine API fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DockerOptions {
    /// `log-driver`.
    pub log_driver: Option<String>,
    /// `log-opt key=value`.
    pub log_opts: HashMap<String, String>,
    /// `ulimit name=soft[:hard]`.
    pub ulimits: Vec<(String, i64, i64)>,
    /// `memory-swap` in bytes (-1: unlimited).
    pub memory_swap: Option<i64>,
    /// `memory-reservation` in bytes.
    pub memory_reservation: Option<i64>,
    /// `shm-size` in bytes.
    pub shm_size: Option<i64>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `workdir`.
    pub workdir: Option<String>,
    /// `stop-signal`.
    pub stop_signal: Option<String>,
}

/// A size as `docker run` reads it: a number of bytes with an optional `b`, `k`, `m` or `g`
/// suffix (powers of 1024), or -1 where "unlimited" makes sense.
pub fn parse_bytes(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(-1);
    }
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let n: i64 = digits.parse().ok()?;
    let factor: i64 = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Applies the task's Docker parameters: labels and env join the container's (ours win over a
/// label of the same name), the rest become `DockerOptions`. Keys without dashes (`--`) as
/// `docker run` takes them; an unknown key is an error, not silently ignored.
pub fn apply_parameters(
    params: &[(String, String)],
    env: &mut Vec<String>,
    labels: &mut HashMap<String, String>,
) -> Result<DockerOptions, SpecError> {
    let mut out = DockerOptions::default();
    for (key, value) in params {
        let bad = |why: &str| SpecError::BadParameter { key: key.clone(), value: value.clone(), why: why.to_string() };
        let pair = || value.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| bad("expected name=value"));
        let bytes = || parse_bytes(value).ok_or_else(|| bad("expected a size such as 512m or 1g"));
        match key.trim_start_matches('-') {
            "label" | "l" => {
                let (k, v) = pair()?;
                labels.entry(k).or_insert(v);
            }
            "env" | "e" => {
                pair()?;
                env.push(value.clone());
            }
            "log-driver" => out.log_driver = Some(value.clone()),
            "log-opt" => {
                let (k, v) = pair()?;
                out.log_opts.insert(k, v);
            }
            "ulimit" => {
                let (name, limits) = pair()?;
                let (soft, hard) = limits.split_once(':').unwrap_or((&limits, &limits));
                let num = |x: &str| x.trim().parse::<i64>().map_err(|_| bad("expected name=soft[:hard] with numbers"));
                out.ulimits.push((name, num(soft)?, num(hard)?));
            }
            "memory-swap" => out.memory_swap = Some(bytes()?),
            "memory-reservation" => out.memory_reservation = Some(bytes()?),
            "shm-size" => out.shm_size = Some(bytes()?),
            "hostname" | "h" => out.hostname = Some(value.clone()),
            "workdir" | "w" => out.workdir = Some(value.clone()),
            "stop-signal" => out.stop_signal = Some(value.clone()),
            _ => return Err(bad("framework-executor does not support this parameter")),
        }
    }
    Ok(out)
}

/// Everything needed to create the container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// Container name (the task id, made safe for Docker).
    pub name: String,
    /// Image.
    pub image: String,
    /// Entrypoint (None: the image's own). A shell command replaces it with `/bin/sh`, as
    /// Mesos's Docker containerizer does (`--entrypoint /bin/sh ... -c <cmd>`).
    pub entrypoint: Option<Vec<String>>,
    /// Command, the entrypoint's arguments (None: the image's default).
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// `host`, `bridge`, `none` or a user network name.
    pub network: String,
    /// `containerPort/protocol` → host port.
    pub ports: Vec<(String, u16)>,
    /// Memory limit in bytes (0: none).
    pub memory: i64,
    /// CPU shares (1024 per CPU).
    pub cpu_shares: i64,
    /// CPU quota per 100 ms period in µs (0: none).
    pub cpu_quota: i64,
    /// `host:container[:ro]` binds.
    pub binds: Vec<String>,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Privileged mode.
    pub privileged: bool,
    /// User to run as.
    pub user: Option<String>,
    /// What the Docker parameters ask for.
    pub options: DockerOptions,
    /// Pull the image even when the daemon has it (`force_pull_image`).
    pub force_pull: bool,
}

/// An image reference as the Engine API's pull takes it: the repository, and the tag or digest
/// (`latest` when the reference names neither).
pub fn image_reference(image: &str) -> (&str, &str) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, digest);
    }
    match image.rfind(':') {
        // A colon after the last slash separates the tag (before it, it is a registry's port).
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

/// Docker container names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn container_name(task_id: &str) -> String {
    let mut name: String = task_id.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.insert_str(0, "task");
    }
    name
}

/// The container for `task`, run by executor `executor_id` (process `pid`).
pub fn container_spec(task: &TaskInfo, executor_id: &str, pid: u32, sandbox: &std::path::Path) -> Result<ContainerSpec, SpecError> {
    let container = task.container.as_ref().ok_or(SpecError::NoImage)?;
    let docker = container.docker.as_ref().filter(|d| !d.image.is_empty()).ok_or(SpecError::NoImage)?;
    let command = match &task.data {
        Some(bytes) if !bytes.is_empty() => Some(CommandInfo::decode(bytes.as_slice()).map_err(|e| SpecError::BadCommand(e.to_string()))?),
        _ => task.command.clone(),
    };
    let shell = command.as_ref().is_some_and(|c| c.shell.unwrap_or(true) && c.value.is_some());
    let cmd = command.as_ref().and_then(|c| {
        if c.shell.unwrap_or(true) {
            c.value.as_ref().map(|v| vec!["-c".to_string(), v.clone()])
        } else if !c.arguments.is_empty() {
            Some(c.arguments.clone())
        } else {
            c.value.as_ref().map(|v| vec![v.clone()])
        }
    });
    let env = command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .map(|e| e.variables.iter().map(|v| format!("{}={}", v.name, v.value.clone().unwrap_or_default())).collect())
        .unwrap_or_default();
    let network = match docker.network() {
        container_info::docker_info::Network::Host => "host".to_string(),
        container_info::docker_info::Network::Bridge => "bridge".to_string(),
        container_info::docker_info::Network::None => "none".to_string(),
        container_info::docker_info::Network::User => {
            container.network_infos.first().and_then(|n| n.name.clone()).unwrap_or_else(|| "bridge".to_string())
        }
    };
    let ports = if network == "host" || network == "none" {
        Vec::new()
    } else {
        docker
            .port_mappings
            .iter()
            .filter_map(|m| {
                let host = u16::try_from(m.host_port).ok()?;
                let proto = m.protocol.clone().unwrap_or_else(|| "tcp".to_string());
                Some((format!("{}/{proto}", m.container_port), host))
            })
            .collect()
    };
    let scalar = |name: &str| task.resources.iter().filter(|r| r.name == name).filter_map(|r| r.scalar.map(|s| s.value)).sum::<f64>();
    let (mem, cpus) = (scalar("mem"), scalar("cpus"));
    let binds = container
        .volumes
        .iter()
        .filter_map(|v| {
            let host = v.host_path.as_ref()?;
            // Mesos resolves a relative host path against the task's sandbox (our working
            // directory); Docker would take it for a named volume instead.
            let host = if std::path::Path::new(host).is_absolute() { host.clone() } else { sandbox.join(host).display().to_string() };
            let ro = v.mode() == volume::Mode::Ro;
            Some(format!("{host}:{}{}", v.container_path, if ro { ":ro" } else { "" }))
        })
        .collect();
    let mut labels: HashMap<String, String> =
        task.labels.iter().flat_map(|l| l.labels.iter()).map(|l| (l.key.clone(), l.value.clone().unwrap_or_default())).collect();
    labels.insert(LABEL_EXECUTOR.to_string(), executor_id.to_string());
    labels.insert(LABEL_EXECUTOR_PID.to_string(), pid.to_string());
    labels.insert(LABEL_TASK.to_string(), task.task_id.value.clone());
    let params: Vec<(String, String)> = docker.parameters.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
    let mut env = env;
    let options = apply_parameters(&params, &mut env, &mut labels)?;
    Ok(ContainerSpec {
        name: container_name(&task.task_id.value),
        image: docker.image.clone(),
        entrypoint: shell.then(|| vec!["/bin/sh".to_string()]),
        cmd,
        env,
        network,
        ports,
        options,
        memory: if mem > 0.0 { (mem * 1024.0 * 1024.0) as i64 } else { 0 },
        cpu_shares: ((cpus * 1024.0) as i64).max(2),
        cpu_quota: if cpus > 0.0 { ((cpus * 100_000.0) as i64).max(1000) } else { 0 },
        binds,
        labels,
        privileged: docker.privileged.unwrap_or(false),
        user: command.as_ref().and_then(|c| c.user.clone()),
        force_pull: docker.force_pull_image.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_repository_and_tag() {
        assert_eq!(image_reference("nginx"), ("nginx", "latest"));
        assert_eq!(image_reference("framework/nginx:1.2"), ("framework/nginx", "1.2"));
        assert_eq!(image_reference("127.0.0.1:5000/app"), ("127.0.0.1:5000/app", "latest"));
        assert_eq!(image_reference("127.0.0.1:5000/app:v2"), ("127.0.0.1:5000/app", "v2"));
        assert_eq!(image_reference("r:5000/app@sha256:abc"), ("r:5000/app", "sha256:abc"));
    }
    use mesos_proto::v1::{self, ContainerInfo, container_info::DockerInfo};

    fn task(network: container_info::docker_info::Network, command: Option<CommandInfo>) -> TaskInfo {
        let scalar = |n: &str, v: f64| v1::Resource {
            name: n.into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value: v }),
            ..Default::default()
        };
        TaskInfo {
            name: "web".into(),
            task_id: v1::TaskId { value: "web.instance-1._app.1".into() },
            agent_id: v1::AgentId { value: "a".into() },
            resources: vec![scalar("cpus", 0.5), scalar("mem", 64.0)],
            data: command.map(|c| c.encode_to_vec()),
            container: Some(ContainerInfo {
                r#type: container_info::Type::Docker as i32,
                docker: Some(DockerInfo {
                    image: "framework/nginx:latest".into(),
                    network: Some(network as i32),
                    port_mappings: vec![container_info::docker_info::PortMapping { host_port: 31005, container_port: 80, protocol: None }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sizes_read_as_docker_run_reads_them() {
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("64k"), Some(64 << 10));
        assert_eq!(parse_bytes("128m"), Some(128 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("1gb"), Some(1 << 30));
        assert_eq!(parse_bytes("-1"), Some(-1));
        for bad in ["", "m", "12x", "1.5g", "-2", "99999999999999999g"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn parameters_become_engine_fields_and_unknown_ones_are_refused() {
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut env = vec!["PORT0=1".to_string()];
        let mut labels: HashMap<String, String> = [(LABEL_TASK.to_string(), "t".to_string())].into();
        let params = [
            p("label", "team=web"),
            p("label", &format!("{LABEL_TASK}=forged")),
            p("env", "FROM=param"),
            p("log-driver", "json-file"),
            p("log-opt", "max-size=10m"),
            p("ulimit", "nofile=1024:2048"),
            p("ulimit", "nproc=64"),
            p("memory-swap", "1g"),
            p("shm-size", "128m"),
            p("hostname", "web-1"),
            p("workdir", "/srv"),
            p("stop-signal", "SIGQUIT"),
        ];
        let o = apply_parameters(&params, &mut env, &mut labels).unwrap();
        assert_eq!(env, ["PORT0=1", "FROM=param"]);
        assert_eq!(labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(labels.get(LABEL_TASK).map(String::as_str), Some("t"), "our labels cannot be overridden");
        assert_eq!(o.log_driver.as_deref(), Some("json-file"));
        assert_eq!(o.log_opts.get("max-size").map(String::as_str), Some("10m"));
        assert_eq!(o.ulimits, [("nofile".to_string(), 1024, 2048), ("nproc".to_string(), 64, 64)]);
        assert_eq!((o.memory_swap, o.shm_size), (Some(1 << 30), Some(128 << 20)));
        assert_eq!((o.hostname.as_deref(), o.workdir.as_deref(), o.stop_signal.as_deref()), (Some("web-1"), Some("/srv"), Some("SIGQUIT")));
        for bad in [p("cap-add", "ALL"), p("ulimit", "nofile"), p("shm-size", "lots"), p("label", "novalue")] {
            let err = apply_parameters(std::slice::from_ref(&bad), &mut env, &mut labels).unwrap_err();
            assert!(err.to_string().contains(&bad.0), "{err}");
        }
    }

    #[test]
    fn host_volumes_become_binds_relative_ones_inside_the_sandbox() {
        let mut t = task(container_info::docker_info::Network::Host, None);
        let vol = |c: &str, h: &str, mode: v1::volume::Mode| v1::Volume {
            container_path: c.into(),
            host_path: Some(h.into()),
            mode: mode as i32,
            ..Default::default()
        };
        if let Some(c) = t.container.as_mut() {
            c.volumes = vec![vol("/var/lib/mysql", "/srv/db", v1::volume::Mode::Rw), vol("/etc/app", "conf", v1::volume::Mode::Ro)];
        }
        let s = container_spec(&t, "e", 1, std::path::Path::new("/var/sandbox/t1")).unwrap();
        assert_eq!(s.binds, ["/srv/db:/var/lib/mysql", "/var/sandbox/t1/conf:/etc/app:ro"]);
    }

    #[test]
    fn bridge_tasks_map_ports_limits_and_the_shell_command() {
        let cmd = CommandInfo {
            shell: Some(true),
            value: Some("nginx -g 'daemon off;'".into()),
            environment: Some(v1::Environment {
                variables: vec![v1::environment::Variable { name: "PORT0".into(), value: Some("31005".into()), ..Default::default() }],
            }),
            ..Default::default()
        };
        let s =
            container_spec(&task(container_info::docker_info::Network::Bridge, Some(cmd)), "exec-1", 42, std::path::Path::new("/sandbox"))
                .unwrap();
        assert_eq!(s.name, "web.instance-1._app.1");
        assert_eq!(s.entrypoint.as_deref(), Some(&["/bin/sh".to_string()][..]), "a shell command replaces the entrypoint");
        assert_eq!(s.cmd.unwrap(), ["-c", "nginx -g 'daemon off;'"]);
        assert_eq!(s.env, ["PORT0=31005"]);
        assert_eq!((s.network.as_str(), s.ports.as_slice()), ("bridge", &[("80/tcp".to_string(), 31005)][..]));
        assert_eq!(s.memory, 64 * 1024 * 1024);
        assert_eq!((s.cpu_shares, s.cpu_quota), (512, 50_000));
        assert_eq!(s.labels.get(LABEL_EXECUTOR).map(String::as_str), Some("exec-1"));
        assert_eq!(s.labels.get(LABEL_EXECUTOR_PID).map(String::as_str), Some("42"));
    }

    #[test]
    fn host_networking_has_no_port_bindings_and_args_run_directly() {
        let cmd =
            CommandInfo { shell: Some(false), arguments: vec!["nginx".into(), "-g".into(), "daemon off;".into()], ..Default::default() };
        let s =
            container_spec(&task(container_info::docker_info::Network::Host, Some(cmd)), "e", 1, std::path::Path::new("/sandbox")).unwrap();
        assert!(s.ports.is_empty());
        assert_eq!(s.cmd.unwrap(), ["nginx", "-g", "daemon off;"]);
        let s = container_spec(&task(container_info::docker_info::Network::Host, None), "e", 1, std::path::Path::new("/sandbox")).unwrap();
        assert_eq!(s.cmd, None, "no command: the image's default");
    }

    #[test]
    fn bad_tasks_are_refused_with_a_reason() {
        let mut t = task(container_info::docker_info::Network::Host, None);
        t.data = Some(vec![0xff, 0xff, 0xff]);
        assert!(matches!(container_spec(&t, "e", 1, std::path::Path::new("/sandbox")), Err(SpecError::BadCommand(_))));
        t.container = None;
        assert_eq!(container_spec(&t, "e", 1, std::path::Path::new("/sandbox")), Err(SpecError::NoImage));
        assert_eq!(container_name("/weird id"), "task_weird_id");
    }
}
