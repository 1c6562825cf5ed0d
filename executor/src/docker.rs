//! The Docker Engine API calls the executor makes (through `bollard`, over the unix socket).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, PortBinding, ResourcesUlimits};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use crate::spec::{ContainerSpec, LABEL_EXECUTOR, LABEL_EXECUTOR_PID};

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Exit code (None if unknown).
    pub code: Option<i64>,
    /// Killed by the kernel for exceeding its memory limit.
    pub oom_killed: bool,
}

/// Connects to the daemon at `DOCKER_HOST` (unix://...) or /var/run/docker.sock, agreeing on
/// the API version the daemon speaks.
pub async fn connect() -> anyhow::Result<Docker> {
    let socket = std::env::var("DOCKER_HOST").ok().and_then(|h| h.strip_prefix("unix://").map(str::to_string));
    let socket = socket.unwrap_or_else(|| "/var/run/docker.sock".to_string());
    let docker = Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION)
        .with_context(|| format!("cannot use the Docker socket {socket}"))?;
    docker.negotiate_version().await.with_context(|| format!("the Docker daemon at {socket} does not answer; is dockerd running?"))
}

/// Makes sure the daemon has `image`: pulled when missing, or always when `force` (Marathon's
/// `forcePullImage`), as Mesos's Docker containerizer does. Whether it pulled.
pub async fn pull(docker: &Docker, image: &str, force: bool) -> anyhow::Result<bool> {
    if !force && docker.inspect_image(image).await.is_ok() {
        return Ok(false);
    }
    let (repo, tag) = crate::spec::image_reference(image);
    let options = CreateImageOptionsBuilder::default().from_image(repo).tag(tag).build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        let step = step.with_context(|| format!("cannot pull image {image}"))?;
        if let Some(e) = step.error_detail.and_then(|d| d.message) {
            anyhow::bail!("cannot pull image {image}: {e}");
        }
    }
    Ok(true)
}

/// The container's IP address: on its first network (bridge or a user network), or `None`
/// (host networking has none of its own).
pub async fn ip_address(docker: &Docker, name: &str) -> Option<String> {
    let info = docker.inspect_container(name, None::<InspectContainerOptions>).await.ok()?;
    let settings = info.network_settings?;
    settings.networks.unwrap_or_default().into_values().filter_map(|n| n.ip_address).find(|ip| !ip.is_empty())
}

/// Creates and starts the container.
pub async fn run(docker: &Docker, spec: &ContainerSpec) -> anyhow::Result<()> {
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
        .ports
        .iter()
        .map(|(container, host)| {
            (container.clone(), Some(vec![PortBinding { host_ip: Some("0.0.0.0".into()), host_port: Some(host.to_string()) }]))
        })
        .collect();
    let o = &spec.options;
    let log_config = o
        .log_driver
        .as_ref()
        .map(|driver| HostConfigLogConfig { typ: Some(driver.clone()), config: (!o.log_opts.is_empty()).then(|| o.log_opts.clone()) });
    let ulimits: Vec<ResourcesUlimits> = o
        .ulimits
        .iter()
        .map(|(name, soft, hard)| ResourcesUlimits { name: Some(name.clone()), soft: Some(*soft), hard: Some(*hard) })
        .collect();
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone()),
        user: spec.user.clone(),
        hostname: o.hostname.clone(),
        working_dir: o.workdir.clone(),
        stop_signal: o.stop_signal.clone(),
        exposed_ports: (!spec.ports.is_empty()).then(|| spec.ports.iter().map(|(c, _)| c.clone()).collect()),
        host_config: Some(HostConfig {
            network_mode: Some(spec.network.clone()),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            memory: (spec.memory > 0).then_some(spec.memory),
            memory_swap: o.memory_swap.or((spec.memory > 0).then_some(spec.memory)),
            memory_reservation: o.memory_reservation,
            shm_size: o.shm_size,
            log_config,
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            cpu_shares: Some(spec.cpu_shares),
            cpu_period: (spec.cpu_quota > 0).then_some(100_000),
            cpu_quota: (spec.cpu_quota > 0).then_some(spec.cpu_quota),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            privileged: Some(spec.privileged),
            ..Default::default()
        }),
        ..Default::default()
    };
    // A container of the same name can only be a leftover of this very task: replace it.
    remove(docker, &spec.name).await;
    let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
    docker.create_container(Some(options), body).await.with_context(|| format!("cannot create a container from image {}", spec.image))?;
    docker.start_container(&spec.name, None).await.with_context(|| format!("cannot start container {}", spec.name))?;
    Ok(())
}

/// Copies the container's output into the sandbox's `stdout` and `stderr` files until it ends.
pub async fn follow_logs(docker: Docker, name: String, sandbox: std::path::PathBuf) {
    let open = |f: &str| {
        let path = sandbox.join(f);
        async move { tokio::fs::OpenOptions::new().create(true).append(true).open(path).await.ok() }
    };
    let (Some(mut out), Some(mut err)) = (open("stdout").await, open("stderr").await) else { return };
    let options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
    let mut logs = docker.logs(&name, Some(options));
    while let Some(Ok(chunk)) = logs.next().await {
        let _ = match chunk {
            bollard::container::LogOutput::StdErr { message } => err.write_all(&message).await,
            other => out.write_all(&other.into_bytes()).await,
        };
    }
}

/// Waits for the container to stop and says how it ended.
pub async fn wait(docker: &Docker, name: &str) -> Exit {
    let mut waiter = docker.wait_container(name, None);
    while let Some(r) = waiter.next().await {
        if r.is_err() {
            break;
        }
    }
    match docker.inspect_container(name, None::<InspectContainerOptions>).await {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            Exit { code: state.exit_code, oom_killed: state.oom_killed.unwrap_or(false) }
        }
        Err(_) => Exit { code: None, oom_killed: false },
    }
}

/// Stops the container: SIGTERM, then SIGKILL after `grace`.
pub async fn stop(docker: &Docker, name: &str, grace: Duration) {
    let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
    let options = StopContainerOptionsBuilder::default().t(t).build();
    if let Err(e) = docker.stop_container(name, Some(options)).await {
        tracing::warn!(container = name, error = %e, "stop failed");
    }
}

/// Removes the container (and its anonymous volumes), whatever its state.
pub async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    let _ = docker.remove_container(name, Some(options)).await;
}

/// Runs `sh -c command` inside the container; returns its exit code.
pub async fn exec(docker: &Docker, name: &str, command: &str) -> anyhow::Result<i64> {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let created = docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(vec!["/bin/sh".to_string(), "-c".to_string(), command.to_string()]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await?;
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&created.id, None).await? {
        while output.next().await.is_some() {}
    }
    let inspected = docker.inspect_exec(&created.id).await?;
    inspected.exit_code.context("the exec has no exit code")
}

/// Whether a process with this id exists.
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes containers of executors that no longer run (an executor killed with SIGKILL leaves
/// its container behind; the next executor on the machine cleans it up).
pub async fn remove_orphans(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![LABEL_EXECUTOR_PID.to_string()])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let Ok(containers) = docker.list_containers(Some(options)).await else { return };
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        let pid = labels.get(LABEL_EXECUTOR_PID).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| !alive(p))
            && let Some(id) = c.id
        {
            tracing::info!(container = %id, executor = ?labels.get(LABEL_EXECUTOR), "removing the container of a dead executor");
            remove(docker, &id).await;
        }
    }
}
