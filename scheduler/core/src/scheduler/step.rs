//! The scheduler's one entry point: [`Scheduler::step`] takes an [`Input`] (an API request, a
//! Mesos event, a readiness report, a drive) with the time, changes the state, and returns the
//! [`Effects`] for the shell to carry out in order: durable store writes, instance records with
//! the Mesos calls that wait for them, calls, `/v2/events` payloads, log lines, readiness checks
//! to start or stop, and the answer to a request.
//!
//! The shell's contract: carry the effects out in order; make [`Effect::Store`] writes durable
//! before any answer is sent or event published; post an [`Effect::Persist`]'s calls only once
//! its records are written (its fallback calls if that failed); and stop — the next leader or a
//! restart reloads the store — when any write fails, since the state has already moved on.
//! While [`Effects::more`] is set, a drive is under way: the shell yields to its runtime and
//! steps [`Input::Continue`] before anything else.

use std::collections::{BTreeMap, BTreeSet};

use mesos_proto::v1::scheduler::Call;
use mesos_proto::v1::{self};

use super::{BusEvent, Change, Deployed, GroupOp, InstanceWrite, LAUNCH_CHUNK, Note, Rejection, Scheduler};
use crate::app::AppDefinition;
use crate::deploy;
use crate::ids::{AppId, DeploymentId, InstanceId, PathId, TaskId, Timestamp};
use crate::keys;
use crate::readiness::{self, Probe};
use crate::state::Instance;
use crate::tree::GroupNode;

/// A full pass looks at this many apps outside deployments per step.
pub const DRIVE_CHUNK: usize = 64;
/// A full pass's scan for instances of apps that exist nowhere looks at this many instances per
/// step (two map lookups each).
pub const ORPHAN_CHUNK: usize = 4096;

/// What the scheduler is told.
#[derive(Debug)]
pub enum Input {
    /// An API request; its answer is [`Effects::answer`].
    Request(Request),
    /// An instance passed its readiness check.
    Ready(InstanceId),
    /// Mesos accepted our subscription.
    Subscribed {
        /// The framework id Mesos assigned (or confirmed).
        framework_id: String,
        /// The master's address.
        master: String,
        /// The master's fault-domain region, if it has one (the home region).
        region: Option<String>,
    },
    /// The subscription ended (the client subscribes again by itself).
    Disconnected,
    /// Offers.
    Offers(Vec<v1::Offer>),
    /// Task status updates, in the order Mesos sent them.
    Statuses {
        /// The updates.
        statuses: Vec<v1::TaskStatus>,
        /// Whether anyone listens on `/v2/events` (the events are only built if so).
        announce: bool,
    },
    /// A framework message from an executor.
    Message {
        /// The agent.
        agent: String,
        /// The executor.
        executor: String,
        /// The payload.
        data: Vec<u8>,
    },
    /// Work out what to launch and kill and move deployments on: the apps that changed since the
    /// last drive, or (`full`) every app, with the clocks (launch timeouts, kill retries,
    /// unreachable instances, unconfirmed launches).
    Drive {
        /// Look at everything.
        full: bool,
    },
    /// Go on with the drive under way ([`Effects::more`]).
    Continue,
}

/// An API request.
#[derive(Debug)]
pub enum Request {
    /// Change apps (create, update, scale, restart, delete).
    Deploy {
        /// The change.
        change: Change,
        /// Cancel conflicting deployments instead of refusing (409).
        force: bool,
    },
    /// Change a group.
    Group {
        /// The change.
        op: GroupOp,
        /// Cancel conflicting deployments instead of refusing (409).
        force: bool,
        /// Only plan the change (`dryRun`).
        dry_run: bool,
    },
    /// Kill tasks without changing their apps (each is replaced).
    KillTasks {
        /// The tasks.
        tasks: Vec<TaskId>,
    },
    /// Cancel a deployment: roll it back, or (`force`) stop it where it is.
    CancelDeployment {
        /// The deployment.
        id: DeploymentId,
        /// Stop without a rollback.
        force: bool,
    },
    /// Reset an app's launch backoff.
    ResetDelay {
        /// The app.
        app: AppId,
    },
}

/// What a group request answers.
#[derive(Debug)]
pub enum GroupOutcome {
    /// The change was made and its deployment started.
    Deployed(Deployed),
    /// `dryRun`: the steps the change would take; nothing was changed.
    DryRun(Vec<deploy::Step>),
}

/// The answer to a [`Request`], variant for variant.
#[derive(Debug)]
pub enum Answer {
    /// To [`Request::Deploy`].
    Deployed(Result<Deployed, Rejection>),
    /// To [`Request::Group`].
    Group(Result<GroupOutcome, Rejection>),
    /// To [`Request::KillTasks`]: the killed instances as they were.
    Killed(Result<Vec<std::sync::Arc<Instance>>, Rejection>),
    /// To [`Request::CancelDeployment`]: the rollback deployment, if one was started.
    Cancelled(Result<Option<Deployed>, Rejection>),
    /// To [`Request::ResetDelay`]: whether there was a delay to reset.
    DelayReset(bool),
}

/// Records to make durable before anything that depends on them is answered or announced.
#[derive(Debug, Default, PartialEq)]
pub struct StoreWrite {
    /// Keys to write, in order.
    pub puts: Vec<(String, Vec<u8>)>,
    /// Keys to remove (after the writes).
    pub deletes: Vec<String>,
    /// Folders whose every key goes (the versions of deleted apps and groups).
    pub clears: Vec<String>,
    /// Version folders to trim, counting the key written now: `(folder, new key)`; the oldest
    /// keys beyond `max_versions` go ([`StoreWrite::beyond_max`]).
    pub trims: Vec<(String, String)>,
    /// Versions kept per folder (`--zk-max-versions`).
    pub max_versions: usize,
}

impl StoreWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty() && self.clears.is_empty() && self.trims.is_empty()
    }

    /// The keys of a trimmed folder to remove once `new` is written beside `stored`, oldest first
    /// (version keys sort as their timestamps do).
    pub fn beyond_max(&self, stored: Vec<String>, new: String) -> Vec<String> {
        let mut all: BTreeSet<String> = stored.into_iter().collect();
        all.insert(new);
        let excess = all.len().saturating_sub(self.max_versions);
        all.into_iter().take(excess).collect()
    }
}

/// One thing for the shell to do.
#[derive(Debug)]
pub enum Effect {
    /// Write records durably (see the module's contract).
    Store(StoreWrite),
    /// Write instance records (relaxed: reconciliation restores what a crash loses), then post
    /// the calls that wait for them.
    Persist(InstanceWrite),
    /// Post a Mesos call.
    Call(Box<Call>),
    /// Publish an event to `/v2/events` subscribers.
    Event(BusEvent),
    /// Log a line.
    Note(Note),
    /// Start polling an instance's readiness check; report success as [`Input::Ready`].
    StartReadiness(Probe),
    /// Stop polling the readiness check of an instance that went away.
    StopReadiness(InstanceId),
}

/// What a step asks of the shell.
#[derive(Debug, Default)]
pub struct Effects {
    /// In order.
    pub effects: Vec<Effect>,
    /// The answer to an [`Input::Request`].
    pub answer: Option<Answer>,
    /// A drive is under way: step [`Input::Continue`] (after yielding) before anything else.
    pub more: bool,
}

impl Effects {
    fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn persist(&mut self, write: Option<InstanceWrite>) {
        if let Some(w) = write.filter(|w| !w.instances.is_empty() || !w.deletes.is_empty() || !w.then.is_empty()) {
            self.push(Effect::Persist(w));
        }
    }
}

/// A drive in progress across steps.
#[derive(Debug)]
pub(super) struct PendingDrive {
    drive: super::Drive,
    standalone: Vec<AppId>,
    done: usize,
    /// In a full pass: where the orphan scan goes on from (`Some(None)`: from the start), or
    /// `None` once it is over.
    orphans: Option<Option<InstanceId>>,
}

impl Scheduler {
    /// Takes one input at time `now`; `fresh_id` makes new unique ids (deployments, tasks).
    /// Returns what to carry out (see the module's contract).
    pub fn step(&mut self, input: Input, now: Timestamp, fresh_id: &mut dyn FnMut() -> String) -> Effects {
        let mut fx = Effects::default();
        // Nothing overtakes a drive under way: it finishes first.
        if !matches!(input, Input::Continue | Input::Drive { .. }) {
            while self.pending_drive.is_some() {
                self.continue_drive(now, &mut fx);
            }
        }
        match input {
            Input::Request(request) => fx.answer = Some(self.request(request, now, fresh_id, &mut fx)),
            Input::Ready(id) => {
                self.checking.remove(&id);
                let write = self.ready(&id);
                fx.persist(write);
            }
            Input::Subscribed { framework_id, master, region } => {
                if self.framework_id.as_deref() != Some(framework_id.as_str()) {
                    // Stored before anything is launched under it: a lost id would register a
                    // second framework at the next start and orphan this one's tasks.
                    fx.push(Effect::Store(StoreWrite {
                        puts: vec![(keys::FRAMEWORK_ID.to_owned(), framework_id.clone().into_bytes())],
                        ..StoreWrite::default()
                    }));
                }
                self.subscribed(framework_id, master, region, now);
            }
            Input::Disconnected => self.disconnected(now),
            Input::Offers(offers) => self.offers(offers, now, fresh_id, &mut fx),
            Input::Statuses { statuses, announce } => {
                self.reconciliation_answers(&statuses);
                let mut batch = self.plan_statuses(&statuses, now, announce);
                let write = InstanceWrite {
                    instances: batch.changed().cloned().collect(),
                    deletes: std::mem::take(&mut batch.deletes),
                    then: std::mem::take(&mut batch.acks),
                    otherwise: Vec::new(),
                };
                // Handed over before the batch is applied: what is applied is on its way to the
                // store, and the acknowledgements wait for it.
                fx.persist(Some(write));
                self.apply_statuses(batch, now);
            }
            Input::Message { agent, executor, data } => self.framework_message(&agent, &executor, &data, now),
            Input::Drive { full } => {
                while self.pending_drive.is_some() {
                    self.continue_drive(now, &mut fx);
                }
                self.begin(full, now, &mut fx);
                self.continue_drive(now, &mut fx);
            }
            Input::Continue => {
                if self.pending_drive.is_some() {
                    self.continue_drive(now, &mut fx);
                }
            }
        }
        fx.more = self.pending_drive.is_some();
        self.drain_outbox(&mut fx);
        fx
    }

    fn drain_outbox(&mut self, fx: &mut Effects) {
        let out = self.take_outbox();
        fx.effects.extend(out.notes.into_iter().map(Effect::Note));
        fx.effects.extend(out.calls.into_iter().map(|c| Effect::Call(Box::new(c))));
        fx.effects.extend(out.events.into_iter().map(Effect::Event));
    }

    fn request(&mut self, request: Request, now: Timestamp, fresh_id: &mut dyn FnMut() -> String, fx: &mut Effects) -> Answer {
        match request {
            Request::Deploy { change, force } => Answer::Deployed(self.deploy(change, force, now, fresh_id, fx)),
            Request::Group { op, force, dry_run } => Answer::Group(self.group(op, force, dry_run, now, fresh_id, fx)),
            Request::KillTasks { tasks } => Answer::Killed(self.tasks_to_kill(&tasks).inspect(|killed| {
                for instance in killed {
                    // The goal stays Running: the instance is replaced by a new task.
                    let write = self.kill(&instance.id, None, now);
                    fx.persist(write);
                }
            })),
            Request::CancelDeployment { id, force } => Answer::Cancelled(self.cancel(&id, force, now, fresh_id, fx)),
            Request::ResetDelay { app } => Answer::DelayReset(self.reset_delay(&app, now)),
        }
    }

    fn group(
        &mut self,
        op: GroupOp,
        force: bool,
        dry_run: bool,
        now: Timestamp,
        fresh_id: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) -> Result<GroupOutcome, Rejection> {
        let change = self.group_change(op)?;
        if dry_run {
            let (target, to_kill, groups, version) = self.target_of(change, now)?;
            return Ok(GroupOutcome::DryRun(self.prepare(&target, &to_kill, groups, version)?.steps));
        }
        self.deploy(change, force, now, fresh_id, fx).map(GroupOutcome::Deployed)
    }

    fn deploy(
        &mut self,
        change: Change,
        force: bool,
        now: Timestamp,
        fresh_id: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) -> Result<Deployed, Rejection> {
        let (target, to_kill, groups, version) = self.target_of(change, now)?;
        self.start(target, to_kill, groups, version, force, now, fresh_id, fx)
    }

    /// Plans a deployment, writes its records and starts it.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        target: BTreeMap<AppId, Option<AppDefinition>>,
        to_kill: BTreeMap<AppId, Vec<InstanceId>>,
        groups: (Vec<GroupNode>, Vec<PathId>),
        version: Timestamp,
        force: bool,
        now: Timestamp,
        fresh_id: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) -> Result<Deployed, Rejection> {
        let mut start = match self.plan_start(target, to_kill, groups, version, force, DeploymentId(fresh_id())) {
            Ok(start) => start,
            Err(refused) => {
                // As Marathon's group manager: a change refused for running deployments.
                if refused.status == 409 {
                    self.outbox.event(
                        "group_change_failed",
                        serde_json::json!({"groupId": "/", "version": version, "reason": refused.body["message"]}),
                        now,
                    );
                }
                return Err(refused);
            }
        };
        fx.push(Effect::Store(StoreWrite {
            puts: std::mem::take(&mut start.writes),
            deletes: std::mem::take(&mut start.removals),
            clears: std::mem::take(&mut start.clears),
            trims: std::mem::take(&mut start.trims),
            max_versions: self.config.max_versions,
        }));
        Ok(self.apply_start(start, now))
    }

    fn cancel(
        &mut self,
        id: &DeploymentId,
        force: bool,
        now: Timestamp,
        fresh_id: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) -> Result<Option<Deployed>, Rejection> {
        let Some(key) = self.deployment_key(id) else {
            return Err(Rejection::new(404, format!("DeploymentPlan {id} does not exist")));
        };
        if force {
            fx.push(Effect::Store(StoreWrite { deletes: vec![keys::deployment(id)], ..StoreWrite::default() }));
            self.stop_deployment(&key, now);
            return Ok(None);
        }
        let (target, version) = self.rollback_of(&key, now);
        self.start(target, BTreeMap::new(), (vec![], vec![]), version, true, now, fresh_id, fx).map(Some)
    }

    /// Matches offers; launches go out in chunks (the records a batch of offers holds stay
    /// bounded however many agents offer at once).
    fn offers(&mut self, offers: Vec<v1::Offer>, now: Timestamp, fresh_id: &mut dyn FnMut() -> String, fx: &mut Effects) {
        let mut round = self.begin_offers(offers.len(), now);
        for offer in offers {
            if round.pending() >= LAUNCH_CHUNK {
                let (accepted, created) = round.take_launches();
                let write = self.launch(accepted, created);
                fx.persist(write);
            }
            self.match_offer(&mut round, offer, fresh_id);
        }
        let (accepted, created) = round.take_launches();
        let write = self.launch(accepted, created);
        fx.persist(write);
        self.end_offers(round);
    }

    fn begin(&mut self, full: bool, now: Timestamp, fx: &mut Effects) {
        if full {
            let write = self.age_unreachable(now);
            fx.persist(Some(write));
        }
        let mut drive = self.begin_drive(full);
        let standalone = drive.take_standalone();
        self.pending_drive = Some(PendingDrive { drive, standalone, done: 0, orphans: full.then_some(None) });
    }

    /// One chunk of the drive under way: apps outside deployments, then (in a full pass) the
    /// orphan scan; with the last chunk, the drive's outcome.
    fn continue_drive(&mut self, now: Timestamp, fx: &mut Effects) {
        let Some(mut p) = self.pending_drive.take() else { return };
        if p.done < p.standalone.len() {
            let end = (p.done + DRIVE_CHUNK).min(p.standalone.len());
            self.drive_standalone(&mut p.drive, &p.standalone[p.done..end]);
            p.done = end;
            if p.done < p.standalone.len() || p.orphans.is_some() {
                self.pending_drive = Some(p);
                return;
            }
        } else if let Some(after) = p.orphans.take() {
            p.orphans = self.orphan_kills(&mut p.drive, after.as_ref(), ORPHAN_CHUNK).map(Some);
            if p.orphans.is_some() {
                self.pending_drive = Some(p);
                return;
            }
        }
        self.finish(p.drive, now, fx);
    }

    fn finish(&mut self, drive: super::Drive, now: Timestamp, fx: &mut Effects) {
        let apps: Vec<AppId> = if drive.full { self.deploying.keys().cloned().collect() } else { drive.dirty.iter().cloned().collect() };
        self.readiness_checks(&apps, fx);
        let full = drive.full;
        let outcome = self.finish_drive(drive, now);
        for (id, goal) in outcome.kills {
            let write = self.kill(&id, Some(goal), now);
            fx.persist(write);
        }
        let mut store = StoreWrite { puts: outcome.progress, ..StoreWrite::default() };
        for key in outcome.finished {
            store.deletes.push(keys::deployment(&key.1));
            self.finish_deployment(&key, now);
        }
        if !store.is_empty() {
            fx.push(Effect::Store(store));
        }
        self.update_demand(outcome.demand, full, now);
    }

    /// Stops the checks of instances that went away and starts the checks the given apps'
    /// instances want.
    fn readiness_checks(&mut self, apps: &[AppId], fx: &mut Effects) {
        let gone: Vec<InstanceId> = self.checking.iter().filter(|id| !self.instances.contains_key(*id)).cloned().collect();
        for id in gone {
            self.checking.remove(&id);
            fx.push(Effect::StopReadiness(id));
        }
        let wanted = self.readiness_wanted(apps.iter(), |id| self.checking.contains(id));
        for (app, instance) in wanted {
            if let Some(probe) = readiness::probe(&app, &instance) {
                self.checking.insert(instance.id.clone());
                fx.push(Effect::StartReadiness(probe));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mesos_proto::v1::TaskState;
    use mesos_proto::v1::scheduler::call;

    use super::*;
    use crate::scheduler::SchedulerConfig;

    fn scheduler() -> Scheduler {
        let mut s = Scheduler::new(SchedulerConfig::default(), vec![], vec![], vec![], vec![], Some("fw".into()));
        s.connected = true;
        s
    }

    fn app(id: &str, instances: u32) -> AppDefinition {
        let mut a = AppDefinition::new(PathId::parse(id).unwrap());
        a.cmd = Some("sleep 1000".into());
        a.instances = instances;
        a.port_definitions = Some(vec![]);
        a
    }

    fn step(s: &mut Scheduler, input: Input, now: i64) -> Effects {
        let mut n = 0;
        s.step(input, Timestamp(now), &mut || {
            n += 1;
            format!("id-{now}-{n}")
        })
    }

    fn stores(fx: &Effects) -> Vec<&StoreWrite> {
        fx.effects.iter().filter_map(|e| if let Effect::Store(w) = e { Some(w) } else { None }).collect()
    }

    #[test]
    fn a_deployment_is_stored_before_it_is_announced_and_a_refusal_stores_nothing() {
        let mut s = scheduler();
        let fx = step(&mut s, Input::Request(Request::Deploy { change: Change::put(vec![app("/web", 1)]), force: false }), 1_000);
        let Some(Answer::Deployed(Ok(d))) = &fx.answer else { panic!("{:?}", fx.answer) };
        assert_eq!(d.deployment_id, DeploymentId("id-1000-1".into()), "ids come from the caller");
        let store = fx.effects.iter().position(|e| matches!(e, Effect::Store(_))).unwrap();
        let first_event = fx.effects.iter().position(|e| matches!(e, Effect::Event(_))).unwrap();
        assert!(store < first_event, "the records are written before the deployment is announced");
        let keys: Vec<&str> = stores(&fx)[0].puts.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&keys::app(&PathId::parse("/web").unwrap()).as_str()), "{keys:?}");
        assert!(keys.contains(&keys::deployment(&d.deployment_id).as_str()), "{keys:?}");

        // A second change of the same app conflicts: 409, and nothing is written.
        let fx = step(&mut s, Input::Request(Request::Deploy { change: Change::put(vec![app("/web", 3)]), force: false }), 1_001);
        let Some(Answer::Deployed(Err(e))) = &fx.answer else { panic!("{:?}", fx.answer) };
        assert_eq!(e.status, 409);
        assert!(stores(&fx).is_empty(), "a refused change writes nothing");
        // A dry run plans without writing.
        let update =
            crate::app::parse_group(br#"{"apps": [{"id": "b", "cmd": "sleep 1", "portDefinitions": []}]}"#, &PathId::parse("/g").unwrap())
                .unwrap();
        let op = GroupOp::Update { update, create: false, rollback: false };
        let fx = step(&mut s, Input::Request(Request::Group { op, force: false, dry_run: true }), 1_002);
        assert!(matches!(&fx.answer, Some(Answer::Group(Ok(GroupOutcome::DryRun(steps)))) if !steps.is_empty()), "{:?}", fx.answer);
        assert!(stores(&fx).is_empty() && !s.apps.contains_key(&PathId::parse("/g/b").unwrap()));
    }

    #[test]
    fn acknowledgements_wait_for_the_records_of_their_updates() {
        let mut s = scheduler();
        let mut i = crate::state::instance("/web", "u1");
        i.condition = crate::instance::Condition::Provisioned;
        let task = i.task_id.clone();
        s.put_instance(i);
        let status = v1::TaskStatus {
            task_id: v1::TaskId { value: task.to_string() },
            state: TaskState::TaskRunning as i32,
            agent_id: Some(v1::AgentId { value: "agent-1".into() }),
            uuid: Some(vec![1]),
            ..Default::default()
        };
        let fx = step(&mut s, Input::Statuses { statuses: vec![status], announce: true }, 5);
        let mut persisted = fx.effects.iter().filter_map(|e| if let Effect::Persist(w) = e { Some(w) } else { None });
        let w = persisted.next().unwrap();
        assert_eq!(w.instances.len(), 1);
        assert_eq!(w.then.len(), 1, "the acknowledgement goes out once the record is written");
        assert_eq!(w.then[0].r#type(), call::Type::Acknowledge);
        assert!(
            !fx.effects.iter().any(|e| matches!(e, Effect::Call(c) if c.r#type() == call::Type::Acknowledge)),
            "no acknowledgement outside the write"
        );
        assert!(fx.effects.iter().any(|e| matches!(e, Effect::Event(ev) if ev.event_type == "status_update_event")));
    }

    #[test]
    fn a_new_framework_id_is_stored_first() {
        let mut s = Scheduler::new(SchedulerConfig::default(), vec![], vec![], vec![], vec![], None);
        let fx = step(&mut s, Input::Subscribed { framework_id: "fw-9".into(), master: "m".into(), region: None }, 1);
        let Some(Effect::Store(w)) = fx.effects.first() else { panic!("{:?}", fx.effects) };
        assert_eq!(w.puts, [(keys::FRAMEWORK_ID.to_owned(), b"fw-9".to_vec())]);
        // Subscribed again with the same id: nothing to store; every task is reconciled.
        let fx = step(&mut s, Input::Subscribed { framework_id: "fw-9".into(), master: "m".into(), region: None }, 2);
        assert!(stores(&fx).is_empty());
        assert!(fx.effects.iter().any(|e| matches!(e, Effect::Call(c) if c.r#type() == call::Type::Reconcile)));
    }

    #[test]
    fn a_full_drive_goes_in_chunks_and_nothing_overtakes_it() {
        let mut s = scheduler();
        for n in 0..(DRIVE_CHUNK * 2 + 1) {
            let a = std::sync::Arc::new(app(&format!("/a{n}"), 1));
            s.apps.insert(a.id.clone(), a);
        }
        let fx = step(&mut s, Input::Drive { full: true }, 10);
        assert!(fx.more, "the first chunk leaves more to do");
        let fx = step(&mut s, Input::Continue, 10);
        assert!(fx.more);
        // Another input finishes the drive under way first.
        let fx = step(&mut s, Input::Disconnected, 11);
        assert!(!fx.more);
        assert_eq!(s.demand.len(), DRIVE_CHUNK * 2 + 1, "every app was looked at: each wants its instance");
        assert!(fx.effects.iter().any(|e| matches!(e, Effect::Call(c) if c.r#type() == call::Type::Revive)), "the demand revives offers");
    }

    #[test]
    fn readiness_checks_start_once_and_stop_when_their_instance_goes() {
        let mut s = scheduler();
        let mut a = app("/web", 1);
        a.port_definitions = Some(vec![crate::app::PortDefinition { name: Some("http-api".into()), ..Default::default() }]);
        a.readiness_checks = vec![crate::app::ReadinessCheck::default()];
        step(&mut s, Input::Request(Request::Deploy { change: Change::put(vec![a]), force: false }), 1_000);
        let web = s.apps.get(&PathId::parse("/web").unwrap()).unwrap().clone();
        let mut i = crate::state::instance("/web", "u1");
        i.config_version = crate::spec::config_version(&web);
        i.ports = vec![31005];
        i.host = "h1".into();
        let id = i.id.clone();
        s.put_instance(i);
        let started = |fx: &Effects| -> Vec<Probe> {
            fx.effects.iter().filter_map(|e| if let Effect::StartReadiness(p) = e { Some(p.clone()) } else { None }).collect()
        };
        let fx = step(&mut s, Input::Drive { full: false }, 1_001);
        let probes = started(&fx);
        assert_eq!(probes.len(), 1, "{:?}", fx.effects);
        assert_eq!(probes[0].url, "http://h1:31005/");
        assert!(started(&step(&mut s, Input::Drive { full: true }, 1_002)).is_empty(), "a check runs once");
        s.remove_instance(&id);
        let fx = step(&mut s, Input::Drive { full: false }, 1_003);
        assert!(fx.effects.iter().any(|e| matches!(e, Effect::StopReadiness(gone) if *gone == id)), "{:?}", fx.effects);
    }
}
