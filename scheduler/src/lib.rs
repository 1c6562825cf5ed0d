//! `framework`: a Marathon-compatible Apache Mesos framework scheduler.
//!
//! The pure decisions live in `framework-core`; this crate holds the shells around it:
//! - [`actor`]: the single owner of scheduler state;
//! - [`mesos`]: the v1 scheduler API client;
//! - [`api`]: the Marathon REST API;
//! - [`store`]: durable state; [`events`]: the event bus; [`spec`]: app → Mesos translation;
//! - [`config`]: command-line flags.

// `Resource.role` and `FrameworkInfo.role` are deprecated upstream but still on the wire.
#![allow(deprecated)]

pub mod actor;
pub mod api;
pub mod auth;
pub mod cli;
pub mod command;
pub mod config;
pub mod consul;
pub mod error;
pub mod events;
pub mod front;
pub mod ha;
pub mod lb;
pub mod mesos;
pub mod persist;
pub mod readiness;
pub mod record_log;
pub mod redb_store;
pub mod retry;
pub mod spec;
pub mod state;
pub mod store;
pub mod tls;
pub mod zk;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mesos_proto::codec::Encoding;
use mesos_proto::v1::{self, framework_info};
use tokio::sync::mpsc;

use crate::actor::{Actor, ActorConfig};
use crate::config::{Flags, WireEncoding};
use crate::events::EventBus;
use crate::store::{FileStore, Store};

/// Total memory of this machine in MB (for sizing the embedded agents).
fn machine_mem_mb() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(4096.0)
}

/// What every leadership term needs, fixed for the life of the process.
#[derive(Clone)]
pub struct Context {
    /// Actor settings.
    pub actor: ActorConfig,
    /// How to reach Mesos.
    pub mesos: mesos::MesosConfig,
    /// The process's event bus (SSE clients stay attached across terms).
    pub bus: EventBus,
    /// Facts for /v2/info.
    pub info: Arc<api::Info>,
    /// Consul, when tasks are to be registered there.
    pub consul: Option<consul::ConsulConfig>,
    /// A framework id to remove from the store before subscribing (`--forget-framework-id`).
    pub forget_framework_id: Option<String>,
}

/// A leadership term: the actor, the Mesos subscription and the API router that reaches them.
/// Dropping it stops the actor and closes the subscription at once.
pub struct Leadership {
    /// The API as this leader serves it.
    pub router: axum::Router,
    actor: tokio::task::JoinHandle<actor::Stopped>,
    registrar: Option<tokio::task::JoinHandle<()>>,
    _mesos: mesos::MesosClient,
}

impl Leadership {
    /// Loads the state from `store`, subscribes to Mesos with the stored framework id and starts
    /// the actor (which reconciles and resumes deployments).
    pub async fn start(ctx: &Context, store: Store) -> anyhow::Result<Self> {
        if let Some(id) = &ctx.forget_framework_id {
            forget_framework_id(&store, id).await?;
        }
        let loaded = actor::load(&store).await.context("cannot load the stored state")?;
        let (actor, handle, commands) = Actor::new(ctx.actor.clone(), store.clone(), ctx.bus.clone(), loaded);
        let (updates_tx, updates_rx) = mpsc::channel(1024);
        let client = mesos::start(ctx.mesos.clone(), actor.framework_id(), updates_tx)?;
        let calls = client.calls.clone();
        let task = tokio::spawn(actor.run(calls, commands, updates_rx));
        let registrar = ctx.consul.clone().map(|config| {
            let name = ctx.mesos.framework.name.clone();
            tokio::spawn(consul::registrar::run(consul::Consul::new(config), name, handle.watch(), Duration::from_secs(5)))
        });
        let router = api::router(api::ApiState {
            actor: handle,
            bus: ctx.bus.clone(),
            store,
            info: ctx.info.clone(),
            app_json: Arc::default(),
            mesos_errors: client.errors.clone(),
        });
        Ok(Self { router, actor: task, registrar, _mesos: client })
    }

    /// Resolves when the actor stops on its own, with why.
    pub async fn finished(&mut self) -> actor::Stopped {
        (&mut self.actor).await.unwrap_or(actor::Stopped::Closed)
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.actor.abort();
        if let Some(r) = &self.registrar {
            r.abort();
        }
    }
}

/// Removes the stored framework id if it is `id` (`--forget-framework-id`), durably, so that
/// the subscription registers a new framework. Any other stored id is kept: the flag names the
/// one framework Mesos removed, and a later start with the flag left on changes nothing.
async fn forget_framework_id(store: &Store, id: &str) -> anyhow::Result<()> {
    let key = framework_core::keys::FRAMEWORK_ID;
    let stored = store.get(key).await.context("cannot read the stored framework id")?;
    match stored.as_deref().map(String::from_utf8_lossy) {
        Some(stored) if stored == id => {
            store.delete(key).await.context("cannot remove the stored framework id")?;
            store.sync().await.context("cannot remove the stored framework id")?;
            tracing::warn!(framework_id = %id, "forgot the stored framework id (--forget-framework-id): Mesos registers a new framework and every app is launched anew under it");
        }
        Some(stored) => {
            tracing::info!(stored = %stored, forget = %id, "--forget-framework-id names another framework id than the stored one; kept the stored id")
        }
        None => tracing::info!(forget = %id, "--forget-framework-id: no framework id is stored"),
    }
    Ok(())
}

/// Runs `framework` until interrupted.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let listen = flags.listen()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}: is another process using it? choose another with --http-address"))?;
    let listen = listener.local_addr()?;
    let tls = match (&flags.tls_cert, &flags.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth = auth::Auth::new(
        auth::gather(&flags.http_credentials, flags.http_credentials_file.as_deref())?,
        auth::gather(&flags.api_token, flags.api_token_file.as_deref())?,
    );
    if !auth.enabled() && !listen.ip().is_loopback() {
        anyhow::ensure!(
            flags.insecure_no_auth,
            "refusing to serve the API on {listen} without authentication: anyone who reaches it can run any command on the cluster. \
             Give --http-credentials or --api-token (or their -file forms), bind to a loopback address, \
             or accept the risk with --insecure-no-auth"
        );
        tracing::warn!(%listen, "the API is served WITHOUT authentication on a non-loopback address (--insecure-no-auth)");
    }
    let zk = flags.zk.as_deref().map(zk::ZkUrl::parse).transpose()?;
    anyhow::ensure!(
        flags.local_port_min < flags.local_port_max && flags.local_port_max <= 65_536,
        "--local-port-min {} must be below --local-port-max {} (at most 65536)",
        flags.local_port_min,
        flags.local_port_max
    );

    let mut local = None;
    let master = if flags.master == "local" {
        let agents = flags.local_agents.max(1);
        let cpus = std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(2.0);
        let mem = (machine_mem_mb() / agents as f64).floor();
        let work_dir = std::path::absolute(flags.data_dir.join("local-cluster"))?;
        let mut config =
            mesos_local::ClusterConfig::uniform(flags.local_master_address, agents, cpus, mem, 10_240.0, flags.local_ports()?, work_dir);
        config.docker_executor = flags.executor_path()?.into();
        let cluster = mesos_local::LocalCluster::start(config).await.context("cannot start the embedded Mesos cluster")?;
        let url = cluster.url();
        tracing::info!(master = %url, agents, "embedded Mesos master and agents running");
        local = Some(cluster);
        mesos::MasterSource::Fixed(url)
    } else if flags.master.starts_with("http://") || flags.master.starts_with("https://") {
        mesos::MasterSource::Fixed(flags.master.trim_end_matches('/').to_string())
    } else if flags.master.starts_with("zk://") {
        let url = zk::ZkUrl::parse(&flags.master)?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(zk::detector::follow(url, tx));
        mesos::MasterSource::Detected(rx)
    } else {
        anyhow::bail!("--master '{}' is not supported: use 'local', http(s)://host:port or zk://host:port/mesos", flags.master);
    };

    let user = if flags.mesos_user.is_empty() { std::env::var("USER").unwrap_or_else(|_| "root".into()) } else { flags.mesos_user.clone() };
    let framework = v1::FrameworkInfo {
        user,
        name: flags.framework_name.clone(),
        failover_timeout: Some(flags.failover_timeout),
        checkpoint: Some(true),
        roles: vec![flags.role.clone()],
        hostname: Some(flags.hostname.clone()),
        principal: flags.mesos_authentication_principal.clone(),
        webui_url: Some(format!("{scheme}://{}:{}", flags.hostname, listen.port())),
        capabilities: [
            framework_info::capability::Type::MultiRole,
            framework_info::capability::Type::PartitionAware,
            framework_info::capability::Type::TaskKillingState,
            // Offers of agents in other regions too; tasks go there only when an app's
            // constraint names `@region` (the home region is the master's).
            framework_info::capability::Type::RegionAware,
        ]
        .into_iter()
        // With gpu_resources, offers of agents with GPUs too (Mesos filters them out otherwise,
        // even for CPU-only tasks); --gpu-scheduling-behavior decides who may use them.
        .chain(flags.enable_features.iter().any(|f| f == "gpu_resources").then_some(framework_info::capability::Type::GpuResources))
        .map(|t| framework_info::Capability { r#type: Some(t as i32) })
        .collect(),
        ..Default::default()
    };
    let advertised = format!("{}:{}", flags.hostname, listen.port());
    let ctx = Context {
        actor: ActorConfig {
            role: flags.role.clone(),
            task_launch_timeout: Duration::from_millis(flags.task_launch_timeout),
            kill_retry: Duration::from_millis(flags.kill_retry_timeout),
            decline_refuse_seconds: flags.decline_offer_duration as f64 / 1000.0,
            min_revive_interval: Duration::from_millis(flags.min_revive_offers_interval),
            max_running_deployments: flags.max_running_deployments,
            max_versions: flags.zk_max_versions as usize,
            executor: spec::ExecutorSettings {
                path: flags.executor_path()?,
                uri: flags.executor_uri.clone(),
                always: flags.docker_executor == "framework-executor",
            },
            allow_privileged: flags.allow_privileged,
            docker_parameters_allowed: flags.docker_parameters_allowed.clone(),
            max_instances_per_offer: flags.max_instances_per_offer.max(1),
            gpu_resources: flags.enable_features.iter().any(|f| f == "gpu_resources"),
            service_port_range: (flags.local_port_min, flags.local_port_max),
            gpu_scheduling: if flags.gpu_scheduling_behavior == "restricted" {
                framework_core::scheduler::GpuScheduling::Restricted
            } else {
                framework_core::scheduler::GpuScheduling::Unrestricted
            },
            reconciliation: framework_core::reconcile::Schedule {
                initial_delay: Duration::from_millis(flags.reconciliation_initial_delay),
                interval: Duration::from_millis(flags.reconciliation_interval),
            },
        },
        mesos: mesos::MesosConfig {
            master,
            encoding: match flags.mesos_encoding {
                WireEncoding::Json => Encoding::Json,
                WireEncoding::Protobuf => Encoding::Protobuf,
            },
            framework,
            missed_heartbeats: flags.missed_heartbeats,
            credentials: mesos_credentials(&flags)?,
            ca: flags.mesos_ca.clone(),
        },
        bus: EventBus::new(),
        consul: flags.consul.clone().map(|url| consul::ConsulConfig {
            url,
            token: flags.consul_token.clone(),
            datacenter: flags.consul_datacenter.clone(),
        }),
        info: Arc::new(api::Info {
            advertised: advertised.clone(),
            scheme,
            master: flags.master.clone(),
            zk: flags.zk.clone(),
            framework_name: flags.framework_name.clone(),
            failover_timeout: flags.failover_timeout,
            role: flags.role.clone(),
            hostname: flags.hostname.clone(),
            http_port: listen.port(),
            config: serde_json::json!({
                "mesos_user": flags.mesos_user,
                "local_port_min": flags.local_port_min,
                "local_port_max": flags.local_port_max,
                "access_control_allow_origin": if flags.access_control_allow_origin.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::json!(flags.access_control_allow_origin.join(","))
                },
                "executor": "//cmd",
                "features": flags.enable_features,
                "task_launch_timeout": flags.task_launch_timeout,
                "reconciliation_initial_delay": flags.reconciliation_initial_delay,
                "reconciliation_interval": flags.reconciliation_interval,
                "decline_offer_duration": flags.decline_offer_duration,
                "min_revive_offers_interval": flags.min_revive_offers_interval,
                "max_instances_per_offer": flags.max_instances_per_offer,
                "mesos_heartbeat_failure_threshold": flags.missed_heartbeats,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            zookeeper: serde_json::json!({
                "zk_session_timeout": flags.zk_session_timeout,
                "zk_timeout": flags.zk_session_timeout,
                "zk_max_versions": flags.zk_max_versions,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        }),
        forget_framework_id: flags.forget_framework_id.clone(),
    };

    let (mode_tx, mode_rx) = tokio::sync::watch::channel(front::Mode::NoLeader("starting up".into()));
    let mut _single = None;
    let abdicate = match zk {
        None => {
            let context = || format!("cannot use --data-dir {}", flags.data_dir.display());
            let store = if flags.store_engine == "redb" {
                Store::Redb(crate::redb_store::RedbStore::open(&flags.data_dir).await.with_context(context)?)
            } else {
                Store::Files(FileStore::open(&flags.data_dir).await.with_context(context)?)
            };
            let leadership = Leadership::start(&ctx, store).await?;
            mode_tx.send_replace(front::Mode::Leader(leadership.router.clone()));
            _single = Some(leadership);
            None
        }
        Some(url) => {
            let (tx, rx) = mpsc::channel(1);
            let timeout = Duration::from_millis(flags.zk_session_timeout);
            tokio::spawn(ha::campaign(ctx.clone(), url, timeout, mode_tx, rx));
            Some(tx)
        }
    };
    let http = front::proxy_client(flags.tls_ca.as_deref())?;
    let cors = flags.access_control_allow_origin.clone();
    let app = front::router(front::Front { mode: mode_rx, me: advertised, abdicate, http, scheme, auth, cors });
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tracing::info!(%listen, %scheme, "Marathon API listening");
    // A single instance stops serving when its scheduler stops (after a failure to save state,
    // or when Mesos removed the framework), and exits saying what to do.
    let (stopped_tx, mut stopped) = tokio::sync::oneshot::channel::<actor::Stopped>();
    let shutdown = async move {
        match _single {
            Some(mut leadership) => tokio::select! {
                () = shutdown_signal() => {}
                why = leadership.finished() => {
                    let _ = stopped_tx.send(why);
                }
            },
            None => shutdown_signal().await,
        }
    };
    let result = match tls {
        Some(config) => {
            // `tap_io` only so that axum hands our listener's peer addresses to `ConnectInfo`.
            use axum::serve::ListenerExt as _;
            let listener = tls::TlsListener::new(listener, config)?.tap_io(|_| {});
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        None => {
            // Answers go out without Nagle's delay: a streamed `GET /v2/apps` otherwise left its
            // last small segment waiting for the client's delayed ACK (up to 40 ms on Linux).
            use axum::serve::ListenerExt as _;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    }
    .context("the API server failed");
    if let Ok(why) = stopped.try_recv() {
        let stored_id = flags.data_dir.join(framework_core::keys::FRAMEWORK_ID);
        anyhow::bail!("{}", why.explain(&stored_id.display().to_string()));
    }
    if let Some(cluster) = local {
        cluster.shutdown().await;
    }
    result
}

/// The Mesos framework credentials from the flags (the secret read from its file).
fn mesos_credentials(flags: &Flags) -> anyhow::Result<Option<mesos::MesosCredentials>> {
    let (Some(principal), Some(file)) = (&flags.mesos_authentication_principal, &flags.mesos_authentication_secret_file) else {
        return Ok(None);
    };
    let secret =
        std::fs::read_to_string(file).with_context(|| format!("cannot read --mesos-authentication-secret-file {}", file.display()))?;
    let secret = secret.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!secret.is_empty(), "--mesos-authentication-secret-file {} is empty", file.display());
    Ok(Some(mesos::MesosCredentials { principal: principal.clone(), secret }))
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
