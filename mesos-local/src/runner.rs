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
    let mut next_check = health.as_ref().map(|h| started + h.tracker.policy().delay);
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
                next_check = Some(Instant::now() + h.tracker.policy().interval);
                match h.tracker.record(ok, started.elapsed()) {
                    mesos_health::Verdict::Unchanged => {}
                    mesos_health::Verdict::Changed(healthy) => send(Report {
                        state: TaskState::TaskRunning,
                        reason: Some(Reason::TaskHealthCheckStatusUpdated),
                        message: Some(if healthy { "Task is healthy".into() } else { "Task is unhealthy".into() }),
                        healthy: Some(healthy),
                    }),
                    mesos_health::Verdict::Kill => {
                        if spec.killing_state {
                            send(Report { healthy: Some(false), ..Report::new(TaskState::TaskKilling, "Killing the unhealthy task") });
                        }
                        let grace = spec.task.kill_policy.as_ref().and_then(|p| p.grace_period.as_ref()).map(duration).unwrap_or(DEFAULT_KILL_GRACE);
                        terminate(&mut child, pid, grace).await;
                        // As Mesos's command executor: no reason on the terminal update, only
                        // `healthy: false` (launcher/executor.cpp; a differential check).
                        send(Report {
                            state: TaskState::TaskKilled,
                            reason: None,
                            message: Some(format!("Task was killed after {} consecutive failed health checks", h.tracker.policy().max_failures)),
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

/// Health check state for one task: the shared tracker (Mesos's timing and failure rules) and
/// the check, whose command form runs here, in the task's sandbox and environment.
struct Health {
    check: v1::HealthCheck,
    tracker: mesos_health::Tracker,
}

impl Health {
    fn new(check: &v1::HealthCheck) -> Self {
        Self { check: check.clone(), tracker: mesos_health::Tracker::new(mesos_health::Policy::of(check)) }
    }

    async fn check(&self, spec: &RunSpec) -> bool {
        if let Some(ok) = mesos_health::probe_network(&self.check, "127.0.0.1", &reqwest::Client::new()).await {
            return ok;
        }
        let fut = async {
            let Some(cmd) = self.check.command.as_ref().and_then(|c| c.value.clone()) else { return false };
            if self.check.r#type() != health_check::Type::Command {
                return false;
            }
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(cmd).current_dir(&spec.sandbox).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
            c.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for var in spec.task.command.iter().flat_map(|c| c.environment.iter()).flat_map(|e| &e.variables) {
                c.env(&var.name, var.value.as_deref().unwrap_or_default());
            }
            matches!(c.status().await, Ok(s) if s.success())
        };
        tokio::time::timeout(self.tracker.policy().timeout, fut).await.unwrap_or(false)
    }
}
