//! The records the scheduler keeps and persists: instances, deployments, task failures, and the
//! read-only snapshot the API serves from.

use std::collections::BTreeMap;
use std::sync::Arc;

use framework_core::app::AppDefinition;
use framework_core::deploy::Step;
use framework_core::ids::{AppId, DeploymentId, InstanceId, TaskId, Timestamp};
use framework_core::instance::{Condition, Goal};
use serde::{Deserialize, Serialize};

/// One instance of an app and its current task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Instance id.
    pub id: InstanceId,
    /// The app it belongs to.
    pub app_id: AppId,
    /// App version it was launched with.
    pub version: Timestamp,
    /// The app's last configuration change when it was launched (restarts compare this).
    pub config_version: Timestamp,
    /// Its Mesos task.
    pub task_id: TaskId,
    /// Agent the task was launched on.
    pub agent_id: String,
    /// Agent hostname.
    pub host: String,
    /// Host ports in the order of the app's port definitions / mappings.
    pub ports: Vec<u32>,
    /// Marathon condition.
    #[serde(with = "condition_name")]
    pub condition: Condition,
    /// Last Mesos state name (`TASK_RUNNING`...), or `TASK_STAGING` before the first update.
    pub mesos_state: String,
    /// Health as reported by Mesos health checks; None without checks or before the first result.
    pub healthy: Option<bool>,
    /// What the scheduler wants of it.
    #[serde(with = "goal_name")]
    pub goal: Goal,
    /// When it was launched.
    pub staged_at: Timestamp,
    /// When it first reported TASK_RUNNING.
    pub started_at: Option<Timestamp>,
    /// When the last KILL was sent (kills are retried).
    pub kill_sent_at: Option<Timestamp>,
    /// Addresses reported by Mesos.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// Whether its readiness check passed (always false for apps without one).
    #[serde(default)]
    pub ready: bool,
    /// Since when Mesos reports the task unreachable.
    #[serde(default)]
    pub unreachable_since: Option<Timestamp>,
    /// The agent's attributes as constraints compare them.
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
    /// The agent's fault-domain region.
    #[serde(default)]
    pub region: Option<String>,
    /// The agent's fault-domain zone.
    #[serde(default)]
    pub zone: Option<String>,
}

/// A running deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Plan id.
    pub id: DeploymentId,
    /// Version of the change.
    pub version: Timestamp,
    /// The plan.
    pub steps: Vec<Step>,
    /// Index of the step in progress.
    pub current_step: usize,
    /// The affected apps as they were before (absent: the app did not exist), for rollback.
    pub original: BTreeMap<AppId, Option<AppDefinition>>,
    /// The affected apps as the deployment leaves them (absent: deleted).
    pub target: BTreeMap<AppId, Option<AppDefinition>>,
}

impl Deployment {
    /// The apps this deployment changes.
    pub fn affected(&self) -> impl Iterator<Item = &AppId> {
        self.target.keys()
    }
}

/// The last failed task of an app (`lastTaskFailure`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    /// App id.
    pub app_id: AppId,
    /// Agent hostname.
    pub host: String,
    /// Mesos message.
    pub message: String,
    /// `TASK_FAILED`...
    pub state: String,
    /// Task id.
    pub task_id: TaskId,
    /// When.
    pub timestamp: Timestamp,
    /// App version of the task.
    pub version: Timestamp,
    /// Agent id.
    pub slave_id: String,
}

/// Why offers were not used for an app, counted since it was queued (`/v2/queue`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferStats {
    /// Offers looked at.
    pub processed_offers_count: u64,
    /// Offers not used.
    pub unused_offers_count: u64,
    /// When an offer was last not used.
    pub last_unused_offer_at: Option<Timestamp>,
    /// When an offer was last used.
    pub last_used_offer_at: Option<Timestamp>,
    /// Rejections by reason name.
    pub rejections: BTreeMap<String, u64>,
}

/// An app waiting for launches.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// The app.
    pub app: Arc<AppDefinition>,
    /// Instances still to launch.
    pub count: u32,
    /// Since when it waits.
    pub since: Timestamp,
    /// Backoff delay left, in ms.
    pub delay_left_ms: i64,
    /// Offer statistics.
    pub stats: OfferStats,
}

/// What the API reads: a consistent copy published by the actor after every change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Apps by id.
    pub apps: BTreeMap<AppId, Arc<AppDefinition>>,
    /// Instances by id.
    pub instances: BTreeMap<InstanceId, Arc<Instance>>,
    /// Running deployments.
    pub deployments: Vec<Arc<Deployment>>,
    /// Launch queue.
    pub queue: Vec<QueueEntry>,
    /// Last failure per app.
    pub failures: BTreeMap<AppId, TaskFailure>,
    /// Our framework id, once subscribed.
    pub framework_id: Option<String>,
    /// Whether a Mesos subscription is open.
    pub connected: bool,
    /// The master we are subscribed to.
    pub master: String,
    /// Counters for /metrics.
    pub counters: Counters,
}

/// Monotonic counters exported on /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Offers received.
    pub offers_received: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Tasks launched.
    pub tasks_launched: u64,
    /// Status updates received.
    pub status_updates: u64,
    /// Kill calls sent.
    pub kills_sent: u64,
    /// Deployments finished successfully.
    pub deployments_succeeded: u64,
    /// Deployments cancelled or rolled back.
    pub deployments_cancelled: u64,
    /// Mesos (re)subscriptions.
    pub subscriptions: u64,
}

impl Snapshot {
    /// The instances of one app.
    pub fn instances_of<'a>(&'a self, app: &'a AppId) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        self.instances.values().filter(move |i| &i.app_id == app)
    }

    /// Ids of the deployments that affect `app`.
    pub fn deployments_of(&self, app: &AppId) -> Vec<DeploymentId> {
        self.deployments.iter().filter(|d| d.target.contains_key(app)).map(|d| d.id.clone()).collect()
    }

    /// The task with this id.
    pub fn task(&self, task: &TaskId) -> Option<&Arc<Instance>> {
        let instance = task.instance_id()?;
        self.instances.get(&instance).filter(|i| &i.task_id == task)
    }
}

/// Conditions are stored by their Marathon names.
mod condition_name {
    use framework_core::instance::Condition;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Condition, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Condition, D::Error> {
        let name = String::deserialize(d)?;
        Condition::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown condition '{name}'")))
    }
}

/// Goals are stored by their Marathon names.
mod goal_name {
    use framework_core::instance::Goal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(g: &Goal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(g.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Goal, D::Error> {
        let name = String::deserialize(d)?;
        [Goal::Running, Goal::Stopped, Goal::Decommissioned]
            .into_iter()
            .find(|g| g.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown goal '{name}'")))
    }
}
