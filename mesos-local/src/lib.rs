//! An embedded Mesos-compatible cluster: one master and any number of agents in one process,
//! speaking the real Mesos v1 scheduler API (on the master's port) and executor API (on each
//! agent's port) over HTTP. It is `framework`'s default runtime on a machine without Mesos
//! and the test bed of the whole project.
//!
//! Layout:
//! - [`master`]: the master actor (frameworks, offers, tasks, reconciliation, failover);
//! - [`agent`]: agent actors (task launch, status update manager, custom executors);
//! - [`runner`]: command tasks as processes, health checks, kill policies;
//! - [`http`]: the HTTP shells of both APIs;
//! - [`resources`]: resource arithmetic;
//! - [`protocol`]: the messages between them.

// `Resource.role` is deprecated upstream but still part of the wire format we must speak.
#![allow(deprecated)]

pub mod agent;
pub mod http;
pub mod master;
pub mod protocol;
pub mod resources;
pub mod runner;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use mesos_proto::v1::{self, AgentId, AgentInfo, MasterInfo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use protocol::MasterMsg;
pub use protocol::{Fault, UpdateDelivery};
pub use resources::Resources;

/// Turns Nagle's algorithm off on an accepted connection: events and answers are sent as soon
/// as they are written, not held back for the peer's delayed ACK (up to 40 ms on Linux).
fn no_delay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// What one agent offers.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Hostname the agent advertises (tasks still run on this machine).
    pub hostname: String,
    /// Total resources.
    pub resources: Resources,
    /// Text attributes (`rack`, `zone`, ...).
    pub attributes: Vec<(String, String)>,
    /// Its fault domain (region, zone), if any.
    pub domain: Option<(String, String)>,
}

/// A Mesos `DomainInfo` of a region and zone.
pub fn domain_info(region: &str, zone: &str) -> v1::DomainInfo {
    v1::DomainInfo {
        fault_domain: Some(v1::domain_info::FaultDomain {
            region: v1::domain_info::fault_domain::RegionInfo { name: region.to_owned() },
            zone: v1::domain_info::fault_domain::ZoneInfo { name: zone.to_owned() },
        }),
    }
}

/// Settings of the whole cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Where the master listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The agents.
    pub agents: Vec<AgentSpec>,
    /// HEARTBEAT interval (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// Offer timeout (Mesos: none).
    pub offer_timeout: Option<Duration>,
    /// How often unused resources are offered (Mesos: 1 s).
    pub allocation_interval: Duration,
    /// First retry of unacknowledged status updates (Mesos: 10 s).
    pub update_retry: Duration,
    /// How long executors have to subscribe (Mesos: 1 min).
    pub executor_registration_timeout: Duration,
    /// Where sandboxes go.
    pub work_dir: PathBuf,
    /// Tasks start without processes (scale tests).
    pub simulated: bool,
    /// Framework credentials (principal → secret); with `Some`, every scheduler API request
    /// must authenticate with HTTP basic and SUBSCRIBE with its own principal.
    pub framework_credentials: Option<std::collections::BTreeMap<String, String>>,
    /// How long after a master failover an agent may take to re-register before it is marked
    /// unreachable (Mesos: 10 min; see [`Fault::RestartMaster`]).
    pub agent_reregister_timeout: Duration,
    /// The program agents run Docker tasks with (as Mesos's `mesos-docker-executor`):
    /// `framework-executor` (default: [`default_docker_executor`]).
    pub docker_executor: PathBuf,
    /// Executors authenticate their calls with a token from their environment (Mesos's agent
    /// flag `--authenticate_http_executors`).
    pub authenticate_http_executors: bool,
    /// The master's fault domain (region, zone), if any: agents in other regions are offered
    /// only to REGION_AWARE frameworks, as in Mesos.
    pub master_domain: Option<(String, String)>,
}

/// Where `framework-executor` is: beside the running program, or one directory up (a test
/// binary under `target/<profile>/deps/`), else on `PATH`.
pub fn default_docker_executor() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let dirs = exe.iter().filter_map(|e| e.parent()).flat_map(|d| [Some(d), d.parent()]).flatten();
    for dir in dirs {
        let candidate = dir.join("framework-executor");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("framework-executor")
}

impl ClusterConfig {
    /// `agents` identical agents on this machine, each with its own slice of `ports`.
    pub fn uniform(listen: SocketAddr, agents: usize, cpus: f64, mem: f64, disk: f64, ports: (u64, u64), work_dir: PathBuf) -> Self {
        let agents = agents.max(1);
        let span = (ports.1.saturating_sub(ports.0) + 1) / agents as u64;
        let specs = (0..agents)
            .map(|i| {
                let begin = ports.0 + span * i as u64;
                let end = if i + 1 == agents { ports.1 } else { begin + span.saturating_sub(1) };
                AgentSpec {
                    hostname: "localhost".to_owned(),
                    resources: Resources::new(&[("cpus", cpus), ("mem", mem), ("disk", disk)], &[("ports", &[(begin, end)])]),
                    attributes: vec![("agent".to_owned(), format!("a{i}")), ("rack".to_owned(), format!("r{}", i % 2))],
                    domain: None,
                }
            })
            .collect();
        Self {
            listen,
            agents: specs,
            heartbeat_interval: Duration::from_secs(15),
            offer_timeout: None,
            allocation_interval: Duration::from_millis(1000),
            update_retry: Duration::from_secs(10),
            executor_registration_timeout: Duration::from_secs(60),
            work_dir,
            simulated: false,
            framework_credentials: None,
            agent_reregister_timeout: Duration::from_secs(600),
            docker_executor: default_docker_executor(),
            authenticate_http_executors: false,
            master_domain: None,
        }
    }
}

/// A running local cluster. Dropping it stops serving; call [`LocalCluster::shutdown`] to also
/// kill the tasks' processes.
pub struct LocalCluster {
    addr: SocketAddr,
    master: mpsc::UnboundedSender<MasterMsg>,
    agents: Vec<(String, SocketAddr, mpsc::UnboundedSender<agent::AgentMsg>)>,
    handles: Vec<JoinHandle<()>>,
    info: MasterInfo,
}

/// The master's registration in ZooKeeper, as a Mesos master registers itself
/// (`<path>/json.info_<seq>`, an ephemeral sequential node holding `MasterInfo` as JSON). Dropping
/// it closes the session, which removes the node.
pub struct ZkRegistration {
    _client: zookeeper_client::Client,
    /// The node created.
    pub node: String,
}

impl LocalCluster {
    /// Starts the master and agents and begins serving.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let master_id = uuid::Uuid::new_v4().to_string();
        let (master_tx, master_rx) = mpsc::unbounded_channel();
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => std::net::Ipv4Addr::LOCALHOST,
        };
        let hostname = if addr.ip().is_loopback() { "localhost".to_owned() } else { addr.ip().to_string() };
        let info = MasterInfo {
            id: master_id.clone(),
            // Mesos stores the address in network byte order.
            ip: u32::from_le_bytes(ip.octets()),
            port: u32::from(addr.port()),
            pid: Some(format!("master@{}:{}", ip, addr.port())),
            hostname: Some(hostname.clone()),
            version: Some("1.11.0".to_owned()),
            address: Some(v1::Address { hostname: Some(hostname), ip: Some(ip.to_string()), port: i32::from(addr.port()) }),
            domain: config.master_domain.as_ref().map(|(r, z)| domain_info(r, z)),
            ..Default::default()
        };
        let master_info = info.clone();
        let mcfg = master::MasterConfig {
            id: master_id.clone(),
            info,
            heartbeat_interval: config.heartbeat_interval,
            offer_timeout: config.offer_timeout,
            allocation_interval: config.allocation_interval,
            agent_reregister_timeout: config.agent_reregister_timeout,
        };
        let mut master = master::Master::new(mcfg);
        let mut handles = Vec::new();
        let mut agents = Vec::new();
        for (i, spec) in config.agents.iter().enumerate() {
            let agent_id = format!("{master_id}-S{i}");
            let agent_listener = TcpListener::bind((addr.ip(), 0)).await.context("cannot listen for an agent")?;
            let agent_addr = agent_listener.local_addr()?;
            let info = AgentInfo {
                hostname: spec.hostname.clone(),
                port: Some(i32::from(agent_addr.port())),
                resources: spec.resources.to_proto(None),
                attributes: spec.attributes.iter().map(|(k, v)| resources::text_attribute(k, v)).collect(),
                id: Some(AgentId { value: agent_id.clone() }),
                domain: spec.domain.as_ref().map(|(r, z)| domain_info(r, z)),
            };
            let (agent_tx, agent_rx) = mpsc::unbounded_channel();
            let settings = agent::AgentSettings {
                update_retry: config.update_retry,
                executor_registration_timeout: config.executor_registration_timeout,
                simulated: config.simulated,
                work_dir: config.work_dir.clone(),
                docker_executor: config.docker_executor.clone(),
                authenticate_http_executors: config.authenticate_http_executors,
            };
            let actor = agent::Agent::new(info.clone(), settings, agent_addr, master_tx.clone(), agent_tx.clone());
            handles.push(tokio::spawn(actor.run(agent_rx)));
            // The master's commands reach the agent actor through a forwarding channel.
            let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
            let fwd = agent_tx.clone();
            handles.push(tokio::spawn(async move {
                while let Some(cmd) = cmd_rx.recv().await {
                    if fwd.send(agent::AgentMsg::Cmd(cmd)).is_err() {
                        return;
                    }
                }
            }));
            master.add_agent(info, cmd_tx);
            let router = http::agent_router(agent_tx.clone());
            handles.push(tokio::spawn(async move {
                let _ = axum::serve(agent_listener.tap_io(no_delay), router).await;
            }));
            agents.push((agent_id, agent_addr, agent_tx));
        }
        handles.push(tokio::spawn(master.run(master_rx)));
        let router = http::master_router(http::MasterHttp {
            master: master_tx.clone(),
            advertised: addr.to_string(),
            framework_credentials: config.framework_credentials.clone().map(std::sync::Arc::new),
        });
        handles.push(tokio::spawn(async move {
            let _ = axum::serve(listener.tap_io(no_delay), router).await;
        }));
        tracing::info!(%addr, agents = agents.len(), "local Mesos cluster is up");
        Ok(Self { addr, master: master_tx, agents, handles, info: master_info })
    }

    /// The master's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers this master in ZooKeeper at `hosts` under `path` (e.g. `/mesos`), so that
    /// schedulers find it with `zk://hosts/mesos`; the lowest sequence is the leading master.
    pub async fn register_in_zookeeper(&self, hosts: &str, path: &str) -> anyhow::Result<ZkRegistration> {
        use zookeeper_client as zk;
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(hosts)
            .await
            .with_context(|| format!("cannot reach ZooKeeper at {hosts}"))?;
        match client.mkdir(path, &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await {
            Ok(()) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {path}")),
        }
        let json = mesos_proto::json::to_json_vec(&self.info);
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, seq) = client.create(&format!("{path}/json.info_"), &json, &options).await.context("cannot register the master")?;
        Ok(ZkRegistration { _client: client, node: format!("{path}/json.info_{seq}") })
    }

    /// The master's base URL, e.g. `http://127.0.0.1:5050`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The agents' ids, in order.
    pub fn agent_ids(&self) -> Vec<String> {
        self.agents.iter().map(|(id, _, _)| id.clone()).collect()
    }

    /// The address of an agent's executor API.
    pub fn agent_addr(&self, index: usize) -> Option<SocketAddr> {
        self.agents.get(index).map(|(_, a, _)| *a)
    }

    /// The master's state, as `/master/state` serves it.
    pub async fn state(&self) -> anyhow::Result<serde_json::Value> {
        let (tx, rx) = oneshot::channel();
        self.master.send(MasterMsg::State(tx)).map_err(|_| anyhow::anyhow!("master stopped"))?;
        Ok(rx.await?)
    }

    /// Injects a fault.
    pub async fn fault(&self, fault: Fault) -> anyhow::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.master.send(MasterMsg::Fault(fault, tx)).map_err(|_| anyhow::anyhow!("master stopped"))?;
        rx.await?.map_err(|e| anyhow::anyhow!(e))
    }

    /// Kills every task and executor, then stops serving.
    pub async fn shutdown(self) {
        for (_, _, agent) in &self.agents {
            let _ = agent.send(agent::AgentMsg::Cmd(protocol::AgentCmd::Stop));
        }
        // Give the kills (SIGTERM, then SIGKILL without grace) a moment to land.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for h in &self.handles {
            h.abort();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}
