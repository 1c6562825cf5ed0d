//! An agent: one actor that runs tasks (command tasks through [`crate::runner`], or on custom
//! executors it starts and serves over the executor HTTP API), and a status update manager that
//! sends each task's updates to the master in order, one at a time, until acknowledged.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mesos_proto::v1::executor::{self as exec, event as exev};
use mesos_proto::v1::{
    self, AgentId, AgentInfo, ExecutorInfo, FrameworkInfo, KillPolicy, TaskInfo, TaskState, TaskStatus,
    framework_info::capability::Type as Capability, task_status::Reason,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::protocol::{AgentCmd, AgentEvent, ApiError, MasterMsg, UpdateDelivery, is_terminal, new_uuid, now_secs};
use crate::runner::{self, Report, RunSpec};

/// Agent settings.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// First retry interval of unacknowledged status updates (doubles up to 10 minutes).
    pub update_retry: Duration,
    /// How long a started executor has to subscribe.
    pub executor_registration_timeout: Duration,
    /// Run tasks without processes (scale tests): launch goes straight to RUNNING.
    pub simulated: bool,
    /// Root of the sandboxes.
    pub work_dir: PathBuf,
    /// The program that runs a Docker task sent without an executor (the part of Mesos's Docker
    /// containerizer that `mesos-docker-executor` plays): `framework-executor`.
    pub docker_executor: PathBuf,
    /// Executors must authenticate their calls with the token they were given in
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN` (Mesos's `--authenticate_http_executors`).
    pub authenticate_http_executors: bool,
}

/// Messages into the agent actor.
pub enum AgentMsg {
    /// From the master.
    Cmd(AgentCmd),
    /// From a task runner.
    Runner {
        /// Owner of the task.
        framework_id: String,
        /// The task.
        task_id: String,
        /// What happened.
        report: Report,
    },
    /// An executor process ended.
    ExecutorExited {
        /// Owner of the executor.
        framework_id: String,
        /// The executor.
        executor_id: String,
        /// Its wait status, if known.
        status: Option<i32>,
    },
    /// An executor's SUBSCRIBE call.
    ExecutorSubscribe {
        /// The call.
        call: Box<exec::Call>,
        /// The bearer token it came with.
        token: Option<String>,
        /// Where to answer with the executor's event stream.
        reply: oneshot::Sender<Result<mpsc::Receiver<exec::Event>, ApiError>>,
    },
    /// Any other executor call.
    ExecutorCall {
        /// The call.
        call: Box<exec::Call>,
        /// The bearer token it came with.
        token: Option<String>,
        /// Where to answer (202 on `Ok`).
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// The executor's subscription stream ended.
    ExecutorDisconnected {
        /// Owner of the executor.
        framework_id: String,
        /// The executor.
        executor_id: String,
    },
}

struct UpdateStream {
    pending: VecDeque<TaskStatus>,
    next_send: Instant,
    backoff: Duration,
    attempts: u32,
}

enum TaskRun {
    /// A command task: its runner listens for kills here.
    Command(mpsc::UnboundedSender<Option<KillPolicy>>),
    /// A task on a custom executor.
    Executor(String),
    /// A simulated task.
    Simulated,
}

struct ExecutorRec {
    info: ExecutorInfo,
    framework: FrameworkInfo,
    conn: Option<mpsc::Sender<exec::Event>>,
    /// Tasks waiting for the executor to subscribe.
    queued: Vec<TaskInfo>,
    /// Task groups waiting for the executor to subscribe.
    queued_groups: Vec<v1::TaskGroupInfo>,
    sandbox: PathBuf,
    kill: Option<oneshot::Sender<()>>,
    registration_deadline: Option<Instant>,
    /// The token its calls must carry (with `authenticate_http_executors`).
    token: Option<String>,
}

/// The agent actor.
pub struct Agent {
    info: AgentInfo,
    settings: AgentSettings,
    /// Address of this agent's executor API.
    endpoint: SocketAddr,
    master: mpsc::UnboundedSender<MasterMsg>,
    self_tx: mpsc::UnboundedSender<AgentMsg>,
    tasks: HashMap<(String, String), TaskRun>,
    /// Framework info per framework with tasks here.
    frameworks: HashMap<String, FrameworkInfo>,
    executors: HashMap<(String, String), ExecutorRec>,
    updates: HashMap<(String, String), UpdateStream>,
    delivery: UpdateDelivery,
    stopped: bool,
    /// While set, the agent is "restarting": down until then.
    recovering_until: Option<Instant>,
}

/// How long executors have to re-subscribe after the agent recovers (Mesos's
/// `--executor_reregistration_timeout` default).
const EXECUTOR_REREGISTRATION_TIMEOUT: Duration = Duration::from_secs(2);

impl Agent {
    /// An agent that reports to `master` and serves its executor API at `endpoint`.
    pub fn new(
        info: AgentInfo,
        settings: AgentSettings,
        endpoint: SocketAddr,
        master: mpsc::UnboundedSender<MasterMsg>,
        self_tx: mpsc::UnboundedSender<AgentMsg>,
    ) -> Self {
        Self {
            info,
            settings,
            endpoint,
            master,
            self_tx,
            tasks: HashMap::new(),
            frameworks: HashMap::new(),
            executors: HashMap::new(),
            updates: HashMap::new(),
            delivery: UpdateDelivery::Normal,
            stopped: false,
            recovering_until: None,
        }
    }

    fn id(&self) -> String {
        self.info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default()
    }

    /// Runs the actor until its channel closes.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<AgentMsg>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                _ = tick.tick() => self.timers(),
            }
        }
    }

    fn handle(&mut self, msg: AgentMsg) {
        match msg {
            AgentMsg::Cmd(cmd) => self.command(cmd),
            AgentMsg::Runner { framework_id, task_id, report } => {
                let status = TaskStatus {
                    task_id: v1::TaskId { value: task_id.clone() },
                    state: report.state as i32,
                    message: report.message,
                    reason: report.reason.map(|r| r as i32),
                    healthy: report.healthy,
                    executor_id: Some(v1::ExecutorId { value: task_id }),
                    source: Some(v1::task_status::Source::Executor as i32),
                    ..Default::default()
                };
                self.enqueue(&framework_id, status);
            }
            AgentMsg::ExecutorExited { framework_id, executor_id, status } => self.executor_exited(&framework_id, &executor_id, status),
            AgentMsg::ExecutorSubscribe { call, token, reply } => {
                let _ = reply.send(self.authenticate(&call, token.as_deref()).and_then(|()| self.executor_subscribe(*call)));
            }
            AgentMsg::ExecutorCall { call, token, reply } => {
                let _ = reply.send(self.authenticate(&call, token.as_deref()).and_then(|()| self.executor_call(*call)));
            }
            AgentMsg::ExecutorDisconnected { framework_id, executor_id } => {
                if let Some(e) = self.executors.get_mut(&(framework_id, executor_id))
                    && e.conn.as_ref().is_some_and(mpsc::Sender::is_closed)
                {
                    e.conn = None;
                }
            }
        }
    }

    fn command(&mut self, cmd: AgentCmd) {
        if self.stopped {
            return;
        }
        match cmd {
            AgentCmd::RunTask { framework, task } => self.run_task(*framework, *task),
            AgentCmd::RunTaskGroup { framework, executor, group } => {
                let fid = framework.id.as_ref().map(|i| i.value.clone()).unwrap_or_default();
                for t in &group.tasks {
                    self.tasks.insert((fid.clone(), t.task_id.value.clone()), TaskRun::Executor(executor.executor_id.value.clone()));
                }
                self.ensure_executor(&framework, &executor);
                let key = (fid, executor.executor_id.value.clone());
                if let Some(e) = self.executors.get_mut(&key) {
                    match &e.conn {
                        Some(conn) => {
                            let _ = conn.try_send(exec::Event {
                                r#type: Some(exev::Type::LaunchGroup as i32),
                                launch_group: Some(exev::LaunchGroup { task_group: *group }),
                                ..Default::default()
                            });
                        }
                        None => e.queued_groups.push(*group),
                    }
                }
            }
            AgentCmd::Restart { down } => {
                tracing::info!(agent = %self.id(), ?down, "agent restarting");
                let until = Instant::now() + down;
                self.recovering_until = Some(until);
                for e in self.executors.values_mut() {
                    // Dropping the sender ends the executor's event stream, as a dying agent would.
                    e.conn = None;
                    e.registration_deadline = Some(until + EXECUTOR_REREGISTRATION_TIMEOUT);
                }
            }
            AgentCmd::KillTask { framework_id, task_id, kill_policy } => self.kill_task(&framework_id, &task_id, kill_policy),
            AgentCmd::Acknowledge { framework_id, task_id, uuid } => self.acknowledge(&framework_id, &task_id, &uuid),
            AgentCmd::ShutdownFramework { framework_id } => {
                let tasks: Vec<String> = self.tasks.keys().filter(|(f, _)| *f == framework_id).map(|(_, t)| t.clone()).collect();
                for t in tasks {
                    self.kill_task(&framework_id, &t, None);
                }
                let execs: Vec<String> = self.executors.keys().filter(|(f, _)| *f == framework_id).map(|(_, e)| e.clone()).collect();
                for e in execs {
                    self.shutdown_executor(&framework_id, &e);
                }
                self.updates.retain(|(f, _), _| *f != framework_id);
            }
            AgentCmd::ShutdownExecutor { framework_id, executor_id } => self.shutdown_executor(&framework_id, &executor_id),
            AgentCmd::FrameworkMessage { framework_id, executor_id, data } => {
                if let Some(conn) = self.executors.get(&(framework_id, executor_id)).and_then(|e| e.conn.as_ref()) {
                    let _ = conn.try_send(exec::Event {
                        r#type: Some(exev::Type::Message as i32),
                        message: Some(exev::Message { data }),
                        ..Default::default()
                    });
                }
            }
            AgentCmd::Stop => {
                let all: Vec<(String, String)> = self.tasks.keys().cloned().collect();
                for (f, t) in all {
                    self.kill_task(&f, &t, Some(KillPolicy { grace_period: Some(v1::DurationInfo { nanoseconds: 0 }) }));
                }
                let execs: Vec<(String, String)> = self.executors.keys().cloned().collect();
                for (f, e) in execs {
                    self.shutdown_executor(&f, &e);
                }
                self.stopped = true;
                self.updates.clear();
            }
            AgentCmd::ResendUpdates => {
                let now = Instant::now();
                for s in self.updates.values_mut() {
                    s.next_send = now;
                    s.backoff = self.settings.update_retry;
                }
                self.timers();
            }
            AgentCmd::SetUpdateDelivery(mode) => {
                self.delivery = mode;
                if mode == UpdateDelivery::Normal {
                    let now = Instant::now();
                    for s in self.updates.values_mut() {
                        s.next_send = now;
                    }
                }
            }
        }
    }

    fn agent_env(&self, fid: &str, executor_id: &str, sandbox: &std::path::Path, checkpoint: bool) -> Vec<(String, String)> {
        let sandbox = sandbox.display().to_string();
        let mut env = vec![
            ("MESOS_FRAMEWORK_ID".to_owned(), fid.to_owned()),
            ("MESOS_EXECUTOR_ID".to_owned(), executor_id.to_owned()),
            ("MESOS_AGENT_ENDPOINT".to_owned(), self.endpoint.to_string()),
            ("MESOS_DIRECTORY".to_owned(), sandbox.clone()),
            ("MESOS_SANDBOX".to_owned(), sandbox),
            ("MESOS_SLAVE_ID".to_owned(), self.id()),
            ("MESOS_SLAVE_PID".to_owned(), format!("slave(1)@{}", self.endpoint)),
            ("MESOS_CHECKPOINT".to_owned(), if checkpoint { "1" } else { "0" }.to_owned()),
            ("MESOS_HTTP_COMMAND_EXECUTOR".to_owned(), "0".to_owned()),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".to_owned(), "5secs".to_owned()),
            ("LIBPROCESS_PORT".to_owned(), "0".to_owned()),
        ];
        if checkpoint {
            env.push(("MESOS_RECOVERY_TIMEOUT".to_owned(), "15mins".to_owned()));
            env.push(("MESOS_SUBSCRIPTION_BACKOFF_MAX".to_owned(), "2secs".to_owned()));
        }
        env
    }

    fn sandbox(&self, fid: &str, executor_id: &str) -> PathBuf {
        self.settings
            .work_dir
            .join("slaves")
            .join(self.id())
            .join("frameworks")
            .join(fid)
            .join("executors")
            .join(executor_id)
            .join("runs")
            .join(uuid::Uuid::new_v4().to_string())
    }

    fn run_task(&mut self, framework: FrameworkInfo, task: TaskInfo) {
        let fid = framework.id.as_ref().map(|i| i.value.clone()).unwrap_or_default();
        let task_id = task.task_id.value.clone();
        self.frameworks.insert(fid.clone(), framework.clone());
        if self.settings.simulated {
            self.tasks.insert((fid.clone(), task_id.clone()), TaskRun::Simulated);
            let report =
                Report { state: TaskState::TaskRunning, reason: None, message: Some("Simulated task is running".into()), healthy: None };
            self.handle(AgentMsg::Runner { framework_id: fid, task_id, report });
            return;
        }
        // As Mesos's Docker containerizer: a task with a DOCKER container and no executor runs
        // under a Docker executor of its own (executor id = task id), which pulls the image,
        // runs the container and reports the task's updates.
        let docker_executor = (task.executor.is_none()
            && task.container.as_ref().is_some_and(|c| c.r#type == v1::container_info::Type::Docker as i32))
        .then(|| self.docker_executor_info(&framework, &task));
        if let Some(executor) = task.executor.clone().or(docker_executor) {
            self.tasks.insert((fid.clone(), task_id), TaskRun::Executor(executor.executor_id.value.clone()));
            self.ensure_executor(&framework, &executor);
            let key = (fid, executor.executor_id.value.clone());
            if let Some(e) = self.executors.get_mut(&key) {
                match &e.conn {
                    Some(conn) => {
                        let _ = conn.try_send(exec::Event {
                            r#type: Some(exev::Type::Launch as i32),
                            launch: Some(exev::Launch { task }),
                            ..Default::default()
                        });
                    }
                    None => e.queued.push(task),
                }
            }
            return;
        }
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        self.tasks.insert((fid.clone(), task_id.clone()), TaskRun::Command(kill_tx));
        let sandbox = self.sandbox(&fid, &task_id);
        let env = self.agent_env(&fid, &task_id, &sandbox, framework.checkpoint.unwrap_or(false));
        let killing_state = framework.capabilities.iter().any(|c| c.r#type() == Capability::TaskKillingState);
        let spec = RunSpec { task, sandbox, env, killing_state };
        let (report_tx, mut report_rx) = mpsc::unbounded_channel();
        tokio::spawn(runner::run(spec, report_tx, kill_rx));
        let agent = self.self_tx.clone();
        tokio::spawn(async move {
            while let Some(report) = report_rx.recv().await {
                let _ = agent.send(AgentMsg::Runner { framework_id: fid.clone(), task_id: task_id.clone(), report });
            }
        });
    }

    /// The executor that runs a Docker task sent without one.
    fn docker_executor_info(&self, framework: &FrameworkInfo, task: &TaskInfo) -> ExecutorInfo {
        let program = self.settings.docker_executor.display().to_string();
        ExecutorInfo {
            r#type: Some(v1::executor_info::Type::Default as i32),
            executor_id: v1::ExecutorId { value: task.task_id.value.clone() },
            framework_id: framework.id.clone(),
            name: Some(format!("Docker Executor (Task: {})", task.task_id.value)),
            source: Some(task.task_id.value.clone()),
            command: Some(v1::CommandInfo {
                shell: Some(false),
                value: Some(program.clone()),
                arguments: vec![program],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ensure_executor(&mut self, framework: &FrameworkInfo, info: &ExecutorInfo) {
        let fid = framework.id.as_ref().map(|i| i.value.clone()).unwrap_or_default();
        let key = (fid.clone(), info.executor_id.value.clone());
        if self.executors.contains_key(&key) {
            return;
        }
        let sandbox = self.sandbox(&fid, &info.executor_id.value);
        let mut env = self.agent_env(&fid, &info.executor_id.value, &sandbox, framework.checkpoint.unwrap_or(false));
        for var in info.command.iter().flat_map(|c| c.environment.iter()).flat_map(|e| &e.variables) {
            env.push((var.name.clone(), var.value.clone().unwrap_or_default()));
        }
        // As Mesos with --authenticate_http_executors: a secret per executor, handed over in its
        // environment and required on each of its calls.
        let token = self
            .settings
            .authenticate_http_executors
            .then(|| format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
        if let Some(t) = &token {
            env.push(("MESOS_EXECUTOR_AUTHENTICATION_TOKEN".to_owned(), t.clone()));
        }
        let (kill_tx, kill_rx) = oneshot::channel();
        let rec = ExecutorRec {
            token,
            info: info.clone(),
            framework: framework.clone(),
            conn: None,
            queued: Vec::new(),
            queued_groups: Vec::new(),
            sandbox: sandbox.clone(),
            kill: Some(kill_tx),
            registration_deadline: Some(Instant::now() + self.settings.executor_registration_timeout),
        };
        self.executors.insert(key.clone(), rec);
        let command = info.command.clone().unwrap_or_default();
        let agent = self.self_tx.clone();
        tokio::spawn(async move {
            let status = run_executor_process(command, sandbox, env, kill_rx).await;
            let _ = agent.send(AgentMsg::ExecutorExited { framework_id: key.0, executor_id: key.1, status });
        });
    }

    fn kill_task(&mut self, fid: &str, task_id: &str, policy: Option<KillPolicy>) {
        let key = (fid.to_owned(), task_id.to_owned());
        match self.tasks.get(&key) {
            Some(TaskRun::Command(kill)) => {
                let _ = kill.send(policy);
            }
            Some(TaskRun::Simulated) => {
                let report =
                    Report { state: TaskState::TaskKilled, reason: None, message: Some("Simulated task killed".into()), healthy: None };
                self.handle(AgentMsg::Runner { framework_id: fid.to_owned(), task_id: task_id.to_owned(), report });
            }
            Some(TaskRun::Executor(eid)) => {
                let Some(e) = self.executors.get_mut(&(fid.to_owned(), eid.clone())) else { return };
                let queued_at = e.queued.iter().position(|t| t.task_id.value == task_id);
                match (&e.conn, queued_at) {
                    (_, Some(i)) => {
                        e.queued.remove(i);
                        let status = self.agent_status(
                            task_id,
                            Some(eid),
                            TaskState::TaskKilled,
                            Reason::TaskKilledDuringLaunch,
                            "Killed before the executor started it",
                        );
                        self.enqueue(fid, status);
                    }
                    (Some(conn), None) => {
                        let _ = conn.try_send(exec::Event {
                            r#type: Some(exev::Type::Kill as i32),
                            kill: Some(exev::Kill { task_id: v1::TaskId { value: task_id.to_owned() }, kill_policy: policy }),
                            ..Default::default()
                        });
                    }
                    (None, None) => {}
                }
            }
            None => {
                // Mesos's agent answers a kill of a task it does not know with TASK_LOST.
                let status = self.agent_status(task_id, None, TaskState::TaskLost, Reason::TaskUnknown, "Cannot find task on the agent");
                self.enqueue(fid, status);
            }
        }
    }

    fn agent_status(&self, task_id: &str, executor_id: Option<&str>, state: TaskState, reason: Reason, message: &str) -> TaskStatus {
        TaskStatus {
            task_id: v1::TaskId { value: task_id.to_owned() },
            state: state as i32,
            message: Some(message.to_owned()),
            reason: Some(reason as i32),
            executor_id: executor_id.map(|e| v1::ExecutorId { value: e.to_owned() }),
            source: Some(v1::task_status::Source::Agent as i32),
            ..Default::default()
        }
    }

    fn shutdown_executor(&mut self, fid: &str, executor_id: &str) {
        let Some(e) = self.executors.get_mut(&(fid.to_owned(), executor_id.to_owned())) else { return };
        if let Some(conn) = &e.conn {
            let _ = conn.try_send(exec::Event { r#type: Some(exev::Type::Shutdown as i32), ..Default::default() });
        }
        if let Some(kill) = e.kill.take() {
            // The process gets its shutdown grace period (`ExecutorInfo.shutdown_grace_period`,
            // else Mesos's 5 s) to exit on its own.
            let grace = e
                .info
                .shutdown_grace_period
                .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
                .unwrap_or(Duration::from_secs(5));
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = kill.send(());
            });
        }
    }

    fn executor_exited(&mut self, fid: &str, executor_id: &str, status: Option<i32>) {
        let Some(_rec) = self.executors.remove(&(fid.to_owned(), executor_id.to_owned())) else { return };
        let orphans: Vec<String> = self
            .tasks
            .iter()
            .filter(|((f, _), run)| f == fid && matches!(run, TaskRun::Executor(e) if e == executor_id))
            .map(|((_, t), _)| t.clone())
            .collect();
        for t in orphans {
            // Tasks whose terminal update is already queued are not failed again.
            let terminal_queued =
                self.updates.get(&(fid.to_owned(), t.clone())).is_some_and(|s| s.pending.iter().any(|u| is_terminal(u.state())));
            if !terminal_queued {
                let msg = format!("Executor terminated{}", status.map(|s| format!(" with status {s}")).unwrap_or_default());
                let st = self.agent_status(&t, Some(executor_id), TaskState::TaskFailed, Reason::ExecutorTerminated, &msg);
                self.enqueue(fid, st);
            }
        }
        if !self.stopped {
            let _ = self.master.send(MasterMsg::FromAgent {
                agent_id: self.id(),
                event: AgentEvent::ExecutorTerminated { framework_id: fid.to_owned(), executor_id: executor_id.to_owned(), status },
            });
        }
    }

    // ---- Executor API -----------------------------------------------------------------------

    fn executor_subscribe(&mut self, call: exec::Call) -> Result<mpsc::Receiver<exec::Event>, ApiError> {
        if self.recovering_until.is_some() {
            return Err(ApiError::unavailable("Agent has not finished recovery"));
        }
        let key = (call.framework_id.value.clone(), call.executor_id.value.clone());
        let agent_info = self.info.clone();
        let Some(e) = self.executors.get_mut(&key) else {
            return Err(ApiError::bad_request(format!("Executor {} of framework {} is not known to this agent", key.1, key.0)));
        };
        let (tx, rx) = mpsc::channel(1024);
        let subscribed = exec::Event {
            r#type: Some(exev::Type::Subscribed as i32),
            subscribed: Some(exev::Subscribed {
                executor_info: e.info.clone(),
                framework_info: e.framework.clone(),
                agent_info,
                container_id: Some(v1::ContainerId {
                    value: e.sandbox.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    parent: None,
                }),
            }),
            ..Default::default()
        };
        let _ = tx.try_send(subscribed);
        for task in e.queued.drain(..) {
            let _ = tx.try_send(exec::Event {
                r#type: Some(exev::Type::Launch as i32),
                launch: Some(exev::Launch { task }),
                ..Default::default()
            });
        }
        for group in e.queued_groups.drain(..) {
            let _ = tx.try_send(exec::Event {
                r#type: Some(exev::Type::LaunchGroup as i32),
                launch_group: Some(exev::LaunchGroup { task_group: group }),
                ..Default::default()
            });
        }
        e.registration_deadline = None;
        e.conn = Some(tx.clone());
        // Updates the executor says it sent but that we have not seen (re-subscription).
        if let Some(sub) = call.subscribe {
            for u in sub.unacknowledged_updates {
                let known = self
                    .updates
                    .get(&(key.0.clone(), u.status.task_id.value.clone()))
                    .is_some_and(|s| s.pending.iter().any(|p| p.uuid == u.status.uuid));
                if !known {
                    self.enqueue(&key.0, u.status);
                }
            }
        }
        let agent = self.self_tx.clone();
        // Watch the connection without keeping it open: it ends when the executor goes away
        // (receiver closed) or when the agent drops its sender (a simulated restart).
        let weak = tx.downgrade();
        drop(tx);
        tokio::spawn(async move {
            loop {
                match weak.upgrade() {
                    Some(tx) if !tx.is_closed() => {}
                    _ => break,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = agent.send(AgentMsg::ExecutorDisconnected { framework_id: key.0, executor_id: key.1 });
        });
        Ok(rx)
    }

    /// With `authenticate_http_executors`, a call must carry its executor's token.
    fn authenticate(&self, call: &exec::Call, token: Option<&str>) -> Result<(), ApiError> {
        if !self.settings.authenticate_http_executors {
            return Ok(());
        }
        let key = (call.framework_id.value.clone(), call.executor_id.value.clone());
        let expected = self.executors.get(&key).and_then(|e| e.token.as_deref());
        match (token, expected) {
            (Some(t), Some(e)) if t == e => Ok(()),
            (None, _) => Err(ApiError::unauthorized("Unauthorized: the call carries no executor authentication token")),
            _ => Err(ApiError::unauthorized("Unauthorized: the token does not belong to this executor")),
        }
    }

    fn executor_call(&mut self, call: exec::Call) -> Result<(), ApiError> {
        if self.recovering_until.is_some() {
            return Err(ApiError::unavailable("Agent has not finished recovery"));
        }
        let key = (call.framework_id.value.clone(), call.executor_id.value.clone());
        if call.r#type() == exec::call::Type::Heartbeat {
            return Ok(());
        }
        let Some(e) = self.executors.get(&key) else {
            return Err(ApiError::bad_request(format!("Executor {} of framework {} is not known to this agent", key.1, key.0)));
        };
        if e.conn.is_none() {
            return Err(ApiError::forbidden("Executor is not subscribed"));
        }
        match call.r#type() {
            exec::call::Type::Update => {
                let update = call.update.ok_or_else(|| ApiError::bad_request("Expecting 'update' to be present"))?;
                let status = update.status;
                if status.uuid.as_deref().is_none_or(|u| uuid::Uuid::from_slice(u).is_err()) {
                    return Err(ApiError::bad_request("'uuid' must be a valid 16-byte UUID"));
                }
                if status.source() != v1::task_status::Source::Executor || status.source.is_none() {
                    return Err(ApiError::bad_request("Received Call from executor with invalid 'source'"));
                }
                if status.state() == TaskState::TaskStaging {
                    return Err(ApiError::bad_request("Received TASK_STAGING from executor"));
                }
                if status.executor_id.as_ref().is_some_and(|id| id.value != key.1) {
                    return Err(ApiError::bad_request("'executor_id' in status does not match the call"));
                }
                self.enqueue(&key.0, status);
                Ok(())
            }
            exec::call::Type::Message => {
                let m = call.message.ok_or_else(|| ApiError::bad_request("Expecting 'message' to be present"))?;
                let _ = self.master.send(MasterMsg::FromAgent {
                    agent_id: self.id(),
                    event: AgentEvent::ExecutorMessage { framework_id: key.0, executor_id: key.1, data: m.data },
                });
                Ok(())
            }
            _ => Err(ApiError::bad_request("Unexpected call type")),
        }
    }

    // ---- Status update manager --------------------------------------------------------------

    /// Stamps an update (uuid, agent, time) and queues it; the front of each task's queue is
    /// sent and re-sent until acknowledged.
    fn enqueue(&mut self, fid: &str, mut status: TaskStatus) {
        if status.uuid.is_none() {
            status.uuid = Some(new_uuid());
        }
        status.agent_id = Some(AgentId { value: self.id() });
        status.timestamp.get_or_insert_with(now_secs);
        let key = (fid.to_owned(), status.task_id.value.clone());
        let retry = self.settings.update_retry;
        let stream = self.updates.entry(key.clone()).or_insert_with(|| UpdateStream {
            pending: VecDeque::new(),
            next_send: Instant::now(),
            backoff: retry,
            attempts: 0,
        });
        stream.pending.push_back(status);
        if stream.pending.len() == 1 {
            stream.next_send = Instant::now();
            stream.backoff = retry;
            stream.attempts = 0;
            self.deliver(&key);
        }
    }

    fn deliver(&mut self, key: &(String, String)) {
        if self.recovering_until.is_some() {
            return;
        }
        let agent_id = self.id();
        let Some(stream) = self.updates.get_mut(key) else { return };
        let Some(front) = stream.pending.front() else { return };
        stream.attempts += 1;
        let now = Instant::now();
        stream.next_send = now + stream.backoff;
        stream.backoff = (stream.backoff * 2).min(Duration::from_secs(600));
        let send = match self.delivery {
            UpdateDelivery::Normal => true,
            UpdateDelivery::Hold => false,
            UpdateDelivery::DropFirst => stream.attempts > 1,
        };
        if send {
            let _ = self.master.send(MasterMsg::FromAgent {
                agent_id,
                event: AgentEvent::StatusUpdate { framework_id: key.0.clone(), status: Box::new(front.clone()) },
            });
        }
    }

    fn acknowledge(&mut self, fid: &str, task_id: &str, uuid: &[u8]) {
        let key = (fid.to_owned(), task_id.to_owned());
        let Some(stream) = self.updates.get_mut(&key) else { return };
        if stream.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid) {
            tracing::debug!(task = task_id, "acknowledgement for an update that is not outstanding; ignored");
            return;
        }
        let Some(acked) = stream.pending.pop_front() else { return };
        let retry = self.settings.update_retry;
        stream.backoff = retry;
        stream.attempts = 0;
        let more = !stream.pending.is_empty();
        if !more {
            self.updates.remove(&key);
        }
        if let Some(TaskRun::Executor(eid)) = self.tasks.get(&key)
            && let Some(conn) = self.executors.get(&(fid.to_owned(), eid.clone())).and_then(|e| e.conn.as_ref())
        {
            let _ = conn.try_send(exec::Event {
                r#type: Some(exev::Type::Acknowledged as i32),
                acknowledged: Some(exev::Acknowledged { task_id: acked.task_id.clone(), uuid: uuid.to_vec() }),
                ..Default::default()
            });
        }
        if is_terminal(acked.state()) {
            self.tasks.remove(&key);
        }
        if more {
            self.deliver(&key);
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.recovering_until.is_some_and(|t| t <= now) {
            tracing::info!(agent = %self.id(), "agent recovered");
            self.recovering_until = None;
            for s in self.updates.values_mut() {
                s.next_send = now;
            }
        }
        let due: Vec<(String, String)> = self.updates.iter().filter(|(_, s)| s.next_send <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            self.deliver(&key);
        }
        let late: Vec<(String, String)> =
            self.executors.iter().filter(|(_, e)| e.registration_deadline.is_some_and(|d| d <= now)).map(|(k, _)| k.clone()).collect();
        for (fid, eid) in late {
            tracing::warn!(executor = %eid, "executor did not subscribe in time; killing it");
            if let Some(e) = self.executors.get_mut(&(fid.clone(), eid.clone())) {
                e.registration_deadline = None;
                let queued: Vec<String> = e.queued.drain(..).map(|t| t.task_id.value).collect();
                if let Some(kill) = e.kill.take() {
                    let _ = kill.send(());
                }
                for t in queued {
                    let st = self.agent_status(
                        &t,
                        Some(&eid),
                        TaskState::TaskFailed,
                        Reason::ExecutorRegistrationTimeout,
                        "Executor did not register within the timeout",
                    );
                    self.enqueue(&fid, st);
                }
            }
        }
    }
}

/// Runs an executor's command in its sandbox until it exits or `kill` fires; returns its wait
/// status.
async fn run_executor_process(
    command: v1::CommandInfo,
    sandbox: PathBuf,
    env: Vec<(String, String)>,
    kill: oneshot::Receiver<()>,
) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    if let Err(e) = tokio::fs::create_dir_all(&sandbox).await {
        tracing::warn!("cannot create executor sandbox {}: {e}", sandbox.display());
        return None;
    }
    let out = std::fs::File::create(sandbox.join("stdout")).ok()?;
    let err = std::fs::File::create(sandbox.join("stderr")).ok()?;
    let value = command.value.clone().unwrap_or_default();
    let mut cmd = runner::build_command(&command);
    cmd.current_dir(&sandbox).envs(env).stdin(std::process::Stdio::null()).stdout(out).stderr(err).process_group(0).kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot start executor '{value}': {e}");
            return None;
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).map(nix::unistd::Pid::from_raw);
    tokio::select! {
        status = child.wait() => status.ok().map(|s| s.into_raw()),
        _ = kill => {
            runner::terminate(&mut child, pid, Duration::from_secs(1)).await;
            child.wait().await.ok().map(|s| s.into_raw())
        }
    }
}
