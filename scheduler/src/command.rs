//! What the API asks of the scheduler actor ([`Command`]), how it answers, and the handle that
//! sends commands and reads the state the actor publishes.

use std::sync::Arc;

use framework_core::deploy;
use framework_core::ids::{AppId, DeploymentId, InstanceId, TaskId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::{Change, Deployed, GroupOp};
use crate::error::ApiError;
use crate::state::{Instance, Snapshot};

/// What a group command answers.
#[derive(Debug)]
pub enum GroupOutcome {
    /// The change was made and its deployment started.
    Deployed(Deployed),
    /// `dryRun`: the steps the change would take; nothing was changed.
    DryRun(Vec<deploy::Step>),
}

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
