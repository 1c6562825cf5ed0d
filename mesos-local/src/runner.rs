//! Runs one command task as a child process, the way Mesos's command executor does: `/bin/sh -c`
//! or argv, the task's environment, stdout/stderr files in the sandbox, health checks, and kill
//! with the KillPolicy grace period (SIGTERM to the process group, then SIGKILL).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mesos_proto::v1::{self, KillPolicy, TaskInfo, TaskState, health_check, task_status::Reason};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::protocol::duration;

/// Grace period when neither the kill call nor the task gives one (Mesos's default).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// A state change the runner reports; the agent turns it into a TaskStatus with a uuid.
#[derive(Debug, Clone)]
pub struct Report {
    /// New state.
    pub state: TaskState,
    /// Why, if there is a specific reason.
    pub reason: Option<Reason>,
    /// Human-readable detail.
    pub message: Option<String>,
    /// Health, when health checks run.
    pub healthy: Option<bool>,
}

impl Report {
    fn new(state: TaskState, message: impl Into<String>) -> Self {
        Self { state, reason: None, message: Some(message.into()), healthy: None }
    }
}

/// Everything the runner needs to start the task.
pub struct RunSpec {
    /// The task.
    pub task: TaskInfo,
    /// Its sandbox directory (created by the runner).
    pub sandbox: PathBuf,
    /// Environment added by the agent (MESOS_*).
    pub env: Vec<(String, String)>,
    /// Whether the framework understands TASK_KILLING.
    pub killing_state: bool,
}

/// Runs the task to its end, sending reports on `reports`; a message on `kill` kills it.
pub async fn run(spec: RunSpec, reports: mpsc::UnboundedSender<Report>, mut kill: mpsc::UnboundedReceiver<Option<KillPolicy>>) {
    let send = |r: Report| {
        let _ = reports.send(r);
    };
    let mut child = match spawn(&spec).await {
        Ok(child) => child,
        Err(message) => {
            send(Report { reason: Some(Reason::ContainerLaunchFailed), ..Report::new(TaskState::TaskFailed, message) });
            return;
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw);
    send(Report::new(TaskState::TaskStarting, "Launching command"));
    send(Report::new(TaskState::TaskRunning, "Command is running"));

    let mut health = spec.task.health_check.as_ref().map(Health::new);
    let started = Instant::now();
    let mut next_check = health.as_ref().map(|h| started + h.delay);
    loop {
        let check_at = next_check.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            status = child.wait() => {
                let report = match status {
                    Ok(s) => exit_report(s),
                    Err(e) => Report::new(TaskState::TaskFailed, format!("Failed to wait for the command: {e}")),
                };
                send(report);
                return;
            }
            policy = kill.recv() => {
                let grace = policy.flatten().and_then(|p| p.grace_period).map(|d| duration(&d))
                    .or_else(|| spec.task.kill_policy.as_ref().and_then(|p| p.grace_period.as_ref()).map(duration))
                    .unwrap_or(DEFAULT_KILL_GRACE);
                if spec.killing_state {
                    send(Report::new(TaskState::TaskKilling, "Killing the task"));
                }
                terminate(&mut child, pid, grace).await;
                send(Report::new(TaskState::TaskKilled, "Command terminated by a kill request"));
                return;
            }
            () = tokio::time::sleep_until(check_at), if next_check.is_some() => {
                let Some(h) = health.as_mut() else { continue };
                let ok = h.check(&spec).await;
                next_check = Some(Instant::now() + h.interval);
                match h.record(ok, started.elapsed()) {
                    HealthVerdict::Unchanged => {}
                    HealthVerdict::Changed(healthy) => send(Report {
                        state: TaskState::TaskRunning,
                        reason: Some(Reason::TaskHealthCheckStatusUpdated),
                        message: Some(if healthy { "Task is healthy".into() } else { "Task is unhealthy".into() }),
                        healthy: Some(healthy),
                    }),
                    HealthVerdict::Kill => {
                        if spec.killing_state {
                            send(Report { healthy: Some(false), ..Report::new(TaskState::TaskKilling, "Killing the unhealthy task") });
                        }
                        let grace = spec.task.kill_policy.as_ref().and_then(|p| p.grace_period.as_ref()).map(duration).unwrap_or(DEFAULT_KILL_GRACE);
                        terminate(&mut child, pid, grace).await;
                        send(Report {
                            state: TaskState::TaskKilled,
                            reason: Some(Reason::TaskHealthCheckStatusUpdated),
                            message: Some(format!("Task was killed after {} consecutive failed health checks", h.max_failures)),
                            healthy: Some(false),
                        });
                        return;
                    }
                }
            }
        }
    }
}

async fn spawn(spec: &RunSpec) -> Result<Child, String> {
    let task = &spec.task;
    if task.container.as_ref().is_some_and(|c| c.r#type == v1::container_info::Type::Docker as i32) {
        return Err("The local agent has no Docker containerizer: run Docker tasks through an executor".to_owned());
    }
    let command = task.command.as_ref().ok_or("Task has no command")?;
    tokio::fs::create_dir_all(&spec.sandbox).await.map_err(|e| format!("Failed to create the sandbox {}: {e}", spec.sandbox.display()))?;
    let stdout = std::fs::File::create(spec.sandbox.join("stdout")).map_err(|e| format!("Failed to create stdout: {e}"))?;
    let stderr = std::fs::File::create(spec.sandbox.join("stderr")).map_err(|e| format!("Failed to create stderr: {e}"))?;
    let value = command.value.clone().unwrap_or_default();
    let mut cmd = build_command(command);
    cmd.current_dir(&spec.sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    cmd.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for var in command.environment.iter().flat_map(|e| &e.variables) {
        cmd.env(&var.name, var.value.as_deref().unwrap_or_default());
    }
    cmd.spawn().map_err(|e| format!("Failed to launch command '{value}': {e}"))
}

/// The process a CommandInfo describes: `/bin/sh -c value` when `shell` (the default), else
/// `value` as the executable with `arguments` as the whole argv (argv[0] included).
pub fn build_command(command: &v1::CommandInfo) -> Command {
    let value = command.value.clone().unwrap_or_default();
    if command.shell.unwrap_or(true) {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(&value);
        c
    } else {
        let mut c = Command::new(&value);
        if let Some((arg0, rest)) = command.arguments.split_first() {
            c.arg0(arg0).args(rest);
        }
        c
    }
}

fn exit_report(status: std::process::ExitStatus) -> Report {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Report::new(TaskState::TaskFinished, "Command exited with status 0"),
        (Some(code), _) => Report::new(TaskState::TaskFailed, format!("Command exited with status {code}")),
        (None, Some(sig)) => Report::new(TaskState::TaskFailed, format!("Command terminated with signal {sig}")),
        (None, None) => Report::new(TaskState::TaskFailed, "Command ended"),
    }
}

/// SIGTERM to the task's process group, SIGKILL after `grace`, then reap.
pub async fn terminate(child: &mut Child, pid: Option<Pid>, grace: Duration) {
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        if let Some(pid) = pid {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        let _ = child.kill().await;
    }
    // Anything left in the group goes too.
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
}

enum HealthVerdict {
    Unchanged,
    Changed(bool),
    Kill,
}

/// Health check state for one task, with Mesos's defaults.
struct Health {
    check: v1::HealthCheck,
    delay: Duration,
    interval: Duration,
    timeout: Duration,
    grace: Duration,
    max_failures: u32,
    failures: u32,
    healthy: Option<bool>,
}

impl Health {
    fn new(check: &v1::HealthCheck) -> Self {
        let secs = |v: Option<f64>, d: f64| Duration::from_secs_f64(v.filter(|x| x.is_finite() && *x >= 0.0).unwrap_or(d));
        Self {
            check: check.clone(),
            delay: secs(check.delay_seconds, 15.0),
            interval: secs(check.interval_seconds, 10.0).max(Duration::from_millis(10)),
            timeout: secs(check.timeout_seconds, 20.0),
            grace: secs(check.grace_period_seconds, 10.0),
            max_failures: check.consecutive_failures.unwrap_or(3),
            failures: 0,
            healthy: None,
        }
    }

    async fn check(&self, spec: &RunSpec) -> bool {
        let fut = async {
            match self.check.r#type() {
                health_check::Type::Http => {
                    let Some(http) = &self.check.http else { return false };
                    let scheme = http.scheme.clone().unwrap_or_else(|| "http".into());
                    let path = http.path.clone().unwrap_or_else(|| "/".into());
                    let url =
                        format!("{scheme}://127.0.0.1:{}{}", http.port, if path.starts_with('/') { path } else { format!("/{path}") });
                    match reqwest::Client::new().get(&url).send().await {
                        Ok(resp) => {
                            let code = u32::from(resp.status().as_u16());
                            if http.statuses.is_empty() { (200..400).contains(&code) } else { http.statuses.contains(&code) }
                        }
                        Err(_) => false,
                    }
                }
                health_check::Type::Tcp => {
                    let Some(tcp) = &self.check.tcp else { return false };
                    tokio::net::TcpStream::connect(("127.0.0.1", u16::try_from(tcp.port).unwrap_or(0))).await.is_ok()
                }
                health_check::Type::Command => {
                    let Some(cmd) = self.check.command.as_ref().and_then(|c| c.value.clone()) else { return false };
                    let mut c = Command::new("/bin/sh");
                    c.arg("-c").arg(cmd).current_dir(&spec.sandbox).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
                    c.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    for var in spec.task.command.iter().flat_map(|c| c.environment.iter()).flat_map(|e| &e.variables) {
                        c.env(&var.name, var.value.as_deref().unwrap_or_default());
                    }
                    matches!(c.status().await, Ok(s) if s.success())
                }
                health_check::Type::Unknown => false,
            }
        };
        tokio::time::timeout(self.timeout, fut).await.unwrap_or(false)
    }

    /// Folds one check result into the state: failures inside the grace period before the
    /// first success are ignored, as in Mesos.
    fn record(&mut self, ok: bool, since_start: Duration) -> HealthVerdict {
        if ok {
            self.failures = 0;
            if self.healthy != Some(true) {
                self.healthy = Some(true);
                return HealthVerdict::Changed(true);
            }
            return HealthVerdict::Unchanged;
        }
        if self.healthy.is_none() && since_start < self.grace {
            return HealthVerdict::Unchanged;
        }
        self.failures += 1;
        if self.max_failures > 0 && self.failures >= self.max_failures {
            return HealthVerdict::Kill;
        }
        if self.healthy != Some(false) {
            self.healthy = Some(false);
            return HealthVerdict::Changed(false);
        }
        HealthVerdict::Unchanged
    }
}
