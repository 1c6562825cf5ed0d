//! The scheduler actor: the single owner of apps, instances and deployments. It is fed API
//! commands, Mesos updates and clock ticks over channels, asks the pure core what to do,
//! persists every change before it is acknowledged (to an API client or to Mesos), sends Mesos
//! calls and publishes a snapshot for API reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use framework_core::app::AppDefinition;
use framework_core::ids::{AppId, DeploymentId, InstanceId, PathId, TaskId, Timestamp};
use framework_core::instance::Goal;
pub use framework_core::keys;
pub use framework_core::scheduler::{
    Change, Deployed, GroupOp, Rejection, SchedulerConfig as ActorConfig, action_json, container_policy, plan_json, step_json,
};
use framework_core::scheduler::{LAUNCH_CHUNK, Note, Scheduler};
use framework_core::tree::GroupNode;
use mesos_proto::v1::scheduler::event;
use mesos_proto::v1::{self};
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::command::{ActorHandle, Command, GroupOutcome};
use crate::error::ApiError;
use crate::events::EventBus;
use crate::mesos::{MesosCalls, MesosUpdate};
pub use crate::persist::{Loaded, load};
use crate::persist::{Persist, writer};
use crate::state::{Instance, Snapshot};
use crate::store::Store;

/// How a command is answered, once its change is published.
type Reply = Box<dyn FnOnce() + Send>;
/// The writer may fall this many hand-overs behind before the actor waits for it (the queue
/// holds serialized records and task infos: unbounded, it grew to a gigabyte at 10,000 agents).
const WRITER_QUEUE: usize = 32;

/// At most this many status updates are applied together (one write, one drive).
const STATUS_BATCH: usize = 512;

/// A full pass decides for this many apps at a time, spending one unit of the task's budget per
/// app (tokio yields the worker when the budget runs out).
const DRIVE_CHUNK: usize = 64;

/// The full pass's scan for instances of apps that exist nowhere looks at this many instances
/// per unit of budget (two map lookups each).
const ORPHAN_CHUNK: usize = 64;

/// At most this many queued commands are carried out before their common publish.
const COMMAND_BATCH: usize = 64;
/// The current wall-clock time.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}
/// The actor: the scheduler's state (`framework_core::scheduler::Scheduler`) and what carries
/// out its decisions.
pub struct Actor {
    /// The scheduler's state and pure decisions.
    s: Scheduler,
    store: Store,
    bus: EventBus,
    calls: Option<MesosCalls>,
    /// The instance record writer (see [`writer`]), started with the actor.
    writer: Option<mpsc::Sender<Persist>>,
    /// When the last full pass started, and how long it took.
    last_full_pass: (std::time::Instant, Duration),
    /// A write whose outcome is unknown failed: the run loop ends before anything else.
    stopped: bool,
    snapshot: watch::Sender<Arc<Snapshot>>,
    /// Our own command channel (for the readiness checkers' reports).
    commands: mpsc::Sender<Command>,
    readiness: BTreeMap<InstanceId, tokio::task::AbortHandle>,
    http: reqwest::Client,
}

impl Actor {
    /// Creates the actor from loaded state and returns it with its handle.
    pub fn new(config: ActorConfig, store: Store, bus: EventBus, loaded: Loaded) -> (Self, ActorHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(1024);
        let (snapshot, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
        let s = Scheduler::new(config, loaded.apps, loaded.groups, loaded.instances, loaded.deployments, loaded.framework_id);
        let mut actor = Actor {
            s,
            store,
            bus,
            calls: None,
            writer: None,
            last_full_pass: (std::time::Instant::now(), Duration::ZERO),
            stopped: false,
            snapshot,
            commands: tx.clone(),
            readiness: BTreeMap::new(),
            http: reqwest::Client::new(),
        };
        actor.publish();
        (actor, ActorHandle { tx, snapshot: snapshot_rx }, rx)
    }

    /// The persisted framework id, for the Mesos client's first SUBSCRIBE.
    pub fn framework_id(&self) -> Option<String> {
        self.s.framework_id.clone()
    }

    /// Runs until both input channels close.
    pub async fn run(mut self, calls: MesosCalls, mut commands: mpsc::Receiver<Command>, mut mesos: mpsc::Receiver<MesosUpdate>) {
        let (writer_tx, writer_rx) = mpsc::channel(WRITER_QUEUE);
        let writer = tokio::spawn(writer(self.store.clone(), calls.clone(), writer_rx));
        let _stop_writer = AbortOnDrop(writer);
        self.writer = Some(writer_tx);
        self.calls = Some(calls);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Mesos events come in bursts (thousands of status updates): they are applied one by one,
        // but deciding what to do next and publishing the snapshot, both linear in the number of
        // instances, happen at most every 50 ms.
        let mut flush = tokio::time::interval(Duration::from_millis(50));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first drive after start (and every tick) looks at everything.
        let mut full = true;
        let mut events_seen = true;
        loop {
            if self.stopped {
                return;
            }
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        // Commands that queued up meanwhile are taken together: one drive and one
                        // publish for all, and the answers go out once the snapshot shows them.
                        let mut replies = vec![self.on_command(cmd).await];
                        while replies.len() < COMMAND_BATCH {
                            let Ok(cmd) = commands.try_recv() else { break };
                            replies.push(self.on_command(cmd).await);
                        }
                        self.drive(std::mem::take(&mut full)).await;
                        // One wait for the disk for the whole batch, before any answer.
                        if !self.sync().await {
                            return;
                        }
                        self.publish();
                        events_seen = false;
                        for reply in replies.into_iter().flatten() {
                            reply();
                        }
                    }
                    None => return,
                },
                up = mesos.recv() => match up {
                    Some(up) => {
                        if matches!(up, MesosUpdate::Subscribed { .. }) {
                            full = true;
                        }
                        // Status updates come in bursts: the ones already queued behind this one
                        // are applied together (until another kind of event).
                        let mut statuses = Vec::new();
                        let mut next = Some(up);
                        while let Some(up) = next.take() {
                            match status_of(up) {
                                Ok(status) if statuses.len() < STATUS_BATCH => {
                                    statuses.push(status);
                                    next = mesos.try_recv().ok();
                                }
                                Ok(status) => {
                                    self.on_statuses(std::mem::take(&mut statuses)).await;
                                    statuses.push(status);
                                    next = mesos.try_recv().ok();
                                }
                                Err(other) => {
                                    if !statuses.is_empty() {
                                        self.on_statuses(std::mem::take(&mut statuses)).await;
                                    }
                                    self.on_mesos(other).await;
                                }
                            }
                        }
                        if !statuses.is_empty() {
                            self.on_statuses(statuses).await;
                        }
                        if self.stopped {
                            return;
                        }
                        // Calls and events the updates made go out now, not at the next publish.
                        self.flush_outbox();
                        events_seen = true;
                    }
                    None => return,
                },
                _ = flush.tick() => {
                    if events_seen || full || !self.s.dirty.is_empty() {
                        self.drive(std::mem::take(&mut full)).await;
                        if !self.sync().await {
                            return;
                        }
                        self.publish();
                        events_seen = false;
                    }
                }
                _ = tick.tick() => full |= self.full_pass_due(),
            }
        }
    }

    /// Makes the deferred writes durable; false if that failed, after which the actor must stop:
    /// the outcome of the writes is unknown, and the state is reloaded from the store by whoever
    /// leads next (see `ha`; a single instance exits).
    async fn sync(&self) -> bool {
        match self.store.sync().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not make the state durable; the scheduler stops so that no unsaved change is acknowledged");
                false
            }
        }
    }

    /// Posts the calls and logs the notes the scheduler's decisions made, in order.
    fn flush_outbox(&mut self) {
        let out = self.s.take_outbox();
        for note in out.notes {
            match note {
                Note::Info(m) => tracing::info!("{m}"),
                Note::Warn(m) => tracing::warn!("{m}"),
            }
        }
        for e in out.events {
            self.bus.publish(e.event_type, e.body, e.at);
        }
        if let Some(c) = &self.calls {
            for call in out.calls {
                c.send(call);
            }
        }
    }

    fn publish(&mut self) {
        self.flush_outbox();
        let snap = self.s.snapshot();
        self.snapshot.send_replace(Arc::new(snap));
    }

    // ----------------------------------------------------------------------------------------
    // API commands

    /// Carries out a command; returns how to answer it, to be done once the change is published.
    async fn on_command(&mut self, cmd: Command) -> Option<Reply> {
        fn answer<T: Send + 'static>(reply: oneshot::Sender<T>, value: T) -> Option<Reply> {
            Some(Box::new(move || {
                let _ = reply.send(value);
            }))
        }
        match cmd {
            Command::Deploy { change, force, reply } => {
                let result = self.deploy(change, force).await;
                answer(reply, result)
            }
            Command::Group { op, force, dry_run, reply } => {
                let result = self.group_command(op, force, dry_run).await;
                answer(reply, result)
            }
            Command::KillTasks { tasks, reply } => {
                let result = self.kill_tasks(&tasks).await;
                answer(reply, result)
            }
            Command::CancelDeployment { id, force, reply } => {
                let result = self.cancel_deployment(&id, force).await;
                answer(reply, result)
            }
            Command::Ready { instance } => {
                self.readiness.remove(&instance);
                if let Some(write) = self.s.ready(&instance) {
                    self.persist(Persist::from(write)).await;
                }
                None
            }
            Command::ResetDelay { app, reply } => answer(reply, self.s.reset_delay(&app, now())),
        }
    }

    /// Turns a group change into a [`Change`] against the current tree and deploys it (or,
    /// with `dry_run`, only plans it).
    async fn group_command(&mut self, op: GroupOp, force: bool, dry_run: bool) -> Result<GroupOutcome, ApiError> {
        let change = self.s.group_change(op)?;
        if dry_run {
            let (target, to_kill, groups, version) = self.s.target_of(change, now())?;
            return Ok(GroupOutcome::DryRun(self.s.prepare(&target, &to_kill, groups, version)?.steps));
        }
        self.deploy(change, force).await.map(GroupOutcome::Deployed)
    }

    /// Computes the target apps of a change, plans it, persists it and starts it.
    async fn deploy(&mut self, change: Change, force: bool) -> Result<Deployed, ApiError> {
        let (target, to_kill, groups, version) = self.s.target_of(change, now())?;
        self.start_deployment(target, to_kill, groups, version, force).await
    }

    async fn start_deployment(
        &mut self,
        target: BTreeMap<AppId, Option<AppDefinition>>,
        to_kill: BTreeMap<AppId, Vec<InstanceId>>,
        groups: (Vec<GroupNode>, Vec<PathId>),
        version: Timestamp,
        force: bool,
    ) -> Result<Deployed, ApiError> {
        let id = DeploymentId(uuid::Uuid::new_v4().to_string());
        let start = self.s.plan_start(target, to_kill, groups, version, force, id)?;
        // Persist first, made durable by the sync that precedes every answer; if anything fails
        // the in-memory state is untouched and the client gets 503.
        self.store.put_many_deferred(&start.writes).await.map_err(ApiError::storage)?;
        let mut removals = start.removals.clone();
        for folder in &start.clears {
            removals.extend(self.store.keys(folder).await.map_err(ApiError::storage)?);
        }
        for (folder, new) in &start.trims {
            let stored = self.store.keys(folder).await.map_err(ApiError::storage)?;
            removals.extend(self.s.versions_beyond_max(stored, new.clone()));
        }
        self.store.delete_many_deferred(&removals).await.map_err(ApiError::storage)?;
        Ok(self.s.apply_start(start, now()))
    }

    async fn cancel_deployment(&mut self, id: &DeploymentId, force: bool) -> Result<Option<Deployed>, ApiError> {
        let Some(key) = self.s.deployment_key(id) else {
            return Err(ApiError::new(404, format!("DeploymentPlan {id} does not exist")));
        };
        if force {
            self.store.delete(&keys::deployment(id)).await.map_err(ApiError::storage)?;
            self.s.stop_deployment(&key, now());
            return Ok(None);
        }
        let (target, version) = self.s.rollback_of(&key, now());
        self.start_deployment(target, BTreeMap::new(), (vec![], vec![]), version, true).await.map(Some)
    }

    /// Kills tasks without changing their apps (each is replaced); 404 if any is unknown.
    async fn kill_tasks(&mut self, tasks: &[TaskId]) -> Result<Vec<Arc<Instance>>, ApiError> {
        let killed = self.s.tasks_to_kill(tasks)?;
        for instance in &killed {
            // Goal stays Running: the instance is replaced by a new task.
            self.send_kill(&instance.id, None).await;
        }
        Ok(killed)
    }

    /// Sends KILL for an instance's task once its new goal (if one is given) is persisted.
    async fn send_kill(&mut self, id: &InstanceId, goal: Option<Goal>) {
        if let Some(write) = self.s.kill(id, goal, now()) {
            self.persist(Persist::from(write)).await;
        }
    }

    /// Hands instance records to the writer, with the calls that must wait for them; waits only
    /// when the writer is [`WRITER_QUEUE`] batches behind.
    async fn persist(&mut self, persist: Persist) {
        if let Some(w) = &self.writer
            && w.send(persist).await.is_err()
        {
            // The writer stopped after a failed write (see [`writer`]).
            self.stopped = true;
        }
    }

    // ----------------------------------------------------------------------------------------
    // Mesos

    async fn on_mesos(&mut self, update: MesosUpdate) {
        let now = now();
        match update {
            MesosUpdate::Subscribed { framework_id, master } => {
                if self.s.framework_id.as_deref() != Some(&framework_id)
                    && let Err(e) = self.store.put(keys::FRAMEWORK_ID, framework_id.as_bytes()).await
                {
                    // Carrying on would register a second framework at the next start and
                    // orphan this one's tasks: stop, as for any write whose outcome is unknown
                    // (the next leader, or a restart, subscribes with what is stored).
                    tracing::error!(error = %e, %framework_id, "could not persist the framework id Mesos assigned; the scheduler stops so that no second framework is registered. Fix the state store and restart");
                    self.stopped = true;
                    return;
                }
                self.s.subscribed(framework_id, master, now);
            }
            MesosUpdate::Disconnected { reason } => {
                tracing::warn!(%reason, "Mesos subscription lost");
                self.s.disconnected(now);
            }
            MesosUpdate::Event(ev) => match ev.r#type() {
                event::Type::Offers => {
                    if let Some(offers) = ev.offers {
                        self.on_offers(offers.offers).await;
                    }
                }
                event::Type::Update => {
                    if let Some(update) = ev.update {
                        self.on_statuses(vec![update.status]).await;
                    }
                }
                event::Type::Failure => {
                    if let Some(f) = ev.failure {
                        tracing::warn!(agent = ?f.agent_id.map(|a| a.value), executor = ?f.executor_id.map(|e| e.value), status = ?f.status, "Mesos reported a failure");
                    }
                }
                event::Type::Message => {
                    if let Some(m) = ev.message {
                        self.s.framework_message(&m.agent_id.value, &m.executor_id.value, &m.data, now);
                    }
                }
                other => tracing::debug!(?other, "ignored Mesos event"),
            },
        }
    }

    /// Applies a batch of status updates: each is worked out against the instance as the updates
    /// before it in the batch left it; then the changed instances are persisted in one write, and
    /// only after that are the changes applied, announced and acknowledged. If persisting fails,
    /// nothing is acknowledged, so Mesos sends the updates again.
    async fn on_statuses(&mut self, statuses: Vec<v1::TaskStatus>) {
        let now = now();
        let mut batch = self.s.plan_statuses(&statuses, now, self.bus.has_subscribers());
        let mut persist = Persist::instances(batch.changed());
        persist.deletes = std::mem::take(&mut batch.deletes);
        persist.then = std::mem::take(&mut batch.acks);
        self.persist(persist).await;
        self.s.apply_statuses(batch, now);
    }

    async fn on_offers(&mut self, offers: Vec<v1::Offer>) {
        let mut round = self.s.begin_offers(offers.len(), now());
        for offer in offers {
            // Launches go out every few hundred tasks: the memory a batch of offers holds stays
            // bounded however many agents offer at once.
            if round.pending() >= LAUNCH_CHUNK {
                let (accepted, created) = round.take_launches();
                self.launch(accepted, created).await;
            }
            self.s.match_offer(&mut round, offer, &mut || uuid::Uuid::new_v4().to_string());
        }
        let (accepted, created) = round.take_launches();
        self.launch(accepted, created).await;
        self.s.end_offers(round);
    }

    /// Launches new instances: they are recorded now and handed to the writer, which posts the
    /// ACCEPTs once they are persisted (or declines the offers if that fails).
    async fn launch(&mut self, accepted: Vec<(v1::OfferId, Vec<v1::TaskInfo>)>, created: Vec<Instance>) {
        if let Some(write) = self.s.launch(accepted, created) {
            self.persist(Persist::from(write)).await;
        }
    }

    // ----------------------------------------------------------------------------------------
    // Driving deployments and the launch queue

    /// Applies apps' `unreachableStrategy` (see [`Scheduler::age_unreachable`]).
    async fn age_unreachable(&mut self, now: Timestamp) {
        let write = self.s.age_unreachable(now);
        if !write.instances.is_empty() || !write.deletes.is_empty() {
            self.persist(Persist::from(write)).await;
        }
    }

    /// Starts readiness checks for running, current, not yet ready instances of the given apps
    /// in deployments, and stops checks whose instance went away.
    fn run_readiness_checks<'a>(&mut self, apps: impl Iterator<Item = &'a AppId>) {
        self.readiness.retain(|id, handle| {
            let keep = self.s.instances.contains_key(id);
            if !keep {
                handle.abort();
            }
            keep
        });
        let mut start = Vec::new();
        for (app, i) in self.s.readiness_wanted(apps, |id| self.readiness.contains_key(id)) {
            if let Some(url) = crate::readiness::check_url(&app, &i) {
                start.push((app, i.id.clone(), url));
            }
        }
        for (app, id, url) in start {
            if let Some(handle) = crate::readiness::spawn(&app, id.clone(), url, self.commands.clone(), self.http.clone()) {
                self.readiness.insert(id, handle);
            }
        }
    }

    /// Works out what to launch and kill and moves deployments on. Decisions depend only on an
    /// app's definition and instances, so only apps marked dirty since the last drive are looked
    /// at again (with the deployments they are part of); a `full` drive (on every clock tick)
    /// looks at every app and also applies the clocks: launch timeouts, kill retries, unreachable
    /// instances, unconfirmed launches.
    async fn drive(&mut self, full: bool) {
        let started = std::time::Instant::now();
        self.drive_apps(full).await;
        if full {
            self.last_full_pass = (started, started.elapsed());
        }
    }

    /// Whether the next clock tick makes a full pass: once a second, unless the last one took
    /// longer than [`FULL_PASS_SHARE`] of that; then as much later as keeps full passes to that
    /// share of the actor's time (at 200,000 instances one takes a good fraction of a second, and
    /// commands and updates wait behind it). Clocks then fire a little later; none needs second
    /// precision.
    fn full_pass_due(&self) -> bool {
        let (at, took) = self.last_full_pass;
        at.elapsed() >= Duration::from_secs(1).max(took.mul_f64(1.0 / FULL_PASS_SHARE))
    }

    /// See [`Actor::drive`]: the decisions are the scheduler's ([`Scheduler::begin_drive`] and
    /// what follows); the actor yields to the runtime between chunks of a full pass (at 10,000
    /// apps a pass holds a worker for ~150 ms, and API tasks must not wait behind it), persists
    /// and sends the kills, stores deployment progress and removes finished deployments.
    async fn drive_apps(&mut self, full: bool) {
        let now = now();
        if full {
            self.age_unreachable(now).await;
        }
        let mut drive = self.s.begin_drive(full);
        let standalone = drive.take_standalone();
        for chunk in standalone.chunks(DRIVE_CHUNK) {
            self.s.drive_standalone(&mut drive, chunk);
            // One unit of the task's budget per app, as before the chunks: the runtime gets the
            // worker back as often as when each app was its own step.
            for _ in chunk {
                tokio::task::consume_budget().await;
            }
        }
        if full {
            let mut after = None;
            loop {
                after = self.s.orphan_kills(&mut drive, after.as_ref(), ORPHAN_CHUNK);
                // The scan is cheap per instance: one unit per chunk.
                tokio::task::consume_budget().await;
                if after.is_none() {
                    break;
                }
            }
            let deploying: Vec<AppId> = self.s.deploying.keys().cloned().collect();
            self.run_readiness_checks(deploying.iter());
        } else {
            let dirty: Vec<AppId> = drive.dirty().cloned().collect();
            self.run_readiness_checks(dirty.iter());
        }
        let outcome = self.s.finish_drive(drive, now);
        for (id, goal) in outcome.kills {
            self.send_kill(&id, Some(goal)).await;
        }
        if !outcome.progress.is_empty()
            && let Err(e) = self.store.put_many_deferred(&outcome.progress).await
        {
            tracing::error!(error = %e, "could not persist deployment progress");
        }
        for key in outcome.finished {
            if let Err(e) = self.store.delete(&keys::deployment(&key.1)).await {
                tracing::error!(error = %e, "could not remove a finished deployment; will retry");
                self.s.deployment_removal_failed(&key);
                continue;
            }
            self.s.finish_deployment(&key, now);
        }
        self.s.update_demand(outcome.demand, full, now);
    }
}
/// The most of the actor's time full passes take (see [`Actor::full_pass_due`]).
const FULL_PASS_SHARE: f64 = 0.05;

/// Aborts a task when dropped (the writer stops with the actor).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The task status a Mesos UPDATE event carries, or the update itself if it is something else.
fn status_of(update: MesosUpdate) -> Result<v1::TaskStatus, MesosUpdate> {
    match update {
        MesosUpdate::Event(ev) if ev.r#type() == event::Type::Update && ev.update.is_some() => match ev.update {
            Some(u) => Ok(u.status),
            None => Err(MesosUpdate::Event(ev)),
        },
        other => Err(other),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unsaved_framework_id_stops_the_scheduler() {
        let root = std::env::temp_dir().join(format!("framework-fwid-{}", uuid::Uuid::new_v4()));
        let store = Store::Files(crate::store::FileStore::open(&root).await.unwrap());
        // Nothing can be made durable: the journal's directory is taken by a file.
        let journal = root.join("journal");
        let _ = std::fs::remove_dir_all(&journal);
        std::fs::write(&journal, b"not a directory").unwrap();
        {
            let (mut actor, _handle, _rx) = Actor::new(ActorConfig::default(), store, EventBus::new(), Loaded::default());
            actor.on_mesos(MesosUpdate::Subscribed { framework_id: "fw-1".into(), master: "m".into() }).await;
            assert!(actor.stopped, "a framework id Mesos assigned but we could not store must stop the scheduler");
            assert_eq!(actor.s.framework_id, None, "the unsaved id is not used");
        }
        // A stored id goes through.
        let store = Store::Files(crate::store::FileStore::open(&root.join("ok")).await.unwrap());
        let (mut actor, _handle, _rx) = Actor::new(ActorConfig::default(), store.clone(), EventBus::new(), Loaded::default());
        actor.on_mesos(MesosUpdate::Subscribed { framework_id: "fw-2".into(), master: "m".into() }).await;
        assert!(!actor.stopped);
        assert_eq!(store.get(keys::FRAMEWORK_ID).await.unwrap().as_deref(), Some(&b"fw-2"[..]));
        // The stores' writer threads end with their last handle; then the directory can go.
        drop((actor, store));
        let _ = std::fs::remove_dir_all(root);
    }
}
