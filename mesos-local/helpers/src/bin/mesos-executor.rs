//! `mesos-executor`: our stand-in for Mesos 1.x's command executor (src/launcher/executor.cpp),
//! which a real agent runs for a task that brings no executor of its own.
//!
//! It speaks the v1 executor HTTP API (protobuf) at the agent's own path, from `MESOS_SLAVE_PID`
//! (`slave(1)@127.0.0.1:5050` → `http://127.0.0.1:5050/slave(1)/api/v1/executor`), with the
//! executor token as a bearer when the agent gives one. For its one task it sends TASK_STARTING,
//! starts the command through `<launcher_dir>/mesos-containerizer launch` in a session of its own,
//! and sends TASK_RUNNING; at the end one terminal update: TASK_KILLED after a kill, else
//! TASK_FINISHED on exit 0, else TASK_FAILED, with Mesos's message ("Command exited with status
//! N", "Command terminated with signal ..."). KILL sends TASK_KILLING (when the framework has
//! TASK_KILLING_STATE), SIGTERM to the task's process group and SIGKILL after the grace period
//! (the KILL's kill policy, else the task's, else 3 s). It exits once the terminal update is
//! acknowledged. Health checks (COMMAND, HTTP, TCP) run by the shared `mesos-health` policy: a
//! change of health is reported, too many failures in a row kill the task (its terminal update
//! says `healthy: false`). With a checkpointing framework (`MESOS_CHECKPOINT=1`) it survives an
//! agent restart: it keeps its task, and subscribes again (with its unacknowledged task and
//! updates) within `MESOS_RECOVERY_TIMEOUT`; without checkpointing it kills its task and exits,
//! as Mesos's does. Not done yet: generic checks (`CheckInfo`), max_completion_time.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use mesos_proto::codec::{self, Encoding};
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::executor::{Call, Event, call, event};
use mesos_proto::v1::{self, TaskInfo, TaskState, TaskStatus, framework_info::capability};
use tokio::process::Child;

/// A health check's results, sent by its prober to the main loop.
type Results = tokio::sync::mpsc::Receiver<bool>;

/// Mesos's default kill grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(3);

struct Executor {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    framework_id: String,
    executor_id: String,
    launcher_dir: PathBuf,
    task: Option<TaskInfo>,
    child: Option<Child>,
    killing: bool,
    kill_capable: bool,
    /// The uuid of the terminal update while it is not acknowledged.
    terminal_uuid: Option<Vec<u8>>,
    terminal_sent: bool,
    /// The task's health check: its results, what they mean, since when the task runs.
    health: Option<(Results, mesos_health::Tracker, tokio::time::Instant)>,
    healthy: Option<bool>,
    killed_by_health: bool,
    /// Updates the agent has not acknowledged, by uuid (sent again when subscribing again).
    unacked: std::collections::BTreeMap<Vec<u8>, TaskStatus>,
    /// Whether any update of the task was acknowledged.
    acked_any: bool,
    /// The framework checkpoints: an agent restart is waited out.
    checkpoint: bool,
    /// How long to wait for a restarting agent (`MESOS_RECOVERY_TIMEOUT`).
    recovery_timeout: Duration,
    /// The longest wait between two SUBSCRIBE attempts.
    backoff_max: Duration,
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: this program is started by a Mesos agent"))
}

/// The agent's executor API URL from its libprocess id (`id@ip:port`).
fn agent_url(pid: &str) -> anyhow::Result<String> {
    let (id, addr) = pid.split_once('@').with_context(|| format!("MESOS_SLAVE_PID '{pid}' is not id@host:port"))?;
    Ok(format!("http://{addr}/{id}/api/v1/executor"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut launcher_dir = None;
    for arg in std::env::args().skip(1) {
        if let Some(dir) = arg.strip_prefix("--launcher_dir=") {
            launcher_dir = Some(PathBuf::from(dir));
        }
    }
    if std::env::var("MESOS_HTTP_COMMAND_EXECUTOR").as_deref() != Ok("1") {
        bail!("this command executor speaks only the v1 HTTP API: start the agent with --http_command_executor");
    }
    let launcher_dir = match launcher_dir {
        Some(d) => d,
        None => std::env::current_exe()?.parent().map(PathBuf::from).context("no --launcher_dir")?,
    };
    let mut ex = Executor {
        http: reqwest::Client::new(),
        url: agent_url(&env("MESOS_SLAVE_PID")?)?,
        token: std::env::var("MESOS_EXECUTOR_AUTHENTICATION_TOKEN").ok(),
        framework_id: env("MESOS_FRAMEWORK_ID")?,
        executor_id: env("MESOS_EXECUTOR_ID")?,
        launcher_dir,
        task: None,
        child: None,
        killing: false,
        kill_capable: false,
        terminal_uuid: None,
        terminal_sent: false,
        health: None,
        healthy: None,
        killed_by_health: false,
        unacked: std::collections::BTreeMap::new(),
        acked_any: false,
        checkpoint: std::env::var("MESOS_CHECKPOINT").as_deref() == Ok("1"),
        recovery_timeout: std::env::var("MESOS_RECOVERY_TIMEOUT")
            .ok()
            .and_then(|t| mesos_proto::duration::parse(&t))
            .unwrap_or(Duration::from_secs(15 * 60)),
        backoff_max: std::env::var("MESOS_SUBSCRIPTION_BACKOFF_MAX")
            .ok()
            .and_then(|t| mesos_proto::duration::parse(&t))
            .unwrap_or(Duration::from_secs(2))
            .clamp(Duration::from_millis(100), Duration::from_secs(1)),
    };
    ex.run().await
}

impl Executor {
    fn call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: v1::ExecutorId { value: self.executor_id.clone() },
            framework_id: v1::FrameworkId { value: self.framework_id.clone() },
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    fn post(&self, call: &Call) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(&self.url)
            .header("Content-Type", Encoding::Protobuf.content_type())
            .header("Accept", Encoding::Protobuf.content_type())
            .body(codec::encode(call, Encoding::Protobuf));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// SUBSCRIBE; after a lost connection (`again`), with the unacknowledged task and updates,
    /// retried until the agent is back or the recovery timeout passes.
    async fn subscribe(&self, again: bool) -> anyhow::Result<reqwest::Response> {
        let deadline = tokio::time::Instant::now() + self.recovery_timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let mut subscribe = self.call(call::Type::Subscribe);
            subscribe.subscribe = Some(call::Subscribe {
                unacknowledged_tasks: if self.acked_any { Vec::new() } else { self.task.iter().cloned().collect() },
                unacknowledged_updates: self.unacked.values().map(|s| call::Update { status: s.clone() }).collect(),
            });
            match self.post(&subscribe).send().await {
                Ok(resp) if resp.status().as_u16() == 200 => return Ok(resp),
                Ok(resp) if !again => bail!("the agent refused SUBSCRIBE: {}", resp.status()),
                Err(e) if !again => return Err(e).context("SUBSCRIBE to the agent"),
                _ => {}
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the agent did not come back within the recovery timeout");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.backoff_max);
        }
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let mut again = false;
        loop {
            let resp = self.subscribe(again).await?;
            again = true;
            if self.serve(resp).await? {
                return Ok(());
            }
            eprintln!("mesos-executor: the agent closed the event stream; subscribing again");
        }
    }

    /// Serves one subscription: true when the executor is done, false when the agent went
    /// away and a checkpointing executor waits for it.
    async fn serve(&mut self, resp: reqwest::Response) -> anyhow::Result<bool> {
        let mut events = RecordStream::new(Box::pin(resp.bytes_stream()), 64 << 20);
        // When SIGKILL follows the SIGTERM of a kill.
        let mut escalate: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                rec = events.next() => match rec {
                    Some(Ok(bytes)) => {
                        let ev: Event = codec::decode(&bytes, Encoding::Protobuf).context("an undecodable event")?;
                        if let Some(grace) = self.on_event(ev).await? {
                            escalate = Some(tokio::time::Instant::now() + grace);
                        }
                        if self.done() {
                            return Ok(true);
                        }
                    }
                    _ => {
                        if self.checkpoint {
                            return Ok(false);
                        }
                        // Without checkpointing, Mesos's executor shuts down when its agent goes.
                        self.signal_task(nix::sys::signal::Signal::SIGKILL);
                        bail!("the agent closed the event stream");
                    }
                },
                status = wait_child(&mut self.child) => {
                    self.child = None;
                    self.finished(status).await?;
                }
                Some(ok) = next_result(&mut self.health) => {
                    if let Some(grace) = self.on_health(ok).await? {
                        escalate = Some(tokio::time::Instant::now() + grace);
                    }
                }
                () = sleep_until(escalate) => {
                    escalate = None;
                    self.signal_task(nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }

    /// The terminal update was sent and acknowledged.
    fn done(&self) -> bool {
        self.terminal_sent && self.terminal_uuid.is_none()
    }

    /// Handles an event; a kill grace period to escalate after, when one starts.
    async fn on_event(&mut self, ev: Event) -> anyhow::Result<Option<Duration>> {
        match ev.r#type() {
            event::Type::Subscribed => {
                if let Some(s) = ev.subscribed {
                    self.kill_capable =
                        s.framework_info.capabilities.iter().any(|c| c.r#type == Some(capability::Type::TaskKillingState as i32));
                }
            }
            event::Type::Launch => {
                let Some(launch) = ev.launch else { return Ok(None) };
                if self.task.is_some() {
                    let mut st = self.status(&launch.task.task_id, TaskState::TaskFailed);
                    st.message = Some("Attempted to run multiple tasks using a \"command\" executor".into());
                    self.update(st).await?;
                    return Ok(None);
                }
                self.launch(launch.task).await?;
            }
            event::Type::Kill => {
                let Some(kill) = ev.kill else { return Ok(None) };
                let grace = kill.kill_policy.and_then(|p| p.grace_period).map(nanos);
                return self.kill(grace).await;
            }
            event::Type::Acknowledged => {
                if let Some(ack) = ev.acknowledged {
                    self.unacked.remove(&ack.uuid);
                    self.acked_any = true;
                    if self.terminal_uuid.as_deref() == Some(&ack.uuid[..]) {
                        self.terminal_uuid = None;
                    }
                }
            }
            event::Type::Shutdown => {
                if self.task.is_none() {
                    std::process::exit(0);
                }
                let grace = std::env::var("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD")
                    .ok()
                    .and_then(|t| mesos_proto::duration::parse(&t))
                    .unwrap_or(Duration::from_secs(5))
                    .saturating_sub(Duration::from_secs(2));
                return self.kill(Some(grace)).await;
            }
            _ => {}
        }
        Ok(None)
    }

    fn status(&self, task: &v1::TaskId, state: TaskState) -> TaskStatus {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        TaskStatus {
            task_id: task.clone(),
            state: state as i32,
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            timestamp: Some(now),
            executor_id: Some(v1::ExecutorId { value: self.executor_id.clone() }),
            source: Some(v1::task_status::Source::Executor as i32),
            ..Default::default()
        }
    }

    async fn update(&mut self, status: TaskStatus) -> anyhow::Result<()> {
        if let Some(uuid) = &status.uuid {
            self.unacked.insert(uuid.clone(), status.clone());
        }
        let mut c = self.call(call::Type::Update);
        c.update = Some(call::Update { status });
        match self.post(&c).send().await {
            Ok(resp) if resp.status().as_u16() == 202 => Ok(()),
            // A checkpointing executor keeps what the agent did not take: it goes with the
            // next SUBSCRIBE.
            _ if self.checkpoint => Ok(()),
            Ok(resp) => bail!("the agent refused an UPDATE: {}", resp.status()),
            Err(e) => Err(e).context("UPDATE to the agent"),
        }
    }

    async fn launch(&mut self, task: TaskInfo) -> anyhow::Result<()> {
        self.update(self.status(&task.task_id, TaskState::TaskStarting)).await?;
        let command = task.command.clone().unwrap_or_default();
        // The executor's environment, then the task's (Mesos's order), as launch_info's.
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        for v in command.environment.iter().flat_map(|e| e.variables.iter()) {
            vars.push((v.name.clone(), v.value.clone().unwrap_or_default()));
        }
        let launch_info = serde_json::json!({
            "command": {
                "shell": command.shell.unwrap_or(true),
                "value": command.value.clone().unwrap_or_default(),
                "arguments": command.arguments,
            },
            "environment": {"variables": vars.iter().map(|(n, v)| serde_json::json!({"name": n, "type": "VALUE", "value": v})).collect::<Vec<_>>()},
        });
        let spawned = tokio::process::Command::new(self.launcher_dir.join("mesos-containerizer"))
            .arg("launch")
            .arg("--help=false")
            .arg(format!("--launch_info={launch_info}"))
            .process_group(0)
            .spawn();
        let task_id = task.task_id.clone();
        self.task = Some(task);
        match spawned {
            Ok(child) => {
                self.child = Some(child);
                if let Some(check) = self.task.as_ref().and_then(|t| t.health_check.clone()) {
                    let (tx, rx) = tokio::sync::mpsc::channel(4);
                    let tracker = mesos_health::Tracker::new(mesos_health::Policy::of(&check));
                    let env: Vec<(String, String)> = vars.clone();
                    tokio::spawn(probe(check, env, tx));
                    self.health = Some((rx, tracker, tokio::time::Instant::now()));
                }
                self.update(self.status(&task_id, TaskState::TaskRunning)).await
            }
            Err(e) => {
                let mut st = self.status(&task_id, TaskState::TaskFailed);
                st.message = Some(format!("Failed to launch the task: {e}"));
                self.send_terminal(st).await
            }
        }
    }

    async fn kill(&mut self, grace: Option<Duration>) -> anyhow::Result<Option<Duration>> {
        let Some(task) = self.task.clone() else { return Ok(None) };
        if self.child.is_none() || self.killing {
            return Ok(None);
        }
        self.killing = true;
        let grace = grace.or_else(|| task.kill_policy.and_then(|p| p.grace_period).map(nanos)).unwrap_or(DEFAULT_GRACE);
        if self.kill_capable {
            self.update(self.status(&task.task_id, TaskState::TaskKilling)).await?;
        }
        self.signal_task(nix::sys::signal::Signal::SIGTERM);
        Ok(Some(grace))
    }

    /// Folds in a health check result: a change of health is sent as TASK_RUNNING with
    /// `healthy` and REASON_TASK_HEALTH_CHECK_STATUS_UPDATED; too many failures kill the task.
    async fn on_health(&mut self, ok: bool) -> anyhow::Result<Option<Duration>> {
        let Some((_, tracker, started)) = self.health.as_mut() else { return Ok(None) };
        if self.killing || self.child.is_none() {
            return Ok(None);
        }
        match tracker.record(ok, started.elapsed()) {
            mesos_health::Verdict::Unchanged => Ok(None),
            mesos_health::Verdict::Changed(healthy) => {
                self.healthy = Some(healthy);
                let Some(task) = &self.task else { return Ok(None) };
                let mut st = self.status(&task.task_id, TaskState::TaskRunning);
                st.healthy = Some(healthy);
                st.reason = Some(v1::task_status::Reason::TaskHealthCheckStatusUpdated as i32);
                self.update(st).await?;
                Ok(None)
            }
            mesos_health::Verdict::Kill => {
                self.killed_by_health = true;
                self.healthy = Some(false);
                self.kill(None).await
            }
        }
    }

    fn signal_task(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let group = nix::unistd::Pid::from_raw(-i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::kill(group, sig);
        }
    }

    async fn finished(&mut self, status: std::io::Result<std::process::ExitStatus>) -> anyhow::Result<()> {
        use std::os::unix::process::ExitStatusExt as _;
        let Some(task) = self.task.clone() else { return Ok(()) };
        let (state, message) = match status {
            Ok(s) => {
                let message = match (s.code(), s.signal()) {
                    (Some(code), _) => format!("Command exited with status {code}"),
                    (None, Some(sig)) => format!("Command terminated with signal {}", signal_name(sig)),
                    _ => "Command terminated".to_owned(),
                };
                let state = if self.killing {
                    TaskState::TaskKilled
                } else if s.success() {
                    TaskState::TaskFinished
                } else {
                    TaskState::TaskFailed
                };
                (state, message)
            }
            Err(e) => (TaskState::TaskFailed, format!("Failed to get exit status for Command: {e}")),
        };
        let mut st = self.status(&task.task_id, state);
        st.message = Some(message);
        if self.killed_by_health {
            st.healthy = Some(false);
        }
        self.health = None;
        self.send_terminal(st).await
    }

    async fn send_terminal(&mut self, st: TaskStatus) -> anyhow::Result<()> {
        self.terminal_uuid = st.uuid.clone();
        self.terminal_sent = true;
        self.update(st).await
    }
}

/// The next health check result, or never when there is no check.
async fn next_result(health: &mut Option<(Results, mesos_health::Tracker, tokio::time::Instant)>) -> Option<bool> {
    match health {
        Some((rx, _, _)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs a health check by its policy until the main loop stops listening: HTTP and TCP on
/// 127.0.0.1 (command tasks share the host's network), a command through `sh -c` with the task's
/// environment, each within the check's timeout.
async fn probe(check: v1::HealthCheck, env: Vec<(String, String)>, tx: tokio::sync::mpsc::Sender<bool>) {
    let policy = mesos_health::Policy::of(&check);
    let client = reqwest::Client::new();
    tokio::time::sleep(policy.delay).await;
    loop {
        let ok = match mesos_health::probe_network(&check, "127.0.0.1", &client).await {
            Some(ok) => ok,
            None => {
                let value = check.command.as_ref().and_then(|c| c.value.clone()).unwrap_or_default();
                let run = tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&value)
                    .env_clear()
                    .envs(env.iter().cloned())
                    .kill_on_drop(true)
                    .status();
                matches!(tokio::time::timeout(policy.timeout, run).await, Ok(Ok(s)) if s.success())
            }
        };
        if tx.send(ok).await.is_err() {
            return;
        }
        tokio::time::sleep(policy.interval).await;
    }
}

/// `at`, or never.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The task's exit, or never when no task runs.
async fn wait_child(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

fn nanos(d: v1::DurationInfo) -> Duration {
    Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0))
}

/// strsignal's words for the signals a task usually ends with.
fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(nix::sys::signal::Signal::SIGTERM) => "Terminated".into(),
        Ok(nix::sys::signal::Signal::SIGKILL) => "Killed".into(),
        Ok(nix::sys::signal::Signal::SIGINT) => "Interrupt".into(),
        Ok(nix::sys::signal::Signal::SIGABRT) => "Aborted".into(),
        Ok(nix::sys::signal::Signal::SIGSEGV) => "Segmentation fault".into(),
        Ok(nix::sys::signal::Signal::SIGHUP) => "Hangup".into(),
        _ => format!("Unknown signal {sig}"),
    }
}
