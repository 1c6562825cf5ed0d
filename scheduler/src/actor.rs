//! The scheduler actor: the single owner of the scheduler's state. It is fed API commands,
//! Mesos updates and clock ticks over channels, steps the pure core
//! ([`Scheduler::step`]) with each, and carries out the effects in order: durable writes made
//! durable before any answer or event, instance records handed to the writer (which posts the
//! calls that wait for them), calls, events, readiness checks. It publishes a snapshot for API
//! reads. Any failed write stops it: the state has moved past what is stored, so whoever leads
//! next (or a restart) reloads the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use framework_core::ids::{InstanceId, Timestamp};
pub use framework_core::keys;
use framework_core::scheduler::step::{Effect, Input, StoreWrite};
use framework_core::scheduler::{BusEvent, Note, Scheduler};
pub use framework_core::scheduler::{
    Change, Deployed, GroupOp, Rejection, SchedulerConfig as ActorConfig, action_json, container_policy, plan_json, step_json,
};
use mesos_proto::v1::scheduler::event;
use mesos_proto::v1::{self};
use tokio::sync::{mpsc, watch};

use crate::command::ReplyTo;
pub use crate::command::{ActorHandle, Command, GroupOutcome};
use crate::events::EventBus;
use crate::mesos::{MesosCalls, MesosUpdate};
pub use crate::persist::{Loaded, load};
use crate::persist::{Persist, writer};
use crate::state::Snapshot;
use crate::store::Store;

/// The writer may fall this many hand-overs behind before the actor waits for it (the queue
/// holds serialized records and task infos: unbounded, it grew to a gigabyte at 10,000 agents).
const WRITER_QUEUE: usize = 32;

/// At most this many status updates are applied together (one write, one drive).
const STATUS_BATCH: usize = 512;

/// At most this many queued commands are carried out before their common publish.
const COMMAND_BATCH: usize = 64;

/// The most of the actor's time full passes take (see [`Actor::full_pass_due`]).
const FULL_PASS_SHARE: f64 = 0.05;

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
    /// Why the run loop ends before anything else (a write failed, Mesos removed us).
    stopped: Option<Stopped>,
    /// Durable writes were made since the last sync.
    unsynced: bool,
    /// Events held until the writes before them are durable.
    events: Vec<BusEvent>,
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
        let actor = Actor {
            s,
            store,
            bus,
            calls: None,
            writer: None,
            last_full_pass: (std::time::Instant::now(), Duration::ZERO),
            stopped: None,
            unsynced: false,
            events: Vec::new(),
            snapshot,
            commands: tx.clone(),
            readiness: BTreeMap::new(),
            http: reqwest::Client::new(),
        };
        actor.snapshot.send_replace(Arc::new(actor.s.snapshot()));
        (actor, ActorHandle { tx, snapshot: snapshot_rx }, rx)
    }

    /// The persisted framework id, for the Mesos client's first SUBSCRIBE.
    pub fn framework_id(&self) -> Option<String> {
        self.s.framework_id.clone()
    }

    /// Runs until an input channel closes, a write fails or Mesos removes the framework; why.
    pub async fn run(
        mut self,
        calls: MesosCalls,
        mut commands: mpsc::Receiver<Command>,
        mut mesos: mpsc::Receiver<MesosUpdate>,
    ) -> Stopped {
        let (writer_tx, writer_rx) = mpsc::channel(WRITER_QUEUE);
        let writer = tokio::spawn(writer(self.store.clone(), calls.clone(), writer_rx));
        let _stop_writer = AbortOnDrop(writer);
        self.writer = Some(writer_tx);
        self.calls = Some(calls);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Mesos events come in bursts (thousands of status updates): they are applied as they
        // come, but deciding what to do next and publishing the snapshot, both linear in the
        // number of instances, happen at most every 50 ms.
        let mut flush = tokio::time::interval(Duration::from_millis(50));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first drive after start (and every tick) looks at everything.
        let mut full = true;
        let mut events_seen = true;
        while self.stopped.is_none() {
            tokio::select! {
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Stopped::Closed };
                    // Commands that queued up meanwhile are taken together: one drive, one wait
                    // for the disk and one publish for all; the answers go out once the snapshot
                    // shows them.
                    let mut replies = vec![self.on_command(cmd).await];
                    while replies.len() < COMMAND_BATCH && self.stopped.is_none() {
                        let Ok(cmd) = commands.try_recv() else { break };
                        replies.push(self.on_command(cmd).await);
                    }
                    self.drive(std::mem::take(&mut full)).await;
                    if self.settle(true).await {
                        for (to, answer) in replies.into_iter().flatten() {
                            to.send(answer);
                        }
                    }
                    events_seen = false;
                }
                up = mesos.recv() => {
                    let Some(up) = up else { return Stopped::Closed };
                    if matches!(up, MesosUpdate::Subscribed { .. }) {
                        full = true;
                    }
                    // Status updates come in bursts: the ones already queued behind this one are
                    // applied together (until another kind of event).
                    let mut statuses = Vec::new();
                    let mut next = Some(up);
                    while let Some(up) = next.take() {
                        match status_of(up) {
                            Ok(status) => {
                                if statuses.len() == STATUS_BATCH {
                                    self.on_statuses(std::mem::take(&mut statuses)).await;
                                }
                                statuses.push(status);
                                next = mesos.try_recv().ok();
                            }
                            Err(other) => {
                                self.on_statuses(std::mem::take(&mut statuses)).await;
                                self.on_mesos(other).await;
                            }
                        }
                    }
                    self.on_statuses(statuses).await;
                    // Events the updates made go out now, not at the next publish.
                    self.settle(false).await;
                    events_seen = true;
                }
                _ = flush.tick() => {
                    if events_seen || full || !self.s.dirty.is_empty() {
                        self.drive(std::mem::take(&mut full)).await;
                        self.settle(true).await;
                        events_seen = false;
                    }
                }
                _ = tick.tick() => full |= self.full_pass_due(),
            }
        }
        self.stopped.take().unwrap_or(Stopped::Closed)
    }

    /// Steps the scheduler with an input and carries out the effects; a drive under way is
    /// continued after yielding the worker (at 10,000 apps a full pass holds it for ~150 ms,
    /// and API tasks must not wait behind it). The answer to a request, unless a write failed.
    async fn step(&mut self, input: Input) -> Option<framework_core::scheduler::step::Answer> {
        let mut input = input;
        loop {
            let fx = self.s.step(input, now(), &mut || uuid::Uuid::new_v4().to_string());
            self.carry(fx.effects).await;
            if self.stopped.is_some() {
                return None;
            }
            if !fx.more {
                return fx.answer;
            }
            tokio::task::yield_now().await;
            input = Input::Continue;
        }
    }

    /// Carries out effects in order (see [`framework_core::scheduler::step`]).
    async fn carry(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            if self.stopped.is_some() {
                return;
            }
            match effect {
                Effect::Store(w) => match self.write(w).await {
                    Ok(()) => self.unsynced = true,
                    Err(e) => {
                        tracing::error!(error = %e, "could not write the state; the scheduler stops so that no unsaved change is acknowledged (the next leader, or a restart, reloads the store)");
                        self.stopped = Some(Stopped::WriteFailed);
                    }
                },
                Effect::Persist(w) => self.persist(Persist::from(w)).await,
                Effect::Call(call) => {
                    if let Some(c) = &self.calls {
                        c.send(*call);
                    }
                }
                Effect::Event(e) => self.events.push(e),
                Effect::Note(Note::Info(m)) => tracing::info!("{m}"),
                Effect::Note(Note::Warn(m)) => tracing::warn!("{m}"),
                Effect::StartReadiness(probe) => {
                    let id = probe.instance.clone();
                    let handle = crate::readiness::spawn(probe, self.commands.clone(), self.http.clone());
                    if let Some(old) = self.readiness.insert(id, handle) {
                        old.abort();
                    }
                }
                Effect::StopReadiness(id) => {
                    if let Some(handle) = self.readiness.remove(&id) {
                        handle.abort();
                    }
                }
            }
        }
    }

    /// A durable write (deferred: made durable by the sync in [`Actor::settle`]).
    async fn write(&self, w: StoreWrite) -> anyhow::Result<()> {
        self.store.put_many_deferred(&w.puts).await?;
        let mut removals = w.deletes.clone();
        for folder in &w.clears {
            removals.extend(self.store.keys(folder).await?);
        }
        for (folder, new) in &w.trims {
            let stored = self.store.keys(folder).await?;
            removals.extend(w.beyond_max(stored, new.clone()));
        }
        self.store.delete_many_deferred(&removals).await?;
        Ok(())
    }

    /// Ends a round: makes the writes durable (else the actor stops), then publishes the
    /// snapshot (if `publish`) and the events held; whether answers may go out.
    async fn settle(&mut self, publish: bool) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        if self.unsynced {
            if let Err(e) = self.store.sync().await {
                tracing::error!(error = %e, "could not make the state durable; the scheduler stops so that no unsaved change is acknowledged");
                self.stopped = Some(Stopped::WriteFailed);
                return false;
            }
            self.unsynced = false;
        }
        if publish {
            self.snapshot.send_replace(Arc::new(self.s.snapshot()));
        }
        for e in self.events.drain(..) {
            self.bus.publish(e.event_type, e.body, e.at);
        }
        true
    }

    /// Carries out a command; returns where its answer goes and the answer, to be sent once
    /// the change is durable and published.
    async fn on_command(&mut self, cmd: Command) -> Option<(ReplyTo, framework_core::scheduler::step::Answer)> {
        match cmd.into_request() {
            Ok((request, to)) => self.step(Input::Request(request)).await.map(|answer| (to, answer)),
            Err(instance) => {
                self.readiness.remove(&instance);
                self.step(Input::Ready(instance)).await;
                None
            }
        }
    }

    /// Hands instance records to the writer, with the calls that must wait for them; waits only
    /// when the writer is [`WRITER_QUEUE`] batches behind.
    async fn persist(&mut self, persist: Persist) {
        if let Some(w) = &self.writer
            && w.send(persist).await.is_err()
        {
            // The writer stopped after a failed write (see [`writer`]).
            self.stopped = Some(Stopped::WriteFailed);
        }
    }

    /// A Mesos update other than a task status.
    async fn on_mesos(&mut self, update: MesosUpdate) {
        let input = match update {
            MesosUpdate::Subscribed { framework_id, master, region } => Input::Subscribed { framework_id, master, region },
            MesosUpdate::Disconnected { reason } => {
                tracing::warn!(%reason, "Mesos subscription lost");
                Input::Disconnected
            }
            MesosUpdate::Removed { framework_id, message } => {
                self.stopped = Some(Stopped::FrameworkRemoved { framework_id, message });
                return;
            }
            MesosUpdate::Event(ev) => match ev.r#type() {
                event::Type::Offers => match ev.offers {
                    Some(offers) => Input::Offers(offers.offers),
                    None => return,
                },
                event::Type::Update => match ev.update {
                    Some(update) => Input::Statuses { statuses: vec![update.status], announce: self.bus.has_subscribers() },
                    None => return,
                },
                event::Type::Message => match ev.message {
                    Some(m) => Input::Message { agent: m.agent_id.value, executor: m.executor_id.value, data: m.data },
                    None => return,
                },
                event::Type::Failure => {
                    if let Some(f) = ev.failure {
                        tracing::warn!(agent = ?f.agent_id.map(|a| a.value), executor = ?f.executor_id.map(|e| e.value), status = ?f.status, "Mesos reported a failure");
                    }
                    return;
                }
                other => {
                    tracing::debug!(?other, "ignored Mesos event");
                    return;
                }
            },
        };
        self.step(input).await;
    }

    /// Applies a batch of status updates (their records go to the writer first; the
    /// acknowledgements wait for them).
    async fn on_statuses(&mut self, statuses: Vec<v1::TaskStatus>) {
        if !statuses.is_empty() {
            let announce = self.bus.has_subscribers();
            self.step(Input::Statuses { statuses, announce }).await;
        }
    }

    /// Works out what to launch and kill and moves deployments on: the apps that changed since
    /// the last drive, or (`full`, on clock ticks) everything, with the clocks.
    async fn drive(&mut self, full: bool) {
        let started = std::time::Instant::now();
        self.step(Input::Drive { full }).await;
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
}

/// Why the actor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// An input channel closed (the process is shutting down).
    Closed,
    /// A write failed: the state has moved past what is stored, and is reloaded from the store by
    /// whoever leads next (or a restart).
    WriteFailed,
    /// Mesos removed the framework and killed its tasks; only an operator may register anew.
    FrameworkRemoved {
        /// The id Mesos refused.
        framework_id: String,
        /// Mesos's message.
        message: String,
    },
}

impl Stopped {
    /// What to tell the operator; `stored_id` says where the framework id is kept.
    pub fn explain(&self, stored_id: &str) -> String {
        match self {
            Stopped::Closed => "the scheduler stopped".to_owned(),
            Stopped::WriteFailed => {
                "the scheduler stopped after a failure to save its state (see the log above); start framework again, it reloads the stored state"
                    .to_owned()
            }
            Stopped::FrameworkRemoved { framework_id, message } => format!(
                "Mesos removed framework {framework_id} (\"{message}\": its failover timeout passed, or an operator tore it down) and \
                 killed its tasks; framework stopped rather than register a new framework on its own. To register anew, which \
                 launches every app again under a new framework id, start framework once with --forget-framework-id {framework_id} \
                 (it removes the stored id, kept in {stored_id})"
            ),
        }
    }
}

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
            let (mut actor, _handle, _rx) = Actor::new(ActorConfig::default(), store.clone(), EventBus::new(), Loaded::default());
            actor.on_mesos(MesosUpdate::Subscribed { framework_id: "fw-1".into(), master: "m".into(), region: None }).await;
            assert!(!actor.settle(false).await, "the round ends without the id made durable");
            assert_eq!(
                actor.stopped,
                Some(Stopped::WriteFailed),
                "a framework id Mesos assigned but we could not store must stop the scheduler"
            );
        }
        // A stored id goes through.
        let store = Store::Files(crate::store::FileStore::open(&root.join("ok")).await.unwrap());
        let (mut actor, _handle, _rx) = Actor::new(ActorConfig::default(), store.clone(), EventBus::new(), Loaded::default());
        actor.on_mesos(MesosUpdate::Subscribed { framework_id: "fw-2".into(), master: "m".into(), region: None }).await;
        assert!(actor.settle(false).await);
        assert_eq!(actor.stopped, None);
        assert_eq!(actor.framework_id().as_deref(), Some("fw-2"));
        assert_eq!(store.get(keys::FRAMEWORK_ID).await.unwrap().as_deref(), Some(&b"fw-2"[..]));
        // The stores' writer threads end with their last handle; then the directory can go.
        drop((actor, store));
        let _ = std::fs::remove_dir_all(root);
    }
}
