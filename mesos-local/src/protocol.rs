//! Messages between the master actor, the agent actors and the HTTP shells, and small helpers
//! for building Mesos messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use mesos_proto::v1::{
    self, AgentId, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, KillPolicy, TaskGroupInfo, TaskId, TaskInfo, TaskState,
    TaskStatus, scheduler,
};
use tokio::sync::{mpsc, oneshot};

/// An HTTP error answer with Mesos's status code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Status code, as Mesos returns it for this condition.
    pub status: StatusCode,
    /// Plain-text body.
    pub message: String,
}

impl ApiError {
    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
    /// A 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, message: message.into() }
    }
    /// A 401 Unauthorized (an executor call without its authentication token).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, message: message.into() }
    }
    /// A 503 Service Unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into() }
    }
}

/// A successful scheduler SUBSCRIBE: the stream id and the events to send on it.
pub struct Subscription {
    /// The `Mesos-Stream-Id` of this subscription.
    pub stream_id: String,
    /// Events for the framework, in order; closed when the master ends the subscription.
    pub events: mpsc::Receiver<scheduler::Event>,
}

/// What the master actor is asked to do.
pub enum MasterMsg {
    /// A SUBSCRIBE call from the HTTP shell.
    Subscribe {
        /// The decoded call.
        call: Box<scheduler::Call>,
        /// Where to answer.
        reply: oneshot::Sender<Result<Subscription, ApiError>>,
    },
    /// Any other scheduler call.
    Call {
        /// The decoded call.
        call: Box<scheduler::Call>,
        /// The `Mesos-Stream-Id` header, if any.
        stream_id: Option<String>,
        /// Where to answer (202 on `Ok`).
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// The HTTP connection carrying a subscription went away.
    StreamClosed {
        /// Framework of the subscription.
        framework_id: String,
        /// Stream id of the subscription.
        stream_id: String,
    },
    /// Something an agent reports.
    FromAgent {
        /// The reporting agent.
        agent_id: String,
        /// The report.
        event: AgentEvent,
    },
    /// A snapshot of the master's state as `/master/state` JSON.
    State(oneshot::Sender<serde_json::Value>),
    /// A fault to inject (tests and the `mesos-local` binary's control endpoints).
    Fault(Fault, oneshot::Sender<Result<(), String>>),
}

/// What an agent reports to the master.
#[derive(Debug)]
pub enum AgentEvent {
    /// A task status update, with a uuid, to forward to the framework until acknowledged.
    StatusUpdate {
        /// Owner of the task.
        framework_id: String,
        /// The update (boxed: it dwarfs the other messages).
        status: Box<TaskStatus>,
    },
    /// A message from an executor to its framework.
    ExecutorMessage {
        /// Owner of the executor.
        framework_id: String,
        /// Sender.
        executor_id: String,
        /// Payload.
        data: Vec<u8>,
    },
    /// An executor process ended.
    ExecutorTerminated {
        /// Owner of the executor.
        framework_id: String,
        /// The executor.
        executor_id: String,
        /// Its exit status (wait status), if known.
        status: Option<i32>,
    },
}

/// What the master tells an agent.
#[derive(Debug)]
pub enum AgentCmd {
    /// Launch a task (command task, or on a custom executor).
    RunTask {
        /// The framework, with its id set.
        framework: Box<FrameworkInfo>,
        /// The task.
        task: Box<TaskInfo>,
    },
    /// Launch a task group on an executor.
    RunTaskGroup {
        /// The framework, with its id set.
        framework: Box<FrameworkInfo>,
        /// The executor to run the group on.
        executor: Box<ExecutorInfo>,
        /// The tasks.
        group: Box<TaskGroupInfo>,
    },
    /// Simulate a restart of the agent process (see [`Fault::RestartAgent`]).
    Restart {
        /// How long the agent is down.
        down: Duration,
    },
    /// Kill a task.
    KillTask {
        /// Owner.
        framework_id: String,
        /// The task.
        task_id: String,
        /// Overrides the task's kill policy.
        kill_policy: Option<KillPolicy>,
    },
    /// The framework acknowledged a status update.
    Acknowledge {
        /// Owner.
        framework_id: String,
        /// The task.
        task_id: String,
        /// The update's uuid.
        uuid: Vec<u8>,
    },
    /// Kill everything of a framework (teardown, failover timeout).
    ShutdownFramework {
        /// The framework.
        framework_id: String,
    },
    /// Shut an executor down.
    ShutdownExecutor {
        /// Owner.
        framework_id: String,
        /// The executor.
        executor_id: String,
    },
    /// A framework message for an executor.
    FrameworkMessage {
        /// Owner.
        framework_id: String,
        /// Recipient.
        executor_id: String,
        /// Payload.
        data: Vec<u8>,
    },
    /// Kill every task and executor and stop (the agent is removed).
    Stop,
    /// Resend every unacknowledged update now (the agent re-registered).
    ResendUpdates,
    /// Change how the agent delivers status updates (fault injection).
    SetUpdateDelivery(UpdateDelivery),
}

/// How an agent delivers status updates to the master; `Normal` except in fault tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateDelivery {
    /// Send at once, retry until acknowledged.
    #[default]
    Normal,
    /// Hold every update back (they stay queued and are sent when delivery returns to normal).
    Hold,
    /// Drop each first delivery attempt; retries go through.
    DropFirst,
}

/// Faults that tests can inject into the cluster.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The agent disappears for good: its tasks are killed and reported gone or lost.
    RemoveAgent(String),
    /// The agent is cut off: its tasks keep running but are reported unreachable or lost.
    PartitionAgent(String),
    /// A partitioned agent comes back and re-registers with its tasks.
    HealAgent(String),
    /// Close the framework's event stream (as a network failure would).
    CloseStream(String),
    /// Restart the master (a master failover): every subscription ends at once, and for
    /// `down` the scheduler API answers 503 as a master still recovering its registry does.
    /// Then it serves again knowing its agents (from the registry) but none of their tasks:
    /// each agent is *recovered* until it re-registers, `reregister_after` later, with its tasks
    /// and its unacknowledged updates; meanwhile reconciling a task on it gets no answer.
    /// Frameworks re-subscribe with their ids within failover_timeout. The agents in `lost`
    /// never re-register: after the master's `agent_reregister_timeout` they are unreachable
    /// (a FAILURE event), and reconciling their tasks answers TASK_UNREACHABLE.
    RestartMaster {
        /// How long the master is away.
        down: Duration,
        /// How long after the master is back the other agents re-register.
        reregister_after: Duration,
        /// Agents that do not come back (their tasks keep running, cut off).
        lost: Vec<String>,
    },
    /// Close the framework's event stream in the middle of a record (a connection cut
    /// mid-event).
    CutStreamMidEvent(String),
    /// Put one record that does not decode (a well-framed RecordIO record holding broken JSON or
    /// protobuf) into the framework's event stream, as a corrupting proxy or a buggy master would.
    MalformedEvent(String),
    /// Restart an agent process: it is down for the given time (executor connections break,
    /// its executor API answers 503, no updates are sent), then recovers with its tasks (which
    /// keep running, as with checkpointing) and gives executors Mesos's 2 s to re-subscribe.
    RestartAgent(String, Duration),
    /// Carry out the next scheduler call of this type at once but hold its HTTP answer back
    /// for the given time (an overloaded master, a slow network).
    StallAnswer(mesos_proto::v1::scheduler::call::Type, Duration),
    /// Change the status update delivery of an agent.
    UpdateDelivery(String, UpdateDelivery),
}

/// Marks the stand-in event that [`Fault::MalformedEvent`] queues: the HTTP shell writes a
/// broken record in its place. (An ERROR event with this exact message never comes otherwise.)
pub const MALFORMED_EVENT_MARK: &str = "mesos-local: write a malformed record here";

/// Marks the stand-in event that [`Fault::CutStreamMidEvent`] queues: the HTTP shell writes
/// half a record in its place and ends the stream.
pub const CUT_STREAM_MARK: &str = "mesos-local: cut the stream here";

/// Seconds since the epoch, as Mesos timestamps are written.
pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// A fresh random 16-byte UUID.
pub fn new_uuid() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

/// Converts a `DurationInfo` to a `Duration`, treating negatives as zero.
pub fn duration(d: &v1::DurationInfo) -> Duration {
    Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0))
}

/// A status update the master generates itself: no uuid, so frameworks must not acknowledge it.
pub fn master_status(
    task_id: &str,
    agent_id: Option<&str>,
    state: TaskState,
    reason: v1::task_status::Reason,
    message: impl Into<String>,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId { value: task_id.to_owned() },
        state: state as i32,
        agent_id: agent_id.map(|a| AgentId { value: a.to_owned() }),
        source: Some(v1::task_status::Source::Master as i32),
        reason: Some(reason as i32),
        message: Some(message.into()),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}

/// An UPDATE event carrying `status`.
pub fn update_event(status: TaskStatus) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Update as i32),
        update: Some(scheduler::event::Update { status }),
        ..Default::default()
    }
}

/// An ERROR event.
pub fn error_event(message: impl Into<String>) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Error as i32),
        error: Some(scheduler::event::Error { message: message.into() }),
        ..Default::default()
    }
}

/// Whether a task state is terminal (TASK_LOST counts: the task is gone from the agent's view).
pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

/// Checks an id the way Mesos does: non-empty, at most 255 bytes, not `.` or `..`, no control
/// characters, no `/` or `\`.
pub fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{kind} must not be empty"));
    }
    if id.len() > 255 {
        return Err(format!("{kind} is longer than 255 bytes"));
    }
    if id == "." || id == ".." {
        return Err(format!("'{id}' is disallowed as {kind}"));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!("{kind} '{id}' contains invalid characters"));
    }
    Ok(())
}

/// The id of a framework, task or executor as a plain string.
pub trait IdValue {
    /// The `value` field.
    fn id(&self) -> &str;
}

macro_rules! id_value {
    ($($t:ty),*) => {$(impl IdValue for $t { fn id(&self) -> &str { &self.value } })*};
}
id_value!(FrameworkId, TaskId, AgentId, ExecutorId, v1::OfferId);
