//! What the API asks of the scheduler actor ([`Command`]), how it answers, and the handle that
//! sends commands and reads the state the actor publishes.

use std::sync::Arc;

use framework_core::ids::{AppId, DeploymentId, InstanceId, TaskId};
use framework_core::scheduler::step::{Answer, Request};
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::{Change, Deployed, GroupOp};
use crate::error::ApiError;
use crate::state::{Instance, Snapshot};

pub use framework_core::scheduler::step::GroupOutcome;

/// A request to the actor.
#[derive(Debug)]
pub enum Command {
    /// Change apps (create, update, scale, restart, delete).
    Deploy {
        /// The change.
        change: Change,
        /// Cancel conflicting deployments instead of answering 409.
        force: bool,
        /// Answer.
        reply: oneshot::Sender<Result<Deployed, ApiError>>,
    },
    /// Change a group.
    Group {
        /// The change.
        op: GroupOp,
        /// Cancel conflicting deployments instead of answering 409.
        force: bool,
        /// Only plan the change (`dryRun`).
        dry_run: bool,
        /// Answer.
        reply: oneshot::Sender<Result<GroupOutcome, ApiError>>,
    },
    /// Kill tasks without changing apps (they are replaced).
    KillTasks {
        /// The tasks.
        tasks: Vec<TaskId>,
        /// Answer: the killed instances as they were.
        reply: oneshot::Sender<Result<Vec<Arc<Instance>>, ApiError>>,
    },
    /// Cancel a deployment: roll back (`force=false`) or just stop it.
    CancelDeployment {
        /// The deployment.
        id: DeploymentId,
        /// Stop without rollback.
        force: bool,
        /// Answer: the rollback deployment, if one was started.
        reply: oneshot::Sender<Result<Option<Deployed>, ApiError>>,
    },
    /// An instance passed its readiness check (sent by the readiness checker).
    Ready {
        /// The instance.
        instance: InstanceId,
    },
    /// Reset an app's launch backoff.
    ResetDelay {
        /// The app.
        app: AppId,
        /// Answer: whether there was a delay to reset.
        reply: oneshot::Sender<bool>,
    },
}

/// Where a request's answer goes.
#[derive(Debug)]
pub enum ReplyTo {
    /// To [`Command::Deploy`].
    Deployed(oneshot::Sender<Result<Deployed, ApiError>>),
    /// To [`Command::Group`].
    Group(oneshot::Sender<Result<GroupOutcome, ApiError>>),
    /// To [`Command::KillTasks`].
    Killed(oneshot::Sender<Result<Vec<Arc<Instance>>, ApiError>>),
    /// To [`Command::CancelDeployment`].
    Cancelled(oneshot::Sender<Result<Option<Deployed>, ApiError>>),
    /// To [`Command::ResetDelay`].
    DelayReset(oneshot::Sender<bool>),
}

impl ReplyTo {
    /// Sends the answer (a refusal as Marathon's error JSON). An answer of another kind cannot
    /// come from the scheduler; the caller then gets 503, as when no answer comes at all.
    pub fn send(self, answer: Answer) {
        let _ = match (self, answer) {
            (ReplyTo::Deployed(tx), Answer::Deployed(r)) => tx.send(r.map_err(ApiError::from)).is_ok(),
            (ReplyTo::Group(tx), Answer::Group(r)) => tx.send(r.map_err(ApiError::from)).is_ok(),
            (ReplyTo::Killed(tx), Answer::Killed(r)) => tx.send(r.map_err(ApiError::from)).is_ok(),
            (ReplyTo::Cancelled(tx), Answer::Cancelled(r)) => tx.send(r.map_err(ApiError::from)).is_ok(),
            (ReplyTo::DelayReset(tx), Answer::DelayReset(had)) => tx.send(had).is_ok(),
            (to, answer) => {
                tracing::error!(?to, ?answer, "an answer of the wrong kind; the request gets 503");
                false
            }
        };
    }
}

impl Command {
    /// The request for the scheduler and where its answer goes; or, for a readiness report, the
    /// instance.
    pub fn into_request(self) -> Result<(Request, ReplyTo), InstanceId> {
        Ok(match self {
            Command::Deploy { change, force, reply } => (Request::Deploy { change, force }, ReplyTo::Deployed(reply)),
            Command::Group { op, force, dry_run, reply } => (Request::Group { op, force, dry_run }, ReplyTo::Group(reply)),
            Command::KillTasks { tasks, reply } => (Request::KillTasks { tasks }, ReplyTo::Killed(reply)),
            Command::CancelDeployment { id, force, reply } => (Request::CancelDeployment { id, force }, ReplyTo::Cancelled(reply)),
            Command::ResetDelay { app, reply } => (Request::ResetDelay { app }, ReplyTo::DelayReset(reply)),
            Command::Ready { instance } => return Err(instance),
        })
    }
}

/// Handle for sending commands to the actor.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) snapshot: watch::Receiver<Arc<Snapshot>>,
}

impl ActorHandle {
    /// The latest published state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver of every published snapshot.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Sends a command and waits for its answer.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| ApiError::unavailable())?;
        rx.await.map_err(|_| ApiError::unavailable())
    }
}
