//! `mesos-local`: a Mesos-compatible master with N agents in one process, for development and
//! tests on a machine without Mesos. Schedulers reach it at `http://<listen>/api/v1/scheduler`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use mesos_local::{ClusterConfig, LocalCluster};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(name = "mesos-local", version, about = "Run a local Mesos-compatible master with agents")]
struct Args {
    /// Address the master listens on.
    #[arg(long, default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// Number of agents.
    #[arg(long, default_value_t = 3)]
    agents: usize,
    /// CPUs per agent.
    #[arg(long, default_value_t = 2.0)]
    cpus: f64,
    /// Memory per agent, in MB.
    #[arg(long, default_value_t = 2048.0)]
    mem: f64,
    /// Disk per agent, in MB.
    #[arg(long, default_value_t = 10240.0)]
    disk: f64,
    /// Host port range shared out among the agents, `BEGIN-END`.
    #[arg(long, default_value = "31000-32000")]
    ports: String,
    /// Directory for task sandboxes.
    #[arg(long, default_value = "/tmp/mesos-local")]
    work_dir: PathBuf,
    /// Seconds between HEARTBEAT events.
    #[arg(long, default_value_t = 15.0)]
    heartbeat_interval: f64,
    /// Seconds before an unused offer is rescinded (0 = never).
    #[arg(long, default_value_t = 0.0)]
    offer_timeout: f64,
    /// Start tasks without processes (for scale tests).
    #[arg(long)]
    simulated: bool,
    /// Require frameworks to authenticate (HTTP basic) with one of --credentials.
    #[arg(long, requires = "credentials")]
    authenticate_http_frameworks: bool,
    /// Credentials file as Mesos reads it: JSON `{"credentials": [{"principal": "p", "secret": "s"}]}`.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Register the master in ZooKeeper as Mesos does, e.g. zk://127.0.0.1:2181/mesos.
    #[arg(long)]
    zk: Option<String>,
}

fn parse_range(s: &str) -> anyhow::Result<(u64, u64)> {
    let (b, e) = s.split_once('-').context("--ports must look like 31000-32000")?;
    let (b, e): (u64, u64) = (b.trim().parse().context("bad --ports begin")?, e.trim().parse().context("bad --ports end")?);
    anyhow::ensure!(b <= e && e <= 65535, "--ports range {b}-{e} is not a valid port range");
    Ok((b, e))
}

/// The principal → secret map of a Mesos credentials file.
fn credentials(path: &std::path::Path) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --credentials {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = json["credentials"]
        .as_array()
        .with_context(|| format!("{}: expected {{\"credentials\": [{{\"principal\": ..., \"secret\": ...}}]}}", path.display()))?;
    list.iter()
        .map(|c| match (c["principal"].as_str(), c["secret"].as_str()) {
            (Some(p), Some(s)) => Ok((p.to_string(), s.to_string())),
            _ => anyhow::bail!("{}: every credential needs a \"principal\" and a \"secret\"", path.display()),
        })
        .collect()
}

fn secs(v: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let mut config =
        ClusterConfig::uniform(args.listen, args.agents, args.cpus, args.mem, args.disk, parse_range(&args.ports)?, args.work_dir);
    config.heartbeat_interval = secs(args.heartbeat_interval, "--heartbeat-interval")?.max(Duration::from_millis(100));
    let offer_timeout = secs(args.offer_timeout, "--offer-timeout")?;
    config.offer_timeout = (!offer_timeout.is_zero()).then_some(offer_timeout);
    config.simulated = args.simulated;
    if args.authenticate_http_frameworks {
        let path = args.credentials.as_deref().context("--authenticate-http-frameworks needs --credentials")?;
        config.framework_credentials = Some(credentials(path)?);
    }
    let cluster = LocalCluster::start(config).await?;
    println!("mesos-local master at {} with agents {:?}", cluster.url(), cluster.agent_ids());
    let _registration = match &args.zk {
        Some(url) => {
            let rest = url.strip_prefix("zk://").context("--zk must look like zk://host:2181/mesos")?;
            let (hosts, path) = rest.split_once('/').context("--zk must name a path, e.g. zk://host:2181/mesos")?;
            let r = cluster.register_in_zookeeper(hosts, &format!("/{}", path.trim_matches('/'))).await?;
            println!("registered in ZooKeeper as {}", r.node);
            Some(r)
        }
        None => None,
    };
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    cluster.shutdown().await;
    Ok(())
}
