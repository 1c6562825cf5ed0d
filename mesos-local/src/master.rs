//! The master: one actor owning frameworks, agents, offers and tasks, fed by the scheduler API
//! shell and by the agents over channels. It follows Mesos's master semantics for the v1
//! scheduler API (see the project's mesos-v1-api notes): offers, filters, launch validation,
//! status update forwarding, reconciliation, failover and teardown.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mesos_proto::v1::scheduler::{Call, Event, call, event};
use mesos_proto::v1::{
    self, AgentId, AgentInfo, FrameworkId, MasterInfo, Offer, OfferId, TaskInfo, TaskState, TaskStatus,
    framework_info::capability::Type as Capability, task_status::Reason,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::protocol::{
    AgentCmd, AgentEvent, ApiError, Fault, IdValue, MasterMsg, Subscription, error_event, is_terminal, master_status, now_secs,
    update_event, validate_id,
};
use crate::resources::Resources;

/// Events buffered per subscription before the framework counts as too slow and is disconnected.
/// Mesos itself buffers without a limit; this bound only guards against a subscriber that stopped
/// reading. It is large because a scheduler launching at scale legitimately lags by a burst: a
/// scheduler that launches 200,000 tasks in two allocations has as many status updates queued
/// (the channel allocates as it fills, not up front).
const EVENT_BUFFER: usize = 4 * 1024 * 1024;
/// Completed tasks kept per framework for `/master/state`.
const COMPLETED_TASKS_KEPT: usize = 1000;
/// Smallest leftover worth offering (Mesos's minimum allocatable resources).
const MIN_OFFER_CPUS: f64 = 0.01;
const MIN_OFFER_MEM: f64 = 32.0;

/// Master settings.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// The master's id (also the prefix of agent and offer ids).
    pub id: String,
    /// Advertised address.
    pub info: MasterInfo,
    /// Interval between HEARTBEAT events.
    pub heartbeat_interval: Duration,
    /// How long an offer stays valid; `None` keeps offers until used or declined.
    pub offer_timeout: Option<Duration>,
    /// How often unused resources are offered.
    pub allocation_interval: Duration,
    /// How long after a master failover an agent may take to re-register before it is marked
    /// unreachable (Mesos's `--agent_reregister_timeout`, default 10 minutes).
    pub agent_reregister_timeout: Duration,
}

/// The master's view of one agent.
struct AgentRec {
    info: AgentInfo,
    total: Resources,
    /// Resources of tasks and executors on the agent.
    allocated: Resources,
    /// Resources in outstanding offers.
    offered: Resources,
    state: AgentState,
    link: mpsc::UnboundedSender<AgentCmd>,
    /// Tasks on the agent the master lost in a failover (framework id, task): known again
    /// when the agent re-registers with them.
    forgotten: Vec<(String, TaskRec)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AgentState {
    Active,
    /// Known from the registry after a master failover but not re-registered yet: the master
    /// knows none of its tasks and does not answer reconciliation for them (Mesos's
    /// `slaves.recovered`). It re-registers at `reregister_at` (never if `None`) and is marked
    /// unreachable at `deadline`.
    Recovered {
        reregister_at: Option<Instant>,
        deadline: Instant,
    },
    /// Cut off since this many seconds after the epoch.
    Unreachable(f64),
    Gone,
}

struct Conn {
    stream_id: String,
    tx: mpsc::Sender<Event>,
}

struct FrameworkRec {
    info: v1::FrameworkInfo,
    conn: Option<Conn>,
    /// When the failover timeout of a disconnected framework ends.
    failover_deadline: Option<Instant>,
    next_heartbeat: Instant,
    suppressed: bool,
    /// Offer filters: agent id → refused until.
    filters: HashMap<String, Instant>,
    tasks: BTreeMap<String, TaskRec>,
    completed: VecDeque<TaskRec>,
    /// Executors running per (agent id, executor id), with the resources they hold.
    executors: HashMap<(String, String), Resources>,
}

impl FrameworkRec {
    fn has(&self, cap: Capability) -> bool {
        self.info.capabilities.iter().any(|c| c.r#type() == cap)
    }
    fn partition_aware(&self) -> bool {
        self.has(Capability::PartitionAware)
    }
    fn allocation_role(&self) -> Option<String> {
        self.has(Capability::MultiRole).then(|| self.info.roles.first().cloned().unwrap_or_else(|| "*".to_owned()))
    }
}

#[derive(Clone)]
struct TaskRec {
    info: TaskInfo,
    agent_id: String,
    resources: Resources,
    status: TaskStatus,
    statuses: Vec<(TaskState, f64)>,
    /// Whether the resources went back to the agent (on the terminal update).
    released: bool,
}

impl TaskRec {
    fn state(&self) -> TaskState {
        self.status.state()
    }
}

struct OfferRec {
    framework_id: String,
    agent_id: String,
    resources: Resources,
    expires: Option<Instant>,
}

/// The master actor's state.
pub struct Master {
    config: MasterConfig,
    frameworks: HashMap<String, FrameworkRec>,
    /// Frameworks torn down or timed out: their ids can never subscribe again.
    removed_frameworks: HashSet<String>,
    agents: BTreeMap<String, AgentRec>,
    offers: HashMap<String, OfferRec>,
    next_offer: u64,
    next_framework: u64,
    round_robin: usize,
    start_time: f64,
    /// Set while a simulated restart lasts: the scheduler API answers 503 until then.
    recovering_until: Option<Instant>,
    /// Calls whose next answer is held back this long (see [`Fault::StallAnswer`]).
    stalls: Vec<(call::Type, Duration)>,
}

impl Master {
    /// A master with no agents yet.
    pub fn new(config: MasterConfig) -> Self {
        Self {
            config,
            frameworks: HashMap::new(),
            removed_frameworks: HashSet::new(),
            agents: BTreeMap::new(),
            offers: HashMap::new(),
            next_offer: 0,
            next_framework: 0,
            round_robin: 0,
            start_time: now_secs(),
            recovering_until: None,
            stalls: Vec::new(),
        }
    }

    /// Registers an agent with its total resources and command link.
    pub fn add_agent(&mut self, info: AgentInfo, link: mpsc::UnboundedSender<AgentCmd>) {
        let total = Resources::from_proto(&info.resources).unwrap_or_default();
        let id = info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default();
        self.agents.insert(
            id,
            AgentRec {
                info,
                total,
                allocated: Resources::default(),
                offered: Resources::default(),
                state: AgentState::Active,
                link,
                forgotten: Vec::new(),
            },
        );
    }

    /// Runs the actor until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<MasterMsg>) {
        let mut tick = tokio::time::interval(self.config.allocation_interval.min(Duration::from_millis(250)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_allocation = Instant::now();
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                _ = tick.tick() => {
                    self.timers();
                    if last_allocation.elapsed() >= self.config.allocation_interval {
                        self.allocate();
                        last_allocation = Instant::now();
                    }
                }
            }
        }
    }

    fn handle(&mut self, msg: MasterMsg) {
        match msg {
            MasterMsg::Subscribe { call, reply } => {
                if self.recovering() {
                    let _ = reply.send(Err(ApiError::unavailable("Master has not finished recovery")));
                    return;
                }
                let result = self.subscribe(*call);
                let _ = reply.send(result);
                self.allocate();
            }
            MasterMsg::Call { call, stream_id, reply } => {
                if self.recovering() {
                    let _ = reply.send(Err(ApiError::unavailable("Master has not finished recovery")));
                    return;
                }
                let kind = call.r#type();
                let result = self.call(*call, stream_id);
                // A stalled answer (Fault::StallAnswer): the call is carried out, its answer
                // comes late, as from an overloaded master or a slow network.
                match self.stalls.iter().position(|(k, _)| *k == kind) {
                    Some(i) => {
                        let (_, delay) = self.stalls.remove(i);
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = reply.send(result);
                        });
                    }
                    None => {
                        let _ = reply.send(result);
                    }
                }
            }
            MasterMsg::StreamClosed { framework_id, stream_id } => self.stream_closed(&framework_id, &stream_id),
            MasterMsg::FromAgent { agent_id, event } => self.on_agent_event(&agent_id, event),
            MasterMsg::State(reply) => {
                let _ = reply.send(self.state_json());
            }
            MasterMsg::Fault(fault, reply) => {
                let _ = reply.send(self.fault(fault));
            }
        }
    }

    // ---- Subscription -----------------------------------------------------------------------

    fn subscribe(&mut self, call: Call) -> Result<Subscription, ApiError> {
        let sub = call
            .subscribe
            .ok_or_else(|| ApiError::bad_request("Failed to validate scheduler::Call: Expecting 'subscribe' to be present"))?;
        let mut info = sub.framework_info;
        let call_fid = call.framework_id.as_ref().map(|f| f.value.clone());
        let info_fid = info.id.as_ref().map(|f| f.value.clone());
        if call_fid != info_fid {
            return Err(ApiError::bad_request(
                "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'",
            ));
        }
        let (tx, events) = mpsc::channel(EVENT_BUFFER);
        let stream_id = uuid::Uuid::new_v4().to_string();
        let refuse = |tx: &mpsc::Sender<Event>, message: String| {
            // Validation failures are reported as an ERROR event on the stream, which then closes.
            let _ = tx.try_send(error_event(message));
        };
        if let Err(message) = validate_framework_info(&info) {
            refuse(&tx, message);
            return Ok(Subscription { stream_id, events });
        }
        let framework_id = match info_fid {
            Some(id) if self.removed_frameworks.contains(&id) => {
                refuse(&tx, "Framework has been removed".to_owned());
                return Ok(Subscription { stream_id, events });
            }
            // Mesos checks the failover timeout after the removal (master.cpp, `subscribe`): it
            // must be a Duration, whose nanoseconds fit in an int64.
            _ if !valid_failover_timeout(info.failover_timeout.unwrap_or(0.0)) => {
                let given = cpp_double(info.failover_timeout.unwrap_or(0.0));
                refuse(&tx, format!("The framework failover_timeout ({given}) is invalid"));
                return Ok(Subscription { stream_id, events });
            }
            Some(id) => id,
            None => {
                self.next_framework += 1;
                format!("{}-{:04}", self.config.id, self.next_framework - 1)
            }
        };
        info.id = Some(FrameworkId { value: framework_id.clone() });
        let heartbeat = self.config.heartbeat_interval;
        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: framework_id.clone() },
                heartbeat_interval_seconds: Some(heartbeat.as_secs_f64()),
                master_info: Some(self.config.info.clone()),
            }),
            ..Default::default()
        };
        let _ = tx.try_send(subscribed);
        // As Mesos's heartbeater, which beats once as it starts: the first HEARTBEAT follows
        // SUBSCRIBED at once, before any offer (a differential check against the real master).
        let _ = tx.try_send(Event { r#type: Some(event::Type::Heartbeat as i32), ..Default::default() });
        let conn = Conn { stream_id: stream_id.clone(), tx };
        match self.frameworks.get_mut(&framework_id) {
            Some(fw) => {
                // Failover: the newer subscription wins; the old stream gets an ERROR.
                if let Some(old) = fw.conn.take() {
                    let _ = old.tx.try_send(error_event("Framework failed over"));
                }
                // Immutable fields stay as first registered.
                info.user = fw.info.user.clone();
                info.checkpoint = fw.info.checkpoint;
                fw.info = info;
                fw.conn = Some(conn);
                fw.failover_deadline = None;
                fw.suppressed = sub.suppressed_roles.iter().any(|r| fw.info.roles.contains(r) || r == "*");
                fw.next_heartbeat = Instant::now() + heartbeat;
                // Outstanding offers are discarded without RESCIND and offered again.
                self.discard_offers_of(&framework_id);
                tracing::info!(framework = %framework_id, "framework re-subscribed");
            }
            None => {
                let suppressed = !sub.suppressed_roles.is_empty()
                    && (info.roles.is_empty() && sub.suppressed_roles.iter().any(|r| Some(r) == info.role.as_ref())
                        || info.roles.iter().all(|r| sub.suppressed_roles.contains(r)));
                self.frameworks.insert(
                    framework_id.clone(),
                    FrameworkRec {
                        info,
                        conn: Some(conn),
                        failover_deadline: None,
                        next_heartbeat: Instant::now() + heartbeat,
                        suppressed,
                        filters: HashMap::new(),
                        tasks: BTreeMap::new(),
                        completed: VecDeque::new(),
                        executors: HashMap::new(),
                    },
                );
                tracing::info!(framework = %framework_id, "framework subscribed");
            }
        }
        Ok(Subscription { stream_id, events })
    }

    fn stream_closed(&mut self, framework_id: &str, stream_id: &str) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else { return };
        if fw.conn.as_ref().is_none_or(|c| c.stream_id != stream_id) {
            return;
        }
        self.disconnect(framework_id);
    }

    fn disconnect(&mut self, framework_id: &str) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else { return };
        fw.conn = None;
        let timeout = fw.info.failover_timeout.unwrap_or(0.0).clamp(0.0, 1.0e9);
        tracing::info!(framework = %framework_id, failover_timeout = timeout, "framework disconnected");
        self.discard_offers_of(framework_id);
        if timeout <= 0.0 {
            self.remove_framework(framework_id);
        } else if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.failover_deadline = Some(Instant::now() + Duration::from_secs_f64(timeout));
        }
    }

    fn remove_framework(&mut self, framework_id: &str) {
        let Some(fw) = self.frameworks.remove(framework_id) else { return };
        tracing::info!(framework = %framework_id, "removing framework and killing its tasks");
        if let Some(conn) = fw.conn {
            drop(conn.tx);
        }
        self.discard_offers_of(framework_id);
        for task in fw.tasks.values() {
            if !task.released
                && let Some(agent) = self.agents.get_mut(&task.agent_id)
            {
                agent.allocated.subtract(&task.resources);
            }
        }
        for ((agent_id, _), res) in &fw.executors {
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.allocated.subtract(res);
            }
        }
        for agent in self.agents.values() {
            let _ = agent.link.send(AgentCmd::ShutdownFramework { framework_id: framework_id.to_owned() });
        }
        self.removed_frameworks.insert(framework_id.to_owned());
    }

    // ---- Calls ------------------------------------------------------------------------------

    fn call(&mut self, call: Call, stream_id: Option<String>) -> Result<(), ApiError> {
        let fid = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .ok_or_else(|| ApiError::bad_request("Failed to validate scheduler::Call: Expecting 'framework_id' to be present"))?;
        let Some(fw) = self.frameworks.get(&fid) else {
            return Err(ApiError::bad_request("Framework cannot be found"));
        };
        let Some(conn) = &fw.conn else {
            return Err(ApiError::forbidden("Framework is not subscribed"));
        };
        match stream_id {
            None => return Err(ApiError::bad_request("All non-subscribe calls should include the 'Mesos-Stream-Id' header")),
            Some(s) if s != conn.stream_id => {
                return Err(ApiError::bad_request(format!(
                    "The stream ID '{s}' included in this request didn't match the stream ID currently associated with framework ID {fid}"
                )));
            }
            Some(_) => {}
        }
        let missing = |what: &str| ApiError::bad_request(format!("Failed to validate scheduler::Call: Expecting '{what}' to be present"));
        match call.r#type() {
            call::Type::Unknown => {
                return Err(ApiError { status: axum::http::StatusCode::NOT_IMPLEMENTED, message: "Received an UNKNOWN call".into() });
            }
            call::Type::Subscribe => return Err(ApiError::bad_request("Expecting 'Mesos-Stream-Id' header to be absent for SUBSCRIBE")),
            call::Type::Teardown => {
                self.remove_framework(&fid);
            }
            call::Type::Accept => {
                let accept = call.accept.ok_or_else(|| missing("accept"))?;
                self.accept(&fid, accept);
            }
            call::Type::Decline => {
                let decline = call.decline.ok_or_else(|| missing("decline"))?;
                let refuse = refuse_duration(decline.filters.as_ref());
                for oid in &decline.offer_ids {
                    self.decline_offer(&fid, oid.id(), refuse);
                }
            }
            call::Type::AcceptInverseOffers | call::Type::DeclineInverseOffers => {}
            call::Type::Revive => {
                if let Some(fw) = self.frameworks.get_mut(&fid) {
                    fw.suppressed = false;
                    fw.filters.clear();
                }
                self.allocate();
            }
            call::Type::Suppress => {
                if let Some(fw) = self.frameworks.get_mut(&fid) {
                    fw.suppressed = true;
                }
            }
            call::Type::Kill => {
                let kill = call.kill.ok_or_else(|| missing("kill"))?;
                self.kill(&fid, kill);
            }
            call::Type::Shutdown => {
                let s = call.shutdown.ok_or_else(|| missing("shutdown"))?;
                if let Some(agent) = self.agents.get(s.agent_id.id()) {
                    let _ = agent.link.send(AgentCmd::ShutdownExecutor { framework_id: fid.clone(), executor_id: s.executor_id.value });
                }
            }
            call::Type::Acknowledge => {
                let ack = call.acknowledge.ok_or_else(|| missing("acknowledge"))?;
                if uuid::Uuid::from_slice(&ack.uuid).is_err() {
                    return Err(ApiError::bad_request("Failed to validate scheduler::Call: Not a valid UUID"));
                }
                if let Some(agent) = self.agents.get(ack.agent_id.id()) {
                    let _ = agent.link.send(AgentCmd::Acknowledge {
                        framework_id: fid.clone(),
                        task_id: ack.task_id.value.clone(),
                        uuid: ack.uuid,
                    });
                }
                self.acknowledged(&fid, &ack.task_id.value);
            }
            call::Type::AcknowledgeOperationStatus | call::Type::ReconcileOperations | call::Type::Request => {}
            call::Type::Reconcile => {
                let rec = call.reconcile.ok_or_else(|| missing("reconcile"))?;
                self.reconcile(&fid, rec);
            }
            call::Type::Message => {
                let m = call.message.ok_or_else(|| missing("message"))?;
                if let Some(agent) = self.agents.get(m.agent_id.id()) {
                    let _ = agent.link.send(AgentCmd::FrameworkMessage {
                        framework_id: fid.clone(),
                        executor_id: m.executor_id.value,
                        data: m.data,
                    });
                }
            }
            call::Type::UpdateFramework => {
                let u = call.update_framework.ok_or_else(|| missing("update_framework"))?;
                if u.framework_info.id.as_ref().map(|i| i.value.as_str()) != Some(fid.as_str()) {
                    return Err(ApiError::bad_request("'framework_info.id' must equal 'framework_id'"));
                }
                validate_framework_info(&u.framework_info).map_err(ApiError::bad_request)?;
                if let Some(fw) = self.frameworks.get_mut(&fid) {
                    let mut info = u.framework_info;
                    info.user = fw.info.user.clone();
                    info.checkpoint = fw.info.checkpoint;
                    fw.info = info;
                }
            }
        }
        Ok(())
    }

    fn accept(&mut self, fid: &str, accept: call::Accept) {
        let refuse = refuse_duration(accept.filters.as_ref());
        // Validate the offers: known, this framework's, all on one agent.
        let mut agent_id: Option<String> = None;
        let mut invalid = None;
        for oid in &accept.offer_ids {
            match self.offers.get(oid.id()) {
                None => invalid = Some(format!("Offer {} is no longer valid", oid.id())),
                Some(o) if o.framework_id != fid => invalid = Some(format!("Offer {} is not for this framework", oid.id())),
                Some(o) => match &agent_id {
                    Some(a) if *a != o.agent_id => invalid = Some("Aggregated offers must belong to one single agent".to_owned()),
                    _ => agent_id = Some(o.agent_id.clone()),
                },
            }
        }
        if accept.offer_ids.is_empty() {
            invalid = Some("No offers specified".to_owned());
        }
        let mut available = Resources::default();
        for oid in &accept.offer_ids {
            if let Some(o) = self.remove_offer(oid.id()) {
                available.add(&o.resources);
            }
        }
        let partition_aware = self.frameworks.get(fid).is_some_and(FrameworkRec::partition_aware);
        let tasks_of = |op: &v1::offer::Operation| -> Vec<TaskInfo> {
            let mut t = op.launch.as_ref().map(|l| l.task_infos.clone()).unwrap_or_default();
            t.extend(op.launch_group.as_ref().map(|g| g.task_group.tasks.clone()).unwrap_or_default());
            t
        };
        if let Some(reason) = invalid {
            let state = if partition_aware { TaskState::TaskDropped } else { TaskState::TaskLost };
            for op in &accept.operations {
                for task in tasks_of(op) {
                    let msg = format!("Task launched with invalid offers: {reason}");
                    self.send_update(fid, master_status(&task.task_id.value, Some(task.agent_id.id()), state, Reason::InvalidOffers, msg));
                }
            }
            return;
        }
        let Some(agent_id) = agent_id else { return };
        for op in accept.operations {
            match op.r#type() {
                v1::offer::operation::Type::Launch => {
                    for task in op.launch.map(|l| l.task_infos).unwrap_or_default() {
                        self.launch(fid, &agent_id, task, None, &mut available);
                    }
                }
                v1::offer::operation::Type::LaunchGroup => {
                    let Some(group) = op.launch_group else { continue };
                    let executor = group.executor;
                    let mut tasks = group.task_group.tasks;
                    // As Mesos's master does before validating: a task without an executor gets
                    // the group's (and the framework must have set the executor's framework id).
                    for t in &mut tasks {
                        t.executor.get_or_insert_with(|| executor.clone());
                    }
                    // A task group is all or nothing: validate every task before launching any.
                    if let Err(e) = self.validate_group(fid, &agent_id, &tasks, &executor, &available) {
                        for t in &tasks {
                            self.send_update(
                                fid,
                                master_status(&t.task_id.value, Some(&agent_id), TaskState::TaskError, Reason::TaskGroupInvalid, e.clone()),
                            );
                        }
                        continue;
                    }
                    let group_tasks: Vec<TaskInfo> = tasks.clone();
                    for t in group_tasks {
                        self.launch(fid, &agent_id, t, Some(&executor), &mut available);
                    }
                    if let (Some(agent), Some(fw)) = (self.agents.get(&agent_id), self.frameworks.get(fid)) {
                        let _ = agent.link.send(AgentCmd::RunTaskGroup {
                            framework: Box::new(fw.info.clone()),
                            executor: Box::new(executor),
                            group: Box::new(v1::TaskGroupInfo { tasks }),
                        });
                    }
                }
                other => tracing::warn!(operation = ?other, "offer operation not supported by the local cluster; ignored"),
            }
        }
        // Whatever was not used is refused for `refuse_seconds`.
        if let Some(fw) = self.frameworks.get_mut(fid) {
            fw.filters.insert(agent_id.clone(), Instant::now() + refuse);
        }
    }

    /// Validates one task against what is left of the offer; returns its resources.
    fn validate_task(
        &self,
        fid: &str,
        agent_id: &str,
        task: &TaskInfo,
        in_group: bool,
        available: &Resources,
        batch: &HashSet<String>,
    ) -> Result<Resources, String> {
        validate_id("Task ID", &task.task_id.value)?;
        let fw = self.frameworks.get(fid).ok_or("Unknown framework")?;
        if fw.tasks.contains_key(&task.task_id.value) || batch.contains(&task.task_id.value) {
            return Err(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.agent_id.value != agent_id {
            return Err(format!("Task uses invalid agent: {}", task.agent_id.value));
        }
        if in_group && task.executor.is_none() {
            return Err("'TaskInfo.executor' must be set".to_owned());
        }
        if in_group && is_docker(task.container.as_ref()) {
            return Err("Docker ContainerInfo is not supported on the task".to_owned());
        }
        if !in_group && task.command.is_some() == task.executor.is_some() {
            return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".to_owned());
        }
        if task.resources.is_empty() {
            return Err("Task uses no resources".to_owned());
        }
        validate_task_shape(task)?;
        let mut needed = Resources::from_proto(&task.resources).map_err(|e| e.to_string())?;
        if in_group {
            // The group's executor and the total are checked once for the group.
            return Ok(needed);
        }
        if let Some(exec) = &task.executor {
            validate_id("Executor ID", &exec.executor_id.value)?;
            if !fw.executors.contains_key(&(agent_id.to_owned(), exec.executor_id.value.clone())) {
                needed.add(&Resources::from_proto(&exec.resources).map_err(|e| e.to_string())?);
            }
        }
        if !available.contains(&needed) {
            return Err(format!("Task uses more resources {needed} than available {available}"));
        }
        Ok(needed)
    }

    /// Validates a task group and its executor as Mesos's `task::group::validate` does, in its
    /// order: each task (its message prefixed with the task's id), then the executor (its own
    /// rules, the framework id the framework must set, a type, no Docker container, the same
    /// executor on every task, Mesos's minimum cpus and mem, some disk), then the total
    /// against what is left of the offer.
    fn validate_group(
        &self,
        fid: &str,
        agent_id: &str,
        tasks: &[TaskInfo],
        executor: &v1::ExecutorInfo,
        offered: &Resources,
    ) -> Result<(), String> {
        use v1::executor_info::Type as ExecutorType;
        let mut seen = HashSet::new();
        let mut total = Resources::default();
        for t in tasks {
            let needed = self
                .validate_task(fid, agent_id, t, true, offered, &seen)
                .map_err(|e| format!("Task '{}' is invalid: {e}", t.task_id.value))?;
            total.add(&needed);
            seen.insert(t.task_id.value.clone());
        }
        let kind = executor.r#type.map(|t| ExecutorType::try_from(t).unwrap_or(ExecutorType::Unknown));
        match kind {
            Some(ExecutorType::Default) if executor.command.is_some() => {
                return Err("'ExecutorInfo.command' must not be set for 'DEFAULT' executor".to_owned());
            }
            Some(ExecutorType::Custom) if executor.command.is_none() => {
                return Err("'ExecutorInfo.command' must be set for 'CUSTOM' executor".to_owned());
            }
            _ => {}
        }
        validate_id("Executor ID", &executor.executor_id.value)?;
        match &executor.framework_id {
            None => return Err("'ExecutorInfo.framework_id' must be set".to_owned()),
            Some(id) if id.value != fid => {
                return Err(format!("ExecutorInfo has an invalid FrameworkID (Actual: {} vs Expected: {fid})", id.value));
            }
            Some(_) => {}
        }
        match kind {
            None => return Err("'ExecutorInfo.type' must be set".to_owned()),
            Some(ExecutorType::Unknown) => return Err("Unknown executor type".to_owned()),
            Some(_) => {}
        }
        if is_docker(executor.container.as_ref()) {
            return Err("Docker ContainerInfo is not supported on the executor".to_owned());
        }
        let eid = &executor.executor_id.value;
        if let Some(t) = tasks.iter().find(|t| t.executor.as_ref() != Some(executor)) {
            return Err(format!("The `ExecutorInfo` of task '{}' is different from executor '{eid}'", t.task_id.value));
        }
        let own = Resources::from_proto(&executor.resources).map_err(|e| format!("Executor uses invalid resources: {e}"))?;
        let named = |name: &str| executor.resources.iter().any(|r| r.name == name);
        let cpus = own.scalar("cpus");
        if !named("cpus") || cpus < 0.01 {
            let found = if named("cpus") { cpp_double(cpus) } else { "None".to_owned() };
            return Err(format!("Executor '{eid}' uses less CPUs ({found}) than the minimum required (0.01)"));
        }
        let mem = own.scalar("mem");
        if !named("mem") || mem < 32.0 {
            let found = if named("mem") { megabytes(mem) } else { "None".to_owned() };
            return Err(format!("Executor '{eid}' uses less memory ({found}) than the minimum required (32MB)"));
        }
        if !named("disk") {
            return Err(format!("Executor '{eid}' uses no disk"));
        }
        let fw = self.frameworks.get(fid).ok_or("Unknown framework")?;
        if !fw.executors.contains_key(&(agent_id.to_owned(), eid.clone())) {
            total.add(&own);
        }
        if !offered.contains(&total) {
            return Err(format!("Total resources {total} required by task group and its executor are more than available {offered}"));
        }
        Ok(())
    }

    fn launch(
        &mut self,
        fid: &str,
        agent_id: &str,
        mut task: TaskInfo,
        group_executor: Option<&v1::ExecutorInfo>,
        available: &mut Resources,
    ) {
        let needed = match self.validate_task(fid, agent_id, &task, group_executor.is_some(), available, &HashSet::new()) {
            Ok(r) => r,
            Err(msg) => {
                self.send_update(fid, master_status(&task.task_id.value, Some(agent_id), TaskState::TaskError, Reason::TaskInvalid, msg));
                return;
            }
        };
        available.subtract(&needed);
        let mut task_resources = Resources::from_proto(&task.resources).unwrap_or_default();
        if let Some(exec) = task.executor.as_mut() {
            exec.framework_id.get_or_insert_with(|| FrameworkId { value: fid.to_owned() });
        }
        let executor = task.executor.clone().or_else(|| group_executor.cloned());
        let Some(agent) = self.agents.get_mut(agent_id) else { return };
        agent.allocated.add(&needed);
        let Some(fw) = self.frameworks.get_mut(fid) else { return };
        if let Some(exec) = &executor {
            let key = (agent_id.to_owned(), exec.executor_id.value.clone());
            if let std::collections::hash_map::Entry::Vacant(e) = fw.executors.entry(key) {
                let exec_res = Resources::from_proto(&exec.resources).unwrap_or_default();
                // For a group the executor's resources were not part of `needed`.
                if group_executor.is_some() {
                    agent.allocated.add(&exec_res);
                    available.subtract(&exec_res);
                } else {
                    let mut only_task = needed.clone();
                    only_task.subtract(&exec_res);
                    task_resources = only_task;
                }
                e.insert(exec_res);
            }
        }
        let status = TaskStatus {
            task_id: task.task_id.clone(),
            state: TaskState::TaskStaging as i32,
            agent_id: Some(AgentId { value: agent_id.to_owned() }),
            timestamp: Some(now_secs()),
            ..Default::default()
        };
        fw.tasks.insert(
            task.task_id.value.clone(),
            TaskRec {
                info: task.clone(),
                agent_id: agent_id.to_owned(),
                resources: task_resources,
                status,
                statuses: vec![(TaskState::TaskStaging, now_secs())],
                released: false,
            },
        );
        if group_executor.is_none() {
            let _ = agent.link.send(AgentCmd::RunTask { framework: Box::new(fw.info.clone()), task: Box::new(task) });
        }
    }

    fn decline_offer(&mut self, fid: &str, offer_id: &str, refuse: Duration) {
        if self.offers.get(offer_id).is_some_and(|o| o.framework_id == fid)
            && let Some(o) = self.remove_offer(offer_id)
            && let Some(fw) = self.frameworks.get_mut(fid)
        {
            fw.filters.insert(o.agent_id, Instant::now() + refuse);
        }
    }

    /// Drops a framework's outstanding offers without RESCIND (their resources are offered again).
    fn discard_offers_of(&mut self, framework_id: &str) {
        let ids: Vec<String> = self.offers.iter().filter(|(_, o)| o.framework_id == framework_id).map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.remove_offer(&id);
        }
    }

    fn remove_offer(&mut self, offer_id: &str) -> Option<OfferRec> {
        let o = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&o.agent_id) {
            agent.offered.subtract(&o.resources);
        }
        Some(o)
    }

    fn rescind(&mut self, offer_id: &str) {
        if let Some(o) = self.remove_offer(offer_id) {
            let ev = Event {
                r#type: Some(event::Type::Rescind as i32),
                rescind: Some(event::Rescind { offer_id: OfferId { value: offer_id.to_owned() } }),
                ..Default::default()
            };
            self.send(&o.framework_id, ev);
        }
    }

    fn kill(&mut self, fid: &str, kill: call::Kill) {
        let task_id = kill.task_id.value.clone();
        let Some(fw) = self.frameworks.get(fid) else { return };
        match fw.tasks.get(&task_id) {
            Some(task) if !is_terminal(task.state()) => {
                if let Some(agent) = self.agents.get(&task.agent_id) {
                    let _ = agent.link.send(AgentCmd::KillTask { framework_id: fid.to_owned(), task_id, kill_policy: kill.kill_policy });
                }
            }
            Some(_) => {}
            None => {
                // As Mesos's master: a kill of an unknown task is answered by reconciling it (for
                // a partition-aware framework, TASK_GONE when its agent is registered; found by
                // a differential check against the real master).
                let task = call::reconcile::Task { task_id: kill.task_id, agent_id: kill.agent_id };
                self.reconcile(fid, call::Reconcile { tasks: vec![task] });
            }
        }
    }

    fn acknowledged(&mut self, fid: &str, task_id: &str) {
        let Some(fw) = self.frameworks.get_mut(fid) else { return };
        // Once the terminal update is acknowledged the task is complete.
        if fw.tasks.get(task_id).is_some_and(|t| is_terminal(t.state()))
            && let Some(t) = fw.tasks.remove(task_id)
        {
            fw.completed.push_back(t);
            if fw.completed.len() > COMPLETED_TASKS_KEPT {
                fw.completed.pop_front();
            }
        }
    }

    fn reconcile(&mut self, fid: &str, rec: call::Reconcile) {
        let Some(fw) = self.frameworks.get(fid) else { return };
        let pa = fw.partition_aware();
        let reply = |task: &TaskRec| {
            let mut s = task.status.clone();
            s.uuid = None;
            s.source = Some(v1::task_status::Source::Master as i32);
            s.reason = Some(Reason::Reconciliation as i32);
            s.message = Some("Reconciliation: Latest task state".to_owned());
            s.data = None;
            s.labels = None;
            s.timestamp = Some(now_secs());
            s
        };
        let mut out = Vec::new();
        if rec.tasks.is_empty() {
            out.extend(fw.tasks.values().map(reply));
        } else {
            for t in &rec.tasks {
                if let Some(task) = fw.tasks.get(&t.task_id.value) {
                    out.push(reply(task));
                    continue;
                }
                let agent = t.agent_id.as_ref().map(|a| a.value.as_str());
                let (state, msg) = match agent.map(|a| self.agents.get(a).map(|r| r.state)) {
                    // As Mesos: an unknown task on an agent that has not re-registered since a
                    // master failover gets no answer (the framework must ask again later).
                    Some(Some(AgentState::Recovered { .. })) => continue,
                    Some(Some(AgentState::Active)) | None => {
                        (if pa { TaskState::TaskGone } else { TaskState::TaskLost }, "Reconciliation: Task is unknown to the agent")
                    }
                    Some(Some(AgentState::Unreachable(_))) => {
                        (if pa { TaskState::TaskUnreachable } else { TaskState::TaskLost }, "Reconciliation: Task is unreachable")
                    }
                    Some(Some(AgentState::Gone)) => {
                        (if pa { TaskState::TaskGoneByOperator } else { TaskState::TaskLost }, "Reconciliation: Task is gone")
                    }
                    Some(None) => (if pa { TaskState::TaskUnknown } else { TaskState::TaskLost }, "Reconciliation: Task is unknown"),
                };
                let mut s = master_status(&t.task_id.value, agent, state, Reason::Reconciliation, msg);
                if state == TaskState::TaskUnreachable
                    && let Some(Some(AgentState::Unreachable(since))) = agent.map(|a| self.agents.get(a).map(|r| r.state))
                {
                    s.unreachable_time = Some(v1::TimeInfo { nanoseconds: (since * 1e9) as i64 });
                }
                out.push(s);
            }
        }
        for s in out {
            self.send(fid, update_event(s));
        }
    }

    // ---- Agents -----------------------------------------------------------------------------

    fn on_agent_event(&mut self, agent_id: &str, event: AgentEvent) {
        if self.agents.get(agent_id).is_none_or(|a| a.state != AgentState::Active) {
            // A partitioned or removed agent's messages do not reach the master.
            return;
        }
        match event {
            AgentEvent::StatusUpdate { framework_id, status } => {
                self.record_status(&framework_id, &status);
                self.send(&framework_id, update_event(*status));
            }
            AgentEvent::ExecutorMessage { framework_id, executor_id, data } => {
                let ev = Event {
                    r#type: Some(event::Type::Message as i32),
                    message: Some(event::Message {
                        agent_id: AgentId { value: agent_id.to_owned() },
                        executor_id: v1::ExecutorId { value: executor_id },
                        data,
                    }),
                    ..Default::default()
                };
                self.send(&framework_id, ev);
            }
            AgentEvent::ExecutorTerminated { framework_id, executor_id, status } => {
                if let Some(fw) = self.frameworks.get_mut(&framework_id)
                    && let Some(res) = fw.executors.remove(&(agent_id.to_owned(), executor_id.clone()))
                    && let Some(agent) = self.agents.get_mut(agent_id)
                {
                    agent.allocated.subtract(&res);
                }
                let ev = Event {
                    r#type: Some(event::Type::Failure as i32),
                    failure: Some(event::Failure {
                        agent_id: Some(AgentId { value: agent_id.to_owned() }),
                        executor_id: Some(v1::ExecutorId { value: executor_id }),
                        status,
                    }),
                    ..Default::default()
                };
                self.send(&framework_id, ev);
            }
        }
    }

    /// Updates the master's copy of a task's state; frees its resources on a terminal state.
    fn record_status(&mut self, fid: &str, status: &TaskStatus) {
        let Some(fw) = self.frameworks.get_mut(fid) else { return };
        let Some(task) = fw.tasks.get_mut(&status.task_id.value) else { return };
        let state = status.state();
        if task.statuses.last().map(|(s, _)| *s) != Some(state) {
            task.statuses.push((state, status.timestamp.unwrap_or_else(now_secs)));
        }
        task.status = status.clone();
        if is_terminal(state) && !task.released {
            task.released = true;
            if let Some(agent) = self.agents.get_mut(&task.agent_id) {
                agent.allocated.subtract(&task.resources);
            }
        }
    }

    fn fault(&mut self, fault: Fault) -> Result<(), String> {
        match fault {
            Fault::RemoveAgent(id) => self.lose_agent(&id, true),
            Fault::PartitionAgent(id) => self.lose_agent(&id, false),
            Fault::HealAgent(id) => {
                let agent = self.agents.get_mut(&id).ok_or_else(|| format!("no agent {id}"))?;
                if !matches!(agent.state, AgentState::Unreachable(_)) {
                    return Err(format!("agent {id} is not partitioned"));
                }
                self.reregister(&id);
                Ok(())
            }
            Fault::CloseStream(fid) => {
                if !self.frameworks.contains_key(&fid) {
                    return Err(format!("no framework {fid}"));
                }
                self.disconnect(&fid);
                Ok(())
            }
            Fault::RestartMaster { down, reregister_after, lost } => {
                if let Some(id) = lost.iter().find(|id| !self.agents.contains_key(*id)) {
                    return Err(format!("no agent {id}"));
                }
                let connected: Vec<String> = self.frameworks.iter().filter(|(_, f)| f.conn.is_some()).map(|(id, _)| id.clone()).collect();
                for fid in connected {
                    self.disconnect(&fid);
                }
                let back = Instant::now() + down;
                self.recovering_until = Some(back);
                // The new master knows its agents from the registry, but no task until their
                // agents re-register with them.
                let timeout = self.config.agent_reregister_timeout;
                let active: Vec<String> =
                    self.agents.iter().filter(|(_, a)| a.state == AgentState::Active).map(|(id, _)| id.clone()).collect();
                for id in active {
                    let mut forgotten = Vec::new();
                    for (fid, fw) in &mut self.frameworks {
                        let ids: Vec<String> = fw.tasks.iter().filter(|(_, t)| t.agent_id == id).map(|(k, _)| k.clone()).collect();
                        forgotten.extend(ids.into_iter().filter_map(|k| fw.tasks.remove(&k)).map(|t| (fid.clone(), t)));
                    }
                    if let Some(agent) = self.agents.get_mut(&id) {
                        let reregister_at = (!lost.contains(&id)).then_some(back + reregister_after);
                        agent.state = AgentState::Recovered { reregister_at, deadline: back + timeout };
                        agent.forgotten = forgotten;
                    }
                }
                tracing::info!(?down, ?reregister_after, ?lost, "master restarting");
                Ok(())
            }
            Fault::CutStreamMidEvent(fid) => {
                if self.frameworks.get(&fid).is_none_or(|f| f.conn.is_none()) {
                    return Err(format!("framework {fid} is not connected"));
                }
                self.send(&fid, error_event(crate::protocol::CUT_STREAM_MARK));
                Ok(())
            }
            Fault::MalformedEvent(fid) => {
                if self.frameworks.get(&fid).is_none_or(|f| f.conn.is_none()) {
                    return Err(format!("framework {fid} is not connected"));
                }
                self.send(&fid, error_event(crate::protocol::MALFORMED_EVENT_MARK));
                Ok(())
            }
            Fault::RestartAgent(id, down) => {
                let agent = self.agents.get(&id).ok_or_else(|| format!("no agent {id}"))?;
                if agent.state != AgentState::Active {
                    return Err(format!("agent {id} is not active"));
                }
                let _ = agent.link.send(AgentCmd::Restart { down });
                Ok(())
            }
            Fault::StallAnswer(kind, delay) => {
                self.stalls.push((kind, delay));
                Ok(())
            }
            Fault::UpdateDelivery(id, mode) => {
                let agent = self.agents.get(&id).ok_or_else(|| format!("no agent {id}"))?;
                let _ = agent.link.send(crate::protocol::AgentCmd::SetUpdateDelivery(mode));
                Ok(())
            }
        }
    }

    /// Marks an agent removed (`gone`) or unreachable, rescinds its offers and tells each
    /// framework about its tasks.
    fn lose_agent(&mut self, id: &str, gone: bool) -> Result<(), String> {
        let agent = self.agents.get_mut(id).ok_or_else(|| format!("no agent {id}"))?;
        if agent.state != AgentState::Active {
            return Err(format!("agent {id} is not active"));
        }
        let since = now_secs();
        agent.state = if gone { AgentState::Gone } else { AgentState::Unreachable(since) };
        if gone {
            let _ = agent.link.send(AgentCmd::Stop);
        }
        let offers: Vec<String> = self.offers.iter().filter(|(_, o)| o.agent_id == id).map(|(k, _)| k.clone()).collect();
        for o in offers {
            self.rescind(&o);
        }
        let fids: Vec<String> = self.frameworks.keys().cloned().collect();
        for fid in fids {
            let Some(fw) = self.frameworks.get_mut(&fid) else { continue };
            let pa = fw.partition_aware();
            let mut updates = Vec::new();
            for task in fw.tasks.values_mut().filter(|t| t.agent_id == id && !is_terminal(t.state())) {
                let (state, reason, msg) = match (gone, pa) {
                    (true, true) => (TaskState::TaskGone, Reason::AgentRemovedByOperator, "Agent was removed"),
                    (false, true) => (TaskState::TaskUnreachable, Reason::AgentRemoved, "Agent is unreachable"),
                    (true, false) => (TaskState::TaskLost, Reason::AgentRemovedByOperator, "Agent was removed"),
                    (false, false) => (TaskState::TaskLost, Reason::AgentRemoved, "Agent is unreachable"),
                };
                let mut s = master_status(&task.info.task_id.value, Some(id), state, reason, msg);
                if state == TaskState::TaskUnreachable {
                    s.unreachable_time = Some(v1::TimeInfo { nanoseconds: (since * 1e9) as i64 });
                }
                task.status = s.clone();
                task.statuses.push((state, since));
                updates.push(s);
            }
            let failure = Event {
                r#type: Some(event::Type::Failure as i32),
                failure: Some(event::Failure { agent_id: Some(AgentId { value: id.to_owned() }), executor_id: None, status: None }),
                ..Default::default()
            };
            for s in updates {
                self.send(&fid, update_event(s));
            }
            self.send(&fid, failure);
        }
        Ok(())
    }

    // ---- Timers and allocation --------------------------------------------------------------

    fn timers(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> =
            self.offers.iter().filter(|(_, o)| o.expires.is_some_and(|e| e <= now)).map(|(k, _)| k.clone()).collect();
        for id in expired {
            self.rescind(&id);
        }
        let timed_out: Vec<String> =
            self.frameworks.iter().filter(|(_, f)| f.failover_deadline.is_some_and(|d| d <= now)).map(|(k, _)| k.clone()).collect();
        for fid in timed_out {
            tracing::info!(framework = %fid, "failover timeout expired");
            self.remove_framework(&fid);
        }
        let interval = self.config.heartbeat_interval;
        let due: Vec<String> =
            self.frameworks.iter().filter(|(_, f)| f.conn.is_some() && f.next_heartbeat <= now).map(|(k, _)| k.clone()).collect();
        for fid in due {
            if let Some(fw) = self.frameworks.get_mut(&fid) {
                fw.next_heartbeat = now + interval;
            }
            self.send(&fid, Event { r#type: Some(event::Type::Heartbeat as i32), ..Default::default() });
        }
        for fw in self.frameworks.values_mut() {
            fw.filters.retain(|_, until| *until > now);
        }
        let recovered: Vec<(String, Option<Instant>, Instant)> = self
            .agents
            .iter()
            .filter_map(|(id, a)| match a.state {
                AgentState::Recovered { reregister_at, deadline } => Some((id.clone(), reregister_at, deadline)),
                _ => None,
            })
            .collect();
        for (id, reregister_at, deadline) in recovered {
            if reregister_at.is_some_and(|t| t <= now) {
                self.reregister(&id);
            } else if deadline <= now {
                self.unreachable_after_failover(&id);
            }
        }
    }

    /// An agent (re-)registers: the tasks the master forgot are known again, the agent re-sends
    /// its unacknowledged updates, and its resources are offered.
    fn reregister(&mut self, id: &str) {
        let Some(agent) = self.agents.get_mut(id) else { return };
        agent.state = AgentState::Active;
        let forgotten = std::mem::take(&mut agent.forgotten);
        let _ = agent.link.send(AgentCmd::ResendUpdates);
        tracing::info!(agent = %id, tasks = forgotten.len(), "agent re-registered");
        for (fid, task) in forgotten {
            match self.frameworks.get_mut(&fid) {
                Some(fw) => {
                    fw.tasks.insert(task.info.task_id.value.clone(), task);
                }
                // The framework was removed meanwhile: the agent kills its tasks.
                None => {
                    if let Some(agent) = self.agents.get(id) {
                        let _ =
                            agent.link.send(AgentCmd::KillTask { framework_id: fid, task_id: task.info.task_id.value, kill_policy: None });
                    }
                }
            }
        }
        self.allocate();
    }

    /// An agent did not re-register within `agent_reregister_timeout` after a failover: it is
    /// marked unreachable and every framework gets a FAILURE event for it (Mesos's
    /// `markUnreachableAfterFailover` and `sendSlaveLost`); the master knows none of its tasks,
    /// so no update is sent for them: reconciliation answers TASK_UNREACHABLE.
    fn unreachable_after_failover(&mut self, id: &str) {
        let Some(agent) = self.agents.get_mut(id) else { return };
        agent.state = AgentState::Unreachable(now_secs());
        tracing::warn!(agent = %id, "agent did not re-register after the master failover; marked unreachable");
        let failure = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure { agent_id: Some(AgentId { value: id.to_owned() }), executor_id: None, status: None }),
            ..Default::default()
        };
        let fids: Vec<String> = self.frameworks.keys().cloned().collect();
        for fid in fids {
            self.send(&fid, failure.clone());
        }
    }

    /// Offers each active agent's unused resources to one eligible framework, round robin.
    /// Whether a simulated restart still lasts (and ends it when its time is up).
    fn recovering(&mut self) -> bool {
        match self.recovering_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.recovering_until = None;
                tracing::info!("master recovered");
                false
            }
            None => false,
        }
    }

    fn allocate(&mut self) {
        if self.recovering() {
            return;
        }
        let now = Instant::now();
        let mut eligible: Vec<String> =
            self.frameworks.iter().filter(|(_, f)| f.conn.is_some() && !f.suppressed).map(|(k, _)| k.clone()).collect();
        if eligible.is_empty() {
            return;
        }
        eligible.sort();
        let mut batches: HashMap<String, Vec<Offer>> = HashMap::new();
        let agent_ids: Vec<String> = self.agents.keys().cloned().collect();
        for agent_id in agent_ids {
            let Some(agent) = self.agents.get(&agent_id) else { continue };
            if agent.state != AgentState::Active {
                continue;
            }
            let mut free = agent.total.clone();
            free.subtract(&agent.allocated);
            free.subtract(&agent.offered);
            if free.scalar("cpus") < MIN_OFFER_CPUS && free.scalar("mem") < MIN_OFFER_MEM {
                continue;
            }
            // As Mesos with its default --filter_gpu_resources: an agent with GPUs is offered
            // only to frameworks with the GPU_RESOURCES capability.
            let has_gpus = agent.total.scalar("gpus") > 0.0;
            // As Mesos: an agent in another region than the master's is offered only to
            // frameworks with the REGION_AWARE capability.
            let region_of = |d: Option<&v1::DomainInfo>| d.and_then(|d| d.fault_domain.as_ref()).map(|f| f.region.name.clone());
            let remote = match (region_of(self.config.info.domain.as_ref()), region_of(agent.info.domain.as_ref())) {
                (Some(home), Some(there)) => home != there,
                _ => false,
            };
            let n = eligible.len();
            let chosen = (0..n).map(|i| &eligible[(self.round_robin + i) % n]).find(|fid| {
                self.frameworks.get(*fid).is_some_and(|f| {
                    f.filters.get(&agent_id).is_none_or(|until| *until <= now)
                        && (!has_gpus || f.has(Capability::GpuResources))
                        && (!remote || f.has(Capability::RegionAware))
                })
            });
            let Some(fid) = chosen.cloned() else { continue };
            self.round_robin = self.round_robin.wrapping_add(1);
            let role = self.frameworks.get(&fid).and_then(FrameworkRec::allocation_role);
            self.next_offer += 1;
            let offer_id = format!("{}-O{}", self.config.id, self.next_offer);
            let offer = Offer {
                id: OfferId { value: offer_id.clone() },
                framework_id: FrameworkId { value: fid.clone() },
                agent_id: AgentId { value: agent_id.clone() },
                hostname: agent.info.hostname.clone(),
                url: None,
                resources: free.to_proto(role.as_deref()),
                attributes: agent.info.attributes.clone(),
                domain: agent.info.domain.clone(),
                allocation_info: role.map(|r| v1::resource::AllocationInfo { role: Some(r) }),
                ..Default::default()
            };
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.offered.add(&free);
            }
            let expires = self.config.offer_timeout.map(|t| now + t);
            self.offers.insert(offer_id, OfferRec { framework_id: fid.clone(), agent_id, resources: free, expires });
            batches.entry(fid).or_default().push(offer);
        }
        for (fid, offers) in batches {
            let ev = Event { r#type: Some(event::Type::Offers as i32), offers: Some(event::Offers { offers }), ..Default::default() };
            self.send(&fid, ev);
        }
    }

    // ---- Output -----------------------------------------------------------------------------

    fn send_update(&mut self, fid: &str, status: TaskStatus) {
        self.send(fid, update_event(status));
    }

    /// Sends an event on the framework's stream; a full or closed stream disconnects it.
    fn send(&mut self, fid: &str, ev: Event) {
        let Some(fw) = self.frameworks.get_mut(fid) else { return };
        let Some(conn) = &fw.conn else { return };
        if conn.tx.try_send(ev).is_err() {
            tracing::warn!(framework = %fid, "event stream closed or too slow; disconnecting the framework");
            self.disconnect(fid);
        }
    }

    fn state_json(&self) -> serde_json::Value {
        let res_json = |r: &Resources| {
            let ports: Vec<String> = r.ranges("ports").ranges().iter().map(|(b, e)| format!("{b}-{e}")).collect();
            json!({"cpus": r.scalar("cpus"), "mem": r.scalar("mem"), "disk": r.scalar("disk"), "gpus": r.scalar("gpus"), "ports": format!("[{}]", ports.join(", "))})
        };
        let task_json = |fid: &str, t: &TaskRec| {
            json!({
                "id": t.info.task_id.value,
                "name": t.info.name,
                "framework_id": fid,
                "slave_id": t.agent_id,
                "state": t.state().as_str_name(),
                "resources": res_json(&t.resources),
                "statuses": t.statuses.iter().map(|(s, ts)| json!({"state": s.as_str_name(), "timestamp": ts})).collect::<Vec<_>>(),
                "executor_id": t.info.executor.as_ref().map(|e| e.executor_id.value.clone()).unwrap_or_default(),
            })
        };
        let frameworks: Vec<_> = self
            .frameworks
            .iter()
            .map(|(fid, f)| {
                let offers: Vec<_> = self.offers.iter().filter(|(_, o)| o.framework_id == *fid).map(|(id, o)| json!({"id": id, "slave_id": o.agent_id, "resources": res_json(&o.resources)})).collect();
                json!({
                    "id": fid,
                    "name": f.info.name,
                    "user": f.info.user,
                    "principal": f.info.principal,
                    "hostname": f.info.hostname,
                    "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
                    "checkpoint": f.info.checkpoint.unwrap_or(false),
                    "roles": f.info.roles,
                    "active": f.conn.is_some(),
                    "connected": f.conn.is_some(),
                    "suppressed": f.suppressed,
                    "tasks": f.tasks.values().filter(|t| !matches!(t.state(), TaskState::TaskUnreachable)).map(|t| task_json(fid, t)).collect::<Vec<_>>(),
                    "unreachable_tasks": f.tasks.values().filter(|t| matches!(t.state(), TaskState::TaskUnreachable)).map(|t| task_json(fid, t)).collect::<Vec<_>>(),
                    "completed_tasks": f.completed.iter().map(|t| task_json(fid, t)).collect::<Vec<_>>(),
                    "offers": offers,
                    "executors": f.executors.keys().map(|(a, e)| json!({"executor_id": e, "slave_id": a})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let slaves: Vec<_> = self
            .agents
            .iter()
            .map(|(id, a)| {
                let attrs: serde_json::Map<String, serde_json::Value> = a
                    .info
                    .attributes
                    .iter()
                    .map(|at| (at.name.clone(), json!(at.text.as_ref().map(|t| t.value.clone()).unwrap_or_default())))
                    .collect();
                json!({
                    "id": id,
                    "hostname": a.info.hostname,
                    "port": a.info.port.unwrap_or(5051),
                    "pid": format!("slave({id})@{}:{}", a.info.hostname, a.info.port.unwrap_or(5051)),
                    "resources": res_json(&a.total),
                    "used_resources": res_json(&a.allocated),
                    "offered_resources": res_json(&a.offered),
                    "attributes": attrs,
                    "active": a.state == AgentState::Active,
                    "state": match a.state {
                        AgentState::Active => "ACTIVE",
                        AgentState::Recovered { .. } => "RECOVERED",
                        AgentState::Unreachable(_) => "UNREACHABLE",
                        AgentState::Gone => "GONE",
                    },
                })
            })
            .collect();
        let info = &self.config.info;
        json!({
            "id": self.config.id,
            "pid": info.pid,
            "hostname": info.hostname,
            "version": info.version,
            "leader": info.pid,
            "leader_info": mesos_proto::json::to_json(info),
            "start_time": self.start_time,
            "elected_time": self.start_time,
            "activated_slaves": self.agents.values().filter(|a| a.state == AgentState::Active).count(),
            "frameworks": frameworks,
            "completed_frameworks": self.removed_frameworks.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "slaves": slaves,
        })
    }
}

fn refuse_duration(filters: Option<&v1::Filters>) -> Duration {
    let secs = filters.and_then(|f| f.refuse_seconds).unwrap_or(5.0);
    let secs = if secs.is_finite() && secs >= 0.0 { secs.min(31_536_000.0) } else { 5.0 };
    Duration::from_secs_f64(secs)
}

/// The FrameworkInfo rules the master enforces on SUBSCRIBE and UPDATE_FRAMEWORK.
/// The checks of Mesos's validation.cpp on a TaskInfo's own fields (kill policy, health check,
/// container, executor command) that the real master makes before a launch reaches an agent;
/// each was found missing here by a differential check against it.
fn validate_task_shape(task: &TaskInfo) -> Result<(), String> {
    use v1::container_info::Type as ContainerType;
    use v1::executor_info::Type as ExecutorType;
    use v1::health_check::Type as CheckType;
    if task.kill_policy.as_ref().and_then(|p| p.grace_period.as_ref()).is_some_and(|g| g.nanoseconds < 0) {
        return Err("Task's 'kill_policy.grace_period' must be non-negative".to_owned());
    }
    if let Some(check) = &task.health_check {
        let missing = match CheckType::try_from(check.r#type.unwrap_or(0)) {
            Ok(CheckType::Command) => check.command.is_none().then_some("command"),
            Ok(CheckType::Http) => check.http.is_none().then_some("http"),
            Ok(CheckType::Tcp) => check.tcp.is_none().then_some("tcp"),
            _ => return Err("HealthCheck must specify 'type'".to_owned()),
        };
        if let Some(field) = missing {
            return Err(format!("Expecting '{field}' to be set for the health check's type"));
        }
        for (name, value) in [
            ("delay_seconds", check.delay_seconds),
            ("interval_seconds", check.interval_seconds),
            ("timeout_seconds", check.timeout_seconds),
            ("grace_period_seconds", check.grace_period_seconds),
        ] {
            if value.is_some_and(|v| v < 0.0) {
                return Err(format!("Expecting '{name}' to be non-negative"));
            }
        }
    }
    if let Some(container) = &task.container
        && ContainerType::try_from(container.r#type) == Ok(ContainerType::Docker)
        && container.docker.is_none()
    {
        return Err("DockerInfo 'docker' is not set for DOCKER typed ContainerInfo".to_owned());
    }
    if let Some(exec) = &task.executor
        && exec.command.is_none()
        && ExecutorType::try_from(exec.r#type.unwrap_or(0)) != Ok(ExecutorType::Default)
    {
        return Err("'ExecutorInfo.command' must be set for a custom executor".to_owned());
    }
    Ok(())
}

fn validate_framework_info(info: &v1::FrameworkInfo) -> Result<(), String> {
    let multi_role = info.capabilities.iter().any(|c| c.r#type() == Capability::MultiRole);
    if multi_role && info.role.is_some() {
        return Err("'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable".to_owned());
    }
    if !multi_role && !info.roles.is_empty() {
        return Err("'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable".to_owned());
    }
    let mut seen = HashSet::new();
    for role in &info.roles {
        if !seen.insert(role) {
            return Err(format!("'FrameworkInfo.roles' contains duplicate role '{role}'"));
        }
        if role.is_empty() || role.starts_with('.') || role.contains(['/', ' ', '\\']) {
            return Err(format!("Invalid role '{role}'"));
        }
    }
    if let Some(id) = &info.id {
        validate_id("Framework ID", &id.value)?;
    }
    Ok(())
}

/// Whether Mesos takes `seconds` as a failover timeout: stout's `Duration::create` refuses what
/// does not fit in an int64 of nanoseconds.
fn valid_failover_timeout(seconds: f64) -> bool {
    let ns = seconds * 1e9;
    ns.is_finite() && ns <= i64::MAX as f64 && ns >= i64::MIN as f64
}

/// Whether a container is a Docker one.
fn is_docker(container: Option<&v1::ContainerInfo>) -> bool {
    container.is_some_and(|c| v1::container_info::Type::try_from(c.r#type) == Ok(v1::container_info::Type::Docker))
}

/// An amount of megabytes as Mesos prints it: `Resources::mem()` keeps whole megabytes and
/// stout's `Bytes` raises the unit only when nothing is lost (`0B`, `16MB`, `1GB`).
fn megabytes(mb: f64) -> String {
    let mb = mb.max(0.0) as u64;
    match mb {
        0 => "0B".to_owned(),
        m if m % (1024 * 1024) == 0 => format!("{}TB", m / (1024 * 1024)),
        m if m % 1024 == 0 => format!("{}GB", m / 1024),
        m => format!("{m}MB"),
    }
}

/// A double as C++'s `std::ostream` writes it by default (`%g`, 6 significant digits), as
/// Mesos's `stringify` puts it into messages.
fn cpp_double(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let exp = x.abs().log10().floor() as i32;
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s };
    if !(-5..6).contains(&exp) {
        let m = trim(format!("{:.5}", x / 10f64.powi(exp)));
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim(format!("{x:.decimals$}"))
    }
}

#[cfg(test)]
mod cpp_double_tests {
    use super::*;

    #[test]
    fn doubles_print_as_cpp_streams_do() {
        for (x, s) in [
            (1e12, "1e+12"),
            (1.5e12, "1.5e+12"),
            (604800.0, "604800"),
            (1e7, "1e+07"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.333333"),
            (-2.0, "-2"),
        ] {
            assert_eq!(cpp_double(x), s, "{x}");
        }
        assert!(valid_failover_timeout(604800.0) && valid_failover_timeout(-1.0));
        assert!(!valid_failover_timeout(1e12) && !valid_failover_timeout(f64::INFINITY));
    }
}
