//! A deterministic simulation of the scheduler's decisions against a simulated Mesos master and
//! agents, in plain code with a seeded random generator: API changes (create, scale, update,
//! restart, delete, forced changes), offers, status updates (duplicated, out of order, with and
//! without a uuid, failures), kills, reconciliation, clock jumps and leader changes (a new
//! `Scheduler` built from what was stored). The harness carries out the scheduler's effects in
//! the order the actor does (through `Scheduler::step`, records stored before the calls that wait
//! for them; a failed durable or instance write stops the scheduler) and checks the
//! invariants after every step; at the end of each scenario, once faults stop, every app runs
//! exactly its instances.
//!
//! `SIM_SCENARIOS` (default 10,000) sets how many seeds run; `SIM_SEED=n` runs one seed, as a
//! failure prints.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use framework_core::app::AppDefinition;
use framework_core::ids::{AppId, InstanceId, PathId, TaskId, Timestamp};
use framework_core::keys;
use framework_core::scheduler::step::{Answer, Effect, Input, Request, StoreWrite};
use framework_core::scheduler::{Change, GroupOp, InstanceWrite, Scheduler, SchedulerConfig};
use framework_core::state::{Deployment, Instance};
use framework_core::tree::GroupNode;
use mesos_proto::v1::scheduler::{Call, call};
use mesos_proto::v1::{self, TaskState};

/// xorshift64*: small, fast and enough to pick steps.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A task on a simulated agent.
#[derive(Debug, Clone)]
struct Task {
    agent: usize,
    state: TaskState,
    cpus: f64,
    mem: f64,
}

/// An update the master has for the scheduler (re-sent until acknowledged when it has a uuid).
#[derive(Debug, Clone)]
struct Pending {
    task: String,
    state: TaskState,
    uuid: Option<Vec<u8>>,
}

/// The simulated master and its agents.
#[derive(Default)]
struct Master {
    agents: Vec<(f64, f64)>,
    tasks: BTreeMap<String, Task>,
    updates: VecDeque<Pending>,
    next_uuid: u64,
    next_offer: u64,
    /// The next explicit reconciliation gets no answer, as from a master that failed over and
    /// whose agents have not re-registered yet.
    silent: bool,
}

impl Master {
    fn uuid(&mut self) -> Vec<u8> {
        self.next_uuid += 1;
        self.next_uuid.to_be_bytes().to_vec()
    }

    fn live(&self, task: &str) -> bool {
        self.tasks.get(task).is_some_and(|t| !is_terminal(t.state))
    }

    fn set_state(&mut self, task: &str, state: TaskState, reliable: bool) {
        let Some(t) = self.tasks.get_mut(task) else { return };
        if is_terminal(t.state) {
            return;
        }
        t.state = state;
        if is_terminal(state) {
            let (agent, cpus, mem) = (t.agent, t.cpus, t.mem);
            self.agents[agent].0 += cpus;
            self.agents[agent].1 += mem;
        }
        let uuid = reliable.then(|| self.uuid());
        self.updates.push_back(Pending { task: task.to_string(), state, uuid });
    }

    fn offers(&mut self) -> Vec<v1::Offer> {
        let scalar = |name: &str, value: f64| v1::Resource {
            name: name.into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value }),
            ..Default::default()
        };
        let mut out = Vec::new();
        for (i, (cpus, mem)) in self.agents.iter().enumerate() {
            if *cpus < 0.01 || *mem < 1.0 {
                continue;
            }
            self.next_offer += 1;
            out.push(v1::Offer {
                id: v1::OfferId { value: format!("o{}", self.next_offer) },
                framework_id: v1::FrameworkId { value: "fw".into() },
                agent_id: v1::AgentId { value: format!("agent-{i}") },
                hostname: format!("host-{i}"),
                resources: vec![scalar("cpus", *cpus), scalar("mem", *mem)],
                ..Default::default()
            });
        }
        out
    }

    /// Carries out a call the scheduler posts.
    fn call(&mut self, c: &Call, store: &Store) {
        match c.r#type() {
            call::Type::Accept => {
                let Some(accept) = &c.accept else { return };
                for op in &accept.operations {
                    for t in op.launch.iter().flat_map(|l| &l.task_infos) {
                        let idx: usize = t.agent_id.value.trim_start_matches("agent-").parse().unwrap_or(0);
                        let cpus = resource(&t.resources, "cpus");
                        let mem = resource(&t.resources, "mem");
                        assert!(!self.tasks.contains_key(&t.task_id.value), "task {} launched twice", t.task_id.value);
                        // What ACCEPT launches must have been stored first.
                        let instance = framework_core::ids::TaskId::parse(&t.task_id.value).ok().and_then(|id| id.instance_id());
                        assert!(
                            instance.is_some_and(|i| store.instances.contains_key(&keys::instance(&i))),
                            "ACCEPT of {} before its record was stored",
                            t.task_id.value
                        );
                        let free = &mut self.agents[idx];
                        assert!(free.0 + 1e-9 >= cpus && free.1 + 1e-9 >= mem, "launch beyond the offer on agent {idx}");
                        free.0 -= cpus;
                        free.1 -= mem;
                        self.tasks.insert(t.task_id.value.clone(), Task { agent: idx, state: TaskState::TaskStaging, cpus, mem });
                        self.set_state(&t.task_id.value, TaskState::TaskRunning, true);
                    }
                }
            }
            call::Type::Kill => {
                let Some(k) = &c.kill else { return };
                if self.live(&k.task_id.value) {
                    self.set_state(&k.task_id.value.clone(), TaskState::TaskKilled, true);
                }
            }
            call::Type::Reconcile => {
                let Some(r) = &c.reconcile else { return };
                if std::mem::take(&mut self.silent) && !r.tasks.is_empty() {
                    return;
                }
                let named: Vec<String> = if r.tasks.is_empty() {
                    self.tasks.iter().filter(|(_, t)| !is_terminal(t.state)).map(|(id, _)| id.clone()).collect()
                } else {
                    r.tasks.iter().map(|t| t.task_id.value.clone()).collect()
                };
                for task in named {
                    let state = self.tasks.get(&task).map_or(TaskState::TaskUnknown, |t| t.state);
                    self.updates.push_back(Pending { task, state, uuid: None });
                }
            }
            call::Type::Acknowledge => {
                let Some(a) = &c.acknowledge else { return };
                let task = &a.task_id.value;
                // A terminal update is acknowledged only once its task's record is gone (or says
                // so): acknowledged first, a crash would lose the terminal state for good.
                let acked = self.updates.iter().find(|u| u.uuid.as_deref() == Some(&a.uuid[..]) && &u.task == task).map(|u| u.state);
                let instance = framework_core::ids::TaskId::parse(task).ok().and_then(|id| id.instance_id());
                if let (Some(state), Some(id)) = (acked, instance)
                    && is_terminal(state)
                    && let Some(i) = store.instances.get(&keys::instance(&id))
                {
                    assert!(
                        i.task_id.as_str() != task || i.condition.is_terminal(),
                        "{task} acknowledged as {state:?} while its stored record says {:?}",
                        i.condition
                    );
                }
                self.updates.retain(|u| u.uuid.as_deref() != Some(&a.uuid[..]) || &u.task != task);
            }
            _ => {}
        }
    }
}

fn resource(resources: &[v1::Resource], name: &str) -> f64 {
    resources.iter().filter(|r| r.name == name).filter_map(|r| r.scalar.as_ref()).map(|s| s.value).sum()
}

fn is_terminal(s: TaskState) -> bool {
    matches!(
        s,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
            | TaskState::TaskUnknown
    )
}

/// What the scheduler stored: durable keys and instance records.
#[derive(Default, Clone)]
struct Store {
    keys: BTreeMap<String, Vec<u8>>,
    instances: BTreeMap<String, Instance>,
}

impl Store {
    fn write_instances(&mut self, w: &InstanceWrite) {
        for i in &w.instances {
            self.instances.insert(keys::instance(&i.id), i.clone());
        }
        for k in &w.deletes {
            self.instances.remove(k);
        }
    }

    /// A durable write: keys put, removed, folders cleared and trimmed.
    fn write(&mut self, w: &StoreWrite) {
        for (k, v) in &w.puts {
            self.keys.insert(k.clone(), v.clone());
        }
        let mut removals = w.deletes.clone();
        let under = |folder: &str| -> Vec<String> {
            let prefix = format!("{folder}/");
            self.keys.keys().filter(|k| k.starts_with(&prefix)).cloned().collect()
        };
        for folder in &w.clears {
            removals.extend(under(folder));
        }
        for (folder, new) in &w.trims {
            removals.extend(w.beyond_max(under(folder), new.clone()));
        }
        for k in removals {
            self.keys.remove(&k);
        }
    }

    fn load(&self, config: SchedulerConfig) -> Scheduler {
        let under = |prefix: &'static str| self.keys.iter().filter(move |(k, _)| k.starts_with(prefix)).map(|(_, v)| v);
        let apps: Vec<AppDefinition> = under("apps/").map(|v| serde_json::from_slice(v).expect("stored app")).collect();
        let groups: Vec<GroupNode> = under("groups/").map(|v| serde_json::from_slice(v).expect("stored group")).collect();
        let mut deployments: Vec<Deployment> =
            under("deployments/").map(|v| serde_json::from_slice(v).expect("stored deployment")).collect();
        deployments.sort_by_key(|d| d.version);
        Scheduler::new(config, apps, groups, self.instances.values().cloned().collect(), deployments, Some("fw".into()))
    }
}

fn config() -> SchedulerConfig {
    SchedulerConfig::default()
}

struct Sim {
    rng: Rng,
    s: Scheduler,
    master: Master,
    store: Store,
    now: Timestamp,
    log: Vec<String>,
    /// The instance writer's queue: records stored later, then the calls waiting for them (a
    /// failed write sends the fallback calls instead).
    writer: VecDeque<InstanceWrite>,
    /// Whether durable writes may fail.
    faults: bool,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut master = Master::default();
        let mut rng = Rng::new(seed);
        let agents = 1 + rng.below(3) as usize;
        master.agents = (0..agents).map(|_| (8.0, 8192.0)).collect();
        let mut s = Scheduler::new(config(), vec![], vec![], vec![], vec![], Some("fw".into()));
        s.connected = true;
        Self { rng, s, master, store: Store::default(), now: Timestamp(1_000_000), log: Vec::new(), writer: VecDeque::new(), faults: true }
    }

    fn tick(&mut self, ms: i64) {
        self.now = Timestamp(self.now.0 + ms);
    }

    /// Steps the scheduler and carries out its effects as the actor does: in order, durable
    /// writes at once, instance records handed to the writer, a drive under way continued. A
    /// failed durable write stops the scheduler (a new leader loads the store); then nothing
    /// after it is carried out and there is no answer.
    fn input(&mut self, input: Input) -> Option<Answer> {
        let mut input = input;
        loop {
            let now = self.now;
            let rng = &mut self.rng;
            let fx = self.s.step(input, now, &mut || format!("{:016x}", rng.next()));
            for effect in fx.effects {
                match effect {
                    Effect::Store(w) => {
                        if self.faults && self.rng.chance(1) {
                            self.log.push("a durable write failed".into());
                            self.leader_change();
                            return None;
                        }
                        self.store.write(&w);
                    }
                    Effect::Persist(w) => self.writer.push_back(w),
                    Effect::Call(c) => {
                        self.master.silent = self.faults && self.rng.chance(20);
                        self.master.call(&c, &self.store)
                    }
                    Effect::Event(_) | Effect::Note(_) | Effect::StartReadiness(_) | Effect::StopReadiness(_) => {}
                }
            }
            if !fx.more {
                return fx.answer;
            }
            input = Input::Continue;
        }
    }

    /// The writer stores some queued records and posts what waited for them. A failed write
    /// stops the scheduler, as the actor's writer does: a new one starts from the store.
    fn write(&mut self) {
        let n = 1 + self.rng.below(3) as usize;
        for _ in 0..n {
            let Some(w) = self.writer.pop_front() else { return };
            let ok = !(self.faults && self.rng.chance(3));
            if ok {
                self.store.write_instances(&w);
            }
            for c in if ok { &w.then } else { &w.otherwise } {
                self.master.call(c, &self.store);
            }
            if !ok {
                self.log.push("a write failed".into());
                self.leader_change();
                return;
            }
        }
    }

    fn app(&mut self) -> AppId {
        PathId::parse(&format!("/g{}/a{}", self.rng.below(2), self.rng.below(3))).expect("id")
    }

    fn request(&mut self, request: Request) -> Option<Answer> {
        self.input(Input::Request(request))
    }

    fn change(&mut self, change: Change, force: bool) {
        self.request(Request::Deploy { change, force });
    }

    /// A group body for `/g0` or `/g1`: apps given or not, subgroups given or not.
    fn group_body(&mut self) -> (PathId, serde_json::Value) {
        let gid = PathId::parse(&format!("/g{}", self.rng.below(2))).expect("id");
        let mut body = serde_json::json!({});
        if self.rng.chance(60) {
            let n = self.rng.below(3);
            let apps: Vec<serde_json::Value> = (0..n)
                .map(|i| {
                    serde_json::json!({"id": format!("a{}", (i + self.rng.below(3)) % 3), "cmd": format!("sleep {}", 1000 + self.rng.below(3)),
                        "instances": self.rng.below(4), "cpus": 0.25, "mem": 64, "portDefinitions": []})
                })
                .collect();
            body["apps"] = serde_json::json!(apps);
        }
        if self.rng.chance(30) {
            body["groups"] = serde_json::json!([]);
        }
        (gid, body)
    }

    fn api(&mut self) {
        let id = self.app();
        let force = self.rng.chance(30);
        match self.rng.below(10) {
            5 | 6 => {
                let (gid, body) = self.group_body();
                let Ok(update) = framework_core::app::parse_group(body.to_string().as_bytes(), &gid) else { return };
                let dry_run = self.rng.chance(10);
                self.log.push(format!("group {gid} {body}{}", if dry_run { " (dry run)" } else { "" }));
                self.request(Request::Group { op: GroupOp::Update { update, create: false, rollback: false }, force, dry_run });
            }
            7 => {
                let group = PathId::parse(&format!("/g{}", self.rng.below(2))).expect("id");
                let op = if self.rng.chance(50) {
                    let factor = [0.0, 0.5, 2.0][self.rng.below(3) as usize];
                    self.log.push(format!("scaleBy {group} {factor}"));
                    GroupOp::ScaleBy { group, factor }
                } else {
                    self.log.push(format!("delete group {group}"));
                    GroupOp::Delete { group }
                };
                self.request(Request::Group { op, force, dry_run: false });
            }
            8 => {
                let ids: Vec<_> = self.s.deployments.keys().map(|k| k.1.clone()).collect();
                if ids.is_empty() {
                    return;
                }
                let id = ids[self.rng.below(ids.len() as u64) as usize].clone();
                self.log.push(format!("{} deployment {id}", if force { "stop" } else { "roll back" }));
                self.request(Request::CancelDeployment { id, force });
            }
            9 => {
                // Kill (and so replace) a task, or reset an app's backoff.
                let tasks: Vec<TaskId> = self.s.instances.values().map(|i| i.task_id.clone()).collect();
                if tasks.is_empty() || self.rng.chance(30) {
                    self.log.push(format!("reset delay of {id}"));
                    self.request(Request::ResetDelay { app: id });
                    return;
                }
                let task = tasks[self.rng.below(tasks.len() as u64) as usize].clone();
                self.log.push(format!("kill task {task}"));
                self.request(Request::KillTasks { tasks: vec![task] });
            }
            0 | 1 => {
                let mut a = AppDefinition::new(id.clone());
                a.cmd = Some(format!("sleep {}", 1000 + self.rng.below(3)));
                a.instances = self.rng.below(4) as u32;
                a.cpus = 0.25;
                a.mem = 64.0;
                a.port_definitions = Some(vec![]);
                self.log.push(format!("put {id} x{} ({:?})", a.instances, a.cmd));
                self.change(Change::put(vec![a]), force);
            }
            2 => {
                if let Some(a) = self.s.apps.get(&id) {
                    let mut a = (**a).clone();
                    a.instances = self.rng.below(4) as u32;
                    self.log.push(format!("scale {id} to {}", a.instances));
                    self.change(Change::put(vec![a]), force);
                }
            }
            3 => {
                if self.s.apps.contains_key(&id) {
                    self.log.push(format!("restart {id}"));
                    self.change(Change { restart: vec![id], ..Change::default() }, force);
                }
            }
            _ => {
                if self.s.apps.contains_key(&id) {
                    self.log.push(format!("delete {id}"));
                    self.change(Change { delete: vec![id], ..Change::default() }, true);
                }
            }
        }
    }

    fn offers(&mut self) {
        let offers = self.master.offers();
        self.input(Input::Offers(offers));
    }

    /// Delivers some of the master's updates: in order, reordered or duplicated.
    fn updates(&mut self) {
        let faults = self.faults;
        let n = 1 + self.rng.below(6) as usize;
        let mut batch = Vec::new();
        for _ in 0..n {
            let Some(u) = self.master.updates.pop_front() else { break };
            if faults && self.rng.chance(10) && u.uuid.is_some() {
                // Delivered twice (a retry the scheduler sees again).
                batch.push(u.clone());
            }
            if u.uuid.is_some() {
                // Re-sent until acknowledged.
                self.master.updates.push_back(u.clone());
            }
            batch.push(u);
        }
        if faults && self.rng.chance(20) {
            batch.reverse();
        }
        let statuses: Vec<v1::TaskStatus> = batch
            .iter()
            .map(|u| v1::TaskStatus {
                task_id: v1::TaskId { value: u.task.clone() },
                state: u.state as i32,
                agent_id: self.master.tasks.get(&u.task).map(|t| v1::AgentId { value: format!("agent-{}", t.agent) }),
                uuid: u.uuid.clone(),
                ..Default::default()
            })
            .collect();
        let announce = self.rng.chance(50);
        self.input(Input::Statuses { statuses, announce });
    }

    fn drive(&mut self, full: bool) {
        self.input(Input::Drive { full });
    }

    fn fail_a_task(&mut self) {
        let live: Vec<String> = self.master.tasks.iter().filter(|(_, t)| !is_terminal(t.state)).map(|(id, _)| id.clone()).collect();
        if live.is_empty() {
            return;
        }
        let task = live[self.rng.below(live.len() as u64) as usize].clone();
        let state = [TaskState::TaskFailed, TaskState::TaskFinished, TaskState::TaskLost][self.rng.below(3) as usize];
        self.log.push(format!("{task} -> {state:?}"));
        self.master.set_state(&task, state, true);
    }

    /// A new leader: the state as stored, then reconciliation.
    fn leader_change(&mut self) {
        self.log.push("leader change".into());
        // What the old leader had not written yet is lost with it.
        self.writer.clear();
        self.s = self.store.load(config());
        self.input(Input::Subscribed { framework_id: "fw".into(), master: "master".into(), region: None });
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=14 => self.api(),
            15..=34 => self.offers(),
            35..=54 => self.updates(),
            55..=64 => self.write(),
            65..=84 => {
                let full = self.rng.chance(30);
                self.drive(full);
            }
            85..=89 => self.fail_a_task(),
            90..=92 => self.leader_change(),
            _ => {
                let ms = 1_000 + self.rng.below(40_000) as i64;
                self.tick(ms);
            }
        }
        self.tick(100);
        self.check();
    }

    /// Invariants that hold after every step.
    fn check(&self) {
        // One live task per instance, and never an instance the scheduler runs twice.
        let mut live_by_instance: BTreeMap<InstanceId, usize> = BTreeMap::new();
        for (task, t) in &self.master.tasks {
            if is_terminal(t.state) {
                continue;
            }
            let id = framework_core::ids::TaskId::parse(task).ok().and_then(|id| id.instance_id()).expect("our task ids");
            *live_by_instance.entry(id).or_default() += 1;
        }
        for (id, n) in &live_by_instance {
            assert!(*n <= 1, "{n} live tasks for instance {id}");
        }
        // Every instance the scheduler holds is stored or on its way to the store.
        let queued: BTreeSet<String> = self.writer.iter().flat_map(|w| w.instances.iter().map(|i| keys::instance(&i.id))).collect();
        for i in self.s.instances.values() {
            let key = keys::instance(&i.id);
            assert!(self.store.instances.contains_key(&key) || queued.contains(&key), "instance {} held but never stored", i.id);
        }
    }

    /// Without faults, offers, updates and drives until nothing changes; then every app runs
    /// exactly its instances and no task runs that the scheduler does not know.
    fn settle(&mut self) {
        // Kills and launches that went missing are repaired by the clocks and reconciliation.
        self.faults = false;
        self.tick(400_000);
        // Reconciliation as after a reconnection.
        self.input(Input::Subscribed { framework_id: "fw".into(), master: "master".into(), region: None });
        for _ in 0..60 {
            self.offers();
            for _ in 0..200 {
                self.write();
                if self.master.updates.is_empty() && self.writer.is_empty() {
                    break;
                }
                self.updates();
            }
            self.drive(true);
            self.tick(6_000);
        }
        for (id, app) in self.s.apps.iter() {
            let live = self
                .master
                .tasks
                .iter()
                .filter(|(task, t)| !is_terminal(t.state) && task.starts_with(&format!("{}.", id.safe_name())))
                .count();
            assert_eq!(live as u32, app.instances, "{id} runs {live} tasks, wants {}", app.instances);
        }
        assert!(self.s.deployments.is_empty(), "deployments left: {:?}", self.s.deployments.keys().collect::<Vec<_>>());
        assert_eq!(self.s.reconciliation.pending(), 0, "a reconciliation round never ended although the master answers again");
        let known: BTreeSet<String> = self.s.instances.values().map(|i| i.task_id.to_string()).collect();
        for (task, t) in &self.master.tasks {
            if !is_terminal(t.state) {
                assert!(known.contains(task), "{task} runs but the scheduler does not know it");
            }
        }
    }
}

fn run(seed: u64, steps: usize) {
    let mut sim = Sim::new(seed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..steps {
            sim.step();
        }
        sim.settle();
    }));
    if let Err(e) = result {
        let tail: Vec<&String> = sim.log.iter().rev().take(15).collect();
        panic!(
            "seed {seed} failed: {}\nlast steps (newest first): {tail:#?}\nreproduce: SIM_SEED={seed} cargo test -p framework-core --test simulation",
            e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        );
    }
}

#[test]
fn seeded_scenarios_keep_the_invariants() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        run(seed, 120);
        return;
    }
    let scenarios: u64 = std::env::var("SIM_SCENARIOS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    for seed in 0..scenarios {
        run(seed, 120);
    }
}
