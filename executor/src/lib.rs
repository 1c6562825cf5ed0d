//! `framework-executor`: a Mesos v1 HTTP executor that runs each task in a Docker container,
//! either as a custom executor the scheduler names, or started by the local agents' Docker
//! containerizer for a Docker task sent without an executor (as Mesos's Docker executor).
//!
//! It subscribes to its agent (`MESOS_AGENT_ENDPOINT`), and for every LAUNCH pulls the image
//! (when missing, or always with `force_pull_image`), creates and starts the task's container
//! through the Docker Engine API, copies its output into the sandbox, runs
//! its health check and reports STARTING, RUNNING, health changes and the end (FINISHED, FAILED
//! with the OOM reason, KILLED) as UPDATEs with fresh uuids. KILL stops the container with the
//! kill policy's grace period. When the agent goes away (restart) it re-subscribes with its
//! unacknowledged tasks and updates. Containers are removed when their task ends; containers of
//! executors that died are removed when the next executor starts.

mod docker;
mod health;
mod libprocess;
mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bollard::Docker;
use futures_util::StreamExt as _;
use mesos_proto::codec::{self, Encoding};
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::executor::{Call, Event, call, event};
use mesos_proto::v1::{self, TaskInfo, TaskState, TaskStatus, task_status::Reason};
use tokio::sync::mpsc;

/// Mesos's default kill grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// What the executor's own tasks report back to its loop.
enum Internal {
    Started { task: String, ip: Option<String> },
    LaunchFailed { task: String, message: String },
    Exited { task: String, exit: docker::Exit },
    Health { task: String, verdict: health::Verdict },
}

struct Running {
    info: TaskInfo,
    container: String,
    killing: bool,
    killed_by_health: bool,
    healthy: Option<bool>,
    health: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the container (again) with the task's grace period.
    fn killing_restart(&self, docker: Result<Docker, String>) {
        let Ok(docker) = docker else { return };
        let grace = self
            .info
            .kill_policy
            .and_then(|p| p.grace_period)
            .map(|g| Duration::from_nanos(u64::try_from(g.nanoseconds).unwrap_or(0)))
            .unwrap_or(DEFAULT_GRACE);
        let name = self.container.clone();
        tokio::spawn(async move { docker::stop(&docker, &name, grace).await });
    }
}

/// How the executor talks to its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The v1 executor HTTP API (`framework-executor`).
    Http,
    /// Libprocess messages, as Mesos's own executors (the `mesos-docker-executor` stand-in):
    /// what a Mesos agent's Docker containerizer recovers after a restart (see `src/libprocess.rs`).
    Libprocess,
}

enum Transport {
    Http,
    Libprocess(libprocess::Link),
}

struct Executor {
    http: reqwest::Client,
    transport: Transport,
    /// The agent's id (`MESOS_SLAVE_ID`, then what registration says): libprocess status
    /// updates name it, and the agent drops updates whose id is not its own.
    agent_id: String,
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`, sent as a bearer token on every call (agents with
    /// `--authenticate_http_executors` refuse calls without it).
    token: Option<String>,
    endpoint: String,
    /// The agent's executor API (see [`agent_url`]).
    url: String,
    framework_id: String,
    executor_id: String,
    sandbox: PathBuf,
    recovery_timeout: Duration,
    /// The longest wait between two SUBSCRIBE attempts (`MESOS_SUBSCRIPTION_BACKOFF_MAX`): the
    /// agent gives a recovering executor only its re-registration timeout (2 s by default).
    backoff_max: Duration,
    docker: Result<Docker, String>,
    tasks: HashMap<String, Running>,
    launched: BTreeMap<String, TaskInfo>,
    unacked: BTreeMap<Vec<u8>, TaskStatus>,
    internal_tx: mpsc::Sender<Internal>,
    had_task: bool,
    shutting_down: bool,
    last_update_accepted: bool,
    /// What the agent's Docker containerizer said on the command line (none for a custom
    /// executor).
    flags: DockerExecutorFlags,
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: this program is started by a Mesos agent"))
}

/// The command line the agent gives a Docker executor it starts (Mesos's
/// `mesos-docker-executor` flags): the container's name, and the sandbox and where it is
/// mounted in the container. A custom executor gets none of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerExecutorFlags {
    /// `--container`: the name the agent's Docker containerizer knows the container by.
    pub container: Option<String>,
    /// `--sandbox_directory`: the sandbox on the host.
    pub sandbox_directory: Option<String>,
    /// `--mapped_directory`: where the sandbox is mounted in the container.
    pub mapped_directory: Option<String>,
}

impl DockerExecutorFlags {
    /// Reads `--name=value` flags (others are ignored: the agent passes more than we use).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Self {
        let mut flags = Self::default();
        for arg in args {
            let Some((name, value)) = arg.strip_prefix("--").and_then(|a| a.split_once('=')) else { continue };
            let slot = match name {
                "container" => &mut flags.container,
                "sandbox_directory" => &mut flags.sandbox_directory,
                "mapped_directory" => &mut flags.mapped_directory,
                _ => continue,
            };
            *slot = Some(value.to_string()).filter(|v| !v.is_empty());
        }
        flags
    }
}

/// The agent's executor API as Mesos's executor library finds it: under the agent process's
/// id from `MESOS_SLAVE_PID` (`slave(1)@10.0.0.5:5051` → `http://10.0.0.5:5051/slave(1)/api/v1/executor`;
/// the bare path only works where the agent is its process's root, not in Mesos's local mode);
/// else at `MESOS_AGENT_ENDPOINT`.
pub fn agent_url(pid: Option<&str>, endpoint: &str) -> String {
    match pid.and_then(|p| p.split_once('@')).filter(|(id, addr)| !id.is_empty() && !addr.is_empty()) {
        Some((id, addr)) => format!("http://{addr}/{id}/api/v1/executor"),
        None => format!("http://{endpoint}/api/v1/executor"),
    }
}

/// Runs the executor on the v1 HTTP API until its task has ended (or the agent is gone for
/// good).
pub async fn run() -> anyhow::Result<()> {
    run_with(Driver::Http).await
}

/// Runs the executor with the given driver until its task has ended (or the agent is gone for
/// good).
pub async fn run_with(driver: Driver) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    // A Mesos duration (`15mins`, the agent's default): read as such, never as a bare number.
    let recovery_timeout = match std::env::var("MESOS_RECOVERY_TIMEOUT") {
        Ok(text) => mesos_proto::duration::parse(&text).unwrap_or_else(|| {
            tracing::warn!(%text, "MESOS_RECOVERY_TIMEOUT is not a Mesos duration; using 15mins");
            Duration::from_secs(15 * 60)
        }),
        Err(_) => Duration::from_secs(15 * 60),
    };
    let backoff_max = std::env::var("MESOS_SUBSCRIPTION_BACKOFF_MAX")
        .ok()
        .and_then(|text| mesos_proto::duration::parse(&text))
        .unwrap_or(Duration::from_secs(2))
        // At most 1 s: a recovering agent waits only its re-registration timeout (2 s by
        // default) for executors, and a jittered wait near that limit could miss it.
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let docker = docker::connect().await.map_err(|e| format!("{e:#}"));
    if let Ok(d) = &docker {
        docker::remove_orphans(d).await;
    }
    let (internal_tx, internal_rx) = mpsc::channel(256);
    let (transport, inbound) = match driver {
        Driver::Http => (Transport::Http, None),
        Driver::Libprocess => {
            let pid = env("MESOS_SLAVE_PID")?;
            let agent = libprocess::Upid::parse(&pid).with_context(|| format!("MESOS_SLAVE_PID {pid:?} is not a libprocess pid"))?;
            // Where libprocess would listen: LIBPROCESS_IP/PORT when the agent sets them, else
            // the agent's own address (reachable from the agent by construction).
            let ip = std::env::var("LIBPROCESS_IP")
                .ok()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| agent.addr.rsplit_once(':').map_or("127.0.0.1".to_string(), |(host, _)| host.to_string()));
            let port = std::env::var("LIBPROCESS_PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
            let bind = format!("{ip}:{port}").parse().with_context(|| format!("{ip}:{port} is not an address to listen on"))?;
            let (link, inbound) = libprocess::Link::start(agent, bind).await?;
            (Transport::Libprocess(link.clone()), Some((link, inbound)))
        }
    };
    let ex = Executor {
        http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
        transport,
        agent_id: std::env::var("MESOS_SLAVE_ID").unwrap_or_default(),
        token: std::env::var("MESOS_EXECUTOR_AUTHENTICATION_TOKEN").ok().filter(|t| !t.is_empty()),
        endpoint: env("MESOS_AGENT_ENDPOINT")?,
        url: agent_url(std::env::var("MESOS_SLAVE_PID").ok().as_deref(), &env("MESOS_AGENT_ENDPOINT")?),
        framework_id: env("MESOS_FRAMEWORK_ID")?,
        executor_id: env("MESOS_EXECUTOR_ID")?,
        sandbox: PathBuf::from(std::env::var("MESOS_SANDBOX").or_else(|_| env("MESOS_DIRECTORY"))?),
        recovery_timeout,
        backoff_max,
        docker,
        tasks: HashMap::new(),
        launched: BTreeMap::new(),
        unacked: BTreeMap::new(),
        internal_tx,
        had_task: false,
        shutting_down: false,
        last_update_accepted: false,
        flags: DockerExecutorFlags::parse(std::env::args().skip(1)),
    };
    match inbound {
        Some((link, inbound)) => ex.run_libprocess(link, inbound, internal_rx).await,
        None => ex.run_http(internal_rx).await,
    }
}

impl Executor {
    fn base_call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: v1::ExecutorId { value: self.executor_id.clone() },
            framework_id: v1::FrameworkId { value: self.framework_id.clone() },
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    async fn post(&self, call: &Call, stream: bool) -> anyhow::Result<reqwest::Response> {
        let mut req = self
            .http
            .post(&self.url)
            .header("Content-Type", Encoding::Protobuf.content_type())
            .header("Accept", Encoding::Protobuf.content_type())
            .body(codec::encode(call, Encoding::Protobuf));
        if stream {
            req = req.timeout(Duration::from_secs(365 * 24 * 3600));
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        Ok(req.send().await?)
    }

    /// SUBSCRIBE, re-sending what the agent may have lost; retried until the recovery timeout.
    async fn subscribe(&self) -> anyhow::Result<reqwest::Response> {
        let deadline = tokio::time::Instant::now() + self.recovery_timeout;
        // Exponential with jitter (`backon`), as the scheduler's reconnect loops, never past the
        // backoff maximum (jitter included), or a recovered agent's short window is missed.
        let mut delays = {
            use backon::BackoffBuilder as _;
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(self.backoff_max)
                .with_jitter()
                .without_max_times()
                .build()
        };
        loop {
            let mut c = self.base_call(call::Type::Subscribe);
            c.subscribe = Some(call::Subscribe {
                unacknowledged_tasks: self.launched.values().cloned().collect(),
                unacknowledged_updates: self.unacked.values().map(|s| call::Update { status: s.clone() }).collect(),
            });
            match self.post(&c, true).await {
                Ok(r) if r.status().as_u16() == 200 => return Ok(r),
                Ok(r) => tracing::warn!(status = %r.status(), "SUBSCRIBE refused; retrying"),
                Err(e) => tracing::warn!(error = %e, "agent unreachable; retrying"),
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the agent did not come back within the recovery timeout");
            tokio::time::sleep(delays.next().unwrap_or(self.backoff_max).min(self.backoff_max)).await;
        }
    }

    /// The libprocess driver's loop: register, then act on the agent's messages; when the
    /// connection to the agent closes, wait up to the recovery timeout for the restarted
    /// agent's reconnect request and re-register with what it may have lost.
    async fn run_libprocess(
        mut self,
        link: libprocess::Link,
        mut inbound: mpsc::UnboundedReceiver<libprocess::Inbound>,
        mut internal: mpsc::Receiver<Internal>,
    ) -> anyhow::Result<()> {
        use libprocess::Inbound;
        let register = libprocess::RegisterExecutorMessage {
            framework_id: Some(v1::FrameworkId { value: self.framework_id.clone() }),
            executor_id: Some(v1::ExecutorId { value: self.executor_id.clone() }),
        };
        anyhow::ensure!(link.send("RegisterExecutorMessage", &register).await, "the agent at {} did not take our registration", link.agent);
        link.watch_agent();
        let mut lost_since: Option<tokio::time::Instant> = None;
        loop {
            let give_up = lost_since.map(|t| t + self.recovery_timeout);
            tokio::select! {
                msg = inbound.recv() => match msg {
                    Some(Inbound::Registered { agent_id }) => {
                        tracing::info!(%agent_id, "registered with the agent");
                        self.agent_id = agent_id;
                        lost_since = None;
                    }
                    Some(Inbound::Reconnect { agent_id }) => {
                        tracing::info!(%agent_id, "the agent asks us to re-register");
                        self.agent_id = agent_id;
                        link.watch_agent();
                        let reregister = libprocess::ReregisterExecutorMessage {
                            executor_id: Some(v1::ExecutorId { value: self.executor_id.clone() }),
                            framework_id: Some(v1::FrameworkId { value: self.framework_id.clone() }),
                            tasks: self.launched.values().cloned().collect(),
                            updates: self.unacked.values().map(|s| self.status_update(s.clone())).collect(),
                        };
                        if link.send("ReregisterExecutorMessage", &reregister).await {
                            lost_since = None;
                        }
                    }
                    Some(Inbound::Launch(task)) => self.launch(*task).await,
                    Some(Inbound::Kill { task_id, kill_policy }) => {
                        let grace = kill_policy.and_then(|p| p.grace_period).map(|g| Duration::from_nanos(u64::try_from(g.nanoseconds).unwrap_or(0)));
                        self.kill(&task_id, grace, false);
                    }
                    Some(Inbound::Acknowledged { task_id, uuid }) => {
                        self.unacked.remove(&uuid);
                        self.launched.remove(&task_id);
                    }
                    Some(Inbound::Shutdown) => self.shutdown(),
                    Some(Inbound::Disconnected) => {
                        tracing::warn!(agent = %link.agent, timeout = ?self.recovery_timeout, "lost the agent; waiting for it to come back");
                        lost_since.get_or_insert_with(tokio::time::Instant::now);
                    }
                    None => anyhow::bail!("the executor's libprocess server stopped"),
                },
                Some(msg) = internal.recv() => self.on_internal(msg).await,
                () = async { if let Some(t) = give_up { tokio::time::sleep_until(t).await } else { std::future::pending().await } } => {
                    anyhow::bail!("the agent did not come back within the recovery timeout ({:?})", self.recovery_timeout);
                }
            }
            if self.finished() {
                tracing::info!("no task left; exiting");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok(());
            }
        }
    }

    /// A v1 status wrapped as the libprocess driver sends it.
    fn status_update(&self, mut status: TaskStatus) -> libprocess::StatusUpdate {
        let agent = v1::AgentId { value: self.agent_id.clone() };
        status.agent_id = Some(agent.clone());
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        libprocess::StatusUpdate {
            framework_id: Some(v1::FrameworkId { value: self.framework_id.clone() }),
            executor_id: Some(v1::ExecutorId { value: self.executor_id.clone() }),
            slave_id: Some(agent),
            uuid: status.uuid.clone(),
            timestamp: Some(status.timestamp.unwrap_or(timestamp)),
            status: Some(status),
        }
    }

    fn shutdown(&mut self) {
        self.shutting_down = true;
        let ids: Vec<String> = self.tasks.keys().cloned().collect();
        for id in ids {
            self.kill(&id, None, false);
        }
    }

    async fn run_http(mut self, mut internal: mpsc::Receiver<Internal>) -> anyhow::Result<()> {
        loop {
            let resp = self.subscribe().await?;
            let mut records = RecordStream::new(Box::pin(resp.bytes_stream()), 64 << 20);
            loop {
                tokio::select! {
                    rec = records.next() => match rec {
                        Some(Ok(bytes)) => match codec::decode::<Event>(&bytes, Encoding::Protobuf) {
                            Ok(ev) => self.on_event(ev).await,
                            Err(e) => tracing::warn!(error = %e, "undecodable event"),
                        },
                        _ => {
                            tracing::warn!("the agent closed the event stream; re-subscribing");
                            break;
                        }
                    },
                    Some(msg) = internal.recv() => self.on_internal(msg).await,
                }
                if self.finished() {
                    tracing::info!("no task left; exiting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Ok(());
                }
            }
        }
    }

    fn finished(&self) -> bool {
        self.tasks.is_empty() && (self.had_task || self.shutting_down) && (self.last_update_accepted || self.shutting_down)
    }

    async fn update(&mut self, task: &TaskInfo, state: TaskState, reason: Option<Reason>, message: &str, healthy: Option<bool>) {
        self.update_with(task, state, reason, message, healthy, None).await;
    }

    async fn update_with(
        &mut self,
        task: &TaskInfo,
        state: TaskState,
        reason: Option<Reason>,
        message: &str,
        healthy: Option<bool>,
        container_status: Option<v1::ContainerStatus>,
    ) {
        let status = TaskStatus {
            container_status,
            task_id: task.task_id.clone(),
            state: state as i32,
            message: Some(message.to_string()),
            source: Some(v1::task_status::Source::Executor as i32),
            reason: reason.map(|r| r as i32),
            executor_id: Some(v1::ExecutorId { value: self.executor_id.clone() }),
            healthy,
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ..Default::default()
        };
        self.unacked.insert(status.uuid.clone().unwrap_or_default(), status.clone());
        if let Transport::Libprocess(link) = &self.transport {
            let message = libprocess::StatusUpdateMessage { update: Some(self.status_update(status)), pid: Some(link.me.to_string()) };
            self.last_update_accepted = link.send("StatusUpdateMessage", &message).await;
            return;
        }
        let mut c = self.base_call(call::Type::Update);
        c.update = Some(call::Update { status });
        self.last_update_accepted = matches!(self.post(&c, false).await, Ok(r) if r.status().as_u16() == 202);
    }

    async fn on_event(&mut self, ev: Event) {
        match ev.r#type() {
            event::Type::Subscribed => tracing::info!("subscribed to the agent"),
            event::Type::Launch => {
                if let Some(l) = ev.launch {
                    self.launch(l.task).await;
                }
            }
            event::Type::Kill => {
                if let Some(k) = ev.kill {
                    let grace =
                        k.kill_policy.and_then(|p| p.grace_period).map(|g| Duration::from_nanos(u64::try_from(g.nanoseconds).unwrap_or(0)));
                    self.kill(&k.task_id.value, grace, false);
                }
            }
            event::Type::Acknowledged => {
                if let Some(a) = ev.acknowledged {
                    self.unacked.remove(&a.uuid);
                    self.launched.remove(&a.task_id.value);
                }
            }
            event::Type::Shutdown => self.shutdown(),
            event::Type::Error => tracing::error!(message = ?ev.error.map(|e| e.message), "the agent reported an error"),
            other => tracing::debug!(?other, "ignored event"),
        }
    }

    async fn launch(&mut self, task: TaskInfo) {
        self.had_task = true;
        self.launched.insert(task.task_id.value.clone(), task.clone());
        let docker = match &self.docker {
            Ok(d) => d.clone(),
            Err(e) => {
                let msg = format!("Docker is not available: {e}");
                self.update(&task, TaskState::TaskFailed, Some(Reason::ContainerLaunchFailed), &msg, None).await;
                return;
            }
        };
        let spec = match spec::container_spec(&task, &self.executor_id, std::process::id(), &self.sandbox) {
            Ok(mut s) => {
                // Started by an agent's Docker containerizer: the container has the name the
                // agent knows it by, and the sandbox mounted where Mesos mounts it.
                if let Some(name) = &self.flags.container {
                    s.name = name.clone();
                }
                if let (Some(host), Some(mapped)) = (&self.flags.sandbox_directory, &self.flags.mapped_directory) {
                    s.binds.push(format!("{host}:{mapped}"));
                    s.env.push(format!("MESOS_SANDBOX={mapped}"));
                }
                s
            }
            Err(e) => {
                self.update(&task, TaskState::TaskFailed, Some(Reason::ContainerLaunchFailed), &e.to_string(), None).await;
                return;
            }
        };
        self.update(&task, TaskState::TaskStarting, None, "pulling the image if needed, then creating the container", None).await;
        let id = task.task_id.value.clone();
        self.tasks.insert(
            id.clone(),
            Running { info: task, container: spec.name.clone(), killing: false, killed_by_health: false, healthy: None, health: None },
        );
        let tx = self.internal_tx.clone();
        let sandbox = self.sandbox.clone();
        tokio::spawn(async move {
            let launched = async {
                docker::pull(&docker, &spec.image, spec.force_pull).await?;
                docker::run(&docker, &spec).await
            };
            if let Err(e) = launched.await {
                let _ = tx.send(Internal::LaunchFailed { task: id, message: format!("{e:#}") }).await;
                return;
            }
            let ip = docker::ip_address(&docker, &spec.name).await;
            let _ = tx.send(Internal::Started { task: id.clone(), ip }).await;
            tokio::spawn(docker::follow_logs(docker.clone(), spec.name.clone(), sandbox));
            let exit = docker::wait(&docker, &spec.name).await;
            let _ = tx.send(Internal::Exited { task: id, exit }).await;
        });
    }

    fn kill(&mut self, task_id: &str, grace: Option<Duration>, by_health: bool) {
        let Ok(docker) = self.docker.clone() else { return };
        let Some(t) = self.tasks.get_mut(task_id) else { return };
        // A repeated KILL stops again (the first may have come while the container was still
        // being created); it never turns a requested kill into a health kill.
        t.killed_by_health |= by_health && !t.killing;
        t.killing = true;
        let grace = grace
            .or_else(|| {
                t.info.kill_policy.and_then(|p| p.grace_period).map(|g| Duration::from_nanos(u64::try_from(g.nanoseconds).unwrap_or(0)))
            })
            .unwrap_or(DEFAULT_GRACE);
        let name = t.container.clone();
        tokio::spawn(async move { docker::stop(&docker, &name, grace).await });
    }

    async fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::Started { task, ip } => {
                let Some(t) = self.tasks.get(&task) else { return };
                if t.killing {
                    // Killed while the container was being created: stop it now.
                    t.killing_restart(self.docker.clone());
                    return;
                }
                let info = t.info.clone();
                let container = t.container.clone();
                // The container's address, as Mesos's Docker executor reports it (host networking:
                // the agent's).
                let agent_ip = self.endpoint.rsplit_once(':').map(|(host, _)| host.to_string());
                let ip = ip.or(agent_ip);
                let status = v1::ContainerStatus {
                    network_infos: vec![v1::NetworkInfo {
                        ip_addresses: ip
                            .into_iter()
                            .map(|a| v1::network_info::IpAddress { ip_address: Some(a), ..Default::default() })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                self.update_with(&info, TaskState::TaskRunning, None, "container running", None, Some(status)).await;
                if let (Some(check), Ok(docker)) = (info.health_check.clone(), self.docker.clone()) {
                    let (vtx, mut vrx) = mpsc::channel(8);
                    let itx = self.internal_tx.clone();
                    let id = task.clone();
                    tokio::spawn(async move {
                        while let Some(verdict) = vrx.recv().await {
                            if itx.send(Internal::Health { task: id.clone(), verdict }).await.is_err() {
                                return;
                            }
                        }
                    });
                    let handle = tokio::spawn(health::run(check, docker, container, vtx));
                    if let Some(t) = self.tasks.get_mut(&task) {
                        t.health = Some(handle);
                    }
                }
            }
            Internal::LaunchFailed { task, message } => {
                if let Some(t) = self.tasks.remove(&task) {
                    if let Ok(d) = &self.docker {
                        docker::remove(d, &t.container).await;
                    }
                    self.update(&t.info, TaskState::TaskFailed, Some(Reason::ContainerLaunchFailed), &message, None).await;
                }
            }
            Internal::Exited { task, exit } => {
                let Some(t) = self.tasks.remove(&task) else { return };
                if let Some(h) = &t.health {
                    h.abort();
                }
                if let Ok(d) = &self.docker {
                    docker::remove(d, &t.container).await;
                }
                let (state, reason, message, healthy) = if t.killed_by_health {
                    // As Mesos's executors: no reason, only `healthy: false`.
                    (TaskState::TaskKilled, None, "killed after failing its health check".to_string(), Some(false))
                } else if t.killing {
                    (TaskState::TaskKilled, None, "killed by request".to_string(), t.healthy)
                } else if exit.oom_killed {
                    (
                        TaskState::TaskFailed,
                        Some(Reason::ContainerLimitationMemory),
                        "the container exceeded its memory limit and was killed (OOM)".to_string(),
                        t.healthy,
                    )
                } else if exit.code == Some(0) {
                    (TaskState::TaskFinished, None, "container exited with status 0".to_string(), t.healthy)
                } else {
                    let code = exit.code.map_or("unknown".to_string(), |c| c.to_string());
                    (TaskState::TaskFailed, Some(Reason::CommandExecutorFailed), format!("container exited with status {code}"), t.healthy)
                };
                self.update(&t.info, state, reason, &message, healthy).await;
            }
            Internal::Health { task, verdict } => match verdict {
                health::Verdict::Healthy(h) => {
                    let Some(t) = self.tasks.get_mut(&task) else { return };
                    if t.killing {
                        return;
                    }
                    t.healthy = Some(h);
                    let info = t.info.clone();
                    let msg = if h { "health check passed" } else { "health check failed" };
                    self.update(&info, TaskState::TaskRunning, Some(Reason::TaskHealthCheckStatusUpdated), msg, Some(h)).await;
                }
                health::Verdict::Kill => self.kill(&task, None, true),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DockerExecutorFlags;

    #[test]
    fn the_agent_is_reached_under_its_process_id() {
        assert_eq!(super::agent_url(Some("slave(1)@10.0.0.5:5051"), "10.0.0.5:5051"), "http://10.0.0.5:5051/slave(1)/api/v1/executor");
        assert_eq!(super::agent_url(None, "127.0.0.1:5051"), "http://127.0.0.1:5051/api/v1/executor");
        assert_eq!(super::agent_url(Some("garbage"), "127.0.0.1:5051"), "http://127.0.0.1:5051/api/v1/executor");
    }

    #[test]
    fn the_docker_containerizers_flags_are_read_and_others_ignored() {
        let args =
            ["--container=mesos-abc", "--docker=docker", "--sandbox_directory=/w/s", "--mapped_directory=/mnt/mesos/sandbox", "--quiet"];
        let f = DockerExecutorFlags::parse(args.map(String::from));
        assert_eq!(f.container.as_deref(), Some("mesos-abc"));
        assert_eq!(f.sandbox_directory.as_deref(), Some("/w/s"));
        assert_eq!(f.mapped_directory.as_deref(), Some("/mnt/mesos/sandbox"));
        assert_eq!(DockerExecutorFlags::parse(Vec::new()), DockerExecutorFlags::default());
    }
}
