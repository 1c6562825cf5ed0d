//! The records the scheduler keeps and persists: instances, deployments, task failures, and the
//! read-only snapshot the API serves from.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::AppDefinition;
use crate::deploy::Step;
use crate::ids::{AppId, DeploymentId, InstanceId, TaskId, Timestamp};
use crate::instance::{Condition, Goal};
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
    /// Agent the task was launched on (shared by the instances launched from one offer, as are
    /// the other agent fields: at 200,000 instances every copy counts).
    pub agent_id: Arc<str>,
    /// Agent hostname.
    pub host: Arc<str>,
    /// Host ports in the order of the app's port definitions / mappings.
    pub ports: Vec<u32>,
    /// Marathon condition.
    #[serde(with = "condition_name")]
    pub condition: Condition,
    /// Last Mesos state name (`TASK_RUNNING`...), or `TASK_STAGING` before the first update.
    pub mesos_state: StateName,
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
    pub attributes: Arc<[(String, String)]>,
    /// The agent's fault-domain region.
    #[serde(default)]
    pub region: Option<Arc<str>>,
    /// The agent's fault-domain zone.
    #[serde(default)]
    pub zone: Option<Arc<str>>,
}

/// How running deployments are ordered and found: by version (oldest first), then id.
pub type DeploymentKey = (Timestamp, DeploymentId);

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

/// The launch queue as the actor last published it: the actor's own persistent maps, shared, so
/// that publishing costs O(1) however many apps wait; [`LaunchQueue::entries`] reads it.
#[derive(Debug, Clone, Default)]
pub struct LaunchQueue {
    /// Instances still to launch, per app (only apps with some).
    pub demand: imbl::OrdMap<AppId, u32>,
    /// Since when each app waits.
    pub since: imbl::OrdMap<AppId, Timestamp>,
    /// Launch backoff per app.
    pub backoffs: imbl::OrdMap<AppId, crate::deploy::Backoff>,
    /// Offer statistics per waiting app.
    pub stats: imbl::OrdMap<AppId, OfferStats>,
}

impl LaunchQueue {
    /// The apps waiting for launches at `now`, in id order.
    pub fn entries(&self, apps: &AppMap, now: Timestamp) -> Vec<QueueEntry> {
        self.demand
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(id, n)| {
                Some(QueueEntry {
                    app: apps.get(id)?.clone(),
                    count: *n,
                    since: self.since.get(id).copied().unwrap_or(now),
                    delay_left_ms: self.backoffs.get(id).map(|b| b.time_left_ms(now)).unwrap_or(0),
                    stats: self.stats.get(id).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Instances waiting for launch, over all apps.
    pub fn total(&self) -> u64 {
        self.demand.values().map(|n| u64::from(*n)).sum()
    }
}

/// Apps by id, in a persistent map: a copy shares the tree and costs O(1).
pub type AppMap = imbl::OrdMap<AppId, Arc<AppDefinition>>;

/// Groups by id, in a persistent map (see [`AppMap`]).
pub type GroupMap = imbl::OrdMap<crate::ids::PathId, Arc<crate::tree::GroupNode>>;

/// Instances by id, in a persistent map (see [`AppMap`]).
pub type InstanceMap = imbl::OrdMap<InstanceId, Arc<Instance>>;

/// An app's `tasksStaged`, `tasksRunning`, `tasksHealthy` and `tasksUnhealthy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Active but not yet running.
    pub staged: u32,
    /// Running.
    pub running: u32,
    /// Running and passing their health checks.
    pub healthy: u32,
    /// Failing their health checks.
    pub unhealthy: u32,
}

impl TaskCounts {
    /// What one instance adds to its app's counts.
    pub fn of(i: &Instance) -> Self {
        let running = i.condition == Condition::Running;
        Self {
            staged: u32::from(!running && i.condition.is_active()),
            running: u32::from(running),
            healthy: u32::from(running && i.healthy == Some(true)),
            unhealthy: u32::from(i.healthy == Some(false)),
        }
    }

    fn add(&mut self, o: Self) {
        self.staged += o.staged;
        self.running += o.running;
        self.healthy += o.healthy;
        self.unhealthy += o.unhealthy;
    }

    fn sub(&mut self, o: Self) {
        self.staged = self.staged.saturating_sub(o.staged);
        self.running = self.running.saturating_sub(o.running);
        self.healthy = self.healthy.saturating_sub(o.healthy);
        self.unhealthy = self.unhealthy.saturating_sub(o.unhealthy);
    }
}

/// Instances by id, with each app's [`TaskCounts`] kept in step: `GET /v2/apps` reads an app's
/// counts instead of walking its instances (at 10,000 apps that walk was half the request).
/// Reads go through `Deref` to the map; changes only through [`Instances::insert`] and
/// [`Instances::remove`], so the counts cannot drift from the instances.
#[derive(Debug, Clone, Default)]
pub struct Instances {
    by_id: InstanceMap,
    counts: CountMap,
}

/// Task counts by app.
pub type CountMap = imbl::OrdMap<AppId, TaskCounts>;

impl std::ops::Deref for Instances {
    type Target = InstanceMap;
    fn deref(&self) -> &InstanceMap {
        &self.by_id
    }
}

impl Instances {
    /// Stores `instance` under its id; returns the one it replaces.
    pub fn insert(&mut self, instance: Arc<Instance>) -> Option<Arc<Instance>> {
        let (app, counts) = (instance.app_id.clone(), TaskCounts::of(&instance));
        let old = self.by_id.insert(instance.id.clone(), instance);
        if let Some(o) = old.as_ref().filter(|o| o.app_id != app) {
            self.count(&o.app_id, |c| c.sub(TaskCounts::of(o)));
        }
        // Most updates (STAGING to STARTING, a new address) leave the counts as they were.
        let before = old.as_ref().filter(|o| o.app_id == app).map(|o| TaskCounts::of(o)).unwrap_or_default();
        if before != counts {
            self.count(&app, |c| {
                c.sub(before);
                c.add(counts);
            });
        }
        old
    }

    /// Forgets the instance with this id; returns it.
    pub fn remove(&mut self, id: &InstanceId) -> Option<Arc<Instance>> {
        let old = self.by_id.remove(id)?;
        self.count(&old.app_id, |c| c.sub(TaskCounts::of(&old)));
        Some(old)
    }

    /// The counts of `app`'s instances.
    pub fn counts(&self, app: &AppId) -> TaskCounts {
        self.counts.get(app).copied().unwrap_or_default()
    }

    /// The counts of every app with counts other than zero, in app id order.
    pub fn all_counts(&self) -> &CountMap {
        &self.counts
    }

    /// Changes `app`'s counts; an app whose counts are all zero has no entry.
    fn count(&mut self, app: &AppId, change: impl FnOnce(&mut TaskCounts)) {
        let zero = TaskCounts::default();
        if let Some(c) = self.counts.get_mut(app) {
            change(c);
            if *c == zero {
                self.counts.remove(app);
            }
            return;
        }
        let mut c = zero;
        change(&mut c);
        if c != zero {
            self.counts.insert(app.clone(), c);
        }
    }
}

impl FromIterator<Arc<Instance>> for Instances {
    fn from_iter<I: IntoIterator<Item = Arc<Instance>>>(iter: I) -> Self {
        let mut all = Self::default();
        for i in iter {
            all.insert(i);
        }
        all
    }
}

/// What the API reads: a consistent copy published by the actor after every batch of changes.
/// Publishing shares the actor's maps instead of copying them, so it costs the same at 10 apps
/// and at 20,000.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Apps by id.
    pub apps: AppMap,
    /// Every group (the root included) by id.
    pub groups: GroupMap,
    /// Instances by id, with their apps' counts.
    pub instances: Instances,
    /// Running deployments, oldest first.
    pub deployments: Vec<Arc<Deployment>>,
    /// The deployment each app is part of.
    pub deploying: imbl::OrdMap<AppId, DeploymentKey>,
    /// Launch queue.
    pub queue: LaunchQueue,
    /// Last failure per app.
    pub failures: imbl::OrdMap<AppId, TaskFailure>,
    /// Our framework id, once subscribed.
    pub framework_id: Option<String>,
    /// Whether a Mesos subscription is open.
    pub connected: bool,
    /// The master we are subscribed to.
    pub master: String,
    /// The Mesos role the scheduler launches tasks under (`--mesos-role`): each task's `role`.
    pub role: String,
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
    /// Reconciliation rounds completed (every task answered, then implicit reconciliation).
    pub reconciliation_rounds: u64,
    /// Explicit reconciliation requests sent again for tasks that had not answered.
    pub reconciliation_retries: u64,
    /// Tasks the round under way still waits to hear about (a gauge).
    pub reconciliation_pending: u64,
}

impl Snapshot {
    /// The instances of one app, in id order, in O(log n + the app's instances) (see
    /// [`app_range`]; a scan of every instance made `GET /v2/apps` quadratic).
    pub fn instances_of<'a>(&'a self, app: &'a AppId) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        app_range(&self.instances, app).map(|(_, i)| i).filter(move |i| &i.app_id == app)
    }

    /// The task with this id.
    pub fn task(&self, task: &TaskId) -> Option<&Arc<Instance>> {
        let instance = task.instance_id()?;
        self.instances.get(&instance).filter(|i| &i.task_id == task)
    }
}

/// The entries of an id-ordered map (apps, groups) at `group` or below it: one contiguous range,
/// found in O(log n).
pub fn within<'a, V: Clone>(
    map: &'a imbl::OrdMap<crate::ids::PathId, V>,
    group: &'a crate::ids::PathId,
) -> impl Iterator<Item = (&'a crate::ids::PathId, &'a V)> + 'a {
    map.range(group.clone()..).take_while(move |(id, _)| id.is_within(group))
}

/// The entries of an instance map whose ids start with `app`'s prefix (`<safe name>.instance-`):
/// every instance of `app`, as one contiguous range of the id-ordered map, found in O(log n).
/// The range can also hold instances of apps whose safe name extends this one's (`/a.instance-x`
/// for `/a`), so callers filter on the app id.
pub fn app_range<'a, V: Clone>(
    instances: &'a imbl::OrdMap<InstanceId, V>,
    app: &AppId,
) -> impl Iterator<Item = (&'a InstanceId, &'a V)> + 'a {
    let start = InstanceId::new(app, "");
    instances.range(start.clone()..).take_while(move |(id, _)| id.as_str().starts_with(start.as_str()))
}

/// A Mesos task state's name (`TASK_RUNNING`...), held as the protobuf enum's static name and
/// stored as the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateName(pub &'static str);

impl StateName {
    /// Before the first status update.
    pub const STAGING: Self = Self("TASK_STAGING");
}

impl std::ops::Deref for StateName {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl Serialize for StateName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        mesos_proto::v1::TaskState::from_str_name(&raw)
            .map(|s| Self(s.as_str_name()))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown Mesos task state {raw}")))
    }
}

/// Conditions are stored by their Marathon names.
mod condition_name {
    use crate::instance::Condition;
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
    use crate::instance::Goal;
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

/// A running instance of `app` (a valid app id, else the root) with this uuid and empty agent
/// fields: a fixture for tests here and in the shells.
#[doc(hidden)]
pub fn instance(app: &str, uuid: &str) -> Instance {
    let app_id = AppId::parse(app).unwrap_or_default();
    let id = InstanceId::new(&app_id, uuid);
    Instance {
        task_id: id.task_id(1),
        id,
        app_id,
        version: Timestamp(1),
        config_version: Timestamp(1),
        agent_id: "".into(),
        host: "".into(),
        ports: Vec::new(),
        condition: Condition::Running,
        mesos_state: StateName("TASK_RUNNING"),
        healthy: None,
        goal: Goal::Running,
        staged_at: Timestamp(1),
        started_at: None,
        kill_sent_at: None,
        ip_addresses: Vec::new(),
        unreachable_since: None,
        ready: false,
        attributes: Arc::default(),
        region: None,
        zone: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_records_keep_their_stored_form() {
        let mut i = instance("/web", "u1");
        i.agent_id = "agent-7".into();
        i.host = "host-7".into();
        i.attributes = vec![("rack".to_string(), "r1".to_string())].into();
        i.zone = Some("z1".into());
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["mesosState"], "TASK_RUNNING");
        assert_eq!(json["agentId"], "agent-7");
        assert_eq!(json["attributes"], serde_json::json!([["rack", "r1"]]));
        let back: Instance = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json, "round trip");
        assert_eq!(back.mesos_state, StateName("TASK_RUNNING"));
        let mut bad = json;
        bad["mesosState"] = "TASK_NAPPING".into();
        let e = serde_json::from_value::<Instance>(bad).unwrap_err();
        assert!(e.to_string().contains("unknown Mesos task state TASK_NAPPING"), "{e}");
    }

    #[test]
    fn instances_of_finds_exactly_the_apps_instances() {
        // Apps whose safe names prefix one another (`/a`, `/ab`, `/a.b`, `/a.instance-x`) or
        // sort around them.
        let apps = ["/a", "/a/b", "/a.b", "/ab", "/a.instance-x", "/b", "/a/b/c", "/0"];
        let mut snap = Snapshot::default();
        for (n, app) in apps.iter().enumerate() {
            for k in 0..3 {
                let i = instance(app, &format!("{n}-{k}-uuid"));
                snap.instances.insert(Arc::new(i));
            }
        }
        for app in apps {
            let id = AppId::parse(app).expect("app id");
            let fast: Vec<&InstanceId> = snap.instances_of(&id).map(|i| &i.id).collect();
            let slow: Vec<&InstanceId> = snap.instances.values().filter(|i| i.app_id == id).map(|i| &i.id).collect();
            assert_eq!(fast, slow, "instances of {app}");
            assert_eq!(fast.len(), 3, "instances of {app}");
        }
        assert_eq!(snap.instances_of(&AppId::parse("/none").expect("app id")).count(), 0);
    }

    /// The counts of `app` worked out from its instances, as `GET /v2/apps` did before counts
    /// were kept.
    fn counted(all: &Instances, app: &AppId) -> TaskCounts {
        let mut c = TaskCounts::default();
        for i in all.values().filter(|i| &i.app_id == app) {
            match i.condition {
                Condition::Running => c.running += 1,
                k if k.is_active() => c.staged += 1,
                _ => {}
            }
            match i.healthy {
                Some(true) if i.condition == Condition::Running => c.healthy += 1,
                Some(false) => c.unhealthy += 1,
                _ => {}
            }
        }
        c
    }

    proptest::proptest! {
        /// Whatever sequence of stores and removals, each app's kept counts are what its
        /// instances give, and apps without counts have no entry.
        #[test]
        fn kept_counts_match_the_instances(ops in proptest::collection::vec((0..3usize, 0..6usize, 0..Condition::ALL.len(), 0..3u8, proptest::bool::ANY), 0..80)) {
            let apps = ["/a", "/a/b", "/c"];
            let mut all = Instances::default();
            for (app, n, condition, health, remove) in ops {
                let mut i = instance(apps[app], &format!("{n}"));
                if remove {
                    let _ = all.remove(&i.id);
                    continue;
                }
                i.condition = Condition::ALL[condition];
                i.healthy = [None, Some(true), Some(false)][usize::from(health)];
                all.insert(Arc::new(i));
            }
            for app in apps {
                let id = AppId::parse(app).expect("app id");
                proptest::prop_assert_eq!(all.counts(&id), counted(&all, &id), "counts of {}", app);
            }
            proptest::prop_assert!(all.all_counts().values().all(|c| *c != TaskCounts::default()));
            let rebuilt: Instances = all.values().cloned().collect();
            proptest::prop_assert_eq!(rebuilt.all_counts(), all.all_counts());
        }
    }
}
