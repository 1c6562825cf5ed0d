//! Command-line flags of `framework`. Our names are kebab-case; Marathon's own snake_case names
//! are accepted as aliases where they mean the same (`--http_port`, `--framework_name`, ...).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Wire encoding towards the Mesos master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WireEncoding {
    /// `application/json`.
    Json,
    /// `application/x-protobuf`.
    Protobuf,
}

/// Modes of the binary besides the scheduler.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Mode {
    /// Keep nginx upstreams in step with the passing instances in Consul (the consul-template role).
    Lb(LbFlags),
}

/// Flags of the load-balancer mode.
#[derive(Debug, Clone, clap::Args)]
pub struct LbFlags {
    /// Consul agent, e.g. http://127.0.0.1:8500.
    #[arg(long, default_value = "http://127.0.0.1:8500")]
    pub consul: String,
    /// Consul ACL token.
    #[arg(long = "consul-token", env = "CONSUL_HTTP_TOKEN")]
    pub consul_token: Option<String>,
    /// Consul datacenter.
    #[arg(long = "consul-datacenter")]
    pub consul_datacenter: Option<String>,
    /// Template of the upstreams file (default: one upstream per service, one server line per
    /// passing instance). Sections `{{#services}}...{{/services}}` and `{{#servers}}...{{/servers}}`,
    /// fields `{{name}}`, `{{address}}`, `{{port}}`.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// The file the upstreams are written to (included by nginx.conf).
    #[arg(long)]
    pub upstreams: PathBuf,
    /// The nginx.conf checked with `nginx -t` and reloaded.
    #[arg(long = "nginx-conf")]
    pub nginx_conf: PathBuf,
    /// The nginx binary.
    #[arg(long = "nginx-bin", default_value = "nginx")]
    pub nginx_bin: String,
    /// Only services with this tag (all services when absent).
    #[arg(long)]
    pub tag: Option<String>,
}

pub use framework_core::scheduler::DEFAULT_DOCKER_PARAMETERS;

/// A Marathon-compatible Mesos framework.
#[derive(Debug, Clone, Parser)]
#[command(name = "framework", version, about)]
pub struct Flags {
    /// Mesos master: `local` (an embedded master and agents on this machine), `http://host:port`,
    /// or `zk://host:2181/mesos` (the leading master as registered in ZooKeeper).
    #[arg(long, default_value = "local", env = "FRAMEWORK_MASTER")]
    pub master: String,

    /// ZooKeeper for HA: state and leader election under this path (`zk://host:2181,host:2181/framework`).
    /// Without it the process is always the leader and keeps state in --data-dir.
    #[arg(long, env = "FRAMEWORK_ZK")]
    pub zk: Option<String>,

    /// ZooKeeper session timeout in milliseconds (Marathon: 10000).
    #[arg(long = "zk-session-timeout", alias = "zk_session_timeout", default_value_t = 10_000)]
    pub zk_session_timeout: u64,

    /// API credentials `user:password` (HTTP basic; repeatable).
    #[arg(long = "http-credentials", alias = "http_credentials", env = "FRAMEWORK_HTTP_CREDENTIALS", hide_env_values = true)]
    pub http_credentials: Vec<String>,

    /// A file of `user:password` lines.
    #[arg(long = "http-credentials-file")]
    pub http_credentials_file: Option<PathBuf>,

    /// API bearer tokens (repeatable).
    #[arg(long = "api-token", env = "FRAMEWORK_API_TOKEN", hide_env_values = true)]
    pub api_token: Vec<String>,

    /// A file of bearer tokens, one per line.
    #[arg(long = "api-token-file")]
    pub api_token_file: Option<PathBuf>,

    /// Serve the API over HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long = "tls-cert", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long = "tls-key", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates trusted for the other instances' HTTPS API (when followers proxy to
    /// the leader); the system's roots without it.
    #[arg(long = "tls-ca")]
    pub tls_ca: Option<PathBuf>,

    /// Serve the API on a non-loopback address without authentication (unsafe).
    #[arg(long = "insecure-no-auth")]
    pub insecure_no_auth: bool,

    /// Allow apps with privileged Docker containers.
    #[arg(long = "allow-privileged")]
    pub allow_privileged: bool,

    /// Docker `parameters` (options of `docker run`, by key: `label`, `log-opt`, ...) apps may
    /// use; apps asking for any other are refused. Comma-separated or repeated; `*` allows all.
    /// The default leaves out everything that widens a container's access to the host
    /// (`privileged`, `cap-add`, `device`, `volume`, `net`, `pid`, `ipc`, `security-opt`, ...).
    #[arg(long = "docker-parameters-allowed", value_delimiter = ',', default_values = DEFAULT_DOCKER_PARAMETERS)]
    pub docker_parameters_allowed: Vec<String>,

    /// Where the REST API listens (`host:port`, or a bare host combined with --http_port).
    #[arg(long = "http-address", alias = "http_address", default_value = "127.0.0.1:8080")]
    pub http_address: String,

    /// The REST API port (Marathon's flag; overrides the port of --http-address).
    #[arg(long = "http_port", alias = "http-port")]
    pub http_port: Option<u16>,

    /// Where the embedded state store keeps its files.
    #[arg(long = "data-dir", alias = "data_dir", default_value = "framework-data")]
    pub data_dir: PathBuf,

    /// Forget this stored framework id before subscribing, so that Mesos registers a new
    /// framework. Only for after Mesos removed the framework (its failover timeout passed, or
    /// an operator tore it down): `framework` then stops and names the id to give here. Every
    /// app is launched anew under the new framework. A stored id that differs is kept.
    #[arg(long = "forget-framework-id", value_name = "ID")]
    pub forget_framework_id: Option<String>,

    /// The embedded store's engine under --data-dir: `files` (a journal and a record log) or
    /// `redb` (one redb database). For measuring one against the other (BENCHMARKS.md).
    #[arg(long = "store-engine", default_value = "files", value_parser = ["files", "redb"], hide = true)]
    pub store_engine: String,

    /// The framework name registered with Mesos.
    #[arg(long = "framework-name", alias = "framework_name", default_value = "marathon")]
    pub framework_name: String,

    /// Seconds Mesos keeps our tasks running while we are disconnected (Marathon: one week).
    #[arg(long = "failover-timeout", alias = "failover_timeout", default_value_t = 604_800.0)]
    pub failover_timeout: f64,

    /// The Mesos role we register and launch with.
    #[arg(long, alias = "mesos_role", default_value = "*")]
    pub role: String,

    /// Hostname advertised to Mesos and to API clients.
    #[arg(long, default_value = "localhost")]
    pub hostname: String,

    /// The framework principal for Mesos framework authentication (sent as `FrameworkInfo.principal`).
    #[arg(long = "mesos-authentication-principal", alias = "mesos_authentication_principal")]
    pub mesos_authentication_principal: Option<String>,

    /// A file holding the secret of --mesos-authentication-principal (a trailing newline is
    /// ignored); with both, every call to the master authenticates with HTTP basic.
    #[arg(
        long = "mesos-authentication-secret-file",
        alias = "mesos_authentication_secret_file",
        requires = "mesos_authentication_principal"
    )]
    pub mesos_authentication_secret_file: Option<PathBuf>,

    /// The Mesos user tasks run as (empty: the user running `framework`).
    #[arg(long = "mesos-user", alias = "mesos_user", default_value = "")]
    pub mesos_user: String,

    /// Encoding of calls and events on the Mesos connection.
    #[arg(long = "mesos-encoding", value_enum, default_value = "protobuf")]
    pub mesos_encoding: WireEncoding,

    /// Missed Mesos heartbeats after which the connection is re-established (Marathon: 5).
    #[arg(long = "mesos-heartbeat-failure-threshold", alias = "mesos_heartbeat_failure_threshold", default_value_t = 5)]
    pub missed_heartbeats: u32,

    /// Milliseconds a task may take to reach TASK_RUNNING before it is killed (Marathon: 300000).
    #[arg(long = "task-launch-timeout", alias = "task_launch_timeout", default_value_t = 300_000)]
    pub task_launch_timeout: u64,

    /// Origins whose browsers may call the API (UIs hosted elsewhere), comma-separated, or `*`
    /// (Marathon's `--access_control_allow_origin`).
    #[arg(long = "access-control-allow-origin", alias = "access_control_allow_origin", value_delimiter = ',')]
    pub access_control_allow_origin: Vec<String>,

    /// The lowest service port assigned to `portDefinitions[].port: 0` and
    /// `portMappings[].servicePort: 0` (Marathon's `--local_port_min`).
    #[arg(long = "local-port-min", alias = "local_port_min", default_value_t = 10_000)]
    pub local_port_min: u32,

    /// One past the highest service port assigned (Marathon's `--local_port_max`).
    #[arg(long = "local-port-max", alias = "local_port_max", default_value_t = 20_000)]
    pub local_port_max: u32,

    /// A CA certificate (PEM) to trust for an `https://` Mesos master instead of the system's
    /// roots; with `--master zk://...`, the detected masters are then reached over https.
    #[arg(long = "mesos-ca", value_name = "FILE")]
    pub mesos_ca: Option<PathBuf>,

    /// Marathon's optional features, comma-separated: `gpu_resources` (apps may ask for GPUs;
    /// framework asks Mesos for GPU agents' offers), `vips` and `task_killing` (always on here).
    /// `external_volumes` and `secrets` are not supported and refused.
    #[arg(long = "enable-features", alias = "enable_features", value_delimiter = ',', value_parser = parse_feature)]
    pub enable_features: Vec<String>,

    /// Whether tasks that need no GPU may run on agents with GPUs: `unrestricted` (the default)
    /// or `restricted`, which keeps GPU agents for apps with `gpus` > 0 (Marathon's
    /// `--gpu_scheduling_behavior`). framework always asks Mesos for GPU agents' offers
    /// (GPU_RESOURCES).
    #[arg(long = "gpu-scheduling-behavior", alias = "gpu_scheduling_behavior", default_value = "unrestricted", value_parser = ["unrestricted", "restricted"])]
    pub gpu_scheduling_behavior: String,

    /// Milliseconds from the first subscription to the first periodic reconciliation of every
    /// task with Mesos (Marathon: 15000).
    #[arg(long = "reconciliation-initial-delay", alias = "reconciliation_initial_delay", default_value_t = 15_000)]
    pub reconciliation_initial_delay: u64,

    /// Milliseconds between periodic reconciliations of every task with Mesos (Marathon: 600000).
    #[arg(long = "reconciliation-interval", alias = "reconciliation_interval", default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub reconciliation_interval: u64,

    /// Milliseconds an unused offer is refused for when nothing waits for launch (Marathon: 120000).
    #[arg(long = "decline-offer-duration", alias = "decline_offer_duration", default_value_t = 120_000)]
    pub decline_offer_duration: u64,

    /// Milliseconds between two REVIVEs while apps keep waiting for launch (Marathon: 5000):
    /// each REVIVE makes the master offer every agent again. Leaving the suppressed state or a
    /// resubscription revives at once.
    #[arg(long = "min-revive-offers-interval", alias = "min_revive_offers_interval", default_value_t = 5_000)]
    pub min_revive_offers_interval: u64,

    /// Milliseconds after which an unconfirmed kill is sent again (Marathon: 30000).
    #[arg(long = "kill-retry-timeout", alias = "kill_retry_timeout", default_value_t = 30_000)]
    pub kill_retry_timeout: u64,

    /// Tasks launched from one offer at most (Marathon's flag; default 100 here).
    #[arg(long = "max-instances-per-offer", alias = "max_instances_per_offer", default_value_t = 100)]
    pub max_instances_per_offer: u32,

    /// Stored versions kept per app and per group; older ones are removed as new ones come
    /// (Marathon's `--zk_max_versions`, default 50). An app's versions go with the app.
    #[arg(long = "zk-max-versions", alias = "zk_max_versions", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub zk_max_versions: u32,

    /// Deployments that may run at once (Marathon: 100).
    #[arg(long = "max-running-deployments", alias = "max_running_deployments", default_value_t = 100)]
    pub max_running_deployments: usize,

    /// What runs Docker apps' tasks: `mesos` (the default), the agent's Docker containerizer, as
    /// with Marathon (nothing to install on stock agents); or `framework-executor`, our custom
    /// executor (--executor-path or --executor-uri). One app opts in with the label
    /// `FRAMEWORK_EXECUTOR: framework-executor`.
    #[arg(long = "docker-executor", default_value = "mesos", value_parser = ["mesos", "framework-executor"])]
    pub docker_executor: String,

    /// Path of `framework-executor` on the agents, where Docker tasks run through it (default:
    /// next to this binary). The embedded agents' Docker containerizer runs it too.
    #[arg(long = "executor-path")]
    pub executor_path: Option<String>,

    /// URI agents fetch `framework-executor` from (instead of --executor-path).
    #[arg(long = "executor-uri")]
    pub executor_uri: Option<String>,

    /// Register running tasks in this Consul agent (e.g. http://127.0.0.1:8500).
    #[arg(long)]
    pub consul: Option<String>,

    /// Consul ACL token.
    #[arg(long = "consul-token", env = "CONSUL_HTTP_TOKEN")]
    pub consul_token: Option<String>,

    /// Consul datacenter (for catalog and health queries).
    #[arg(long = "consul-datacenter")]
    pub consul_datacenter: Option<String>,

    /// A mode other than the scheduler.
    #[command(subcommand)]
    pub command: Option<Mode>,

    /// Agents of the embedded cluster (with --master local).
    #[arg(long = "local-agents", default_value_t = 2)]
    pub local_agents: usize,

    /// Port range the embedded agents offer, `begin-end`.
    #[arg(long = "local-ports", default_value = "31000-32000")]
    pub local_ports: String,

    /// Where the embedded master listens (port 0: any free port).
    #[arg(long = "local-master-address", default_value = "127.0.0.1:0")]
    pub local_master_address: SocketAddr,
}

/// One of Marathon's `--enable_features`.
fn parse_feature(text: &str) -> Result<String, String> {
    match text.trim() {
        f @ ("gpu_resources" | "vips" | "task_killing") => Ok(f.to_owned()),
        f @ ("external_volumes" | "secrets") => Err(format!("the Marathon feature '{f}' is not supported by framework; leave it out")),
        f => Err(format!("'{f}' is not a Marathon feature (known: gpu_resources, vips, task_killing, external_volumes, secrets)")),
    }
}

impl Flags {
    /// The API listen address after combining --http-address and --http_port.
    pub fn listen(&self) -> anyhow::Result<SocketAddr> {
        let addr = if self.http_address.contains(':') { self.http_address.clone() } else { format!("{}:8080", self.http_address) };
        let mut addr: SocketAddr =
            addr.parse().map_err(|_| anyhow::anyhow!("--http-address '{}' is not host:port (e.g. 127.0.0.1:8080)", self.http_address))?;
        if let Some(port) = self.http_port {
            addr.set_port(port);
        }
        Ok(addr)
    }

    /// Where agents find the executor.
    pub fn executor_path(&self) -> anyhow::Result<String> {
        if let Some(p) = &self.executor_path {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe()?;
        let dir = exe.parent().ok_or_else(|| anyhow::anyhow!("cannot tell where {} lives; give --executor-path", exe.display()))?;
        Ok(dir.join("framework-executor").display().to_string())
    }

    /// The embedded agents' port range.
    pub fn local_ports(&self) -> anyhow::Result<(u64, u64)> {
        let (a, b) = self
            .local_ports
            .split_once('-')
            .ok_or_else(|| anyhow::anyhow!("--local-ports '{}' is not begin-end (e.g. 31000-32000)", self.local_ports))?;
        let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
        anyhow::ensure!(a <= b && b <= 65_535, "--local-ports '{}' must be an ascending range within 1-65535", self.local_ports);
        Ok((a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathon_flag_names_are_aliases() {
        let f = Flags::try_parse_from([
            "framework",
            "--http_port",
            "9090",
            "--framework_name",
            "m",
            "--mesos_role",
            "web",
            "--failover_timeout",
            "60",
        ])
        .unwrap();
        assert_eq!(f.listen().unwrap().port(), 9090);
        assert_eq!(f.framework_name, "m");
        assert_eq!(f.role, "web");
        assert_eq!(f.failover_timeout, 60.0);
        let f = Flags::try_parse_from(["framework", "--http-address", "0.0.0.0:1234"]).unwrap();
        assert_eq!(f.listen().unwrap().to_string(), "0.0.0.0:1234");
        let f = Flags::try_parse_from(["framework", "--http-address", "nonsense:x"]).unwrap();
        assert!(f.listen().is_err());
        let f = Flags::try_parse_from(["framework", "--local-ports", "5-2"]).unwrap();
        assert!(f.local_ports().is_err());
    }

    #[test]
    fn docker_parameters_have_a_safe_default_and_take_lists() {
        let f = Flags::try_parse_from(["framework"]).unwrap();
        assert_eq!(f.docker_parameters_allowed, DEFAULT_DOCKER_PARAMETERS);
        assert!(
            !f.docker_parameters_allowed.iter().any(|p| ["privileged", "cap-add", "device", "volume", "net", "pid"].contains(&p.as_str()))
        );
        let f =
            Flags::try_parse_from(["framework", "--docker-parameters-allowed", "label,cap-add", "--docker-parameters-allowed", "device"])
                .unwrap();
        assert_eq!(f.docker_parameters_allowed, ["label", "cap-add", "device"]);
    }
}
