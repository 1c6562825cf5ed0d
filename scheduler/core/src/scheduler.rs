//! The scheduler's state and the decisions that need nothing but it: one [`Scheduler`] value
//! (apps, groups, instances, deployments, launch queue, backoffs, offer flow) owned by the actor
//! in the `framework` crate, which carries out what it decides. Mesos calls and log notes a
//! decision makes go to the [`Outbox`], which the actor drains after each input, in order.
//!
//! This is where the actor's decisions move to, one by one (issue: the scheduler as a pure state
//! machine); what still does I/O in between (store writes, the instance writer, readiness
//! checks) stays in the actor for now.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use mesos_proto::v1::scheduler::Call;
use mesos_proto::v1::{self, TaskState, task_status};
use serde_json::{Value, json};

use crate::app::{AppDefinition, GroupDefinition};
use crate::calls::{self, TaskRef};
use crate::deploy::{self, Action, Backoff, Decision, InstanceView};
use crate::ids::{AppId, DeploymentId, InstanceId, PathId, TaskId, Timestamp};
use crate::instance::{Condition, Goal, condition_from_status, next_condition};
use crate::keys;
use crate::matching::offer_flow::{FlowCall, OfferFlow};
use crate::matching::{Placement, PlacementIndex, TaskRequest, match_offer_indexed, placement_of};
use crate::reconcile;
use crate::service_ports;
use crate::spec;
use crate::state::{
    AppMap, Counters, Deployment, DeploymentKey, GroupMap, Instance, InstanceMap, Instances, OfferStats, StateName, TaskFailure,
};
use crate::tree::{self, GroupNode};

pub mod step;

/// A refusal of a change, as the API reports it: an HTTP status and Marathon's error JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// Marathon's error body (`{"message", "details"?}`).
    pub body: Value,
}

impl Rejection {
    /// A refusal with just a message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "message": message.into() }) }
    }

    /// 404 for an unknown app.
    pub fn app_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(404, format!("App '{id}' does not exist"))
    }

    /// 409 when a change touches apps locked by running deployments.
    pub fn locked(deployments: &[DeploymentId]) -> Self {
        let first = deployments.first().map(|d| d.0.as_str()).unwrap_or_default();
        Self {
            status: 409,
            body: json!({
                "message": format!("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{first}'."),
                "deployments": deployments.iter().map(|d| json!({"id": d.0})).collect::<Vec<_>>(),
            }),
        }
    }

    /// 404 for an unknown group.
    pub fn group_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(404, format!("Group '{id}' does not exist"))
    }
}

/// What a deployment-creating command answers.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// Deployment id (also when nothing had to change, as Marathon does).
    pub deployment_id: DeploymentId,
    /// Version of the change.
    pub version: Timestamp,
    /// The apps as stored after the change.
    pub apps: Vec<Arc<AppDefinition>>,
    /// The apps the change created (they did not exist before).
    pub created: Vec<AppId>,
}

/// Marathon's JSON of a deployment plan (`{id, version, steps:[{actions:[{action, app}]}]}`).
pub fn plan_json(dep: &Deployment) -> Value {
    json!({
        "id": dep.id,
        "version": dep.version,
        "steps": (0..dep.steps.len()).map(|i| step_json(dep, i)).collect::<Vec<_>>(),
    })
}

/// Marathon's JSON of one step.
pub fn step_json(dep: &Deployment, index: usize) -> Value {
    let actions = dep.steps.get(index).map(|s| s.actions.iter().map(action_json).collect::<Vec<_>>()).unwrap_or_default();
    json!({ "actions": actions })
}

/// Marathon's JSON of one action.
pub fn action_json(action: &Action) -> Value {
    json!({ "action": action.name(), "app": action.app().to_string() })
}

/// The stored form of a record.
fn stored<T: serde::Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Rejection> {
    serde_json::to_vec(v).map_err(|e| Rejection::new(500, format!("a record could not be serialized: {e}")))
}

/// A change a status update makes besides its instance, applied once the instance is persisted.
#[derive(Debug)]
enum Effect {
    /// An event for `/v2/events` subscribers.
    Event(&'static str, Value),
    /// The app's task failed: its launch backoff grows.
    Backoff(AppId),
    /// The app's last task failure (`lastTaskFailure`).
    Failure(TaskFailure),
}

/// A batch of status updates worked out by [`Scheduler::plan_statuses`].
#[derive(Debug)]
pub struct StatusBatch {
    /// The instances the batch changes as it leaves them (`None`: terminal, to be forgotten).
    staged: BTreeMap<InstanceId, Option<Instance>>,
    effects: Vec<Effect>,
    /// Instance records to remove (of terminal tasks).
    pub deletes: Vec<String>,
    /// Acknowledgements, to post once the records are stored.
    pub acks: Vec<Call>,
}

impl StatusBatch {
    /// The changed instances to store.
    pub fn changed(&self) -> impl Iterator<Item = &Instance> {
        self.staged.values().flatten()
    }
}

/// At most this many launches may await their first status update: more are not started until
/// Mesos reports on earlier ones (Marathon's launch tokens play this part). Launching a whole
/// 100,000-task demand at once at 10,000 agents left tens of thousands unconfirmed for longer
/// than the 15 s after which launches are reconciled as lost, and the reconciliation answers
/// made the backlog worse.
pub const MAX_UNCONFIRMED: usize = 5_000;

/// Offers are matched and launched in chunks of about this many new tasks.
pub const LAUNCH_CHUNK: usize = 512;

/// An offer's agent fields as instances keep them.
struct AgentFields {
    agent_id: Arc<str>,
    host: Arc<str>,
    attributes: Arc<[(String, String)]>,
    region: Option<Arc<str>>,
    zone: Option<Arc<str>>,
}

/// A batch of offers being matched ([`Scheduler::begin_offers`], [`Scheduler::match_offer`],
/// [`Scheduler::end_offers`]); the actor launches what it holds in chunks.
#[derive(Debug)]
pub struct OfferRound {
    now: Timestamp,
    candidates: Vec<(Arc<AppDefinition>, TaskRequest, u32)>,
    placements: BTreeMap<AppId, PlacementIndex>,
    accepted: Vec<(v1::OfferId, Vec<v1::TaskInfo>)>,
    created: Vec<Instance>,
    unused: Vec<v1::OfferId>,
    capped: Vec<v1::OfferId>,
}

impl OfferRound {
    /// New instances not taken yet.
    pub fn pending(&self) -> usize {
        self.created.len()
    }

    /// The ACCEPTs matched so far and their new instances, to launch now.
    pub fn take_launches(&mut self) -> (Vec<(v1::OfferId, Vec<v1::TaskInfo>)>, Vec<Instance>) {
        (std::mem::take(&mut self.accepted), std::mem::take(&mut self.created))
    }
}

/// A drive in progress ([`Scheduler::begin_drive`] to [`Scheduler::finish_drive`]).
#[derive(Debug)]
pub struct Drive {
    full: bool,
    dirty: BTreeSet<AppId>,
    standalone: Vec<AppId>,
    demand: BTreeMap<AppId, u32>,
    kills: Vec<(InstanceId, Goal)>,
    advanced: Vec<DeploymentKey>,
    finished: Vec<DeploymentKey>,
}

impl Drive {
    /// The apps outside deployments to look at ([`Scheduler::drive_standalone`], in chunks).
    pub fn take_standalone(&mut self) -> Vec<AppId> {
        std::mem::take(&mut self.standalone)
    }

    /// The apps that changed since the last drive.
    pub fn dirty(&self) -> impl Iterator<Item = &AppId> {
        self.dirty.iter()
    }
}

/// What a drive leaves the actor to do.
#[derive(Debug)]
pub struct DriveOutcome {
    /// Instances to kill, with the goal each gets.
    pub kills: Vec<(InstanceId, Goal)>,
    /// Deployment records to store (their progress).
    pub progress: Vec<(String, Vec<u8>)>,
    /// Finished deployments, to remove from the store and then finish.
    pub finished: Vec<DeploymentKey>,
    /// Launch demand of the apps looked at (for [`Scheduler::update_demand`]).
    pub demand: BTreeMap<AppId, u32>,
}

/// Instance records to store (relaxed: reconciliation restores what a crash loses), and the
/// Mesos calls that must wait for them.
#[derive(Debug, Default)]
pub struct InstanceWrite {
    /// Records to write.
    pub instances: Vec<Instance>,
    /// Records to delete (keys).
    pub deletes: Vec<String>,
    /// Calls to post once stored (ACCEPTs, KILLs, ACKNOWLEDGEs).
    pub then: Vec<Call>,
    /// Calls to post if storing failed (DECLINEs).
    pub otherwise: Vec<Call>,
}

/// A line for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Worth knowing.
    Info(String),
    /// Something went wrong and was handled.
    Warn(String),
}

/// An event for `/v2/events` subscribers: Marathon's `eventType`, its fields, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    /// Marathon's event type.
    pub event_type: &'static str,
    /// The event's fields (an object).
    pub body: Value,
    /// When it happened.
    pub at: Timestamp,
}

/// What decisions produced for the outside, in the order they were made.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Mesos calls to post.
    pub calls: Vec<Call>,
    /// Events to publish.
    pub events: Vec<BusEvent>,
    /// Log lines.
    pub notes: Vec<Note>,
}

impl Outbox {
    /// Queues an event.
    pub fn event(&mut self, event_type: &'static str, body: Value, at: Timestamp) {
        self.events.push(BusEvent { event_type, body, at });
    }
}

/// A deployment checked and planned ([`Scheduler::plan_start`]), with what must be stored
/// before it starts ([`Scheduler::apply_start`]).
#[derive(Debug)]
pub struct Start {
    deployment: Deployment,
    target: BTreeMap<AppId, Option<AppDefinition>>,
    apps_after: AppMap,
    groups_after: GroupMap,
    conflicts: Vec<DeploymentId>,
    /// Records to write: the deployment, the apps and their versions, the groups and their
    /// versions.
    pub writes: Vec<(String, Vec<u8>)>,
    /// Keys to remove: deleted apps and groups, cancelled deployments.
    pub removals: Vec<String>,
    /// Folders whose every key goes (the versions of deleted apps and groups).
    pub clears: Vec<String>,
    /// Version folders to trim to `--zk-max-versions` counting the key written now.
    pub trims: Vec<(String, String)>,
}

/// Docker parameters allowed unless --docker-parameters-allowed says otherwise: none of them
/// gives a container more access to the host than a parameterless one has.
pub const DEFAULT_DOCKER_PARAMETERS: [&str; 11] = [
    "label",
    "env",
    "log-driver",
    "log-opt",
    "ulimit",
    "memory-swap",
    "memory-reservation",
    "shm-size",
    "hostname",
    "workdir",
    "stop-signal",
];

/// What the server allows of Docker containers, checked on every app a change puts: no
/// privileged container without `--allow-privileged`, no Docker parameter outside
/// `--docker-parameters-allowed`. Refusals are 422 `Object is not valid` naming the app, the
/// offending path and the flag that would allow it.
pub fn container_policy(config: &SchedulerConfig, apps: &[AppDefinition]) -> Result<(), Rejection> {
    let allowed = |key: &str| {
        let key = key.trim_start_matches('-');
        config.docker_parameters_allowed.iter().any(|a| a == "*" || a.trim_start_matches('-').eq_ignore_ascii_case(key))
    };
    let mut details: Vec<serde_json::Value> = Vec::new();
    for app in apps {
        if app.gpus > 0 && !config.gpu_resources {
            // Marathon's message, stray parenthesis included.
            details.push(
                json!({"path": "/", "errors": ["Feature gpu_resources is not enabled. Enable with --enable_features gpu_resources)"]}),
            );
        }
        for (i, v) in app.container.iter().flat_map(|c| c.volumes.iter()).enumerate() {
            if let crate::app::Volume::Host { host_path, mode, .. } = v
                && !config.allow_privileged
                && !(*mode == crate::app::ReadMode::Ro && TIME_FILES.contains(&host_path.trim_end_matches('/')))
                && let Some(why) = sensitive_host_path(host_path)
            {
                details.push(json!({"path": format!("/container/volumes({i})/hostPath"),
                    "errors": [format!("{} mounts {host_path}, which {why}: that is as powerful as a privileged container; mount another directory, or start framework with --allow-privileged", app.id)]}));
            }
        }
        let Some(docker) = app.container.as_ref().and_then(|c| c.docker.as_ref()) else { continue };
        if docker.privileged && !config.allow_privileged {
            details.push(json!({"path": "/container/docker/privileged",
                "errors": [format!("{} asks for a privileged container, which this server does not allow (start framework with --allow-privileged)", app.id)]}));
        }
        for (i, p) in docker.parameters.iter().enumerate().filter(|(_, p)| !allowed(&p.key)) {
            details.push(json!({"path": format!("/container/docker/parameters({i})/key"),
                "errors": [format!("{} asks for the Docker parameter '{}', which this server does not allow (allowed: {}); remove it, or start framework with --docker-parameters-allowed listing it",
                    app.id, p.key, config.docker_parameters_allowed.join(","))]}));
        }
    }
    if details.is_empty() {
        return Ok(());
    }
    Err(Rejection { status: 422, body: json!({"message": "Object is not valid", "details": details}) })
}

/// Host files apps commonly mount read-only to share the agent's time zone; allowed as such.
const TIME_FILES: &[&str] = &["/etc/localtime", "/etc/timezone", "/usr/share/zoneinfo"];

/// Why mounting the agent's `path` into a container would hand it the host, if it would: the
/// root, system directories, or Docker's and containerd's sockets and state. Relative paths stay
/// in the sandbox (validation sees to that).
fn sensitive_host_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Some("climbs with '..'");
    }
    const SYSTEM: &[&str] = &["etc", "proc", "sys", "dev", "boot", "root", "bin", "sbin", "lib", "lib64", "usr"];
    const RUNTIME: &[&[&str]] = &[&["run"], &["var", "run"], &["var", "lib", "docker"], &["var", "lib", "containerd"]];
    match parts.as_slice() {
        [] => Some("is the agent's whole file system"),
        [first, ..] if SYSTEM.contains(first) => Some("is a system directory of the agent"),
        p if RUNTIME.iter().any(|r| p.starts_with(r)) => Some("holds the agent's container runtime (the Docker socket among it)"),
        _ => None,
    }
}

/// The instances of one app as the planner sees them.
pub fn views_of(instances: &InstanceMap, apps: &AppMap, app: &AppId) -> Vec<InstanceView> {
    let target_config = apps.get(app).map(|a| spec::config_version(a));
    let has_checks = apps.get(app).is_some_and(|a| spec::has_health_checks(a));
    crate::state::app_range(instances, app)
        .map(|(_, i)| i)
        .filter(|i| &i.app_id == app)
        .map(|i| InstanceView {
            id: i.id.clone(),
            config_key_current: Some(i.config_version) == target_config,
            condition: i.condition,
            healthy: i.healthy,
            has_health_checks: has_checks,
            ready: i.ready || apps.get(app).is_none_or(|a| a.readiness_checks.is_empty()),
            goal: i.goal,
            staged_at: i.staged_at,
        })
        .collect()
}

/// A change checked and planned by [`Scheduler::prepare`].
pub struct Prepared {
    /// The deployment steps.
    pub steps: Vec<deploy::Step>,
    /// The groups written (`None`: removed).
    pub group_writes: BTreeMap<PathId, Option<GroupNode>>,
    /// The apps as the change leaves them.
    pub apps_after: AppMap,
    /// The groups as the change leaves them.
    pub groups_after: GroupMap,
    /// The affected apps as they were.
    pub original: BTreeMap<AppId, Option<AppDefinition>>,
}

/// The apps an app waits for through the dependencies of its groups: every app within each
/// dependency (an app or a group) of each group the app is in (Marathon's dependency graph).
pub fn group_dependencies(app: &AppId, groups: &GroupMap, apps: &AppMap) -> Vec<AppId> {
    let mut out = Vec::new();
    let mut up = app.parent();
    loop {
        for dep in groups.get(&up).map(|g| g.dependencies.as_slice()).unwrap_or_default() {
            out.extend(crate::state::within(apps, dep).map(|(id, _)| id.clone()).filter(|id| id != app));
        }
        if up.is_root() {
            break;
        }
        up = up.parent();
    }
    out
}

/// Refuses a `scaleBy` that takes any app past [`crate::app::validate::MAX_INSTANCES`],
/// as the validator would refuse such an app body (422 `Object is not valid` at `/scaleBy`).
pub fn scale_within_limit(scaled: &[AppDefinition], factor: f64) -> Result<(), Rejection> {
    let max = crate::app::validate::MAX_INSTANCES;
    let errors: Vec<String> = scaled
        .iter()
        .filter(|a| a.instances > max)
        .map(|a| format!("scaling {} by {factor} gives {} instances, expected {max} or less; use a smaller factor", a.id, a.instances))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(Rejection { status: 422, body: json!({"message": "Object is not valid", "details": [{"path": "/scaleBy", "errors": errors}]}) })
}

/// A change of the desired apps and groups, already validated by the API shell.
#[derive(Debug, Default)]
pub struct Change {
    /// Apps to create or replace (as the client sent them; versions are set here).
    pub put: Vec<AppDefinition>,
    /// Apps to delete.
    pub delete: Vec<AppId>,
    /// Apps to restart (new version, same configuration).
    pub restart: Vec<AppId>,
    /// Instances to kill as part of a scale-down (`scale=true` kills).
    pub to_kill: BTreeMap<AppId, Vec<InstanceId>>,
    /// `POST /v2/apps`: the change is refused (409) if any app of `put` exists. Decided here, by
    /// the state's owner, so that of concurrent creations of one id exactly one succeeds.
    pub create_only: bool,
    /// The apps of `put` are earlier versions being restored (a group rollback): instances of
    /// their configuration count as current.
    pub rollback: bool,
    /// Groups created or changed (their version becomes the change's).
    pub put_groups: Vec<GroupNode>,
    /// Groups removed (the apps within them are in `delete`).
    pub delete_groups: Vec<PathId>,
}

impl Change {
    /// A change that creates or replaces these apps.
    pub fn put(put: Vec<AppDefinition>) -> Self {
        Self { put, ..Self::default() }
    }
}

/// A change of a group (`/v2/groups`), turned into a [`Change`] by the actor against the
/// current tree.
#[derive(Debug)]
pub enum GroupOp {
    /// Create or update a group from a body (absent fields keep what the group has).
    Update {
        /// The body.
        update: GroupDefinition,
        /// `POST`: refused (409) if the group or an app of that id exists.
        create: bool,
        /// The body restores an earlier version (a rollback).
        rollback: bool,
    },
    /// Multiply the instances of every app within the group.
    ScaleBy {
        /// The group.
        group: PathId,
        /// The factor (at least 0).
        factor: f64,
    },
    /// Remove the group with everything within it (the root is emptied).
    Delete {
        /// The group.
        group: PathId,
    },
}

/// Scheduler settings the actor needs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The Mesos role we launch with.
    pub role: String,
    /// A task that is not RUNNING this long after launch is killed (Marathon: 300 s).
    pub task_launch_timeout: Duration,
    /// Unconfirmed kills are re-sent after this long (Marathon: 30 s).
    pub kill_retry: Duration,
    /// How long to refuse offers we have no use for (Marathon: 120 s).
    pub decline_refuse_seconds: f64,
    /// Least time between two REVIVEs while launches keep waiting (Marathon: 5 s).
    pub min_revive_interval: Duration,
    /// At most this many deployments run at once (Marathon: 100).
    pub max_running_deployments: usize,
    /// Stored versions kept per app and per group (Marathon's `--zk_max_versions`: 50).
    pub max_versions: usize,
    /// How Docker tasks are run.
    pub executor: spec::ExecutorSettings,
    /// Whether apps may run privileged Docker containers.
    pub allow_privileged: bool,
    /// The Docker `parameters` keys apps may use (`*`: any); see [`container_policy`].
    pub docker_parameters_allowed: Vec<String>,
    /// At most this many tasks are launched from one offer (Marathon: `--max_instances_per_offer`).
    pub max_instances_per_offer: u32,
    /// When periodic reconciliation rounds run (Marathon's `--reconciliation_initial_delay`
    /// and `--reconciliation_interval`).
    pub reconciliation: reconcile::Schedule,
    /// Whether tasks without GPUs may take offers that hold GPUs (Marathon's
    /// `--gpu_scheduling_behavior`).
    pub gpu_scheduling: GpuScheduling,
    /// Where service ports of 0 are assigned from: `min..max` (Marathon's
    /// `--local_port_min`/`--local_port_max`: 10000, 20000).
    pub service_port_range: (u32, u32),
    /// Apps may ask for GPUs (Marathon's `--enable_features gpu_resources`; the framework then
    /// declares GPU_RESOURCES).
    pub gpu_resources: bool,
}

/// How offers holding GPUs are used (Marathon's `--gpu_scheduling_behavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GpuScheduling {
    /// Any task may run on an agent with GPUs.
    #[default]
    Unrestricted,
    /// Agents with GPUs are kept for tasks that need GPUs.
    Restricted,
}

impl Default for SchedulerConfig {
    /// Marathon's defaults (role `*`, 300 s launch timeout, 30 s kill retry, 120 s refusal, 5 s
    /// between REVIVEs, 100 deployments, 50 versions, 100 tasks per offer), no privileged
    /// containers, the default Docker parameters, and `framework-executor` on the agents' path.
    fn default() -> Self {
        Self {
            role: "*".into(),
            task_launch_timeout: Duration::from_secs(300),
            kill_retry: Duration::from_secs(30),
            decline_refuse_seconds: 120.0,
            min_revive_interval: Duration::from_secs(5),
            max_running_deployments: 100,
            max_versions: 50,
            executor: spec::ExecutorSettings { path: "framework-executor".into(), uri: None, always: false },
            allow_privileged: false,
            docker_parameters_allowed: DEFAULT_DOCKER_PARAMETERS.iter().map(ToString::to_string).collect(),
            max_instances_per_offer: 100,
            reconciliation: reconcile::Schedule::default(),
            gpu_scheduling: GpuScheduling::default(),
            gpu_resources: false,
            service_port_range: (10_000, 20_000),
        }
    }
}

/// The scheduler's state. It changes only through [`Scheduler::step`] (and the methods behind
/// it); the fields are readable for the shell's scheduling of work and for tests.
#[derive(Debug)]
pub struct Scheduler {
    /// Settings.
    pub config: SchedulerConfig,
    /// Apps by id. Persistent maps shared with the published snapshots: a snapshot costs O(1),
    /// and an update copies only the path to the changed entry.
    pub apps: AppMap,
    /// Every group, the root included; each app's group and every ancestor exists.
    pub groups: GroupMap,
    /// Instances, with each app's task counts kept in step.
    pub instances: Instances,
    /// Running deployments, oldest first.
    pub deployments: BTreeMap<DeploymentKey, Arc<Deployment>>,
    /// The deployment each app is part of (one at most: conflicting ones are refused or cancelled).
    pub deploying: imbl::OrdMap<AppId, DeploymentKey>,
    /// Apps whose definition, instances or deployment changed since the last drive: only these
    /// are looked at again, except in a full pass.
    pub dirty: BTreeSet<AppId>,
    /// Launch backoff per app.
    pub backoffs: imbl::OrdMap<AppId, Backoff>,
    /// Launches still wanted, per app (only apps that want some).
    pub demand: imbl::OrdMap<AppId, u32>,
    /// Instances launched that Mesos has not reported on yet (condition Provisioned).
    pub unconfirmed: usize,
    /// Since when each waiting app waits.
    pub queued_since: imbl::OrdMap<AppId, Timestamp>,
    /// What offers were seen and declined for, per waiting app.
    pub offer_stats: imbl::OrdMap<AppId, OfferStats>,
    /// The last task failure per app.
    pub failures: imbl::OrdMap<AppId, TaskFailure>,
    /// Our framework id, once Mesos assigned one.
    pub framework_id: Option<String>,
    /// Whether a Mesos subscription is open.
    pub connected: bool,
    /// The master we are subscribed to.
    pub master: String,
    /// The master's fault-domain region: tasks go to agents elsewhere only when a constraint
    /// names `@region`.
    pub home_region: Option<String>,
    /// REVIVE and SUPPRESS bookkeeping.
    pub offer_flow: OfferFlow,
    /// When unconfirmed launches were last reconciled.
    pub last_stale_reconcile: Timestamp,
    /// Reconciliation rounds (see [`reconcile`]).
    pub reconciliation: reconcile::Reconciliation,
    /// The last version handed out.
    pub last_version: Timestamp,
    /// Counters for /metrics.
    pub counters: Counters,
    /// What decisions produced, for the actor to carry out.
    pub outbox: Outbox,
    /// The drive under way across steps (see [`step`]).
    pending_drive: Option<step::PendingDrive>,
    /// Instances whose readiness check the shell runs.
    checking: BTreeSet<InstanceId>,
    /// Which app holds each service port, in step with `apps`.
    service_ports: service_ports::Holders,
}

impl Scheduler {
    /// The scheduler over stored state: apps, groups (earlier stores have none: an app's
    /// ancestors are its groups), instances, running deployments and the framework id.
    pub fn new(
        config: SchedulerConfig,
        apps: Vec<AppDefinition>,
        groups: Vec<GroupNode>,
        instances: Vec<Instance>,
        deployments: Vec<Deployment>,
        framework_id: Option<String>,
    ) -> Self {
        let apps: AppMap = apps.into_iter().map(|a| (a.id.clone(), Arc::new(a))).collect();
        let backoffs = apps.iter().map(|(id, a)| (id.clone(), Backoff::new(spec::backoff_policy(a)))).collect();
        let mut groups: GroupMap = groups.into_iter().map(|g| (g.id.clone(), Arc::new(g))).collect();
        for (id, app) in &apps {
            let mut up = id.parent();
            loop {
                if !groups.contains_key(&up) {
                    groups.insert(up.clone(), Arc::new(GroupNode::new(up.clone(), app.version.unwrap_or_default())));
                }
                if up.is_root() {
                    break;
                }
                up = up.parent();
            }
        }
        if !groups.contains_key(&PathId::root()) {
            groups.insert(PathId::root(), Arc::new(GroupNode::new(PathId::root(), Timestamp(0))));
        }
        let instances: Instances = instances.into_iter().map(Arc::new).collect();
        let unconfirmed = instances.values().filter(|i| i.condition == Condition::Provisioned).count();
        let schedule = config.reconciliation;
        let held_ports = service_ports::holders(apps.values().map(|a| a.as_ref()));
        let mut s = Self {
            config,
            apps,
            groups,
            instances,
            deployments: BTreeMap::new(),
            deploying: imbl::OrdMap::new(),
            dirty: BTreeSet::new(),
            backoffs,
            demand: imbl::OrdMap::new(),
            unconfirmed,
            queued_since: imbl::OrdMap::new(),
            offer_stats: imbl::OrdMap::new(),
            failures: imbl::OrdMap::new(),
            framework_id,
            connected: false,
            master: String::new(),
            home_region: None,
            offer_flow: OfferFlow::default(),
            last_stale_reconcile: Timestamp(0),
            reconciliation: reconcile::Reconciliation::new(schedule),
            last_version: Timestamp(0),
            counters: Counters::default(),
            outbox: Outbox::default(),
            pending_drive: None,
            checking: BTreeSet::new(),
            service_ports: held_ports,
        };
        for d in deployments {
            s.add_deployment(d);
        }
        s
    }

    /// Takes what decisions produced so far.
    pub fn take_outbox(&mut self) -> Outbox {
        std::mem::take(&mut self.outbox)
    }
    /// Records a new running deployment.
    pub fn add_deployment(&mut self, deployment: Deployment) {
        let key = (deployment.version, deployment.id.clone());
        for app in deployment.affected() {
            self.deploying.insert(app.clone(), key.clone());
            self.dirty.insert(app.clone());
        }
        self.deployments.insert(key, Arc::new(deployment));
    }

    /// Forgets a running deployment (finished or cancelled); its apps are looked at again.
    pub fn remove_deployment(&mut self, key: &DeploymentKey) -> Option<Arc<Deployment>> {
        let deployment = self.deployments.remove(key)?;
        for app in deployment.affected() {
            if self.deploying.get(app) == Some(key) {
                self.deploying.remove(app);
            }
            self.dirty.insert(app.clone());
        }
        Some(deployment)
    }

    /// The key of the running deployment with this id.
    pub fn deployment_key(&self, id: &DeploymentId) -> Option<DeploymentKey> {
        self.deployments.keys().find(|(_, d)| d == id).cloned()
    }

    /// Stores a changed instance; its app is looked at again by the next drive.
    pub fn put_instance(&mut self, instance: Instance) {
        self.dirty.insert(instance.app_id.clone());
        let launching = instance.condition == Condition::Provisioned;
        let old = self.instances.insert(Arc::new(instance));
        self.unconfirmed =
            self.unconfirmed + usize::from(launching) - usize::from(old.is_some_and(|o| o.condition == Condition::Provisioned));
    }

    /// Forgets an instance; its app is looked at again by the next drive.
    pub fn remove_instance(&mut self, id: &InstanceId) -> Option<Arc<Instance>> {
        let removed = self.instances.remove(id)?;
        self.dirty.insert(removed.app_id.clone());
        self.unconfirmed -= usize::from(removed.condition == Condition::Provisioned);
        Some(removed)
    }

    /// A version timestamp strictly after every earlier one.
    pub fn next_version(&mut self, now: Timestamp) -> Timestamp {
        let v = Timestamp(now.0.max(self.last_version.0 + 1));
        self.last_version = v;
        v
    }

    /// The apps and groups within `gid`, for the pure tree functions.
    pub fn tree_view(&self, gid: &PathId) -> tree::TreeView {
        tree::TreeView {
            apps: crate::state::within(&self.apps, gid).map(|(id, _)| id.clone()).collect(),
            groups: crate::state::within(&self.groups, gid).map(|(id, g)| (id.clone(), (**g).clone())).collect(),
        }
    }

    /// The apps a change leaves (absent: deleted), the instances it kills, the groups it puts
    /// and deletes, and its version (a new one).
    #[allow(clippy::type_complexity)]
    pub fn target_of(
        &mut self,
        change: Change,
        now: Timestamp,
    ) -> Result<
        (BTreeMap<AppId, Option<AppDefinition>>, BTreeMap<AppId, Vec<InstanceId>>, (Vec<GroupNode>, Vec<PathId>), Timestamp),
        Rejection,
    > {
        if change.create_only
            && let Some(app) = change.put.iter().find(|a| self.apps.contains_key(&a.id))
        {
            return Err(Rejection::new(409, format!("An app with id [{}] already exists.", app.id)));
        }
        let version = self.next_version(now);
        let mut target: BTreeMap<AppId, Option<AppDefinition>> = BTreeMap::new();
        container_policy(&self.config, &change.put)?;
        let mut put = change.put;
        let removed: BTreeSet<AppId> = change.delete.iter().cloned().collect();
        let apps = &self.apps;
        let previous = |id: &AppId| apps.get(id).map(|a| service_ports::of(a)).unwrap_or_default();
        service_ports::assign(self.config.service_port_range, &self.service_ports, &previous, &mut put, &removed)?;
        for mut app in put {
            let old = self.apps.get(&app.id);
            if change.rollback && app.version_info.is_some() {
                spec::stamp_rollback(&mut app, version);
            } else {
                spec::stamp_version(&mut app, old.map(|a| a.as_ref()), version);
            }
            target.insert(app.id.clone(), Some(app));
        }
        for id in change.restart {
            let old = self.apps.get(&id).ok_or_else(|| Rejection::app_not_found(&id))?;
            let mut app = (**old).clone();
            spec::stamp_restart(&mut app, version);
            target.insert(id, Some(app));
        }
        for id in change.delete {
            if !self.apps.contains_key(&id) {
                return Err(Rejection::app_not_found(&id));
            }
            target.insert(id, None);
        }
        for id in change.to_kill.keys() {
            if !target.contains_key(id) {
                let old = self.apps.get(id).ok_or_else(|| Rejection::app_not_found(id))?;
                target.insert(id.clone(), Some((**old).clone()));
            }
        }
        Ok((target, change.to_kill, (change.put_groups, change.delete_groups), version))
    }

    /// The groups a change writes (`None`: removed): the groups it puts, the missing ancestors
    /// of every app and group it puts, and every group holding something it changes (their
    /// version becomes the change's, as Marathon's does).
    pub fn group_writes(
        &self,
        target: &BTreeMap<AppId, Option<AppDefinition>>,
        (put, delete): (Vec<GroupNode>, Vec<PathId>),
        version: Timestamp,
    ) -> BTreeMap<PathId, Option<GroupNode>> {
        let mut out: BTreeMap<PathId, Option<GroupNode>> = delete.into_iter().map(|g| (g, None)).collect();
        for mut g in put {
            g.version = version;
            out.insert(g.id.clone(), Some(g));
        }
        let starts: BTreeSet<PathId> =
            target.keys().map(PathId::parent).chain(out.keys().filter(|g| !g.is_root()).map(PathId::parent)).collect();
        for mut g in starts {
            loop {
                if !out.contains_key(&g) {
                    let node = match self.groups.get(&g) {
                        Some(n) => GroupNode { version, ..GroupNode::clone(n) },
                        None => GroupNode::new(g.clone(), version),
                    };
                    out.insert(g.clone(), Some(node));
                }
                if g.is_root() {
                    break;
                }
                g = g.parent();
            }
        }
        out
    }

    /// Checks and plans a change without making it: the groups it writes (ids that would clash
    /// are refused), the tree it leaves, and the deployment steps (group dependencies
    /// included).
    pub fn prepare(
        &self,
        target: &BTreeMap<AppId, Option<AppDefinition>>,
        to_kill: &BTreeMap<AppId, Vec<InstanceId>>,
        groups: (Vec<GroupNode>, Vec<PathId>),
        version: Timestamp,
    ) -> Result<Prepared, Rejection> {
        let group_writes = self.group_writes(target, groups, version);
        let clashes = tree::clashes(
            target.iter().filter(|(_, a)| a.is_some()).map(|(id, _)| id),
            group_writes.iter().filter(|(_, g)| g.is_some()).map(|(id, _)| id),
            |p| target.get(p).map_or_else(|| self.apps.contains_key(p), Option::is_some),
            |p| group_writes.get(p).map_or_else(|| self.groups.contains_key(p), Option::is_some),
        );
        if !clashes.is_empty() {
            let violation = tree::clash_violation(&clashes);
            return Err(Rejection { status: 422, body: json!({"message": "Object is not valid", "details": [violation]}) });
        }
        // The tree as the change leaves it (persistent maps: the copies share all but the
        // changed paths), for group dependencies and the stored group versions.
        let mut apps_after = self.apps.clone();
        for (id, app) in target {
            match app {
                Some(a) => apps_after.insert(id.clone(), Arc::new(a.clone())),
                None => apps_after.remove(id),
            };
        }
        let mut groups_after = self.groups.clone();
        for (id, g) in &group_writes {
            match g {
                Some(g) => groups_after.insert(id.clone(), Arc::new(g.clone())),
                None => groups_after.remove(id),
            };
        }
        let original: BTreeMap<AppId, Option<AppDefinition>> =
            target.keys().map(|id| (id.clone(), self.apps.get(id).map(|a| (**a).clone()))).collect();
        let before: Vec<_> = original.values().flatten().map(spec::planned).collect();
        let after: Vec<_> = target
            .values()
            .flatten()
            .map(|a| {
                let mut p = spec::planned(a);
                p.dependencies.extend(group_dependencies(&a.id, &groups_after, &apps_after));
                p
            })
            .collect();
        let steps = deploy::plan(&before, &after, to_kill).map_err(|e| Rejection::new(422, e.to_string()))?;
        Ok(Prepared { steps, group_writes, apps_after, groups_after, original })
    }

    /// Where an instance runs, as constraints see it.
    pub fn placement_of_instance(&self, instance: &Instance) -> Option<Placement> {
        Some(Placement {
            hostname: instance.host.to_string(),
            attributes: instance.attributes.to_vec(),
            region: instance.region.as_deref().map(str::to_owned),
            zone: instance.zone.as_deref().map(str::to_owned),
        })
    }

    /// Declines offers in one call, refusing them for `refuse` seconds.
    pub fn decline(&mut self, offers: Vec<v1::OfferId>, refuse: f64) {
        if offers.is_empty() {
            return;
        }
        self.counters.offers_declined += offers.len() as u64;
        self.outbox.calls.push(calls::decline(offers, refuse));
    }

    /// What one step action of a deployment wants now, from the app's instances.
    pub fn decide(&self, action: &Action) -> (AppId, Decision, Goal) {
        let views = |app| views_of(&self.instances, &self.apps, app);
        match action {
            Action::StartApplication { app } => (app.clone(), Decision { kill: vec![], launch: 0, done: true }, Goal::Stopped),
            Action::StopApplication { app } => (app.clone(), deploy::stop_decision(&views(app)), Goal::Decommissioned),
            Action::ScaleApplication { app, instances, to_kill } => {
                let ks = self.apps.get(app).map(|a| spec::kill_selection(a)).unwrap_or(deploy::KillSelection::YoungestFirst);
                (app.clone(), deploy::scale_decision(*instances, &views(app), to_kill, ks), Goal::Decommissioned)
            }
            Action::RestartApplication { app } => {
                let d = match self.apps.get(app) {
                    Some(a) => {
                        let (min, over) = spec::upgrade_strategy(a);
                        deploy::restart_decision(spec::instances(a), min, over, &views(app))
                    }
                    None => Decision { kill: vec![], launch: 0, done: true },
                };
                (app.clone(), d, Goal::Decommissioned)
            }
        }
    }

    /// What a task of `app` needs from an offer, under the GPU scheduling policy.
    fn task_request(&self, app: &AppDefinition) -> crate::matching::TaskRequest {
        let mut req = spec::task_request(app);
        req.keep_off_gpu_agents = self.config.gpu_scheduling == GpuScheduling::Restricted && req.gpus == 0;
        req.home_region = self.home_region.clone();
        req
    }

    /// Starts a reconciliation round (see [`reconcile`]): explicit reconciliation of every task
    /// we believe alive, asked again until each has answered, then implicit (Mesos tells us
    /// about tasks we forgot; those are killed when their updates arrive).
    pub fn reconcile(&mut self, now: Timestamp) {
        let tasks = alive_tasks(&self.instances);
        let calls = self.reconciliation.start(tasks, now);
        self.outbox.calls.extend(calls);
    }

    /// Status updates arrived: the tasks they name have answered reconciliation.
    pub fn reconciliation_answers(&mut self, statuses: &[v1::TaskStatus]) {
        for s in statuses {
            if let Some(implicit) = self.reconciliation.answered(&s.task_id.value) {
                self.outbox.notes.push(Note::Info("every task answered reconciliation; reconciling implicitly".to_owned()));
                self.outbox.calls.push(implicit);
            }
        }
    }

    /// Kills decided earlier may have been lost with the previous connection (or with a previous
    /// leader that died right after deciding them): after every subscription they are sent again
    /// at once instead of waiting for the kill retry.
    pub fn resend_kills(&mut self) {
        let doomed: Vec<(TaskId, String)> = self
            .instances
            .values()
            .filter(|i| i.goal != Goal::Running && !i.condition.is_terminal())
            .map(|i| (i.task_id.clone(), i.agent_id.to_string()))
            .collect();
        for (task, agent) in doomed {
            self.outbox.calls.push(calls::kill(task.as_str(), &agent, None));
        }
    }

    /// The clocks, looked at in full drives: launches Mesos never confirmed are reconciled, and
    /// tasks that did not start within the launch timeout or whose kill went unconfirmed are
    /// (again) killed.
    pub fn clocks(&mut self, now: Timestamp, kills: &mut Vec<(InstanceId, Goal)>) {
        // A lost ACCEPT: ask about the launches, so that unknown ones come back as TASK_LOST and
        // are replaced long before the launch timeout.
        if self.connected {
            let instances = &self.instances;
            let (calls, again) = self.reconciliation.tick(now, |t| is_alive_task(instances, t), || alive_tasks(instances));
            if again > 0 {
                self.outbox.notes.push(Note::Warn(format!(
                    "{again} tasks have not answered reconciliation (a master that failed over answers for an agent's tasks only once it re-registers); asking again"
                )));
            }
            self.outbox.calls.extend(calls);
        }
        if self.connected && now.0 - self.last_stale_reconcile.0 > 15_000 {
            let stale: Vec<TaskRef> = self
                .instances
                .values()
                .filter(|i| i.condition == Condition::Provisioned && now.0 - i.staged_at.0 > 15_000)
                .map(|i| TaskRef { task: i.task_id.to_string(), agent: i.agent_id.to_string() })
                .collect();
            if !stale.is_empty() {
                self.outbox.notes.push(Note::Info(format!("reconciling {} launches Mesos has not confirmed", stale.len())));
                self.outbox.calls.push(calls::reconcile(stale));
            }
            self.last_stale_reconcile = now;
        }
        let launch_timeout = self.config.task_launch_timeout.as_millis() as i64;
        let kill_retry = self.config.kill_retry.as_millis() as i64;
        for i in self.instances.values() {
            let launching = matches!(i.condition, Condition::Provisioned | Condition::Staging | Condition::Starting);
            if launching && i.kill_sent_at.is_none() && now.0 - i.staged_at.0 > launch_timeout {
                self.outbox.notes.push(Note::Warn(format!("task of {} did not start within the launch timeout; killing it", i.id)));
                kills.push((i.id.clone(), i.goal));
            } else if let Some(sent) = i.kill_sent_at
                && now.0 - sent.0 > kill_retry
            {
                kills.push((i.id.clone(), i.goal));
            }
        }
    }

    /// Checks a deployment against the running ones (409 when it conflicts and is not forced,
    /// 403 past `--max-running-deployments`), plans it, and lists what must be stored first.
    /// Nothing changes until [`Scheduler::apply_start`].
    pub fn plan_start(
        &self,
        target: BTreeMap<AppId, Option<AppDefinition>>,
        to_kill: BTreeMap<AppId, Vec<InstanceId>>,
        groups: (Vec<GroupNode>, Vec<PathId>),
        version: Timestamp,
        force: bool,
        id: DeploymentId,
    ) -> Result<Start, Rejection> {
        let Prepared { steps, group_writes, apps_after, groups_after, original } = self.prepare(&target, &to_kill, groups, version)?;
        let affected: BTreeSet<AppId> = target.keys().cloned().collect();
        // Only deployments that touch an affected app can conflict.
        let touching: BTreeSet<&DeploymentKey> = affected.iter().filter_map(|a| self.deploying.get(a)).collect();
        let running: Vec<(DeploymentId, BTreeSet<AppId>)> =
            touching.into_iter().filter_map(|k| self.deployments.get(k)).map(|d| (d.id.clone(), d.affected().cloned().collect())).collect();
        let conflicts = deploy::conflicts(&affected, &running);
        if !conflicts.is_empty() && !force {
            return Err(Rejection::locked(&conflicts));
        }
        if conflicts.is_empty() && self.deployments.len() >= self.config.max_running_deployments {
            return Err(Rejection::new(
                403,
                format!(
                    "Max number of running deployments is reached: {}. Wait for one to finish or cancel one.",
                    self.config.max_running_deployments
                ),
            ));
        }
        let deployment = Deployment { id, version, steps, current_step: 0, original, target: target.clone() };
        let mut writes = vec![(keys::deployment(&deployment.id), stored(&deployment)?)];
        let mut removals = Vec::new();
        let mut clears = Vec::new();
        let mut trims = Vec::new();
        for (id, app) in &target {
            match app {
                Some(app) => {
                    let bytes = stored(app)?;
                    let version_key = keys::app_version(id, app.version.unwrap_or(version));
                    if self.apps.contains_key(id) {
                        trims.push((keys::app_versions(id), version_key.clone()));
                    }
                    writes.push((version_key, bytes.clone()));
                    writes.push((keys::app(id), bytes));
                }
                None => {
                    removals.push(keys::app(id));
                    clears.push(keys::app_versions(id));
                }
            }
        }
        // Groups: each one changed, and the version of each (but the root, whose copy would be
        // the whole tree at every change: Marathon's cost at 10,000s of apps) as it now is.
        for (id, g) in &group_writes {
            let Some(g) = g else {
                removals.push(keys::group(id));
                clears.push(keys::group_versions(id));
                continue;
            };
            writes.push((keys::group(id), stored(g)?));
            if id.is_root() {
                continue;
            }
            let within = groups_after.range(id.clone()..).take_while(|(k, _)| k.is_within(id)).map(|(_, n)| n.as_ref());
            let apps = apps_after.range(id.clone()..).take_while(|(k, _)| k.is_within(id)).map(|(_, a)| a.as_ref());
            if let Some(record) = tree::GroupVersion::capture(id, within, apps) {
                writes.push((keys::group_version(id, version), stored(&record)?));
                trims.push((keys::group_versions(id), keys::group_version(id, version)));
            }
        }
        removals.extend(conflicts.iter().map(keys::deployment));
        Ok(Start { deployment, target, apps_after, groups_after, conflicts, writes, removals, clears, trims })
    }

    /// Starts a deployment whose records were stored: cancels the deployments it overrides,
    /// takes the new apps and groups, and announces it.
    pub fn apply_start(&mut self, start: Start, now: Timestamp) -> Deployed {
        let Start { deployment, target, apps_after, groups_after, conflicts, .. } = start;
        for id in &conflicts {
            if let Some(old) = self.deployment_key(id).and_then(|k| self.remove_deployment(&k)) {
                self.counters.deployments_cancelled += 1;
                self.outbox.event(
                    "deployment_step_failure",
                    json!({"plan": plan_json(&old), "currentStep": step_json(&old, old.current_step.min(old.steps.len().saturating_sub(1)))}),
                    now,
                );
                self.outbox.event(
                    "deployment_failed",
                    json!({"id": old.id, "plan": plan_json(&old), "reason": "cancelled by a forced deployment"}),
                    now,
                );
            }
        }
        let mut apps = Vec::new();
        let mut created = Vec::new();
        for (id, app) in &target {
            // Health checks added and removed, as Marathon's health check manager announces them.
            let before = self.apps.get(id).map(|a| a.health_checks.clone()).unwrap_or_default();
            let after = app.as_ref().map(|a| a.health_checks.clone()).unwrap_or_default();
            if before != after {
                if !before.is_empty() {
                    self.outbox.event("remove_health_check_event", json!({"appId": id}), now);
                }
                let version = app.as_ref().and_then(|a| a.version);
                for check in &after {
                    self.outbox.event("add_health_check_event", json!({"appId": id, "version": version, "healthCheck": check}), now);
                }
            }
        }
        for (id, app) in target {
            // The service port index follows the apps.
            if let Some(old) = self.apps.get(&id) {
                for p in service_ports::of(old) {
                    if self.service_ports.get(&p) == Some(&id) {
                        self.service_ports.remove(&p);
                    }
                }
            }
            if let Some(new) = apps_after.get(&id) {
                for p in service_ports::of(new).into_iter().filter(|p| *p != 0) {
                    self.service_ports.insert(p, id.clone());
                }
            }
            match app {
                Some(app) => {
                    if !self.apps.contains_key(&id) {
                        created.push(id.clone());
                    }
                    let changed_config = self.apps.get(&id).is_none_or(|old| old.config_key() != app.config_key());
                    if changed_config && let Some(b) = self.backoffs.get_mut(&id) {
                        b.reset();
                    }
                    self.backoffs.entry(id.clone()).or_insert_with(|| Backoff::new(spec::backoff_policy(&app)));
                    if let Some(b) = self.backoffs.get_mut(&id) {
                        b.set_policy(spec::backoff_policy(&app));
                    }
                    // The stored definition is the one the new tree holds.
                    apps.extend(apps_after.get(&id).cloned());
                }
                None => {
                    self.backoffs.remove(&id);
                    self.failures.remove(&id);
                }
            }
        }
        self.apps = apps_after;
        self.groups = groups_after;
        let version = deployment.version;
        let deployed = Deployed { deployment_id: deployment.id.clone(), version, apps, created };
        self.outbox.event("group_change_success", json!({"groupId": "/", "version": version}), now);
        self.outbox.event("deployment_info", json!({"plan": plan_json(&deployment), "currentStep": step_json(&deployment, 0)}), now);
        // (add_deployment marks every affected app for the next drive.)
        self.add_deployment(deployment);
        deployed
    }

    /// Works out a batch of status updates, each against the instance as the updates before it
    /// in the batch left it. Nothing changes but the counters and the KILLs of tasks we do not
    /// know (in the outbox) until [`Scheduler::apply_statuses`], which comes once the batch's
    /// records are stored; the acknowledgements go out after that too, so an update whose record
    /// was not stored is sent again by Mesos. `announce`: whether anyone listens for events.
    pub fn plan_statuses(&mut self, statuses: &[v1::TaskStatus], now: Timestamp, announce: bool) -> StatusBatch {
        self.counters.status_updates += statuses.len() as u64;
        // The batch's view of the instances it changes (None: terminal, to be forgotten).
        let mut staged: BTreeMap<InstanceId, Option<Instance>> = BTreeMap::new();
        let mut effects: Vec<Effect> = Vec::new();
        let mut acks: Vec<&v1::TaskStatus> = Vec::new();
        for status in statuses {
            let state = status.state();
            let task_id = status.task_id.value.as_str();
            let instance_id = TaskId::parse(task_id).ok().and_then(|t| t.instance_id());
            let current = instance_id.as_ref().and_then(|id| match staged.get(id) {
                Some(staged) => staged.clone(),
                None => self.instances.get(id).map(|i| Instance::clone(i)),
            });
            let Some(mut instance) = current.filter(|i| i.task_id.as_str() == task_id) else {
                if !condition_from_status(state, None, "").is_terminal() {
                    self.outbox.notes.push(Note::Info(format!("killing task {task_id}, which this framework does not know")));
                    let agent = status.agent_id.as_ref().map(|a| a.value.as_str()).unwrap_or_default();
                    self.outbox.calls.push(calls::kill(task_id, agent, None));
                }
                acks.push(status);
                continue;
            };
            let reason = status.reason.and_then(|r| task_status::Reason::try_from(r).ok());
            let update = condition_from_status(state, reason, status.message.as_deref().unwrap_or_default());
            let was_healthy = instance.healthy;
            let before = instance.condition;
            let Some(condition) = next_condition(instance.condition, update) else {
                // A stale update for a task already terminal: just acknowledge it.
                acks.push(status);
                continue;
            };
            instance.condition = condition;
            instance.mesos_state = StateName(state.as_str_name());
            if let Some(h) = status.healthy {
                instance.healthy = Some(h);
            }
            if state == TaskState::TaskRunning && instance.started_at.is_none() {
                instance.started_at = Some(now);
            }
            if condition == Condition::Unreachable {
                instance.unreachable_since.get_or_insert(now);
            } else if !matches!(condition, Condition::UnreachableInactive) {
                instance.unreachable_since = None;
            }
            if let Some(agent) = &status.agent_id
                && *instance.agent_id != *agent.value
            {
                instance.agent_id = agent.value.as_str().into();
            }
            if let Some(ns) = &status.container_status {
                instance.ip_addresses =
                    ns.network_infos.iter().flat_map(|n| n.ip_addresses.iter().filter_map(|a| a.ip_address.clone())).collect();
            }
            self.status_effects(announce, &instance, status, before, was_healthy, now, &mut effects);
            acks.push(status);
            let terminal = condition.is_terminal();
            staged.insert(instance.id.clone(), (!terminal).then_some(instance));
        }
        let deletes = staged.iter().filter(|(_, i)| i.is_none()).map(|(id, _)| keys::instance(id)).collect();
        let acks = acks.into_iter().filter_map(calls::acknowledge).collect();
        StatusBatch { staged, effects, deletes, acks }
    }

    /// Applies a batch worked out by [`Scheduler::plan_statuses`] once its records are stored.
    pub fn apply_statuses(&mut self, batch: StatusBatch, now: Timestamp) {
        for effect in batch.effects {
            match effect {
                Effect::Event(kind, body) => self.outbox.event(kind, body, now),
                Effect::Backoff(app) => {
                    if let Some(b) = self.backoffs.get_mut(&app) {
                        b.on_failure(now);
                    }
                }
                Effect::Failure(f) => {
                    self.failures.insert(f.app_id.clone(), f);
                }
            }
        }
        for (id, instance) in batch.staged {
            match instance {
                Some(instance) => self.put_instance(instance),
                None => {
                    self.remove_instance(&id);
                }
            }
        }
    }

    /// What an applied status update announces and changes besides the instance.
    #[allow(clippy::too_many_arguments)]
    fn status_effects(
        &self,
        announce: bool,
        instance: &Instance,
        status: &v1::TaskStatus,
        before: Condition,
        was_healthy: Option<bool>,
        now: Timestamp,
        effects: &mut Vec<Effect>,
    ) {
        let state = status.state();
        let condition = instance.condition;
        let app_id = &instance.app_id;
        let task_id = &status.task_id.value;
        if announce {
            effects.push(Effect::Event(
                "status_update_event",
                json!({
                    "slaveId": instance.agent_id, "taskId": task_id, "taskStatus": instance.mesos_state,
                    "message": status.message.clone().unwrap_or_default(), "appId": app_id, "host": instance.host,
                    "ipAddresses": instance.ip_addresses.iter().map(|a| json!({"ipAddress": a, "protocol": "IPv4"})).collect::<Vec<_>>(),
                    "ports": instance.ports, "version": instance.version,
                }),
            ));
            if before != condition {
                effects.push(Effect::Event(
                    "instance_changed_event",
                    json!({"instanceId": instance.id, "condition": condition.name(), "runSpecId": app_id, "agentId": instance.agent_id,
                           "host": instance.host, "runSpecVersion": instance.version}),
                ));
            }
            if was_healthy != instance.healthy && instance.healthy == Some(false) {
                // Marathon announces each failed check; the one Mesos runs is the app's first.
                let check = self.apps.get(app_id).and_then(|a| a.health_checks.first()).and_then(|c| serde_json::to_value(c).ok());
                effects.push(Effect::Event(
                    "failed_health_check_event",
                    json!({"appId": app_id, "taskId": task_id, "instanceId": instance.id, "healthCheck": check}),
                ));
            }
            if was_healthy != instance.healthy {
                effects.push(Effect::Event(
                    "health_status_changed_event",
                    json!({"appId": app_id, "instanceId": instance.id, "taskId": task_id, "version": instance.version, "alive": instance.healthy == Some(true)}),
                ));
                effects.push(Effect::Event(
                    "instance_health_changed_event",
                    json!({"instanceId": instance.id, "runSpecId": app_id, "runSpecVersion": instance.version, "healthy": instance.healthy}),
                ));
            }
        }
        if condition.is_terminal() {
            let reason = status.reason.and_then(|r| task_status::Reason::try_from(r).ok());
            // Killed for failing its health checks: Mesos's executors say so only with
            // `healthy: false` on the TASK_KILLED (no reason); a kill we asked for is not one.
            let health_kill = state == TaskState::TaskKilled
                && instance.kill_sent_at.is_none()
                && (status.healthy == Some(false) || reason == Some(task_status::Reason::TaskHealthCheckStatusUpdated));
            if announce && health_kill {
                effects.push(Effect::Event(
                    "unhealthy_instance_kill_event",
                    json!({"appId": app_id, "taskId": task_id, "instanceId": instance.id, "version": instance.version,
                           "reason": status.message.clone().unwrap_or_else(|| "failed health checks".to_owned()),
                           "host": instance.host, "slaveId": instance.agent_id}),
                ));
            }
            if matches!(state, TaskState::TaskFailed | TaskState::TaskFinished | TaskState::TaskError) || health_kill {
                effects.push(Effect::Backoff(app_id.clone()));
            }
            if state != TaskState::TaskKilled && state != TaskState::TaskFinished {
                effects.push(Effect::Failure(TaskFailure {
                    app_id: app_id.clone(),
                    host: instance.host.to_string(),
                    message: status.message.clone().unwrap_or_default(),
                    state: instance.mesos_state.to_string(),
                    task_id: instance.task_id.clone(),
                    timestamp: now,
                    version: instance.version,
                    slave_id: instance.agent_id.to_string(),
                }));
            }
        }
    }

    /// Starts matching a batch of `count` offers: the apps that may launch now (demand, no
    /// backoff), with what one task needs, and where the instances of constrained ones run.
    pub fn begin_offers(&mut self, count: usize, now: Timestamp) -> OfferRound {
        self.counters.offers_received += count as u64;
        // An app leaves the candidates when its demand is met.
        let candidates: Vec<(Arc<AppDefinition>, TaskRequest, u32)> = self
            .demand
            .iter()
            .filter(|(id, _)| self.backoffs.get(*id).is_none_or(|b| b.time_left_ms(now) <= 0))
            .filter_map(|(id, want)| self.apps.get(id).map(|app| (app.clone(), self.task_request(app), *want)))
            .collect();
        // Counted once per batch (over each app's own instances) and kept current as tasks are
        // launched; apps without constraints do not look at placements at all.
        let mut placements: BTreeMap<AppId, PlacementIndex> = BTreeMap::new();
        for (app, ..) in candidates.iter().filter(|(a, ..)| !a.constraints.is_empty()) {
            let mut index = PlacementIndex::default();
            for (_, i) in crate::state::app_range(&self.instances, &app.id) {
                if i.app_id == app.id
                    && i.condition.is_active()
                    && i.goal == Goal::Running
                    && let Some(p) = self.placement_of_instance(i)
                {
                    index.add(&p);
                }
            }
            placements.insert(app.id.clone(), index);
        }
        OfferRound { now, candidates, placements, accepted: Vec::new(), created: Vec::new(), unused: Vec::new(), capped: Vec::new() }
    }

    /// Matches one offer against the waiting apps: tasks to launch from it (with their new
    /// instances, ids from `new_uuid`), or the offer kept to decline.
    pub fn match_offer(&mut self, round: &mut OfferRound, offer: v1::Offer, new_uuid: &mut dyn FnMut() -> String) {
        let now = round.now;
        // Launches wait while too many earlier ones are unconfirmed (see MAX_UNCONFIRMED; the
        // launches taken from the round are counted in `unconfirmed` once the actor made them).
        if self.unconfirmed + round.created.len() >= MAX_UNCONFIRMED {
            round.capped.push(offer.id);
            return;
        }
        let unconstrained = PlacementIndex::default();
        let mut remaining = offer.clone();
        let mut launches: Vec<v1::TaskInfo> = Vec::new();
        let here = placement_of(&offer);
        // The agent's fields, shared by every instance launched from this offer (made at its
        // first launch: most offers launch nothing).
        let mut agent: Option<AgentFields> = None;
        let mut exhausted = false;
        for (app, req, want) in &mut round.candidates {
            let room = self
                .config
                .max_instances_per_offer
                .saturating_sub(launches.len() as u32)
                .min(u32::try_from(MAX_UNCONFIRMED.saturating_sub(self.unconfirmed + round.created.len())).unwrap_or(u32::MAX));
            if room == 0 {
                break;
            }
            if *want == 0 {
                continue;
            }
            let placed = round.placements.get(&app.id).unwrap_or(&unconstrained);
            let outcome = match_offer_indexed(&remaining, req, placed, &self.config.role, (*want).min(room));
            let stats = self.offer_stats.entry(app.id.clone()).or_default();
            stats.processed_offers_count += 1;
            if outcome.launches.is_empty() {
                stats.unused_offers_count += 1;
                stats.last_unused_offer_at = Some(now);
                for r in &outcome.rejections {
                    *stats.rejections.entry(r.name().to_string()).or_default() += 1;
                }
                continue;
            }
            stats.last_used_offer_at = Some(now);
            let launched = outcome.launches.len() as u32;
            let agent = agent.get_or_insert_with(|| AgentFields {
                agent_id: offer.agent_id.value.as_str().into(),
                host: offer.hostname.as_str().into(),
                attributes: here.attributes.clone().into(),
                region: here.region.as_deref().map(Arc::from),
                zone: here.zone.as_deref().map(Arc::from),
            });
            for m in outcome.launches {
                let instance_id = InstanceId::new(&app.id, &new_uuid());
                let task_id = instance_id.task_id(1);
                launches.push(spec::task_info(app, &task_id, &offer, &m, &self.config.executor));
                spec::subtract(&mut remaining, &m.resources);
                if let Some(index) = round.placements.get_mut(&app.id) {
                    index.add(&here);
                }
                round.created.push(Instance {
                    id: instance_id,
                    app_id: app.id.clone(),
                    version: app.version.unwrap_or(now),
                    config_version: spec::config_version(app),
                    task_id,
                    agent_id: agent.agent_id.clone(),
                    host: agent.host.clone(),
                    ports: m.host_ports,
                    condition: Condition::Provisioned,
                    mesos_state: StateName::STAGING,
                    healthy: None,
                    goal: Goal::Running,
                    staged_at: now,
                    started_at: None,
                    kill_sent_at: None,
                    ip_addresses: Vec::new(),
                    unreachable_since: None,
                    ready: false,
                    attributes: agent.attributes.clone(),
                    region: agent.region.clone(),
                    zone: agent.zone.clone(),
                });
            }
            *want = want.saturating_sub(launched);
            if *want == 0 {
                self.demand.remove(&app.id);
                exhausted = true;
            } else if let Some(n) = self.demand.get_mut(&app.id) {
                *n = *want;
            }
        }
        if exhausted {
            round.candidates.retain(|(.., want)| *want > 0);
        }
        if launches.is_empty() {
            round.unused.push(offer.id);
        } else {
            round.accepted.push((offer.id, launches));
        }
    }

    /// Ends a batch of offers once its launches are out: declines what was not used, for long
    /// when nothing waits and for 5 s otherwise, and what the launch cap held back until the
    /// next allocation (by then earlier launches have been confirmed).
    pub fn end_offers(&mut self, round: OfferRound) {
        let refuse = if self.demand.is_empty() { self.config.decline_refuse_seconds } else { 5.0 };
        self.decline(round.unused, refuse);
        self.decline(round.capped, 0.0);
    }

    /// Starts a drive: what each running deployment's current step wants (advancing steps that
    /// are done), for the deployments of dirty apps or, in a `full` pass, all of them; and which
    /// apps outside deployments to look at.
    pub fn begin_drive(&mut self, full: bool) -> Drive {
        let dirty = std::mem::take(&mut self.dirty);
        let mut demand: BTreeMap<AppId, u32> = BTreeMap::new();
        let mut kills: Vec<(InstanceId, Goal)> = Vec::new();
        let visit: BTreeSet<DeploymentKey> = if full {
            self.deployments.keys().cloned().collect()
        } else {
            dirty.iter().filter_map(|a| self.deploying.get(a).cloned()).collect()
        };
        let mut advanced: Vec<DeploymentKey> = Vec::new();
        let mut finished: Vec<DeploymentKey> = Vec::new();
        for key in visit {
            let Some(dep) = self.deployments.get(&key).cloned() else { continue };
            for app in dep.affected() {
                demand.entry(app.clone()).or_insert(0);
            }
            let mut step = dep.current_step;
            loop {
                let Some(actions) = dep.steps.get(step).map(|s| &s.actions) else {
                    finished.push(key.clone());
                    break;
                };
                let mut all_done = true;
                for action in actions {
                    let (app_id, decision, goal) = self.decide(action);
                    all_done &= decision.done;
                    kills.extend(decision.kill.into_iter().map(|k| (k, goal)));
                    *demand.entry(app_id).or_default() += decision.launch;
                }
                if !all_done {
                    break;
                }
                step += 1;
            }
            if step != dep.current_step
                && let Some(d) = self.deployments.get_mut(&key)
            {
                Arc::make_mut(d).current_step = step;
                advanced.push(key);
            }
        }
        // Apps outside deployments: keep `instances` running (replace failed tasks, kill surplus).
        let standalone: Vec<AppId> = if full {
            self.apps.keys().filter(|id| !self.deploying.contains_key(*id)).cloned().collect()
        } else {
            dirty.iter().filter(|id| !self.deploying.contains_key(*id)).cloned().collect()
        };
        Drive { full, dirty, standalone, demand, kills, advanced, finished }
    }

    /// What these apps outside deployments want: their instance count kept (failed tasks
    /// replaced, surplus killed); the instances of an app that no longer exists killed.
    pub fn drive_standalone(&self, drive: &mut Drive, ids: &[AppId]) {
        for id in ids {
            match self.apps.get(id) {
                Some(app) => {
                    let views = views_of(&self.instances, &self.apps, id);
                    let d = deploy::scale_decision(spec::instances(app), &views, &[], spec::kill_selection(app));
                    drive.kills.extend(d.kill.into_iter().map(|k| (k, Goal::Decommissioned)));
                    drive.demand.insert(id.clone(), d.launch);
                }
                None => {
                    drive.demand.insert(id.clone(), 0);
                    for (_, i) in crate::state::app_range(&self.instances, id) {
                        if &i.app_id == id && i.goal == Goal::Running {
                            drive.kills.push((i.id.clone(), Goal::Decommissioned));
                        }
                    }
                }
            }
        }
    }

    /// In a full pass: kills instances of apps that exist nowhere (no app, no deployment),
    /// looking at up to `max` instances after `after`; returns where to go on from, or `None`
    /// at the end.
    pub fn orphan_kills(&self, drive: &mut Drive, after: Option<&InstanceId>, max: usize) -> Option<InstanceId> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        let max = max.max(1);
        let mut seen = 0;
        let mut last = None;
        for (id, i) in self.instances.range((start, Bound::Unbounded)).take(max) {
            if !self.apps.contains_key(&i.app_id) && !self.deploying.contains_key(&i.app_id) && i.goal == Goal::Running {
                drive.kills.push((i.id.clone(), Goal::Decommissioned));
            }
            seen += 1;
            last = Some(id.clone());
        }
        if seen < max { None } else { last }
    }

    /// Ends a drive: in a full pass the clocks add their kills; kills already sent recently with
    /// the same goal are left out; advanced deployments are announced and their progress is
    /// returned to store; finished ones are returned to remove from the store (then
    /// [`Scheduler::finish_deployment`]).
    pub fn finish_drive(&mut self, mut drive: Drive, now: Timestamp) -> DriveOutcome {
        if drive.full {
            self.clocks(now, &mut drive.kills);
        }
        let kill_retry = self.config.kill_retry.as_millis() as i64;
        let mut seen = BTreeSet::new();
        let mut kills = Vec::new();
        for (id, goal) in drive.kills {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(i) = self.instances.get(&id) else { continue };
            let fresh_kill = i.kill_sent_at.is_some_and(|t| now.0 - t.0 <= kill_retry);
            if fresh_kill && i.goal == goal {
                continue;
            }
            kills.push((id, goal));
        }
        let mut progress = Vec::new();
        let mut finished = drive.finished;
        for key in &drive.advanced {
            let Some(dep) = self.deployments.get(key) else { continue };
            if dep.current_step < dep.steps.len() {
                if let Ok(bytes) = serde_json::to_vec(dep.as_ref()) {
                    progress.push((keys::deployment(&dep.id), bytes));
                }
                self.outbox.event(
                    "deployment_step_success",
                    json!({"plan": plan_json(dep), "currentStep": step_json(dep, dep.current_step - 1)}),
                    now,
                );
                self.outbox.event("deployment_info", json!({"plan": plan_json(dep), "currentStep": step_json(dep, dep.current_step)}), now);
            } else {
                finished.push(key.clone());
            }
        }
        finished.sort_unstable();
        finished.dedup();
        DriveOutcome { kills, progress, finished, demand: drive.demand }
    }

    /// A deployment whose record was removed: forgotten and announced.
    pub fn finish_deployment(&mut self, key: &DeploymentKey, now: Timestamp) {
        let Some(dep) = self.remove_deployment(key) else { return };
        self.counters.deployments_succeeded += 1;
        if let Some(last) = dep.steps.len().checked_sub(1) {
            self.outbox.event("deployment_step_success", json!({"plan": plan_json(&dep), "currentStep": step_json(&dep, last)}), now);
        }
        for (id, app) in &dep.target {
            if app.is_none() {
                self.outbox.event("app_terminated_event", json!({"appId": id}), now);
            }
        }
        self.outbox.event("deployment_success", json!({"id": dep.id, "plan": plan_json(&dep)}), now);
    }

    /// Takes a drive's launch demand (apps it looked at; in a full pass every app) into the
    /// launch queue and decides whether to REVIVE or SUPPRESS offers.
    pub fn update_demand(&mut self, mut demand: BTreeMap<AppId, u32>, full: bool, now: Timestamp) {
        let mut newly_wanted = false;
        if full {
            for id in self.demand.keys() {
                demand.entry(id.clone()).or_insert(0);
            }
        }
        for (id, n) in demand {
            if n == 0 {
                self.demand.remove(&id);
                self.queued_since.remove(&id);
                self.offer_stats.remove(&id);
            } else {
                newly_wanted |= self.demand.insert(id.clone(), n).is_none();
                self.queued_since.entry(id).or_insert(now);
            }
        }
        let wants = !self.demand.is_empty();
        if self.connected {
            match self.offer_flow.decide(wants, newly_wanted, now.0, self.config.min_revive_interval.as_millis() as i64) {
                Some(FlowCall::Revive) => self.outbox.calls.push(calls::revive()),
                Some(FlowCall::Suppress) => self.outbox.calls.push(calls::suppress()),
                None => {}
            }
        }
    }

    /// Kills an instance's task: its new goal (if one is given) and the time of the kill are
    /// recorded, and the KILL goes out once that record is stored.
    pub fn kill(&mut self, id: &InstanceId, goal: Option<Goal>, now: Timestamp) -> Option<InstanceWrite> {
        let mut updated = Instance::clone(self.instances.get(id)?);
        if let Some(goal) = goal {
            updated.goal = goal;
        }
        updated.kill_sent_at = Some(now);
        let grace = self.apps.get(&updated.app_id).and_then(|a| a.task_kill_grace_period_seconds);
        let kill = calls::kill(updated.task_id.as_str(), &updated.agent_id, grace);
        self.counters.kills_sent += 1;
        self.put_instance(updated.clone());
        Some(InstanceWrite { instances: vec![updated], then: vec![kill], ..InstanceWrite::default() })
    }

    /// Records new instances matched from offers; their ACCEPTs go out once the records are
    /// stored, and if that fails the offers are declined instead (the instances, never
    /// confirmed by Mesos, are reconciled as lost and replaced).
    pub fn launch(&mut self, accepted: Vec<(v1::OfferId, Vec<v1::TaskInfo>)>, created: Vec<Instance>) -> Option<InstanceWrite> {
        if accepted.is_empty() {
            return None;
        }
        self.counters.tasks_launched += created.len() as u64;
        for instance in &created {
            self.put_instance(instance.clone());
        }
        // What an offer had left comes back at the next allocation while tasks still wait (a
        // launch cap per offer leaves room on the agent); otherwise it is refused for a second.
        let refuse = if self.demand.is_empty() { 1.0 } else { 0.0 };
        let offers: Vec<v1::OfferId> = accepted.iter().map(|(offer, _)| offer.clone()).collect();
        let then = accepted.into_iter().map(|(offer, task_infos)| calls::accept_launch(offer, task_infos, refuse)).collect();
        Some(InstanceWrite { instances: created, deletes: Vec::new(), then, otherwise: vec![calls::decline(offers, 5.0)] })
    }

    /// Applies apps' `unreachableStrategy`: an unreachable instance turns inactive (and is
    /// replaced) after `inactiveAfterSeconds` and is forgotten after `expungeAfterSeconds` (if its
    /// task comes back then, it is unknown and gets killed).
    pub fn age_unreachable(&mut self, now: Timestamp) -> InstanceWrite {
        let mut changed = Vec::new();
        let mut expunged = Vec::new();
        for i in self.instances.values() {
            let Some(since) = i.unreachable_since else { continue };
            let strategy = self.apps.get(&i.app_id).map(|a| a.unreachable_strategy);
            let Some(crate::app::UnreachableStrategy::Enabled { inactive_after_seconds, expunge_after_seconds }) = strategy else {
                continue;
            };
            let age = now.0.saturating_sub(since.0);
            let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
            if age >= secs(expunge_after_seconds) && age >= secs(inactive_after_seconds) {
                expunged.push(i.id.clone());
            } else if age >= secs(inactive_after_seconds) && i.condition == Condition::Unreachable {
                let mut u = Instance::clone(i);
                u.condition = Condition::UnreachableInactive;
                changed.push(u);
            }
        }
        let mut write = InstanceWrite { deletes: expunged.iter().map(keys::instance).collect(), ..InstanceWrite::default() };
        for i in changed {
            self.outbox.event(
                "instance_changed_event",
                json!({"instanceId": i.id, "condition": i.condition.name(), "runSpecId": i.app_id, "agentId": i.agent_id, "host": i.host, "runSpecVersion": i.version}),
                now,
            );
            write.instances.push(i.clone());
            self.put_instance(i);
        }
        for id in expunged {
            if let Some(i) = self.remove_instance(&id) {
                self.outbox.notes.push(Note::Info(format!("expunged the unreachable instance {id}")));
                self.outbox.event(
                    "unknown_instance_terminated_event",
                    json!({"instanceId": i.id, "runSpecId": i.app_id, "condition": "Unreachable"}),
                    now,
                );
            }
        }
        write
    }

    /// The change a group command asks for, against the tree as it is now: an update (absent
    /// fields keep what the group has; `create` refuses an existing group or app of that id), a
    /// `scaleBy` of every app within the group, or the group's removal (the root is emptied).
    pub fn group_change(&self, op: GroupOp) -> Result<Change, Rejection> {
        Ok(match op {
            GroupOp::Update { update, create, rollback } => {
                let gid = &update.id;
                if create && self.groups.contains_key(gid) {
                    return Err(Rejection::new(409, format!("Group {gid} is already created. Use PUT to change this group.")));
                }
                if create && self.apps.contains_key(gid) {
                    return Err(Rejection::new(409, format!("An app with the path {gid} already exists.")));
                }
                let t = tree::apply_update(&self.tree_view(gid), &update, Timestamp(0));
                Change {
                    put: t.put_apps,
                    delete: t.delete_apps,
                    put_groups: t.put_groups,
                    delete_groups: t.delete_groups,
                    rollback,
                    ..Change::default()
                }
            }
            GroupOp::ScaleBy { group, factor } => {
                if !self.groups.contains_key(&group) {
                    return Err(Rejection::group_not_found(&group));
                }
                let put: Vec<AppDefinition> = crate::state::within(&self.apps, &group)
                    .map(|(_, a)| {
                        let mut a = (**a).clone();
                        a.instances = (f64::from(a.instances) * factor).ceil().min(f64::from(u32::MAX)) as u32;
                        a
                    })
                    .collect();
                scale_within_limit(&put, factor)?;
                Change::put(put)
            }
            GroupOp::Delete { group } => {
                if !self.groups.contains_key(&group) {
                    return Err(Rejection::group_not_found(&group));
                }
                let t = tree::delete_group(&self.tree_view(&group), &group);
                // Emptying the root still changes it (a new version).
                let put_groups = if group.is_root() { vec![GroupNode::new(group.clone(), Timestamp(0))] } else { vec![] };
                Change { delete: t.delete_apps, delete_groups: t.delete_groups, put_groups, ..Change::default() }
            }
        })
    }

    /// The state API reads see: a cheap copy (persistent maps share their nodes).
    pub fn snapshot(&self) -> crate::state::Snapshot {
        use crate::state::{LaunchQueue, Snapshot};
        let queue = LaunchQueue {
            demand: self.demand.clone(),
            since: self.queued_since.clone(),
            backoffs: self.backoffs.clone(),
            stats: self.offer_stats.clone(),
        };
        Snapshot {
            apps: self.apps.clone(),
            groups: self.groups.clone(),
            instances: self.instances.clone(),
            deployments: self.deployments.values().cloned().collect(),
            deploying: self.deploying.clone(),
            queue,
            failures: self.failures.clone(),
            framework_id: self.framework_id.clone(),
            connected: self.connected,
            master: self.master.clone(),
            role: self.config.role.clone(),
            counters: Counters {
                reconciliation_rounds: self.reconciliation.rounds_completed,
                reconciliation_retries: self.reconciliation.retries,
                reconciliation_pending: self.reconciliation.pending() as u64,
                ..self.counters
            },
        }
    }

    /// A framework message from an executor, announced on the event bus.
    pub fn framework_message(&mut self, agent: &str, executor: &str, data: &[u8], now: Timestamp) {
        self.outbox.event(
            "framework_message_event",
            json!({"slaveId": agent, "executorId": executor, "message": String::from_utf8_lossy(data)}),
            now,
        );
    }

    /// Stops a running deployment where it is (`force=true`), its record already removed.
    pub fn stop_deployment(&mut self, key: &DeploymentKey, now: Timestamp) {
        if let Some(old) = self.remove_deployment(key) {
            self.counters.deployments_cancelled += 1;
            self.outbox.event(
                "deployment_step_failure",
                json!({"plan": plan_json(&old), "currentStep": step_json(&old, old.current_step.min(old.steps.len().saturating_sub(1)))}),
                now,
            );
            self.outbox.event("deployment_failed", json!({"id": old.id, "plan": plan_json(&old), "reason": "cancelled"}), now);
        }
    }

    /// The apps that roll a running deployment back (its apps as they were before it; apps it
    /// created go), at a new version, to be started forced over it.
    pub fn rollback_of(&mut self, key: &DeploymentKey, now: Timestamp) -> (BTreeMap<AppId, Option<AppDefinition>>, Timestamp) {
        let original = self.deployments.get(key).map(|d| d.original.clone()).unwrap_or_default();
        let version = self.next_version(now);
        let mut target = BTreeMap::new();
        for (app_id, app) in original {
            match app {
                Some(mut app) => {
                    spec::stamp_rollback(&mut app, version);
                    target.insert(app_id, Some(app));
                }
                None if self.apps.contains_key(&app_id) => {
                    target.insert(app_id, None);
                }
                None => {}
            }
        }
        (target, version)
    }

    /// SUBSCRIBED, with the framework id stored: offers flow anew (filters left behind are
    /// cleared once anything waits), every task is reconciled, and kills decided earlier are sent
    /// again (they may have been lost with the previous connection or leader).
    pub fn subscribed(&mut self, framework_id: String, master: String, region: Option<String>, now: Timestamp) {
        self.counters.subscriptions += 1;
        self.home_region = region;
        let first = self.framework_id.is_none();
        self.framework_id = Some(framework_id.clone());
        self.connected = true;
        self.master = master.clone();
        self.offer_flow = OfferFlow::default();
        if first {
            self.outbox.event("scheduler_registered_event", json!({"frameworkId": framework_id, "master": master}), now);
        } else {
            self.outbox.event("scheduler_reregistered_event", json!({"master": master}), now);
        }
        self.reconcile(now);
        self.resend_kills();
    }

    /// The subscription ended (the client re-subscribes by itself).
    pub fn disconnected(&mut self, now: Timestamp) {
        if self.connected {
            self.outbox.event("scheduler_disconnected_event", json!({}), now);
        }
        self.connected = false;
        self.reconciliation.stop();
    }

    /// The instances of `tasks` (each must be a task we know, else 404), to kill without
    /// changing their apps.
    pub fn tasks_to_kill(&self, tasks: &[TaskId]) -> Result<Vec<Arc<Instance>>, Rejection> {
        tasks
            .iter()
            .map(|task| {
                task.instance_id()
                    .and_then(|i| self.instances.get(&i))
                    .filter(|i| &i.task_id == task)
                    .cloned()
                    .ok_or_else(|| Rejection::new(404, format!("Task '{task}' does not exist")))
            })
            .collect()
    }

    /// An instance passed its readiness check: recorded as ready.
    pub fn ready(&mut self, id: &InstanceId) -> Option<InstanceWrite> {
        let mut updated = Instance::clone(self.instances.get(id)?);
        updated.ready = true;
        self.put_instance(updated.clone());
        Some(InstanceWrite { instances: vec![updated], ..InstanceWrite::default() })
    }

    /// Resets an app's launch backoff; whether the app was in the launch queue (waiting or
    /// delayed).
    pub fn reset_delay(&mut self, app: &AppId, now: Timestamp) -> bool {
        // As Marathon: 204 while the app is in the launch queue (waiting or delayed), else 404.
        let waiting = self.demand.get(app).is_some_and(|n| *n > 0);
        self.backoffs
            .get_mut(app)
            .map(|b| {
                let had = b.time_left_ms(now) > 0;
                b.reset();
                had || waiting
            })
            .unwrap_or(waiting)
    }

    /// The instances that want a readiness check: running, of the current configuration, not
    /// ready yet, of the given apps with readiness checks in a deployment, and not `checking`
    /// already.
    pub fn readiness_wanted<'a>(
        &self,
        apps: impl Iterator<Item = &'a AppId>,
        checking: impl Fn(&InstanceId) -> bool,
    ) -> Vec<(Arc<AppDefinition>, Arc<Instance>)> {
        let mut out = Vec::new();
        for app_id in apps {
            let Some(app) = self.apps.get(app_id) else { continue };
            if app.readiness_checks.is_empty() || !self.deploying.contains_key(app_id) {
                continue;
            }
            let current = spec::config_version(app);
            for (_, i) in crate::state::app_range(&self.instances, app_id) {
                if &i.app_id != app_id || i.ready || i.condition != Condition::Running || checking(&i.id) || i.config_version != current {
                    continue;
                }
                out.push((app.clone(), i.clone()));
            }
        }
        out
    }
}

/// Every task we believe alive, for reconciliation.
fn alive_tasks(instances: &Instances) -> Vec<TaskRef> {
    instances
        .values()
        .filter(|i| !i.condition.is_terminal())
        .map(|i| TaskRef { task: i.task_id.to_string(), agent: i.agent_id.to_string() })
        .collect()
}

/// Whether `task` is a task we believe alive.
fn is_alive_task(instances: &Instances, task: &str) -> bool {
    TaskId::parse(task)
        .ok()
        .and_then(|t| t.instance_id())
        .and_then(|id| instances.get(&id))
        .is_some_and(|i| i.task_id.as_str() == task && !i.condition.is_terminal())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(allow_privileged: bool, params: &[&str]) -> SchedulerConfig {
        SchedulerConfig {
            allow_privileged,
            docker_parameters_allowed: params.iter().map(ToString::to_string).collect(),
            ..SchedulerConfig::default()
        }
    }

    fn docker_app(extra: &str) -> AppDefinition {
        let body = format!(r#"{{"id": "/web", "container": {{"docker": {{"image": "nginx"{extra}}}}}}}"#);
        crate::app::parse_app(body.as_bytes(), &AppId::root()).unwrap()
    }

    #[test]
    fn scale_by_stays_within_the_instance_limit() {
        let mut a = AppDefinition::new(PathId::parse("/g/a").unwrap_or_default());
        a.instances = crate::app::validate::MAX_INSTANCES;
        assert!(scale_within_limit(std::slice::from_ref(&a), 1.0).is_ok());
        a.instances += 1;
        let e = scale_within_limit(&[a], 2.0).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(e.body["message"], "Object is not valid");
        assert_eq!(e.body["details"][0]["path"], "/scaleBy");
        assert!(e.body["details"][0]["errors"][0].as_str().unwrap_or_default().contains("/g/a"), "{}", e.body);
    }

    #[test]
    fn privileged_needs_the_flag() {
        let app = docker_app(r#", "privileged": true"#);
        let e = container_policy(&config(false, &[]), std::slice::from_ref(&app)).unwrap_err();
        assert_eq!((e.status, e.body["message"].as_str()), (422, Some("Object is not valid")));
        assert_eq!(e.body["details"][0]["path"], "/container/docker/privileged");
        assert!(e.body.to_string().contains("--allow-privileged"));
        assert!(container_policy(&config(true, &[]), &[app]).is_ok());
    }

    #[test]
    fn host_volumes_that_hand_over_the_host_need_the_privileged_flag() {
        for path in [
            "/",
            "/etc",
            "/etc/",
            "//etc//ssl",
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/var/lib/docker/volumes",
            "/srv/../etc",
            "/proc/1",
        ] {
            assert!(sensitive_host_path(path).is_some(), "{path}");
        }
        for path in ["/var/lib/guestbook/mysql", "/srv/data", "/tmp/x", "data", "/var/log/app", "/running"] {
            assert_eq!(sensitive_host_path(path), None, "{path}");
        }
        let app = |host: &str| {
            let body = format!(
                r#"{{"id": "/db", "container": {{"docker": {{"image": "x"}}, "volumes": [{{"containerPath": "/d", "hostPath": "/srv", "mode": "RW"}}, {{"containerPath": "/s", "hostPath": "{host}", "mode": "RO"}}]}}}}"#
            );
            crate::app::parse_app(body.as_bytes(), &AppId::root()).unwrap()
        };
        let e = container_policy(&config(false, &[]), &[app("/var/run/docker.sock")]).unwrap_err();
        assert_eq!(e.body["details"][0]["path"], "/container/volumes(1)/hostPath");
        assert!(e.body.to_string().contains("--allow-privileged"));
        assert!(container_policy(&config(true, &[]), &[app("/var/run/docker.sock")]).is_ok());
        assert!(container_policy(&config(false, &[]), &[app("/srv/shared")]).is_ok());
        assert!(container_policy(&config(false, &[]), &[app("/etc/localtime")]).is_ok(), "the time zone, read-only");
    }

    #[test]
    fn docker_parameters_outside_the_allow_list_are_refused() {
        let defaults: Vec<&str> = DEFAULT_DOCKER_PARAMETERS.to_vec();
        let app = docker_app(r#", "parameters": [{"key": "label", "value": "a=b"}, {"key": "--log-opt", "value": "max-size=1m"}]"#);
        assert!(container_policy(&config(false, &defaults), &[app]).is_ok());

        let app = docker_app(
            r#", "parameters": [{"key": "label", "value": "a=b"}, {"key": "cap-add", "value": "SYS_ADMIN"}, {"key": "--device", "value": "/dev/mem"}]"#,
        );
        let e = container_policy(&config(false, &defaults), std::slice::from_ref(&app)).unwrap_err();
        assert_eq!(e.status, 422);
        let paths: Vec<&str> = e.body["details"].as_array().unwrap().iter().filter_map(|d| d["path"].as_str()).collect();
        assert_eq!(paths, ["/container/docker/parameters(1)/key", "/container/docker/parameters(2)/key"]);
        let text = e.body.to_string();
        assert!(text.contains("'cap-add'") && text.contains("--docker-parameters-allowed"), "{text}");

        assert!(container_policy(&config(false, &["label", "CAP-ADD", "device"]), std::slice::from_ref(&app)).is_ok());
        assert!(container_policy(&config(false, &["*"]), std::slice::from_ref(&app)).is_ok());
        assert!(container_policy(&config(false, &[]), &[docker_app("")]).is_ok(), "no parameters need no allowance");
    }

    fn scheduler() -> Scheduler {
        Scheduler::new(config(false, &[]), vec![], vec![], vec![], vec![], None)
    }

    #[test]
    fn versions_beyond_the_maximum_are_the_oldest() {
        let w = step::StoreWrite { max_versions: 3, ..step::StoreWrite::default() };
        let stored = vec!["v/2020-01-02".to_string(), "v/2020-01-01".into(), "v/2020-01-03".into()];
        assert_eq!(w.beyond_max(stored.clone(), "v/2020-01-04".into()), ["v/2020-01-01"]);
        assert!(w.beyond_max(stored[..2].to_vec(), "v/2020-01-04".into()).is_empty());
        // Writing a version already stored adds nothing.
        assert!(w.beyond_max(stored, "v/2020-01-03".into()).is_empty());
    }

    #[test]
    fn a_framework_message_is_announced() {
        let mut s = scheduler();
        s.framework_message("agent-1", "exec-1", b"hello", Timestamp(5));
        let out = s.take_outbox();
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].event_type, "framework_message_event");
        assert_eq!(out.events[0].body, serde_json::json!({"slaveId": "agent-1", "executorId": "exec-1", "message": "hello"}));
    }

    fn app(id: &str, instances: u32) -> AppDefinition {
        let mut a = AppDefinition::new(PathId::parse(id).unwrap());
        a.cmd = Some("sleep 1000".into());
        a.instances = instances;
        a
    }

    fn status(task: &TaskId, state: TaskState, uuid: bool) -> v1::TaskStatus {
        v1::TaskStatus {
            task_id: v1::TaskId { value: task.to_string() },
            state: state as i32,
            agent_id: Some(v1::AgentId { value: "agent-1".into() }),
            uuid: uuid.then(|| vec![7]),
            message: Some("m".into()),
            ..Default::default()
        }
    }

    /// Plans and starts a change at `now`, as the actor does once the writes are stored.
    fn deploy(s: &mut Scheduler, change: Change, now: Timestamp) -> Result<(Deployed, Vec<String>), Rejection> {
        let (target, to_kill, groups, version) = s.target_of(change, now)?;
        let start = s.plan_start(target, to_kill, groups, version, false, DeploymentId(format!("d{}", now.0)))?;
        let keys = start.writes.iter().map(|(k, _)| k.clone()).collect();
        Ok((s.apply_start(start, now), keys))
    }

    #[test]
    fn status_updates_change_nothing_until_applied_and_ack_only_then() {
        let mut s = scheduler();
        let running = crate::state::instance("/web", "u1");
        s.put_instance(running.clone());
        let failed = status(&running.task_id, TaskState::TaskFailed, true);
        let batch = s.plan_statuses(std::slice::from_ref(&failed), Timestamp(10), true);
        assert!(s.instances.contains_key(&running.id), "planning changes no instance");
        assert_eq!(batch.deletes, [keys::instance(&running.id)]);
        assert_eq!(batch.acks.len(), 1, "the update asks for an acknowledgement, sent once stored");
        assert_eq!(batch.changed().count(), 0);
        s.apply_statuses(batch, Timestamp(10));
        assert!(!s.instances.contains_key(&running.id), "a terminal task is forgotten");
        assert_eq!(s.failures.get(&running.app_id).map(|f| f.state.as_str()), Some("TASK_FAILED"));
        let events: Vec<&str> = s.take_outbox().events.iter().map(|e| e.event_type).collect();
        assert!(events.contains(&"status_update_event") && events.contains(&"instance_changed_event"), "{events:?}");
    }

    #[test]
    fn unknown_and_stale_updates_are_acknowledged_and_unknown_tasks_killed() {
        let mut s = scheduler();
        let ghost = crate::state::instance("/ghost", "g1");
        let batch = s.plan_statuses(&[status(&ghost.task_id, TaskState::TaskRunning, true)], Timestamp(5), false);
        assert_eq!(batch.acks.len(), 1);
        let out = s.take_outbox();
        assert_eq!(out.calls.len(), 1);
        assert_eq!(out.calls[0].kill.as_ref().map(|k| k.task_id.value.clone()), Some(ghost.task_id.to_string()));
        // A terminal task we do not know is only acknowledged.
        let batch = s.plan_statuses(&[status(&ghost.task_id, TaskState::TaskKilled, true)], Timestamp(6), false);
        assert_eq!((batch.acks.len(), s.take_outbox().calls.len()), (1, 0));
        // The master's own updates (no uuid) are applied but never acknowledged.
        let mut staging = crate::state::instance("/web", "u2");
        staging.condition = Condition::Staging;
        staging.started_at = None;
        s.put_instance(staging.clone());
        let batch = s.plan_statuses(&[status(&staging.task_id, TaskState::TaskRunning, false)], Timestamp(7), false);
        assert!(batch.acks.is_empty());
        s.apply_statuses(batch, Timestamp(7));
        let now = s.instances.get(&staging.id).unwrap();
        assert_eq!((now.condition, now.started_at), (Condition::Running, Some(Timestamp(7))));
    }

    #[test]
    fn clocks_kill_tasks_past_the_launch_timeout_and_resend_unconfirmed_kills() {
        let mut s = scheduler();
        s.connected = true;
        let mut slow = crate::state::instance("/web", "slow");
        slow.condition = Condition::Staging;
        slow.staged_at = Timestamp(0);
        let mut killing = crate::state::instance("/web", "kill");
        killing.kill_sent_at = Some(Timestamp(0));
        killing.goal = Goal::Decommissioned;
        let mut launched = crate::state::instance("/web", "new");
        launched.condition = Condition::Provisioned;
        launched.staged_at = Timestamp(0);
        for i in [&slow, &killing, &launched] {
            s.put_instance(i.clone());
        }
        let mut kills = Vec::new();
        s.clocks(Timestamp(20_000), &mut kills);
        assert!(kills.is_empty(), "nothing is due after 20 s");
        let out = s.take_outbox();
        assert_eq!(out.calls.len(), 1, "launches unconfirmed for 15 s are reconciled");
        assert_eq!(out.calls[0].reconcile.as_ref().map(|r| r.tasks.len()), Some(1));
        s.clocks(Timestamp(301_000), &mut kills);
        let ids: BTreeSet<InstanceId> = kills.iter().map(|(i, _)| i.clone()).collect();
        assert!(ids.contains(&slow.id) && ids.contains(&killing.id) && ids.contains(&launched.id), "{kills:?}");
        assert!(kills.contains(&(killing.id.clone(), Goal::Decommissioned)), "a resent kill keeps its goal");
    }

    #[test]
    fn creations_conflicts_and_versions_are_decided_against_the_state() {
        let mut s = scheduler();
        let (d, written) = deploy(&mut s, Change { create_only: true, ..Change::put(vec![app("/g/a", 1)]) }, Timestamp(100)).unwrap();
        assert_eq!(d.created, [PathId::parse("/g/a").unwrap()]);
        assert!(written.contains(&keys::group(&PathId::parse("/g").unwrap())), "the app's group is created with it: {written:?}");
        assert!(written.contains(&keys::group_version(&PathId::parse("/g").unwrap(), d.version)));
        // A second creation of the id is a conflict, whatever the body.
        let e = deploy(&mut s, Change { create_only: true, ..Change::put(vec![app("/g/a", 5)]) }, Timestamp(101)).unwrap_err();
        assert_eq!((e.status, e.body["message"].as_str()), (409, Some("An app with id [/g/a] already exists.")));
        // A change of an app in a running deployment is locked unless forced.
        let e = deploy(&mut s, Change::put(vec![app("/g/a", 2)]), Timestamp(102)).unwrap_err();
        assert_eq!(e.status, 409);
        // Versions only grow, even when the clock goes back.
        let v1 = s.next_version(Timestamp(500));
        let v2 = s.next_version(Timestamp(400));
        assert!(v2 > v1);
        // An app may not live where a group is.
        let e = deploy(&mut s, Change::put(vec![app("/g", 1)]), Timestamp(600)).unwrap_err();
        assert_eq!(e.status, 422);
    }

    #[test]
    fn offers_launch_what_apps_wait_for_and_decline_the_rest() {
        use crate::matching::fixtures::{offer, ports, scalar};
        let mut s = scheduler();
        let mut web = app("/web", 2);
        web.cpus = 0.5;
        web.mem = 64.0;
        web.port_definitions = Some(vec![]);
        s.apps.insert(web.id.clone(), Arc::new(web.clone()));
        s.demand.insert(web.id.clone(), 2);
        let fits = offer("host-a", vec![scalar("cpus", 2.0), scalar("mem", 512.0), ports(&[(31000, 31010)])], vec![]);
        let small = offer("host-b", vec![scalar("cpus", 0.1), scalar("mem", 512.0)], vec![]);
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("uuid-{n}")
        };
        let mut round = s.begin_offers(2, Timestamp(1));
        s.match_offer(&mut round, small, &mut ids);
        s.match_offer(&mut round, fits, &mut ids);
        assert_eq!(round.pending(), 2, "both instances from the offer that fits");
        let (accepted, created) = round.take_launches();
        assert_eq!((accepted.len(), accepted[0].1.len()), (1, 2));
        assert!(created.iter().all(|i| i.condition == Condition::Provisioned && &*i.host == "host-a"));
        assert_eq!(created[0].id, InstanceId::new(&web.id, "uuid-1"), "ids come from the caller");
        assert!(s.demand.is_empty(), "the demand is met");
        let stats = s.offer_stats.get(&web.id).unwrap();
        assert_eq!((stats.processed_offers_count, stats.unused_offers_count), (2, 1));
        assert_eq!(stats.rejections.get("InsufficientCpus"), Some(&1), "{:?}", stats.rejections);
        s.end_offers(round);
        let calls = s.take_outbox().calls;
        assert_eq!(calls.len(), 1, "the small offer is declined");
        let decline = calls[0].decline.as_ref().unwrap();
        assert_eq!(decline.filters.as_ref().and_then(|f| f.refuse_seconds), Some(120.0), "for long: nothing waits any more");
    }

    #[test]
    fn a_drive_launches_what_steps_want_finishes_deployments_and_kills_orphans() {
        let mut s = scheduler();
        s.connected = true;
        let (d, _) = deploy(&mut s, Change::put(vec![app("/web", 2)]), Timestamp(1_000)).unwrap();
        let mut drive = s.begin_drive(false);
        assert!(drive.take_standalone().is_empty(), "the app is in a deployment");
        let outcome = s.finish_drive(drive, Timestamp(1_001));
        assert_eq!(outcome.demand.get(&PathId::parse("/web").unwrap()), Some(&2));
        assert_eq!(outcome.progress.len(), 1, "the start step is done: progress is stored");
        s.update_demand(outcome.demand, false, Timestamp(1_001));
        let out = s.take_outbox();
        assert!(out.calls.iter().any(|c| c.r#type() == mesos_proto::v1::scheduler::call::Type::Revive), "new demand revives offers");
        assert!(out.events.iter().any(|e| e.event_type == "deployment_step_success"));

        // Both tasks run: the deployment is done.
        let web = s.apps.get(&PathId::parse("/web").unwrap()).unwrap().clone();
        for n in 0..2 {
            let mut i = crate::state::instance("/web", &format!("u{n}"));
            i.config_version = spec::config_version(&web);
            s.put_instance(i);
        }
        let drive = s.begin_drive(false);
        let outcome = s.finish_drive(drive, Timestamp(1_002));
        assert_eq!(outcome.finished.len(), 1);
        assert_eq!(outcome.finished[0].1, d.deployment_id);
        s.finish_deployment(&outcome.finished[0], Timestamp(1_002));
        assert!(s.deployments.is_empty() && s.deploying.is_empty());
        assert!(s.take_outbox().events.iter().any(|e| e.event_type == "deployment_success"));

        // Outside deployments, a lost task is replaced; a task of an app that exists nowhere dies.
        s.remove_instance(&InstanceId::new(&web.id, "u0"));
        s.put_instance(crate::state::instance("/gone", "g"));
        let mut drive = s.begin_drive(true);
        let standalone = drive.take_standalone();
        s.drive_standalone(&mut drive, &standalone);
        let mut after = None;
        loop {
            after = s.orphan_kills(&mut drive, after.as_ref(), 1);
            if after.is_none() {
                break;
            }
        }
        let outcome = s.finish_drive(drive, Timestamp(1_003));
        assert_eq!(outcome.demand.get(&web.id), Some(&1), "one replacement");
        assert_eq!(outcome.kills, [(InstanceId::new(&PathId::parse("/gone").unwrap(), "g"), Goal::Decommissioned)]);
    }
}
